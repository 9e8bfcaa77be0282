import { SNAPSHOT_RECORD_BYTES } from "../protocol/Messages.js"
import { ServerOp } from "../protocol/Opcodes.js"

/**
 * The client's decoded view of the world, maintained from per-cell snapshots,
 * and the input-ack bookkeeping. Pure: no IO, no timers, no clocks (callers
 * pass `now`), so it is unit-tested table-driven with real snapshot blobs.
 *
 * Merge rules:
 * - A cell's snapshot is that cell's full set of entities: it replaces what
 *   the cell said before (an empty blob empties the cell).
 * - The world is the union of all cells (of all regions). An entity listed
 *   by several cells (overlap zones, a move between cells within a tick)
 *   stays while at least one cell lists it; its values are the last seen.
 * - A cell not updated while its region advanced more than STALE_TICKS
 *   times (new tick numbers seen; skipped tick numbers do not count) is stale
 *   (the player moved away, or the server sent the cell's emptying frame and
 *   forgot it): it is dropped with the entities only it listed. A region
 *   that stopped sending while others keep advancing is dropped the same way.
 *   A region whose tick jumps back by more than STALE_TICKS restarted: its
 *   old cells are dropped.
 *
 * Steady-state work per snapshot is one DataView and in-place updates; no
 * per-entity allocation except for entities seen for the first time.
 */

/** A cell not updated for more than this many ticks while others are is stale. */
export const STALE_TICKS = 3

export interface EntityView {
  readonly x: number
  readonly y: number
  readonly z: number
  /** The last input seq its region processed for this entity (its owner's ack). */
  readonly lastSeq: number
}

interface EntitySlot {
  x: number
  y: number
  z: number
  lastSeq: number
  /** Number of cells whose current set lists this entity. */
  refs: number
  /** Stamp of the apply in which this entity was found in the cell's previous set. */
  inOld: number
  /** Stamp of the apply in which this entity was found in the cell's new set. */
  inNew: number
}

interface CellSlot {
  readonly key: string
  tick: number
  /** The region's `advances` when this cell was last updated. */
  seen: number
  ids: Array<number>
  spare: Array<number>
}

interface RegionSlot {
  readonly id: string
  maxTick: number
  /** Number of times a new (higher) tick was seen. */
  advances: number
  /** Advances of other regions since this region last advanced. */
  missed: number
  readonly cells: Map<string, CellSlot>
}

export class WorldView {
  private readonly slots = new Map<number, EntitySlot>()
  private readonly regions = new Map<string, RegionSlot>()
  private stamp = 0

  /** Every entity currently in view (union of all live cells). Values are updated in place. */
  readonly entities: ReadonlyMap<number, EntityView> = this.slots

  /** The player's own entity; its records carry the ack of the player's inputs. */
  ownEntityId: number | undefined = undefined
  /** Highest own `lastSeq` seen since the last reset (0 before any). */
  ownLastSeq = 0
  /** Tick of the most recently applied snapshot. */
  lastTick = -1

  /** Forgets everything (a new world was joined, or the player left). */
  reset(ownEntityId?: number): void {
    this.slots.clear()
    this.regions.clear()
    this.ownEntityId = ownEntityId
    this.ownLastSeq = 0
    this.lastTick = -1
  }

  get cellCount(): number {
    let n = 0
    for (const region of this.regions.values()) n += region.cells.size
    return n
  }

  get regionCount(): number {
    return this.regions.size
  }

  /** Whether a cell of a region is currently part of the view. */
  hasCell(regionId: string, cellKey: string): boolean {
    return this.regions.get(regionId)?.cells.has(cellKey) ?? false
  }

  /**
   * Applies one cell's snapshot. Returns the own entity's `lastSeq` found in
   * this blob, or -1 if the own entity is not in it.
   */
  apply(regionId: string, cellKey: string, tick: number, entities: Uint8Array): number {
    let region = this.regions.get(regionId)
    if (region !== undefined && tick + STALE_TICKS < region.maxTick) {
      // The region's clock went back: it restarted. Start it over.
      this.dropRegion(region)
      region = undefined
    }
    let advanced = false
    if (region === undefined) {
      region = { id: regionId, maxTick: tick, advances: 0, missed: 0, cells: new Map() }
      this.regions.set(regionId, region)
      advanced = true
    } else if (tick > region.maxTick) {
      region.maxTick = tick
      region.advances++
      advanced = true
    }

    let cell = region.cells.get(cellKey)
    if (cell === undefined) {
      cell = { key: cellKey, tick, seen: 0, ids: [], spare: [] }
      region.cells.set(cellKey, cell)
    }
    cell.seen = region.advances
    const own = this.replaceCell(cell, tick, entities)
    this.lastTick = tick

    if (advanced) this.onRegionAdvanced(region)
    return own
  }

