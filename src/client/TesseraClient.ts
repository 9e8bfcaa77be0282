import { decode, encode } from "../protocol/Codec.js"
import { findAckedSeq } from "../protocol/Messages.js"
import { ChatChannel, ClientOp, CloseCode, ErrorCode, noAutoReconnectCloseCodes, ServerOp } from "../protocol/Opcodes.js"
import { AckTracker, isSnapshotFrame, locateSnapshotEntities, WorldView } from "./WorldView.js"
import type { SnapshotLocation } from "./WorldView.js"
import { type WorldEdit, type WorldEditChange, WorldEditsView } from "./WorldEditsView.js"

export type { WorldEdit, WorldEditChange } from "./WorldEditsView.js"

/**
 * The Tessera client SDK: guest auth, one WebSocket with automatic reconnect
 * and resume, join/leave, inputs with ack latency, chat, ping, and a decoded
 * world view. Runs in Node (pass `ws`'s WebSocket as `options.WebSocket`) and
 * in browsers; it imports nothing from Node.
 */

// ---- public types ------------------------------------------------------------

/** An error from the server (Error frame or HTTP error body) or from the client itself. */
export class TesseraError extends Error {
  override readonly name = "TesseraError"
  readonly code: string
  /** HTTP status, for errors of HTTP calls. */
  readonly status: number | undefined

  constructor(code: string, message: string, status?: number) {
    super(message)
    this.code = code
    this.status = status
  }
}

/** Client-side error codes (server codes are in ErrorCode). */
export const ClientErrorCode = {
  NotConnected: "not_connected",
  /** The socket closed before Welcome (refused upgrade, e.g. HTTP 401, or the server is unreachable). */
  ConnectFailed: "connect_failed",
  Disconnected: "disconnected",
  Closed: "closed",
  Timeout: "timeout",
  Busy: "busy",
  BadResponse: "bad_response",
  Http: "http_error"
} as const

/** The minimal WebSocket surface the SDK uses (browser WebSocket and `ws` both fit). */
export interface WebSocketLike {
  binaryType: string
  readonly readyState: number
  readonly bufferedAmount: number
  onopen: ((event: any) => void) | null
  onmessage: ((event: any) => void) | null
  onclose: ((event: any) => void) | null
  onerror: ((event: any) => void) | null
  send(data: Uint8Array): void
  close(code?: number, reason?: string): void
}

export type WebSocketConstructor = new (url: string, protocols?: any, options?: any) => WebSocketLike

export interface GuestParams {
  readonly deviceId?: string
  readonly name?: string
}

export interface GuestAuth {
  readonly playerId: string
  readonly name: string
  readonly token: string
  /** Expiry as epoch milliseconds (NaN if the server's value could not be read). */
  readonly expiresAt: number
}

export interface TesseraClientOptions {
  /** WebSocket implementation; default `globalThis.WebSocket`. */
  readonly WebSocket?: WebSocketConstructor
  /** Third constructor argument (e.g. `ws` ClientOptions `{ perMessageDeflate: false }`). */
  readonly webSocketOptions?: object
  /**
   * Socket binaryType (default "arraybuffer", what browsers support). With Node's
   * `ws`, "nodebuffer" saves a copy of every incoming frame (load generators).
   */
  readonly binaryType?: "arraybuffer" | "nodebuffer"
  /** fetch implementation; default the global fetch. */
  readonly fetch?: typeof fetch
  /** Decode snapshots into `world` (default true). When false they are only counted. */
  readonly decodeSnapshots?: boolean
  /** Track own input acks (default true). Without decoding, acks are found with findAckedSeq. */
  readonly trackAcks?: boolean
  /** Called with the latency of every newly acked input seq (not just the newest). */
  readonly onAckSample?: (latencyMs: number) => void
  /** Ping period in ms (default 5000; 0 disables automatic pings). */
  readonly pingIntervalMs?: number
  /** Reconnect automatically with resume (default true). */
  readonly reconnect?: boolean
  /**
   * More base URLs (http(s) or ws(s)) of gateways of the same deployment, for failover without a
   * load balancer in front. The client uses the rotation `[baseUrl, ...gateways]` (duplicates
   * dropped): it connects to `baseUrl` first and, whenever an attempt to open a connection fails
   * before Welcome (refused or unreachable, closed before Welcome, HTTP 503/429/401 at the upgrade,
   * or no Welcome within `connectTimeoutMs`), the next attempt (the next automatic reconnect, or the
   * next `connect()` call) goes to the next URL, wrapping around, with the usual backoff. A
   * welcomed connection that drops is retried first on the same gateway, so a network blip keeps
   * the player where it was and a dead gateway costs one refused attempt. The auth token and the
   * resume token are kept: tokens are valid on every gateway of a deployment (one signing secret)
   * and sessions are cluster-wide, so a resume through another gateway keeps the player's entity.
   * Token refreshes (guest re-login after repeated failures) go to the current gateway too.
   * `gatewayUrl` tells which one is in use. Default: none (only `baseUrl`).
   */
  readonly gateways?: ReadonlyArray<string>
  /** First reconnect delay in ms (default 250), doubled per attempt. */
  readonly reconnectBaseMs?: number
  /** Cap of the reconnect delay in ms (default 10000). */
  readonly reconnectMaxMs?: number
  /** Give up after this many consecutive failed attempts (default Infinity). */
  readonly maxReconnectAttempts?: number
  /** Time allowed from opening the socket to Welcome (default 10000 ms). */
  readonly connectTimeoutMs?: number
  /** Time allowed for join / leave / ping answers and HTTP calls (default 10000 ms). */
  readonly requestTimeoutMs?: number
  /** Time allowed for the close handshake before the socket is dropped (default 3000 ms). */
  readonly closeTimeoutMs?: number
  /** Capacity of the ring of input send times (default 1024). */
  readonly ackRingSize?: number
  /** Monotonic clock in ms (default performance.now). */
  readonly now?: () => number
}

export interface WelcomeInfo {
  readonly serverVersion: string
  readonly protocolVersion: number
  readonly tickRate: number
  readonly playerId: string
  readonly resumeToken: string
  readonly resumed: boolean
}

export interface JoinedInfo {
  readonly experienceId: string
  readonly worldId: string
  readonly regionId: string
  readonly entityId: number
  readonly x: number
  readonly y: number
  readonly z: number
  readonly tickRate: number
  readonly cellSize: number
}

