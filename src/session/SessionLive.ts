import { Entity } from "@effect/cluster"
import { Duration, Effect, Fiber, Layer, Option } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { ClientDelivery } from "../gateway/ClientDelivery.js"
import * as Metrics from "../observability/Metrics.js"
import { encode } from "../protocol/Codec.js"
import { GameError } from "../protocol/GameError.js"
import type { JoinedInfo, Location } from "../protocol/Location.js"
import type { LeftFrame } from "../protocol/Messages.js"
import { ErrorCode, ServerOp } from "../protocol/Opcodes.js"
import { RegionEntity } from "../region/RegionEntity.js"
import { SCHEDULER_ID, SchedulerEntity } from "../scheduler/SchedulerEntity.js"
import { type ConnectionRef, SessionEntity } from "./SessionEntity.js"
import { SessionStore, type StoredSession } from "./SessionStore.js"

const storedKey = (s: StoredSession): string =>
  `${s.resumeToken}|${s.location.experienceId}|${s.location.worldId}|${s.location.regionId}|${s.entityId ?? ""}`

/** Every call to another entity is bounded: a group no runner hosts would otherwise retry forever. */
const CALL_TIMEOUT = Duration.seconds(5)

const newResumeToken = (): string => Buffer.from(crypto.getRandomValues(new Uint8Array(18))).toString("base64url")

/** Turns any failure of a cross-entity call into a GameError for the client. */
const bounded = <A, E>(what: string, effect: Effect.Effect<A, E>): Effect.Effect<A, GameError> =>
  effect.pipe(
    Effect.timeoutFail({
      duration: CALL_TIMEOUT,
      onTimeout: () => new GameError({ code: ErrorCode.Internal, message: `${what} timed out` })
    }),
    Effect.catchAll((error) =>
      error instanceof GameError
        ? Effect.fail(error)
        : Effect.zipRight(
          Effect.logWarning(`${what} failed`, error),
          Effect.fail(new GameError({ code: ErrorCode.Internal, message: `${what} failed` }))
        )
    ),
    Effect.catchAllDefect((defect) =>
      Effect.zipRight(
        Effect.logError(`${what} died`, defect),
        Effect.fail(new GameError({ code: ErrorCode.Internal, message: `${what} failed` }))
      )
    )
  )

/**
 * Whether a region's lease expiry of entity `expired.entityId` concerns the
 * session's current place: yes when the session knows no place (it lost its
 * state) or still points at that region with that entity (or with an entity
 * it does not know); no when the player has since moved to another region,
 * or resumed or rejoined there with a new entity.
 */
export const leaseExpiryApplies = (
  current: { readonly location: Location | null; readonly entityId: number | null },
  expired: { readonly worldId: string; readonly regionId: string; readonly entityId: number }
): boolean =>
  current.location === null ||
  (current.location.regionId === expired.regionId &&
    (current.entityId === null || current.entityId === expired.entityId)) ||
  // An open world's entity ids are the world's: the entity may have moved on since the session last heard.
  (current.location.worldId === expired.worldId && current.entityId === expired.entityId)

/**
 * Whether a relocation applies to where the session thinks the player is:
 * the same world, and the region it left (or the entity it knows), not a
 * stale message about an earlier stay.
 */
export const relocationApplies = (
  current: { readonly location: Location | null; readonly entityId: number | null; readonly epoch: number },
  moved: { readonly worldId: string; readonly fromRegion: string; readonly entityId: number; readonly epoch: number }
): boolean =>
  current.location !== null &&
  current.location.worldId === moved.worldId &&
  (current.entityId === moved.entityId || (current.entityId === null && current.location.regionId === moved.fromRegion)) &&
  // Relocations come from different regions (maybe different runners), so they can arrive out of order:
  // the entity's authority epoch orders them. One from where the session thinks the player is always applies
  // (after a rejoin the entity's epochs start again).
  (moved.epoch > current.epoch || current.location.regionId === moved.fromRegion)

/**
 * Session entity handlers. While the player is connected the session gets no
 * traffic (inputs go gateway -> region), so it may passivate; the gateway
 * keeps the small state (token, location) in the socket's user data and
 * hands it back with every later call (Disconnect, JoinWorld, LeaveWorld). The session then holds the player's place for
 * the resume window and removes it from its world when the window closes.
 *
 * A gateway killed outright hands nothing back, so the session also saves
 * that state in the SessionStore whenever it changes and reloads it on
 * activation: the player resumes through another gateway. Its region's lease
 * then runs out and the region tells the session (LeaseExpired), which frees
 * the player's slot in the scheduler if nobody has picked it up meanwhile.
 */
