import { describe, expect, it } from "vitest"
import {
  emptyHealthState,
  evaluate,
  forget,
  get,
  type HealthPolicy,
  type HealthState,
  type HealthTransition,
  heartbeat,
  type HeartbeatReport,
  register
} from "../../src/scheduler/health/HealthTracker.js"

const GiB = 1024 ** 3

const policy: HealthPolicy = {
  heartbeatIntervalMs: 1000,
  missedHeartbeats: 3,
  unhealthyThreshold: 3,
  healthyThreshold: 2,
  maxTickMs: 50,
  maxCpu: 0.9,
  maxMemoryBytes: GiB
}

const good: HeartbeatReport = { tickP99Ms: 12, players: 10, cpu: 0.3, memoryBytes: 200 * 1024 ** 2 }
const slowTick: HeartbeatReport = { ...good, tickP99Ms: 62 }
const hotCpu: HeartbeatReport = { ...good, cpu: 0.95 }
const bigMemory: HeartbeatReport = { ...good, memoryBytes: 1.5 * GiB }

type Op =
  | { readonly beat: HeartbeatReport; readonly at: number; readonly target?: string }
  | { readonly register: string; readonly at: number }
  | { readonly forget: string }
  /** One evaluate call; `expect` is what it must return ([] when omitted). */
  | { readonly check: number; readonly expect?: ReadonlyArray<HealthTransition> }

const A = "arena-1"

/** Beat then check, every interval from `from` (beats at t, checks at t + 500), `n` times. */
const beatsAndChecks = (report: HeartbeatReport, from: number, n: number, target = A): Array<Op> =>
  Array.from({ length: n }, (_, i) => [
    { beat: report, at: from + i * 1000, target },
    { check: from + i * 1000 + 500 }
  ]).flat()

/** `healthy` after two good beats, in [0, 2000). */
const becomeHealthy: ReadonlyArray<Op> = [
  { beat: good, at: 0 },
  { check: 500 },
  { beat: good, at: 1000 },
  { check: 1500, expect: [{ target: A, from: "unknown", to: "healthy", reason: "passed 2 checks" }] }
]

const run = (ops: ReadonlyArray<Op>, p: HealthPolicy = policy): HealthState => {
  const state = emptyHealthState()
  ops.forEach((op, i) => {
    if ("beat" in op) heartbeat(state, op.target ?? A, op.beat, op.at)
    else if ("register" in op) register(state, op.register, op.at)
    else if ("forget" in op) forget(state, op.forget)
    else expect(evaluate(state, p, op.check), `op ${i}: check at ${op.check}`).toEqual(op.expect ?? [])
  })
  return state
}

interface Case {
  readonly name: string
  readonly ops: ReadonlyArray<Op>
  readonly policy?: HealthPolicy
  readonly status?: Record<string, string>
}

