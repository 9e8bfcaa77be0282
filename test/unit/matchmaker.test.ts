import { describe, expect, it } from "vitest"
import {
  accept,
  cancel,
  decline,
  enqueue,
  makeMatchmakerState,
  type MatchMode,
  type MatchmakerEvent,
  type MatchmakerResult,
  type MatchmakerState,
  type OpenInstance,
  pack,
  partySkill,
  queuedTickets,
  skillWindow,
  type Ticket,
  type TicketStatus,
  ticketStatus,
  tick,
  validateMode
} from "../../src/experts/matchmaking/Matchmaker.js"

const mode = (over: Partial<MatchMode> = {}): MatchMode => ({
  experienceId: "arena",
  mode: "duel",
  matchSize: 2,
  initialSkillWindow: 100,
  skillWindowGrowthPerSecond: 10,
  maxSkillWindow: 500,
  ticketTimeoutMs: 60_000,
  readyCheckTimeoutMs: 0,
  maxLatencyMs: 100,
  ...over
})

interface TicketOpts {
  readonly at?: number
  readonly lat?: Record<string, number>
  readonly mode?: string
}

/** A ticket whose players are `${ticketId}:0`, `${ticketId}:1`, ... with the given skills. */
const ticket = (ticketId: string, skills: ReadonlyArray<number>, opts: TicketOpts = {}): Ticket => ({
  ticketId,
  experienceId: "arena",
  mode: opts.mode ?? "duel",
  players: skills.map((skill, i) => ({ playerId: `${ticketId}:${i}`, skill })),
  latencies: opts.lat ?? { eu: 20 },
  createdAt: opts.at ?? 0
})

const open = (worldId: string, freeSlots: number, averageSkill: number, region = "eu", m = "duel"): OpenInstance => ({
  worldId,
  experienceId: "arena",
  mode: m,
  region,
  freeSlots,
  averageSkill
})

/** One line per event, easy to read in a table. */
const show = (e: MatchmakerEvent): string => {
  switch (e._tag) {
    case "Matched":
      return `Matched ${e.matchId} ${e.region} ${e.tickets.join(",")}${e.readyCheckDeadline === null ? "" : ` until ${e.readyCheckDeadline}`}`
    case "MatchReady":
      return `MatchReady ${e.matchId} ${e.region} ${e.tickets.join(",")}`
    case "TimedOut":
      return `TimedOut ${e.ticketId}: ${e.reason}`
    case "Backfilled":
      return `Backfilled ${e.ticketId} -> ${e.worldId}`
    case "LobbyFailed":
      return `LobbyFailed ${e.matchId}: ${e.reason}; requeued ${e.requeued.join(",") || "-"}; removed ${e.removed.join(",") || "-"}`
    case "Cancelled":
      return `Cancelled ${e.ticketId}`
  }
}

type Op =
  | { readonly enqueue: Ticket; readonly error?: string }
  | { readonly tick: number; readonly open?: ReadonlyArray<OpenInstance>; readonly expect: ReadonlyArray<string> }
  | { readonly cancel: string; readonly expect?: ReadonlyArray<string>; readonly error?: string }
  | { readonly accept: string; readonly match: string; readonly expect?: ReadonlyArray<string>; readonly error?: string }
  | { readonly decline: string; readonly match: string; readonly expect?: ReadonlyArray<string>; readonly error?: string }
  | { readonly status: string; readonly expect: TicketStatus | undefined }

interface Case {
  readonly name: string
  readonly modes?: ReadonlyArray<MatchMode>
  readonly ops: ReadonlyArray<Op>
  /** Queued tickets at the end (not counting ready checks). */
  readonly queued?: number
}

const checkResult = (label: string, result: MatchmakerResult, op: { readonly expect?: ReadonlyArray<string>; readonly error?: string }) => {
  if (op.error !== undefined) {
    expect(result, label).toEqual({ ok: false, reason: op.error })
  } else {
    expect(result.ok ? "ok" : result.reason, label).toBe("ok")
    if (result.ok && op.expect !== undefined) expect(result.events.map(show), label).toEqual(op.expect)
  }
}

