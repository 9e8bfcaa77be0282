import { describe, expect, it } from "vitest"
import { TesseraClient } from "../../src/client/TesseraClient.js"
import type { TesseraClientOptions } from "../../src/client/TesseraClient.js"
import { AckTracker, isSnapshotFrame, locateSnapshotEntities, STALE_TICKS, WorldView } from "../../src/client/WorldView.js"
import type { SnapshotLocation } from "../../src/client/WorldView.js"
import { decode, encode } from "../../src/protocol/Codec.js"
import { findAckedSeq, SNAPSHOT_RECORD_BYTES, writeSnapshotRecord } from "../../src/protocol/Messages.js"
import { ServerOp } from "../../src/protocol/Opcodes.js"

type Rec = readonly [id: number, x: number, y: number, z: number, lastSeq: number]

/** A real snapshot entities blob, as the server's encoder writes it. */
const blob = (records: ReadonlyArray<Rec>): Uint8Array => {
  const bytes = new Uint8Array(records.length * SNAPSHOT_RECORD_BYTES)
  const view = new DataView(bytes.buffer)
  records.forEach(([id, x, y, z, seq], i) => writeSnapshotRecord(view, i * SNAPSHOT_RECORD_BYTES, id, x, y, z, seq))
  return bytes
}

/** Entity e at a position derived from its id, so tests only name ids. */
const e = (id: number, seq = 0): Rec => [id, id * 1.5, 0, -id, seq]

/** Round-trips the blob through the real codec, as the client receives it. */
const wire = (region: string, cell: string, tick: number, records: ReadonlyArray<Rec>) => {
  const frame = decode(encode([ServerOp.Snapshot, region, cell, tick, blob(records)])) as [
    number,
    string,
    string,
    number,
    Uint8Array
  ]
  return frame
}

type Step = readonly [region: string, cell: string, tick: number, records: ReadonlyArray<Rec>]

interface Case {
  readonly name: string
  readonly steps: ReadonlyArray<Step>
  readonly ids: ReadonlyArray<number>
  readonly cells?: number
  readonly regions?: number
}

const run = (steps: ReadonlyArray<Step>, own?: number): { view: WorldView; results: Array<number> } => {
  const view = new WorldView()
  view.reset(own)
  const results: Array<number> = []
  for (const [region, cell, tick, records] of steps) {
    const [, r, c, t, entities] = wire(region, cell, tick, records)
    results.push(view.apply(r, c, t, entities))
  }
  return { view, results }
}

const ids = (view: WorldView): Array<number> => [...view.entities.keys()].sort((a, b) => a - b)

