import type { Sharding } from "@effect/cluster"
import { Duration, Effect, Layer, Schedule } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { eventLoopLagP99Ms } from "../observability/ProcessMetrics.js"
import { SCHEDULER_ID, SchedulerEntity } from "../scheduler/SchedulerEntity.js"
import { heartbeatFrozen, makeProcessSampler } from "../scheduler/health/HeartbeatSampler.js"
import { processStartedAt } from "./RunnerDrainWatcher.js"

/**
 * Runner heartbeats (issue 5): every runner process tells the scheduler,
 * every `health.heartbeat_interval_ms`, that it is alive and how its process
 * fares (CPU, resident memory, event-loop delay p99), with its address and
 * roles. The scheduler's runner health tracker finds a runner that went
 * silent or over a threshold (see SchedulerLive's health check).
 *
 * Best effort: a heartbeat that fails or times out (no scheduler yet, a
 * scheduler failover) is dropped with a debug log; the next one is on time.
 * The dev-only freeze hook (HEARTBEAT_FREEZE_FILE_ENV naming this runner's
 * address) silences it, as a hung or partitioned runner would be.
 */

/** What a runner reports; the sampler's CPU is since the previous beat. */
export const makeReport = (
  runner: string,
  roles: ReadonlyArray<string>,
  sample: () => { readonly cpu: number; readonly memoryBytes: number },
  lagP99Ms: () => number
) => {
  const { cpu, memoryBytes } = sample()
  const lag = lagP99Ms()
  return {
    runner,
    roles: [...roles].sort(),
    cpu,
    memoryBytes,
    eventLoopLagP99Ms: Number.isFinite(lag) ? lag : 0,
    startedAt: processStartedAt
  }
}

/** The heartbeat fiber of the runner at `address` (host:port) with `roles`, for the layer's lifetime (off when health checks are). */
export const layer = (
  address: string,
  roles: ReadonlyArray<string>
): Layer.Layer<never, never, Sharding.Sharding | AppConfig> =>
  Layer.scopedDiscard(
    Effect.gen(function*() {
      const config = yield* AppConfig
      if (!config.health.enabled) return
      const scheduler = (yield* SchedulerEntity.client)(SCHEDULER_ID)
      const interval = Duration.millis(config.health.heartbeatIntervalMs)
      const sample = makeProcessSampler()
      const beat = Effect.suspend(() => {
        const report = makeReport(address, roles, sample, eventLoopLagP99Ms)
        if (heartbeatFrozen(address, config.server.dev)) return Effect.void
        return scheduler.RunnerHeartbeat(report).pipe(
          Effect.timeout(interval),
          Effect.catchAllCause((cause) => Effect.logDebug("runner heartbeat not delivered", cause))
        )
      })
      yield* beat.pipe(
        Effect.repeat(Schedule.spaced(interval)),
        Effect.annotateLogs({ runner: address }),
        Effect.forkScoped
      )
    })
  )
