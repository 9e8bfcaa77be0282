/**
 * The pure core of the matchmaking expert: queues per (experience, mode),
 * skill windows that widen with waiting time, parties that stay together,
 * region choice by latency, a ready check (lobby), backfill of running
 * instances, timeouts and cancelling. No IO and no timers: time is always a
 * `now` parameter (epoch or any monotonic milliseconds, used consistently).
 *
 * The state is plain data mutated only by the functions below (like the
 * scheduler's Placement registry); every operation returns the events it
 * caused. The expert entity owns one state, calls `tick` on a timer and turns
 * the events into scheduler calls (`MatchReady` -> allocate an instance in
 * `region` and route `players` there; `Backfilled` -> route to `worldId`) and
 * client notifications.
 *
 * Rules (see also the docs on each function):
 * - A ticket is one party (1..matchSize players) that is always matched as a
 *   whole. Its skill is the MEAN of its players' skills.
 * - Skill window of a ticket = min(maxSkillWindow, initialSkillWindow +
 *   skillWindowGrowthPerSecond * seconds waited since `createdAt`); it is a
 *   half-width: a ticket accepts skills within ±window of its own.
 * - Tickets are matched only when every pair is mutually compatible: for any
 *   two tickets a, b of a match |skill(a) - skill(b)| <= min(window(a), window(b)),
 *   i.e. every ticket's window contains every other ticket's skill.
 * - The oldest queued ticket anchors a match; candidates are taken by skill
 *   closeness to the anchor, and party sizes are packed to fill the match to
 *   EXACTLY matchSize (subset sum, preferring the closest candidates).
 * - A region is eligible for a ticket when its latency there is <= maxLatencyMs;
 *   a match uses a region eligible for all its tickets, preferring the region
 *   with the lowest maximum latency among the match's tickets.
 */

// ---------------------------------------------------------------------------
// Data
// ---------------------------------------------------------------------------

/** A queue's rules. One queue per (experienceId, mode). */
export interface MatchMode {
  readonly experienceId: string
  readonly mode: string
  /** Players per match; parties count with all their members. */
  readonly matchSize: number
  /**
   * Smallest match that may be started (default: matchSize, i.e. matches are
   * always full). A short match is only formed once the anchor ticket's skill
   * window has stopped growing (reached maxSkillWindow) and no full match is
   * possible; the free slots are then filled by backfill.
   */
  readonly minPlayers?: number
  readonly initialSkillWindow: number
  readonly skillWindowGrowthPerSecond: number
  readonly maxSkillWindow: number
  /** A queued ticket is dropped (`TimedOut`) this long after its `createdAt`. */
  readonly ticketTimeoutMs: number
  /** 0 = no ready check: a match is confirmed (`MatchReady`) at once. */
  readonly readyCheckTimeoutMs: number
  readonly maxLatencyMs: number
}

export interface TicketPlayer {
  readonly playerId: string
  readonly skill: number
}

/** A party (1..n players) queueing for one mode. */
export interface Ticket {
  readonly ticketId: string
  readonly experienceId: string
  readonly mode: string
  readonly players: ReadonlyArray<TicketPlayer>
  /** Measured round-trip latency per region name, in ms. */
  readonly latencies: Readonly<Record<string, number>>
  readonly createdAt: number
}

/** A running instance that reported free slots (from the scheduler). */
export interface OpenInstance {
  readonly worldId: string
  readonly experienceId: string
  readonly mode: string
  readonly region: string
  readonly freeSlots: number
  readonly averageSkill: number
}

export type MatchmakerEvent =
  /**
   * Tickets grouped into a match. With a ready check the match waits in a
   * lobby until `readyCheckDeadline`; without one (`readyCheckDeadline: null`)
   * a `MatchReady` for the same matchId follows in the same event list.
   */
  | {
    readonly _tag: "Matched"
    readonly matchId: string
    readonly experienceId: string
    readonly mode: string
    readonly region: string
    readonly tickets: ReadonlyArray<string>
    readonly players: ReadonlyArray<string>
    readonly averageSkill: number
    readonly readyCheckDeadline: number | null
  }
  /** The match is confirmed: allocate an instance in `region` and route `players` there. */
  | {
    readonly _tag: "MatchReady"
    readonly matchId: string
    readonly experienceId: string
    readonly mode: string
    readonly region: string
    readonly tickets: ReadonlyArray<string>
    readonly players: ReadonlyArray<string>
    readonly averageSkill: number
  }
  | { readonly _tag: "TimedOut"; readonly ticketId: string; readonly players: ReadonlyArray<string>; readonly reason: string }
  /** The whole party goes into a running instance with free slots (no ready check). */
  | {
    readonly _tag: "Backfilled"
    readonly ticketId: string
    readonly worldId: string
    readonly region: string
    readonly players: ReadonlyArray<string>
  }
  /** A ready check failed: `removed` tickets left the queue, `requeued` ones are queued again with their original createdAt. */
  | {
    readonly _tag: "LobbyFailed"
    readonly matchId: string
    readonly reason: string
    readonly requeued: ReadonlyArray<string>
    readonly removed: ReadonlyArray<string>
  }
  | { readonly _tag: "Cancelled"; readonly ticketId: string; readonly players: ReadonlyArray<string> }

