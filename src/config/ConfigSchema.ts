/**
 * The one place that defines every configuration key: its default, a one-line
 * description, and how it is validated. Everything else is derived from here:
 * `defaultConfig`, the TOML / TESSERA_* env key names, `loadConfig`'s checks,
 * `renderConfig`'s comments, and config/default.toml (a test keeps it in sync).
 *
 * Pure: no IO. Key names inside `configSchema` are the camelCase names of
 * TesseraConfig; the snake_case (TOML) and SCREAMING_SNAKE (env) forms are
 * derived in `configSections` / `configKeys`.
 */
import { Either } from "effect"
import { ALL_ROLES, type Role } from "../cluster/Roles.js"
import { validateGeometry } from "../region/mesh/MeshGeometry.js"
import { validatePolicy } from "../region/mesh/MeshPolicy.js"
import { meshGeometryOf, meshPolicyOf } from "./OpenWorld.js"
import type {
  ExperienceConfig,
  ExperienceQuotaConfig,
  ExperienceScalingConfig,
  MatchmakingModeConfig,
  TesseraConfig
} from "./TesseraConfig.js"

/** The built-in development secret. Refused when `server.dev` is false. */
export const DEV_SECRET = "tessera-dev-secret-change-me"

/** The roles a process can host: the one list lives in cluster/Roles.ts. */
export const KNOWN_ROLES = ALL_ROLES
export type KnownRole = Role

export const LOG_LEVELS = ["trace", "debug", "info", "warning", "error", "none"] as const satisfies ReadonlyArray<
  TesseraConfig["server"]["logLevel"]
>

export const STORAGE_BACKENDS = ["sqlite", "postgres"] as const satisfies ReadonlyArray<TesseraConfig["storage"]["backend"]>

export const WORLD_KINDS = ["instanced", "open"] as const satisfies ReadonlyArray<ExperienceConfig["world"]>

/**
 * Deepest split of a root region: the smallest region is region_size / 2^k
 * for k = 0..MAX_MESH_DEPTH (metrics label levels "0".."4").
 */
export const MAX_MESH_DEPTH = 4

/** Prefix of every configuration environment variable. */
export const ENV_PREFIX = "TESSERA_"

// ---------------------------------------------------------------------------
// Field specs
// ---------------------------------------------------------------------------

/**
 * Why a value was rejected. `path` is below the key itself: `[]` for the key,
 * `[1]` for list item 1, `[1, "tick_rate"]` for a field of table item 1.
 * `message` reads `expected ..., got ...` (or `unknown key; did you mean ...`).
 */
export interface Issue {
  readonly path: ReadonlyArray<string | number>
  readonly message: string
}

export type FieldKind = "integer" | "number" | "string" | "boolean" | "enum" | "string list" | "table list" | "table"

export interface Field<A> {
  readonly kind: FieldKind
  /** One line, shown as the comment above the key in TOML output and docs. */
  readonly description: string
  readonly default: A
  /** What a valid value looks like, e.g. "an integer between 1 and 65535". */
  readonly expected: string
  /** Secret values are never echoed in error messages nor rendered by default. */
  readonly secret: boolean
  /** Only inside a table list: the key must be given (its `default` is just an example). */
  readonly required: boolean
  /** Only for "table list" and "table" fields: the fields of one table. */
  readonly items: ReadonlyArray<ItemSpec>
  /** Parses the text of an environment variable into a candidate (validated by `decode`). */
  readonly fromEnv: (raw: string) => Either.Either<unknown, Issue>
  /**
   * Validates a candidate from TOML, env, JSON or overrides, in its file form:
   * the same as the config value except that table-list items use snake_case keys.
   */
  readonly decode: (input: unknown) => Either.Either<A, Issue>
}

/** One field of a table-list item, e.g. `experiences[].tick_rate`. */
export interface ItemSpec {
  readonly key: string
  readonly tomlKey: string
  readonly field: Field<unknown>
}

// ---------------------------------------------------------------------------
// Helpers shared with loadConfig
// ---------------------------------------------------------------------------

/** `shutdownTimeoutMs` -> `shutdown_timeout_ms`. */
export const toSnakeCase = (camel: string): string => camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)

/** A plain TOML/JSON table (not an array, date or null). */
export const isTable = (u: unknown): u is Readonly<Record<string, unknown>> => {
  if (typeof u !== "object" || u === null || Array.isArray(u)) return false
  const proto: unknown = Object.getPrototypeOf(u)
  return proto === null || proto === Object.prototype
}

/** A short, safe rendering of a rejected value for error messages. */
export const describeValue = (u: unknown, secret = false): string => {
  if (typeof u === "string") {
    if (secret) return `a ${u.length}-character string`
    const json = JSON.stringify(u)
    return json.length > 80 ? `${json.slice(0, 77)}..."` : json
  }
  if (typeof u === "number" || typeof u === "boolean" || typeof u === "bigint") return String(u)
  if (u === null || u === undefined) return String(u)
  if (u instanceof Date) return `a date (${u.toISOString()})`
  if (Array.isArray(u)) {
    if (secret) return "an array"
    const json = JSON.stringify(u)
    return json.length > 80 ? `${json.slice(0, 77)}...` : json
  }
  return "a table"
}

const editDistance = (a: string, b: string): number => {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    prev = row
  }
  return prev[b.length]
}

