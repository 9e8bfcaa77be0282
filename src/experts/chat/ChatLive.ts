import { Entity } from "@effect/cluster"
import { Duration, Effect } from "effect"
import { AppConfig } from "../../config/AppConfig.js"
import { ClientDelivery } from "../../gateway/ClientDelivery.js"
import * as Metrics from "../../observability/Metrics.js"
import { encode } from "../../protocol/Codec.js"
import { GameError } from "../../protocol/GameError.js"
import type { ChatMessageFrame } from "../../protocol/Messages.js"
import { ChatChannel, ErrorCode, ServerOp } from "../../protocol/Opcodes.js"
import { chatTopic } from "../../region/WorldIds.js"
import { ChatRepository } from "../../storage/ChatRepository.js"
import { channelOfKey } from "../ExpertRouter.js"
import { ChatEntity } from "./ChatEntity.js"
import { ChatRateLimit } from "./ChatRateLimit.js"
import { makeModerationFilter } from "./ModerationFilter.js"

/** Chat expert handlers: rate limit, moderation, delivery over pub/sub, then storage for history. */
export const ChatLive = ChatEntity.toLayer(
  Effect.gen(function*() {
    const key = (yield* Entity.CurrentAddress).entityId
    const config = yield* AppConfig
    const repository = yield* ChatRepository
    const delivery = yield* ClientDelivery
    const rateLimit = yield* ChatRateLimit
    const moderate = makeModerationFilter(config.chat.bannedWords)
    const channel = channelOfKey(key)

    return ChatEntity.of({
      Send: ({ payload }) =>
        Effect.gen(function*() {
          if (!(yield* rateLimit.take(payload.fromPlayerId))) {
            Metrics.chatRejectedTotal.rate_limited.inc()
            return yield* new GameError({
              code: ErrorCode.ChatRateLimited,
              message: `chat is limited to ${config.chat.messagesPerSecond}/s (burst ${config.chat.burst})`
            })
          }
          const verdict = moderate(payload.text)
          if (!verdict.ok) {
            Metrics.chatRejectedTotal.moderation.inc()
            return yield* new GameError({ code: ErrorCode.ChatRejected, message: verdict.reason })
          }
          if (payload.to === payload.fromPlayerId) {
            return yield* new GameError({ code: ErrorCode.UnknownPlayer, message: "cannot send a private message to yourself" })
          }
          const sentAt = Date.now()
          const frame: ChatMessageFrame = payload.to === null
            ? [ServerOp.Chat, channel, payload.fromPlayerId, payload.fromName, payload.text, sentAt]
            : [ServerOp.Chat, channel, payload.fromPlayerId, payload.fromName, payload.text, sentAt, payload.to]
          const bytes = encode(frame)
          if (channel === ChatChannel.Private && payload.to !== null) {
            // Only a delivered whisper is stored and echoed.
            if (!delivery.sendToPlayer(payload.to, bytes)) {
              return yield* new GameError({ code: ErrorCode.UnknownPlayer, message: "that player is not online" })
            }
            delivery.sendToPlayer(payload.fromPlayerId, bytes)
          } else {
            delivery.publish(chatTopic(key), bytes)
          }
          yield* repository.append({
            channelKey: key,
            fromPlayerId: payload.fromPlayerId,
            fromName: payload.fromName,
            toPlayerId: payload.to,
            text: payload.text,
            sentAt
          }).pipe(
            Effect.catchAll((error) => Effect.logWarning("chat message delivered but not stored", error))
          )
          Metrics.chatMessagesTotal.inc()
        }),
      History: ({ payload }) =>
        repository.history(key, Math.min(payload.limit, config.chat.historySize)).pipe(
          Effect.map((messages) =>
            messages.map((m) => [m.fromPlayerId, m.fromName, m.text, m.sentAt] as const)
          ),
          Effect.catchAll((error) => Effect.as(Effect.logWarning("chat history failed", error), []))
        )
    })
  }),
  { maxIdleTime: Duration.minutes(5) }
)
