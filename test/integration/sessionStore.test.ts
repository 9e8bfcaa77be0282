import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Logger, LogLevel } from "effect"
import { Redis } from "ioredis"
import { afterAll, beforeAll } from "vitest"
import { leaseExpiryApplies, relocationApplies } from "../../src/session/SessionLive.js"
import * as SessionStore from "../../src/session/SessionStore.js"
import * as RedisConnection from "../../src/storage/redis/RedisConnection.js"

/** The session's small state outside the entity: in memory, and in a real Redis. */

const MAIN_URL = "redis://127.0.0.1:6379"
const prefix = `tessera-test:${process.pid}-${Math.random().toString(36).slice(2, 10)}:`

let admin: Redis
beforeAll(async () => {
  admin = new Redis(MAIN_URL, { lazyConnect: true, maxRetriesPerRequest: 1 })
  await admin.connect()
})
afterAll(async () => {
  const keys = await admin.keys(`${prefix}*`)
  if (keys.length > 0) await admin.del(...keys)
  await admin.quit()
})

const lobby1 = { experienceId: "lobby", worldId: "lobby.1", regionId: "lobby.1" }
const saved: SessionStore.StoredSession = { resumeToken: "tok-1", location: lobby1, entityId: 7 }

const quiet = Logger.minimumLogLevel(LogLevel.None)

const redisStore = (options: { url?: string; ttlMs?: number } = {}) =>
  SessionStore.layerRedis({ ttlMs: options.ttlMs ?? 60_000, readTimeoutMs: 300 }).pipe(
    Layer.provide(
      RedisConnection.layer({ url: options.url ?? MAIN_URL, prefix, bootWaitMs: 500, connectTimeoutMs: 300 })
    )
  )

/** Redis replies arrive later than `save` returns; a read on the same connection comes after them. */
const roundTrip = (layer: Layer.Layer<SessionStore.SessionStore>) =>
  Effect.gen(function*() {
    const store = yield* SessionStore.SessionStore
    expect(yield* store.load("p-none")).toBeUndefined()
    yield* store.save("p1", saved)
    expect(yield* store.load("p1")).toEqual(saved)
    const moved = { resumeToken: "tok-2", location: { ...lobby1, worldId: "lobby.2", regionId: "lobby.2" }, entityId: null }
    yield* store.save("p1", moved)
    expect(yield* store.load("p1")).toEqual(moved)
    yield* store.save("p1", undefined)
    expect(yield* store.load("p1")).toBeUndefined()
  }).pipe(Effect.provide(layer), Effect.scoped)

describe("SessionStore", () => {
  it.effect("layerMemory: save, overwrite, forget", () => roundTrip(SessionStore.layerMemory))

  it.effect("layerRedis: save, overwrite, forget", () => roundTrip(redisStore()))

  it.effect("layerRedis: one compact string per player under the prefix, with the TTL", () =>
    Effect.gen(function*() {
      const store = yield* SessionStore.SessionStore
      yield* store.save("p-ttl", saved)
      expect(yield* store.load("p-ttl")).toEqual(saved) // the write has landed
      const key = SessionStore.sessionKey(prefix, "p-ttl")
      const ttl = yield* Effect.promise(() => admin.pttl(key))
      expect(ttl).toBeGreaterThan(50_000)
      expect(ttl).toBeLessThanOrEqual(60_000)
      const bytes = yield* Effect.promise(() => admin.getBuffer(key))
      expect(bytes!.length).toBeLessThan(64)
      expect(SessionStore.decodeStoredSession(bytes!)).toEqual(saved)
    }).pipe(Effect.provide(redisStore()), Effect.scoped))

  it.effect("layerRedis: a malformed record reads as nothing saved", () =>
    Effect.gen(function*() {
      const store = yield* SessionStore.SessionStore
      yield* Effect.promise(() => admin.set(SessionStore.sessionKey(prefix, "p-bad"), "not msgpack at all"))
      expect(yield* store.load("p-bad")).toBeUndefined()
    }).pipe(Effect.provide(redisStore()), Effect.scoped))

  it.effect("layerRedis: with Redis unreachable, reads answer nothing and writes neither fail nor wait", () =>
    Effect.gen(function*() {
      const store = yield* SessionStore.SessionStore
      const started = Date.now()
      yield* store.save("p1", saved)
      expect(Date.now() - started).toBeLessThan(50)
      expect(yield* store.load("p1")).toBeUndefined()
    }).pipe(Effect.provide(redisStore({ url: "redis://127.0.0.1:1" })), Effect.scoped, Effect.provide(quiet)))

  it("the default TTL covers a day of play and is never shorter than idle time plus resume window", () => {
    expect(SessionStore.defaultTtlMs(120, 30)).toBe(24 * 3600_000)
    expect(SessionStore.defaultTtlMs(86_400, 30)).toBeGreaterThan((86_400 + 30) * 1000)
  })
})

