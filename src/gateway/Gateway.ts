import { Context, Duration, Effect, type Exit, Layer, Runtime, Schedule } from "effect"
import type { Sharding } from "@effect/cluster"
import uWS from "uWebSockets.js"
import { Readiness } from "../cluster/Readiness.js"
import { AppConfig } from "../config/AppConfig.js"
import { ChatEntity } from "../experts/chat/ChatEntity.js"
import { MatchmakerEntity } from "../experts/matchmaking/MatchmakerEntity.js"
import { CloseCode } from "../protocol/Opcodes.js"
import { LocalRegions } from "../region/LocalRegions.js"
import { RegionEntity } from "../region/RegionEntity.js"
import { RegionInputBus } from "../region/RegionInputBus.js"
import { SessionEntity } from "../session/SessionEntity.js"
import { PlayerRepository } from "../storage/PlayerRepository.js"
import { Auth } from "./Auth.js"
import { ClientDelivery } from "./ClientDelivery.js"
import { TopicSubscriptions } from "./ClientDeliveryRedis.js"
import { Presence } from "../storage/redis/Presence.js"
import { installClientApi, installNotFound, installOpsApi } from "./HttpApi.js"
import { InputRouter } from "./InputRouter.js"
import { IpRateLimits } from "./IpRateLimits.js"
import { WebSocketHandler } from "./WebSocketHandler.js"
import { installAuthorityAuditApi } from "./AuthorityAuditApi.js"
import { installAdminApi } from "./AdminApi.js"
import { ControlEvents } from "../control/ControlEvents.js"
import type { AuditLogRepository } from "../storage/AuditLogRepository.js"
import { MeshDirectories } from "../region/MeshDirectories.js"

export class GatewayListenError extends Error {
  override readonly name = "GatewayListenError"
}

/** The running gateway: where it listens (port 0 in the config picks a free one). */
export class Gateway extends Context.Tag("tessera/Gateway")<Gateway, {
  readonly gatewayId: string
  readonly port: number
  readonly connections: () => number
}>() {}

export const SERVER_VERSION = "0.1.0"

/** How often a gateway renews its players' entity leases (well inside the lease margin). */
const LEASE_RENEW_SECONDS = 5

/**
 * The uWebSockets.js HTTP listener of every runner. Every runner serves the
 * operations endpoints (/health, /ready, /metrics); a runner with the gateway
 * role also serves clients (WebSocket + auth) and is the local end of client
 * delivery. Scoped: on release it stops accepting, closes every client with
 * the shutdown code and detaches, before the cluster below it stops.
 */
export const layer = (options: { readonly clients: boolean }): Layer.Layer<
  Gateway,
  GatewayListenError,
  | AppConfig
  | Auth
  | PlayerRepository
  | Readiness
  | ClientDelivery
  | TopicSubscriptions
  | Presence
  | LocalRegions
  | RegionInputBus
  | IpRateLimits
  | MeshDirectories
  | ControlEvents
  | AuditLogRepository
  | Sharding.Sharding
> =>
  Layer.scoped(
    Gateway,
    Effect.gen(function*() {
      const config = yield* AppConfig
      const readiness = yield* Readiness
      const runtime = yield* Effect.runtime<never>()
      const runCallback = Runtime.runCallback(runtime)
      const run = <A, E>(effect: Effect.Effect<A, E>, onExit: (exit: Exit.Exit<A, E>) => void) => {
        runCallback(effect, { onExit })
      }
      const gatewayId = `gw-${process.pid}-${Math.random().toString(36).slice(2, 8)}`
      const app = uWS.App()
      installOpsApi(app, { readiness, run })
      const clients = options.clients ? yield* installClients(app, gatewayId, run) : undefined
      installNotFound(app)

      const listenSocket = yield* Effect.async<uWS.us_listen_socket, GatewayListenError>((resume) => {
        app.listen(config.server.host, config.server.port, (socket) => {
          if (socket === false) {
            resume(Effect.fail(new GatewayListenError(`cannot listen on ${config.server.host}:${config.server.port}`)))
          } else {
            resume(Effect.succeed(socket))
          }
        })
      })
      const port = uWS.us_socket_local_port(listenSocket as unknown as uWS.us_socket)
      yield* Effect.addFinalizer(() =>
        Effect.gen(function*() {
          uWS.us_listen_socket_close(listenSocket)
          if (clients !== undefined) yield* clients.close
          yield* Effect.logInfo("listener closed")
        })
      )
      yield* Effect.logInfo(`listening on ${config.server.host}:${port}${options.clients ? " (clients + ops)" : " (ops only)"}`)
      return { gatewayId, port, connections: () => clients?.ws.connectionCount ?? 0 }
    }).pipe(Effect.annotateLogs({ role: options.clients ? "gateway" : "runner" }))
  )