const run = (modes: ReadonlyArray<MatchMode>, ops: ReadonlyArray<Op>): MatchmakerState => {
  const state = makeMatchmakerState(modes)
  for (const op of ops) {
    if ("enqueue" in op) checkResult(`enqueue ${op.enqueue.ticketId}`, enqueue(state, op.enqueue), op)
    else if ("tick" in op) expect(tick(state, op.tick, op.open).map(show), `tick at ${op.tick}`).toEqual(op.expect)
    else if ("cancel" in op) checkResult(`cancel ${op.cancel}`, cancel(state, op.cancel), op)
    else if ("accept" in op) checkResult(`accept ${op.accept}`, accept(state, op.match, op.accept), op)
    else if ("decline" in op) checkResult(`decline ${op.decline}`, decline(state, op.match, op.decline), op)
    else expect(ticketStatus(state, op.status), `status of ${op.status}`).toEqual(op.expect)
  }
  return state
}

const cases: ReadonlyArray<Case> = [
  {
    name: "two solo tickets within the window match (no ready check: Matched then MatchReady)",
    ops: [
      { enqueue: ticket("a", [1000]) },
      { enqueue: ticket("b", [1050]) },
      { tick: 0, expect: ["Matched match-1 eu a,b", "MatchReady match-1 eu a,b"] },
      { status: "a", expect: undefined }
    ],
    queued: 0
  },
  {
    name: "out of window: no match until both windows have widened enough",
    ops: [
      { enqueue: ticket("a", [1000], { at: 0 }) },
      { enqueue: ticket("b", [1250], { at: 0 }) },
      { tick: 0, expect: [] }, // windows 100
      { tick: 10_000, expect: [] }, // windows 200
      { tick: 15_000, expect: ["Matched match-1 eu a,b", "MatchReady match-1 eu a,b"] } // windows 250
    ]
  },
  {
    name: "compatibility is mutual: the newer ticket's narrower window decides",
    ops: [
      { enqueue: ticket("a", [1000], { at: 0 }) },
      { enqueue: ticket("b", [1250], { at: 10_000 }) },
      { tick: 15_000, expect: [] }, // a: 250, b: 150
      { tick: 24_000, expect: [] }, // a: 340, b: 240
      { tick: 25_000, expect: ["Matched match-1 eu a,b", "MatchReady match-1 eu a,b"] } // b: 250
    ]
  },
  {
    name: "the window stops growing at maxSkillWindow",
    modes: [mode({ maxSkillWindow: 200 })],
    ops: [
      { enqueue: ticket("a", [1000]) },
      { enqueue: ticket("b", [1250]) },
      { tick: 59_000, expect: [] }
    ],
    queued: 2
  },
  {
    name: "the closest skill is preferred; the oldest ticket anchors",
    ops: [
      { enqueue: ticket("a", [1000], { at: 0 }) },
      { enqueue: ticket("far", [1090], { at: 1 }) },
      { enqueue: ticket("near", [1010], { at: 2 }) },
      { tick: 3, expect: ["Matched match-1 eu a,near", "MatchReady match-1 eu a,near"] }
    ],
    queued: 1
  },
  {
    name: "parties of 3,3,2,2 fill a 10-player match exactly",
    modes: [mode({ matchSize: 10 })],
    ops: [
      { enqueue: ticket("p3a", [1000, 1010, 990]) },
      { enqueue: ticket("p3b", [1005, 1000, 995]) },
      { enqueue: ticket("p2a", [1000, 1020]) },
      { enqueue: ticket("p2b", [980, 1000]) },
      { tick: 0, expect: ["Matched match-1 eu p3a,p3b,p2a,p2b", "MatchReady match-1 eu p3a,p3b,p2a,p2b"] }
    ],
    queued: 0
  },
  {
    name: "packing: when the closest parties (3,3,3) cannot fill 10, a subset sum finds 3,3,2,2",
    modes: [mode({ matchSize: 10 })],
    ops: [
      { enqueue: ticket("a", [1000, 1000, 1000], { at: 0 }) },
      { enqueue: ticket("b", [1001, 1001, 1001], { at: 1 }) },
      { enqueue: ticket("c", [1002, 1002, 1002], { at: 2 }) },
      { enqueue: ticket("d", [1003, 1003], { at: 3 }) },
      { enqueue: ticket("e", [1004, 1004], { at: 4 }) },
      { tick: 5, expect: ["Matched match-1 eu a,b,d,e", "MatchReady match-1 eu a,b,d,e"] },
      { status: "c", expect: { _tag: "Queued", since: 2 } }
    ]
  },
  {
    name: "parties are never split: 3 + 6 solos cannot fill 10",
    modes: [mode({ matchSize: 10 })],
    ops: [
      { enqueue: ticket("p", [1000, 1000, 1000]) },
      ...["s1", "s2", "s3", "s4", "s5", "s6"].map((id) => ({ enqueue: ticket(id, [1000]) })),
      { tick: 0, expect: [] },
      { tick: 59_000, expect: [] }
    ],
    queued: 7
  },
  {
    name: "minPlayers: a short match only once the anchor's window has stopped growing",
    modes: [mode({ matchSize: 10, minPlayers: 8, maxSkillWindow: 200 })],
    ops: [
      { enqueue: ticket("p", [1000, 1000, 1000], { at: 0 }) },
      ...["s1", "s2", "s3", "s4", "s5", "s6"].map((id) => ({ enqueue: ticket(id, [1000], { at: 0 }) })),
      { tick: 9_999, expect: [] }, // window 199.99
      { tick: 10_000, expect: ["Matched match-1 eu p,s1,s2,s3,s4,s5,s6", "MatchReady match-1 eu p,s1,s2,s3,s4,s5,s6"] }
    ]
  },
  {
    name: "minPlayers is a floor: fewer players never start",
    modes: [mode({ matchSize: 10, minPlayers: 8, maxSkillWindow: 100 })],
    ops: [
      ...["s1", "s2", "s3", "s4", "s5", "s6", "s7"].map((id) => ({ enqueue: ticket(id, [1000]) })),
      { tick: 0, expect: [] }
    ],
    queued: 7
  },
  {
    name: "region: no common region under maxLatency -> no match",
    ops: [
      { enqueue: ticket("a", [1000], { lat: { eu: 20, us: 150 } }) },
      { enqueue: ticket("b", [1000], { lat: { eu: 180, us: 30 } }) },
      { tick: 0, expect: [] },
      { tick: 50_000, expect: [] }
    ],
    queued: 2
  },
  {
    name: "region: the only common region is used even if it is not anyone's best",
    ops: [
      { enqueue: ticket("a", [1000], { lat: { eu: 20, us: 90, ap: 200 } }) },
      { enqueue: ticket("b", [1000], { lat: { eu: 150, us: 80, ap: 10 } }) },
      { tick: 0, expect: ["Matched match-1 us a,b", "MatchReady match-1 us a,b"] }
    ]
  },
  {
    name: "region: the lowest maximum latency wins over the anchor's best region",
    ops: [
      { enqueue: ticket("a", [1000], { at: 0, lat: { eu: 50, us: 60 } }) },
      { enqueue: ticket("b", [1000], { at: 1, lat: { eu: 90, us: 70 } }) },
      { tick: 2, expect: ["Matched match-1 us a,b", "MatchReady match-1 us a,b"] }
    ]
  },
  {
    name: "timeout with a clear reason",
    modes: [mode({ ticketTimeoutMs: 30_000 })],
    ops: [
      { enqueue: ticket("a", [1000], { at: 0 }) },
      { enqueue: ticket("b", [2000], { at: 5_000 }) },
      { tick: 29_999, expect: [] },
      { tick: 30_000, expect: ["TimedOut a: no match within 30s"] },
      { status: "a", expect: undefined },
      { cancel: "a", error: `ticket "a" is not queued (unknown, timed out or already matched)` },
      { tick: 35_000, expect: ["TimedOut b: no match within 30s"] },
      { enqueue: ticket("a2", [1000], { at: 35_000 }) } // its players may queue again
    ],
    queued: 1
  },
  {
    name: "cancel before a match",
    ops: [
      { enqueue: ticket("a", [1000]) },
      { cancel: "a", expect: ["Cancelled a"] },
      { enqueue: ticket("b", [1000]) },
      { tick: 0, expect: [] },
      { cancel: "a", error: `ticket "a" is not queued (unknown, timed out or already matched)` },
      { enqueue: ticket("a", [1000]) }, // the id and its players are free again
      { tick: 1, expect: ["Matched match-1 eu b,a", "MatchReady match-1 eu b,a"] },
      { cancel: "a", error: `ticket "a" is not queued (unknown, timed out or already matched)` }
    ],
    queued: 0
  },
  {
    name: "ready check: everyone accepts -> MatchReady",
    modes: [mode({ matchSize: 3, readyCheckTimeoutMs: 10_000 })],
    ops: [
      { enqueue: ticket("a", [1000, 1000]) },
      { enqueue: ticket("b", [1000]) },
      { tick: 0, expect: ["Matched match-1 eu a,b until 10000"] },
      { status: "a", expect: { _tag: "ReadyCheck", matchId: "match-1", deadline: 10_000 } },
      { accept: "a:0", match: "match-1", expect: [] },
      { accept: "a:0", match: "match-1", expect: [] }, // idempotent
      { accept: "b:0", match: "match-1", expect: [] },
      { accept: "a:1", match: "match-1", expect: ["MatchReady match-1 eu a,b"] },
      { status: "a", expect: undefined },
      { accept: "a:1", match: "match-1", error: `match "match-1" has no ready check in progress` },
      { cancel: "a", error: `ticket "a" is not queued (unknown, timed out or already matched)` }
    ],
    queued: 0
  },
  {
    name: "ready check: a decline removes the decliner's ticket and requeues the others keeping createdAt",
    modes: [mode({ readyCheckTimeoutMs: 10_000 })],
    ops: [
      { enqueue: ticket("a", [1000], { at: 100 }) },
      { enqueue: ticket("b", [1000], { at: 200 }) },
      { tick: 1_000, expect: ["Matched match-1 eu a,b until 11000"] },
      { accept: "a:0", match: "match-1", expect: [] },
      {
        decline: "b:0",
        match: "match-1",
        expect: [`LobbyFailed match-1: player "b:0" declined; requeued a; removed b`]
      },
      { status: "a", expect: { _tag: "Queued", since: 100 } },
      { status: "b", expect: undefined },
      { enqueue: ticket("c", [1000], { at: 2_000 }) },
      { tick: 2_000, expect: ["Matched match-2 eu a,c until 12000"] }
    ]
  },
  {
    name: "ready check: cancelling during the check dissolves the lobby",
    modes: [mode({ matchSize: 3, readyCheckTimeoutMs: 10_000 })],
    ops: [
      { enqueue: ticket("a", [1000], { at: 0 }) },
      { enqueue: ticket("b", [1000], { at: 1 }) },
      { enqueue: ticket("c", [1000], { at: 2 }) },
      { tick: 3, expect: ["Matched match-1 eu a,b,c until 10003"] },
      { accept: "a:0", match: "match-1", expect: [] },
      {
        cancel: "b",
        expect: ["Cancelled b", `LobbyFailed match-1: ticket "b" was cancelled; requeued a,c; removed b`]
      },
      { status: "c", expect: { _tag: "Queued", since: 2 } },
      { accept: "a:0", match: "match-1", error: `match "match-1" has no ready check in progress` }
    ],
    queued: 2
  },
  {
    name: "ready check timeout: tickets with a player who did not accept are removed, the others requeued",
    modes: [mode({ matchSize: 4, readyCheckTimeoutMs: 10_000 })],
    ops: [
      { enqueue: ticket("a", [1000, 1000], { at: 0 }) },
      { enqueue: ticket("b", [1000], { at: 1 }) },
      { enqueue: ticket("c", [1000], { at: 2 }) },
      { tick: 3, expect: ["Matched match-1 eu a,b,c until 10003"] },
      { accept: "a:0", match: "match-1", expect: [] }, // a:1 never answers
      { accept: "b:0", match: "match-1", expect: [] },
      { tick: 10_002, expect: [] },
      { tick: 10_003, expect: [`LobbyFailed match-1: ready check timed out after 10s; requeued b; removed a,c`] },
      { status: "b", expect: { _tag: "Queued", since: 1 } },
      { status: "a", expect: undefined }
    ],
    queued: 1
  },
  {
    name: "accept/decline errors",
    modes: [mode({ readyCheckTimeoutMs: 10_000 })],
    ops: [
      { enqueue: ticket("a", [1000]) },
      { enqueue: ticket("b", [1000]) },
      { enqueue: ticket("x", [5000]) },
      { tick: 0, expect: ["Matched match-1 eu a,b until 10000"] },
      { accept: "a:0", match: "match-9", error: `match "match-9" has no ready check in progress` },
      { accept: "x:0", match: "match-1", error: `player "x:0" is not in match "match-1"` },
      { decline: "nobody", match: "match-1", error: `player "nobody" is not in match "match-1"` }
    ]
  },
  {
    name: "backfill: a party goes into a running instance with room for all of it within the window",
    modes: [mode({ matchSize: 10 })],
    ops: [
      { enqueue: ticket("trio", [1000, 1000, 1000], { at: 0 }) }, // does not fit 2 free slots
      { enqueue: ticket("strong", [1500], { at: 1 }) }, // outside the window
      { enqueue: ticket("s1", [1050], { at: 2 }) },
      { enqueue: ticket("s2", [990], { at: 3 }) },
      { enqueue: ticket("s3", [1000], { at: 4 }) }, // no slots left
      {
        tick: 5,
        open: [open("arena.7", 2, 1000), open("arena.8", 5, 1000, "us"), open("other.1", 9, 1000, "eu", "ctf")],
        expect: ["Backfilled s1 -> arena.7", "Backfilled s2 -> arena.7"]
      }
    ],
    queued: 3
  },
  {
    name: "backfill prefers the lowest latency, then the closest average skill",
    ops: [
      { enqueue: ticket("a", [1000], { lat: { eu: 40, us: 30 } }) },
      { enqueue: ticket("b", [1000], { lat: { eu: 40 } }) },
      { enqueue: ticket("c", [1000], { lat: { eu: 40 } }) },
      {
        tick: 0,
        open: [open("eu.far", 1, 1080), open("eu.near", 1, 1010), open("us.1", 1, 1090, "us")],
        expect: ["Backfilled a -> us.1", "Backfilled b -> eu.near", "Backfilled c -> eu.far"]
      }
    ],
    queued: 0
  }
]

