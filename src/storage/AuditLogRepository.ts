import { SqlClient } from "@effect/sql"
import { Context, Effect, Layer } from "effect"
import { StorageError } from "./StorageError.js"

/** One audit log entry: who did what to what, when. */
export interface AuditEntry {
  /** Epoch milliseconds. */
  readonly at: number
  /** `admin:<key id>`, `scheduler` or `system`. */
  readonly actor: string
  /** What was done, e.g. the control event's tag (`ServerSpawned`, `ScalingDecision`). */
  readonly action: string
  /** What it was done to (a world, player, experience or runner id), if anything. */
  readonly target: string | null
  /** The details as JSON text. */
  readonly detail: string
}

/** A stored entry, with its id (increasing in insertion order). */
export interface StoredAuditEntry extends AuditEntry {
  readonly id: number
}

interface AuditRow {
  readonly id: number | string
  readonly at: number | string
  readonly actor: string
  readonly action: string
  readonly target: string | null
  readonly detail: string
}

const toStored = (r: AuditRow): StoredAuditEntry => ({
  id: Number(r.id),
  at: Number(r.at),
  actor: r.actor,
  action: r.action,
  target: r.target,
  detail: r.detail
})

/** Rows per multi-row INSERT: 5 parameters each, well under SQLite's and PostgreSQL's limits. */
const INSERT_CHUNK = 500

/** The audit log (who did what, when), append-only. */
export class AuditLogRepository extends Context.Tag("tessera/storage/AuditLogRepository")<
  AuditLogRepository,
  {
    /**
     * Appends the entries in one transaction, in array order (their ids
     * follow it): all are stored or none.
     */
    readonly append: (entries: ReadonlyArray<AuditEntry>) => Effect.Effect<void, StorageError>
    /**
     * The newest `limit` entries, newest first (by id); with `beforeId`, the
     * newest `limit` entries older than that id, to page back from the last
     * id of the previous page.
     */
    readonly list: (limit: number, beforeId?: number) => Effect.Effect<ReadonlyArray<StoredAuditEntry>, StorageError>
  }
>() {}

const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  const append = (entries: ReadonlyArray<AuditEntry>) =>
    entries.length === 0 ? Effect.void : Effect.gen(function*() {
      for (let start = 0; start < entries.length; start += INSERT_CHUNK) {
        const rows = entries.slice(start, start + INSERT_CHUNK).map((e) => ({
          at: e.at,
          actor: e.actor,
          action: e.action,
          target: e.target,
          detail: e.detail
        }))
        yield* sql`INSERT INTO audit_log ${sql.insert(rows)}`
      }
    }).pipe(sql.withTransaction, Effect.mapError(StorageError.fromSqlError("auditLog.append")))

  const list = (limit: number, beforeId?: number) => {
    const n = Math.floor(limit)
    if (!(n > 0)) return Effect.succeed([] as ReadonlyArray<StoredAuditEntry>)
    const query = beforeId === undefined
      ? sql<AuditRow>`
          SELECT id, at, actor, action, target, detail FROM audit_log
          ORDER BY id DESC LIMIT ${n}`
      : sql<AuditRow>`
          SELECT id, at, actor, action, target, detail FROM audit_log
          WHERE id < ${Math.floor(beforeId)}
          ORDER BY id DESC LIMIT ${n}`
    return query.pipe(
      Effect.map((rows): ReadonlyArray<StoredAuditEntry> => rows.map(toStored)),
      Effect.mapError(StorageError.fromSqlError("auditLog.list"))
    )
  }

  return AuditLogRepository.of({ append, list })
})

/** The SQL implementation (SQLite or PostgreSQL, the same SQL). */
export const layer: Layer.Layer<AuditLogRepository, never, SqlClient.SqlClient> = Layer.effect(AuditLogRepository, make)