export interface ChatMessage {
  readonly channel: ChatChannel
  readonly fromPlayerId: string
  readonly fromName: string
  readonly text: string
  readonly sentAt: number
  readonly to?: string
}

/** Frame and byte counters (payload bytes, without WebSocket framing). */
export interface ClientStats {
  msgsIn: number
  bytesIn: number
  msgsOut: number
  bytesOut: number
  /** Snapshot frames received (decoded or not). */
  snapshots: number
  /** Input frames sent. */
  inputs: number
}

export type ClientState = "idle" | "connecting" | "open" | "reconnecting" | "closed"

/** Matchmaking options of `queueMatch`. */
export interface MatchQueueOptions {
  /** The OTHER party members' player ids (all must be online); default: alone. */
  readonly party?: ReadonlyArray<string>
  /** The party's skill rating; default 0. */
  readonly skill?: number
  /** Measured round trip per region name, in ms; default none (no preference). */
  readonly latencies?: Readonly<Record<string, number>>
}

export interface MatchFound {
  readonly matchId: string
  /** Epoch ms by which every player must accept; null: no ready check (MatchReady follows). */
  readonly readyCheckDeadline: number | null
  readonly players: ReadonlyArray<string>
}

export interface MatchReady {
  readonly matchId: string
  readonly worldId: string
  readonly experienceId: string
}

export interface MatchEnded {
  /** The ticket id (timeout, cancel) or the match id (failed ready check, failed start). */
  readonly id: string
  /** "timeout" | "cancelled" | "lobby_failed" | "failed" */
  readonly reason: string
  readonly message: string
}

/** The server moved the player (Moved frame): see the `moved` event. */
export interface MoveInfo {
  /** The world left (null: the player was in no world, e.g. a match placed it). */
  readonly fromWorld: string | null
  /** The world entered; its `joined` event follows at once. Null: none, the connection closes with 4006 next. */
  readonly toWorld: string | null
  readonly reason: string
}

export interface TesseraClientEvents {
  welcome: (info: WelcomeInfo) => void
  /**
   * Joined a world: the answer to `join`, a resume, or a move the server made
   * (after a `moved` event; no join was sent). `world` was reset for it.
   */
  joined: (info: JoinedInfo) => void
  /**
   * The server moved the player out of its world (an admin's route or
   * terminate, a match, a failed instance) without a Join from this client:
   * with `toWorld`, a `joined` event for it follows at once and inputs go
   * there; with `toWorld` null the instance was terminated with nowhere to
   * go and the connection closes with 4006 (`close` event; no automatic
   * reconnect: `connect()` and `join()` again when the player wants).
   */
  moved: (move: MoveInfo) => void
  /** A decoded snapshot was applied to `world` (only with decodeSnapshots). */
  snapshot: (regionId: string, cellKey: string, tick: number) => void
  /** The server processed inputs up to `seq`; `latencyMs` is that input's send-to-ack time. */
  ack: (seq: number, latencyMs: number) => void
  chat: (message: ChatMessage) => void
  chatHistory: (channel: ChatChannel, messages: ReadonlyArray<ChatMessage>) => void
  error: (error: TesseraError) => void
  left: (reason: string) => void
  pong: (rttMs: number, serverTime: number) => void
  close: (code: number, reason: string) => void
  reconnecting: (attempt: number, delayMs: number) => void
  /** A reconnect got its Welcome. If not resumed, the client rejoins its experience itself. */
  reconnected: (resumed: boolean) => void
  /** Matchmaking: this player's party is queued (again, after a failed ready check). */
  matchQueued: (ticketId: string) => void
  /** Matchmaking: a match was found; with a `readyCheckDeadline`, call acceptMatch (or declineMatch) before it. */
  matchFound: (match: MatchFound) => void
  /** Matchmaking: the match's instance is ready; `join(match.experienceId)` lands in `match.worldId`. */
  matchReady: (match: MatchReady) => void
  /** Matchmaking: a ticket or match ended without a game (see MatchEndReason). */
  matchEnded: (ended: MatchEnded) => void
  /** Open worlds: a world modification was applied to `worldEdits` (value null: the key was removed). */
  worldEdit: (change: WorldEditChange) => void
}

// ---- a small typed event emitter -------------------------------------------------

type AnyListener = (...args: Array<any>) => void

export class Emitter<E extends { [K in keyof E]: AnyListener }> {
  private readonly listeners = new Map<keyof E, Array<AnyListener>>()

  on<K extends keyof E>(event: K, listener: E[K]): this {
    const list = this.listeners.get(event)
    if (list === undefined) this.listeners.set(event, [listener])
    else list.push(listener)
    return this
  }

  off<K extends keyof E>(event: K, listener: E[K]): this {
    const list = this.listeners.get(event)
    if (list !== undefined) {
      const i = list.indexOf(listener)
      if (i >= 0) list.splice(i, 1)
      if (list.length === 0) this.listeners.delete(event)
    }
    return this
  }

  once<K extends keyof E>(event: K, listener: E[K]): this {
    const wrapper = ((...args: Array<any>) => {
      this.off(event, wrapper)
      ;(listener as AnyListener)(...args)
    }) as E[K]
    return this.on(event, wrapper)
  }

  listenerCount<K extends keyof E>(event: K): number {
    return this.listeners.get(event)?.length ?? 0
  }

  protected hasListeners(event: keyof E): boolean {
    return this.listeners.has(event)
  }

  protected emit<K extends keyof E>(event: K, ...args: Parameters<E[K]>): void {
    const list = this.listeners.get(event)
    if (list === undefined) return
    if (list.length === 1) {
      list[0](...args)
      return
    }
    for (const listener of list.slice()) listener(...args)
  }
}

// ---- helpers -----------------------------------------------------------------------

const joinErrorCodes: ReadonlySet<string> = new Set<string>([
  ErrorCode.BadFrame,
  ErrorCode.BadShape,
  ErrorCode.TooLarge,
  ErrorCode.RateLimited,
  ErrorCode.AlreadyInWorld,
  ErrorCode.UnknownExperience,
  ErrorCode.WorldFull,
  ErrorCode.Internal
])

/** Error codes that answer a pending queueMatch. */
const matchQueueErrorCodes: ReadonlySet<string> = new Set<string>([
  ErrorCode.BadFrame,
  ErrorCode.BadShape,
  ErrorCode.TooLarge,
  ErrorCode.RateLimited,
  ErrorCode.MatchRejected,
  ErrorCode.Internal
])

