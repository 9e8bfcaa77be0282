import { spawn } from "node:child_process"
import * as Path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { JoinedInfo, MoveInfo, TesseraClient } from "../../src/client/TesseraClient.js"
import type { ControlEnvelope } from "../../src/control/ControlEvent.js"
import { connectGuest, sleep, waitFor, walk } from "../support/clients.js"
import { ServerProcess } from "../support/ServerProcess.js"
import { testToml } from "../support/testConfig.js"

const ROOT = Path.resolve(import.meta.dirname, "../..")
const KEY = "admin-test-key-0123456789abcdef"

let server: ServerProcess
const clients: Array<TesseraClient> = []
let events: EventStream | undefined

beforeAll(async () => {
  // Spawned instances stay while empty for the whole file (the default test grace is 2 s).
  const toml = testToml(`
[admin]
key = "${KEY}"
event_history = 500
`).replace("empty_instance_grace_seconds = 2", "empty_instance_grace_seconds = 120")
  server = await ServerProcess.start({ toml })
})
afterAll(async () => {
  events?.close()
  for (const c of clients) await c.close().catch(() => {})
  await server?.stop()
})

const auth = (key = KEY): Record<string, string> => ({ authorization: `Bearer ${key}` })

const admin = async (method: string, path: string, body?: unknown, key: string | null = KEY) => {
  const res = await fetch(`${server.httpUrl}${path}`, {
    method,
    headers: { ...(key === null ? {} : auth(key)), ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) })
  })
  const text = await res.text()
  let json: any = undefined
  try {
    json = JSON.parse(text)
  } catch {
    // not JSON
  }
  return { status: res.status, json, text }
}

/** A live SSE stream read with fetch: every envelope it delivered, in order. */
interface EventStream {
  readonly envelopes: Array<ControlEnvelope>
  readonly ids: Array<string>
  close(): void
}

const openEvents = async (headers: Record<string, string> = {}): Promise<EventStream> => {
  const controller = new AbortController()
  const res = await fetch(`${server.httpUrl}/v1/admin/events`, { headers: { ...auth(), ...headers }, signal: controller.signal })
  expect(res.status).toBe(200)
  expect(res.headers.get("content-type")).toContain("text/event-stream")
  const stream: EventStream = { envelopes: [], ids: [], close: () => controller.abort() }
  void (async () => {
    const decoder = new TextDecoder()
    let buffer = ""
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true })
        let end: number
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const frame = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          for (const line of frame.split("\n")) {
            if (line.startsWith("data: ")) stream.envelopes.push(JSON.parse(line.slice(6)))
            if (line.startsWith("id: ")) stream.ids.push(line.slice(4))
          }
        }
      }
    } catch {
      // aborted
    }
  })()
  return stream
}

/** Runs the real CLI; resolves with its exit code and output. */
const cli = (args: ReadonlyArray<string>) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [Path.join(ROOT, "dist/tessera.mjs"), "admin", ...args], {
      cwd: ROOT,
      env: { ...process.env, TESSERA_ADMIN_KEY: "", TESSERA_ADMIN_URL: "" },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()))
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
    child.once("exit", (code) => resolve({ code, stdout, stderr }))
  })

/**
 * The client's next server-made move: its Moved frame and, when it went
 * somewhere, the Joined right after it. Fails on a Left (the fallback) or
 * on a Join sent by the client meanwhile (the move must be seamless).
 */
const nextMove = (client: TesseraClient) =>
  new Promise<{ move: MoveInfo; joined: JoinedInfo | undefined; joinsSent: number }>((resolve, reject) => {
    const sentBefore = client.stats.msgsOut
    let move: MoveInfo | undefined
    const done = (joined: JoinedInfo | undefined) => {
      client.off("moved", onMoved)
      client.off("joined", onJoined)
      client.off("left", onLeft)
      resolve({ move: move!, joined, joinsSent: client.stats.msgsOut - sentBefore })
    }
    const onMoved = (m: MoveInfo) => {
      move = m
      if (m.toWorld === null) done(undefined)
    }
    const onJoined = (j: JoinedInfo) => {
      if (move !== undefined) done(j)
    }
    const onLeft = (reason: string) => reject(new Error(`got Left (${reason}) instead of Moved`))
    client.on("moved", onMoved)
    client.on("joined", onJoined)
    client.on("left", onLeft)
  })

