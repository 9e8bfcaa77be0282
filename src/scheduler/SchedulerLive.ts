import { RunnerStorage, type Sharding, Singleton } from "@effect/cluster"
import { type RunnerDrainRequest, runnerDrainKey } from "../cluster/RunnerDrainWatcher.js"
import { FetchHttpClient } from "@effect/platform"
import { Duration, Effect, Layer, Option, Schedule } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { type Actor, type ControlEvent, isAdminActor } from "../control/ControlEvent.js"
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
  assignPlayer,
  emptyRegistry,
  type Instance,
  instanceWithRoom,
  movePlayer,
  placePlayer,
  reapEmpty,
  registryFromJson,
  registryToJson,
  removeInstance,
  removePlayer,
  spawnInstance
} from "./Placement.js"
import { SchedulerStateRepository } from "../storage/SchedulerStateRepository.js"
import { makeNomadActuator, type NomadActuator } from "./autoscale/NomadActuator.js"
import { QueueReports } from "./autoscale/QueueReports.js"
import { decisionCount, healthPolicyOf, quotaOf, reasonShape, runnerHealthPolicyOf, scalingPolicyOf } from "./autoscale/PolicyConfig.js"
import {
  desired,
  initialScalingState,
  nextState,
  type ScalingDecision,
  type ScalingMetrics,
  type ScalingState
} from "./autoscale/ScalingPolicy.js"
import * as Health from "./health/HealthTracker.js"

/** The scheduler_state key of the scheduler's registry and scaling state. */
export const SCHEDULER_STATE_KEY = "scheduler.registry"

/** What the scheduler persists (JSON), so a failover or restart resumes with the same instances and placements. */
interface SavedState {
  readonly version: 1
  readonly registry: unknown
  readonly scaling: ReadonlyArray<readonly [string, ScalingState]>
  readonly holds: ReadonlyArray<readonly [string, string]>
}
import {
  type DrainingRunner,
  type InstanceInfo,
  PlayerInAnotherWorld,
  type PlayerMove,
  type RunnerInfo,
  SCHEDULER_ID,
  SchedulerEntity
} from "./SchedulerEntity.js"

/** Every call the scheduler makes to another entity is bounded (a group no runner hosts retries forever). */
const CALL_TIMEOUT = Duration.seconds(5)
/** Runner ids as the cluster writes them (host:port), generously. */
const RUNNER_PATTERN = /^[A-Za-z0-9_.:[\]-]{1,256}$/
/** A runner silent this long is forgotten (gone for good; listed as unhealthy until then). */
const RUNNER_FORGET_MS = 10 * 60_000
/** A pending drain younger than this holds back the drain of another unhealthy runner (one at a time). */
const AUTO_DRAIN_SPACING_MS = 60_000

