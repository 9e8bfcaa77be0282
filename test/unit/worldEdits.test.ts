import { describe, expect, it } from "vitest"
import { WorldEditsView, worldOfRegion } from "../../src/client/WorldEditsView.js"
import { WORLD_EDITS_PER_FRAME } from "../../src/protocol/Messages.js"
import { ErrorCode } from "../../src/protocol/Opcodes.js"
import type { Box } from "../../src/region/mesh/MeshGeometry.js"
import { checkEdit, chunk, NEIGHBOUR_SPOT, RegionWorldEdits } from "../../src/region/WorldEdits.js"

const world: Box = { minX: -64, minY: -32, minZ: -64, maxX: 64, maxY: 32, maxZ: 64 }
/** The region x in [0, 64), z in [0, 64): its max faces lie on the world's. */
const box: Box = { minX: 0, minY: -32, minZ: 0, maxX: 64, maxY: 32, maxZ: 64 }
const at = { x: 2, y: 0, z: 2 }
const edit = (key: string, x: number, y: number, z: number, value: string | null = "v") => ({ key, x, y, z, value })

describe("checkEdit", () => {
  it.each([
    ["the player's own spot", edit("k", 2, 0, 2), true],
    ["exactly at reach", edit("k", 10, 0, 2), true],
    ["just past reach", edit("k", 10.001, 0, 2), false],
    ["in reach diagonally", edit("k", 6, 4, 6), true],
    ["out of reach diagonally", edit("k", 7, 4, 7), false],
    ["on the region's min face (inside, half-open)", edit("k", 0, 0, 2), true],
    ["across the min face, in reach", edit("k", -0.5, 0, 2), false],
    ["NaN", edit("k", Number.NaN, 0, 2), false]
  ] as const)("%s", (_name, e, ok) => {
    expect(checkEdit(e, at, 8, box, world).ok).toBe(ok)
  })

  it("names the reason: out of reach, or a neighbour's spot", () => {
    expect(checkEdit(edit("k", 30, 0, 2), at, 8, box, world)).toMatchObject({
      ok: false,
      code: ErrorCode.EditRejected,
      message: expect.stringContaining("out of reach")
    })
    expect(checkEdit(edit("k", -1, 0, 2), at, 8, box, world)).toEqual({
      ok: false,
      code: ErrorCode.EditRejected,
      message: NEIGHBOUR_SPOT
    })
  })

  it("the world's max face belongs to the region touching it", () => {
    expect(checkEdit(edit("k", 64, 0, 60), { x: 60, y: 0, z: 60 }, 8, box, world).ok).toBe(true)
    const inner: Box = { ...box, maxX: 32 }
    expect(checkEdit(edit("k", 32, 0, 30), { x: 30, y: 0, z: 30 }, 8, inner, world).ok).toBe(false)
  })
})

describe("chunk", () => {
  it("cuts into frames of at most the limit", () => {
    expect(chunk([])).toEqual([])
    expect(chunk([1, 2, 3], 2)).toEqual([[1, 2], [3]])
    const parts = chunk(Array.from({ length: 450 }, (_, i) => i))
    expect(parts.map((p) => p.length)).toEqual([WORLD_EDITS_PER_FRAME, WORLD_EDITS_PER_FRAME, 50])
  })
})

