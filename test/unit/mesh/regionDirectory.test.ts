import { describe, expect, it } from "vitest"
import {
  boundsOf,
  clampToWorld,
  contains,
  expand,
  keyString,
  type MeshGeometry,
  parseKeyString,
  type RegionKey,
  sizeAt,
  type Vec3,
  worldBox
} from "../../../src/region/mesh/MeshGeometry.js"
import { partitionError, RegionDirectory } from "../../../src/region/mesh/RegionDirectory.js"

/** 2x1x2 roots of 2 km: x and z span [-2000, 2000], y spans [-1000, 1000]; levels 0..2. */
const g: MeshGeometry = { rootSize: 2000, minSize: 500, overlap: 100, hysteresis: 25, rootsX: 2, rootsY: 1, rootsZ: 2 }
const k = (s: string): RegionKey => parseKeyString(s)!
const v = (x: number, y: number, z: number): Vec3 => ({ x, y, z })
const keys = (ks: ReadonlyArray<RegionKey>) => ks.map(keyString)

/** The directory after splitting the given keys in order. */
const splitDir = (...splits: ReadonlyArray<string>): RegionDirectory => {
  const d = new RegionDirectory(g, "w")
  for (const s of splits) d.split(k(s))
  return d
}

/** Brute force: every leaf whose box holds p under the one membership rule. */
const holders = (d: RegionDirectory, p: Vec3): Array<string> => {
  const q = clampToWorld(g, p)
  return d.leaves().filter((l) => contains(boundsOf(g, l), q, worldBox(g))).map(keyString)
}

describe("construction and partition", () => {
  it("defaults to the root cubes at version 0", () => {
    const d = new RegionDirectory(g, "frontier.1")
    expect(d.version).toBe(0)
    expect(keys(d.leaves())).toEqual(["0/0/0/0", "0/0/0/1", "0/1/0/0", "0/1/0/1"])
    expect(d.leafIds()).toEqual(["frontier.1/0/0/0/0", "frontier.1/0/0/0/1", "frontier.1/0/1/0/0", "frontier.1/0/1/0/1"])
    expect(d.levelCounts()).toEqual({ 0: 4, 1: 0, 2: 0 })
  })

  it.each<[string, ReadonlyArray<string>, RegExp | undefined]>([
    ["the roots", ["0/0/0/0", "0/0/0/1", "0/1/0/0", "0/1/0/1"], undefined],
    [
      "a split root",
      ["0/0/0/0", "0/0/0/1", "0/1/0/0", "1/2/0/2", "1/2/0/3", "1/2/1/2", "1/2/1/3", "1/3/0/2", "1/3/0/3", "1/3/1/2", "1/3/1/3"],
      undefined
    ],
    ["a missing root", ["0/0/0/0", "0/0/0/1", "0/1/0/0"], /0\/1\/0\/1 is not covered/],
    ["nothing at all", [], /is not covered/],
    ["a root and one of its children", ["0/0/0/0", "0/0/0/1", "0/1/0/0", "0/1/0/1", "1/0/0/0"], /overlap/],
    ["a root and a grandchild", ["0/0/0/0", "0/0/0/1", "0/1/0/0", "0/1/0/1", "2/0/0/0"], /overlap/],
    ["a duplicate", ["0/0/0/0", "0/0/0/0", "0/0/0/1", "0/1/0/0", "0/1/0/1"], /listed twice/],
    ["a key outside the world", ["0/0/0/0", "0/0/0/1", "0/1/0/0", "0/1/0/1", "0/2/0/0"], /not a cell of this world/],
    ["a key below the minimum size", ["0/0/0/0", "0/0/0/1", "0/1/0/0", "0/1/0/1", "3/0/0/0"], /not a cell of this world/],
    [
      "a split root missing one child",
      ["0/0/0/0", "0/0/0/1", "0/1/0/0", "1/2/0/2", "1/2/0/3", "1/2/1/2", "1/2/1/3", "1/3/0/2", "1/3/0/3", "1/3/1/2"],
      /1\/3\/1\/3 is not covered/
    ]
  ])("partitionError: %s", (_name, leaves, error) => {
    const result = partitionError(g, leaves.map(k))
    if (error === undefined) expect(result).toBeUndefined()
    else expect(result).toMatch(error)
  })

  it("rejects a bad geometry, world id or version", () => {
    expect(() => new RegionDirectory({ ...g, minSize: 600 }, "w")).toThrow(/power of two/)
    expect(() => new RegionDirectory(g, "")).toThrow(/world id/)
    expect(() => new RegionDirectory(g, "a/b")).toThrow(/world id/)
    expect(() => new RegionDirectory(g, "w", undefined, -1)).toThrow(/version/)
    expect(() => new RegionDirectory(g, "w", [k("0/0/0/0")])).toThrow(/not a partition.*not covered/)
  })
})

