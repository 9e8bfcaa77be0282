import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { describe, expect, it } from "vitest"
import { defaultConfig, defaultExperience } from "../../src/config/ConfigSchema.js"
import { loadConfig } from "../../src/config/loadConfig.js"
import type { ExperienceConfig } from "../../src/config/TesseraConfig.js"
import { decisionCount, healthPolicyOf, quotaOf, reasonShape, scalingPolicyOf } from "../../src/scheduler/autoscale/PolicyConfig.js"
import { validateScalingPolicy } from "../../src/scheduler/autoscale/ScalingPolicy.js"
import {
  emptyRegistry,
  instanceWithRoom,
  placePlayer,
  reapEmpty,
  registryFromJson,
  registryToJson,
  spawnInstance
} from "../../src/scheduler/Placement.js"

const exp = (id: string, maxPlayers: number, patch: Partial<ExperienceConfig> = {}): ExperienceConfig => ({
  ...defaultExperience(id),
  maxPlayers,
  ...patch
})

const tomlFile = (text: string): string => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "tessera-scaling-"))
  const file = Path.join(dir, "t.toml")
  Fs.writeFileSync(file, text)
  return file
}

describe("[experiences.scaling] and [experiences.quota] config", () => {
  it("reads the sub-tables, with defaults for keys not given", () => {
    const config = loadConfig({
      env: {},
      file: tomlFile(`
[[experiences]]
id = "a"
name = "A"
max_players = 10
[experiences.scaling]
enabled = true
min_instances = 2
scale_up_cooldown_seconds = 1.5
[experiences.quota]
max_players = 100

[[experiences]]
id = "b"
name = "B"
`)
    })
    const [a, b] = config.experiences
    expect(a!.scaling).toEqual({ ...defaultConfig.experiences[0]!.scaling, enabled: true, minInstances: 2, scaleUpCooldownSeconds: 1.5 })
    expect(a!.quota).toEqual({ maxInstances: 0, maxPlayers: 100 })
    expect(b!.scaling.enabled).toBe(false)
  })

  it.each([
    ["unknown key", "[experiences.scaling]\nmin_instance = 1", /experiences\[0\]\.scaling\.min_instance: unknown key.*did you mean min_instances/],
    ["bad value", "[experiences.scaling]\nscale_up_threshold = 2", /experiences\[0\]\.scaling\.scale_up_threshold: expected a number > 0 and <= 1/],
    ["thresholds crossed", "[experiences.scaling]\nscale_up_threshold = 0.5\nscale_down_threshold = 0.6", /scaling\.scale_down_threshold: experience "a": expected less than scale_up_threshold/],
    ["min over max", "[experiences.scaling]\nmin_instances = 5\nmax_instances = 2", /scaling\.min_instances: .*at most scaling\.max_instances \(2\)/],
    ["max over quota", "[experiences.scaling]\nmax_instances = 9\n[experiences.quota]\nmax_instances = 4", /scaling\.max_instances: .*at most quota\.max_instances \(4\)/],
    ["target over max_players", "[experiences.scaling]\ntarget_players_per_instance = 11", /target_players_per_instance: .*at most max_players \(10\)/],
    ["open world", "[experiences.scaling]\nenabled = true", /scaling\.enabled: .*instanced/, `world = "open"`]
  ])("refuses %s with the key's path", (_name, tables, message, extra = "") => {
    const file = tomlFile(`[[experiences]]\nid = "a"\nname = "A"\nmax_players = 10\n${extra}\n${tables}\n`)
    expect(() => loadConfig({ env: {}, file })).toThrow(message)
  })

  it("reads [scheduler] actuator and [health]", () => {
    const config = loadConfig({
      env: { TESSERA_SCHEDULER_ACTUATOR: "nomad", TESSERA_HEALTH_MISSED_HEARTBEATS: "5" }
    })
    expect(config.scheduler.actuator).toBe("nomad")
    expect(config.health.missedHeartbeats).toBe(5)
    expect(() => loadConfig({ env: { TESSERA_SCHEDULER_ACTUATOR: "k8s" } })).toThrow(/actuator/)
  })
})

