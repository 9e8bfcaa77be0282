import { describe, expect, it } from "vitest"
import { advanceWorld, makeSimEntity, makeWorldState, type WorldState } from "../../src/region/GameLogic.js"
import { InputBuffer } from "../../src/region/InputBuffer.js"
import { makeKinematicLogic } from "../../src/region/KinematicLogic.js"

const MAX_SPEED = 10
const HALF = 100
const logic = makeKinematicLogic({ maxSpeed: MAX_SPEED, worldHalfExtent: HALF, spawnRadius: 20 })
const DT = 0.05

type Input = readonly [entityId: number, seq: number, dx: number, dy: number, dz: number, buttons?: number]

const world = (...entities: Array<[id: number, x: number, y: number, z: number, lastSeq?: number]>): WorldState => {
  const w = makeWorldState()
  for (const [id, x, y, z, lastSeq] of entities) w.entities.set(id, makeSimEntity(id, `p${id}`, x, y, z, lastSeq ?? 0))
  return w
}
const batch = (inputs: ReadonlyArray<Input>): InputBuffer => {
  const b = new InputBuffer()
  for (const [id, seq, dx, dy, dz, buttons] of inputs) b.push(id, seq, dx, dy, dz, buttons ?? 0)
  return b
}
const speed = (w: WorldState, id: number) => {
  const e = w.entities.get(id)!
  return Math.hypot(e.vx, e.vy, e.vz)
}

describe("KinematicLogic.step", () => {
  it.each([
    { name: "unit x", dir: [1, 0, 0], v: [10, 0, 0] },
    { name: "half length is not scaled up", dir: [0.5, 0, 0], v: [5, 0, 0] },
    { name: "zero stops", dir: [0, 0, 0], v: [0, 0, 0] },
    { name: "over-long x clamped", dir: [3, 0, 0], v: [10, 0, 0] },
    { name: "diagonal clamped", dir: [1, 1, 0], v: [10 / Math.SQRT2, 10 / Math.SQRT2, 0] },
    { name: "3-d diagonal clamped", dir: [-1, 1, -1], v: [-10 / Math.sqrt(3), 10 / Math.sqrt(3), -10 / Math.sqrt(3)] },
    { name: "non-finite treated as 0", dir: [Number.POSITIVE_INFINITY, 0.5, Number.NaN], v: [0, 5, 0] }
  ] as const)("velocity from direction: $name", ({ dir, v }) => {
    const w = world([1, 0, 0, 0])
    logic.step(w, batch([[1, 1, dir[0], dir[1], dir[2], 6]]), DT)
    const e = w.entities.get(1)!
    expect(e.vx).toBeCloseTo(v[0], 5)
    expect(e.vy).toBeCloseTo(v[1], 5)
    expect(e.vz).toBeCloseTo(v[2], 5)
    expect(e.x).toBeCloseTo(v[0] * DT, 5)
    expect(e.lastSeq).toBe(1)
    expect(e.buttons).toBe(6)
    expect(speed(w, 1)).toBeLessThanOrEqual(MAX_SPEED * (1 + 1e-9))
  })

  it.each([
    { name: "huge x", dir: [1e30, 0, 0] },
    { name: "huge diagonal", dir: [1e30, -1e30, 1e30] },
    { name: "beyond f32 range", dir: [1e300, 1e300, 0] },
    { name: "max f32 on every axis", dir: [3.4e38, 3.4e38, 3.4e38] }
  ] as const)("a teleport attempt ($name) moves only maxSpeed*dt", ({ dir }) => {
    const w = world([1, 0, 0, 0])
    logic.step(w, batch([[1, 1, dir[0], dir[1], dir[2]]]), DT)
    const e = w.entities.get(1)!
    const moved = Math.hypot(e.x, e.y, e.z)
    expect(moved).toBeGreaterThan(MAX_SPEED * DT * 0.999) // direction kept, not zeroed
    expect(moved).toBeLessThanOrEqual(MAX_SPEED * DT * (1 + 1e-9))
  })

  it("many inputs in one tick still move at most maxSpeed*dt (last accepted wins)", () => {
    const w = world([1, 0, 0, 0])
    logic.step(w, batch([[1, 1, 1e9, 0, 0], [1, 2, 1e9, 0, 0], [1, 3, 0, 1, 0], [1, 4, -1, 0, 0]]), DT)
    const e = w.entities.get(1)!
    expect(e.x).toBeCloseTo(-MAX_SPEED * DT, 9)
    expect(e.y).toBe(0)
    expect(e.lastSeq).toBe(4)
  })

  it.each([
    { name: "equal seq (duplicate)", lastSeq: 5, seq: 5 },
    { name: "older seq (replay)", lastSeq: 5, seq: 3 },
    { name: "seq 0 on a fresh entity", lastSeq: 0, seq: 0 }
  ])("ignores stale inputs: $name", ({ lastSeq, seq }) => {
    const w = world([1, 0, 0, 0, lastSeq])
    logic.step(w, batch([[1, seq, 1, 0, 0, 9]]), DT)
    const e = w.entities.get(1)!
    expect(e.vx).toBe(0)
    expect(e.x).toBe(0)
    expect(e.lastSeq).toBe(lastSeq)
    expect(e.buttons).toBe(0)
  })

  it("applies in arrival order and drops a reordered older input", () => {
    const w = world([1, 0, 0, 0])
    logic.step(w, batch([[1, 2, 0, 0, 1], [1, 1, 1, 0, 0]]), DT)
    const e = w.entities.get(1)!
    expect([e.vx, e.vz, e.lastSeq]).toEqual([0, MAX_SPEED, 2])
  })

  it("ignores inputs for unknown entities", () => {
    const w = world([1, 0, 0, 0])
    const before = structuredClone([...w.entities.values()])
    logic.step(w, batch([[2, 1, 1, 0, 0]]), DT)
    expect([...w.entities.values()]).toEqual(before)
    expect(w.entities.has(2)).toBe(false)
  })

  it("keeps velocity until the next input", () => {
    const w = world([1, 0, 0, 0])
    logic.step(w, batch([[1, 1, 1, 0, 0]]), DT)
    const empty = new InputBuffer()
    for (let i = 0; i < 9; i++) logic.step(w, empty, DT)
    expect(w.entities.get(1)!.x).toBeCloseTo(MAX_SPEED * DT * 10, 9)
  })

  it.each([
    { name: "+x wall", start: [99.9, 0, 0], dir: [1, 0, 0], end: [HALF, 0, 0] },
    { name: "-y floor", start: [0, -99.8, 0], dir: [0, -1, 0], end: [0, -HALF, 0] },
    { name: "corner", start: [99.99, 99.99, -99.99], dir: [1, 1, -1], end: [HALF, HALF, -HALF] }
  ] as const)("clamps to the world cube: $name", ({ start, dir, end }) => {
    const w = world([1, start[0], start[1], start[2]])
    logic.step(w, batch([[1, 1, dir[0], dir[1], dir[2]]]), DT)
    const empty = new InputBuffer()
    for (let i = 0; i < 100; i++) logic.step(w, empty, DT)
    const e = w.entities.get(1)!
    expect([e.x, e.y, e.z]).toEqual(end)
  })

  it("is deterministic", () => {
    const run = () => {
      const w = world([1, 0, 0, 0], [2, 10, 0, -10], [3, -50, 5, 50])
      const b = new InputBuffer()
      let s = 7
      for (let t = 0; t < 200; t++) {
        b.clear()
        for (let id = 1; id <= 3; id++) {
          s = (Math.imul(s, 1103515245) + 12345) >>> 0
          b.push(id, t + 1, ((s & 0xff) - 128) / 64, (((s >>> 8) & 0xff) - 128) / 64, (((s >>> 16) & 0xff) - 128) / 64, s >>> 28)
        }
        advanceWorld(logic, w, b, DT)
      }
      return { tick: w.tick, entities: [...w.entities.values()].map((e) => ({ ...e })) }
    }
    const a = run()
    expect(a.tick).toBe(200)
    expect(run()).toEqual(a)
  })
})