describe("split and merge", () => {
  it("split replaces a leaf by its 8 children and bumps the version", () => {
    const d = new RegionDirectory(g, "w")
    const children = d.split(k("0/1/0/1"))
    expect(keys(children)).toEqual(["1/2/0/2", "1/2/0/3", "1/2/1/2", "1/2/1/3", "1/3/0/2", "1/3/0/3", "1/3/1/2", "1/3/1/3"])
    expect(d.version).toBe(1)
    expect(d.isLeaf(k("0/1/0/1"))).toBe(false)
    expect(children.every((c) => d.isLeaf(c))).toBe(true)
    expect(d.levelCounts()).toEqual({ 0: 3, 1: 8, 2: 0 })
    expect(partitionError(g, d.leaves())).toBeUndefined()
  })

  it.each<[string, ReadonlyArray<string>, string, RegExp]>([
    ["not a leaf (already split)", ["0/1/0/1"], "0/1/0/1", /cannot split region w\/0\/1\/0\/1: it is not a leaf/],
    ["not a leaf (inside a root)", [], "1/2/0/2", /not a leaf/],
    ["at the minimum size", ["0/1/0/1", "1/2/0/2"], "2/4/0/4", /minimum size \(500 m\)/],
    ["outside the world", [], "0/5/0/0", /not a leaf/]
  ])("split refuses a key that is %s", (_name, before, key, error) => {
    const d = splitDir(...before)
    const version = d.version
    expect(d.canSplit(k(key))).toBe(false)
    expect(() => d.split(k(key))).toThrow(error)
    expect(d.version).toBe(version)
  })

  it("canMerge needs all 8 children to be leaves", () => {
    const d = splitDir("0/1/0/1", "1/2/0/2")
    expect(d.version).toBe(2)
    expect(d.canMerge(k("0/1/0/1"))).toBe(false) // 1/2/0/2 is split further
    expect(d.canMerge(k("1/2/0/2"))).toBe(true)
  })

  it("merge returns the removed children; a full split-merge cycle restores the partition", () => {
    const d = splitDir("0/1/0/1", "1/2/0/2")
    const removed = d.merge(k("1/2/0/2"))
    expect(keys(removed)).toEqual(["2/4/0/4", "2/4/0/5", "2/4/1/4", "2/4/1/5", "2/5/0/4", "2/5/0/5", "2/5/1/4", "2/5/1/5"])
    expect(d.version).toBe(3)
    expect(d.isLeaf(k("1/2/0/2"))).toBe(true)
    d.merge(k("0/1/0/1"))
    expect(d.version).toBe(4)
    expect(keys(d.leaves())).toEqual(keys(new RegionDirectory(g, "w").leaves()))
  })

  it.each<[string, ReadonlyArray<string>, string, RegExp]>([
    ["children are not split", [], "0/0/0/0", /child 1\/0\/0\/0 is not a leaf/],
    ["a child is split further", ["0/0/0/0", "1/1/0/1"], "0/0/0/0", /child 1\/1\/0\/1 is not a leaf/],
    ["it is at the deepest level", ["0/0/0/0", "1/0/0/0"], "2/0/0/0", /no children/],
    ["it is outside the world", [], "0/9/0/0", /no children/]
  ])("merge refuses when %s", (_name, before, parent, error) => {
    const d = splitDir(...before)
    const version = d.version
    expect(d.canMerge(k(parent))).toBe(false)
    expect(() => d.merge(k(parent))).toThrow(error)
    expect(d.version).toBe(version)
  })

  it("has() checks the world and leafness", () => {
    const d = splitDir("0/1/0/1")
    expect(d.has("w/1/3/1/3")).toBe(true)
    expect(d.has("w/0/1/0/1")).toBe(false)
    expect(d.has("other/1/3/1/3")).toBe(false)
    expect(d.has("w/1/3/1")).toBe(false)
  })
})