export type MatchmakerResult =
  | { readonly ok: true; readonly events: ReadonlyArray<MatchmakerEvent> }
  | { readonly ok: false; readonly reason: string }

/** Internal per-ticket record. */
interface Entry {
  readonly ticket: Ticket
  readonly key: string
  /** Enqueue order; ties on createdAt are broken by it. */
  readonly seq: number
  readonly size: number
  /** Party skill: mean of the players' skills. */
  readonly skill: number
  readonly playerIds: ReadonlyArray<string>
  /** Regions with latency <= maxLatencyMs, lowest latency first. */
  readonly regions: ReadonlyArray<string>
  /** Position in each region's lane during a tick (aligned with `regions`). */
  readonly pos: Int32Array
  /** Skill window during the current tick. */
  window: number
  taken: boolean
  lobby: string | null
}

interface Queue {
  readonly mode: MatchMode
  /** Queued (not in a lobby) tickets by id. */
  readonly entries: Map<string, Entry>
}

interface Lobby {
  readonly matchId: string
  readonly key: string
  readonly region: string
  readonly entries: ReadonlyArray<Entry>
  readonly accepted: Set<string>
  readonly deadline: number
}

export interface MatchmakerState {
  readonly queues: Map<string, Queue>
  /** Every ticket that is queued or in a lobby. */
  readonly tickets: Map<string, Entry>
  /** playerId -> ticketId, for every queued or lobbied player. */
  readonly players: Map<string, string>
  readonly lobbies: Map<string, Lobby>
  nextSeq: number
  nextMatch: number
}

/** Upper bound on latency entries per ticket (hostile input). */
export const MAX_REGIONS_PER_TICKET = 64
/** Candidates kept per anchor and region for packing parties; bounds the work per anchor. */
const POOL_MIN = 32
/** Candidates examined per anchor and region before giving up; bounds the work in sparse or incompatible queues. */
const SCAN_LIMIT = 2048

const queueKey = (experienceId: string, mode: string): string => `${experienceId}\u0000${mode}`

// ---------------------------------------------------------------------------
// Construction and validation
// ---------------------------------------------------------------------------

const finiteAtLeast = (v: number, min: number): boolean => typeof v === "number" && Number.isFinite(v) && v >= min

/** A clear error for a mode that cannot work, or undefined. */
export const validateMode = (m: MatchMode): string | undefined => {
  const name = `mode "${m.mode}" of experience "${m.experienceId}"`
  if (typeof m.experienceId !== "string" || m.experienceId === "") return "a mode needs an experienceId"
  if (typeof m.mode !== "string" || m.mode === "") return `a mode of experience "${m.experienceId}" needs a name`
  if (!Number.isInteger(m.matchSize) || m.matchSize < 1) return `${name}: matchSize must be an integer >= 1`
  if (m.minPlayers !== undefined && (!Number.isInteger(m.minPlayers) || m.minPlayers < 1 || m.minPlayers > m.matchSize)) {
    return `${name}: minPlayers must be an integer between 1 and matchSize (${m.matchSize})`
  }
  if (!finiteAtLeast(m.initialSkillWindow, 0)) return `${name}: initialSkillWindow must be a finite number >= 0`
  if (!finiteAtLeast(m.skillWindowGrowthPerSecond, 0)) return `${name}: skillWindowGrowthPerSecond must be a finite number >= 0`
  if (!finiteAtLeast(m.maxSkillWindow, m.initialSkillWindow)) return `${name}: maxSkillWindow must be finite and >= initialSkillWindow`
  if (!finiteAtLeast(m.ticketTimeoutMs, 0) || m.ticketTimeoutMs === 0) return `${name}: ticketTimeoutMs must be a finite number > 0`
  if (!finiteAtLeast(m.readyCheckTimeoutMs, 0)) return `${name}: readyCheckTimeoutMs must be a finite number >= 0`
  if (!finiteAtLeast(m.maxLatencyMs, 0)) return `${name}: maxLatencyMs must be a finite number >= 0`
  return undefined
}

