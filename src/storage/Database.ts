import { Migrator, SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { SqliteClient, SqliteMigrator } from "@effect/sql-sqlite-node"
import { Cause, Effect, Layer, Redacted } from "effect"
import type { TesseraConfig } from "../config/TesseraConfig.js"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { migrations } from "./Migrations.js"
import { StorageError } from "./StorageError.js"

/**
 * The migrator without schema dumping: `SqliteMigrator.run` would also
 * require FileSystem | Path | CommandExecutor (only used to shell out to
 * `sqlite3` when `schemaDirectory` is set, which we never do).
 */
const runMigrations = SqliteMigrator.make({})({
  loader: SqliteMigrator.fromRecord(migrations)
})

/** Milliseconds a writer waits on a locked database before SQLITE_BUSY. */
const BUSY_TIMEOUT_MS = 5_000

/**
 * The connection setup and migrations, run once when the layer is built.
 * The pragmas run outside any transaction (journal_mode cannot change inside
 * one); the migrator wraps its own work in a transaction.
 */
const setup: Effect.Effect<void, StorageError, SqlClient.SqlClient> = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const modes = yield* sql.unsafe<{ journal_mode: string }>("PRAGMA journal_mode = WAL")
  const mode = modes[0]?.journal_mode
  if (mode !== "wal") {
    yield* Effect.logWarning("SQLite did not switch to WAL mode").pipe(
      Effect.annotateLogs("journalMode", String(mode))
    )
  }
  yield* sql.unsafe("PRAGMA synchronous = NORMAL")
  yield* sql.unsafe(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`)
  yield* sql.unsafe("PRAGMA foreign_keys = ON")
  const applied = yield* runMigrations
  if (applied.length > 0) {
    yield* Effect.logInfo("applied database migrations").pipe(
      Effect.annotateLogs("migrations", applied.map(([id, name]) => `${id}_${name}`).join(","))
    )
  }
}).pipe(Effect.mapError(StorageError.fromUnknown("database setup")))

/**
 * The embedded database: `<dataDir>/<filename>` (default `tessera.db`) opened
 * through better-sqlite3 in WAL mode with synchronous=NORMAL (durable across
 * process crashes; an OS crash can lose the last commits, never corrupt), the
 * data directory created if missing and all migrations applied before the
 * layer is ready. The connection closes when the layer's scope closes.
 */
export const layerSqlite = (options: {
  readonly dataDir: string
  readonly filename?: string
}): Layer.Layer<SqlClient.SqlClient | SqliteClient.SqliteClient, StorageError> => {
  const filename = Path.join(options.dataDir, options.filename ?? "tessera.db")

  const dataDir = Layer.effectDiscard(
    Effect.try({
      try: () => Fs.mkdirSync(options.dataDir, { recursive: true }),
      catch: StorageError.fromUnknown(`creating data directory ${options.dataDir}`)
    })
  )

  const client = SqliteClient.layer({ filename }).pipe(
    // better-sqlite3 throws synchronously in the constructor (e.g. a directory
    // that is not writable); SqliteClient.layer never fails with its declared
    // ConfigError, but map both to StorageError.
    Layer.catchAllCause((cause) => Layer.fail(StorageError.fromUnknown(`opening ${filename}`)(Cause.squash(cause)))),
    Layer.provide(dataDir)
  )

  return Layer.effectDiscard(setup).pipe(Layer.provideMerge(client))
}

/**
 * The shared database of a multi-node cluster: PostgreSQL through
 * @effect/sql-pg, the same migrations and repositories as SQLite. Every
 * runner applies the migrations at boot, under the BootLock.
 */
export const layerPostgres = (options: { readonly url: string }): Layer.Layer<SqlClient.SqlClient, StorageError> => {
  // Runners sharing the database boot one at a time (BootLock), so the migrations cannot race.
  const migrate = Migrator.make({})({ loader: Migrator.fromRecord(migrations) }).pipe(
    Effect.tap((applied) =>
      applied.length === 0 ? Effect.void : Effect.logInfo("applied database migrations").pipe(
        Effect.annotateLogs("migrations", applied.map(([id, name]) => `${id}_${name}`).join(","))
      )
    ),
    Effect.mapError(StorageError.fromUnknown("database setup"))
  )
  const client = PgClient.layer({ url: Redacted.make(options.url) }).pipe(
    Layer.catchAllCause((cause) => Layer.fail(StorageError.fromUnknown("connecting to PostgreSQL")(Cause.squash(cause))))
  )
  return Layer.effectDiscard(migrate).pipe(Layer.provideMerge(client))
}

/** The configured backend: SQLite under `storage.data_dir`, or PostgreSQL at `storage.postgres_url`. */
export const layer = (config: TesseraConfig["storage"]): Layer.Layer<SqlClient.SqlClient, StorageError> =>
  config.backend === "postgres" ? layerPostgres({ url: config.postgresUrl }) : layerSqlite({ dataDir: config.dataDir })
