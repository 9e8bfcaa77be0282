import { Cause, Effect, Exit } from "effect"
import type { HttpRequest, HttpResponse, TemplatedApp, us_socket_context_t } from "uWebSockets.js"
import type { TesseraConfig } from "../config/TesseraConfig.js"
import { instanceChannelKey, routeChat, worldChannelKey } from "../experts/ExpertRouter.js"
import type { ChatEntity } from "../experts/chat/ChatEntity.js"
import { matchQueueKey, type MatchmakerEntity, queueKeyOfId } from "../experts/matchmaking/MatchmakerEntity.js"
import * as Metrics from "../observability/Metrics.js"
import { decode, encode } from "../protocol/Codec.js"
import { GameError } from "../protocol/GameError.js"
import type { JoinedInfo } from "../protocol/Location.js"
import {
  type ChatHistoryFrame,
  type JoinedFrame,
  type MatchQueueFrame,
  type MovedFrame,
  parseClientFrame,
  type ServerFrame,
  type WorldEditFrame
} from "../protocol/Messages.js"
import { ChatChannel, ClientOp, CloseCode, ErrorCode, PROTOCOL_VERSION, ServerOp } from "../protocol/Opcodes.js"
import { cellsAround, neighbourhoodDiff } from "../region/InterestGrid.js"
import { cellTopic, chatTopic } from "../region/WorldIds.js"
import type { SessionEntity } from "../session/SessionEntity.js"
import type { Auth, PlayerClaims } from "./Auth.js"
import type { Presence } from "../storage/redis/Presence.js"
import type { ControlEvents } from "../control/ControlEvents.js"
import type { ClusterGatewayPort, TopicSubscriptionSink } from "./ClientDeliveryRedis.js"
import { clientIp } from "./HttpApi.js"
import type { ClientSocket, Connection } from "./Connection.js"
import type { InputRouter } from "./InputRouter.js"
import { takeAsPromise } from "./IpRateLimits.js"
import type { SharedRateLimiter } from "./RateLimiterRedis.js"
import { TokenBucket } from "./TokenBucket.js"

type Client<T extends Effect.Effect<any, any, any>> = Effect.Effect.Success<T>

export interface WebSocketDeps {
  readonly config: TesseraConfig
  readonly serverVersion: string
  readonly gatewayId: string
  readonly auth: Auth["Type"]
  readonly sessions: Client<typeof SessionEntity.client>
  readonly chat: Client<typeof ChatEntity.client>
  /** The matchmaking expert, one entity per (experience, mode) queue. */
  readonly matchmakers: Client<typeof MatchmakerEntity.client>
  readonly inputs: InputRouter
  /** WebSocket upgrades per IP (shared by every gateway when Redis is on). */
  readonly ipLimiter: SharedRateLimiter["Type"]
  readonly run: <A, E>(effect: Effect.Effect<A, E>, onExit: (exit: Exit.Exit<A, E>) => void) => void
  readonly isAccepting: () => boolean
  /** Where topic subscriptions are reported (across nodes: Redis channels follow local subscribers). */
  readonly topics: TopicSubscriptionSink
  readonly presence: Presence["Type"]
  /** This process's control event bus: PlayerConnected / PlayerDisconnected (actor "system"). */
  readonly controlEvents?: ControlEvents["Type"]
}

/** The gateway's copy of where the player is, handed to its session with every call. */
const knownLocation = (c: Connection) =>
  c.regionId !== null && c.worldId !== null && c.experienceId !== null
    ? { experienceId: c.experienceId, worldId: c.worldId, regionId: c.regionId }
    : null

/** A refused upgrade: a plain HTTP answer with a JSON error (call inside res.cork when async). */
const refuse = (res: HttpResponse, status: string, code: string, message: string): void => {
  res.writeStatus(status).writeHeader("content-type", "application/json").end(JSON.stringify({ error: { code, message } }))
}

/** A WebSocket close reason holds at most 123 bytes of UTF-8: longer text is cut at a character boundary. */
export const closeReason = (text: string): string => {
  if (Buffer.byteLength(text) <= 123) return text
  let out = ""
  let bytes = 0
  for (const ch of text) {
    const n = Buffer.byteLength(ch)
    if (bytes + n > 120) break
    out += ch
    bytes += n
  }
  return `${out}...`
}

