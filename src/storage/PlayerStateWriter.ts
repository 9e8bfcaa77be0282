import { Cause, Context, Duration, Effect, Layer, Schedule } from "effect"
import * as Metrics from "../observability/Metrics.js"
import { PlayerRepository, type PlayerStateRow } from "./PlayerRepository.js"

/**
 * Write-behind of player state: regions `put` the latest state of their
 * players every tick (a Map set, nothing else), and the writer persists the
 * newest row per player every `intervalMs` in one transaction, and once more
 * when its layer's scope closes (shutdown, SIGTERM).
 */
export class PlayerStateWriter extends Context.Tag("tessera/storage/PlayerStateWriter")<
  PlayerStateWriter,
  {
    /**
     * Records the latest state of a player; replaces any pending row for the
     * same player. Synchronous and O(1); keeps a reference to `row` (do not
     * mutate it afterwards).
     */
    readonly put: (row: PlayerStateRow) => void
    /**
     * Writes every pending row in one transaction. Never fails: on a storage
     * error the error is logged and counted, and the rows go back to pending
     * unless a newer row for that player arrived meanwhile. Flushes are
     * serialised and not interruptible once started.
     */
    readonly flush: Effect.Effect<void>
    /** Players with a row waiting to be written. */
    readonly pending: () => number
  }
>() {}

const make = (options: { readonly intervalMs: number }) => Effect.gen(function*() {
  const repo = yield* PlayerRepository
  const lock = yield* Effect.makeSemaphore(1)

  // Double buffer: `put` writes into `current`; a flush swaps in `spare`
  // (always empty outside a flush) and writes the old one, so puts that
  // arrive during a flush land in the new map and nothing is allocated per
  // flush except the batch array.
  let current = new Map<string, PlayerStateRow>()
  let spare = new Map<string, PlayerStateRow>()

  const put = (row: PlayerStateRow): void => {
    current.set(row.playerId, row)
  }

  const pending = (): number => current.size
  // Failures in a row: the first is logged with its cause, then one line per minute of outage.
  let failuresInRow = 0

  const flushOnce = Effect.suspend(() => {
    if (current.size === 0) return Effect.void
    const batch = current
    current = spare
    const rows = Array.from(batch.values())
    const started = performance.now()
    Metrics.storageFlushTotal.inc()
    return repo.saveStates(rows).pipe(
      Effect.matchCauseEffect({
        onSuccess: () =>
          Effect.suspend(() => {
            batch.clear()
            spare = batch
            const failed = failuresInRow
            failuresInRow = 0
            return failed === 0 ? Effect.void : Effect.logInfo(
              `player state flush succeeded after ${failed} failed attempts; nothing was dropped`
            ).pipe(Effect.annotateLogs({ rows: rows.length }))
          }),
        onFailure: (cause) =>
          Effect.suspend(() => {
            // Put back what has not been superseded by a newer put.
            for (const [playerId, row] of batch) {
              if (!current.has(playerId)) current.set(playerId, row)
            }
            batch.clear()
            spare = batch
            Metrics.storageFlushErrorsTotal.inc()
            failuresInRow++
            const everyMinute = Math.max(1, Math.round(60_000 / Math.max(1, options.intervalMs)))
            if (failuresInRow > 1 && failuresInRow % everyMinute !== 0) return Effect.void
            return Effect.logWarning(
              `player state flush failed (${failuresInRow} in a row); rows kept for the next flush`
            ).pipe(Effect.annotateLogs({ rows: current.size, error: Cause.pretty(cause) }))
          })
      }),
      Effect.ensuring(Effect.sync(() => Metrics.storageFlushDurationSeconds.observe((performance.now() - started) / 1000)))
    )
  })

  const flush: Effect.Effect<void> = lock.withPermits(1)(Effect.uninterruptible(flushOnce))

  return { service: PlayerStateWriter.of({ put, flush, pending }), flush }
})

/**
 * The writer over PlayerRepository: a scoped fiber flushes every
 * `intervalMs`, and the layer's finalizer stops it and flushes one last
 * time, so closing the runtime (SIGTERM) persists what was pending.
 */
export const layer = (options: {
  readonly intervalMs: number
}): Layer.Layer<PlayerStateWriter, never, PlayerRepository> =>
  Layer.scoped(
    PlayerStateWriter,
    Effect.gen(function*() {
      const { flush, service } = yield* make(options)
      // Added before the fiber is forked, so it runs after the fiber is
      // interrupted (finalizers run in reverse order): the last flush sees
      // everything and cannot race a periodic one.
      yield* Effect.addFinalizer(() =>
        Effect.zipRight(
          flush,
          Effect.logDebug("player state writer flushed on shutdown")
        )
      )
      yield* flush.pipe(
        Effect.repeat(Schedule.spaced(Duration.millis(Math.max(1, options.intervalMs)))),
        Effect.delay(Duration.millis(Math.max(1, options.intervalMs))),
        Effect.forkScoped
      )
      return service
    })
  )
