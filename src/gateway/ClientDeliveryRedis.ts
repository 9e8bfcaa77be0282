import { Context, Effect, Layer, Runtime, Schema } from "effect"
import { decode, encode } from "../protocol/Codec.js"
import { JoinedInfo } from "../protocol/Location.js"
import { decodePresenceEvent, PresenceMirror, presenceKeys, presenceSnapshot } from "../storage/redis/Presence.js"
import { RedisConnection } from "../storage/redis/RedisConnection.js"
import { ClientDelivery, type GatewayPort } from "./ClientDelivery.js"
import { TopicBridge, type TopicSubscriptionSink } from "./TopicBridge.js"

export type { TopicSubscriptionSink } from "./TopicBridge.js"

/**
 * What a gateway attaches when deliveries can come from other nodes: its id
 * (it receives player envelopes on `<prefix>g:<gatewayId>`) and whether a
 * player is connected here. A port without these still gets topic frames but
 * no per-player envelopes, and `moveCells` for it is always also forwarded.
 */
export interface ClusterGatewayPort extends GatewayPort {
  readonly gatewayId: string
  hasPlayer(playerId: string): boolean
}

export const isClusterGatewayPort = (port: GatewayPort): port is ClusterGatewayPort =>
  typeof (port as Partial<ClusterGatewayPort>).gatewayId === "string" &&
  typeof (port as Partial<ClusterGatewayPort>).hasPlayer === "function"

/**
 * Where the local gateway reports the topics its sockets subscribe to (see
 * `TopicSubscriptionSink`). One node: a no-op (uWS does everything). Several
 * nodes: the first local subscriber of a topic subscribes its Redis channel.
 */
export class TopicSubscriptions extends Context.Tag("tessera/TopicSubscriptions")<
  TopicSubscriptions,
  TopicSubscriptionSink
>() {
  static readonly layerLocal: Layer.Layer<TopicSubscriptions> = Layer.succeed(TopicSubscriptions, {
    subscribed: () => {},
    unsubscribed: () => {}
  })
}

/**
 * Envelope kinds on a gateway's channel: msgpack `[1, playerId, frame]` /
 * `[2, playerId, regionId, from|null, to|null, fromRegion?]` /
 * `[3, playerId, joined|null, reason]` (joined: a JoinedInfo map).
 */
export const EnvelopeKind = { Send: 1, MoveCells: 2, Relocate: 3 } as const

const isJoinedInfo = Schema.is(JoinedInfo)

export const encodeSendEnvelope = (playerId: string, frame: Uint8Array): Buffer => encode([EnvelopeKind.Send, playerId, frame])

export const encodeMoveEnvelope = (
  playerId: string,
  regionId: string,
  fromCell: string | undefined,
  toCell: string | undefined,
  fromRegion?: string
): Buffer =>
  encode(
    fromRegion === undefined
      ? [EnvelopeKind.MoveCells, playerId, regionId, fromCell ?? null, toCell ?? null]
      : [EnvelopeKind.MoveCells, playerId, regionId, fromCell ?? null, toCell ?? null, fromRegion]
  )

export const encodeRelocateEnvelope = (playerId: string, joined: JoinedInfo | null, reason: string): Buffer =>
  encode([EnvelopeKind.Relocate, playerId, joined, reason])

/** Applies one envelope to the port; false when malformed. */
export const dispatchEnvelope = (port: GatewayPort, bytes: Uint8Array): boolean => {
  let value: unknown
  try {
    value = decode(bytes)
  } catch {
    return false
  }
  if (!Array.isArray(value) || typeof value[1] !== "string") return false
  const playerId: string = value[1]
  switch (value[0]) {
    case EnvelopeKind.Send: {
      const frame: unknown = value[2]
      if (!(frame instanceof Uint8Array)) return false
      port.sendToPlayer(playerId, frame)
      return true
    }
    case EnvelopeKind.MoveCells: {
      const [, , regionId, from, to, fromRegion] = value as Array<unknown>
      if (typeof regionId !== "string") return false
      if (from !== null && typeof from !== "string") return false
      if (to !== null && typeof to !== "string") return false
      if (fromRegion !== undefined && typeof fromRegion !== "string") return false
      port.moveCells(playerId, regionId, from ?? undefined, to ?? undefined, fromRegion)
      return true
    }
    case EnvelopeKind.Relocate: {
      const [, , joined, reason] = value as Array<unknown>
      if (joined !== null && !isJoinedInfo(joined)) return false
      if (typeof reason !== "string") return false
      port.relocate(playerId, joined, reason)
      return true
    }
    default:
      return false
  }
}

