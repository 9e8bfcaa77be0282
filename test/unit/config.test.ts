import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Toml from "smol-toml"
import { afterAll, beforeAll } from "vitest"
import { AppConfig, layer } from "../../src/config/AppConfig.js"
import {
  configKeys,
  configSections,
  DEV_SECRET,
  defaultConfig,
  defaultExperience,
  experiencesKey,
  KNOWN_ROLES,
  MAX_MESH_DEPTH,
  toSnakeCase
} from "../../src/config/ConfigSchema.js"
import {
  assertSafeForProduction,
  ConfigError,
  loadConfig,
  renderConfig,
  unknownEnvKeys,
  type LoadConfigOptions
} from "../../src/config/loadConfig.js"
import { isOpenWorld, meshGeometryOf, meshPolicyOf, openWorldExperiences } from "../../src/config/OpenWorld.js"
import type { ExperienceConfig, TesseraConfig } from "../../src/config/TesseraConfig.js"

const repoFile = (relative: string): string => fileURLToPath(new URL(`../../${relative}`, import.meta.url))
const DEFAULT_TOML = repoFile("config/default.toml")
const ORANGE_PI_TOML = repoFile("config/orange-pi.toml")
const OPEN_WORLD_TOML = repoFile("config/open-world.toml")
const GOOD_SECRET = "x".repeat(32)

let tmpDir = ""
let tmpCount = 0
beforeAll(() => {
  tmpDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "tessera-config-"))
})
afterAll(() => {
  Fs.rmSync(tmpDir, { recursive: true, force: true })
})

/** Writes `text` to a fresh temporary .toml file and returns its path. */
const tomlFile = (text: string): string => {
  const file = Path.join(tmpDir, `config-${++tmpCount}.toml`)
  Fs.writeFileSync(file, text)
  return file
}

/** Runs loadConfig expecting a ConfigError; returns it. */
const loadError = (options: LoadConfigOptions): ConfigError => {
  try {
    loadConfig({ env: {}, ...options })
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError)
    return e as ConfigError
  }
  throw new Error("expected loadConfig to throw a ConfigError")
}

/**
 * The (table, key) pairs of a TOML text and whether each key line is directly
 * preceded by a `#` comment line. Array-of-tables items are reported as "experiences[]".
 */
const scanKeys = (text: string): Map<string, boolean> => {
  const keys = new Map<string, boolean>()
  let table = ""
  let previous = ""
  for (const raw of text.split("\n")) {
    const line = raw.trim()
    const header = /^\[(\[)?([^\]]+)\]\]?$/.exec(line)
    const assignment = /^([A-Za-z0-9_]+)\s*=/.exec(line)
    if (header !== null) table = header[1] === "[" ? `${header[2]}[]` : header[2]
    else if (assignment !== null) {
      const path = table === "" ? assignment[1] : `${table}.${assignment[1]}`
      keys.set(path, (keys.get(path) ?? false) || previous.startsWith("#"))
    }
    if (line !== "") previous = line
  }
  return keys
}