/** Resolves with the code and reason of the client's next close. */
const nextClose = (client: TesseraClient) =>
  new Promise<{ code: number; reason: string }>((resolve) => client.once("close", (code, reason) => resolve({ code, reason })))

describe("Control API auth", () => {
  const routes: ReadonlyArray<readonly [string, string, unknown?]> = [
    ["GET", "/v1/admin/servers"],
    ["GET", "/v1/admin/servers?experience=arena"],
    ["POST", "/v1/admin/servers", { experience: "arena" }],
    ["DELETE", "/v1/admin/servers/arena.1"],
    ["GET", "/v1/admin/servers/arena.1/sessions"],
    ["POST", "/v1/admin/route", { playerId: "p", worldId: "arena.1" }],
    ["POST", "/v1/admin/runners/127.0.0.1:34431/drain"],
    ["GET", "/v1/admin/events"],
    ["GET", "/v1/admin/events?history=1"],
    ["GET", "/v1/admin/audit"],
    ["GET", "/v1/admin/no-such-route"]
  ]

  it.each(routes)("%s %s without the key, or with a wrong one, is 401 and changes nothing", async (...route) => {
    const [method, path, body] = route as unknown as [string, string, unknown]
    const none = await admin(method, path, body, null)
    expect(none.status).toBe(401)
    expect(none.json.error.code).toBe("unauthorized")
    expect(none.json.error.message).toContain("admin key is required")
    const wrong = await admin(method, path, body, "not-the-key")
    expect(wrong.status).toBe(401)
    expect(wrong.json.error.message).toContain("wrong admin key")
    const basic = await fetch(`${server.httpUrl}${path}`, { method, headers: { authorization: `Basic ${KEY}` } })
    expect(basic.status).toBe(401)
    await basic.body?.cancel()
  })

  it("nothing was spawned by the refused requests", async () => {
    const list = await admin("GET", "/v1/admin/servers")
    expect(list.status).toBe(200)
    expect(list.json.instances).toEqual([])
  })
})

describe("Control API bad input", () => {
  it.each([
    ["spawn without experience", "POST", "/v1/admin/servers", {}, "experience is required"],
    ["spawn with bad JSON", "POST", "/v1/admin/servers", "{nope", "not valid JSON"],
    ["spawn with an array", "POST", "/v1/admin/servers", "[]", "JSON object"],
    ["spawn with an unknown field", "POST", "/v1/admin/servers", { experience: "arena", n: 2 }, "unknown field \"n\""],
    ["spawn with a bad id", "POST", "/v1/admin/servers", { experience: "a b" }, "experience must be"],
    ["spawn with an oversize body", "POST", "/v1/admin/servers", { experience: "x".repeat(5000) }, "exceeds"],
    ["route without playerId", "POST", "/v1/admin/route", { worldId: "arena.1" }, "playerId must be"],
    ["route with a number", "POST", "/v1/admin/route", { playerId: 5, worldId: "arena.1" }, "playerId must be"],
    ["terminate with a bad move", "DELETE", "/v1/admin/servers/arena.1?move=a%20b", undefined, "move must be"],
    ["audit with limit 0", "GET", "/v1/admin/audit?limit=0", undefined, "limit must be"],
    ["audit with a huge limit", "GET", "/v1/admin/audit?limit=100000", undefined, "limit must be"],
    ["events with a bad since", "GET", "/v1/admin/events?since=-1", undefined, "since must be"],
    ["servers with a bad experience", "GET", "/v1/admin/servers?experience=%3Cx%3E", undefined, "experience must be"],
    ["servers with a bad region", "GET", "/v1/admin/servers?region=a%20b", undefined, "region must be"]
  ])("%s is 400 with a clear message", async (_what, method, path, body, message) => {
    const res = await admin(method, path, body)
    expect(res.status).toBe(400)
    expect(res.json.error.code).toBe("bad_request")
    expect(res.json.error.message).toContain(message)
  })

  it.each([
    ["sessions of an unknown world", "GET", "/v1/admin/servers/arena.999/sessions", undefined],
    ["terminate of an unknown world", "DELETE", "/v1/admin/servers/arena.999", undefined],
    ["route to an unknown world", "POST", "/v1/admin/route", { playerId: "nobody", worldId: "arena.999" }],
    ["spawn of an unknown experience", "POST", "/v1/admin/servers", { experience: "nope" }]
  ])("%s is 404", async (_what, method, path, body) => {
    const res = await admin(method, path, body)
    expect(res.status).toBe(404)
    expect(res.json.error.code).toBe("not_found")
  })
})

