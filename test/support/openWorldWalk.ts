import { expect } from "vitest"
import type { TesseraClient } from "../../src/client/TesseraClient.js"
import { sleep, waitFor } from "./clients.js"
import { testToml } from "./testConfig.js"

/** Walks across open-world region borders, shared by the one-process and the cross-runner tests. */

/**
 * An open world of 2 x 1 x 2 root regions of 64 m meeting at the origin
 * (players spawn within 2 m of it), 6 m overlap zones, 2 m hysteresis,
 * 0.5 m per tick at full input; `mesh` overrides the split and merge thresholds.
 */
export const openWorldToml = (extra = "", mesh: { readonly splitPlayers?: number; readonly mergePlayers?: number } = {}) =>
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
split_players = ${mesh.splitPlayers ?? 40}
merge_players = ${mesh.mergePlayers ?? 20}
regions_x = 2
regions_y = 1
regions_z = 2
${extra}`)

export interface Audit {
  readonly version: number
  readonly regions: number
  readonly entities: number
  readonly violations: ReadonlyArray<unknown>
}
export const auditOf = async (httpUrl: string): Promise<Audit> =>
  (await (await fetch(`${httpUrl}/v1/debug/authority?experience=frontier`)).json()) as Audit

export const own = (client: TesseraClient) => client.world.entities.get(client.joined!.entityId)

export type Axis = "x" | "z"

/** Walks the client along one axis until its own position passes `target`, one input per tick; returns the last seq sent. */
export const walkTo = async (client: TesseraClient, axis: Axis, target: number, onStep?: () => void | Promise<void>) => {
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

export const stopAt = async (client: TesseraClient) => {
  const seq = client.sendInput(0, 0, 0)
  await waitFor("the stop to be acked", () => client.lastAckedSeq >= seq, 10_000)
}

/** A path across one boundary: walk along `axis` over 0, in the lane where the other axis is `lane`. */
export interface Crossing {
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
export const walkAcross = async (
  gatewayUrl: string,
  connect: (id: string) => Promise<TesseraClient>,
  crossing: Crossing,
  cleanup: (stop: () => Promise<unknown>) => void
) => {
  const { axis, lane } = crossing
  const west = await connect("ow-west")
  const east = await connect("ow-east")
  cleanup(() => west.close().catch(() => {}))
  cleanup(() => east.close().catch(() => {}))
  const w = await west.join("frontier")
  await east.join("frontier")
  expect(w.worldId).toBe("frontier.world")
  await waitFor("own entities", () => own(west) !== undefined && own(east) !== undefined)
  // Velocity persists until the next input: each walker stops before the other moves.
  await walkTo(west, axis, -14)
  if (lane !== undefined) await walkTo(west, other(axis), lane)
  await stopAt(west)
  await walkTo(east, axis, 3)
  if (lane !== undefined) await walkTo(east, other(axis), lane)
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

/**
 * What every border walk must show: E saw W through a ghost before W crossed, the audits
 * (more than 5) found one authority per entity all along, W's acks never went back and
 * reached its last input, and W keeps playing in its new region.
 */
export const expectCleanCrossing = async (result: Awaited<ReturnType<typeof walkAcross>>, ghostWhat: string) => {
  expect(result.seenAt, ghostWhat).toBeDefined()
  expect(result.seenAt!).toBeLessThan(0)
  expect(result.audits).toBeGreaterThan(5)
  expect(result.violations).toEqual([])
  expect(result.after.violations).toEqual([])
  expect(result.after.entities).toBe(2)
  for (let i = 1; i < result.acks.length; i++) expect(result.acks[i]!).toBeGreaterThanOrEqual(result.acks[i - 1]!)
  expect(result.west.lastAckedSeq).toBe(result.lastSeq)
  const seq = result.west.sendInput(0, 0, 0)
  await waitFor("acks from the new region", () => result.west.lastAckedSeq >= seq, 5_000)
}
