import { describe, expect, it } from "vitest"
import { decode, encode } from "../../src/protocol/Codec.js"
import {
  type ClientFrame,
  findAckedSeq,
  MAX_EDIT_KEY_LENGTH,
  MAX_EDIT_VALUE_LENGTH,
  MAX_ID_LENGTH,
  MAX_SEQ,
  parseClientFrame,
  readSnapshotRecords,
  type ServerFrame,
  SNAPSHOT_RECORD_BYTES,
  type SnapshotRecord,
  writeSnapshotRecord
} from "../../src/protocol/Messages.js"
import {
  ChatChannel,
  ClientOp,
  CloseCode,
  ErrorCode,
  noAutoReconnectCloseCodes,
  ServerOp,
  terminalCloseCodes
} from "../../src/protocol/Opcodes.js"

const MAX_CHAT = 500

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"))

/** Encodes then decodes with the project codec, as a frame travels. */
const wire = (value: unknown): unknown => decode(encode(value))

/** Packs snapshot records the way a region does. */
const packRecords = (records: ReadonlyArray<SnapshotRecord>): Uint8Array => {
  const bytes = new Uint8Array(records.length * SNAPSHOT_RECORD_BYTES)
  const view = new DataView(bytes.buffer)
  records.forEach((r, i) => writeSnapshotRecord(view, i * SNAPSHOT_RECORD_BYTES, r.entityId, r.x, r.y, r.z, r.lastSeq))
  return bytes
}

// ---- round trips ----------------------------------------------------------------

const clientFrames: ReadonlyArray<readonly [name: string, frame: ClientFrame]> = [
  ["join", [ClientOp.Join, "arena"]],
  ["input", [ClientOp.Input, 42, 0.6, 0, -0.8, 1]],
  ["input at the seq and buttons limits", [ClientOp.Input, MAX_SEQ, -1, 1e300, -1e-300, MAX_SEQ]],
  ["input seq 0", [ClientOp.Input, 0, 0, 0, 0, 0]],
  ["chat world", [ClientOp.Chat, ChatChannel.World, "hello"]],
  ["chat instance", [ClientOp.Chat, ChatChannel.Instance, "hello, room"]],
  ["chat private", [ClientOp.Chat, ChatChannel.Private, "psst", "player-2"]],
  ["chat unicode", [ClientOp.Chat, ChatChannel.World, "héllo wörld 😀"]],
  ["ping integer", [ClientOp.Ping, 123456]],
  ["ping float", [ClientOp.Ping, 1234.5678]],
  ["leave", [ClientOp.Leave]],
  ["world edit", [ClientOp.WorldEdit, "block:12", 1.5, 0, -3.25, "stone"]],
  ["world edit removal", [ClientOp.WorldEdit, "door/7", -100, 2, 1e6, null]],
  ["world edit with an empty value", [ClientOp.WorldEdit, "k", 0, 0, 0, ""]],
  ["world edit at the limits", [ClientOp.WorldEdit, "k".repeat(MAX_EDIT_KEY_LENGTH), 0, 0, 0, "v".repeat(MAX_EDIT_VALUE_LENGTH)]]
]

