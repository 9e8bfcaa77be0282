import { childrenOf, keyString, parentOf, type RegionKey, regionIdOf } from "./MeshGeometry.js"
import type { RegionDirectory } from "./RegionDirectory.js"

/** When an open world's regions split and merge. */
export interface MeshPolicy {
  /** A region with more players than this splits. */
  readonly splitPlayers: number
  /** A complete set of 8 siblings with fewer players than this in total merges. */
  readonly mergePlayers: number
  /** A region whose tick p99 exceeds this splits too (crowds are not the only cost). */
  readonly tickBudgetMs: number
  /** A region that split or merged this recently is not merged. */
  readonly cooldownMs: number
}

export interface RegionLoad {
  readonly regionId: string
  readonly players: number
  readonly tickP99Ms: number
  /**
   * The region reported before but its reports stopped without a last
   * "stopped" report (lost messages, a dead runner): its load is unknown, so
   * no merge may count it as empty and no split is decided on it.
   */
  readonly stale?: boolean
}

export type MeshDecision =
  | { readonly _tag: "Split"; readonly key: RegionKey; readonly reason: string }
  | { readonly _tag: "Merge"; readonly parent: RegionKey; readonly reason: string }

/** A message for an unusable policy, or undefined. */
export const validatePolicy = (policy: MeshPolicy): string | undefined => {
  if (!(Number.isFinite(policy.splitPlayers) && policy.splitPlayers >= 1)) {
    return `mesh splitPlayers must be a number >= 1, got ${policy.splitPlayers}`
  }
  if (!(Number.isFinite(policy.mergePlayers) && policy.mergePlayers >= 0)) {
    return `mesh mergePlayers must be a number >= 0, got ${policy.mergePlayers}`
  }
  // A merged region must not be over the split threshold the moment it exists.
  if (policy.mergePlayers > policy.splitPlayers) {
    return `mesh mergePlayers (${policy.mergePlayers}) must not exceed splitPlayers (${policy.splitPlayers})`
  }
  if (!(policy.tickBudgetMs > 0)) return `mesh tickBudgetMs must be > 0, got ${policy.tickBudgetMs}`
  if (!(Number.isFinite(policy.cooldownMs) && policy.cooldownMs >= 0)) {
    return `mesh cooldownMs must be a finite number >= 0, got ${policy.cooldownMs}`
  }
  return undefined
}

const round1 = (v: number): string => (Math.round(v * 10) / 10).toString()

/**
 * Regions over splitPlayers (or over the tick budget) split if they can;
 * complete sibling sets whose total players < mergePlayers merge (never a set
 * that includes a region that just split/merged within cooldownMs, and never
 * merge what would immediately split again: total must be < splitPlayers too).
 *
 * A leaf without a load report counts as 0 players (a region never
 * activated reports nothing, and one that stops ticking sends a last report
 * of 0); a stale load (reports stopped without that last one) blocks the merge
 * of its siblings, since its players are unknown. `lastChangeAt` is keyed by region id; the cooldown looks
 * at the 8 children and the parent, so the caller may record a change under
 * either. Splits ignore the cooldown: an overloaded region needs relief now,
 * and the merge cooldown alone already bounds any split/merge cycle to one per
 * cooldownMs. One level per call: a merged parent is considered for a further
 * merge on the next round, with its own load report.
 *
 * Deterministic: splits first, then merges, each in canonical key order.
 */
export const decide = (
  directory: RegionDirectory,
  loads: ReadonlyMap<string, RegionLoad>,
  policy: MeshPolicy,
  lastChangeAt: ReadonlyMap<string, number>,
  now: number
): ReadonlyArray<MeshDecision> => {
  const worldId = directory.worldId
  const splits: Array<MeshDecision> = []
  const splitting = new Set<string>()
  const parents = new Map<string, RegionKey>()
  for (const key of directory.leaves()) {
    const found = loads.get(regionIdOf(worldId, key))
    const load = found?.stale === true ? undefined : found
    const players = load?.players ?? 0
    const tick = load?.tickP99Ms ?? 0
    if ((players > policy.splitPlayers || tick > policy.tickBudgetMs) && directory.canSplit(key)) {
      const reason = players > policy.splitPlayers
        ? `${players} players > splitPlayers ${policy.splitPlayers}`
        : `tick p99 ${round1(tick)} ms > budget ${policy.tickBudgetMs} ms`
      splits.push({ _tag: "Split", key, reason })
      splitting.add(keyString(key))
    }
    const parent = parentOf(key)
    if (parent !== undefined) parents.set(keyString(parent), parent)
  }

  const recent = (regionId: string): boolean => {
    const at = lastChangeAt.get(regionId)
    return at !== undefined && now - at < policy.cooldownMs
  }
  const merges: Array<MeshDecision> = []
  // Leaves come in canonical order, so parents were first seen in canonical order too.
  for (const parent of parents.values()) {
    if (!directory.canMerge(parent)) continue
    if (recent(regionIdOf(worldId, parent))) continue
    let total = 0
    let blocked = false
    for (const child of childrenOf(parent)) {
      const id = regionIdOf(worldId, child)
      const load = loads.get(id)
      if (splitting.has(keyString(child)) || recent(id) || load?.stale === true) {
        blocked = true
        break
      }
      total += load?.players ?? 0
    }
    if (blocked || total >= policy.mergePlayers || total >= policy.splitPlayers) continue
    merges.push({ _tag: "Merge", parent, reason: `8 children hold ${total} players < mergePlayers ${policy.mergePlayers}` })
  }
  return [...splits, ...merges]
}