describe("locate", () => {
  const d = splitDir("0/1/0/1", "1/2/0/2", "0/0/0/0", "1/1/1/1")
  it.each([
    ["in an unsplit root", v(-1000, 0, 1000), "0/0/0/1"],
    ["in a level-1 cell", v(1500, 500, 1500), "1/3/1/3"],
    ["in a level-2 cell", v(10, -900, 10), "2/4/0/4"],
    ["on a level-2 inner face", v(500, -500, 500), "2/5/1/5"],
    ["on a root face between a split and an unsplit root", v(0, 0, 1500), "1/2/1/3"],
    ["just below that face", v(-1e-9, 0, 1500), "0/0/0/1"],
    ["at the origin (corner of four roots)", v(0, 0, 0), "1/2/1/2"],
    ["at the world min corner", v(-2000, -1000, -2000), "1/0/0/0"],
    ["at the world max corner", v(2000, 1000, 2000), "1/3/1/3"],
    ["outside the world (clamped)", v(5000, -5000, -5000), "0/1/0/0"],
    ["in a split root's deep child", v(-1, 999, -1), "2/3/3/3"]
  ])("%s", (_name, p, expected) => {
    expect(keyString(d.locate(p))).toBe(expected)
    expect(d.locateId(p)).toBe(`w/${expected}`)
    expect(holders(d, p)).toEqual([expected])
  })

  it("every point on faces, edges and corners belongs to exactly one leaf", () => {
    const dir = splitDir("0/1/0/1", "1/2/0/2", "1/3/1/3", "0/0/0/0")
    const s = sizeAt(g, 2)
    const xs: Array<number> = []
    for (let i = -4; i <= 4; i++) xs.push(i * s, i * s - 0.5, i * s + 0.5)
    xs.push(-2100, 2100)
    const ys = [-1000, -500, 0, 500, 1000, -1100, 1100, 250]
    for (const x of xs) {
      for (const y of ys) {
        for (const z of xs) {
          const p = v(x, y, z)
          const h = holders(dir, p)
          expect(h, `(${x}, ${y}, ${z})`).toHaveLength(1)
          expect(keyString(dir.locate(p))).toBe(h[0])
        }
      }
    }
  })
})

describe("neighbours and ghosts", () => {
  // Root 0/1/0/1 (x, z in [0, 2000]) is split into 1000 m cells meeting at (1000, 0, 1000).
  const d = splitDir("0/1/0/1")

  it.each([
    ["a level-1 cell in the world corner: only its 7 siblings", "1/3/1/3", ["1/2/0/2", "1/2/0/3", "1/2/1/2", "1/2/1/3", "1/3/0/2", "1/3/0/3", "1/3/1/2"]],
    [
      "the cell at the centre of the world: siblings and all three other roots",
      "1/2/1/2",
      ["0/0/0/0", "0/0/0/1", "0/1/0/0", "1/2/0/2", "1/2/0/3", "1/2/1/3", "1/3/0/2", "1/3/0/3", "1/3/1/2", "1/3/1/3"]
    ],
    ["a root sees across faces, edges and corners", "0/0/0/0", ["0/0/0/1", "0/1/0/0", "1/2/0/2", "1/2/1/2"]]
  ])("neighboursOf: %s", (_name, key, expected) => {
    expect(keys(d.neighboursOf(k(key)))).toEqual(expected)
  })

  it.each([
    ["deep inside its region", v(1500, 500, 1500), "1/3/1/3", []],
    ["near one face", v(1010, 500, 1500), "1/3/1/3", ["1/2/1/3"]],
    ["near the same face from the other side", v(990, 500, 1500), "1/2/1/3", ["1/3/1/3"]],
    ["near an edge where 4 regions meet", v(1010, 10, 1500), "1/3/1/3", ["1/2/0/3", "1/2/1/3", "1/3/0/3"]],
    [
      "near a corner where 8 regions meet",
      v(1010, 10, 1010),
      "1/3/1/3",
      ["1/2/0/2", "1/2/0/3", "1/2/1/2", "1/2/1/3", "1/3/0/2", "1/3/0/3", "1/3/1/2"]
    ],
    ["across a root face into a bigger region", v(10, 500, 1500), "1/2/1/3", ["0/0/0/1"]],
    ["from the bigger region into the smaller ones", v(-10, 10, 1500), "0/0/0/1", ["1/2/0/3", "1/2/1/3"]],
    ["near the world's face there is nobody to tell", v(1995, 500, 1500), "1/3/1/3", []],
    ["outside the world is clamped first", v(2500, 500, 1010), "1/3/1/3", ["1/3/1/2"]],
    ["exactly overlap away on the max side (half-open)", v(1100, 500, 1500), "1/3/1/3", []],
    ["just inside the overlap on the max side", v(1099.9, 500, 1500), "1/3/1/3", ["1/2/1/3"]],
    ["an owner outside its box during hysteresis sees the leaf it is in", v(1010, 500, 1500), "1/2/1/3", ["1/3/1/3"]]
  ])("ghostTargets: %s", (_name, p, owner, expected) => {
    expect(keys(d.ghostTargets(p, k(owner)))).toEqual(expected)
  })
})

