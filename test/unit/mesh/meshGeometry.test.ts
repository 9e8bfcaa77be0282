import { describe, expect, it } from "vitest"
import {
  type Box,
  boundsOf,
  childrenOf,
  clampToWorld,
  contains,
  distanceOutside,
  expand,
  intersects,
  isAncestor,
  isValidKey,
  keyAt,
  keyString,
  maxLevel,
  type MeshGeometry,
  parentOf,
  parseKeyString,
  parseRegionId,
  regionIdOf,
  sizeAt,
  validateGeometry,
  worldBox
} from "../../../src/region/mesh/MeshGeometry.js"

/** 2x1x2 roots of 2 km: x and z span [-2000, 2000], y spans [-1000, 1000]. */
const g: MeshGeometry = { rootSize: 2000, minSize: 500, overlap: 100, hysteresis: 25, rootsX: 2, rootsY: 1, rootsZ: 2 }
const k = (level: number, x: number, y: number, z: number) => ({ level, x, y, z })
const box = (minX: number, minY: number, minZ: number, maxX: number, maxY: number, maxZ: number): Box => ({
  minX,
  minY,
  minZ,
  maxX,
  maxY,
  maxZ
})

describe("validateGeometry", () => {
  it.each<[string, Partial<MeshGeometry>, RegExp | undefined]>([
    ["the defaults", {}, undefined],
    ["one level (minSize = rootSize)", { minSize: 2000, overlap: 100 }, undefined],
    ["a non-integer root size", { rootSize: 1500, minSize: 187.5, overlap: 50, hysteresis: 10 }, undefined],
    ["minSize not rootSize/2^k", { minSize: 600 }, /power of two/],
    ["minSize above rootSize", { minSize: 4000 }, /must not exceed rootSize/],
    ["minSize 0", { minSize: 0 }, /minSize must be a finite number > 0/],
    ["rootSize NaN", { rootSize: Number.NaN }, /rootSize/],
    ["overlap 0", { overlap: 0, hysteresis: 0 }, /overlap must be/],
    ["overlap = minSize/2", { overlap: 250 }, /less than minSize\/2/],
    ["hysteresis = overlap", { hysteresis: 100 }, /hysteresis \(100\) must be less than overlap/],
    ["negative hysteresis", { hysteresis: -1 }, /hysteresis must be/],
    ["zero roots", { rootsX: 0 }, /rootsX must be an integer/],
    ["fractional roots", { rootsZ: 1.5 }, /rootsZ must be an integer/],
    ["too deep", { minSize: 2000 / 2 ** 17, overlap: 0.001, hysteresis: 0 }, /power of two/]
  ])("%s", (_name, patch, error) => {
    const result = validateGeometry({ ...g, ...patch })
    if (error === undefined) expect(result).toBeUndefined()
    else expect(result).toMatch(error)
  })
})

describe("sizes and boxes", () => {
  it("sizes halve per level down to minSize", () => {
    expect([0, 1, 2].map((l) => sizeAt(g, l))).toEqual([2000, 1000, 500])
    expect(maxLevel(g)).toBe(2)
    expect(maxLevel({ ...g, minSize: 2000 })).toBe(0)
  })

  it("the world is centred on the origin", () => {
    expect(worldBox(g)).toEqual(box(-2000, -1000, -2000, 2000, 1000, 2000))
  })

  it.each([
    [k(0, 0, 0, 0), box(-2000, -1000, -2000, 0, 1000, 0)],
    [k(0, 1, 0, 1), box(0, -1000, 0, 2000, 1000, 2000)],
    [k(1, 3, 1, 0), box(1000, 0, -2000, 2000, 1000, -1000)],
    [k(2, 4, 0, 7), box(0, -1000, 1500, 500, -500, 2000)]
  ])("boundsOf %j", (key, expected) => {
    expect(boundsOf(g, key)).toEqual(expected)
  })

  it("children tile their parent exactly", () => {
    const parent = boundsOf(g, k(1, 2, 1, 3))
    const kids = childrenOf(k(1, 2, 1, 3)).map((c) => boundsOf(g, c))
    expect(Math.min(...kids.map((b) => b.minX))).toBe(parent.minX)
    expect(Math.max(...kids.map((b) => b.maxX))).toBe(parent.maxX)
    expect(Math.min(...kids.map((b) => b.minY))).toBe(parent.minY)
    expect(Math.max(...kids.map((b) => b.maxZ))).toBe(parent.maxZ)
    const volume = kids.reduce((v, b) => v + (b.maxX - b.minX) * (b.maxY - b.minY) * (b.maxZ - b.minZ), 0)
    expect(volume).toBe(1000 ** 3)
  })
})

