import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { TesseraClient } from "../../src/client/TesseraClient.js"
import { connectGuest, sleep, waitFor, walk, waitForAsync } from "../support/clients.js"
import { type ClusterNode, startCluster } from "../support/Cluster.js"

/**
 * What a session must survive when a gateway dies (kill -9) without sending
 * Disconnect: its own passivation meanwhile (the resume token and location are
 * reloaded from the session store), and players who never come back (their
 * region's lease runs out and their scheduler slot is freed).
 *
 * Entities passivate after 1 s idle here; a session still lives at least the
 * resume window (4 s in the test config) + 5 s, see SessionLive.
 */

let cluster: Awaited<ReturnType<typeof startCluster>>
const clients: Array<TesseraClient> = []
const nodes = (roles: string): Array<ClusterNode> => cluster.nodes.filter((n) => n.roles === roles)

beforeAll(async () => {
  cluster = await startCluster(["gateway", "gateway", "region,session", "expert:chat,scheduler"], {
    env: { TESSERA_CLUSTER_ENTITY_MAX_IDLE_SECONDS: "1" }
  })
}, 90_000)

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => {})))
  await cluster?.stop()
})


/** Lease of an entity nobody vouches for: resume window (4 s) + 15 s margin (RegionLive). */
const LEASE_MS = (4 + 15) * 1000

describe("session failover", () => {
  it("a session that passivated while its player played resumes through another gateway after kill -9", async () => {
    const [gwA, gwB] = nodes("gateway").map((n) => n.server)
    const sessionNode = nodes("region,session")[0]!.server
    if (gwA === undefined || gwB === undefined) throw new Error("two gateways expected")

    const p = await connectGuest(gwA, "sess-failover-p", { gateways: [gwB.httpUrl] })
    clients.push(p)
    const joined = await p.join("arena")
    const walked = await walk(p, 0.5, 0, 0, 10)
    await waitFor("p's acks", () => p.lastAckedSeq >= walked)

    let resumed: boolean | undefined
    p.on("reconnected", (r) => (resumed = r))
    // The player keeps playing: inputs go gateway -> region, never through the session, which passivates.
    const driver = setInterval(() => p.sendInput(0, 0, 0), 50)
    try {
      await waitForAsync("p's session passivated", async () => (await sessionNode.metric("tessera_sessions")) === 0, 20_000)
      const before = p.sendInput(0, 0, 0)
      await waitFor("acks while the session is passivated", () => p.lastAckedSeq >= before)

      const exit = await gwA.stop("SIGKILL")
      expect(exit.signal).toBe("SIGKILL")
      await waitFor("p reconnected through gateway B", () => resumed !== undefined, 20_000)
      expect(resumed).toBe(true)
      expect(p.gatewayUrl).toBe(gwB.httpUrl)
      expect(p.entityId).toBe(joined.entityId)
      expect(p.joined?.worldId).toBe(joined.worldId)
    } finally {
      clearInterval(driver)
    }
    const moved = await walk(p, 0.5, 0, 0, 10)
    await waitFor("acks after the resume", () => p.lastAckedSeq >= moved)
    expect(p.state).toBe("open")
    expect(p.entityId).toBe(joined.entityId)
  }, 90_000)

  it("players of a killed gateway who never come back give their scheduler slots back when their lease runs out", async () => {
    const gwB = nodes("gateway")[1]!.server
    const regionNode = nodes("region,session")[0]!.server
    const gwC = (await cluster.addNode("gateway")).server

    // lobby holds 4: three players who will vanish, and one who resumes through gateway B.
    const gone: Array<TesseraClient> = []
    for (let i = 0; i < 3; i++) {
      const c = await connectGuest(gwC, `sess-lease-gone-${i}`, { reconnect: false })
      clients.push(c)
      gone.push(c)
    }
    const stay = await connectGuest(gwC, "sess-lease-stay", { gateways: [gwB.httpUrl] })
    clients.push(stay)
    const joins = [...gone, stay].map((c) => c.join("lobby"))
    const worlds = new Set((await Promise.all(joins)).map((j) => j.worldId))
    expect([...worlds]).toEqual(["lobby.1"])
    const entityOf = (c: TesseraClient): number => {
      if (c.entityId === undefined) throw new Error("joined without an entity id")
      return c.entityId
    }
    const goneIds = gone.map(entityOf)
    const stayId = entityOf(stay)
    await waitFor("stay sees everyone", () => goneIds.every((id) => stay.world.entities.has(id)))
    const playersBefore = await regionNode.metric("tessera_players")

    let resumed: boolean | undefined
    stay.on("reconnected", (r) => (resumed = r))
    const killedAt = Date.now()
    await gwC.stop("SIGKILL")
    await waitFor("stay resumed through gateway B", () => resumed !== undefined, 20_000)
    expect(resumed).toBe(true)
    expect(stay.entityId).toBe(stayId)
    expect(await regionNode.metric("tessera_players")).toBe(playersBefore)

    // The region drops the orphans when their lease runs out (from the dead gateway's last presence report).
    await waitForAsync(
      "the region dropped the vanished players",
      async () => (await regionNode.metric("tessera_players")) === playersBefore - 3,
      LEASE_MS + 10_000
    )
    const droppedAfterMs = Date.now() - killedAt
    // Their sessions (passivated by now: reloaded from the store) tell the scheduler.
    await sleep(1_500)

    // Three slots are free again in lobby.1; the player who resumed still holds the fourth.
    for (let i = 0; i < 3; i++) {
      const q = await connectGuest(gwB, `sess-lease-new-${i}`)
      clients.push(q)
      expect((await q.join("lobby")).worldId).toBe("lobby.1")
    }
    const overflow = await connectGuest(gwB, "sess-lease-overflow")
    clients.push(overflow)
    expect((await overflow.join("lobby")).worldId).toBe("lobby.2")

    const seq = stay.sendInput(0, 0, 0)
    await waitFor("stay still acked", () => stay.lastAckedSeq >= seq)
    expect(stay.world.entities.has(stayId)).toBe(true)
    console.log(JSON.stringify({ test: "sessionLeaseExpiry", killToDroppedMs: droppedAfterMs }))
  }, 90_000)
})
