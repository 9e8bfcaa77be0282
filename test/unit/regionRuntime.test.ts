import { describe, expect, it } from "vitest"
import { makeKinematicLogic } from "../../src/region/KinematicLogic.js"
import { RegionRuntime } from "../../src/region/RegionRuntime.js"

const make = () => {
  const changes: Array<[string, string | undefined, string | undefined]> = []
  const persisted: Array<string> = []
  const runtime = new RegionRuntime(
    { regionId: "arena.1", tickRate: 20, cellSize: 50, leaseMs: 1000, persistEveryTicks: 20 },
    makeKinematicLogic({ maxSpeed: 10, worldHalfExtent: 1000, spawnRadius: 0 }),
    {
      publishCell: () => {},
      cellChanged: (playerId, from, to) => changes.push([playerId, from, to]),
      persist: (entity) => persisted.push(entity.playerId)
    }
  )
  return { runtime, changes, persisted }
}

describe("RegionRuntime", () => {
  it("adding a player twice keeps one entity", () => {
    const { runtime } = make()
    const a = runtime.addPlayer("a", undefined, 0)
    expect(runtime.addPlayer("a", { x: 5, y: 0, z: 0 }, 10)).toBe(a)
    expect(runtime.playerCount).toBe(1)
  })

  it("restores stored members with their entity ids and acks; new players get fresh ids", () => {
    const { runtime } = make()
    const restored = runtime.restore(
      [
        { playerId: "a", entityId: 7, x: 1, y: 0, z: 2, lastSeq: 40 },
        { playerId: "b", entityId: 3, x: 0, y: 0, z: 0, lastSeq: 0 },
        { playerId: "a", entityId: 9, x: 0, y: 0, z: 0, lastSeq: 0 } // duplicate player: ignored
      ],
      0
    )
    expect(restored).toBe(2)
    expect(runtime.entityOf("a")).toMatchObject({ id: 7, x: 1, z: 2, lastSeq: 40 })
    expect(runtime.addPlayer("c", undefined, 0).id).toBe(8)
    expect(runtime.cellOf(7)).toBe("0,0,0")
  })

  it("expires players whose lease nobody renewed, and keeps the vouched-for ones", () => {
    const { runtime, changes } = make()
    runtime.restore([{ playerId: "orphan", entityId: 1, x: 0, y: 0, z: 0, lastSeq: 0 }], 0)
    const kept = runtime.addPlayer("kept", undefined, 0)
    expect(runtime.expireLeases(999)).toEqual([])
    runtime.renewLeases([kept.id, 12345], 900)
    const expired = runtime.expireLeases(1000)
    expect(expired.map((e) => e.playerId)).toEqual(["orphan"])
    expect(runtime.entityOf("orphan")).toBeUndefined()
    expect(changes).toContainEqual(["orphan", "0,0,0", undefined])
    // A join renews too.
    runtime.addPlayer("kept", undefined, 1800)
    expect(runtime.expireLeases(2500)).toEqual([])
    expect(runtime.expireLeases(2800).map((e) => e.playerId)).toEqual(["kept"])
    expect(runtime.playerCount).toBe(0)
  })

  it("applies inputs of a remote batch on the next tick", () => {
    const { runtime } = make()
    const a = runtime.addPlayer("a", { x: 0, y: 0, z: 0 }, 0)
    runtime.inputs().push(a.id, 1, 1, 0, 0, 0)
    runtime.tick()
    expect(a.lastSeq).toBe(1)
    expect(a.x).toBeCloseTo(0.5)
  })
})
