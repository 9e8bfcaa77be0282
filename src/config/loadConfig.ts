/**
 * Resolves the configuration at boot: defaults < TOML file < TESSERA_* env
 * vars < overrides (CLI flags). Every value is validated by its key's spec in
 * ConfigSchema.ts as soon as it is read, so an error names the key and where
 * the bad value came from:
 *
 *   config key gateway.max_payload_bytes: expected an integer >= 64, got "abc"
 *   (from TESSERA_GATEWAY_MAX_PAYLOAD_BYTES)
 */
import * as Fs from "node:fs"
import { Data, Either } from "effect"
import * as Toml from "smol-toml"
import {
  checkCrossSections,
  closestMatch,
  configKeys,
  configSections,
  DEV_SECRET,
  ENV_PREFIX,
  defaultConfig,
  describeValue,
  experiencesKey,
  isTable,
  toSnakeCase,
  type Issue,
  type KeySpec,
  type SectionSpec
} from "./ConfigSchema.js"
import type { TesseraConfig } from "./TesseraConfig.js"

/**
 * A configuration problem found at boot. `key` is the dotted snake_case path
 * (`gateway.max_payload_bytes`, `experiences[1].tick_rate`, `server.roles[0]`)
 * or `file` when the file itself cannot be read or parsed.
 */
export class ConfigError extends Data.TaggedError("ConfigError")<{
  readonly key: string
  readonly message: string
}> {}

/** Arrays are replaced whole; `undefined` means "not given" (handy for optional CLI flags). */
export type DeepPartial<T> = T extends ReadonlyArray<unknown>
  ? T
  : T extends object
    ? { readonly [K in keyof T]?: DeepPartial<T[K]> | undefined }
    : T

export interface LoadConfigOptions {
  /** Path of a TOML file; no file is read when absent. */
  readonly file?: string | undefined
  /** Environment to read TESSERA_* from; defaults to process.env. */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined
  /** Highest-precedence values, typically from CLI flags (camelCase keys). */
  readonly overrides?: DeepPartial<TesseraConfig> | undefined
}

const OVERRIDES_SOURCE = "command-line flags"

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

const joinPath = (base: string, path: ReadonlyArray<string | number>): string =>
  path.reduce<string>((acc, part) => (typeof part === "number" ? `${acc}[${part}]` : `${acc}.${part}`), base)

const keyError = (key: string, message: string, source: string): ConfigError =>
  new ConfigError({ key, message: `config key ${key}: ${message} (from ${source})` })

const issueError = (spec: KeySpec, issue: Issue, source: string): ConfigError =>
  keyError(joinPath(spec.tomlPath, issue.path), issue.message, source)

const allTomlNames: ReadonlyArray<string> = [
  ...configSections.map((s) => s.tomlKey),
  ...configKeys.map((k) => k.tomlPath)
]

const unknownKeyError = (key: string, candidates: ReadonlyArray<string>, source: string): ConfigError => {
  const leaf = key.slice(key.lastIndexOf(".") + 1)
  // A known key in the wrong table (e.g. `port` above any [section]) beats a spelling guess.
  const misplaced = configKeys.find((k) => k.tomlPath.endsWith(`.${leaf}`) && k.tomlPath !== key)
  const guess = closestMatch(key, candidates) ?? misplaced?.tomlPath
  return keyError(key, `unknown key${guess === undefined ? "" : `; did you mean ${guess}?`}`, source)
}

// ---------------------------------------------------------------------------
// Resolution
// ---------------------------------------------------------------------------

/** The config being built: a mutable deep copy of the defaults. */
type Draft = Record<string, unknown>

const assign = (draft: Draft, spec: KeySpec, value: unknown): void => {
  if (spec === experiencesKey) {
    draft[spec.section] = value
  } else {
    ;(draft[spec.section] as Record<string, unknown>)[spec.key] = value
  }
}

