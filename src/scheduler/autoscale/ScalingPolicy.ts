/**
 * The autoscaling policy: how many instances a pool (an experience, a role's
 * task group) should have, given what its instances report. Pure: no clock,
 * no IO. The scheduler's loop owns the `ScalingState`, passes `now`, hands the
 * decision to an actuator and then records it with `nextState`.
 *
 * The rules, in the order they apply:
 * 1. `[minInstances, maxInstances]` always wins: below the minimum the pool
 *    scales up at once (no cooldown, no step limit); above the maximum it
 *    scales down at once. The bounds are the operator's hard limits (budget,
 *    quota, "always keep one warm"), so nothing else may hold them back.
 * 2. Otherwise the pool steers toward the largest of: the players (placed and
 *    queued) over `targetPlayersPerInstance` plus `bufferInstances` warm ones;
 *    the count that brings mean CPU to `targetCpu`; the count that brings mean
 *    tick p99 to `targetTickMs`; one more than now when utilisation (players
 *    and queue over the active instances' `maxPlayers`) is over
 *    `scaleUpThreshold`. CPU and tick time only ever push the count up.
 * 3. Scale-up waits out `scaleUpCooldownMs`: new instances take a while to
 *    boot and show up in the metrics, and adding again before they do would
 *    overshoot. Scale-down waits out `scaleDownCooldownMs` since the last
 *    action in *either* direction: an instance just added is empty and would be
 *    the first one picked for termination.
 * 4. Scale-down also needs utilisation under `scaleDownThreshold` (the gap
 *    between the two thresholds is the hysteresis that stops flapping), and
 *    never removes so much that the rest would trip a scale-up (threshold,
 *    CPU or tick target) once the drained players and their load move over.
 * 5. Scale-down terminates empty instances first (free), then drains the
 *    least-populated occupied ones (players move or finish, then the instance
 *    is terminated once empty). An instance with players is never terminated.
 * 6. Unhealthy and draining instances are not capacity: they count neither
 *    toward the bounds nor the targets, so a sick instance gets replaced. Their
 *    players still count as demand, since they will need a place to go.
 * 7. `maxStep` caps the instances added or removed by one decision, except
 *    for the bound corrections of rule 1.
 */

export interface ScalingPolicy {
  /** Fewest active instances; 0 allows scaling to zero. */
  readonly minInstances: number
  /** Most active instances. */
  readonly maxInstances: number
  /** The set point: players (placed and queued) one instance should carry. */
  readonly targetPlayersPerInstance: number
  /** Utilisation (0..1, players + queue over the active instances' maxPlayers) above which one more instance is added. */
  readonly scaleUpThreshold: number
  /** Utilisation (0..1) under which instances may be removed. */
  readonly scaleDownThreshold: number
  /** Mean CPU (0..1) of the active instances to steer toward; 0 disables the rule. */
  readonly targetCpu: number
  /** Mean tick p99 (ms) of the active instances to steer toward; 0 disables the rule. */
  readonly targetTickMs: number
  /** Warm instances kept beyond what the players need, ready for the next rush. */
  readonly bufferInstances: number
  readonly scaleUpCooldownMs: number
  readonly scaleDownCooldownMs: number
  /** Most instances added or removed by one decision (outside the min/max correction). */
  readonly maxStep: number
}

export const defaultScalingPolicy: ScalingPolicy = {
  minInstances: 1,
  maxInstances: 20,
  // 80% of the default max_players (50), so a busy instance still has room for a party to join.
  targetPlayersPerInstance: 40,
  scaleUpThreshold: 0.8,
  scaleDownThreshold: 0.3,
  targetCpu: 0.7,
  // 80% of a 20 Hz tick's 50 ms budget.
  targetTickMs: 40,
  bufferInstances: 1,
  scaleUpCooldownMs: 30_000,
  scaleDownCooldownMs: 300_000,
  maxStep: 5
}

