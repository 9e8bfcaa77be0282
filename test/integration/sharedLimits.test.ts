import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Logger, LogLevel } from "effect"
import { Redis } from "ioredis"
import * as Http from "node:http"
import { afterAll, beforeAll } from "vitest"
import WebSocket from "ws"
import type { TesseraClient } from "../../src/client/TesseraClient.js"
import * as AppConfig from "../../src/config/AppConfig.js"
import { defaultConfig } from "../../src/config/ConfigSchema.js"
import { IpRateLimits } from "../../src/gateway/IpRateLimits.js"
import * as RedisConnection from "../../src/storage/redis/RedisConnection.js"
import { connectGuest, waitFor, walk } from "../support/clients.js"
import { type ClusterNode, startCluster } from "../support/Cluster.js"
import { ServerProcess } from "../support/ServerProcess.js"
import { testToml } from "../support/testConfig.js"

/**
 * The per-IP limits (guest sign-in, WebSocket upgrade) are shared by every
 * gateway through Redis: a client spreading over two gateways gets the budget
 * of one. Each phase comes from its own loopback address (127.0.0.x: Linux
 * routes all of 127/8 to lo), so the budgets are exact and independent.
 */

const PER_MINUTE = 6

let cluster: Awaited<ReturnType<typeof startCluster>>
const clients: Array<TesseraClient> = []
const sockets: Array<WebSocket> = []

beforeAll(async () => {
  cluster = await startCluster(["gateway", "gateway", "region,session,scheduler,expert:chat"], {
    toml: testToml().replace("[gateway]\n", `[gateway]\nauth_per_minute_per_ip = ${PER_MINUTE}\n`)
  })
}, 90_000)

afterAll(async () => {
  for (const ws of sockets) ws.terminate()
  await Promise.all(clients.map((c) => c.close().catch(() => {})))
  await cluster?.stop()
})

const gateways = (): [ServerProcess, ServerProcess] => {
  const [a, b] = cluster.nodes.filter((n: ClusterNode) => n.roles === "gateway").map((n) => n.server)
  return [a!, b!]
}

interface Reply {
  readonly status: number
  readonly contentType: string | undefined
  readonly body: any
}

const readReply = (res: Http.IncomingMessage): Promise<Reply> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    res.on("data", (c: Buffer) => chunks.push(c))
    res.on("error", reject)
    res.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8")
      let body: unknown = text
      try {
        body = JSON.parse(text)
      } catch {
        // not JSON: kept as text, and the assertions say so
      }
      resolve({ status: res.statusCode ?? 0, contentType: res.headers["content-type"], body })
    })
  })

/** POST /v1/auth/guest from `localAddress`. */
const guestAuth = (server: ServerProcess, localAddress: string, deviceId: string): Promise<Reply> =>
  new Promise((resolve, reject) => {
    const body = JSON.stringify({ deviceId, name: deviceId })
    const req = Http.request(`${server.httpUrl}/v1/auth/guest`, {
      method: "POST",
      localAddress,
      agent: false,
      headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) }
    }, (res) => readReply(res).then(resolve, reject))
    req.on("error", reject)
    req.end(body)
  })

/** A WebSocket upgrade from `localAddress`: the open socket, or the refusal. */
const upgrade = (
  server: ServerProcess,
  localAddress: string,
  token: string
): Promise<{ readonly ws: WebSocket } | { readonly refused: Reply }> =>
  new Promise((resolve, reject) => {
    const ws = new WebSocket(`${server.wsUrl}/v1/ws?token=${encodeURIComponent(token)}`, {
      localAddress,
      perMessageDeflate: false
    })
    ws.on("open", () => {
      sockets.push(ws)
      resolve({ ws })
    })
    ws.on("unexpected-response", (_req, res) => readReply(res).then((refused) => resolve({ refused }), reject))
    ws.on("error", reject)
  })

const limitedCount = async (server: ServerProcess): Promise<number> => {
  const text = await (await fetch(`${server.httpUrl}/metrics`)).text()
  return Number(/^tessera_auth_total\{result="limited"\} (\S+)$/m.exec(text)?.[1] ?? NaN)
}

