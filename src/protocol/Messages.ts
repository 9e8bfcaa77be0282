import { ChatChannel, ClientOp, ErrorCode, type MatchEndReason, ServerOp } from "./Opcodes.js"

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
/**
 * Open worlds: key `key` now has `value` at (x, y, z), or is removed (`value`
 * nil). Keys name whatever the game places or changes (a block, a door).
 */
export type WorldEditFrame = readonly [
  op: typeof ClientOp.WorldEdit,
  key: string,
  x: number,
  y: number,
  z: number,
  value: string | null
]

/**
 * Matchmaking: queue for `mode` of `experienceId` as the leader of a party.
 * `party` holds the OTHER members' player ids (empty when alone; all must be
 * online); `skill` is the party's rating; `latencies` maps region names to
 * the measured round trip in ms (empty: no preference).
 */
export type MatchQueueFrame = readonly [
  op: typeof ClientOp.MatchQueue,
  experienceId: string,
  mode: string,
  party: ReadonlyArray<string>,
  skill: number,
  latencies: Readonly<Record<string, number>>
]
export type MatchCancelFrame = readonly [op: typeof ClientOp.MatchCancel]
export type MatchAcceptFrame = readonly [op: typeof ClientOp.MatchAccept, matchId: string]
export type MatchDeclineFrame = readonly [op: typeof ClientOp.MatchDecline, matchId: string]

export type ClientFrame =
  | JoinFrame
  | InputFrame
  | ChatFrame
  | PingFrame
  | LeaveFrame
  | WorldEditFrame
  | MatchQueueFrame
  | MatchCancelFrame
  | MatchAcceptFrame
  | MatchDeclineFrame

export const MAX_ID_LENGTH = 64
export const MAX_SEQ = 0xffffffff
/** Longest world edit key, in characters. */
export const MAX_EDIT_KEY_LENGTH = 64
/** Longest world edit value, in characters. */
export const MAX_EDIT_VALUE_LENGTH = 256
/** Most other members in a MatchQueue party. */
export const MAX_PARTY_MEMBERS = 15
/** Most region latencies in a MatchQueue. */
export const MAX_MATCH_REGIONS = 16
/** Largest latency accepted in a MatchQueue, in ms. */
export const MAX_MATCH_LATENCY_MS = 60_000
/** Largest |skill| accepted in a MatchQueue. */
export const MAX_MATCH_SKILL = 1_000_000
/** Longest ticket or match id (they carry the queue's key). */
export const MAX_MATCH_ID_LENGTH = 160

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
    case ClientOp.WorldEdit: {
      if (value.length !== 6) return fail(ErrorCode.BadShape, "world edit is [6, key, x, y, z, value|nil]")
      const [, key, x, y, z, v] = value
      if (typeof key !== "string" || key.length === 0 || key.length > MAX_EDIT_KEY_LENGTH) {
        return fail(ErrorCode.BadShape, `world edit key must be a string of 1..${MAX_EDIT_KEY_LENGTH} chars`)
      }
      if (!isFiniteNumber(x) || !isFiniteNumber(y) || !isFiniteNumber(z)) {
        return fail(ErrorCode.BadShape, "world edit x, y, z must be finite numbers")
      }
      if (v !== null && (typeof v !== "string" || v.length > MAX_EDIT_VALUE_LENGTH)) {
        return fail(ErrorCode.BadShape, `world edit value must be a string of at most ${MAX_EDIT_VALUE_LENGTH} chars, or nil to remove`)
      }
      return { ok: true, frame: value as unknown as WorldEditFrame }
    }
    case ClientOp.MatchQueue:
      return parseMatchQueue(value)
    case ClientOp.MatchCancel: {
      if (value.length !== 1) return fail(ErrorCode.BadShape, "match cancel is [21]")
      return { ok: true, frame: value as unknown as MatchCancelFrame }
    }
    case ClientOp.MatchAccept:
    case ClientOp.MatchDecline: {
      const name = op === ClientOp.MatchAccept ? "match accept is [22, matchId]" : "match decline is [23, matchId]"
      if (value.length !== 2) return fail(ErrorCode.BadShape, name)
      const id = value[1]
      if (typeof id !== "string" || id.length === 0 || id.length > MAX_MATCH_ID_LENGTH) {
        return fail(ErrorCode.BadShape, `${name} with a matchId of 1..${MAX_MATCH_ID_LENGTH} chars`)
      }
      return { ok: true, frame: value as unknown as MatchAcceptFrame | MatchDeclineFrame }
    }
    default:
      return fail(ErrorCode.UnknownOp, `unknown opcode ${typeof op === "number" ? op : typeof op}`)
  }
}

const isPlainObject = (u: unknown): u is Record<string, unknown> => {
  if (typeof u !== "object" || u === null || Array.isArray(u) || u instanceof Uint8Array) return false
  const proto: unknown = Object.getPrototypeOf(u)
  return proto === null || proto === Object.prototype
}