const THROTTLED_ERROR_INTERVAL_MS = 1000
/** Longest wait for a matchmaking queue's answer. */
const MATCHMAKER_TIMEOUT_MS = 5000
/** A socket whose send buffer stays over the limit this long is dropped. */
const LAGGING_GRACE_MS = 5000

/**
 * The WebSocket side of the gateway: authenticated upgrade, the synchronous
 * decode/validate/route of every client frame, per-player sends with
 * backpressure checks, and topic subscriptions that follow the player's cell.
 */
export class WebSocketHandler implements ClusterGatewayPort {
  /** Connections of this gateway by player id (one per player). */
  private readonly byPlayer = new Map<string, ClientSocket>()
  private nextConnection = 1
  private readonly radius: number
  private readonly maxBuffered: number
  /** Experiences whose world is open (the only ones players may edit). */
  private readonly openExperiences: ReadonlySet<string>

  constructor(private readonly deps: WebSocketDeps) {
    this.radius = deps.config.region.interestRadius
    this.maxBuffered = deps.config.gateway.maxBackpressureBytes
    this.openExperiences = new Set(deps.config.experiences.filter((e) => e.world === "open").map((e) => e.id))
  }

  get connectionCount(): number {
    return this.byPlayer.size
  }

  get gatewayId(): string {
    return this.deps.gatewayId
  }

  hasPlayer(playerId: string): boolean {
    return this.byPlayer.has(playerId)
  }

  install(app: TemplatedApp): void {
    const { config } = this.deps
    app.ws<Connection>("/v1/ws", {
      compression: 0,
      // uWS's hard cap sits above ours so an oversize frame gets a clear error instead of a bare close.
      maxPayloadLength: Math.max(config.gateway.maxPayloadBytes * 4, 16 * 1024),
      maxBackpressure: this.maxBuffered,
      closeOnBackpressureLimit: 0,
      idleTimeout: config.gateway.idleTimeoutSeconds,
      sendPingsAutomatically: true,
      upgrade: (res, req, context) => this.upgrade(res, req, context),
      open: (ws) => this.open(ws),
      message: (ws, message) => this.message(ws, message),
      close: (ws, code, message) => this.close(ws, code, message)
    })
  }

  // ---- lifecycle ---------------------------------------------------------------

  private upgrade(res: HttpResponse, req: HttpRequest, context: us_socket_context_t): void {
    const token = req.getQuery("token") ?? ""
    const resume = req.getQuery("resume") ?? ""
    const key = req.getHeader("sec-websocket-key")
    const protocol = req.getHeader("sec-websocket-protocol")
    const extensions = req.getHeader("sec-websocket-extensions")
    const ip = clientIp(res)
    let aborted = false
    res.onAborted(() => {
      aborted = true
    })
    if (!this.deps.isAccepting()) {
      return refuse(res, "503 Service Unavailable", "shutting_down", "server is shutting down")
    }
    // The per-IP take (a Redis round trip across gateways) runs alongside the token check.
    Promise.all([takeAsPromise(this.deps.run, this.deps.ipLimiter, ip), this.deps.auth.verify(token)]).then(
      ([allowed, claims]) => {
        if (aborted) return
        res.cork(() => this.upgradeChecked(res, context, allowed, claims, { ip, resume, key, protocol, extensions }))
      }
    )
  }

  /** The answer to an upgrade once the IP limit and the token are known (inside res.cork). */
  private upgradeChecked(
    res: HttpResponse,
    context: us_socket_context_t,
    allowed: boolean,
    claims: PlayerClaims | undefined,
    request: {
      readonly ip: string
      readonly resume: string
      readonly key: string
      readonly protocol: string
      readonly extensions: string
    }
  ): void {
    if (!allowed) {
      Metrics.authTotal.limited.inc()
      return refuse(res, "429 Too Many Requests", "rate_limited", "too many connections from this address; retry later")
    }
    if (!this.deps.isAccepting()) {
      return refuse(res, "503 Service Unavailable", "shutting_down", "server is shutting down")
    }
    if (claims === undefined) {
      Metrics.authTotal.rejected.inc()
      return refuse(res, "401 Unauthorized", "unauthorized", "a valid token is required (?token=...)")
    }
    const { ip, resume, key, protocol, extensions } = request
    const connection: Connection = {
      connectionId: `${this.deps.gatewayId}/${this.nextConnection++}`,
      playerId: claims.playerId,
      name: claims.name,
      ip,
      offeredResume: resume,
      bucket: new TokenBucket(this.deps.config.gateway.messagesPerSecond, this.deps.config.gateway.messageBurst),
      resumeToken: "",
      welcomed: false,
      closed: false,
      joining: false,
      experienceId: null,
      worldId: null,
      regionId: null,
      entityId: 0,
      cellKey: null,
      topics: new Set(),
      badMessages: 0,
      lastThrottledErrorAt: 0,
      laggingSince: 0
    }
    res.upgrade(connection, key, protocol, extensions, context)
  }

