import { FastCheck as fc } from "effect"
import { describe, expect, it } from "vitest"
import {
  defaultScalingPolicy,
  desired,
  initialScalingState,
  type InstanceMetrics,
  nextState,
  type ScalingDecision,
  type ScalingMetrics,
  type ScalingPolicy,
  type ScalingState,
  validateScalingPolicy
} from "../../src/scheduler/autoscale/ScalingPolicy.js"

const policy: ScalingPolicy = {
  minInstances: 1,
  maxInstances: 10,
  targetPlayersPerInstance: 40,
  scaleUpThreshold: 0.8,
  scaleDownThreshold: 0.3,
  targetCpu: 0.7,
  targetTickMs: 40,
  bufferInstances: 0,
  scaleUpCooldownMs: 1000,
  scaleDownCooldownMs: 5000,
  maxStep: 10
}

/** An active, healthy, calm instance of 50 slots unless told otherwise. */
const inst = (id: string, players: number, over: Partial<InstanceMetrics> = {}): InstanceMetrics => ({
  id,
  players,
  maxPlayers: 50,
  cpu: 0.2,
  tickP99Ms: 10,
  draining: false,
  healthy: true,
  ...over
})

const NOW = 100_000

type Expected =
  | { readonly _tag: "ScaleUp"; readonly count: number; readonly reason: string }
  | { readonly _tag: "ScaleDown"; readonly drain: ReadonlyArray<string>; readonly terminate: ReadonlyArray<string>; readonly reason: string }
  | { readonly _tag: "Hold"; readonly reason: string }

interface Case {
  readonly name: string
  readonly policy?: Partial<ScalingPolicy>
  readonly instances: ReadonlyArray<InstanceMetrics>
  readonly queued?: number
  readonly state?: Partial<ScalingState>
  /** `reason` is a substring of the decision's reason. */
  readonly expect: Expected
}