const serverFrames: ReadonlyArray<readonly [name: string, frame: ServerFrame]> = [
  ["welcome", [ServerOp.Welcome, "0.1.0", 1, 20, "p-1", "tok_abc-DEF", false]],
  ["welcome resumed", [ServerOp.Welcome, "0.1.0", 1, 20, "p-1", "tok_2", true]],
  ["joined", [ServerOp.Joined, "arena", "arena.1", "arena.1", 7, 3.5, 0, -2.25, 20, 50]],
  ["chat world", [ServerOp.Chat, ChatChannel.World, "p-1", "Alice", "hi all", 1_700_000_000_000]],
  ["chat instance", [ServerOp.Chat, ChatChannel.Instance, "p-1", "Alice", "hi room", 1_700_000_000_001]],
  ["chat private", [ServerOp.Chat, ChatChannel.Private, "p-1", "Alice", "psst", 1_700_000_000_002, "p-2"]],
  ["chat history empty", [ServerOp.ChatHistory, ChatChannel.World, []]],
  [
    "chat history",
    [ServerOp.ChatHistory, ChatChannel.Instance, [["p-1", "Alice", "one", 1], ["p-2", "Bob", "two", 2]]]
  ],
  ["error", [ServerOp.Error, ErrorCode.WorldFull, "experience \"arena\" is at its instance limit"]],
  ["pong", [ServerOp.Pong, 1234.5, 1_700_000_000_000]],
  ["left", [ServerOp.Left, "left"]],
  ["moved to another instance", [ServerOp.Moved, "arena.1", "arena.2", "moved to arena.2 by an admin"]],
  ["moved from no world (a match)", [ServerOp.Moved, null, "squads.3", "matched (squads:ten/x.m1): moved to squads.3"]],
  ["moved nowhere (terminated)", [ServerOp.Moved, "arena.1", null, "arena.1: maintenance window"]],
  ["world edits empty", [ServerOp.WorldEdits, "frontier.world/0/1/0/1", []]],
  [
    "world edits",
    [ServerOp.WorldEdits, "frontier.world/1/2/0/3", [["block:1", 1.5, 0, -2, "stone", 17], ["door", 3, 0, 4, null, 18], ["new", 0, 0, 0, "x", 0]]]
  ]
]

describe("codec round trips", () => {
  it.each(clientFrames)("client %s", (_name, frame) => {
    const back = wire(frame)
    expect(back).toEqual(frame)
    expect(parseClientFrame(back, MAX_CHAT)).toEqual({ ok: true, frame })
  })

  it.each(serverFrames)("server %s", (_name, frame) => {
    expect(wire(frame)).toEqual(frame)
  })

  it.each([
    ["no entities", []],
    ["one entity", [{ entityId: 7, x: 12.5, y: 0, z: -3.25, lastSeq: 42 }]],
    [
      "many entities (bin16)",
      Array.from({ length: 20 }, (_, i) => ({ entityId: i + 1, x: i * 1.5, y: -i, z: 0.25, lastSeq: i * 1000 }))
    ]
  ] as const)("server snapshot with %s", (_name, records) => {
    const blob = packRecords(records)
    const frame: ServerFrame = [ServerOp.Snapshot, "arena.1", "0,0,-1", 1234, blob]
    const back = wire(frame) as [number, string, string, number, Uint8Array]
    expect(back.slice(0, 4)).toEqual([ServerOp.Snapshot, "arena.1", "0,0,-1", 1234])
    expect(back[4]).toBeInstanceOf(Uint8Array)
    expect(Uint8Array.from(back[4])).toEqual(blob)
    // The decoded blob may be a view into a larger buffer: the readers honour byteOffset.
    expect(readSnapshotRecords(back[4])).toEqual(records)
  })

  it("encodes a Moved frame to the bytes documented in docs/PROTOCOL.md", () => {
    expect(Buffer.from(encode([ServerOp.Moved, "a.1", null, "x"])).toString("hex")).toBe("946ea3612e31c0a178")
  })

  it("Moved is opcode 110 and 4006 is a close code the SDK does not reconnect after, yet not terminal", () => {
    expect(ServerOp.Moved).toBe(110)
    expect(CloseCode.InstanceTerminated).toBe(4006)
    expect(terminalCloseCodes.has(CloseCode.InstanceTerminated)).toBe(false)
    expect(noAutoReconnectCloseCodes.has(CloseCode.InstanceTerminated)).toBe(true)
    for (const code of terminalCloseCodes) expect(noAutoReconnectCloseCodes.has(code)).toBe(true)
    expect(noAutoReconnectCloseCodes.has(CloseCode.ServerShutdown)).toBe(false)
    expect(new Set(Object.values(ServerOp)).size).toBe(Object.values(ServerOp).length)
  })

  it("encodes an Input frame to the bytes documented in docs/PROTOCOL.md", () => {
    const bytes = encode([ClientOp.Input, 42, 0.6, 0, -0.8, 1])
    expect(Buffer.from(bytes).toString("hex")).toBe("96022acb3fe333333333333300cbbfe999999999999a01")
  })

  it("encodes a Snapshot frame to the bytes documented in docs/PROTOCOL.md", () => {
    const blob = packRecords([{ entityId: 7, x: 12.5, y: 0, z: -3.25, lastSeq: 42 }])
    expect(Buffer.from(blob).toString("hex")).toBe("07000000" + "00004841" + "00000000" + "000050c0" + "2a000000")
    const bytes = encode([ServerOp.Snapshot, "arena.1", "0,0,-1", 1234, blob])
    expect(Buffer.from(bytes).toString("hex")).toBe(
      "9567a7" + Buffer.from("arena.1").toString("hex") + "a6" + Buffer.from("0,0,-1").toString("hex") +
        "cd04d2c414" + Buffer.from(blob).toString("hex")
    )
  })
})