describe("Matchmaker", () => {
  for (const c of cases) {
    it(c.name, () => {
      const state = run(c.modes ?? [mode()], c.ops)
      if (c.queued !== undefined) expect(queuedTickets(state)).toBe(c.queued)
    })
  }

  const bad: ReadonlyArray<[string, Ticket, string]> = [
    ["empty party", ticket("t", []), "a ticket needs at least one player"],
    ["party larger than the match", ticket("t", [1, 1, 1]), "a party of 3 players does not fit a match of 2"],
    ["unknown mode", ticket("t", [1], { mode: "ctf" }), `unknown mode "ctf" for experience "arena"`],
    ["non-finite skill", ticket("t", [NaN]), `player "t:0" has a non-finite skill (NaN)`],
    ["infinite skill", ticket("t", [Infinity]), `player "t:0" has a non-finite skill (Infinity)`],
    ["player already queued", { ...ticket("t", [1]), players: [{ playerId: "q:0", skill: 1 }] }, `player "q:0" is already queued (ticket "q")`],
    ["duplicate ticket id", ticket("q", [1]), `ticket "q" is already queued`],
    ["player twice in the party", { ...ticket("t", [1]), players: [{ playerId: "x", skill: 1 }, { playerId: "x", skill: 2 }] }, `player "x" appears twice in the ticket`],
    ["empty ticket id", ticket("", [1]), "ticketId must be a non-empty string"],
    ["empty player id", { ...ticket("t", [1]), players: [{ playerId: "", skill: 1 }] }, "every player needs a non-empty playerId"],
    ["no latencies", ticket("t", [1], { lat: {} }), "no region latencies given"],
    ["bad latency", ticket("t", [1], { lat: { eu: -1 } }), `latency to region "eu" must be a finite number >= 0`],
    ["no region within maxLatency", ticket("t", [1], { lat: { eu: 180, us: 120 } }), `no region within 100 ms (best: "us" at 120 ms)`],
    ["non-finite createdAt", ticket("t", [1], { at: NaN }), "createdAt must be a finite number"]
  ]
  for (const [name, t, reason] of bad) {
    it(`rejects a bad ticket: ${name}`, () => {
      const state = makeMatchmakerState([mode()])
      expect(enqueue(state, ticket("q", [1000]))).toEqual({ ok: true, events: [] })
      expect(enqueue(state, t)).toEqual({ ok: false, reason })
      expect(queuedTickets(state)).toBe(1)
    })
  }

  it("rejects a player who is in a ready check", () => {
    const state = makeMatchmakerState([mode({ readyCheckTimeoutMs: 5_000 })])
    enqueue(state, ticket("a", [1000]))
    enqueue(state, ticket("b", [1000]))
    tick(state, 0)
    expect(enqueue(state, { ...ticket("t", [1]), players: [{ playerId: "a:0", skill: 1 }] })).toEqual({
      ok: false,
      reason: `player "a:0" is in a ready check (ticket "a")`
    })
  })

  it("rejects invalid and duplicate modes", () => {
    expect(validateMode(mode())).toBeUndefined()
    expect(validateMode(mode({ matchSize: 0 }))).toBe(`mode "duel" of experience "arena": matchSize must be an integer >= 1`)
    expect(validateMode(mode({ minPlayers: 3 }))).toBe(`mode "duel" of experience "arena": minPlayers must be an integer between 1 and matchSize (2)`)
    expect(validateMode(mode({ maxSkillWindow: 50 }))).toBe(`mode "duel" of experience "arena": maxSkillWindow must be finite and >= initialSkillWindow`)
    expect(validateMode(mode({ ticketTimeoutMs: 0 }))).toBe(`mode "duel" of experience "arena": ticketTimeoutMs must be a finite number > 0`)
    expect(() => makeMatchmakerState([mode(), mode()])).toThrow(`mode "duel" of experience "arena" is defined twice`)
  })

  it("party skill is the mean; the window grows linearly up to its maximum", () => {
    expect(partySkill([{ playerId: "a", skill: 1000 }, { playerId: "b", skill: 1300 }])).toBe(1150)
    const m = mode({ initialSkillWindow: 100, skillWindowGrowthPerSecond: 20, maxSkillWindow: 300 })
    expect([0, 5_000, 10_000, 60_000].map((now) => skillWindow(m, 0, now))).toEqual([100, 200, 300, 300])
  })

  it("pack: exact subset sums prefer earlier items; a floor allows the largest short sum", () => {
    expect(pack([3, 3, 2, 2], 7, 7)).toEqual([0, 2, 3])
    expect(pack([2, 2, 2], 5, 5)).toBeUndefined()
    expect(pack([2, 2, 2], 5, 3)).toEqual([0, 1])
    expect(pack([], 0, 0)).toEqual([])
  })

  it("queues are separate per (experience, mode)", () => {
    const state = makeMatchmakerState([mode(), mode({ mode: "ctf" })])
    enqueue(state, ticket("a", [1000]))
    enqueue(state, ticket("b", [1000], { mode: "ctf" }))
    expect(tick(state, 0)).toEqual([])
    expect(queuedTickets(state, "arena", "ctf")).toBe(1)
  })

  it("20 bots queue for a 10-player mode and land in two instances with parties intact", () => {
    const state = makeMatchmakerState([mode({ matchSize: 10 })])
    const parties = [3, 2, 2, 1, 1, 1, 4, 1, 1, 1, 2, 1] // 20 players in 12 tickets
    const tickets = parties.map((size, i) =>
      ticket(`t${i}`, Array.from({ length: size }, (_, j) => 1000 + ((i * 7 + j * 13) % 60)), { at: i, lat: { eu: 20 + i, us: 60 } })
    )
    for (const t of tickets) expect(enqueue(state, t).ok).toBe(true)
    const events = tick(state, 100)
    // The scheduler allocates one instance per MatchReady and routes its players there.
    const worldOf = new Map<string, string>()
    let instances = 0
    for (const e of events) {
      if (e._tag !== "MatchReady") continue
      const worldId = `arena.${++instances}`
      expect(e.players).toHaveLength(10)
      for (const p of e.players) {
        expect(worldOf.has(p), `${p} placed twice`).toBe(false)
        worldOf.set(p, worldId)
      }
    }
    expect(instances).toBe(2)
    expect(worldOf.size).toBe(20)
    for (const t of tickets) {
      expect(new Set(t.players.map((p) => worldOf.get(p.playerId))).size, `party ${t.ticketId}`).toBe(1)
    }
    expect(queuedTickets(state)).toBe(0)
  })
})