/** An empty matchmaker for the given modes; throws an Error with a clear message for an invalid or duplicate mode (a config error). */
export const makeMatchmakerState = (modes: ReadonlyArray<MatchMode>): MatchmakerState => {
  const queues = new Map<string, Queue>()
  for (const mode of modes) {
    const error = validateMode(mode)
    if (error !== undefined) throw new Error(error)
    const key = queueKey(mode.experienceId, mode.mode)
    if (queues.has(key)) throw new Error(`mode "${mode.mode}" of experience "${mode.experienceId}" is defined twice`)
    queues.set(key, { mode, entries: new Map() })
  }
  return { queues, tickets: new Map(), players: new Map(), lobbies: new Map(), nextSeq: 0, nextMatch: 0 }
}

/** Party skill: the mean of the players' skills. */
export const partySkill = (players: ReadonlyArray<TicketPlayer>): number => {
  let sum = 0
  for (const p of players) sum += p.skill
  return players.length === 0 ? NaN : sum / players.length
}

/** min(maxSkillWindow, initialSkillWindow + growth * seconds waited); never below the initial window. */
export const skillWindow = (mode: MatchMode, createdAt: number, now: number): number =>
  Math.min(mode.maxSkillWindow, mode.initialSkillWindow + mode.skillWindowGrowthPerSecond * Math.max(0, now - createdAt) / 1000)

const seconds = (ms: number): string => `${Math.round(ms / 100) / 10}s`

/**
 * A clear error for a ticket that cannot be queued, or undefined: malformed
 * fields, unknown mode, empty or oversized party, duplicate players (in the
 * ticket or already queued / in a ready check), non-finite skills or
 * latencies, no region within maxLatencyMs.
 */
export const validateTicket = (state: MatchmakerState, ticket: Ticket): string | undefined => {
  if (typeof ticket.ticketId !== "string" || ticket.ticketId === "") return "ticketId must be a non-empty string"
  if (state.tickets.has(ticket.ticketId)) return `ticket "${ticket.ticketId}" is already queued`
  const queue = state.queues.get(queueKey(ticket.experienceId, ticket.mode))
  if (queue === undefined) return `unknown mode "${ticket.mode}" for experience "${ticket.experienceId}"`
  const mode = queue.mode
  if (!Number.isFinite(ticket.createdAt)) return "createdAt must be a finite number"
  if (!Array.isArray(ticket.players) || ticket.players.length === 0) return "a ticket needs at least one player"
  if (ticket.players.length > mode.matchSize) {
    return `a party of ${ticket.players.length} players does not fit a match of ${mode.matchSize}`
  }
  const seen = new Set<string>()
  for (const p of ticket.players) {
    if (typeof p.playerId !== "string" || p.playerId === "") return "every player needs a non-empty playerId"
    if (seen.has(p.playerId)) return `player "${p.playerId}" appears twice in the ticket`
    seen.add(p.playerId)
    if (typeof p.skill !== "number" || !Number.isFinite(p.skill)) return `player "${p.playerId}" has a non-finite skill (${String(p.skill)})`
    const other = state.players.get(p.playerId)
    if (other !== undefined) {
      const where = state.tickets.get(other)?.lobby != null ? "is in a ready check" : "is already queued"
      return `player "${p.playerId}" ${where} (ticket "${other}")`
    }
  }
  const latencies = ticket.latencies
  if (latencies === null || typeof latencies !== "object") return "latencies must be an object of region -> ms"
  const names = Object.keys(latencies)
  if (names.length > MAX_REGIONS_PER_TICKET) return `at most ${MAX_REGIONS_PER_TICKET} region latencies per ticket`
  let best: string | undefined
  for (const region of names) {
    const ms = latencies[region]!
    if (!finiteAtLeast(ms, 0)) return `latency to region "${region}" must be a finite number >= 0`
    if (best === undefined || ms < latencies[best]!) best = region
  }
  if (best === undefined) return "no region latencies given"
  if (latencies[best]! > mode.maxLatencyMs) {
    return `no region within ${mode.maxLatencyMs} ms (best: "${best}" at ${latencies[best]} ms)`
  }
  return undefined
}