describe("handoffTarget", () => {
  const d = splitDir("0/1/0/1")

  /** Walks an entity along x (y=500, z=1500) and reports the owner after each step. */
  const walk = (start: string, xs: ReadonlyArray<number>): Array<string> => {
    let owner = k(start)
    return xs.map((x) => {
      const to = d.handoffTarget(v(x, 500, 1500), owner)
      if (to !== undefined) owner = to
      return keyString(owner)
    })
  }

  it.each<[string, string, ReadonlyArray<number>, ReadonlyArray<string>]>([
    [
      "back and forth within hysteresis never flips",
      "1/2/1/3",
      [990, 1010, 999, 1024, 1000, 1025, 980],
      ["1/2/1/3", "1/2/1/3", "1/2/1/3", "1/2/1/3", "1/2/1/3", "1/2/1/3", "1/2/1/3"]
    ],
    [
      "crossing beyond hysteresis flips once, and coming back within it does not flip back",
      "1/2/1/3",
      [1020, 1025.5, 1010, 990, 975, 1030],
      ["1/2/1/3", "1/3/1/3", "1/3/1/3", "1/3/1/3", "1/3/1/3", "1/3/1/3"]
    ],
    [
      "going back beyond hysteresis flips back",
      "1/2/1/3",
      [1030, 974.9, 1000],
      ["1/3/1/3", "1/2/1/3", "1/2/1/3"]
    ],
    ["a jump across a whole region goes straight to the far one", "1/2/1/3", [-800], ["0/0/0/1"]],
    ["past the world's face nothing changes", "1/3/1/3", [2500, 9999], ["1/3/1/3", "1/3/1/3"]]
  ])("%s", (_name, start, xs, owners) => {
    expect(walk(start, xs)).toEqual(owners)
  })

  it("counts flips on a long jittery walk along the boundary", () => {
    let owner = k("1/2/1/3")
    let flips = 0
    for (let i = 0; i < 1000; i++) {
      const x = 1000 + 24 * Math.sin(i) // wanders ±24 m around the face
      const to = d.handoffTarget(v(x, 500, 1500), owner)
      if (to !== undefined) {
        owner = to
        flips++
      }
    }
    expect(flips).toBe(0)
  })

  it("an owner that is no longer a leaf hands over to the leaf containing p", () => {
    const dir = splitDir("0/1/0/1")
    expect(keyString(dir.handoffTarget(v(1500, 500, 1500), k("0/1/0/1"))!)).toBe("1/3/1/3")
    dir.merge(k("0/1/0/1"))
    expect(keyString(dir.handoffTarget(v(1500, 500, 1500), k("1/3/1/3"))!)).toBe("0/1/0/1")
  })
})

