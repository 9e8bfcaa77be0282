import { makeThrottledWarning } from "../../observability/ThrottledWarning.js"
import { Context, Duration, Effect, Layer, Schedule } from "effect"
import { decode } from "../../protocol/Codec.js"
import { LuaScript, RedisConnection } from "./RedisConnection.js"

/**
 * Which gateway each online player is connected to, and how many players are
 * online per experience, across every node.
 *
 * None of these fail: with Redis down, writes are kept locally and replayed
 * when it comes back, reads answer "unknown" (undefined / 0) and the error is
 * logged (at most once per 10 s).
 */
export class Presence extends Context.Tag("tessera/storage/Presence")<Presence, {
  /** The player is connected to `gatewayId` (in `experienceId`, or in none yet). Replaces any previous entry. */
  readonly online: (playerId: string, gatewayId: string, experienceId: string | null) => Effect.Effect<void>
  /** The player left `gatewayId`; a no-op if it has since come online on another gateway. */
  readonly offline: (playerId: string, gatewayId: string) => Effect.Effect<void>
  /** The gateway the player is connected to; undefined when offline or when that gateway has died. */
  readonly gatewayOf: (playerId: string) => Effect.Effect<string | undefined>
  /** Players online in an experience, on live gateways. */
  readonly onlineCount: (experienceId: string) => Effect.Effect<number>
  /** Players online, on live gateways. */
  readonly total: () => Effect.Effect<number>
}>() {}

// ---- in memory (one node) ---------------------------------------------------------

const makeMemory = () => {
  const players = new Map<string, { gatewayId: string; experienceId: string | null }>()
  const counts = new Map<string, number>()
  const uncount = (experienceId: string | null) => {
    if (experienceId === null) return
    const n = (counts.get(experienceId) ?? 0) - 1
    if (n > 0) counts.set(experienceId, n)
    else counts.delete(experienceId)
  }
  return Presence.of({
    online: (playerId, gatewayId, experienceId) =>
      Effect.sync(() => {
        const previous = players.get(playerId)
        if (previous !== undefined) uncount(previous.experienceId)
        players.set(playerId, { gatewayId, experienceId })
        if (experienceId !== null) counts.set(experienceId, (counts.get(experienceId) ?? 0) + 1)
      }),
    offline: (playerId, gatewayId) =>
      Effect.sync(() => {
        const previous = players.get(playerId)
        if (previous === undefined || previous.gatewayId !== gatewayId) return
        players.delete(playerId)
        uncount(previous.experienceId)
      }),
    gatewayOf: (playerId) => Effect.sync(() => players.get(playerId)?.gatewayId),
    onlineCount: (experienceId) => Effect.sync(() => counts.get(experienceId) ?? 0),
    total: () => Effect.sync(() => players.size)
  })
}

/** One process: plain maps. */
export const layerMemory: Layer.Layer<Presence> = Layer.sync(Presence, makeMemory)

// ---- Redis (several nodes) ----------------------------------------------------------

/**
 * Keys and channels, all under the connection prefix `P`:
 * - `P gw:<gatewayId>`      a gateway's heartbeat (string, TTL)
 * - `P gateways`            set of gateway ids that have (had) players
 * - `P pr:gw`               hash playerId -> gatewayId
 * - `P pr:ex`               hash playerId -> experienceId (absent: none)
 * - `P pr:gp:<gatewayId>`   set of the gateway's players
 * - `P pr:gx:<gatewayId>`   hash experienceId -> count of the gateway's players in it
 * - `P pr:ev`               channel of presence events (msgpack, see `PresenceEvent`)
 *
 * Counts and lookups only consider gateways whose heartbeat key exists, so a
 * dead gateway's players vanish from answers as soon as its key expires; a
 * sweep run by every node then removes its entries and announces it. Scripts
 * build keys from the prefix, so this needs a standalone Redis (not Cluster).
 */
export const presenceKeys = (prefix: string) => ({
  gateway: (gatewayId: string) => `${prefix}gw:${gatewayId}`,
  gateways: `${prefix}gateways`,
  players: `${prefix}pr:gw`,
  experiences: `${prefix}pr:ex`,
  gatewayPlayers: (gatewayId: string) => `${prefix}pr:gp:${gatewayId}`,
  gatewayCounts: (gatewayId: string) => `${prefix}pr:gx:${gatewayId}`,
  events: `${prefix}pr:ev`
})

/** What `P pr:ev` carries, in order with the hash it describes. */
export type PresenceEvent =
  | { readonly _tag: "Online"; readonly playerId: string; readonly gatewayId: string }
  | { readonly _tag: "Offline"; readonly playerId: string }
  | { readonly _tag: "GatewayGone"; readonly gatewayId: string }

