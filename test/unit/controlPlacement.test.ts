import { describe, expect, it } from "vitest"
import { defaultExperience } from "../../src/config/ConfigSchema.js"
import { ConfigError, loadConfig } from "../../src/config/loadConfig.js"
import type { ExperienceConfig } from "../../src/config/TesseraConfig.js"
import {
  emptyRegistry,
  instanceWithRoom,
  movePlayer,
  placePlayer,
  reapEmpty,
  removeInstance,
  removePlayer,
  spawnInstance
} from "../../src/scheduler/Placement.js"

const exp = (id: string, maxPlayers: number): ExperienceConfig => ({ ...defaultExperience(id), maxPlayers })
const arena = exp("arena", 2)
const lobby = exp("lobby", 3)

describe("Placement: Control API operations", () => {
  it("spawn creates an empty instance, reaped after the grace period unless players come", () => {
    const registry = emptyRegistry()
    const spawned = spawnInstance(registry, arena, 100)
    expect(spawned).toMatchObject({ _tag: "Spawned", instance: { worldId: "arena.1", emptySince: 100 } })
    expect(spawnInstance(registry, arena, 100, 2)).toMatchObject({ _tag: "Spawned", instance: { worldId: "arena.2" } })
    expect(spawnInstance(registry, arena, 100, 2)).toEqual({
      _tag: "Full",
      reason: "experience \"arena\" is at its instance limit"
    })
    // Placement fills the spawned instances before opening a new one.
    expect(placePlayer(registry, arena, "a", 150)).toEqual({ _tag: "Placed", worldId: "arena.1", created: false })
    expect(reapEmpty(registry, 200, 100)).toEqual(["arena.2"])
  })

  it("move: into an instance with room; refused for unknown or full instances; a no-op where it is", () => {
    const registry = emptyRegistry()
    placePlayer(registry, arena, "a", 0)
    placePlayer(registry, arena, "b", 0)
    spawnInstance(registry, arena, 0)
    expect(movePlayer(registry, "a", "arena.2", 10)).toEqual({ _tag: "Moved", from: "arena.1" })
    expect(registry.placements.get("a")).toBe("arena.2")
    expect([...registry.instances.get("arena.1")!.players]).toEqual(["b"])
    expect(registry.instances.get("arena.2")!.emptySince).toBeNull()
    expect(movePlayer(registry, "a", "arena.2", 10)).toEqual({ _tag: "Moved", from: "arena.2" })
    expect(movePlayer(registry, "a", "arena.9", 10)).toMatchObject({ _tag: "Refused", code: "not_found" })
    // arena.2 full (a, c): b cannot join it; it can stay where it is.
    expect(movePlayer(registry, "c", "arena.2", 10)).toEqual({ _tag: "Moved", from: null })
    expect(movePlayer(registry, "b", "arena.2", 10)).toMatchObject({ _tag: "Refused", code: "conflict" })
    expect(registry.placements.get("b")).toBe("arena.1")
    expect(movePlayer(registry, "b", "arena.1", 10)).toEqual({ _tag: "Moved", from: "arena.1" })
    // The instance a player left becomes empty (and reapable).
    expect(movePlayer(registry, "a", "arena.1", 20)).toEqual({ _tag: "Moved", from: "arena.2" })
    expect(movePlayer(registry, "c", "arena.1", 30)).toMatchObject({ _tag: "Refused", code: "conflict" })
    removePlayer(registry, "c", "arena.2", 30)
    expect(reapEmpty(registry, 40, 10)).toEqual(["arena.2"])
  })

  it("remove instance drops its players' placements; the instance with room excludes one and counts extra", () => {
    const registry = emptyRegistry()
    placePlayer(registry, lobby, "a", 0)
    placePlayer(registry, lobby, "b", 0)
    spawnInstance(registry, lobby, 0)
    spawnInstance(registry, arena, 0)
    expect(instanceWithRoom(registry, "lobby")?.worldId).toBe("lobby.1")
    expect(instanceWithRoom(registry, "lobby", "lobby.1")?.worldId).toBe("lobby.2")
    expect(instanceWithRoom(registry, "lobby", undefined, 2)?.worldId).toBe("lobby.2")
    expect(instanceWithRoom(registry, "lobby", undefined, 4)).toBeUndefined()
    const removed = removeInstance(registry, "lobby.1")
    expect([...removed!.players].sort()).toEqual(["a", "b"])
    expect(registry.placements.has("a")).toBe(false)
    expect(registry.instances.has("lobby.1")).toBe(false)
    expect(removeInstance(registry, "lobby.1")).toBeUndefined()
  })
})

describe("admin config", () => {
  it("defaults: the admin API is off (empty key), 1000 events kept", () => {
    const config = loadConfig({ env: {} })
    expect(config.admin).toEqual({ key: "", eventHistory: 1000 })
    expect(loadConfig({ env: { TESSERA_ADMIN_KEY: "k", TESSERA_ADMIN_EVENT_HISTORY: "5" } }).admin).toEqual({
      key: "k",
      eventHistory: 5
    })
  })

  it("outside dev mode a short admin key is refused, without echoing it; empty or long keys are fine", () => {
    const base = { TESSERA_SERVER_DEV: "false", TESSERA_AUTH_SECRET: "a-long-enough-production-secret" }
    let error: unknown
    try {
      loadConfig({ env: { ...base, TESSERA_ADMIN_KEY: "short-key" } })
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(ConfigError)
    expect((error as ConfigError).key).toBe("admin.key")
    expect((error as ConfigError).message).toContain("only 9 characters")
    expect((error as ConfigError).message).not.toContain("short-key")
    expect(loadConfig({ env: base }).admin.key).toBe("")
    expect(loadConfig({ env: { ...base, TESSERA_ADMIN_KEY: "x".repeat(16) } }).admin.key).toBe("x".repeat(16))
  })
})
