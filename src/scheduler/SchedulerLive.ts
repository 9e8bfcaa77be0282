import { type Sharding, Singleton } from "@effect/cluster"
import { Duration, Effect, Layer, Option, Schedule } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import type { Actor, ControlEvent } from "../control/ControlEvent.js"
import { ControlError } from "../control/ControlError.js"
import { ControlEvents } from "../control/ControlEvents.js"
import { processOrigin } from "../control/ControlOrigin.js"
import type { Location } from "../protocol/Location.js"
import { SessionEntity } from "../session/SessionEntity.js"
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
import {
  emptyRegistry,
  type Instance,
  instanceWithRoom,
  movePlayer,
  placePlayer,
  reapEmpty,
  removeInstance,
  removePlayer,
  spawnInstance
} from "./Placement.js"
import { type DrainingRunner, type InstanceInfo, type PlayerMove, SCHEDULER_ID, SchedulerEntity } from "./SchedulerEntity.js"

/** Every call the scheduler makes to another entity is bounded (a group no runner hosts retries forever). */
const CALL_TIMEOUT = Duration.seconds(5)
/** Runner ids as the cluster writes them (host:port), generously. */
const RUNNER_PATTERN = /^[A-Za-z0-9_.:[\]-]{1,256}$/

const infoOf = (i: Instance): InstanceInfo => ({
  worldId: i.worldId,
  experienceId: i.experienceId,
  players: i.players.size,
  maxPlayers: i.maxPlayers,
  createdAt: i.createdAt,
  emptySince: i.emptySince
})