const cases: ReadonlyArray<Case> = [
  {
    name: "a cell's snapshot replaces its previous set",
    steps: [
      ["r", "0:0", 1, [e(1), e(2)]],
      ["r", "0:0", 2, [e(2), e(3)]]
    ],
    ids: [2, 3],
    cells: 1
  },
  {
    name: "the world is the union of cells",
    steps: [
      ["r", "0:0", 1, [e(1)]],
      ["r", "1:0", 1, [e(2), e(3)]]
    ],
    ids: [1, 2, 3],
    cells: 2
  },
  {
    name: "an empty blob empties the cell",
    steps: [
      ["r", "0:0", 1, [e(1), e(2)]],
      ["r", "1:0", 1, [e(3)]],
      ["r", "0:0", 2, []],
      ["r", "1:0", 2, [e(3)]]
    ],
    ids: [3]
  },
  {
    name: "an entity moving to a cell applied before its old cell stays",
    steps: [
      ["r", "0:0", 1, [e(1), e(2)]],
      ["r", "1:0", 2, [e(1)]],
      ["r", "0:0", 2, [e(2)]]
    ],
    ids: [1, 2]
  },
  {
    name: "an entity moving to a cell applied after its old cell stays",
    steps: [
      ["r", "0:0", 1, [e(1), e(2)]],
      ["r", "0:0", 2, [e(2)]],
      ["r", "1:0", 2, [e(1)]]
    ],
    ids: [1, 2]
  },
  {
    name: "an entity listed by two cells stays until neither lists it",
    steps: [
      ["r", "0:0", 1, [e(1)]],
      ["r", "1:0", 1, [e(1)]],
      ["r", "0:0", 2, []],
      ["r", "1:0", 2, [e(1)]]
    ],
    ids: [1]
  },
  {
    name: "an entity dropped by both cells is gone",
    steps: [
      ["r", "0:0", 1, [e(1)]],
      ["r", "1:0", 1, [e(1)]],
      ["r", "0:0", 2, []],
      ["r", "1:0", 2, [e(2)]]
    ],
    ids: [2]
  },
  {
    name: "a duplicate record in one blob counts once",
    steps: [
      ["r", "0:0", 1, [e(1), e(1), e(2)]],
      ["r", "0:0", 2, [e(2)]]
    ],
    ids: [2]
  },
  {
    name: `a cell not updated for ${STALE_TICKS} advances is kept`,
    steps: [
      ["r", "0:0", 1, [e(1)]],
      ["r", "1:0", 1, [e(2)]],
      ...[2, 3, 4].map((t): Step => ["r", "0:0", t, [e(1)]])
    ],
    ids: [1, 2],
    cells: 2
  },
  {
    name: `a cell not updated for more than ${STALE_TICKS} advances is dropped`,
    steps: [
      ["r", "0:0", 1, [e(1)]],
      ["r", "1:0", 1, [e(2)]],
      ...[2, 3, 4, 5].map((t): Step => ["r", "0:0", t, [e(1)]])
    ],
    ids: [1],
    cells: 1
  },
  {
    name: "a stale cell does not take an entity that moved into a live cell",
    steps: [
      ["r", "0:0", 1, [e(1)]],
      ["r", "1:0", 1, [e(2)]],
      ["r", "0:0", 2, [e(1), e(2)]],
      ...[3, 4, 5, 6].map((t): Step => ["r", "0:0", t, [e(1), e(2)]])
    ],
    ids: [1, 2],
    cells: 1
  },
  {
    name: "skipped tick numbers count as one advance (a late tick burst keeps every cell)",
    steps: [
      ["r", "0:0", 1, [e(1)]],
      ["r", "1:0", 1, [e(2)]],
      ["r", "0:0", 20, [e(1)]],
      ["r", "1:0", 20, [e(2)]]
    ],
    ids: [1, 2],
    cells: 2
  },
  {
    name: "a region whose tick goes back restarted: its old cells are dropped",
    steps: [
      ["r", "0:0", 100, [e(1)]],
      ["r", "1:0", 100, [e(2)]],
      ["r", "0:0", 1, [e(3)]]
    ],
    ids: [3],
    cells: 1
  },
  {
    name: "cells are per region (same key in two regions)",
    steps: [
      ["a", "0:0", 1, [e(1)]],
      ["b", "0:0", 7, [e(2)]]
    ],
    ids: [1, 2],
    cells: 2,
    regions: 2
  },
  {
    name: "a region that stopped while another advances is dropped",
    steps: [
      ["a", "0:0", 1, [e(1)]],
      ["b", "0:0", 50, [e(2)]],
      ...[51, 52, 53, 54].map((t): Step => ["b", "0:0", t, [e(2)]])
    ],
    ids: [2],
    regions: 1
  },
  {
    name: "two live regions interleaved both stay",
    steps: [1, 2, 3, 4, 5, 6, 7, 8].flatMap((t): Array<Step> => [
      ["a", "0:0", t, [e(1)]],
      ["b", "0:0", t + 1000, [e(2)]]
    ]),
    ids: [1, 2],
    regions: 2
  }
]

