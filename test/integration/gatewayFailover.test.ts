import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { TesseraClient } from "../../src/client/TesseraClient.js"
import { connectGuest, sleep, waitFor, walk, waitForAsync } from "../support/clients.js"
import { type ClusterNode, startCluster } from "../support/Cluster.js"

/**
 * A gateway dies (kill -9) under a connected player: the SDK, which knows a second gateway
 * (`options.gateways`), reconnects through it and resumes the same session and entity, and
 * everything the dead gateway left behind (its region leases, its presence entries) runs out
 * without touching the player who moved away.
 */

let cluster: Awaited<ReturnType<typeof startCluster>>
const clients: Array<TesseraClient> = []
const nodes = (roles: string): Array<ClusterNode> => cluster.nodes.filter((n) => n.roles === roles)

beforeAll(async () => {
  cluster = await startCluster(["gateway", "gateway", "region,session", "expert:chat,scheduler"])
}, 90_000)

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => {})))
  await cluster?.stop()
})


const online = async (url: string) =>
  (await (await fetch(`${url}/v1/online`)).json()) as { total: number; experiences: Record<string, number> }

/** Lease of an entity nobody vouches for: resume window (4 s in the test config) + 15 s margin (RegionLive). */
const LEASE_MS = (4 + 15) * 1000
/** Presence heartbeat TTL (15 s) + one heartbeat/sweep period (5 s), the Presence.layerRedis defaults. */
const PRESENCE_EXPIRY_MS = 15_000 + 5_000

describe("gateway failover", () => {
  it("kill -9 of a player's gateway: the SDK resumes through the other gateway, same entity, no duplicate", async () => {
    const [gwA, gwB] = nodes("gateway").map((n) => n.server)
    if (gwA === undefined || gwB === undefined) throw new Error("two gateways expected")

    const p = await connectGuest(gwA, "gw-failover-p", { gateways: [gwB.httpUrl] })
    const o = await connectGuest(gwB, "gw-failover-o")
    clients.push(p, o)
    const jp = await p.join("arena")
    const jo = await o.join("arena")
    expect(jo.worldId).toBe(jp.worldId)
    await waitFor("p sees o", () => p.world.entities.has(jo.entityId))
    await waitFor("o sees p", () => o.world.entities.has(jp.entityId))
    const x0 = o.world.entities.get(jp.entityId)!.x
    const walked = await walk(p, 0.5, 0, 0, 10)
    await waitFor("p's acks", () => p.lastAckedSeq >= walked)
    await waitFor("o sees p move", () => o.world.entities.get(jp.entityId)!.x > x0 + 1)
    // Stand still, so the entity stays near o while its player is away (velocity persists).
    const stopped = p.sendInput(0, 0, 0)
    await waitFor("p stopped", () => p.lastAckedSeq >= stopped)
    await waitForAsync("presence counts both players", async () => {
      const now = await online(gwB.httpUrl)
      return now.experiences.arena === 2 && now.total === 2
    })

    let reconnectedAt: number | undefined
    let resumed: boolean | undefined
    let firstAckAt: number | undefined
    const attempts: Array<string> = []
    p.on("reconnecting", () => attempts.push(p.gatewayUrl))
    p.on("reconnected", (r) => {
      reconnectedAt = Date.now()
      resumed = r
    })
    p.on("ack", (seq) => {
      if (firstAckAt === undefined && reconnectedAt !== undefined && seq > stopped) firstAckAt = Date.now()
    })
    // The player keeps "playing" (standing still) through the failover: one input per tick.
    const driver = setInterval(() => p.sendInput(0, 0, 0), 50)
    try {
      const killedAt = Date.now()
      const exit = await gwA.stop("SIGKILL")
      expect(exit.signal).toBe("SIGKILL")

      await waitFor("p reconnected through gateway B and acked again", () => firstAckAt !== undefined, 20_000)
      const reconnectMs = reconnectedAt! - killedAt
      const firstAckMs = firstAckAt! - killedAt
      console.log(JSON.stringify({
        test: "gatewayFailover",
        killToReconnectedMs: reconnectMs,
        killToFirstAckMs: firstAckMs,
        attempts: attempts.length
      }))
      expect(resumed).toBe(true)
      expect(p.state).toBe("open")
      expect(p.gatewayUrl).toBe(gwB.httpUrl)
      expect(attempts[0]).toBe(gwA.httpUrl) // a drop is retried on the same gateway first
      expect(p.entityId).toBe(jp.entityId)
      expect(p.joined?.worldId).toBe(jp.worldId)
      expect(firstAckMs).toBeLessThan(10_000)
    } finally {
      clearInterval(driver)
    }

    // o sees p keep moving, and p is one entity in both views.
    const x1 = await waitFor("o still sees p", () => o.world.entities.get(jp.entityId)?.x)
    const moved = await walk(p, 0.5, 0, 0, 10)
    await waitFor("acks after resume", () => p.lastAckedSeq >= moved)
    await waitFor("o sees p move after the failover", () => o.world.entities.get(jp.entityId)!.x > x1 + 1)
    const stoppedAgain = p.sendInput(0, 0, 0)
    await waitFor("p stopped", () => p.lastAckedSeq >= stoppedAgain)
    expect([...o.world.entities.keys()].sort()).toEqual([jp.entityId, jo.entityId].sort())
    expect([...p.world.entities.keys()].sort()).toEqual([jp.entityId, jo.entityId].sort())

    // Past the dead gateway's region lease and presence expiry: p stays in the world, once, and counted once.
    const until = Date.now() + Math.max(LEASE_MS, PRESENCE_EXPIRY_MS) + 2_000
    const sent: Array<number> = []
    while (Date.now() < until) {
      sent.push(p.sendInput(0, 0, 0))
      await sleep(250)
      expect(p.state).toBe("open")
      expect(o.world.entities.has(jp.entityId)).toBe(true)
      expect(o.world.entities.size).toBe(2)
      // Acks keep coming (with half a second of slack): the region still has p's entity.
      if (sent.length >= 3) expect(p.lastAckedSeq).toBeGreaterThanOrEqual(sent[sent.length - 3]!)
      const now = await online(gwB.httpUrl)
      expect(now.experiences.arena).toBe(2)
      expect(now.total).toBe(2)
    }
    const x2 = o.world.entities.get(jp.entityId)!.x
    const last = await walk(p, -0.5, 0, 0, 10)
    await waitFor("acks after the expiries", () => p.lastAckedSeq >= last)
    await waitFor("o sees p move after the expiries", () => o.world.entities.get(jp.entityId)!.x < x2 - 1)
    expect(o.world.entities.size).toBe(2)
  }, 120_000)
})