export const PresenceEventKind = { Online: 1, Offline: 2, GatewayGone: 3 } as const

/** Decodes one event (msgpack `[1, playerId, gatewayId]`, `[2, playerId]` or `[3, gatewayId]`); undefined if malformed. */
export const decodePresenceEvent = (bytes: Uint8Array): PresenceEvent | undefined => {
  let value: unknown
  try {
    value = decode(bytes)
  } catch {
    return undefined
  }
  if (!Array.isArray(value)) return undefined
  const [kind, a, b] = value as Array<unknown>
  if (typeof a !== "string") return undefined
  switch (kind) {
    case PresenceEventKind.Online:
      return typeof b === "string" ? { _tag: "Online", playerId: a, gatewayId: b } : undefined
    case PresenceEventKind.Offline:
      return { _tag: "Offline", playerId: a }
    case PresenceEventKind.GatewayGone:
      return { _tag: "GatewayGone", gatewayId: a }
    default:
      return undefined
  }
}

/**
 * A synchronous local copy of playerId -> gatewayId, kept by the presence
 * events. To (re)load it without losing events: subscribe the event channel,
 * `beginLoad()`, take a snapshot, `finishLoad(snapshot)`; events that arrive
 * meanwhile are buffered and replayed on top of the snapshot (each event sets
 * or removes one player unconditionally, so replaying one the snapshot
 * already reflects is harmless).
 */
export class PresenceMirror {
  private players = new Map<string, string>()
  private buffered: Array<PresenceEvent> | undefined

  gatewayOf(playerId: string): string | undefined {
    return this.players.get(playerId)
  }

  get size(): number {
    return this.players.size
  }

  get loading(): boolean {
    return this.buffered !== undefined
  }

  apply(event: PresenceEvent): void {
    if (this.buffered !== undefined) this.buffered.push(event)
    else this.applyNow(event)
  }

  beginLoad(): void {
    this.buffered ??= []
  }

  /** `snapshot` is a flat `[playerId, gatewayId, ...]` list. */
  finishLoad(snapshot: ReadonlyArray<string>): void {
    const players = new Map<string, string>()
    for (let i = 0; i + 1 < snapshot.length; i += 2) players.set(snapshot[i]!, snapshot[i + 1]!)
    this.players = players
    this.replay()
  }

  /** The snapshot failed: keep the current copy, apply what was buffered. */
  abortLoad(): void {
    this.replay()
  }

  private replay(): void {
    const buffered = this.buffered ?? []
    this.buffered = undefined
    for (const event of buffered) this.applyNow(event)
  }

  private applyNow(event: PresenceEvent): void {
    switch (event._tag) {
      case "Online":
        this.players.set(event.playerId, event.gatewayId)
        return
      case "Offline":
        this.players.delete(event.playerId)
        return
      case "GatewayGone":
        for (const [playerId, gatewayId] of this.players) if (gatewayId === event.gatewayId) this.players.delete(playerId)
    }
  }
}

// Scripts: ARGV[1] is always the prefix.
const LIB = `
local P = ARGV[1]
local function forget(p, gw)
  local ex = redis.call('HGET', P..'pr:ex', p)
  redis.call('SREM', P..'pr:gp:'..gw, p)
  if ex then
    if redis.call('HINCRBY', P..'pr:gx:'..gw, ex, -1) <= 0 then redis.call('HDEL', P..'pr:gx:'..gw, ex) end
  end
end
local function online(p, gw, ex, ttl)
  local old = redis.call('HGET', P..'pr:gw', p)
  if old then forget(p, old) end
  redis.call('HSET', P..'pr:gw', p, gw)
  redis.call('SADD', P..'pr:gp:'..gw, p)
  if ex ~= '' then
    redis.call('HSET', P..'pr:ex', p, ex)
    redis.call('HINCRBY', P..'pr:gx:'..gw, ex, 1)
  else
    redis.call('HDEL', P..'pr:ex', p)
  end
  redis.call('SADD', P..'gateways', gw)
  if redis.call('EXISTS', P..'gw:'..gw) == 0 then redis.call('SET', P..'gw:'..gw, '1', 'PX', ttl) end
  if old ~= gw then redis.call('PUBLISH', P..'pr:ev', cmsgpack.pack({1, p, gw})) end
end
local function offline(p, gw)
  if redis.call('HGET', P..'pr:gw', p) ~= gw then return 0 end
  forget(p, gw)
  redis.call('HDEL', P..'pr:gw', p)
  redis.call('HDEL', P..'pr:ex', p)
  redis.call('PUBLISH', P..'pr:ev', cmsgpack.pack({2, p}))
  return 1
end
local function drop(gw)
  for _, p in ipairs(redis.call('SMEMBERS', P..'pr:gp:'..gw)) do
    if redis.call('HGET', P..'pr:gw', p) == gw then
      redis.call('HDEL', P..'pr:gw', p)
      redis.call('HDEL', P..'pr:ex', p)
    end
  end
  redis.call('DEL', P..'pr:gp:'..gw, P..'pr:gx:'..gw, P..'gw:'..gw)
  redis.call('SREM', P..'gateways', gw)
  redis.call('PUBLISH', P..'pr:ev', cmsgpack.pack({3, gw}))
end
`

