import { describe, expect, it } from "vitest"
import { keyString, type MeshGeometry, parseKeyString, type RegionKey } from "../../../src/region/mesh/MeshGeometry.js"
import { decide, type MeshPolicy, type RegionLoad, validatePolicy } from "../../../src/region/mesh/MeshPolicy.js"
import { RegionDirectory } from "../../../src/region/mesh/RegionDirectory.js"

const g: MeshGeometry = { rootSize: 2000, minSize: 500, overlap: 100, hysteresis: 25, rootsX: 2, rootsY: 1, rootsZ: 2 }
const policy: MeshPolicy = { splitPlayers: 100, mergePlayers: 20, tickBudgetMs: 50, cooldownMs: 60_000 }
const NOW = 1_000_000
const k = (s: string): RegionKey => parseKeyString(s)!

/** Children of 0/0/0/0 and of 1/0/0/0, for readable tables. */
const kids0 = ["1/0/0/0", "1/0/0/1", "1/0/1/0", "1/0/1/1", "1/1/0/0", "1/1/0/1", "1/1/1/0", "1/1/1/1"]
const kids00 = ["2/0/0/0", "2/0/0/1", "2/0/1/0", "2/0/1/1", "2/1/0/0", "2/1/0/1", "2/1/1/0", "2/1/1/1"]

interface Case {
  readonly name: string
  /** Keys split, in order, before deciding. */
  readonly splits?: ReadonlyArray<string>
  /** Key -> players, or [players, tickP99Ms], or "stale" (reports stopped unannounced). */
  readonly loads?: Record<string, number | readonly [number, number] | "stale">
  /** Key -> ms before NOW of its last split/merge. */
  readonly changedAgo?: Record<string, number>
  readonly policy?: Partial<MeshPolicy>
  /** "Split 0/0/0/0" or "Merge 0/0/0/0". */
  readonly expected: ReadonlyArray<string>
  readonly reasons?: ReadonlyArray<RegExp>
}

const spread = (keys: ReadonlyArray<string>, each: number): Record<string, number> =>
  Object.fromEntries(keys.map((key) => [key, each]))

const cases: ReadonlyArray<Case> = [
  { name: "an idle world stays as it is", expected: [] },
  {
    name: "a region over splitPlayers splits",
    loads: { "0/0/0/0": 101 },
    expected: ["Split 0/0/0/0"],
    reasons: [/101 players > splitPlayers 100/]
  },
  { name: "exactly splitPlayers does not split", loads: { "0/0/0/0": 100 }, expected: [] },
  {
    name: "a region over the tick budget splits even with few players",
    loads: { "0/1/0/1": [5, 62.34] },
    expected: ["Split 0/1/0/1"],
    reasons: [/tick p99 62.3 ms > budget 50 ms/]
  },
  {
    name: "a region at the minimum size does not split",
    splits: ["0/0/0/0", "1/0/0/0"],
    loads: { ...spread(kids00, 0), "2/0/0/0": 500 },
    expected: []
  },
  {
    name: "a crowded level-1 region splits down to the minimum size",
    splits: ["0/0/0/0"],
    loads: { ...spread(kids0, 0), "1/0/0/0": 400 },
    expected: ["Split 1/0/0/0"]
  },
  {
    name: "several splits come in canonical order",
    loads: { "0/1/0/1": 200, "0/0/0/1": 150, "0/0/0/0": [0, 80] },
    expected: ["Split 0/0/0/0", "Split 0/0/0/1", "Split 0/1/0/1"]
  },
  {
    name: "siblings with few players merge",
    splits: ["0/0/0/0"],
    loads: spread(kids0, 2),
    expected: ["Merge 0/0/0/0"],
    reasons: [/8 children hold 16 players < mergePlayers 20/]
  },
  {
    name: "siblings with no load reports merge (missing = 0 players)",
    splits: ["0/0/0/0"],
    expected: ["Merge 0/0/0/0"],
    reasons: [/hold 0 players/]
  },
  {
    name: "siblings at mergePlayers in total do not merge",
    splits: ["0/0/0/0"],
    loads: { ...spread(kids0, 2), "1/1/1/1": 6 },
    expected: []
  },
  {
    name: "a child changed within the cooldown blocks the merge",
    splits: ["0/0/0/0"],
    changedAgo: { "1/0/1/0": 59_999 },
    expected: []
  },
  {
    name: "the parent changed within the cooldown blocks the merge",
    splits: ["0/0/0/0"],
    changedAgo: { "0/0/0/0": 1_000 },
    expected: []
  },
  {
    name: "once the cooldown has passed the merge goes ahead",
    splits: ["0/0/0/0"],
    changedAgo: { "0/0/0/0": 60_000, "1/0/0/0": 90_000 },
    expected: ["Merge 0/0/0/0"]
  },
  {
    name: "the cooldown does not hold back a split",
    splits: ["0/0/0/0"],
    loads: { "1/0/0/0": 300 },
    changedAgo: { "1/0/0/0": 10, "0/0/0/0": 10 },
    expected: ["Split 1/0/0/0"]
  },
  {
    name: "an incomplete sibling set does not merge (only the complete set below it does)",
    splits: ["0/0/0/0", "1/0/0/0"],
    expected: ["Merge 1/0/0/0"]
  },
  {
    name: "never merge what would split again: total >= splitPlayers",
    splits: ["0/0/0/0"],
    loads: spread(kids0, 13), // 104 in total
    policy: { mergePlayers: 200 },
    expected: []
  },
  {
    name: "a child splitting on tick budget is not merged in the same round",
    splits: ["0/0/0/0"],
    loads: { "1/0/0/1": [1, 70] },
    expected: ["Split 1/0/0/1"]
  },
  {
    name: "splits come before merges",
    splits: ["0/1/0/1", "0/0/0/0"],
    loads: { "0/1/0/0": 120, ...spread(kids0, 1) },
    expected: ["Split 0/1/0/0", "Merge 0/0/0/0", "Merge 0/1/0/1"]
  },
  {
    name: "a child whose reports stopped unannounced (stale) blocks the merge: its players are unknown",
    splits: ["0/0/0/0"],
    loads: { ...spread(kids0, 1), "1/0/1/1": "stale" },
    expected: []
  },
  {
    name: "a stale region is not split on its last report",
    loads: { "0/0/0/0": "stale" },
    expected: []
  },
  {
    name: "loads for regions of another world are ignored",
    loads: { "0/0/0/0": 0 },
    expected: []
  }
]

