/**
 * Where a gateway reports its local topic subscriptions: call `subscribed`
 * each time one local socket starts following a topic and `unsubscribed` each
 * time one stops (including when the socket closes), so the counts stay
 * exact. Calls are synchronous and cheap.
 */
export interface TopicSubscriptionSink {
  subscribed(topic: string): void
  unsubscribed(topic: string): void
}

/** Issues the actual SUBSCRIBE / UNSUBSCRIBE of one channel (fire and forget). */
export interface TopicBridgeIo {
  subscribe(channel: string): void
  unsubscribe(channel: string): void
}

/** The local fan-out (uWS `app.publish`). */
export interface TopicPublisher {
  publish(topic: string, frame: Uint8Array): void
}

interface Entry {
  readonly topic: string
  readonly channel: string
  refs: number
}

/**
 * The gateway half of cross-node topic delivery: counts local subscribers per
 * topic, subscribes the topic's Redis channel (`<channelPrefix><topic>`) when
 * the first local subscriber arrives and unsubscribes it when the last one
 * leaves, and hands every incoming channel message to the local publisher
 * under its topic name. No IO of its own: `io` does the Redis side.
 */
export class TopicBridge implements TopicSubscriptionSink {
  private readonly byTopic = new Map<string, Entry>()
  private readonly byChannel = new Map<string, Entry>()
  private publisher: TopicPublisher | undefined

  constructor(readonly channelPrefix: string, private readonly io: TopicBridgeIo) {}

  /** Where incoming messages go; undefined drops them. */
  setPublisher(publisher: TopicPublisher | undefined): void {
    this.publisher = publisher
  }

  channelOf(topic: string): string {
    return this.channelPrefix + topic
  }

  subscribed(topic: string): void {
    const entry = this.byTopic.get(topic)
    if (entry !== undefined) {
      entry.refs++
      return
    }
    const created: Entry = { topic, channel: this.channelOf(topic), refs: 1 }
    this.byTopic.set(topic, created)
    this.byChannel.set(created.channel, created)
    this.io.subscribe(created.channel)
  }

  /** An unsubscribe of a topic with no local subscriber is ignored (counts never go negative). */
  unsubscribed(topic: string): void {
    const entry = this.byTopic.get(topic)
    if (entry === undefined) return
    if (--entry.refs > 0) return
    this.byTopic.delete(topic)
    this.byChannel.delete(entry.channel)
    this.io.unsubscribe(entry.channel)
  }

  /** Local subscribers of `topic` (0 when none). */
  refCount(topic: string): number {
    return this.byTopic.get(topic)?.refs ?? 0
  }

  /** Topics with at least one local subscriber. */
  get size(): number {
    return this.byTopic.size
  }

  /** The channels that should be subscribed right now (to resubscribe after a reconnect). */
  channels(): Array<string> {
    return [...this.byChannel.keys()]
  }

  /**
   * An incoming message of `channel`: publishes it locally under its topic.
   * False when no local subscriber follows that channel (a late message after
   * the last unsubscribe, or not a topic channel).
   */
  deliver(channel: string, frame: Uint8Array): boolean {
    const entry = this.byChannel.get(channel)
    if (entry === undefined) return false
    const publisher = this.publisher
    if (publisher === undefined) return false
    publisher.publish(entry.topic, frame)
    return true
  }

  /** Forgets every topic, unsubscribing each channel. */
  clear(): void {
    const channels = [...this.byChannel.keys()]
    this.byTopic.clear()
    this.byChannel.clear()
    for (const channel of channels) this.io.unsubscribe(channel)
  }
}