const OPEN = 1

const defaultNow = (): number => performance.now()

const noop = (): void => {}

/** `http(s)://host:port[/prefix]` for a base URL given as http(s) or ws(s). */
export const httpBaseUrl = (baseUrl: string): string => {
  const url = new URL(baseUrl)
  if (url.protocol === "ws:") url.protocol = "http:"
  else if (url.protocol === "wss:") url.protocol = "https:"
  else if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new TesseraError(ClientErrorCode.BadResponse, `unsupported URL scheme ${url.protocol}`)
  }
  return `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, "")}`
}

/** `ws(s)://host:port[/prefix]` for a base URL given as http(s) or ws(s). */
export const wsBaseUrl = (baseUrl: string): string => {
  const http = httpBaseUrl(baseUrl)
  return http.startsWith("https:") ? `wss:${http.slice(6)}` : `ws:${http.slice(5)}`
}

const parseExpiresAt = (value: unknown): number => {
  if (typeof value === "number") return value < 1e12 ? value * 1000 : value
  if (typeof value === "string") {
    const n = Number(value)
    if (value.trim() !== "" && Number.isFinite(n)) return n < 1e12 ? n * 1000 : n
    return Date.parse(value)
  }
  return Number.NaN
}

const timeoutSignal = (ms: number): AbortSignal | undefined =>
  typeof AbortSignal !== "undefined" && typeof AbortSignal.timeout === "function" ? AbortSignal.timeout(ms) : undefined

/** Guest login: `POST /v1/auth/guest`. Throws TesseraError with the server's code on 4xx/5xx. */
export const guestAuth = async (
  baseUrl: string,
  params: GuestParams = {},
  options: { readonly fetch?: typeof fetch; readonly timeoutMs?: number } = {}
): Promise<GuestAuth> => {
  const doFetch = options.fetch ?? globalThis.fetch
  const body: { deviceId?: string; name?: string } = {}
  if (params.deviceId !== undefined) body.deviceId = params.deviceId
  if (params.name !== undefined) body.name = params.name
  const init: RequestInit = {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body)
  }
  const signal = timeoutSignal(options.timeoutMs ?? 10_000)
  if (signal !== undefined) init.signal = signal
  let response: Response
  try {
    response = await doFetch(`${httpBaseUrl(baseUrl)}/v1/auth/guest`, init)
  } catch (cause) {
    const aborted = cause instanceof Error && (cause.name === "TimeoutError" || cause.name === "AbortError")
    throw new TesseraError(
      aborted ? ClientErrorCode.Timeout : ClientErrorCode.Http,
      `guest auth failed: ${cause instanceof Error ? cause.message : String(cause)}`
    )
  }
  const text = await response.text()
  let json: unknown
  try {
    json = text.length > 0 ? JSON.parse(text) : undefined
  } catch {
    json = undefined
  }
  if (!response.ok) {
    const error = (json as { error?: { code?: unknown; message?: unknown } } | undefined)?.error
    throw new TesseraError(
      typeof error?.code === "string" ? error.code : ClientErrorCode.Http,
      typeof error?.message === "string" ? error.message : `guest auth: HTTP ${response.status}`,
      response.status
    )
  }
  const r = json as { playerId?: unknown; name?: unknown; token?: unknown; expiresAt?: unknown } | undefined
  if (r === undefined || typeof r.playerId !== "string" || typeof r.token !== "string") {
    throw new TesseraError(ClientErrorCode.BadResponse, "guest auth: response lacks playerId/token", response.status)
  }
  return {
    playerId: r.playerId,
    name: typeof r.name === "string" ? r.name : "",
    token: r.token,
    expiresAt: parseExpiresAt(r.expiresAt)
  }
}

interface Pending<T> {
  resolve: (value: T) => void
  reject: (error: TesseraError) => void
  timer: ReturnType<typeof setTimeout> | undefined
}

interface PendingPing extends Pending<number> {
  readonly sentAt: number
}

const toChatMessage = (
  channel: ChatChannel,
  fromPlayerId: unknown,
  fromName: unknown,
  text: unknown,
  sentAt: unknown,
  to: unknown
): ChatMessage => {
  const base = {
    channel,
    fromPlayerId: String(fromPlayerId),
    fromName: String(fromName),
    text: String(text),
    sentAt: typeof sentAt === "number" ? sentAt : Number(sentAt)
  }
  return typeof to === "string" ? { ...base, to } : base
}

// ---- the client ----------------------------------------------------------------------

export class TesseraClient extends Emitter<TesseraClientEvents> {
  /** Logs in as a guest (same deviceId, same player) and returns an unconnected client. */
  static async guest(
    baseUrl: string,
    params: GuestParams = {},
    options: TesseraClientOptions = {}
  ): Promise<TesseraClient> {
    const fetchOptions: { fetch?: typeof fetch; timeoutMs?: number } = {}
    if (options.fetch !== undefined) fetchOptions.fetch = options.fetch
    if (options.requestTimeoutMs !== undefined) fetchOptions.timeoutMs = options.requestTimeoutMs
    const auth = await guestAuth(baseUrl, params, fetchOptions)
    return new TesseraClient(baseUrl, auth, options, params)
  }

  /** The first gateway's base URL (see `options.gateways` and `gatewayUrl` for failover). */
  readonly baseUrl: string
  playerId: string
  name: string
  token: string
  expiresAt: number
  resumeToken: string | undefined = undefined
  /** Own entity in the current world. */
  entityId: number | undefined = undefined
  /** The last Joined info (undefined when not in a world). */
  joined: JoinedInfo | undefined = undefined
  /** The last Welcome. */
  welcome: WelcomeInfo | undefined = undefined
  /** Decoded view of the world (empty with decodeSnapshots: false). */
  readonly world = new WorldView()
  private readonly editsView = new WorldEditsView()
  /** Last measured round-trip time in ms. */
  rttMs: number | undefined = undefined
  readonly stats: ClientStats = { msgsIn: 0, bytesIn: 0, msgsOut: 0, bytesOut: 0, snapshots: 0, inputs: 0 }
  state: ClientState = "idle"

