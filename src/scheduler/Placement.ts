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
  /** Next instance number per experience; ids are never reused while the process lives. */
  readonly counters: Map<string, number>
}

export const emptyRegistry = (): Registry => ({ instances: new Map(), placements: new Map(), counters: new Map() })

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
  maxInstances = Number.POSITIVE_INFINITY
): PlaceResult => {
  const current = registry.placements.get(playerId)
  if (current !== undefined) {
    const instance = registry.instances.get(current)
    if (instance !== undefined && instance.experienceId === experience.id) {
      return { _tag: "Placed", worldId: instance.worldId, created: false }
    }
    removePlayer(registry, playerId, current, now)
  }
  let best: Instance | undefined
  let count = 0
  for (const instance of registry.instances.values()) {
    if (instance.experienceId !== experience.id) continue
    count++
    if (instance.players.size >= instance.maxPlayers) continue
    if (best === undefined || instance.players.size > best.players.size) best = instance
  }
  let created = false
  if (best === undefined) {
    if (count >= maxInstances) return { _tag: "Full", reason: `experience "${experience.id}" is at its instance limit` }
    const n = (registry.counters.get(experience.id) ?? 0) + 1
    registry.counters.set(experience.id, n)
    best = {
      worldId: instanceWorldId(experience.id, n),
      experienceId: experience.id,
      maxPlayers: experience.maxPlayers,
      createdAt: now,
      players: new Set(),
      emptySince: null
    }
    registry.instances.set(best.worldId, best)
    created = true
  }
  best.players.add(playerId)
  best.emptySince = null
  registry.placements.set(playerId, best.worldId)
  return { _tag: "Placed", worldId: best.worldId, created }
}

export const removePlayer = (registry: Registry, playerId: string, worldId: string, now: number): void => {
  const instance = registry.instances.get(worldId)
  if (registry.placements.get(playerId) === worldId) registry.placements.delete(playerId)
  if (instance === undefined) return
  instance.players.delete(playerId)
  if (instance.players.size === 0 && instance.emptySince === null) instance.emptySince = now
}

/** Removes and returns the instances that have been empty for at least `graceMs`. */
export const reapEmpty = (registry: Registry, now: number, graceMs: number): Array<string> => {
  const reaped: Array<string> = []
  for (const instance of registry.instances.values()) {
    if (instance.emptySince !== null && now - instance.emptySince >= graceMs) reaped.push(instance.worldId)
  }
  for (const worldId of reaped) registry.instances.delete(worldId)
  return reaped
}
