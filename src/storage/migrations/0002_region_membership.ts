import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

/**
 * Region membership, so a region re-activated after a crash (or a restart)
 * reloads its players with the same entity ids and input acks: a player row
 * with a region_entity_id is in its last_world_id's region.
 */
export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE players ADD COLUMN region_entity_id BIGINT`
  yield* sql`ALTER TABLE players ADD COLUMN last_input_seq BIGINT NOT NULL DEFAULT 0`
  yield* sql`CREATE INDEX IF NOT EXISTS players_region_members ON players (last_world_id, region_entity_id)`
})
