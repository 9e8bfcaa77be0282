import type { SqlClient } from "@effect/sql"
import type { Effect } from "effect"
import migration0001 from "./migrations/0001_initial.js"
import migration0002 from "./migrations/0002_region_membership.js"
import migration0003 from "./migrations/0003_world_mesh.js"
import migration0004 from "./migrations/0004_control_plane.js"

/**
 * Every migration, keyed `<id>_<name>` for `Migrator.fromRecord`. Append new
 * ones here; never edit or renumber a migration that has shipped.
 */
export const migrations: Record<string, Effect.Effect<void, unknown, SqlClient.SqlClient>> = {
  "0001_initial": migration0001,
  "0002_region_membership": migration0002,
  "0003_world_mesh": migration0003,
  "0004_control_plane": migration0004
}
