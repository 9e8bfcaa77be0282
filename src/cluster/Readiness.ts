import { SqlClient } from "@effect/sql"
import { Context, Duration, Effect, Layer, Schedule } from "effect"
import * as Metrics from "../observability/Metrics.js"
import { RedisConnection } from "../storage/redis/RedisConnection.js"

export interface ReadinessReport {
  readonly ready: boolean
  readonly checks: Record<string, string>
}

/** How often a runner checks its dependencies on its own (between /ready probes). */
const MONITOR_INTERVAL = Duration.seconds(2)

const make = (extraChecks: Effect.Effect<Record<string, string>>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    let clusterReady = false
    const storage = sql`SELECT 1 AS ok`.pipe(
      Effect.timeout(Duration.seconds(2)),
      Effect.as("ok"),
      Effect.catchAllCause(() => Effect.succeed("storage did not answer"))
    )
    const check = Effect.map(Effect.all([storage, extraChecks]), ([storageStatus, extra]) => {
      const checks: Record<string, string> = { storage: storageStatus, cluster: clusterReady ? "ok" : "not joined", ...extra }
      return { ready: Object.values(checks).every((v) => v === "ok"), checks }
    })
    // A line when a dependency goes away or comes back, and the gauge, even when nobody polls /ready.
    const last: Record<string, string> = {}
    const monitor = check.pipe(
      Effect.flatMap(({ checks }) =>
        Effect.forEach(["storage", "redis"] as const, (dependency) => {
          const status = checks[dependency]
          if (status === undefined) return Effect.void
          Metrics.dependencyUp[dependency].set(status === "ok" ? 1 : 0)
          const previous = last[dependency]
          last[dependency] = status
          if (previous === status || (previous === undefined && status === "ok")) return Effect.void
          return status === "ok"
            ? Effect.logInfo(`${dependency} is back`)
            : Effect.logWarning(`${dependency} unavailable: ${status}`)
        }, { discard: true })
      ),
      Effect.repeat(Schedule.spaced(MONITOR_INTERVAL))
    )
    yield* Effect.forkScoped(monitor)
    return {
      markClusterReady: (ready: boolean) => {
        clusterReady = ready
      },
      check
    }
  })

/**
 * What `/ready` reports: storage answers, and this runner has finished
 * joining the cluster (set once the whole server layer is built).
 */
export class Readiness extends Context.Tag("tessera/Readiness")<Readiness, {
  readonly markClusterReady: (ready: boolean) => void
  readonly check: Effect.Effect<ReadinessReport>
}>() {
  /** One node: storage and cluster. */
  static readonly layer: Layer.Layer<Readiness, never, SqlClient.SqlClient> = Layer.scoped(
    Readiness,
    make(Effect.succeed({}))
  )

  /** Several nodes: Redis must answer too (cell pub/sub, presence). */
  static readonly layerWithRedis: Layer.Layer<Readiness, never, SqlClient.SqlClient | RedisConnection> = Layer.scoped(
    Readiness,
    Effect.flatMap(RedisConnection, (redis) =>
      make(Effect.sync(() => {
        const status = redis.status()
        return { redis: status === "ready" ? "ok" : `${status}${redis.lastError() ? `: ${redis.lastError()}` : ""}` }
      }))
    )
  )
}

