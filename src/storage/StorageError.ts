import type { SqlError } from "@effect/sql/SqlError"
import { Schema } from "effect"

/**
 * A storage operation failed (SQL error, migration failure, data directory
 * not writable). Crosses RPC boundaries, so it is a Schema.TaggedError; the
 * message says which operation failed, the cause keeps the driver error for
 * logs.
 */
export class StorageError extends Schema.TaggedError<StorageError>()("StorageError", {
  message: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {
  /** `Effect.mapError(StorageError.fromSqlError("players.get"))` */
  static fromSqlError(operation: string): (error: SqlError) => StorageError {
    return (error) =>
      new StorageError({
        message: `${operation} failed: ${error.message}`,
        cause: error.cause ?? error
      })
  }

  /** For anything that is not a SqlError (fs errors, migration errors, defects). */
  static fromUnknown(operation: string): (error: unknown) => StorageError {
    return (error) =>
      new StorageError({
        message: `${operation} failed: ${error instanceof Error ? error.message : String(error)}`,
        cause: error
      })
  }
}
