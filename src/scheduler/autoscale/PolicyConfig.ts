/**
 * From configuration to the pure policies: an experience's `[experiences.scaling]`
 * and `[experiences.quota]` to a ScalingPolicy and a Quota, `[health]` to a
 * HealthPolicy. Pure.
 */
import type { ExperienceConfig, TesseraConfig } from "../../config/TesseraConfig.js"
import type { HealthPolicy } from "../health/HealthTracker.js"
import type { Quota } from "../Placement.js"
import type { ScalingDecision, ScalingPolicy } from "./ScalingPolicy.js"

/** The experience's hard limits: its own quota within the scheduler-wide max_instances. */
export const quotaOf = (experience: ExperienceConfig, schedulerMaxInstances: number): Quota => ({
  maxInstances: experience.quota.maxInstances > 0
    ? Math.min(experience.quota.maxInstances, schedulerMaxInstances)
    : schedulerMaxInstances,
  maxPlayers: experience.quota.maxPlayers > 0 ? experience.quota.maxPlayers : Number.POSITIVE_INFINITY
})

/** The experience's scaling policy; 0 ("derive") keys resolved, bounds within the quota. */
export const scalingPolicyOf = (experience: ExperienceConfig, schedulerMaxInstances: number): ScalingPolicy => {
  const s = experience.scaling
  const cap = quotaOf(experience, schedulerMaxInstances).maxInstances
  const maxInstances = s.maxInstances > 0 ? Math.min(s.maxInstances, cap) : cap
  return {
    minInstances: Math.min(s.minInstances, maxInstances),
    maxInstances,
    targetPlayersPerInstance: s.targetPlayersPerInstance > 0
      ? s.targetPlayersPerInstance
      : Math.max(1, Math.floor(experience.maxPlayers * 0.8)),
    scaleUpThreshold: s.scaleUpThreshold,
    scaleDownThreshold: s.scaleDownThreshold,
    targetCpu: s.targetCpu,
    targetTickMs: s.targetTickMs,
    bufferInstances: s.bufferInstances,
    scaleUpCooldownMs: Math.round(s.scaleUpCooldownSeconds * 1000),
    scaleDownCooldownMs: Math.round(s.scaleDownCooldownSeconds * 1000),
    maxStep: s.maxStep
  }
}

/** `[health]` as the tracker's policy (0 = no limit for CPU and memory). */
export const healthPolicyOf = (health: TesseraConfig["health"]): HealthPolicy => ({
  heartbeatIntervalMs: health.heartbeatIntervalMs,
  missedHeartbeats: health.missedHeartbeats,
  unhealthyThreshold: health.unhealthyThreshold,
  healthyThreshold: health.healthyThreshold,
  maxTickMs: health.maxTickMs,
  maxCpu: health.maxCpu > 0 ? health.maxCpu : Number.POSITIVE_INFINITY,
  maxMemoryBytes: health.maxMemoryMb > 0 ? health.maxMemoryMb * 1024 * 1024 : Number.POSITIVE_INFINITY
})

/**
 * `[health]` as the runners' tracker policy: the same heartbeat interval,
 * missed heartbeats, thresholds, CPU and memory limits; no tick limit (a
 * runner has no tick of its own) but `max_event_loop_lag_ms` on the
 * process's event-loop delay p99 (0 = no limit).
 */
export const runnerHealthPolicyOf = (health: TesseraConfig["health"]): HealthPolicy => ({
  ...healthPolicyOf(health),
  maxTickMs: Number.POSITIVE_INFINITY,
  maxEventLoopLagMs: health.maxEventLoopLagMs > 0 ? health.maxEventLoopLagMs : undefined
})

/**
 * A decision's reason with its numbers masked: a Hold whose reason differs
 * only in numbers (a cooldown counting down) is the same Hold, not news.
 */
export const reasonShape = (decision: ScalingDecision): string =>
  `${decision._tag}:${decision.reason.replace(/\d+(\.\d+)?/g, "#")}`

/** Instances added or removed by a decision (0 for Hold). */
export const decisionCount = (decision: ScalingDecision): number =>
  decision._tag === "ScaleUp"
    ? decision.count
    : decision._tag === "ScaleDown"
    ? decision.drain.length + decision.terminate.length
    : 0
