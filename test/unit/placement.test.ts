import { describe, expect, it } from "vitest"
import { defaultExperience } from "../../src/config/ConfigSchema.js"
import type { ExperienceConfig } from "../../src/config/TesseraConfig.js"
import {
  emptyRegistry,
  type PlaceResult,
  placePlayer,
  type Registry,
  reapEmpty,
  removePlayer
} from "../../src/scheduler/Placement.js"

const exp = (id: string, maxPlayers: number): ExperienceConfig => ({ ...defaultExperience(id), maxPlayers })

const arena = exp("arena", 2)
const lobby = exp("lobby", 3)
const experiences = new Map([arena, lobby].map((e) => [e.id, e]))

/** Instance occupancy: worldId -> sorted players. */
const occupancy = (registry: Registry): Record<string, Array<string>> =>
  Object.fromEntries([...registry.instances.values()].map((i) => [i.worldId, [...i.players].sort()]))

type Op =
  | { readonly place: string; readonly in: string; readonly at?: number; readonly max?: number; readonly expect?: PlaceResult }
  | { readonly remove: string; readonly from: string; readonly at?: number }
  | { readonly reap: number; readonly grace: number; readonly expect: ReadonlyArray<string> }

interface Case {
  readonly name: string
  readonly ops: ReadonlyArray<Op>
  readonly instances: Record<string, Array<string>>
  readonly placements?: Record<string, string>
  readonly emptySince?: Record<string, number | null>
}

const placed = (worldId: string, created: boolean): PlaceResult => ({ _tag: "Placed", worldId, created })

const run = (ops: ReadonlyArray<Op>): Registry => {
  const registry = emptyRegistry()
  for (const op of ops) {
    if ("place" in op) {
      const result = placePlayer(registry, experiences.get(op.in)!, op.place, op.at ?? 0, op.max)
      if (op.expect !== undefined) expect(result, `place ${op.place} in ${op.in}`).toEqual(op.expect)
    } else if ("remove" in op) {
      removePlayer(registry, op.remove, op.from, op.at ?? 0)
    } else {
      expect(reapEmpty(registry, op.reap, op.grace), `reap at ${op.reap}`).toEqual(op.expect)
    }
  }
  return registry
}

