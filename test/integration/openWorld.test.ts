import { afterEach, describe, expect, it } from "vitest"
import { connectGuest, sleep, waitFor } from "../support/clients.js"
import { auditOf, expectCleanCrossing, openWorldToml, own, stopAt, walkAcross, walkTo } from "../support/openWorldWalk.js"
import { ServerProcess } from "../support/ServerProcess.js"

const started: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const stop of started.splice(0).reverse()) await stop()
})
const cleanup = (stop: () => Promise<unknown>) => void started.push(stop)
const ADMIN_KEY = "open-world-test-admin-key"

describe("open world (server meshing)", () => {
  it("one process: ghosts across the border, one handoff, acks without a gap, one authority throughout", async () => {
    const server = await ServerProcess.start({ toml: openWorldToml(), env: { TESSERA_ADMIN_KEY: ADMIN_KEY } })
    started.push(() => server.stop())
    const result = await walkAcross(server.httpUrl, (id) => connectGuest(server, id), { axis: "x" }, cleanup)

    await expectCleanCrossing(result, "E saw W through a ghost before W crossed")
    expect(await server.metric("tessera_authority_transfer_total")).toBeGreaterThanOrEqual(1)
    expect(await server.metric("tessera_authority_transfer_failures_total")).toBe(0)
    expect(await server.metric("tessera_relocations_total")).toBeGreaterThanOrEqual(1)
    // E now sees W as an entity of its own region, once.
    await waitFor("E sees W", () => result.east.world.entities.has(result.w.entityId))
    // The admin API lists the world's regions, all or one.
    const servers = async (query: string) =>
      (await (await fetch(`${server.httpUrl}/v1/admin/servers?${query}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).json()) as {
        regions: Array<{ regionId: string }>
      }
    expect((await servers("region=frontier.world")).regions).toHaveLength(4)
    expect((await servers(`region=${encodeURIComponent(result.w.regionId)}`)).regions.map((r) => r.regionId)).toEqual([result.w.regionId])
  }, 90_000)

  it("one process: a handoff into a neighbour that had stopped ticking while empty wakes it", async () => {
    // Regression: the in-process handoff skipped the entity message that starts a region's tick loop,
    // so the walker landed in a region that never ticked again (its view froze at the border).
    const server = await ServerProcess.start({ toml: openWorldToml() })
    started.push(() => server.stop())
    const walker = await connectGuest(server, "ow-alone")
    started.push(() => walker.close().catch(() => {}))
    await walker.join("frontier")
    await waitFor("own entity", () => own(walker) !== undefined)
    await walkTo(walker, "x", -14)
    await stopAt(walker)
    // Wake every leaf, then wait past the empty grace (2 s): the empty ones stop ticking but stay
    // active, since the audits during the walk keep reaching them.
    expect((await auditOf(server.httpUrl)).regions).toBe(4)
    await sleep(2_600)
    const violations: Array<unknown> = []
    let steps = 0
    const lastSeq = await walkTo(walker, "x", 8, async () => {
      if (++steps % 4 === 0) violations.push(...(await auditOf(server.httpUrl)).violations)
    })
    await waitFor("the last input to be acked", () => walker.lastAckedSeq >= lastSeq, 10_000)
    expect(violations).toEqual([])
    expect(await server.metric("tessera_authority_transfer_total")).toBeGreaterThanOrEqual(1)
  }, 90_000)
})