/** The client side: WebSocket, guest auth, and this process's end of client delivery. */
const installClients = (
  app: uWS.TemplatedApp,
  gatewayId: string,
  run: <A, E>(effect: Effect.Effect<A, E>, onExit: (exit: Exit.Exit<A, E>) => void) => void
) =>
  Effect.gen(function*() {
    const config = yield* AppConfig
    const auth = yield* Auth
    const players = yield* PlayerRepository
    const readiness = yield* Readiness
    const delivery = yield* ClientDelivery
    const localRegions = yield* LocalRegions
    const topics = yield* TopicSubscriptions
    const presence = yield* Presence
    const runFork = Runtime.runFork(yield* Effect.runtime<never>())
    let accepting = true

    const inputs = new InputRouter(
      gatewayId,
      localRegions,
      yield* RegionEntity.client,
      (e) => void runFork(e),
      yield* RegionInputBus
    )
    const ipLimits = yield* IpRateLimits
    const ws = new WebSocketHandler({
      config,
      serverVersion: SERVER_VERSION,
      gatewayId,
      auth,
      sessions: yield* SessionEntity.client,
      chat: yield* ChatEntity.client,
      matchmakers: yield* MatchmakerEntity.client,
      controlEvents: yield* ControlEvents,
      inputs,
      ipLimiter: ipLimits.upgrade,
      run,
      isAccepting: () => accepting,
      topics,
      presence
    })
    installClientApi(app, {
      config,
      auth,
      players,
      readiness,
      authLimiter: ipLimits.auth,
      presence,
      run
    })
    if (config.server.dev) {
      installAuthorityAuditApi(app, {
        openExperiences: config.experiences.filter((e) => e.world === "open").map((e) => e.id),
        directories: yield* MeshDirectories,
        regions: yield* RegionEntity.client,
        run
      })
    }
    yield* installAdminApi(app, run)
    ws.install(app)
    ws.attachApp(app)
    delivery.attach(ws)

    // Remote input batches go out once per gateway tick; lagging clients are swept once a second.
    const tickMs = Math.floor(1000 / Math.max(...config.experiences.map((e) => e.tickRate), 20))
    yield* Effect.forkScoped(
      Effect.sync(() => inputs.flush()).pipe(Effect.repeat(Schedule.spaced(Duration.millis(tickMs))))
    )
    yield* Effect.forkScoped(
      Effect.sync(() => ws.sweepLagging(Date.now())).pipe(Effect.repeat(Schedule.spaced(Duration.seconds(1))))
    )
    // Regions expire entities nobody vouches for (a dead gateway's players, unclaimed reloads).
    yield* Effect.forkScoped(
      Effect.sync(() => inputs.renewLeases(ws.entitiesByRegion())).pipe(
        Effect.repeat(Schedule.spaced(Duration.seconds(LEASE_RENEW_SECONDS)))
      )
    )
    const close = Effect.sync(() => {
      accepting = false
      ws.closeAll(CloseCode.ServerShutdown, "server shutting down")
      delivery.detach(ws)
    })
    return { ws, close }
  })