describe("decide", () => {
  it.each(cases)("$name", (c) => {
    const d = new RegionDirectory(g, "w")
    for (const s of c.splits ?? []) d.split(k(s))
    const loads = new Map<string, RegionLoad>()
    for (const [key, load] of Object.entries(c.loads ?? {})) {
      if (load === "stale") {
        loads.set(`w/${key}`, { regionId: `w/${key}`, players: 500, tickP99Ms: 500, stale: true })
        continue
      }
      const [players, tickP99Ms] = typeof load === "number" ? [load, 0] : load
      loads.set(`w/${key}`, { regionId: `w/${key}`, players, tickP99Ms })
    }
    loads.set("other/0/0/0/0", { regionId: "other/0/0/0/0", players: 9999, tickP99Ms: 9999 })
    const changed = new Map(Object.entries(c.changedAgo ?? {}).map(([key, ago]) => [`w/${key}`, NOW - ago]))
    const decisions = decide(d, loads, { ...policy, ...c.policy }, changed, NOW)
    expect(decisions.map((m) => `${m._tag} ${keyString(m._tag === "Split" ? m.key : m.parent)}`)).toEqual(c.expected)
    c.reasons?.forEach((re, i) => expect(decisions[i]?.reason).toMatch(re))
    // Every decision is applicable to the directory as it stands.
    for (const m of decisions) expect(m._tag === "Split" ? d.canSplit(m.key) : d.canMerge(m.parent)).toBe(true)
  })

  it("is deterministic regardless of map insertion order", () => {
    const d = new RegionDirectory(g, "w")
    d.split(k("0/0/0/0"))
    d.split(k("0/1/0/1"))
    const entries: Array<[string, RegionLoad]> = d.leafIds().map((id, i) => [id, { regionId: id, players: i % 3, tickP99Ms: 0 }])
    const a = decide(d, new Map(entries), policy, new Map(), NOW)
    const b = decide(d, new Map([...entries].reverse()), policy, new Map(), NOW)
    expect(b).toEqual(a)
  })
})

describe("validatePolicy", () => {
  it.each<[string, Partial<MeshPolicy>, RegExp | undefined]>([
    ["the defaults", {}, undefined],
    ["mergePlayers 0 (never merge)", { mergePlayers: 0 }, undefined],
    ["splitPlayers 0", { splitPlayers: 0 }, /splitPlayers must be/],
    ["mergePlayers above splitPlayers", { mergePlayers: 101 }, /must not exceed splitPlayers/],
    ["a negative mergePlayers", { mergePlayers: -1 }, /mergePlayers must be/],
    ["a zero tick budget", { tickBudgetMs: 0 }, /tickBudgetMs/],
    ["a NaN cooldown", { cooldownMs: Number.NaN }, /cooldownMs/]
  ])("%s", (_name, patch, error) => {
    const result = validatePolicy({ ...policy, ...patch })
    if (error === undefined) expect(result).toBeUndefined()
    else expect(result).toMatch(error)
  })
})