  private readonly options: TesseraClientOptions
  private readonly guestParams: GuestParams | undefined
  private readonly WebSocketImpl: WebSocketConstructor
  private readonly now: () => number
  private readonly decodeSnapshots: boolean
  private readonly trackAcks: boolean
  private readonly onAckSample: ((latencyMs: number) => void) | undefined
  private readonly acks: AckTracker
  private readonly location: SnapshotLocation = { tick: 0, offset: 0, length: 0 }

  /** `[baseUrl, ...options.gateways]` without duplicates; `gatewayIndex` is the one in use. */
  private readonly gatewayUrls: ReadonlyArray<string>
  private gatewayIndex = 0
  private ws: WebSocketLike | undefined = undefined
  private lastSocketError: string | undefined = undefined
  private seq = 0
  private inWorld = false
  /** Experience to rejoin after a reconnect that was not resumed. */
  private rejoinExperience: string | undefined = undefined
  private everWelcomed = false
  private closedByUser = false
  private reconnectAttempt = 0
  private failedBeforeWelcome = 0
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined = undefined
  private pingTimer: ReturnType<typeof setInterval> | undefined = undefined
  private pendingWelcome: Pending<WelcomeInfo> | undefined = undefined
  private connectPromise: Promise<WelcomeInfo> | undefined = undefined
  private pendingJoin: Pending<JoinedInfo> | undefined = undefined
  private pendingLeave: Pending<string> | undefined = undefined
  private readonly pendingPings: Array<PendingPing> = []
  private closeWaiters: Array<() => void> = []

  constructor(baseUrl: string, auth: GuestAuth, options: TesseraClientOptions = {}, guestParams?: GuestParams) {
    super()
    this.baseUrl = baseUrl
    this.playerId = auth.playerId
    this.name = auth.name
    this.token = auth.token
    this.expiresAt = auth.expiresAt
    this.options = options
    this.guestParams = guestParams
    this.gatewayUrls = [...new Set([baseUrl, ...(options.gateways ?? [])])]
    const impl = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket
    if (impl === undefined) {
      throw new TesseraError(ClientErrorCode.NotConnected, "no WebSocket implementation: pass options.WebSocket")
    }
    this.WebSocketImpl = impl
    this.now = options.now ?? defaultNow
    this.decodeSnapshots = options.decodeSnapshots ?? true
    this.trackAcks = options.trackAcks ?? true
    this.onAckSample = options.onAckSample
    this.acks = new AckTracker(options.ackRingSize ?? 1024)
  }

  /**
   * Open worlds: the modifications of the world the player is in, by key
   * (the highest seq wins; removed keys are absent). Filled from the regions'
   * state on join and arrival and from live edits near the player.
   */
  get worldEdits(): ReadonlyMap<string, WorldEdit> {
    return this.editsView.edits
  }

  /** Newest input seq the server acknowledged (0 before any). */
  get lastAckedSeq(): number {
    return this.acks.lastAckedSeq
  }

  /** Newest input seq sent (0 before any). */
  get lastSentSeq(): number {
    return this.seq
  }

  /** The base URL of the gateway in use (or tried next): `baseUrl` or one of `options.gateways`. */
  get gatewayUrl(): string {
    return this.gatewayUrls[this.gatewayIndex]!
  }

  /** Whether the socket is open and welcomed. */
  get connected(): boolean {
    return this.state === "open"
  }

  /** Whether the player is in a world (joined, not left). */
  get isInWorld(): boolean {
    return this.inWorld
  }

  // ---- connection -------------------------------------------------------------------

  /** Opens the socket; resolves on Welcome. */
  connect(): Promise<WelcomeInfo> {
    if (this.state === "open" && this.welcome !== undefined) return Promise.resolve(this.welcome)
    if (this.connectPromise !== undefined) return this.connectPromise
    if (this.state === "reconnecting") {
      return Promise.reject(new TesseraError(ClientErrorCode.Busy, "reconnecting; wait for the reconnected event"))
    }
    this.closedByUser = false
    const promise = this.openSocket(false)
    this.connectPromise = promise
    const clear = (): void => {
      if (this.connectPromise === promise) this.connectPromise = undefined
    }
    promise.then(clear, clear)
    return promise
  }

  private socketUrl(resume: boolean): string {
    let url = `${wsBaseUrl(this.gatewayUrl)}/v1/ws?token=${encodeURIComponent(this.token)}`
    if (resume && this.resumeToken !== undefined) url += `&resume=${encodeURIComponent(this.resumeToken)}`
    return url
  }

  private openSocket(resume: boolean): Promise<WelcomeInfo> {
    return new Promise<WelcomeInfo>((resolve, reject) => {
      let ws: WebSocketLike
      try {
        ws =
          this.options.webSocketOptions !== undefined
            ? new this.WebSocketImpl(this.socketUrl(resume), undefined, this.options.webSocketOptions)
            : new this.WebSocketImpl(this.socketUrl(resume))
      } catch (cause) {
        reject(new TesseraError(ClientErrorCode.NotConnected, `cannot open WebSocket: ${String(cause)}`))
        return
      }
      ws.binaryType = this.options.binaryType ?? "arraybuffer"
      this.ws = ws
      this.lastSocketError = undefined
      if (this.state !== "reconnecting") this.state = "connecting"
      const timer = setTimeout(() => {
        if (this.pendingWelcome?.timer === timer) {
          this.pendingWelcome = undefined
          this.attemptFailed()
          reject(new TesseraError(ClientErrorCode.Timeout, "no Welcome from the server in time"))
          this.dropSocket(ws)
        }
      }, this.options.connectTimeoutMs ?? 10_000)
      this.pendingWelcome = { resolve, reject, timer }
      const on = (ws as { on?: unknown }).on
      if (typeof on === "function") {
        // Node `ws`: its EventEmitter API hands the data over without building a MessageEvent per frame.
        on.call(ws, "message", (data: unknown) => {
          if (this.ws === ws) this.onMessage(data)
        })
      } else {
        ws.onmessage = (event: { data: unknown }) => {
          if (this.ws === ws) this.onMessage(event.data)
        }
      }
      ws.onclose = (event: { code?: number; reason?: string }) => {
        if (this.ws === ws) this.onSocketClose(event.code ?? 1006, event.reason ?? "")
      }
      ws.onerror = (event: { message?: unknown } | undefined) => {
        // A close event always follows; keep the reason (Node `ws` says e.g. "Unexpected server response: 401").
        if (this.ws === ws && typeof event?.message === "string") this.lastSocketError = event.message
      }
    })
  }

