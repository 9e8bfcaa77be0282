import { Context, Duration, Effect, Layer, Option, Schedule } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { meshGeometryOf } from "../config/OpenWorld.js"
import type { ExperienceConfig } from "../config/TesseraConfig.js"
import * as Metrics from "../observability/Metrics.js"
import { MeshDirectoryRepository } from "../storage/MeshDirectoryRepository.js"
import type { StorageError } from "../storage/StorageError.js"
import { RegionDirectory } from "./mesh/RegionDirectory.js"
import { experienceOfWorld } from "./WorldIds.js"

/** How often a process re-reads the directories it caches (another runner's scheduler may have changed them). */
const REFRESH_INTERVAL = Duration.millis(500)

/**
 * The region directories of open worlds: which region is authoritative for
 * a point. The scheduler owns and persists them; every process (gateways,
 * region runners) keeps a cached copy that is replaced when the stored
 * version moves on. In one process the scheduler's change is seen at once.
 */
export class MeshDirectories extends Context.Tag("tessera/MeshDirectories")<MeshDirectories, {
  /** The directory of an open world: cached, or loaded (created with all root regions the first time). */
  readonly get: (worldId: string) => Effect.Effect<RegionDirectory, StorageError>
  /** The cached copy only (the hot path: no IO). */
  readonly cached: (worldId: string) => RegionDirectory | undefined
  /** Stores a changed directory (a split or merge); refused if a newer version is stored. */
  readonly publish: (directory: RegionDirectory) => Effect.Effect<void, StorageError>
}>() {
  static readonly layer: Layer.Layer<MeshDirectories, never, AppConfig | MeshDirectoryRepository> = Layer.scoped(
    MeshDirectories,
    Effect.gen(function*() {
      const config = yield* AppConfig
      const repo = yield* MeshDirectoryRepository
      const cache = new Map<string, RegionDirectory>()
      const experienceOf = (worldId: string): ExperienceConfig | undefined => {
        const id = experienceOfWorld(worldId)
        return config.experiences.find((e) => e.id === id && e.world === "open")
      }
      const countLevels = () => {
        const levels: Record<number, number> = {}
        for (const directory of cache.values()) {
          for (const [level, n] of Object.entries(directory.levelCounts())) levels[Number(level)] = (levels[Number(level)] ?? 0) + n
        }
        for (const level of ["0", "1", "2", "3", "4"] as const) Metrics.meshRegions[level].set(levels[Number(level)] ?? 0)
      }

      const load = (worldId: string) =>
        Effect.gen(function*() {
          const experience = experienceOf(worldId)
          if (experience === undefined) return yield* Effect.dieMessage(`${worldId} is not an open world`)
          const geometry = meshGeometryOf(experience)
          const stored = yield* repo.get(worldId)
          if (Option.isSome(stored)) {
            return RegionDirectory.fromJSON(geometry, { worldId, version: stored.value.version, leaves: [...stored.value.leaves] })
          }
          const fresh = new RegionDirectory(geometry, worldId)
          yield* repo.put(worldId, fresh.version, fresh.toJSON().leaves)
          return fresh
        })

      const get = (worldId: string) =>
        Effect.suspend(() => {
          const hit = cache.get(worldId)
          if (hit !== undefined) return Effect.succeed(hit)
          return Effect.map(load(worldId), (directory) => {
            const raced = cache.get(worldId)
            if (raced !== undefined && raced.version >= directory.version) return raced
            cache.set(worldId, directory)
            countLevels()
            return directory
          })
        })

      const refresh = Effect.forEach([...cache.keys()], (worldId) =>
        repo.get(worldId).pipe(
          Effect.map(Option.map((stored) => {
            const current = cache.get(worldId)
            const experience = experienceOf(worldId)
            if (current === undefined || experience === undefined || stored.version <= current.version) return
            cache.set(worldId, RegionDirectory.fromJSON(meshGeometryOf(experience), { worldId, version: stored.version, leaves: [...stored.leaves] }))
            countLevels()
          })),
          Effect.catchAll((error) => Effect.logDebug("directory refresh failed", error))
        ), { discard: true })
      yield* Effect.forkScoped(Effect.repeat(Effect.suspend(() => refresh), Schedule.spaced(REFRESH_INTERVAL)))

      return {
        get,
        cached: (worldId) => cache.get(worldId),
        publish: (directory) =>
          Effect.gen(function*() {
            yield* repo.put(directory.worldId, directory.version, directory.toJSON().leaves)
            const current = cache.get(directory.worldId)
            if (current === undefined || current.version <= directory.version) cache.set(directory.worldId, directory)
            countLevels()
          })
      }
    })
  )
}
