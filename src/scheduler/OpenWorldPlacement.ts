/**
 * Entity ids in an open world are the world's, not a region's: an entity
 * keeps its id as it is handed from region to region, so inputs, acks and
 * clients' views never see it change. The id is derived from the player id
 * (stable across scheduler restarts for the same players) and probed past
 * collisions with players already in the world.
 */
export interface OpenWorldRoster {
  readonly worldId: string
  readonly idsByPlayer: Map<string, number>
  readonly playersById: Map<number, string>
}

export const emptyRoster = (worldId: string): OpenWorldRoster => ({
  worldId,
  idsByPlayer: new Map(),
  playersById: new Map()
})

/** FNV-1a over UTF-16 code units. */
const fnv1a = (s: string): number => {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

/** Ids live in [1, 2^31): positive, u32 on the wire, never 0 (0 means none). */
const ID_SPACE = 0x7fffffff

/** The player's entity id in the world, assigning one if it has none. */
export const entityIdFor = (roster: OpenWorldRoster, playerId: string): number => {
  const known = roster.idsByPlayer.get(playerId)
  if (known !== undefined) return known
  let id = (fnv1a(playerId) % ID_SPACE) + 1
  while (roster.playersById.has(id)) id = (id % ID_SPACE) + 1
  roster.idsByPlayer.set(playerId, id)
  roster.playersById.set(id, playerId)
  return id
}

export const releaseEntityId = (roster: OpenWorldRoster, playerId: string): void => {
  const id = roster.idsByPlayer.get(playerId)
  if (id === undefined) return
  roster.idsByPlayer.delete(playerId)
  roster.playersById.delete(id)
}