// ---------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------

/** Queues a ticket after `validateTicket`; the party is matched from the next `tick`. */
export const enqueue = (state: MatchmakerState, ticket: Ticket): MatchmakerResult => {
  const error = validateTicket(state, ticket)
  if (error !== undefined) return { ok: false, reason: error }
  const key = queueKey(ticket.experienceId, ticket.mode)
  const queue = state.queues.get(key)!
  const regions = Object.keys(ticket.latencies)
    .filter((r) => ticket.latencies[r]! <= queue.mode.maxLatencyMs)
    .sort((a, b) => ticket.latencies[a]! - ticket.latencies[b]! || (a < b ? -1 : a > b ? 1 : 0))
  const entry: Entry = {
    ticket,
    key,
    seq: state.nextSeq++,
    size: ticket.players.length,
    skill: partySkill(ticket.players),
    playerIds: ticket.players.map((p) => p.playerId),
    regions,
    pos: new Int32Array(regions.length),
    window: queue.mode.initialSkillWindow,
    taken: false,
    lobby: null
  }
  queue.entries.set(ticket.ticketId, entry)
  state.tickets.set(ticket.ticketId, entry)
  for (const id of entry.playerIds) state.players.set(id, ticket.ticketId)
  return { ok: true, events: [] }
}

/** Forgets a ticket and its players (no longer queued nor lobbied). */
const forget = (state: MatchmakerState, entry: Entry): void => {
  state.tickets.delete(entry.ticket.ticketId)
  state.queues.get(entry.key)?.entries.delete(entry.ticket.ticketId)
  for (const id of entry.playerIds) if (state.players.get(id) === entry.ticket.ticketId) state.players.delete(id)
}

const requeue = (state: MatchmakerState, entry: Entry): void => {
  entry.lobby = null
  entry.taken = false
  state.queues.get(entry.key)!.entries.set(entry.ticket.ticketId, entry)
}

/** Dissolves a lobby: `removed` tickets are forgotten, the others go back to their queue keeping createdAt. */
const failLobby = (
  state: MatchmakerState,
  lobby: Lobby,
  reason: string,
  isRemoved: (entry: Entry) => boolean
): MatchmakerEvent => {
  state.lobbies.delete(lobby.matchId)
  const requeued: Array<string> = []
  const removed: Array<string> = []
  for (const entry of lobby.entries) {
    if (isRemoved(entry)) {
      forget(state, entry)
      removed.push(entry.ticket.ticketId)
    } else {
      requeue(state, entry)
      requeued.push(entry.ticket.ticketId)
    }
  }
  return { _tag: "LobbyFailed", matchId: lobby.matchId, reason, requeued, removed }
}

/**
 * Cancels a ticket while it is queued or in a ready check. Cancelling during a
 * ready check dissolves the lobby (`LobbyFailed`); the other tickets are
 * requeued keeping their original createdAt. Fails once the match is
 * confirmed (the ticket is then unknown).
 */
export const cancel = (state: MatchmakerState, ticketId: string): MatchmakerResult => {
  const entry = state.tickets.get(ticketId)
  if (entry === undefined) return { ok: false, reason: `ticket "${ticketId}" is not queued (unknown, timed out or already matched)` }
  const events: Array<MatchmakerEvent> = [{ _tag: "Cancelled", ticketId, players: entry.playerIds }]
  const lobby = entry.lobby === null ? undefined : state.lobbies.get(entry.lobby)
  if (lobby !== undefined) {
    events.push(failLobby(state, lobby, `ticket "${ticketId}" was cancelled`, (e) => e === entry))
  } else {
    forget(state, entry)
  }
  return { ok: true, events }
}

const lobbyOf = (state: MatchmakerState, matchId: string, playerId: string): Lobby | string => {
  const lobby = state.lobbies.get(matchId)
  if (lobby === undefined) return `match "${matchId}" has no ready check in progress`
  const ticketId = state.players.get(playerId)
  if (ticketId === undefined || state.tickets.get(ticketId)?.lobby !== matchId) return `player "${playerId}" is not in match "${matchId}"`
  return lobby
}

type MatchInfo = Omit<Extract<MatchmakerEvent, { readonly _tag: "MatchReady" }>, "_tag">

