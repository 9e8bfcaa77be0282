import WebSocket from "ws"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { guestAuth, type TesseraClient, type TesseraError } from "../../src/client/TesseraClient.js"
import { decode, encode } from "../../src/protocol/Codec.js"
import { ChatChannel, CloseCode, ErrorCode } from "../../src/protocol/Opcodes.js"
import { connectGuest, sleep, waitFor, walk } from "../support/clients.js"
import { ServerProcess } from "../support/ServerProcess.js"
import { testToml } from "../support/testConfig.js"

let server: ServerProcess
const clients: Array<TesseraClient> = []
const guest = async (deviceId: string, options = {}) => {
  const client = await connectGuest(server, deviceId, options)
  clients.push(client)
  return client
}

beforeAll(async () => {
  server = await ServerProcess.start({ toml: testToml() })
})

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => {})))
  await server?.stop()
})

describe("instances and movement", () => {
  it("two players join the same instance and see each other move", async () => {
    const a = await guest("move-a")
    const b = await guest("move-b")
    const ja = await a.join("arena")
    const jb = await b.join("arena")
    expect(jb.worldId).toBe(ja.worldId)
    expect(jb.entityId).not.toBe(ja.entityId)

    // b sees a's entity, then sees it move along +x.
    const before = await waitFor("b to see a", () => b.world.entities.get(ja.entityId))
    const x0 = before.x
    const seq = await walk(a, 1, 0, 0, 10)
    await waitFor("b to see a move", () => (b.world.entities.get(ja.entityId)?.x ?? x0) > x0 + 3)
    // a's own inputs are acked through the cell snapshots.
    await waitFor("a's acks", () => a.lastAckedSeq >= seq)
    // and a sees b.
    expect(a.world.entities.has(jb.entityId)).toBe(true)
  })

  it("cannot move faster than the speed limit, whatever it sends", async () => {
    const cheat = await guest("cheat")
    const joined = await cheat.join("arena")
    const seq = await walk(cheat, 1e9, 0, 1e9, 20) // 1 s of "teleport" inputs
    await waitFor("acks", () => cheat.lastAckedSeq >= seq)
    const me = cheat.world.entities.get(joined.entityId)!
    const moved = Math.hypot(me.x - joined.x, me.z - joined.z)
    // max_speed 10 m/s for ~1 s (plus a tick or two of slack for timing).
    expect(moved).toBeGreaterThan(5)
    expect(moved).toBeLessThan(10 * 1.5)
  })

  it("follows the player across interest cells (topic subscriptions move with it)", async () => {
    const runner = await guest("runner")
    const joined = await runner.join("arena")
    // 8 m cells, 10 m/s: 3 s takes the runner across several cells.
    const seq = await walk(runner, 0, 0, 1, 60)
    await waitFor("acks after crossing cells", () => runner.lastAckedSeq >= seq)
    const me = runner.world.entities.get(joined.entityId)!
    expect(me.z - joined.z).toBeGreaterThan(20)
  })

  it("fills an instance, then creates a second one", async () => {
    const p1 = await guest("duel-1")
    const p2 = await guest("duel-2")
    const p3 = await guest("duel-3")
    const j1 = await p1.join("duel")
    const j2 = await p2.join("duel")
    const j3 = await p3.join("duel")
    expect(j2.worldId).toBe(j1.worldId)
    expect(j3.worldId).not.toBe(j1.worldId)
    expect(j3.experienceId).toBe("duel")
  })

  it("terminates an empty instance after the grace period", async () => {
    const early = await guest("reap-1")
    const first = await early.join("lobby")
    await early.leave()
    // Within the grace period (2 s) the empty instance is still the one to fill.
    const quick = await guest("reap-2")
    expect((await quick.join("lobby")).worldId).toBe(first.worldId)
    await quick.leave()
    // After it, the scheduler has terminated it: a newcomer gets a new instance...
    await sleep(3500)
    const late = await guest("reap-3")
    expect((await late.join("lobby")).worldId).not.toBe(first.worldId)
    // ...and the old region entity stopped and passivated.
    const regionsBefore = await server.metric("tessera_regions")
    const deadline = Date.now() + 15_000
    let regionsAfter = regionsBefore
    while (Date.now() < deadline && regionsAfter >= regionsBefore) {
      await sleep(250)
      regionsAfter = await server.metric("tessera_regions")
    }
    expect(regionsAfter).toBeLessThan(regionsBefore)
  })

  it("refuses an unknown experience with a clear error", async () => {
    const c = await guest("lost")
    const error = await c.join("nope").then(() => undefined, (e: TesseraError) => e)
    expect(error?.code).toBe(ErrorCode.UnknownExperience)
    expect(error?.message).toContain("nope")
  })
})