const refuse = (code: ControlError["code"], message: string) => new ControlError({ code, message })

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
    const events = yield* ControlEvents
    const sessions = yield* SessionEntity.client
    const maxInstances = config.scheduler.maxInstances
    /** Runners an admin asked to drain (advisory; see DrainRunner). */
    const draining = new Map<string, DrainingRunner>()
    const publish = (actor: Actor, event: ControlEvent) => Effect.asVoid(events.publish(actor, event))
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

    const experienceOfInstance = (worldId: string): string => {
      const dot = worldId.lastIndexOf(".")
      return dot < 0 ? worldId : worldId.slice(0, dot)
    }
    const unknownExperience = (id: string) => `no experience "${id}" (known: ${[...experiences.keys()].join(", ")})`
    const noInstance = (worldId: string): [ControlError["code"], string] =>
      rosters.has(worldId)
        ? ["bad_request", `"${worldId}" is an open world, not an instance`]
        : ["not_found", `no instance "${worldId}"`]

    const shutdownRegion = (worldId: string) =>
      regions(worldId).Shutdown().pipe(
        Effect.timeout(CALL_TIMEOUT),
        Effect.tap(() => Effect.logInfo("instance terminated")),
        Effect.catchAllCause((cause) => Effect.logWarning("instance shutdown failed", cause)),
        Effect.annotateLogs({ worldId })
      )

    /** Tells the player's session it was moved; never fails ("failed" when the session did not answer). */
    const relocate = (playerId: string, fromWorld: string, to: Location | null, reason: string) =>
      sessions(playerId).Relocate({ fromWorld, to, reason }).pipe(
        Effect.timeout(CALL_TIMEOUT),
        Effect.catchAllCause((cause) =>
          Effect.as(Effect.logWarning("session did not take a relocation", cause), "failed" as const)
        ),
        Effect.annotateLogs({ playerId, worldId: fromWorld })
      )

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
          const before = registry.placements.get(payload.playerId)
          const result = placePlayer(registry, experience, payload.playerId, Date.now(), maxInstances)
          if (result._tag === "Full") return yield* new GameError({ code: ErrorCode.WorldFull, message: result.reason })
          if (result.created) {
            yield* Effect.logInfo("instance created").pipe(Effect.annotateLogs({ worldId: result.worldId }))
            yield* publish("scheduler", {
              _tag: "ServerSpawned",
              worldId: result.worldId,
              experienceId: experience.id,
              reason: "placement: no instance with room"
            })
          }
          if (before !== result.worldId) {
            yield* publish("scheduler", {
              _tag: "PlayerRouted",
              playerId: payload.playerId,
              ...(before === undefined ? {} : { fromWorld: before }),
              toWorld: result.worldId,
              by: "scheduler"
            })
          }
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
              shutdownRegion(worldId).pipe(
                Effect.zipRight(publish("scheduler", {
                  _tag: "ServerTerminated",
                  worldId,
                  experienceId: experienceOfInstance(worldId),
                  reason: `empty for ${config.scheduler.emptyInstanceGraceSeconds} s`
                }))
              ),
            { discard: true, concurrency: 8 }
          )
          return reaped
        }),
      ListInstances: () => Effect.sync(() => [...registry.instances.values()].map(infoOf)),
      Spawn: ({ payload }) =>
        Effect.gen(function*() {
          const experience = experiences.get(payload.experienceId)
          if (experience === undefined) return yield* refuse("not_found", unknownExperience(payload.experienceId))
          if (experience.world === "open") {
            return yield* refuse("bad_request", `experience "${experience.id}" is an open world: it has regions, not instances`)
          }
          const result = spawnInstance(registry, experience, Date.now(), maxInstances)
          if (result._tag === "Full") return yield* refuse("conflict", result.reason)
          const worldId = result.instance.worldId
          // Start its region now, so the instance is running when it is listed.
          yield* regions(worldId).Info().pipe(
            Effect.timeout(CALL_TIMEOUT),
            Effect.catchAllCause((cause) => Effect.logWarning("spawned instance's region did not start", cause))
          )
          yield* Effect.logInfo("instance spawned").pipe(Effect.annotateLogs({ worldId, actor: payload.actor }))
          yield* publish(payload.actor, { _tag: "ServerSpawned", worldId, experienceId: experience.id, reason: "admin spawn" })
          return infoOf(result.instance)
        }),
      Terminate: ({ payload }) =>
        Effect.gen(function*() {
          const { worldId, reason, actor } = payload
          const instance = registry.instances.get(worldId)
          if (instance === undefined) return yield* refuse(...noInstance(worldId))
          const moveTo = payload.moveTo === "" ? "auto" : payload.moveTo
          if (moveTo !== "auto" && moveTo !== "none") {
            const target = registry.instances.get(moveTo)
            if (target === undefined) return yield* refuse(...noInstance(moveTo))
            if (target.worldId === worldId) return yield* refuse("bad_request", "move must name another instance than the one terminated")
            if (target.experienceId !== instance.experienceId) {
              return yield* refuse("bad_request", `instance "${moveTo}" is of experience "${target.experienceId}", not "${instance.experienceId}"`)
            }
            if (target.players.size + instance.players.size > target.maxPlayers) {
              return yield* refuse(
                "conflict",
                `instance "${moveTo}" has room for ${target.maxPlayers - target.players.size} players, not ${instance.players.size}`
              )
            }
          }
          const now = Date.now()
          removeInstance(registry, worldId)
          const plan: Array<{ readonly playerId: string; readonly to: string | null }> = []
          for (const playerId of [...instance.players].sort()) {
            const target = moveTo === "none"
              ? undefined
              : moveTo === "auto"
              ? instanceWithRoom(registry, instance.experienceId)
              : registry.instances.get(moveTo)
            const moved = target !== undefined && movePlayer(registry, playerId, target.worldId, now)._tag === "Moved"
            plan.push({ playerId, to: moved ? target.worldId : null })
          }
          const moved = yield* Effect.forEach(
            plan,
            ({ playerId, to }): Effect.Effect<PlayerMove> =>
              relocate(
                playerId,
                worldId,
                to === null ? null : { experienceId: instance.experienceId, worldId: to, regionId: to },
                to === null
                  ? `instance ${worldId} was terminated: ${reason}`
                  : `instance ${worldId} was terminated (${reason}); moved to ${to}: join ${instance.experienceId} again`
              ).pipe(
                Effect.map((outcome) => ({ playerId, toWorld: to, told: outcome === "told" })),
                Effect.tap(() =>
                  to === null ? Effect.void : publish(actor, { _tag: "PlayerRouted", playerId, fromWorld: worldId, toWorld: to, by: actor })
                )
              ),
            { concurrency: 8 }
          )
          yield* shutdownRegion(worldId)
          yield* publish(actor, { _tag: "ServerTerminated", worldId, experienceId: instance.experienceId, reason })
          return { worldId, experienceId: instance.experienceId, moved }
        }),
      Route: ({ payload }) =>
        Effect.gen(function*() {
          const { playerId, worldId, actor } = payload
          const target = registry.instances.get(worldId)
          if (target === undefined) return yield* refuse(...noInstance(worldId))
          const from = registry.placements.get(playerId)
          const source = from === undefined ? undefined : registry.instances.get(from)
          if (from === undefined || source === undefined) {
            return yield* refuse("not_found", `player "${playerId}" is not in any instance (not connected, or not in a world)`)
          }
          if (from === worldId) return yield* refuse("conflict", `player "${playerId}" is already in "${worldId}"`)
          if (source.experienceId !== target.experienceId) {
            return yield* refuse(
              "bad_request",
              `player "${playerId}" plays "${source.experienceId}"; instance "${worldId}" is of "${target.experienceId}"`
            )
          }
          const result = movePlayer(registry, playerId, worldId, Date.now())
          if (result._tag === "Refused") return yield* refuse(result.code, result.reason)
          const outcome = yield* relocate(
            playerId,
            from,
            { experienceId: target.experienceId, worldId, regionId: worldId },
            `moved to ${worldId} by an admin: join ${target.experienceId} again`
          )
          if (outcome === "stale" || outcome === "failed") {
            // Undo: the session did not take the move.
            if (registry.instances.has(from)) movePlayer(registry, playerId, from, Date.now())
            else removePlayer(registry, playerId, worldId, Date.now())
            return yield* outcome === "stale"
              ? refuse("conflict", `player "${playerId}" changed worlds meanwhile; nothing was moved`)
              : refuse("unavailable", `player "${playerId}"'s session did not answer; nothing was moved`)
          }
          yield* publish(actor, { _tag: "PlayerRouted", playerId, fromWorld: from, toWorld: worldId, by: actor })
          return { playerId, fromWorld: from, toWorld: worldId, told: outcome === "told" }
        }),
      ListServers: ({ payload }) =>
        Effect.gen(function*() {
          const wanted = payload.experienceId
          const instances = [...registry.instances.values()]
            .filter((i) => wanted === undefined || i.experienceId === wanted)
            .map(infoOf)
          const now = Date.now()
          const regionInfos: Array<{ worldId: string; experienceId: string; regionId: string; players: number }> = []
          for (const experience of openExperiences) {
            if (wanted !== undefined && experience.id !== wanted) continue
            const worldId = openWorldId(experience.id)
            const directory = yield* directories.get(worldId).pipe(Effect.option)
            if (Option.isNone(directory)) continue
            for (const regionId of directory.value.leafIds()) {
              const load = loads.get(regionId)
              const players = load !== undefined && now - load.at <= LOAD_REPORT_TTL_MS ? load.players : 0
              regionInfos.push({ worldId, experienceId: experience.id, regionId, players })
            }
          }
          return { instances, regions: regionInfos, drainingRunners: [...draining.values()] }
        }),
      ListSessions: ({ payload }) =>
        Effect.gen(function*() {
          const instance = registry.instances.get(payload.worldId)
          if (instance !== undefined) {
            return { worldId: instance.worldId, experienceId: instance.experienceId, players: [...instance.players].sort() }
          }
          const roster = rosters.get(payload.worldId)
          if (roster !== undefined) {
            const experienceId = openExperiences.find((e) => openWorldId(e.id) === payload.worldId)?.id ?? ""
            return { worldId: payload.worldId, experienceId, players: [...roster.idsByPlayer.keys()].sort() }
          }
          return yield* refuse(...noInstance(payload.worldId))
        }),
      DrainRunner: ({ payload }) =>
        Effect.gen(function*() {
          if (!RUNNER_PATTERN.test(payload.runner)) {
            return yield* refuse("bad_request", "runner must be a runner address such as 10.0.0.5:34431 (1..256 of A-Z a-z 0-9 _ . : [ ] -)")
          }
          const known = draining.get(payload.runner)
          if (known !== undefined) return known
          const record: DrainingRunner = { runner: payload.runner, since: Date.now(), by: payload.actor }
          draining.set(payload.runner, record)
          yield* Effect.logInfo("runner marked draining").pipe(Effect.annotateLogs({ runner: payload.runner, actor: payload.actor }))
          yield* publish(payload.actor, { _tag: "RunnerDraining", runner: payload.runner, by: payload.actor })
          return record
        }),
      Events: ({ payload }) =>
        Effect.map(events.history(payload.sinceSeq), (list) => ({ origin: processOrigin, lastSeq: events.lastSeq(), events: list }))
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
