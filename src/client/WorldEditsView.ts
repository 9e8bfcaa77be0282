/**
 * The client's view of an open world's modifications, built from WorldEdits
 * frames: per key the entry with the highest seq; a null value removes the
 * key (its seq is remembered, so an older value arriving later is ignored).
 * seq 0 marks an edit the region accepted but had not stored when it sent its
 * state: it counts as the region's latest word on the key until a stored seq
 * arrives. Imports nothing from Node.
 */

/** One key's current modification. */
export interface WorldEdit {
  readonly x: number
  readonly y: number
  readonly z: number
  readonly value: string
  readonly seq: number
}

/** A change applied to the view (value null: the key was removed). */
export interface WorldEditChange {
  readonly key: string
  readonly x: number
  readonly y: number
  readonly z: number
  readonly value: string | null
  readonly seq: number
  readonly regionId: string
}

/** The world of a region id `${worldId}/${level}/${x}/${y}/${z}` (the id itself for an instance). */
export const worldOfRegion = (regionId: string): string => {
  const slash = regionId.indexOf("/")
  return slash < 0 ? regionId : regionId.slice(0, slash)
}

export class WorldEditsView {
  readonly edits = new Map<string, WorldEdit>()
  /** key -> seq of its removal. */
  private readonly removed = new Map<string, number>()
  /** The world the view describes (undefined: none yet). */
  worldId: string | undefined = undefined

  reset(worldId?: string): void {
    this.edits.clear()
    this.removed.clear()
    this.worldId = worldId
  }

  /**
   * Applies one frame's entries (malformed ones are skipped); returns what
   * changed. Entries of another world than the view's start the view afresh.
   */
  apply(regionId: string, entries: ReadonlyArray<unknown>): Array<WorldEditChange> {
    const worldId = worldOfRegion(regionId)
    if (worldId !== this.worldId) this.reset(worldId)
    const changes: Array<WorldEditChange> = []
    for (const e of entries) {
      if (!Array.isArray(e) || e.length < 6) continue
      const [key, x, y, z, value, seq] = e as Array<unknown>
      if (
        typeof key !== "string" || typeof x !== "number" || typeof y !== "number" || typeof z !== "number" ||
        typeof seq !== "number" || (value !== null && typeof value !== "string")
      ) continue
      if (seq !== 0) {
        const held = this.edits.get(key)?.seq ?? this.removed.get(key)
        if (held !== undefined && held !== 0 && held > seq) continue
      }
      if (value === null) {
        this.edits.delete(key)
        this.removed.set(key, seq)
      } else {
        this.removed.delete(key)
        this.edits.set(key, { x, y, z, value, seq })
      }
      changes.push({ key, x, y, z, value, seq, regionId })
    }
    return changes
  }
}
