/**
 * Wire opcodes of protocol v1. Every frame is one msgpack array whose first
 * element is the opcode; the rest are positional fields (see docs/PROTOCOL.md).
 * Positional arrays keep frames small and validation branch-free.
 */
export const PROTOCOL_VERSION = 1

/** Client -> server. */
export const ClientOp = {
  Join: 1,
  Input: 2,
  Chat: 3,
  Ping: 4,
  Leave: 5,
  /** Open worlds: set (or remove, value nil) one key of the world at a position near the player. */
  WorldEdit: 6,
  // ---- matchmaking (20-29) ----
  /** Queue (with a party) for a matchmaking mode of an experience. */
  MatchQueue: 20,
  /** Leave the matchmaking queue (the whole party's ticket). */
  MatchCancel: 21,
  /** Accept a match's ready check. */
  MatchAccept: 22,
  /** Decline a match's ready check. */
  MatchDecline: 23
} as const
export type ClientOp = (typeof ClientOp)[keyof typeof ClientOp]

/** Server -> client. */
export const ServerOp = {
  Welcome: 101,
  Joined: 102,
  Snapshot: 103,
  Chat: 104,
  ChatHistory: 105,
  Error: 106,
  Pong: 107,
  Left: 108,
  /** Open worlds: world modifications (live edits, and a region's current ones on join/arrival). */
  WorldEdits: 109,
  /**
   * The server moved the player out of `fromWorld` (an admin's route or
   * terminate, a match, a failed instance): a Joined for `toWorld` follows
   * at once (no Join needed); `toWorld` nil: no world to go to, the
   * connection is closed with 4006 right after.
   */
  Moved: 110,
  // ---- matchmaking (120-129) ----
  /** The player's party is queued (also after a failed ready check put it back). */
  MatchQueued: 120,
  /** A match was found; with a ready-check deadline every player must accept before it. */
  MatchFound: 121,
  /** The match has an instance and the player is routed there (a connected player got Moved + Joined for it already). */
  MatchReady: 122,
  /** A ticket or match ended without a game (timeout, cancel, failed ready check, allocation failure). */
  MatchEnded: 123
} as const
export type ServerOp = (typeof ServerOp)[keyof typeof ServerOp]

export const ChatChannel = {
  World: 0,
  Instance: 1,
  Private: 2
} as const
export type ChatChannel = (typeof ChatChannel)[keyof typeof ChatChannel]

/** Error codes carried by ServerOp.Error frames. */
export const ErrorCode = {
  BadFrame: "bad_frame",
  UnknownOp: "unknown_op",
  BadShape: "bad_shape",
  TooLarge: "too_large",
  RateLimited: "rate_limited",
  NotInWorld: "not_in_world",
  AlreadyInWorld: "already_in_world",
  UnknownExperience: "unknown_experience",
  WorldFull: "world_full",
  ChatRejected: "chat_rejected",
  ChatRateLimited: "chat_rate_limited",
  UnknownPlayer: "unknown_player",
  /** A world edit the region refused (out of reach, another region's spot, not here any more). */
  EditRejected: "edit_rejected",
  /** A matchmaking request the matchmaker refused (unknown mode, party offline or busy, no region in range...). */
  MatchRejected: "match_rejected",
  /** Cancel / accept / decline while not queued or not in that match's ready check. */
  NotQueued: "not_queued",
  Internal: "internal"
} as const
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode]

/** Why a matchmaking ticket or match ended (MatchEnded frames). */
export const MatchEndReason = {
  /** No match within the mode's ticket timeout. */
  Timeout: "timeout",
  /** A party member cancelled (or disconnected). */
  Cancelled: "cancelled",
  /** A ready check failed (declined, or not everyone accepted in time). */
  LobbyFailed: "lobby_failed",
  /** The match was formed but could not be started (no instance, or this player could not be routed). */
  Failed: "failed"
} as const
export type MatchEndReason = (typeof MatchEndReason)[keyof typeof MatchEndReason]

/** WebSocket close codes (4000-4999 are application codes). */
export const CloseCode = {
  Normal: 1000,
  ServerShutdown: 4000,
  Replaced: 4001,
  Abuse: 4002,
  Lagging: 4003,
  Unauthorized: 4004,
  ResumeExpired: 4005,
  /**
   * The player's instance was terminated and there was nowhere to move it
   * (an admin's terminate with move=none, or no other instance with room).
   * Not terminal: the player may connect and join again whenever it likes;
   * there is nothing to resume (the session holds no place). The SDK does
   * not reconnect by itself after it (see `noAutoReconnectCloseCodes`).
   */
  InstanceTerminated: 4006
} as const
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode]

/** Close codes after which a client must not reconnect automatically: the server does not want this client back as it is. */
export const terminalCloseCodes: ReadonlySet<number> = new Set([
  CloseCode.Replaced,
  CloseCode.Abuse,
  CloseCode.Unauthorized
])

/**
 * Close codes that end the game session without barring the player: the
 * SDK does not reconnect on its own (nothing to resume, and a game shows
 * its player why before putting it somewhere else), but a new `connect()`
 * is welcome at once. A superset of `terminalCloseCodes`.
 */
export const noAutoReconnectCloseCodes: ReadonlySet<number> = new Set([
  ...terminalCloseCodes,
  CloseCode.InstanceTerminated
])