const cases: ReadonlyArray<Case> = [
  {
    name: "the first player creates instance 1",
    ops: [{ place: "a", in: "arena", expect: placed("arena.1", true) }],
    instances: { "arena.1": ["a"] },
    placements: { a: "arena.1" }
  },
  {
    name: "fills an instance before creating the next one",
    ops: [
      { place: "a", in: "arena", expect: placed("arena.1", true) },
      { place: "b", in: "arena", expect: placed("arena.1", false) },
      { place: "c", in: "arena", expect: placed("arena.2", true) },
      { place: "d", in: "arena", expect: placed("arena.2", false) },
      { place: "e", in: "arena", expect: placed("arena.3", true) }
    ],
    instances: { "arena.1": ["a", "b"], "arena.2": ["c", "d"], "arena.3": ["e"] }
  },
  {
    name: "prefers the fullest instance that still has room",
    ops: [
      { place: "a", in: "lobby" },
      { place: "b", in: "lobby" },
      { place: "c", in: "lobby" },
      { place: "d", in: "lobby", expect: placed("lobby.2", true) },
      { place: "e", in: "lobby", expect: placed("lobby.2", false) },
      { remove: "a", from: "lobby.1" },
      { remove: "b", from: "lobby.1" }, // lobby.1: 1 player, lobby.2: 2 players
      { place: "f", in: "lobby", expect: placed("lobby.2", false) },
      { place: "g", in: "lobby", expect: placed("lobby.1", false) } // lobby.2 is full now
    ],
    instances: { "lobby.1": ["c", "g"], "lobby.2": ["d", "e", "f"] }
  },
  {
    name: "an empty instance is reused before a new one is created",
    ops: [
      { place: "a", in: "arena" },
      { remove: "a", from: "arena.1", at: 5 },
      { place: "b", in: "arena", at: 6, expect: placed("arena.1", false) }
    ],
    instances: { "arena.1": ["b"] },
    emptySince: { "arena.1": null }
  },
  {
    name: "re-placing a placed player is idempotent",
    ops: [
      { place: "a", in: "arena", expect: placed("arena.1", true) },
      { place: "a", in: "arena", expect: placed("arena.1", false) },
      { place: "a", in: "arena", expect: placed("arena.1", false) }
    ],
    instances: { "arena.1": ["a"] },
    placements: { a: "arena.1" }
  },
  {
    name: "re-placing a player in a full instance keeps it there",
    ops: [
      { place: "a", in: "arena" },
      { place: "b", in: "arena" },
      { place: "a", in: "arena", expect: placed("arena.1", false) }
    ],
    instances: { "arena.1": ["a", "b"] }
  },
  {
    name: "moving a player to another experience removes it from the old instance",
    ops: [
      { place: "a", in: "arena" },
      { place: "b", in: "arena" },
      { place: "a", in: "lobby", at: 9, expect: placed("lobby.1", true) }
    ],
    instances: { "arena.1": ["b"], "lobby.1": ["a"] },
    placements: { a: "lobby.1", b: "arena.1" },
    emptySince: { "arena.1": null, "lobby.1": null }
  },
  {
    name: "moving the last player away marks the old instance empty",
    ops: [
      { place: "a", in: "arena" },
      { place: "a", in: "lobby", at: 9 }
    ],
    instances: { "arena.1": [], "lobby.1": ["a"] },
    placements: { a: "lobby.1" },
    emptySince: { "arena.1": 9, "lobby.1": null }
  },
  {
    name: "removePlayer sets emptySince only when the instance empties",
    ops: [
      { place: "a", in: "lobby" },
      { place: "b", in: "lobby" },
      { remove: "a", from: "lobby.1", at: 10 }
    ],
    instances: { "lobby.1": ["b"] },
    placements: { b: "lobby.1" },
    emptySince: { "lobby.1": null }
  },
  {
    name: "removing the last player sets emptySince to that time",
    ops: [
      { place: "a", in: "lobby" },
      { place: "b", in: "lobby" },
      { remove: "a", from: "lobby.1", at: 10 },
      { remove: "b", from: "lobby.1", at: 20 }
    ],
    instances: { "lobby.1": [] },
    placements: {},
    emptySince: { "lobby.1": 20 }
  },
  {
    name: "removing again from an empty instance keeps the first emptySince",
    ops: [
      { place: "a", in: "lobby" },
      { remove: "a", from: "lobby.1", at: 10 },
      { remove: "a", from: "lobby.1", at: 30 },
      { remove: "ghost", from: "lobby.1", at: 40 }
    ],
    instances: { "lobby.1": [] },
    emptySince: { "lobby.1": 10 }
  },
  {
    name: "removing a player from an unknown instance is a no-op",
    ops: [
      { place: "a", in: "arena" },
      { remove: "a", from: "arena.9", at: 10 }
    ],
    instances: { "arena.1": ["a"] },
    placements: { a: "arena.1" },
    emptySince: { "arena.1": null }
  },
  {
    name: "a stale remove (player already moved) does not drop the current placement",
    ops: [
      { place: "a", in: "arena" },
      { place: "a", in: "lobby", at: 5 },
      { remove: "a", from: "arena.1", at: 6 }
    ],
    instances: { "arena.1": [], "lobby.1": ["a"] },
    placements: { a: "lobby.1" },
    emptySince: { "arena.1": 5, "lobby.1": null }
  },
  {
    name: "reapEmpty removes only instances empty for at least the grace period",
    ops: [
      { place: "a", in: "lobby", at: 0 }, // lobby.1
      { place: "b", in: "arena", at: 0 }, // arena.1
      { place: "c", in: "arena", at: 0 },
      { place: "d", in: "arena", at: 0 }, // arena.2
      { remove: "a", from: "lobby.1", at: 100 },
      { remove: "d", from: "arena.2", at: 150 },
      { reap: 129, grace: 30, expect: [] },
      { reap: 130, grace: 30, expect: ["lobby.1"] },
      { reap: 179, grace: 30, expect: [] },
      { reap: 180, grace: 30, expect: ["arena.2"] },
      { reap: 10_000, grace: 30, expect: [] }
    ],
    instances: { "arena.1": ["b", "c"] },
    placements: { b: "arena.1", c: "arena.1" }
  },
  {
    name: "reapEmpty with grace 0 reaps empty instances at once, never occupied ones",
    ops: [
      { place: "a", in: "lobby", at: 0 },
      { place: "b", in: "arena", at: 0 },
      { remove: "a", from: "lobby.1", at: 50 },
      { reap: 50, grace: 0, expect: ["lobby.1"] }
    ],
    instances: { "arena.1": ["b"] }
  },
  {
    name: "an instance refilled before the grace period ends is not reaped",
    ops: [
      { place: "a", in: "arena", at: 0 },
      { remove: "a", from: "arena.1", at: 10 },
      { place: "b", in: "arena", at: 20, expect: placed("arena.1", false) },
      { reap: 1000, grace: 30, expect: [] }
    ],
    instances: { "arena.1": ["b"] },
    emptySince: { "arena.1": null }
  },
  {
    name: "the instance limit yields Full with a reason",
    ops: [
      { place: "a", in: "arena", max: 1, expect: placed("arena.1", true) },
      { place: "b", in: "arena", max: 1, expect: placed("arena.1", false) },
      { place: "c", in: "arena", max: 1, expect: { _tag: "Full", reason: "experience \"arena\" is at its instance limit" } }
    ],
    instances: { "arena.1": ["a", "b"] },
    placements: { a: "arena.1", b: "arena.1" }
  },
  {
    name: "the instance limit counts only the experience's own instances",
    ops: [
      { place: "a", in: "lobby", max: 1 },
      { place: "b", in: "arena", max: 1, expect: placed("arena.1", true) }
    ],
    instances: { "lobby.1": ["a"], "arena.1": ["b"] }
  },
  {
    name: "an instance limit of 0 refuses every placement",
    ops: [{ place: "a", in: "arena", max: 0, expect: { _tag: "Full", reason: "experience \"arena\" is at its instance limit" } }],
    instances: {},
    placements: {}
  },
  {
    name: "ids are never reused after an instance is reaped",
    ops: [
      { place: "a", in: "arena", at: 0, expect: placed("arena.1", true) },
      { place: "b", in: "arena", at: 0 },
      { place: "c", in: "arena", at: 0, expect: placed("arena.2", true) },
      { remove: "c", from: "arena.2", at: 10 },
      { reap: 100, grace: 30, expect: ["arena.2"] },
      { place: "d", in: "arena", at: 100, expect: placed("arena.3", true) },
      { remove: "a", from: "arena.1", at: 110 },
      { remove: "b", from: "arena.1", at: 110 },
      { remove: "d", from: "arena.3", at: 110 },
      { reap: 200, grace: 30, expect: ["arena.1", "arena.3"] },
      { place: "e", in: "arena", at: 200, expect: placed("arena.4", true) }
    ],
    instances: { "arena.4": ["e"] },
    placements: { e: "arena.4" }
  },
  {
    name: "instance numbers are counted per experience",
    ops: [
      { place: "a", in: "arena", expect: placed("arena.1", true) },
      { place: "b", in: "lobby", expect: placed("lobby.1", true) },
      { place: "c", in: "arena" },
      { place: "d", in: "arena", expect: placed("arena.2", true) }
    ],
    instances: { "arena.1": ["a", "c"], "lobby.1": ["b"], "arena.2": ["d"] }
  },
  {
    name: "a player whose instance was reaped is placed afresh",
    ops: [
      { place: "a", in: "arena", at: 0 },
      { remove: "a", from: "arena.1", at: 0 },
      { reap: 100, grace: 30, expect: ["arena.1"] },
      { place: "a", in: "arena", at: 100, expect: placed("arena.2", true) }
    ],
    instances: { "arena.2": ["a"] },
    placements: { a: "arena.2" }
  }
]

