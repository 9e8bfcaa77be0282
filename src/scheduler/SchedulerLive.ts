import { type Sharding, Singleton } from "@effect/cluster"
import { Duration, Effect, Layer, Schedule } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { Role } from "../cluster/Roles.js"
import { GameError } from "../protocol/GameError.js"
import { ErrorCode } from "../protocol/Opcodes.js"
import { RegionEntity } from "../region/RegionEntity.js"
import { emptyRegistry, placePlayer, reapEmpty, removePlayer } from "./Placement.js"
import { SCHEDULER_ID, SchedulerEntity } from "./SchedulerEntity.js"

/** Scheduler entity handlers: the instance registry and player placement (pure policy in Placement.ts). */
export const SchedulerEntityLive = SchedulerEntity.toLayer(
  Effect.gen(function*() {
    const config = yield* AppConfig
    const regions = yield* RegionEntity.client
    const registry = emptyRegistry()
    const graceMs = config.scheduler.emptyInstanceGraceSeconds * 1000
    const experiences = new Map(config.experiences.map((e) => [e.id, e]))

    return SchedulerEntity.of({
      Place: ({ payload }) =>
        Effect.gen(function*() {
          const experience = experiences.get(payload.experienceId)
          if (experience === undefined) {
            return yield* new GameError({
              code: ErrorCode.UnknownExperience,
              message: `no experience "${payload.experienceId}" (known: ${[...experiences.keys()].join(", ")})`
            })
          }
          const result = placePlayer(registry, experience, payload.playerId, Date.now())
          if (result._tag === "Full") return yield* new GameError({ code: ErrorCode.WorldFull, message: result.reason })
          if (result.created) yield* Effect.logInfo("instance created").pipe(Effect.annotateLogs({ worldId: result.worldId }))
          return { worldId: result.worldId, regionId: result.worldId, created: result.created }
        }),
      Left: ({ payload }) => Effect.sync(() => removePlayer(registry, payload.playerId, payload.worldId, Date.now())),
      Reap: () =>
        Effect.gen(function*() {
          const reaped = reapEmpty(registry, Date.now(), graceMs)
          yield* Effect.forEach(
            reaped,
            (worldId) =>
              regions(worldId).Shutdown().pipe(
                Effect.timeout(Duration.seconds(5)),
                Effect.tap(() => Effect.logInfo("instance terminated")),
                Effect.catchAllCause((cause) => Effect.logWarning("instance shutdown failed", cause)),
                Effect.annotateLogs({ worldId })
              ),
            { discard: true, concurrency: 8 }
          )
          return reaped
        }),
      ListInstances: () =>
        Effect.sync(() =>
          [...registry.instances.values()].map((i) => ({
            worldId: i.worldId,
            experienceId: i.experienceId,
            players: i.players.size,
            maxPlayers: i.maxPlayers,
            createdAt: i.createdAt,
            emptySince: i.emptySince
          }))
        )
    })
  }),
  // The registry lives in memory: the scheduler entity must not passivate.
  { maxIdleTime: Duration.infinity }
)

/** The cluster singleton driving the scheduler's periodic work (reaping empty instances). */
export const SchedulerLoopLive: Layer.Layer<never, never, Sharding.Sharding> = Singleton.make(
  "SchedulerLoop",
  Effect.gen(function*() {
    const scheduler = (yield* SchedulerEntity.client)(SCHEDULER_ID)
    yield* scheduler.Reap().pipe(
      Effect.timeout(Duration.seconds(10)),
      Effect.catchAllCause((cause) => Effect.logWarning("scheduler reap failed", cause)),
      Effect.repeat(Schedule.spaced(Duration.seconds(1)))
    )
  }),
  { shardGroup: Role.Scheduler }
)
