import { Entity, Sharding } from "@effect/cluster"
import { Duration, Effect, Fiber, Option, Runtime } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { ClientDelivery } from "../gateway/ClientDelivery.js"
import * as Metrics from "../observability/Metrics.js"
import { GameError } from "../protocol/GameError.js"
import { ErrorCode } from "../protocol/Opcodes.js"
import { SessionEntity } from "../session/SessionEntity.js"
import { PlayerRepository } from "../storage/PlayerRepository.js"
import { PlayerStateWriter } from "../storage/PlayerStateWriter.js"
import { FixedTicker } from "./FixedTicker.js"
import type { SimEntity } from "./GameLogic.js"
import { GameLogicProvider } from "./GameLogicProvider.js"
import { LocalRegions } from "./LocalRegions.js"
import { RegionEntity } from "./RegionEntity.js"
import { RegionInputBus } from "./RegionInputBus.js"
import { RegionRuntime } from "./RegionRuntime.js"
import { cellTopic, experienceOfWorld } from "./WorldIds.js"
import type { ExperienceConfig } from "../config/TesseraConfig.js"
import { SCHEDULER_ID, SchedulerEntity } from "../scheduler/SchedulerEntity.js"
import { heartbeatFrozen, makeProcessSampler } from "../scheduler/health/HeartbeatSampler.js"
import { TransferLog } from "../storage/TransferLog.js"
import { HandoffLedger } from "./mesh/HandoffLedger.js"
import { keyString, parseRegionId, worldBox } from "./mesh/MeshGeometry.js"
import type { MeshOptions } from "./MeshBoundary.js"
import { MeshDirectories } from "./MeshDirectories.js"
import { makeMeshPorts } from "./MeshLink.js"
import { makeWorldEditStore, type WorldEditStore } from "./WorldEditStore.js"

/** Inputs for an entity that moved on are forwarded this long after its handoff. */
const FORWARD_TTL_MS = 5_000
/** A cross-node handoff must settle within this (then the source asks the destination). */
const TRANSFER_TIMEOUT_MS = 2_000

/** A player's entity outlives its connection's last sign by the resume window plus this. */
const LEASE_MARGIN_SECONDS = 15

/**
 * Region entity handlers. An activated region registers its input buffer for
 * co-located gateways, ticks on a drift-free fixed timestep while it has
 * players (kept alive by the cluster, since in-process inputs are not entity
 * messages), and stops itself when it has been empty for the grace period.
 */

