import { afterEach, describe, expect, it } from "vitest"
import type { TesseraClient } from "../../src/client/TesseraClient.js"
import { connectGuest, sleep, waitFor } from "../support/clients.js"
import { ServerProcess } from "../support/ServerProcess.js"
import { testToml } from "../support/testConfig.js"

/**
 * An open world of 2 x 1 x 2 root regions of 64 m meeting at the origin
 * (players spawn within 2 m of it), 6 m overlap zones, 2 m hysteresis,
 * 0.5 m per tick at full input.
 */
const openWorldToml = (extra = "") =>
  testToml(`
[[experiences]]
id = "frontier"
name = "Frontier"
tick_rate = 20
max_players = 200
world = "open"
region_size = 64
min_region_size = 16
overlap = 6
hysteresis = 2
split_players = 40
merge_players = 20
regions_x = 2
regions_y = 1
regions_z = 2
${extra}`)

const started: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const stop of started.splice(0).reverse()) await stop()
})

interface Audit {
  readonly version: number
  readonly regions: number
  readonly entities: number
  readonly violations: ReadonlyArray<unknown>
}
const auditOf = async (httpUrl: string): Promise<Audit> =>
  (await (await fetch(`${httpUrl}/v1/debug/authority?experience=frontier`)).json()) as Audit

const own = (client: TesseraClient) => client.world.entities.get(client.joined!.entityId)

type Axis = "x" | "z"

/** Walks the client along one axis until its own position passes `target`, one input per tick; returns the last seq sent. */
const walkTo = async (client: TesseraClient, axis: Axis, target: number, onStep?: () => void | Promise<void>) => {
  let seq = 0
  for (let i = 0; i < 400; i++) {
    const v = own(client)?.[axis] ?? 0
    if (target > 0 ? v >= target : v <= target) return seq
    const d = target > v ? 1 : -1
    seq = axis === "x" ? client.sendInput(d, 0, 0) : client.sendInput(0, 0, d)
    await sleep(50)
    await onStep?.()
  }
  throw new Error(`did not reach ${axis} = ${target} (at ${own(client)?.[axis]})`)
}

const stopAt = async (client: TesseraClient) => {
  const seq = client.sendInput(0, 0, 0)
  await waitFor("the stop to be acked", () => client.lastAckedSeq >= seq, 10_000)
}

/** A path across one boundary: walk along `axis` over 0, in the lane where the other axis is `lane`. */
interface Crossing {
  readonly axis: Axis
  /** The other coordinate to walk in; undefined: where the players spawned (near 0). */
  readonly lane?: number
}
const other = (axis: Axis): Axis => (axis === "x" ? "z" : "x")

/**
 * Player W walks over a boundary from the negative side while player E
 * waits just across it. Checks what the issue asks: E sees W through a ghost
 * before W crosses, W's own acks have no gap, the audit finds one authority
 * per entity all along, and the crossing is one authority transfer.
 */
const walkAcross = async (gatewayUrl: string, connect: (id: string) => Promise<TesseraClient>, crossing: Crossing) => {
  const { axis, lane } = crossing
  const west = await connect("ow-west")
  const east = await connect("ow-east")
  started.push(() => west.close().catch(() => {}), () => east.close().catch(() => {}))
  const w = await west.join("frontier")
  await east.join("frontier")
  expect(w.worldId).toBe("frontier.world")
  await waitFor("own entities", () => own(west) !== undefined && own(east) !== undefined)
  await walkTo(west, axis, -14)
  if (lane !== undefined) await walkTo(west, other(axis), lane)
  await walkTo(east, axis, 3)
  if (lane !== undefined) await walkTo(east, other(axis), lane)
  await stopAt(west)
  await stopAt(east)
  expect(east.world.entities.has(w.entityId)).toBe(false)

  const acks: Array<number> = []
  let seenAt: number | undefined
  const violations: Array<unknown> = []
  let audits = 0
  const lastSeq = await walkTo(west, axis, 8, async () => {
    acks.push(west.lastAckedSeq)
    if (seenAt === undefined && east.world.entities.has(w.entityId)) seenAt = own(west)?.[axis]
    if (acks.length % 4 === 0) {
      const audit = await auditOf(gatewayUrl)
      audits++
      violations.push(...audit.violations)
    }
  })
  await waitFor("the last input to be acked", () => west.lastAckedSeq >= lastSeq, 10_000)
  const after = await auditOf(gatewayUrl)
  return { west, east, w, acks, seenAt, violations, audits, after, lastSeq }
}

describe("open world (server meshing)", () => {
  it("one process: ghosts across the border, one handoff, acks without a gap, one authority throughout", async () => {
    const server = await ServerProcess.start({ toml: openWorldToml() })
    started.push(() => server.stop())
    const result = await walkAcross(server.httpUrl, (id) => connectGuest(server, id), { axis: "x" })

    expect(result.seenAt, "E saw W through a ghost before W crossed").toBeDefined()
    expect(result.seenAt!).toBeLessThan(0)
    expect(result.audits).toBeGreaterThan(5)
    expect(result.violations).toEqual([])
    expect(result.after.violations).toEqual([])
    expect(result.after.entities).toBe(2)
    // Acks never go back and never jump by more than what one poll interval can hold.
    for (let i = 1; i < result.acks.length; i++) expect(result.acks[i]!).toBeGreaterThanOrEqual(result.acks[i - 1]!)
    expect(result.west.lastAckedSeq).toBe(result.lastSeq)
    // W still plays after the crossing: its inputs reach the east region.
    const seq = result.west.sendInput(0, 0, 1)
    await waitFor("acks from the new region", () => result.west.lastAckedSeq >= seq, 5_000)
    expect(await server.metric("tessera_authority_transfer_total")).toBeGreaterThanOrEqual(1)
    expect(await server.metric("tessera_authority_transfer_failures_total")).toBe(0)
    expect(await server.metric("tessera_relocations_total")).toBeGreaterThanOrEqual(1)
    // E now sees W as an entity of its own region, once.
    await waitFor("E sees W", () => result.east.world.entities.has(result.w.entityId))
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