describe("per-IP limits shared across gateways (Redis)", () => {
  it("guest sign-ins and upgrades from one address share one budget over two gateways; connected players keep playing", async () => {
    const [gwA, gwB] = gateways()
    // A player already connected (from 127.0.0.1) and playing on gateway A.
    const keeper = await connectGuest(gwA, "shared-keeper")
    clients.push(keeper)
    await keeper.join("arena")
    const limitedBefore = (await limitedCount(gwA)) + (await limitedCount(gwB))

    // Sign-ins from 127.0.0.2, alternating gateways: the budget is PER_MINUTE in all, not per gateway.
    const signIns: Array<Reply> = []
    for (let i = 0; i < PER_MINUTE + 2; i++) {
      signIns.push(await guestAuth(i % 2 === 0 ? gwA : gwB, "127.0.0.2", `shared-auth-${i}`))
    }
    expect(signIns.map((r) => r.status)).toEqual([...Array(PER_MINUTE).fill(200), 429, 429])
    // Each gateway alone served only half the budget before refusing.
    expect(signIns.filter((r, i) => i % 2 === 0 && r.status === 200)).toHaveLength(PER_MINUTE / 2)
    expect(signIns.filter((r, i) => i % 2 === 1 && r.status === 200)).toHaveLength(PER_MINUTE / 2)
    for (const refused of signIns.slice(PER_MINUTE)) {
      expect(refused.contentType).toBe("application/json")
      expect(refused.body).toEqual({
        error: { code: "rate_limited", message: "too many sign-ins from this address; retry later" }
      })
    }
    const tokens = signIns.slice(0, PER_MINUTE).map((r) => r.body.token as string)
    // Another address is not affected.
    expect((await guestAuth(gwB, "127.0.0.4", "shared-other")).status).toBe(200)

    // Upgrades from 127.0.0.3 with valid tokens, alternating gateways: PER_MINUTE open, then 429.
    const upgrades = []
    for (let i = 0; i < PER_MINUTE + 2; i++) {
      upgrades.push(await upgrade(i % 2 === 0 ? gwA : gwB, "127.0.0.3", tokens[i % PER_MINUTE]!))
    }
    expect(upgrades.map((u) => ("ws" in u ? 101 : u.refused.status))).toEqual([...Array(PER_MINUTE).fill(101), 429, 429])
    for (const u of upgrades.slice(PER_MINUTE)) {
      if ("ws" in u) throw new Error("expected a refusal")
      expect(u.refused.contentType).toBe("application/json")
      expect(u.refused.body).toEqual({
        error: { code: "rate_limited", message: "too many connections from this address; retry later" }
      })
    }
    expect((await limitedCount(gwA)) + (await limitedCount(gwB)) - limitedBefore).toBe(4)

    // Nothing else is disturbed: the sockets that got in stay open, the keeper keeps playing.
    for (const u of upgrades.slice(0, PER_MINUTE)) expect("ws" in u && u.ws.readyState === WebSocket.OPEN).toBe(true)
    const seq = await walk(keeper, 1, 0, 0, 10)
    await waitFor("the keeper's inputs acked", () => keeper.lastAckedSeq >= seq)
    expect(await keeper.ping()).toBeGreaterThanOrEqual(0)
  })
})

describe("per-IP limits without Redis (one process)", () => {
  it("the gateway's own buckets limit sign-ins and upgrades, with the same clear errors", async () => {
    const server = await ServerProcess.start({
      toml: testToml().replace("[gateway]\n", "[gateway]\nauth_per_minute_per_ip = 3\n")
    })
    try {
      const signIns: Array<Reply> = []
      for (let i = 0; i < 4; i++) signIns.push(await guestAuth(server, "127.0.0.5", `solo-${i}`))
      expect(signIns.map((r) => r.status)).toEqual([200, 200, 200, 429])
      expect(signIns[3]!.body.error.code).toBe("rate_limited")
      // Limited before the body is looked at: a bad body from a limited address is a 429 too.
      const bad = await new Promise<Reply>((resolve, reject) => {
        const req = Http.request(`${server.httpUrl}/v1/auth/guest`, { method: "POST", localAddress: "127.0.0.5", agent: false }, (res) =>
          readReply(res).then(resolve, reject))
        req.on("error", reject)
        req.end("{not json")
      })
      expect(bad.status).toBe(429)
      // Another address still gets the usual answers (a bad body is a 400, a bad token a 401).
      const bad400 = await new Promise<Reply>((resolve, reject) => {
        const req = Http.request(`${server.httpUrl}/v1/auth/guest`, { method: "POST", localAddress: "127.0.0.6", agent: false }, (res) =>
          readReply(res).then(resolve, reject))
        req.on("error", reject)
        req.end("{not json")
      })
      expect(bad400.status).toBe(400)
      expect(bad400.body.error.code).toBe("bad_request")

      const token = signIns[0]!.body.token as string
      const upgrades = []
      for (let i = 0; i < 4; i++) upgrades.push(await upgrade(server, "127.0.0.5", i === 1 ? "not-a-token" : token))
      expect(upgrades.map((u) => ("ws" in u ? 101 : u.refused.status))).toEqual([101, 401, 101, 429])
      const refused = upgrades[3]!
      expect("refused" in refused && refused.refused.body.error.code).toBe("rate_limited")
      const unauthorized = upgrades[1]!
      expect("refused" in unauthorized && unauthorized.refused.body.error.code).toBe("unauthorized")
    } finally {
      await server.stop()
    }
  })
})

