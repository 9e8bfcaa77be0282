import { SingleRunner } from "@effect/cluster"
import { Duration, Effect, Layer } from "effect"
import * as AppConfig from "../config/AppConfig.js"
import type { TesseraConfig } from "../config/TesseraConfig.js"
import { ChatLive } from "../experts/chat/ChatLive.js"
import { ChatRateLimit } from "../experts/chat/ChatRateLimit.js"
import { Auth } from "../gateway/Auth.js"
import { ClientDelivery } from "../gateway/ClientDelivery.js"
import * as Gateway from "../gateway/Gateway.js"
import { GameLogicProvider } from "../region/GameLogicProvider.js"
import { LocalRegions } from "../region/LocalRegions.js"
import { RegionLive } from "../region/RegionLive.js"
import { SchedulerEntityLive, SchedulerLoopLive } from "../scheduler/SchedulerLive.js"
import { SessionLive } from "../session/SessionLive.js"
import * as ChatRepository from "../storage/ChatRepository.js"
import * as Database from "../storage/Database.js"
import * as PlayerRepository from "../storage/PlayerRepository.js"
import * as PlayerStateWriter from "../storage/PlayerStateWriter.js"
import { Readiness } from "./Readiness.js"
import { assignedShardGroups, availableShardGroups, type Role } from "./Roles.js"

/**
 * The one place where Tessera's layers are composed. Build order (and so the
 * reverse shutdown order): storage -> cluster runner -> entities -> gateway.
 * On shutdown the gateway closes clients first, then entities stop (regions
 * hand their last state to the writer), then the writer's final flush runs.
 */
export const makeServerLayer = (config: TesseraConfig, roles: ReadonlySet<Role>) => {
  const configLayer = AppConfig.layer(config)

  const storage = Layer.mergeAll(PlayerRepository.layer, ChatRepository.layer, Readiness.layer).pipe(
    Layer.provideMerge(Database.layerSqlite({ dataDir: config.storage.dataDir }))
  )
  const base = Layer.mergeAll(
    PlayerStateWriter.layer({ intervalMs: config.storage.writeBehindMs }),
    LocalRegions.layer,
    ClientDelivery.layerLocal,
    GameLogicProvider.layerKinematic,
    ChatRateLimit.layerMemory,
    Auth.layer
  ).pipe(Layer.provideMerge(storage), Layer.provideMerge(configLayer))

  const cluster = SingleRunner.layer({
    runnerStorage: "sql",
    shardingConfig: {
      availableShardGroups: [...availableShardGroups],
      assignedShardGroups: [...assignedShardGroups(roles)],
      shardsPerGroup: config.cluster.shardsPerGroup,
      simulateRemoteSerialization: config.cluster.simulateRemoteSerialization,
      entityMaxIdleTime: Duration.seconds(config.cluster.entityMaxIdleSeconds),
      // One node: the shards are ours; refresh quickly so startup is fast.
      refreshAssignmentsInterval: Duration.millis(500),
      entityMessagePollInterval: Duration.seconds(1),
      entityTerminationTimeout: Duration.seconds(5)
    }
  }).pipe(Layer.provideMerge(base))

  // Every entity is registered in every binary; it activates only where its group's shards live.
  const entities = Layer.mergeAll(RegionLive, SessionLive, ChatLive, SchedulerEntityLive, SchedulerLoopLive).pipe(
    Layer.provideMerge(cluster)
  )

  const withGateway = roles.has("gateway") ? Gateway.layer.pipe(Layer.provideMerge(entities)) : entities

  // Ready once everything above is built.
  return Layer.effectDiscard(Effect.flatMap(Readiness, (r) => Effect.sync(() => r.markClusterReady(true)))).pipe(
    Layer.provideMerge(withGateway)
  )
}