describe("defaults", () => {
  it("defaultConfig has the documented defaults", () => {
    expect(defaultConfig.server).toEqual({
      host: "127.0.0.1",
      port: 7350,
      roles: ["all"],
      dev: true,
      shutdownTimeoutMs: 10000,
      logLevel: "info"
    })
    expect(defaultConfig.auth.secret).toBe(DEV_SECRET)
    expect(defaultConfig.experiences).toEqual([
      {
        id: "arena",
        name: "Arena",
        tickRate: 20,
        maxPlayers: 50,
        world: "instanced",
        regionSize: 2000,
        minRegionSize: 500,
        overlap: 100,
        hysteresis: 10,
        splitPlayers: 40,
        mergePlayers: 20,
        tickBudgetMs: 25,
        meshCooldownSeconds: 10,
        regionsX: 4,
        regionsY: 1,
        regionsZ: 4,
        scaling: {
          enabled: false,
          minInstances: 0,
          maxInstances: 0,
          targetPlayersPerInstance: 0,
          scaleUpThreshold: 0.8,
          scaleDownThreshold: 0.3,
          targetCpu: 0,
          targetTickMs: 40,
          bufferInstances: 0,
          scaleUpCooldownSeconds: 30,
          scaleDownCooldownSeconds: 300,
          maxStep: 5
        },
        quota: { maxInstances: 0, maxPlayers: 0 }
      }
    ])
    expect(defaultExperience("arena", "Arena")).toEqual(defaultConfig.experiences[0])
    expect(Object.isFrozen(defaultConfig.server)).toBe(true)
  })

  it("every key has a description, and every default passes its own validation", () => {
    for (const spec of configKeys) {
      expect(spec.field.description, spec.path).toMatch(/\S/)
      expect(spec.field.description, spec.path).not.toContain("\n")
      // decode takes the file form: table-list items with snake_case keys
      const input =
        spec === experiencesKey
          ? defaultConfig.experiences.map(function snake(e: object): object {
            return Object.fromEntries(
              Object.entries(e).map(([k, v]) => [toSnakeCase(k), typeof v === "object" && v !== null && !Array.isArray(v) ? snake(v) : v])
            )
          })
          : spec.field.default
      expect(spec.field.decode(input)._tag, spec.path).toBe("Right")
    }
    for (const item of experiencesKey.field.items) expect(item.field.description).toMatch(/\S/)
    expect(loadConfig({ env: {} })).toEqual(defaultConfig)
  })

  it("config/default.toml parses to exactly defaultConfig", () => {
    expect(loadConfig({ file: DEFAULT_TOML, env: {} })).toEqual(defaultConfig)
  })

  it("config/default.toml sets every key of the schema, each after a # description", () => {
    const text = Fs.readFileSync(DEFAULT_TOML, "utf8")
    const parsed = Toml.parse(text) as Record<string, Record<string, unknown>>
    const scanned = scanKeys(text)
    for (const section of configSections) {
      for (const spec of section.keys) {
        const leaf = spec.tomlPath.slice(section.tomlKey.length + 1)
        expect(parsed[section.tomlKey]?.[leaf], spec.tomlPath).toBeDefined()
        expect(scanned.get(spec.tomlPath), `${spec.tomlPath} has a description comment`).toBe(true)
      }
    }
    const experiences = parsed["experiences"] as unknown as ReadonlyArray<Record<string, unknown>>
    for (const item of experiencesKey.field.items) {
      expect(experiences[0]?.[item.tomlKey], `experiences[0].${item.tomlKey}`).toBeDefined()
      if (item.field.kind === "table") {
        // A sub-table ([experiences.scaling]): each of its keys is set and described.
        for (const inner of item.field.items) {
          const sub = experiences[0]?.[item.tomlKey] as Record<string, unknown> | undefined
          expect(sub?.[inner.tomlKey], `experiences[0].${item.tomlKey}.${inner.tomlKey}`).toBeDefined()
          expect(scanned.get(`experiences.${item.tomlKey}.${inner.tomlKey}`), `experiences.${item.tomlKey}.${inner.tomlKey} comment`).toBe(true)
        }
        continue
      }
      expect(scanned.get(`experiences[].${item.tomlKey}`), `experiences.${item.tomlKey} comment`).toBe(true)
    }
  })

  it("derives TOML paths and env names from the camelCase keys", () => {
    const byPath = new Map(configKeys.map((k) => [k.path, k]))
    expect(byPath.get("server.shutdownTimeoutMs")?.tomlPath).toBe("server.shutdown_timeout_ms")
    expect(byPath.get("gateway.maxPayloadBytes")?.env).toBe("TESSERA_GATEWAY_MAX_PAYLOAD_BYTES")
    expect(byPath.get("storage.dataDir")?.env).toBe("TESSERA_STORAGE_DATA_DIR")
    expect(byPath.get("experiences")?.env).toBe("TESSERA_EXPERIENCES")
    expect(new Set(configKeys.map((k) => k.env)).size).toBe(configKeys.length)
  })

  it("health: runner keys (issue 5) default off and are read from the file and the env", () => {
    expect(defaultConfig.health.maxEventLoopLagMs).toBe(0)
    expect(defaultConfig.health.drainUnhealthyRunners).toBe(false)
    const byPath = new Map(configKeys.map((k) => [k.path, k]))
    expect(byPath.get("health.maxEventLoopLagMs")?.tomlPath).toBe("health.max_event_loop_lag_ms")
    expect(byPath.get("health.drainUnhealthyRunners")?.env).toBe("TESSERA_HEALTH_DRAIN_UNHEALTHY_RUNNERS")
    const fromFile = loadConfig({ file: tomlFile(`[health]\nmax_event_loop_lag_ms = 250\ndrain_unhealthy_runners = true\n`), env: {} })
    expect(fromFile.health).toMatchObject({ maxEventLoopLagMs: 250, drainUnhealthyRunners: true })
    const fromEnv = loadConfig({ env: { TESSERA_HEALTH_DRAIN_UNHEALTHY_RUNNERS: "true", TESSERA_HEALTH_MAX_EVENT_LOOP_LAG_MS: "80" } })
    expect(fromEnv.health).toMatchObject({ maxEventLoopLagMs: 80, drainUnhealthyRunners: true })
  })
})