describe("WorldView", () => {
  it.each(cases)("$name", ({ steps, ids: expected, cells, regions }) => {
    const { view } = run(steps)
    expect(ids(view)).toEqual(expected)
    if (cells !== undefined) expect(view.cellCount).toBe(cells)
    if (regions !== undefined) expect(view.regionCount).toBe(regions)
  })

  it("keeps the values of the last record seen, as float32", () => {
    const { view } = run([
      ["r", "0:0", 1, [[5, 1.1, 2, 3, 9]]],
      ["r", "0:0", 2, [[5, 10.25, -2.5, 7, 11]]]
    ])
    expect(view.entities.get(5)).toMatchObject({ x: 10.25, y: -2.5, z: 7, lastSeq: 11 })
    const { view: v2 } = run([["r", "0:0", 1, [[5, 1.1, 2, 3, 9]]]])
    expect(v2.entities.get(5)!.x).toBe(Math.fround(1.1))
  })

  it("updates entity objects in place (no per-snapshot allocation for known entities)", () => {
    const view = new WorldView()
    view.apply("r", "0:0", 1, blob([e(1)]))
    const first = view.entities.get(1)
    view.apply("r", "0:0", 2, blob([[1, 9, 9, 9, 3]]))
    expect(view.entities.get(1)).toBe(first)
  })

  it("reports the own entity's lastSeq per blob and keeps the highest", () => {
    const own = 7
    const { view, results } = run(
      [
        ["r", "0:0", 1, [e(1, 100), e(own, 3)]],
        ["r", "1:0", 1, [e(2, 200)]],
        ["r", "0:0", 2, [e(own, 5)]],
        ["r", "0:0", 3, [e(own, 4)]]
      ],
      own
    )
    expect(results).toEqual([3, -1, 5, 4])
    expect(view.ownLastSeq).toBe(5)
  })

  it("reset forgets everything and sets the own entity", () => {
    const view = new WorldView()
    view.apply("r", "0:0", 1, blob([e(1), e(2, 4)]))
    view.reset(2)
    expect(view.entities.size).toBe(0)
    expect(view.cellCount).toBe(0)
    expect(view.ownEntityId).toBe(2)
    expect(view.apply("r", "0:0", 1, blob([e(2, 4)]))).toBe(4)
  })

  it("ignores a trailing partial record", () => {
    const view = new WorldView()
    const b = blob([e(1), e(2)])
    view.apply("r", "0:0", 1, b.subarray(0, SNAPSHOT_RECORD_BYTES + 7))
    expect(ids(view)).toEqual([1])
  })
})

describe("AckTracker", () => {
  interface AckCase {
    readonly name: string
    readonly capacity: number
    readonly sent: number
    readonly acks: ReadonlyArray<readonly [seq: number, now: number]>
    /** [return value, samples] per ack */
    readonly expected: ReadonlyArray<readonly [number, ReadonlyArray<number>]>
    readonly lastAcked: number
  }
  // seq s is sent at time 10 * s
  const ackCases: ReadonlyArray<AckCase> = [
    {
      name: "each newly acked seq gets a sample, oldest first",
      capacity: 16,
      sent: 5,
      acks: [[3, 100]],
      expected: [[70, [90, 80, 70]]],
      lastAcked: 3
    },
    {
      name: "an old or repeated ack adds nothing",
      capacity: 16,
      sent: 5,
      acks: [
        [3, 100],
        [3, 110],
        [2, 120],
        [5, 130]
      ],
      expected: [
        [70, [90, 80, 70]],
        [-1, []],
        [-1, []],
        [80, [90, 80]]
      ],
      lastAcked: 5
    },
    {
      name: "an ack beyond the last sent seq (an earlier client's) is ignored",
      capacity: 16,
      sent: 5,
      acks: [[9, 100]],
      expected: [[-1, []]],
      lastAcked: 0
    },
    {
      name: "only seqs still in the ring are sampled",
      capacity: 16,
      sent: 40,
      acks: [[40, 1000]],
      expected: [[600, Array.from({ length: 16 }, (_, i) => 1000 - 10 * (25 + i))]],
      lastAcked: 40
    }
  ]

  it.each(ackCases)("$name", ({ capacity, sent, acks, expected, lastAcked }) => {
    const tracker = new AckTracker(capacity)
    for (let s = 1; s <= sent; s++) tracker.sent(s, 10 * s)
    acks.forEach(([seq, now], i) => {
      const samples: Array<number> = []
      const latency = tracker.acked(seq, now, (ms) => samples.push(ms))
      expect([latency, samples]).toEqual(expected[i])
    })
    expect(tracker.lastAckedSeq).toBe(lastAcked)
    expect(tracker.pending).toBe(lastAcked < sent)
  })

  it("rounds the capacity up to a power of two", () => {
    expect(new AckTracker(1000).capacity).toBe(1024)
    expect(new AckTracker(1).capacity).toBe(16)
  })
})