describe("keyAt", () => {
  it.each([
    ["origin", 0, { x: 0, y: 0, z: 0 }, k(0, 1, 0, 1)],
    ["world min corner", 0, { x: -2000, y: -1000, z: -2000 }, k(0, 0, 0, 0)],
    ["just below a face", 0, { x: -0.000001, y: 0, z: -0.000001 }, k(0, 0, 0, 0)],
    ["world max corner (max face rule)", 0, { x: 2000, y: 1000, z: 2000 }, k(0, 1, 0, 1)],
    ["outside the world is clamped", 0, { x: -9000, y: 5000, z: 2001 }, k(0, 0, 0, 1)],
    ["NaN clamps to the min face", 1, { x: Number.NaN, y: 0, z: Number.NaN }, k(1, 0, 1, 0)],
    ["infinities clamp", 2, { x: Number.POSITIVE_INFINITY, y: Number.NEGATIVE_INFINITY, z: 0 }, k(2, 7, 0, 4)],
    ["a level-2 face belongs to the upper cell", 2, { x: -1500, y: -500, z: 1500 }, k(2, 1, 1, 7)],
    ["a level-2 point", 2, { x: 1234, y: 999.99, z: -1 }, k(2, 6, 3, 3)],
    ["the max face at level 2", 2, { x: 2000, y: 1000, z: 2000 }, k(2, 7, 3, 7)]
  ])("%s", (_name, level, p, expected) => {
    expect(keyAt(g, level, p)).toEqual(expected)
  })

  it("agrees with boundsOf on awkward sizes", () => {
    const odd: MeshGeometry = { rootSize: 0.3, minSize: 0.3 / 8, overlap: 0.01, hysteresis: 0.001, rootsX: 3, rootsY: 3, rootsZ: 3 }
    const w = worldBox(odd)
    for (let level = 0; level <= 3; level++) {
      const s = sizeAt(odd, level)
      const n = 3 * 2 ** level
      for (let i = 0; i <= n; i++) {
        const face = w.minX + i * s
        for (const v of [face, face - 1e-12, face + 1e-12]) {
          const key = keyAt(odd, level, { x: v, y: v, z: v })
          expect(contains(boundsOf(odd, key), clampToWorld(odd, { x: v, y: v, z: v }), w)).toBe(true)
        }
      }
    }
  })
})