describe("chat", () => {
  it("delivers instance and world chat, and serves history on join", async () => {
    const a = await guest("chat-a")
    const b = await guest("chat-b")
    await a.join("arena")
    await b.join("arena")
    const seen: Array<string> = []
    b.on("chat", (m) => seen.push(`${m.channel}:${m.fromName}:${m.text}`))
    a.chat(ChatChannel.Instance, "hello instance")
    a.chat(ChatChannel.World, "hello world")
    await waitFor("b gets both messages", () => seen.length >= 2)
    expect(seen).toContain(`${ChatChannel.Instance}:chat-a:hello instance`)
    expect(seen).toContain(`${ChatChannel.World}:chat-a:hello world`)

    // A later joiner gets the history of both channels.
    const c = await guest("chat-c")
    const histories = new Map<number, ReadonlyArray<string>>()
    c.on("chatHistory", (channel, messages) => histories.set(channel, messages.map((m) => m.text)))
    await c.join("arena")
    await waitFor("history frames", () => histories.size === 2)
    expect(histories.get(ChatChannel.Instance)).toContain("hello instance")
    expect(histories.get(ChatChannel.World)).toContain("hello world")
  })

  it("delivers private messages only to the recipient (and echoes the sender)", async () => {
    const a = await guest("dm-a")
    const b = await guest("dm-b")
    const c = await guest("dm-c")
    for (const x of [a, b, c]) await x.join("arena")
    const got = { a: [] as Array<string>, b: [] as Array<string>, c: [] as Array<string> }
    a.on("chat", (m) => got.a.push(m.text))
    b.on("chat", (m) => got.b.push(m.text))
    c.on("chat", (m) => got.c.push(m.text))
    a.chat(ChatChannel.Private, "psst", b.playerId)
    await waitFor("b gets the whisper", () => got.b.includes("psst"))
    await waitFor("a gets the echo", () => got.a.includes("psst"))
    await sleep(200)
    expect(got.c).not.toContain("psst")
  })

  it("rejects banned words and rate-limits a spammer, without affecting others", async () => {
    const spammer = await guest("spam")
    const other = await guest("spam-witness")
    await spammer.join("arena")
    await other.join("arena")
    const errors: Array<TesseraError> = []
    spammer.on("error", (e) => errors.push(e))
    spammer.chat(ChatChannel.Instance, "well DARN it")
    await waitFor("moderation error", () => errors.find((e) => e.code === ErrorCode.ChatRejected))
    for (let i = 0; i < 6; i++) spammer.chat(ChatChannel.Instance, `spam ${i}`)
    await waitFor("rate limit error", () => errors.find((e) => e.code === ErrorCode.ChatRateLimited))
    // the witness still chats fine
    const heard: Array<string> = []
    spammer.on("chat", (m) => heard.push(m.text))
    other.chat(ChatChannel.Instance, "still here")
    await waitFor("witness message delivered", () => heard.includes("still here"))
  })
})

describe("bad input", () => {
  it("answers bad frames with clear errors, closes an abuser, and others keep playing", async () => {
    const good = await guest("good-player")
    const joined = await good.join("arena")
    const { token } = await guestAuth(server.httpUrl, { deviceId: "bad-player" })
    const raw = new WebSocket(`${server.wsUrl}/v1/ws?token=${token}`)
    const errors: Array<[string, string]> = []
    let closeCode = 0
    raw.on("message", (data: Buffer) => {
      const frame = decode(data) as Array<unknown>
      if (frame[0] === 106) errors.push([frame[1] as string, frame[2] as string])
    })
    raw.on("close", (code) => (closeCode = code))
    await new Promise((r) => raw.once("message", r)) // Welcome

    raw.send(Buffer.from([0xc1, 0xff, 0x00])) // not msgpack
    raw.send(encode([99, 1])) // unknown opcode
    raw.send(encode([2, -1, 0, 0, 0, 0])) // negative seq
    raw.send(encode([3, 7, "hi"])) // bad chat channel
    raw.send(encode([1, "x".repeat(600)])) // oversize (max_payload_bytes = 512)
    await waitFor("five errors", () => errors.length >= 5)
    const codes = errors.map(([code]) => code)
    expect(codes).toEqual(
      expect.arrayContaining([ErrorCode.UnknownOp, ErrorCode.BadShape, ErrorCode.TooLarge])
    )
    expect(codes.some((c) => c === ErrorCode.BadFrame || c === ErrorCode.BadShape)).toBe(true)
    expect(errors.find(([code]) => code === ErrorCode.UnknownOp)?.[1]).toContain("99")

    // One more bad frame passes max_bad_messages (5): closed with the abuse code.
    raw.send(encode([42]))
    await waitFor("abuse close", () => closeCode === CloseCode.Abuse)

    // The good player was not disturbed.
    const seq = await walk(good, 1, 0, 0, 5)
    await waitFor("good player's acks", () => good.lastAckedSeq >= seq)
    expect(good.world.entities.has(joined.entityId)).toBe(true)
  })

  it("refuses an upgrade with a bad token with HTTP 401", async () => {
    const raw = new WebSocket(`${server.wsUrl}/v1/ws?token=not-a-token`)
    const status = await new Promise<number>((resolve) => {
      raw.on("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0))
      raw.on("open", () => resolve(101))
      raw.on("error", () => {})
    })
    expect(status).toBe(401)
  })

  it("rate-limits a flooding connection with an error, not a crash", async () => {
    const flooder = await guest("flooder")
    await flooder.join("arena")
    const errors: Array<TesseraError> = []
    flooder.on("error", (e) => errors.push(e))
    for (let i = 0; i < 200; i++) flooder.sendInput(0, 0, 1)
    await waitFor("rate limited error", () => errors.find((e) => e.code === ErrorCode.RateLimited))
    // Still connected: once the bucket refills, requests are answered again.
    await sleep(1200)
    expect(await flooder.ping()).toBeGreaterThanOrEqual(0)
  })

  it("a second login of the same player replaces the first connection", async () => {
    const first = await guest("twin", { reconnect: false })
    const firstJoin = await first.join("arena")
    let firstClose = 0
    first.on("close", (code) => (firstClose = code))
    const second = await guest("twin")
    await waitFor("first closed as replaced", () => firstClose === CloseCode.Replaced)
    const secondJoin = await second.join("arena")
    // Same player, same entity: no duplicate in the world.
    expect(secondJoin.entityId).toBe(firstJoin.entityId)
    const seq = await walk(second, 1, 0, 0, 5)
    await waitFor("second's acks", () => second.lastAckedSeq >= seq)
  })
})