  /** Forcibly ends a socket (Node `ws` has terminate(); browsers close()). */
  private dropSocket(ws: WebSocketLike): void {
    const terminate = (ws as { terminate?: () => void }).terminate
    try {
      if (typeof terminate === "function") terminate.call(ws)
      else ws.close()
    } catch {
      // already closed
    }
  }

  private onSocketClose(code: number, reason: string): void {
    this.ws = undefined
    this.stopPing()
    const disconnected = (): TesseraError =>
      new TesseraError(
        this.closedByUser ? ClientErrorCode.Closed : ClientErrorCode.Disconnected,
        `connection closed (${code}${reason ? ` ${reason}` : ""})`
      )
    const pw = this.pendingWelcome
    if (pw !== undefined) {
      this.pendingWelcome = undefined
      clearTimeout(pw.timer)
      pw.reject(
        this.closedByUser
          ? disconnected()
          : new TesseraError(
              ClientErrorCode.ConnectFailed,
              `connection closed before Welcome (${code}${reason ? ` ${reason}` : ""})` +
                (this.lastSocketError !== undefined ? `: ${this.lastSocketError}` : "")
            )
      )
      if (!this.closedByUser) this.attemptFailed()
    }
    this.rejectPendings(disconnected)

    const waiters = this.closeWaiters
    this.closeWaiters = []
    for (const w of waiters) w()

    const wantReconnect =
      !this.closedByUser &&
      this.everWelcomed &&
      (this.options.reconnect ?? true) &&
      code !== CloseCode.Normal &&
      !noAutoReconnectCloseCodes.has(code)
    if (code === CloseCode.ResumeExpired) this.resumeToken = undefined
    if (code === CloseCode.InstanceTerminated) {
      // The instance is gone and the session holds no place: nothing to resume or rejoin by itself.
      this.resumeToken = undefined
      this.rejoinExperience = undefined
      this.leaveWorldView()
    }
    // "close" is emitted once per established connection that ends (a failed
    // reconnect attempt only leads to the next "reconnecting"), and once more
    // if the client gives up reconnecting.
    const wasOpen = this.state === "open"
    if (wantReconnect) {
      this.state = "reconnecting"
      if (wasOpen) this.emit("close", code, reason)
      if (!this.scheduleReconnect()) {
        this.state = "closed"
        this.inWorld = false
        this.emit("close", code, `${reason}${reason ? "; " : ""}gave up reconnecting`)
      }
    } else {
      this.state = "closed"
      this.inWorld = false
      this.emit("close", code, reason)
    }
  }

  /** An attempt ended before Welcome: count it, and send the next one to the next gateway. */
  private attemptFailed(): void {
    this.failedBeforeWelcome++
    this.gatewayIndex = (this.gatewayIndex + 1) % this.gatewayUrls.length
  }

  private rejectPendings(error: () => TesseraError): void {
    const join = this.pendingJoin
    if (join !== undefined) {
      this.pendingJoin = undefined
      clearTimeout(join.timer)
      join.reject(error())
    }
    const leave = this.pendingLeave
    if (leave !== undefined) {
      this.pendingLeave = undefined
      clearTimeout(leave.timer)
      leave.reject(error())
    }
    const pings = this.pendingPings.splice(0)
    for (const p of pings) {
      clearTimeout(p.timer)
      p.reject(error())
    }
  }