const decodeInto = (draft: Draft, spec: KeySpec, input: unknown, source: string): void => {
  const decoded = spec.field.decode(input)
  if (Either.isLeft(decoded)) throw issueError(spec, decoded.left, source)
  assign(draft, spec, decoded.right)
}

const readToml = (file: string): Readonly<Record<string, unknown>> => {
  let text: string
  try {
    text = Fs.readFileSync(file, "utf8")
  } catch (e) {
    throw new ConfigError({
      key: "file",
      message: `config file ${file}: cannot be read: ${e instanceof Error ? e.message : String(e)}`
    })
  }
  try {
    return Toml.parse(text)
  } catch (e) {
    if (e instanceof Toml.TomlError) {
      const reason = (e.message.split("\n")[0] ?? "").replace(/^Invalid TOML document: /, "")
      throw new ConfigError({
        key: "file",
        message: `config file ${file}: invalid TOML at line ${e.line}, column ${e.column}: ${reason}\n${e.codeblock}`
      })
    }
    throw new ConfigError({
      key: "file",
      message: `config file ${file}: invalid TOML: ${e instanceof Error ? e.message : String(e)}`
    })
  }
}

const sectionsByToml: ReadonlyMap<string, SectionSpec> = new Map(configSections.map((s) => [s.tomlKey, s]))

const applyFile = (draft: Draft, file: string): void => {
  const doc = readToml(file)
  for (const [name, value] of Object.entries(doc)) {
    if (name === experiencesKey.tomlPath) {
      decodeInto(draft, experiencesKey, value, file)
      continue
    }
    const section = sectionsByToml.get(name)
    if (section === undefined) throw unknownKeyError(name, allTomlNames, file)
    if (!isTable(value)) {
      throw keyError(name, `expected a table ([${name}]), got ${describeValue(value)}`, file)
    }
    for (const [leaf, leafValue] of Object.entries(value)) {
      const key = `${name}.${leaf}`
      const spec = section.keys.find((k) => k.tomlPath === key)
      if (spec === undefined) {
        throw unknownKeyError(
          key,
          section.keys.map((k) => k.tomlPath),
          file
        )
      }
      decodeInto(draft, spec, leafValue, file)
    }
  }
}

const applyEnv = (draft: Draft, env: Readonly<Record<string, string | undefined>>): void => {
  for (const spec of configKeys) {
    const raw = env[spec.env]
    if (raw === undefined) continue
    const candidate = spec.field.fromEnv(raw)
    if (Either.isLeft(candidate)) throw issueError(spec, candidate.left, spec.env)
    decodeInto(draft, spec, candidate.right, spec.env)
  }
}

/** Overrides use camelCase keys; experience items are decoded in their snake_case (file) form. */
const toSnakeKeys = (item: unknown): unknown =>
  isTable(item) ? Object.fromEntries(Object.entries(item).map(([k, v]) => [toSnakeCase(k), isTable(v) ? toSnakeKeys(v) : v])) : item

const applyOverrides = (draft: Draft, overrides: DeepPartial<TesseraConfig>): void => {
  for (const [sectionName, sectionValue] of Object.entries(overrides)) {
    if (sectionValue === undefined) continue
    if (sectionName === experiencesKey.section) {
      const items: unknown = sectionValue
      decodeInto(draft, experiencesKey, Array.isArray(items) ? items.map(toSnakeKeys) : items, OVERRIDES_SOURCE)
      continue
    }
    const section = configSections.find((s) => s.section === sectionName)
    const sectionKey = toSnakeCase(sectionName)
    if (section === undefined) throw unknownKeyError(sectionKey, allTomlNames, OVERRIDES_SOURCE)
    if (!isTable(sectionValue)) {
      throw keyError(sectionKey, `expected a table, got ${describeValue(sectionValue)}`, OVERRIDES_SOURCE)
    }
    for (const [leaf, value] of Object.entries(sectionValue)) {
      if (value === undefined) continue
      const spec = section.keys.find((k) => k.key === leaf)
      if (spec === undefined) {
        throw unknownKeyError(
          `${sectionKey}.${toSnakeCase(leaf)}`,
          section.keys.map((k) => k.tomlPath),
          OVERRIDES_SOURCE
        )
      }
      // A table list inside a section (matchmaking.modes) takes camelCase items here too.
      decodeInto(
        draft,
        spec,
        spec.field.kind === "table list" && Array.isArray(value) ? value.map(toSnakeKeys) : value,
        OVERRIDES_SOURCE
      )
    }
  }
}

