import { Duration, Effect, Layer, Option, Schedule } from "effect"
import * as Metrics from "../observability/Metrics.js"
import { SchedulerStateRepository } from "../storage/SchedulerStateRepository.js"
import type { StorageError } from "../storage/StorageError.js"

/**
 * Admin drains of a runner (issue 5), the runner's side.
 *
 * `POST /v1/admin/runners/<host:port>/drain` reaches the scheduler
 * (`DrainRunner`), which writes `runner.drain.<host:port>` to the shared
 * scheduler_state table. @effect/cluster 0.60 cannot take a live runner out
 * of its shard ring, so the runner leaves by itself: every runner process
 * polls its own key (a primary-key read every second) and, on seeing it,
 * deletes it and shuts down gracefully exactly as on SIGTERM (shards handed
 * to the other runners, clients closed with 4000 and told to reconnect,
 * storage flushed, exit 0).
 *
 * The key is deleted BEFORE the shutdown starts, so a supervisor (systemd,
 * Kubernetes, Nomad) that restarts the process brings it back as a normal
 * runner that rejoins the cluster; a drain is a one-shot request, not a ban.
 * Draining it again takes another POST. If the delete fails (storage down),
 * nothing happens yet and the next poll tries again: a drain that could not
 * be consumed is not acted upon, or a restart would drain again at once.
 */

/** The scheduler_state key that asks the runner at `address` (host:port) to drain. */
export const runnerDrainKey = (address: string): string => `runner.drain.${address}`

/** The value of a drain key (JSON). */
export interface RunnerDrainRequest {
  /** Who asked: an actor such as `admin:<key id>`. */
  readonly by: string
  /** When (epoch ms). */
  readonly at: number
  readonly reason: string
  /**
   * The process the drain is meant for (its start, epoch ms, as its
   * RunnerHeartbeat reported it); absent: whichever process has the address.
   * The scheduler's drains of unhealthy runners set it: a runner that died
   * and was restarted before it could take the key deletes the key and stays.
   */
  readonly startedAt?: number | undefined
}

/** When this process started (epoch ms): what identifies it among the processes that had its address. */
export const processStartedAt: number = Math.round(performance.timeOrigin)

/** How often a runner looks for its drain key. */
export const DRAIN_POLL_INTERVAL = Duration.seconds(1)

/** A drain key's value, tolerant of a hand-written or older value. */
export const parseDrainRequest = (text: string): RunnerDrainRequest => {
  try {
    const value = JSON.parse(text) as Partial<RunnerDrainRequest> | null
    return {
      by: typeof value?.by === "string" ? value.by : "unknown",
      at: typeof value?.at === "number" ? value.at : 0,
      reason: typeof value?.reason === "string" ? value.reason : "",
      ...(typeof value?.startedAt === "number" ? { startedAt: value.startedAt } : {})
    }
  } catch {
    return { by: "unknown", at: 0, reason: "" }
  }
}

/**
 * One poll: when the key of `address` is there and this call removed it,
 * runs `drain` with the request and answers it; otherwise none. Two
 * processes claiming one address (a misconfiguration) cannot both act: only
 * the one whose delete removed the row drains.
 */
export const checkOnce = <R>(
  address: string,
  drain: (request: RunnerDrainRequest) => Effect.Effect<void, never, R>,
  startedAt: number = processStartedAt
): Effect.Effect<Option.Option<RunnerDrainRequest>, StorageError, SchedulerStateRepository | R> =>
  Effect.gen(function*() {
    const repository = yield* SchedulerStateRepository
    const key = runnerDrainKey(address)
    const entry = yield* repository.get(key)
    if (Option.isNone(entry)) return Option.none()
    const request = parseDrainRequest(entry.value.value)
    if (request.startedAt !== undefined && request.startedAt !== startedAt) {
      // Meant for an earlier process at this address (it died before taking it): not this one's.
      if (yield* repository.remove(key)) {
        yield* Effect.logInfo(`ignoring a drain request of ${request.by} meant for an earlier process at this address`).pipe(
          Effect.annotateLogs({ runner: address, reason: request.reason })
        )
      }
      return Option.none()
    }
    if (!(yield* repository.remove(key))) return Option.none()
    yield* Effect.logWarning(`draining on request of ${request.by}`).pipe(
      Effect.annotateLogs({ runner: address, reason: request.reason, requestedAt: new Date(request.at).toISOString() })
    )
    yield* drain(request)
    return Option.some(request)
  })

/**
 * The shutdown a drain starts: a SIGTERM to this very process. That is the
 * one graceful path there is, the one supervisors use and the one tested
 * (test/integration/failover.test.ts): NodeRuntime.runMain interrupts the
 * server layer (gateway closes clients, entities hand over, storage
 * flushes), and main.ts's bounded-shutdown timer runs too. Calling anything
 * else here would be a second, untested shutdown path.
 */
export const sigterm: Effect.Effect<void> = Effect.sync(() => {
  process.kill(process.pid, "SIGTERM")
})

/**
 * Polls every `interval` until a drain was acted upon (then stops: the
 * process is on its way out). Storage errors are logged and the poll goes on.
 */
export const watch = <R>(
  address: string,
  drain: (request: RunnerDrainRequest) => Effect.Effect<void, never, R>,
  interval: Duration.DurationInput = DRAIN_POLL_INTERVAL
): Effect.Effect<void, never, SchedulerStateRepository | R> =>
  checkOnce(address, drain).pipe(
    Effect.catchAll((error) =>
      Effect.as(Effect.logWarning("could not check for a drain request (will retry)", error), Option.none<RunnerDrainRequest>())
    ),
    Effect.repeat({ schedule: Schedule.spaced(interval), until: Option.isSome }),
    Effect.asVoid
  )

/**
 * Every runner process: the watcher of its own drain key, forked for the
 * layer's lifetime, and `tessera_runner_info{address}` (how an operator or a
 * test finds the address to drain).
 */
export const layer = (address: string): Layer.Layer<never, never, SchedulerStateRepository> =>
  Layer.scopedDiscard(
    Effect.gen(function*() {
      Metrics.runnerInfo.set(address, 1)
      yield* Effect.addFinalizer(() => Effect.sync(() => void Metrics.runnerInfo.delete(address)))
      yield* Effect.forkScoped(watch(address, () => sigterm))
    })
  )