/** Ticks a late region may run back to back (the rest are skipped, so an overloaded process slows down instead of stalling). */
const REGION_MAX_CATCH_UP = 2
export const RegionLive = RegionEntity.toLayer(
  Effect.gen(function*() {
    const address = yield* Entity.CurrentAddress
    const regionId = address.entityId
    const config = yield* AppConfig
    const localRegions = yield* LocalRegions
    const delivery = yield* ClientDelivery
    const players = yield* PlayerRepository
    const writer = yield* PlayerStateWriter
    const logicProvider = yield* GameLogicProvider
    const inputBus = yield* RegionInputBus
    const scope = yield* Effect.scope
    const sessions = yield* SessionEntity.client

    const experienceId = experienceOfWorld(regionId)
    const experience = config.experiences.find((e) => e.id === experienceId)
    const tickRate = experience?.tickRate ?? 20
    const emptyGraceMs = config.scheduler.emptyInstanceGraceSeconds * 1000

    // An open world's region: a piece of its octree, with neighbours, ghosts and handoffs.
    const meshPlace = experience?.world === "open" ? parseRegionId(regionId) : undefined
    const worldId = meshPlace?.worldId ?? regionId
    const transferLog = yield* TransferLog
    const scheduler = (yield* SchedulerEntity.client)(SCHEDULER_ID)
    let mesh: MeshOptions | undefined
    /** Open worlds: the region's world modifications (deltas), loaded below. */
    let worldEdits: WorldEditStore | undefined
    if (meshPlace !== undefined) {
      const directories = yield* MeshDirectories
      yield* directories.get(meshPlace.worldId).pipe(Effect.orDie)
      const regions = yield* RegionEntity.client
      const forkRuntime = Runtime.runFork(yield* Effect.runtime<never>())
      mesh = {
        worldId: meshPlace.worldId,
        key: meshPlace.key,
        directory: () => directories.cached(meshPlace.worldId)!,
        ledger: new HandoffLedger(regionId, {
          forwardTtlMs: FORWARD_TTL_MS,
          transferTimeoutMs: TRANSFER_TIMEOUT_MS,
          incarnation: Date.now().toString(36)
        }),
        ports: makeMeshPorts({
          regionId,
          runtime: () => runtime,
          localRegions,
          regions,
          fork: (effect) => void forkRuntime(Effect.forkIn(effect, scope))
        })
      }
    }

    const runtime: RegionRuntime = new RegionRuntime(
      {
        regionId,
        tickRate,
        cellSize: config.region.cellSize,
        leaseMs: (config.session.resumeWindowSeconds + LEASE_MARGIN_SECONDS) * 1000,
        persistEveryTicks: Math.max(1, Math.round((config.storage.writeBehindMs / 1000) * tickRate))
      },
      // An unknown experience still gets a runtime; its Join fails with a clear error.
      logicProvider.forExperience(experience ?? ({ ...config.experiences[0], id: experienceId, maxPlayers: 0 } as ExperienceConfig)),
      {
        publishCell: (cellKey, frame) => {
          delivery.publish(cellTopic(regionId, cellKey), frame)
          Metrics.snapshotsPublishedTotal.inc()
        },
        cellChanged: (playerId, from, to) => delivery.moveCells(playerId, regionId, from, to),
        persist: (entity) => writer.put(stateRow(entity, true)),
        // The player's gateway switches its input route and cells from the source region to this one.
        arrived: (entity, from, cellKey) => {
          // A neighbour in this process hands over by direct call: this region may have stopped ticking while empty.
          if (loop === undefined) Runtime.runFork(effectRuntime)(startTicking)
          delivery.moveCells(entity.playerId, regionId, undefined, cellKey, from)
          worldEdits?.sendStateTo(entity.playerId)
          // The session follows too (resume, leave and lease expiry address this region from now on).
          Runtime.runFork(effectRuntime)(
            sessions(entity.playerId).Relocated({
              worldId,
              fromRegion: from,
              regionId,
              entityId: entity.id,
              epoch: runtime.mesh?.epochOf(entity.id) ?? 0
            }).pipe(
              Effect.timeout(Duration.seconds(10)),
              Effect.catchAllCause((cause) => Effect.logDebug("could not tell the session of a relocation", cause)),
              Effect.forkIn(scope)
            )
          )
          Metrics.players.inc()
          writer.put(stateRow(entity, true))
        },
        transferSettled: (t) => {
          if (t.outcome === "ok") Metrics.players.dec()
          transferLog.record({
            worldId,
            entityId: t.entityId,
            playerId: t.playerId,
            fromRegion: t.from,
            toRegion: t.to,
            startedAt: t.startedAt,
            durationMs: t.durationMs,
            outcome: t.outcome,
            reason: t.outcome === "ok" ? null : "the destination refused or did not answer"
          })
        }
      },
      mesh
    )
    /** The row the writer stores for a player: still a member of this region, or gone from it. */
    const stateRow = (entity: SimEntity, member: boolean) => ({
      playerId: entity.playerId,
      experienceId,
      worldId: regionId,
      x: entity.x,
      y: entity.y,
      z: entity.z,
      entityId: member ? entity.id : null,
      lastSeq: entity.lastSeq,
      at: Date.now()
    })

    // A previous activation's players (a crash, a failover, a restart) come back with their entity ids.
    const members = yield* players.regionMembers(regionId).pipe(
      Effect.catchAll((error) => Effect.as(Effect.logWarning("could not reload region members", error), []))
    )
    const restored = runtime.restore(members, Date.now())
    if (restored > 0) {
      Metrics.players.inc(restored)
      yield* Effect.logInfo(`region restored ${restored} players from storage`).pipe(Effect.annotateLogs({ regionId }))
    }

    // An open world's modifications inside this region's box, stored as deltas and written behind.
    if (mesh !== undefined && runtime.mesh !== undefined) {
      const meshOptions = mesh
      worldEdits = yield* makeWorldEditStore({
        regionId,
        worldId,
        regionKey: keyString(meshOptions.key),
        box: runtime.mesh.box,
        world: worldBox(meshOptions.directory().geometry),
        reach: config.region.editReach,
        cellSize: config.region.cellSize,
        flushEveryMs: Math.min(200, Math.max(20, Math.round(1000 / tickRate))),
        positionOf: (playerId) => {
          const entity = runtime.entityOf(playerId)
          // An entity in flight to a neighbour is no longer this region's to edit around.
          return entity !== undefined && runtime.world.entities.get(entity.id) === entity ? entity : undefined
        },
        isLeaf: () => meshOptions.directory().isLeaf(meshOptions.key),
        publish: (cellKey, frame) => delivery.publish(cellTopic(regionId, cellKey), frame),
        sendToPlayer: (playerId, frame) => delivery.sendToPlayer(playerId, frame)
      }).pipe(Effect.annotateLogs({ regionId }))
      runtime.worldEdit = worldEdits.edit
    }

    // Across nodes, gateways publish this region's input batches on its bus channel.
    const effectRuntime = yield* Effect.runtime<never>()
    yield* inputBus.subscribe(regionId, (bytes) => {
      try {
        runtime.enqueueBytes(bytes)
      } catch (error) {
        Runtime.runFork(effectRuntime)(
          Effect.logWarning(`dropped a malformed input batch: ${String(error)}`).pipe(Effect.annotateLogs({ regionId }))
        )
      }
    })
    localRegions.register(runtime)
    Metrics.regions.inc()
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        runtime.persistAll()
        localRegions.unregister(runtime)
        Metrics.regions.dec()
        Metrics.players.dec(runtime.playerCount)
        if (mesh !== undefined) {
          Metrics.regionPlayers.delete(regionId)
          Metrics.regionTickDurationSeconds.delete(regionId)
        }
      })
    )

    let emptySince = Date.now()
    let nextLeaseSweep = 0
    /** The last second of tick durations (ms), for an open-world region's load report. */
    const recentTicks: Array<number> = []
    const runTick = () => {
      const started = performance.now()
      runtime.tick()
      const seconds = (performance.now() - started) / 1000
      Metrics.tickDurationSeconds.observe(seconds)
      if (mesh !== undefined) Metrics.regionTickDurationSeconds.observe(regionId, seconds)
      if (mesh !== undefined || sendsHeartbeats) recentTicks.push(seconds * 1000)
    }
    // An instance reports a heartbeat to the scheduler's health checks (an open world's regions report load instead).
    const sendsHeartbeats = mesh === undefined && config.health.enabled
    const sampleProcess = makeProcessSampler()
    let nextHeartbeat = Date.now() + config.health.heartbeatIntervalMs
    const sendHeartbeat = Effect.suspend(() => {
      const sorted = recentTicks.splice(0).sort((a, b) => a - b)
      const p99 = sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]!
      const { cpu, memoryBytes } = sampleProcess()
      // Dev-only test hook: a frozen instance keeps ticking but goes silent.
      if (heartbeatFrozen(worldId, config.server.dev)) return Effect.void
      return scheduler.Heartbeat({ worldId, tickP99Ms: p99, players: runtime.playerCount, cpu, memoryBytes }).pipe(
        Effect.timeout(Duration.seconds(2)),
        Effect.catchAllCause(() => Effect.void),
        Effect.forkIn(scope)
      )
    })
    const reportLoad = Effect.suspend(() => {
      const sorted = recentTicks.splice(0).sort((a, b) => a - b)
      const p99 = sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]!
      Metrics.regionPlayers.set(regionId, runtime.playerCount)
      return scheduler.ReportLoad({ regionId, players: runtime.playerCount, tickP99Ms: p99 }).pipe(
        Effect.timeout(Duration.seconds(2)),
        Effect.catchAllCause(() => Effect.void),
        Effect.forkIn(scope)
      )
    })

    const tickLoop = Effect.gen(function*() {
      // At most one tick of catch-up: a late loop with many regions would otherwise run up to five ticks
      // per region back to back, holding the event loop (and every player's inputs) for hundreds of ms.
      const ticker = new FixedTicker(tickRate, performance.now(), REGION_MAX_CATCH_UP)
      while (true) {
        const plan = ticker.next(performance.now())
        for (let i = 0; i < plan.ticksDue; i++) runTick()
        const now = Date.now()
        if (now >= nextLeaseSweep) {
          nextLeaseSweep = now + 1000
          if (mesh !== undefined) {
            yield* reportLoad
            mesh.ledger.sweep(now)
          }
          for (const gone of runtime.expireLeases(now)) {
            Metrics.players.dec()
            writer.put(stateRow(gone, false))
            yield* Effect.logInfo("removed a player whose connection is gone (lease expired)").pipe(
              Effect.annotateLogs({ playerId: gone.playerId })
            )
            // Its gateway died, so no Disconnect will come: the session frees the player's scheduler slot.
            yield* sessions(gone.playerId).LeaseExpired({ worldId, regionId, entityId: gone.id }).pipe(
              Effect.timeout(Duration.seconds(10)),
              Effect.catchAllCause((cause) => Effect.logWarning("could not tell the session of an expired lease", cause)),
              Effect.annotateLogs({ playerId: gone.playerId }),
              Effect.forkIn(scope)
            )
          }
        }
        if (sendsHeartbeats && now >= nextHeartbeat) {
          nextHeartbeat = now + config.health.heartbeatIntervalMs
          yield* sendHeartbeat
        }
        if (runtime.playerCount > 0) emptySince = Date.now()
        else if (Date.now() - emptySince >= emptyGraceMs) return yield* stopTicking
        yield* Effect.sleep(Duration.millis(plan.delayMs))
      }
    }).pipe(Effect.annotateLogs({ regionId }))

    // Handlers and the loop fiber run outside the build's context: capture what keepAlive needs.
    const clusterContext = yield* Effect.context<Sharding.Sharding | Entity.CurrentAddress>()
    const setKeepAlive = (enabled: boolean) => Effect.provide(Entity.keepAlive(enabled), clusterContext)

    let loop: Fiber.RuntimeFiber<void> | undefined
    const startTicking = Effect.gen(function*() {
      if (loop !== undefined) return
      emptySince = Date.now()
      loop = yield* Effect.forkIn(tickLoop, scope)
      yield* setKeepAlive(true)
    })
    // Also runs inside the loop fiber itself, so it must not wait for that fiber's interruption.
    const stopTicking: Effect.Effect<void> = Effect.suspend(() => {
      const fiber = loop
      loop = undefined
      runtime.persistAll()
      // The mesh policy keeps this last report: an idle region is known empty, not lost.
      if (mesh !== undefined) {
        Runtime.runFork(effectRuntime)(
          scheduler.ReportLoad({ regionId, players: runtime.playerCount, tickP99Ms: 0, stopped: true }).pipe(
            Effect.timeout(Duration.seconds(2)),
            Effect.catchAllCause(() => Effect.void),
            Effect.forkIn(scope)
          )
        )
      }
      if (fiber !== undefined) fiber.unsafeInterruptAsFork(fiber.id())
      return setKeepAlive(false)
    })

    yield* startTicking

    return RegionEntity.of({
      Join: ({ payload }) =>
        Effect.gen(function*() {
          if (experience === undefined) {
            return yield* new GameError({ code: ErrorCode.UnknownExperience, message: `no experience "${experienceId}"` })
          }
          let entity = runtime.entityOf(payload.playerId)
          if (entity === undefined && payload.placement !== undefined && mesh !== undefined) {
            const { entityId, x, y, z } = payload.placement
            entity = runtime.addPlayerWithId(payload.playerId, entityId, { x, y, z }, Date.now())
            Metrics.players.inc()
          } else if (entity === undefined && mesh !== undefined) {
            // An open world's entity ids are the world's: without a placement this region cannot take the player.
            return yield* new GameError({ code: ErrorCode.NotInWorld, message: "the player is no longer in this region; join again" })
          } else if (entity === undefined) {
            const stored = yield* players.get(payload.playerId).pipe(
              Effect.map(Option.getOrUndefined),
              Effect.catchAll((error) =>
                Effect.as(Effect.logWarning("could not load player state; spawning fresh", error), undefined)
              )
            )
            const at = stored?.lastExperienceId === experienceId && stored.position !== null
              ? stored.position
              : undefined
            entity = runtime.addPlayer(payload.playerId, at, Date.now())
            Metrics.players.inc()
          } else {
            runtime.addPlayer(payload.playerId, undefined, Date.now()) // renews its lease
            if (!payload.resumed) entity.lastSeq = 0
          }
          yield* startTicking
          worldEdits?.sendStateTo(payload.playerId)
          return {
            experienceId,
            worldId,
            regionId,
            entityId: entity.id,
            x: entity.x,
            y: entity.y,
            z: entity.z,
            cellKey: runtime.cellOf(entity.id) ?? "0,0,0",
            tickRate,
            cellSize: config.region.cellSize,
            interestRadius: config.region.interestRadius
          }
        }).pipe(Effect.annotateLogs({ regionId, playerId: payload.playerId })),
      Leave: ({ payload }) =>
        Effect.sync(() => {
          const entity = runtime.removePlayer(payload.playerId)
          if (entity !== undefined) {
            Metrics.players.dec()
            writer.put(stateRow(entity, false))
          }
        }),
      Inputs: ({ payload }) =>
        Effect.try({ try: () => runtime.enqueueBytes(payload.bytes), catch: (error) => String(error) }).pipe(
          Effect.catchAll((reason) =>
            Effect.logWarning(`dropped a malformed input batch: ${reason}`).pipe(
              Effect.annotateLogs({ regionId, gatewayId: payload.gatewayId })
            )
          )
        ),
      Present: ({ payload }) => Effect.sync(() => runtime.renewLeases(payload.entityIds, Date.now())),
      Handoff: ({ payload }) =>
        Effect.gen(function*() {
          const { inputs, ...state } = payload
          const verdict = runtime.acceptHandoff(state, inputs)
          if (verdict === "accepted") yield* startTicking
          return verdict
        }),
      AbortHandoff: ({ payload }) => Effect.sync(() => runtime.abortHandoff(payload.transferId)),
      Ghosts: ({ payload }) => Effect.sync(() => runtime.applyGhosts(payload.from, payload.records)),
      Authority: () => Effect.sync(() => runtime.authorityClaims()),
      Edit: ({ payload }) =>
        Effect.suspend(() => {
          if (worldEdits === undefined) {
            return Effect.fail(new GameError({ code: ErrorCode.NotInWorld, message: "world edits are for open worlds" }))
          }
          const { playerId, ...edit } = payload
          const verdict = worldEdits.edit(playerId, edit)
          return verdict.ok
            ? Effect.succeed("ok" as const)
            : Effect.fail(new GameError({ code: verdict.code, message: verdict.message }))
        }),
      Shutdown: () => stopTicking,
      Info: () => Effect.succeed({ players: runtime.playerCount, tick: runtime.world.tick, ticking: loop !== undefined })
    })
  }),
  // A ticking region is kept alive by keepAlive; once stopped it should go promptly.
  { maxIdleTime: Duration.seconds(5) }
)
