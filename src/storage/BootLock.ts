import { Context, Effect, Layer } from "effect"
import pg from "pg"
import { StorageError } from "./StorageError.js"

/**
 * Serialises the boot of runners that share one PostgreSQL database: each
 * creates its tables (ours and the cluster's) while holding a session-level
 * advisory lock, because concurrent CREATE TABLE IF NOT EXISTS races in
 * PostgreSQL's catalog. Released once the server is built (or when the layer
 * closes, whichever comes first).
 */
export class BootLock extends Context.Tag("tessera/BootLock")<BootLock, {
  readonly release: Effect.Effect<void>
}>() {
  /** One process owns its storage: nothing to serialise. */
  static readonly layerNone: Layer.Layer<BootLock> = Layer.succeed(BootLock, { release: Effect.void })

  static readonly layerPostgres = (url: string): Layer.Layer<BootLock, StorageError> =>
    Layer.scoped(
      BootLock,
      Effect.gen(function*() {
        const client = new pg.Client({ connectionString: url })
        yield* Effect.acquireRelease(
          Effect.tryPromise({
            try: async () => {
              await client.connect()
              await client.query("SELECT pg_advisory_lock($1)", [BOOT_LOCK_ID])
            },
            catch: StorageError.fromUnknown("taking the boot lock in PostgreSQL")
          }),
          () => Effect.promise(() => client.end().catch(() => undefined))
        )
        let released = false
        return {
          release: Effect.promise(async () => {
            if (released) return
            released = true
            // Closing the session releases the lock.
            await client.end().catch(() => undefined)
          })
        }
      })
    )
}

const BOOT_LOCK_ID = 7350_0002
