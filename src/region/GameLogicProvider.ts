import { Context, Effect, Layer } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import type { ExperienceConfig } from "../config/TesseraConfig.js"
import type { GameLogic } from "./GameLogic.js"
import { makeKinematicLogic } from "./KinematicLogic.js"
import { meshGeometryOf } from "../config/OpenWorld.js"
import { worldBox } from "./mesh/MeshGeometry.js"

/**
 * Which game logic a region of an experience runs. Games replace this layer
 * with their own `GameLogic`; the default is speed-limited kinematic movement.
 */
export class GameLogicProvider extends Context.Tag("tessera/GameLogicProvider")<GameLogicProvider, {
  readonly forExperience: (experience: ExperienceConfig) => GameLogic
}>() {
  static readonly layerKinematic: Layer.Layer<GameLogicProvider, never, AppConfig> = Layer.effect(
    GameLogicProvider,
    Effect.map(AppConfig, (config) => {
      const options = {
        maxSpeed: config.region.maxSpeed,
        worldHalfExtent: config.region.worldHalfExtent,
        spawnRadius: config.region.spawnRadius
      }
      const logic = makeKinematicLogic(options)
      // An open world is bounded by its regions, not by the instance cube.
      const open = new Map(
        config.experiences.filter((e) => e.world === "open").map((e) => [
          e.id,
          makeKinematicLogic({ ...options, bounds: worldBox(meshGeometryOf(e)) })
        ])
      )
      return { forExperience: (experience) => open.get(experience.id) ?? logic }
    })
  )
}
