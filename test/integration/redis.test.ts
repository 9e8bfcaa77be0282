import { describe, expect, it } from "@effect/vitest"
import { Context, Duration, Effect, Layer, Logger, LogLevel } from "effect"
import { Redis } from "ioredis"
import { type ChildProcess, spawn } from "node:child_process"
import * as Net from "node:net"
import { afterAll, beforeAll } from "vitest"
import { ClientDelivery } from "../../src/gateway/ClientDelivery.js"
import type { JoinedInfo } from "../../src/protocol/Location.js"
import {
  type ClusterGatewayPort,
  layerRedis as deliveryLayerRedis,
  TopicSubscriptions
} from "../../src/gateway/ClientDeliveryRedis.js"
import * as RateLimiter from "../../src/gateway/RateLimiterRedis.js"
import * as Presence from "../../src/storage/redis/Presence.js"
import * as RedisConnection from "../../src/storage/redis/RedisConnection.js"

const MAIN_URL = "redis://127.0.0.1:6379"
const prefix = `tessera-test:${process.pid}-${Math.random().toString(36).slice(2, 10)}:`

let admin: Redis
beforeAll(async () => {
  admin = new Redis(MAIN_URL, { lazyConnect: true, maxRetriesPerRequest: 1 })
  await admin.connect()
})

const deleteKeys = async (client: Redis, pattern: string) => {
  let cursor = "0"
  do {
    const [next, keys] = await client.scan(cursor, "MATCH", pattern, "COUNT", 1000)
    cursor = next
    if (keys.length > 0) await client.del(...keys)
  } while (cursor !== "0")
}

/** redis-server processes this file started (only these are ever stopped). */
const started = new Set<ChildProcess>()

afterAll(async () => {
  await deleteKeys(admin, `${prefix}*`)
  await admin.quit()
  for (const child of started) child.kill("SIGKILL")
})

// ---- helpers ------------------------------------------------------------------------

/** A gateway port that records what reaches it (the port's contract; Redis is real). */
class RecordingPort implements ClusterGatewayPort {
  readonly players = new Set<string>()
  readonly published: Array<[string, string]> = []
  readonly sent: Array<[string, string]> = []
  readonly sentRaw: Array<Buffer> = []
  readonly moves: Array<[string, string, string | undefined, string | undefined]> = []
  readonly relocations: Array<[string, JoinedInfo | null, string]> = []
  constructor(readonly gatewayId: string) {}
  hasPlayer(playerId: string): boolean {
    return this.players.has(playerId)
  }
  publish(topic: string, frame: Uint8Array): void {
    this.published.push([topic, Buffer.from(frame).toString()])
  }
  sendToPlayer(playerId: string, frame: Uint8Array): boolean {
    if (!this.players.has(playerId)) return false
    this.sent.push([playerId, Buffer.from(frame).toString()])
    this.sentRaw.push(Buffer.from(frame))
    return true
  }
  moveCells(playerId: string, regionId: string, fromCell: string | undefined, toCell: string | undefined): void {
    this.moves.push([playerId, regionId, fromCell, toCell])
  }
  relocate(playerId: string, joined: JoinedInfo | null, reason: string): boolean {
    if (!this.players.has(playerId)) return false
    this.relocations.push([playerId, joined, reason])
    return true
  }
  frames(topic: string): Array<string> {
    return this.published.filter(([t]) => t === topic).map(([, f]) => f)
  }
}

const bytes = (s: string): Uint8Array => new Uint8Array(Buffer.from(s))

interface NodeOptions {
  readonly url?: string
  readonly ttlMs?: number
  readonly heartbeatMs?: number
}

