import {
  MessageStorage,
  RunnerAddress,
  RunnerHealth,
  Runners,
  type RunnerStorage,
  Sharding,
  ShardingConfig,
  SocketRunner,
  SqlMessageStorage,
  SqlRunnerStorage
} from "@effect/cluster"
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import * as NodeSocketServer from "@effect/platform-node/NodeSocketServer"
import { Socket } from "@effect/platform/Socket"
import type { SocketServer } from "@effect/platform/SocketServer"
import { RpcClient, RpcSerialization } from "@effect/rpc"
import type { SqlClient } from "@effect/sql"
import { Duration, Effect, Layer, Option } from "effect"
import type { ConfigError } from "effect/ConfigError"
import type { TesseraConfig } from "../config/TesseraConfig.js"
import { assignedShardGroups, availableShardGroups, type Role } from "./Roles.js"

/** The sharding settings every runner derives from the one config (tuned for fast failover). */
export const shardingConfigOf = (
  config: TesseraConfig,
  roles: ReadonlySet<Role>
): Partial<ShardingConfig.ShardingConfig["Type"]> => {
  const c = config.cluster
  return {
    runnerAddress: Option.some(RunnerAddress.make(c.runnerHost, c.runnerPort)),
    runnerListenAddress: Option.some(RunnerAddress.make(c.runnerListenHost, c.runnerPort)),
    availableShardGroups: [...availableShardGroups],
    assignedShardGroups: [...assignedShardGroups(roles)],
    shardsPerGroup: c.shardsPerGroup,
    simulateRemoteSerialization: c.simulateRemoteSerialization,
    entityMaxIdleTime: Duration.seconds(c.entityMaxIdleSeconds),
    shardLockRefreshInterval: Duration.millis(c.shardLockRefreshMs),
    shardLockExpiration: Duration.millis(c.shardLockExpirationMs),
    refreshAssignmentsInterval: Duration.millis(c.refreshAssignmentsMs),
    runnerHealthCheckInterval: Duration.millis(c.runnerHealthCheckMs),
    entityMessagePollInterval: Duration.millis(c.entityMessagePollMs),
    entityTerminationTimeout: Duration.seconds(5)
  }
}

/**
 * Runner-to-runner sockets with TCP_NODELAY: Effect's Node sockets leave
 * Nagle on, and entity replies then crawl (CLUSTER-NOTES pitfall 2).
 */
const layerClientProtocol: Layer.Layer<Runners.RpcClientProtocol, never, RpcSerialization.RpcSerialization> = Layer
  .effect(
    Runners.RpcClientProtocol,
    Effect.gen(function*() {
      const serialization = yield* RpcSerialization.RpcSerialization
      return Effect.fnUntraced(function*(address: RunnerAddress.RunnerAddress) {
        const socket = yield* NodeSocket.makeNet({
          openTimeout: 1000,
          timeout: 5500,
          host: address.host,
          port: address.port,
          noDelay: true
        })
        return yield* RpcClient.makeProtocolSocket().pipe(
          Effect.provideService(Socket, socket),
          Effect.provideService(RpcSerialization.RpcSerialization, serialization)
        )
      }, Effect.orDie)
    })
  )

const layerSocketServer = (config: TesseraConfig["cluster"]): Layer.Layer<SocketServer, unknown> =>
  NodeSocketServer.layer({ host: config.runnerListenHost, port: config.runnerPort, noDelay: true })

/**
 * The cluster runner of this process. `single`: one runner, SQL runner and
 * message storage (one node). `socket`: a runner that serves and dials other
 * runners over TCP, with runner and message storage in the shared database
 * (whose tables it creates under the BootLock).
 *
 * Both also expose their RunnerStorage: the scheduler reads the registered
 * runners from it (a drain of an address no runner has is refused).
 * `single` is `SingleRunner.layer({ runnerStorage: "sql" })` with the
 * runner storage merged into the output.
 */
export const layer = (
  config: TesseraConfig,
  roles: ReadonlySet<Role>
): Layer.Layer<
  Sharding.Sharding | Runners.Runners | MessageStorage.MessageStorage | RunnerStorage.RunnerStorage,
  ConfigError | unknown,
  SqlClient.SqlClient
> => {
  const shardingConfig = shardingConfigOf(config, roles)
  if (config.cluster.transport === "single") {
    return Sharding.layer.pipe(
      Layer.provideMerge(Runners.layerNoop),
      Layer.provideMerge(SqlMessageStorage.layer),
      Layer.provideMerge(Layer.orDie(SqlRunnerStorage.layer)),
      Layer.provide(RunnerHealth.layerNoop),
      Layer.provide(ShardingConfig.layerFromEnv(shardingConfig))
    )
  }
  return SocketRunner.layer.pipe(
    Layer.provide([layerSocketServer(config.cluster), layerClientProtocol]),
    Layer.provide(RunnerHealth.layerPing.pipe(Layer.provide(Runners.layerRpc), Layer.provide(layerClientProtocol))),
    Layer.provideMerge(Layer.orDie(SqlMessageStorage.layer)),
    Layer.provideMerge(Layer.orDie(SqlRunnerStorage.layer)),
    Layer.provide(ShardingConfig.layer(shardingConfig)),
    Layer.provide(RpcSerialization.layerMsgPack)
  )
}
