import { execFileSync } from "node:child_process"
import { readFileSync } from "node:fs"
import WebSocket from "ws"
import { ClientErrorCode, TesseraClient, TesseraError } from "../client/TesseraClient.js"
import type { JoinedInfo, TesseraClientOptions, WebSocketConstructor } from "../client/TesseraClient.js"
import { ErrorCode } from "../protocol/Opcodes.js"

/**
 * The crowd load generator: N bots through the client SDK, each sending
 * inputs at 20 Hz with a random-walk direction, while a few probe bots decode
 * snapshots and measure input -> ack latency. Reads the server's CPU and RSS
 * from /proc. Only ever talks to `options.url`.
 */

export interface CrowdOptions {
  /** ws://HOST:PORT of the server; auth goes to http://HOST:PORT. */
  readonly url: string
  readonly ccu: number
  /** Players per room the server is configured for (reported; rooms are filled by the server). */
  readonly roomSize: number
  /** Length of the measured window, in seconds. */
  readonly seconds: number
  readonly serverPid?: number
  /** Experience to join (default "arena"). */
  readonly experience?: string
  /** Bots that decode snapshots and measure latency (default max(10, 5% of ccu), at most ccu). */
  readonly probes?: number
  /** Bots started per second (default 200). */
  readonly rampPerSecond?: number
  /** Seconds between the end of the ramp and the measured window (default 2). */
  readonly warmupSeconds?: number
  /** Bots sign in with device ids `<devicePrefix>-<i>` (default "bot"). */
  readonly devicePrefix?: string
  /** Called once a second. */
  readonly onProgress?: (progress: CrowdProgress) => void
  /** Called right as the measured window opens and closes (e.g. to read server metrics at its edges); awaited. */
  readonly onWindow?: (edge: "start" | "end") => void | Promise<void>
}

export type CrowdPhase = "ramp" | "warmup" | "measure" | "closing"

export interface CrowdProgress {
  readonly phase: CrowdPhase
  readonly elapsedSeconds: number
  readonly ccu: number
  readonly connected: number
  readonly failed: number
  readonly disconnects: number
  /** Inputs sent during the last second. */
  readonly inputsPerSec: number
  /** p99 input->ack latency (ms) of the samples so far (the window's, once it started). */
  readonly p99: number | null
  readonly ackSamples: number
  readonly lastError: string | undefined
}

export interface CrowdResult {
  readonly ccu: number
  readonly roomSize: number
  /** Distinct worlds the bots were placed in. */
  readonly rooms: number
  /** Most bots seen in one world at once. */
  readonly roomSizeSeen: number
  /** Bots connected and in a world at the end of the window. */
  readonly connected: number
  /** Bots that never got in (auth, connect or join failed). */
  readonly failed: number
  /** Established connections that dropped during the run (before closing). */
  readonly disconnects: number
  readonly seconds: number
  readonly inputsPerSec: number
  readonly p50: number | null
  readonly p99: number | null
  readonly max: number | null
  readonly probes: number
  readonly ackSamples: number
  readonly serverCpuPct: number | null
  readonly serverRssMB: number | null
  readonly serverCpuUsPerInput: number | null
  readonly msgsInPerSec: number
  readonly bytesInPerSec: number
  readonly msgsOutPerSec: number
  readonly bytesOutPerSec: number
  /** CPU used by this (bot) process during the window, % of one core: near 100 means the bots limited the run. */
  readonly botCpuPct: number
  /**
   * Error code -> count: why bots did not get in, failed automatic rejoins, and
   * handshakes that failed and were retried (keys ending in " (retried)").
   */
  readonly errors: Readonly<Record<string, number>>
}

const INPUT_HZ = 20
const SCHEDULER_PERIOD_MS = 2
const LEAVE_TIMEOUT_MS = 3000

// ---- latency histogram -----------------------------------------------------------

/** Fixed 0.1 ms buckets up to 10 s (overflow counted at the top); exact max. No allocation per sample. */
export class LatencyHistogram {
  private static readonly RESOLUTION_MS = 0.1
  private readonly buckets = new Uint32Array(100_000)
  count = 0
  max = 0

  record(ms: number): void {
    const v = ms < 0 ? 0 : ms
    let i = Math.floor(v / LatencyHistogram.RESOLUTION_MS)
    if (i >= this.buckets.length) i = this.buckets.length - 1
    this.buckets[i]++
    this.count++
    if (v > this.max) this.max = v
  }

