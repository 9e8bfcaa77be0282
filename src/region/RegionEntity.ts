import { ClusterSchema, Entity } from "@effect/cluster"
import { Rpc } from "@effect/rpc"
import { Schema } from "effect"
import { Role } from "../cluster/Roles.js"
import { GameError } from "../protocol/GameError.js"
import { JoinedInfo } from "../protocol/Location.js"

/**
 * The Region entity protocol: the authoritative simulation of one piece of a
 * world. All messages are volatile; the game path never persists a message.
 */
export const RegionEntity = Entity.make("Region", [
  /**
   * Adds the player (idempotent: a player already present keeps its entity).
   * `resumed` is false for a join from a new client, whose input seqs start
   * again at 1: the entity's input ack restarts with it.
   */
  Rpc.make("Join", {
    payload: { playerId: Schema.String, gatewayId: Schema.String, resumed: Schema.Boolean },
    success: JoinedInfo,
    error: GameError
  }),
  Rpc.make("Leave", { payload: { playerId: Schema.String } }),
  /** One batch of inputs from one gateway for one tick (InputBuffer bytes). */
  Rpc.make("Inputs", { payload: { gatewayId: Schema.String, bytes: Schema.Uint8ArrayFromSelf } }),
  /** A gateway's periodic report of the entities whose players it still serves (renews their leases). */
  Rpc.make("Present", { payload: { gatewayId: Schema.String, entityIds: Schema.Array(Schema.Number) } }),
  /** Flushes, stops ticking and lets the entity passivate. */
  Rpc.make("Shutdown"),
  Rpc.make("Info", { success: Schema.Struct({ players: Schema.Number, tick: Schema.Number, ticking: Schema.Boolean }) })
]).annotate(ClusterSchema.ShardGroup, () => Role.Region)