describe("serialisation", () => {
  it("round-trips through JSON", () => {
    const d = splitDir("0/1/0/1", "1/2/0/2")
    const json = JSON.parse(JSON.stringify(d))
    expect(json).toEqual({ worldId: "w", version: 2, leaves: keys(d.leaves()) })
    const back = RegionDirectory.fromJSON(g, json)
    expect(back.version).toBe(2)
    expect(back.worldId).toBe("w")
    expect(keys(back.leaves())).toEqual(keys(d.leaves()))
    expect(back.levelCounts()).toEqual({ 0: 3, 1: 7, 2: 8 })
  })

  const roots = ["0/0/0/0", "0/0/0/1", "0/1/0/0", "0/1/0/1"]
  it.each<[string, unknown, RegExp]>([
    ["not an object", "nope", /expected an object/],
    ["null", null, /expected an object/],
    ["no world id", { version: 0, leaves: roots }, /worldId must be a string/],
    ["a bad version", { worldId: "w", version: "1", leaves: roots }, /version must be a number/],
    ["a negative version", { worldId: "w", version: -3, leaves: roots }, /version must be an integer >= 0/],
    ["leaves not an array", { worldId: "w", version: 0, leaves: "0/0/0/0" }, /leaves must be an array/],
    ["a garbage key", { worldId: "w", version: 0, leaves: [...roots, "0/x/0/0"] }, /"0\/x\/0\/0" is not a region key/],
    ["a number key", { worldId: "w", version: 0, leaves: [...roots, 7] }, /7 is not a region key/],
    ["a gap", { worldId: "w", version: 0, leaves: roots.slice(1) }, /not a partition.*0\/0\/0\/0 is not covered/],
    ["an overlap", { worldId: "w", version: 0, leaves: [...roots, "2/1/1/1"] }, /not a partition.*overlap/],
    ["a bad world id", { worldId: "a/b", version: 0, leaves: roots }, /world id/]
  ])("fromJSON rejects %s", (_name, json, error) => {
    expect(() => RegionDirectory.fromJSON(g, json)).toThrow(error)
  })
})

/** mulberry32: a tiny seeded PRNG so the property test is reproducible. */
const rng = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = seed
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

describe("property: random partitions", () => {
  it.each([1, 2, 3, 4, 5, 6, 7, 8])("seed %i: locate and ghostTargets agree with a brute-force scan", (seed) => {
    const random = rng(seed)
    const geometry: MeshGeometry = { ...g, rootsX: 2, rootsY: 2, rootsZ: 1, minSize: 250, overlap: 60, hysteresis: 20 }
    const dir = new RegionDirectory(geometry, "p")
    const w = worldBox(geometry)
    let version = 0
    for (let step = 0; step < 60; step++) {
      const leaves = dir.leaves()
      const pick = leaves[Math.floor(random() * leaves.length)]!
      if (random() < 0.7 && dir.canSplit(pick)) {
        dir.split(pick)
        version++
      } else if (pick.level > 0) {
        const parent = { level: pick.level - 1, x: pick.x >> 1, y: pick.y >> 1, z: pick.z >> 1 }
        if (dir.canMerge(parent)) {
          dir.merge(parent)
          version++
        }
      }
    }
    expect(dir.version).toBe(version)
    expect(partitionError(geometry, dir.leaves())).toBeUndefined()
    const leaves = dir.leaves()
    const size = sizeAt(geometry, 3)
    const coord = (min: number, max: number): number => {
      const r = random()
      if (r < 0.3) return min + Math.round(random() * ((max - min) / size)) * size // on a face of the finest grid
      if (r < 0.35) return min - 500 + random() * 200 // outside the world
      if (r < 0.4) return max + random() * 200
      return min + random() * (max - min)
    }
    for (let i = 0; i < 400; i++) {
      const p = v(coord(w.minX, w.maxX), coord(w.minY, w.maxY), coord(w.minZ, w.maxZ))
      const q = clampToWorld(geometry, p)
      const containing = leaves.filter((l) => contains(boundsOf(geometry, l), q, w))
      expect(containing, `point ${JSON.stringify(p)}`).toHaveLength(1)
      const owner = dir.locate(p)
      expect(owner).toEqual(containing[0])
      // Any leaf may be the owner (hysteresis keeps entities outside their box for a while).
      for (const claimed of [owner, leaves[Math.floor(random() * leaves.length)]!]) {
        const brute = leaves
          .filter((l) => keyString(l) !== keyString(claimed) && contains(expand(boundsOf(geometry, l), geometry.overlap), q))
          .map(keyString)
        expect(keys(dir.ghostTargets(p, claimed)), `ghosts of ${JSON.stringify(p)} owned by ${keyString(claimed)}`).toEqual(brute)
      }
    }
  })
})
