#!/usr/bin/env node
/**
 * The `tessera` CLI: `serve` (the default), `config check FILE`, and `bots`.
 * Command output goes to stdout/stderr directly; server logs go through
 * Effect's logger.
 */
import { Args, Command, Options } from "@effect/cli"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Effect, Layer, Logger, LogLevel, Option } from "effect"
import { adminCommand } from "./cli/AdminCli.js"
import { makeServerLayer } from "./cluster/ServerLayer.js"
import { parseRoles, RolesError } from "./cluster/Roles.js"
import { ConfigError, loadConfig, renderConfig } from "./config/loadConfig.js"
import type { TesseraConfig } from "./config/TesseraConfig.js"
import { SERVER_VERSION } from "./gateway/Gateway.js"
import { startProcessMetrics } from "./observability/ProcessMetrics.js"

const logLevels: Record<TesseraConfig["server"]["logLevel"], LogLevel.LogLevel> = {
  trace: LogLevel.Trace,
  debug: LogLevel.Debug,
  info: LogLevel.Info,
  warning: LogLevel.Warning,
  error: LogLevel.Error,
  none: LogLevel.None
}

/** Exits with a clear message instead of a stack trace for configuration mistakes. */
const configOrExit = <A>(load: () => A): A => {
  try {
    return load()
  } catch (error) {
    if (error instanceof ConfigError || error instanceof RolesError) {
      process.stderr.write(`tessera: ${error.message}\n`)
      process.exit(2)
    }
    throw error
  }
}

const configFile = Options.file("config").pipe(
  Options.withDescription("TOML config file (keys documented in config/default.toml)"),
  Options.optional
)
const roles = Options.text("roles").pipe(
  Options.withDescription("roles to host: all, or a comma-separated subset of gateway,region,session,scheduler,expert:chat,expert:matchmaking"),
  Options.optional
)
const port = Options.integer("port").pipe(Options.withDescription("client port (HTTP + WebSocket)"), Options.optional)
const host = Options.text("host").pipe(Options.withDescription("address to listen on"), Options.optional)
const dataDir = Options.directory("data-dir").pipe(Options.withDescription("where SQLite data lives"), Options.optional)

const serveOptions = { config: configFile, roles, port, host, dataDir }

const serve = (options: {
  readonly config: Option.Option<string>
  readonly roles: Option.Option<string>
  readonly port: Option.Option<number>
  readonly host: Option.Option<string>
  readonly dataDir: Option.Option<string>
}) =>
  Effect.suspend(() => {
    const config = configOrExit(() =>
      loadConfig({
        file: Option.getOrUndefined(options.config),
        env: process.env,
        overrides: {
          server: {
            port: Option.getOrUndefined(options.port),
            host: Option.getOrUndefined(options.host),
            roles: Option.getOrUndefined(Option.map(options.roles, (r) => r.split(",")))
          },
          storage: { dataDir: Option.getOrUndefined(options.dataDir) }
        }
      })
    )
    const roleSet = configOrExit(() => parseRoles(config.server.roles))
    // A bounded shutdown: if draining hangs, exit anyway (non-zero, so it shows).
    for (const signal of ["SIGTERM", "SIGINT"] as const) {
      process.once(signal, () => {
        setTimeout(() => process.exit(1), config.server.shutdownTimeoutMs).unref()
      })
    }
    startProcessMetrics()
    return Layer.launch(makeServerLayer(config, roleSet)).pipe(
      Effect.annotateLogs({ roles: [...roleSet].join(",") }),
      Logger.withMinimumLogLevel(logLevels[config.server.logLevel])
    )
  })

const serveCommand = Command.make("serve", serveOptions, serve).pipe(
  Command.withDescription("run the server (the default command)")
)

const checkCommand = Command.make(
  "check",
  { file: Args.file({ name: "FILE", exists: "yes" }) },
  ({ file }) =>
    Effect.sync(() => {
      const config = configOrExit(() => {
        const resolved = loadConfig({ file, env: process.env })
        parseRoles(resolved.server.roles)
        return resolved
      })
      process.stdout.write(renderConfig(config))
    })
).pipe(Command.withDescription("print the resolved config of FILE (+ TESSERA_* env), or the first bad key"))

const configCommand = Command.make("config").pipe(
  Command.withDescription("configuration tools"),
  Command.withSubcommands([checkCommand])
)

const tessera = Command.make("tessera", serveOptions, serve).pipe(
  Command.withDescription("Tessera multiplayer game backend. `tessera bots --help` runs load bots."),
  Command.withSubcommands([serveCommand, configCommand, adminCommand])
)

const cli = Command.run(tessera, { name: "tessera", version: SERVER_VERSION })

if (process.argv[2] === "bots") {
  // The bots share one flag parser with bench/crowd.ts, outside the server's CLI tree (and its imports).
  import("./bots/runCrowdCli.js")
    .then(({ runCrowdCli }) => runCrowdCli(process.argv.slice(3)))
    .then((code: number) => process.exit(code))
} else {
  cli(process.argv).pipe(Effect.provide(NodeContext.layer), NodeRuntime.runMain({ disableErrorReporting: false }))
}
