import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import * as Net from "node:net"
import { afterEach, describe, expect, it } from "vitest"
import { connectGuest, waitFor, walk } from "../support/clients.js"
import { createDatabase } from "../support/Cluster.js"
import { freePort, metricValue, ServerProcess } from "../support/ServerProcess.js"
import { TcpProxy } from "../support/TcpProxy.js"
import { testToml } from "../support/testConfig.js"

/** A Redis of this test's own on a free loopback port; only this pid is ever stopped. */
const startRedis = async (port: number): Promise<ChildProcess> => {
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
    stdio: "ignore"
  })
  const deadline = Date.now() + 5000
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = Net.connect(port, "127.0.0.1", () => {
        socket.end()
        resolve(true)
      })
      socket.on("error", () => resolve(false))
    })
    if (ok) return child
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error("redis-server did not start")
}

const stopProcess = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    child.once("exit", () => resolve())
    child.kill("SIGKILL")
  })

const ready = async (server: ServerProcess) => {
  const res = await fetch(`${server.httpUrl}/ready`)
  return { status: res.status, body: (await res.json()) as { ready: boolean; checks: Record<string, string> } }
}

const started: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const stop of started.splice(0).reverse()) await stop()
})

describe("degraded dependencies", () => {
  it("Redis goes away: /ready says so, the server keeps running, and recovers when Redis returns", async () => {
    const redisPort = await freePort()
    let redis = await startRedis(redisPort)
    started.push(() => stopProcess(redis))
    const server = await ServerProcess.start({
      toml: testToml(),
      env: { TESSERA_REDIS_ENABLED: "true", TESSERA_REDIS_URL: `redis://127.0.0.1:${redisPort}` }
    })
    started.push(() => server.stop())
    const client = await connectGuest(server, "degraded-player")
    started.push(() => client.close().catch(() => {}))
    const joined = await client.join("arena")
    await waitFor("own snapshot", () => client.world.entities.has(joined.entityId))

    await stopProcess(redis)
    let report = await ready(server)
    const deadline = Date.now() + 10_000
    while (report.status === 200 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100))
      report = await ready(server)
    }
    expect(report.status).toBe(503)
    expect(report.body.ready).toBe(false)
    expect(report.body.checks.redis).not.toBe("ok")
    expect(report.body.checks.storage).toBe("ok")
    expect((await fetch(`${server.httpUrl}/health`)).status).toBe(200)

    redis = await startRedis(redisPort)
    const until = Date.now() + 15_000
    report = await ready(server)
    while (report.status !== 200 && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 200))
      report = await ready(server)
    }
    expect(report.status).toBe(200)
    expect(report.body.checks.redis).toBe("ok")
    // Play resumes: the cell topics were re-subscribed.
    const seq = client.sendInput(1, 0, 0)
    await waitFor("acks after Redis recovered", () => client.lastAckedSeq >= seq, 10_000)
  }, 60_000)
})

/** A node that keeps its storage in a fresh PostgreSQL database reached through a proxy the test can cut. */
const postgresThroughProxy = async (options: { listening: boolean }) => {
  const database = createDatabase()
  started.push(async () => database.drop())
  const proxy = await TcpProxy.start({ host: "127.0.0.1", port: 5432 }, { listening: options.listening })
  started.push(() => proxy.cut())
  const url = new URL(database.url)
  url.port = String(proxy.port)
  return { proxy, url: url.toString(), databaseUrl: database.url }
}

/** Polls /ready until it answers `status` (a process still starting does not answer at all). */
const waitReadyStatus = async (server: ServerProcess, status: number, timeoutMs: number) => {
  const attempt = () => ready(server).catch(() => ({ status: 0, body: { ready: false, checks: {} as Record<string, string> } }))
  let report = await attempt()
  const deadline = Date.now() + timeoutMs
  while (report.status !== status && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200))
    report = await attempt()
  }
  return report
}

const dependencyUp = async (server: ServerProcess, dependency: string) =>
  metricValue(await (await fetch(`${server.httpUrl}/metrics`)).text(), `tessera_dependency_up\\{dependency="${dependency}"\\}`)

