import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startCluster, type ClusterNode } from "../support/Cluster.js"
import { connectGuest, waitFor, waitForAsync } from "../support/clients.js"
import { auditOf, expectCleanCrossing, openWorldToml, stopAt, walkAcross, walkTo, type Axis, type Crossing } from "../support/openWorldWalk.js"

/**
 * The border walk with the two regions on different runner processes: the
 * handoff, ghosts and forwarded inputs go through entity messages between
 * runners, and the gateway relocation through Redis.
 */
let cluster: Awaited<ReturnType<typeof startCluster>>
const stops: Array<() => Promise<unknown>> = []

beforeAll(async () => {
  cluster = await startCluster(["gateway", "gateway", "session,scheduler,expert:chat", "region", "region"], {
    toml: openWorldToml(),
    // Two shards for two region runners: each hosts some of the four root regions.
    env: { TESSERA_CLUSTER_SHARDS_PER_GROUP: "2" }
  })
}, 120_000)
afterAll(async () => {
  for (const stop of stops.splice(0).reverse()) await stop()
  await cluster?.stop()
})

const rootId = (x: number, z: number) => `frontier.world/0/${x}/0/${z}`

/** Which region runner hosts each active region, from its per-region player gauge. */
const hosts = async (nodes: ReadonlyArray<ClusterNode>): Promise<Map<string, number>> => {
  const found = new Map<string, number>()
  for (const [i, node] of nodes.entries()) {
    const text = await (await fetch(`${node.server.httpUrl}/metrics`)).text()
    for (const m of text.matchAll(/^tessera_region_players\{region="([^"]+)"\}/gm)) found.set(m[1]!, i)
  }
  return found
}

/** A border between two root regions hosted on different runners, as a walk along one axis in one lane. */
const crossRunnerCrossing = (hosted: Map<string, number>): (Crossing & { readonly from: string; readonly to: string }) | undefined => {
  const lanes: Array<{ axis: Axis; a: string; b: string; lane: number }> = [
    { axis: "x", a: rootId(0, 0), b: rootId(1, 0), lane: -10 },
    { axis: "x", a: rootId(0, 1), b: rootId(1, 1), lane: 10 },
    { axis: "z", a: rootId(0, 0), b: rootId(0, 1), lane: -10 },
    { axis: "z", a: rootId(1, 0), b: rootId(1, 1), lane: 10 }
  ]
  const pick = lanes.find(({ a, b }) => hosted.has(a) && hosted.has(b) && hosted.get(a) !== hosted.get(b))
  return pick && { axis: pick.axis, lane: pick.lane, from: pick.a, to: pick.b }
}

describe("open world across runners", () => {
  it("the border walk with the two regions on different runners: one handoff by entity message, acks without a gap", async () => {
    const [gateway, spareGateway] = cluster.nodes.filter((n) => n.roles === "gateway").map((n) => n.server)
    if (gateway === undefined || spareGateway === undefined) throw new Error("two gateways expected")
    const regionNodes = cluster.nodes.filter((n) => n.roles === "region")
    // Wake every root region (the audit asks each leaf), then see where each one lives.
    let hosted = new Map<string, number>()
    await waitForAsync("all four roots hosted", async () => {
      const audit = await auditOf(gateway.httpUrl).catch(() => undefined)
      if (audit?.regions !== 4) return false
      hosted = await hosts(regionNodes)
      // Until the second runner has registered, the first may hold both shards: wait for the rebalance.
      return hosted.size === 4 && crossRunnerCrossing(hosted) !== undefined
    }, 60_000)
    const crossing = crossRunnerCrossing(hosted)
    expect(crossing, `a border between runners (hosts: ${JSON.stringify([...hosted])})`).toBeDefined()

    // Audits go through the spare gateway, which outlives the players' one.
    const result = await walkAcross(spareGateway.httpUrl, (id) => connectGuest(gateway, id, { gateways: [spareGateway.httpUrl] }), crossing!, (stop) => void stops.push(stop))
    await expectCleanCrossing(result, "E saw W through a ghost (an entity message between runners) before W crossed")
    const transfers = await Promise.all(regionNodes.map((n) => n.server.metric("tessera_authority_transfer_total")))
    expect(transfers.reduce((a, b) => a + (Number.isNaN(b) ? 0 : b), 0)).toBeGreaterThanOrEqual(1)
    const failures = await Promise.all(regionNodes.map((n) => n.server.metric("tessera_authority_transfer_failures_total")))
    expect(failures.every((f) => f === 0 || Number.isNaN(f))).toBe(true)
    expect(await gateway.metric("tessera_relocations_total")).toBeGreaterThanOrEqual(1)
    await waitFor("E sees W", () => result.east.world.entities.has(result.w.entityId))

    // The session followed the relocation: with W's gateway killed outright (it never hands its copy of
    // the location back), W resumes through the other gateway into the region that has its entity now.
    // The session must not already point there by chance (the region W joined in): if it does, walk W back over.
    let finalRegion = crossing!.to
    if (result.w.regionId === finalRegion) {
      await walkTo(result.west, crossing!.axis, -14)
      await stopAt(result.west)
      finalRegion = crossing!.from
    }
    expect(finalRegion).not.toBe(result.w.regionId)
    let resumed: boolean | undefined
    result.west.on("reconnected", (r) => (resumed = r))
    expect((await gateway.stop("SIGKILL")).signal).toBe("SIGKILL")
    await waitFor("W resumed through the spare gateway", () => resumed, 20_000)
    expect(resumed).toBe(true)
    expect(result.west.joined?.regionId).toBe(finalRegion)
    expect(result.west.entityId).toBe(result.w.entityId)
    const again = result.west.sendInput(0, 0, 0)
    await waitFor("acks after the resume", () => result.west.lastAckedSeq >= again, 10_000)
  }, 120_000)
})
