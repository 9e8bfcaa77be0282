import { Effect, Layer } from "effect"
import * as AppConfig from "../config/AppConfig.js"
import type { TesseraConfig } from "../config/TesseraConfig.js"
import * as ControlEvents from "../control/ControlEvents.js"
import * as AuditLogRepository from "../storage/AuditLogRepository.js"
import { ChatLive } from "../experts/chat/ChatLive.js"
import { ChatRateLimit } from "../experts/chat/ChatRateLimit.js"
import { MatchmakerLive } from "../experts/matchmaking/MatchmakerLive.js"
import { Auth } from "../gateway/Auth.js"
import { ClientDelivery } from "../gateway/ClientDelivery.js"
import { IpRateLimits } from "../gateway/IpRateLimits.js"
import * as ClientDeliveryRedis from "../gateway/ClientDeliveryRedis.js"
import { TopicSubscriptions } from "../gateway/ClientDeliveryRedis.js"
import * as Presence from "../storage/redis/Presence.js"
import * as RedisConnection from "../storage/redis/RedisConnection.js"
import * as Gateway from "../gateway/Gateway.js"
import { GameLogicProvider } from "../region/GameLogicProvider.js"
import { LocalRegions } from "../region/LocalRegions.js"
import { RegionInputBus } from "../region/RegionInputBus.js"
import { RegionLive } from "../region/RegionLive.js"
import { SchedulerEntityLive, SchedulerLoopLive } from "../scheduler/SchedulerLive.js"
import { SessionLive } from "../session/SessionLive.js"
import * as SessionStore from "../session/SessionStore.js"
import * as ChatRepository from "../storage/ChatRepository.js"
import * as Database from "../storage/Database.js"
import * as PlayerRepository from "../storage/PlayerRepository.js"
import * as PlayerStateWriter from "../storage/PlayerStateWriter.js"
import { BootLock } from "../storage/BootLock.js"
import * as MeshDirectoryRepository from "../storage/MeshDirectoryRepository.js"
import * as SchedulerStateRepository from "../storage/SchedulerStateRepository.js"
import * as TransferLog from "../storage/TransferLog.js"
import * as WorldDeltaRepository from "../storage/WorldDeltaRepository.js"
import { MeshDirectories } from "../region/MeshDirectories.js"
import { Readiness } from "./Readiness.js"
import * as RunnerDrainWatcher from "./RunnerDrainWatcher.js"
import * as RunnerHeartbeat from "./RunnerHeartbeat.js"
import type { Role } from "./Roles.js"
import * as RunnerLayer from "./RunnerLayer.js"
import * as StorageWait from "./StorageWait.js"

/**
 * The one place where Tessera's layers are composed. Build order (and so the
 * reverse shutdown order): storage -> cluster runner -> entities -> gateway.
 * On shutdown the gateway closes clients first, then entities stop (regions
 * hand their last state to the writer), then the writer's final flush runs.
 */
export const makeServerLayer = (config: TesseraConfig, roles: ReadonlySet<Role>) => {
  const configLayer = AppConfig.layer(config)

  // One node: in-process delivery, presence and limits. Several nodes: the same services over Redis.
  const redis = RedisConnection.layer({ url: config.redis.url, prefix: config.redis.prefix })
  const fanOut = config.redis.enabled
    ? Layer.mergeAll(
      ClientDeliveryRedis.layerRedis,
      Presence.layerRedis(),
      ChatRateLimit.layerRedis,
      IpRateLimits.layerRedis,
      RegionInputBus.layerRedis,
      SessionStore.layerRedis({
        ttlMs: SessionStore.defaultTtlMs(config.cluster.entityMaxIdleSeconds, config.session.resumeWindowSeconds)
      })
    ).pipe(Layer.provideMerge(redis))
    : Layer.mergeAll(
      ClientDelivery.layerLocal,
      TopicSubscriptions.layerLocal,
      Presence.layerMemory,
      ChatRateLimit.layerMemory,
      IpRateLimits.layerMemory,
      RegionInputBus.layerNone,
      SessionStore.layerMemory
    )
  const readiness = config.redis.enabled ? Readiness.layerWithRedis.pipe(Layer.provide(redis)) : Readiness.layer

  // Runners sharing PostgreSQL create their tables one at a time; the lock is let go once built.
  // A shared PostgreSQL that is down at boot is waited for (with /ready 503), not a crash loop.
  const bootLock = config.storage.backend === "postgres"
    ? BootLock.layerPostgres(config.storage.postgresUrl).pipe(Layer.provide(StorageWait.layer(config)))
    : BootLock.layerNone
  const storage = Layer.mergeAll(PlayerRepository.layer, ChatRepository.layer, SchedulerStateRepository.layer, readiness).pipe(
    Layer.provideMerge(Database.layer(config.storage)),
    Layer.provideMerge(bootLock)
  )
  // The control plane's event bus, one per process: the scheduler publishes to it (and answers the
  // gateways' admin streams from it); audited events are written behind to the audit log.
  const controlEvents = ControlEvents.layer({ historySize: config.admin.eventHistory }).pipe(
    Layer.provideMerge(AuditLogRepository.layer)
  )
  const base = Layer.mergeAll(
    PlayerStateWriter.layer({ intervalMs: config.storage.writeBehindMs }),
    controlEvents,
    TransferLog.layer({ intervalMs: config.storage.writeBehindMs }),
    WorldDeltaRepository.layer,
    MeshDirectories.layer.pipe(Layer.provide(MeshDirectoryRepository.layer)),
    LocalRegions.layer,
    fanOut,
    GameLogicProvider.layerKinematic,
    Auth.layer
  ).pipe(Layer.provideMerge(storage), Layer.provideMerge(configLayer))

  const cluster = RunnerLayer.layer(config, roles).pipe(Layer.provideMerge(base))

  // Every entity is registered in every binary; it activates only where its group's shards live.
  const entities = Layer.mergeAll(RegionLive, SessionLive, ChatLive, MatchmakerLive, SchedulerEntityLive, SchedulerLoopLive).pipe(
    Layer.provideMerge(cluster)
  )

  // Every runner listens for /health, /ready and /metrics; only gateways serve clients.
  const withGateway = Gateway.layer({ clients: roles.has("gateway") }).pipe(Layer.provideMerge(entities))

  // Every runner watches for an admin's drain of its own address (the cluster's runner id, host:port)
  // and then shuts down as on SIGTERM (see RunnerDrainWatcher).
  const runnerAddress = `${config.cluster.runnerHost}:${config.cluster.runnerPort}`
  const withDrainWatcher = RunnerDrainWatcher.layer(runnerAddress).pipe(Layer.provideMerge(withGateway))
  // Every runner heartbeats to the scheduler (the runners' health checks; see RunnerHeartbeat).
  const withHeartbeat = RunnerHeartbeat.layer(runnerAddress, [...roles]).pipe(Layer.provideMerge(withDrainWatcher))

  // Ready once everything above is built; the next runner may boot.
  return Layer.effectDiscard(
    Effect.gen(function*() {
      yield* (yield* BootLock).release
      ;(yield* Readiness).markClusterReady(true)
    })
  ).pipe(Layer.provideMerge(withHeartbeat))
}
