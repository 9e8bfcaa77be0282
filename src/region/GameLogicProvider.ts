import { Context, Effect, Layer } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import type { ExperienceConfig } from "../config/TesseraConfig.js"
import type { GameLogic } from "./GameLogic.js"
import { makeKinematicLogic } from "./KinematicLogic.js"

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
      const logic = makeKinematicLogic({
        maxSpeed: config.region.maxSpeed,
        worldHalfExtent: config.region.worldHalfExtent,
        spawnRadius: config.region.spawnRadius
      })
      return { forExperience: () => logic }
    })
  )
}