  /** Schedules the next attempt; false when the attempts are exhausted. */
  private scheduleReconnect(): boolean {
    const max = this.options.maxReconnectAttempts ?? Number.POSITIVE_INFINITY
    if (this.reconnectAttempt >= max) return false
    const attempt = ++this.reconnectAttempt
    const base = this.options.reconnectBaseMs ?? 250
    const cap = this.options.reconnectMaxMs ?? 10_000
    const ceiling = Math.min(cap, base * 2 ** Math.min(attempt - 1, 30))
    // "Equal jitter": half fixed, half random, so a crowd spreads out but never retries instantly.
    const delay = Math.round(ceiling / 2 + Math.random() * (ceiling / 2))
    this.emit("reconnecting", attempt, delay)
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined
      void this.reconnectNow()
    }, delay)
    return true
  }

  private async reconnectNow(): Promise<void> {
    if (this.closedByUser) return
    // Refresh the token when it is about to expire or the last attempts failed before
    // Welcome (a refused upgrade looks like any other failure in a browser).
    const expiring = Number.isFinite(this.expiresAt) && this.expiresAt - 30_000 < Date.now()
    if (this.guestParams?.deviceId !== undefined && (expiring || this.failedBeforeWelcome >= 2)) {
      try {
        const fetchOptions: { fetch?: typeof fetch; timeoutMs?: number } = {}
        if (this.options.fetch !== undefined) fetchOptions.fetch = this.options.fetch
        if (this.options.requestTimeoutMs !== undefined) fetchOptions.timeoutMs = this.options.requestTimeoutMs
        const auth = await guestAuth(this.gatewayUrl, this.guestParams, fetchOptions)
        this.token = auth.token
        this.expiresAt = auth.expiresAt
        this.failedBeforeWelcome = 0
      } catch {
        // the server may be down; the socket attempt below fails and schedules the next one
      }
      if (this.closedByUser) return
    }
    this.openSocket(true).catch(noop) // failures arrive through onSocketClose
  }

  /** Closes the connection for good (no reconnect). Resolves once the socket is closed. */
  close(code: number = CloseCode.Normal, reason = ""): Promise<void> {
    this.closedByUser = true
    this.rejoinExperience = undefined
    if (this.reconnectTimer !== undefined) {
      clearTimeout(this.reconnectTimer)
      this.reconnectTimer = undefined
    }
    this.stopPing()
    const ws = this.ws
    if (ws === undefined) {
      if (this.state !== "closed") {
        this.state = "closed"
        this.inWorld = false
      }
      this.rejectPendings(() => new TesseraError(ClientErrorCode.Closed, "client closed"))
      return Promise.resolve()
    }
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        // No close handshake in time: drop the socket and finish the close ourselves.
        this.dropSocket(ws)
        if (this.ws === ws) this.onSocketClose(1006, "close timeout")
      }, this.options.closeTimeoutMs ?? 3000)
      this.closeWaiters.push(() => {
        clearTimeout(timer)
        resolve()
      })
      try {
        ws.close(code, reason)
      } catch {
        this.dropSocket(ws)
      }
    })
  }

  // ---- requests ----------------------------------------------------------------------

  private send(frame: ReadonlyArray<unknown>): boolean {
    const ws = this.ws
    if (ws === undefined || ws.readyState !== OPEN) return false
    const bytes = encode(frame)
    ws.send(bytes)
    this.stats.msgsOut++
    this.stats.bytesOut += bytes.byteLength
    return true
  }

  private notConnected(): TesseraError {
    return new TesseraError(ClientErrorCode.NotConnected, "not connected")
  }

  /** Joins an experience; resolves with Joined, rejects with the server's Error as a TesseraError. */
  join(experienceId: string): Promise<JoinedInfo> {
    if (this.state !== "open") return Promise.reject(this.notConnected())
    if (this.pendingJoin !== undefined) {
      return Promise.reject(new TesseraError(ClientErrorCode.Busy, "a join is already in progress"))
    }
    return new Promise<JoinedInfo>((resolve, reject) => {
      const pending: Pending<JoinedInfo> = { resolve, reject, timer: undefined }
      pending.timer = setTimeout(() => {
        if (this.pendingJoin === pending) {
          this.pendingJoin = undefined
          reject(new TesseraError(ClientErrorCode.Timeout, `no answer to join ${experienceId} in time`))
        }
      }, this.options.requestTimeoutMs ?? 10_000)
      this.pendingJoin = pending
      if (!this.send([ClientOp.Join, experienceId])) {
        this.pendingJoin = undefined
        clearTimeout(pending.timer)
        reject(this.notConnected())
      }
    })
  }

  /** Leaves the current world; resolves with the server's reason on Left. */
  leave(): Promise<string> {
    this.rejoinExperience = undefined
    if (this.state !== "open") return Promise.reject(this.notConnected())
    if (this.pendingLeave !== undefined) {
      return Promise.reject(new TesseraError(ClientErrorCode.Busy, "a leave is already in progress"))
    }
    return new Promise<string>((resolve, reject) => {
      const pending: Pending<string> = { resolve, reject, timer: undefined }
      pending.timer = setTimeout(() => {
        if (this.pendingLeave === pending) {
          this.pendingLeave = undefined
          reject(new TesseraError(ClientErrorCode.Timeout, "no answer to leave in time"))
        }
      }, this.options.requestTimeoutMs ?? 10_000)
      this.pendingLeave = pending
      if (!this.send([ClientOp.Leave])) {
        this.pendingLeave = undefined
        clearTimeout(pending.timer)
        reject(this.notConnected())
      }
    })
  }

  /**
   * Sends one input; returns its seq, or 0 when not sent (not connected or not
   * in a world). Seqs increase from 1 for the client's lifetime, across reconnects.
   */
  sendInput(dx: number, dy: number, dz: number, buttons = 0): number {
    const ws = this.ws
    if (!this.inWorld || ws === undefined || ws.readyState !== OPEN) return 0
    const seq = ++this.seq
    this.acks.sent(seq, this.now())
    const bytes = encode([ClientOp.Input, seq, dx, dy, dz, buttons])
    ws.send(bytes)
    this.stats.msgsOut++
    this.stats.bytesOut += bytes.byteLength
    this.stats.inputs++
    return seq
  }

  /**
   * Open worlds: sets `key` to `value` at (x, y, z), or removes it (`value`
   * null). The spot must be within the server's edit reach of the player and
   * inside the player's current region. Returns false if not sent; a refusal
   * comes back as an `error` event, an accepted edit as a `worldEdit` event.
   */
  sendWorldEdit(key: string, x: number, y: number, z: number, value: string | null): boolean {
    return this.send([ClientOp.WorldEdit, key, x, y, z, value])
  }

  // ---- matchmaking ---------------------------------------------------------------------

  private pendingMatchQueue: Pending<string> | undefined

  /**
   * Queues for `mode` of `experienceId` as the leader of a party (options.party:
   * the other members). Resolves with the ticket id (MatchQueued), rejects with
   * the server's error. Then watch matchFound / matchReady / matchEnded.
   */
  queueMatch(experienceId: string, mode: string, options: MatchQueueOptions = {}): Promise<string> {
    if (this.state !== "open") return Promise.reject(this.notConnected())
    if (this.pendingMatchQueue !== undefined) {
      return Promise.reject(new TesseraError(ClientErrorCode.Busy, "a match queue request is already in progress"))
    }
    return new Promise<string>((resolve, reject) => {
      const pending: Pending<string> = { resolve, reject, timer: undefined }
      pending.timer = setTimeout(() => {
        if (this.pendingMatchQueue === pending) {
          this.pendingMatchQueue = undefined
          reject(new TesseraError(ClientErrorCode.Timeout, `no answer to queueing for ${experienceId}/${mode} in time`))
        }
      }, this.options.requestTimeoutMs ?? 10_000)
      this.pendingMatchQueue = pending
      const frame = [ClientOp.MatchQueue, experienceId, mode, options.party ?? [], options.skill ?? 0, options.latencies ?? {}]
      if (!this.send(frame)) {
        this.pendingMatchQueue = undefined
        clearTimeout(pending.timer)
        reject(this.notConnected())
      }
    })
  }

  /** Leaves the matchmaking queue (the whole party); a matchEnded ("cancelled") follows, or an error not_queued. */
  cancelMatch(): boolean {
    return this.send([ClientOp.MatchCancel])
  }

  /** Accepts a found match's ready check. */
  acceptMatch(matchId: string): boolean {
    return this.send([ClientOp.MatchAccept, matchId])
  }

  /** Declines a found match's ready check (this party leaves the queue; the others are requeued). */
  declineMatch(matchId: string): boolean {
    return this.send([ClientOp.MatchDecline, matchId])
  }

  private onMatchFrame(frame: Array<unknown>): void {
    switch (frame[0]) {
      case ServerOp.MatchQueued: {
        if (typeof frame[1] !== "string") return this.badFrame("match queued")
        const pending = this.pendingMatchQueue
        if (pending !== undefined) {
          this.pendingMatchQueue = undefined
          clearTimeout(pending.timer)
          pending.resolve(frame[1])
        }
        return this.emit("matchQueued", frame[1])
      }
      case ServerOp.MatchFound: {
        const [, matchId, deadline, players] = frame
        if (typeof matchId !== "string" || !Array.isArray(players) || (deadline !== null && typeof deadline !== "number")) {
          return this.badFrame("match found")
        }
        return this.emit("matchFound", { matchId, readyCheckDeadline: deadline, players: players.map(String) })
      }
      case ServerOp.MatchReady: {
        const [, matchId, worldId, experienceId] = frame
        if (typeof matchId !== "string" || typeof worldId !== "string" || typeof experienceId !== "string") {
          return this.badFrame("match ready")
        }
        return this.emit("matchReady", { matchId, worldId, experienceId })
      }
      case ServerOp.MatchEnded: {
        const [, id, reason, message] = frame
        if (typeof id !== "string" || typeof reason !== "string") return this.badFrame("match ended")
        return this.emit("matchEnded", { id, reason, message: typeof message === "string" ? message : "" })
      }
    }
  }

  /** Sends a chat message; `to` (a player id) only for the private channel. Returns false if not sent. */
  chat(channel: ChatChannel, text: string, to?: string): boolean {
    return this.send(to === undefined ? [ClientOp.Chat, channel, text] : [ClientOp.Chat, channel, text, to])
  }

  /** Measures the round trip; resolves with it in ms (also kept in `rttMs`). */
  ping(): Promise<number> {
    if (this.state !== "open") return Promise.reject(this.notConnected())
    const sentAt = this.now()
    return new Promise<number>((resolve, reject) => {
      const pending: PendingPing = { sentAt, resolve, reject, timer: undefined }
      pending.timer = setTimeout(() => {
        const i = this.pendingPings.indexOf(pending)
        if (i >= 0) {
          this.pendingPings.splice(i, 1)
          reject(new TesseraError(ClientErrorCode.Timeout, "no pong in time"))
        }
      }, this.options.requestTimeoutMs ?? 10_000)
      this.pendingPings.push(pending)
      if (!this.send([ClientOp.Ping, sentAt])) {
        this.pendingPings.pop()
        clearTimeout(pending.timer)
        reject(this.notConnected())
      }
    })
  }

  private startPing(): void {
    this.stopPing()
    const period = this.options.pingIntervalMs ?? 5000
    if (period > 0) this.pingTimer = setInterval(() => this.ping().catch(noop), period)
  }

  private stopPing(): void {
    if (this.pingTimer !== undefined) {
      clearInterval(this.pingTimer)
      this.pingTimer = undefined
    }
  }

  // ---- incoming -------------------------------------------------------------------------

  private onMessage(data: unknown): void {
    let bytes: Uint8Array
    if (data instanceof Uint8Array) bytes = data // `ws` with binaryType "nodebuffer" (a Buffer)
    else if (data instanceof ArrayBuffer) bytes = new Uint8Array(data)
    else if (ArrayBuffer.isView(data)) bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
    else {
      this.emit("error", new TesseraError(ErrorCode.BadFrame, "server sent a non-binary frame"))
      return
    }
    const stats = this.stats
    stats.msgsIn++
    stats.bytesIn += bytes.byteLength

    if (!this.decodeSnapshots && isSnapshotFrame(bytes)) {
      stats.snapshots++
      const own = this.entityId
      if (!this.trackAcks || own === undefined || !this.acks.pending) return
      const loc = this.location
      if (locateSnapshotEntities(bytes, loc)) {
        const seq = findAckedSeq(bytes.subarray(loc.offset, loc.offset + loc.length), own)
        if (seq !== undefined) this.onOwnAck(seq)
        return
      }
      // unusual encoding: fall through to the codec
      stats.snapshots--
    }

    let frame: unknown
    try {
      frame = decode(bytes)
    } catch (cause) {
      this.emit("error", new TesseraError(ErrorCode.BadFrame, `undecodable server frame: ${String(cause)}`))
      return
    }
    if (!Array.isArray(frame) || frame.length === 0) {
      this.emit("error", new TesseraError(ErrorCode.BadShape, "server frame is not an array"))
      return
    }
    switch (frame[0]) {
      case ServerOp.Snapshot:
        return this.onSnapshot(frame)
      case ServerOp.Welcome:
        return this.onWelcome(frame)
      case ServerOp.Joined:
        return this.onJoined(frame)
      case ServerOp.Chat: {
        if (frame.length < 6) return this.badFrame("chat")
        this.emit("chat", toChatMessage(frame[1] as ChatChannel, frame[2], frame[3], frame[4], frame[5], frame[6]))
        return
      }
      case ServerOp.ChatHistory: {
        const channel = frame[1] as ChatChannel
        const entries: unknown = frame[2]
        if (!Array.isArray(entries)) return this.badFrame("chat history")
        const messages: Array<ChatMessage> = []
        for (const e of entries) {
          if (Array.isArray(e)) messages.push(toChatMessage(channel, e[0], e[1], e[2], e[3], undefined))
        }
        this.emit("chatHistory", channel, messages)
        return
      }
      case ServerOp.Error:
        return this.onError(String(frame[1]), String(frame[2] ?? ""))
      case ServerOp.Pong:
        return this.onPong(frame[1], frame[2])
      case ServerOp.Left:
        return this.onLeft(typeof frame[1] === "string" ? frame[1] : "")
      case ServerOp.Moved:
        return this.onMoved(frame)
      case ServerOp.MatchQueued:
      case ServerOp.MatchFound:
      case ServerOp.MatchReady:
      case ServerOp.MatchEnded:
        return this.onMatchFrame(frame)
      case ServerOp.WorldEdits: {
        if (typeof frame[1] !== "string" || !Array.isArray(frame[2])) return this.badFrame("world edits")
        const changes = this.editsView.apply(frame[1], frame[2])
        if (this.hasListeners("worldEdit")) for (const change of changes) this.emit("worldEdit", change)
        return
      }
      default:
        this.emit("error", new TesseraError(ErrorCode.UnknownOp, `unknown server opcode ${String(frame[0])}`))
    }
  }

  private badFrame(what: string): void {
    this.emit("error", new TesseraError(ErrorCode.BadShape, `malformed ${what} frame from the server`))
  }

  private onSnapshot(frame: Array<unknown>): void {
    const regionId = frame[1]
    const cellKey = frame[2]
    const tick = frame[3]
    const entities = frame[4]
    if (
      typeof regionId !== "string" ||
      typeof cellKey !== "string" ||
      typeof tick !== "number" ||
      !(entities instanceof Uint8Array)
    ) {
      return this.badFrame("snapshot")
    }
    this.stats.snapshots++
    if (this.decodeSnapshots) {
      const own = this.world.apply(regionId, cellKey, tick, entities)
      if (own >= 0 && this.trackAcks) this.onOwnAck(own)
      if (this.hasListeners("snapshot")) this.emit("snapshot", regionId, cellKey, tick)
    } else if (this.trackAcks && this.entityId !== undefined) {
      const seq = findAckedSeq(entities, this.entityId)
      if (seq !== undefined) this.onOwnAck(seq)
    }
  }

  private onOwnAck(seq: number): void {
    const latency = this.acks.acked(seq, this.now(), this.onAckSample)
    if (latency >= 0 && this.hasListeners("ack")) this.emit("ack", seq, latency)
  }

  private onWelcome(frame: Array<unknown>): void {
    const [, serverVersion, protocolVersion, tickRate, playerId, resumeToken, resumed] = frame
    if (typeof playerId !== "string" || typeof resumeToken !== "string") return this.badFrame("welcome")
    const info: WelcomeInfo = {
      serverVersion: String(serverVersion),
      protocolVersion: Number(protocolVersion),
      tickRate: Number(tickRate),
      playerId,
      resumeToken,
      resumed: resumed === true
    }
    this.welcome = info
    this.playerId = playerId
    this.resumeToken = resumeToken
    const isReconnect = this.everWelcomed
    this.everWelcomed = true
    this.reconnectAttempt = 0
    this.failedBeforeWelcome = 0
    this.state = "open"
    this.startPing()
    const pw = this.pendingWelcome
    if (pw !== undefined) {
      this.pendingWelcome = undefined
      clearTimeout(pw.timer)
      pw.resolve(info)
    }
    if (!info.resumed) {
      // A fresh session: whatever world we were in is gone.
      this.inWorld = false
      this.entityId = undefined
      this.joined = undefined
      this.world.reset()
      this.editsView.reset()
    }
    this.emit("welcome", info)
    if (isReconnect) {
      this.emit("reconnected", info.resumed)
      const experience = this.rejoinExperience
      if (!info.resumed && experience !== undefined) {
        // The server may put a session it still holds back into its world right
        // after Welcome (a Joined frame follows); rejoin only if it did not.
        setTimeout(() => this.rejoin(experience), 0)
      }
    }
  }

  private rejoin(experience: string): void {
    if (this.inWorld || this.state !== "open" || this.rejoinExperience !== experience) return
    this.join(experience).catch((error: unknown) => {
      if (this.inWorld) return // already_in_world after an unsolicited Joined
      this.emit("error", error instanceof TesseraError ? error : new TesseraError(ErrorCode.Internal, String(error)))
    })
  }

  private onJoined(frame: Array<unknown>): void {
    const [, experienceId, worldId, regionId, entityId, x, y, z, tickRate, cellSize] = frame
    if (typeof entityId !== "number" || typeof experienceId !== "string") return this.badFrame("joined")
    const info: JoinedInfo = {
      experienceId,
      worldId: String(worldId),
      regionId: String(regionId),
      entityId,
      x: Number(x),
      y: Number(y),
      z: Number(z),
      tickRate: Number(tickRate),
      cellSize: Number(cellSize)
    }
    this.joined = info
    this.entityId = entityId
    this.inWorld = true
    this.rejoinExperience = experienceId
    this.world.reset(entityId)
    // A region's edits reach the client just before its Joined: keep them when they are of this world.
    if (this.editsView.worldId !== info.worldId) this.editsView.reset(info.worldId)
    const pj = this.pendingJoin
    if (pj !== undefined) {
      this.pendingJoin = undefined
      clearTimeout(pj.timer)
      pj.resolve(info)
    }
    this.emit("joined", info)
  }

  /** Out of any world: no entity, an empty view. */
  private leaveWorldView(): void {
    this.inWorld = false
    this.entityId = undefined
    this.joined = undefined
    this.world.reset()
    this.editsView.reset()
  }

  private onMoved(frame: Array<unknown>): void {
    const [, fromWorld, toWorld, reason] = frame
    if ((fromWorld !== null && typeof fromWorld !== "string") || (toWorld !== null && typeof toWorld !== "string")) {
      return this.badFrame("moved")
    }
    // The old world's view goes now (its snapshots stopped); the new one's Joined follows.
    this.leaveWorldView()
    if (toWorld === null) this.rejoinExperience = undefined
    this.emit("moved", { fromWorld, toWorld, reason: typeof reason === "string" ? reason : "" })
  }

  private onLeft(reason: string): void {
    this.leaveWorldView()
    this.rejoinExperience = undefined
    const pl = this.pendingLeave
    if (pl !== undefined) {
      this.pendingLeave = undefined
      clearTimeout(pl.timer)
      pl.resolve(reason)
    }
    this.emit("left", reason)
  }

  private onError(code: string, message: string): void {
    const error = new TesseraError(code, message)
    const pq = this.pendingMatchQueue
    if (pq !== undefined && matchQueueErrorCodes.has(code)) {
      this.pendingMatchQueue = undefined
      clearTimeout(pq.timer)
      pq.reject(error)
    }
    const pj = this.pendingJoin
    if (pj !== undefined && joinErrorCodes.has(code)) {
      this.pendingJoin = undefined
      clearTimeout(pj.timer)
      pj.reject(error)
    }
    const pl = this.pendingLeave
    if (pl !== undefined && code === ErrorCode.NotInWorld) {
      this.pendingLeave = undefined
      clearTimeout(pl.timer)
      pl.reject(error)
    }
    this.emit("error", error)
  }

  private onPong(clientTime: unknown, serverTime: unknown): void {
    if (typeof clientTime !== "number") return this.badFrame("pong")
    const now = this.now()
    const rtt = now - clientTime
    this.rttMs = rtt
    // Resolve every ping sent up to the echoed time (pongs are answered in order).
    const pings = this.pendingPings
    let n = 0
    while (n < pings.length && pings[n].sentAt <= clientTime) n++
    if (n > 0) {
      for (const p of pings.splice(0, n)) {
        clearTimeout(p.timer)
        p.resolve(now - p.sentAt)
      }
    }
    if (this.hasListeners("pong")) this.emit("pong", rtt, typeof serverTime === "number" ? serverTime : Number.NaN)
  }
}
