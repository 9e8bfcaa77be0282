/**
 * The server-meshing settings of an open-world experience, in the shapes the
 * pure mesh core (src/region/mesh/) takes. Validation (min_region_size a
 * power-of-two fraction of region_size, overlap < min_region_size / 2,
 * hysteresis < overlap, merge_players < split_players) already happened in
 * ConfigSchema.ts, so these are plain field copies.
 *
 * Pure: no IO.
 */
import type { MeshGeometry } from "../region/mesh/MeshGeometry.js"
import type { MeshPolicy } from "../region/mesh/MeshPolicy.js"
import type { ExperienceConfig } from "./TesseraConfig.js"

/** Whether the experience is one persistent meshed world (not instances). */
export const isOpenWorld = (experience: ExperienceConfig): boolean => experience.world === "open"

/** The open-world experiences of a config, in config order. */
export const openWorldExperiences = (
  experiences: ReadonlyArray<ExperienceConfig>
): ReadonlyArray<ExperienceConfig> => experiences.filter(isOpenWorld)

export const meshGeometryOf = (experience: ExperienceConfig): MeshGeometry => ({
  rootSize: experience.regionSize,
  minSize: experience.minRegionSize,
  overlap: experience.overlap,
  hysteresis: experience.hysteresis,
  rootsX: experience.regionsX,
  rootsY: experience.regionsY,
  rootsZ: experience.regionsZ
})

export const meshPolicyOf = (experience: ExperienceConfig): MeshPolicy => ({
  splitPlayers: experience.splitPlayers,
  mergePlayers: experience.mergePlayers,
  tickBudgetMs: experience.tickBudgetMs,
  cooldownMs: experience.meshCooldownSeconds * 1000
})
