import { SqlClient } from "@effect/sql"
import { Clock, Context, Effect, Layer, Option } from "effect"
import { StorageError } from "./StorageError.js"

/** A stored region directory: its version and its leaf region keys (`level/x/y/z`). */
export interface StoredMeshDirectory {
  readonly version: number
  readonly leaves: ReadonlyArray<string>
}

interface DirectoryRow {
  readonly version: number | string
  readonly leaves: string
}

/**
 * The region directory of each open world (which leaf regions partition it),
 * as the scheduler last published it. Versions only move forward: a writer
 * holding an older version (a scheduler that lost its singleton, a slow
 * retry) cannot overwrite a newer directory.
 */
export class MeshDirectoryRepository extends Context.Tag("tessera/storage/MeshDirectoryRepository")<
  MeshDirectoryRepository,
  {
    readonly get: (worldId: string) => Effect.Effect<Option.Option<StoredMeshDirectory>, StorageError>
    /**
     * Stores the directory if `version` is newer than the stored one (or none
     * is stored), atomically (compare-and-set in one SQL statement). Returns
     * whether it was stored; false means a version >= `version` is already
     * there and nothing changed.
     */
    readonly put: (
      worldId: string,
      version: number,
      leaves: ReadonlyArray<string>
    ) => Effect.Effect<boolean, StorageError>
  }
>() {}

const parseLeaves = (worldId: string, text: string): ReadonlyArray<string> => {
  const parsed: unknown = JSON.parse(text)
  if (!Array.isArray(parsed) || !parsed.every((l): l is string => typeof l === "string")) {
    throw new Error(`mesh_directory.leaves of ${worldId} is not a JSON array of strings`)
  }
  return parsed
}

const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  const get = (worldId: string) =>
    sql<DirectoryRow>`SELECT version, leaves FROM mesh_directory WHERE world_id = ${worldId}`.pipe(
      Effect.mapError(StorageError.fromSqlError("meshDirectory.get")),
      Effect.flatMap((rows) => {
        const row = rows[0]
        if (row === undefined) return Effect.succeed(Option.none<StoredMeshDirectory>())
        return Effect.try({
          try: () => Option.some({ version: Number(row.version), leaves: parseLeaves(worldId, row.leaves) }),
          catch: StorageError.fromUnknown("meshDirectory.get")
        })
      })
    )

  const put = (worldId: string, version: number, leaves: ReadonlyArray<string>) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      // The WHERE of DO UPDATE is the compare-and-set: the row is only
      // replaced by a newer version; RETURNING yields no row otherwise.
      const written = yield* sql<{ world_id: string }>`
        INSERT INTO mesh_directory (world_id, version, leaves, updated_at)
        VALUES (${worldId}, ${version}, ${JSON.stringify(leaves)}, ${now})
        ON CONFLICT (world_id) DO UPDATE SET
          version = excluded.version,
          leaves = excluded.leaves,
          updated_at = excluded.updated_at
        WHERE mesh_directory.version < excluded.version
        RETURNING world_id
      `
      return written.length > 0
    }).pipe(Effect.mapError(StorageError.fromSqlError("meshDirectory.put")))

  return MeshDirectoryRepository.of({ get, put })
})

/** The SQL implementation (SQLite or PostgreSQL, the same SQL). */
export const layer: Layer.Layer<MeshDirectoryRepository, never, SqlClient.SqlClient> = Layer.effect(
  MeshDirectoryRepository,
  make
)