export const SessionLive = Effect.gen(function*() {
  const config = yield* AppConfig
  const store = yield* SessionStore
  const delivery = yield* ClientDelivery
  const resumeWindow = Duration.seconds(config.session.resumeWindowSeconds)
  // The session must outlive its own resume timer.
  const maxIdleTime = Duration.seconds(
    Math.max(config.cluster.entityMaxIdleSeconds, config.session.resumeWindowSeconds + 5)
  )
  return SessionEntity.toLayer(
    Effect.gen(function*() {
      const address = yield* Entity.CurrentAddress
      const playerId = address.entityId
      const regions = yield* RegionEntity.client
      const scheduler = yield* SchedulerEntity.client
      const scope = yield* Effect.scope

      // A previous activation's state (this session passivated, or its runner died).
      const saved = yield* store.load(playerId)
      let connection: ConnectionRef | null = null
      let resumeToken = saved?.resumeToken ?? newResumeToken()
      let location: Location | null = saved?.location ?? null
      /** The player's entity in `location.regionId`, when known (the gateway's copy does not carry it). */
      let entityId: number | null = saved?.entityId ?? null
      /** The authority epoch of the last relocation applied (open worlds; in memory: a reload accepts the next one). */
      let relocationEpoch = 0
      let expiry: Fiber.RuntimeFiber<void, never> | undefined

      /** Saves the state when it differs from what was last saved; never waits, never fails. */
      let savedAs = saved === undefined ? "" : storedKey(saved)
      const persist = Effect.suspend(() => {
        const now: StoredSession | undefined = location === null ? undefined : { resumeToken, location, entityId }
        const key = now === undefined ? "" : storedKey(now)
        if (key === savedAs) return Effect.void
        savedAs = key
        return store.save(playerId, now)
      })
      /** Takes a place the caller knows of (the gateway's copy); an entity id only holds for the same region. */
      const adopt = (known: Location | null) => {
        if (known?.regionId !== location?.regionId) entityId = null
        location = known
      }

      Metrics.sessions.inc()
      yield* Effect.addFinalizer(() => Effect.sync(() => Metrics.sessions.dec()))

      const cancelExpiry = Effect.suspend(() => {
        const fiber = expiry
        expiry = undefined
        return fiber === undefined ? Effect.void : Fiber.interrupt(fiber)
      })

      const joinRegion = (
        at: Location,
        gatewayId: string,
        resumed: boolean,
        placement?: { readonly entityId: number; readonly x: number; readonly y: number; readonly z: number }
      ) =>
        bounded(
          "region join",
          regions(at.regionId).Join(placement === undefined ? { playerId, gatewayId, resumed } : { playerId, gatewayId, resumed, placement })
        )

      const leaveWorld = Effect.gen(function*() {
        const was = location
        if (was === null) return null
        location = null
        entityId = null
        yield* persist
        yield* bounded("region leave", regions(was.regionId).Leave({ playerId })).pipe(Effect.ignore)
        yield* bounded("scheduler left", scheduler(SCHEDULER_ID).Left({ playerId, worldId: was.worldId })).pipe(
          Effect.ignore
        )
        return was
      })

      return SessionEntity.of({
        Connect: ({ payload }) =>
          Effect.gen(function*() {
            yield* cancelExpiry
            const replaced = connection !== null && connection.connectionId !== payload.connectionId
              ? connection
              : null
            const resumed = payload.resumeToken !== undefined && payload.resumeToken === resumeToken &&
              location !== null
            let joined: JoinedInfo | null = null
            if (resumed && location !== null) {
              joined = yield* joinRegion(location, payload.gatewayId, true).pipe(
                Effect.catchAll(() => Effect.succeed(null))
              )
              if (joined === null) {
                location = null
                entityId = null
              } else entityId = joined.entityId
            }
            resumeToken = newResumeToken()
            connection = { gatewayId: payload.gatewayId, connectionId: payload.connectionId }
            yield* persist
            return { resumeToken, resumed: joined !== null, joined, replaced }
          }).pipe(Effect.annotateLogs({ playerId })),
        Disconnect: ({ payload }) =>
          Effect.gen(function*() {
            if (connection !== null && connection.connectionId !== payload.connectionId) return // a stale socket
            if (connection === null) {
              // This session passivated while the player was connected: adopt the gateway's copy.
              resumeToken = payload.resumeToken
              adopt(payload.location)
              yield* persist
            }
            connection = null
            yield* cancelExpiry
            if (location === null) return
            expiry = yield* Effect.sleep(resumeWindow).pipe(
              Effect.zipRight(Effect.suspend(() => (connection === null ? leaveWorld : Effect.void))),
              Effect.asVoid,
              Effect.annotateLogs({ playerId }),
              Effect.forkIn(scope)
            )
          }),
        JoinWorld: ({ payload }) =>
          Effect.gen(function*() {
            if (location === null) adopt(payload.known)
            if (location !== null && location.experienceId !== payload.experienceId) yield* leaveWorld
            const placed = yield* bounded(
              "scheduler place",
              scheduler(SCHEDULER_ID).Place({ experienceId: payload.experienceId, playerId })
            )
            const at: Location = { experienceId: payload.experienceId, worldId: placed.worldId, regionId: placed.regionId }
            const joined = yield* joinRegion(at, payload.gatewayId, false, placed.placement).pipe(
              Effect.tapError(() =>
                bounded("scheduler left", scheduler(SCHEDULER_ID).Left({ playerId, worldId: placed.worldId })).pipe(
                  Effect.ignore
                )
              )
            )
            location = at
            entityId = joined.entityId
            yield* persist
            return joined
          }).pipe(Effect.annotateLogs({ playerId })),
        LeaveWorld: ({ payload }) =>
          Effect.suspend(() => {
            if (location === null) adopt(payload.known)
            return leaveWorld
          }),
        LeaseExpired: ({ payload }) =>
          Effect.gen(function*() {
            if (!leaseExpiryApplies({ location, entityId }, payload)) {
              return yield* Effect.logDebug("region lease expired for an entity the player no longer uses")
            }
            const worldId = location?.worldId ?? payload.worldId
            if (location !== null) {
              // No gateway vouched for the entity for a whole lease: the connection died with its gateway.
              connection = null
              location = null
              entityId = null
              yield* cancelExpiry
              yield* persist
            }
            yield* bounded("scheduler left", scheduler(SCHEDULER_ID).Left({ playerId, worldId })).pipe(Effect.ignore)
            yield* Effect.logInfo("player's region lease expired; its place is freed")
          }).pipe(Effect.annotateLogs({ playerId, worldId: payload.worldId, regionId: payload.regionId })),
        Relocate: ({ payload }) =>
          Effect.gen(function*() {
            const was = location
            // Moved on meanwhile (its own join or leave): the scheduler's move is stale. A placement
            // from no world (fromWorld null) is stale when the player is in some world by now.
            const stale = payload.fromWorld === null
              ? was !== null && was.worldId !== payload.to?.worldId
              : was !== null && was.worldId !== payload.fromWorld
            if (stale) return "stale" as const
            // Not in a resume window: the player is connected (or this activation does not know; the gateway tells).
            const reachable = expiry === undefined
            location = payload.to
            entityId = null
            yield* persist
            if (was !== null && was.regionId !== payload.to?.regionId) {
              yield* bounded("region leave", regions(was.regionId).Leave({ playerId })).pipe(Effect.ignore)
            }
            if (payload.to === null) {
              // Nowhere to go: the gateway says why (Moved) and closes the connection with 4006.
              return delivery.relocate(playerId, null, payload.reason) ? "told" as const : "not_connected" as const
            }
            if (reachable) {
              // Seamless: into the target region first, then the gateway switches the connection over.
              const to = payload.to
              const joined = yield* joinRegion(to, connection?.gatewayId ?? "", false).pipe(Effect.option)
              if (Option.isSome(joined)) {
                if (delivery.relocate(playerId, joined.value, payload.reason)) {
                  entityId = joined.value.entityId
                  yield* persist
                  return "told" as const
                }
                // Nobody to switch over: no entity without a connection; the player enters on its next Join or resume.
                yield* bounded("region leave", regions(to.regionId).Leave({ playerId })).pipe(Effect.ignore)
                return "not_connected" as const
              }
              yield* Effect.logWarning("relocation: the target region did not take the player; telling it to join again")
            }
            // The fallback: tell the client to join again (its next Join lands in `to`).
            const frame: LeftFrame = [ServerOp.Left, `${payload.reason}: join ${payload.to.experienceId} again`]
            return delivery.sendToPlayer(playerId, encode(frame)) ? "told" as const : "not_connected" as const
          }).pipe(Effect.annotateLogs({ playerId, worldId: payload.fromWorld ?? payload.to?.worldId ?? "" })),
        Relocated: ({ payload }) =>
          Effect.suspend(() => {
            if (!relocationApplies({ location, entityId, epoch: relocationEpoch }, payload) || location === null) {
              return Effect.void
            }
            location = { ...location, regionId: payload.regionId }
            entityId = payload.entityId
            relocationEpoch = payload.epoch
            return persist
          })
      })
    }),
    { maxIdleTime }
  )
}).pipe(Layer.unwrapEffect)
