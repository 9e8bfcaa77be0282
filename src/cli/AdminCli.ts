/**
 * `tessera admin ...`: the Control API from the command line, against a
 * running server's gateway (see src/gateway/AdminApi.ts). Every command
 * takes `--url` (default $TESSERA_ADMIN_URL or http://127.0.0.1:7350) and
 * `--key` (default $TESSERA_ADMIN_KEY), prints the JSON answer on stdout and
 * exits 0; a non-2xx answer or an unreachable server prints a message on
 * stderr and exits 1. `events` without --history streams one JSON envelope
 * per line until interrupted.
 */
import { Args, Command, Options } from "@effect/cli"
import { Effect, Option } from "effect"

const DEFAULT_URL = "http://127.0.0.1:7350"

const url = Options.text("url").pipe(
  Options.withDescription(`server base URL (default $TESSERA_ADMIN_URL or ${DEFAULT_URL})`),
  Options.optional
)
const key = Options.text("key").pipe(
  Options.withDescription("admin key (default $TESSERA_ADMIN_KEY)"),
  Options.optional
)
const common = { url, key }

interface Target {
  readonly url: Option.Option<string>
  readonly key: Option.Option<string>
}

/** Prints the message on stderr and exits 1 (the CLI's only failure path). */
const fail = (message: string): never => {
  process.stderr.write(`tessera admin: ${message}\n`)
  process.exit(1)
}

const resolve = (target: Target): { readonly base: string; readonly key: string } => {
  const base = Option.getOrElse(target.url, () => process.env["TESSERA_ADMIN_URL"] ?? DEFAULT_URL).replace(/\/+$/, "")
  const key = Option.getOrElse(target.key, () => process.env["TESSERA_ADMIN_KEY"] ?? "")
  if (!/^https?:\/\//.test(base)) fail(`--url must start with http:// or https:// (got ${JSON.stringify(base)})`)
  return { base, key }
}

const headersOf = (key: string, json: boolean): Record<string, string> => ({
  ...(key === "" ? {} : { authorization: `Bearer ${key}` }),
  ...(json ? { "content-type": "application/json" } : {})
})

const errorText = (status: number, body: string): string => {
  try {
    const parsed = JSON.parse(body) as { error?: { code?: string; message?: string } }
    if (parsed.error?.message !== undefined) return `${status} ${parsed.error.code ?? "error"}: ${parsed.error.message}`
  } catch {
    // not JSON
  }
  return `${status}: ${body.slice(0, 500)}`
}

/** One request; prints the JSON answer (pretty) or fails. */
const call = (target: Target, method: string, path: string, body?: unknown) =>
  Effect.promise(async () => {
    const { base, key } = resolve(target)
    let res: Response
    try {
      res = await fetch(`${base}${path}`, {
        method,
        headers: headersOf(key, body !== undefined),
        ...(body === undefined ? {} : { body: JSON.stringify(body) })
      })
    } catch (error) {
      return fail(`cannot reach ${base}: ${error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error)}`)
    }
    const text = await res.text()
    if (!res.ok) return fail(errorText(res.status, text))
    let value: unknown = text
    try {
      value = JSON.parse(text)
    } catch {
      // printed as text
    }
    process.stdout.write(`${typeof value === "string" ? value : JSON.stringify(value, null, 2)}\n`)
  })

const qs = (params: Record<string, string | number | undefined>): string => {
  const entries = Object.entries(params).filter((e): e is [string, string | number] => e[1] !== undefined)
  return entries.length === 0 ? "" : `?${new URLSearchParams(entries.map(([k, v]) => [k, String(v)])).toString()}`
}

const seg = encodeURIComponent

const servers = Command.make(
  "servers",
  {
    ...common,
    experience: Options.text("experience").pipe(Options.withDescription("only this experience"), Options.optional),
    region: Options.text("region").pipe(
      Options.withDescription("only this instance or open-world region (a world id: all its regions)"),
      Options.optional
    )
  },
  (o) =>
    call(o, "GET", `/v1/admin/servers${qs({ experience: Option.getOrUndefined(o.experience), region: Option.getOrUndefined(o.region) })}`)
).pipe(Command.withDescription("list instances, open-world regions and draining runners"))

const spawn = Command.make(
  "spawn",
  { ...common, experience: Args.text({ name: "EXPERIENCE" }) },
  (o) => call(o, "POST", "/v1/admin/servers", { experience: o.experience })
).pipe(Command.withDescription("spawn an empty instance of EXPERIENCE"))

const terminate = Command.make(
  "terminate",
  {
    ...common,
    reason: Options.text("reason").pipe(Options.withDescription("told to the players and kept in the audit log"), Options.optional),
    move: Options.text("move").pipe(
      Options.withDescription("auto (default: another instance with room), none (players leave the world), or a world id"),
      Options.optional
    ),
    world: Args.text({ name: "WORLD" })
  },
  (o) =>
    call(
      o,
      "DELETE",
      `/v1/admin/servers/${seg(o.world)}${qs({ reason: Option.getOrUndefined(o.reason), move: Option.getOrUndefined(o.move) })}`
    )
).pipe(Command.withDescription("terminate the instance WORLD, moving or removing its players"))

const sessions = Command.make(
  "sessions",
  { ...common, world: Args.text({ name: "WORLD" }) },
  (o) => call(o, "GET", `/v1/admin/servers/${seg(o.world)}/sessions`)
).pipe(Command.withDescription("list the players in WORLD"))

const route = Command.make(
  "route",
  { ...common, player: Args.text({ name: "PLAYER" }), world: Args.text({ name: "WORLD" }) },
  (o) => call(o, "POST", "/v1/admin/route", { playerId: o.player, worldId: o.world })
).pipe(Command.withDescription("move the connected player PLAYER into the instance WORLD"))

const drain = Command.make(
  "drain",
  { ...common, runner: Args.text({ name: "RUNNER" }) },
  (o) => call(o, "POST", `/v1/admin/runners/${seg(o.runner)}/drain`)
).pipe(Command.withDescription("drain the runner RUNNER (host:port, see tessera_runner_info): it hands its shards over and exits as on SIGTERM"))

/** Streams the SSE body: one envelope (the `data` of each frame) per line on stdout. */
const stream = (target: Target, since: number | undefined) =>
  Effect.promise(async () => {
    const { base, key } = resolve(target)
    let res: Response
    try {
      res = await fetch(`${base}/v1/admin/events${qs({ since })}`, {
        headers: { ...headersOf(key, false), accept: "text/event-stream" }
      })
    } catch (error) {
      return fail(`cannot reach ${base}: ${error instanceof Error ? error.message : String(error)}`)
    }
    if (!res.ok || res.body === null) return fail(errorText(res.status, await res.text()))
    const decoder = new TextDecoder()
    let buffer = ""
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true })
      let end: number
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const frame = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        for (const line of frame.split("\n")) if (line.startsWith("data: ")) process.stdout.write(`${line.slice(6)}\n`)
      }
    }
    return fail("the server ended the event stream")
  })

