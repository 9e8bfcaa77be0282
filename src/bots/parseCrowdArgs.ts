import type { CrowdOptions } from "./Crowd.js"

/**
 * Command-line arguments of the crowd load generator, parsed into
 * CrowdOptions. Pure: throws CrowdArgsError with a message naming the flag
 * and what was expected.
 */

export class CrowdArgsError extends Error {
  override readonly name = "CrowdArgsError"
}

export const crowdUsage = `usage: bench:crowd -- --url ws://HOST:PORT --ccu N [options]
  --url URL          server WebSocket address, ws://HOST:PORT (required)
  --ccu N            concurrent bots, an integer >= 1 (required)
  --room-size N      players per room the server is configured for (default 50)
  --seconds S        length of the measured window in seconds (default 20)
  --server-pid PID   server process to read CPU and RSS of (Linux /proc)
  --experience ID    experience to join (default "arena")
  --probes N         bots that decode snapshots and measure input->ack latency
                     (default max(10, 5% of ccu), at most ccu)
  --ramp R           bots started per second (default 200)
  --warmup S         seconds between the end of the ramp and the window (default 2)
  --device-prefix P  bots sign in with device ids P-0, P-1, ... (default "bot"); give
                     each bot process its own prefix when several run at once`

type Flag =
  | "url"
  | "ccu"
  | "room-size"
  | "seconds"
  | "server-pid"
  | "experience"
  | "probes"
  | "ramp"
  | "warmup"
  | "device-prefix"

const FLAGS: ReadonlyArray<Flag> = [
  "url",
  "ccu",
  "room-size",
  "seconds",
  "server-pid",
  "experience",
  "probes",
  "ramp",
  "warmup",
  "device-prefix"
]

const isFlag = (name: string): name is Flag => (FLAGS as ReadonlyArray<string>).includes(name)

const fail = (message: string): never => {
  throw new CrowdArgsError(message)
}

const integer = (flag: Flag, raw: string, min: number): number => {
  if (!/^[+]?\d+$/.test(raw.trim())) fail(`--${flag} must be an integer >= ${min}, got "${raw}"`)
  const n = Number(raw)
  if (!Number.isSafeInteger(n) || n < min) fail(`--${flag} must be an integer >= ${min}, got "${raw}"`)
  return n
}

const positive = (flag: Flag, raw: string, allowZero = false): number => {
  const n = raw.trim() === "" ? Number.NaN : Number(raw)
  if (!Number.isFinite(n) || n < 0 || (!allowZero && n === 0)) {
    fail(`--${flag} must be a number ${allowZero ? ">= 0" : "> 0"}, got "${raw}"`)
  }
  return n
}

const wsUrl = (raw: string): string => {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return fail(`--url must be a WebSocket address like ws://127.0.0.1:7350, got "${raw}"`)
  }
  if (url.protocol !== "ws:" && url.protocol !== "wss:") {
    fail(`--url must start with ws:// or wss://, got "${raw}"`)
  }
  if (url.hostname === "") fail(`--url needs a host, got "${raw}"`)
  if (url.search !== "" || url.hash !== "") fail(`--url must not carry a query or fragment, got "${raw}"`)
  return raw
}

/** Parses `argv` (process.argv.slice(2)): `--flag value` or `--flag=value`. */
export const parseCrowdArgs = (argv: ReadonlyArray<string>): CrowdOptions => {
  const values = new Map<Flag, string>()
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === "--") continue
    if (!arg.startsWith("--")) fail(`unexpected argument "${arg}" (options are --name value)`)
    const eq = arg.indexOf("=")
    const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2)
    if (!isFlag(name)) fail(`unknown option --${name}; expected one of ${FLAGS.map((f) => `--${f}`).join(", ")}`)
    const flag = name as Flag
    let value: string
    if (eq >= 0) value = arg.slice(eq + 1)
    else {
      const next = argv[i + 1]
      if (next === undefined || (next.startsWith("--") && next.length > 2)) fail(`--${flag} needs a value`)
      value = next
      i++
    }
    if (values.has(flag)) fail(`--${flag} given twice`)
    values.set(flag, value)
  }

  const url = values.get("url")
  if (url === undefined) return fail("--url is required (ws://HOST:PORT)")
  const ccuRaw = values.get("ccu")
  if (ccuRaw === undefined) return fail("--ccu is required (number of concurrent bots)")
  const ccu = integer("ccu", ccuRaw, 1)

  const get = <A>(flag: Flag, parse: (raw: string) => A): A | undefined => {
    const raw = values.get(flag)
    return raw === undefined ? undefined : parse(raw)
  }
  const roomSize = get("room-size", (raw) => integer("room-size", raw, 1)) ?? 50
  const seconds = get("seconds", (raw) => positive("seconds", raw)) ?? 20
  const serverPid = get("server-pid", (raw) => integer("server-pid", raw, 1))
  const experience = get("experience", (raw) => {
    if (raw.length === 0 || raw.length > 64) fail(`--experience must be an id of 1..64 characters, got "${raw}"`)
    return raw
  })
  const probes = get("probes", (raw) => {
    const n = integer("probes", raw, 0)
    if (n > ccu) fail(`--probes (${n}) cannot exceed --ccu (${ccu})`)
    return n
  })
  const rampPerSecond = get("ramp", (raw) => positive("ramp", raw))
  const warmupSeconds = get("warmup", (raw) => positive("warmup", raw, true))
  const devicePrefix = get("device-prefix", (raw) => {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(raw)) fail(`--device-prefix must be 1..64 of A-Z a-z 0-9 _ . -, got "${raw}"`)
    return raw
  })

  const options: {
    -readonly [K in keyof CrowdOptions]: CrowdOptions[K]
  } = { url: wsUrl(url), ccu, roomSize, seconds }
  if (serverPid !== undefined) options.serverPid = serverPid
  if (experience !== undefined) options.experience = experience
  if (probes !== undefined) options.probes = probes
  if (rampPerSecond !== undefined) options.rampPerSecond = rampPerSecond
  if (warmupSeconds !== undefined) options.warmupSeconds = warmupSeconds
  if (devicePrefix !== undefined) options.devicePrefix = devicePrefix
  return options
}