  private open(ws: ClientSocket): void {
    const c = ws.getUserData()
    Metrics.connections.inc()
    Metrics.connectionsTotal.inc()
    const previous = this.byPlayer.get(c.playerId)
    if (previous !== undefined) this.replace(previous)
    this.byPlayer.set(c.playerId, ws)
    const payload = c.offeredResume === ""
      ? { gatewayId: this.deps.gatewayId, connectionId: c.connectionId }
      : { gatewayId: this.deps.gatewayId, connectionId: c.connectionId, resumeToken: c.offeredResume }
    this.deps.run(this.deps.sessions(c.playerId).Connect(payload), (exit) => {
      if (Exit.isFailure(exit)) {
        if (!c.closed) ws.end(CloseCode.ServerShutdown, "session unavailable, reconnect")
        return
      }
      const result = exit.value
      c.resumeToken = result.resumeToken
      if (c.closed) {
        // The socket went away while the session was connecting: hand the session back its state.
        this.disconnectSession(c)
        return
      }
      if (result.replaced !== null) {
        const old = this.byConnectionId(result.replaced.connectionId)
        if (old !== undefined && old !== ws) this.replace(old)
      }
      c.welcomed = true
      this.deps.run(this.deps.presence.online(c.playerId, this.deps.gatewayId, null), () => {})
      const control = this.deps.controlEvents
      if (control !== undefined) {
        this.deps.run(control.publish("system", { _tag: "PlayerConnected", playerId: c.playerId, gateway: this.deps.gatewayId }), () => {})
      }
      this.send(ws, [
        ServerOp.Welcome,
        this.deps.serverVersion,
        PROTOCOL_VERSION,
        this.deps.config.experiences[0]?.tickRate ?? 20,
        c.playerId,
        result.resumeToken,
        result.resumed
      ])
      if (result.joined !== null) this.enterWorld(ws, result.joined, false)
    })
  }

  private close(ws: ClientSocket, code: number, message: ArrayBuffer): void {
    const c = ws.getUserData()
    c.closed = true
    this.deps.run(
      Effect.logDebug(`connection closed (${code} ${Buffer.from(message).toString()})`).pipe(
        Effect.annotateLogs({ playerId: c.playerId, connectionId: c.connectionId, welcomed: c.welcomed })
      ),
      () => {}
    )
    Metrics.connections.dec()
    // uWS drops a closed socket's subscriptions silently: report them from what we know it had.
    for (const topic of c.topics) this.deps.topics.unsubscribed(topic)
    c.topics.clear()
    const current = this.byPlayer.get(c.playerId) === ws
    if (current) this.byPlayer.delete(c.playerId)
    // A player gone from its last connection leaves the matchmaking queue (with its party).
    if (current && this.matchPlayers.delete(c.playerId)) this.matchCancel(undefined, c, `player "${c.playerId}" disconnected`)
    if (c.welcomed) {
      this.disconnectSession(c)
      this.deps.run(this.deps.presence.offline(c.playerId, this.deps.gatewayId), () => {})
      const control = this.deps.controlEvents
      if (control !== undefined) {
        const reason = `connection closed (${code}${message.byteLength > 0 ? ` ${Buffer.from(message).toString().slice(0, 120)}` : ""})`
        this.deps.run(control.publish("system", { _tag: "PlayerDisconnected", playerId: c.playerId, reason }), () => {})
      }
    }
  }

