import { SqlClient } from "@effect/sql"
import { Cause, Context, Duration, Effect, Layer, Schedule } from "effect"
import * as Metrics from "../observability/Metrics.js"
import { StorageError } from "./StorageError.js"
import { Ring } from "../common/Ring.js"

export type TransferOutcome = "ok" | "failed" | "aborted"

/** One finished authority transfer of an entity between two regions of an open world. */
export interface TransferEntry {
  readonly worldId: string
  readonly entityId: number
  /** The player the entity is, or null for an NPC or object. */
  readonly playerId: string | null
  readonly fromRegion: string
  readonly toRegion: string
  /** Epoch milliseconds when the source region decided to hand the entity over. */
  readonly startedAt: number
  readonly durationMs: number
  readonly outcome: TransferOutcome
  /** Why it failed or was aborted; null when ok. */
  readonly reason: string | null
}

/** A stored entry, with its id (increasing in insertion order). */
export interface StoredTransfer extends TransferEntry {
  readonly id: number
}

/** Default most entries kept unwritten while storage is down: at ~1 KB each, about 10 MB. */
export const DEFAULT_MAX_BUFFERED = 10_000

/** Rows per multi-row INSERT: 9 parameters each, well under SQLite's and PostgreSQL's limits. */
const INSERT_CHUNK = 500

/**
 * The authority transfer log of open worlds, written behind: regions
 * `record` each finished transfer (an array write, nothing else) and the log
 * writes everything pending every `intervalMs` in one transaction, and once
 * more when its layer's scope closes (shutdown).
 */
export class TransferLog extends Context.Tag("tessera/storage/TransferLog")<
  TransferLog,
  {
    /**
     * Records a finished transfer: counts it in the tessera_authority_transfer_*
     * metrics (total; duration when ok; failures when failed or aborted) and
     * queues it for storage. Synchronous and O(1). While storage is down the
     * queue is bounded: past `maxBuffered` entries the oldest is dropped and
     * counted in tessera_transfer_log_dropped_total.
     */
    readonly record: (entry: TransferEntry) => void
    /**
     * Writes every queued entry in one transaction. Never fails: on a storage
     * error it is logged and counted and the entries stay queued (oldest
     * dropped if the bound is reached). Flushes are serialised and not
     * interruptible once started.
     */
    readonly flush: Effect.Effect<void>
    /** Entries waiting to be written. */
    readonly pending: () => number
    /** The newest `limit` stored transfers of a world, newest first (queued ones are not included). */
    readonly recent: (worldId: string, limit: number) => Effect.Effect<ReadonlyArray<StoredTransfer>, StorageError>
  }
>() {}

interface TransferRow {
  readonly id: number | string
  readonly world_id: string
  readonly entity_id: number | string
  readonly player_id: string | null
  readonly from_region: string
  readonly to_region: string
  readonly started_at: number | string
  readonly duration_ms: number | string
  readonly outcome: TransferOutcome
  readonly reason: string | null
}

const toStored = (r: TransferRow): StoredTransfer => ({
  id: Number(r.id),
  worldId: r.world_id,
  entityId: Number(r.entity_id),
  playerId: r.player_id,
  fromRegion: r.from_region,
  toRegion: r.to_region,
  startedAt: Number(r.started_at),
  durationMs: Number(r.duration_ms),
  outcome: r.outcome,
  reason: r.reason
})

const countTransfer = (entry: TransferEntry): void => {
  Metrics.authorityTransferTotal.inc()
  if (entry.outcome === "ok") Metrics.authorityTransferDurationSeconds.observe(entry.durationMs / 1000)
  else Metrics.authorityTransferFailuresTotal.inc()
}

