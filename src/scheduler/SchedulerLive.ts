import { type Sharding, Singleton } from "@effect/cluster"
import { Duration, Effect, Layer, Option, Schedule } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { meshPolicyOf } from "../config/OpenWorld.js"
import * as Metrics from "../observability/Metrics.js"
import { GameLogicProvider } from "../region/GameLogicProvider.js"
import { makeWorldState } from "../region/GameLogic.js"
import { MeshDirectories } from "../region/MeshDirectories.js"
import { regionIdOf } from "../region/mesh/MeshGeometry.js"
import { decide, type RegionLoad } from "../region/mesh/MeshPolicy.js"
import { openWorldId } from "../region/WorldIds.js"
import { PlayerRepository } from "../storage/PlayerRepository.js"
import { emptyRoster, entityIdFor, type OpenWorldRoster, releaseEntityId } from "./OpenWorldPlacement.js"
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
    const directories = yield* MeshDirectories
    const players = yield* PlayerRepository
    const logicProvider = yield* GameLogicProvider
    const rosters = new Map<string, OpenWorldRoster>()
    const openExperiences = config.experiences.filter((e) => e.world === "open")
    for (const e of openExperiences) rosters.set(openWorldId(e.id), emptyRoster(openWorldId(e.id)))
    /** regionId -> its last load report (with the time it came). */
    const loads = new Map<string, RegionLoad & { readonly at: number }>()
    /** regionId -> when it last split or merged (the merge cooldown). */
    const lastChangeAt = new Map<string, number>()
    const LOAD_REPORT_TTL_MS = 3_000

    /** An open world: the player enters where it left (or at its spawn point), in the region the directory says. */
    const placeInOpenWorld = (experience: typeof config.experiences[number], playerId: string) =>
      Effect.gen(function*() {
        const worldId = openWorldId(experience.id)
        const roster = rosters.get(worldId)!
        const cap = experience.maxPlayers
        if (!roster.idsByPlayer.has(playerId) && roster.idsByPlayer.size >= cap) {
          return yield* new GameError({ code: ErrorCode.WorldFull, message: `open world "${worldId}" is full (${cap} players)` })
        }
        const directory = yield* directories.get(worldId).pipe(
          Effect.mapError((error) => new GameError({ code: ErrorCode.Internal, message: `region directory unavailable: ${error.message}` }))
        )
        const stored = yield* players.get(playerId).pipe(Effect.map(Option.getOrUndefined), Effect.orElseSucceed(() => undefined))
        const at = stored?.lastExperienceId === experience.id && stored.position !== null
          ? stored.position
          : logicProvider.forExperience(experience).spawnPoint(playerId, makeWorldState())
        const entityId = entityIdFor(roster, playerId)
        return {
          worldId,
          regionId: regionIdOf(worldId, directory.locate(at)),
          created: false,
          placement: { entityId, x: at.x, y: at.y, z: at.z }
        }
      })

    const meshTick = Effect.gen(function*() {
      const now = Date.now()
      for (const [id, load] of loads) if (now - load.at > LOAD_REPORT_TTL_MS) loads.delete(id)
      const changes: Array<string> = []
      for (const experience of openExperiences) {
        const worldId = openWorldId(experience.id)
        const directory = yield* directories.get(worldId)
        const decisions = decide(directory, loads, meshPolicyOf(experience), lastChangeAt, now)
        if (decisions.length === 0) continue
        for (const decision of decisions) {
          if (decision._tag === "Split") {
            const parentId = regionIdOf(worldId, decision.key)
            const children = directory.split(decision.key)
            lastChangeAt.set(parentId, now)
            for (const child of children) lastChangeAt.set(regionIdOf(worldId, child), now)
            Metrics.meshSplitsTotal.inc()
            changes.push(`split ${parentId}: ${decision.reason}`)
          } else {
            const parentId = regionIdOf(worldId, decision.parent)
            const children = directory.merge(decision.parent)
            lastChangeAt.set(parentId, now)
            for (const child of children) lastChangeAt.set(regionIdOf(worldId, child), now)
            Metrics.meshMergesTotal.inc()
            changes.push(`merge into ${parentId}: ${decision.reason}`)
          }
        }
        yield* directories.publish(directory)
        yield* Effect.logInfo(`region directory v${directory.version}: ${changes.join("; ")}`).pipe(Effect.annotateLogs({ worldId }))
      }
      return changes
    }).pipe(Effect.catchAll((error) => Effect.as(Effect.logWarning("mesh tick failed", error), [] as Array<string>)))

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
          if (experience.world === "open") return yield* placeInOpenWorld(experience, payload.playerId)
          const result = placePlayer(registry, experience, payload.playerId, Date.now())
          if (result._tag === "Full") return yield* new GameError({ code: ErrorCode.WorldFull, message: result.reason })
          if (result.created) yield* Effect.logInfo("instance created").pipe(Effect.annotateLogs({ worldId: result.worldId }))
          return { worldId: result.worldId, regionId: result.worldId, created: result.created }
        }),
      Left: ({ payload }) =>
        Effect.sync(() => {
          const roster = rosters.get(payload.worldId)
          if (roster !== undefined) return releaseEntityId(roster, payload.playerId)
          removePlayer(registry, payload.playerId, payload.worldId, Date.now())
        }),
      ReportLoad: ({ payload }) => Effect.sync(() => void loads.set(payload.regionId, { ...payload, at: Date.now() })),
      MeshTick: () => meshTick,
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
      Effect.zipRight(
        scheduler.MeshTick().pipe(
          Effect.timeout(Duration.seconds(10)),
          Effect.catchAllCause((cause) => Effect.logWarning("scheduler mesh tick failed", cause))
        )
      ),
      Effect.repeat(Schedule.spaced(Duration.seconds(1)))
    )
  }),
  { shardGroup: Role.Scheduler }
)