const cases: ReadonlyArray<Case> = [
  // --- hold
  {
    name: "holds when the instances match the load",
    instances: [inst("a", 40), inst("b", 30)],
    expect: { _tag: "Hold", reason: "steady: 2 active instances, 2 needed" }
  },
  {
    name: "holds with no instances, no players and a minimum of 0",
    policy: { minInstances: 0 },
    instances: [],
    expect: { _tag: "Hold", reason: "steady: 0 active instances, 0 needed" }
  },
  // --- scale up
  {
    name: "scales up on players",
    instances: [inst("a", 45), inst("b", 45), inst("c", 40)],
    expect: { _tag: "ScaleUp", count: 1, reason: "130 players + 0 queued need 4 instances at 40 per instance" }
  },
  {
    name: "scales up on the queue",
    instances: [inst("a", 40), inst("b", 40)],
    queued: 50,
    expect: { _tag: "ScaleUp", count: 2, reason: "80 players + 50 queued need 4 instances" }
  },
  {
    name: "scales up on CPU over target",
    instances: [inst("a", 20, { cpu: 0.9 }), inst("b", 20, { cpu: 0.9 })],
    expect: { _tag: "ScaleUp", count: 1, reason: "mean CPU 90% is over the 70% target" }
  },
  {
    name: "scales up on tick time over target",
    instances: [inst("a", 20, { tickP99Ms: 60 }), inst("b", 20, { tickP99Ms: 60 })],
    expect: { _tag: "ScaleUp", count: 1, reason: "mean tick p99 60.0 ms is over the 40 ms target" }
  },
  {
    name: "CPU exactly at target does not scale up",
    instances: [inst("a", 30, { cpu: 0.7 }), inst("b", 30, { cpu: 0.7 }), inst("c", 30, { cpu: 0.7 })],
    expect: { _tag: "Hold", reason: "steady: 3 active instances, 3 needed" }
  },
  {
    name: "a CPU target of 0 disables the CPU rule",
    policy: { targetCpu: 0 },
    instances: [inst("a", 20, { cpu: 1 })],
    expect: { _tag: "Hold", reason: "steady" }
  },
  {
    name: "the scale-up threshold adds one even when the target says enough",
    policy: { targetPlayersPerInstance: 48 },
    instances: [inst("a", 42), inst("b", 42)],
    expect: { _tag: "ScaleUp", count: 1, reason: "utilisation 84% is over the scale-up threshold 80%" }
  },
  {
    name: "the largest of the rules wins and every reason is given",
    instances: [inst("a", 45, { cpu: 1 }), inst("b", 45, { cpu: 1 })],
    expect: { _tag: "ScaleUp", count: 1, reason: "90 players + 0 queued need 3 instances at 40 per instance; mean CPU 100%" }
  },
  // --- buffer
  {
    name: "keeps a warm buffer: scales up when no spare instance is left",
    policy: { bufferInstances: 1 },
    instances: [inst("a", 35), inst("b", 35)],
    expect: { _tag: "ScaleUp", count: 1, reason: "need 2 instances at 40 per instance + 1 warm" }
  },
  {
    name: "buffer already there: holds",
    policy: { bufferInstances: 1 },
    instances: [inst("a", 40), inst("b", 30), inst("c", 0)],
    expect: { _tag: "Hold", reason: "steady: 3 active instances, 3 needed" }
  },
  {
    name: "a buffer with no players at all keeps the buffer warm",
    policy: { minInstances: 0, bufferInstances: 2 },
    instances: [],
    expect: { _tag: "ScaleUp", count: 2, reason: "0 players + 0 queued need 0 instances at 40 per instance + 2 warm" }
  },
  {
    name: "scale-down keeps the buffer",
    policy: { bufferInstances: 2 },
    instances: [inst("a", 0), inst("b", 0), inst("c", 0), inst("d", 0)],
    expect: { _tag: "ScaleDown", drain: [], terminate: ["a", "b"], reason: "4 active, 2 would do, removing 2" }
  },
  // --- cooldowns
  {
    name: "scale-up cooldown blocks a scale-up",
    instances: [inst("a", 45), inst("b", 45), inst("c", 40)],
    state: { lastScaleUpAt: NOW - 400 },
    expect: { _tag: "Hold", reason: "scale-up cooldown, 600 ms left (wants +1: 130 players" }
  },
  {
    name: "scale-up cooldown ends exactly at its length",
    instances: [inst("a", 45), inst("b", 45), inst("c", 40)],
    state: { lastScaleUpAt: NOW - 1000 },
    expect: { _tag: "ScaleUp", count: 1, reason: "130 players" }
  },
  {
    name: "a recent scale-down does not block a scale-up",
    instances: [inst("a", 45), inst("b", 45), inst("c", 40)],
    state: { lastScaleDownAt: NOW - 1 },
    expect: { _tag: "ScaleUp", count: 1, reason: "130 players" }
  },
  {
    name: "scale-down cooldown blocks a scale-down",
    instances: [inst("a", 0), inst("b", 0), inst("c", 10)],
    state: { lastScaleDownAt: NOW - 1000 },
    expect: { _tag: "Hold", reason: "scale-down cooldown, 4000 ms left (3 active, 1 would do)" }
  },
  {
    name: "scale-down cooldown also runs from the last scale-up",
    instances: [inst("a", 0), inst("b", 0), inst("c", 10)],
    state: { lastScaleUpAt: NOW - 2000, lastScaleDownAt: NOW - 60_000 },
    expect: { _tag: "Hold", reason: "scale-down cooldown, 3000 ms left" }
  },
  {
    name: "scale-down after its cooldown",
    instances: [inst("a", 0), inst("b", 0), inst("c", 10)],
    state: { lastScaleUpAt: NOW - 5000, lastScaleDownAt: NOW - 6000 },
    expect: { _tag: "ScaleDown", drain: [], terminate: ["a", "b"], reason: "removing 2" }
  },
  // --- clamps
  {
    name: "below the minimum scales up regardless of cooldown",
    policy: { minInstances: 3 },
    instances: [inst("a", 0)],
    state: { lastScaleUpAt: NOW },
    expect: { _tag: "ScaleUp", count: 2, reason: "below minimum: 1 active instance, min 3" }
  },
  {
    name: "below the minimum from nothing",
    policy: { minInstances: 2 },
    instances: [],
    expect: { _tag: "ScaleUp", count: 2, reason: "below minimum: 0 active instances, min 2" }
  },
  {
    name: "below the minimum ignores maxStep for the minimum",
    policy: { minInstances: 4, maxStep: 1 },
    instances: [],
    expect: { _tag: "ScaleUp", count: 4, reason: "below minimum" }
  },
  {
    name: "below the minimum with more load goes past the minimum (within maxStep)",
    policy: { minInstances: 2 },
    instances: [inst("a", 45)],
    queued: 80,
    expect: { _tag: "ScaleUp", count: 3, reason: "below minimum: 1 active instance, min 2; 45 players + 80 queued need 4 instances" }
  },
  {
    name: "above the maximum scales down regardless of cooldown and utilisation",
    policy: { maxInstances: 2 },
    instances: [inst("a", 10), inst("b", 45), inst("c", 30), inst("d", 0)],
    state: { lastScaleDownAt: NOW, lastScaleUpAt: NOW },
    expect: { _tag: "ScaleDown", drain: ["a"], terminate: ["d"], reason: "above maximum: 4 active instances, max 2" }
  },
  {
    name: "at the maximum a scale-up holds",
    policy: { maxInstances: 3 },
    instances: [inst("a", 50), inst("b", 50), inst("c", 50)],
    expect: { _tag: "Hold", reason: "at maximum (3): 150 players + 0 queued need 4 instances" }
  },
  {
    name: "a scale-up is capped by the maximum",
    policy: { maxInstances: 4 },
    instances: [inst("a", 50), inst("b", 50), inst("c", 50)],
    queued: 90,
    expect: { _tag: "ScaleUp", count: 1, reason: "(capped by max 4)" }
  },
  {
    name: "scale down to zero when the minimum is 0",
    policy: { minInstances: 0 },
    instances: [inst("a", 0), inst("b", 0)],
    expect: { _tag: "ScaleDown", drain: [], terminate: ["a", "b"], reason: "2 active, 0 would do, removing 2" }
  },
  {
    name: "scale-down stops at the minimum",
    policy: { minInstances: 2 },
    instances: [inst("a", 0), inst("b", 0), inst("c", 0)],
    expect: { _tag: "ScaleDown", drain: [], terminate: ["a"], reason: "3 active, 2 would do, removing 1" }
  },
  // --- maxStep
  {
    name: "maxStep limits a scale-up",
    policy: { maxStep: 2 },
    instances: [inst("a", 50)],
    queued: 250,
    expect: { _tag: "ScaleUp", count: 2, reason: "(limited to maxStep 2 of +7)" }
  },
  {
    name: "maxStep limits a scale-down",
    policy: { maxStep: 1 },
    instances: [inst("a", 0), inst("b", 0), inst("c", 5), inst("d", 10)],
    expect: { _tag: "ScaleDown", drain: [], terminate: ["a"], reason: "removing 1 (limited to 1 of 3)" }
  },
  // --- scale-down selection
  {
    name: "scale-down terminates empty instances first, then drains the least populated",
    instances: [inst("d", 10), inst("c", 5), inst("b", 0), inst("a", 0)],
    expect: { _tag: "ScaleDown", drain: ["c"], terminate: ["a", "b"], reason: "utilisation 8% is under the scale-down threshold 30%: 4 active, 1 would do, removing 3" }
  },
  {
    name: "occupied instances are drained, never terminated",
    instances: [inst("a", 3), inst("b", 8), inst("c", 12)],
    expect: { _tag: "ScaleDown", drain: ["a", "b"], terminate: [], reason: "removing 2" }
  },
  {
    name: "no scale-down while utilisation is not under the scale-down threshold",
    instances: [inst("a", 20), inst("b", 20), inst("c", 20)],
    expect: { _tag: "Hold", reason: "3 active but 2 would do; utilisation 40% is not under the scale-down threshold 30%" }
  },
  {
    name: "scale-down never removes so much that the rest would trip the scale-up threshold",
    policy: { targetPlayersPerInstance: 45 },
    instances: [inst("a", 44), inst("b", 0), inst("c", 0)],
    expect: { _tag: "ScaleDown", drain: [], terminate: ["b"], reason: "3 active, 1 would do, removing 1 (limited to 1 of 2)" }
  },
  {
    name: "CPU keeps instances a player count would remove (the drained load moves to the rest)",
    instances: [inst("a", 5, { cpu: 0.5 }), inst("b", 5, { cpu: 0.5 }), inst("c", 5, { cpu: 0.5 })],
    expect: { _tag: "Hold", reason: "3 active but 1 would do; removing any would put the rest's mean CPU over its target" }
  },
  {
    name: "tick time keeps instances a player count would remove",
    instances: [inst("a", 5, { tickP99Ms: 25 }), inst("b", 5, { tickP99Ms: 25 })],
    expect: { _tag: "Hold", reason: "removing any would put the rest's mean tick p99 over its target" }
  },
  {
    name: "the CPU guard removes as many as it can",
    instances: [inst("a", 5, { cpu: 0.3 }), inst("b", 5, { cpu: 0.3 }), inst("c", 5, { cpu: 0.3 })],
    expect: { _tag: "ScaleDown", drain: ["a"], terminate: [], reason: "removing 1 (limited to 1 of 2)" }
  },
  {
    name: "idle CPU on empty instances does not hold them",
    instances: [inst("a", 0, { cpu: 0.6 }), inst("b", 0, { cpu: 0.6 }), inst("c", 10, { cpu: 0.6 })],
    expect: { _tag: "ScaleDown", drain: [], terminate: ["a", "b"], reason: "removing 2" }
  },
  // --- draining and unhealthy instances
  {
    name: "draining and unhealthy instances are not capacity, but their players are demand",
    instances: [inst("a", 40), inst("b", 40, { draining: true }), inst("c", 0, { healthy: false })],
    expect: { _tag: "ScaleUp", count: 1, reason: "80 players + 0 queued need 2 instances" }
  },
  {
    name: "an unhealthy instance below the minimum is replaced",
    policy: { minInstances: 2 },
    instances: [inst("a", 10), inst("b", 0, { healthy: false })],
    expect: { _tag: "ScaleUp", count: 1, reason: "below minimum: 1 active instance, min 2" }
  },
  {
    name: "an unhealthy instance is never picked for scale-down",
    instances: [inst("a", 0, { healthy: false }), inst("b", 10), inst("c", 0)],
    expect: { _tag: "ScaleDown", drain: [], terminate: ["c"], reason: "removing 1" }
  },
  {
    name: "a drained instance (draining, empty) is terminated",
    instances: [inst("a", 30), inst("b", 0, { draining: true })],
    expect: { _tag: "ScaleDown", drain: [], terminate: ["b"], reason: "terminating 1 drained instance (b); steady: 1 active instance, 1 needed" }
  },
  {
    name: "a draining instance with players is left alone",
    instances: [inst("a", 30), inst("b", 5, { draining: true })],
    expect: { _tag: "Hold", reason: "steady: 1 active instance, 1 needed" }
  },
  {
    name: "a drained instance is terminated even during a cooldown",
    instances: [inst("a", 45), inst("b", 45), inst("c", 0, { draining: true })],
    state: { lastScaleUpAt: NOW - 10 },
    expect: { _tag: "ScaleDown", drain: [], terminate: ["c"], reason: "terminating 1 drained instance (c); scale-up cooldown, 990 ms left" }
  },
  {
    name: "drained instances are terminated along with a scale-down",
    instances: [inst("a", 0), inst("b", 10), inst("c", 0, { draining: true })],
    expect: { _tag: "ScaleDown", drain: [], terminate: ["a", "c"], reason: "removing 1" }
  },
  {
    name: "a scale-up waits for the drained instance to be terminated next round",
    policy: { minInstances: 2 },
    instances: [inst("a", 10), inst("c", 0, { draining: true })],
    expect: { _tag: "ScaleUp", count: 1, reason: "below minimum" }
  }
]

