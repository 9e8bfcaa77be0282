import { describe, expect, it } from "vitest"
import { decode } from "../../src/protocol/Codec.js"
import { readSnapshotRecords, SNAPSHOT_RECORD_BYTES } from "../../src/protocol/Messages.js"
import { ServerOp } from "../../src/protocol/Opcodes.js"
import { CellSnapshotEncoder } from "../../src/region/CellSnapshotEncoder.js"
import { makeSimEntity, type SimEntity } from "../../src/region/GameLogic.js"
import { InterestGrid } from "../../src/region/InterestGrid.js"

interface Emitted {
  readonly key: string
  readonly op: unknown
  readonly regionId: unknown
  readonly cellKey: unknown
  readonly tick: unknown
  readonly records: ReturnType<typeof readSnapshotRecords>
  readonly blobBytes: number
}

const encodeTick = (enc: CellSnapshotEncoder, grid: InterestGrid, tick: number) => {
  const out: Array<Emitted> = []
  const n = enc.encodeTick(grid, tick, (key, frame) => {
    const value = decode(frame) as [number, string, string, number, Uint8Array]
    expect(Array.isArray(value) && value.length === 5).toBe(true)
    const [op, regionId, cellKey, t, blob] = value
    expect(blob).toBeInstanceOf(Uint8Array)
    out.push({ key, op, regionId, cellKey, tick: t, records: readSnapshotRecords(blob), blobBytes: blob.byteLength })
  })
  expect(n).toBe(out.length)
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
}

const entity = (id: number, x: number, y: number, z: number, lastSeq = 0): SimEntity =>
  makeSimEntity(id, `p${id}`, x, y, z, lastSeq)

describe("CellSnapshotEncoder", () => {
  it("emits one frame per non-empty cell with every member's record", () => {
    const grid = new InterestGrid(10)
    const es = [entity(1, 1.5, 2.25, 3, 7), entity(2, 4, 0, 0, 8), entity(3, 20, 0, -10, 9)]
    for (const e of es) grid.place(e)
    const enc = new CellSnapshotEncoder("r-1")
    const frames = encodeTick(enc, grid, 42)
    expect(frames.map((f) => f.key)).toEqual(["0,0,0", "2,0,-1"])
    for (const f of frames) {
      expect(f.op).toBe(ServerOp.Snapshot)
      expect(f.regionId).toBe("r-1")
      expect(f.cellKey).toBe(f.key)
      expect(f.tick).toBe(42)
      expect(f.blobBytes).toBe(f.records.length * SNAPSHOT_RECORD_BYTES)
    }
    expect(frames[0]!.records.sort((a, b) => a.entityId - b.entityId)).toEqual([
      { entityId: 1, x: 1.5, y: 2.25, z: 3, lastSeq: 7 },
      { entityId: 2, x: 4, y: 0, z: 0, lastSeq: 8 }
    ])
    expect(frames[1]!.records).toEqual([{ entityId: 3, x: 20, y: 0, z: -10, lastSeq: 9 }])
  })

  it("emits nothing for an empty grid", () => {
    expect(encodeTick(new CellSnapshotEncoder("r"), new InterestGrid(10), 1)).toEqual([])
  })

  it("sends one empty frame for a cell that emptied, then forgets it", () => {
    const grid = new InterestGrid(10)
    const a = entity(1, 1, 0, 0)
    const b = entity(2, 10, 0, 0)
    grid.place(a)
    grid.place(b)
    const enc = new CellSnapshotEncoder("r")
    expect(encodeTick(enc, grid, 1).map((f) => f.key)).toEqual(["0,0,0", "1,0,0"])

    a.x = 31 // cell 0,0,0 empties
    grid.place(a)
    const t2 = encodeTick(enc, grid, 2)
    expect(t2.map((f) => [f.key, f.records.map((r) => r.entityId)])).toEqual([
      ["0,0,0", []],
      ["1,0,0", [2]],
      ["3,0,0", [1]]
    ])
    expect(t2[0]!.blobBytes).toBe(0)
    expect(t2[0]!.tick).toBe(2)

    const t3 = encodeTick(enc, grid, 3)
    expect(t3.map((f) => f.key)).toEqual(["1,0,0", "3,0,0"])

    grid.remove(1)
    grid.remove(2)
    expect(encodeTick(enc, grid, 4).map((f) => [f.key, f.blobBytes])).toEqual([
      ["1,0,0", 0],
      ["3,0,0", 0]
    ])
    expect(encodeTick(enc, grid, 5)).toEqual([])
  })

  it("a cell that empties and refills in the same tick is just a normal frame", () => {
    const grid = new InterestGrid(10)
    const a = entity(1, 1, 0, 0)
    const b = entity(2, 10, 0, 0)
    grid.place(a)
    grid.place(b)
    const enc = new CellSnapshotEncoder("r")
    encodeTick(enc, grid, 1)
    a.x = 10
    b.x = 1
    grid.place(a)
    grid.place(b)
    expect(encodeTick(enc, grid, 2).map((f) => [f.key, f.records.map((r) => r.entityId)])).toEqual([
      ["0,0,0", [2]],
      ["1,0,0", [1]]
    ])
  })

  it("grows its scratch for a crowded cell and frames stay valid after later ticks", () => {
    const grid = new InterestGrid(1000)
    const es = Array.from({ length: 500 }, (_, i) => entity(i + 1, i, 0, 0, i))
    for (const e of es) grid.place(e)
    const enc = new CellSnapshotEncoder("r")
    const kept: Array<Uint8Array> = []
    for (let t = 0; t < 3; t++) enc.encodeTick(grid, t, (_k, frame) => kept.push(frame))
    for (let t = 0; t < 3; t++) {
      const [, , , tick, blob] = decode(kept[t]!) as [number, string, string, number, Uint8Array]
      expect(tick).toBe(t)
      const recs = readSnapshotRecords(blob)
      expect(recs).toHaveLength(500)
      expect(recs[499]).toEqual({ entityId: 500, x: 499, y: 0, z: 0, lastSeq: 499 })
    }
  })

  it("writes a negative lastSeq as 0, never as 2^32-1", () => {
    const grid = new InterestGrid(10)
    grid.place(entity(1, 0, 0, 0, -1))
    const [f] = encodeTick(new CellSnapshotEncoder("r"), grid, 0)
    expect(f!.records[0]!.lastSeq).toBe(0)
  })
})
