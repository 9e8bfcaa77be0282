/**
 * The single-authority invariant, checked from the outside (a debug and test
 * facility): every entity is simulated by exactly one region.
 *
 * Authority is fenced by epochs: each handoff increments the entity's epoch.
 * A region that handed an entity over may still claim it at the old epoch
 * until it hears the ack; that is fine, because the newer epoch wins
 * everywhere. So the invariant is "exactly one claim at the highest epoch".
 */

export interface AuthorityClaim {
  readonly regionId: string
  readonly entityId: number
  readonly epoch: number
}

export interface AuditViolation {
  readonly entityId: number
  /** `none`: an expected entity nobody claims; `duplicate`: several regions claim the same highest epoch. */
  readonly kind: "none" | "duplicate"
  /** The regions claiming the highest epoch, sorted (empty for `none`). */
  readonly regions: ReadonlyArray<string>
  /** The highest epoch claimed; -1 for `none`. */
  readonly epoch: number
}

interface Top {
  epoch: number
  regions: Set<string>
}

/**
 * For every entity in `expected` (all entities that must exist) and every
 * claimed entity: exactly one claim at its highest epoch. The same region
 * repeating a claim is one claim. Violations come sorted by entity id.
 */
export const audit = (claims: Iterable<AuthorityClaim>, expected?: Iterable<number>): ReadonlyArray<AuditViolation> => {
  const top = new Map<number, Top>()
  for (const claim of claims) {
    const t = top.get(claim.entityId)
    if (t === undefined || claim.epoch > t.epoch) {
      top.set(claim.entityId, { epoch: claim.epoch, regions: new Set([claim.regionId]) })
    } else if (claim.epoch === t.epoch) {
      t.regions.add(claim.regionId)
    }
  }
  const out: Array<AuditViolation> = []
  for (const [entityId, t] of top) {
    if (t.regions.size > 1) out.push({ entityId, kind: "duplicate", regions: [...t.regions].sort(), epoch: t.epoch })
  }
  if (expected !== undefined) {
    const seen = new Set<number>()
    for (const entityId of expected) {
      if (!top.has(entityId) && !seen.has(entityId)) out.push({ entityId, kind: "none", regions: [], epoch: -1 })
      seen.add(entityId)
    }
  }
  return out.sort((a, b) => a.entityId - b.entityId)
}
