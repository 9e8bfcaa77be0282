import { SqlClient } from "@effect/sql"
import { Clock, Context, Effect, Layer, Option } from "effect"
import { StorageError } from "./StorageError.js"

/** A stored scheduler state value: JSON text, and when it was last written (epoch ms). */
export interface SchedulerStateEntry {
  readonly value: string
  readonly updatedAt: number
}

interface StateRow {
  readonly value: string
  readonly updated_at: number | string
}

/**
 * The scheduler's state that must survive a failover (the singleton moving to
 * another runner): one JSON value per key, last write wins. What the keys
 * and values mean is the scheduler's business; this only stores text.
 */
export class SchedulerStateRepository extends Context.Tag("tessera/storage/SchedulerStateRepository")<
  SchedulerStateRepository,
  {
    readonly get: (key: string) => Effect.Effect<Option.Option<SchedulerStateEntry>, StorageError>
    /**
     * Inserts or replaces the value of `key` (JSON text, not checked here),
     * stamped with the current time, in one statement.
     */
    readonly put: (key: string, value: string) => Effect.Effect<void, StorageError>
    /** Removes `key`; true when it was there (so of several deleters exactly one sees true). */
    readonly remove: (key: string) => Effect.Effect<boolean, StorageError>
  }
>() {}

const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  const get = (key: string) =>
    sql<StateRow>`SELECT value, updated_at FROM scheduler_state WHERE key = ${key}`.pipe(
      Effect.map((rows) => {
        const row = rows[0]
        return row === undefined
          ? Option.none<SchedulerStateEntry>()
          : Option.some({ value: row.value, updatedAt: Number(row.updated_at) })
      }),
      Effect.mapError(StorageError.fromSqlError("schedulerState.get"))
    )

  const put = (key: string, value: string) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      yield* sql`
        INSERT INTO scheduler_state (key, value, updated_at)
        VALUES (${key}, ${value}, ${now})
        ON CONFLICT (key) DO UPDATE SET
          value = excluded.value,
          updated_at = excluded.updated_at
      `
    }).pipe(Effect.mapError(StorageError.fromSqlError("schedulerState.put")))

  const remove = (key: string) =>
    sql<{ readonly key: string }>`DELETE FROM scheduler_state WHERE key = ${key} RETURNING key`.pipe(
      Effect.map((rows) => rows.length > 0),
      Effect.mapError(StorageError.fromSqlError("schedulerState.remove"))
    )

  return SchedulerStateRepository.of({ get, put, remove })
})

/** The SQL implementation (SQLite or PostgreSQL, the same SQL). */
export const layer: Layer.Layer<SchedulerStateRepository, never, SqlClient.SqlClient> = Layer.effect(
  SchedulerStateRepository,
  make
)