const MIN_PRODUCTION_SECRET_LENGTH = 16

/**
 * Refuses to run outside dev mode with the built-in or a short auth secret
 * (anyone could forge session tokens), or with a short admin key (an empty
 * one disables the admin API and is fine). Called by loadConfig.
 */
export const assertSafeForProduction = (config: TesseraConfig): void => {
  if (config.server.dev) return
  const adminKey = config.admin.key
  if (adminKey !== "" && adminKey.length < MIN_PRODUCTION_SECRET_LENGTH) {
    throw new ConfigError({
      key: "admin.key",
      message:
        `config key admin.key: is only ${adminKey.length} characters long, which is refused when server.dev is false; ` +
        `set TESSERA_ADMIN_KEY to a random string of at least ${MIN_PRODUCTION_SECRET_LENGTH} characters ` +
        `(e.g. \`openssl rand -base64 32\`), or leave it empty to disable the admin API`
    })
  }
  const secret = config.auth.secret
  const problem =
    secret === DEV_SECRET
      ? "is the built-in development secret"
      : secret.length < MIN_PRODUCTION_SECRET_LENGTH
        ? `is only ${secret.length} characters long`
        : undefined
  if (problem === undefined) return
  throw new ConfigError({
    key: "auth.secret",
    message:
      `config key auth.secret: ${problem}, which is refused when server.dev is false; ` +
      `set TESSERA_AUTH_SECRET to a random string of at least ${MIN_PRODUCTION_SECRET_LENGTH} characters ` +
      `(e.g. \`openssl rand -base64 32\`), or set server.dev = true for local development`
  })
}

const deepFreeze = <A>(value: A): A => {
  if (typeof value === "object" && value !== null) {
    for (const inner of Object.values(value)) deepFreeze(inner)
    Object.freeze(value)
  }
  return value
}

/**
 * Resolves and validates the configuration: defaults < `file` (TOML) <
 * `env` (TESSERA_*, default process.env) < `overrides`. Throws ConfigError.
 * The result is deeply frozen.
 */
export const loadConfig = (options: LoadConfigOptions = {}): TesseraConfig => {
  const draft: Draft = structuredClone(defaultConfig) as unknown as Draft
  if (options.file !== undefined) applyFile(draft, options.file)
  applyEnv(draft, options.env ?? process.env)
  if (options.overrides !== undefined) applyOverrides(draft, options.overrides)
  // Every value in the draft is either a default or passed its key's Field<A>.decode.
  const config = deepFreeze(draft as unknown as TesseraConfig)
  const cross = checkCrossSections(config)
  if (cross !== undefined) throw new ConfigError({ key: cross.key, message: `config key ${cross.key}: ${cross.message}` })
  assertSafeForProduction(config)
  return config
}

/**
 * TESSERA_* variables in `env` that are not configuration keys (likely typos).
 * loadConfig ignores them; callers may warn about them.
 */
export const unknownEnvKeys = (env: Readonly<Record<string, string | undefined>>): ReadonlyArray<string> => {
  const known = new Set(configKeys.map((k) => k.env))
  return Object.keys(env).filter((name) => name.startsWith(ENV_PREFIX) && !known.has(name))
}

// ---------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------

export interface RenderConfigOptions {
  /** Precede each key with its description (and its default when it differs). Default true. */
  readonly comments?: boolean
  /** Print auth.secret as is. Default false: shown only if it is the public DEV_SECRET. */
  readonly revealSecrets?: boolean
}

