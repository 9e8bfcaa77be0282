import { SqlClient } from "@effect/sql"
import { Clock, Context, Effect, Layer, Option } from "effect"
import { StorageError } from "./StorageError.js"

/** A stored player as the rest of the backend sees it. */
export interface PlayerRecord {
  readonly id: string
  readonly name: string
  readonly deviceId: string | null
  readonly lastExperienceId: string | null
  readonly lastWorldId: string | null
  readonly position: { readonly x: number; readonly y: number; readonly z: number } | null
}

/** The latest known state of one player, written behind by PlayerStateWriter. */
export interface PlayerStateRow {
  readonly playerId: string
  readonly experienceId: string
  readonly worldId: string
  readonly x: number
  readonly y: number
  readonly z: number
  /** The player's entity in the world's region; null once it left the region. */
  readonly entityId: number | null
  /** The last input seq the region applied (the player's input ack). */
  readonly lastSeq: number
  /** Epoch milliseconds; becomes last_seen_at. */
  readonly at: number
}

/** A player a region holds, as stored: what a re-activated region reloads. */
export interface RegionMemberRow {
  readonly playerId: string
  readonly entityId: number
  readonly x: number
  readonly y: number
  readonly z: number
  readonly lastSeq: number
}

interface PlayerRow {
  readonly id: string
  readonly device_id: string | null
  readonly name: string
  readonly last_experience_id: string | null
  readonly last_world_id: string | null
  readonly pos_x: number | string | null
  readonly pos_y: number | string | null
  readonly pos_z: number | string | null
}

// Numbers are coerced with Number(): PostgreSQL drivers return BIGINT and
// sometimes DOUBLE as strings.
const toRecord = (row: PlayerRow): PlayerRecord => ({
  id: row.id,
  name: row.name,
  deviceId: row.device_id,
  lastExperienceId: row.last_experience_id,
  lastWorldId: row.last_world_id,
  position: row.pos_x === null || row.pos_y === null || row.pos_z === null
    ? null
    : { x: Number(row.pos_x), y: Number(row.pos_y), z: Number(row.pos_z) }
})

/** "guest-" + the first 6 characters of the id. */
export const defaultGuestName = (id: string): string => `guest-${id.slice(0, 6)}`

/** Players: guest identity by device id, and their last world and position. */
export class PlayerRepository extends Context.Tag("tessera/storage/PlayerRepository")<
  PlayerRepository,
  {
    /**
     * The player bound to `deviceId`, created on first sight; without a
     * device id, always a fresh player. A non-empty `name` renames an
     * existing player; otherwise new players are called `guest-xxxxxx`.
     * Concurrent calls with the same device id yield the same player.
     */
    readonly findOrCreateGuest: (
      deviceId: string | undefined,
      name: string | undefined
    ) => Effect.Effect<PlayerRecord, StorageError>
    readonly get: (playerId: string) => Effect.Effect<Option.Option<PlayerRecord>, StorageError>
    /**
     * Writes the whole batch in ONE transaction: either every row lands or
     * none does. Rows for unknown player ids are ignored, and so is a row
     * older (`at`) than what is stored: two regions on different runners
     * (a handoff's source and destination) flush independently, and the
     * destination's newer row must not be overwritten by a late flush of the
     * source's (which would make a restarted source restore the player too).
     */
    readonly saveStates: (states: ReadonlyArray<PlayerStateRow>) => Effect.Effect<void, StorageError>
    /** The players last stored as members of this world's region (entity id set). */
    readonly regionMembers: (worldId: string) => Effect.Effect<ReadonlyArray<RegionMemberRow>, StorageError>
  }
>() {}

