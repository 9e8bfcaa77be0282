import { Duration, Effect, Exit, Layer, Schedule } from "effect"
import pg from "pg"
import uWS from "uWebSockets.js"
import type { TesseraConfig } from "../config/TesseraConfig.js"
import { installNotFound, installOpsApi } from "../gateway/HttpApi.js"
import * as Metrics from "../observability/Metrics.js"

/** One attempt: connect, `SELECT 1`, disconnect. Fails with the driver's message. */
const probe = (url: string, timeoutMs: number) =>
  Effect.tryPromise({
    try: async () => {
      const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs })
      client.on("error", () => {})
      try {
        await client.connect()
        await client.query("SELECT 1")
      } finally {
        // Not awaited: ending a client whose connect failed can wait forever.
        void client.end().catch(() => undefined)
      }
    },
    catch: (error) => (error instanceof Error ? error.message || error.name : String(error))
  }).pipe(
    Effect.timeoutFail({ duration: Duration.millis(timeoutMs + 1_000), onTimeout: () => "no answer" })
  )

/**
 * The ops endpoints while waiting: /health 200 (the process is alive and must
 * not be restarted), /ready 503 with the reason. Closed before the real
 * listener takes the port.
 */
const waitingListener = (config: TesseraConfig, reason: () => string) =>
  Effect.acquireRelease(
    Effect.async<{ app: uWS.TemplatedApp; listening: boolean }>((resume) => {
      const app = uWS.App()
      const report = () => ({ ready: false, checks: { storage: reason(), cluster: "not joined" } })
      installOpsApi(app, {
        readiness: { markClusterReady: () => {}, check: Effect.sync(report) },
        run: (effect, onExit) => onExit(Effect.runSyncExit(effect) as Exit.Exit<any, any>)
      })
      installNotFound(app)
      app.listen(config.server.host, config.server.port, (socket) => resume(Effect.succeed({ app, listening: socket !== false })))
    }),
    // Closes the listen socket and the kept-alive connections too: a prober reusing one must reach the real listener.
    ({ app }) => Effect.sync(() => (app as unknown as { close: () => void }).close())
  )

/**
 * A runner whose storage is a shared PostgreSQL waits for it before building
 * anything (boot lock, migrations, the cluster's tables), instead of exiting
 * and being restarted in a loop. It logs the reason, keeps
 * `tessera_dependency_up{dependency="storage"}` at 0 and answers /ready 503
 * meanwhile. SQLite is local: nothing to wait for.
 */
export const layer = (config: TesseraConfig): Layer.Layer<never> =>
  config.storage.backend !== "postgres" ? Layer.empty : Layer.effectDiscard(
    Effect.scoped(Effect.gen(function*() {
      const url = config.storage.postgresUrl
      let reason = "connecting to PostgreSQL"
      const first = yield* Effect.either(probe(url, 3_000))
      if (first._tag === "Right") return
      reason = `waiting for PostgreSQL: ${first.left}`
      Metrics.dependencyUp.storage.set(0)
      yield* Effect.logWarning(`PostgreSQL unreachable, waiting for it: ${first.left}`)
      const listener = yield* waitingListener(config, () => reason)
      if (!listener.listening) yield* Effect.logWarning("ops port busy while waiting for PostgreSQL")
      const started = Date.now()
      let attempts = 1
      yield* probe(url, 3_000).pipe(
        Effect.tapError((message) =>
          Effect.suspend(() => {
            attempts++
            const changed = `waiting for PostgreSQL: ${message}` !== reason
            reason = `waiting for PostgreSQL: ${message}`
            // A line when the reason changes and about every half minute, not one per attempt.
            return changed || attempts % 10 === 0
              ? Effect.logWarning(`PostgreSQL still unreachable after ${attempts} attempts: ${message}`)
              : Effect.logDebug(`PostgreSQL attempt ${attempts}: ${message}`)
          })
        ),
        Effect.retry(Schedule.exponential(Duration.millis(250)).pipe(Schedule.union(Schedule.spaced(Duration.seconds(3))))),
        Effect.orDie // the schedule never ends
      )
      Metrics.dependencyUp.storage.set(1)
      yield* Effect.logInfo(`PostgreSQL answers after ${((Date.now() - started) / 1000).toFixed(1)} s; starting`)
    }))
  )