/** ARGV: P, playerId, gatewayId, experienceId ('' = none), ttlMs */
const ONLINE = new LuaScript(`${LIB}
online(ARGV[2], ARGV[3], ARGV[4], ARGV[5])
return 1`)

/** ARGV: P, playerId, gatewayId */
const OFFLINE = new LuaScript(`${LIB}
return offline(ARGV[2], ARGV[3])`)

/** ARGV: P, gatewayId, ttlMs -> 1 if the heartbeat key still existed, 0 if it had expired or was dropped */
const HEARTBEAT = new LuaScript(`${LIB}
local k = P..'gw:'..ARGV[2]
local had = redis.call('EXISTS', k)
redis.call('SET', k, '1', 'PX', ARGV[3])
redis.call('SADD', P..'gateways', ARGV[2])
return had`)

/** ARGV: P, gatewayId, ttlMs, then playerId, experienceId pairs: makes the gateway's entries exactly these. */
const RECONCILE = new LuaScript(`${LIB}
local gw, ttl = ARGV[2], ARGV[3]
local want = {}
for i = 4, #ARGV, 2 do want[ARGV[i]] = true end
for _, p in ipairs(redis.call('SMEMBERS', P..'pr:gp:'..gw)) do
  if not want[p] then offline(p, gw) end
end
redis.call('SET', P..'gw:'..gw, '1', 'PX', ttl)
for i = 4, #ARGV, 2 do online(ARGV[i], gw, ARGV[i + 1], ttl) end
return 1`)

/** ARGV: P -> number of dead gateways dropped */
const SWEEP = new LuaScript(`${LIB}
local n = 0
for _, gw in ipairs(redis.call('SMEMBERS', P..'gateways')) do
  if redis.call('EXISTS', P..'gw:'..gw) == 0 then
    drop(gw)
    n = n + 1
  end
end
return n`)

/** ARGV: P, gatewayId: the gateway shuts down cleanly. */
const GATEWAY_DOWN = new LuaScript(`${LIB}
drop(ARGV[2])
return 1`)

/** ARGV: P, playerId -> gatewayId or nil */
const GATEWAY_OF = new LuaScript(`${LIB}
local gw = redis.call('HGET', P..'pr:gw', ARGV[2])
if not gw then return false end
if redis.call('EXISTS', P..'gw:'..gw) == 0 then return false end
return gw`)

/** ARGV: P, experienceId ('' = every player) -> count on live gateways */
const COUNT = new LuaScript(`${LIB}
local n = 0
for _, gw in ipairs(redis.call('SMEMBERS', P..'gateways')) do
  if redis.call('EXISTS', P..'gw:'..gw) == 1 then
    if ARGV[2] == '' then
      n = n + redis.call('SCARD', P..'pr:gp:'..gw)
    else
      n = n + (tonumber(redis.call('HGET', P..'pr:gx:'..gw, ARGV[2])) or 0)
    end
  end
end
return n`)

/** ARGV: P -> flat [playerId, gatewayId, ...] of players on live gateways */
const SNAPSHOT = new LuaScript(`${LIB}
local out, alive = {}, {}
local all = redis.call('HGETALL', P..'pr:gw')
for i = 1, #all, 2 do
  local gw = all[i + 1]
  local a = alive[gw]
  if a == nil then
    a = redis.call('EXISTS', P..'gw:'..gw) == 1
    alive[gw] = a
  end
  if a then
    out[#out + 1] = all[i]
    out[#out + 1] = gw
  end
end
return out`)

/** Reads the live presence map (for `PresenceMirror.finishLoad`). */
export const presenceSnapshot = (redis: RedisConnection["Type"]): Promise<Array<string>> =>
  SNAPSHOT.run(redis.command, [], [redis.prefix]).then((r) => (Array.isArray(r) ? r.map(String) : []))

export interface PresenceRedisOptions {
  /** A gateway whose heartbeat is older than this is dead. Default 15 000 ms. */
  readonly ttlMs?: number
  /** Heartbeat (and dead-gateway sweep) period. Default 5 000 ms. */
  readonly heartbeatMs?: number
}