describe("RegionWorldEdits", () => {
  it("loads the latest delta per key (higher seq wins, null removes)", () => {
    const edits = new RegionWorldEdits()
    edits.load([
      { key: "a", x: 1, y: 0, z: 1, value: "one", seq: 3 },
      { key: "b", x: 2, y: 0, z: 2, value: "two", seq: 4 }
    ])
    edits.load([
      { key: "a", x: 1, y: 0, z: 1, value: "old", seq: 2 },
      { key: "b", x: 2, y: 0, z: 2, value: null, seq: 5 }
    ])
    expect(edits.entries()).toEqual([["a", 1, 0, 1, "one", 3]])
  })

  it("accepted edits are seen at once (seq 0), queued, and take their seqs once stored", () => {
    const edits = new RegionWorldEdits()
    edits.load([{ key: "a", x: 1, y: 0, z: 1, value: "one", seq: 3 }])
    edits.accept(edit("b", 2, 0, 2, "two"), 1000)
    edits.accept(edit("a", 1, 0, 1, null), 1001)
    edits.accept(edit("b", 2, 0, 2, "three"), 1002)
    expect(edits.entries()).toEqual([["b", 2, 0, 2, "three", 0]])
    expect(edits.pendingCount).toBe(3)
    const batch = edits.drain()!
    expect(batch.map((e) => [e.key, e.value])).toEqual([["b", "two"], ["a", null], ["b", "three"]])
    expect(edits.drain()).toBeUndefined() // one append at a time
    const stored = edits.stored(12)
    expect(stored.map((e) => [e.key, e.value, e.seq])).toEqual([["b", "two", 10], ["a", null, 11], ["b", "three", 12]])
    expect(edits.entries()).toEqual([["b", 2, 0, 2, "three", 12]])
    expect(edits.pendingCount).toBe(0)
  })

  it("a failed append keeps the edits, in order, in front of newer ones", () => {
    const edits = new RegionWorldEdits()
    edits.accept(edit("a", 0, 0, 0, "1"), 1)
    edits.drain()
    edits.accept(edit("b", 0, 0, 0, "2"), 2)
    edits.restore()
    expect(edits.pendingCount).toBe(2)
    expect(edits.drain()!.map((e) => e.key)).toEqual(["a", "b"])
  })

  it("an edit accepted while its key's older edit is being written keeps seq 0 until its own append", () => {
    const edits = new RegionWorldEdits()
    edits.accept(edit("a", 0, 0, 0, "1"), 1)
    edits.drain()
    edits.accept(edit("a", 0, 0, 0, "2"), 2)
    edits.stored(5)
    expect(edits.entries()).toEqual([["a", 0, 0, 0, "2", 0]])
    edits.drain()
    edits.stored(6)
    expect(edits.entries()).toEqual([["a", 0, 0, 0, "2", 6]])
  })

  it("a (re)load never overrides an edit not stored yet", () => {
    const edits = new RegionWorldEdits()
    edits.accept(edit("a", 0, 0, 0, null), 1)
    edits.drain() // being written
    edits.load([{ key: "a", x: 0, y: 0, z: 0, value: "stale", seq: 9 }])
    expect(edits.entries()).toEqual([])
  })
})

describe("WorldEditsView (client)", () => {
  const region = "frontier.world/0/1/0/1"

  it("higher seq wins, null removes, an older value after a removal is ignored", () => {
    const view = new WorldEditsView()
    expect(view.apply(region, [["a", 1, 0, 1, "one", 5], ["b", 2, 0, 2, "two", 6]])).toHaveLength(2)
    expect(view.apply(region, [["a", 1, 0, 1, "older", 4]])).toEqual([])
    expect(view.edits.get("a")).toEqual({ x: 1, y: 0, z: 1, value: "one", seq: 5 })
    view.apply(region, [["b", 2, 0, 2, null, 7]])
    expect(view.edits.has("b")).toBe(false)
    expect(view.apply(region, [["b", 2, 0, 2, "two", 6]])).toEqual([])
    expect(view.edits.has("b")).toBe(false)
    view.apply(region, [["b", 3, 0, 3, "back", 8]])
    expect(view.edits.get("b")?.value).toBe("back")
  })

  it("an unstored edit (seq 0) applies, and the stored one replaces it", () => {
    const view = new WorldEditsView()
    view.apply(region, [["a", 1, 0, 1, "one", 5]])
    view.apply(region, [["a", 1, 0, 1, "two", 0]])
    expect(view.edits.get("a")?.value).toBe("two")
    view.apply(region, [["a", 1, 0, 1, "two", 9]])
    expect(view.edits.get("a")?.seq).toBe(9)
  })

  it("skips malformed entries; another world starts afresh", () => {
    const view = new WorldEditsView()
    view.apply(region, [["a", 1, 0, 1, "one", 5], ["bad"], [1, 2, 3, 4, 5, 6], ["c", 0, 0, 0, 7, 1]])
    expect([...view.edits.keys()]).toEqual(["a"])
    view.apply("other.world/0/0/0/0", [["z", 0, 0, 0, "z", 1]])
    expect([...view.edits.keys()]).toEqual(["z"])
    expect(worldOfRegion(region)).toBe("frontier.world")
    expect(worldOfRegion("arena.1")).toBe("arena.1")
  })
})
