import { describe, expect, it } from "vitest"
import { audit, type AuditViolation } from "../../../src/region/mesh/AuthorityAudit.js"

/** "region:entity@epoch" claims, for compact tables. */
const claims = (...specs: ReadonlyArray<string>) =>
  specs.map((s) => {
    const [regionId, rest] = s.split(":") as [string, string]
    const [entityId, epoch] = rest.split("@")
    return { regionId, entityId: Number(entityId), epoch: Number(epoch) }
  })

interface Case {
  readonly name: string
  readonly claims: ReadonlyArray<string>
  readonly expected?: ReadonlyArray<number>
  readonly violations: ReadonlyArray<AuditViolation>
}

const cases: ReadonlyArray<Case> = [
  { name: "nothing to check", claims: [], violations: [] },
  { name: "one claim per entity", claims: ["a:1@0", "a:2@3", "b:3@1"], expected: [1, 2, 3], violations: [] },
  {
    name: "an expected entity nobody claims",
    claims: ["a:1@0"],
    expected: [1, 2],
    violations: [{ entityId: 2, kind: "none", regions: [], epoch: -1 }]
  },
  {
    name: "two regions claim the same epoch",
    claims: ["b:7@2", "a:7@2"],
    violations: [{ entityId: 7, kind: "duplicate", regions: ["a", "b"], epoch: 2 }]
  },
  { name: "a stale claim at a lower epoch is fine (handoff not yet acked)", claims: ["a:7@2", "b:7@3"], violations: [] },
  { name: "stale claims in any order are fine", claims: ["b:7@3", "a:7@2", "c:7@1"], violations: [] },
  {
    name: "a duplicate at a lower epoch does not matter once one region holds a higher one",
    claims: ["a:7@2", "b:7@2", "c:7@3"],
    violations: []
  },
  {
    name: "a duplicate at the highest epoch despite older stale claims",
    claims: ["a:7@1", "b:7@4", "c:7@4", "d:7@4"],
    violations: [{ entityId: 7, kind: "duplicate", regions: ["b", "c", "d"], epoch: 4 }]
  },
  { name: "the same region repeating its claim is one claim", claims: ["a:7@2", "a:7@2"], violations: [] },
  {
    name: "claims for unexpected entities are still checked",
    claims: ["a:9@0", "b:9@0"],
    expected: [],
    violations: [{ entityId: 9, kind: "duplicate", regions: ["a", "b"], epoch: 0 }]
  },
  {
    name: "violations come sorted by entity, an expected id listed twice is reported once",
    claims: ["a:5@1", "b:5@1"],
    expected: [8, 5, 2, 8],
    violations: [
      { entityId: 2, kind: "none", regions: [], epoch: -1 },
      { entityId: 5, kind: "duplicate", regions: ["a", "b"], epoch: 1 },
      { entityId: 8, kind: "none", regions: [], epoch: -1 }
    ]
  }
]

describe("audit", () => {
  it.each(cases)("$name", (c) => {
    expect(audit(claims(...c.claims), c.expected)).toEqual(c.violations)
  })

  it("accepts any iterable", () => {
    function* gen() {
      yield { regionId: "a", entityId: 1, epoch: 0 }
      yield { regionId: "b", entityId: 1, epoch: 0 }
    }
    expect(audit(gen(), new Set([1, 2])).map((v) => v.kind)).toEqual(["duplicate", "none"])
  })
})