describe("locateSnapshotEntities", () => {
  const longCell = "cell-" + "x".repeat(40) // str8
  const hugeRegion = "region-" + "y".repeat(300) // str16
  const frames: ReadonlyArray<readonly [string, string, string, number, ReadonlyArray<Rec>]> = [
    ["fixint tick, one record", "r1", "0:0", 5, [e(7, 42)]],
    ["tick 0, empty blob", "r1", "0:0", 0, []],
    ["uint8 tick", "r1", "-1:2", 200, [e(1), e(7, 9)]],
    ["uint16 tick, str8 cell", "r1", longCell, 60_000, [e(7, 3)]],
    ["uint32 tick, str16 region", hugeRegion, "3:4", 4_000_000_000, [e(7, 1)]],
    ["uint64 tick", "r1", "0:0", 2 ** 40 + 3, [e(7, 8)]],
    ["bin16 blob (20 records)", "r1", "0:0", 9, Array.from({ length: 20 }, (_, i) => e(i + 1, i))]
  ]

  it.each(frames)("%s", (_name, region, cell, tick, records) => {
    const bytes = new Uint8Array(encode([ServerOp.Snapshot, region, cell, tick, blob(records)]))
    expect(isSnapshotFrame(bytes)).toBe(true)
    const loc: SnapshotLocation = { tick: -1, offset: -1, length: -1 }
    expect(locateSnapshotEntities(bytes, loc)).toBe(true)
    expect(loc.tick).toBe(tick)
    expect(loc.length).toBe(records.length * SNAPSHOT_RECORD_BYTES)
    const entities = bytes.subarray(loc.offset, loc.offset + loc.length)
    expect(entities).toEqual(blob(records))
    const own = records.find((r) => r[0] === 7)
    expect(findAckedSeq(entities, 7)).toBe(own?.[4])
  })

  it("rejects other frames and truncated snapshots", () => {
    const loc: SnapshotLocation = { tick: 0, offset: 0, length: 0 }
    const welcome = new Uint8Array(encode([ServerOp.Welcome, "v", 1, 20, "p", "t", false]))
    expect(isSnapshotFrame(welcome)).toBe(false)
    expect(locateSnapshotEntities(welcome, loc)).toBe(false)
    const snap = new Uint8Array(encode([ServerOp.Snapshot, "r", "c", 3, blob([e(1)])]))
    expect(locateSnapshotEntities(snap.subarray(0, snap.length - 1), loc)).toBe(false)
    const notBin = new Uint8Array(encode([ServerOp.Snapshot, "r", "c", 3, "text"]))
    expect(locateSnapshotEntities(notBin, loc)).toBe(false)
    const negativeTick = new Uint8Array(encode([ServerOp.Snapshot, "r", "c", -1, blob([])]))
    expect(locateSnapshotEntities(negativeTick, loc)).toBe(false)
  })
})

// ---- the SDK's use of the world view and acks, against a fake socket (no server) ----

class FakeSocket {
  static instances: Array<FakeSocket> = []
  binaryType = ""
  readyState = 1
  bufferedAmount = 0
  onopen: ((event: unknown) => void) | null = null
  onmessage: ((event: { data: unknown }) => void) | null = null
  onclose: ((event: { code: number; reason: string }) => void) | null = null
  onerror: ((event: unknown) => void) | null = null
  readonly sent: Array<unknown> = []
  constructor(readonly url: string) {
    FakeSocket.instances.push(this)
  }
  send(data: Uint8Array): void {
    this.sent.push(decode(data))
  }
  close(code = 1000, reason = ""): void {
    this.drop(code, reason)
  }
  /** A server frame, delivered as browsers do (an ArrayBuffer). */
  receive(frame: ReadonlyArray<unknown>): void {
    const bytes = encode(frame)
    this.onmessage?.({ data: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) })
  }
  drop(code: number, reason = ""): void {
    if (this.readyState === 3) return
    this.readyState = 3
    this.onclose?.({ code, reason })
  }
}

const welcomeFrame = (resumed: boolean, token = "rt-1") => [ServerOp.Welcome, "test", 1, 20, "p1", token, resumed]
const joinedFrame = (entityId: number, worldId = "w1") => [ServerOp.Joined, "arena", worldId, "r1", entityId, 0, 0, 0, 20, 50]
const snapshotFrame = (tick: number, records: ReadonlyArray<Rec>) => [ServerOp.Snapshot, "r1", "0:0", tick, blob(records)]
const lastSocket = (): FakeSocket => FakeSocket.instances[FakeSocket.instances.length - 1]
const flush = () => new Promise((resolve) => setTimeout(resolve, 0))