/** The candidate closest to `input` if it looks like a typo of it. */
export const closestMatch = (input: string, candidates: Iterable<string>): string | undefined => {
  let best: string | undefined
  let bestDistance = Infinity
  const needle = input.toLowerCase()
  const all = Array.from(candidates)
  // An abbreviation ("warn" for "warning") is a match whatever its edit distance.
  const prefixed = needle.length >= 3 ? all.filter((c) => c.toLowerCase().startsWith(needle)) : []
  if (prefixed.length === 1) return prefixed[0]
  for (const candidate of all) {
    const d = editDistance(needle, candidate.toLowerCase())
    if (d < bestDistance) {
      best = candidate
      bestDistance = d
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(input.length / 3)) ? best : undefined
}

const ok = Either.right
const invalid = (expected: string, got: unknown, secret = false, hint = ""): Either.Either<never, Issue> =>
  Either.left({ path: [], message: `expected ${expected}, got ${describeValue(got, secret)}${hint}` })
const envAsIs = (raw: string): Either.Either<unknown, Issue> => ok(raw)

interface Common<A> {
  readonly default: A
  readonly description: string
  readonly required?: boolean
}

const field = <A>(
  o: Common<A> & Pick<Field<A>, "kind" | "expected" | "fromEnv" | "decode"> & Partial<Pick<Field<A>, "secret" | "items">>
): Field<A> => ({
  kind: o.kind,
  description: o.description,
  default: o.default,
  expected: o.expected,
  secret: o.secret ?? false,
  required: o.required ?? false,
  items: o.items ?? [],
  fromEnv: o.fromEnv,
  decode: o.decode
})

const integer = (o: Common<number> & { readonly min: number; readonly max?: number }): Field<number> => {
  const expected = o.max === undefined ? `an integer >= ${o.min}` : `an integer between ${o.min} and ${o.max}`
  return field({
    ...o,
    kind: "integer",
    expected,
    fromEnv: (raw) => ok(/^\s*[+-]?\d+\s*$/.test(raw) ? Number(raw) : raw),
    decode: (u) =>
      typeof u === "number" && Number.isSafeInteger(u) && u >= o.min && (o.max === undefined || u <= o.max)
        ? ok(u)
        : invalid(expected, u)
  })
}

const number = (
  o: Common<number> & { readonly min: number; readonly max: number; readonly exclusiveMin?: boolean }
): Field<number> => {
  const exclusive = o.exclusiveMin ?? false
  const expected = exclusive ? `a number > ${o.min} and <= ${o.max}` : `a number between ${o.min} and ${o.max}`
  return field({
    ...o,
    kind: "number",
    expected,
    fromEnv: (raw) => {
      const n = raw.trim() === "" ? NaN : Number(raw)
      return ok(Number.isFinite(n) ? n : raw)
    },
    decode: (u) =>
      typeof u === "number" && Number.isFinite(u) && (exclusive ? u > o.min : u >= o.min) && u <= o.max
        ? ok(u)
        : invalid(expected, u)
  })
}

const string = (
  o: Common<string> & {
    readonly maxLength?: number
    readonly pattern?: { readonly regex: RegExp; readonly text: string }
    readonly secret?: boolean
    /** The empty string is a valid value (e.g. "not set: feature off"). */
    readonly allowEmpty?: boolean
  }
): Field<string> => {
  const expected =
    o.pattern?.text ??
      (o.allowEmpty === true
        ? (o.maxLength === undefined ? "a string" : `a string of at most ${o.maxLength} characters`)
        : o.maxLength === undefined
        ? "a non-empty string"
        : `a non-empty string of at most ${o.maxLength} characters`)
  const secret = o.secret ?? false
  return field({
    ...o,
    kind: "string",
    expected,
    secret,
    fromEnv: envAsIs,
    decode: (u) =>
      typeof u === "string" &&
      (u.length > 0 || o.allowEmpty === true) &&
      (o.maxLength === undefined || u.length <= o.maxLength) &&
      (o.pattern === undefined || o.pattern.regex.test(u))
        ? ok(u)
        : invalid(expected, u, secret)
  })
}

const boolean = (o: Common<boolean>): Field<boolean> => {
  const expected = "true or false"
  return field({
    ...o,
    kind: "boolean",
    expected,
    fromEnv: (raw) => {
      const v = raw.trim().toLowerCase()
      return ok(v === "true" || v === "1" ? true : v === "false" || v === "0" ? false : raw)
    },
    decode: (u) => (typeof u === "boolean" ? ok(u) : invalid(`${expected} (env: true/false/1/0)`, u))
  })
}

const oneOf = <const L extends string>(
  o: Common<NoInfer<L>> & { readonly values: ReadonlyArray<L> }
): Field<L> => {
  const quoted = o.values.map((v) => JSON.stringify(v))
  const expected = quoted.length === 1 ? quoted[0] : `one of ${quoted.join(", ")}`
  const isValue = (u: unknown): u is L => typeof u === "string" && (o.values as ReadonlyArray<string>).includes(u)
  return field({
    ...o,
    kind: "enum",
    expected,
    fromEnv: envAsIs,
    decode: (u) => {
      if (isValue(u)) return ok(u)
      const guess = typeof u === "string" ? closestMatch(u, o.values) : undefined
      return invalid(expected, u, false, guess === undefined ? "" : `; did you mean "${guess}"?`)
    }
  })
}

/** A list of strings; in env vars, comma-separated. */
const stringList = (
  o: Common<ReadonlyArray<string>> & {
    readonly nonEmpty: boolean
    /** The whole list, e.g. "a non-empty list of roles (...)". */
    readonly expected: string
    /** One item, e.g. '"all" or one of gateway, ...'. */
    readonly itemExpected: string
    /** Returns a hint suffix ("" if none) when the item is invalid, undefined when valid. */
    readonly checkItem: (item: string) => string | undefined
  }
): Field<ReadonlyArray<string>> => {
  const { expected } = o
  return field({
    ...o,
    kind: "string list",
    fromEnv: (raw) =>
      ok(
        raw
          .split(",")
          .map((s) => s.trim())
          .filter((s) => s.length > 0)
      ),
    decode: (u) => {
      if (!Array.isArray(u) || (o.nonEmpty && u.length === 0)) return invalid(expected, u)
      for (let i = 0; i < u.length; i++) {
        const item: unknown = u[i]
        const hint = typeof item === "string" ? o.checkItem(item) : ""
        if (hint !== undefined) {
          return Either.left({ path: [i], message: `expected ${o.itemExpected}, got ${describeValue(item)}${hint}` })
        }
      }
      return ok(u.slice() as ReadonlyArray<string>)
    }
  })
}

type ItemFields<A> = { readonly [K in keyof A]-?: Field<A[K]> }

/**
 * A sub-table inside a table-list item (`[experiences.scaling]` after an
 * `[[experiences]]` header): every key optional (its default otherwise),
 * snake_case keys, unknown keys refused. `check` validates the decoded table
 * as a whole (Issue path below the sub-table, in snake_case).
 */
const subTable = <A>(
  o: Omit<Common<A>, "default"> & {
    readonly name: string
    readonly fields: ItemFields<A>
    readonly check?: (value: A) => Issue | undefined
  }
): Field<A> => {
  const items: ReadonlyArray<ItemSpec> = Object.entries<Field<unknown>>(o.fields).map(([key, f]) => ({
    key,
    tomlKey: toSnakeCase(key),
    field: f
  }))
  const byTomlKey = new Map(items.map((item) => [item.tomlKey, item]))
  const defaults = Object.fromEntries(items.map((item) => [item.key, item.field.default])) as A
  const expected = `a table ([experiences.${o.name}] in TOML)`
  return field<A>({
    description: o.description,
    default: defaults,
    kind: "table",
    expected,
    items,
    fromEnv: (raw) => {
      try {
        return ok(JSON.parse(raw) as unknown)
      } catch {
        return invalid(`${expected}, as JSON`, raw)
      }
    },
    decode: (u) => {
      if (!isTable(u)) return invalid(expected, u)
      for (const key of Object.keys(u)) {
        if (!byTomlKey.has(key)) {
          const guess = closestMatch(key, byTomlKey.keys())
          return Either.left({ path: [key], message: `unknown key in [experiences.${o.name}]${guess === undefined ? "" : `; did you mean ${guess}?`}` })
        }
      }
      const out: Record<string, unknown> = {}
      for (const item of items) {
        const value = u[item.tomlKey]
        if (value === undefined) {
          out[item.key] = item.field.default
          continue
        }
        const decoded = item.field.decode(value)
        if (Either.isLeft(decoded)) return Either.left({ path: [item.tomlKey, ...decoded.left.path], message: decoded.left.message })
        out[item.key] = decoded.right
      }
      // Every key of A was decoded by its own Field<A[K]> above.
      const value = out as A
      const issue = o.check?.(value)
      return issue === undefined ? ok(value) : Either.left(issue)
    }
  })
}

/** A TOML array of tables (`[[experiences]]`); in env vars, a JSON array with snake_case keys. */
const tableList = <A>(
  o: Common<ReadonlyArray<A>> & {
    readonly itemName: string
    readonly fields: ItemFields<A>
    /** The key (or keys, together) that no two items may share. */
    readonly uniqueBy: (keyof A & string) | ReadonlyArray<keyof A & string>
    /**
     * Cross-field validation of one decoded item (every field already valid):
     * an Issue whose `path` is below the item, in snake_case (`["merge_players"]`),
     * or undefined when the item is consistent.
     */
    readonly check?: (item: A) => Issue | undefined
  }
): Field<ReadonlyArray<A>> => {
  const items: ReadonlyArray<ItemSpec> = Object.entries<Field<unknown>>(o.fields).map(([key, f]) => ({
    key,
    tomlKey: toSnakeCase(key),
    field: f
  }))
  const byTomlKey = new Map(items.map((item) => [item.tomlKey, item]))
  const uniqueKeys: ReadonlyArray<keyof A & string> = typeof o.uniqueBy === "string" ? [o.uniqueBy] : o.uniqueBy
  const uniqueKey = uniqueKeys.map((k) => toSnakeCase(k)).join("+")
  const expected = `an array of ${o.itemName} tables ([[...]] in TOML, a JSON array in env)`
  const decodeItem = (u: unknown, index: number): Either.Either<A, Issue> => {
    if (!isTable(u)) {
      return Either.left({ path: [index], message: `expected a table, got ${describeValue(u)}` })
    }
    for (const key of Object.keys(u)) {
      if (!byTomlKey.has(key)) {
        const guess = closestMatch(key, byTomlKey.keys())
        return Either.left({
          path: [index, key],
          message: `unknown key in ${o.itemName}${guess === undefined ? "" : `; did you mean ${guess}?`}`
        })
      }
    }
    const out: Record<string, unknown> = {}
    for (const item of items) {
      const value = u[item.tomlKey]
      if (value === undefined) {
        if (item.field.required) {
          return Either.left({
            path: [index, item.tomlKey],
            message: `missing: every ${o.itemName} needs ${item.field.expected}`
          })
        }
        out[item.key] = item.field.default
        continue
      }
      const decoded = item.field.decode(value)
      if (Either.isLeft(decoded)) {
        return Either.left({ path: [index, item.tomlKey, ...decoded.left.path], message: decoded.left.message })
      }
      out[item.key] = decoded.right
    }
    // Every key of A was decoded by its own Field<A[K]> above.
    const item = out as A
    const issue = o.check?.(item)
    if (issue !== undefined) return Either.left({ path: [index, ...issue.path], message: issue.message })
    return ok(item)
  }
  return field({
    ...o,
    kind: "table list",
    expected,
    items,
    fromEnv: (raw) => {
      try {
        return ok(JSON.parse(raw) as unknown)
      } catch (e) {
        return Either.left({
          path: [],
          message: `expected a JSON array of ${o.itemName} tables with snake_case keys, got invalid JSON (${e instanceof Error ? e.message : String(e)})`
        })
      }
    },
    decode: (u) => {
      if (!Array.isArray(u)) return invalid(expected, u)
      const out: Array<A> = []
      const seen = new Map<unknown, number>()
      for (let i = 0; i < u.length; i++) {
        const decoded = decodeItem(u[i], i)
        if (Either.isLeft(decoded)) return Either.left(decoded.left)
        const id = uniqueKeys.length === 1
          ? decoded.right[uniqueKeys[0]!]
          : uniqueKeys.map((k) => describeValue(decoded.right[k])).join("+")
        const first = seen.get(id)
        if (first !== undefined) {
          return Either.left({
            path: [i, uniqueKey],
            message: `duplicate ${o.itemName} ${uniqueKey} ${uniqueKeys.length === 1 ? describeValue(id) : String(id)} (already used by item ${first})`
          })
        }
        seen.set(id, i)
        out.push(decoded.right)
      }
      return ok(out)
    }
  })
}

// ---------------------------------------------------------------------------
// The schema
// ---------------------------------------------------------------------------

type SectionKey = Exclude<keyof TesseraConfig, "experiences">

export interface Section<S> {
  readonly description: string
  readonly fields: { readonly [K in keyof S]-?: Field<S[K]> }
}

export type ConfigSchema = { readonly [K in SectionKey]: Section<TesseraConfig[K]> } & {
  readonly experiences: Field<TesseraConfig["experiences"]>
}

const roleHint = (role: string): string | undefined => {
  if (role === "all" || (KNOWN_ROLES as ReadonlyArray<string>).includes(role)) return undefined
  const guess = closestMatch(role, ["all", ...KNOWN_ROLES])
  return guess === undefined ? "" : `; did you mean "${guess}"?`
}

export const SCHEDULER_ACTUATORS = ["local", "nomad", "kubernetes"] as const satisfies ReadonlyArray<
  TesseraConfig["scheduler"]["actuator"]
>

/** `[experiences.scaling]`: the experience's autoscaling policy (scheduler/autoscale/ScalingPolicy.ts). */
const scalingFields: ItemFields<ExperienceScalingConfig> = {
  enabled: boolean({
    default: false,
    description:
      "Run the autoscaling policy for this experience; when false instances are only opened by placement (one full) and reaped when empty."
  }),
  minInstances: integer({
    default: 0,
    min: 0,
    max: 100000,
    description: "Fewest healthy, non-draining instances kept running (warm), even with no players."
  }),
  maxInstances: integer({
    default: 0,
    min: 0,
    max: 1000000,
    description:
      "Most instances the policy scales to; 0 = the quota's max_instances (or scheduler.max_instances); at most quota.max_instances."
  }),
  targetPlayersPerInstance: integer({
    default: 0,
    min: 0,
    max: 10000,
    description: "Players (placed and queued) one instance should carry; 0 = 80% of max_players; at most max_players."
  }),
  scaleUpThreshold: number({
    default: 0.8,
    min: 0,
    max: 1,
    exclusiveMin: true,
    description: "Utilisation (players and queue over the instances' max_players) above which one more instance is added."
  }),
  scaleDownThreshold: number({
    default: 0.3,
    min: 0,
    max: 1,
    description: "Utilisation under which instances may be removed; below scale_up_threshold (the gap damps flapping)."
  }),
  targetCpu: number({
    default: 0,
    min: 0,
    max: 1,
    description:
      "Mean CPU (0..1, from heartbeats) to steer toward; 0 disables. In one process every instance reports the process's CPU."
  }),
  targetTickMs: number({
    default: 40,
    min: 0,
    max: 60000,
    description: "Mean tick duration p99 (ms, from heartbeats) to steer toward; 0 disables."
  }),
  bufferInstances: integer({
    default: 0,
    min: 0,
    max: 1000,
    description: "Warm instances kept beyond what the players need, ready for the next rush."
  }),
  scaleUpCooldownSeconds: number({
    default: 30,
    min: 0,
    max: 86400,
    description: "Least time between two scale-ups, in seconds (new instances take a while to show in the metrics)."
  }),
  scaleDownCooldownSeconds: number({
    default: 300,
    min: 0,
    max: 86400,
    description: "Least time after any scaling action before a scale-down, in seconds."
  }),
  maxStep: integer({
    default: 5,
    min: 1,
    max: 10000,
    description: "Most instances one decision adds or removes (outside the min/max correction)."
  })
}

/** `[experiences.quota]`: hard limits of one experience, so its load never starves another. */
const quotaFields: ItemFields<ExperienceQuotaConfig> = {
  maxInstances: integer({
    default: 0,
    min: 0,
    max: 1000000,
    description: "Most instances of this experience (placement, admin spawn and autoscaling); 0 = scheduler.max_instances."
  }),
  maxPlayers: integer({
    default: 0,
    min: 0,
    max: 100000000,
    description: "Most players across all instances of this experience; a join beyond it gets WorldFull. 0 = no limit."
  })
}

/** The rules between an experience's scaling and quota keys. */
const checkScaling = (e: ExperienceConfig): Issue | undefined => {
  const issue = (path: ReadonlyArray<string>, message: string): Issue => ({
    path,
    message: `experience ${JSON.stringify(e.id)}: ${message}`
  })
  const s = e.scaling
  const q = e.quota
  if (!(s.scaleDownThreshold < s.scaleUpThreshold)) {
    return issue(["scaling", "scale_down_threshold"], `expected less than scale_up_threshold (${s.scaleUpThreshold}), got ${s.scaleDownThreshold}`)
  }
  if (s.maxInstances > 0 && s.minInstances > s.maxInstances) {
    return issue(["scaling", "min_instances"], `expected at most scaling.max_instances (${s.maxInstances}), got ${s.minInstances}`)
  }
  if (q.maxInstances > 0 && s.maxInstances > q.maxInstances) {
    return issue(["scaling", "max_instances"], `expected at most quota.max_instances (${q.maxInstances}), got ${s.maxInstances}`)
  }
  if (q.maxInstances > 0 && s.minInstances > q.maxInstances) {
    return issue(["scaling", "min_instances"], `expected at most quota.max_instances (${q.maxInstances}), got ${s.minInstances}`)
  }
  if (s.targetPlayersPerInstance > e.maxPlayers) {
    return issue(["scaling", "target_players_per_instance"], `expected at most max_players (${e.maxPlayers}), got ${s.targetPlayersPerInstance}`)
  }
  if (s.enabled && e.world === "open") {
    return issue(["scaling", "enabled"], "autoscaling applies to instanced experiences; an open world scales by splitting regions")
  }
  return undefined
}

const experienceFields: ItemFields<ExperienceConfig> = {
  id: string({
    default: "arena",
    required: true,
    description: "Unique id of the experience (game), used in URLs, storage keys and metrics.",
    pattern: { regex: /^[A-Za-z0-9_-]{1,64}$/, text: "an id of 1 to 64 characters from A-Z a-z 0-9 _ -" }
  }),
  name: string({
    default: "Arena",
    required: true,
    description: "Display name shown to players.",
    maxLength: 100
  }),
  tickRate: integer({
    default: 20,
    min: 1,
    max: 128,
    description: "Simulation ticks per second of each region of this experience."
  }),
  maxPlayers: integer({
    default: 50,
    min: 1,
    max: 10000,
    description: "Most players in one instance of this experience; the scheduler opens another instance beyond it."
  }),
  world: oneOf({
    values: WORLD_KINDS,
    default: "instanced",
    description:
      "instanced: many small worlds (matches, rooms) of one region each; open: one persistent world cut into cubic regions that split and merge with load (the keys below)."
  }),
  regionSize: number({
    default: 2000,
    min: 0,
    max: 1000000,
    exclusiveMin: true,
    description: "Open world: side of a root region cube, in metres."
  }),
  minRegionSize: number({
    default: 500,
    min: 0,
    max: 1000000,
    exclusiveMin: true,
    description: `Open world: side of the smallest region a busy one splits down to, in metres; region_size / 2^k for k = 0..${MAX_MESH_DEPTH}.`
  }),
  overlap: number({
    default: 100,
    min: 0,
    max: 1000000,
    exclusiveMin: true,
    description:
      "Open world: width of the zone on each side of a region boundary that both regions see, in metres; less than min_region_size / 2."
  }),
  hysteresis: number({
    default: 10,
    min: 0,
    max: 1000000,
    description:
      "Open world: how far past a region boundary an entity must go before authority moves to the next region, in metres; less than overlap."
  }),
  splitPlayers: integer({
    default: 40,
    min: 1,
    max: 100000,
    description: "Open world: a region holding more players than this splits into 8 (down to min_region_size)."
  }),
  mergePlayers: integer({
    default: 20,
    min: 0,
    max: 100000,
    description: "Open world: 8 sibling regions holding fewer players than this in total merge back into one; less than split_players."
  }),
  tickBudgetMs: number({
    default: 25,
    min: 0,
    max: 60000,
    exclusiveMin: true,
    description: "Open world: a region whose tick duration p99 exceeds this many ms splits, whatever its player count."
  }),
  meshCooldownSeconds: integer({
    default: 10,
    min: 0,
    max: 86400,
    description: "Open world: least time between two splits or merges of the same region, in seconds (damps flapping)."
  }),
  regionsX: integer({
    default: 4,
    min: 1,
    max: 1024,
    description: "Open world: root region cubes along x (east); the world spans regions_x * region_size metres."
  }),
  regionsY: integer({
    default: 1,
    min: 1,
    max: 1024,
    description: "Open world: root region cubes along y (up)."
  }),
  regionsZ: integer({
    default: 4,
    min: 1,
    max: 1024,
    description: "Open world: root region cubes along z (north)."
  }),
  scaling: subTable<ExperienceScalingConfig>({
    name: "scaling",
    description: "Autoscaling policy of this experience's instances ([experiences.scaling] after its [[experiences]]).",
    fields: scalingFields
  }),
  quota: subTable<ExperienceQuotaConfig>({
    name: "quota",
    description: "Hard limits of this experience ([experiences.quota] after its [[experiences]]).",
    fields: quotaFields
  })
}

/** The lengths region_size / 2^k, k = 0..MAX_MESH_DEPTH, that min_region_size may take. */
export const allowedMinRegionSizes = (regionSize: number): ReadonlyArray<number> =>
  Array.from({ length: MAX_MESH_DEPTH + 1 }, (_, k) => regionSize / 2 ** k)

/**
 * The rules between an experience's keys that each key's own range cannot
 * express. Checked for every experience (instanced ones too), so a config that
 * loads stays valid when an experience is switched to world = "open".
 */
const checkExperience = (e: ExperienceConfig): Issue | undefined => {
  const issue = (tomlKey: string, message: string): Issue => ({
    path: [tomlKey],
    message: `experience ${JSON.stringify(e.id)}: ${message}`
  })
  const sizes = allowedMinRegionSizes(e.regionSize)
  if (!sizes.includes(e.minRegionSize)) {
    return issue(
      "min_region_size",
      `expected region_size (${e.regionSize}) divided by a power of two, one of ${sizes.join(", ")}, got ${e.minRegionSize}`
    )
  }
  if (!(e.overlap < e.minRegionSize / 2)) {
    return issue(
      "overlap",
      `expected less than min_region_size / 2 (${e.minRegionSize / 2}), got ${e.overlap}`
    )
  }
  if (!(e.hysteresis < e.overlap)) {
    return issue("hysteresis", `expected less than overlap (${e.overlap}), got ${e.hysteresis}`)
  }
  if (!(e.mergePlayers < e.splitPlayers)) {
    return issue("merge_players", `expected less than split_players (${e.splitPlayers}), got ${e.mergePlayers}`)
  }
  // The mesh core's own checks, so whatever loads here is accepted there too
  // (the rules above are the same or stricter, so this should never fire).
  const core = validateGeometry(meshGeometryOf(e)) ?? validatePolicy(meshPolicyOf(e))
  if (core !== undefined) return { path: [], message: `experience ${JSON.stringify(e.id)}: ${core}` }
  return checkScaling(e)
}

const MODE_NAME = { regex: /^[A-Za-z0-9_-]{1,64}$/, text: "a name of 1 to 64 characters from A-Z a-z 0-9 _ -" }

const matchmakingModeFields: ItemFields<MatchmakingModeConfig> = {
  experience: string({
    default: "arena",
    required: true,
    description: "Id of the instanced experience whose instances host this mode's matches.",
    pattern: MODE_NAME
  }),
  mode: string({
    default: "squads",
    required: true,
    description: "Name of the mode; one queue per (experience, mode), named in the client's MatchQueue frame.",
    pattern: MODE_NAME
  }),
  matchSize: integer({ default: 10, min: 1, max: 1000, description: "Players per match (a party counts with all its members)." }),
  minPlayers: integer({
    default: 0,
    min: 0,
    max: 1000,
    description:
      "Smallest match started once the oldest ticket's skill window stopped growing (free slots are backfilled); 0 = matches are always full."
  }),
  initialSkillWindow: number({
    default: 100,
    min: 0,
    max: 1e6,
    description: "Skill window half-width of a new ticket: it matches skills within ± this of its own."
  }),
  skillWindowGrowthPerSecond: number({
    default: 25,
    min: 0,
    max: 1e6,
    description: "How much the skill window widens per second of waiting."
  }),
  maxSkillWindow: number({ default: 500, min: 0, max: 1e6, description: "Widest skill window (>= initial_skill_window)." }),
  ticketTimeoutSeconds: integer({
    default: 120,
    min: 1,
    max: 86400,
    description: "A ticket not matched within this many seconds is dropped (MatchEnded reason \"timeout\")."
  }),
  readyCheckSeconds: integer({
    default: 0,
    min: 0,
    max: 600,
    description: "Time every player of a found match has to accept it (MatchAccept); 0 = no ready check, matches start at once."
  }),
  maxLatencyMs: integer({
    default: 150,
    min: 0,
    max: 60000,
    description: "Highest latency to a region at which a player may be matched there, in ms."
  }),
  backfill: boolean({
    default: true,
    description: "Fill free slots of this mode's running matches (a player left) with queued parties before forming new matches."
  })
}

const checkMatchmakingMode = (m: MatchmakingModeConfig): Issue | undefined => {
  const name = `matchmaking mode ${JSON.stringify(m.mode)} of experience ${JSON.stringify(m.experience)}`
  if (m.minPlayers > m.matchSize) {
    return { path: ["min_players"], message: `${name}: expected at most match_size (${m.matchSize}), got ${m.minPlayers}` }
  }
  if (m.maxSkillWindow < m.initialSkillWindow) {
    return {
      path: ["max_skill_window"],
      message: `${name}: expected at least initial_skill_window (${m.initialSkillWindow}), got ${m.maxSkillWindow}`
    }
  }
  return undefined
}

/**
 * Rules between sections that no single key can check: every matchmaking
 * mode names a configured instanced experience whose instances hold a whole
 * match. Returns the offending key (TOML path) and a message, or undefined.
 */
export const checkCrossSections = (config: TesseraConfig): { readonly key: string; readonly message: string } | undefined => {
  const experiences = new Map(config.experiences.map((e) => [e.id, e]))
  for (const [i, m] of config.matchmaking.modes.entries()) {
    const e = experiences.get(m.experience)
    const key = `matchmaking.modes[${i}]`
    if (e === undefined) {
      return {
        key: `${key}.experience`,
        message: `expected the id of a configured experience (${[...experiences.keys()].join(", ")}), got ${JSON.stringify(m.experience)}`
      }
    }
    if (e.world !== "instanced") {
      return { key: `${key}.experience`, message: `experience ${JSON.stringify(e.id)} is an open world; matches need an instanced one` }
    }
    if (m.matchSize > e.maxPlayers) {
      return {
        key: `${key}.match_size`,
        message: `expected at most experience ${JSON.stringify(e.id)}'s max_players (${e.maxPlayers}), got ${m.matchSize}`
      }
    }
  }
  return undefined
}

/** An experience with every key but its id and name at its default. */
export const defaultExperience = (id: string, name: string = id): ExperienceConfig => {
  const out: Record<string, unknown> = {}
  for (const [key, f] of Object.entries<Field<unknown>>(experienceFields)) out[key] = f.default
  // Every key of ExperienceConfig is a key of experienceFields.
  return { ...(out as unknown as ExperienceConfig), id, name }
}

export const configSchema: ConfigSchema = {
  server: {
    description: "This process: where it listens, which roles it hosts, how it shuts down and logs.",
    fields: {
      host: string({
        default: "127.0.0.1",
        description: "Address the WebSocket/HTTP listener binds to; 0.0.0.0 accepts connections from other machines."
      }),
      port: integer({
        default: 7350,
        min: 0,
        max: 65535,
        description: "TCP port of the WebSocket/HTTP listener (0 picks a free port)."
      }),
      roles: stringList({
        default: ["all"],
        nonEmpty: true,
        expected: `a non-empty list of roles ("all" or any of ${KNOWN_ROLES.join(", ")})`,
        itemExpected: `"all" or one of ${KNOWN_ROLES.join(", ")}`,
        checkItem: roleHint,
        description: `Roles this process hosts: "all" (one process does everything) or any of ${KNOWN_ROLES.join(", ")}.`
      }),
      dev: boolean({
        default: true,
        description: "Development mode; allows the built-in auth secret. Set to false in production."
      }),
      shutdownTimeoutMs: integer({
        default: 10000,
        min: 0,
        max: 600000,
        description: "On SIGTERM, how long draining (handoffs, client redirects, storage flush) may take before exit, in ms."
      }),
      logLevel: oneOf({
        values: LOG_LEVELS,
        default: "info",
        description: "Least severe level of log lines written."
      })
    }
  },
  storage: {
    description: "Persistence of players, world deltas, chat history and the cluster's own tables.",
    fields: {
      backend: oneOf({
        values: STORAGE_BACKENDS,
        default: "sqlite",
        description:
          "Storage backend: sqlite keeps everything in one WAL-mode file under data_dir (one node); postgres is shared by every runner of a cluster."
      }),
      dataDir: string({
        default: "./data",
        description: "Directory for the SQLite database and other local state (relative to the working directory)."
      }),
      postgresUrl: string({
        default: "postgres://postgres@127.0.0.1:5432/tessera",
        description: "PostgreSQL connection URL, used when backend = \"postgres\"; set it with TESSERA_STORAGE_POSTGRES_URL."
      }),
      writeBehindMs: integer({
        default: 1000,
        min: 10,
        max: 60000,
        description: "How often regions flush batched changes to storage, in ms (the most work a crash can lose)."
      })
    }
  },
  redis: {
    description: "Redis, for several nodes: cell pub/sub between regions and gateways, presence, shared rate limits, chat fan-out.",
    fields: {
      enabled: boolean({
        default: false,
        description: "Use Redis; when false (one node) the in-process implementations serve."
      }),
      url: string({
        default: "redis://127.0.0.1:6379",
        description: "Redis connection URL."
      }),
      prefix: string({
        default: "tessera:",
        maxLength: 64,
        description: "Prefix of every Redis key and channel, so several deployments can share one Redis."
      })
    }
  },
  auth: {
    description: "Player authentication tokens.",
    fields: {
      secret: string({
        default: DEV_SECRET,
        secret: true,
        description:
          "Secret that signs session tokens; in production set TESSERA_AUTH_SECRET to 16+ random characters."
      }),
      tokenTtlSeconds: integer({
        default: 86400,
        min: 60,
        max: 31536000,
        description: "Lifetime of an issued session token, in seconds."
      })
    }
  },
  gateway: {
    description: "Client connections (WebSocket): message limits, rate limits and timeouts.",
    fields: {
      maxPayloadBytes: integer({
        default: 4096,
        min: 64,
        description: "Largest client message accepted, in bytes (uWS maxPayloadLength)."
      }),
      maxBackpressureBytes: integer({
        default: 1048576,
        min: 1024,
        max: 1073741824,
        description: "Bytes that may queue unsent to one client before it is resynced or dropped."
      }),
      messagesPerSecond: integer({
        default: 60,
        min: 1,
        max: 10000,
        description: "Sustained messages per second allowed from one client (token bucket refill rate)."
      }),
      messageBurst: integer({
        default: 120,
        min: 1,
        max: 100000,
        description: "Messages one client may send in a burst above the sustained rate (token bucket size)."
      }),
      maxBadMessages: integer({
        default: 10,
        min: 0,
        max: 10000,
        description: "Malformed or rejected messages tolerated from one connection before it is closed."
      }),
      idleTimeoutSeconds: integer({
        default: 60,
        min: 8,
        max: 960,
        description: "Close a connection that sends nothing for this long, in seconds (uWS rounds to 4 s)."
      }),
      authPerMinutePerIp: integer({
        default: 120,
        min: 1,
        max: 100000,
        description: "Login / token requests allowed per minute from one IP address."
      })
    }
  },
  session: {
    description: "Player sessions.",
    fields: {
      resumeWindowSeconds: integer({
        default: 30,
        min: 0,
        max: 3600,
        description: "How long a dropped player may reconnect and resume the same session, in seconds (0 disables)."
      })
    }
  },
  region: {
    description: "World simulation: interest grid, movement limits and world size (metres).",
    fields: {
      cellSize: number({
        default: 50,
        min: 0,
        max: 100000,
        exclusiveMin: true,
        description: "Side of one interest cell, in metres; clients receive updates from cells around theirs."
      }),
      interestRadius: integer({
        default: 1,
        min: 0,
        max: 8,
        description: "Cells around a player's own cell it receives updates from (1 = a 3x3 block)."
      }),
      maxSpeed: number({
        default: 10,
        min: 0,
        max: 100000,
        exclusiveMin: true,
        description: "Fastest a player may move, in metres per second."
      }),
      worldHalfExtent: number({
        default: 1000,
        min: 0,
        max: 10000000,
        exclusiveMin: true,
        description: "Half the side of the square world, in metres: positions stay within +-this."
      }),
      spawnRadius: number({
        default: 10,
        min: 0,
        max: 10000000,
        description: "Players spawn within this distance of the world origin, in metres."
      }),
      editReach: number({
        default: 8,
        min: 0,
        max: 100000,
        exclusiveMin: true,
        description: "Open worlds: farthest a player may edit the world from, in metres (only inside its own region; keep <= cell_size)."
      })
    }
  },
  scheduler: {
    description: "Placement of players into experience instances.",
    fields: {
      emptyInstanceGraceSeconds: integer({
        default: 30,
        min: 0,
        max: 86400,
        description: "How long an instance with no players is kept before it is stopped, in seconds."
      }),
      maxInstances: integer({
        default: 1000,
        min: 1,
        max: 1000000,
        description: "Most instances of one instanced experience; placement and admin spawn refuse beyond it."
      }),
      actuator: oneOf({
        values: SCHEDULER_ACTUATORS,
        default: "local",
        description:
          "How scaling decisions are applied: local (spawn/drain instances in this cluster), nomad (scale a Nomad task group), kubernetes (export metrics for an HPA)."
      }),
      scalingIntervalMs: integer({
        default: 5000,
        min: 100,
        max: 3600000,
        description: "How often the autoscaling policy runs for every experience with scaling enabled, in ms."
      }),
      stateSaveIntervalMs: integer({
        default: 500,
        min: 50,
        max: 60000,
        description: "Scheduler state (instances, placements, scaling) is saved at most this often when it changed, in ms, and on stop."
      }),
      nomadAddress: string({
        default: "http://127.0.0.1:4646",
        description: "actuator = nomad: Nomad's HTTP API address."
      }),
      nomadToken: string({
        default: "",
        allowEmpty: true,
        secret: true,
        description: "actuator = nomad: ACL token (X-Nomad-Token) with read-job-scaling and scale-job; set TESSERA_SCHEDULER_NOMAD_TOKEN."
      }),
      nomadNamespace: string({
        default: "",
        allowEmpty: true,
        description: "actuator = nomad: the job's namespace; empty = Nomad's default."
      }),
      nomadJob: string({
        default: "tessera",
        description: "actuator = nomad: the job id (deploy/nomad/tessera.nomad.hcl)."
      }),
      nomadGroup: string({
        default: "region",
        description: "actuator = nomad: the task group whose count the scheduler sets (the role hosting instances)."
      }),
      nomadTimeoutMs: integer({
        default: 5000,
        min: 100,
        max: 600000,
        description: "actuator = nomad: timeout of one HTTP attempt, in ms."
      }),
      nomadRetries: integer({
        default: 3,
        min: 0,
        max: 100,
        description: "actuator = nomad: retries of a failed request (timeouts, 5xx, 429), with exponential backoff."
      }),
      nomadRetryBaseMs: integer({
        default: 200,
        min: 0,
        max: 600000,
        description: "actuator = nomad: delay before the first retry, in ms; doubled for each next one."
      })
    }
  },
  health: {
    description: "Health checks of instances and runners from their heartbeats (failure detection, player migration, replacement).",
    fields: {
      enabled: boolean({
        default: true,
        description: "Check instances' heartbeats; an unhealthy instance's players are moved and the instance is replaced."
      }),
      heartbeatIntervalMs: integer({
        default: 5000,
        min: 100,
        max: 600000,
        description: "How often instances send a heartbeat and the scheduler checks them, in ms."
      }),
      missedHeartbeats: integer({
        default: 3,
        min: 1,
        max: 1000,
        description: "Intervals without a heartbeat after which a check fails."
      }),
      unhealthyThreshold: integer({
        default: 3,
        min: 1,
        max: 1000,
        description: "Failed checks in a row before an instance is unhealthy (damps flapping)."
      }),
      healthyThreshold: integer({
        default: 2,
        min: 1,
        max: 1000,
        description: "Passed checks in a row before an instance is healthy again."
      }),
      maxTickMs: number({
        default: 200,
        min: 0,
        max: 600000,
        exclusiveMin: true,
        description: "A check fails when the instance's tick duration p99 over the interval exceeds this, in ms."
      }),
      maxCpu: number({
        default: 0,
        min: 0,
        max: 64,
        description: "A check fails when the instance's process CPU (1 = one core) exceeds this; 0 disables."
      }),
      maxMemoryMb: integer({
        default: 0,
        min: 0,
        max: 1048576,
        description: "A check fails when the instance's process resident memory exceeds this, in MiB; 0 disables."
      }),
      maxEventLoopLagMs: number({
        default: 0,
        min: 0,
        max: 600000,
        description:
          "Runners (every process heartbeats too): a check fails when the process's event-loop delay p99 exceeds this, in ms; 0 disables. max_cpu and max_memory_mb apply to runners as well."
      }),
      drainUnhealthyRunners: boolean({
        default: false,
        description:
          "Drain a runner that becomes unhealthy, as an admin drain would (actor \"scheduler\"): it hands its shards to the other runners and exits 0 for its supervisor to restart it."
      })
    }
  },
  admin: {
    description: "The Control API (HTTP under /v1/admin/ on gateways, and `tessera admin ...`) and its event stream.",
    fields: {
      key: string({
        default: "",
        allowEmpty: true,
        secret: true,
        maxLength: 512,
        description:
          "Admin API key (Authorization: Bearer <key>); empty disables the admin API. Outside dev mode 16+ characters; set TESSERA_ADMIN_KEY."
      }),
      eventHistory: integer({
        default: 1000,
        min: 1,
        max: 1000000,
        description: "Control events (spawns, terminations, routes, drains...) kept in memory for admins to replay."
      })
    }
  },
  chat: {
    description: "The chat expert: history, message limits and filtering.",
    fields: {
      historySize: integer({
        default: 50,
        min: 0,
        max: 10000,
        description: "Recent messages kept per channel and sent to players who join it."
      }),
      maxLength: integer({
        default: 500,
        min: 1,
        max: 65536,
        description: "Longest chat message accepted, in characters."
      }),
      messagesPerSecond: number({
        default: 1,
        min: 0,
        max: 1000,
        exclusiveMin: true,
        description: "Sustained chat messages per second allowed from one player (may be fractional)."
      }),
      burst: integer({
        default: 5,
        min: 1,
        max: 1000,
        description: "Chat messages one player may send in a burst above the sustained rate."
      }),
      bannedWords: stringList({
        default: [],
        nonEmpty: false,
        expected: "a list of non-empty strings",
        itemExpected: "a non-empty string",
        checkItem: (word) => (word.length > 0 ? undefined : ""),
        description: "Words filtered out of chat messages; comma-separated in the env var."
      })
    }
  },
  matchmaking: {
    description:
      "The matchmaking expert: queues per (experience, mode) with skill windows, parties, region latency, ready checks and backfill.",
    fields: {
      regions: stringList({
        default: ["local"],
        nonEmpty: true,
        expected: "a non-empty list of region names",
        itemExpected: "a region name of 1 to 64 characters from A-Z a-z 0-9 _ -",
        checkItem: (name) => (MODE_NAME.regex.test(name) ? undefined : ""),
        description:
          "Region names clients report latencies for (MatchQueue); a client that reports none is matched as if at 0 ms to each."
      }),
      tickMs: integer({
        default: 250,
        min: 10,
        max: 10000,
        description: "How often a queue with tickets forms matches, in ms."
      }),
      modes: tableList<MatchmakingModeConfig>({
        default: [],
        description: "The matchmaking queues, one [[matchmaking.modes]] table each; none: matchmaking is off.",
        itemName: "matchmaking mode",
        fields: matchmakingModeFields,
        uniqueBy: ["experience", "mode"],
        check: checkMatchmakingMode
      })
    }
  },
  cluster: {
    description: "The @effect/cluster runtime.",
    fields: {
      transport: oneOf({
        values: ["single", "socket"] as const,
        default: "single",
        description:
          "single: one runner in this process (one node); socket: this runner joins other runners over TCP (several nodes, shared storage)."
      }),
      runnerHost: string({
        default: "127.0.0.1",
        description: "Address other runners use to reach this one (transport = socket)."
      }),
      runnerPort: integer({
        default: 34431,
        min: 1,
        max: 65535,
        description: "TCP port of this runner's cluster socket (transport = socket)."
      }),
      runnerListenHost: string({
        default: "0.0.0.0",
        description: "Address the runner socket binds to (transport = socket)."
      }),
      shardLockRefreshMs: integer({
        default: 2000,
        min: 100,
        max: 60000,
        description: "How often a runner refreshes its shard locks, in ms."
      }),
      shardLockExpirationMs: integer({
        default: 6000,
        min: 500,
        max: 600000,
        description: "A dead runner's shards are taken over after this long, in ms (bounds failover time)."
      }),
      refreshAssignmentsMs: integer({
        default: 500,
        min: 50,
        max: 60000,
        description: "How often a runner re-reads shard assignments, in ms."
      }),
      runnerHealthCheckMs: integer({
        default: 1000,
        min: 100,
        max: 600000,
        description: "How often runners check each other's health, in ms."
      }),
      entityMessagePollMs: integer({
        default: 1000,
        min: 50,
        max: 60000,
        description: "How often persisted entity messages are polled from storage, in ms."
      }),
      shardsPerGroup: integer({
        default: 64,
        min: 1,
        max: 4096,
        description: "Shards in each shard group (one group per actor kind); the unit of rebalancing between runners."
      }),
      simulateRemoteSerialization: boolean({
        default: false,
        description: "Serialize entity messages even in one process, to catch non-serializable messages in tests."
      }),
      entityMaxIdleSeconds: integer({
        default: 120,
        min: 1,
        max: 86400,
        description: "Idle time after which an entity (session, region...) passivates and frees its memory, in seconds."
      })
    }
  },
  experiences: tableList<ExperienceConfig>({
    default: [defaultExperience("arena", "Arena")],
    description: "The experiences (games) this platform hosts, one [[experiences]] table each.",
    itemName: "experience",
    fields: experienceFields,
    uniqueBy: "id",
    check: checkExperience
  })
}

// ---------------------------------------------------------------------------
// Flattened views (for loading, rendering and docs)
// ---------------------------------------------------------------------------

/** One key as it appears in the TOML file, the environment and TesseraConfig. */
export interface KeySpec {
  /** camelCase section in TesseraConfig ("server"), or "experiences" for the table list. */
  readonly section: string
  /** camelCase leaf name ("shutdownTimeoutMs"); "" for the experiences table list itself. */
  readonly key: string
  /** "server.shutdownTimeoutMs" */
  readonly path: string
  /** "server.shutdown_timeout_ms" — the name used in TOML and in error messages. */
  readonly tomlPath: string
  /** "TESSERA_SERVER_SHUTDOWN_TIMEOUT_MS" */
  readonly env: string
  readonly field: Field<unknown>
}

export interface SectionSpec {
  readonly section: string
  readonly tomlKey: string
  readonly description: string
  readonly keys: ReadonlyArray<KeySpec>
}

const envName = (tomlPath: string): string => ENV_PREFIX + tomlPath.replace(/\./g, "_").toUpperCase()

/** The TOML tables ([server], [storage], ...), in file order. */
export const configSections: ReadonlyArray<SectionSpec> = (Object.keys(configSchema) as Array<keyof ConfigSchema>)
  .filter((s): s is SectionKey => s !== "experiences")
  .map((section) => {
    const spec: Section<unknown> = configSchema[section]
    const tomlKey = toSnakeCase(section)
    return {
      section,
      tomlKey,
      description: spec.description,
      keys: Object.entries<Field<unknown>>(spec.fields).map(([key, f]) => {
        const tomlPath = `${tomlKey}.${toSnakeCase(key)}`
        return { section, key, path: `${section}.${key}`, tomlPath, env: envName(tomlPath), field: f }
      })
    }
  })

/** The `[[experiences]]` array of tables, as a key (env: TESSERA_EXPERIENCES, JSON). */
export const experiencesKey: KeySpec = {
  section: "experiences",
  key: "",
  path: "experiences",
  tomlPath: "experiences",
  env: envName("experiences"),
  field: configSchema.experiences
}

/** Every key: all section leaves, then experiences (whose item fields are in `field.items`). */
export const configKeys: ReadonlyArray<KeySpec> = [...configSections.flatMap((s) => s.keys), experiencesKey]

const deepFreeze = <A>(value: A): A => {
  if (typeof value === "object" && value !== null) {
    for (const inner of Object.values(value)) deepFreeze(inner)
    Object.freeze(value)
  }
  return value
}

/** Every key at its default. Deeply frozen. */
export const defaultConfig: TesseraConfig = deepFreeze(
  // Built from the schema: each value is the `default` of the Field<A> typed for that key.
  Object.fromEntries([
    ...configSections.map((s) => [s.section, Object.fromEntries(s.keys.map((k) => [k.key, k.field.default]))]),
    ["experiences", configSchema.experiences.default]
  ]) as unknown as TesseraConfig
)
