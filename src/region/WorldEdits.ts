import type { WorldEditEntry } from "../protocol/Messages.js"
import { WORLD_EDITS_PER_FRAME } from "../protocol/Messages.js"
import { ErrorCode } from "../protocol/Opcodes.js"
import { type Box, contains } from "./mesh/MeshGeometry.js"

/**
 * World modifications of one open-world region, free of Effect and IO: the
 * current value of every key whose latest delta lies in the region's box
 * (loaded from storage at activation), the edits accepted but not stored yet
 * (the write-behind queue), and the rules an edit must pass.
 *
 * An edit is live (published to the players near it) once it is stored, with
 * the world's seq; the region's own view has it from the moment it is accepted.
 */

/** What a player asks for: key `key` gets `value` at (x, y, z), or is removed (null). */
export interface WorldEditRequest {
  readonly key: string
  readonly x: number
  readonly y: number
  readonly z: number
  readonly value: string | null
}

/** A key's current state in a region. seq 0: accepted, not stored yet. */
export interface WorldEditState {
  readonly key: string
  readonly x: number
  readonly y: number
  readonly z: number
  readonly value: string
  seq: number
}

/** An accepted edit waiting for storage. */
export interface PendingEdit extends WorldEditRequest {
  /** Epoch milliseconds of acceptance. */
  readonly at: number
}

/** An edit with the seq storage gave it, ready to publish. */
export interface StoredEdit extends PendingEdit {
  readonly seq: number
}

export type WorldEditVerdict =
  | { readonly ok: true }
  | { readonly ok: false; readonly code: ErrorCode; readonly message: string }

const refuse = (code: ErrorCode, message: string): WorldEditVerdict => ({ ok: false, code, message })
const OK: WorldEditVerdict = { ok: true }

export const OUT_OF_REACH = "that spot is out of reach; move closer"
export const NEIGHBOUR_SPOT = "that spot belongs to a neighbouring region; move closer"

/**
 * Whether a player at `at` may edit `edit` in a region of box `box`: within
 * `reach` metres (Euclidean) of the player, and inside the region's box (the
 * region owns its box's edits; world `world` closes the box's faces on the
 * world's max faces, as everywhere in the mesh). A spot across the border is
 * refused even when in reach: the player edits it once it stands in that region.
 */
export const checkEdit = (
  edit: WorldEditRequest,
  at: { readonly x: number; readonly y: number; readonly z: number },
  reach: number,
  box: Box,
  world: Box
): WorldEditVerdict => {
  const dx = edit.x - at.x
  const dy = edit.y - at.y
  const dz = edit.z - at.z
  // Written so NaN fails too (the gateway already refuses non-finite positions).
  if (!(dx * dx + dy * dy + dz * dz <= reach * reach)) {
    return refuse(ErrorCode.EditRejected, `${OUT_OF_REACH} (at most ${reach} m away)`)
  }
  if (!contains(box, edit, world)) return refuse(ErrorCode.EditRejected, NEIGHBOUR_SPOT)
  return OK
}

/** The wire form of a key's state. */
export const entryOf = (s: { key: string; x: number; y: number; z: number; value: string | null; seq: number }): WorldEditEntry => [
  s.key,
  s.x,
  s.y,
  s.z,
  s.value,
  s.seq
]

/** Cuts entries into frames of at most `size` (WORLD_EDITS_PER_FRAME); none for none. */
export const chunk = <A>(items: ReadonlyArray<A>, size: number = WORLD_EDITS_PER_FRAME): Array<Array<A>> => {
  const out: Array<Array<A>> = []
  const n = Math.max(1, Math.floor(size))
  for (let i = 0; i < items.length; i += n) out.push(items.slice(i, i + n))
  return out
}

export class RegionWorldEdits {
  /** key -> current state (removed keys are absent). */
  readonly current = new Map<string, WorldEditState>()
  /** Accepted, not handed to storage yet (oldest first). */
  private pending: Array<PendingEdit> = []
  /** Handed to storage, not confirmed yet. */
  private flight: ReadonlyArray<PendingEdit> = []

  /** True when an edit of `key` is accepted but not stored (it is newer than anything storage has). */
  private unsaved(key: string): boolean {
    return this.pending.some((p) => p.key === key) || this.flight.some((p) => p.key === key)
  }

  /**
   * Merges loaded deltas (latest per key; null value = removed): a key's
   * state is replaced only by a higher seq, and never while an edit of the
   * key waits for storage (the region's edit is newer than anything stored).
   */
  load(deltas: ReadonlyArray<{ key: string; x: number; y: number; z: number; value: string | null; seq: number }>): void {
    for (const d of deltas) {
      const held = this.current.get(d.key)
      if (held !== undefined && held.seq >= d.seq) continue
      if (this.unsaved(d.key)) continue
      if (d.value === null) this.current.delete(d.key)
      else this.current.set(d.key, { key: d.key, x: d.x, y: d.y, z: d.z, value: d.value, seq: d.seq })
    }
  }

  /** Applies an accepted edit to the region's view and queues it for storage. */
  accept(edit: WorldEditRequest, at: number): void {
    if (edit.value === null) this.current.delete(edit.key)
    else this.current.set(edit.key, { key: edit.key, x: edit.x, y: edit.y, z: edit.z, value: edit.value, seq: 0 })
    this.pending.push({ key: edit.key, x: edit.x, y: edit.y, z: edit.z, value: edit.value, at })
  }

  /** Edits not stored yet (queued or being written). */
  get pendingCount(): number {
    return this.pending.length + this.flight.length
  }

  /** Takes every queued edit (oldest first) for one append; undefined while one is being written. */
  drain(): ReadonlyArray<PendingEdit> | undefined {
    if (this.flight.length > 0 || this.pending.length === 0) return undefined
    this.flight = this.pending
    this.pending = []
    return this.flight
  }

  /** The append failed: the batch goes back in front of what was accepted meanwhile, in order. */
  restore(): void {
    this.pending = this.flight.concat(this.pending)
    this.flight = []
  }

  /**
   * The append stored the drained batch with consecutive seqs ending at
   * `lastSeq`: keys still holding an edit of it take its seq. Returns the
   * stored edits, in order.
   */
  stored(lastSeq: number): Array<StoredEdit> {
    const batch = this.flight
    this.flight = []
    const first = lastSeq - batch.length + 1
    const out: Array<StoredEdit> = new Array(batch.length)
    // Only the last edit of a key in the batch can be the one its state still holds.
    const lastOfKey = new Map<string, number>()
    for (let i = 0; i < batch.length; i++) lastOfKey.set(batch[i]!.key, i)
    for (let i = 0; i < batch.length; i++) {
      const edit = batch[i]!
      const seq = first + i
      out[i] = { ...edit, seq }
      if (lastOfKey.get(edit.key) !== i || edit.value === null) continue
      if (this.pending.some((p) => p.key === edit.key)) continue
      const held = this.current.get(edit.key)
      if (held !== undefined && held.seq === 0) held.seq = seq
    }
    return out
  }

  /** The region's current edits, oldest stored first, unstored (seq 0) last. */
  entries(): Array<WorldEditEntry> {
    const stored: Array<WorldEditState> = []
    const unstored: Array<WorldEditState> = []
    for (const s of this.current.values()) (s.seq === 0 ? unstored : stored).push(s)
    stored.sort((a, b) => a.seq - b.seq)
    return stored.concat(unstored).map(entryOf)
  }
}
