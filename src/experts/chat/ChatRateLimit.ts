import { Context, Effect, Layer } from "effect"
import { AppConfig } from "../../config/AppConfig.js"
import { KeyedRateLimiter } from "../../gateway/KeyedRateLimiter.js"

/**
 * The per-player chat rate limit, shared by every chat channel of this
 * process (a player cannot multiply its rate by spreading over channels).
 */
export class ChatRateLimit extends Context.Tag("tessera/ChatRateLimit")<ChatRateLimit, {
  readonly take: (playerId: string) => boolean
}>() {
  static readonly layerMemory: Layer.Layer<ChatRateLimit, never, AppConfig> = Layer.effect(
    ChatRateLimit,
    Effect.map(AppConfig, (config) => {
      const limiter = new KeyedRateLimiter({ ratePerSecond: config.chat.messagesPerSecond, burst: config.chat.burst })
      return { take: (playerId) => limiter.take(playerId, Date.now()) }
    })
  )
}
