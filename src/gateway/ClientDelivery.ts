import { Context, Layer } from "effect"
import type { JoinedInfo } from "../protocol/Location.js"

/**
 * How regions and experts reach clients without going back through entity
 * RPC. The gateway attaches its uWS port when it starts; with no gateway in
 * this process (or before it starts) frames are dropped and counted by the
 * caller. Across nodes this becomes a Redis-backed implementation.
 */
export interface GatewayPort {
  /** Publishes one frame to every subscriber of a topic (uWS fans it out in C++). */
  publish(topic: string, frame: Uint8Array): void
  /** Sends to one player's connection; false when the player is not connected here. */
  sendToPlayer(playerId: string, frame: Uint8Array): boolean
  /**
   * The player's entity moved from one interest cell to another: move its
   * topic subscriptions. With `fromRegion` (open worlds), the entity arrived
   * in `regionId` by handoff: the connection's input route and cells switch
   * from `fromRegion`'s to this region's.
   */
  moveCells(playerId: string, regionId: string, fromCell: string | undefined, toCell: string | undefined, fromRegion?: string): void
  /**
   * The server moved the player (its session already joined it to `joined`'s
   * region): the connection leaves its current world's subscriptions, gets
   * `Moved [110, fromWorld, toWorld, reason]`, then enters `joined` (Joined
   * frame, cell and chat subscriptions, input route) with no Join from the
   * client. `joined` null: nowhere to go; after Moved the connection is
   * closed with 4006. False when the player is not connected here (or, across
   * nodes, to any gateway known).
   */
  relocate(playerId: string, joined: JoinedInfo | null, reason: string): boolean
}

export class ClientDelivery extends Context.Tag("tessera/ClientDelivery")<ClientDelivery, GatewayPort & {
  readonly attach: (port: GatewayPort) => void
  readonly detach: (port: GatewayPort) => void
}>() {
  static readonly layerLocal: Layer.Layer<ClientDelivery> = Layer.sync(ClientDelivery, () => {
    let port: GatewayPort | undefined
    return {
      attach: (p) => {
        port = p
      },
      detach: (p) => {
        if (port === p) port = undefined
      },
      publish: (topic, frame) => port?.publish(topic, frame),
      sendToPlayer: (playerId, frame) => port?.sendToPlayer(playerId, frame) ?? false,
      moveCells: (playerId, regionId, fromCell, toCell, fromRegion) =>
        port?.moveCells(playerId, regionId, fromCell, toCell, fromRegion),
      relocate: (playerId, joined, reason) => port?.relocate(playerId, joined, reason) ?? false
    }
  })
}