/** One process's Redis side: connection, delivery, presence, a shared limiter. */
const buildNode = (options: NodeOptions = {}) =>
  Effect.gen(function*() {
    const connection = RedisConnection.layer({
      url: options.url ?? MAIN_URL,
      prefix,
      maxBackoffMs: 200,
      connectTimeoutMs: 500,
      commandTimeoutMs: 1000
    })
    const services = Layer.mergeAll(
      deliveryLayerRedis,
      Presence.layerRedis({ ttlMs: options.ttlMs ?? 15_000, heartbeatMs: options.heartbeatMs ?? 5_000 }),
      RateLimiter.layerRedis({ name: "test", ratePerSecond: 1, burst: 3 })
    ).pipe(Layer.provideMerge(connection))
    const context = yield* Layer.build(services)
    return {
      redis: Context.get(context, RedisConnection.RedisConnection),
      delivery: Context.get(context, ClientDelivery),
      topics: Context.get(context, TopicSubscriptions),
      presence: Context.get(context, Presence.Presence),
      limiter: Context.get(context, RateLimiter.SharedRateLimiter)
    }
  })

const waitFor = (what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 5_000) =>
  Effect.gen(function*() {
    const deadline = Date.now() + timeoutMs
    while (!(yield* Effect.promise(async () => condition()))) {
      if (Date.now() > deadline) return yield* Effect.dieMessage(`timed out waiting for ${what}`)
      yield* Effect.sleep(Duration.millis(10))
    }
  })

const numsub = async (client: Redis, channel: string): Promise<number> => {
  const reply = (await client.pubsub("NUMSUB", channel)) as Array<unknown>
  return Number(reply[1])
}

const topicChannel = (topic: string) => `${prefix}t:${topic}`

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = Net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

const startRedis = (port: number): Promise<ChildProcess> =>
  new Promise((resolve, reject) => {
    const child = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      { stdio: "ignore" }
    )
    started.add(child)
    child.once("error", reject)
    const deadline = Date.now() + 5_000
    const probe = () => {
      const socket = Net.connect(port, "127.0.0.1")
      socket.once("connect", () => {
        socket.destroy()
        resolve(child)
      })
      socket.once("error", () => {
        socket.destroy()
        if (Date.now() > deadline) reject(new Error(`redis-server on ${port} did not start`))
        else setTimeout(probe, 20)
      })
    }
    probe()
  })

const stopRedis = (child: ChildProcess): Promise<void> =>
  new Promise((resolve) => {
    started.delete(child)
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    child.once("exit", () => resolve())
    child.kill("SIGKILL")
  })

/** Logs are silenced unless TESSERA_TEST_LOGS is set. */
const quiet = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  process.env.TESSERA_TEST_LOGS ? effect : effect.pipe(Effect.provide(Logger.minimumLogLevel(LogLevel.None)))

// ---- tests --------------------------------------------------------------------------

