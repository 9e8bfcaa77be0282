import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type {
  JoinedInfo,
  MatchEnded,
  MatchFound,
  MatchReady,
  MoveInfo,
  TesseraClient,
  TesseraError
} from "../../src/client/TesseraClient.js"
import { connectGuest, waitFor, walk } from "../support/clients.js"
import { ServerProcess } from "../support/ServerProcess.js"
import { testToml } from "../support/testConfig.js"

/**
 * The matchmaking expert end to end, against the real binary: queues per
 * (experience, mode), parties, matches allocated by the scheduler and players
 * routed there, cancel, timeouts, the ready check and hostile frames.
 */
let server: ServerProcess
const clients: Array<TesseraClient> = []

const ADMIN_KEY = "matchmaking-test-admin-key-0123456789"
const MATCHMAKING = `
[admin]
key = "${ADMIN_KEY}"
event_history = 2000

[[experiences]]
id = "squads"
name = "Squads"
tick_rate = 20
max_players = 10

[matchmaking]
regions = ["eu", "us"]
tick_ms = 100

[[matchmaking.modes]]
experience = "squads"
mode = "ten"
match_size = 10
initial_skill_window = 100
skill_window_growth_per_second = 100
max_skill_window = 1000
ticket_timeout_seconds = 60
max_latency_ms = 150

[[matchmaking.modes]]
experience = "squads"
mode = "ranked"
match_size = 2
ready_check_seconds = 5
ticket_timeout_seconds = 60

[[matchmaking.modes]]
experience = "arena"
mode = "lonely"
match_size = 4
ticket_timeout_seconds = 2
`

beforeAll(async () => {
  server = await ServerProcess.start({ toml: testToml(MATCHMAKING) })
})
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => {})))
  await server?.stop()
})

const guest = async (name: string): Promise<TesseraClient> => {
  const client = await connectGuest(server, name)
  clients.push(client)
  return client
}

/** Every matchmaking event of a client, in order. */
interface Recorder {
  readonly queued: Array<string>
  readonly found: Array<MatchFound>
  readonly ready: Array<MatchReady>
  readonly ended: Array<MatchEnded>
  readonly errors: Array<TesseraError>
  /** Server-made moves, and the Joined frames (solicited or not). */
  readonly moved: Array<MoveInfo>
  readonly joined: Array<JoinedInfo>
  readonly left: Array<string>
}
const record = (client: TesseraClient): Recorder => {
  const r: Recorder = { queued: [], found: [], ready: [], ended: [], errors: [], moved: [], joined: [], left: [] }
  client.on("moved", (m) => r.moved.push(m))
  client.on("joined", (j) => r.joined.push(j))
  client.on("left", (reason) => r.left.push(reason))
  client.on("matchQueued", (t) => r.queued.push(t))
  client.on("matchFound", (m) => r.found.push(m))
  client.on("matchReady", (m) => r.ready.push(m))
  client.on("matchEnded", (e) => r.ended.push(e))
  client.on("error", (e) => r.errors.push(e))
  return r
}

const sendRaw = (client: TesseraClient, frame: ReadonlyArray<unknown>): boolean =>
  (client as unknown as { send(frame: ReadonlyArray<unknown>): boolean }).send(frame)