// ---- parseClientFrame: accepted ---------------------------------------------------

describe("parseClientFrame accepts", () => {
  const accepted: ReadonlyArray<readonly [name: string, bytes: Uint8Array, expected: ReadonlyArray<unknown>]> = [
    // Any msgpack number format is accepted for numeric fields: only the value counts.
    ["float32 directions", hex("96 02 01 ca3f000000 ca00000000 cabf800000 00"), [2, 1, 0.5, 0, -1, 0]],
    ["uint32 seq", hex("96 02 ce ffffffff 00 00 00 ce ffffffff"), [2, MAX_SEQ, 0, 0, 0, MAX_SEQ]],
    ["uint64 seq within range", hex("96 02 cf 00000000ffffffff 00 00 00 00"), [2, MAX_SEQ, 0, 0, 0, 0]],
    ["opcode as a float64 2.0", hex("96 cb4000000000000000 01 00 00 00 00"), [2, 1, 0, 0, 0, 0]],
    ["str8 experience id", hex("92 01 d9 05 6172656e61"), [1, "arena"]],
    ["ping with a negative float", hex("92 04 cb bff0000000000000"), [4, -1]],
    ["ping with int64", hex("92 04 d3 ffffffffffffffff"), [4, -1]]
  ]

  it.each(accepted)("%s", (_name, bytes, expected) => {
    const result = parseClientFrame(decode(bytes), MAX_CHAT)
    expect(result).toEqual({ ok: true, frame: expected })
  })

  it.each([
    ["join id of MAX_ID_LENGTH chars", [ClientOp.Join, "x".repeat(MAX_ID_LENGTH)]],
    ["chat text of exactly max length", [ClientOp.Chat, ChatChannel.World, "a".repeat(MAX_CHAT)]],
    ["private chat to an id of MAX_ID_LENGTH chars", [ClientOp.Chat, ChatChannel.Private, "hi", "p".repeat(MAX_ID_LENGTH)]],
    ["huge but finite direction", [ClientOp.Input, 1, Number.MAX_VALUE, -Number.MAX_VALUE, 0, 0]]
  ] as const)("%s", (_name, frame) => {
    expect(parseClientFrame(wire(frame), MAX_CHAT)).toEqual({ ok: true, frame })
  })
})

// ---- parseClientFrame: rejected ---------------------------------------------------

