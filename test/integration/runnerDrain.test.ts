/**
 * Issue 5: `POST /v1/admin/runners/<host:port>/drain` really empties a runner.
 * The scheduler writes `runner.drain.<address>` to scheduler_state; the
 * runner's RunnerDrainWatcher takes the key and shuts down as on SIGTERM
 * (exit 0); its region comes back on the other region runner and the player
 * keeps playing without rejoining.
 */
import { execFileSync } from "node:child_process"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { TesseraClient } from "../../src/client/TesseraClient.js"
import { acksResumed, connectGuest, waitFor, walk } from "../support/clients.js"
import { type ClusterNode, regionHost, runnerAddress, startCluster } from "../support/Cluster.js"
import { testToml } from "../support/testConfig.js"

const KEY = "drain-test-key-0123456789abcdef"

let cluster: Awaited<ReturnType<typeof startCluster>>
const clients: Array<TesseraClient> = []
const nodes = (roles: string): Array<ClusterNode> => cluster.nodes.filter((n) => n.roles === roles)

beforeAll(async () => {
  cluster = await startCluster(["gateway", "session,scheduler,expert:chat", "region", "region"], {
    toml: testToml(`
[admin]
key = "${KEY}"
`)
  })
}, 90_000)

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => {})))
  await cluster?.stop()
})

const admin = async (method: string, path: string, key: string | null = KEY) => {
  const gateway = nodes("gateway")[0]!.server
  const res = await fetch(`${gateway.httpUrl}${path}`, {
    method,
    headers: key === null ? {} : { authorization: `Bearer ${key}` }
  })
  const text = await res.text()
  let json: any = undefined
  try {
    json = JSON.parse(text)
  } catch {
    // not JSON
  }
  return { status: res.status, json }
}


/** The drain keys left in the shared scheduler_state. */
const drainKeys = (): Array<string> =>
  execFileSync("psql", [cluster.databaseUrl, "-tAq", "-c", "SELECT key FROM scheduler_state WHERE key LIKE 'runner.drain.%'"], {
    stdio: "pipe"
  }).toString().split("\n").filter((line) => line !== "")

describe("runner drain", () => {
  it("is refused without the admin key (401) and for an unregistered address (404)", async () => {
    const region = nodes("region")[0]!
    const address = await runnerAddress(region.server)
    expect(address).toMatch(/^127\.0\.0\.1:\d+$/)
    const unauthorized = await admin("POST", `/v1/admin/runners/${address}/drain`, null)
    expect(unauthorized.status).toBe(401)
    const unknown = await admin("POST", "/v1/admin/runners/10.9.9.9:1/drain")
    expect(unknown.status).toBe(404)
    expect(unknown.json.error.code).toBe("not_found")
    expect(unknown.json.error.message).toContain("10.9.9.9:1")
    expect(unknown.json.error.message).toContain(address) // the registered runners are listed
    expect(drainKeys()).toEqual([])
    expect(region.server.child.exitCode).toBe(null)
  })

  it("the drained runner exits 0 by itself, its region comes back on the other runner, the player keeps playing", async () => {
    const gateway = nodes("gateway")[0]!.server
    const player = await connectGuest(gateway, "drain-p")
    clients.push(player)
    const joined = await player.join("arena")
    const seq0 = await walk(player, 1, 0, 0, 5)
    await waitFor("acks", () => player.lastAckedSeq >= seq0)

    const { host, spare } = await regionHost(nodes("region"))
    const address = await runnerAddress(host.server)

    const drainedAt = Date.now()
    const res = await admin("POST", `/v1/admin/runners/${address}/drain?reason=kernel%20update`)
    expect(res.status).toBe(200)
    expect(res.json).toMatchObject({ runner: address, by: expect.stringMatching(/^admin:/), reason: "kernel update" })

    const exit = await host.server.waitExit(15_000)
    expect(exit).toEqual({ code: 0, signal: null })
    process.stderr.write(`drain: runner exited ${Date.now() - drainedAt} ms after the drain request\n`)
    expect(host.server.output).toContain("draining on request of admin:")

    await acksResumed(player, seq0, "region re-activated on the other runner and acking inputs")
    expect(await spare.server.metric("tessera_regions")).toBeGreaterThanOrEqual(1)
    expect(player.state).toBe("open")
    expect(player.world.entities.has(joined.entityId)).toBe(true)

    // The key was taken (a restarted runner rejoins normally); the drain is no longer listed.
    expect(drainKeys()).toEqual([])
    const servers = await admin("GET", "/v1/admin/servers")
    expect(servers.status).toBe(200)
    expect(servers.json.drainingRunners).toEqual([])
    const history = await admin("GET", "/v1/admin/events?history=1")
    expect(history.json.events.map((e: any) => e.event)).toContainEqual(
      expect.objectContaining({ _tag: "RunnerDraining", runner: address })
    )
    // It left the cluster: draining it again is a 404.
    const again = await admin("POST", `/v1/admin/runners/${address}/drain`)
    expect(again.status).toBe(404)
  }, 60_000)
})
