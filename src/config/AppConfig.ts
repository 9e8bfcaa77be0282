/**
 * The resolved configuration as a service. Build it once at boot with
 * `loadConfig` (or `layerLoad`) and provide it; modules read
 * `yield* AppConfig` instead of touching env vars or files.
 */
import { Context, Effect, Layer } from "effect"
import { ConfigError, loadConfig, type LoadConfigOptions } from "./loadConfig.js"
import type { TesseraConfig } from "./TesseraConfig.js"

export class AppConfig extends Context.Tag("tessera/AppConfig")<AppConfig, TesseraConfig>() {}

/** Provides an already resolved configuration (e.g. `layer(defaultConfig)` in tests). */
export const layer = (config: TesseraConfig): Layer.Layer<AppConfig> => Layer.succeed(AppConfig, config)

/** Resolves the configuration when the layer is built; a ConfigError fails the layer. */
export const layerLoad = (options: LoadConfigOptions): Layer.Layer<AppConfig, ConfigError> =>
  Layer.effect(
    AppConfig,
    Effect.suspend(() => {
      try {
        return Effect.succeed(loadConfig(options))
      } catch (e) {
        return e instanceof ConfigError ? Effect.fail(e) : Effect.die(e)
      }
    })
  )