  /** The p-quantile (0..1) as its bucket's upper edge, capped at max; null without samples. */
  percentile(p: number): number | null {
    if (this.count === 0) return null
    const rank = Math.max(1, Math.ceil(p * this.count))
    let seen = 0
    for (let i = 0; i < this.buckets.length; i++) {
      seen += this.buckets[i]
      if (seen >= rank) {
        return i === this.buckets.length - 1 ? this.max : Math.min((i + 1) * LatencyHistogram.RESOLUTION_MS, this.max)
      }
    }
    return this.max
  }

  reset(): void {
    this.buckets.fill(0)
    this.count = 0
    this.max = 0
  }
}

// ---- /proc readers -------------------------------------------------------------------

let clockTicks: number | undefined
const clockTicksPerSecond = (): number => {
  if (clockTicks === undefined) {
    try {
      const n = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim())
      clockTicks = Number.isFinite(n) && n > 0 ? n : 100
    } catch {
      clockTicks = 100
    }
  }
  return clockTicks
}

/** utime + stime of a process, in seconds; undefined if unreadable. */
export const readProcessCpuSeconds = (pid: number): number | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    // comm (field 2) may contain spaces and parentheses: fields resume after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    // rest[0] is field 3 (state); utime is field 14, stime field 15.
    const utime = Number(rest[14 - 3])
    const stime = Number(rest[15 - 3])
    if (!Number.isFinite(utime) || !Number.isFinite(stime)) return undefined
    return (utime + stime) / clockTicksPerSecond()
  } catch {
    return undefined
  }
}

/** VmRSS of a process in MB; undefined if unreadable. */
export const readProcessRssMB = (pid: number): number | undefined => {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8")
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)
    return match === null ? undefined : Number(match[1]) / 1024
  } catch {
    return undefined
  }
}

// ---- progress line ------------------------------------------------------------------

const fmt = (n: number | null, digits = 1): string => (n === null ? "-" : n.toFixed(digits))

export const formatProgress = (p: CrowdProgress): string =>
  `[${p.phase} ${p.elapsedSeconds.toFixed(0)}s] connected ${p.connected}/${p.ccu} failed ${p.failed} ` +
  `disconnects ${p.disconnects} inputs/s ${p.inputsPerSec} p99 ${fmt(p.p99)}ms (${p.ackSamples} samples)` +
  (p.lastError !== undefined && p.failed > 0 ? ` last error: ${p.lastError}` : "")

/**
 * A progress printer for stderr: rewrites one line with `\r` on a TTY, prints
 * plain lines otherwise. Call `finish()` before printing anything else.
 */
export const stderrProgress = (
  stream: NodeJS.WriteStream = process.stderr
): { readonly onProgress: (p: CrowdProgress) => void; readonly finish: () => void } => {
  const tty = stream.isTTY === true
  let pending = false
  return {
    onProgress: (p) => {
      const line = formatProgress(p)
      if (tty) {
        stream.write(`\r\x1b[2K${line}`)
        pending = true
      } else stream.write(`${line}\n`)
    },
    finish: () => {
      if (pending) stream.write("\n")
      pending = false
    }
  }
}

// ---- the crowd --------------------------------------------------------------------------

interface Bot {
  readonly index: number
  readonly probe: boolean
  client: TesseraClient | undefined
  worldId: string | undefined
  /** Got into a world at least once. */
  in: boolean
}

interface Counters {
  inputs: number
  msgsIn: number
  bytesIn: number
  msgsOut: number
  bytesOut: number
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Waits for `promise` (errors ignored) at most `ms`, leaving no timer behind. */
const settleWithin = (promise: Promise<unknown>, ms: number): Promise<void> =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms)
    const done = (): void => {
      clearTimeout(timer)
      resolve()
    }
    promise.then(done, done)
  })

const rejoinFailureCodes: ReadonlySet<string> = new Set<string>([
  ErrorCode.UnknownExperience,
  ErrorCode.WorldFull,
  ErrorCode.Internal,
  ClientErrorCode.Timeout
])

const round = (n: number, digits: number): number => {
  const f = 10 ** digits
  return Math.round(n * f) / f
}

