import { ClusterSchema, Entity } from "@effect/cluster"
import { Rpc } from "@effect/rpc"
import { Schema } from "effect"
import { Role } from "../../cluster/Roles.js"
import { GameError } from "../../protocol/GameError.js"

/** The entity key of the queue of `mode` of `experienceId` (both ids without ":" or "/"). */
export const matchQueueKey = (experienceId: string, mode: string): string => `${experienceId}:${mode}`

/**
 * The queue key a ticket or match id belongs to: ids are `<queueKey>/<local id>`
 * so a player's Accept or Decline can be routed without asking anyone.
 */
export const queueKeyOfId = (id: string): string | undefined => {
  const slash = id.indexOf("/")
  return slash <= 0 ? undefined : id.slice(0, slash)
}

export const TicketPlayer = Schema.Struct({ playerId: Schema.String, skill: Schema.Number })

/** Where a player's ticket is (Status). */
export const TicketState = Schema.Struct({
  ticketId: Schema.String,
  players: Schema.Array(Schema.String),
  /** "queued" or "ready_check" (then `matchId` and `deadline`, epoch ms, are set). */
  state: Schema.Literal("queued", "ready_check"),
  matchId: Schema.NullOr(Schema.String),
  since: Schema.Number,
  deadline: Schema.NullOr(Schema.Number)
})
export type TicketState = typeof TicketState.Type

/**
 * The matchmaking expert's protocol. One entity per queue, keyed
 * `<experienceId>:<mode>` (see `matchQueueKey`), in its own shard group. The
 * entity holds the pure Matchmaker state for that one mode, ticks while it has
 * tickets, asks the scheduler for an instance per match and routes the
 * players there; it tells players through ClientDelivery (MatchQueued,
 * MatchFound, MatchReady, MatchEnded frames). Volatile: the queue is lost
 * with the entity (players queue again).
 */
export const MatchmakerEntity = Entity.make("Matchmaker", [
  /**
   * Queues a party: `players[0]` is the leader. `leaderExperienceId` is the
   * experience the leader is playing (null: none), checked against the mode's
   * (a player in another experience cannot be routed to the match).
   * `latencies` empty: no preference (0 ms to every configured region).
   */
  Rpc.make("Enqueue", {
    payload: {
      players: Schema.Array(TicketPlayer),
      latencies: Schema.Record({ key: Schema.String, value: Schema.Number }),
      leaderExperienceId: Schema.NullOr(Schema.String)
    },
    success: Schema.Struct({ ticketId: Schema.String }),
    error: GameError
  }),
  /** Cancels the ticket `playerId` is in (any party member may); fails with not_queued when there is none. */
  Rpc.make("Cancel", {
    payload: { playerId: Schema.String, reason: Schema.String },
    success: Schema.Struct({ ticketId: Schema.String }),
    error: GameError
  }),
  Rpc.make("Accept", { payload: { playerId: Schema.String, matchId: Schema.String }, error: GameError }),
  Rpc.make("Decline", { payload: { playerId: Schema.String, matchId: Schema.String }, error: GameError }),
  /** The ticket `playerId` is in, or null. */
  Rpc.make("Status", { payload: { playerId: Schema.String }, success: Schema.NullOr(TicketState) })
]).annotate(ClusterSchema.ShardGroup, () => Role.ExpertMatchmaking)