const events = Command.make(
  "events",
  {
    ...common,
    history: Options.boolean("history").pipe(Options.withDescription("print the kept history as JSON and exit")),
    since: Options.integer("since").pipe(Options.withDescription("start after this event seq"), Options.optional)
  },
  (o) => {
    const since = Option.getOrUndefined(o.since)
    return o.history
      ? call(o, "GET", `/v1/admin/events${qs({ history: 1, since })}`)
      : stream(o, since)
  }
).pipe(Command.withDescription("stream control events live (one JSON envelope per line), or --history"))

const audit = Command.make(
  "audit",
  {
    ...common,
    limit: Options.integer("limit").pipe(Options.withDescription("entries (1..1000, default 100)"), Options.optional),
    before: Options.integer("before").pipe(Options.withDescription("only entries with a smaller id (paging)"), Options.optional)
  },
  (o) => call(o, "GET", `/v1/admin/audit${qs({ limit: Option.getOrUndefined(o.limit), before: Option.getOrUndefined(o.before) })}`)
).pipe(Command.withDescription("print the audit log (who did what, when), newest first"))

/** `tessera admin <servers|spawn|terminate|sessions|route|drain|events|audit>`. */
export const adminCommand = Command.make("admin").pipe(
  Command.withDescription("the Control API of a running server (--url, --key or $TESSERA_ADMIN_URL, $TESSERA_ADMIN_KEY)"),
  Command.withSubcommands([servers, spawn, terminate, sessions, route, drain, events, audit])
)
