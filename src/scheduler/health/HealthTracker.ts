/**
 * Health of instances and runners from their heartbeats (Forge health
 * checks), pure: no IO, no clock; the caller passes `now` (epoch ms).
 *
 * Targets report heartbeats (`heartbeat`); the scheduler runs one check of
 * every target per call of `evaluate`, every `heartbeatIntervalMs` or so. A
 * check fails when the target missed `missedHeartbeats` intervals, or when its
 * newest heartbeat is over a threshold (tick p99, CPU, memory); it passes
 * when a fresh heartbeat is within all of them (runners also report their
 * event-loop delay p99, checked against `maxEventLoopLagMs`). A check with no heartbeat
 * since the previous check, and not yet missed, has no new evidence and
 * changes nothing, so one bad (or good) heartbeat is counted once however
 * often the scheduler checks.
 *
 * Flapping is damped as in Forge: a target goes unhealthy after
 * `unhealthyThreshold` failed checks in a row, and healthy again after
 * `healthyThreshold` passed checks in a row. A new target is "unknown" until
 * one of the two thresholds is reached.
 *
 * The state is mutable, like the scheduler's Placement registry, and changed
 * only by the functions here.
 */

export type HealthStatus = "healthy" | "unhealthy" | "unknown"

export interface HealthPolicy {
  /** How often targets send a heartbeat. */
  readonly heartbeatIntervalMs: number
  /** Intervals without a heartbeat after which a check fails ("missed 3 heartbeats"). */
  readonly missedHeartbeats: number
  /** Consecutive failed checks before a target is unhealthy (Forge `unhealthy_threshold`). */
  readonly unhealthyThreshold: number
  /** Consecutive passed checks before a target is healthy again (Forge `healthy_threshold`). */
  readonly healthyThreshold: number
  /** Highest acceptable tick duration p99, in ms. */
  readonly maxTickMs: number
  /** Highest acceptable CPU use, as a fraction of the target's CPU (0.9 = 90 %). */
  readonly maxCpu: number
  /** Highest acceptable memory use (resident set), in bytes. */
  readonly maxMemoryBytes: number
  /** Highest acceptable event-loop delay p99, in ms (runners; absent: no limit). */
  readonly maxEventLoopLagMs?: number | undefined
}

/**
 * A sensible policy for instances ticking at 20 Hz: heartbeats every 5 s,
 * a check fails after 3 missed, unhealthy after 3 failed checks, healthy
 * after 2 passed; tick p99 within the 50 ms tick budget, CPU within 90 %,
 * no memory limit.
 */
export const defaultHealthPolicy: HealthPolicy = {
  heartbeatIntervalMs: 5_000,
  missedHeartbeats: 3,
  unhealthyThreshold: 3,
  healthyThreshold: 2,
  maxTickMs: 50,
  maxCpu: 0.9,
  maxMemoryBytes: Number.POSITIVE_INFINITY
}

/**
 * What a target reports. A value it cannot measure (a runner has no tick of
 * its own) may be sent as NaN: it then never fails its threshold.
 */
export interface HeartbeatReport {
  /** Tick duration p99 over the last interval, in ms. */
  readonly tickP99Ms: number
  readonly players: number
  /** CPU use as a fraction (0.9 = 90 %). */
  readonly cpu: number
  readonly memoryBytes: number
  /** The process's event-loop delay p99, in ms (runners report it; absent: not measured). */
  readonly eventLoopLagP99Ms?: number | undefined
}

/** A received heartbeat: the report and when it arrived. */
export interface Heartbeat extends HeartbeatReport {
  readonly at: number
}

export interface TargetHealth {
  readonly target: string
  status: HealthStatus
  /** Failed checks in a row (0 after a pass). */
  consecutiveFails: number
  /** Passed checks in a row (0 after a fail). */
  consecutivePasses: number
  /** The newest heartbeat; null when registered but never heard from. */
  lastHeartbeat: Heartbeat | null
  /** When tracking started (register or first heartbeat). */
  readonly since: number
  /** A heartbeat arrived since the last check. */
  fresh: boolean
  /** Why the last failed check failed; null after a pass. */
  lastFailure: string | null
}

export interface HealthState {
  readonly targets: Map<string, TargetHealth>
}

/** A status change found by `evaluate`. */
export interface HealthTransition {
  readonly target: string
  readonly from: HealthStatus
  readonly to: HealthStatus
  readonly reason: string
}

export const emptyHealthState = (): HealthState => ({ targets: new Map() })

const track = (state: HealthState, target: string, now: number): TargetHealth => {
  let health = state.targets.get(target)
  if (health === undefined) {
    health = {
      target,
      status: "unknown",
      consecutiveFails: 0,
      consecutivePasses: 0,
      lastHeartbeat: null,
      since: now,
      fresh: false,
      lastFailure: null
    }
    state.targets.set(target, health)
  }
  return health
}

/**
 * Starts tracking a target that is expected to send heartbeats (an instance
 * just spawned), so one that never sends any is found by missed heartbeats,
 * counted from `now`. No-op if it is already tracked.
 */
export const register = (state: HealthState, target: string, now: number): TargetHealth => track(state, target, now)