  private disconnectSession(c: Connection): void {
    this.deps.run(
      this.deps.sessions(c.playerId).Disconnect({
        connectionId: c.connectionId,
        resumeToken: c.resumeToken,
        location: knownLocation(c)
      }),
      () => {}
    )
  }

  private replace(ws: ClientSocket): void {
    const c = ws.getUserData()
    if (c.closed) return
    Metrics.clientsDroppedTotal.replaced.inc()
    ws.end(CloseCode.Replaced, "replaced by a newer connection of the same player")
  }

  private byConnectionId(connectionId: string): ClientSocket | undefined {
    for (const ws of this.byPlayer.values()) if (ws.getUserData().connectionId === connectionId) return ws
    return undefined
  }

  // ---- client frames -------------------------------------------------------------

  private message(ws: ClientSocket, message: ArrayBuffer): void {
    const c = ws.getUserData()
    const now = Date.now()
    Metrics.messagesInTotal.inc()
    Metrics.bytesInTotal.inc(message.byteLength)
    if (!c.bucket.take(now)) {
      Metrics.messagesRejectedTotal.rate_limited.inc()
      this.throttledError(ws, c, now, ErrorCode.RateLimited, "too many messages; slow down")
      return
    }
    if (message.byteLength > this.deps.config.gateway.maxPayloadBytes) {
      Metrics.messagesRejectedTotal.too_large.inc()
      return this.reject(ws, c, ErrorCode.TooLarge, `frame of ${message.byteLength} bytes exceeds ${this.deps.config.gateway.maxPayloadBytes}`)
    }
    let value: unknown
    try {
      // Decoded synchronously: uWS neuters the ArrayBuffer when this callback returns.
      value = decode(new Uint8Array(message))
    } catch {
      Metrics.messagesRejectedTotal.bad_frame.inc()
      return this.reject(ws, c, ErrorCode.BadFrame, "frame is not valid msgpack")
    }
    const parsed = parseClientFrame(value, this.deps.config.chat.maxLength)
    if (!parsed.ok) {
      if (parsed.code === ErrorCode.UnknownOp) Metrics.messagesRejectedTotal.unknown_op.inc()
      else Metrics.messagesRejectedTotal.bad_shape.inc()
      return this.reject(ws, c, parsed.code, parsed.message)
    }
    if (!c.welcomed) return this.send(ws, [ServerOp.Error, ErrorCode.NotInWorld, "wait for the welcome frame"])
    const frame = parsed.frame
    switch (frame[0]) {
      case ClientOp.Input: {
        if (c.regionId === null) {
          return this.throttledError(ws, c, now, ErrorCode.NotInWorld, "join a world before sending input")
        }
        this.deps.inputs.push(c.regionId, c.entityId, frame[1], frame[2], frame[3], frame[4], frame[5])
        Metrics.inputsTotal.inc()
        return
      }
      case ClientOp.Ping:
        return this.send(ws, [ServerOp.Pong, frame[1], now])
      case ClientOp.Join:
        return this.join(ws, c, frame[1])
      case ClientOp.Leave:
        return this.leave(ws, c)
      case ClientOp.Chat:
        return this.chat(ws, c, frame[1], frame[2], frame[3])
      case ClientOp.WorldEdit:
        return this.worldEdit(ws, c, frame)
      case ClientOp.MatchQueue:
        return this.matchQueue(ws, c, frame)
      case ClientOp.MatchCancel:
        return this.matchCancel(ws, c, `cancelled by "${c.playerId}"`)
      case ClientOp.MatchAccept:
      case ClientOp.MatchDecline:
        return this.matchAnswer(ws, c, frame[0] === ClientOp.MatchAccept, frame[1])
    }
  }

  // ---- matchmaking (each queue is an expert entity keyed by experience and mode) ----------

  /** Players of this gateway that used matchmaking: their tickets are cancelled when they disconnect. */
  private readonly matchPlayers = new Set<string>()

  /** A matchmaker call, bounded (a group no runner hosts would otherwise retry forever). */
  private matchCall<A, E>(effect: Effect.Effect<A, E, never>): Effect.Effect<A, GameError> {
    return effect.pipe(
      Effect.mapError((error) =>
        error instanceof GameError ? error : new GameError({ code: ErrorCode.Internal, message: "matchmaking is not available" })
      ),
      Effect.timeoutFail({
        duration: MATCHMAKER_TIMEOUT_MS,
        onTimeout: () => new GameError({ code: ErrorCode.Internal, message: "matchmaking did not answer in time" })
      })
    )
  }