describe("Control API operations", () => {
  let first = ""
  let second = ""
  let player: TesseraClient

  it("spawn: the new instances are listed (and filtered by experience)", async () => {
    events = await openEvents()
    const a = await admin("POST", "/v1/admin/servers", { experience: "arena" })
    expect(a.status).toBe(201)
    expect(a.json).toMatchObject({ experienceId: "arena", players: 0, maxPlayers: 50 })
    first = a.json.worldId
    const b = await admin("POST", "/v1/admin/servers", { experience: "arena" })
    expect(b.status).toBe(201)
    second = b.json.worldId
    expect(second).not.toBe(first)
    const lobby = await admin("POST", "/v1/admin/servers", { experience: "lobby" })
    expect(lobby.status).toBe(201)

    const all = await admin("GET", "/v1/admin/servers")
    expect(all.json.instances.map((i: { worldId: string }) => i.worldId).sort()).toEqual(
      [first, second, lobby.json.worldId].sort()
    )
    const arena = await admin("GET", "/v1/admin/servers?experience=arena")
    expect(arena.json.instances.map((i: { worldId: string }) => i.worldId).sort()).toEqual([first, second].sort())
    // By region: an instanced world is one region, named like the world.
    const one = await admin("GET", `/v1/admin/servers?region=${encodeURIComponent(first)}`)
    expect(one.json.instances.map((i: { worldId: string }) => i.worldId)).toEqual([first])
    expect((await admin("GET", "/v1/admin/servers?experience=lobby&region=" + first)).json.instances).toEqual([])
    expect((await admin("GET", `/v1/admin/servers/${first}/sessions`)).json).toEqual({
      worldId: first,
      experienceId: "arena",
      players: []
    })
  })

  it("route: a playing guest is moved seamlessly to another instance (Moved + Joined, no Join) and keeps playing", async () => {
    player = await connectGuest(server, "admin-route-player")
    clients.push(player)
    const joined = await player.join("arena")
    // The fullest instance with room: both are empty, either may be picked.
    expect([first, second]).toContain(joined.worldId)
    const from = joined.worldId
    const to = from === first ? second : first
    expect((await admin("GET", `/v1/admin/servers/${from}/sessions`)).json.players).toEqual([player.playerId])

    const moving = nextMove(player)
    const routed = await admin("POST", "/v1/admin/route", { playerId: player.playerId, worldId: to })
    expect(routed.status).toBe(200)
    expect(routed.json).toEqual({ playerId: player.playerId, fromWorld: from, toWorld: to, told: true })
    const { move, joined: arrived, joinsSent } = await moving
    expect(move).toEqual({ fromWorld: from, toWorld: to, reason: `moved to ${to} by an admin` })
    expect(arrived).toMatchObject({ experienceId: "arena", worldId: to, regionId: to })
    expect(joinsSent).toBe(0)
    expect(player.isInWorld).toBe(true)
    expect(player.joined?.worldId).toBe(to)

    const seq = await walk(player, 1, 0, 0, 10)
    await waitFor("acks in the new instance", () => player.lastAckedSeq >= seq)
    expect((await admin("GET", `/v1/admin/servers/${to}/sessions`)).json.players).toEqual([player.playerId])
    expect((await admin("GET", `/v1/admin/servers/${from}/sessions`)).json.players).toEqual([])

    // Routing again to where it is, or across experiences, is refused.
    expect((await admin("POST", "/v1/admin/route", { playerId: player.playerId, worldId: to })).status).toBe(409)
    const lobby = (await admin("GET", "/v1/admin/servers?experience=lobby")).json.instances[0].worldId
    expect((await admin("POST", "/v1/admin/route", { playerId: player.playerId, worldId: lobby })).status).toBe(400)
    expect((await admin("POST", "/v1/admin/route", { playerId: "not-connected", worldId: to })).status).toBe(404)
  })

  it("terminate with move: the player lands in another instance of the experience", async () => {
    const current = (await admin("GET", `/v1/admin/servers/${first}/sessions`)).json.players.length === 1 ? first : second
    const other = current === first ? second : first
    const moving = nextMove(player)
    const res = await admin("DELETE", `/v1/admin/servers/${current}?reason=rebalancing&move=auto`)
    expect(res.status).toBe(200)
    expect(res.json).toEqual({
      worldId: current,
      experienceId: "arena",
      moved: [{ playerId: player.playerId, toWorld: other, told: true }]
    })
    const { move, joined: arrived, joinsSent } = await moving
    expect(move).toMatchObject({ fromWorld: current, toWorld: other })
    expect(move.reason).toContain("rebalancing")
    expect(move.reason).toContain(`moved to ${other}`)
    expect(arrived?.worldId).toBe(other)
    expect(joinsSent).toBe(0)
    const seq = await walk(player, 0, 0, 1, 5)
    await waitFor("acks after the move", () => player.lastAckedSeq >= seq)

    const list = (await admin("GET", "/v1/admin/servers?experience=arena")).json.instances
    expect(list.map((i: { worldId: string }) => i.worldId)).toEqual([other])
    expect(list[0].players).toBe(1)
    expect((await admin("GET", `/v1/admin/servers/${current}/sessions`)).status).toBe(404)
    first = other
  })

  it("terminate with move=none: Moved with no world, then close 4006 with the reason; no auto-reconnect", async () => {
    const moving = nextMove(player)
    const closing = nextClose(player)
    let reconnecting = 0
    player.on("reconnecting", () => reconnecting++)
    const res = await admin("DELETE", `/v1/admin/servers/${first}?reason=maintenance%20window&move=none`)
    expect(res.status).toBe(200)
    expect(res.json.moved).toEqual([{ playerId: player.playerId, toWorld: null, told: true }])
    const { move } = await moving
    expect(move).toMatchObject({ fromWorld: first, toWorld: null })
    expect(move.reason).toContain("maintenance window")
    const closed = await closing
    expect(closed.code).toBe(4006)
    expect(closed.reason).toMatch(/^instance terminated: /)
    expect(closed.reason).toContain("maintenance window")
    expect(player.isInWorld).toBe(false)
    expect((await admin("GET", "/v1/admin/servers?experience=arena")).json.instances).toEqual([])
    await sleep(300)
    expect(player.state).toBe("closed")
    expect(reconnecting).toBe(0)
    // Not barred: it may connect and play again; a join places it anew.
    const welcome = await player.connect()
    expect(welcome.resumed).toBe(false)
    const again = await player.join("arena")
    expect(again.worldId).toMatch(/^arena\./)
  })

  it("drain: an address no runner has registered is refused with 404, and nothing is recorded", async () => {
    // (This server's own runner, 127.0.0.1:34431, would really drain: exit. runnerDrain.test.ts does that.)
    const res = await admin("POST", "/v1/admin/runners/10.9.9.9:34431/drain")
    expect(res.status).toBe(404)
    expect(res.json.error.code).toBe("not_found")
    expect(res.json.error.message).toContain("no runner \"10.9.9.9:34431\" is registered")
    expect(res.json.error.message).toContain("127.0.0.1:34431")
    const bad = await admin("POST", "/v1/admin/runners/not%20an%20address/drain")
    expect(bad.status).toBe(400)
    const list = await admin("GET", "/v1/admin/servers")
    expect(list.json.drainingRunners).toEqual([])
  })

  it("the event stream delivered spawn, route and terminate events in order, with the admin actor", async () => {
    const stream = events!
    await waitFor("the last ServerTerminated event", () =>
      stream.envelopes.filter((e) => e.event._tag === "ServerTerminated" && e.actor.startsWith("admin:")).length === 2
    )
    const seqs = stream.envelopes.map((e) => e.seq)
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b))
    expect(stream.ids).toEqual(seqs.map(String))
    const adminTags = stream.envelopes.filter((e) => e.actor.startsWith("admin:")).map((e) => e.event._tag)
    expect(adminTags).toEqual([
      "ServerSpawned",
      "ServerSpawned",
      "ServerSpawned",
      "PlayerRouted",
      "PlayerRouted",
      "ServerTerminated",
      "ServerTerminated"
    ])
    const routed = stream.envelopes.find((e) => e.event._tag === "PlayerRouted" && e.actor.startsWith("admin:"))!
    expect(routed.event).toMatchObject({ playerId: player.playerId, by: routed.actor })

    // Resuming with Last-Event-ID replays what came after that id.
    // (Events may still arrive, e.g. the scheduler's own after the terminations: compare what was there.)
    const middle = stream.envelopes[2]!
    const after = stream.envelopes.slice(3).map((e) => e.seq)
    const resumed = await openEvents({ "last-event-id": String(middle.seq) })
    await waitFor("the replay", () => resumed.envelopes.length >= after.length)
    resumed.close()
    expect(resumed.envelopes.map((e) => e.seq).slice(0, after.length)).toEqual(after)

    const history = await admin("GET", "/v1/admin/events?history=1")
    expect(history.status).toBe(200)
    expect(history.json.events.map((e: ControlEnvelope) => e.seq)).toEqual(
      expect.arrayContaining(stream.envelopes.map((e) => e.seq))
    )
  })

  it("the audit log lists the admin actions with actor admin:<key id>", async () => {
    const res = await admin("GET", "/v1/admin/audit?limit=50")
    expect(res.status).toBe(200)
    const entries = res.json.entries as Array<{ id: number; actor: string; action: string; target: string; detail: any }>
    const byAdmin = entries.filter((e) => e.actor.startsWith("admin:"))
    expect(new Set(byAdmin.map((e) => e.actor)).size).toBe(1)
    expect(byAdmin[0]!.actor).not.toContain(KEY)
    expect(byAdmin.map((e) => e.action).reverse()).toEqual([
      "ServerSpawned",
      "ServerSpawned",
      "ServerSpawned",
      "PlayerRouted",
      "PlayerRouted",
      "ServerTerminated",
      "ServerTerminated"
    ])
    const terminated = byAdmin.find((e) => e.action === "ServerTerminated")!
    expect(terminated.detail.reason).toBe("maintenance window")
    const page = await admin("GET", `/v1/admin/audit?limit=2&before=${entries[0]!.id}`)
    expect(page.json.entries.map((e: { id: number }) => e.id)).toEqual([entries[1]!.id, entries[2]!.id])
  })
})