describe("leaseExpiryApplies", () => {
  const expired = { worldId: "lobby.1", regionId: "lobby.1", entityId: 7 }
  it.each([
    ["the session points at that region and entity", { location: lobby1, entityId: 7 }, true],
    ["the session points at that region, entity unknown (the gateway's copy)", { location: lobby1, entityId: null }, true],
    ["the session has no place (it lost its state)", { location: null, entityId: null }, true],
    ["the player moved to another region", { location: { ...lobby1, worldId: "lobby.2", regionId: "lobby.2" }, entityId: 7 }, false],
    ["the player resumed or rejoined there with a new entity", { location: lobby1, entityId: 9 }, false]
  ])("%s -> %s", (_what, current, applies) => {
    expect(leaseExpiryApplies(current, expired)).toBe(applies)
  })

  // Open worlds: entity ids are world-wide, and the entity may have been handed to another region.
  const world = { experienceId: "frontier", worldId: "frontier.world", regionId: "frontier.world/0/0/0/0" }
  const expiredThere = { worldId: "frontier.world", regionId: "frontier.world/0/1/0/0", entityId: 41 }
  it.each([
    ["the session has not heard of the relocation yet", { location: world, entityId: 41 }, true],
    ["the session followed the relocation", { location: { ...world, regionId: expiredThere.regionId }, entityId: 41 }, true],
    ["the player rejoined the world with another entity", { location: world, entityId: 42 }, false],
    ["the session does not know its entity, and points at another region", { location: world, entityId: null }, false]
  ])("open world: %s -> %s", (_what, current, applies) => {
    expect(leaseExpiryApplies(current, expiredThere)).toBe(applies)
  })
})

describe("relocationApplies", () => {
  const world = { experienceId: "frontier", worldId: "frontier.world", regionId: "frontier.world/0/0/0/0" }
  const elsewhere = { ...world, regionId: "frontier.world/0/1/0/1" }
  const moved = { worldId: "frontier.world", fromRegion: "frontier.world/0/0/0/0", entityId: 41, epoch: 3 }
  it.each([
    ["the session knows the entity", { location: world, entityId: 41, epoch: 0 }, true],
    ["entity unknown, the session points at the region it left", { location: world, entityId: null, epoch: 0 }, true],
    ["entity unknown, the session points elsewhere", { location: elsewhere, entityId: null, epoch: 0 }, false],
    ["another entity of the player (it rejoined)", { location: world, entityId: 42, epoch: 0 }, false],
    ["another world", { location: { ...world, worldId: "frontier.2", regionId: "frontier.2" }, entityId: 41, epoch: 0 }, false],
    ["no place", { location: null, entityId: null, epoch: 0 }, false],
    // Two handoffs in a row report from two regions: the later one may arrive first.
    ["a newer relocation already applied (this one is late)", { location: elsewhere, entityId: 41, epoch: 4 }, false],
    ["a newer epoch from another region (an earlier one is still on its way)", { location: elsewhere, entityId: 41, epoch: 2 }, true],
    ["from where the session points, whatever the epoch (epochs restart after a rejoin)", { location: world, entityId: 41, epoch: 9 }, true]
  ])("%s -> %s", (_what, current, applies) => {
    expect(relocationApplies(current, moved)).toBe(applies)
  })
})
