import { makeThrottledWarning } from "../observability/ThrottledWarning.js"
import { Cause, Context, Duration, Effect, Layer, Runtime } from "effect"
import { decode, encode } from "../protocol/Codec.js"
import type { Location } from "../protocol/Location.js"
import { RedisConnection } from "../storage/redis/RedisConnection.js"

/**
 * What a session must not lose when it passivates: enough to resume the player
 * through another gateway after its own gateway died without a word (the
 * Disconnect that would have handed this back never comes).
 */
export interface StoredSession {
  readonly resumeToken: string
  readonly location: Location
  /** The player's entity id in `location.regionId`, when the session knows it. */
  readonly entityId: number | null
}

/**
 * The small state of every session that is in a world, kept outside the
 * entity. Written when it changes (connect, join, leave, expiry), read when a
 * session entity activates; never on the input path.
 *
 * Neither call fails: a failed read answers "nothing saved" and a failed
 * write is logged (at most once per 10 s).
 */
export class SessionStore extends Context.Tag("tessera/session/SessionStore")<SessionStore, {
  /** The player's saved session; undefined when there is none or it cannot be read. */
  readonly load: (playerId: string) => Effect.Effect<StoredSession | undefined>
  /**
   * Saves the player's session, or forgets it (`undefined`: a session outside
   * any world has nothing to resume). Does not wait for storage: writes are
   * issued in call order and a failure is logged.
   */
  readonly save: (playerId: string, session: StoredSession | undefined) => Effect.Effect<void>
}>() {}

// ---- in memory (one node) ---------------------------------------------------------

/** One process: a map. The gateway and the session die together, so nothing more is needed. */
export const layerMemory: Layer.Layer<SessionStore> = Layer.sync(SessionStore, () => {
  const sessions = new Map<string, StoredSession>()
  return SessionStore.of({
    load: (playerId) => Effect.sync(() => sessions.get(playerId)),
    save: (playerId, session) =>
      Effect.sync(() => {
        if (session === undefined) sessions.delete(playerId)
        else sessions.set(playerId, session)
      })
  })
})

// ---- Redis (several nodes) ----------------------------------------------------------

/** `P ss:<playerId>`: a string holding msgpack `[1, resumeToken, experienceId, worldId, regionId, entityId | null]`. */
export const sessionKey = (prefix: string, playerId: string): string => `${prefix}ss:${playerId}`

const FORMAT = 1

export const encodeStoredSession = (s: StoredSession): Buffer =>
  encode([FORMAT, s.resumeToken, s.location.experienceId, s.location.worldId, s.location.regionId, s.entityId])

/** Undefined for anything that is not a well-formed record of this format. */
export const decodeStoredSession = (bytes: Uint8Array): StoredSession | undefined => {
  let value: unknown
  try {
    value = decode(bytes)
  } catch {
    return undefined
  }
  if (!Array.isArray(value) || value.length !== 6 || value[0] !== FORMAT) return undefined
  const [, resumeToken, experienceId, worldId, regionId, entityId] = value as Array<unknown>
  if (
    typeof resumeToken !== "string" || typeof experienceId !== "string" || typeof worldId !== "string" ||
    typeof regionId !== "string" || !(entityId === null || typeof entityId === "number")
  ) return undefined
  return { resumeToken, location: { experienceId, worldId, regionId }, entityId }
}

/**
 * How long a saved session outlives its last write. A player plays on for
 * hours without a single session message (inputs bypass it), and its gateway
 * may die at any moment of that, so this is a day — and never less than a
 * few times the idle time plus the resume window.
 */
export const defaultTtlMs = (entityMaxIdleSeconds: number, resumeWindowSeconds: number): number =>
  Math.max(24 * 3600_000, 4 * (entityMaxIdleSeconds + resumeWindowSeconds) * 1000)

export interface SessionStoreRedisOptions {
  /** Expiry of a saved session after its last write, in ms. */
  readonly ttlMs: number
  /** A read without an answer after this many ms counts as "nothing saved". Default 1000. */
  readonly readTimeoutMs?: number
}

const LOG_EVERY_MS = 10_000

const makeRedis = (options: SessionStoreRedisOptions) =>
  Effect.gen(function*() {
    const redis = yield* RedisConnection
    const runFork = Runtime.runFork(yield* Effect.runtime<never>())
    const readTimeout = Duration.millis(options.readTimeoutMs ?? 1000)

    const warn = makeThrottledWarning("session store", LOG_EVERY_MS)
    const failed = (what: string, playerId: string, e: unknown) =>
      warn(what, e).pipe(Effect.annotateLogs({ playerId }))

    return SessionStore.of({
      load: (playerId) =>
        Effect.tryPromise(() => redis.command.getBuffer(sessionKey(redis.prefix, playerId))).pipe(
          Effect.timeoutFail({ duration: readTimeout, onTimeout: () => new Error("read timed out") }),
          Effect.map((bytes) => (bytes === null ? undefined : decodeStoredSession(bytes))),
          Effect.catchAll((e) => Effect.as(failed("read", playerId, Cause.isUnknownException(e) ? e.error : e), undefined))
        ),
      save: (playerId, session) =>
        Effect.sync(() => {
          const key = sessionKey(redis.prefix, playerId)
          // Issued now (one connection keeps them in order), answered whenever: a join never waits for this.
          const report = (e: unknown) => {
            runFork(failed("write", playerId, e))
          }
          try {
            const write = session === undefined
              ? redis.command.del(key)
              : redis.command.set(key, encodeStoredSession(session), "PX", options.ttlMs)
            write.catch(report)
          } catch (e) {
            report(e)
          }
        })
    })
  })

/** Several nodes: one Redis string per player in a world, under the connection's prefix, expiring after `ttlMs`. */
export const layerRedis = (options: SessionStoreRedisOptions): Layer.Layer<SessionStore, never, RedisConnection> =>
  Layer.effect(SessionStore, makeRedis(options))