const asBuffer = (frame: Uint8Array): Buffer =>
  Buffer.isBuffer(frame) ? frame : Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength)

const LOG_EVERY_MS = 10_000
/** Snapshot retry while the presence copy could not be loaded. */
const RELOAD_RETRY_MS = 1_000
const SUBSCRIBE_CHUNK = 1_000

const make = Effect.gen(function*() {
  const redis = yield* RedisConnection
  const { command, subscriber, prefix } = redis
  const runtime = yield* Effect.runtime<never>()
  const runFork = Runtime.runFork(runtime)

  const topicPrefix = `${prefix}t:`
  const gatewayChannel = (gatewayId: string) => `${prefix}g:${gatewayId}`
  const eventsChannel = presenceKeys(prefix).events

  let closed = false
  let lastLogAt = -Infinity
  let suppressed = 0
  /** Frames and envelopes not published because Redis was down or refused them. */
  let dropped = 0
  const warn = (message: string) => {
    const now = Date.now()
    if (now - lastLogAt < LOG_EVERY_MS) {
      suppressed++
      return
    }
    lastLogAt = now
    const more = suppressed > 0 ? ` (${suppressed} more since the last report)` : ""
    suppressed = 0
    runFork(Effect.logWarning(`${message}; ${dropped} frames dropped so far${more}`))
  }
  const onPublishError = (e: unknown) => {
    dropped++
    warn(`redis publish failed: ${e instanceof Error ? e.message : String(e)}`)
  }
  /** Fire and forget; nothing is queued while Redis is down. */
  const publishRaw = (channel: string, payload: Buffer): void => {
    if (command.status !== "ready") {
      dropped++
      warn(`redis not ready (${redis.lastError() ?? command.status}), frame not published`)
      return
    }
    command.publish(channel, payload).catch(onPublishError)
  }

  // ---- subscriptions: the desired set is ours; re-sent whole on every (re)connect --------

  const subscribe = (channels: Array<string>): void => {
    if (closed || channels.length === 0 || subscriber.status !== "ready") return
    // Failures are not retried here: the next "ready" subscribes everything again.
    subscriber.subscribe(...channels).catch(() => {})
  }
  const unsubscribe = (channels: Array<string>): void => {
    if (closed || channels.length === 0 || subscriber.status !== "ready") return
    subscriber.unsubscribe(...channels).catch(() => {})
  }

  const bridge = new TopicBridge(topicPrefix, {
    subscribe: (channel) => subscribe([channel]),
    unsubscribe: (channel) => unsubscribe([channel])
  })
  let port: GatewayPort | undefined
  let ownChannel: string | undefined

  const mirror = new PresenceMirror()
  let reloadTimer: NodeJS.Timeout | undefined
  const reloadMirror = (): void => {
    if (closed) return
    mirror.beginLoad()
    presenceSnapshot(redis).then(
      (snapshot) => mirror.finishLoad(snapshot),
      (e: unknown) => {
        mirror.abortLoad()
        warn(`presence snapshot failed: ${e instanceof Error ? e.message : String(e)}`)
        if (!closed && reloadTimer === undefined) {
          reloadTimer = setTimeout(() => {
            reloadTimer = undefined
            if (subscriber.status === "ready") reloadMirror()
          }, RELOAD_RETRY_MS)
        }
      }
    )
  }

  const resubscribeAll = (): void => {
    if (closed) return
    // The events channel first, and confirmed, before the snapshot: no event can fall between them.
    subscriber.subscribe(eventsChannel).then(reloadMirror, () => {})
    const channels = bridge.channels()
    if (ownChannel !== undefined) channels.push(ownChannel)
    for (let i = 0; i < channels.length; i += SUBSCRIBE_CHUNK) subscribe(channels.slice(i, i + SUBSCRIBE_CHUNK))
  }

  const onMessage = (channelBytes: Buffer, message: Buffer): void => {
    const channel = channelBytes.toString()
    // Topic frames first: they are the bulk of the traffic.
    if (bridge.deliver(channel, message)) return
    if (channel === ownChannel) {
      if (port !== undefined && !dispatchEnvelope(port, message)) warn("malformed gateway envelope ignored")
      return
    }
    if (channel === eventsChannel) {
      const event = decodePresenceEvent(message)
      if (event !== undefined) mirror.apply(event)
    }
  }

  subscriber.on("messageBuffer", onMessage)
  subscriber.on("ready", resubscribeAll)
  if (subscriber.status === "ready") resubscribeAll()

  yield* Effect.addFinalizer(() =>
    Effect.sync(() => {
      closed = true
      if (reloadTimer !== undefined) clearTimeout(reloadTimer)
      subscriber.off("messageBuffer", onMessage)
      subscriber.off("ready", resubscribeAll)
      if (subscriber.status === "ready") {
        const channels = bridge.channels()
        channels.push(eventsChannel)
        if (ownChannel !== undefined) channels.push(ownChannel)
        subscriber.unsubscribe(...channels).catch(() => {})
      }
    })
  )

  const localGatewayId = (): string | undefined => (port !== undefined && isClusterGatewayPort(port) ? port.gatewayId : undefined)

  /** The gateway that should get a per-player message, when it is another node's. */
  const remoteGatewayOf = (playerId: string): string | undefined => {
    const gatewayId = mirror.gatewayOf(playerId)
    return gatewayId === undefined || gatewayId === localGatewayId() ? undefined : gatewayId
  }

  const delivery = ClientDelivery.of({
    attach: (p) => {
      if (port !== undefined && port !== p) bridge.clear()
      if (ownChannel !== undefined) unsubscribe([ownChannel])
      port = p
      bridge.setPublisher(p)
      ownChannel = isClusterGatewayPort(p) ? gatewayChannel(p.gatewayId) : undefined
      if (ownChannel !== undefined) subscribe([ownChannel])
      else runFork(Effect.logWarning("gateway port without gatewayId/hasPlayer: it receives no per-player messages from other nodes"))
    },
    detach: (p) => {
      if (port !== p) return
      port = undefined
      bridge.setPublisher(undefined)
      bridge.clear()
      if (ownChannel !== undefined) unsubscribe([ownChannel])
      ownChannel = undefined
    },
    // Once to Redis; the local gateway (if any) gets it back through its subscription like every other.
    publish: (topic, frame) => publishRaw(topicPrefix + topic, asBuffer(frame)),
    sendToPlayer: (playerId, frame) => {
      if (port !== undefined && port.sendToPlayer(playerId, frame)) return true
      const gatewayId = remoteGatewayOf(playerId)
      if (gatewayId === undefined) return false
      publishRaw(gatewayChannel(gatewayId), encodeSendEnvelope(playerId, frame))
      return true
    },
    moveCells: (playerId, regionId, fromCell, toCell, fromRegion) => {
      if (port !== undefined) {
        if (isClusterGatewayPort(port)) {
          if (port.hasPlayer(playerId)) return port.moveCells(playerId, regionId, fromCell, toCell, fromRegion)
        } else {
          // Cannot tell: apply locally (a no-op for an unknown player) and forward as well.
          port.moveCells(playerId, regionId, fromCell, toCell, fromRegion)
        }
      }
      const gatewayId = remoteGatewayOf(playerId)
      if (gatewayId !== undefined) {
        publishRaw(gatewayChannel(gatewayId), encodeMoveEnvelope(playerId, regionId, fromCell, toCell, fromRegion))
      }
    },
    relocate: (playerId, joined, reason) => {
      if (port !== undefined && port.relocate(playerId, joined, reason)) return true
      const gatewayId = remoteGatewayOf(playerId)
      if (gatewayId === undefined) return false
      publishRaw(gatewayChannel(gatewayId), encodeRelocateEnvelope(playerId, joined, reason))
      return true
    }
  })

  const subscriptions = TopicSubscriptions.of({
    subscribed: (topic) => bridge.subscribed(topic),
    unsubscribed: (topic) => bridge.unsubscribed(topic)
  })
  return { delivery, subscriptions }
})

/**
 * Client delivery across nodes through Redis pub/sub (binary payloads only):
 * - `publish(topic)` PUBLISHes once to `<prefix>t:<topic>`; every gateway
 *   whose sockets follow the topic (reported through `TopicSubscriptions`)
 *   is subscribed to that channel and re-publishes the frame locally in uWS.
 * - `sendToPlayer` / `moveCells` / `relocate` act locally when the attached port has the
 *   player, otherwise go as an envelope to `<prefix>g:<gatewayId>` of the
 *   player's gateway, found in a local copy of presence kept by presence
 *   events (so the call stays synchronous).
 * With Redis down nothing throws or queues: frames are dropped and counted,
 * and subscriptions are restored when it comes back.
 */
export const layerRedis: Layer.Layer<ClientDelivery | TopicSubscriptions, never, RedisConnection> = Layer.scopedContext(
  Effect.map(make, ({ delivery, subscriptions }) =>
    Context.make(ClientDelivery, delivery).pipe(Context.add(TopicSubscriptions, subscriptions))
  )
)
