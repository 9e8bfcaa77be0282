import { SqlClient } from "@effect/sql"
import { Context, Duration, Effect, Layer } from "effect"
import { RedisConnection } from "../storage/redis/RedisConnection.js"

export interface ReadinessReport {
  readonly ready: boolean
  readonly checks: Record<string, string>
}

const make = (extraChecks: Effect.Effect<Record<string, string>>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    let clusterReady = false
    const storage = sql`SELECT 1 AS ok`.pipe(
      Effect.timeout(Duration.seconds(2)),
      Effect.as("ok"),
      Effect.catchAllCause(() => Effect.succeed("storage did not answer"))
    )
    return {
      markClusterReady: (ready: boolean) => {
        clusterReady = ready
      },
      check: Effect.map(Effect.all([storage, extraChecks]), ([storageStatus, extra]) => {
        const checks: Record<string, string> = { storage: storageStatus, cluster: clusterReady ? "ok" : "not joined", ...extra }
        return { ready: Object.values(checks).every((v) => v === "ok"), checks }
      })
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
  static readonly layer: Layer.Layer<Readiness, never, SqlClient.SqlClient> = Layer.effect(
    Readiness,
    make(Effect.succeed({}))
  )

  /** Several nodes: Redis must answer too (cell pub/sub, presence). */
  static readonly layerWithRedis: Layer.Layer<Readiness, never, SqlClient.SqlClient | RedisConnection> = Layer.effect(
    Readiness,
    Effect.flatMap(RedisConnection, (redis) =>
      make(Effect.sync(() => {
        const status = redis.status()
        return { redis: status === "ready" ? "ok" : `${status}${redis.lastError() ? `: ${redis.lastError()}` : ""}` }
      }))
    )
  )
}

