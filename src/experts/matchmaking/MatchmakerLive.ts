import { Entity, type Sharding } from "@effect/cluster"
import { Duration, Effect, Either, Schedule } from "effect"
import { AppConfig } from "../../config/AppConfig.js"
import type { MatchmakingModeConfig } from "../../config/TesseraConfig.js"
import { ControlError } from "../../control/ControlError.js"
import { ClientDelivery } from "../../gateway/ClientDelivery.js"
import { encode } from "../../protocol/Codec.js"
import { GameError } from "../../protocol/GameError.js"
import type { MatchEndedFrame, MatchFoundFrame, MatchQueuedFrame, MatchReadyFrame } from "../../protocol/Messages.js"
import { ErrorCode, MatchEndReason, ServerOp } from "../../protocol/Opcodes.js"
import { SCHEDULER_ID, SchedulerEntity } from "../../scheduler/SchedulerEntity.js"
import {
  accept,
  cancel,
  decline,
  enqueue,
  makeMatchmakerState,
  type MatchMode,
  type MatchmakerEvent,
  type OpenInstance,
  tick,
  ticketStatus
} from "./Matchmaker.js"
import { matchQueueKey, MatchmakerEntity, type TicketState } from "./MatchmakerEntity.js"

/** Every call to another entity is bounded: a group no runner hosts would otherwise retry forever. */
const CALL_TIMEOUT = Duration.seconds(5)
/** How often a queue with players reports its length to the scheduler (and at once when it changes). */
const QUEUE_REPORT_MS = 2000

/** The pure core's mode of a configured queue. */
export const matchModeOf = (m: MatchmakingModeConfig): MatchMode => ({
  experienceId: m.experience,
  mode: m.mode,
  matchSize: m.matchSize,
  ...(m.minPlayers === 0 ? {} : { minPlayers: m.minPlayers }),
  initialSkillWindow: m.initialSkillWindow,
  skillWindowGrowthPerSecond: m.skillWindowGrowthPerSecond,
  maxSkillWindow: m.maxSkillWindow,
  ticketTimeoutMs: m.ticketTimeoutSeconds * 1000,
  readyCheckTimeoutMs: m.readyCheckSeconds * 1000,
  maxLatencyMs: m.maxLatencyMs
})

const rejected = (message: string) => new GameError({ code: ErrorCode.MatchRejected, message })
const notQueued = (message: string) => new GameError({ code: ErrorCode.NotQueued, message })

/** A matched instance this queue started (for backfill). */
interface Started {
  readonly region: string
  readonly averageSkill: number
}

/**
 * Matchmaker expert handlers: one entity per configured (experience, mode)
 * queue. While it has tickets, lobbies or allocations in flight it ticks every
 * `matchmaking.tick_ms` and is kept alive; then it passivates like any idle
 * entity (its state is only tickets, so nothing is lost).
 *
 * On a confirmed match it asks the scheduler for an empty instance (Spawn)
 * and puts every player there (Assign for a player in no world, Route for
 * one in another instance): a connected player is moved seamlessly (Moved +
 * Joined, no Join needed), then gets MatchReady. While it has players queued
 * or in a ready check it reports their number to the scheduler (ReportQueue,
 * an input of the experience's autoscaling), and 0 once they are gone.
 *
 * Skill comes from the client's MatchQueue (no ratings are stored yet); every
 * member of a party gets the party's skill. Regions: Tessera places instances
 * in one deployment, so a match's region is recorded (for backfill by
 * latency) but does not steer where the instance runs.
 */
