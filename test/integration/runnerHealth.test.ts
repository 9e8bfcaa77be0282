/**
 * Issue 5, runner health: every runner process heartbeats to the scheduler
 * (RunnerHeartbeat); `GET /v1/admin/servers` lists the runners with their
 * health; a runner whose heartbeats stop (the dev-only freeze hook naming
 * its address) is found unhealthy (HealthChanged {kind: "runner"}) and, with
 * `health.drain_unhealthy_runners`, drained through the admin drain's path:
 * it exits 0, its region comes back on the other region runner and the
 * player keeps playing.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { TesseraClient } from "../../src/client/TesseraClient.js"
import { HEARTBEAT_FREEZE_FILE_ENV } from "../../src/scheduler/health/HeartbeatSampler.js"
import { type ClusterNode, regionHost, runnerAddress, startCluster } from "../support/Cluster.js"
import { acksResumed, connectGuest, waitFor, waitForAsync, walk } from "../support/clients.js"
import { ServerProcess, tempDir } from "../support/ServerProcess.js"
import { testToml } from "../support/testConfig.js"

const KEY = "runner-health-test-key-0123456789"

const health = (extra = "") =>
  testToml(`
[admin]
key = "${KEY}"

[health]
heartbeat_interval_ms = 300
missed_heartbeats = 3
unhealthy_threshold = 2
healthy_threshold = 1
${extra}
`)

const adminOf = (server: () => ServerProcess) => async (method: string, path: string) => {
  const res = await fetch(`${server().httpUrl}${path}`, { method, headers: { authorization: `Bearer ${KEY}` } })
  const text = await res.text()
  let json: any
  try {
    json = JSON.parse(text)
  } catch {
    json = undefined
  }
  return { status: res.status, json }
}


describe("runner heartbeats (one process)", () => {
  let server: ServerProcess
  const admin = adminOf(() => server)
  beforeAll(async () => {
    server = await ServerProcess.start({ toml: health() })
  })
  afterAll(async () => {
    await server?.stop()
  })

  it("GET /v1/admin/servers lists the runner, healthy after a few heartbeats", async () => {
    const address = await runnerAddress(server)
    let runners: Array<any> = []
    await waitForAsync("the runner listed as healthy", async () => {
      const res = await admin("GET", "/v1/admin/servers")
      expect(res.status).toBe(200)
      runners = res.json.runners
      return runners.length === 1 && runners[0].health === "healthy"
    })
    expect(runners[0]).toMatchObject({
      runner: address,
      health: "healthy",
      lastHeartbeatAt: expect.any(Number),
      cpu: expect.any(Number),
      memoryBytes: expect.any(Number),
      eventLoopLagP99Ms: expect.any(Number)
    })
    expect(runners[0].roles).toEqual(expect.arrayContaining(["gateway", "region", "scheduler", "session"]))
    expect(Date.now() - runners[0].lastHeartbeatAt).toBeLessThan(5_000)
    expect(runners[0].lastFailure).toBeUndefined()
  })
})

describe("runner health in a cluster", () => {
  let cluster: Awaited<ReturnType<typeof startCluster>>
  const freezeFile = Path.join(tempDir("freeze"), "frozen.txt")
  const clients: Array<TesseraClient> = []
  const nodes = (roles: string): Array<ClusterNode> => cluster.nodes.filter((n) => n.roles === roles)
  const admin = adminOf(() => nodes("gateway")[0]!.server)

  beforeAll(async () => {
    Fs.writeFileSync(freezeFile, "")
    cluster = await startCluster(["gateway", "session,scheduler,expert:chat", "region", "region"], {
      toml: health("drain_unhealthy_runners = true"),
      env: { [HEARTBEAT_FREEZE_FILE_ENV]: freezeFile }
    })
  }, 90_000)
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => {})))
    await cluster?.stop()
  })

  it("a runner whose heartbeats stop is unhealthy (HealthChanged kind runner) and drains itself; the player keeps playing", async () => {
    // Every runner is listed healthy first.
    await waitForAsync("4 healthy runners", async () => {
      const runners: Array<any> = (await admin("GET", "/v1/admin/servers")).json?.runners ?? []
      return runners.length === 4 && runners.every((r) => r.health === "healthy")
    }, 20_000)

    const gateway = nodes("gateway")[0]!.server
    const player = await connectGuest(gateway, "rh-p")
    clients.push(player)
    const joined = await player.join("arena")
    const seq0 = await walk(player, 1, 0, 0, 5)
    await waitFor("acks", () => player.lastAckedSeq >= seq0)

    const { host, spare } = await regionHost(nodes("region"))
    const address = await runnerAddress(host.server)

    const frozenAt = Date.now()
    Fs.writeFileSync(freezeFile, `${address}\n`)

    // Found unhealthy from its missed heartbeats.
    let events: Array<any> = []
    await waitForAsync("HealthChanged runner unhealthy", async () => {
      events = ((await admin("GET", "/v1/admin/events?history=1")).json?.events ?? []).map((e: any) => e.event)
      return events.some((e) => e._tag === "HealthChanged" && e.kind === "runner" && e.target === address && e.to === "unhealthy")
    }, 15_000)
    const changed = events.find((e) => e._tag === "HealthChanged" && e.kind === "runner" && e.target === address)
    expect(changed).toMatchObject({ from: "healthy", to: "unhealthy", reason: expect.stringMatching(/^missed \d+ heartbeats$/) })
    process.stderr.write(`runner health: unhealthy event ${Date.now() - frozenAt} ms after the freeze\n`)

    // drain_unhealthy_runners: drained by the scheduler through the admin drain's path; exits 0.
    const exit = await host.server.waitExit(20_000)
    expect(exit).toEqual({ code: 0, signal: null })
    expect(host.server.output).toContain("draining on request of scheduler")
    const after = ((await admin("GET", "/v1/admin/events?history=1")).json?.events ?? []).map((e: any) => e.event)
    expect(after).toContainEqual(expect.objectContaining({ _tag: "RunnerDraining", runner: address, by: "scheduler" }))
    // Only the frozen runner drained.
    for (const node of cluster.nodes) if (node !== host) expect(node.server.child.exitCode).toBe(null)

    // Its region came back on the other runner; the player keeps playing without rejoining.
    await acksResumed(player, seq0, "region re-activated on the other runner and acking inputs")
    expect(await spare.server.metric("tessera_regions")).toBeGreaterThanOrEqual(1)
    expect(player.state).toBe("open")
    expect(player.world.entities.has(joined.entityId)).toBe(true)

    // Still listed (unhealthy) until forgotten; the others stay healthy.
    const runners: Array<any> = (await admin("GET", "/v1/admin/servers")).json.runners
    expect(runners.find((r) => r.runner === address)).toMatchObject({ health: "unhealthy", lastFailure: expect.stringMatching(/^missed /) })
    expect(runners.filter((r) => r.runner !== address).every((r) => r.health === "healthy")).toBe(true)
  }, 90_000)
})