const decide = (c: Case): ScalingDecision =>
  desired(
    { ...policy, ...c.policy },
    { instances: c.instances, queuedPlayers: c.queued ?? 0 },
    { ...initialScalingState, ...c.state },
    NOW
  )

describe("ScalingPolicy.desired", () => {
  it.each(cases)("$name", (c) => {
    const decision = decide(c)
    const { reason, ...rest } = c.expect
    expect(decision).toMatchObject(rest)
    expect(decision.reason).toContain(reason)
    // The exact shape: no extra fields beyond the tag's.
    expect(Object.keys(decision).sort()).toEqual(Object.keys(c.expect).sort())
  })

  it("is pure: the same input gives the same decision and the input is not mutated", () => {
    const metrics: ScalingMetrics = { instances: [inst("b", 0), inst("a", 3), inst("c", 0)], queuedPlayers: 0 }
    const snapshot = JSON.stringify(metrics)
    const first = desired(policy, metrics, initialScalingState, NOW)
    expect(desired(policy, metrics, initialScalingState, NOW)).toEqual(first)
    expect(JSON.stringify(metrics)).toBe(snapshot)
  })
})

describe("ScalingPolicy.nextState", () => {
  const state: ScalingState = { lastScaleUpAt: 1, lastScaleDownAt: 2 }
  it.each([
    { decision: { _tag: "ScaleUp", count: 1, reason: "" } as const, expected: { lastScaleUpAt: 50, lastScaleDownAt: 2 } },
    { decision: { _tag: "ScaleDown", drain: [], terminate: ["a"], reason: "" } as const, expected: { lastScaleUpAt: 1, lastScaleDownAt: 50 } },
    { decision: { _tag: "Hold", reason: "" } as const, expected: state }
  ])("$decision._tag", ({ decision, expected }) => {
    expect(nextState(state, decision, 50)).toEqual(expected)
  })

  it("a scale-up starts its cooldown: the next round holds, then acts", () => {
    const metrics: ScalingMetrics = { instances: [inst("a", 50), inst("b", 50)], queuedPlayers: 200 }
    const p = { ...policy, maxStep: 1 }
    let s = initialScalingState
    const tags: Array<string> = []
    for (const now of [0, 500, 999, 1000]) {
      const d = desired(p, metrics, s, now)
      tags.push(d._tag)
      s = nextState(s, d, now)
    }
    expect(tags).toEqual(["ScaleUp", "Hold", "Hold", "ScaleUp"])
  })
})

