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
    payload: {
      playerId: Schema.String,
      gatewayId: Schema.String,
      resumed: Schema.Boolean,
      /** Open worlds: the world-wide entity id and where the player is, chosen by the scheduler. */
      placement: Schema.optional(Schema.Struct({ entityId: Schema.Number, x: Schema.Number, y: Schema.Number, z: Schema.Number }))
    },
    success: JoinedInfo,
    error: GameError
  }),
  Rpc.make("Leave", { payload: { playerId: Schema.String } }),
  /** One batch of inputs from one gateway for one tick (InputBuffer bytes). */
  Rpc.make("Inputs", { payload: { gatewayId: Schema.String, bytes: Schema.Uint8ArrayFromSelf } }),
  /** A gateway's periodic report of the entities whose players it still serves (renews their leases). */
  Rpc.make("Present", { payload: { gatewayId: Schema.String, entityIds: Schema.Array(Schema.Number) } }),
  /**
   * Open worlds, step 2 of an authority handoff: take this entity over
   * (fenced by transferId: accepted once, refused after an abort).
   */
  Rpc.make("Handoff", {
    payload: {
      transferId: Schema.String,
      from: Schema.String,
      epoch: Schema.Number,
      entityId: Schema.Number,
      playerId: Schema.String,
      x: Schema.Number,
      y: Schema.Number,
      z: Schema.Number,
      vx: Schema.Number,
      vy: Schema.Number,
      vz: Schema.Number,
      lastSeq: Schema.Number,
      buttons: Schema.Number,
      inputs: Schema.Uint8ArrayFromSelf
    },
    success: Schema.Literal("accepted", "duplicate", "aborted")
  }),
  /** The source gave up waiting: "accepted" if the handoff had gone through (the source drops it), else fenced off. */
  Rpc.make("AbortHandoff", { payload: { transferId: Schema.String }, success: Schema.Literal("accepted", "aborted") }),
  /** A neighbour's entities near the border, every tick (snapshot records). */
  Rpc.make("Ghosts", { payload: { from: Schema.String, records: Schema.Uint8ArrayFromSelf } }),
  /** The entities this region claims authority over, with their epochs (the invariant audit). */
  Rpc.make("Authority", {
    success: Schema.Array(Schema.Struct({ regionId: Schema.String, entityId: Schema.Number, epoch: Schema.Number }))
  }),
  /**
   * Open worlds: a player's world edit, routed by its gateway to the region
   * holding the player's entity (value null removes the key). Fails with a
   * GameError the gateway shows the player (out of reach, a neighbour's spot...).
   */
  Rpc.make("Edit", {
    payload: {
      playerId: Schema.String,
      key: Schema.String,
      x: Schema.Number,
      y: Schema.Number,
      z: Schema.Number,
      value: Schema.NullOr(Schema.String)
    },
    success: Schema.Literal("ok"),
    error: GameError
  }),
  /** Flushes, stops ticking and lets the entity passivate. */
  Rpc.make("Shutdown"),
  Rpc.make("Info", { success: Schema.Struct({ players: Schema.Number, tick: Schema.Number, ticking: Schema.Boolean }) })
]).annotate(ClusterSchema.ShardGroup, () => Role.Region)