describe("KinematicLogic.spawnPoint", () => {
  it("is deterministic per player, on the disc at y = 0", () => {
    const w = makeWorldState()
    const points = Array.from({ length: 200 }, (_, i) => logic.spawnPoint(`player-${i}`, w))
    for (const p of points) {
      expect(p.y).toBe(0)
      expect(Math.hypot(p.x, p.z)).toBeLessThanOrEqual(20)
    }
    expect(logic.spawnPoint("player-3", w)).toEqual(points[3])
    expect(new Set(points.map((p) => `${p.x},${p.z}`)).size).toBe(200)
  })

  it("stays inside the world when spawnRadius exceeds it", () => {
    const small = makeKinematicLogic({ maxSpeed: 1, worldHalfExtent: 5, spawnRadius: 1000 })
    for (let i = 0; i < 50; i++) {
      const p = small.spawnPoint(`p${i}`, makeWorldState())
      expect(Math.abs(p.x)).toBeLessThanOrEqual(5)
      expect(Math.abs(p.z)).toBeLessThanOrEqual(5)
    }
  })

  it.each([
    { maxSpeed: -1, worldHalfExtent: 10, spawnRadius: 1 },
    { maxSpeed: Number.NaN, worldHalfExtent: 10, spawnRadius: 1 },
    { maxSpeed: 1, worldHalfExtent: 0, spawnRadius: 1 },
    { maxSpeed: 1, worldHalfExtent: 10, spawnRadius: -1 }
  ])("rejects bad options %o", (options) => {
    expect(() => makeKinematicLogic(options)).toThrow()
  })
})
