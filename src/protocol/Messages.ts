import { ChatChannel, ClientOp, ErrorCode, ServerOp } from "./Opcodes.js"

/**
 * Frame shapes of protocol v1, as TypeScript tuples. The parsers below are
 * the schema: every client frame goes through `parseClientFrame`, which
 * never throws and names what is wrong.
 */

export type Vec3 = readonly [x: number, y: number, z: number]

// ---- client -> server -------------------------------------------------------

export type JoinFrame = readonly [op: typeof ClientOp.Join, experienceId: string]
/** `move` is a desired direction; its length is clamped to 1 by the server. */
export type InputFrame = readonly [op: typeof ClientOp.Input, seq: number, dx: number, dy: number, dz: number, buttons: number]
export type ChatFrame = readonly [op: typeof ClientOp.Chat, channel: ChatChannel, text: string, to?: string]
export type PingFrame = readonly [op: typeof ClientOp.Ping, clientTime: number]
export type LeaveFrame = readonly [op: typeof ClientOp.Leave]

export type ClientFrame = JoinFrame | InputFrame | ChatFrame | PingFrame | LeaveFrame

export const MAX_ID_LENGTH = 64
export const MAX_SEQ = 0xffffffff

export type ParseResult =
  | { readonly ok: true; readonly frame: ClientFrame }
  | { readonly ok: false; readonly code: ErrorCode; readonly message: string }

const fail = (code: ErrorCode, message: string): ParseResult => ({ ok: false, code, message })

const isFiniteNumber = (u: unknown): u is number => typeof u === "number" && Number.isFinite(u)
const isSeq = (u: unknown): u is number => typeof u === "number" && Number.isInteger(u) && u >= 0 && u <= MAX_SEQ
const isId = (u: unknown): u is string =>
  typeof u === "string" && u.length > 0 && u.length <= MAX_ID_LENGTH

/** Validates an already-decoded msgpack value as a client frame. */
export const parseClientFrame = (value: unknown, maxChatLength: number): ParseResult => {
  if (!Array.isArray(value) || value.length === 0) {
    return fail(ErrorCode.BadShape, "a frame is a non-empty array [opcode, ...fields]")
  }
  const op = value[0]
  switch (op) {
    case ClientOp.Input: {
      if (value.length !== 6) return fail(ErrorCode.BadShape, "input is [2, seq, dx, dy, dz, buttons]")
      const [, seq, dx, dy, dz, buttons] = value
      if (!isSeq(seq)) return fail(ErrorCode.BadShape, "input seq must be an integer in 0..2^32-1")
      if (!isFiniteNumber(dx) || !isFiniteNumber(dy) || !isFiniteNumber(dz)) {
        return fail(ErrorCode.BadShape, "input dx, dy, dz must be finite numbers")
      }
      if (!isSeq(buttons)) return fail(ErrorCode.BadShape, "input buttons must be an unsigned integer")
      return { ok: true, frame: value as unknown as InputFrame }
    }
    case ClientOp.Join: {
      if (value.length !== 2 || !isId(value[1])) {
        return fail(ErrorCode.BadShape, `join is [1, experienceId] with an id of 1..${MAX_ID_LENGTH} chars`)
      }
      return { ok: true, frame: value as unknown as JoinFrame }
    }
    case ClientOp.Chat: {
      if (value.length !== 3 && value.length !== 4) {
        return fail(ErrorCode.BadShape, "chat is [3, channel, text, to?]")
      }
      const [, channel, text, to] = value
      if (channel !== ChatChannel.World && channel !== ChatChannel.Instance && channel !== ChatChannel.Private) {
        return fail(ErrorCode.BadShape, "chat channel must be 0 (world), 1 (instance) or 2 (private)")
      }
      if (typeof text !== "string" || text.length === 0 || text.length > maxChatLength) {
        return fail(ErrorCode.BadShape, `chat text must be a string of 1..${maxChatLength} chars`)
      }
      if (channel === ChatChannel.Private ? !isId(to) : to !== undefined) {
        return fail(ErrorCode.BadShape, "chat `to` (a player id) is required for private and only for private")
      }
      return { ok: true, frame: value as unknown as ChatFrame }
    }
    case ClientOp.Ping: {
      if (value.length !== 2 || !isFiniteNumber(value[1])) return fail(ErrorCode.BadShape, "ping is [4, clientTime]")
      return { ok: true, frame: value as unknown as PingFrame }
    }
    case ClientOp.Leave: {
      if (value.length !== 1) return fail(ErrorCode.BadShape, "leave is [5]")
      return { ok: true, frame: value as unknown as LeaveFrame }
    }
    default:
      return fail(ErrorCode.UnknownOp, `unknown opcode ${typeof op === "number" ? op : typeof op}`)
  }
}

