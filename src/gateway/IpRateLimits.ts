import { Context, Effect, Exit, Layer } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import type { TesseraConfig } from "../config/TesseraConfig.js"
import type { RedisConnection } from "../storage/redis/RedisConnection.js"
import type { KeyedRateLimiterOptions } from "./KeyedRateLimiter.js"
import { makeMemory, makeRedis, type SharedRateLimiter } from "./RateLimiterRedis.js"

/** A Redis take without a reply after this long uses the gateway's own bucket (the client is waiting). */
const REDIS_TIMEOUT_MS = 500

/** `gateway.auth_per_minute_per_ip` a minute, bursting to the same. */
const perIp = (config: TesseraConfig): KeyedRateLimiterOptions => {
  const perMinute = config.gateway.authPerMinutePerIp
  return { ratePerSecond: perMinute / 60, burst: perMinute }
}

/**
 * The per-IP limits at a gateway's door: WebSocket upgrades and guest
 * sign-ins, each `gateway.auth_per_minute_per_ip` a minute (bursting to the
 * same), in separate buckets. In memory every gateway has its own; with Redis
 * every gateway shares them ("ip-ws", "ip-auth"), so a client spreading over
 * gateways gets the budget of one. While Redis is unavailable each gateway
 * falls back to its own buckets (never refusing everyone; /ready reports Redis).
 */
export class IpRateLimits extends Context.Tag("tessera/IpRateLimits")<IpRateLimits, {
  /** WebSocket upgrades per IP. */
  readonly upgrade: SharedRateLimiter["Type"]
  /** POST /v1/auth/guest per IP. */
  readonly auth: SharedRateLimiter["Type"]
}>() {
  /** One gateway: this process's buckets. */
  static readonly layerMemory: Layer.Layer<IpRateLimits, never, AppConfig> = Layer.effect(
    IpRateLimits,
    Effect.map(AppConfig, (config) =>
      IpRateLimits.of({ upgrade: makeMemory(perIp(config)), auth: makeMemory(perIp(config)) }))
  )

  /** Several gateways: shared Redis token buckets, falling back to this process's while Redis is unavailable. */
  static readonly layerRedis: Layer.Layer<IpRateLimits, never, AppConfig | RedisConnection> = Layer.effect(
    IpRateLimits,
    Effect.gen(function*() {
      const config = yield* AppConfig
      const redis = (name: string) =>
        makeRedis({ name, ...perIp(config), fallback: perIp(config), timeoutMs: REDIS_TIMEOUT_MS })
      return IpRateLimits.of({ upgrade: yield* redis("ip-ws"), auth: yield* redis("ip-auth") })
    })
  )
}

/**
 * One take as a promise, for uWS handlers that already await something (JWT
 * verification, a request body). A limiter that fails allows: it is a guard,
 * not a gate.
 */
export const takeAsPromise = (
  run: <A, E>(effect: Effect.Effect<A, E>, onExit: (exit: Exit.Exit<A, E>) => void) => void,
  limiter: SharedRateLimiter["Type"],
  key: string
): Promise<boolean> =>
  new Promise((resolve) => run(limiter.take(key), (exit) => resolve(Exit.isSuccess(exit) ? exit.value : true)))
