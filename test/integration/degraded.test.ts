import { type ChildProcess, spawn } from "node:child_process"
import * as Net from "node:net"
import { afterEach, describe, expect, it } from "vitest"
import { connectGuest, waitFor } from "../support/clients.js"
import { freePort, ServerProcess } from "../support/ServerProcess.js"
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
