import { ClusterSchema, Entity } from "@effect/cluster"
import { Rpc } from "@effect/rpc"
import { Schema } from "effect"
import { Role } from "../cluster/Roles.js"
import { Actor, ControlEnvelope } from "../control/ControlEvent.js"
import { ControlError } from "../control/ControlError.js"
import { GameError } from "../protocol/GameError.js"

export const InstanceInfo = Schema.Struct({
  worldId: Schema.String,
  experienceId: Schema.String,
  players: Schema.Number,
  maxPlayers: Schema.Number,
  createdAt: Schema.Number,
  emptySince: Schema.NullOr(Schema.Number),
  /** From its heartbeats: "unknown" until the health thresholds are reached (absent: not tracked, e.g. empty). */
  health: Schema.optional(Schema.Literal("healthy", "unhealthy", "unknown")),
  /** Drained by a scale-down: takes no new players, terminated once empty. */
  draining: Schema.optional(Schema.Boolean)
})
export type InstanceInfo = typeof InstanceInfo.Type

/** An open world's region as the Control API lists it. */
export const RegionInfo = Schema.Struct({
  worldId: Schema.String,
  experienceId: Schema.String,
  regionId: Schema.String,
  /** From the region's last load report (0 when none came within a few seconds). */
  players: Schema.Number
})
export type RegionInfo = typeof RegionInfo.Type

/** A runner an admin asked to drain and that has not left yet (see DrainRunner). */
export const DrainingRunner = Schema.Struct({
  runner: Schema.String,
  since: Schema.Number,
  by: Schema.String,
  reason: Schema.optional(Schema.String)
})
export type DrainingRunner = typeof DrainingRunner.Type

/** A runner process as the scheduler knows it from its heartbeats (RunnerHeartbeat). */
export const RunnerInfo = Schema.Struct({
  /** The cluster address, host:port (what DrainRunner takes). */
  runner: Schema.String,
  roles: Schema.Array(Schema.String),
  /** "unknown" until the health thresholds are reached. */
  health: Schema.Literal("healthy", "unhealthy", "unknown"),
  /** When its newest heartbeat arrived (epoch ms; null: none since the scheduler started). */
  lastHeartbeatAt: Schema.NullOr(Schema.Number),
  /** From the newest heartbeat: process CPU (1 = one core), resident memory, event-loop delay p99. */
  cpu: Schema.optional(Schema.Number),
  memoryBytes: Schema.optional(Schema.Number),
  eventLoopLagP99Ms: Schema.optional(Schema.Number),
  /** Why its last check failed (absent after a pass). */
  lastFailure: Schema.optional(Schema.String),
  /** A drain of it is pending (see DrainRunner). */
  draining: Schema.optional(Schema.Boolean)
})
export type RunnerInfo = typeof RunnerInfo.Type

/** Where a terminated instance's player went (`toWorld` null: it was told and left no world). */
export const PlayerMove = Schema.Struct({
  playerId: Schema.String,
  toWorld: Schema.NullOr(Schema.String),
  /** Whether its session took the move (false: timed out or failed; the registry moved it anyway). */
  told: Schema.Boolean
})
export type PlayerMove = typeof PlayerMove.Type

/**
 * Terminate's `moveTo`: "auto" (default) moves each player to another
 * instance of the experience with room (or closes it out of the world when
 * none has room), "none" moves nobody, any other value is the world id of
 * the instance to move every player to.
 */
export const MoveTo = Schema.String
export type MoveTo = typeof MoveTo.Type

/**
 * Assign's refusal for a player placed in another instance than the one
 * asked for: move it with Route instead (the matchmaker does). Typed, so
 * callers branch on it without reading messages.
 */
export class PlayerInAnotherWorld extends Schema.TaggedError<PlayerInAnotherWorld>()("PlayerInAnotherWorld", {
  playerId: Schema.String,
  /** The instance the player is placed in. */
  worldId: Schema.String,
  message: Schema.String
}) {}