describe("TesseraClient with a fake socket", () => {
  const auth = { playerId: "p1", name: "Ann", token: "tok en", expiresAt: Number.NaN }
  let clock = 0
  const make = (options: Partial<TesseraClientOptions> = {}) =>
    new TesseraClient("http://127.0.0.1:7350", auth, {
      WebSocket: FakeSocket,
      now: () => clock,
      pingIntervalMs: 0,
      reconnectBaseMs: 1,
      reconnectMaxMs: 2,
      ...options
    })

  const connectAndJoin = async (client: TesseraClient, entityId = 7) => {
    const connecting = client.connect()
    lastSocket().receive(welcomeFrame(false))
    await connecting
    const joining = client.join("arena")
    lastSocket().receive(joinedFrame(entityId))
    return joining
  }

  it("connects, joins, tracks its acks and the world from snapshots", async () => {
    const client = make()
    const acks: Array<[number, number]> = []
    client.on("ack", (seq, ms) => acks.push([seq, ms]))
    const joined = await connectAndJoin(client)
    const socket = lastSocket()
    expect(socket.url).toBe("ws://127.0.0.1:7350/v1/ws?token=tok%20en")
    expect(socket.binaryType).toBe("arraybuffer")
    expect(joined).toMatchObject({ entityId: 7, worldId: "w1", tickRate: 20, cellSize: 50 })
    expect(client.entityId).toBe(7)

    clock = 1000
    expect(client.sendInput(1, 0, 0)).toBe(1)
    clock = 1010
    expect(client.sendInput(0, 0, 1, 3)).toBe(2)
    expect(socket.sent.slice(-2)).toEqual([
      [2, 1, 1, 0, 0, 0],
      [2, 2, 0, 0, 1, 3]
    ])
    clock = 1060
    socket.receive(snapshotFrame(1, [e(7, 1), e(8)]))
    clock = 1100
    socket.receive(snapshotFrame(2, [e(7, 2), e(8)]))
    socket.receive(snapshotFrame(3, [e(7, 2)]))
    expect(acks).toEqual([
      [1, 60],
      [2, 90]
    ])
    expect(client.lastAckedSeq).toBe(2)
    expect([...client.world.entities.keys()]).toEqual([7])
    expect(client.stats.snapshots).toBe(3)
    await client.close()
    expect(client.state).toBe("closed")
  })

  it("rejects a join with the server's Error frame", async () => {
    const client = make()
    const connecting = client.connect()
    lastSocket().receive(welcomeFrame(false))
    await connecting
    const joining = client.join("arena")
    lastSocket().receive([ServerOp.Error, "world_full", "no room"])
    await expect(joining).rejects.toMatchObject({ name: "TesseraError", code: "world_full", message: "no room" })
    await client.close()
  })

  it("without decoding, still finds its own ack and counts snapshots", async () => {
    const samples: Array<number> = []
    const client = make({ decodeSnapshots: false, onAckSample: (ms) => samples.push(ms) })
    await connectAndJoin(client, 3)
    clock = 0
    client.sendInput(1, 0, 0)
    client.sendInput(1, 0, 0)
    clock = 50
    lastSocket().receive(snapshotFrame(1, [e(1), e(3, 2), e(5)]))
    expect(client.lastAckedSeq).toBe(2)
    expect(samples).toEqual([50, 50])
    expect(client.world.entities.size).toBe(0)
    expect(client.stats.snapshots).toBe(1)
    await client.close()
  })

  it("reconnects with resume after 4000 and rejoins when the session was not resumed", async () => {
    const client = make()
    const seen: Array<string> = []
    client.on("reconnecting", () => seen.push("reconnecting"))
    client.on("reconnected", (resumed) => seen.push(`reconnected:${resumed}`))
    client.on("close", (code) => seen.push(`close:${code}`))
    await connectAndJoin(client)
    lastSocket().drop(4000, "server shutting down")
    expect(client.state).toBe("reconnecting")
    expect(client.sendInput(1, 0, 0)).toBe(0) // not sent while away
    await new Promise((resolve) => setTimeout(resolve, 20)) // backoff of 1..2 ms
    const second = lastSocket()
    expect(FakeSocket.instances.length).toBeGreaterThan(1)
    expect(second.url).toContain("&resume=rt-1")
    second.receive(welcomeFrame(false, "rt-2"))
    await flush()
    expect(second.sent).toEqual([[1, "arena"]])
    second.receive(joinedFrame(9, "w2"))
    expect(client.isInWorld).toBe(true)
    expect(client.entityId).toBe(9)
    expect(seen).toEqual(["close:4000", "reconnecting", "reconnected:false"])
    await client.close()
  })

  it("a server-made move: Moved then Joined (no join sent) resets the world view for the new world", async () => {
    const client = make()
    const events: Array<string> = []
    client.on("moved", (m) => events.push(`moved:${m.fromWorld}->${m.toWorld}:${m.reason}`))
    client.on("joined", (j) => events.push(`joined:${j.worldId}:${j.entityId}`))
    client.on("left", () => events.push("left"))
    await connectAndJoin(client, 7)
    const socket = lastSocket()
    socket.receive(snapshotFrame(1, [e(7), e(8)]))
    expect(client.world.entities.size).toBe(2)
    const sent = socket.sent.length
    socket.receive([ServerOp.Moved, "w1", "w2", "moved to w2 by an admin"])
    expect(client.world.entities.size).toBe(0)
    socket.receive([ServerOp.Joined, "arena", "w2", "w2", 3, 5, 0, 5, 20, 50])
    expect(events.slice(1)).toEqual(["moved:w1->w2:moved to w2 by an admin", "joined:w2:3"])
    expect(socket.sent.length).toBe(sent) // no Join
    expect(client.isInWorld).toBe(true)
    expect(client.entityId).toBe(3)
    expect(client.joined).toMatchObject({ worldId: "w2", regionId: "w2", entityId: 3 })
    // Inputs keep their seqs and are acked by the new entity.
    clock = 10
    const seq = client.sendInput(1, 0, 0)
    expect(seq).toBeGreaterThan(0)
    clock = 40
    socket.receive([ServerOp.Snapshot, "w2", "0,0,0", 1, blob([e(3, seq), e(8)])])
    expect(client.lastAckedSeq).toBe(seq)
    expect([...client.world.entities.keys()].sort()).toEqual([3, 8])
    // A malformed Moved is reported, not applied.
    const errors: Array<string> = []
    client.on("error", (err) => errors.push(err.code))
    socket.receive([ServerOp.Moved, 5, "w3", "x"])
    expect(errors).toEqual(["bad_shape"])
    expect(client.isInWorld).toBe(true)
    await client.close()
  })

  it("close 4006 (instance terminated): Moved to no world, then closed for good; a later connect starts afresh", async () => {
    const client = make()
    const seen: Array<string> = []
    client.on("moved", (m) => seen.push(`moved:${m.toWorld}`))
    client.on("close", (code, reason) => seen.push(`close:${code}:${reason}`))
    client.on("reconnecting", () => seen.push("reconnecting"))
    await connectAndJoin(client)
    const count = FakeSocket.instances.length
    lastSocket().receive([ServerOp.Moved, "w1", null, "w1: maintenance"])
    expect(client.isInWorld).toBe(false)
    lastSocket().drop(4006, "instance terminated: w1: maintenance")
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(seen).toEqual(["moved:null", "close:4006:instance terminated: w1: maintenance"])
    expect(client.state).toBe("closed")
    expect(FakeSocket.instances.length).toBe(count)
    // Not barred: connect again (no resume into the dead instance), and no automatic rejoin.
    const connecting = client.connect()
    expect(lastSocket().url).not.toContain("resume=")
    lastSocket().receive(welcomeFrame(false, "rt-9"))
    await connecting
    await flush()
    expect(lastSocket().sent).toEqual([])
    await client.close()
  })

  it("does not reconnect after a terminal close code", async () => {
    const client = make()
    await connectAndJoin(client)
    const count = FakeSocket.instances.length
    lastSocket().drop(4001, "replaced")
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(client.state).toBe("closed")
    expect(FakeSocket.instances.length).toBe(count)
  })
})

