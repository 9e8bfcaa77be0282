/**
 * Instance ids are `<experienceId>.<n>`; an instanced world is one region,
 * so its region id is the world id. Experience ids never contain a dot.
 */
export const instanceWorldId = (experienceId: string, n: number): string => `${experienceId}.${n}`

/** The one persistent world of an open-world experience; its regions are `<worldId>/<level>/<x>/<y>/<z>`. */
export const openWorldId = (experienceId: string): string => `${experienceId}.world`

export const experienceOfWorld = (worldId: string): string => {
  const dot = worldId.lastIndexOf(".")
  return dot < 0 ? worldId : worldId.slice(0, dot)
}

/** The uWS / pub-sub topic of one interest cell of one region. */
export const cellTopic = (regionId: string, cellKey: string): string => `c|${regionId}|${cellKey}`

export const chatTopic = (channelKey: string): string => `chat|${channelKey}`
