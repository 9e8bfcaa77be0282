import { ClusterSchema, Entity } from "@effect/cluster"
import { Rpc } from "@effect/rpc"
import { Schema } from "effect"
import { Role } from "../cluster/Roles.js"
import { GameError } from "../protocol/GameError.js"
import { JoinedInfo, Location } from "../protocol/Location.js"

export const ConnectionRef = Schema.Struct({ gatewayId: Schema.String, connectionId: Schema.String })
export type ConnectionRef = typeof ConnectionRef.Type

/**
 * The Session entity protocol: one per player (entity id = player id). It
 * owns the player's lifecycle: which connection is current, the resume
 * token and window, and the player's place in a world.
 */
export const SessionEntity = Entity.make("Session", [
  Rpc.make("Connect", {
    payload: {
      gatewayId: Schema.String,
      connectionId: Schema.String,
      resumeToken: Schema.optional(Schema.String)
    },
    success: Schema.Struct({
      resumeToken: Schema.String,
      resumed: Schema.Boolean,
      joined: Schema.NullOr(JoinedInfo),
      /** The connection this one replaces; its gateway closes it. */
      replaced: Schema.NullOr(ConnectionRef)
    })
  }),
  /**
   * The connection dropped. Carries what the gateway kept for the session
   * (token, location), so a session that passivated meanwhile can still
   * hold the player's place for the resume window.
   */
  Rpc.make("Disconnect", {
    payload: {
      connectionId: Schema.String,
      resumeToken: Schema.String,
      location: Schema.NullOr(Location)
    }
  }),
  /** `known`: the gateway's copy of the player's location, for a session that passivated meanwhile. */
  Rpc.make("JoinWorld", {
    payload: { experienceId: Schema.String, gatewayId: Schema.String, known: Schema.NullOr(Location) },
    success: JoinedInfo,
    error: GameError
  }),
  Rpc.make("LeaveWorld", { payload: { known: Schema.NullOr(Location) }, success: Schema.NullOr(Location) }),
  /**
   * A region dropped the player's entity `entityId` because no gateway vouched
   * for it for a whole lease: its gateway died and the player never came back
   * (no Disconnect will ever arrive). Unless the player has since resumed or
   * moved, the session forgets its place and frees its slot in the scheduler.
   */
  Rpc.make("LeaseExpired", {
    payload: { worldId: Schema.String, regionId: Schema.String, entityId: Schema.Number }
  }),
  /**
   * The scheduler moved the player out of `fromWorld` (an admin's route or
   * terminate, a match, a failed instance; null: the player was in no world
   * and is placed in `to`): its place there is dropped (it leaves that
   * region) and becomes `to` (null: no world). A connected player is moved
   * seamlessly: the session joins it to `to`'s region and its gateway
   * switches the connection over (Moved + Joined frames, no Join from the
   * client); with `to` null its gateway closes the connection with 4006.
   * When the region join fails the client gets a Left frame instead and
   * enters `to` on its next Join of the experience (or on resume).
   * "told": done, and a client connected to some gateway was told;
   * "not_connected": done, nobody to tell; "stale": not done, the player is
   * in another world than `fromWorld` by now (or, for fromWorld null, in
   * some world other than `to`).
   */
  Rpc.make("Relocate", {
    payload: { fromWorld: Schema.NullOr(Schema.String), to: Schema.NullOr(Location), reason: Schema.String },
    success: Schema.Literal("told", "not_connected", "stale")
  }),
  /**
   * Open worlds: the player's entity was handed from `fromRegion` to
   * `regionId` (same world, same world-wide entity id). The session follows,
   * so a resume, a leave or a lease expiry addresses the region that has it.
   */
  Rpc.make("Relocated", {
    payload: {
      worldId: Schema.String,
      fromRegion: Schema.String,
      regionId: Schema.String,
      entityId: Schema.Number,
      /** The entity's authority epoch in `regionId` (one more per handoff): orders relocations that race. */
      epoch: Schema.Number
    }
  })
]).annotate(ClusterSchema.ShardGroup, () => Role.Session)
