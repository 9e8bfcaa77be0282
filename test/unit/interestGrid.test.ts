import { describe, expect, it } from "vitest"
import { makeSimEntity, type SimEntity } from "../../src/region/GameLogic.js"
import {
  cellCoord,
  cellKey,
  cellsAround,
  InterestGrid,
  neighbourhoodDiff,
  parseCellKey
} from "../../src/region/InterestGrid.js"

const sorted = (xs: ReadonlyArray<string>) => [...xs].sort()
const members = (grid: InterestGrid) =>
  Object.fromEntries([...grid.cells()].map(([k, ms]) => [k, ms.map((e) => e.id).sort((a, b) => a - b)]))

describe("cell keys", () => {
  it.each([
    [0, 0],
    [24.999, 0],
    [25, 1],
    [74.999, 1],
    [75, 2],
    [-25, 0],
    [-25.001, -1],
    [-75, -1],
    [-75.001, -2],
    [-0.001, 0],
    [-0, 0],
    [149.5, 3]
  ])("cellCoord(%s, 50) = %s", (v, c) => {
    expect(Object.is(cellCoord(v, 50), c)).toBe(true)
  })

  it("formats and parses keys", () => {
    expect(cellKey(3, 0, -2)).toBe("3,0,-2")
    expect(cellKey(cellCoord(-0.0, 10), 0, 0)).toBe("0,0,0")
    expect(parseCellKey("3,0,-2")).toEqual([3, 0, -2])
  })

  it.each(["", "1,2", "1,2,3,4", "a,b,c", "1.5,2,3", "1, 2,3", " 1,2,3"])("rejects bad key %j", (key) => {
    expect(() => parseCellKey(key)).toThrow(/not a cell key/)
  })

  it.each([
    [0, 1],
    [1, 27],
    [2, 125]
  ])("cellsAround at radius %i has %i distinct cells", (r, n) => {
    const around = cellsAround("5,-1,0", r)
    expect(around).toHaveLength(n)
    expect(new Set(around).size).toBe(n)
    expect(around).toContain("5,-1,0")
  })

  it("cellsAround r=1 covers exactly the Chebyshev-1 neighbourhood", () => {
    const around = cellsAround("0,0,0", 1)
    for (const k of around) {
      const [x, y, z] = parseCellKey(k)
      expect(Math.max(Math.abs(x), Math.abs(y), Math.abs(z))).toBeLessThanOrEqual(1)
    }
    expect(() => cellsAround("0,0,0", -1)).toThrow()
    expect(() => cellsAround("0,0,0", 1.5)).toThrow()
  })
})

describe("neighbourhoodDiff", () => {
  it.each([
    { name: "same cell", from: "0,0,0", to: "0,0,0", sub: 0, unsub: 0 },
    { name: "one cell along x", from: "0,0,0", to: "1,0,0", sub: 9, unsub: 9 },
    { name: "diagonal in a plane", from: "0,0,0", to: "1,1,0", sub: 15, unsub: 15 },
    { name: "3-d diagonal", from: "0,0,0", to: "1,1,1", sub: 19, unsub: 19 },
    { name: "two cells", from: "0,0,0", to: "2,0,0", sub: 18, unsub: 18 },
    { name: "far", from: "0,0,0", to: "10,-4,3", sub: 27, unsub: 27 },
    { name: "join", from: undefined, to: "4,4,4", sub: 27, unsub: 0 },
    { name: "leave", from: "4,4,4", to: undefined, sub: 0, unsub: 27 },
    { name: "nothing", from: undefined, to: undefined, sub: 0, unsub: 0 }
  ])("r=1 $name: +$sub -$unsub", ({ from, to, sub, unsub }) => {
    const d = neighbourhoodDiff(from, to, 1)
    expect(d.subscribe).toHaveLength(sub)
    expect(d.unsubscribe).toHaveLength(unsub)
    // equal to the set differences
    const a = new Set(from === undefined ? [] : cellsAround(from, 1))
    const b = new Set(to === undefined ? [] : cellsAround(to, 1))
    expect(sorted(d.subscribe)).toEqual(sorted([...b].filter((k) => !a.has(k))))
    expect(sorted(d.unsubscribe)).toEqual(sorted([...a].filter((k) => !b.has(k))))
  })

  it("one cell along x subscribes the new face", () => {
    const d = neighbourhoodDiff("0,0,0", "1,0,0", 1)
    expect(d.subscribe.every((k) => parseCellKey(k)[0] === 2)).toBe(true)
    expect(d.unsubscribe.every((k) => parseCellKey(k)[0] === -1)).toBe(true)
  })

  it("radius 0 swaps exactly the cell", () => {
    expect(neighbourhoodDiff("0,0,0", "0,0,1", 0)).toEqual({ subscribe: ["0,0,1"], unsubscribe: ["0,0,0"] })
  })
})

