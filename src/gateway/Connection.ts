import type { WebSocket } from "uWebSockets.js"
import type { TokenBucket } from "./TokenBucket.js"

/**
 * Everything the gateway keeps per connection, in the socket's user data:
 * an idle connection costs these bytes, not an actor.
 */
export interface Connection {
  readonly connectionId: string
  readonly playerId: string
  readonly name: string
  readonly ip: string
  /** The resume token offered at upgrade (empty when none). */
  readonly offeredResume: string
  readonly bucket: TokenBucket
  /** The session's current resume token, handed back to it on disconnect. */
  resumeToken: string
  welcomed: boolean
  closed: boolean
  joining: boolean
  experienceId: string | null
  worldId: string | null
  regionId: string | null
  entityId: number
  cellKey: string | null
  /** The topics this socket is subscribed to (uWS forgets them silently on close; we report them). */
  readonly topics: Set<string>
  badMessages: number
  /** Last time an error frame was sent for throttled kinds (rate limit, not in world). */
  lastThrottledErrorAt: number
  /** Since when the socket's send buffer has been over the limit (0 = not lagging). */
  laggingSince: number
}

export type ClientSocket = WebSocket<Connection>