// ---------------------------------------------------------------------------
// Seeded randomized invariants
// ---------------------------------------------------------------------------

const mulberry32 = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = seed
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

describe("Matchmaker invariants (seeded random)", () => {
  const variants: ReadonlyArray<[string, number, MatchMode]> = [
    ["ready check, 10 players", 1, mode({ matchSize: 10, initialSkillWindow: 50, skillWindowGrowthPerSecond: 15, maxSkillWindow: 400, ticketTimeoutMs: 40_000, readyCheckTimeoutMs: 4_000 })],
    ["no ready check, 10 players", 2, mode({ matchSize: 10, initialSkillWindow: 50, skillWindowGrowthPerSecond: 15, maxSkillWindow: 400, ticketTimeoutMs: 40_000 })],
    ["ready check, 4 players", 3, mode({ matchSize: 4, initialSkillWindow: 20, skillWindowGrowthPerSecond: 5, maxSkillWindow: 150, ticketTimeoutMs: 25_000, readyCheckTimeoutMs: 3_000 })]
  ]
  for (const [name, seed, m] of variants) {
    it(`${name}: nobody in two matches, matches exactly full, parties never split, pairs within windows`, () => {
      const rnd = mulberry32(seed)
      const regions = ["eu", "us", "ap"]
      const state = makeMatchmakerState([m])
      const tickets = new Map<string, Ticket>()
      const queued = new Set<string>() // tickets queued or in a lobby, as the test sees it
      const lobbies = new Map<string, ReadonlyArray<string>>() // matchId -> ticketIds
      const done = new Set<string>() // players confirmed or backfilled
      let nextTicket = 0
      let matchedPlayers = 0
      let backfilled = 0

      const onEvents = (events: ReadonlyArray<MatchmakerEvent>, now: number, open: ReadonlyArray<OpenInstance>) => {
        const free = new Map(open.map((i) => [i.worldId, i.freeSlots]))
        for (const e of events) {
          switch (e._tag) {
            case "Matched": {
              const ts = e.tickets.map((id) => tickets.get(id)!)
              expect(e.players).toHaveLength(m.matchSize)
              expect(e.players).toEqual(ts.flatMap((t) => t.players.map((p) => p.playerId)))
              expect(new Set(e.players).size).toBe(e.players.length)
              for (const t of ts) {
                expect(queued.has(t.ticketId), `${t.ticketId} matched while not queued`).toBe(true)
                expect([...lobbies.values()].some((l) => l.includes(t.ticketId)), `${t.ticketId} in two lobbies`).toBe(false)
                expect(t.latencies[e.region]!).toBeLessThanOrEqual(m.maxLatencyMs)
              }
              for (const a of ts) {
                for (const b of ts) {
                  const d = Math.abs(partySkill(a.players) - partySkill(b.players))
                  expect(d).toBeLessThanOrEqual(Math.min(skillWindow(m, a.createdAt, now), skillWindow(m, b.createdAt, now)) + 1e-9)
                }
              }
              if (e.readyCheckDeadline !== null) lobbies.set(e.matchId, e.tickets)
              break
            }
            case "MatchReady": {
              if (m.readyCheckTimeoutMs > 0) expect(lobbies.get(e.matchId)).toEqual(e.tickets)
              lobbies.delete(e.matchId)
              expect(e.players).toHaveLength(m.matchSize)
              for (const p of e.players) {
                expect(done.has(p), `${p} confirmed twice`).toBe(false)
                done.add(p)
              }
              for (const id of e.tickets) queued.delete(id)
              matchedPlayers += e.players.length
              break
            }
            case "Backfilled": {
              const t = tickets.get(e.ticketId)!
              expect(queued.has(e.ticketId)).toBe(true)
              const left = free.get(e.worldId)! - t.players.length
              expect(left).toBeGreaterThanOrEqual(0)
              free.set(e.worldId, left)
              for (const p of e.players) {
                expect(done.has(p)).toBe(false)
                done.add(p)
              }
              queued.delete(e.ticketId)
              backfilled++
              break
            }
            case "LobbyFailed": {
              expect([...e.requeued, ...e.removed].sort()).toEqual([...lobbies.get(e.matchId)!].sort())
              lobbies.delete(e.matchId)
              for (const id of e.removed) queued.delete(id)
              break
            }
            case "TimedOut":
            case "Cancelled":
              expect(queued.has(e.ticketId)).toBe(true)
              queued.delete(e.ticketId)
              break
          }
        }
      }

      for (let second = 0; second < 400; second++) {
        const now = second * 1000
        const arrivals = second < 300 ? Math.floor(rnd() * 7) : 0
        for (let i = 0; i < arrivals; i++) {
          const r = rnd()
          const size = Math.min(m.matchSize, r < 0.6 ? 1 : r < 0.8 ? 2 : r < 0.92 ? 3 : 4)
          const base = 1500 + (rnd() + rnd() + rnd() - 1.5) * 400
          const latencies: Record<string, number> = {}
          for (const region of regions) if (rnd() < 0.8) latencies[region] = Math.round(10 + rnd() * 150)
          const t = ticket(`t${nextTicket++}`, Array.from({ length: size }, () => base + (rnd() - 0.5) * 100), {
            at: now + Math.floor(rnd() * 1000),
            lat: latencies
          })
          const result = enqueue(state, t)
          if (result.ok) {
            tickets.set(t.ticketId, t)
            queued.add(t.ticketId)
          } else {
            expect(result.reason).toMatch(/^no region within|^no region latencies/)
          }
        }
        // Random cancels of queued or lobbied tickets.
        if (rnd() < 0.2 && queued.size > 0) {
          const ids = [...queued]
          const id = ids[Math.floor(rnd() * ids.length)]!
          const result = cancel(state, id)
          expect(result.ok).toBe(true)
          if (result.ok) onEvents(result.events, now, [])
        }
        // Lobby answers: mostly accept, sometimes decline, sometimes nothing (-> timeout).
        for (const [matchId, ticketIds] of [...lobbies]) {
          for (const id of ticketIds) {
            for (const p of tickets.get(id)!.players) {
              if (!lobbies.has(matchId)) break
              const r = rnd()
              const result = r < 0.5 ? accept(state, matchId, p.playerId) : r < 0.52 ? decline(state, matchId, p.playerId) : undefined
              if (result !== undefined) {
                expect(result.ok).toBe(true)
                if (result.ok) onEvents(result.events, now, [])
              }
            }
          }
        }
        const open: Array<OpenInstance> =
          rnd() < 0.3
            ? [{ worldId: `w${second}`, experienceId: "arena", mode: m.mode, region: regions[Math.floor(rnd() * 3)]!, freeSlots: 1 + Math.floor(rnd() * 4), averageSkill: 1200 + rnd() * 600 }]
            : []
        onEvents(tick(state, now, open), now, open)
      }
      expect(matchedPlayers).toBeGreaterThan(m.matchSize * 5)
      expect(backfilled).toBeGreaterThan(0)
      // Everything has left the queue by now (timeouts), and the state agrees with what the events said.
      expect(queued.size).toBe(0)
      expect(state.tickets.size).toBe(0)
      expect(state.players.size).toBe(0)
      expect(state.lobbies.size).toBe(0)
    })
  }
})
