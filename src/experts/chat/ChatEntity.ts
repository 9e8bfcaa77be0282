import { ClusterSchema, Entity } from "@effect/cluster"
import { Rpc } from "@effect/rpc"
import { Schema } from "effect"
import { Role } from "../../cluster/Roles.js"
import { GameError } from "../../protocol/GameError.js"

export const ChatHistoryEntry = Schema.Tuple(Schema.String, Schema.String, Schema.String, Schema.Number)

/**
 * The chat expert's protocol. One entity per channel: `w:<experienceId>`
 * (world), `i:<worldId>` (instance), `p:<playerA>|<playerB>` (a private
 * conversation, ids sorted), so a channel's history and ordering live in one
 * place.
 */
export const ChatEntity = Entity.make("Chat", [
  Rpc.make("Send", {
    payload: {
      fromPlayerId: Schema.String,
      fromName: Schema.String,
      text: Schema.String,
      to: Schema.NullOr(Schema.String)
    },
    error: GameError
  }),
  Rpc.make("History", { payload: { limit: Schema.Number }, success: Schema.Array(ChatHistoryEntry) })
]).annotate(ClusterSchema.ShardGroup, () => Role.ExpertChat)
