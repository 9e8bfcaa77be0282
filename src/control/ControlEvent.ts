import { Schema } from "effect"

/**
 * The control plane's events (Forge lifecycle events): what the scheduler,
 * the gateways and admins did, streamed live to admins, kept in a bounded
 * history and, for the ones that matter later, in the audit log.
 *
 * Every field is plain JSON (strings, numbers, literals), so the encoded form
 * of an event equals its type: `JSON.stringify` of an envelope and
 * `Schema.encode(ControlEnvelopeJson)` give the same text. Decode what comes
 * from outside (an admin tool replaying a stream) with `ControlEnvelopeJson`.
 */

/**
 * Who did it: `admin:<key id>` for an admin API call (the id of the admin key
 * used, never the key itself), `scheduler` for the scheduler's own decisions
 * (scaling, placement, health), `system` for everything else (gateways,
 * runners, boot and shutdown).
 */
export const Actor = Schema.Union(
  Schema.Literal("scheduler", "system"),
  Schema.TemplateLiteral(Schema.Literal("admin:"), Schema.String)
)
export type Actor = typeof Actor.Type

/** The actor of an admin API call made with the admin key `keyId`. */
export const adminActor = (keyId: string): Actor => `admin:${keyId}`

/** True for actors of the form `admin:<key id>`. */
export const isAdminActor = (actor: Actor): actor is `admin:${string}` => actor.startsWith("admin:")

/** Health of an instance or a runner as the scheduler's health tracker sees it. */
export const HealthStatus = Schema.Literal("healthy", "unhealthy", "unknown")
export type HealthStatus = typeof HealthStatus.Type

/** What a health change is about. */
export const HealthTargetKind = Schema.Literal("instance", "runner")
export type HealthTargetKind = typeof HealthTargetKind.Type

export const ScalingDecisionKind = Schema.Literal("ScaleUp", "ScaleDown", "Hold")
export type ScalingDecisionKind = typeof ScalingDecisionKind.Type

/** An instance (an instanced world, a Forge "server") was started. */
export const ServerSpawned = Schema.TaggedStruct("ServerSpawned", {
  worldId: Schema.String,
  experienceId: Schema.String,
  reason: Schema.String
})
export type ServerSpawned = typeof ServerSpawned.Type

/** An instance was stopped (empty past its grace period, scaled down, unhealthy, by an admin). */
export const ServerTerminated = Schema.TaggedStruct("ServerTerminated", {
  worldId: Schema.String,
  experienceId: Schema.String,
  reason: Schema.String
})
export type ServerTerminated = typeof ServerTerminated.Type

/** A player's connection was accepted by a gateway. */
export const PlayerConnected = Schema.TaggedStruct("PlayerConnected", {
  playerId: Schema.String,
  gateway: Schema.optional(Schema.String)
})
export type PlayerConnected = typeof PlayerConnected.Type

export const PlayerDisconnected = Schema.TaggedStruct("PlayerDisconnected", {
  playerId: Schema.String,
  reason: Schema.String
})
export type PlayerDisconnected = typeof PlayerDisconnected.Type

/** A player was placed into a world, or moved between worlds (`fromWorld` absent on first placement). */
export const PlayerRouted = Schema.TaggedStruct("PlayerRouted", {
  playerId: Schema.String,
  fromWorld: Schema.optional(Schema.String),
  toWorld: Schema.String,
  /** Who routed it: "scheduler", "matchmaking", "admin:<key id>", ... */
  by: Schema.String
})
export type PlayerRouted = typeof PlayerRouted.Type

/** One decision of the scaling policy loop for an experience, with why. */
export const ScalingDecision = Schema.TaggedStruct("ScalingDecision", {
  experienceId: Schema.String,
  decision: ScalingDecisionKind,
  /** How many instances to add or remove (absent for Hold). */
  count: Schema.optional(Schema.Int.pipe(Schema.nonNegative())),
  reason: Schema.String
})
export type ScalingDecision = typeof ScalingDecision.Type

/** An instance or runner changed health status. */
export const HealthChanged = Schema.TaggedStruct("HealthChanged", {
  /** The instance's world id or the runner's id. */
  target: Schema.String,
  kind: HealthTargetKind,
  from: HealthStatus,
  to: HealthStatus,
  reason: Schema.String
})
export type HealthChanged = typeof HealthChanged.Type

/** A runner started draining (stop placing, hand its entities off). */
export const RunnerDraining = Schema.TaggedStruct("RunnerDraining", {
  runner: Schema.String,
  by: Schema.String
})
export type RunnerDraining = typeof RunnerDraining.Type

/** Anything the matchmaking expert wants admins to see; deliberately generic. */
export const MatchmakingEvent = Schema.TaggedStruct("MatchmakingEvent", {
  experienceId: Schema.String,
  mode: Schema.String,
  detail: Schema.String
})
export type MatchmakingEvent = typeof MatchmakingEvent.Type

export const ControlEvent = Schema.Union(
  ServerSpawned,
  ServerTerminated,
  PlayerConnected,
  PlayerDisconnected,
  PlayerRouted,
  ScalingDecision,
  HealthChanged,
  RunnerDraining,
  MatchmakingEvent
)
export type ControlEvent = typeof ControlEvent.Type
export type ControlEventTag = ControlEvent["_tag"]

/** An event as published: numbered, timed and attributed. */
export const ControlEnvelope = Schema.Struct({
  /** Increasing by one per published event, from 1 when the publishing process started. */
  seq: Schema.Int.pipe(Schema.positive()),
  /** Epoch milliseconds when it was published. */
  at: Schema.Number,
  actor: Actor,
  event: ControlEvent
})
export type ControlEnvelope = typeof ControlEnvelope.Type

/** An envelope as JSON text (`Schema.encodeSync(ControlEnvelopeJson)(envelope)`, or decode what a client sent). */
export const ControlEnvelopeJson = Schema.parseJson(ControlEnvelope)

/**
 * What the event is about, as the audit log's `target` column: the world,
 * player, experience, instance/runner or runner id.
 */
export const eventTarget = (event: ControlEvent): string => {
  switch (event._tag) {
    case "ServerSpawned":
    case "ServerTerminated":
      return event.worldId
    case "PlayerConnected":
    case "PlayerDisconnected":
    case "PlayerRouted":
      return event.playerId
    case "ScalingDecision":
    case "MatchmakingEvent":
      return event.experienceId
    case "HealthChanged":
      return event.target
    case "RunnerDraining":
      return event.runner
  }
}