  private matchQueue(ws: ClientSocket, c: Connection, frame: MatchQueueFrame): void {
    const [, experienceId, mode, party, skill, latencies] = frame
    const modes = this.deps.config.matchmaking.modes
    const modeConfig = modes.find((m) => m.experience === experienceId && m.mode === mode)
    if (modeConfig === undefined) {
      const known = modes.map((m) => `${m.experience}/${m.mode}`).join(", ") || "none"
      return this.send(ws, [ServerOp.Error, ErrorCode.MatchRejected, `no matchmaking mode "${mode}" for experience "${experienceId}" (known: ${known})`])
    }
    if (party.includes(c.playerId)) {
      return this.send(ws, [ServerOp.Error, ErrorCode.BadShape, "match queue party lists the other members only, not yourself"])
    }
    if (party.length + 1 > modeConfig.matchSize) {
      return this.send(ws, [
        ServerOp.Error,
        ErrorCode.MatchRejected,
        `a party of ${party.length + 1} does not fit a match of ${modeConfig.matchSize} ("${mode}" of "${experienceId}")`
      ])
    }
    this.matchPlayers.add(c.playerId)
    const { presence, matchmakers } = this.deps
    const enqueue = Effect.gen(function*() {
      const gateways = yield* Effect.forEach(party, (member) => presence.gatewayOf(member), { concurrency: "unbounded" })
      const offline = party.filter((_, i) => gateways[i] === undefined)
      if (offline.length > 0) {
        return yield* new GameError({
          code: ErrorCode.MatchRejected,
          message: `every party member must be online; not online: ${offline.map((p) => `"${p}"`).join(", ")}`
        })
      }
      return yield* matchmakers(matchQueueKey(experienceId, mode)).Enqueue({
        players: [c.playerId, ...party].map((playerId) => ({ playerId, skill })),
        latencies,
        leaderExperienceId: c.experienceId
      })
    })
    this.deps.run(this.matchCall(enqueue), (exit) => {
      if (!c.closed && Exit.isFailure(exit)) this.sendFailure(ws, exit.cause)
    })
  }

  /**
   * Cancels the player's ticket wherever it is queued: the frame names no
   * queue, so every configured queue is asked (there are few; cancels are
   * rare). `ws` undefined: the player disconnected, nobody to answer.
   */
  private matchCancel(ws: ClientSocket | undefined, c: Connection, reason: string): void {
    const modes = this.deps.config.matchmaking.modes
    const { matchmakers } = this.deps
    const cancels = Effect.forEach(
      modes,
      (m) => Effect.either(this.matchCall(matchmakers(matchQueueKey(m.experience, m.mode)).Cancel({ playerId: c.playerId, reason }))),
      { concurrency: "unbounded" }
    )
    this.deps.run(cancels, (exit) => {
      if (ws === undefined || c.closed) return
      if (Exit.isSuccess(exit) && exit.value.some((r) => r._tag === "Right")) return
      this.send(ws, [ServerOp.Error, ErrorCode.NotQueued, "you are not in a matchmaking queue"])
    })
  }

  private matchAnswer(ws: ClientSocket, c: Connection, accepted: boolean, matchId: string): void {
    const key = queueKeyOfId(matchId)
    const known = key !== undefined && this.deps.config.matchmaking.modes.some((m) => matchQueueKey(m.experience, m.mode) === key)
    if (!known) return this.send(ws, [ServerOp.Error, ErrorCode.NotQueued, `no match "${matchId}"`])
    this.matchPlayers.add(c.playerId)
    const queue = this.deps.matchmakers(key)
    const answer = accepted ? queue.Accept({ playerId: c.playerId, matchId }) : queue.Decline({ playerId: c.playerId, matchId })
    this.deps.run(this.matchCall(answer), (exit) => {
      if (!c.closed && Exit.isFailure(exit)) this.sendFailure(ws, exit.cause)
    })
  }

