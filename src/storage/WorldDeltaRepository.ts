import { SqlClient } from "@effect/sql"
import { Context, Effect, Layer } from "effect"
import * as Metrics from "../observability/Metrics.js"
import type { Box } from "../region/mesh/MeshGeometry.js"
import { StorageError } from "./StorageError.js"

/**
 * One modification of an open world: key `key` (a placed block, an opened
 * door: whatever the game logic names) now has `value`, or was removed
 * (`value` null), at position (x, y, z). The procedural world is never
 * stored; the current world is it plus the latest delta of every key.
 */
export interface WorldDeltaInput {
  readonly key: string
  readonly x: number
  readonly y: number
  readonly z: number
  /** The new value, or null when the key was removed. */
  readonly value: string | null
  /** Epoch milliseconds of the change. */
  readonly at: number
}

/** The current value of a key, as loaded: its latest delta. */
export interface WorldDelta {
  readonly key: string
  readonly x: number
  readonly y: number
  readonly z: number
  readonly value: string
  /** The world-wide sequence number of this delta (higher = newer). */
  readonly seq: number
  readonly at: number
  /** The region that wrote it. */
  readonly regionKey: string
}

interface DeltaRow {
  readonly key: string
  readonly region_key: string
  readonly seq: number | string
  readonly x: number | string
  readonly y: number | string
  readonly z: number | string
  readonly value: string
  readonly at: number | string
}

/** Deltas per multi-row INSERT: 9 parameters each, well under SQLite's and PostgreSQL's limits. */
const INSERT_CHUNK = 500

/** World modifications of open worlds, stored as deltas. */
export class WorldDeltaRepository extends Context.Tag("tessera/storage/WorldDeltaRepository")<
  WorldDeltaRepository,
  {
    /**
     * Appends `deltas` (in order) in ONE transaction: all land or none.
     * Each gets the next seq of the world, in commit order across every
     * writer of the world (the per-world counter is bumped inside the
     * transaction), so a later append always wins over an earlier one.
     * Returns the seq of the last delta (0 for an empty batch, which writes nothing).
     */
    readonly append: (
      worldId: string,
      regionKey: string,
      deltas: ReadonlyArray<WorldDeltaInput>
    ) => Effect.Effect<number, StorageError>
    /**
     * The current value of every key whose latest delta lies inside `box`,
     * oldest first. A key whose latest delta removed it, or moved it out of
     * the box, is not returned. Membership is MeshGeometry's `contains`:
     * [min, max) on each axis, and with `world` given, a box max face on the
     * world's max face is closed; so the leaves of a directory load every
     * delta exactly once.
     */
    readonly loadBox: (
      worldId: string,
      box: Box,
      world?: Box
    ) => Effect.Effect<ReadonlyArray<WorldDelta>, StorageError>
  }
>() {}

const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  /** Reserves `n` seqs for the world; returns the last one. Must run inside the append's transaction. */
  const reserve = (worldId: string, n: number) =>
    sql<{ seq: number | string }>`
      INSERT INTO world_delta_seqs (world_id, seq) VALUES (${worldId}, ${n})
      ON CONFLICT (world_id) DO UPDATE SET seq = world_delta_seqs.seq + excluded.seq
      RETURNING seq
    `.pipe(Effect.map((rows) => Number(rows[0]!.seq)))

  const append = (worldId: string, regionKey: string, deltas: ReadonlyArray<WorldDeltaInput>) =>
    deltas.length === 0
      ? Effect.succeed(0)
      : Effect.gen(function*() {
        const last = yield* reserve(worldId, deltas.length)
        const first = last - deltas.length + 1
        for (let start = 0; start < deltas.length; start += INSERT_CHUNK) {
          const rows = deltas.slice(start, start + INSERT_CHUNK).map((d, i) => ({
            world_id: worldId,
            region_key: regionKey,
            seq: first + start + i,
            key: d.key,
            x: d.x,
            y: d.y,
            z: d.z,
            value: d.value,
            at: d.at
          }))
          yield* sql`INSERT INTO world_deltas ${sql.insert(rows)}`
        }
        return last
      }).pipe(
        sql.withTransaction,
        Effect.tap(() => Effect.sync(() => Metrics.worldDeltasTotal.inc(deltas.length))),
        Effect.mapError(StorageError.fromSqlError("worldDeltas.append"))
      )

  // Candidates inside the box (index world_id, x, z), each kept only if no
  // newer delta of its key exists anywhere (primary key world_id, key, seq).
  const below = (closed: boolean) => sql.literal(closed ? "<=" : "<")

  const loadBox = (worldId: string, box: Box, world?: Box) =>
    sql<DeltaRow>`
      SELECT d.key, d.region_key, d.seq, d.x, d.y, d.z, d.value, d.at
      FROM world_deltas d
      WHERE d.world_id = ${worldId}
        AND d.x >= ${box.minX} AND d.x ${below(box.maxX === world?.maxX)} ${box.maxX}
        AND d.z >= ${box.minZ} AND d.z ${below(box.maxZ === world?.maxZ)} ${box.maxZ}
        AND d.y >= ${box.minY} AND d.y ${below(box.maxY === world?.maxY)} ${box.maxY}
        AND d.value IS NOT NULL
        AND NOT EXISTS (
          SELECT 1 FROM world_deltas n
          WHERE n.world_id = d.world_id AND n.key = d.key AND n.seq > d.seq
        )
      ORDER BY d.seq
    `.pipe(
      Effect.map((rows) =>
        rows.map((r): WorldDelta => ({
          key: r.key,
          x: Number(r.x),
          y: Number(r.y),
          z: Number(r.z),
          value: r.value,
          seq: Number(r.seq),
          at: Number(r.at),
          regionKey: r.region_key
        }))
      ),
      Effect.mapError(StorageError.fromSqlError("worldDeltas.loadBox"))
    )

  return WorldDeltaRepository.of({ append, loadBox })
})

/** The SQL implementation (SQLite or PostgreSQL, the same SQL). */
export const layer: Layer.Layer<WorldDeltaRepository, never, SqlClient.SqlClient> = Layer.effect(
  WorldDeltaRepository,
  make
)