const confirm = (state: MatchmakerState, match: MatchInfo, entries: ReadonlyArray<Entry>): MatchmakerEvent => {
  for (const entry of entries) forget(state, entry)
  return { _tag: "MatchReady", ...match }
}

const lobbyMatch = (state: MatchmakerState, lobby: Lobby): MatchInfo => {
  const mode = state.queues.get(lobby.key)!.mode
  const players = lobby.entries.flatMap((e) => e.playerIds)
  return {
    matchId: lobby.matchId,
    experienceId: mode.experienceId,
    mode: mode.mode,
    region: lobby.region,
    tickets: lobby.entries.map((e) => e.ticket.ticketId),
    players,
    averageSkill: averageSkill(lobby.entries)
  }
}

/** A player accepts the ready check; when every player of the match has accepted, the match is confirmed (`MatchReady`). Idempotent. */
export const accept = (state: MatchmakerState, matchId: string, playerId: string): MatchmakerResult => {
  const lobby = lobbyOf(state, matchId, playerId)
  if (typeof lobby === "string") return { ok: false, reason: lobby }
  lobby.accepted.add(playerId)
  let total = 0
  for (const e of lobby.entries) total += e.size
  if (lobby.accepted.size < total) return { ok: true, events: [] }
  const match = lobbyMatch(state, lobby)
  state.lobbies.delete(matchId)
  return { ok: true, events: [confirm(state, match, lobby.entries)] }
}

/**
 * A player declines the ready check: the lobby is dissolved, the decliner's
 * whole ticket (party) is removed and every other ticket is requeued with
 * its original createdAt — players who had not answered yet are not punished.
 */
export const decline = (state: MatchmakerState, matchId: string, playerId: string): MatchmakerResult => {
  const lobby = lobbyOf(state, matchId, playerId)
  if (typeof lobby === "string") return { ok: false, reason: lobby }
  const ticketId = state.players.get(playerId)!
  return { ok: true, events: [failLobby(state, lobby, `player "${playerId}" declined`, (e) => e.ticket.ticketId === ticketId)] }
}

// ---------------------------------------------------------------------------
// Queries
// ---------------------------------------------------------------------------

export type TicketStatus =
  | { readonly _tag: "Queued"; readonly since: number }
  | { readonly _tag: "ReadyCheck"; readonly matchId: string; readonly deadline: number }

/** Where a ticket is; undefined when unknown, timed out, cancelled or confirmed. */
export const ticketStatus = (state: MatchmakerState, ticketId: string): TicketStatus | undefined => {
  const entry = state.tickets.get(ticketId)
  if (entry === undefined) return undefined
  if (entry.lobby !== null) return { _tag: "ReadyCheck", matchId: entry.lobby, deadline: state.lobbies.get(entry.lobby)!.deadline }
  return { _tag: "Queued", since: entry.ticket.createdAt }
}

/** Number of queued tickets (not counting those in a ready check), of one mode or all. */
export const queuedTickets = (state: MatchmakerState, experienceId?: string, mode?: string): number => {
  if (experienceId !== undefined && mode !== undefined) return state.queues.get(queueKey(experienceId, mode))?.entries.size ?? 0
  let n = 0
  for (const q of state.queues.values()) if (experienceId === undefined || q.mode.experienceId === experienceId) n += q.entries.size
  return n
}

// ---------------------------------------------------------------------------
// Tick
// ---------------------------------------------------------------------------

/**
 * Advances every queue to `now`, in this order:
 * 1. ready checks past their deadline fail (`LobbyFailed`): tickets with a
 *    player who did not accept are removed, the others are requeued;
 * 2. queued tickets older than ticketTimeoutMs are dropped (`TimedOut`,
 *    reason "no match within Ns") — requeued tickets keep their createdAt, so
 *    time spent in a failed lobby counts;
 * 3. backfill, oldest ticket first: a party goes into the open instance of its
 *    (experience, mode) that has free slots for the whole party, a region
 *    within maxLatencyMs and an averageSkill inside the ticket's window —
 *    lowest latency first, then closest averageSkill (`Backfilled`);
 * 4. new matches, oldest ticket first as the anchor (`Matched`, then
 *    `MatchReady` at once when the mode has no ready check).
 *
 * Cost: one sort by age plus one sort by skill per region per queue, then per
 * anchor a scan outwards from the anchor's skill in each of its regions,
 * bounded by the anchor's window and by SCAN_LIMIT, over lanes that skip
 * matched tickets in amortised O(1) — no pass over all pairs.
 */