const LOG_EVERY_MS = 10_000

const makeRedis = (options: PresenceRedisOptions) =>
  Effect.gen(function*() {
    const redis = yield* RedisConnection
    const P = redis.prefix
    const ttlMs = options.ttlMs ?? 15_000
    const heartbeatMs = options.heartbeatMs ?? 5_000
    /** What this process announced, per player: replayed when Redis lost it or a write failed. */
    const local = new Map<string, { readonly gatewayId: string; readonly experienceId: string }>()
    /** Gateways this process heartbeats; `dirty` when a write failed and must be reconciled. */
    const gateways = new Map<string, { dirty: boolean }>()

    const failed = makeThrottledWarning("presence", LOG_EVERY_MS)

    const attempt = <A>(what: string, run: () => Promise<A>, onError: () => void) =>
      Effect.tryPromise(run).pipe(
        Effect.asVoid,
        Effect.catchAll((e) => Effect.zipRight(Effect.sync(onError), failed(what, e.error)))
      )

    const query = <A>(what: string, run: () => Promise<unknown>, parse: (reply: unknown) => A, fallback: A) =>
      Effect.tryPromise(run).pipe(
        Effect.map(parse),
        Effect.catchAll((e) => Effect.as(failed(what, e.error), fallback))
      )

    const markDirty = (gatewayId: string) => () => {
      const g = gateways.get(gatewayId)
      if (g !== undefined) g.dirty = true
    }

    const reconcile = (gatewayId: string) => {
      const args: Array<string | number> = [P, gatewayId, ttlMs]
      for (const [playerId, entry] of local) {
        if (entry.gatewayId === gatewayId) args.push(playerId, entry.experienceId)
      }
      return RECONCILE.run(redis.command, [], args)
    }

    const beat = Effect.gen(function*() {
      for (const [gatewayId, g] of gateways) {
        yield* attempt("heartbeat", async () => {
          const had = await HEARTBEAT.run(redis.command, [], [P, gatewayId, ttlMs])
          if (had === 0 || g.dirty) {
            g.dirty = false
            await reconcile(gatewayId).catch((e: unknown) => {
              g.dirty = true
              throw e
            })
          }
        }, markDirty(gatewayId))
      }
      yield* attempt("sweep", () => SWEEP.run(redis.command, [], [P]), () => {})
    })
    yield* Effect.forkScoped(Effect.repeat(beat, Schedule.spaced(Duration.millis(heartbeatMs))))

    // A clean shutdown removes this process's gateways at once instead of waiting for the TTL.
    yield* Effect.addFinalizer(() =>
      Effect.forEach(
        [...gateways.keys()],
        (gatewayId) =>
          attempt("shutdown", () => GATEWAY_DOWN.run(redis.command, [], [P, gatewayId]), () => {}).pipe(
            Effect.timeout(Duration.seconds(1)),
            Effect.ignore
          ),
        { discard: true }
      )
    )

    return Presence.of({
      online: (playerId, gatewayId, experienceId) =>
        Effect.suspend(() => {
          const ex = experienceId ?? ""
          local.set(playerId, { gatewayId, experienceId: ex })
          if (!gateways.has(gatewayId)) gateways.set(gatewayId, { dirty: false })
          return attempt(
            "online",
            () => ONLINE.run(redis.command, [], [P, playerId, gatewayId, ex, ttlMs]),
            markDirty(gatewayId)
          )
        }),
      offline: (playerId, gatewayId) =>
        Effect.suspend(() => {
          if (local.get(playerId)?.gatewayId === gatewayId) local.delete(playerId)
          return attempt("offline", () => OFFLINE.run(redis.command, [], [P, playerId, gatewayId]), markDirty(gatewayId))
        }),
      gatewayOf: (playerId) =>
        query(
          "gatewayOf",
          () => GATEWAY_OF.run(redis.command, [], [P, playerId]),
          (r) => (typeof r === "string" ? r : undefined),
          undefined as string | undefined
        ),
      onlineCount: (experienceId) =>
        query("onlineCount", () => COUNT.run(redis.command, [], [P, experienceId]), Number, 0),
      total: () => query("total", () => COUNT.run(redis.command, [], [P, ""]), Number, 0)
    })
  })

/**
 * Several nodes: presence in Redis. Every gateway id passed to `online` is
 * heartbeated by this layer (key TTL `ttlMs`, refreshed every `heartbeatMs`)
 * and dropped at once when the layer is released; every instance also sweeps
 * the entries of gateways whose heartbeat expired.
 */
export const layerRedis = (options: PresenceRedisOptions = {}): Layer.Layer<Presence, never, RedisConnection> =>
  Layer.scoped(Presence, makeRedis(options))
