import { createHash } from "node:crypto"
import { Context, Duration, Effect, Layer, Runtime } from "effect"
import { Redis, type RedisOptions } from "ioredis"

export type RedisStatus = "ready" | "connecting" | "down"

export interface RedisConnectionOptions {
  /** `redis://[user:pass@]host:port[/db]` */
  readonly url: string
  /** Prefix of every key and channel, so several deployments can share one Redis. */
  readonly prefix: string
  /** Longest wait between reconnection attempts, in ms. Default 2000. */
  readonly maxBackoffMs?: number
  /** A command without a reply after this many ms fails. Default 2000. */
  readonly commandTimeoutMs?: number
  /** A TCP connect attempt gives up after this many ms. Default 2000. */
  readonly connectTimeoutMs?: number
  /** CLIENT SETNAME prefix (shows in CLIENT LIST). Default "tessera". */
  readonly name?: string
  /**
   * At boot, wait up to this many ms for the first connection (ready or
   * refused, whichever comes first) so early commands do not fail needlessly.
   * Default 2000. The layer never fails either way.
   */
  readonly bootWaitMs?: number
}

/**
 * Two ioredis connections to one Redis: `command` for ordinary commands
 * (fails fast while Redis is down: no offline queue, one retry), and
 * `subscriber` for SUBSCRIBE and incoming messages.
 *
 * The layer never fails because Redis is down: both connections keep
 * reconnecting in the background (capped exponential backoff) and the process
 * recovers by itself; `status()` and `lastError()` feed `/ready`.
 *
 * The subscriber does NOT resubscribe by itself after a reconnect
 * (`autoResubscribe: false`): each user keeps its desired channels and
 * subscribes them again on the subscriber's `"ready"` event. That way a
 * SUBSCRIBE/UNSUBSCRIBE that failed while Redis was down cannot leave a wrong
 * subscription behind, and nothing queues up while Redis is away.
 */
export class RedisConnection extends Context.Tag("tessera/storage/RedisConnection")<RedisConnection, {
  readonly command: Redis
  readonly subscriber: Redis
  readonly prefix: string
  /** "ready" when both connections are, "down" after an error or a lost connection, "connecting" at boot. */
  readonly status: () => RedisStatus
  /** Why Redis is not ready (the last connection error), undefined once ready. */
  readonly lastError: () => string | undefined
}>() {}

/** First retry after 100 ms, doubling up to `maxMs`; never gives up. */
export const backoffMs = (attempt: number, maxMs: number): number =>
  Math.min(maxMs, 100 * 2 ** Math.min(Math.max(attempt - 1, 0), 16))

const errorMessage = (e: unknown): string => (e instanceof Error ? e.message : String(e))