export interface InstanceMetrics {
  readonly id: string
  readonly players: number
  readonly maxPlayers: number
  /** 0..1 */
  readonly cpu: number
  readonly tickP99Ms: number
  readonly draining: boolean
  readonly healthy: boolean
}

export interface ScalingMetrics {
  readonly instances: ReadonlyArray<InstanceMetrics>
  /** Players waiting to be placed (matchmaking queue length). */
  readonly queuedPlayers: number
}

export interface ScalingState {
  readonly lastScaleUpAt: number | null
  readonly lastScaleDownAt: number | null
}

export const initialScalingState: ScalingState = { lastScaleUpAt: null, lastScaleDownAt: null }

export type ScalingDecision =
  | { readonly _tag: "ScaleUp"; readonly count: number; readonly reason: string }
  | {
    readonly _tag: "ScaleDown"
    /** Occupied instances to stop placing players in; terminate them once empty. */
    readonly drain: ReadonlyArray<string>
    /** Empty instances to terminate now. */
    readonly terminate: ReadonlyArray<string>
    readonly reason: string
  }
  | { readonly _tag: "Hold"; readonly reason: string }

/** Problems with a policy, as sentences for a config error; empty when it is usable. */
export const validateScalingPolicy = (policy: ScalingPolicy): ReadonlyArray<string> => {
  const problems: Array<string> = []
  const wholeAtLeast = (key: keyof ScalingPolicy, least: number) => {
    const v = policy[key]
    if (!Number.isInteger(v) || v < least) problems.push(`${key} must be a whole number >= ${least} (got ${v})`)
  }
  wholeAtLeast("minInstances", 0)
  wholeAtLeast("maxInstances", 0)
  wholeAtLeast("bufferInstances", 0)
  wholeAtLeast("maxStep", 1)
  if (policy.maxInstances < policy.minInstances) {
    problems.push(`maxInstances (${policy.maxInstances}) is below minInstances (${policy.minInstances})`)
  }
  if (!(policy.targetPlayersPerInstance > 0)) problems.push("targetPlayersPerInstance must be > 0")
  if (!(policy.scaleUpThreshold > 0 && policy.scaleUpThreshold <= 1)) problems.push("scaleUpThreshold must be in (0, 1]")
  if (!(policy.scaleDownThreshold >= 0 && policy.scaleDownThreshold < policy.scaleUpThreshold)) {
    problems.push("scaleDownThreshold must be >= 0 and below scaleUpThreshold")
  }
  if (!(policy.targetCpu >= 0 && policy.targetCpu <= 1)) problems.push("targetCpu must be in [0, 1]")
  if (!(policy.targetTickMs >= 0)) problems.push("targetTickMs must be >= 0")
  if (!(policy.scaleUpCooldownMs >= 0)) problems.push("scaleUpCooldownMs must be >= 0")
  if (!(policy.scaleDownCooldownMs >= 0)) problems.push("scaleDownCooldownMs must be >= 0")
  return problems
}

// Ratios such as 3 * 0.7 / 0.7 come out a hair over the integer; don't let that cost an instance.
const ceil = (x: number): number => Math.max(0, Math.ceil(x - 1e-9))