  private replaceCell(cell: CellSlot, tick: number, bytes: Uint8Array): number {
    const slots = this.slots
    const stamp = ++this.stamp
    const old = cell.ids
    for (let i = 0; i < old.length; i++) {
      const e = slots.get(old[i])
      if (e !== undefined) e.inOld = stamp
    }

    const next = cell.spare
    next.length = 0
    const ownId = this.ownEntityId
    let own = -1
    const count = Math.floor(bytes.byteLength / SNAPSHOT_RECORD_BYTES)
    if (count > 0) {
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
      for (let i = 0, o = 0; i < count; i++, o += SNAPSHOT_RECORD_BYTES) {
        const id = view.getUint32(o, true)
        const x = view.getFloat32(o + 4, true)
        const y = view.getFloat32(o + 8, true)
        const z = view.getFloat32(o + 12, true)
        const lastSeq = view.getUint32(o + 16, true)
        let e = slots.get(id)
        if (e === undefined) {
          e = { x, y, z, lastSeq, refs: 0, inOld: 0, inNew: 0 }
          slots.set(id, e)
        } else {
          e.x = x
          e.y = y
          e.z = z
          e.lastSeq = lastSeq
        }
        if (id === ownId && lastSeq > own) own = lastSeq
        if (e.inNew === stamp) continue // listed twice in one blob
        e.inNew = stamp
        if (e.inOld !== stamp) e.refs++
        next.push(id)
      }
    }

    for (let i = 0; i < old.length; i++) {
      const id = old[i]
      const e = slots.get(id)
      if (e !== undefined && e.inNew !== stamp && --e.refs <= 0) slots.delete(id)
    }
    old.length = 0
    cell.spare = old
    cell.ids = next
    cell.tick = tick
    if (own > this.ownLastSeq) this.ownLastSeq = own
    return own
  }

  private onRegionAdvanced(region: RegionSlot): void {
    region.missed = 0
    // Cells of this region left behind by its clock.
    const horizon = region.advances - STALE_TICKS
    for (const cell of region.cells.values()) {
      if (cell.seen < horizon) {
        this.dropCell(cell)
        region.cells.delete(cell.key)
      }
    }
    // Regions that stopped while this one advanced. With k live regions a
    // stale one gains k-1 misses per tick and a live one at most about that
    // between its own advances, so the bound scales with the region count.
    if (this.regions.size > 1) {
      const limit = STALE_TICKS * (this.regions.size - 1)
      for (const other of this.regions.values()) {
        if (other === region) continue
        if (++other.missed > limit) this.dropRegion(other)
      }
    }
  }

  private dropRegion(region: RegionSlot): void {
    for (const cell of region.cells.values()) this.dropCell(cell)
    region.cells.clear()
    this.regions.delete(region.id)
  }

  private dropCell(cell: CellSlot): void {
    const slots = this.slots
    for (let i = 0; i < cell.ids.length; i++) {
      const id = cell.ids[i]
      const e = slots.get(id)
      if (e !== undefined && --e.refs <= 0) slots.delete(id)
    }
    cell.ids.length = 0
  }
}

/**
 * Send times of inputs in a ring indexed by seq, and the newest acked seq.
 * `acked` reports the latency of every newly acked seq still in the ring.
 */
export class AckTracker {
  private readonly times: Float64Array
  private readonly mask: number
  /** Highest seq recorded by `sent`. */
  lastSentSeq = 0
  /** Highest seq acked so far. */
  lastAckedSeq = 0

  constructor(capacity = 1024) {
    let size = 16
    while (size < capacity) size <<= 1
    this.times = new Float64Array(size)
    this.mask = size - 1
  }

  get capacity(): number {
    return this.times.length
  }

  sent(seq: number, now: number): void {
    this.times[seq & this.mask] = now
    if (seq > this.lastSentSeq) this.lastSentSeq = seq
  }

  /** Whether some sent input is not acked yet. */
  get pending(): boolean {
    return this.lastSentSeq > this.lastAckedSeq
  }