describe("precedence: defaults < file < env < overrides", () => {
  const file = () =>
    tomlFile(`
[server]
host = "0.0.0.0"
port = 1000
[chat]
banned_words = ["from-file"]
[[experiences]]
id = "file-game"
name = "File Game"
`)
  const env = { TESSERA_SERVER_PORT: "2000", TESSERA_STORAGE_DATA_DIR: "/env/data" }

  it.each([
    { name: "defaults only", useFile: false, useEnv: false, useOverrides: false, port: 7350, host: "127.0.0.1" },
    { name: "file over defaults", useFile: true, useEnv: false, useOverrides: false, port: 1000, host: "0.0.0.0" },
    { name: "env over file", useFile: true, useEnv: true, useOverrides: false, port: 2000, host: "0.0.0.0" },
    { name: "overrides over env", useFile: true, useEnv: true, useOverrides: true, port: 3000, host: "0.0.0.0" }
  ])("$name", ({ useFile, useEnv, useOverrides, port, host }) => {
    const config = loadConfig({
      file: useFile ? file() : undefined,
      env: useEnv ? env : {},
      overrides: useOverrides ? { server: { port: 3000, host: undefined } } : undefined
    })
    expect(config.server.port).toBe(port)
    expect(config.server.host).toBe(host)
    expect(config.storage.dataDir).toBe(useEnv ? "/env/data" : "./data")
    expect(config.chat.bannedWords).toEqual(useFile ? ["from-file"] : [])
    // keys nobody set keep their defaults
    expect(config.gateway).toEqual(defaultConfig.gateway)
  })

  it("a file's experiences get defaults for tick_rate and max_players", () => {
    expect(loadConfig({ file: file(), env: {} }).experiences).toEqual([
      defaultExperience("file-game", "File Game")
    ])
  })

  it("parses env values by the key's type", () => {
    const config = loadConfig({
      env: {
        TESSERA_SERVER_DEV: "0",
        TESSERA_AUTH_SECRET: GOOD_SECRET,
        TESSERA_CLUSTER_SIMULATE_REMOTE_SERIALIZATION: "TRUE",
        TESSERA_SERVER_ROLES: "gateway, expert:chat",
        TESSERA_CHAT_BANNED_WORDS: "foo,bar",
        TESSERA_CHAT_MESSAGES_PER_SECOND: "0.5",
        TESSERA_SERVER_LOG_LEVEL: "debug",
        TESSERA_EXPERIENCES: JSON.stringify([{ id: "env-game", name: "Env", tick_rate: 30, max_players: 8 }]),
        UNRELATED: "ignored"
      }
    })
    expect(config.server.dev).toBe(false)
    expect(config.cluster.simulateRemoteSerialization).toBe(true)
    expect(config.server.roles).toEqual(["gateway", "expert:chat"])
    expect(config.chat.bannedWords).toEqual(["foo", "bar"])
    expect(config.chat.messagesPerSecond).toBe(0.5)
    expect(config.server.logLevel).toBe("debug")
    expect(config.experiences).toEqual([{ ...defaultExperience("env-game", "Env"), tickRate: 30, maxPlayers: 8 }])
  })

  it("overrides replace arrays whole and take camelCase experiences", () => {
    const config = loadConfig({
      env: { TESSERA_SERVER_ROLES: "gateway,region" },
      overrides: {
        server: { roles: ["session"] },
        experiences: [{ ...defaultExperience("cli", "CLI"), tickRate: 60, maxPlayers: 2 }]
      }
    })
    expect(config.server.roles).toEqual(["session"])
    expect(config.experiences).toEqual([{ ...defaultExperience("cli", "CLI"), tickRate: 60, maxPlayers: 2 }])
  })

  it("the result is deeply frozen and does not alias defaultConfig", () => {
    const config = loadConfig({ env: {} })
    expect(Object.isFrozen(config.experiences[0])).toBe(true)
    expect(config.server).not.toBe(defaultConfig.server)
  })

  it("reads process.env when no env is given", () => {
    process.env["TESSERA_SESSION_RESUME_WINDOW_SECONDS"] = "7"
    try {
      expect(loadConfig({}).session.resumeWindowSeconds).toBe(7)
    } finally {
      delete process.env["TESSERA_SESSION_RESUME_WINDOW_SECONDS"]
    }
  })
})