// ---- the layers themselves (real Redis; a dead one for the fallback) -------------------

const prefix = `tessera-test:${process.pid}-${Math.random().toString(36).slice(2, 10)}:`

const limitsOn = (url: string) =>
  Effect.gen(function*() {
    const config = { ...defaultConfig, gateway: { ...defaultConfig.gateway, authPerMinutePerIp: 3 } }
    const layer = IpRateLimits.layerRedis.pipe(
      Layer.provide(AppConfig.layer(config)),
      Layer.provideMerge(
        RedisConnection.layer({ url, prefix, maxBackoffMs: 200, connectTimeoutMs: 500, commandTimeoutMs: 1000 })
      )
    )
    const context = yield* Layer.build(layer)
    return { limits: Context.get(context, IpRateLimits), redis: Context.get(context, RedisConnection.RedisConnection) }
  })

const quiet = <A, E, R>(effect: Effect.Effect<A, E, R>) => Logger.withMinimumLogLevel(effect, LogLevel.None)

describe("IpRateLimits.layerRedis", () => {
  afterAll(async () => {
    const admin = new Redis("redis://127.0.0.1:6379", { lazyConnect: true, maxRetriesPerRequest: 1 })
    await admin.connect()
    let cursor = "0"
    do {
      const [next, keys] = await admin.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000)
      cursor = next
      if (keys.length > 0) await admin.del(...keys)
    } while (cursor !== "0")
    await admin.quit()
  })

  it.scopedLive("two gateways share each bucket; upgrade and sign-in budgets are separate", () =>
    quiet(Effect.gen(function*() {
      const one = (yield* limitsOn("redis://127.0.0.1:6379")).limits
      const two = (yield* limitsOn("redis://127.0.0.1:6379")).limits
      const t0 = 5_000_000
      const ups = [
        yield* one.upgrade.take("10.0.0.1", t0),
        yield* two.upgrade.take("10.0.0.1", t0),
        yield* one.upgrade.take("10.0.0.1", t0),
        yield* two.upgrade.take("10.0.0.1", t0)
      ]
      expect(ups).toEqual([true, true, true, false])
      expect(yield* one.auth.take("10.0.0.1", t0)).toBe(true)
      expect(yield* two.upgrade.take("10.0.0.2", t0)).toBe(true)
      // 3 a minute: one more token 20 s later.
      expect(yield* two.upgrade.take("10.0.0.1", t0 + 20_000)).toBe(true)
      expect(yield* one.upgrade.take("10.0.0.1", t0 + 20_000)).toBe(false)
    }))
  )

  it.scopedLive("with Redis unreachable each process limits with its own buckets (fails open, not shut)", () =>
    quiet(Effect.gen(function*() {
      const { limits, redis } = yield* limitsOn("redis://127.0.0.1:1")
      yield* Effect.promise(() => waitFor("redis down", () => redis.status() === "down"))
      const t0 = 1_000
      const results = []
      for (let i = 0; i < 4; i++) results.push(yield* limits.upgrade.take("10.9.9.9", t0))
      expect(results).toEqual([true, true, true, false])
      expect(yield* limits.upgrade.take("10.9.9.8", t0)).toBe(true)
      expect(yield* limits.auth.take("10.9.9.9", t0)).toBe(true)
      expect(yield* limits.upgrade.take("10.9.9.9", t0 + 20_000)).toBe(true)
    }))
  )
})