export const tick = (state: MatchmakerState, now: number, openInstances: ReadonlyArray<OpenInstance> = []): Array<MatchmakerEvent> => {
  const events: Array<MatchmakerEvent> = []
  for (const lobby of [...state.lobbies.values()]) {
    if (now < lobby.deadline) continue
    const timeout = state.queues.get(lobby.key)!.mode.readyCheckTimeoutMs
    events.push(
      failLobby(state, lobby, `ready check timed out after ${seconds(timeout)}`, (e) => e.playerIds.some((p) => !lobby.accepted.has(p)))
    )
  }
  for (const queue of state.queues.values()) {
    if (queue.entries.size > 0) tickQueue(state, queue, now, openInstances, events)
  }
  return events
}

const byAge = (a: Entry, b: Entry): number => a.ticket.createdAt - b.ticket.createdAt || a.seq - b.seq

const averageSkill = (entries: ReadonlyArray<Entry>): number => {
  let sum = 0
  let n = 0
  for (const e of entries) {
    sum += e.skill * e.size
    n += e.size
  }
  return sum / n
}

const tickQueue = (
  state: MatchmakerState,
  queue: Queue,
  now: number,
  openInstances: ReadonlyArray<OpenInstance>,
  events: Array<MatchmakerEvent>
): void => {
  const mode = queue.mode
  const all = [...queue.entries.values()].sort(byAge)
  // 2. timeouts
  let alive: Array<Entry> = []
  for (const e of all) {
    if (now - e.ticket.createdAt >= mode.ticketTimeoutMs) {
      forget(state, e)
      events.push({ _tag: "TimedOut", ticketId: e.ticket.ticketId, players: e.playerIds, reason: `no match within ${seconds(mode.ticketTimeoutMs)}` })
    } else {
      e.window = skillWindow(mode, e.ticket.createdAt, now)
      e.taken = false
      alive.push(e)
    }
  }
  // 3. backfill
  const slots = openInstances
    .filter((i) => i.experienceId === mode.experienceId && i.mode === mode.mode && i.freeSlots > 0 && Number.isFinite(i.averageSkill))
    .map((i) => ({ instance: i, free: Math.floor(i.freeSlots) }))
  let freeTotal = 0
  for (const slot of slots) freeTotal += slot.free
  if (freeTotal > 0) {
    const rest: Array<Entry> = []
    for (const e of alive) {
      if (freeTotal === 0) {
        rest.push(e)
        continue
      }
      let best: (typeof slots)[number] | undefined
      let bestLatency = 0
      let bestDiff = 0
      for (const slot of slots) {
        if (slot.free < e.size) continue
        const latency = e.ticket.latencies[slot.instance.region]
        if (latency === undefined || latency > mode.maxLatencyMs) continue
        const diff = Math.abs(e.skill - slot.instance.averageSkill)
        if (diff > e.window) continue
        if (best === undefined || latency < bestLatency || (latency === bestLatency && diff < bestDiff)) {
          best = slot
          bestLatency = latency
          bestDiff = diff
        }
      }
      if (best === undefined) {
        rest.push(e)
        continue
      }
      best.free -= e.size
      freeTotal -= e.size
      forget(state, e)
      events.push({ _tag: "Backfilled", ticketId: e.ticket.ticketId, worldId: best.instance.worldId, region: best.instance.region, players: e.playerIds })
    }
    alive = rest
  }
  if (alive.length === 0) return
  // 4. matches
  const lanes = buildLanes(alive)
  const minPlayers = mode.minPlayers ?? mode.matchSize
  for (const anchor of alive) {
    if (anchor.taken) continue
    const underfill = minPlayers < mode.matchSize && anchor.window >= mode.maxSkillWindow
    let best: Selection | undefined
    for (let k = 0; k < anchor.regions.length; k++) {
      const region = anchor.regions[k]!
      // Regions come lowest anchor latency first: a later one cannot beat a full match at that latency.
      if (best !== undefined && best.players === mode.matchSize && anchor.ticket.latencies[region]! > best.maxLatency) break
      const sel = select(lanes.get(region)!, region, anchor, anchor.pos[k]!, mode, underfill ? minPlayers : mode.matchSize)
      if (sel !== undefined && (best === undefined || better(sel, best))) best = sel
    }
    if (best === undefined) continue
    for (const e of best.entries) take(lanes, e)
    emitMatch(state, queue, best, now, events)
  }
}