describe("bad values fail with a ConfigError naming the key", () => {
  const experience = (fields: string) => `[[experiences]]\nid = "a"\nname = "A"\n${fields}\n`

  it.each([
    // wrong type
    { name: "string for an integer", toml: `[server]\nport = "7350"`, key: "server.port", says: 'got "7350"' },
    { name: "float for an integer", toml: `[gateway]\nmessage_burst = 1.5`, key: "gateway.message_burst" },
    { name: "number for a boolean", toml: `[server]\ndev = 1`, key: "server.dev" },
    { name: "string for a list", toml: `[server]\nroles = "all"`, key: "server.roles" },
    { name: "value for a table", toml: `server = 5`, key: "server", says: "expected a table" },
    { name: "table for experiences", toml: `[experiences]\nid = "a"`, key: "experiences" },
    // out of range
    { name: "port too big", toml: `[server]\nport = 70000`, key: "server.port", says: "between 0 and 65535" },
    { name: "payload too small", toml: `[gateway]\nmax_payload_bytes = 10`, key: "gateway.max_payload_bytes" },
    { name: "zero cell size", toml: `[region]\ncell_size = 0`, key: "region.cell_size", says: "a number > 0" },
    { name: "empty data dir", toml: `[storage]\ndata_dir = ""`, key: "storage.data_dir", says: "non-empty" },
    { name: "tick rate 0", toml: experience("tick_rate = 0"), key: "experiences[0].tick_rate" },
    { name: "tick rate 129", toml: experience("tick_rate = 129"), key: "experiences[0].tick_rate" },
    { name: "max players 10001", toml: experience("max_players = 10001"), key: "experiences[0].max_players" },
    // unknown keys
    { name: "typo in a key", toml: `[server]\nprot = 1`, key: "server.prot", says: "did you mean server.port?" },
    { name: "typo in a table", toml: `[servr]\nport = 1`, key: "servr", says: "did you mean server?" },
    { name: "key outside its table", toml: `port = 1`, key: "port", says: "did you mean server.port?" },
    { name: "typo in an experience", toml: experience("tickrate = 5"), key: "experiences[0].tickrate" },
    // bad enum
    { name: "log level", toml: `[server]\nlog_level = "warn"`, key: "server.log_level", says: 'did you mean "warning"?' },
    { name: "storage backend", toml: `[storage]\nbackend = "mysql"`, key: "storage.backend" },
    // roles
    { name: "unknown role", toml: `[server]\nroles = ["gateway", "gatway"]`, key: "server.roles[1]" },
    { name: "no roles", toml: `[server]\nroles = []`, key: "server.roles", says: "non-empty" },
    // experiences
    {
      name: "duplicate experience id",
      toml: experience("") + experience(""),
      key: "experiences[1].id",
      says: "duplicate"
    },
    { name: "bad experience id", toml: `[[experiences]]\nid = "no spaces"\nname = "x"`, key: "experiences[0].id" },
    { name: "too long id", toml: `[[experiences]]\nid = "${"a".repeat(65)}"\nname = "x"`, key: "experiences[0].id" },
    { name: "missing id", toml: `[[experiences]]\nname = "x"`, key: "experiences[0].id", says: "missing" },
    // the file itself
    { name: "bad TOML", toml: `[server\nport = 1`, key: "file", says: "invalid TOML at line 1" },
    { name: "duplicate TOML key", toml: `[server]\nport = 1\nport = 2`, key: "file" }
  ])("file: $name -> $key", ({ toml, key, says }) => {
    const file = tomlFile(toml)
    const error = loadError({ file })
    expect(error.key).toBe(key)
    expect(error.message).toContain(key === "file" ? `config file ${file}` : `config key ${key}: `)
    if (key !== "file") expect(error.message).toContain(`(from ${file})`)
    if (says !== undefined) expect(error.message).toContain(says)
  })

  it("a missing file is an error on key file", () => {
    const error = loadError({ file: Path.join(tmpDir, "nope.toml") })
    expect(error.key).toBe("file")
    expect(error.message).toContain("cannot be read")
  })

  it.each([
    { name: "TESSERA_SERVER_PORT", value: "http", key: "server.port" },
    { name: "TESSERA_SERVER_PORT", value: "", key: "server.port" },
    { name: "TESSERA_SERVER_DEV", value: "yes", key: "server.dev" },
    { name: "TESSERA_SERVER_LOG_LEVEL", value: "loud", key: "server.log_level" },
    { name: "TESSERA_SERVER_ROLES", value: "gateway,bogus", key: "server.roles[1]" },
    { name: "TESSERA_SERVER_ROLES", value: "", key: "server.roles" },
    { name: "TESSERA_REGION_MAX_SPEED", value: "fast", key: "region.max_speed" },
    { name: "TESSERA_STORAGE_DATA_DIR", value: "", key: "storage.data_dir" },
    { name: "TESSERA_EXPERIENCES", value: "[{oops", key: "experiences" },
    { name: "TESSERA_EXPERIENCES", value: '{"id":"a"}', key: "experiences" },
    {
      name: "TESSERA_EXPERIENCES",
      value: '[{"id":"a","name":"A","tick_rate":500}]',
      key: "experiences[0].tick_rate"
    },
    { name: "TESSERA_EXPERIENCES", value: '[{"id":"a","name":"A","tickRate":5}]', key: "experiences[0].tickRate" }
  ])("env: $name=$value -> $key", ({ name, value, key }) => {
    const error = loadError({ env: { [name]: value } })
    expect(error.key).toBe(key)
    expect(error.message).toContain(`config key ${key}: `)
    expect(error.message).toContain(`(from ${name})`)
  })

  it("formats the message as documented", () => {
    expect(loadError({ env: { TESSERA_GATEWAY_MAX_PAYLOAD_BYTES: "abc" } }).message).toBe(
      'config key gateway.max_payload_bytes: expected an integer >= 64, got "abc" (from TESSERA_GATEWAY_MAX_PAYLOAD_BYTES)'
    )
  })

  it.each([
    { name: "port out of range", overrides: { server: { port: -1 } }, key: "server.port" },
    { name: "bad role", overrides: { server: { roles: ["everything"] } }, key: "server.roles[0]" },
    {
      name: "duplicate experience",
      overrides: {
        experiences: [
          { ...defaultExperience("a", "A"), maxPlayers: 5 },
          { ...defaultExperience("a", "B"), maxPlayers: 5 }
        ]
      },
      key: "experiences[1].id"
    }
  ])("overrides: $name -> $key", ({ overrides, key }) => {
    const error = loadError({ overrides })
    expect(error.key).toBe(key)
    expect(error.message).toContain("(from command-line flags)")
  })

  it("a later layer cannot fix an earlier bad value: the first bad layer fails", () => {
    const file = tomlFile(`[server]\nport = "x"`)
    expect(loadError({ file, env: { TESSERA_SERVER_PORT: "1" } }).key).toBe("server.port")
  })
})