describe("Placement", () => {
  it.each(cases)("$name", (c) => {
    const registry = run(c.ops)
    expect(occupancy(registry)).toEqual(c.instances)
    if (c.placements !== undefined) expect(Object.fromEntries(registry.placements)).toEqual(c.placements)
    if (c.emptySince !== undefined) {
      const actual = Object.fromEntries([...registry.instances.values()].map((i) => [i.worldId, i.emptySince]))
      expect(actual).toEqual(c.emptySince)
    }
    // Invariants: placements and memberships agree, and no instance is over capacity.
    for (const [playerId, worldId] of registry.placements) {
      expect(registry.instances.get(worldId)?.players.has(playerId), `${playerId} in ${worldId}`).toBe(true)
    }
    for (const instance of registry.instances.values()) {
      expect(instance.players.size).toBeLessThanOrEqual(instance.maxPlayers)
      for (const p of instance.players) expect(registry.placements.get(p)).toBe(instance.worldId)
      if (instance.players.size > 0) expect(instance.emptySince).toBeNull()
    }
  })

  it("a new instance records its experience, capacity and creation time", () => {
    const registry = emptyRegistry()
    placePlayer(registry, lobby, "a", 1234)
    expect(registry.instances.get("lobby.1")).toEqual({
      worldId: "lobby.1",
      experienceId: "lobby",
      maxPlayers: 3,
      createdAt: 1234,
      players: new Set(["a"]),
      emptySince: null
    })
  })

  it("many players fill instances densely: ceil(n / max) instances", () => {
    const registry = emptyRegistry()
    for (let i = 0; i < 50; i++) placePlayer(registry, lobby, `p${i}`, i)
    expect(registry.instances.size).toBe(Math.ceil(50 / 3))
    const sizes = [...registry.instances.values()].map((i) => i.players.size)
    expect(sizes.filter((n) => n < 3)).toHaveLength(1)
  })
})
