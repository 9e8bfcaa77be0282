import { encode } from "../protocol/Codec.js"
import { SNAPSHOT_RECORD_BYTES, writeSnapshotRecord } from "../protocol/Messages.js"
import { ServerOp } from "../protocol/Opcodes.js"
import type { InterestGrid } from "./InterestGrid.js"

const EMPTY_BLOB = new Uint8Array(0)
const INITIAL_SCRATCH_BYTES = 64 * SNAPSHOT_RECORD_BYTES

/**
 * Encodes a region's tick as ONE snapshot frame per interest cell (never one
 * per player):
 *   encode([ServerOp.Snapshot, regionId, cellKey, tick, records])
 * where `records` packs SNAPSHOT_RECORD_BYTES per member entity
 * (writeSnapshotRecord; lastSeq doubles as the owner's input ack).
 *
 * A cell that had members at the previous `encodeTick` and has none now gets
 * exactly one frame with an empty `records` blob (clients drop that cell's
 * entities), then is forgotten.
 *
 * Per-tick allocation: records are written into one reused scratch buffer
 * (grown by doubling, never shrunk) and the frame tuple passed to `encode` is
 * reused, so the allocations are per cell, not per entity: the frame bytes
 * themselves (msgpackr copies the used part of the scratch into a slice of
 * its pooled output slab; the returned Buffer stays valid — later encodes
 * never overwrite it — so `emit` may keep or queue it) plus a small
 * subarray view of the scratch.
 *
 * Call after the tick's `InterestGrid.place` pass; `emit` must not modify the grid.
 */
export class CellSnapshotEncoder {
  readonly regionId: string
  private scratch = new Uint8Array(INITIAL_SCRATCH_BYTES)
  private view = new DataView(this.scratch.buffer)
  /** Reused frame tuple: [op, regionId, cellKey, tick, records]. */
  private readonly frame: [number, string, string, number, Uint8Array]
  /** Cells that got a non-empty frame at the previous / current tick (swapped each tick). */
  private previous = new Set<string>()
  private current = new Set<string>()

  constructor(regionId: string) {
    this.regionId = regionId
    this.frame = [ServerOp.Snapshot, regionId, "", 0, EMPTY_BLOB]
  }

  /** Emits one frame per non-empty cell and per just-emptied cell; returns the number of frames. */
  encodeTick(grid: InterestGrid, tick: number, emit: (cellKey: string, frame: Uint8Array) => void): number {
    const frame = this.frame
    const previous = this.previous
    const current = this.current
    frame[3] = tick
    let frames = 0
    for (const [key, members] of grid.cells()) {
      const n = members.length
      if (n === 0) continue
      const used = n * SNAPSHOT_RECORD_BYTES
      if (used > this.scratch.byteLength) this.growScratch(used)
      const view = this.view
      for (let i = 0, o = 0; i < n; i++, o += SNAPSHOT_RECORD_BYTES) {
        const e = members[i]!
        const lastSeq = e.lastSeq
        writeSnapshotRecord(view, o, e.id, e.x, e.y, e.z, lastSeq > 0 ? lastSeq : 0)
      }
      frame[2] = key
      frame[4] = this.scratch.subarray(0, used)
      emit(key, encode(frame))
      frames++
      current.add(key)
      previous.delete(key)
    }
    if (previous.size > 0) {
      frame[4] = EMPTY_BLOB
      for (const key of previous) {
        frame[2] = key
        emit(key, encode(frame))
        frames++
      }
      previous.clear()
    }
    frame[4] = EMPTY_BLOB // do not pin the scratch through the tuple between ticks
    this.previous = current
    this.current = previous
    return frames
  }

  private growScratch(needed: number): void {
    let size = this.scratch.byteLength * 2
    while (size < needed) size *= 2
    this.scratch = new Uint8Array(size)
    this.view = new DataView(this.scratch.buffer)
  }
}
