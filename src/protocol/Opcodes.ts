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
  Leave: 5
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
  Left: 108
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
  Internal: "internal"
} as const
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode]

/** WebSocket close codes (4000-4999 are application codes). */
export const CloseCode = {
  Normal: 1000,
  ServerShutdown: 4000,
  Replaced: 4001,
  Abuse: 4002,
  Lagging: 4003,
  Unauthorized: 4004,
  ResumeExpired: 4005
} as const
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode]

/** Close codes after which a client must not reconnect automatically. */
export const terminalCloseCodes: ReadonlySet<number> = new Set([
  CloseCode.Replaced,
  CloseCode.Abuse,
  CloseCode.Unauthorized
])
