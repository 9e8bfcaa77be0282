import { SqlClient } from "@effect/sql"
import { Context, Duration, Effect, Layer } from "effect"

export interface ReadinessReport {
  readonly ready: boolean
  readonly checks: Record<string, string>
}

/**
 * What `/ready` reports: storage answers, and this runner has finished
 * joining the cluster (set once the whole server layer is built).
 */
export class Readiness extends Context.Tag("tessera/Readiness")<Readiness, {
  readonly markClusterReady: (ready: boolean) => void
  readonly check: Effect.Effect<ReadinessReport>
}>() {
  static readonly layer: Layer.Layer<Readiness, never, SqlClient.SqlClient> = Layer.effect(
    Readiness,
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      let clusterReady = false
      const storage = sql`SELECT 1 AS ok`.pipe(
        Effect.timeout(Duration.seconds(2)),
        Effect.as("ok"),
        Effect.catchAllCause(() => Effect.succeed("storage did not answer"))
      )
      return {
        markClusterReady: (ready) => {
          clusterReady = ready
        },
        check: Effect.map(storage, (storageStatus) => {
          const cluster = clusterReady ? "ok" : "not joined"
          return { ready: storageStatus === "ok" && clusterReady, checks: { storage: storageStatus, cluster } }
        })
      }
    })
  )
}