const make = (options: RedisConnectionOptions) =>
  Effect.gen(function*() {
    const runtime = yield* Effect.runtime<never>()
    const runFork = Runtime.runFork(runtime)
    const maxBackoffMs = options.maxBackoffMs ?? 2000
    const name = options.name ?? "tessera"
    const common: RedisOptions = {
      lazyConnect: true,
      connectTimeout: options.connectTimeoutMs ?? 2000,
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
      retryStrategy: (times) => backoffMs(times, maxBackoffMs)
    }
    const command = new Redis(options.url, {
      ...common,
      connectionName: `${name}:cmd`,
      commandTimeout: options.commandTimeoutMs ?? 2000,
      // Commands issued in the same tick (a region's cell publishes) go out in one write.
      enableAutoPipelining: true
    })
    const subscriber = new Redis(options.url, {
      ...common,
      connectionName: `${name}:sub`,
      autoResubscribe: false
    })

    let closing = false
    let lastError: string | undefined
    const failed = new Map<Redis, boolean>([[command, false], [subscriber, false]])
    const clientStatus = (c: Redis): RedisStatus => (c.status === "ready" ? "ready" : failed.get(c) ? "down" : "connecting")
    const status = (): RedisStatus => {
      const a = clientStatus(command)
      const b = clientStatus(subscriber)
      if (a === "ready" && b === "ready") return "ready"
      if (a === "down" || b === "down") return "down"
      return "connecting"
    }

    let reported: RedisStatus = "connecting"
    let reportedCause: string | undefined
    let reportedAt = 0
    /** Logs each change of status; while down, a new cause at most every 30 s (both connections fail alike). */
    const report = () => {
      if (closing) return
      const now = status()
      const cause = lastError?.replace(/^\w+: /, "")
      if (now === reported) {
        if (now !== "down" || cause === reportedCause || Date.now() - reportedAt < 30_000) return
      }
      const previous = reported
      reported = now
      reportedCause = cause
      reportedAt = Date.now()
      const log = now === "ready"
        ? Effect.logInfo(previous === "down" ? "redis recovered" : "redis ready")
        : now === "down"
        ? Effect.logWarning(`redis down (reconnecting in the background): ${lastError ?? "connection lost"}`)
        : Effect.logDebug("redis connecting")
      runFork(log.pipe(Effect.annotateLogs({ redis: options.url.replace(/\/\/[^@/]*@/, "//***@") })))
    }

    for (const [client, role] of [[command, "command"], [subscriber, "subscriber"]] as const) {
      // An "error" listener is mandatory: without one ioredis prints to the console.
      client.on("error", (e: unknown) => {
        failed.set(client, true)
        lastError = `${role}: ${errorMessage(e)}`
        report()
      })
      client.on("close", () => {
        if (closing) return
        failed.set(client, true)
        if (lastError === undefined) lastError = `${role}: connection closed`
        report()
      })
      client.on("ready", () => {
        failed.set(client, false)
        if (status() === "ready") lastError = undefined
        report()
      })
      // The first attempt may be refused; the retry strategy keeps trying in the background.
      client.connect().catch(() => {})
    }

    const close = (client: Redis) =>
      client.status === "ready"
        ? Effect.promise(() => client.quit().catch(() => "")).pipe(
          Effect.timeout(Duration.seconds(1)),
          Effect.catchAll(() => Effect.void),
          Effect.ensuring(Effect.sync(() => client.disconnect()))
        )
        : Effect.sync(() => client.disconnect())

    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        closing = true
        return Effect.all([close(command), close(subscriber)], { concurrency: 2, discard: true })
      })
    )

    // Boot: until both are ready or something went wrong (then the background retries take over).
    yield* Effect.async<void>((resume) => {
      const settle = () => {
        if (status() === "connecting") return
        cleanup()
        resume(Effect.void)
      }
      const cleanup = () => {
        for (const client of [command, subscriber]) {
          for (const event of ["ready", "error", "close"]) client.off(event, settle)
        }
      }
      for (const client of [command, subscriber]) {
        for (const event of ["ready", "error", "close"]) client.on(event, settle)
      }
      settle()
      return Effect.sync(cleanup)
    }).pipe(Effect.timeout(Duration.millis(options.bootWaitMs ?? 2000)), Effect.ignore)

    return RedisConnection.of({
      command,
      subscriber,
      prefix: options.prefix,
      status,
      lastError: () => (status() === "ready" ? undefined : lastError)
    })
  })

/** Scoped: QUIT both connections on release. Never fails, even with Redis down at boot. */
export const layer = (options: RedisConnectionOptions): Layer.Layer<RedisConnection> =>
  Layer.scoped(RedisConnection, make(options))

/**
 * A Lua script run by EVALSHA, falling back to EVAL when Redis does not have
 * it cached (first use, or after a Redis restart).
 */
export class LuaScript {
  readonly sha: string
  constructor(readonly source: string) {
    this.sha = createHash("sha1").update(source).digest("hex")
  }

  run(client: Redis, keys: ReadonlyArray<string>, args: ReadonlyArray<string | number | Buffer>): Promise<unknown> {
    return client.evalsha(this.sha, keys.length, ...keys, ...args).catch((e: unknown) => {
      if (errorMessage(e).startsWith("NOSCRIPT")) return client.eval(this.source, keys.length, ...keys, ...args)
      throw e
    })
  }
}