  /**
   * Records that the server processed inputs up to `seq`. Returns the latency
   * of `seq` itself (now - its send time), or -1 when nothing new is acked
   * (old ack, or a seq this tracker never sent, e.g. from an earlier client).
   * `onSample` gets the latency of each newly acked seq whose send time is
   * still in the ring, oldest first.
   */
  acked(seq: number, now: number, onSample?: (latencyMs: number) => void): number {
    if (seq <= this.lastAckedSeq || seq > this.lastSentSeq) return -1
    if (onSample !== undefined) {
      const first = Math.max(this.lastAckedSeq + 1, seq - this.times.length + 1)
      for (let s = first; s <= seq; s++) onSample(now - this.times[s & this.mask])
    }
    this.lastAckedSeq = seq
    return now - this.times[seq & this.mask]
  }

  reset(): void {
    this.lastSentSeq = 0
    this.lastAckedSeq = 0
  }
}

/** Where a raw Snapshot frame keeps its entities blob (see locateSnapshotEntities). */
export interface SnapshotLocation {
  tick: number
  offset: number
  length: number
}

/** Whether raw frame bytes start like a Snapshot frame (msgpack fixarray of 5, opcode 103). */
export const isSnapshotFrame = (bytes: Uint8Array): boolean =>
  bytes.length > 1 && bytes[0] === 0x95 && bytes[1] === ServerOp.Snapshot

/**
 * Locates the entities blob of a raw Snapshot frame without decoding it, for
 * clients that count snapshots but do not decode them. Only the exact shape
 * [103, str, str, uint, bin] is recognised; anything else returns false and
 * the caller falls back to the codec. On success `out` holds the tick and
 * the blob's offset/length within `bytes`.
 */
export const locateSnapshotEntities = (bytes: Uint8Array, out: SnapshotLocation): boolean => {
  if (!isSnapshotFrame(bytes)) return false
  let p = 2
  const n = bytes.length
  // two strings: regionId, cellKey
  for (let k = 0; k < 2; k++) {
    if (p >= n) return false
    const b = bytes[p]
    let len: number
    if (b >= 0xa0 && b <= 0xbf) {
      len = b & 0x1f
      p += 1
    } else if (b === 0xd9) {
      if (p + 2 > n) return false
      len = bytes[p + 1]
      p += 2
    } else if (b === 0xda) {
      if (p + 3 > n) return false
      len = (bytes[p + 1] << 8) | bytes[p + 2]
      p += 3
    } else if (b === 0xdb) {
      if (p + 5 > n) return false
      len = ((bytes[p + 1] << 24) >>> 0) + ((bytes[p + 2] << 16) | (bytes[p + 3] << 8) | bytes[p + 4])
      p += 5
    } else return false
    p += len
  }
  // tick: unsigned integer
  if (p >= n) return false
  const t = bytes[p]
  let tick: number
  if (t <= 0x7f) {
    tick = t
    p += 1
  } else if (t === 0xcc) {
    if (p + 2 > n) return false
    tick = bytes[p + 1]
    p += 2
  } else if (t === 0xcd) {
    if (p + 3 > n) return false
    tick = (bytes[p + 1] << 8) | bytes[p + 2]
    p += 3
  } else if (t === 0xce) {
    if (p + 5 > n) return false
    tick = ((bytes[p + 1] << 24) >>> 0) + ((bytes[p + 2] << 16) | (bytes[p + 3] << 8) | bytes[p + 4])
    p += 5
  } else if (t === 0xcf) {
    if (p + 9 > n) return false
    const hi = ((bytes[p + 1] << 24) >>> 0) + ((bytes[p + 2] << 16) | (bytes[p + 3] << 8) | bytes[p + 4])
    const lo = ((bytes[p + 5] << 24) >>> 0) + ((bytes[p + 6] << 16) | (bytes[p + 7] << 8) | bytes[p + 8])
    tick = hi * 0x100000000 + lo
    p += 9
  } else if (t === 0xcb) {
    // msgpackr writes integers above 2^32 as float64
    if (p + 9 > n) return false
    tick = new DataView(bytes.buffer, bytes.byteOffset + p + 1, 8).getFloat64(0)
    if (!Number.isInteger(tick) || tick < 0) return false
    p += 9
  } else return false
  // entities: bin
  if (p >= n) return false
  const b = bytes[p]
  let len: number
  if (b === 0xc4) {
    if (p + 2 > n) return false
    len = bytes[p + 1]
    p += 2
  } else if (b === 0xc5) {
    if (p + 3 > n) return false
    len = (bytes[p + 1] << 8) | bytes[p + 2]
    p += 3
  } else if (b === 0xc6) {
    if (p + 5 > n) return false
    len = ((bytes[p + 1] << 24) >>> 0) + ((bytes[p + 2] << 16) | (bytes[p + 3] << 8) | bytes[p + 4])
    p += 5
  } else return false
  if (p + len !== n) return false
  out.tick = tick
  out.offset = p
  out.length = len
  return true
}