const tomlString = (s: string): string =>
  // JSON string escapes are valid TOML basic-string escapes; TOML also requires escaping DEL.
  JSON.stringify(s).replace(/\u007f/g, "\\u007f")

const tomlValue = (value: unknown): string => {
  if (typeof value === "string") return tomlString(value)
  if (typeof value === "number" || typeof value === "boolean") return String(value)
  if (Array.isArray(value)) return `[${value.map(tomlValue).join(", ")}]`
  // A table inside a section's table list (matchmaking.modes): an inline table with snake_case keys.
  if (isTable(value)) {
    return `{ ${Object.entries(value).map(([k, v]) => `${toSnakeCase(k)} = ${tomlValue(v)}`).join(", ")} }`
  }
  throw new Error(`renderConfig: cannot render ${describeValue(value)}`)
}

const sameValue = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b)

/**
 * The resolved configuration as TOML with snake_case keys (what
 * `tessera config check` prints). Loading the output gives the same config,
 * except that a non-dev auth.secret is redacted unless `revealSecrets`.
 */
export const renderConfig = (config: TesseraConfig, options: RenderConfigOptions = {}): string => {
  const comments = options.comments ?? true
  const lines: Array<string> = []
  const record = config as unknown as Readonly<Record<string, Readonly<Record<string, unknown>>>>

  const keyLine = (name: string, description: string, value: unknown, defaultValue: unknown, secret: boolean) => {
    if (comments) {
      const differs = !secret && !sameValue(value, defaultValue)
      lines.push(`# ${description}${differs ? ` (default: ${tomlValue(defaultValue)})` : ""}`)
    }
    const redact = secret && options.revealSecrets !== true && value !== DEV_SECRET && value !== ""
    lines.push(`${name} = ${redact ? `${tomlString("<redacted>")}  # set; not shown` : tomlValue(value)}`)
  }

  const experiences = config.experiences
  // An empty array of tables must be written before the first [table] header.
  if (experiences.length === 0) {
    if (comments) lines.push(`# ${experiencesKey.field.description}`)
    lines.push(`${experiencesKey.tomlPath} = []`, "")
  }

  for (const section of configSections) {
    if (comments) lines.push(`# ${section.description}`)
    lines.push(`[${section.tomlKey}]`)
    for (const spec of section.keys) {
      const { field } = spec
      const name = spec.tomlPath.slice(section.tomlKey.length + 1)
      keyLine(name, field.description, record[spec.section][spec.key], field.default, field.secret)
    }
    lines.push("")
  }

  experiences.forEach((experience, index) => {
    const item = experience as unknown as Readonly<Record<string, unknown>>
    // Item keys are described once, on the first table.
    const describe = comments && index === 0
    if (describe) lines.push(`# ${experiencesKey.field.description}`)
    lines.push(`[[${experiencesKey.tomlPath}]]`)
    const tables = experiencesKey.field.items.filter((spec) => spec.field.kind === "table")
    for (const spec of experiencesKey.field.items) {
      if (spec.field.kind === "table") continue
      if (describe) lines.push(`# ${spec.field.description}`)
      lines.push(`${spec.tomlKey} = ${tomlValue(item[spec.key])}`)
    }
    // Sub-tables ([experiences.scaling]) come after the item's own keys.
    for (const spec of tables) {
      const sub = item[spec.key] as Readonly<Record<string, unknown>>
      lines.push("")
      if (describe) lines.push(`# ${spec.field.description}`)
      lines.push(`[${experiencesKey.tomlPath}.${spec.tomlKey}]`)
      for (const inner of spec.field.items) {
        if (describe) lines.push(`# ${inner.field.description}`)
        lines.push(`${inner.tomlKey} = ${tomlValue(sub[inner.key])}`)
      }
    }
    lines.push("")
  })

  return lines.join("\n")
}
