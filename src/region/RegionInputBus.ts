import { Context, Effect, Layer, type Scope } from "effect"
import { RedisConnection } from "../storage/redis/RedisConnection.js"

/**
 * The gateway -> region input path across nodes. Each active region
 * subscribes to its own channel; a gateway publishes ONE binary batch per
 * region per tick (InputBuffer bytes). Pub/sub costs a fraction of an entity
 * request/reply (which also waits for the remote handler), so the hot path
 * stays off entity RPC. Volatile like the rest of the game path: a batch sent
 * while a region fails over is lost, and the next tick's batch is not.
 */
export class RegionInputBus extends Context.Tag("tessera/RegionInputBus")<RegionInputBus, {
  /** False when there is no bus (one node, or no Redis): inputs go by entity message. */
  readonly enabled: boolean
  readonly publish: (regionId: string, batch: Uint8Array) => void
  /** Delivers every batch for `regionId` to `onBatch` for the life of the scope. */
  readonly subscribe: (regionId: string, onBatch: (batch: Uint8Array) => void) => Effect.Effect<void, never, Scope.Scope>
}>() {
  static readonly layerNone: Layer.Layer<RegionInputBus> = Layer.succeed(RegionInputBus, {
    enabled: false,
    publish: () => {},
    subscribe: () => Effect.void
  })

  static readonly layerRedis: Layer.Layer<RegionInputBus, never, RedisConnection> = Layer.scoped(
    RegionInputBus,
    Effect.gen(function*() {
      const { command, prefix, subscriber } = yield* RedisConnection
      const channelOf = (regionId: string) => `${prefix}in:${regionId}`
      const handlers = new Map<string, (batch: Uint8Array) => void>()
      const onMessage = (channel: Buffer, message: Buffer) => handlers.get(channel.toString())?.(message)
      // The subscriber does not resubscribe by itself after a reconnect.
      const resubscribe = () => {
        if (handlers.size > 0) subscriber.subscribe(...handlers.keys()).catch(() => {})
      }
      subscriber.on("messageBuffer", onMessage)
      subscriber.on("ready", resubscribe)
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          subscriber.off("messageBuffer", onMessage)
          subscriber.off("ready", resubscribe)
        })
      )
      return {
        enabled: true,
        publish: (regionId, batch) => {
          if (command.status !== "ready") return
          command.publish(channelOf(regionId), Buffer.from(batch.buffer, batch.byteOffset, batch.byteLength)).catch(
            () => {}
          )
        },
        subscribe: (regionId, onBatch) =>
          Effect.acquireRelease(
            Effect.sync(() => {
              const channel = channelOf(regionId)
              handlers.set(channel, onBatch)
              if (subscriber.status === "ready") subscriber.subscribe(channel).catch(() => {})
              return channel
            }),
            (channel) =>
              Effect.sync(() => {
                handlers.delete(channel)
                if (subscriber.status === "ready") subscriber.unsubscribe(channel).catch(() => {})
              })
          ).pipe(Effect.asVoid)
      }
    })
  )
}