/** MatchQueue: ids, a bounded party without duplicates, a finite skill, bounded latencies (copied into a fresh record). */
const parseMatchQueue = (value: ReadonlyArray<unknown>): ParseResult => {
  const shape = "match queue is [20, experienceId, mode, party: playerId[], skill, latencies: {region: ms}]"
  if (value.length !== 6) return fail(ErrorCode.BadShape, shape)
  const [, experienceId, mode, party, skill, latencies] = value
  if (!isId(experienceId) || !isId(mode)) {
    return fail(ErrorCode.BadShape, `match queue experienceId and mode must be ids of 1..${MAX_ID_LENGTH} chars`)
  }
  if (!Array.isArray(party) || party.length > MAX_PARTY_MEMBERS) {
    return fail(ErrorCode.BadShape, `match queue party must be an array of at most ${MAX_PARTY_MEMBERS} player ids (the other members)`)
  }
  const seen = new Set<string>()
  for (const member of party) {
    if (!isId(member)) return fail(ErrorCode.BadShape, `match queue party members must be player ids of 1..${MAX_ID_LENGTH} chars`)
    if (seen.has(member)) return fail(ErrorCode.BadShape, `match queue party lists player "${member}" twice`)
    seen.add(member)
  }
  if (!isFiniteNumber(skill) || Math.abs(skill) > MAX_MATCH_SKILL) {
    return fail(ErrorCode.BadShape, `match queue skill must be a finite number within ±${MAX_MATCH_SKILL}`)
  }
  if (!isPlainObject(latencies)) return fail(ErrorCode.BadShape, "match queue latencies must be a map of region name -> ms")
  const regions = Object.keys(latencies)
  if (regions.length > MAX_MATCH_REGIONS) return fail(ErrorCode.BadShape, `match queue latencies: at most ${MAX_MATCH_REGIONS} regions`)
  const copy: Record<string, number> = {}
  for (const region of regions) {
    const ms = latencies[region]
    if (!isId(region) || region === "__proto__") {
      return fail(ErrorCode.BadShape, `match queue latencies: region names must be 1..${MAX_ID_LENGTH} chars`)
    }
    if (!isFiniteNumber(ms) || ms < 0 || ms > MAX_MATCH_LATENCY_MS) {
      return fail(ErrorCode.BadShape, `match queue latencies: ms must be a number in 0..${MAX_MATCH_LATENCY_MS} (region "${region}")`)
    }
    copy[region] = ms
  }
  return { ok: true, frame: [ClientOp.MatchQueue, experienceId, mode, party as ReadonlyArray<string>, skill, copy] }
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
/**
 * The server moved the player (seamlessly: it sent no Join) out of
 * `fromWorld` (nil: it was in no world, e.g. a match placed it) into
 * `toWorld`, whose Joined follows in the same burst. `toWorld` nil: the
 * instance was terminated with nowhere to go; the connection closes with
 * 4006 next. `reason` is for humans.
 */
export type MovedFrame = readonly [op: typeof ServerOp.Moved, fromWorld: string | null, toWorld: string | null, reason: string]
/**
 * One world modification: `value` null = the key was removed. `seq` is the
 * world's sequence number of the stored delta (higher = newer); 0 for an edit
 * the region accepted but has not stored yet (only in a region's current state).
 */
export type WorldEditEntry = readonly [key: string, x: number, y: number, z: number, value: string | null, seq: number]
/**
 * Open worlds: edits of one region. Live edits go to the subscribers of the
 * edit's interest cell; a region's current edits go to a player on join and on
 * arrival by handoff, in frames of at most WORLD_EDITS_PER_FRAME entries.
 */
export type WorldEditsFrame = readonly [
  op: typeof ServerOp.WorldEdits,
  regionId: string,
  edits: ReadonlyArray<WorldEditEntry>
]
/** Most entries in one WorldEdits frame (a region's state is sent in several). */
export const WORLD_EDITS_PER_FRAME = 200

/** Matchmaking: the party's ticket is queued. Ticket ids carry the queue's key (`<experience>:<mode>/t<n>`). */
export type MatchQueuedFrame = readonly [op: typeof ServerOp.MatchQueued, ticketId: string]
/**
 * Matchmaking: a match of `players` was found. With a ready check,
 * `readyCheckDeadline` (epoch ms) is when it fails unless every player sent
 * MatchAccept; null: no ready check, a MatchReady follows.
 */
export type MatchFoundFrame = readonly [
  op: typeof ServerOp.MatchFound,
  matchId: string,
  readyCheckDeadline: number | null,
  players: ReadonlyArray<string>
]
/**
 * Matchmaking: the match's instance is `worldId` and the player is placed
 * there. A connected player already got Moved + Joined for it (sent first);
 * one whose move could not be delivered lands there on its next Join of
 * `experienceId`.
 */
export type MatchReadyFrame = readonly [op: typeof ServerOp.MatchReady, matchId: string, worldId: string, experienceId: string]
/**
 * Matchmaking: a ticket (`id` = ticketId) or match (`id` = matchId) ended
 * without a game; `reason` is a MatchEndReason, `message` says why. After a
 * failed ready check the players whose tickets were requeued also get a new
 * MatchQueued.
 */
export type MatchEndedFrame = readonly [op: typeof ServerOp.MatchEnded, id: string, reason: MatchEndReason, message: string]

export type ServerFrame =
  | MatchQueuedFrame
  | MatchFoundFrame
  | MatchReadyFrame
  | MatchEndedFrame
  | WelcomeFrame
  | JoinedFrame
  | SnapshotFrame
  | ChatMessageFrame
  | ChatHistoryFrame
  | ErrorFrame
  | PongFrame
  | LeftFrame
  | MovedFrame
  | WorldEditsFrame

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
