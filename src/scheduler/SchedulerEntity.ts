import { ClusterSchema, Entity } from "@effect/cluster"
import { Rpc } from "@effect/rpc"
import { Schema } from "effect"
import { Role } from "../cluster/Roles.js"
import { GameError } from "../protocol/GameError.js"

export const InstanceInfo = Schema.Struct({
  worldId: Schema.String,
  experienceId: Schema.String,
  players: Schema.Number,
  maxPlayers: Schema.Number,
  createdAt: Schema.Number,
  emptySince: Schema.NullOr(Schema.Number)
})
export type InstanceInfo = typeof InstanceInfo.Type

/** The one scheduler entity's id: an entity with a fixed id is the addressable face of the control plane. */
export const SCHEDULER_ID = "main"

/**
 * The Scheduler's protocol: the registry of instances and the placement of
 * players. Its periodic work runs in the Scheduler singleton.
 */
export const SchedulerEntity = Entity.make("Scheduler", [
  /** Places a player in an instance of the experience with room, creating one on demand (idempotent per player). */
  Rpc.make("Place", {
    payload: { experienceId: Schema.String, playerId: Schema.String },
    success: Schema.Struct({
      worldId: Schema.String,
      regionId: Schema.String,
      created: Schema.Boolean,
      /** Open worlds: the player's world-wide entity id and where it enters (its region is the directory's). */
      placement: Schema.optional(Schema.Struct({ entityId: Schema.Number, x: Schema.Number, y: Schema.Number, z: Schema.Number }))
    }),
    error: GameError
  }),
  Rpc.make("Left", { payload: { playerId: Schema.String, worldId: Schema.String } }),
  /** Terminates instances empty for longer than the grace period; returns their ids. */
  Rpc.make("Reap", { success: Schema.Array(Schema.String) }),
  Rpc.make("ListInstances", { success: Schema.Array(InstanceInfo) }),
  /** Open worlds: a region's load, once a second (the split/merge policy's input). */
  Rpc.make("ReportLoad", { payload: { regionId: Schema.String, players: Schema.Number, tickP99Ms: Schema.Number } }),
  /** Open worlds: runs the split/merge policy once; returns what it changed. */
  Rpc.make("MeshTick", { success: Schema.Array(Schema.String) })
]).annotate(ClusterSchema.ShardGroup, () => Role.Scheduler)