// ---- server -> client -------------------------------------------------------

export type WelcomeFrame = readonly [
  op: typeof ServerOp.Welcome,
  serverVersion: string,
  protocolVersion: number,
  tickRate: number,
  playerId: string,
  resumeToken: string,
  resumed: boolean
]
export type JoinedFrame = readonly [
  op: typeof ServerOp.Joined,
  experienceId: string,
  worldId: string,
  regionId: string,
  entityId: number,
  x: number,
  y: number,
  z: number,
  tickRate: number,
  cellSize: number
]
/**
 * One interest cell's full state at a tick. `entities` packs
 * SNAPSHOT_RECORD_BYTES per entity (see SnapshotRecord) so one buffer serves
 * every subscriber of the cell.
 */
export type SnapshotFrame = readonly [
  op: typeof ServerOp.Snapshot,
  regionId: string,
  cellKey: string,
  tick: number,
  entities: Uint8Array
]
export type ChatMessageFrame = readonly [
  op: typeof ServerOp.Chat,
  channel: ChatChannel,
  fromPlayerId: string,
  fromName: string,
  text: string,
  sentAt: number,
  to?: string
]
export type ChatHistoryEntry = readonly [fromPlayerId: string, fromName: string, text: string, sentAt: number]
export type ChatHistoryFrame = readonly [
  op: typeof ServerOp.ChatHistory,
  channel: ChatChannel,
  messages: ReadonlyArray<ChatHistoryEntry>
]
export type ErrorFrame = readonly [op: typeof ServerOp.Error, code: ErrorCode, message: string]
export type PongFrame = readonly [op: typeof ServerOp.Pong, clientTime: number, serverTime: number]
export type LeftFrame = readonly [op: typeof ServerOp.Left, reason: string]

export type ServerFrame =
  | WelcomeFrame
  | JoinedFrame
  | SnapshotFrame
  | ChatMessageFrame
  | ChatHistoryFrame
  | ErrorFrame
  | PongFrame
  | LeftFrame

// ---- snapshot records ---------------------------------------------------------

/** entityId u32, x f32, y f32, z f32, lastInputSeq u32 — little endian. */
export const SNAPSHOT_RECORD_BYTES = 20

export interface SnapshotRecord {
  readonly entityId: number
  readonly x: number
  readonly y: number
  readonly z: number
  readonly lastSeq: number
}

export const writeSnapshotRecord = (
  view: DataView,
  offset: number,
  entityId: number,
  x: number,
  y: number,
  z: number,
  lastSeq: number
): void => {
  view.setUint32(offset, entityId, true)
  view.setFloat32(offset + 4, x, true)
  view.setFloat32(offset + 8, y, true)
  view.setFloat32(offset + 12, z, true)
  view.setUint32(offset + 16, lastSeq, true)
}

export const readSnapshotRecords = (bytes: Uint8Array): Array<SnapshotRecord> => {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const count = Math.floor(bytes.byteLength / SNAPSHOT_RECORD_BYTES)
  const out = new Array<SnapshotRecord>(count)
  for (let i = 0; i < count; i++) {
    const o = i * SNAPSHOT_RECORD_BYTES
    out[i] = {
      entityId: view.getUint32(o, true),
      x: view.getFloat32(o + 4, true),
      y: view.getFloat32(o + 8, true),
      z: view.getFloat32(o + 12, true),
      lastSeq: view.getUint32(o + 16, true)
    }
  }
  return out
}

/** Finds one entity's acked input seq without decoding the whole cell. */
export const findAckedSeq = (bytes: Uint8Array, entityId: number): number | undefined => {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  for (let o = 0; o + SNAPSHOT_RECORD_BYTES <= bytes.byteLength; o += SNAPSHOT_RECORD_BYTES) {
    if (view.getUint32(o, true) === entityId) return view.getUint32(o + 16, true)
  }
  return undefined
}
