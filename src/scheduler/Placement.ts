import type { ExperienceConfig } from "../config/TesseraConfig.js"
import { instanceWorldId } from "../region/WorldIds.js"

/** The scheduler's registry of instances; pure data, mutated only by the functions below. */
export interface Instance {
  readonly worldId: string
  readonly experienceId: string
  readonly maxPlayers: number
  readonly createdAt: number
  readonly players: Set<string>
  emptySince: number | null
}

export interface Registry {
  readonly instances: Map<string, Instance>
  /** Where each placed player is. */
  readonly placements: Map<string, string>
  /** Next instance number per experience; ids are never reused (persisted with the registry). */
  readonly counters: Map<string, number>
  /** Instances being drained by a scale-down: no new players; terminated once empty. */
  readonly draining: Set<string>
}

export const emptyRegistry = (): Registry => ({
  instances: new Map(),
  placements: new Map(),
  counters: new Map(),
  draining: new Set()
})

/** Limits of one experience: instances (autoscaling, spawn, placement) and players across its instances. */
export interface Quota {
  readonly maxInstances: number
  readonly maxPlayers: number
}

/** Players placed in the experience's instances. */
export const playerCount = (registry: Registry, experienceId: string): number => {
  let count = 0
  for (const instance of registry.instances.values()) if (instance.experienceId === experienceId) count += instance.players.size
  return count
}

/** The registry as plain JSON (what the scheduler persists). */
export interface RegistryJson {
  readonly instances: ReadonlyArray<{
    readonly worldId: string
    readonly experienceId: string
    readonly maxPlayers: number
    readonly createdAt: number
    readonly players: ReadonlyArray<string>
    readonly emptySince: number | null
  }>
  readonly counters: ReadonlyArray<readonly [string, number]>
  readonly draining: ReadonlyArray<string>
}

export const registryToJson = (registry: Registry): RegistryJson => ({
  instances: [...registry.instances.values()].map((i) => ({
    worldId: i.worldId,
    experienceId: i.experienceId,
    maxPlayers: i.maxPlayers,
    createdAt: i.createdAt,
    players: [...i.players].sort(),
    emptySince: i.emptySince
  })),
  counters: [...registry.counters.entries()],
  draining: [...registry.draining]
})

/**
 * A registry from its JSON (placements are derived from the instances'
 * players; a player listed twice stays in the first). Throws on a shape it
 * does not know: the caller treats that as "no saved state".
 */
export const registryFromJson = (json: unknown): Registry => {
  const registry = emptyRegistry()
  const j = json as RegistryJson
  if (typeof j !== "object" || j === null || !Array.isArray(j.instances) || !Array.isArray(j.counters)) {
    throw new Error("not a scheduler registry")
  }
  for (const i of j.instances) {
    if (typeof i.worldId !== "string" || typeof i.experienceId !== "string" || !Array.isArray(i.players)) {
      throw new Error("not a scheduler registry instance")
    }
    const instance: Instance = {
      worldId: i.worldId,
      experienceId: i.experienceId,
      maxPlayers: Number(i.maxPlayers),
      createdAt: Number(i.createdAt),
      players: new Set(),
      emptySince: i.emptySince === null ? null : Number(i.emptySince)
    }
    for (const playerId of i.players) {
      if (registry.placements.has(playerId)) continue
      instance.players.add(playerId)
      registry.placements.set(playerId, instance.worldId)
    }
    registry.instances.set(instance.worldId, instance)
  }
  for (const [experienceId, n] of j.counters) registry.counters.set(String(experienceId), Number(n))
  for (const worldId of j.draining ?? []) if (registry.instances.has(worldId)) registry.draining.add(worldId)
  return registry
}

export type PlaceResult =
  | { readonly _tag: "Placed"; readonly worldId: string; readonly created: boolean }
  | { readonly _tag: "Full"; readonly reason: string }

/**
 * Puts a player into the fullest instance of the experience that still has
 * room (fills rooms before opening new ones), or creates one. A player
 * already placed in this experience stays where it is.
 */