describe("PostgreSQL unavailable", () => {
  it("down at boot: the runner waits with /health 200 and /ready 503 (the reason), then starts when it answers", async () => {
    const pgProxy = await postgresThroughProxy({ listening: false })
    const server = await ServerProcess.start({
      toml: testToml(),
      waitReady: false,
      env: { TESSERA_STORAGE_BACKEND: "postgres", TESSERA_STORAGE_POSTGRES_URL: pgProxy.url }
    })
    started.push(() => server.stop())

    const report = await waitReadyStatus(server, 503, 10_000)
    expect(report.status).toBe(503)
    expect(report.body.ready).toBe(false)
    expect(report.body.checks.storage).toMatch(/^waiting for PostgreSQL: /)
    expect((await fetch(`${server.httpUrl}/health`)).status).toBe(200)
    expect(await dependencyUp(server, "storage")).toBe(0)
    // Still waiting a few seconds later: no exit, no crash loop.
    await new Promise((r) => setTimeout(r, 2_500))
    expect(server.child.exitCode).toBeNull()
    expect(server.output).toMatch(/PostgreSQL unreachable, waiting for it/)

    await pgProxy.proxy.restore()
    await server.waitReady(20_000)
    expect(await dependencyUp(server, "storage")).toBe(1)
    const client = await connectGuest(server, "pg-late-player")
    started.push(() => client.close().catch(() => {}))
    const joined = await client.join("arena")
    await waitFor("own snapshot", () => client.world.entities.has(joined.entityId))
  }, 60_000)

  it("lost at runtime: /ready 503 while it is gone, recovers by itself, and the player's state is flushed after", async () => {
    const pgProxy = await postgresThroughProxy({ listening: true })
    const server = await ServerProcess.start({
      toml: testToml(),
      // info: the recovery lines are what this test reads.
      env: { TESSERA_STORAGE_BACKEND: "postgres", TESSERA_STORAGE_POSTGRES_URL: pgProxy.url, TESSERA_SERVER_LOG_LEVEL: "info" }
    })
    started.push(() => server.stop())
    const client = await connectGuest(server, "pg-outage-player")
    started.push(() => client.close().catch(() => {}))
    const joined = await client.join("arena")
    await waitFor("own snapshot", () => client.world.entities.has(joined.entityId))

    await pgProxy.proxy.cut()
    const cutAt = Date.now()
    const down = await waitReadyStatus(server, 503, 10_000)
    expect(down.status).toBe(503)
    expect(down.body.checks.storage).not.toBe("ok")
    expect((await fetch(`${server.httpUrl}/health`)).status).toBe(200)
    for (const deadline = Date.now() + 10_000; (await dependencyUp(server, "storage")) !== 0 && Date.now() < deadline;) {
      await new Promise((r) => setTimeout(r, 200))
    }
    expect(await dependencyUp(server, "storage")).toBe(0)
    // The player moves while storage is gone; that state must reach storage later, not be dropped.
    await walk(client, 1, 0, 0, 20)
    // Longer than the shard lock expiration (6 s): the runner's hold on its shards lapses meanwhile.
    await new Promise((r) => setTimeout(r, Math.max(0, cutAt + 10_000 - Date.now())))
    expect(server.child.exitCode).toBeNull()

    await pgProxy.proxy.restore()
    const up = await waitReadyStatus(server, 200, 30_000)
    expect(up.status).toBe(200)
    expect(server.output).toMatch(/storage unavailable/)
    await waitFor("the line saying storage is back", () => /storage is back/.test(server.output), 5_000)
    await waitFor("the write-behind buffer to drain", () => /player state flush succeeded after \d+ failed attempts/.test(server.output), 5_000)
    // Play goes on (after a resume if the session had to move).
    const seq = client.sendInput(0, 1, 0)
    await waitFor("acks after PostgreSQL recovered", () => client.lastAckedSeq >= seq, 20_000)
    const position = { ...client.world.entities.get(joined.entityId)! }

    expect((await server.stop()).code).toBe(0)
    const rows = JSON.parse(
      execFileSync("psql", ["-h", "127.0.0.1", "-U", "postgres", "-d", new URL(pgProxy.databaseUrl).pathname.slice(1), "-At", "-c",
        `SELECT json_agg(json_build_object('x', pos_x, 'y', pos_y)) FROM players WHERE name = 'pg-outage-player'`], {
        encoding: "utf8"
      }).trim()
    ) as Array<{ x: number; y: number }>
    expect(rows).toHaveLength(1)
    expect(rows[0]!.x).toBeCloseTo(position.x, 0)
    expect(rows[0]!.y).toBeCloseTo(position.y, 0)
  }, 90_000)
})
