import { Context, Duration, Effect, Layer } from "effect"
import { LuaScript, RedisConnection } from "../storage/redis/RedisConnection.js"
import { KeyedRateLimiter, type KeyedRateLimiterOptions } from "./KeyedRateLimiter.js"

/**
 * A per-key token bucket (per IP, per player's chat, ...). In memory it is
 * this process's; in Redis every gateway shares the same buckets, so a client
 * cannot multiply its rate by spreading over gateways.
 */
export class SharedRateLimiter extends Context.Tag("tessera/SharedRateLimiter")<SharedRateLimiter, {
  /** Takes one token from `key`'s bucket; false when limited. `nowMs` defaults to the clock (Redis's, for layerRedis). */
  readonly take: (key: string, nowMs?: number) => Effect.Effect<boolean>
}>() {}

export const makeMemory = (options: KeyedRateLimiterOptions): SharedRateLimiter["Type"] => {
  const limiter = new KeyedRateLimiter(options)
  return SharedRateLimiter.of({
    take: (key, nowMs) => Effect.sync(() => limiter.take(key, nowMs ?? Date.now()))
  })
}

export interface RedisRateLimiterOptions {
  /** Namespace of this limiter's keys (`<prefix>rl:<name>:<key>`), e.g. "ip" or "chat". */
  readonly name: string
  readonly ratePerSecond: number
  readonly burst: number
  /** Longest a bucket key lives (only matters when ratePerSecond is 0). Default one day. */
  readonly maxTtlMs?: number
  /**
   * While Redis is unavailable (down, or no reply within `timeoutMs`), limit
   * with this process's own buckets of these options (as without Redis: each
   * process then allows its own budget) and log at debug level. Without it,
   * every take is allowed and a warning is logged now and then.
   */
  readonly fallback?: KeyedRateLimiterOptions
  /** A take with no reply from Redis after this many ms counts as Redis unavailable. Default: none (the connection's command timeout). */
  readonly timeoutMs?: number
}

/**
 * KEYS[1] bucket; ARGV: ratePerSecond, burst, nowMs (< 0: Redis's clock), n, maxTtlMs -> 1 allowed / 0 limited.
 * A missing key is a full bucket, so a bucket lives only until it would be
 * full again (TTL = time to refill) and a full one is deleted. Like
 * TokenBucket, a clock that goes backwards refills nothing and re-anchors.
 */
const TAKE = new LuaScript(`
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local n = tonumber(ARGV[4])
local maxTtl = tonumber(ARGV[5])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local state = redis.call('HMGET', KEYS[1], 't', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = burst
elseif now > at then
  tokens = math.min(burst, tokens + (now - at) * rate / 1000)
end
local ok = 0
if tokens >= n then
  tokens = tokens - n
  ok = 1
end
if tokens >= burst then
  redis.call('DEL', KEYS[1])
  return ok
end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'at', tostring(now))
local ttl = maxTtl
if rate > 0 then ttl = math.min(maxTtl, math.ceil((burst - tokens) * 1000 / rate) + 1) end
redis.call('PEXPIRE', KEYS[1], ttl)
return ok`)

const LOG_EVERY_MS = 10_000

export const makeRedis = (options: RedisRateLimiterOptions): Effect.Effect<SharedRateLimiter["Type"], never, RedisConnection> =>
  Effect.gen(function*() {
    const redis = yield* RedisConnection
    if (!(options.ratePerSecond >= 0) || !Number.isFinite(options.ratePerSecond)) {
      return yield* Effect.dieMessage(`rate limiter ${options.name}: ratePerSecond must be a finite number >= 0`)
    }
    if (!(options.burst >= 0) || !Number.isFinite(options.burst)) {
      return yield* Effect.dieMessage(`rate limiter ${options.name}: burst must be a finite number >= 0`)
    }
    const keyPrefix = `${redis.prefix}rl:${options.name}:`
    const maxTtlMs = options.maxTtlMs ?? 86_400_000
    const fallback = options.fallback === undefined ? undefined : new KeyedRateLimiter(options.fallback)
    let lastLogAt = -Infinity
    let failures = 0

    /**
     * Redis unavailable: a limiter outage must not lock every player out, so
     * take from this process's own bucket (or allow), and say so now and then.
     */
    const unavailable = (reason: string, key: string, nowMs: number | undefined) =>
      Effect.suspend(() => {
        failures++
        const now = Date.now()
        const allowed = fallback === undefined ? true : fallback.take(key, nowMs ?? now)
        if (now - lastLogAt < LOG_EVERY_MS) return Effect.succeed(allowed)
        lastLogAt = now
        const count = failures
        failures = 0
        const log = fallback === undefined
          ? Effect.logWarning(`rate limiter ${options.name} failing open (${count} takes allowed unchecked): ${reason}`)
          : Effect.logDebug(`rate limiter ${options.name} using this process's buckets (${count} takes): ${reason}`)
        return Effect.as(log, allowed)
      })

    const timeout = options.timeoutMs === undefined ? undefined : Duration.millis(options.timeoutMs)

    return SharedRateLimiter.of({
      take: (key, nowMs) =>
        Effect.suspend(() => {
          if (redis.command.status !== "ready") {
            return unavailable(redis.lastError() ?? `redis ${redis.command.status}`, key, nowMs)
          }
          const reply = Effect.tryPromise(() =>
            TAKE.run(redis.command, [keyPrefix + key], [
              options.ratePerSecond,
              options.burst,
              nowMs === undefined ? -1 : Math.floor(nowMs),
              1,
              maxTtlMs
            ])
          )
          return (timeout === undefined ? reply : Effect.timeout(reply, timeout)).pipe(
            Effect.map((reply) => reply === 1),
            Effect.catchAll((e) =>
              unavailable(
                e._tag === "TimeoutException"
                  ? `no reply within ${options.timeoutMs} ms`
                  : e.error instanceof Error
                  ? e.error.message
                  : String(e.error),
                key,
                nowMs
              )
            )
          )
        })
    })
  })

/** One process: a KeyedRateLimiter. */
export const layerMemory = (options: KeyedRateLimiterOptions): Layer.Layer<SharedRateLimiter> =>
  Layer.sync(SharedRateLimiter, () => makeMemory(options))

/**
 * Several gateways: one atomic Lua token bucket per key in Redis. While Redis
 * is unavailable it fails open: to this process's buckets with `fallback`, else allowing.
 */
export const layerRedis = (options: RedisRateLimiterOptions): Layer.Layer<SharedRateLimiter, never, RedisConnection> =>
  Layer.effect(SharedRateLimiter, makeRedis(options))