const cases: ReadonlyArray<Case> = [
  {
    name: "unknown -> healthy after healthyThreshold good checks",
    ops: becomeHealthy,
    status: { [A]: "healthy" }
  },
  {
    name: "unknown -> healthy with healthyThreshold 1",
    ops: [
      { beat: good, at: 0 },
      { check: 500, expect: [{ target: A, from: "unknown", to: "healthy", reason: "passed 1 check" }] }
    ],
    policy: { ...policy, healthyThreshold: 1 }
  },
  {
    name: "unknown -> unhealthy when the first heartbeats are bad",
    ops: [
      ...beatsAndChecks(slowTick, 0, 2),
      { beat: slowTick, at: 2000 },
      {
        check: 2500,
        expect: [{ target: A, from: "unknown", to: "unhealthy", reason: "tick p99 62 ms > 50 ms for 3 checks" }]
      }
    ],
    status: { [A]: "unhealthy" }
  },
  {
    name: "missed heartbeats: a check fails once missedHeartbeats intervals passed, unhealthy after the threshold",
    ops: [
      ...becomeHealthy,
      { check: 2500 }, // 1 interval since the beat at 1000: no evidence
      { check: 3500 }, // 2 intervals
      { check: 4000 }, // 3 intervals: fail 1
      { check: 5000 }, // fail 2
      { check: 6000, expect: [{ target: A, from: "healthy", to: "unhealthy", reason: "missed 5 heartbeats" }] },
      { check: 7000 } // already unhealthy: no new transition
    ],
    status: { [A]: "unhealthy" }
  },
  {
    name: "missed heartbeats with unhealthyThreshold 1",
    ops: [
      ...becomeHealthy,
      { check: 3999 },
      { check: 4000, expect: [{ target: A, from: "healthy", to: "unhealthy", reason: "missed 3 heartbeats" }] }
    ],
    policy: { ...policy, unhealthyThreshold: 1 }
  },
  {
    name: "a registered target that never sends a heartbeat goes unhealthy",
    ops: [
      { register: A, at: 0 },
      { check: 1000 },
      { check: 3000 },
      { check: 4000 },
      { check: 5000, expect: [{ target: A, from: "unknown", to: "unhealthy", reason: "missed 5 heartbeats" }] }
    ]
  },
  {
    name: "tick p99 over the threshold for unhealthyThreshold checks",
    ops: [
      ...becomeHealthy,
      ...beatsAndChecks(slowTick, 2000, 2),
      { beat: slowTick, at: 4000 },
      {
        check: 4500,
        expect: [{ target: A, from: "healthy", to: "unhealthy", reason: "tick p99 62 ms > 50 ms for 3 checks" }]
      }
    ]
  },
  {
    name: "cpu over the threshold",
    ops: [
      ...becomeHealthy,
      ...beatsAndChecks(hotCpu, 2000, 2),
      { beat: hotCpu, at: 4000 },
      { check: 4500, expect: [{ target: A, from: "healthy", to: "unhealthy", reason: "cpu 95% > 90% for 3 checks" }] }
    ]
  },
  {
    name: "memory over the threshold",
    ops: [
      ...becomeHealthy,
      ...beatsAndChecks(bigMemory, 2000, 2),
      { beat: bigMemory, at: 4000 },
      {
        check: 4500,
        expect: [{ target: A, from: "healthy", to: "unhealthy", reason: "memory 1.5 GiB > 1 GiB for 3 checks" }]
      }
    ]
  },
  {
    name: "several thresholds at once are all named; the reason is the latest check's",
    ops: [
      ...becomeHealthy,
      ...beatsAndChecks(hotCpu, 2000, 2),
      { beat: { ...slowTick, cpu: 0.95 }, at: 4000 },
      {
        check: 4500,
        expect: [{ target: A, from: "healthy", to: "unhealthy", reason: "tick p99 62 ms > 50 ms, cpu 95% > 90% for 3 checks" }]
      }
    ]
  },
  {
    name: "values exactly at a threshold pass; NaN (not measured) never fails",
    ops: [
      ...becomeHealthy,
      ...beatsAndChecks({ tickP99Ms: 50, players: 0, cpu: 0.9, memoryBytes: GiB }, 2000, 5),
      ...beatsAndChecks({ tickP99Ms: Number.NaN, players: 0, cpu: Number.NaN, memoryBytes: Number.NaN }, 7000, 5)
    ],
    status: { [A]: "healthy" }
  },
  {
    name: "damping: alternating good and bad heartbeats never flip a healthy target",
    ops: [
      ...becomeHealthy,
      // good, bad, good, bad, ...
      ...Array.from({ length: 20 }, (_, i) => beatsAndChecks(i % 2 === 0 ? slowTick : good, 2000 + i * 1000, 1)).flat(),
      // bad, bad, good, ...: one failure short of the threshold each time
      ...Array.from({ length: 10 }, (_, i) => [
        ...beatsAndChecks(slowTick, 22_000 + i * 3000, 1),
        ...beatsAndChecks(hotCpu, 23_000 + i * 3000, 1),
        ...beatsAndChecks(good, 24_000 + i * 3000, 1)
      ]).flat()
    ],
    status: { [A]: "healthy" }
  },
  {
    name: "damping: alternating good and bad heartbeats never bring an unhealthy target back",
    ops: [
      ...becomeHealthy,
      ...beatsAndChecks(slowTick, 2000, 2),
      { beat: slowTick, at: 4000 },
      {
        check: 4500,
        expect: [{ target: A, from: "healthy", to: "unhealthy", reason: "tick p99 62 ms > 50 ms for 3 checks" }]
      },
      ...Array.from({ length: 20 }, (_, i) => beatsAndChecks(i % 2 === 0 ? good : slowTick, 5000 + i * 1000, 1)).flat()
    ],
    status: { [A]: "unhealthy" }
  },
  {
    name: "recovery after healthyThreshold passes in a row; a failure in between starts the count again",
    ops: [
      ...becomeHealthy,
      ...beatsAndChecks(slowTick, 2000, 2),
      { beat: slowTick, at: 4000 },
      {
        check: 4500,
        expect: [{ target: A, from: "healthy", to: "unhealthy", reason: "tick p99 62 ms > 50 ms for 3 checks" }]
      },
      ...beatsAndChecks(good, 5000, 1),
      ...beatsAndChecks(slowTick, 6000, 1),
      ...beatsAndChecks(good, 7000, 1),
      { beat: good, at: 8000 },
      { check: 8500, expect: [{ target: A, from: "unhealthy", to: "healthy", reason: "passed 2 checks" }] }
    ],
    status: { [A]: "healthy" }
  },
  {
    name: "a heartbeat is one piece of evidence: checking more often than heartbeats arrive counts it once",
    ops: [
      ...becomeHealthy,
      { beat: slowTick, at: 2000 },
      { check: 2100 },
      { check: 2200 },
      { check: 2300 },
      { check: 2400 },
      { beat: slowTick, at: 3000 },
      { check: 3100 },
      { check: 3200 }
    ],
    status: { [A]: "healthy" }
  },
  {
    name: "a target that comes back after missing heartbeats still needs healthyThreshold passes",
    ops: [
      ...becomeHealthy,
      { check: 4000 },
      { check: 5000 },
      { check: 6000, expect: [{ target: A, from: "healthy", to: "unhealthy", reason: "missed 5 heartbeats" }] },
      ...beatsAndChecks(good, 7000, 1),
      { beat: good, at: 8000 },
      { check: 8500, expect: [{ target: A, from: "unhealthy", to: "healthy", reason: "passed 2 checks" }] }
    ]
  },
  {
    name: "targets are independent; forget stops tracking and a new heartbeat starts again from unknown",
    ops: [
      { beat: good, at: 0, target: "a" },
      { beat: slowTick, at: 0, target: "b" },
      { check: 500 },
      { beat: good, at: 1000, target: "a" },
      { beat: slowTick, at: 1000, target: "b" },
      { check: 1500, expect: [{ target: "a", from: "unknown", to: "healthy", reason: "passed 2 checks" }] },
      { beat: good, at: 2000, target: "a" },
      { beat: slowTick, at: 2000, target: "b" },
      {
        check: 2500,
        expect: [{ target: "b", from: "unknown", to: "unhealthy", reason: "tick p99 62 ms > 50 ms for 3 checks" }]
      },
      { forget: "b" },
      { check: 5000 },
      { check: 6000 },
      { check: 7000, expect: [{ target: "a", from: "healthy", to: "unhealthy", reason: "missed 5 heartbeats" }] },
      { beat: good, at: 7000, target: "b" }
    ],
    status: { a: "unhealthy", b: "unknown" }
  }
]

describe("HealthTracker", () => {
  it.each(cases)("$name", (c) => {
    const state = run(c.ops, c.policy ?? policy)
    for (const [target, status] of Object.entries(c.status ?? {})) {
      expect(get(state, target)?.status, target).toBe(status)
    }
  })

  it("keeps counts and the newest heartbeat per target", () => {
    const state = emptyHealthState()
    heartbeat(state, A, good, 0)
    evaluate(state, policy, 500)
    heartbeat(state, A, slowTick, 1000)
    evaluate(state, policy, 1500)
    expect(get(state, A)).toEqual({
      target: A,
      status: "unknown",
      consecutiveFails: 1,
      consecutivePasses: 0,
      lastHeartbeat: { at: 1000, ...slowTick },
      since: 0,
      fresh: false,
      lastFailure: "tick p99 62 ms > 50 ms"
    })
    expect(forget(state, A)).toBe(true)
    expect(forget(state, A)).toBe(false)
    expect(get(state, A)).toBeUndefined()
  })

  it("register does not reset a tracked target", () => {
    const state = emptyHealthState()
    heartbeat(state, A, good, 0)
    register(state, A, 5000)
    expect(get(state, A)).toMatchObject({ since: 0, lastHeartbeat: { at: 0 } })
  })
})