describe("open-world experiences", () => {
  const world = (fields: string, id = "w") =>
    `[[experiences]]\nid = "${id}"\nname = "W"\n${fields.includes("world =") ? "" : `world = "open"\n`}${fields}\n`

  it("an open world from a file takes its mesh keys, and defaults for the rest", () => {
    const config = loadConfig({ file: tomlFile(world("region_size = 1000\nsplit_players = 60")), env: {} })
    expect(config.experiences).toEqual([
      { ...defaultExperience("w", "W"), world: "open", regionSize: 1000, splitPlayers: 60 }
    ])
  })

  it.each([
    { name: "min = region (no split)", fields: "region_size = 500\nmin_region_size = 500\noverlap = 200" },
    { name: `min = region / 2^${MAX_MESH_DEPTH}`, fields: "region_size = 1600\nmin_region_size = 100\noverlap = 40" },
    { name: "fractional sizes", fields: "region_size = 1000\nmin_region_size = 62.5\noverlap = 31\nhysteresis = 0.5" },
    { name: "no hysteresis, never merge", fields: "hysteresis = 0\nmerge_players = 0" },
    { name: "one root cube", fields: "regions_x = 1\nregions_y = 1\nregions_z = 1" }
  ])("accepts consistent mesh keys: $name", ({ fields }) => {
    expect(() => loadConfig({ file: tomlFile(world(fields)), env: {} })).not.toThrow()
  })

  it.each([
    // a key's own range
    { name: "unknown world kind", fields: `world = "opne"`, key: "world", says: 'did you mean "open"?' },
    { name: "zero region size", fields: "region_size = 0", key: "region_size", says: "a number > 0" },
    { name: "zero split players", fields: "split_players = 0", key: "split_players" },
    { name: "fractional split players", fields: "split_players = 4.5", key: "split_players" },
    { name: "zero tick budget", fields: "tick_budget_ms = 0", key: "tick_budget_ms" },
    { name: "negative cooldown", fields: "mesh_cooldown_seconds = -1", key: "mesh_cooldown_seconds" },
    { name: "no root cubes", fields: "regions_x = 0", key: "regions_x" },
    { name: "zero overlap", fields: "overlap = 0", key: "overlap" },
    { name: "negative hysteresis", fields: "hysteresis = -1", key: "hysteresis" },
    // between keys
    {
      name: "min size not a power-of-two fraction",
      fields: "min_region_size = 300",
      key: "min_region_size",
      says: 'experience "w": expected region_size (2000) divided by a power of two, one of 2000, 1000, 500, 250, 125, got 300'
    },
    { name: "min size above region size", fields: "min_region_size = 4000", key: "min_region_size" },
    { name: "min size too deep", fields: "region_size = 1000\nmin_region_size = 31.25", key: "min_region_size" },
    {
      name: "region size changed alone",
      fields: "region_size = 3000",
      key: "min_region_size",
      says: "one of 3000, 1500, 750, 375, 187.5, got 500"
    },
    {
      name: "overlap of half the min size",
      fields: "overlap = 250",
      key: "overlap",
      says: 'experience "w": expected less than min_region_size / 2 (250), got 250'
    },
    {
      name: "hysteresis as wide as the overlap",
      fields: "hysteresis = 100",
      key: "hysteresis",
      says: 'experience "w": expected less than overlap (100), got 100'
    },
    {
      name: "merge at the split threshold",
      fields: "merge_players = 40",
      key: "merge_players",
      says: 'experience "w": expected less than split_players (40), got 40'
    },
    { name: "split below the default merge", fields: "split_players = 10", key: "merge_players" }
  ])("file: $name -> experiences[0].$key", ({ fields, key, says }) => {
    const file = tomlFile(world(fields))
    const error = loadError({ file })
    expect(error.key).toBe(`experiences[0].${key}`)
    expect(error.message).toContain(`config key experiences[0].${key}: `)
    expect(error.message).toContain(`(from ${file})`)
    if (says !== undefined) expect(error.message).toContain(says)
  })

  it("checks instanced experiences too, and names the experience at fault", () => {
    const text =
      `[[experiences]]\nid = "ok"\nname = "Ok"\n` +
      `[[experiences]]\nid = "bad-one"\nname = "Bad"\nworld = "instanced"\noverlap = 300\n`
    const error = loadError({ file: tomlFile(text) })
    expect(error.key).toBe("experiences[1].overlap")
    expect(error.message).toContain('experience "bad-one": ')
  })

  it("checks env and overrides the same way", () => {
    const env = loadError({
      env: { TESSERA_EXPERIENCES: JSON.stringify([{ id: "e", name: "E", split_players: 5, merge_players: 5 }]) }
    })
    expect(env.key).toBe("experiences[0].merge_players")
    expect(env.message).toContain("(from TESSERA_EXPERIENCES)")
    const overrides = loadError({
      overrides: { experiences: [{ ...defaultExperience("o"), world: "open", hysteresis: 150 }] }
    })
    expect(overrides.key).toBe("experiences[0].hysteresis")
    expect(overrides.message).toContain('experience "o": ')
    expect(overrides.message).toContain("(from command-line flags)")
  })

  it("config/open-world.toml holds an open world next to an instanced one", () => {
    const config = loadConfig({ file: OPEN_WORLD_TOML, env: {} })
    expect(config.experiences.map((e) => [e.id, e.world])).toEqual([
      ["arena", "instanced"],
      ["frontier", "open"]
    ])
    expect(openWorldExperiences(config.experiences).map((e) => e.id)).toEqual(["frontier"])
    const round = loadConfig({ file: tomlFile(renderConfig(config)), env: {} })
    expect(round).toEqual(config)
  })

  it("meshGeometryOf / meshPolicyOf copy the experience's keys into the mesh core's shapes", () => {
    const e: ExperienceConfig = {
      ...defaultExperience("g"),
      world: "open",
      regionSize: 1024,
      minRegionSize: 128,
      overlap: 32,
      hysteresis: 4,
      splitPlayers: 64,
      mergePlayers: 16,
      tickBudgetMs: 12.5,
      meshCooldownSeconds: 3,
      regionsX: 2,
      regionsY: 3,
      regionsZ: 5
    }
    expect(isOpenWorld(e)).toBe(true)
    expect(isOpenWorld(defaultExperience("i"))).toBe(false)
    expect(meshGeometryOf(e)).toEqual({
      rootSize: 1024,
      minSize: 128,
      overlap: 32,
      hysteresis: 4,
      rootsX: 2,
      rootsY: 3,
      rootsZ: 5
    })
    expect(meshPolicyOf(e)).toEqual({ splitPlayers: 64, mergePlayers: 16, tickBudgetMs: 12.5, cooldownMs: 3000 })
  })
})