  /**
   * A world edit goes to the region holding the player's entity: a direct
   * call when it is co-located, else one Edit entity message. The per-connection
   * message limit above already applies to it. Accepted edits are answered by
   * the WorldEdits frame the region publishes once the edit is stored.
   */
  private worldEdit(ws: ClientSocket, c: Connection, frame: WorldEditFrame): void {
    if (c.regionId === null || c.experienceId === null || !this.openExperiences.has(c.experienceId)) {
      return this.send(ws, [ServerOp.Error, ErrorCode.NotInWorld, "world edits are for open worlds"])
    }
    const [, key, x, y, z, value] = frame
    const result = this.deps.inputs.edit(c.regionId, c.playerId, { key, x, y, z, value })
    if (Effect.isEffect(result)) {
      return this.deps.run(result, (exit) => {
        if (!c.closed && Exit.isFailure(exit)) this.sendFailure(ws, exit.cause)
      })
    }
    if (!result.ok) this.send(ws, [ServerOp.Error, result.code, result.message])
  }

  private join(ws: ClientSocket, c: Connection, experienceId: string): void {
    if (c.joining) return this.send(ws, [ServerOp.Error, ErrorCode.AlreadyInWorld, "a join is already in progress"])
    c.joining = true
    this.deps.run(
      this.deps.sessions(c.playerId).JoinWorld({ experienceId, gatewayId: this.deps.gatewayId, known: knownLocation(c) }),
      (exit) => {
        c.joining = false
        if (c.closed) return
        if (Exit.isSuccess(exit)) return this.enterWorld(ws, exit.value, true)
        this.sendFailure(ws, exit.cause)
      }
    )
  }

  private leave(ws: ClientSocket, c: Connection): void {
    this.deps.run(this.deps.sessions(c.playerId).LeaveWorld({ known: knownLocation(c) }), (exit) => {
      if (c.closed) return
      this.exitWorld(ws, c)
      if (Exit.isSuccess(exit)) this.send(ws, [ServerOp.Left, "left"])
      else this.sendFailure(ws, exit.cause)
    })
  }

  private chat(ws: ClientSocket, c: Connection, channel: ChatChannel, text: string, to: string | undefined): void {
    const route = routeChat(channel, { playerId: c.playerId, experienceId: c.experienceId, worldId: c.worldId }, to)
    if (route === undefined) {
      return this.send(ws, [ServerOp.Error, ErrorCode.NotInWorld, "join a world to use this chat channel"])
    }
    this.deps.run(
      this.deps.chat(route.key).Send({ fromPlayerId: c.playerId, fromName: c.name, text, to: to ?? null }),
      (exit) => {
        if (!c.closed && Exit.isFailure(exit)) this.sendFailure(ws, exit.cause)
      }
    )
  }

  // ---- world membership ------------------------------------------------------------

  private enterWorld(ws: ClientSocket, joined: JoinedInfo, sendHistory: boolean): void {
    const c = ws.getUserData()
    if (c.regionId !== null && c.regionId !== joined.regionId) this.exitWorld(ws, c, false)
    const enteringWorld = c.worldId !== joined.worldId
    c.experienceId = joined.experienceId
    c.worldId = joined.worldId
    c.regionId = joined.regionId
    c.entityId = joined.entityId
    ws.cork(() => {
      if (c.cellKey !== joined.cellKey) {
        this.moveSubscriptions(ws, joined.regionId, c.cellKey, joined.cellKey)
        c.cellKey = joined.cellKey
      }
      if (enteringWorld) {
        this.subscribe(ws, chatTopic(worldChannelKey(joined.experienceId)))
        this.subscribe(ws, chatTopic(instanceChannelKey(joined.worldId)))
        this.deps.run(this.deps.presence.online(c.playerId, this.deps.gatewayId, joined.experienceId), () => {})
      }
      const frame: JoinedFrame = [
        ServerOp.Joined,
        joined.experienceId,
        joined.worldId,
        joined.regionId,
        joined.entityId,
        joined.x,
        joined.y,
        joined.z,
        joined.tickRate,
        joined.cellSize
      ]
      this.sendCorked(ws, encode(frame))
    })
    if (sendHistory) this.sendHistory(ws, c, joined)
  }