describe("Control API disabled", () => {
  it("with admin.key empty (the default) every admin route answers 403 with how to enable it", async () => {
    const off = await ServerProcess.start({ toml: testToml() })
    try {
      for (const [method, path] of [["GET", "/v1/admin/servers"], ["POST", "/v1/admin/route"], ["GET", "/v1/admin/events"]] as const) {
        const res = await fetch(`${off.httpUrl}${path}`, { method, headers: auth() })
        expect(res.status).toBe(403)
        const body = (await res.json()) as { error: { code: string; message: string } }
        expect(body.error.code).toBe("admin_disabled")
        expect(body.error.message).toContain("admin.key")
      }
    } finally {
      await off.stop()
    }
  })
})

describe("tessera admin (CLI)", () => {
  it("prints the JSON answer and exits 0", async () => {
    const run = await cli(["servers", "--url", server.httpUrl, "--key", KEY])
    expect(run.stderr).toBe("")
    expect(run.code).toBe(0)
    const value = JSON.parse(run.stdout)
    expect(Array.isArray(value.instances)).toBe(true)
    expect(value.drainingRunners).toEqual([])
  })

  it("spawn, sessions and terminate work from the CLI", async () => {
    const spawned = await cli(["spawn", "duel", "--url", server.httpUrl, "--key", KEY])
    expect(spawned.code).toBe(0)
    const worldId = JSON.parse(spawned.stdout).worldId as string
    expect(worldId).toMatch(/^duel\./)
    const sessions = await cli(["sessions", worldId, "--url", server.httpUrl, "--key", KEY])
    expect(JSON.parse(sessions.stdout)).toEqual({ worldId, experienceId: "duel", players: [] })
    const terminated = await cli(["terminate", worldId, "--reason", "cli test", "--url", server.httpUrl, "--key", KEY])
    expect(terminated.code).toBe(0)
    expect(JSON.parse(terminated.stdout).worldId).toBe(worldId)
  })

  it("a wrong key, an unknown world or an unreachable server: a message on stderr and exit 1", async () => {
    const wrong = await cli(["servers", "--url", server.httpUrl, "--key", "nope"])
    expect(wrong.code).toBe(1)
    expect(wrong.stdout).toBe("")
    expect(wrong.stderr).toContain("401")
    const unknown = await cli(["sessions", "arena.999", "--url", server.httpUrl, "--key", KEY])
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toContain("404")
    const down = await cli(["servers", "--url", "http://127.0.0.1:9", "--key", KEY])
    expect(down.code).toBe(1)
    expect(down.stderr).toContain("cannot reach")
  })
})