/** Frames that must be rejected, given as values built by the codec (so NaN/Infinity really travel). */
const rejected: ReadonlyArray<readonly [name: string, value: unknown, code: ErrorCode]> = [
  // not a frame at all
  ["a number", 2, ErrorCode.BadShape],
  ["a string", "join", ErrorCode.BadShape],
  ["nil", null, ErrorCode.BadShape],
  ["a map", { op: 1 }, ErrorCode.BadShape],
  ["a binary blob", new Uint8Array([1, 2, 3]), ErrorCode.BadShape],
  ["an empty array", [], ErrorCode.BadShape],
  // opcode
  ["unknown opcode 0", [0], ErrorCode.UnknownOp],
  ["unknown opcode 7", [7, 1], ErrorCode.UnknownOp],
  ["server opcode sent by a client", [ServerOp.Welcome, "x"], ErrorCode.UnknownOp],
  ["string opcode", ["2", 1, 0, 0, 0, 0], ErrorCode.UnknownOp],
  ["nil opcode", [null], ErrorCode.UnknownOp],
  ["boolean opcode", [true], ErrorCode.UnknownOp],
  ["array opcode", [[2]], ErrorCode.UnknownOp],
  ["fractional opcode", [2.5, 1, 0, 0, 0, 0], ErrorCode.UnknownOp],
  // arity
  ["input with 5 elements", [ClientOp.Input, 1, 0, 0, 0], ErrorCode.BadShape],
  ["input with 7 elements", [ClientOp.Input, 1, 0, 0, 0, 0, 0], ErrorCode.BadShape],
  ["join without id", [ClientOp.Join], ErrorCode.BadShape],
  ["join with extra field", [ClientOp.Join, "arena", 1], ErrorCode.BadShape],
  ["chat with 2 elements", [ClientOp.Chat, ChatChannel.World], ErrorCode.BadShape],
  ["chat with 5 elements", [ClientOp.Chat, ChatChannel.Private, "hi", "p", "x"], ErrorCode.BadShape],
  ["ping without time", [ClientOp.Ping], ErrorCode.BadShape],
  ["ping with extra field", [ClientOp.Ping, 1, 2], ErrorCode.BadShape],
  ["leave with a field", [ClientOp.Leave, 0], ErrorCode.BadShape],
  // input seq
  ["seq negative", [ClientOp.Input, -1, 0, 0, 0, 0], ErrorCode.BadShape],
  ["seq fractional", [ClientOp.Input, 1.5, 0, 0, 0, 0], ErrorCode.BadShape],
  ["seq 2^32", [ClientOp.Input, MAX_SEQ + 1, 0, 0, 0, 0], ErrorCode.BadShape],
  ["seq 2^53", [ClientOp.Input, 2 ** 53, 0, 0, 0, 0], ErrorCode.BadShape],
  ["seq NaN", [ClientOp.Input, Number.NaN, 0, 0, 0, 0], ErrorCode.BadShape],
  ["seq Infinity", [ClientOp.Input, Number.POSITIVE_INFINITY, 0, 0, 0, 0], ErrorCode.BadShape],
  ["seq string", [ClientOp.Input, "1", 0, 0, 0, 0], ErrorCode.BadShape],
  ["seq nil", [ClientOp.Input, null, 0, 0, 0, 0], ErrorCode.BadShape],
  // input direction
  ["dx NaN", [ClientOp.Input, 1, Number.NaN, 0, 0, 0], ErrorCode.BadShape],
  ["dy Infinity", [ClientOp.Input, 1, 0, Number.POSITIVE_INFINITY, 0, 0], ErrorCode.BadShape],
  ["dz -Infinity", [ClientOp.Input, 1, 0, 0, Number.NEGATIVE_INFINITY, 0], ErrorCode.BadShape],
  ["dx string", [ClientOp.Input, 1, "1", 0, 0, 0], ErrorCode.BadShape],
  ["dy nil", [ClientOp.Input, 1, 0, null, 0, 0], ErrorCode.BadShape],
  ["dz boolean", [ClientOp.Input, 1, 0, 0, true, 0], ErrorCode.BadShape],
  // input buttons
  ["buttons negative", [ClientOp.Input, 1, 0, 0, 0, -1], ErrorCode.BadShape],
  ["buttons fractional", [ClientOp.Input, 1, 0, 0, 0, 0.5], ErrorCode.BadShape],
  ["buttons 2^32", [ClientOp.Input, 1, 0, 0, 0, MAX_SEQ + 1], ErrorCode.BadShape],
  ["buttons NaN", [ClientOp.Input, 1, 0, 0, 0, Number.NaN], ErrorCode.BadShape],
  // chat channel
  ["chat channel 3", [ClientOp.Chat, 3, "hi"], ErrorCode.BadShape],
  ["chat channel -1", [ClientOp.Chat, -1, "hi"], ErrorCode.BadShape],
  ["chat channel 0.5", [ClientOp.Chat, 0.5, "hi"], ErrorCode.BadShape],
  ["chat channel as string", [ClientOp.Chat, "0", "hi"], ErrorCode.BadShape],
  ["chat channel nil", [ClientOp.Chat, null, "hi"], ErrorCode.BadShape],
  // chat text
  ["chat text empty", [ClientOp.Chat, ChatChannel.World, ""], ErrorCode.BadShape],
  ["chat text over max length", [ClientOp.Chat, ChatChannel.World, "a".repeat(MAX_CHAT + 1)], ErrorCode.BadShape],
  // Length is counted in UTF-16 code units: 251 emoji are 502 units.
  ["chat text of 251 emoji", [ClientOp.Chat, ChatChannel.World, "😀".repeat(251)], ErrorCode.BadShape],
  ["chat text not a string", [ClientOp.Chat, ChatChannel.World, 42], ErrorCode.BadShape],
  ["chat text binary", [ClientOp.Chat, ChatChannel.World, new Uint8Array([104, 105])], ErrorCode.BadShape],
  // chat `to`
  ["private chat without to", [ClientOp.Chat, ChatChannel.Private, "hi"], ErrorCode.BadShape],
  ["private chat to nil", [ClientOp.Chat, ChatChannel.Private, "hi", null], ErrorCode.BadShape],
  ["private chat to empty id", [ClientOp.Chat, ChatChannel.Private, "hi", ""], ErrorCode.BadShape],
  [
    "private chat to an id too long",
    [ClientOp.Chat, ChatChannel.Private, "hi", "p".repeat(MAX_ID_LENGTH + 1)],
    ErrorCode.BadShape
  ],
  ["private chat to a number", [ClientOp.Chat, ChatChannel.Private, "hi", 7], ErrorCode.BadShape],
  ["world chat with to", [ClientOp.Chat, ChatChannel.World, "hi", "p-2"], ErrorCode.BadShape],
  ["world chat with to nil", [ClientOp.Chat, ChatChannel.World, "hi", null], ErrorCode.BadShape],
  ["instance chat with to", [ClientOp.Chat, ChatChannel.Instance, "hi", "p-2"], ErrorCode.BadShape],
  // join id
  ["join id empty", [ClientOp.Join, ""], ErrorCode.BadShape],
  ["join id too long", [ClientOp.Join, "x".repeat(MAX_ID_LENGTH + 1)], ErrorCode.BadShape],
  ["join id a number", [ClientOp.Join, 1], ErrorCode.BadShape],
  ["join id nil", [ClientOp.Join, null], ErrorCode.BadShape],
  // ping
  ["ping with a string", [ClientOp.Ping, "now"], ErrorCode.BadShape],
  ["ping with nil", [ClientOp.Ping, null], ErrorCode.BadShape],
  ["ping with NaN", [ClientOp.Ping, Number.NaN], ErrorCode.BadShape],
  ["ping with Infinity", [ClientOp.Ping, Number.POSITIVE_INFINITY], ErrorCode.BadShape],
  // world edit
  ["world edit with 5 elements", [ClientOp.WorldEdit, "k", 0, 0, 0], ErrorCode.BadShape],
  ["world edit with 7 elements", [ClientOp.WorldEdit, "k", 0, 0, 0, "v", 1], ErrorCode.BadShape],
  ["world edit key empty", [ClientOp.WorldEdit, "", 0, 0, 0, "v"], ErrorCode.BadShape],
  ["world edit key too long", [ClientOp.WorldEdit, "k".repeat(MAX_EDIT_KEY_LENGTH + 1), 0, 0, 0, "v"], ErrorCode.BadShape],
  ["world edit key a number", [ClientOp.WorldEdit, 7, 0, 0, 0, "v"], ErrorCode.BadShape],
  ["world edit key nil", [ClientOp.WorldEdit, null, 0, 0, 0, "v"], ErrorCode.BadShape],
  ["world edit x NaN", [ClientOp.WorldEdit, "k", Number.NaN, 0, 0, "v"], ErrorCode.BadShape],
  ["world edit y Infinity", [ClientOp.WorldEdit, "k", 0, Number.POSITIVE_INFINITY, 0, "v"], ErrorCode.BadShape],
  ["world edit z -Infinity", [ClientOp.WorldEdit, "k", 0, 0, Number.NEGATIVE_INFINITY, "v"], ErrorCode.BadShape],
  ["world edit x a string", [ClientOp.WorldEdit, "k", "1", 0, 0, "v"], ErrorCode.BadShape],
  ["world edit z nil", [ClientOp.WorldEdit, "k", 0, 0, null, "v"], ErrorCode.BadShape],
  ["world edit value too long", [ClientOp.WorldEdit, "k", 0, 0, 0, "v".repeat(MAX_EDIT_VALUE_LENGTH + 1)], ErrorCode.BadShape],
  ["world edit value a number", [ClientOp.WorldEdit, "k", 0, 0, 0, 5], ErrorCode.BadShape],
  ["world edit value binary", [ClientOp.WorldEdit, "k", 0, 0, 0, new Uint8Array([1])], ErrorCode.BadShape],
  ["world edit value a map", [ClientOp.WorldEdit, "k", 0, 0, 0, { v: 1 }], ErrorCode.BadShape]
]