export const MatchmakerLive = MatchmakerEntity.toLayer(
  Effect.gen(function*() {
    const key = (yield* Entity.CurrentAddress).entityId
    const config = yield* AppConfig
    const delivery = yield* ClientDelivery
    const scheduler = (yield* SchedulerEntity.client)(SCHEDULER_ID)
    const scope = yield* Effect.scope
    const clusterContext = yield* Effect.context<Sharding.Sharding | Entity.CurrentAddress>()
    const setKeepAlive = (enabled: boolean) => Effect.provide(Entity.keepAlive(enabled), clusterContext)

    const modeConfig = config.matchmaking.modes.find((m) => matchQueueKey(m.experience, m.mode) === key)
    if (modeConfig === undefined) {
      const refuse = Effect.fail(rejected(`no matchmaking mode "${key}" is configured`))
      return MatchmakerEntity.of({
        Enqueue: () => refuse,
        Cancel: () => refuse,
        Accept: () => refuse,
        Decline: () => refuse,
        Status: () => Effect.succeed(null)
      })
    }
    const mode = matchModeOf(modeConfig)
    const experienceId = mode.experienceId
    const regions = config.matchmaking.regions
    const state = makeMatchmakerState([mode])
    /** Distinguishes this activation's ids from an earlier one's. */
    const epoch = Date.now().toString(36)
    const idPrefix = `${key}/${epoch}.`
    let nextTicket = 0
    /** Players of every ticket still queued or in a ready check (the core's LobbyFailed names tickets only). */
    const ticketPlayers = new Map<string, ReadonlyArray<string>>()
    const started = new Map<string, Started>()
    let inFlight = 0

    const send = (players: ReadonlyArray<string>, frame: MatchQueuedFrame | MatchFoundFrame | MatchReadyFrame | MatchEndedFrame) => {
      const bytes = encode(frame)
      for (const p of players) delivery.sendToPlayer(p, bytes)
    }
    const externalMatchId = (coreId: string) => idPrefix + coreId
    const coreMatchId = (id: string): string | undefined => (id.startsWith(idPrefix) ? id.slice(idPrefix.length) : undefined)

    const bounded = <A, E>(what: string, effect: Effect.Effect<A, E>) =>
      effect.pipe(
        Effect.timeoutFail({ duration: CALL_TIMEOUT, onTimeout: () => new Error(`${what} timed out`) }),
        Effect.catchAllDefect((defect) => Effect.fail(new Error(`${what} failed: ${String(defect)}`)))
      )
    const messageOf = (e: unknown): string =>
      e instanceof ControlError || e instanceof GameError || e instanceof Error ? e.message : String(e)

    /**
     * Puts one player into `worldId`: Assign for a player in no world (it may
     * be there already: fine), Route for one placed in another instance of the
     * experience (the scheduler says which, with a typed error). Either way
     * its session moves a connected client there seamlessly.
     */
    const routeOne = (playerId: string, worldId: string, matchId: string): Effect.Effect<void, string> => {
      const reason = `matched (${matchId}): moved to ${worldId}`
      return bounded("assign", scheduler.Assign({ playerId, worldId, actor: "scheduler", reason })).pipe(
        Effect.catchTag("PlayerInAnotherWorld", () => bounded("route", scheduler.Route({ playerId, worldId, actor: "scheduler", reason }))),
        Effect.asVoid,
        Effect.mapError(messageOf)
      )
    }

    /** Starts (or, for backfill, joins) the match's instance, routes the players and tells each one. */
    const allocate = (
      matchId: string,
      players: ReadonlyArray<string>,
      region: string,
      averageSkill: number,
      worldId: string | null
    ) =>
      Effect.gen(function*() {
        let world = worldId
        if (world === null) {
          const spawned = yield* Effect.either(bounded("spawn", scheduler.Spawn({ experienceId, actor: "scheduler" })))
          if (Either.isLeft(spawned)) {
            const message = `no instance could be started for the match: ${messageOf(spawned.left)}`
            yield* Effect.logWarning(message).pipe(Effect.annotateLogs({ matchId }))
            return send(players, [ServerOp.MatchEnded, matchId, MatchEndReason.Failed, message])
          }
          world = spawned.right.worldId
        }
        const target = world
        const outcomes = yield* Effect.forEach(players, (p) => Effect.either(routeOne(p, target, matchId)), { concurrency: 16 })
        outcomes.forEach((outcome, i) => {
          const player = players[i]!
          if (Either.isRight(outcome)) {
            send([player], [ServerOp.MatchReady, matchId, target, experienceId])
          } else {
            send([player], [ServerOp.MatchEnded, matchId, MatchEndReason.Failed, `could not be routed to the match: ${outcome.left}`])
          }
        })
        const failed = outcomes.filter(Either.isLeft).length
        if (failed > 0) yield* Effect.logWarning(`${failed} of ${players.length} players could not be routed`).pipe(Effect.annotateLogs({ matchId }))
        if (worldId === null) started.set(target, { region, averageSkill })
      }).pipe(
        Effect.catchAllCause((cause) => Effect.logError("match allocation failed", cause)),
        Effect.annotateLogs({ matchId, worldId: worldId ?? "" })
      )

    /** Turns the core's events into client frames and scheduler calls (allocations run in order). */
    const handle = (events: ReadonlyArray<MatchmakerEvent>): Effect.Effect<void> =>
      Effect.forEach(events, (event) => {
        switch (event._tag) {
          case "Matched":
            return Effect.sync(() =>
              send(event.players, [ServerOp.MatchFound, externalMatchId(event.matchId), event.readyCheckDeadline, event.players])
            )
          case "MatchReady":
            return Effect.suspend(() => {
              for (const t of event.tickets) ticketPlayers.delete(t)
              return allocate(externalMatchId(event.matchId), event.players, event.region, event.averageSkill, null)
            })
          case "Backfilled":
            return Effect.suspend(() => {
              ticketPlayers.delete(event.ticketId)
              send(event.players, [ServerOp.MatchFound, event.ticketId, null, event.players])
              return allocate(event.ticketId, event.players, event.region, 0, event.worldId)
            })
          case "TimedOut":
            return Effect.sync(() => {
              ticketPlayers.delete(event.ticketId)
              send(event.players, [ServerOp.MatchEnded, event.ticketId, MatchEndReason.Timeout, event.reason])
            })
          case "Cancelled":
            return Effect.sync(() => {
              ticketPlayers.delete(event.ticketId)
            })
          case "LobbyFailed":
            return Effect.sync(() => {
              const matchId = externalMatchId(event.matchId)
              for (const t of event.removed) {
                send(ticketPlayers.get(t) ?? [], [ServerOp.MatchEnded, matchId, MatchEndReason.LobbyFailed, `${event.reason}; your ticket was removed`])
                ticketPlayers.delete(t)
              }
              for (const t of event.requeued) {
                const players = ticketPlayers.get(t) ?? []
                send(players, [ServerOp.MatchEnded, matchId, MatchEndReason.LobbyFailed, `${event.reason}; you are queued again`])
                send(players, [ServerOp.MatchQueued, t])
              }
            })
        }
      }, { discard: true })

    /** Backfill candidates: this queue's started instances with free match slots, from the scheduler's registry. */
    const openInstances: Effect.Effect<ReadonlyArray<OpenInstance>> = Effect.gen(function*() {
      if (!modeConfig.backfill || started.size === 0) return []
      const listed = yield* bounded("list servers", scheduler.ListServers({ experienceId }))
      const alive = new Set<string>()
      const open: Array<OpenInstance> = []
      for (const i of listed.instances) {
        const mine = started.get(i.worldId)
        if (mine === undefined) continue
        alive.add(i.worldId)
        const freeSlots = Math.min(mode.matchSize, i.maxPlayers) - i.players
        if (freeSlots > 0) open.push({ worldId: i.worldId, experienceId, mode: mode.mode, region: mine.region, freeSlots, averageSkill: mine.averageSkill })
      }
      for (const worldId of [...started.keys()]) if (!alive.has(worldId)) started.delete(worldId)
      return open
    }).pipe(Effect.catchAll((error) => Effect.as(Effect.logWarning("backfill: could not list instances", error), [])))

    /** Players waiting for a place: queued or in a ready check (an allocation in flight has them placed). */
    const waiting = () => state.players.size
    /** The count the scheduler last took, and when; one report in flight at a time (no reordering). */
    let reported = 0
    let reportedAt = 0
    let reporting = false
    const sendReport = (queued: number) =>
      Effect.suspend(() => {
        reporting = true
        return bounded("report queue", scheduler.ReportQueue({ experienceId, queued, source: key })).pipe(
          Effect.tap(() =>
            Effect.sync(() => {
              reported = queued
              reportedAt = Date.now()
            })
          ),
          Effect.ensuring(Effect.sync(() => void (reporting = false)))
        )
      })
    /** Reports the queue when it changed, or every QUEUE_REPORT_MS while non-empty; in the background, never fails. */
    const reportQueue = Effect.suspend(() => {
      const queued = waiting()
      if (reporting || (queued === reported && (queued === 0 || Date.now() - reportedAt < QUEUE_REPORT_MS))) return Effect.void
      return sendReport(queued).pipe(
        Effect.catchAll((error) => Effect.logDebug(`could not report the queue: ${messageOf(error)}`)),
        Effect.forkIn(scope),
        Effect.asVoid
      )
    })
    /** The last word once the queue is empty: 0, after any report still in flight (retried: autoscaling would see a stale queue until its TTL). */
    const reportEmpty = Effect.gen(function*() {
      while (reporting) yield* Effect.sleep(Duration.millis(20))
      if (reported === 0) return
      yield* sendReport(0).pipe(
        Effect.retry(Schedule.recurs(2)),
        Effect.catchAll((error) => Effect.logWarning(`could not report the empty queue: ${messageOf(error)}`))
      )
    })
    const idle = () => state.tickets.size === 0 && state.lobbies.size === 0 && inFlight === 0

    let ticking = false
    const tickLoop: Effect.Effect<void> = Effect.gen(function*() {
      while (true) {
        yield* Effect.sleep(Duration.millis(config.matchmaking.tickMs))
        const open = yield* openInstances
        yield* handle(tick(state, Date.now(), open))
        yield* reportQueue
        if (idle()) {
          yield* reportEmpty
          // Still idle (no Enqueue while reporting: that one found this loop ticking and relies on it)?
          if (!idle()) continue
          ticking = false
          return yield* setKeepAlive(false)
        }
      }
    }).pipe(
      Effect.catchAllCause((cause) =>
        Effect.zipRight(Effect.logError("matchmaker tick loop died", cause), Effect.sync(() => void (ticking = false)))
      ),
      Effect.annotateLogs({ queue: key })
    )
    const startTicking = Effect.suspend(() => {
      if (ticking) return Effect.void
      ticking = true
      return Effect.zipRight(setKeepAlive(true), Effect.asVoid(Effect.forkIn(tickLoop, scope)))
    })
    /** Handles events outside the caller's fiber (an Accept must not wait for the instance to start). */
    const handleInBackground = (events: ReadonlyArray<MatchmakerEvent>) =>
      events.length === 0 ? Effect.void : Effect.suspend(() => {
        inFlight++
        return handle(events).pipe(
          Effect.ensuring(Effect.sync(() => void inFlight--)),
          Effect.forkIn(scope),
          Effect.asVoid
        )
      })

    const ticketOf = (playerId: string) => state.players.get(playerId)

    return MatchmakerEntity.of({
      Enqueue: ({ payload }) =>
        Effect.gen(function*() {
          const leader = payload.players[0]
          if (leader === undefined) return yield* rejected("a ticket needs at least one player")
          if (payload.leaderExperienceId !== null && payload.leaderExperienceId !== experienceId) {
            return yield* rejected(
              `you are playing "${payload.leaderExperienceId}"; leave it before queueing for "${mode.mode}" of "${experienceId}"`
            )
          }
          const names = Object.keys(payload.latencies)
          const unknown = names.find((r) => !regions.includes(r))
          if (unknown !== undefined) return yield* rejected(`unknown region "${unknown}" (known: ${regions.join(", ")})`)
          const latencies: Record<string, number> = {}
          if (names.length === 0) for (const r of regions) latencies[r] = 0
          else for (const r of names) latencies[r] = payload.latencies[r]!
          const ticketId = `${idPrefix}t${++nextTicket}`
          const result = enqueue(state, {
            ticketId,
            experienceId,
            mode: mode.mode,
            players: payload.players,
            latencies,
            createdAt: Date.now()
          })
          if (!result.ok) return yield* rejected(result.reason)
          const players = payload.players.map((p) => p.playerId)
          ticketPlayers.set(ticketId, players)
          send(players, [ServerOp.MatchQueued, ticketId])
          yield* startTicking
          return { ticketId }
        }).pipe(Effect.annotateLogs({ queue: key })),
      Cancel: ({ payload }) =>
        Effect.gen(function*() {
          const ticketId = ticketOf(payload.playerId)
          if (ticketId === undefined) return yield* notQueued(`you are not queued for "${mode.mode}" of "${experienceId}"`)
          const players = ticketPlayers.get(ticketId) ?? [payload.playerId]
          const result = cancel(state, ticketId)
          if (!result.ok) return yield* notQueued(result.reason)
          send(players, [ServerOp.MatchEnded, ticketId, MatchEndReason.Cancelled, payload.reason])
          yield* handleInBackground(result.events)
          return { ticketId }
        }),
      Accept: ({ payload }) =>
        Effect.gen(function*() {
          const core = coreMatchId(payload.matchId)
          const result = core === undefined
            ? { ok: false as const, reason: `match "${payload.matchId}" has no ready check in progress` }
            : accept(state, core, payload.playerId)
          if (!result.ok) return yield* notQueued(result.reason)
          yield* handleInBackground(result.events)
        }),
      Decline: ({ payload }) =>
        Effect.gen(function*() {
          const core = coreMatchId(payload.matchId)
          const result = core === undefined
            ? { ok: false as const, reason: `match "${payload.matchId}" has no ready check in progress` }
            : decline(state, core, payload.playerId)
          if (!result.ok) return yield* notQueued(result.reason)
          yield* handleInBackground(result.events)
        }),
      Status: ({ payload }) =>
        Effect.sync((): TicketState | null => {
          const ticketId = ticketOf(payload.playerId)
          const status = ticketId === undefined ? undefined : ticketStatus(state, ticketId)
          if (ticketId === undefined || status === undefined) return null
          const players = ticketPlayers.get(ticketId) ?? []
          return status._tag === "Queued"
            ? { ticketId, players, state: "queued", matchId: null, since: status.since, deadline: null }
            : {
              ticketId,
              players,
              state: "ready_check",
              matchId: externalMatchId(status.matchId),
              since: state.tickets.get(ticketId)?.ticket.createdAt ?? 0,
              deadline: status.deadline
            }
        })
    })
  }),
  { maxIdleTime: Duration.minutes(1) }
)