describe("matchmaking", () => {
  it("20 bots (with parties of 2-3) queue for a 10-player mode and land in two instances with parties intact", async () => {
    const bots = await Promise.all(Array.from({ length: 20 }, (_, i) => guest(`mm-bot-${i}`)))
    const recorders = bots.map(record)
    // Parties: bots 0-2, 3-4, 5-6, 7-9; bots 10-19 queue alone.
    const parties: ReadonlyArray<ReadonlyArray<number>> = [
      [0, 1, 2],
      [3, 4],
      [5, 6],
      [7, 8, 9],
      ...Array.from({ length: 10 }, (_, i) => [10 + i])
    ]
    const tickets = await Promise.all(
      parties.map((party, i) =>
        bots[party[0]!]!.queueMatch("squads", "ten", {
          party: party.slice(1).map((b) => bots[b]!.playerId!),
          skill: 1000 + i * 10,
          latencies: { eu: 20 + i, us: 120 }
        })
      )
    )
    expect(new Set(tickets).size).toBe(parties.length)
    for (const t of tickets) expect(t.startsWith("squads:ten/")).toBe(true)
    // Every party member hears its leader's ticket.
    for (const [i, party] of parties.entries()) {
      for (const b of party) await waitFor(`bot ${b} queued`, () => recorders[b]!.queued.includes(tickets[i]!))
    }

    await waitFor("every bot's match is ready", () => recorders.every((r) => r.ready.length === 1), 20_000)
    const worldOf = recorders.map((r) => r.ready[0]!.worldId)
    const worlds = new Set(worldOf)
    expect(worlds.size).toBe(2)
    for (const w of worlds) expect(worldOf.filter((x) => x === w)).toHaveLength(10)
    for (const party of parties) expect(new Set(party.map((b) => worldOf[b])).size).toBe(1)
    for (const r of recorders) {
      expect(r.found).toHaveLength(1)
      expect(r.found[0]!.readyCheckDeadline).toBeNull()
      expect(r.found[0]!.players).toHaveLength(10)
      expect(r.ended).toEqual([])
      expect(r.ready[0]!.experienceId).toBe("squads")
    }

    // Each bot (in no world before) was moved seamlessly into its match's instance: Moved + Joined,
    // no Join sent; its inputs are acked there.
    recorders.forEach((r, i) => {
      expect(r.moved, `bot ${i}`).toEqual([{ fromWorld: null, toWorld: worldOf[i], reason: `matched (${r.found[0]!.matchId}): moved to ${worldOf[i]}` }])
      expect(r.joined.map((j) => j.worldId), `bot ${i}`).toEqual([worldOf[i]])
      expect(r.left).toEqual([])
      expect(bots[i]!.joined?.worldId).toBe(worldOf[i])
    })
    // Only the leaders' MatchQueue frames went out: nobody sent a Join.
    const leaders = new Set(parties.map((p) => p[0]!))
    bots.forEach((b, i) => expect(b.stats.msgsOut, `bot ${i}`).toBe(leaders.has(i) ? 1 : 0))
    const seqs = await Promise.all(bots.map((b) => walk(b, 1, 0, 0, 5)))
    await Promise.all(bots.map((b, i) => waitFor(`bot ${i} acked`, () => b.lastAckedSeq >= seqs[i]!, 15_000)))
  })

  it("cancelling leaves the queue with a clear reason; cancelling again is an error", async () => {
    const bot = await guest("mm-cancel")
    const r = record(bot)
    const ticket = await bot.queueMatch("arena", "lonely", { skill: 5 })
    expect(bot.cancelMatch()).toBe(true)
    await waitFor("cancelled", () => r.ended.length === 1)
    expect(r.ended[0]).toEqual({ id: ticket, reason: "cancelled", message: `cancelled by "${bot.playerId}"` })
    bot.cancelMatch()
    await waitFor("not queued error", () => r.errors.find((e) => e.code === "not_queued"))
    // The queue is usable again.
    const again = await bot.queueMatch("arena", "lonely")
    expect(again).not.toBe(ticket)
    bot.cancelMatch()
    await waitFor("cancelled again", () => r.ended.length === 2)
  })

  it("a lone ticket times out with the clear reason", async () => {
    const bot = await guest("mm-lonely")
    const r = record(bot)
    const ticket = await bot.queueMatch("arena", "lonely", { latencies: { eu: 30 } })
    await waitFor("timed out", () => r.ended.length === 1, 6000)
    expect(r.ended[0]).toEqual({ id: ticket, reason: "timeout", message: "no match within 2s" })
    expect(r.found).toEqual([])
  })

  it("ready check: a decline ends the lobby for all and requeues the others; accepting starts the match", async () => {
    const [a, b, c] = await Promise.all([guest("mm-rc-a"), guest("mm-rc-b"), guest("mm-rc-c")])
    const [ra, rb, rc] = [record(a), record(b), record(c)]
    const ta = await a.queueMatch("squads", "ranked", { skill: 1500 })
    await b.queueMatch("squads", "ranked", { skill: 1500 })
    await waitFor("both found", () => ra.found.length === 1 && rb.found.length === 1)
    const lobby = ra.found[0]!
    expect(rb.found[0]!.matchId).toBe(lobby.matchId)
    expect(lobby.readyCheckDeadline).toBeGreaterThan(Date.now())
    expect([...lobby.players].sort()).toEqual([a.playerId, b.playerId].sort())

    b.declineMatch(lobby.matchId)
    await waitFor("lobby failed for both", () => ra.ended.length === 1 && rb.ended.length === 1)
    expect(ra.ended[0]).toMatchObject({ id: lobby.matchId, reason: "lobby_failed" })
    expect(ra.ended[0]!.message).toContain(`player "${b.playerId}" declined`)
    expect(ra.ended[0]!.message).toContain("queued again")
    expect(rb.ended[0]!.message).toContain("removed")
    await waitFor("a requeued", () => ra.queued.filter((t) => t === ta).length === 2)
    expect(ra.ready).toEqual([])

    // Accepting a match one is not in, or twice-declined ones, is refused.
    c.acceptMatch(lobby.matchId)
    await waitFor("c refused", () => rc.errors.find((e) => e.code === "not_queued"))

    await c.queueMatch("squads", "ranked", { skill: 1500 })
    await waitFor("a and c found", () => ra.found.length === 2 && rc.found.length === 1)
    const match = rc.found[0]!
    expect(ra.found[1]!.matchId).toBe(match.matchId)
    a.acceptMatch(match.matchId)
    c.acceptMatch(match.matchId)
    await waitFor("both ready", () => ra.ready.length === 1 && rc.ready.length === 1, 10_000)
    const world = ra.ready[0]!.worldId
    expect(rc.ready[0]!.worldId).toBe(world)
    // Already there, without a Join.
    expect(a.joined?.worldId).toBe(world)
    expect(c.joined?.worldId).toBe(world)
    expect(ra.moved.map((m) => m.toWorld)).toEqual([world])
    expect(rb.ready).toEqual([])
    expect(rb.moved).toEqual([])
  })

  it("a player playing the experience is routed from its instance to the match's; one in no world is placed", async () => {
    const [d, e] = await Promise.all([guest("mm-route-d"), guest("mm-route-e")])
    const [rd, re] = [record(d), record(e)]
    const before = await d.join("squads")
    await d.queueMatch("squads", "ranked", { skill: 3000 })
    await e.queueMatch("squads", "ranked", { skill: 3000 })
    await waitFor("both found", () => rd.found.length === 1 && re.found.length === 1)
    const match = rd.found[0]!
    d.acceptMatch(match.matchId)
    e.acceptMatch(match.matchId)
    await waitFor("both ready", () => rd.ready.length === 1 && re.ready.length === 1, 10_000)
    const world = rd.ready[0]!.worldId
    expect(world).not.toBe(before.worldId)
    const reason = `matched (${match.matchId}): moved to ${world}`
    expect(rd.moved).toEqual([{ fromWorld: before.worldId, toWorld: world, reason }])
    expect(re.moved).toEqual([{ fromWorld: null, toWorld: world, reason }])
    expect(rd.joined.map((j) => j.worldId)).toEqual([before.worldId, world])
    expect(re.joined.map((j) => j.worldId)).toEqual([world])
    expect(rd.left).toEqual([])
    // Both play there.
    const seqs = await Promise.all([walk(d, 0, 0, 1, 5), walk(e, 1, 0, 0, 5)])
    await waitFor("d acked", () => d.lastAckedSeq >= seqs[0])
    await waitFor("e acked", () => e.lastAckedSeq >= seqs[1])
    // The scheduler's registry agrees: both in the match's instance, none left in d's old one.
    const sessions = async (worldId: string) =>
      (await fetch(`${server.httpUrl}/v1/admin/servers/${worldId}/sessions`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).json() as Promise<{ players?: Array<string> }>
    expect([...((await sessions(world)).players ?? [])].sort()).toEqual([d.playerId, e.playerId].sort())
    expect((await sessions(before.worldId)).players ?? []).not.toContain(d.playerId)
  })

  it("bad matchmaking frames get clear errors and disturb nothing", async () => {
    const bot = await guest("mm-bad")
    const r = record(bot)
    const rejects = async (promise: Promise<unknown>, code: string, text: string) => {
      const error = (await promise.then(() => undefined, (e: unknown) => e)) as TesseraError | undefined
      expect(error?.code).toBe(code)
      expect(error?.message).toContain(text)
    }
    await rejects(bot.queueMatch("squads", "nope"), "match_rejected", 'no matchmaking mode "nope"')
    await rejects(bot.queueMatch("squads", "ten", { party: ["nobody-online"] }), "match_rejected", "not online")
    await rejects(bot.queueMatch("squads", "ten", { latencies: { mars: 10 } }), "match_rejected", 'unknown region "mars"')
    await rejects(bot.queueMatch("squads", "ten", { latencies: { eu: 900 } }), "match_rejected", "no region within 150 ms")
    await rejects(bot.queueMatch("squads", "ten", { party: [bot.playerId!] }), "bad_shape", "not yourself")
    await rejects(bot.queueMatch("squads", "ten", { latencies: { eu: -1 } }), "bad_shape", "latencies")
    await rejects(bot.queueMatch("squads", "ten", { skill: Number.NaN }), "bad_shape", "skill")
    await rejects(bot.queueMatch("squads", "ranked", { party: ["a", "b"] }), "match_rejected", "does not fit a match of 2")

    sendRaw(bot, [21, "extra"])
    await waitFor("cancel shape", () => r.errors.find((e) => e.message === "match cancel is [21]"))
    sendRaw(bot, [22])
    await waitFor("accept shape", () => r.errors.find((e) => e.message.startsWith("match accept is [22, matchId]")))
    bot.acceptMatch("no-such-match")
    await waitFor("unknown match", () => r.errors.find((e) => e.message === 'no match "no-such-match"'))

    // Still connected and able to queue properly.
    expect(await bot.ping()).toBeGreaterThanOrEqual(0)
    const ticket = await bot.queueMatch("arena", "lonely")
    bot.cancelMatch()
    await waitFor("cancelled", () => r.ended.find((e) => e.id === ticket && e.reason === "cancelled"))
    expect(r.queued).toEqual([ticket])
  })

  it("a player who disconnects leaves the queue with its party", async () => {
    const [leader, member] = await Promise.all([guest("mm-dc-leader"), guest("mm-dc-member")])
    const rm = record(member)
    const ticket = await leader.queueMatch("arena", "lonely", { party: [member.playerId!] })
    await waitFor("member queued", () => rm.queued.includes(ticket))
    await leader.close()
    await waitFor("the party's ticket cancelled", () => rm.ended.find((e) => e.id === ticket), 5000)
    expect(rm.ended[0]).toMatchObject({ reason: "cancelled", message: `player "${leader.playerId}" disconnected` })

    // The gateway published the connection's lifecycle as control events (actor "system").
    const res = await fetch(`${server.httpUrl}/v1/admin/events?history=1`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })
    expect(res.status).toBe(200)
    const body = (await res.json()) as { events: ReadonlyArray<{ actor: string; event: { _tag: string; playerId?: string; reason?: string } }> }
    const about = (tag: string, playerId: string) =>
      body.events.filter((e) => e.event._tag === tag && e.event.playerId === playerId)
    expect(about("PlayerConnected", leader.playerId!)).toHaveLength(1)
    expect(about("PlayerConnected", leader.playerId!)[0]!.actor).toBe("system")
    const gone = about("PlayerDisconnected", leader.playerId!)
    expect(gone).toHaveLength(1)
    expect(gone[0]!.event.reason).toContain("connection closed (1000")
    expect(about("PlayerDisconnected", member.playerId!)).toEqual([])
    // Matches were started and players routed by the scheduler on the matchmaker's behalf.
    expect(body.events.filter((e) => e.event._tag === "ServerSpawned" && e.actor === "scheduler").length).toBeGreaterThanOrEqual(3)
  })
})