/** A tracked runner as ListServers lists it (pure). */
export const runnerInfoOf = (
  tracked: Health.TargetHealth,
  roles: ReadonlyArray<string>,
  draining: boolean
): RunnerInfo => {
  const beat = tracked.lastHeartbeat
  return {
    runner: tracked.target,
    roles: [...roles],
    health: tracked.status,
    lastHeartbeatAt: beat?.at ?? null,
    ...(beat === null ? {} : { cpu: beat.cpu, memoryBytes: beat.memoryBytes }),
    ...(beat?.eventLoopLagP99Ms === undefined ? {} : { eventLoopLagP99Ms: beat.eventLoopLagP99Ms }),
    ...(tracked.lastFailure === null ? {} : { lastFailure: tracked.lastFailure }),
    ...(draining ? { draining: true } : {})
  }
}

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
    const stateRepository = yield* SchedulerStateRepository
    // The last scheduler's state (a failover, a restart): instances, placements, scaling state.
    const saved = yield* stateRepository.get(SCHEDULER_STATE_KEY).pipe(
      Effect.map(Option.getOrUndefined),
      Effect.catchAll((error) => Effect.as(Effect.logWarning("could not read the scheduler's saved state; starting empty", error), undefined))
    )
    let restored: SavedState | undefined
    if (saved !== undefined) {
      try {
        const parsed = JSON.parse(saved.value) as SavedState
        registryFromJson(parsed.registry)
        restored = parsed
      } catch (error) {
        yield* Effect.logWarning(`the scheduler's saved state is unreadable; starting empty: ${String(error)}`)
      }
    }
    const registry = restored === undefined ? emptyRegistry() : registryFromJson(restored.registry)
    /** Per autoscaled experience: when it last scaled (the cooldowns). */
    const scalingStates = new Map<string, ScalingState>(restored?.scaling ?? [])
    /** Per autoscaled experience: the shape of its last decision (a Hold is published only when it changes). */
    const lastShapes = new Map<string, string>(restored?.holds ?? [])
    if (restored !== undefined) {
      yield* Effect.logInfo(
        `scheduler state restored: ${registry.instances.size} instances, ${registry.placements.size} placements (saved ${new Date(saved!.updatedAt).toISOString()})`
      )
    }
    const graceMs = config.scheduler.emptyInstanceGraceSeconds * 1000
    const experiences = new Map(config.experiences.map((e) => [e.id, e]))
    const directories = yield* MeshDirectories
    const players = yield* PlayerRepository
    const logicProvider = yield* GameLogicProvider
    const events = yield* ControlEvents
    const sessions = yield* SessionEntity.client
    const maxInstances = config.scheduler.maxInstances
    const quotas = new Map(config.experiences.map((e) => [e.id, quotaOf(e, maxInstances)]))
    const quotaFor = (experienceId: string) => quotas.get(experienceId) ?? { maxInstances, maxPlayers: Number.POSITIVE_INFINITY }
    const scaledExperiences = config.experiences.filter((e) => e.world === "instanced" && e.scaling.enabled)
    const policies = new Map(scaledExperiences.map((e) => [e.id, scalingPolicyOf(e, maxInstances)]))
    const localActuator = config.scheduler.actuator === "local"
    const healthPolicy = healthPolicyOf(config.health)
    const health = Health.emptyHealthState()
    /** Runners, by address, from their RunnerHeartbeats (a second tracker, with the runners' policy). */
    const runnerHealthPolicy = runnerHealthPolicyOf(config.health)
    const runnerHealth = Health.emptyHealthState()
    /** Per runner: its roles and the start of its process (a new one: restarted). */
    const runnerMeta = new Map<string, { readonly roles: ReadonlyArray<string>; readonly startedAt: number | undefined }>()
    /** `runner@startedAt` of the unhealthy runner processes drained (or found gone) already: one drain per process. */
    const autoDrained = new Set<string>()
    /** Players waiting for a place per experience (ReportQueue), per reporting queue. */
    const queues = new QueueReports(Math.max(10_000, 3 * config.scheduler.scalingIntervalMs))
    const nomad: NomadActuator | undefined = config.scheduler.actuator === "nomad"
      ? yield* makeNomadActuator({
        address: config.scheduler.nomadAddress,
        token: config.scheduler.nomadToken,
        namespace: config.scheduler.nomadNamespace,
        job: config.scheduler.nomadJob,
        timeoutMs: config.scheduler.nomadTimeoutMs,
        retries: config.scheduler.nomadRetries,
        retryBaseMs: config.scheduler.nomadRetryBaseMs
      }).pipe(Effect.provide(FetchHttpClient.layer))
      : undefined

    // Persistence: saved when it changed, at most every state_save_interval_ms, and when the entity stops.
    let lastSaved = saved?.value ?? ""
    const serialize = (): string =>
      JSON.stringify({
        version: 1,
        registry: registryToJson(registry),
        scaling: [...scalingStates.entries()],
        holds: [...lastShapes.entries()]
      } satisfies SavedState)
    const saveState = Effect.suspend(() => {
      const text = serialize()
      if (text === lastSaved) return Effect.void
      return stateRepository.put(SCHEDULER_STATE_KEY, text).pipe(
        Effect.tap(() => Effect.sync(() => void (lastSaved = text))),
        Effect.catchAll((error) => Effect.logWarning("could not save the scheduler's state (will retry)", error))
      )
    })
    yield* Effect.addFinalizer(() => saveState)
    yield* saveState.pipe(
      Effect.repeat(Schedule.spaced(Duration.millis(config.scheduler.stateSaveIntervalMs))),
      Effect.delay(Duration.millis(config.scheduler.stateSaveIntervalMs)),
      Effect.forkScoped
    )
    /** Runners an admin asked to drain, until they take their drain key (see DrainRunner, RunnerDrainWatcher). */
    const draining = new Map<string, DrainingRunner>()
    const runnerStorage = yield* RunnerStorage.RunnerStorage
    /** Whether the drain key of `runner` is still there (not yet taken by the runner); true when unsure. */
    const drainPending = (runner: string) =>
      stateRepository.get(runnerDrainKey(runner)).pipe(
        Effect.map(Option.isSome),
        Effect.catchAll(() => Effect.succeed(true))
      )
    const publish = (actor: Actor, event: ControlEvent) => Effect.asVoid(events.publish(actor, event))
    /**
     * Asks the runner at `runner` (host:port) to drain (DrainRunner, and the health check's drain of an
     * unhealthy runner): refused unless registered in the cluster; a pending drain is answered as is.
     * `startedAt`: only the process that started then is to drain (not a restart of it).
     */
    const drainRunner = (runner: string, actor: Actor, reason: string, startedAt?: number) =>
      Effect.gen(function*() {
        if (!RUNNER_PATTERN.test(runner)) {
          return yield* refuse("bad_request", "runner must be a runner address such as 10.0.0.5:34431 (1..256 of A-Z a-z 0-9 _ . : [ ] -)")
        }
        const unavailable = (what: string) => (error: unknown) =>
          Effect.zipRight(
            Effect.logWarning(`drain of ${runner}: ${what}`, error),
            refuse("unavailable", `${what}; nothing was drained, try again`)
          )
        // The cluster's registered runners (one read of its runner table).
        const registered = yield* runnerStorage.getRunners.pipe(
          Effect.timeout(CALL_TIMEOUT),
          Effect.catchAllCause(unavailable("the cluster's runner list could not be read"))
        )
        const addresses = registered.map(([r]) => `${r.address.host}:${r.address.port}`).sort()
        if (!addresses.includes(runner)) {
          return yield* refuse(
            "not_found",
            `no runner "${runner}" is registered in the cluster (registered: ${addresses.join(", ") || "none"})`
          )
        }
        // Pending (its key not yet taken by the runner): the same drain. Gone: that drain was carried out
        // and the runner is back (restarted); this is a new one.
        const known = draining.get(runner)
        if (known !== undefined && (yield* drainPending(runner))) return known
        const record: DrainingRunner = { runner, since: Date.now(), by: actor, reason }
        const request: RunnerDrainRequest = { by: actor, at: record.since, reason, ...(startedAt === undefined ? {} : { startedAt }) }
        yield* stateRepository.put(runnerDrainKey(runner), JSON.stringify(request)).pipe(
          Effect.catchAllCause(unavailable("the drain request could not be stored"))
        )
        draining.set(runner, record)
        yield* Effect.logInfo("runner asked to drain").pipe(Effect.annotateLogs({ runner, actor, reason }))
        yield* publish(actor, { _tag: "RunnerDraining", runner, by: actor })
        return record
      })

    const rosters = new Map<string, OpenWorldRoster>()
    const openExperiences = config.experiences.filter((e) => e.world === "open")
    for (const e of openExperiences) rosters.set(openWorldId(e.id), emptyRoster(openWorldId(e.id)))
    /** regionId -> its last load report (with the time it came). */
    const loads = new Map<string, {
      readonly players: number
      readonly tickP99Ms: number
      readonly stopped?: boolean | undefined
      readonly at: number
      /** The last few reported tick p99s (ms), oldest first. */
      readonly recentP99: ReadonlyArray<number>
    }>()
    /** regionId -> when it last split or merged (the merge cooldown). */
    const lastChangeAt = new Map<string, number>()
    const LOAD_REPORT_TTL_MS = 3_000
    /** A tick-budget split needs the budget exceeded this many reports (seconds) in a row: one GC pause is no crowd. */
    const SUSTAINED_REPORTS = 3
    /** Reports of regions that left the directory are forgotten after this. */
    const LOAD_FORGET_MS = 10 * 60_000
    /** The mesh policy's view of the load reports: a sustained tick p99, and stale where reports stopped unannounced. */
    const loadView = (now: number): Map<string, RegionLoad> => {
      const view = new Map<string, RegionLoad>()
      for (const [id, load] of loads) {
        if (now - load.at > LOAD_FORGET_MS) {
          loads.delete(id)
          continue
        }
        const stale = load.stopped !== true && now - load.at > LOAD_REPORT_TTL_MS
        const sustained = load.recentP99.length < SUSTAINED_REPORTS ? 0 : Math.min(...load.recentP99)
        view.set(id, { regionId: id, players: load.players, tickP99Ms: sustained, stale })
      }
      return view
    }

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
      const view = loadView(now)
      const changes: Array<string> = []
      for (const experience of openExperiences) {
        const worldId = openWorldId(experience.id)
        const directory = yield* directories.get(worldId)
        const decisions = decide(directory, view, meshPolicyOf(experience), lastChangeAt, now)
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

    /**
     * Tells the player's session it was moved (from no world: `fromWorld` null); the session moves a
     * connected client seamlessly. Never fails ("failed" when the session did not answer).
     */
    const relocate = (playerId: string, fromWorld: string | null, to: Location | null, reason: string) =>
      sessions(playerId).Relocate({ fromWorld, to, reason }).pipe(
        Effect.timeout(CALL_TIMEOUT),
        Effect.catchAllCause((cause) =>
          Effect.as(Effect.logWarning("session did not take a relocation", cause), "failed" as const)
        ),
        Effect.annotateLogs({ playerId, worldId: fromWorld ?? to?.worldId ?? "" })
      )

    /** An instance as listed: with its health (when tracked) and whether it drains. */
    const describe = (i: Instance): InstanceInfo => {
      const tracked = Health.get(health, i.worldId)
      return {
        ...infoOf(i),
        ...(tracked === undefined ? {} : { health: tracked.status }),
        ...(registry.draining.has(i.worldId) ? { draining: true } : {})
      }
    }

    /** Starts an instance's region now, so it is running when listed (and warm for its first player). */
    const startRegion = (worldId: string) =>
      regions(worldId).Info().pipe(
        Effect.timeout(CALL_TIMEOUT),
        Effect.catchAllCause((cause) => Effect.logWarning("spawned instance's region did not start", cause)),
        Effect.annotateLogs({ worldId })
      )

    /**
     * An unhealthy instance (Forge: isolate, migrate, replace): out of the
     * registry at once (no new players), a replacement spawned for its
     * players (within the quota), each player moved there (or to another
     * instance with room) and told by its session, then its region shut down.
     */
    const replaceUnhealthy = (worldId: string, why: string) =>
      Effect.gen(function*() {
        const instance = registry.instances.get(worldId)
        if (instance === undefined) return
        Metrics.unhealthyInstancesTotal.inc()
        Health.forget(health, worldId)
        removeInstance(registry, worldId)
        const now = Date.now()
        const experience = experiences.get(instance.experienceId)
        let replacement: Instance | undefined
        if (instance.players.size > 0 && experience !== undefined) {
          const spawned = spawnInstance(registry, experience, now, quotaFor(experience.id).maxInstances)
          if (spawned._tag === "Spawned") {
            replacement = spawned.instance
            yield* startRegion(replacement.worldId)
            yield* publish("scheduler", {
              _tag: "ServerSpawned",
              worldId: replacement.worldId,
              experienceId: experience.id,
              reason: `replacement for unhealthy ${worldId} (${why})`
            })
          } else {
            yield* Effect.logWarning(`no replacement for unhealthy ${worldId}: ${spawned.reason}`)
          }
        }
        const plan: Array<{ readonly playerId: string; readonly to: string | null }> = []
        for (const playerId of [...instance.players].sort()) {
          const target = replacement !== undefined && replacement.players.size < replacement.maxPlayers
            ? replacement
            : instanceWithRoom(registry, instance.experienceId)
          const moved = target !== undefined && movePlayer(registry, playerId, target.worldId, now)._tag === "Moved"
          plan.push({ playerId, to: moved ? target.worldId : null })
        }
        yield* Effect.forEach(
          plan,
          ({ playerId, to }) =>
            relocate(
              playerId,
              worldId,
              to === null ? null : { experienceId: instance.experienceId, worldId: to, regionId: to },
              to === null
                ? `instance ${worldId} is unhealthy (${why}) and no other has room`
                : `instance ${worldId} is unhealthy (${why}); moved to ${to}`
            ).pipe(
              Effect.zipRight(
                to === null
                  ? Effect.void
                  : publish("scheduler", { _tag: "PlayerRouted", playerId, fromWorld: worldId, toWorld: to, by: "scheduler" })
              )
            ),
          { concurrency: 8, discard: true }
        )
        yield* shutdownRegion(worldId)
        yield* publish("scheduler", {
          _tag: "ServerTerminated",
          worldId,
          experienceId: instance.experienceId,
          reason: `unhealthy: ${why}`
        })
      }).pipe(Effect.annotateLogs({ worldId }))

    /** One health check of every occupied instance (an empty one's region stops ticking, so it sends no heartbeats). */
    const healthCheck = Effect.gen(function*() {
      if (!config.health.enabled) return [] as Array<string>
      const now = Date.now()
      for (const target of [...health.targets.keys()]) {
        const instance = registry.instances.get(target)
        if (instance === undefined || instance.players.size === 0) Health.forget(health, target)
      }
      for (const instance of registry.instances.values()) {
        if (instance.players.size > 0) Health.register(health, instance.worldId, now)
      }
      const changes: Array<string> = []
      for (const t of Health.evaluate(health, healthPolicy, now)) {
        changes.push(`${t.target}: ${t.from} -> ${t.to} (${t.reason})`)
        // A new instance becoming healthy is routine; going unhealthy and recovering are news.
        if (t.from === "unknown" && t.to === "healthy") continue
        yield* publish("scheduler", { _tag: "HealthChanged", target: t.target, kind: "instance", from: t.from, to: t.to, reason: t.reason })
        if (t.to === "unhealthy") {
          yield* Effect.logWarning(`instance unhealthy: ${t.reason}`).pipe(Effect.annotateLogs({ worldId: t.target }))
          yield* replaceUnhealthy(t.target, t.reason)
        } else {
          yield* Effect.logInfo(`instance healthy again: ${t.reason}`).pipe(Effect.annotateLogs({ worldId: t.target }))
        }
      }
      // Runners: forgotten when silent for long (gone), checked like instances.
      for (const tracked of [...runnerHealth.targets.values()]) {
        if (now - (tracked.lastHeartbeat?.at ?? tracked.since) > RUNNER_FORGET_MS) {
          Health.forget(runnerHealth, tracked.target)
          runnerMeta.delete(tracked.target)
        }
      }
      for (const t of Health.evaluate(runnerHealth, runnerHealthPolicy, now)) {
        changes.push(`runner ${t.target}: ${t.from} -> ${t.to} (${t.reason})`)
        if (t.from === "unknown" && t.to === "healthy") continue
        yield* publish("scheduler", { _tag: "HealthChanged", target: t.target, kind: "runner", from: t.from, to: t.to, reason: t.reason })
        if (t.to === "unhealthy") {
          Metrics.unhealthyRunnersTotal.inc()
          yield* Effect.logWarning(`runner unhealthy: ${t.reason}`).pipe(Effect.annotateLogs({ runner: t.target }))
        } else {
          yield* Effect.logInfo(`runner healthy again: ${t.reason}`).pipe(Effect.annotateLogs({ runner: t.target }))
        }
      }
      if (config.health.drainUnhealthyRunners) yield* drainUnhealthyRunners
      return changes
    })

    /**
     * health.drain_unhealthy_runners: drains each unhealthy runner process once, through the admin
     * drain's path (actor "scheduler", the health reason), one at a time: while a drain younger than
     * AUTO_DRAIN_SPACING_MS is pending, the next waits for a later check. The drained runner hands its
     * shards (regions, with their players) to the other runners and exits 0; its supervisor restarts it.
     */
    const drainUnhealthyRunners = Effect.gen(function*() {
      for (const tracked of runnerHealth.targets.values()) {
        if (tracked.status !== "unhealthy") continue
        const startedAt = runnerMeta.get(tracked.target)?.startedAt
        const incarnation = `${tracked.target}@${startedAt ?? ""}`
        if (autoDrained.has(incarnation)) continue
        const now = Date.now()
        for (const record of draining.values()) {
          if (now - record.since < AUTO_DRAIN_SPACING_MS && (yield* drainPending(record.runner))) return
        }
        const reason = tracked.lastFailure ?? "unhealthy"
        const outcome = yield* drainRunner(tracked.target, "scheduler", reason, startedAt).pipe(
          Effect.as("drained" as const),
          Effect.catchAll((error) =>
            Effect.as(
              Effect.logWarning(`could not drain unhealthy runner ${tracked.target}: ${error.message}`),
              error.code === "unavailable" ? "retry" as const : "gone" as const
            )
          )
        )
        if (outcome === "retry") return
        autoDrained.add(incarnation)
        if (outcome === "drained") return
      }
    })

    /** Applies a decision to the experience's instances in this cluster (actuator "local"). */
    const actLocally = (experienceId: string, decision: ScalingDecision) =>
      Effect.gen(function*() {
        const experience = experiences.get(experienceId)!
        if (decision._tag === "ScaleUp") {
          for (let n = 0; n < decision.count; n++) {
            const spawned = spawnInstance(registry, experience, Date.now(), quotaFor(experienceId).maxInstances)
            if (spawned._tag === "Full") {
              yield* Effect.logWarning(`autoscale: ${spawned.reason}`)
              break
            }
            yield* startRegion(spawned.instance.worldId)
            yield* publish("scheduler", {
              _tag: "ServerSpawned",
              worldId: spawned.instance.worldId,
              experienceId,
              reason: `autoscale: ${decision.reason}`
            })
          }
        } else if (decision._tag === "ScaleDown") {
          for (const worldId of decision.drain) {
            if (registry.instances.has(worldId)) registry.draining.add(worldId)
          }
          for (const worldId of decision.terminate) {
            const instance = registry.instances.get(worldId)
            // Never one with players: a player placed since the metrics were read keeps it.
            if (instance === undefined || instance.players.size > 0) continue
            removeInstance(registry, worldId)
            Health.forget(health, worldId)
            yield* shutdownRegion(worldId)
            yield* publish("scheduler", { _tag: "ServerTerminated", worldId, experienceId, reason: `autoscale: ${decision.reason}` })
          }
        }
        return true
      })

    /** Applies a decision through Nomad: the task group's count to current +/- the decision's count. */
    const actThroughNomad = (nomadActuator: NomadActuator, experienceId: string, decision: ScalingDecision) =>
      Effect.gen(function*() {
        const group = config.scheduler.nomadGroup
        const current = yield* nomadActuator.current(group)
        const count = decisionCount(decision)
        const target = decision._tag === "ScaleUp" ? current + count : Math.max(0, current - count)
        if (target === current) return true
        yield* nomadActuator.scale(group, target, `${experienceId}: ${decision.reason}`, { experience: experienceId })
        yield* Effect.logInfo(`nomad: scaled ${group} from ${current} to ${target}`)
        return true
      }).pipe(
        Effect.catchAll((error) => Effect.as(Effect.logWarning(`nomad actuator failed; will decide again: ${error.message}`), false))
      )

    const queuedOf = (experienceId: string, now: number): number => queues.queued(experienceId, now)

    /** One pass of every autoscaled experience's policy, applied through the configured actuator. */
    const autoscale = Effect.gen(function*() {
      const out: Array<string> = []
      for (const experience of scaledExperiences) {
        const id = experience.id
        const policy = policies.get(id)!
        const now = Date.now()
        const metrics: ScalingMetrics = {
          instances: [...registry.instances.values()]
            .filter((i) => i.experienceId === id)
            .map((i) => {
              const tracked = Health.get(health, i.worldId)
              const beat = tracked?.lastHeartbeat ?? null
              return {
                id: i.worldId,
                players: i.players.size,
                maxPlayers: i.maxPlayers,
                cpu: beat?.cpu ?? 0,
                tickP99Ms: beat?.tickP99Ms ?? 0,
                draining: registry.draining.has(i.worldId),
                healthy: tracked?.status !== "unhealthy"
              }
            }),
          queuedPlayers: queuedOf(id, now)
        }
        const state = scalingStates.get(id) ?? initialScalingState
        const decision = desired(policy, metrics, state, now)
        const active = metrics.instances.filter((i) => i.healthy && !i.draining).length
        const demand = metrics.instances.reduce((sum, i) => sum + i.players, 0) + metrics.queuedPlayers
        const count = decisionCount(decision)
        Metrics.experienceInstances.set(id, active)
        Metrics.experienceQueueLength.set(id, metrics.queuedPlayers)
        Metrics.experiencePlayersPerInstance.set(id, active === 0 ? demand : demand / active)
        Metrics.experienceDesiredInstances.set(
          id,
          decision._tag === "ScaleUp" ? active + count : decision._tag === "ScaleDown" ? active - decision.drain.length - decision.terminate.filter((w) => !registry.draining.has(w)).length : active
        )
        const shape = reasonShape(decision)
        const news = decision._tag !== "Hold" || lastShapes.get(id) !== shape
        lastShapes.set(id, shape)
        if (news) {
          Metrics.scalingDecisionsTotal[decision._tag].inc()
          yield* publish("scheduler", {
            _tag: "ScalingDecision",
            experienceId: id,
            decision: decision._tag,
            ...(decision._tag === "Hold" ? {} : { count }),
            reason: decision.reason
          })
          out.push(`${id}: ${decision._tag}${decision._tag === "Hold" ? "" : ` ${count}`}: ${decision.reason}`)
        }
        if (decision._tag === "Hold") continue
        yield* Effect.logInfo(`autoscale ${decision._tag} ${count}: ${decision.reason}`).pipe(Effect.annotateLogs({ experienceId: id }))
        const applied = config.scheduler.actuator === "local"
          ? yield* actLocally(id, decision)
          : nomad !== undefined
          ? yield* actThroughNomad(nomad, id, decision)
          : true // kubernetes: the HPA acts on the exported metrics
        if (applied) scalingStates.set(id, nextState(state, decision, now))
      }
      return out
    })

    return SchedulerEntity.of({
      Heartbeat: ({ payload }) =>
        Effect.sync(() => {
          Metrics.heartbeatsTotal.inc()
          if (!config.health.enabled || !registry.instances.has(payload.worldId)) return
          Health.heartbeat(health, payload.worldId, payload, Date.now())
        }),
      RunnerHeartbeat: ({ payload }) =>
        Effect.gen(function*() {
          if (!config.health.enabled || !RUNNER_PATTERN.test(payload.runner)) return
          const now = Date.now()
          const known = runnerMeta.get(payload.runner)
          if (known?.startedAt !== undefined && payload.startedAt !== undefined && known.startedAt !== payload.startedAt) {
            // A new process at this address (restarted): its health is its own, from unknown.
            const previous = Health.get(runnerHealth, payload.runner)
            Health.forget(runnerHealth, payload.runner)
            if (previous?.status === "unhealthy") {
              yield* publish("scheduler", {
                _tag: "HealthChanged",
                target: payload.runner,
                kind: "runner",
                from: "unhealthy",
                to: "unknown",
                reason: "runner restarted"
              })
            }
          }
          runnerMeta.set(payload.runner, { roles: payload.roles, startedAt: payload.startedAt })
          Health.heartbeat(runnerHealth, payload.runner, {
            tickP99Ms: Number.NaN,
            players: 0,
            cpu: payload.cpu,
            memoryBytes: payload.memoryBytes,
            eventLoopLagP99Ms: payload.eventLoopLagP99Ms
          }, now)
        }),
      ReportQueue: ({ payload }) => Effect.sync(() => queues.report(payload.experienceId, payload.queued, Date.now(), payload.source)),
      HealthCheck: () => healthCheck,
      Autoscale: () => autoscale,
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
          const quota = quotaFor(experience.id)
          const result = placePlayer(registry, experience, payload.playerId, Date.now(), quota.maxInstances, quota.maxPlayers)
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
      ReportLoad: ({ payload }) =>
        Effect.sync(() => {
          const previous = loads.get(payload.regionId)
          const recentP99 = payload.stopped === true ? [] : [...(previous?.recentP99 ?? []), payload.tickP99Ms].slice(-SUSTAINED_REPORTS)
          loads.set(payload.regionId, { ...payload, at: Date.now(), recentP99 })
        }),
      MeshTick: () => meshTick,
      Reap: () =>
        Effect.gen(function*() {
          // An autoscaled experience's empty instances are its policy's to remove (warm instances).
          const reaped = reapEmpty(registry, Date.now(), graceMs, (i) => localActuator && policies.has(i.experienceId))
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
      ListInstances: () => Effect.sync(() => [...registry.instances.values()].map(describe)),
      Spawn: ({ payload }) =>
        Effect.gen(function*() {
          const experience = experiences.get(payload.experienceId)
          if (experience === undefined) return yield* refuse("not_found", unknownExperience(payload.experienceId))
          if (experience.world === "open") {
            return yield* refuse("bad_request", `experience "${experience.id}" is an open world: it has regions, not instances`)
          }
          const result = spawnInstance(registry, experience, Date.now(), quotaFor(experience.id).maxInstances)
          if (result._tag === "Full") return yield* refuse("conflict", result.reason)
          const worldId = result.instance.worldId
          // Start its region now, so the instance is running when it is listed.
          yield* regions(worldId).Info().pipe(
            Effect.timeout(CALL_TIMEOUT),
            Effect.catchAllCause((cause) => Effect.logWarning("spawned instance's region did not start", cause))
          )
          yield* Effect.logInfo("instance spawned").pipe(Effect.annotateLogs({ worldId, actor: payload.actor }))
          yield* publish(payload.actor, { _tag: "ServerSpawned", worldId, experienceId: experience.id, reason: "admin spawn" })
          return describe(result.instance)
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
                  ? `${worldId}: ${reason}`
                  : `instance ${worldId} was terminated (${reason}); moved to ${to}`
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
            payload.reason ?? `moved to ${worldId} by ${isAdminActor(actor) ? "an admin" : "the scheduler"}`
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
      Assign: ({ payload }) =>
        Effect.gen(function*() {
          const { playerId, worldId, actor } = payload
          const target = registry.instances.get(worldId)
          if (target === undefined) return yield* refuse(...noInstance(worldId))
          for (const [openWorld, roster] of rosters) {
            if (roster.idsByPlayer.has(playerId)) {
              return yield* refuse("conflict", `player "${playerId}" is in the open world "${openWorld}"; it must leave it first`)
            }
          }
          const result = assignPlayer(registry, playerId, worldId, quotaFor(target.experienceId).maxPlayers)
          switch (result._tag) {
            case "AlreadyThere":
              return { playerId, toWorld: worldId, assigned: false, told: false }
            case "InAnotherWorld":
              return yield* new PlayerInAnotherWorld({
                playerId,
                worldId: result.worldId,
                message: `player "${playerId}" is in "${result.worldId}"; route it instead`
              })
            case "Refused":
              return yield* refuse(result.code, result.reason)
          }
          const outcome = yield* relocate(
            playerId,
            null,
            { experienceId: target.experienceId, worldId, regionId: worldId },
            payload.reason ?? `placed in ${worldId} by ${isAdminActor(actor) ? "an admin" : "the scheduler"}`
          )
          if (outcome === "stale" || outcome === "failed") {
            // Undo: the session did not take the placement.
            removePlayer(registry, playerId, worldId, Date.now())
            return yield* outcome === "stale"
              ? refuse("conflict", `player "${playerId}" is in a world by now; nothing was assigned`)
              : refuse("unavailable", `player "${playerId}"'s session did not answer; nothing was assigned`)
          }
          yield* publish(actor, { _tag: "PlayerRouted", playerId, toWorld: worldId, by: actor })
          return { playerId, toWorld: worldId, assigned: true, told: outcome === "told" }
        }),
      ListServers: ({ payload }) =>
        Effect.gen(function*() {
          const wanted = payload.experienceId
          const inRegion = (worldId: string, regionId: string) =>
            payload.region === undefined || payload.region === regionId || payload.region === worldId
          const instances = [...registry.instances.values()]
            .filter((i) => (wanted === undefined || i.experienceId === wanted) && inRegion(i.worldId, i.worldId))
            .map(describe)
          const now = Date.now()
          const regionInfos: Array<{ worldId: string; experienceId: string; regionId: string; players: number }> = []
          for (const experience of openExperiences) {
            if (wanted !== undefined && experience.id !== wanted) continue
            const worldId = openWorldId(experience.id)
            const directory = yield* directories.get(worldId).pipe(Effect.option)
            if (Option.isNone(directory)) continue
            for (const regionId of directory.value.leafIds()) {
              if (!inRegion(worldId, regionId)) continue
              const load = loads.get(regionId)
              const players = load !== undefined && (load.stopped === true || now - load.at <= LOAD_REPORT_TTL_MS) ? load.players : 0
              regionInfos.push({ worldId, experienceId: experience.id, regionId, players })
            }
          }
          // Drains the runner has carried out (it took its key) are no longer listed.
          for (const runner of [...draining.keys()]) {
            if (!(yield* drainPending(runner))) draining.delete(runner)
          }
          const runners = [...runnerHealth.targets.values()]
            .sort((a, b) => (a.target < b.target ? -1 : a.target > b.target ? 1 : 0))
            .map((tracked) => runnerInfoOf(tracked, runnerMeta.get(tracked.target)?.roles ?? [], draining.has(tracked.target)))
          return { instances, regions: regionInfos, drainingRunners: [...draining.values()], runners }
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
      DrainRunner: ({ payload }) => drainRunner(payload.runner, payload.actor, payload.reason ?? "drained by an admin"),
      Events: ({ payload }) =>
        Effect.map(events.history(payload.sinceSeq), (list) => ({ origin: processOrigin, lastSeq: events.lastSeq(), events: list }))
    })
  }),
  // The registry lives in memory: the scheduler entity must not passivate.
  { maxIdleTime: Duration.infinity }
)

/** The cluster singleton driving the scheduler's periodic work (reaping empty instances). */
export const SchedulerLoopLive: Layer.Layer<never, never, Sharding.Sharding | AppConfig> = Singleton.make(
  "SchedulerLoop",
  Effect.gen(function*() {
    const config = yield* AppConfig
    const scheduler = (yield* SchedulerEntity.client)(SCHEDULER_ID)
    // Health checks every heartbeat interval; the scaling policy every scaling interval (when any experience autoscales).
    if (config.health.enabled) {
      yield* scheduler.HealthCheck().pipe(
        Effect.timeout(Duration.seconds(60)),
        Effect.catchAllCause((cause) => Effect.logWarning("scheduler health check failed", cause)),
        Effect.repeat(Schedule.spaced(Duration.millis(config.health.heartbeatIntervalMs))),
        Effect.delay(Duration.millis(config.health.heartbeatIntervalMs)),
        Effect.forkScoped
      )
    }
    if (config.experiences.some((e) => e.world === "instanced" && e.scaling.enabled)) {
      yield* scheduler.Autoscale().pipe(
        Effect.timeout(Duration.seconds(60)),
        Effect.catchAllCause((cause) => Effect.logWarning("scheduler autoscale pass failed", cause)),
        Effect.repeat(Schedule.spaced(Duration.millis(config.scheduler.scalingIntervalMs))),
        Effect.forkScoped
      )
    }
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