describe("parseClientFrame rejects", () => {
  it.each(rejected)("%s -> %s", (_name, value, code) => {
    const decoded = wire(value)
    const result = parseClientFrame(decoded, MAX_CHAT)
    expect(result.ok).toBe(false)
    if (!result.ok) {
      expect(result.code).toBe(code)
      expect(result.message.length).toBeGreaterThan(0)
    }
  })

  it("really carries NaN and Infinity through msgpack (float64 and float32)", () => {
    expect(wire([ClientOp.Input, 1, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 0])).toEqual([
      ClientOp.Input,
      1,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      0
    ])
    // float32 NaN / +Infinity written by hand, as a client in another language may send them.
    for (const f32 of ["ca7fc00000", "ca7f800000", "caff800000"]) {
      const value = decode(hex(`96 02 01 ${f32} 00 00 00`))
      expect(parseClientFrame(value, MAX_CHAT)).toMatchObject({ ok: false, code: ErrorCode.BadShape })
    }
  })

  it("honours the configured chat length", () => {
    const frame = [ClientOp.Chat, ChatChannel.World, "abcdef"]
    expect(parseClientFrame(frame, 6).ok).toBe(true)
    expect(parseClientFrame(frame, 5)).toMatchObject({ ok: false, code: ErrorCode.BadShape })
  })

  it("never throws, whatever the value", () => {
    const values: Array<unknown> = [undefined, Symbol("x"), () => 1, new Map(), [undefined], [ClientOp.Chat, 0, "x", undefined, undefined]]
    for (const v of values) expect(() => parseClientFrame(v, MAX_CHAT)).not.toThrow()
  })
})