interface Selection {
  readonly region: string
  readonly entries: ReadonlyArray<Entry>
  readonly players: number
  readonly maxLatency: number
  readonly spread: number
}

const better = (a: Selection, b: Selection): boolean =>
  a.players !== b.players ? a.players > b.players
  : a.maxLatency !== b.maxLatency ? a.maxLatency < b.maxLatency
  : a.spread !== b.spread ? a.spread < b.spread
  : a.region < b.region

const emitMatch = (state: MatchmakerState, queue: Queue, sel: Selection, now: number, events: Array<MatchmakerEvent>): void => {
  const mode = queue.mode
  const entries = [...sel.entries].sort(byAge)
  const matchId = `match-${++state.nextMatch}`
  const match: MatchInfo = {
    matchId,
    experienceId: mode.experienceId,
    mode: mode.mode,
    region: sel.region,
    tickets: entries.map((e) => e.ticket.ticketId),
    players: entries.flatMap((e) => e.playerIds),
    averageSkill: averageSkill(entries)
  }
  for (const e of entries) queue.entries.delete(e.ticket.ticketId)
  if (mode.readyCheckTimeoutMs > 0) {
    const lobby: Lobby = {
      matchId,
      key: queueKey(mode.experienceId, mode.mode),
      region: sel.region,
      entries,
      accepted: new Set(),
      deadline: now + mode.readyCheckTimeoutMs
    }
    for (const e of entries) e.lobby = matchId
    state.lobbies.set(matchId, lobby)
    events.push({ _tag: "Matched", ...match, readyCheckDeadline: lobby.deadline })
  } else {
    events.push({ _tag: "Matched", ...match, readyCheckDeadline: null })
    events.push(confirm(state, match, entries))
  }
}


// ---------------------------------------------------------------------------
// Lanes: per region, the tick's queued tickets sorted by skill, with
// union-find "next alive" pointers in both directions so matched tickets are
// skipped in amortised O(1).
// ---------------------------------------------------------------------------

class Lane {
  readonly skills: Float64Array
  /** next[i] === i when i is alive; i in [0, n], n is a sentinel. */
  private readonly next: Int32Array
  /** prev[i + 1] === i + 1 when i is alive; index 0 is a sentinel for -1. */
  private readonly prev: Int32Array

  constructor(readonly entries: ReadonlyArray<Entry>) {
    const n = entries.length
    this.skills = new Float64Array(n)
    for (let i = 0; i < n; i++) this.skills[i] = entries[i]!.skill
    this.next = new Int32Array(n + 1)
    this.prev = new Int32Array(n + 1)
    for (let i = 0; i <= n; i++) {
      this.next[i] = i
      this.prev[i] = i
    }
  }

  remove(i: number): void {
    this.next[i] = i + 1
    this.prev[i + 1] = i
  }

  /** First alive index >= i, or entries.length. */
  right(i: number): number {
    const next = this.next
    let root = i
    while (next[root] !== root) root = next[root]!
    while (next[i] !== root) {
      const j = next[i]!
      next[i] = root
      i = j
    }
    return root
  }

  /** Last alive index <= i, or -1. */
  left(i: number): number {
    const prev = this.prev
    let j = i + 1
    let root = j
    while (prev[root] !== root) root = prev[root]!
    while (prev[j] !== root) {
      const k = prev[j]!
      prev[j] = root
      j = k
    }
    return root - 1
  }
}

const buildLanes = (entries: ReadonlyArray<Entry>): Map<string, Lane> => {
  const buckets = new Map<string, Array<Entry>>()
  for (const e of entries) {
    for (const region of e.regions) {
      let bucket = buckets.get(region)
      if (bucket === undefined) buckets.set(region, (bucket = []))
      bucket.push(e)
    }
  }
  const lanes = new Map<string, Lane>()
  for (const [region, bucket] of buckets) {
    bucket.sort((a, b) => a.skill - b.skill || a.seq - b.seq)
    for (let i = 0; i < bucket.length; i++) {
      const e = bucket[i]!
      e.pos[e.regions.indexOf(region)] = i
    }
    lanes.set(region, new Lane(bucket))
  }
  return lanes
}

const take = (lanes: Map<string, Lane>, e: Entry): void => {
  e.taken = true
  for (let k = 0; k < e.regions.length; k++) lanes.get(e.regions[k]!)!.remove(e.pos[k]!)
}