describe("TesseraClient gateway failover (options.gateways)", () => {
  const auth = { playerId: "p1", name: "Ann", token: "jwt", expiresAt: Number.NaN }
  const make = (options: Partial<TesseraClientOptions> = {}) =>
    new TesseraClient("http://gw-a:7350", auth, {
      WebSocket: FakeSocket,
      pingIntervalMs: 0,
      reconnectBaseMs: 1,
      reconnectMaxMs: 2,
      gateways: ["ws://gw-b:7350", "http://gw-a:7350", "https://gw-c"],
      ...options
    })
  const host = (socket: FakeSocket) => new URL(socket.url).host
  /** Waits for the next reconnect attempt (a new socket) after a backoff of 1..2 ms. */
  const nextSocket = async (): Promise<FakeSocket> => {
    const count = FakeSocket.instances.length
    for (let i = 0; i < 100 && FakeSocket.instances.length === count; i++) await new Promise((r) => setTimeout(r, 2))
    expect(FakeSocket.instances.length).toBe(count + 1)
    return lastSocket()
  }

  it("retries a dropped connection on the same gateway first, then rotates on each failure before Welcome", async () => {
    const client = make()
    const reconnected: Array<boolean> = []
    client.on("reconnected", (resumed) => reconnected.push(resumed))
    expect(client.gatewayUrl).toBe("http://gw-a:7350")
    const connecting = client.connect()
    expect(host(lastSocket())).toBe("gw-a:7350")
    lastSocket().receive(welcomeFrame(false, "rt-1"))
    await connecting
    const joining = client.join("arena")
    lastSocket().receive(joinedFrame(7))
    await joining

    lastSocket().drop(1006) // gateway A dies
    const retryA = await nextSocket()
    expect(host(retryA)).toBe("gw-a:7350") // a blip keeps the player on its gateway
    expect(retryA.url).toContain("token=jwt&resume=rt-1")
    retryA.drop(1006) // refused: the next attempt goes to B, same tokens
    expect(client.gatewayUrl).toBe("ws://gw-b:7350")
    const toB = await nextSocket()
    expect(toB.url).toBe("ws://gw-b:7350/v1/ws?token=jwt&resume=rt-1")
    toB.drop(1006)
    const toC = await nextSocket()
    expect(toC.url).toBe("wss://gw-c/v1/ws?token=jwt&resume=rt-1") // the duplicate of A was dropped
    toC.drop(1006)
    const backToA = await nextSocket()
    expect(host(backToA)).toBe("gw-a:7350") // wraps around
    backToA.drop(1006)
    const toB2 = await nextSocket()
    toB2.receive(welcomeFrame(true, "rt-2"))
    toB2.receive(joinedFrame(7))
    expect(client.state).toBe("open")
    expect(client.gatewayUrl).toBe("ws://gw-b:7350")
    expect(reconnected).toEqual([true])
    expect(client.entityId).toBe(7)
    expect(client.resumeToken).toBe("rt-2")

    // Once welcomed on B, a drop retries B first.
    toB2.drop(1006)
    const retryB = await nextSocket()
    expect(host(retryB)).toBe("gw-b:7350")
    expect(retryB.url).toContain("resume=rt-2")
    await client.close()
  })

  it("a failed first connect() sends the next connect() to the next gateway; a user close does not rotate", async () => {
    const client = make({ gateways: ["http://gw-b:7350"] })
    const first = client.connect()
    lastSocket().drop(1006)
    await expect(first).rejects.toMatchObject({ code: "connect_failed" })
    expect(client.gatewayUrl).toBe("http://gw-b:7350")
    const second = client.connect()
    expect(host(lastSocket())).toBe("gw-b:7350")
    const closing = client.close()
    await expect(second).rejects.toMatchObject({ code: "closed" })
    await closing
    expect(client.gatewayUrl).toBe("http://gw-b:7350")
  })

  it("without gateways, every attempt goes to the base URL", async () => {
    const client = make({ gateways: [] })
    const connecting = client.connect()
    lastSocket().receive(welcomeFrame(false))
    await connecting
    lastSocket().drop(1006)
    const a1 = await nextSocket()
    a1.drop(1006)
    const a2 = await nextSocket()
    expect([host(a1), host(a2)]).toEqual(["gw-a:7350", "gw-a:7350"])
    await client.close()
  })
})