/** Records a heartbeat of `target` received at `now` (tracking it if new). */
export const heartbeat = (state: HealthState, target: string, beat: HeartbeatReport, now: number): TargetHealth => {
  const health = track(state, target, now)
  health.lastHeartbeat = {
    at: now,
    tickP99Ms: beat.tickP99Ms,
    players: beat.players,
    cpu: beat.cpu,
    memoryBytes: beat.memoryBytes,
    ...(beat.eventLoopLagP99Ms === undefined ? {} : { eventLoopLagP99Ms: beat.eventLoopLagP99Ms })
  }
  health.fresh = true
  return health
}

/** Stops tracking a target (terminated, gone); returns whether it was tracked. */
export const forget = (state: HealthState, target: string): boolean => state.targets.delete(target)

/** The tracked health of a target, if tracked. */
export const get = (state: HealthState, target: string): TargetHealth | undefined => state.targets.get(target)

const atLeastOne = (n: number): number => (Number.isFinite(n) ? Math.max(1, Math.floor(n)) : 1)

const round = (n: number): string => String(Math.round(n * 10) / 10)

const formatBytes = (n: number): string => {
  if (n >= 1024 ** 3) return `${round(n / 1024 ** 3)} GiB`
  if (n >= 1024 ** 2) return `${round(n / 1024 ** 2)} MiB`
  if (n >= 1024) return `${round(n / 1024)} KiB`
  return `${Math.round(n)} B`
}

/** Whole heartbeat intervals elapsed without a heartbeat. */
const missedIntervals = (health: TargetHealth, policy: HealthPolicy, now: number): number => {
  const last = health.lastHeartbeat?.at ?? health.since
  const interval = Math.max(1, policy.heartbeatIntervalMs)
  return Math.max(0, Math.floor((now - last) / interval))
}

/** The thresholds a heartbeat is over, as text; empty when within all. */
export const thresholdFailures = (beat: HeartbeatReport, policy: HealthPolicy): Array<string> => {
  const failures: Array<string> = []
  if (beat.tickP99Ms > policy.maxTickMs) failures.push(`tick p99 ${round(beat.tickP99Ms)} ms > ${round(policy.maxTickMs)} ms`)
  if (beat.cpu > policy.maxCpu) failures.push(`cpu ${round(beat.cpu * 100)}% > ${round(policy.maxCpu * 100)}%`)
  if (beat.memoryBytes > policy.maxMemoryBytes) {
    failures.push(`memory ${formatBytes(beat.memoryBytes)} > ${formatBytes(policy.maxMemoryBytes)}`)
  }
  const maxLag = policy.maxEventLoopLagMs
  if (maxLag !== undefined && beat.eventLoopLagP99Ms !== undefined && beat.eventLoopLagP99Ms > maxLag) {
    failures.push(`event loop lag p99 ${round(beat.eventLoopLagP99Ms)} ms > ${round(maxLag)} ms`)
  }
  return failures
}

type Check =
  | { readonly _tag: "Fail"; readonly reason: string }
  | { readonly _tag: "Pass" }
  | { readonly _tag: "NoEvidence" }

const check = (health: TargetHealth, policy: HealthPolicy, now: number): Check => {
  const missed = missedIntervals(health, policy, now)
  if (missed >= atLeastOne(policy.missedHeartbeats)) {
    return { _tag: "Fail", reason: `missed ${missed} heartbeat${missed === 1 ? "" : "s"}` }
  }
  if (!health.fresh || health.lastHeartbeat === null) return { _tag: "NoEvidence" }
  const failures = thresholdFailures(health.lastHeartbeat, policy)
  return failures.length > 0 ? { _tag: "Fail", reason: failures.join(", ") } : { _tag: "Pass" }
}

/**
 * One check of every tracked target at `now`; returns the status changes,
 * with the threshold that caused each ("missed 3 heartbeats", "tick p99
 * 62 ms > 50 ms for 3 checks", "passed 2 checks").
 */
export const evaluate = (state: HealthState, policy: HealthPolicy, now: number): Array<HealthTransition> => {
  const unhealthyAfter = atLeastOne(policy.unhealthyThreshold)
  const healthyAfter = atLeastOne(policy.healthyThreshold)
  const transitions: Array<HealthTransition> = []
  for (const health of state.targets.values()) {
    const result = check(health, policy, now)
    health.fresh = false
    if (result._tag === "NoEvidence") continue
    if (result._tag === "Fail") {
      health.consecutiveFails++
      health.consecutivePasses = 0
      health.lastFailure = result.reason
      if (health.status !== "unhealthy" && health.consecutiveFails >= unhealthyAfter) {
        const reason = result.reason.startsWith("missed ")
          ? result.reason
          : `${result.reason} for ${health.consecutiveFails} check${health.consecutiveFails === 1 ? "" : "s"}`
        transitions.push({ target: health.target, from: health.status, to: "unhealthy", reason })
        health.status = "unhealthy"
      }
    } else {
      health.consecutivePasses++
      health.consecutiveFails = 0
      health.lastFailure = null
      if (health.status !== "healthy" && health.consecutivePasses >= healthyAfter) {
        const n = health.consecutivePasses
        transitions.push({
          target: health.target,
          from: health.status,
          to: "healthy",
          reason: `passed ${n} check${n === 1 ? "" : "s"}`
        })
        health.status = "healthy"
      }
    }
  }
  return transitions
}