/** The one scheduler entity's id: an entity with a fixed id is the addressable face of the control plane. */
export const SCHEDULER_ID = "main"

/**
 * The Scheduler's protocol: the registry of instances and the placement of
 * players. Its periodic work runs in the Scheduler singleton.
 */
export const SchedulerEntity = Entity.make("Scheduler", [
  /** Places a player in an instance of the experience with room, creating one on demand (idempotent per player). */
  Rpc.make("Place", {
    payload: { experienceId: Schema.String, playerId: Schema.String },
    success: Schema.Struct({
      worldId: Schema.String,
      regionId: Schema.String,
      created: Schema.Boolean,
      /** Open worlds: the player's world-wide entity id and where it enters (its region is the directory's). */
      placement: Schema.optional(Schema.Struct({ entityId: Schema.Number, x: Schema.Number, y: Schema.Number, z: Schema.Number }))
    }),
    error: GameError
  }),
  Rpc.make("Left", { payload: { playerId: Schema.String, worldId: Schema.String } }),
  /** Terminates instances empty for longer than the grace period; returns their ids. */
  Rpc.make("Reap", { success: Schema.Array(Schema.String) }),
  Rpc.make("ListInstances", { success: Schema.Array(InstanceInfo) }),
  /** Open worlds: a region's load, once a second (the split/merge policy's input). */
  Rpc.make("ReportLoad", {
    payload: {
      regionId: Schema.String,
      players: Schema.Number,
      tickP99Ms: Schema.Number,
      /** The region stopped ticking (empty): its load stays known as this report until it starts again. */
      stopped: Schema.optional(Schema.Boolean)
    }
  }),
  /** Open worlds: runs the split/merge policy once; returns what it changed. */
  Rpc.make("MeshTick", { success: Schema.Array(Schema.String) }),
  /** Instances: a region's heartbeat (every health.heartbeat_interval_ms while it ticks). */
  Rpc.make("Heartbeat", {
    payload: {
      worldId: Schema.String,
      tickP99Ms: Schema.Number,
      players: Schema.Number,
      /** Process CPU, 1 = one core. */
      cpu: Schema.Number,
      memoryBytes: Schema.Number
    }
  }),
  /**
   * Runners: every runner process's heartbeat (every health.heartbeat_interval_ms),
   * checked by the runners' health tracker. `startedAt` identifies the process
   * (epoch ms it started), so a drain meant for it is not carried out by its restart.
   */
  Rpc.make("RunnerHeartbeat", {
    payload: {
      runner: Schema.String,
      roles: Schema.Array(Schema.String),
      /** Process CPU, 1 = one core. */
      cpu: Schema.Number,
      memoryBytes: Schema.Number,
      eventLoopLagP99Ms: Schema.Number,
      startedAt: Schema.optional(Schema.Number)
    }
  }),
  /**
   * Players waiting for a place in the experience, an input of the scaling
   * policy. Each `source` (a matchmaking queue's key; absent: one anonymous
   * source) reports its own count, the latest report per source counts, and
   * the experience's queue is their sum; a source silent for a few scaling
   * intervals counts 0.
   */
  Rpc.make("ReportQueue", { payload: { experienceId: Schema.String, queued: Schema.Number, source: Schema.optional(Schema.String) } }),
  /** Runs one health check of every instance and runner and acts on what changed; returns the changes as text. */
  Rpc.make("HealthCheck", { success: Schema.Array(Schema.String) }),
  /** Runs the scaling policy of every autoscaled experience once and applies it; returns the decisions as text. */
  Rpc.make("Autoscale", { success: Schema.Array(Schema.String) }),

  // ---- Control API (admin operations; `actor` is who asked, for events and the audit log) ----

  /** Creates an empty instance of an instanced experience (within scheduler.max_instances). */
  Rpc.make("Spawn", {
    payload: { experienceId: Schema.String, actor: Actor },
    success: InstanceInfo,
    error: ControlError
  }),
  /**
   * Removes an instance: its players are moved (see MoveTo) and told by their
   * sessions, then its region is shut down.
   */
  Rpc.make("Terminate", {
    payload: { worldId: Schema.String, reason: Schema.String, moveTo: MoveTo, actor: Actor },
    success: Schema.Struct({ worldId: Schema.String, experienceId: Schema.String, moved: Schema.Array(PlayerMove) }),
    error: ControlError
  }),
  /**
   * Moves a placed player into another instance of the same experience; its
   * session moves a connected client there seamlessly (Moved + Joined).
   * `reason` is what the player is told (default: who moved it where).
   */
  Rpc.make("Route", {
    payload: { playerId: Schema.String, worldId: Schema.String, actor: Actor, reason: Schema.optional(Schema.String) },
    success: Schema.Struct({ playerId: Schema.String, fromWorld: Schema.String, toWorld: Schema.String, told: Schema.Boolean }),
    error: ControlError
  }),
  /**
   * Places a player who is in no world into the instance `worldId` (within
   * its capacity and the experience's player quota); its session moves a
   * connected client there seamlessly. Idempotent: a player already in
   * `worldId` succeeds with `assigned` false. A player in another instance
   * fails with PlayerInAnotherWorld (use Route); one in an open world, or a
   * full or unknown instance, with a ControlError.
   */
  Rpc.make("Assign", {
    payload: { playerId: Schema.String, worldId: Schema.String, actor: Actor, reason: Schema.optional(Schema.String) },
    success: Schema.Struct({ playerId: Schema.String, toWorld: Schema.String, assigned: Schema.Boolean, told: Schema.Boolean }),
    error: Schema.Union(ControlError, PlayerInAnotherWorld)
  }),
  /** Instances (optionally of one experience), open-world regions, draining runners and the runners heard from. */
  Rpc.make("ListServers", {
    payload: {
      experienceId: Schema.optional(Schema.String),
      /** A region id: the instance (an instanced world is one region), the open-world region, or every region of that world id. */
      region: Schema.optional(Schema.String)
    },
    success: Schema.Struct({
      instances: Schema.Array(InstanceInfo),
      regions: Schema.Array(RegionInfo),
      drainingRunners: Schema.Array(DrainingRunner),
      runners: Schema.Array(RunnerInfo)
    })
  }),
  /** The players placed in an instance. */
  Rpc.make("ListSessions", {
    payload: { worldId: Schema.String },
    success: Schema.Struct({ worldId: Schema.String, experienceId: Schema.String, players: Schema.Array(Schema.String) }),
    error: ControlError
  }),
  /**
   * Drains a registered runner (`host:port`, as the cluster registers it; an
   * unknown address is refused with not_found). @effect/cluster 0.60 cannot
   * exclude a live runner from its hash ring, so the scheduler writes
   * `runner.drain.<runner>` to the shared scheduler_state and publishes
   * RunnerDraining; the runner's RunnerDrainWatcher sees the key within about
   * a second, deletes it and shuts down as on SIGTERM (its shards move to the
   * other runners). Asking again while the drain is pending answers the same
   * record.
   */
  Rpc.make("DrainRunner", {
    payload: { runner: Schema.String, actor: Actor, reason: Schema.optional(Schema.String) },
    success: DrainingRunner,
    error: ControlError
  }),
  /**
   * The scheduler's control events after `sinceSeq` (all kept ones without
   * it), oldest first. `origin` identifies the event bus (a new one after a
   * restart or failover, whose seqs start again at 1).
   */
  Rpc.make("Events", {
    payload: { sinceSeq: Schema.optional(Schema.Number) },
    success: Schema.Struct({ origin: Schema.String, lastSeq: Schema.Number, events: Schema.Array(ControlEnvelope) })
  })
]).annotate(ClusterSchema.ShardGroup, () => Role.Scheduler)
