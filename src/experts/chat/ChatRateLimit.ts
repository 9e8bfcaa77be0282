import { Context, Effect, Layer } from "effect"
import { AppConfig } from "../../config/AppConfig.js"
import { makeMemory, makeRedis } from "../../gateway/RateLimiterRedis.js"
import type { RedisConnection } from "../../storage/redis/RedisConnection.js"

/**
 * The per-player chat rate limit, shared by every chat channel (a player
 * cannot multiply its rate by spreading over channels) and, with Redis, by
 * every node.
 */
export class ChatRateLimit extends Context.Tag("tessera/ChatRateLimit")<ChatRateLimit, {
  readonly take: (playerId: string) => Effect.Effect<boolean>
}>() {
  static readonly layerMemory: Layer.Layer<ChatRateLimit, never, AppConfig> = Layer.effect(
    ChatRateLimit,
    Effect.map(AppConfig, (config) => {
      const limiter = makeMemory({ ratePerSecond: config.chat.messagesPerSecond, burst: config.chat.burst })
      return { take: (playerId) => limiter.take(playerId) }
    })
  )

  static readonly layerRedis: Layer.Layer<ChatRateLimit, never, AppConfig | RedisConnection> = Layer.effect(
    ChatRateLimit,
    Effect.gen(function*() {
      const config = yield* AppConfig
      const limiter = yield* makeRedis({ name: "chat", ratePerSecond: config.chat.messagesPerSecond, burst: config.chat.burst })
      return { take: (playerId) => limiter.take(playerId) }
    })
  )
}