// ---- garbage bytes -------------------------------------------------------------------

/** Decodes untrusted bytes as the gateway does: a throw is a bad_frame, anything else goes to the parser. */
const classify = (bytes: Uint8Array): "threw" | ErrorCode | "valid" => {
  let value: unknown
  try {
    value = decode(bytes)
  } catch {
    return "threw"
  }
  const result = parseClientFrame(value, MAX_CHAT)
  return result.ok ? "valid" : result.code
}

/** Deterministic PRNG (mulberry32) so the fuzz cases are the same on every run. */
const mulberry32 = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

describe("garbage bytes", () => {
  const garbage: ReadonlyArray<readonly [name: string, bytes: Uint8Array]> = [
    ["empty", new Uint8Array(0)],
    ["reserved byte 0xc1", hex("c1")],
    ["array header only", hex("92")],
    ["truncated float64", hex("96 02 2a cb 3f e3")],
    ["trailing bytes after a valid leave", hex("91 05 00")],
    ["trailing bytes after a valid ping", hex("92 04 01 ff")],
    ["two concatenated frames", hex("91 05 91 05")],
    ["array32 claiming 2^32-1 elements", hex("dd ffffffff 05")],
    ["str32 claiming 4 GiB", hex("92 01 db ffffffff 61")],
    ["bin32 claiming 4 GiB", hex("c6 ffffffff 00")],
    ["map32 claiming 2^32-1 entries", hex("df ffffffff")],
    ["unknown ext type", hex("c7 00 05")],
    ["timestamp ext", hex("d6 ff 00000001")],
    ["nil", hex("c0")],
    ["true", hex("c3")],
    ["text 'hello'", new TextEncoder().encode("hello")],
    ["json frame", new TextEncoder().encode('[2,1,0,0,0,0]')],
    ["all 0xff", new Uint8Array(64).fill(0xff)],
    ["all zeros", new Uint8Array(64)]
  ]

  it.each(garbage)("%s is never a valid frame", (_name, bytes) => {
    expect(classify(bytes)).not.toBe("valid")
  })

  it("every strict prefix of every valid client frame is rejected", () => {
    for (const [name, frame] of clientFrames) {
      const bytes = encode(frame)
      for (let n = 0; n < bytes.byteLength; n++) {
        const outcome = classify(bytes.subarray(0, n))
        if (outcome === "valid") throw new Error(`prefix of ${n} bytes of ${name} parsed as a valid frame`)
      }
      expect(classify(bytes)).toBe("valid")
    }
  })

  it("random byte strings either throw or are rejected by the parser", () => {
    const random = mulberry32(0x7e55e7a)
    const outcomes = new Map<string, number>()
    for (let i = 0; i < 5000; i++) {
      const length = 1 + Math.floor(random() * 48)
      const bytes = new Uint8Array(length)
      for (let j = 0; j < length; j++) bytes[j] = Math.floor(random() * 256)
      const outcome = classify(bytes)
      if (outcome === "valid") throw new Error(`random bytes ${Buffer.from(bytes).toString("hex")} parsed as a valid frame`)
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1)
    }
    expect(outcomes.get("threw") ?? 0).toBeGreaterThan(0)
  })

  it("random arrays starting with a client opcode (fixarray headers) are never valid unless well-formed", () => {
    const random = mulberry32(42)
    for (let i = 0; i < 5000; i++) {
      const length = 2 + Math.floor(random() * 24)
      const bytes = new Uint8Array(length)
      bytes[0] = 0x91 + Math.floor(random() * 6) // fixarray of 1..6
      bytes[1] = 1 + Math.floor(random() * 6) // a client opcode
      for (let j = 2; j < length; j++) bytes[j] = Math.floor(random() * 256)
      let value: unknown
      try {
        value = decode(bytes)
      } catch {
        continue
      }
      const result = parseClientFrame(value, MAX_CHAT)
      if (!result.ok) continue
      // Anything accepted must really have the documented shape.
      const frame = result.frame as ReadonlyArray<unknown>
      switch (frame[0]) {
        case ClientOp.Input:
          expect(frame).toHaveLength(6)
          for (const k of [1, 5]) expect(Number.isInteger(frame[k]) && (frame[k] as number) >= 0 && (frame[k] as number) <= MAX_SEQ).toBe(true)
          for (const k of [2, 3, 4]) expect(Number.isFinite(frame[k])).toBe(true)
          break
        case ClientOp.Join:
          expect(typeof frame[1] === "string" && frame[1].length >= 1 && frame[1].length <= MAX_ID_LENGTH).toBe(true)
          break
        case ClientOp.Ping:
          expect(Number.isFinite(frame[1])).toBe(true)
          break
        case ClientOp.Leave:
          expect(frame).toHaveLength(1)
          break
        case ClientOp.Chat:
          expect([0, 1, 2]).toContain(frame[1])
          expect(typeof frame[2] === "string" && frame[2].length >= 1).toBe(true)
          break
        case ClientOp.WorldEdit:
          expect(frame).toHaveLength(6)
          expect(typeof frame[1] === "string" && frame[1].length >= 1 && frame[1].length <= MAX_EDIT_KEY_LENGTH).toBe(true)
          for (const k of [2, 3, 4]) expect(Number.isFinite(frame[k])).toBe(true)
          expect(frame[5] === null || (typeof frame[5] === "string" && frame[5].length <= MAX_EDIT_VALUE_LENGTH)).toBe(true)
          break
        default:
          throw new Error(`accepted unknown opcode ${String(frame[0])}`)
      }
    }
  })
})