describe("keys", () => {
  it("parents, children and ancestry", () => {
    expect(parentOf(k(0, 1, 0, 1))).toBeUndefined()
    expect(parentOf(k(2, 7, 3, 4))).toEqual(k(1, 3, 1, 2))
    const kids = childrenOf(k(1, 1, 0, 2))
    expect(kids.map(keyString)).toEqual([
      "2/2/0/4",
      "2/2/0/5",
      "2/2/1/4",
      "2/2/1/5",
      "2/3/0/4",
      "2/3/0/5",
      "2/3/1/4",
      "2/3/1/5"
    ])
    for (const c of kids) expect(parentOf(c)).toEqual(k(1, 1, 0, 2))
    expect(isAncestor(k(0, 0, 0, 1), k(2, 3, 1, 4))).toBe(true)
    expect(isAncestor(k(0, 0, 0, 1), k(2, 4, 1, 4))).toBe(false)
    expect(isAncestor(k(1, 1, 0, 2), k(1, 1, 0, 2))).toBe(false)
    expect(isAncestor(k(2, 3, 1, 4), k(0, 0, 0, 1))).toBe(false)
  })

  it.each([
    [k(0, 0, 0, 0), true],
    [k(2, 7, 3, 7), true],
    [k(2, 8, 0, 0), false],
    [k(0, 0, 1, 0), false],
    [k(3, 0, 0, 0), false],
    [k(-1, 0, 0, 0), false],
    [k(1, 0.5, 0, 0), false]
  ])("isValidKey(%j) = %s", (key, valid) => {
    expect(isValidKey(g, key)).toBe(valid)
  })

  it.each([
    ["0/1/0/3", k(0, 1, 0, 3)],
    ["12/4095/0/77", k(12, 4095, 0, 77)],
    ["", undefined],
    ["0/1/0", undefined],
    ["0/1/0/3/4", undefined],
    ["-1/0/0/0", undefined],
    ["0/-0/0/0", undefined],
    ["0/1.5/0/0", undefined],
    ["0/01/0/0", undefined],
    ["0/1e3/0/0", undefined],
    ["0/ 1/0/0", undefined],
    ["0/1/0/3 ", undefined],
    ["0/0x1/0/0", undefined],
    ["a/b/c/d", undefined],
    ["0//0/0", undefined],
    ["0/99999999999999999999/0/0", undefined]
  ])("parseKeyString(%j)", (s, expected) => {
    expect(parseKeyString(s)).toEqual(expected)
    if (expected !== undefined) expect(keyString(expected)).toBe(s)
  })

  it.each([
    ["frontier.1/0/1/0/3", { worldId: "frontier.1", key: k(0, 1, 0, 3) }],
    ["w/2/7/3/7", { worldId: "w", key: k(2, 7, 3, 7) }],
    ["/0/1/0/3", undefined],
    ["frontier.1", undefined],
    ["frontier.1/", undefined],
    ["frontier.1/0/1/0", undefined],
    ["frontier.1/0/1/0/3/x", undefined]
  ])("parseRegionId(%j)", (id, expected) => {
    expect(parseRegionId(id)).toEqual(expected)
    if (expected !== undefined) expect(regionIdOf(expected.worldId, expected.key)).toBe(id)
  })
})

describe("box arithmetic", () => {
  const b = box(0, 0, 0, 10, 10, 10)
  const world = box(-10, -10, -10, 10, 10, 10)

  it.each([
    ["inside", { x: 5, y: 5, z: 5 }, undefined, true],
    ["min corner", { x: 0, y: 0, z: 0 }, undefined, true],
    ["max face", { x: 10, y: 5, z: 5 }, undefined, false],
    ["max face on the world's max face", { x: 10, y: 5, z: 5 }, world, true],
    ["max corner on the world's max corner", { x: 10, y: 10, z: 10 }, world, true],
    ["max face inside a bigger world", { x: 10, y: 5, z: 5 }, box(-10, -10, -10, 20, 20, 20), false],
    ["below min", { x: -0.001, y: 5, z: 5 }, world, false],
    ["past the world", { x: 10.001, y: 5, z: 5 }, world, false]
  ])("contains: %s", (_name, p, w, expected) => {
    expect(contains(b, p, w)).toBe(expected)
  })

  it("expand grows every face", () => {
    expect(expand(b, 2)).toEqual(box(-2, -2, -2, 12, 12, 12))
  })

  it.each([
    [{ x: 5, y: 5, z: 5 }, 0],
    [{ x: 10, y: 10, z: 10 }, 0],
    [{ x: 13, y: 5, z: 5 }, 3],
    [{ x: -3, y: 14, z: 5 }, 5],
    [{ x: 12, y: 12, z: 11 }, 3]
  ])("distanceOutside(%j) = %s", (p, d) => {
    expect(distanceOutside(b, p)).toBeCloseTo(d, 12)
  })

  it.each([
    ["overlapping", box(5, 5, 5, 15, 15, 15), true],
    ["nested", box(1, 1, 1, 2, 2, 2), true],
    ["touching a face", box(10, 0, 0, 20, 10, 10), false],
    ["touching an edge", box(10, 10, 0, 20, 20, 10), false],
    ["touching a corner", box(10, 10, 10, 20, 20, 20), false],
    ["apart", box(11, 0, 0, 20, 10, 10), false]
  ])("intersects: %s", (_name, other, expected) => {
    expect(intersects(b, other)).toBe(expected)
    expect(intersects(other, b)).toBe(expected)
  })
})