  private sendHistory(ws: ClientSocket, c: Connection, joined: JoinedInfo): void {
    const limit = this.deps.config.chat.historySize
    const channels = [
      [ChatChannel.World, worldChannelKey(joined.experienceId)],
      [ChatChannel.Instance, instanceChannelKey(joined.worldId)]
    ] as const
    for (const [channel, key] of channels) {
      this.deps.run(this.deps.chat(key).History({ limit }), (exit) => {
        if (c.closed || !Exit.isSuccess(exit)) return
        const frame: ChatHistoryFrame = [ServerOp.ChatHistory, channel, exit.value]
        this.send(ws, frame)
      })
    }
  }

  /** `announce` false: the player enters another world right after (presence is set by enterWorld). */
  private exitWorld(ws: ClientSocket, c: Connection, announce = true): void {
    if (c.regionId !== null) this.moveSubscriptions(ws, c.regionId, c.cellKey, undefined)
    if (c.experienceId !== null) {
      this.unsubscribe(ws, chatTopic(worldChannelKey(c.experienceId)))
      if (announce) this.deps.run(this.deps.presence.online(c.playerId, this.deps.gatewayId, null), () => {})
    }
    if (c.worldId !== null) this.unsubscribe(ws, chatTopic(instanceChannelKey(c.worldId)))
    c.experienceId = null
    c.worldId = null
    c.regionId = null
    c.entityId = 0
    c.cellKey = null
  }

  private moveSubscriptions(ws: ClientSocket, regionId: string, from: string | null | undefined, to: string | undefined) {
    if (from == null) {
      if (to !== undefined) for (const key of cellsAround(to, this.radius)) this.subscribe(ws, cellTopic(regionId, key))
      return
    }
    if (to === undefined) {
      for (const key of cellsAround(from, this.radius)) this.unsubscribe(ws, cellTopic(regionId, key))
      return
    }
    const diff = neighbourhoodDiff(from, to, this.radius)
    for (const key of diff.unsubscribe) this.unsubscribe(ws, cellTopic(regionId, key))
    for (const key of diff.subscribe) this.subscribe(ws, cellTopic(regionId, key))
  }

  /** Every subscription goes through here so the topic sink sees exactly the real changes. */
  private subscribe(ws: ClientSocket, topic: string): void {
    const c = ws.getUserData()
    if (c.topics.has(topic)) return
    c.topics.add(topic)
    ws.subscribe(topic)
    this.deps.topics.subscribed(topic)
  }

  private unsubscribe(ws: ClientSocket, topic: string): void {
    const c = ws.getUserData()
    if (!c.topics.delete(topic)) return
    ws.unsubscribe(topic)
    this.deps.topics.unsubscribed(topic)
  }

  // ---- GatewayPort (regions and experts reach clients through these) ----------------

  private app: TemplatedApp | undefined
  attachApp(app: TemplatedApp): void {
    this.app = app
  }

  publish(topic: string, frame: Uint8Array): void {
    this.app?.publish(topic, frame, true, false)
  }

  sendToPlayer(playerId: string, frame: Uint8Array): boolean {
    const ws = this.byPlayer.get(playerId)
    if (ws === undefined) return false
    ws.cork(() => this.sendCorked(ws, frame))
    return true
  }

  moveCells(
    playerId: string,
    regionId: string,
    _fromCell: string | undefined,
    toCell: string | undefined,
    fromRegion?: string
  ): void {
    const ws = this.byPlayer.get(playerId)
    if (ws === undefined) return
    const c = ws.getUserData()
    if (fromRegion !== undefined && c.regionId === fromRegion && fromRegion !== regionId) {
      // Authority moved to a neighbouring region: inputs go there from now on, and the cells follow.
      ws.cork(() => this.moveSubscriptions(ws, fromRegion, c.cellKey, undefined))
      c.regionId = regionId
      c.cellKey = null
      Metrics.relocationsTotal.inc()
    }
    if (c.regionId !== regionId) return
    // Diff from what this socket is subscribed to, which may lag the region's view by a join reply.
    ws.cork(() => this.moveSubscriptions(ws, regionId, c.cellKey, toCell))
    c.cellKey = toCell ?? null
  }