describe("production safety", () => {
  it.each([
    { name: "the dev secret", secret: undefined, says: "built-in development secret" },
    { name: "a short secret", secret: "short-secret", says: "only 12 characters" }
  ])("dev = false with $name fails on auth.secret", ({ secret, says }) => {
    const env: Record<string, string> = { TESSERA_SERVER_DEV: "false" }
    if (secret !== undefined) env["TESSERA_AUTH_SECRET"] = secret
    const error = loadError({ env })
    expect(error.key).toBe("auth.secret")
    expect(error.message).toContain(says)
    expect(error.message).toContain("TESSERA_AUTH_SECRET")
    if (secret !== undefined) expect(error.message).not.toContain(secret)
  })

  it("dev = false with a long secret, or dev = true with the dev secret, is fine", () => {
    expect(loadConfig({ env: { TESSERA_SERVER_DEV: "false", TESSERA_AUTH_SECRET: GOOD_SECRET } }).auth.secret).toBe(
      GOOD_SECRET
    )
    expect(() => assertSafeForProduction(defaultConfig)).not.toThrow()
  })

  it("a bad secret's value is not echoed in errors", () => {
    const error = loadError({ file: tomlFile(`[auth]\nsecret = ""`) })
    expect(error.key).toBe("auth.secret")
    expect(error.message).toContain("a 0-character string")
  })
})