/**
 * Builds the best match around `anchor` in one region: walks outwards from
 * the anchor's skill (closest first), keeping every candidate that is
 * pairwise compatible with all kept ones (so any subset of the pool is a
 * valid match), then packs party sizes to exactly matchSize — greedily while
 * walking, with a subset-sum over the pool as the fallback. With
 * `floor < matchSize` (a short match is allowed) the largest reachable size
 * >= floor is taken when matchSize is not reachable.
 */
const select = (lane: Lane, region: string, anchor: Entry, anchorPos: number, mode: MatchMode, floor: number): Selection | undefined => {
  const target = mode.matchSize
  const s0 = anchor.skill
  const w0 = anchor.window
  const poolCap = Math.max(POOL_MIN, 4 * target)
  const pool: Array<Entry> = []
  // Pairwise compatibility state: skill range of the pool and the intersection of its windows.
  let minS = s0
  let maxS = s0
  let lo = s0 - w0
  let hi = s0 + w0
  // Greedy packing while walking.
  const greedy: Array<Entry> = [anchor]
  let remaining = target - anchor.size
  let l = lane.left(anchorPos - 1)
  let r = lane.right(anchorPos + 1)
  const n = lane.entries.length
  let scanned = 0
  while (remaining > 0 && pool.length < poolCap && scanned < SCAN_LIMIT) {
    const dl = l >= 0 ? s0 - lane.skills[l]! : Infinity
    const dr = r < n ? lane.skills[r]! - s0 : Infinity
    let c: Entry
    if (dl <= dr) {
      if (dl > w0) break
      c = lane.entries[l]!
      l = lane.left(l - 1)
    } else {
      if (dr > w0) break
      c = lane.entries[r]!
      r = lane.right(r + 1)
    }
    scanned++
    const s = c.skill
    if (s < lo || s > hi || s - c.window > minS || s + c.window < maxS) continue
    pool.push(c)
    if (s < minS) minS = s
    if (s > maxS) maxS = s
    if (s - c.window > lo) lo = s - c.window
    if (s + c.window < hi) hi = s + c.window
    if (c.size <= remaining) {
      greedy.push(c)
      remaining -= c.size
    }
  }
  let chosen: Array<Entry> | undefined
  if (remaining === 0) chosen = greedy
  else {
    const picked = pack(pool.map((e) => e.size), target - anchor.size, floor - anchor.size)
    if (picked !== undefined) chosen = [anchor, ...picked.map((i) => pool[i]!)]
  }
  if (chosen === undefined) return undefined
  let players = 0
  let maxLatency = 0
  let cMin = Infinity
  let cMax = -Infinity
  for (const e of chosen) {
    players += e.size
    const latency = e.ticket.latencies[region]!
    if (latency > maxLatency) maxLatency = latency
    if (e.skill < cMin) cMin = e.skill
    if (e.skill > cMax) cMax = e.skill
  }
  return { region, entries: chosen, players, maxLatency, spread: cMax - cMin }
}

/**
 * Subset sum over `sizes` (in preference order): indices summing to exactly
 * `target`, preferring earlier items (lexicographically first choice);
 * otherwise the largest reachable sum >= `floor` (when floor < target);
 * otherwise undefined. O(items * target).
 */
export const pack = (sizes: ReadonlyArray<number>, target: number, floor: number): Array<number> | undefined => {
  if (target < 0) return undefined
  const k = sizes.length
  const width = target + 1
  // can[i * width + s]: sum s is reachable with items i..k-1.
  const can = new Uint8Array((k + 1) * width)
  can[k * width] = 1
  for (let i = k - 1; i >= 0; i--) {
    const size = sizes[i]!
    const row = i * width
    const next = row + width
    for (let s = 0; s <= target; s++) {
      can[row + s] = can[next + s]! | (s >= size ? can[next + s - size]! : 0)
    }
  }
  const least = Math.max(0, Math.min(floor, target))
  let sum = target
  while (sum > least && can[sum] === 0) sum--
  if (can[sum] === 0) return undefined
  const picked: Array<number> = []
  for (let i = 0; i < k && sum > 0; i++) {
    const size = sizes[i]!
    if (size <= sum && can[(i + 1) * width + sum - size] === 1) {
      picked.push(i)
      sum -= size
    }
  }
  return picked
}
