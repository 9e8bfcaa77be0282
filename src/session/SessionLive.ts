import { Entity } from "@effect/cluster"
import { Duration, Effect, Fiber, Layer } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import * as Metrics from "../observability/Metrics.js"
import { GameError } from "../protocol/GameError.js"
import type { JoinedInfo, Location } from "../protocol/Location.js"
import { ErrorCode } from "../protocol/Opcodes.js"
import { RegionEntity } from "../region/RegionEntity.js"
import { SCHEDULER_ID, SchedulerEntity } from "../scheduler/SchedulerEntity.js"
import { type ConnectionRef, SessionEntity } from "./SessionEntity.js"

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
 * Session entity handlers. While the player is connected the session gets no
 * traffic (inputs go gateway -> region), so it may passivate; the gateway
 * keeps the small state (token, location) in the socket's user data and
 * hands it back with every later call (Disconnect, JoinWorld, LeaveWorld). The session then holds the player's place for
 * the resume window and removes it from its world when the window closes.
 */
export const SessionLive = Effect.gen(function*() {
  const config = yield* AppConfig
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

      let connection: ConnectionRef | null = null
      let resumeToken = newResumeToken()
      let location: Location | null = null
      let expiry: Fiber.RuntimeFiber<void, never> | undefined

      Metrics.sessions.inc()
      yield* Effect.addFinalizer(() => Effect.sync(() => Metrics.sessions.dec()))

      const cancelExpiry = Effect.suspend(() => {
        const fiber = expiry
        expiry = undefined
        return fiber === undefined ? Effect.void : Fiber.interrupt(fiber)
      })

      const joinRegion = (at: Location, gatewayId: string, resumed: boolean) =>
        bounded("region join", regions(at.regionId).Join({ playerId, gatewayId, resumed }))

      const leaveWorld = Effect.gen(function*() {
        const was = location
        if (was === null) return null
        location = null
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
              if (joined === null) location = null
            }
            resumeToken = newResumeToken()
            connection = { gatewayId: payload.gatewayId, connectionId: payload.connectionId }
            return { resumeToken, resumed: joined !== null, joined, replaced }
          }),
        Disconnect: ({ payload }) =>
          Effect.gen(function*() {
            if (connection !== null && connection.connectionId !== payload.connectionId) return // a stale socket
            if (connection === null) {
              // This session passivated while the player was connected: adopt the gateway's copy.
              resumeToken = payload.resumeToken
              location = payload.location
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
            location ??= payload.known
            if (location !== null && location.experienceId !== payload.experienceId) yield* leaveWorld
            const placed = yield* bounded(
              "scheduler place",
              scheduler(SCHEDULER_ID).Place({ experienceId: payload.experienceId, playerId })
            )
            const at: Location = { experienceId: payload.experienceId, worldId: placed.worldId, regionId: placed.regionId }
            const joined = yield* joinRegion(at, payload.gatewayId, false).pipe(
              Effect.tapError(() =>
                bounded("scheduler left", scheduler(SCHEDULER_ID).Left({ playerId, worldId: placed.worldId })).pipe(
                  Effect.ignore
                )
              )
            )
            location = at
            return joined
          }).pipe(Effect.annotateLogs({ playerId })),
        LeaveWorld: ({ payload }) =>
          Effect.suspend(() => {
            location ??= payload.known
            return leaveWorld
          })
      })
    }),
    { maxIdleTime }
  )
}).pipe(Layer.unwrapEffect)