const pct = (x: number): string => (Number.isFinite(x) ? `${Math.round(x * 100)}%` : "∞")

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? "" : "s"}`

const byId = (a: InstanceMetrics, b: InstanceMetrics): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)

/** Empty instances first (free to terminate), then the fewest players (least disruption to drain). */
const removalOrder = (active: ReadonlyArray<InstanceMetrics>): Array<InstanceMetrics> =>
  [...active].sort((a, b) => (a.players - b.players) || byId(a, b))

const split = (removed: ReadonlyArray<InstanceMetrics>) => ({
  drain: removed.filter((i) => i.players > 0).map((i) => i.id),
  terminate: removed.filter((i) => i.players === 0).map((i) => i.id)
})

export const desired = (
  policy: ScalingPolicy,
  metrics: ScalingMetrics,
  state: ScalingState,
  now: number
): ScalingDecision => {
  const min = Math.max(0, policy.minInstances)
  const max = Math.max(min, policy.maxInstances)
  const step = Math.max(1, Math.floor(policy.maxStep))
  const target = Math.max(1, policy.targetPlayersPerInstance)
  const buffer = Math.max(0, policy.bufferInstances)

  const active = metrics.instances.filter((i) => i.healthy && !i.draining)
  const n = active.length
  const players = metrics.instances.reduce((sum, i) => sum + Math.max(0, i.players), 0)
  const queued = Math.max(0, metrics.queuedPlayers)
  const demand = players + queued
  const capacity = active.reduce((sum, i) => sum + i.maxPlayers, 0)
  const utilisation = demand === 0 ? 0 : capacity === 0 ? Number.POSITIVE_INFINITY : demand / capacity
  // A drain that has finished: nothing left to wait for.
  const drained = metrics.instances.filter((i) => i.draining && i.players === 0).map((i) => i.id)

  // What each rule asks for, with the reason it would give for scaling up.
  const wants: Array<{ readonly count: number; readonly why: string }> = []
  wants.push({
    count: ceil(demand / target) + buffer,
    why: `${players} players + ${queued} queued need ${ceil(demand / target)} instances at ${target} per instance` +
      (buffer > 0 ? ` + ${buffer} warm` : "")
  })
  // CPU and tick time only ever push up: an idle instance still burns some CPU, and sizing
  // down by that baseline would keep instances forever (or forbid scaling to zero). On the
  // way down they act as a guard instead (below).
  const meanCpu = n > 0 ? active.reduce((sum, i) => sum + i.cpu, 0) / n : 0
  const meanTick = n > 0 ? active.reduce((sum, i) => sum + i.tickP99Ms, 0) / n : 0
  if (policy.targetCpu > 0 && meanCpu > policy.targetCpu) {
    wants.push({ count: Math.max(n + 1, ceil((n * meanCpu) / policy.targetCpu)), why: `mean CPU ${pct(meanCpu)} is over the ${pct(policy.targetCpu)} target` })
  }
  if (policy.targetTickMs > 0 && meanTick > policy.targetTickMs) {
    wants.push({
      count: Math.max(n + 1, ceil((n * meanTick) / policy.targetTickMs)),
      why: `mean tick p99 ${meanTick.toFixed(1)} ms is over the ${policy.targetTickMs} ms target`
    })
  }
  if (utilisation > policy.scaleUpThreshold) {
    wants.push({ count: n + 1, why: `utilisation ${pct(utilisation)} is over the scale-up threshold ${pct(policy.scaleUpThreshold)}` })
  }
  const wanted = Math.max(...wants.map((w) => w.count))
  const goal = Math.min(max, Math.max(min, wanted))
  const whyUp = wants.filter((w) => w.count > n).map((w) => w.why).join("; ")

  // Rule 1: the bounds.
  if (n > max) {
    const removed = removalOrder(active).slice(0, n - max)
    const { drain, terminate } = split(removed)
    return { _tag: "ScaleDown", drain, terminate: [...terminate, ...drained], reason: `above maximum: ${plural(n, "active instance")}, max ${max}` }
  }
  if (n < min) {
    const count = Math.max(min - n, Math.min(goal - n, step))
    return {
      _tag: "ScaleUp",
      count,
      reason: `below minimum: ${plural(n, "active instance")}, min ${min}` + (whyUp !== "" && goal > min ? `; ${whyUp}` : "")
    }
  }

  const hold = (reason: string): ScalingDecision =>
    drained.length > 0
      ? { _tag: "ScaleDown", drain: [], terminate: drained, reason: `terminating ${plural(drained.length, "drained instance")} (${drained.join(", ")}); ${reason}` }
      : { _tag: "Hold", reason }

  // Rules 2 and 3: scale up.
  if (wanted > n) {
    if (goal <= n) return hold(`at maximum (${max}): ${whyUp}`)
    if (state.lastScaleUpAt !== null && now - state.lastScaleUpAt < policy.scaleUpCooldownMs) {
      const left = policy.scaleUpCooldownMs - (now - state.lastScaleUpAt)
      return hold(`scale-up cooldown, ${left} ms left (wants +${goal - n}: ${whyUp})`)
    }
    const count = Math.min(goal - n, step)
    const limits = [goal < wanted ? `capped by max ${max}` : "", count < goal - n ? `limited to maxStep ${step} of +${goal - n}` : ""]
      .filter((s) => s !== "")
    return { _tag: "ScaleUp", count, reason: whyUp + (limits.length > 0 ? ` (${limits.join(", ")})` : "") }
  }

  if (goal >= n) return hold(`steady: ${plural(n, "active instance")}, ${goal} needed`)

  // Rules 4 and 5: scale down.
  if (utilisation >= policy.scaleDownThreshold) {
    return hold(`${n} active but ${goal} would do; utilisation ${pct(utilisation)} is not under the scale-down threshold ${pct(policy.scaleDownThreshold)}`)
  }
  const lastAction = Math.max(state.lastScaleUpAt ?? Number.NEGATIVE_INFINITY, state.lastScaleDownAt ?? Number.NEGATIVE_INFINITY)
  if (now - lastAction < policy.scaleDownCooldownMs) {
    const left = policy.scaleDownCooldownMs - (now - lastAction)
    return hold(`scale-down cooldown, ${left} ms left (${n} active, ${goal} would do)`)
  }
  // Guard: after removing the first k, would the rest trip a scale-up? The drained instances'
  // players and load move to the rest; an empty instance's idle load just goes away.
  const order = removalOrder(active)
  const overAfterRemoving = (k: number): string | null => {
    const kept = order.slice(k)
    if (kept.length === 0) return null // only when there is no demand at all
    const moved = order.slice(0, k).filter((i) => i.players > 0)
    const keptCapacity = kept.reduce((sum, i) => sum + i.maxPlayers, 0)
    if (demand / keptCapacity > policy.scaleUpThreshold) return "utilisation over the scale-up threshold"
    const load = (f: (i: InstanceMetrics) => number) => [...kept, ...moved].reduce((sum, i) => sum + f(i), 0) / kept.length
    if (policy.targetCpu > 0 && load((i) => i.cpu) > policy.targetCpu) return "mean CPU over its target"
    if (policy.targetTickMs > 0 && load((i) => i.tickP99Ms) > policy.targetTickMs) return "mean tick p99 over its target"
    return null
  }
  let k = Math.min(n - goal, step)
  let over = overAfterRemoving(k)
  while (k > 0 && over !== null) {
    k--
    if (k === 0) return hold(`${n} active but ${goal} would do; removing any would put the rest's ${over}`)
    over = overAfterRemoving(k)
  }
  const { drain, terminate } = split(order.slice(0, k))
  const limits = k < n - goal ? ` (limited to ${k} of ${n - goal})` : ""
  return {
    _tag: "ScaleDown",
    drain,
    terminate: [...terminate, ...drained],
    reason: `utilisation ${pct(utilisation)} is under the scale-down threshold ${pct(policy.scaleDownThreshold)}: ` +
      `${n} active, ${goal} would do, removing ${k}${limits}`
  }
}

/**
 * The state after acting on `decision`. Terminating a finished drain counts
 * as a scale-down too: the scale-down that started the drain only takes
 * effect then, and the metrics before it don't show its result yet.
 */
export const nextState = (state: ScalingState, decision: ScalingDecision, now: number): ScalingState => {
  switch (decision._tag) {
    case "ScaleUp":
      return { ...state, lastScaleUpAt: now }
    case "ScaleDown":
      return { ...state, lastScaleDownAt: now }
    case "Hold":
      return state
  }
}