const roundOrNull = (n: number | null | undefined, digits: number): number | null =>
  n === null || n === undefined || !Number.isFinite(n) ? null : round(n, digits)

const errorKey = (error: unknown): string => {
  if (error instanceof TesseraError) return error.status !== undefined ? `${error.code} (${error.status})` : error.code
  if (error instanceof Error) return error.name
  return "unknown"
}

const errorText = (error: unknown): string =>
  error instanceof TesseraError ? `${error.code}: ${error.message}` : error instanceof Error ? error.message : String(error)

const validate = (o: CrowdOptions): void => {
  const bad = (what: string): never => {
    throw new RangeError(`runCrowd: ${what}`)
  }
  if (!Number.isInteger(o.ccu) || o.ccu < 1) bad(`ccu must be an integer >= 1, got ${o.ccu}`)
  if (!Number.isInteger(o.roomSize) || o.roomSize < 1) bad(`roomSize must be an integer >= 1, got ${o.roomSize}`)
  if (!(o.seconds > 0) || !Number.isFinite(o.seconds)) bad(`seconds must be > 0, got ${o.seconds}`)
  if (o.probes !== undefined && (!Number.isInteger(o.probes) || o.probes < 0)) bad(`probes must be an integer >= 0`)
  if (o.rampPerSecond !== undefined && !(o.rampPerSecond > 0)) bad(`rampPerSecond must be > 0`)
  if (o.warmupSeconds !== undefined && !(o.warmupSeconds >= 0)) bad(`warmupSeconds must be >= 0`)
  let url: URL
  try {
    url = new URL(o.url)
  } catch {
    return bad(`url must be ws://HOST:PORT, got "${o.url}"`)
  }
  if (url.protocol !== "ws:" && url.protocol !== "wss:") bad(`url must be ws://HOST:PORT, got "${o.url}"`)
}

/** Whether bot `i` of `n` is one of `probes` evenly spread probes. */
export const isProbeIndex = (i: number, n: number, probes: number): boolean =>
  Math.floor(((i + 1) * probes) / n) > Math.floor((i * probes) / n)