describe("config/orange-pi.toml", () => {
  it("is valid with TESSERA_AUTH_SECRET set", () => {
    const config = loadConfig({ file: ORANGE_PI_TOML, env: { TESSERA_AUTH_SECRET: GOOD_SECRET } })
    expect(config.server.dev).toBe(false)
    expect(config.cluster.shardsPerGroup).toBeLessThan(defaultConfig.cluster.shardsPerGroup)
    expect(config.experiences.map((e) => e.id)).toEqual(["arena", "lobby"])
  })

  it("refuses to start without a real secret (it is a production config)", () => {
    expect(loadError({ file: ORANGE_PI_TOML }).key).toBe("auth.secret")
  })
})

describe("renderConfig", () => {
  const custom: TesseraConfig = {
    ...defaultConfig,
    server: { ...defaultConfig.server, roles: ["gateway", "expert:chat"], port: 9000 },
    chat: { ...defaultConfig.chat, bannedWords: ['quo"te', "back\\slash"], messagesPerSecond: 0.25 },
    experiences: []
  }

  it.each([
    { name: "defaults", config: defaultConfig },
    { name: "custom values and no experiences", config: custom }
  ])("round-trips $name through TOML", ({ config }) => {
    for (const comments of [true, false]) {
      const file = tomlFile(renderConfig(config, { comments }))
      expect(loadConfig({ file, env: {} })).toEqual(config)
    }
  })

  it("notes values that differ from their default", () => {
    expect(renderConfig(custom)).toContain("port = 9000")
    expect(renderConfig(custom)).toMatch(/\(default: 7350\)\nport = 9000/)
  })

  it("redacts a real secret unless asked", () => {
    const config: TesseraConfig = { ...defaultConfig, auth: { ...defaultConfig.auth, secret: GOOD_SECRET } }
    expect(renderConfig(config)).not.toContain(GOOD_SECRET)
    expect(renderConfig(config, { revealSecrets: true })).toContain(GOOD_SECRET)
  })
})

describe("misc", () => {
  it("KNOWN_ROLES are all accepted", () => {
    expect(loadConfig({ env: {}, overrides: { server: { roles: [...KNOWN_ROLES] } } }).server.roles).toEqual([
      ...KNOWN_ROLES
    ])
  })

  it("unknownEnvKeys lists TESSERA_* variables that are not keys", () => {
    expect(unknownEnvKeys({ TESSERA_SERVER_PORT: "1", TESSERA_SERVER_PROT: "1", HOME: "/" })).toEqual([
      "TESSERA_SERVER_PROT"
    ])
  })

  it.effect("AppConfig.layer provides the config", () =>
    Effect.gen(function* () {
      const config = yield* AppConfig
      expect(config).toBe(defaultConfig)
    }).pipe(Effect.provide(layer(defaultConfig)))
  )
})