export const placePlayer = (
  registry: Registry,
  experience: ExperienceConfig,
  playerId: string,
  now: number,
  maxInstances = Number.POSITIVE_INFINITY,
  maxPlayers = Number.POSITIVE_INFINITY
): PlaceResult => {
  const current = registry.placements.get(playerId)
  if (current !== undefined) {
    const instance = registry.instances.get(current)
    if (instance !== undefined && instance.experienceId === experience.id) {
      return { _tag: "Placed", worldId: instance.worldId, created: false }
    }
  }
  if (playerCount(registry, experience.id) >= maxPlayers) {
    return { _tag: "Full", reason: `experience "${experience.id}" is full (quota of ${maxPlayers} players)` }
  }
  if (current !== undefined) removePlayer(registry, playerId, current, now)
  let best: Instance | undefined
  let count = 0
  for (const instance of registry.instances.values()) {
    if (instance.experienceId !== experience.id) continue
    count++
    if (instance.players.size >= instance.maxPlayers || registry.draining.has(instance.worldId)) continue
    if (best === undefined || instance.players.size > best.players.size) best = instance
  }
  let created = false
  if (best === undefined) {
    if (count >= maxInstances) return { _tag: "Full", reason: atLimit(experience.id, maxInstances) }
    best = newInstance(registry, experience, now)
    created = true
  }
  best.players.add(playerId)
  best.emptySince = null
  registry.placements.set(playerId, best.worldId)
  return { _tag: "Placed", worldId: best.worldId, created }
}

const atLimit = (experienceId: string, _maxInstances: number): string =>
  `experience "${experienceId}" is at its instance limit`

/** Adds a new, empty instance of the experience (its id is the next of the experience's counter). */
const newInstance = (registry: Registry, experience: ExperienceConfig, now: number): Instance => {
  const n = (registry.counters.get(experience.id) ?? 0) + 1
  registry.counters.set(experience.id, n)
  const instance: Instance = {
    worldId: instanceWorldId(experience.id, n),
    experienceId: experience.id,
    maxPlayers: experience.maxPlayers,
    createdAt: now,
    players: new Set(),
    emptySince: now
  }
  registry.instances.set(instance.worldId, instance)
  return instance
}

/** How many instances of the experience exist. */
export const instanceCount = (registry: Registry, experienceId: string): number => {
  let count = 0
  for (const instance of registry.instances.values()) if (instance.experienceId === experienceId) count++
  return count
}

export type SpawnResult =
  | { readonly _tag: "Spawned"; readonly instance: Instance }
  | { readonly _tag: "Full"; readonly reason: string }

/**
 * Creates an empty instance of the experience (an admin's spawn). Like any
 * empty instance it is reaped after the grace period unless players arrive.
 */
export const spawnInstance = (
  registry: Registry,
  experience: ExperienceConfig,
  now: number,
  maxInstances = Number.POSITIVE_INFINITY
): SpawnResult =>
  instanceCount(registry, experience.id) >= maxInstances
    ? { _tag: "Full", reason: atLimit(experience.id, maxInstances) }
    : { _tag: "Spawned", instance: newInstance(registry, experience, now) }

/**
 * The instance of the experience with the most players that still has room
 * for `extra` more (fills rooms before emptier ones), other than `exclude`.
 */
export const instanceWithRoom = (
  registry: Registry,
  experienceId: string,
  exclude?: string,
  extra = 1
): Instance | undefined => {
  let best: Instance | undefined
  for (const instance of registry.instances.values()) {
    if (instance.experienceId !== experienceId || instance.worldId === exclude) continue
    if (instance.players.size + extra > instance.maxPlayers || registry.draining.has(instance.worldId)) continue
    if (best === undefined || instance.players.size > best.players.size) best = instance
  }
  return best
}

export type MoveResult =
  | { readonly _tag: "Moved"; readonly from: string | null }
  | { readonly _tag: "Refused"; readonly code: "not_found" | "conflict"; readonly reason: string }

/**
 * Moves a player's placement into the instance `worldId` (an admin's route,
 * or a terminated instance's players): refused when there is no such
 * instance or it is full. A player already there stays (from = worldId).
 * Returns the world the player was placed in before, if any.
 */