describe("Redis delivery, presence and rate limits", () => {
  it.scopedLive("a topic reaches exactly the gateways subscribed to it, once each", () =>
    quiet(Effect.gen(function*() {
      const region = yield* buildNode()
      const g1 = yield* buildNode()
      const g2 = yield* buildNode()
      const port1 = new RecordingPort("gw-1")
      const port2 = new RecordingPort("gw-2")
      g1.delivery.attach(port1)
      g2.delivery.attach(port2)

      const topic = "c|exp.1|0,0"
      const fence1 = "c|exp.1|fence1"
      const fence2 = "c|exp.1|fence2"
      // Two local sockets of gateway 1 follow the topic: one channel subscription.
      g1.topics.subscribed(topic)
      g1.topics.subscribed(topic)
      g1.topics.subscribed(fence1)
      g2.topics.subscribed(fence2)
      yield* waitFor("subscriptions", async () =>
        (await numsub(admin, topicChannel(topic))) === 1 &&
        (await numsub(admin, topicChannel(fence1))) === 1 &&
        (await numsub(admin, topicChannel(fence2))) === 1)

      region.delivery.publish(topic, bytes("tick-1"))
      // Same publisher connection, later fences: once they arrive, anything earlier has too.
      region.delivery.publish(fence1, bytes("f"))
      region.delivery.publish(fence2, bytes("f"))
      yield* waitFor("fences", () => port1.frames(fence1).length === 1 && port2.frames(fence2).length === 1)
      expect(port1.frames(topic)).toEqual(["tick-1"])
      expect(port2.frames(topic)).toEqual([])

      // A gateway publishing a topic its own sockets follow gets it back once (no double delivery).
      g1.delivery.publish(topic, bytes("from-g1"))
      g1.delivery.publish(fence1, bytes("f"))
      yield* waitFor("fence", () => port1.frames(fence1).length === 2)
      expect(port1.frames(topic)).toEqual(["tick-1", "from-g1"])
      expect(port2.published.filter(([t]) => t !== fence2)).toEqual([])

      // One socket leaves: still subscribed. The last one leaves: delivery stops.
      g1.topics.unsubscribed(topic)
      region.delivery.publish(topic, bytes("tick-2"))
      region.delivery.publish(fence1, bytes("f"))
      yield* waitFor("fence", () => port1.frames(fence1).length === 3)
      expect(port1.frames(topic)).toEqual(["tick-1", "from-g1", "tick-2"])

      g1.topics.unsubscribed(topic)
      yield* waitFor("unsubscribe", async () => (await numsub(admin, topicChannel(topic))) === 0)
      region.delivery.publish(topic, bytes("tick-3"))
      region.delivery.publish(fence1, bytes("f"))
      yield* waitFor("fence", () => port1.frames(fence1).length === 4)
      expect(port1.frames(topic)).toEqual(["tick-1", "from-g1", "tick-2"])

      // Gateway 2 subscribes later: from then on it gets the topic, gateway 1 does not.
      g2.topics.subscribed(topic)
      yield* waitFor("subscribe", async () => (await numsub(admin, topicChannel(topic))) === 1)
      region.delivery.publish(topic, bytes("tick-4"))
      region.delivery.publish(fence1, bytes("f"))
      region.delivery.publish(fence2, bytes("f"))
      yield* waitFor("fences", () => port1.frames(fence1).length === 5 && port2.frames(fence2).length === 2)
      expect(port2.frames(topic)).toEqual(["tick-4"])
      expect(port1.frames(topic)).toEqual(["tick-1", "from-g1", "tick-2"])

      // Detach unsubscribes everything the gateway had.
      g2.delivery.detach(port2)
      yield* waitFor("detach", async () =>
        (await numsub(admin, topicChannel(topic))) === 0 && (await numsub(admin, `${prefix}g:gw-2`)) === 0)
    }))
  )

  it.scopedLive("sendToPlayer and moveCells reach the player's gateway", () =>
    quiet(Effect.gen(function*() {
      const region = yield* buildNode()
      const g1 = yield* buildNode()
      const g2 = yield* buildNode()
      const port1 = new RecordingPort("gw-a")
      const port2 = new RecordingPort("gw-b")
      g1.delivery.attach(port1)
      g2.delivery.attach(port2)
      yield* waitFor("gateway channels", async () =>
        (await numsub(admin, `${prefix}g:gw-a`)) === 1 && (await numsub(admin, `${prefix}g:gw-b`)) === 1)

      port2.players.add("p-b")
      yield* g2.presence.online("p-b", "gw-b", "exp")
      expect(region.delivery.sendToPlayer("nobody", bytes("x"))).toBe(false)

      // The region's local copy of presence learns of the player through presence events.
      yield* waitFor("presence copy", () => region.delivery.sendToPlayer("p-b", bytes("hello")))
      yield* waitFor("envelope", () => port2.sent.length === 1)
      expect(port2.sent).toEqual([["p-b", "hello"]])

      region.delivery.moveCells("p-b", "exp.1", "0,0", "1,0")
      region.delivery.moveCells("p-b", "exp.1", "1,0", undefined)
      yield* waitFor("moves", () => port2.moves.length === 2)
      expect(port2.moves).toEqual([["p-b", "exp.1", "0,0", "1,0"], ["p-b", "exp.1", "1,0", undefined]])

      // From the other gateway: forwarded; from the player's own gateway: direct (synchronous).
      yield* waitFor("presence copy", () => g1.delivery.sendToPlayer("p-b", bytes("via-g1")))
      expect(g2.delivery.sendToPlayer("p-b", bytes("local"))).toBe(true)
      expect(port2.sent.at(-1)).toEqual(["p-b", "local"])
      g2.delivery.moveCells("p-b", "exp.1", undefined, "2,2")
      expect(port2.moves.at(-1)).toEqual(["p-b", "exp.1", undefined, "2,2"])
      yield* waitFor("forwarded", () => port2.sent.length === 3)
      expect(port2.sent.map(([, f]) => f).sort()).toEqual(["hello", "local", "via-g1"])
      expect(port1.sent).toEqual([])
      expect(port1.moves).toEqual([])

      // A relocation (seamless move, or 4006 with nowhere to go) reaches the player's gateway whole.
      const joined: JoinedInfo = {
        experienceId: "exp",
        worldId: "exp.2",
        regionId: "exp.2",
        entityId: 3,
        x: 1.5,
        y: 0,
        z: -2,
        cellKey: "0,0,-1",
        tickRate: 20,
        cellSize: 50,
        interestRadius: 1
      }
      expect(region.delivery.relocate("nobody", joined, "x")).toBe(false)
      expect(region.delivery.relocate("p-b", joined, "moved to exp.2")).toBe(true)
      expect(g1.delivery.relocate("p-b", null, "exp.2: maintenance")).toBe(true)
      yield* waitFor("relocations", () => port2.relocations.length === 2)
      expect(port2.relocations).toEqual([["p-b", joined, "moved to exp.2"], ["p-b", null, "exp.2: maintenance"]])
      expect(port1.relocations).toEqual([])

      // A binary frame survives the envelope byte for byte.
      const binary = new Uint8Array([0, 255, 1, 128, 0, 10, 13])
      const before = port2.sent.length
      expect(region.delivery.sendToPlayer("p-b", binary)).toBe(true)
      yield* waitFor("binary", () => port2.sent.length === before + 1)
      expect(port2.sentRaw.at(-1)!.equals(Buffer.from(binary))).toBe(true)

      // Offline: the copies forget the player.
      port2.players.delete("p-b")
      yield* g2.presence.offline("p-b", "gw-b")
      yield* waitFor("offline", () => !region.delivery.sendToPlayer("p-b", bytes("late")))
      expect(g1.delivery.sendToPlayer("p-b", bytes("late"))).toBe(false)
    }))
  )

  it.scopedLive("presence: online, offline, gatewayOf, counts, and expiry of a dead gateway", () =>
    quiet(Effect.gen(function*() {
      const a = yield* buildNode({ ttlMs: 1_000, heartbeatMs: 200 })
      const b = yield* buildNode({ ttlMs: 1_000, heartbeatMs: 200 })
      const presenceA = a.presence
      const presenceB = b.presence

      yield* presenceA.online("p1", "gw-A", "exp-x")
      yield* presenceA.online("p2", "gw-A", null)
      yield* presenceB.online("p3", "gw-B", "exp-x")
      yield* presenceB.online("p4", "gw-B", "exp-y")
      expect(yield* presenceA.gatewayOf("p3")).toBe("gw-B")
      expect(yield* presenceB.gatewayOf("p1")).toBe("gw-A")
      expect(yield* presenceA.gatewayOf("nobody")).toBeUndefined()
      expect(yield* presenceA.onlineCount("exp-x")).toBe(2)
      expect(yield* presenceA.onlineCount("exp-y")).toBe(1)
      expect(yield* presenceA.onlineCount("exp-z")).toBe(0)
      expect(yield* presenceA.total()).toBe(4)

      // Joining an experience moves the count; offline from a gateway the player already left is a no-op.
      yield* presenceA.online("p2", "gw-A", "exp-y")
      expect(yield* presenceA.onlineCount("exp-y")).toBe(2)
      yield* presenceB.online("p1", "gw-B", "exp-x") // p1 reconnected through gateway B
      yield* presenceA.offline("p1", "gw-A") // the old socket closes late
      expect(yield* presenceA.gatewayOf("p1")).toBe("gw-B")
      expect(yield* presenceA.onlineCount("exp-x")).toBe(2)
      yield* presenceB.offline("p1", "gw-B")
      expect(yield* presenceA.gatewayOf("p1")).toBeUndefined()
      expect(yield* presenceA.onlineCount("exp-x")).toBe(1)
      expect(yield* presenceA.total()).toBe(3)

      // Heartbeats keep a gateway alive past its TTL.
      yield* Effect.sleep(Duration.millis(1_500))
      expect(yield* presenceA.gatewayOf("p3")).toBe("gw-B")
      expect(yield* presenceA.total()).toBe(3)

      // A's delivery knows p3 is on gw-B...
      yield* waitFor("presence copy", () => a.delivery.sendToPlayer("p4", bytes("x")))

      // ...then node B dies (its connection to Redis is gone: no heartbeat, no clean shutdown).
      b.redis.command.disconnect()
      b.redis.subscriber.disconnect()
      yield* waitFor("gateway B expiry", () =>
        Effect.runPromise(presenceA.gatewayOf("p3").pipe(Effect.map((g) => g === undefined))), 4_000)
      expect(yield* presenceA.onlineCount("exp-x")).toBe(0)
      expect(yield* presenceA.onlineCount("exp-y")).toBe(1)
      expect(yield* presenceA.total()).toBe(1)
      // A's sweep removes B's entries and tells every copy.
      yield* waitFor("sweep", async () => (await admin.hexists(`${prefix}pr:gw`, "p3")) === 0)
      yield* waitFor("copy forgets gw-B", () => !a.delivery.sendToPlayer("p4", bytes("x")))
      expect(yield* presenceA.gatewayOf("p2")).toBe("gw-A")
    }))
  )

  it.scopedLive("a clean shutdown removes the gateway's players at once", () =>
    quiet(Effect.gen(function*() {
      const a = yield* buildNode()
      yield* Effect.scoped(Effect.gen(function*() {
        const b = yield* buildNode()
        yield* b.presence.online("q1", "gw-Q", "exp-q")
        expect(yield* a.presence.gatewayOf("q1")).toBe("gw-Q")
      }))
      expect(yield* a.presence.gatewayOf("q1")).toBeUndefined()
      expect(yield* a.presence.onlineCount("exp-q")).toBe(0)
    }))
  )

  it.scopedLive("the rate limit is shared by every limiter instance", () =>
    quiet(Effect.gen(function*() {
      const one = (yield* buildNode()).limiter
      const two = (yield* buildNode()).limiter
      const t0 = 1_000_000
      // burst 3, 1 token/s, across both instances
      expect(yield* one.take("ip:1.2.3.4", t0)).toBe(true)
      expect(yield* two.take("ip:1.2.3.4", t0)).toBe(true)
      expect(yield* one.take("ip:1.2.3.4", t0)).toBe(true)
      expect(yield* two.take("ip:1.2.3.4", t0)).toBe(false)
      expect(yield* one.take("ip:1.2.3.4", t0 + 10)).toBe(false)
      expect(yield* two.take("ip:5.6.7.8", t0)).toBe(true)
      // One second later: exactly one more token.
      expect(yield* two.take("ip:1.2.3.4", t0 + 1_000)).toBe(true)
      expect(yield* one.take("ip:1.2.3.4", t0 + 1_000)).toBe(false)
      // Buckets expire once they would be full again.
      const ttl = yield* Effect.promise(() => admin.pttl(`${prefix}rl:test:ip:1.2.3.4`))
      expect(ttl).toBeGreaterThan(0)
      expect(ttl).toBeLessThanOrEqual(3_001)
      // Redis's clock when none is given.
      expect(yield* one.take("chat:p1")).toBe(true)
      expect(yield* two.take("chat:p1")).toBe(true)
      expect(yield* one.take("chat:p1")).toBe(true)
      expect(yield* two.take("chat:p1")).toBe(false)
      // The in-memory flavour has the same contract for one process.
      const memory = RateLimiter.makeMemory({ ratePerSecond: 1, burst: 1 })
      expect(yield* memory.take("k", t0)).toBe(true)
      expect(yield* memory.take("k", t0)).toBe(false)
      expect(yield* memory.take("k", t0 + 1_000)).toBe(true)
    }))
  )

  it.scopedLive("with Redis down the layers still build and nothing throws", () =>
    quiet(Effect.gen(function*() {
      const node = yield* buildNode({ url: "redis://127.0.0.1:1" })
      yield* waitFor("down", () => node.redis.status() === "down")
      expect(node.redis.lastError()).toMatch(/ECONNREFUSED|connect/i)
      const port = new RecordingPort("gw-down")
      node.delivery.attach(port)
      node.topics.subscribed("c|r|0,0")
      expect(() => node.delivery.publish("c|r|0,0", bytes("x"))).not.toThrow()
      expect(node.delivery.sendToPlayer("p", bytes("x"))).toBe(false)
      expect(() => node.delivery.moveCells("p", "r", undefined, "0,0")).not.toThrow()
      node.topics.unsubscribed("c|r|0,0")
      // The limiter fails open, every time.
      for (let i = 0; i < 10; i++) expect(yield* node.limiter.take("ip:9.9.9.9", 5)).toBe(true)
      yield* node.presence.online("p", "gw-down", "exp")
      expect(yield* node.presence.gatewayOf("p")).toBeUndefined()
      expect(yield* node.presence.onlineCount("exp")).toBe(0)
      node.delivery.detach(port)
    }))
  )

  it.scopedLive("recovers by itself when Redis comes (back) up", () =>
    quiet(Effect.gen(function*() {
      const redisPort = yield* Effect.promise(freePort)
      const url = `redis://127.0.0.1:${redisPort}`
      // Both nodes boot while Redis is not running yet.
      const gateway = yield* buildNode({ url, heartbeatMs: 200 })
      const region = yield* buildNode({ url, heartbeatMs: 200 })
      yield* waitFor("down", () => gateway.redis.status() === "down")
      const port = new RecordingPort("gw-r")
      port.players.add("pr")
      gateway.delivery.attach(port)
      gateway.topics.subscribed("c|r|1,1")
      yield* gateway.presence.online("pr", "gw-r", "exp-r")

      let server = yield* Effect.promise(() => startRedis(redisPort))
      const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => 100 })
      probe.on("error", () => {})
      yield* Effect.addFinalizer(() => Effect.sync(() => probe.disconnect()))
      yield* Effect.promise(() => probe.connect())

      const works = (label: string) =>
        Effect.gen(function*() {
          yield* waitFor(`${label}: ready`, () => gateway.redis.status() === "ready" && region.redis.status() === "ready")
          expect(gateway.redis.lastError()).toBeUndefined()
          // Subscriptions made while down are in place.
          yield* waitFor(`${label}: resubscribed`, async () => (await numsub(probe, topicChannel("c|r|1,1"))) === 1)
          const before = port.frames("c|r|1,1").length
          region.delivery.publish("c|r|1,1", bytes(label))
          yield* waitFor(`${label}: frame`, () => port.frames("c|r|1,1").length === before + 1)
          // Presence written while down is replayed by the heartbeat.
          yield* waitFor(`${label}: presence`, () =>
            Effect.runPromise(region.presence.gatewayOf("pr").pipe(Effect.map((g) => g === "gw-r"))))
          yield* waitFor(`${label}: envelope`, () => region.delivery.sendToPlayer("pr", bytes(label)))
          yield* waitFor(`${label}: sent`, () => port.sent.some(([, f]) => f === label))
          // The limiter checks again (burst 3).
          const key = `ip:${label}`
          const results = []
          for (let i = 0; i < 4; i++) results.push(yield* region.limiter.take(key, 1_000))
          expect(results).toEqual([true, true, true, false])
        })

      yield* works("first-boot")

      // Redis crashes (and loses everything: no persistence) and comes back on the same port.
      yield* Effect.promise(() => stopRedis(server))
      yield* waitFor("down again", () => gateway.redis.status() === "down")
      region.delivery.publish("c|r|1,1", bytes("lost"))
      expect(yield* region.limiter.take("ip:x", 1)).toBe(true)
      server = yield* Effect.promise(() => startRedis(redisPort))
      yield* works("after-restart")
      expect(port.frames("c|r|1,1")).toEqual(["first-boot", "after-restart"])

      yield* Effect.promise(() => stopRedis(server))
    }))
  )
})