describe("InterestGrid", () => {
  const entity = (id: number, x: number, y: number, z: number): SimEntity => makeSimEntity(id, `p${id}`, x, y, z)

  it("reports the first placement and only real cell changes", () => {
    const g = new InterestGrid(10)
    const e = entity(1, 0, 0, 0)
    expect(g.place(e)).toEqual({ entityId: 1, playerId: "p1", from: undefined, to: "0,0,0" })
    expect(g.place(e)).toBeUndefined()
    e.x = 4.99
    expect(g.place(e)).toBeUndefined()
    e.x = 5
    expect(g.place(e)).toEqual({ entityId: 1, playerId: "p1", from: "0,0,0", to: "1,0,0" })
    e.x = -5.5
    e.z = -30
    expect(g.place(e)).toEqual({ entityId: 1, playerId: "p1", from: "1,0,0", to: "-1,0,-3" })
    expect(g.cellOf(1)).toBe("-1,0,-3")
    expect(members(g)).toEqual({ "-1,0,-3": [1] })
  })

  it("keeps membership incrementally and drops emptied cells", () => {
    const g = new InterestGrid(10)
    const es = [entity(1, 1, 0, 0), entity(2, 2, 0, 0), entity(3, 3, 0, 0), entity(4, 10, 0, 0)]
    for (const e of es) g.place(e)
    expect(members(g)).toEqual({ "0,0,0": [1, 2, 3], "1,0,0": [4] })
    es[0]!.x = 12 // first member leaves: swap-remove must keep indices right
    g.place(es[0]!)
    expect(members(g)).toEqual({ "0,0,0": [2, 3], "1,0,0": [1, 4] })
    es[2]!.x = 11
    g.place(es[2]!)
    es[1]!.x = 11
    g.place(es[1]!)
    expect(members(g)).toEqual({ "1,0,0": [1, 2, 3, 4] })
    expect(g.cells().has("0,0,0")).toBe(false)
    // every entity can still be moved/removed correctly after the swaps
    for (const e of es) {
      e.y = 50
      expect(g.place(e)?.to).toBe("1,5,0")
    }
    expect(members(g)).toEqual({ "1,5,0": [1, 2, 3, 4] })
  })

  it("removes entities", () => {
    const g = new InterestGrid(10)
    g.place(entity(1, 1, 1, 1))
    g.place(entity(2, 2, 2, 2))
    expect(g.size).toBe(2)
    expect(g.remove(1)).toBe("0,0,0")
    expect(g.remove(1)).toBeUndefined()
    expect(g.cellOf(1)).toBeUndefined()
    expect(members(g)).toEqual({ "0,0,0": [2] })
    expect(g.remove(2)).toBe("0,0,0")
    expect(g.cells().size).toBe(0)
    expect(g.membersOfCell("0,0,0")).toEqual([])
    // re-placing after removal is a first placement again
    expect(g.place(entity(1, 1, 1, 1))?.from).toBeUndefined()
  })

  it("stays consistent under random moves (model check)", () => {
    const g = new InterestGrid(7)
    const es = Array.from({ length: 60 }, (_, i) => entity(i, 0, 0, 0))
    let s = 1
    const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296)
    const alive = new Set<number>()
    const problems: Array<string> = []
    for (let round = 0; round < 300; round++) {
      for (const e of es) {
        if (rnd() < 0.05) {
          g.remove(e.id)
          alive.delete(e.id)
          continue
        }
        e.x += (rnd() - 0.5) * 10
        e.z += (rnd() - 0.5) * 10
        const expectedKey = cellKey(cellCoord(e.x, 7), cellCoord(e.y, 7), cellCoord(e.z, 7))
        const before = g.cellOf(e.id)
        const change = g.place(e)
        alive.add(e.id)
        if ((change === undefined) !== (before === expectedKey)) problems.push(`round ${round}: change ${e.id}`)
        if (g.cellOf(e.id) !== expectedKey) problems.push(`round ${round}: cellOf ${e.id}`)
      }
      let total = 0
      for (const [key, ms] of g.cells()) {
        if (ms.length === 0) problems.push(`round ${round}: empty cell ${key} listed`)
        for (const m of ms) if (g.cellOf(m.id) !== key) problems.push(`round ${round}: ${m.id} misfiled`)
        total += ms.length
      }
      if (total !== alive.size || g.size !== alive.size) problems.push(`round ${round}: count`)
    }
    expect(problems).toEqual([])
  })

  it("rejects a bad cell size", () => {
    expect(() => new InterestGrid(0)).toThrow()
    expect(() => new InterestGrid(Number.NaN)).toThrow()
  })
})