describe("PolicyConfig", () => {
  it.each([
    ["defaults: 80% of max_players, bounded by scheduler.max_instances", exp("a", 50), 1000, { targetPlayersPerInstance: 40, maxInstances: 1000, minInstances: 0 }],
    ["quota bounds the policy", exp("a", 10, { quota: { maxInstances: 4, maxPlayers: 0 } }), 1000, { maxInstances: 4, targetPlayersPerInstance: 8 }],
    ["scheduler.max_instances bounds the quota", exp("a", 10, { quota: { maxInstances: 40, maxPlayers: 0 } }), 3, { maxInstances: 3 }],
    [
      "explicit keys, seconds to ms",
      exp("a", 10, { scaling: { ...defaultExperience("a").scaling, maxInstances: 6, targetPlayersPerInstance: 3, scaleUpCooldownSeconds: 0.5 } }),
      1000,
      { maxInstances: 6, targetPlayersPerInstance: 3, scaleUpCooldownMs: 500, scaleDownCooldownMs: 300_000 }
    ]
  ])("%s", (_name, experience, schedulerMax, expected) => {
    const policy = scalingPolicyOf(experience, schedulerMax)
    expect(policy).toMatchObject(expected)
    expect(validateScalingPolicy(policy)).toEqual([])
  })

  it("quotas: 0 means none of its own", () => {
    expect(quotaOf(exp("a", 10), 7)).toEqual({ maxInstances: 7, maxPlayers: Number.POSITIVE_INFINITY })
    expect(quotaOf(exp("a", 10, { quota: { maxInstances: 2, maxPlayers: 30 } }), 7)).toEqual({ maxInstances: 2, maxPlayers: 30 })
  })

  it("health: 0 disables the CPU and memory limits", () => {
    const policy = healthPolicyOf({ ...defaultConfig.health, maxMemoryMb: 0, maxCpu: 0 })
    expect(policy.maxCpu).toBe(Number.POSITIVE_INFINITY)
    expect(policy.maxMemoryBytes).toBe(Number.POSITIVE_INFINITY)
    expect(healthPolicyOf({ ...defaultConfig.health, maxMemoryMb: 2 }).maxMemoryBytes).toBe(2 * 1024 * 1024)
  })

  it("a Hold counting down its cooldown has one shape; another reason is news", () => {
    const hold = (reason: string) => ({ _tag: "Hold" as const, reason })
    expect(reasonShape(hold("scale-up cooldown, 1200 ms left (wants +2)"))).toBe(reasonShape(hold("scale-up cooldown, 950 ms left (wants +1)")))
    expect(reasonShape(hold("steady: 2 active instances"))).not.toBe(reasonShape(hold("scale-up cooldown, 950 ms left")))
    expect(decisionCount({ _tag: "ScaleDown", drain: ["a"], terminate: ["b", "c"], reason: "" })).toBe(3)
  })
})

describe("Placement: quotas, draining, persistence", () => {
  it("refuses a player past the experience's player quota, but keeps one already placed", () => {
    const r = emptyRegistry()
    const e = exp("a", 2)
    expect(placePlayer(r, e, "p1", 0, 10, 2)._tag).toBe("Placed")
    expect(placePlayer(r, e, "p2", 0, 10, 2)._tag).toBe("Placed")
    expect(placePlayer(r, e, "p3", 0, 10, 2)).toEqual({ _tag: "Full", reason: `experience "a" is full (quota of 2 players)` })
    expect(placePlayer(r, e, "p1", 0, 10, 2)._tag).toBe("Placed")
  })

  it("a draining instance takes no new players", () => {
    const r = emptyRegistry()
    const e = exp("a", 4)
    placePlayer(r, e, "p1", 0)
    r.draining.add("a.1")
    const placed = placePlayer(r, e, "p2", 0)
    expect(placed).toEqual({ _tag: "Placed", worldId: "a.2", created: true })
    expect(instanceWithRoom(r, "a")?.worldId).toBe("a.2")
  })

  it("reaping skips instances the autoscaler keeps", () => {
    const r = emptyRegistry()
    spawnInstance(r, exp("a", 4), 0)
    spawnInstance(r, exp("b", 4), 0)
    expect(reapEmpty(r, 10_000, 1000, (i) => i.experienceId === "a")).toEqual(["b.1"])
    expect([...r.instances.keys()]).toEqual(["a.1"])
  })

  it("the registry round-trips through JSON (instances, placements, counters, draining)", () => {
    const r = emptyRegistry()
    const e = exp("a", 2)
    for (const p of ["p1", "p2", "p3"]) placePlayer(r, e, p, 5)
    r.draining.add("a.1")
    const back = registryFromJson(JSON.parse(JSON.stringify(registryToJson(r))))
    expect(registryToJson(back)).toEqual(registryToJson(r))
    expect([...back.placements.entries()].sort()).toEqual([...r.placements.entries()].sort())
    // Ids continue after the saved counter.
    expect(spawnInstance(back, e, 6)).toMatchObject({ _tag: "Spawned", instance: { worldId: "a.3" } })
    expect(() => registryFromJson({ nope: 1 })).toThrow()
  })
})