  relocate(playerId: string, joined: JoinedInfo | null, reason: string): boolean {
    const ws = this.byPlayer.get(playerId)
    if (ws === undefined) return false
    const c = ws.getUserData()
    // Not welcomed yet: its Connect is in flight and answers with the session's new place itself.
    if (c.closed || !c.welcomed) return false
    const fromWorld = c.worldId
    Metrics.playerMovesTotal.inc()
    const moved: MovedFrame = [ServerOp.Moved, fromWorld, joined?.worldId ?? null, reason]
    ws.cork(() => {
      // Out of the old world first: no snapshot or chat of it follows the Moved frame.
      this.exitWorld(ws, c, joined === null)
      this.sendCorked(ws, encode(moved))
    })
    if (joined !== null) {
      this.enterWorld(ws, joined, true)
    } else {
      Metrics.clientsDroppedTotal.terminated.inc()
      ws.end(CloseCode.InstanceTerminated, closeReason(`instance terminated: ${reason}`))
    }
    return true
  }

  // ---- sending ------------------------------------------------------------------------

  private send(ws: ClientSocket, frame: ServerFrame): void {
    const bytes = encode(frame)
    ws.cork(() => this.sendCorked(ws, bytes))
  }

  /** Every per-player send checks backpressure: a lagging client loses frames, never buffers without bound. */
  private sendCorked(ws: ClientSocket, bytes: Uint8Array): void {
    if (ws.getBufferedAmount() > this.maxBuffered) {
      Metrics.messagesDroppedTotal.backpressure.inc()
      return
    }
    ws.send(bytes, true, false)
    Metrics.messagesOutTotal.inc()
    Metrics.bytesOutTotal.inc(bytes.byteLength)
  }

  private sendFailure(ws: ClientSocket, cause: Cause.Cause<unknown>): void {
    const failure = Cause.failureOption(cause)
    if (failure._tag === "Some" && failure.value instanceof GameError) {
      return this.send(ws, [ServerOp.Error, failure.value.code, failure.value.message])
    }
    this.send(ws, [ServerOp.Error, ErrorCode.Internal, "the server could not complete that request"])
  }

  /** A bad frame: a clear error to the sender; repeated abuse closes the connection. */
  private reject(ws: ClientSocket, c: Connection, code: ErrorCode, message: string): void {
    c.badMessages++
    if (c.badMessages > this.deps.config.gateway.maxBadMessages) {
      Metrics.clientsDroppedTotal.abuse.inc()
      ws.end(CloseCode.Abuse, "too many invalid messages")
      return
    }
    this.send(ws, [ServerOp.Error, code, message])
  }

  private throttledError(ws: ClientSocket, c: Connection, now: number, code: ErrorCode, message: string): void {
    if (now - c.lastThrottledErrorAt < THROTTLED_ERROR_INTERVAL_MS) return
    c.lastThrottledErrorAt = now
    this.send(ws, [ServerOp.Error, code, message])
  }

  // ---- periodic work --------------------------------------------------------------------

  /** Drops clients whose send buffer stayed over the limit for the grace period. */
  sweepLagging(now: number): void {
    for (const ws of this.byPlayer.values()) {
      const c = ws.getUserData()
      if (ws.getBufferedAmount() <= this.maxBuffered) {
        c.laggingSince = 0
      } else if (c.laggingSince === 0) {
        c.laggingSince = now
      } else if (now - c.laggingSince > LAGGING_GRACE_MS) {
        Metrics.clientsDroppedTotal.lagging.inc()
        ws.end(CloseCode.Lagging, "client too slow to keep up")
      }
    }
  }

  /** The entities this gateway's players have, by region (for lease renewal). */
  entitiesByRegion(): Map<string, Array<number>> {
    const byRegion = new Map<string, Array<number>>()
    for (const ws of this.byPlayer.values()) {
      const c = ws.getUserData()
      if (c.regionId === null) continue
      let ids = byRegion.get(c.regionId)
      if (ids === undefined) byRegion.set(c.regionId, (ids = []))
      ids.push(c.entityId)
    }
    return byRegion
  }

  /** Tells every client the server is going away (they reconnect with resume elsewhere or later). */
  closeAll(code: number, reason: string): void {
    for (const ws of [...this.byPlayer.values()]) ws.end(code, reason)
  }
}