// ---- snapshot records ----------------------------------------------------------------

describe("snapshot records", () => {
  const records: ReadonlyArray<SnapshotRecord> = [
    { entityId: 1, x: 0, y: 0, z: 0, lastSeq: 0 },
    { entityId: 2, x: 12.5, y: -3.25, z: 1000, lastSeq: 42 },
    { entityId: 0xffffffff, x: -1000, y: 0.5, z: -0.125, lastSeq: MAX_SEQ },
    { entityId: 77, x: 1e6, y: -1e6, z: 65536.5, lastSeq: 123456789 }
  ]

  it("SNAPSHOT_RECORD_BYTES is 20 (u32 + 3 x f32 + u32)", () => {
    expect(SNAPSHOT_RECORD_BYTES).toBe(20)
  })

  it("write/read round trip of exactly representable values", () => {
    expect(readSnapshotRecords(packRecords(records))).toEqual(records)
  })

  it("positions are stored as f32 (rounded), ids and seqs as u32", () => {
    const bytes = packRecords([{ entityId: 5, x: 0.1, y: 1 / 3, z: -2.2, lastSeq: 9 }])
    const [r] = readSnapshotRecords(bytes)
    expect(r).toEqual({ entityId: 5, x: Math.fround(0.1), y: Math.fround(1 / 3), z: Math.fround(-2.2), lastSeq: 9 })
  })

  it("writes little endian at the given offset", () => {
    const bytes = new Uint8Array(SNAPSHOT_RECORD_BYTES + 3)
    writeSnapshotRecord(new DataView(bytes.buffer), 3, 0x01020304, 1, -2, 0.5, 0x0a0b0c0d)
    expect(Buffer.from(bytes).toString("hex")).toBe(
      "000000" + "04030201" + "0000803f" + "000000c0" + "0000003f" + "0d0c0b0a"
    )
  })

  it("reads a view with a byteOffset and ignores a trailing partial record", () => {
    const packed = packRecords(records)
    const big = new Uint8Array(7 + packed.byteLength + 11)
    big.fill(0xee)
    big.set(packed, 7)
    const view = big.subarray(7, 7 + packed.byteLength + 11) // 11 extra bytes: not a whole record
    expect(readSnapshotRecords(view)).toEqual(records)
    expect(readSnapshotRecords(new Uint8Array(0))).toEqual([])
    expect(readSnapshotRecords(new Uint8Array(SNAPSHOT_RECORD_BYTES - 1))).toEqual([])
  })

  describe("findAckedSeq", () => {
    const packed = packRecords(records)
    const offsetView = (() => {
      const big = new Uint8Array(5 + packed.byteLength)
      big.set(packed, 5)
      return big.subarray(5)
    })()
    it.each([
      ["first record", packed, 1, 0],
      ["middle record", packed, 2, 42],
      ["u32 max id", packed, 0xffffffff, MAX_SEQ],
      ["last record", packed, 77, 123456789],
      ["absent id", packed, 3, undefined],
      ["empty blob", new Uint8Array(0), 1, undefined],
      ["view with byteOffset", offsetView, 77, 123456789],
      // A trailing partial record is never read, even if its first bytes match.
      ["partial trailing record", Uint8Array.from([...packed, 9, 0, 0, 0]), 9, undefined]
    ] as const)("%s", (_name, bytes, entityId, expected) => {
      expect(findAckedSeq(bytes, entityId)).toBe(expected)
    })

    it("does not match an id that only appears inside a position or seq field", () => {
      // lastSeq 42 of entity 2 lies at bytes 36..39; 42 must not be found as an entity id.
      expect(findAckedSeq(packed, 42)).toBeUndefined()
    })

    it("agrees with readSnapshotRecords on every entity", () => {
      for (const r of readSnapshotRecords(packed)) expect(findAckedSeq(packed, r.entityId)).toBe(r.lastSeq)
    })
  })
})