describe("validateScalingPolicy", () => {
  it("accepts the default policy", () => {
    expect(validateScalingPolicy(defaultScalingPolicy)).toEqual([])
  })
  it.each([
    { over: { minInstances: 5, maxInstances: 2 }, problem: "maxInstances (2) is below minInstances (5)" },
    { over: { maxStep: 0 }, problem: "maxStep must be a whole number >= 1 (got 0)" },
    { over: { targetPlayersPerInstance: 0 }, problem: "targetPlayersPerInstance must be > 0" },
    { over: { scaleDownThreshold: 0.9 }, problem: "scaleDownThreshold must be >= 0 and below scaleUpThreshold" },
    { over: { targetCpu: 1.5 }, problem: "targetCpu must be in [0, 1]" }
  ])("$problem", ({ over, problem }) => {
    expect(validateScalingPolicy({ ...defaultScalingPolicy, ...over })).toContain(problem)
  })
})

describe("ScalingPolicy invariants (property)", () => {
  const fraction = (lo: number, hi: number) => fc.integer({ min: Math.round(lo * 100), max: Math.round(hi * 100) }).map((n) => n / 100)
  const arbPolicy: fc.Arbitrary<ScalingPolicy> = fc
    .record({
      minInstances: fc.integer({ min: 0, max: 6 }),
      extra: fc.integer({ min: 0, max: 10 }),
      targetPlayersPerInstance: fc.integer({ min: 1, max: 60 }),
      scaleUpThreshold: fraction(0.5, 1),
      scaleDownThreshold: fraction(0, 0.49),
      targetCpu: fraction(0, 1),
      targetTickMs: fc.integer({ min: 0, max: 60 }),
      bufferInstances: fc.integer({ min: 0, max: 3 }),
      scaleUpCooldownMs: fc.integer({ min: 0, max: 10_000 }),
      scaleDownCooldownMs: fc.integer({ min: 0, max: 10_000 }),
      maxStep: fc.integer({ min: 1, max: 5 })
    })
    .map(({ extra, ...p }) => ({ ...p, maxInstances: p.minInstances + extra }))
  const arbInstances = fc
    .array(
      fc.record({
        players: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 60 })),
        maxPlayers: fc.integer({ min: 1, max: 60 }),
        cpu: fraction(0, 1),
        tickP99Ms: fc.integer({ min: 0, max: 100 }),
        draining: fc.boolean(),
        healthy: fc.oneof(fc.constant(true), fc.boolean())
      }),
      { maxLength: 16 }
    )
    .map((xs) => xs.map((x, i) => ({ id: `i${i}`, ...x })))
  const arbTime = fc.option(fc.integer({ min: 0, max: 20_000 }), { nil: null })

  it("never terminates an instance with players, and the active count ends in [min, max]", () => {
    fc.assert(
      fc.property(
        arbPolicy,
        arbInstances,
        fc.integer({ min: 0, max: 300 }),
        arbTime,
        arbTime,
        (p, instances, queuedPlayers, lastScaleUpAt, lastScaleDownAt) => {
          const now = 20_000
          const decision = desired(p, { instances, queuedPlayers }, { lastScaleUpAt, lastScaleDownAt }, now)
          const byId = new Map(instances.map((i) => [i.id, i]))
          const active = instances.filter((i) => i.healthy && !i.draining)
          let after = active.length
          switch (decision._tag) {
            case "ScaleUp":
              expect(decision.count).toBeGreaterThan(0)
              after += decision.count
              break
            case "ScaleDown": {
              expect(decision.drain.length + decision.terminate.length).toBeGreaterThan(0)
              const ids = [...decision.drain, ...decision.terminate]
              expect(new Set(ids).size, "no instance twice").toBe(ids.length)
              for (const id of decision.terminate) expect(byId.get(id)?.players, `terminate ${id}`).toBe(0)
              for (const id of decision.drain) {
                const i = byId.get(id)!
                expect(i.players).toBeGreaterThan(0)
                expect(i.healthy && !i.draining, `drain ${id} is active`).toBe(true)
              }
              for (const id of decision.terminate) {
                const i = byId.get(id)!
                expect(i.draining || i.healthy, `terminate ${id} is active or drained`).toBe(true)
              }
              after -= decision.drain.length + decision.terminate.filter((id) => !byId.get(id)!.draining).length
              break
            }
            case "Hold":
              break
          }
          expect(after).toBeGreaterThanOrEqual(p.minInstances)
          expect(after).toBeLessThanOrEqual(p.maxInstances)
          expect(decision.reason.length).toBeGreaterThan(0)
        }
      ),
      { numRuns: 2000, seed: 5 }
    )
  })
})