const make = (options: { readonly intervalMs: number; readonly maxBuffered: number }) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const lock = yield* Effect.makeSemaphore(1)
    const maxBuffered = Math.max(1, Math.floor(options.maxBuffered))
    const queue = new Ring<TransferEntry>(maxBuffered)

    const enqueue = (entry: TransferEntry): void => {
      if (queue.push(entry)) Metrics.transferLogDroppedTotal.inc()
    }

    const record = (entry: TransferEntry): void => {
      countTransfer(entry)
      enqueue(entry)
    }

    const insertAll = (entries: ReadonlyArray<TransferEntry>) =>
      Effect.gen(function*() {
        for (let start = 0; start < entries.length; start += INSERT_CHUNK) {
          const rows = entries.slice(start, start + INSERT_CHUNK).map((e) => ({
            world_id: e.worldId,
            entity_id: e.entityId,
            player_id: e.playerId,
            from_region: e.fromRegion,
            to_region: e.toRegion,
            started_at: e.startedAt,
            duration_ms: e.durationMs,
            outcome: e.outcome,
            reason: e.reason
          }))
          yield* sql`INSERT INTO authority_transfers ${sql.insert(rows)}`
        }
      }).pipe(sql.withTransaction, Effect.mapError(StorageError.fromSqlError("transferLog.flush")))

    // Failures in a row: the first is logged with its cause, then one line per minute of outage.
    let failuresInRow = 0

    const flushOnce = Effect.suspend(() => {
      if (queue.size === 0) return Effect.void
      const batch = queue.drain()
      const started = performance.now()
      Metrics.storageFlushTotal.inc()
      return insertAll(batch).pipe(
        Effect.matchCauseEffect({
          onSuccess: () =>
            Effect.suspend(() => {
              const failed = failuresInRow
              failuresInRow = 0
              return failed === 0 ? Effect.void : Effect.logInfo(
                `transfer log flush succeeded after ${failed} failed attempts`
              ).pipe(Effect.annotateLogs({ rows: batch.length }))
            }),
          onFailure: (cause) =>
            Effect.suspend(() => {
              // Back in front of what was recorded meanwhile, oldest first; the
              // ring drops the oldest if the two no longer fit.
              const newer = queue.drain()
              for (const entry of batch) enqueue(entry)
              for (const entry of newer) enqueue(entry)
              Metrics.storageFlushErrorsTotal.inc()
              failuresInRow++
              const everyMinute = Math.max(1, Math.round(60_000 / Math.max(1, options.intervalMs)))
              if (failuresInRow > 1 && failuresInRow % everyMinute !== 0) return Effect.void
              return Effect.logWarning(
                `transfer log flush failed (${failuresInRow} in a row); entries kept for the next flush`
              ).pipe(Effect.annotateLogs({ rows: queue.size, error: Cause.pretty(cause) }))
            })
        }),
        Effect.ensuring(
          Effect.sync(() => Metrics.storageFlushDurationSeconds.observe((performance.now() - started) / 1000))
        )
      )
    })

    const flush: Effect.Effect<void> = lock.withPermits(1)(Effect.uninterruptible(flushOnce))

    const recent = (worldId: string, limit: number) =>
      limit <= 0
        ? Effect.succeed([])
        : sql<TransferRow>`
          SELECT id, world_id, entity_id, player_id, from_region, to_region, started_at, duration_ms, outcome, reason
          FROM authority_transfers
          WHERE world_id = ${worldId}
          ORDER BY started_at DESC, id DESC
          LIMIT ${Math.floor(limit)}
        `.pipe(
          Effect.map((rows) => rows.map(toStored)),
          Effect.mapError(StorageError.fromSqlError("transferLog.recent"))
        )

    const service = TransferLog.of({ record, flush, pending: () => queue.size, recent })
    return { service, flush }
  })

/**
 * The log over SqlClient: a scoped fiber flushes every `intervalMs`, and the
 * layer's finalizer stops it and flushes one last time, so closing the
 * runtime (SIGTERM) persists what was queued. `maxBuffered` (default
 * DEFAULT_MAX_BUFFERED) bounds the entries kept while storage is down.
 */
export const layer = (options: {
  readonly intervalMs: number
  readonly maxBuffered?: number
}): Layer.Layer<TransferLog, never, SqlClient.SqlClient> =>
  Layer.scoped(
    TransferLog,
    Effect.gen(function*() {
      const interval = Duration.millis(Math.max(1, options.intervalMs))
      const { flush, service } = yield* make({
        intervalMs: options.intervalMs,
        maxBuffered: options.maxBuffered ?? DEFAULT_MAX_BUFFERED
      })
      // Added before the fiber is forked, so it runs after the fiber is
      // interrupted: the last flush sees everything and cannot race a periodic one.
      yield* Effect.addFinalizer(() => Effect.zipRight(flush, Effect.logDebug("transfer log flushed on shutdown")))
      yield* flush.pipe(Effect.repeat(Schedule.spaced(interval)), Effect.delay(interval), Effect.forkScoped)
      return service
    })
  )