export const movePlayer = (registry: Registry, playerId: string, worldId: string, now: number): MoveResult => {
  const target = registry.instances.get(worldId)
  if (target === undefined) return { _tag: "Refused", code: "not_found", reason: `no instance "${worldId}"` }
  const from = registry.placements.get(playerId) ?? null
  if (from === worldId) return { _tag: "Moved", from }
  if (target.players.size >= target.maxPlayers) {
    return { _tag: "Refused", code: "conflict", reason: `instance "${worldId}" is full (${target.maxPlayers} players)` }
  }
  if (from !== null) removePlayer(registry, playerId, from, now)
  target.players.add(playerId)
  target.emptySince = null
  registry.placements.set(playerId, worldId)
  return { _tag: "Moved", from }
}

export type AssignResult =
  | { readonly _tag: "Assigned" }
  | { readonly _tag: "AlreadyThere" }
  | { readonly _tag: "InAnotherWorld"; readonly worldId: string }
  | { readonly _tag: "Refused"; readonly code: "not_found" | "conflict"; readonly reason: string }

/**
 * Places a player who is in no instance into `worldId` (a match): refused
 * for an unknown or full instance and past the experience's player quota;
 * a player already there stays (AlreadyThere); a player placed elsewhere is
 * not moved (InAnotherWorld: that is a route).
 */
export const assignPlayer = (
  registry: Registry,
  playerId: string,
  worldId: string,
  maxPlayers = Number.POSITIVE_INFINITY
): AssignResult => {
  const target = registry.instances.get(worldId)
  if (target === undefined) return { _tag: "Refused", code: "not_found", reason: `no instance "${worldId}"` }
  const current = registry.placements.get(playerId)
  if (current === worldId) return { _tag: "AlreadyThere" }
  if (current !== undefined) return { _tag: "InAnotherWorld", worldId: current }
  if (target.players.size >= target.maxPlayers) {
    return { _tag: "Refused", code: "conflict", reason: `instance "${worldId}" is full (${target.maxPlayers} players)` }
  }
  if (playerCount(registry, target.experienceId) >= maxPlayers) {
    return { _tag: "Refused", code: "conflict", reason: `experience "${target.experienceId}" is full (quota of ${maxPlayers} players)` }
  }
  target.players.add(playerId)
  target.emptySince = null
  registry.placements.set(playerId, worldId)
  return { _tag: "Assigned" }
}

/**
 * Removes an instance (an admin's terminate) and the placements of its
 * players; returns it (with its players) or undefined when there is none.
 */
export const removeInstance = (registry: Registry, worldId: string): Instance | undefined => {
  const instance = registry.instances.get(worldId)
  if (instance === undefined) return undefined
  registry.instances.delete(worldId)
  registry.draining.delete(worldId)
  for (const playerId of instance.players) {
    if (registry.placements.get(playerId) === worldId) registry.placements.delete(playerId)
  }
  return instance
}

export const removePlayer = (registry: Registry, playerId: string, worldId: string, now: number): void => {
  const instance = registry.instances.get(worldId)
  if (registry.placements.get(playerId) === worldId) registry.placements.delete(playerId)
  if (instance === undefined) return
  instance.players.delete(playerId)
  if (instance.players.size === 0 && instance.emptySince === null) instance.emptySince = now
}

/**
 * Removes and returns the instances that have been empty for at least
 * `graceMs`, except those `keep` claims (an autoscaled experience's warm
 * instances: its policy decides when they go).
 */
export const reapEmpty = (
  registry: Registry,
  now: number,
  graceMs: number,
  keep: (instance: Instance) => boolean = () => false
): Array<string> => {
  const reaped: Array<string> = []
  for (const instance of registry.instances.values()) {
    if (instance.emptySince !== null && now - instance.emptySince >= graceMs && !keep(instance)) reaped.push(instance.worldId)
  }
  for (const worldId of reaped) {
    registry.instances.delete(worldId)
    registry.draining.delete(worldId)
  }
  return reaped
}