const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  const selectById = (id: string) =>
    sql<PlayerRow>`
      SELECT id, device_id, name, last_experience_id, last_world_id, pos_x, pos_y, pos_z
      FROM players WHERE id = ${id}
    `

  const selectByDevice = (deviceId: string) =>
    sql<PlayerRow>`
      SELECT id, device_id, name, last_experience_id, last_world_id, pos_x, pos_y, pos_z
      FROM players WHERE device_id = ${deviceId}
    `

  const insert = (id: string, deviceId: string | null, name: string, now: number) =>
    sql`
      INSERT INTO players (id, device_id, name, created_at, last_seen_at)
      VALUES (${id}, ${deviceId}, ${name}, ${now}, ${now})
      ON CONFLICT (device_id) DO NOTHING
    `

  const createFresh = (deviceId: string | null, name: string | undefined, now: number) =>
    Effect.gen(function*() {
      const id = crypto.randomUUID()
      yield* insert(id, deviceId, name ?? defaultGuestName(id), now)
      return id
    })

  const findOrCreateGuest = (deviceId: string | undefined, name: string | undefined) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const wantedName = name !== undefined && name.trim().length > 0 ? name.trim() : undefined

      if (deviceId === undefined || deviceId.length === 0) {
        const id = yield* createFresh(null, wantedName, now)
        return toRecord((yield* selectById(id))[0]!)
      }

      const existing = yield* selectByDevice(deviceId)
      if (existing.length > 0) {
        const row = existing[0]!
        yield* sql`
          UPDATE players SET last_seen_at = ${now}, name = ${wantedName ?? row.name}
          WHERE id = ${row.id}
        `
        return toRecord({ ...row, name: wantedName ?? row.name })
      }

      // ON CONFLICT DO NOTHING: if another caller created the same device's
      // player in between, ours is dropped and we read theirs back.
      yield* createFresh(deviceId, wantedName, now)
      return toRecord((yield* selectByDevice(deviceId))[0]!)
    }).pipe(
      sql.withTransaction,
      Effect.mapError(StorageError.fromSqlError("players.findOrCreateGuest"))
    )

  const get = (playerId: string) =>
    selectById(playerId).pipe(
      Effect.map((rows) => rows.length > 0 ? Option.some(toRecord(rows[0]!)) : Option.none()),
      Effect.mapError(StorageError.fromSqlError("players.get"))
    )

  const saveState = (s: PlayerStateRow) =>
    sql`
      UPDATE players SET
        last_experience_id = ${s.experienceId},
        last_world_id = ${s.worldId},
        pos_x = ${s.x}, pos_y = ${s.y}, pos_z = ${s.z},
        region_entity_id = ${s.entityId},
        last_input_seq = ${s.lastSeq},
        last_seen_at = ${s.at}
      WHERE id = ${s.playerId} AND (last_seen_at IS NULL OR last_seen_at <= ${s.at})
    `

  const saveStates = (states: ReadonlyArray<PlayerStateRow>) =>
    states.length === 0
      ? Effect.void
      : Effect.forEach(states, saveState, { discard: true }).pipe(
        sql.withTransaction,
        Effect.mapError(StorageError.fromSqlError("players.saveStates"))
      )

  const regionMembers = (worldId: string) =>
    sql<{
      id: string
      region_entity_id: number | string
      pos_x: number | string
      pos_y: number | string
      pos_z: number | string
      last_input_seq: number | string
    }>`
      SELECT id, region_entity_id, pos_x, pos_y, pos_z, last_input_seq
      FROM players WHERE last_world_id = ${worldId} AND region_entity_id IS NOT NULL
    `.pipe(
      Effect.map((rows) =>
        rows.map((r) => ({
          playerId: r.id,
          entityId: Number(r.region_entity_id),
          x: Number(r.pos_x),
          y: Number(r.pos_y),
          z: Number(r.pos_z),
          lastSeq: Number(r.last_input_seq)
        }))
      ),
      Effect.mapError(StorageError.fromSqlError("players.regionMembers"))
    )

  return PlayerRepository.of({ findOrCreateGuest, get, saveStates, regionMembers })
})

/** The SQL implementation (SQLite now, PostgreSQL through the same SQL). */
export const layer: Layer.Layer<PlayerRepository, never, SqlClient.SqlClient> = Layer.effect(
  PlayerRepository,
  make
)