export const runCrowd = async (options: CrowdOptions): Promise<CrowdResult> => {
  validate(options)
  const { ccu, roomSize, seconds } = options
  const experience = options.experience ?? "arena"
  const probeCount = Math.min(ccu, options.probes ?? Math.max(10, Math.ceil(ccu * 0.05)))
  const rampPerSecond = options.rampPerSecond ?? 200
  const warmupSeconds = options.warmupSeconds ?? 2
  const serverPid = options.serverPid
  const baseUrl = options.url // the SDK derives http(s):// for auth and ws(s)://.../v1/ws from it
  const now = (): number => performance.now()
  const startedAt = now()

  const histogram = new LatencyHistogram()
  const recordLatency = (ms: number): void => histogram.record(ms)

  let phase: CrowdPhase = "ramp"
  let closing = false
  let failed = 0
  let disconnects = 0
  let inputsSent = 0
  let lastError: string | undefined
  const errors: Record<string, number> = {}
  const countError = (error: unknown): void => {
    const key = errorKey(error)
    errors[key] = (errors[key] ?? 0) + 1
    lastError = errorText(error)
  }

  const bots: Array<Bot> = []
  /** Bots that got in, in join order: the input scheduler walks this list round-robin. */
  const active: Array<TesseraClient> = []
  const angles = new Float64Array(ccu)
  const worldCounts = new Map<string, number>()
  let roomSizeSeen = 0

  const onJoined = (bot: Bot, info: JoinedInfo): void => {
    if (bot.worldId === info.worldId) return
    if (bot.worldId !== undefined) worldCounts.set(bot.worldId, (worldCounts.get(bot.worldId) ?? 1) - 1)
    bot.worldId = info.worldId
    const n = (worldCounts.get(info.worldId) ?? 0) + 1
    worldCounts.set(info.worldId, n)
    if (n > roomSizeSeen) roomSizeSeen = n
  }

  const WebSocketImpl: WebSocketConstructor = WebSocket
  const clientOptions = (probe: boolean): TesseraClientOptions => ({
    WebSocket: WebSocketImpl,
    webSocketOptions: { perMessageDeflate: false },
    binaryType: "nodebuffer",
    decodeSnapshots: probe,
    trackAcks: probe,
    ...(probe ? { onAckSample: recordLatency, pingIntervalMs: 5000 } : { pingIntervalMs: 0 }),
    requestTimeoutMs: 15_000,
    connectTimeoutMs: 15_000,
    ackRingSize: probe ? 1024 : 16 // only probes track acks
  })

  const guestWithRetry = async (bot: Bot): Promise<TesseraClient> => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await TesseraClient.guest(baseUrl, { deviceId: `${options.devicePrefix ?? "bot"}-${bot.index}` }, clientOptions(bot.probe))
      } catch (error) {
        const retriable =
          error instanceof TesseraError &&
          (error.status === 429 || error.status === 503 || error.code === ClientErrorCode.Http)
        if (!retriable || attempt >= 5 || closing) throw error
        await sleep(200 * 2 ** attempt * (0.5 + Math.random()))
      }
    }
  }

  /** A refused or dropped handshake (e.g. a full accept backlog during the ramp) is retried like a real client would. */
  const connectWithRetry = async (client: TesseraClient): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      try {
        await client.connect()
        return
      } catch (error) {
        const retriable =
          error instanceof TesseraError &&
          (error.code === ClientErrorCode.ConnectFailed || error.code === ClientErrorCode.Timeout)
        if (!retriable || attempt >= 3 || closing) throw error
        const key = `${errorKey(error)} (retried)`
        errors[key] = (errors[key] ?? 0) + 1
        await sleep(250 * 2 ** attempt * (0.5 + Math.random()))
      }
    }
  }

  const startBot = async (bot: Bot): Promise<void> => {
    try {
      const client = await guestWithRetry(bot)
      bot.client = client
      client.on("joined", (info) => onJoined(bot, info))
      client.on("close", () => {
        if (!closing && client.welcome !== undefined) disconnects++
      })
      client.on("error", (error) => {
        // After the bot got in, count what keeps it out of its world (a failed automatic rejoin).
        if (bot.in && !closing && !client.isInWorld && rejoinFailureCodes.has(error.code)) countError(error)
      })
      await connectWithRetry(client)
      if (!client.isInWorld) {
        try {
          await client.join(experience)
        } catch (error) {
          // The server may have put a session it still held back into its world.
          if (!(error instanceof TesseraError && error.code === ErrorCode.AlreadyInWorld && client.isInWorld)) throw error
        }
      }
      if (closing) return
      angles[active.length] = (Math.random() * 2 - 1) * Math.PI
      active.push(client)
      bot.in = true
    } catch (error) {
      failed++
      countError(error)
      const client = bot.client
      bot.client = undefined
      if (client !== undefined) await client.close().catch(() => {})
    }
  }

  // ---- the one input timer: 20 Hz per bot, spread evenly over time ----
  let credit = 0
  let cursor = 0
  let lastSchedule = now()
  const inputTimer = setInterval(() => {
    const t = now()
    const n = active.length
    if (n === 0) {
      lastSchedule = t
      return
    }
    credit += ((t - lastSchedule) * INPUT_HZ * n) / 1000
    lastSchedule = t
    if (credit > n) credit = n // never more than one round behind: an overloaded bot process sends less, honestly
    let due = Math.floor(credit)
    credit -= due
    while (due-- > 0) {
      if (cursor >= n) cursor = 0
      const client = active[cursor++]
      const i = cursor - 1
      let a = angles[i] + (Math.random() - 0.5) * 0.8
      if (a > Math.PI) a -= 2 * Math.PI
      else if (a < -Math.PI) a += 2 * Math.PI
      angles[i] = a
      if (client.sendInput(Math.cos(a), 0, Math.sin(a), 0) > 0) inputsSent++
    }
  }, SCHEDULER_PERIOD_MS)

  // ---- progress ----
  let lastInputs = 0
  const connectedCount = (): number => {
    let n = 0
    for (const client of active) if (client.connected && client.isInWorld) n++
    return n
  }
  const progressTimer = setInterval(() => {
    const inputs = inputsSent - lastInputs
    lastInputs = inputsSent
    options.onProgress?.({
      phase,
      elapsedSeconds: (now() - startedAt) / 1000,
      ccu,
      connected: connectedCount(),
      failed,
      disconnects,
      inputsPerSec: inputs,
      p99: roundOrNull(histogram.percentile(0.99), 1),
      ackSamples: histogram.count,
      lastError
    })
  }, 1000)

  const counters = (): Counters => {
    const c: Counters = { inputs: inputsSent, msgsIn: 0, bytesIn: 0, msgsOut: 0, bytesOut: 0 }
    for (const bot of bots) {
      const s = bot.client?.stats
      if (s === undefined) continue
      c.msgsIn += s.msgsIn
      c.bytesIn += s.bytesIn
      c.msgsOut += s.msgsOut
      c.bytesOut += s.bytesOut
    }
    return c
  }

  try {
    // ---- ramp ----
    const starts: Array<Promise<void>> = []
    const rampStart = now()
    for (let i = 0; i < ccu; ) {
      const due = Math.min(ccu, Math.floor(((now() - rampStart) * rampPerSecond) / 1000) + 1)
      while (i < due) {
        const bot: Bot = { index: i, probe: isProbeIndex(i, ccu, probeCount), client: undefined, worldId: undefined, in: false }
        bots.push(bot)
        starts.push(startBot(bot))
        i++
      }
      if (i < ccu) await sleep(Math.max(1, Math.min(50, 1000 / rampPerSecond)))
    }
    await Promise.all(starts)

    // ---- warmup ----
    phase = "warmup"
    if (warmupSeconds > 0) await sleep(warmupSeconds * 1000)

    // ---- measured window ----
    phase = "measure"
    histogram.reset()
    const c0 = counters()
    const cpu0 = serverPid !== undefined ? readProcessCpuSeconds(serverPid) : undefined
    const bot0 = process.cpuUsage()
    const t0 = now()
    await options.onWindow?.("start")
    await sleep(seconds * 1000)
    const t1 = now()
    const c1 = counters()
    const cpu1 = serverPid !== undefined ? readProcessCpuSeconds(serverPid) : undefined
    const botCpu = process.cpuUsage(bot0)
    const rss = serverPid !== undefined ? readProcessRssMB(serverPid) : undefined
    const connected = connectedCount()
    const p50 = histogram.percentile(0.5)
    const p99 = histogram.percentile(0.99)
    const max = histogram.count > 0 ? histogram.max : null
    const ackSamples = histogram.count
    // After the window's own readings; awaited: the bots stay in the world while the caller reads the server's state.
    await options.onWindow?.("end")

    const wall = (t1 - t0) / 1000
    const perSec = (a: number, b: number): number => Math.round((b - a) / wall)
    const inputsPerSec = (c1.inputs - c0.inputs) / wall
    const serverCpuPct = cpu0 !== undefined && cpu1 !== undefined ? (100 * (cpu1 - cpu0)) / wall : null
    const serverCpuUsPerInput = serverCpuPct !== null && inputsPerSec > 0 ? (serverCpuPct * 10_000) / inputsPerSec : null

    return {
      ccu,
      roomSize,
      rooms: worldCounts.size,
      roomSizeSeen,
      connected,
      failed,
      disconnects,
      seconds,
      inputsPerSec: Math.round(inputsPerSec),
      p50: roundOrNull(p50, 2),
      p99: roundOrNull(p99, 2),
      max: roundOrNull(max, 2),
      probes: probeCount,
      ackSamples,
      serverCpuPct: roundOrNull(serverCpuPct, 1),
      serverRssMB: roundOrNull(rss, 1),
      serverCpuUsPerInput: roundOrNull(serverCpuUsPerInput, 2),
      msgsInPerSec: perSec(c0.msgsIn, c1.msgsIn),
      bytesInPerSec: perSec(c0.bytesIn, c1.bytesIn),
      msgsOutPerSec: perSec(c0.msgsOut, c1.msgsOut),
      bytesOutPerSec: perSec(c0.bytesOut, c1.bytesOut),
      botCpuPct: round((100 * (botCpu.user + botCpu.system)) / 1e6 / wall, 1),
      errors
    }
  } finally {
    // ---- closing: leave, then close every bot ----
    phase = "closing"
    closing = true
    clearInterval(inputTimer)
    clearInterval(progressTimer)
    await Promise.all(
      bots.map(async (bot) => {
        const client = bot.client
        if (client === undefined) return
        if (client.connected && client.isInWorld) {
          await settleWithin(client.leave(), LEAVE_TIMEOUT_MS)
        }
        await client.close().catch(() => {})
      })
    )
  }
}
