import Database from "better-sqlite3"
import * as Path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import type { TesseraClient } from "../../src/client/TesseraClient.js"
import { CloseCode } from "../../src/protocol/Opcodes.js"
import { connectGuest, sleep, waitFor, walk } from "../support/clients.js"
import { freePort, ServerProcess, tempDir } from "../support/ServerProcess.js"
import { testToml } from "../support/testConfig.js"

const started: Array<ServerProcess> = []
const clients: Array<TesseraClient> = []
const start = async (options: Parameters<typeof ServerProcess.start>[0]) => {
  const server = await ServerProcess.start(options)
  started.push(server)
  return server
}

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close().catch(() => {})))
  await Promise.all(started.splice(0).map((s) => s.stop()))
})

const storedPosition = (dataDir: string, playerId: string) => {
  const db = new Database(Path.join(dataDir, "tessera.db"), { readonly: true })
  try {
    return db.prepare("SELECT last_experience_id, pos_x, pos_y, pos_z FROM players WHERE id = ?").get(playerId) as
      | { last_experience_id: string; pos_x: number; pos_y: number; pos_z: number }
      | undefined
  } finally {
    db.close()
  }
}

describe("resume", () => {
  it("a dropped connection resumes with its token: same player, same entity, acks continue", async () => {
    const server = await start({ toml: testToml() })
    const a = await connectGuest(server, "resumer", { reconnectBaseMs: 50 })
    clients.push(a)
    const watcher = await connectGuest(server, "resume-watcher")
    clients.push(watcher)
    const joined = await a.join("arena")
    const watcherJoined = await watcher.join("arena")
    await walk(a, 1, 0, 0, 5)

    let resumed: boolean | undefined
    a.on("reconnected", (r) => (resumed = r))
    // Drop the socket abnormally (no close frame): the SDK reconnects with its resume token.
    ;(a as unknown as { ws: { _socket: { destroy(): void } } }).ws._socket.destroy()
    await waitFor("reconnect", () => resumed !== undefined)
    expect(resumed).toBe(true)
    expect(a.entityId).toBe(joined.entityId)

    const seq = await walk(a, 1, 0, 0, 5)
    await waitFor("acks after resume", () => a.lastAckedSeq >= seq)
    // The watcher sees the same entity, and only the two players' entities: no duplicate.
    await waitFor("watcher sees the resumed entity", () => watcher.world.entities.has(joined.entityId))
    expect([...watcher.world.entities.keys()].sort()).toEqual([joined.entityId, watcherJoined.entityId].sort())
  })

  it("after the resume window the player is removed from its world", async () => {
    const server = await start({ toml: testToml() })
    const watcher = await connectGuest(server, "window-watcher")
    clients.push(watcher)
    await watcher.join("arena")
    const leaver = await connectGuest(server, "window-leaver", { reconnect: false })
    const joined = await leaver.join("arena")
    await waitFor("watcher sees leaver", () => watcher.world.entities.has(joined.entityId))
    ;(leaver as unknown as { ws: { _socket: { destroy(): void } } }).ws._socket.destroy()
    // Still there during the window (4 s in the test config)...
    await sleep(1500)
    expect(watcher.world.entities.has(joined.entityId)).toBe(true)
    // ...gone after it.
    await waitFor("leaver removed", () => !watcher.world.entities.has(joined.entityId), 10_000)
  })
})

describe("sessions that passivate while their player plays", () => {
  it("leaving after the session passivated removes the player from its world (no ghost)", async () => {
    const toml = testToml().replace("resume_window_seconds = 4", "resume_window_seconds = 1")
      .replace("[cluster]", "[cluster]\nentity_max_idle_seconds = 1")
    const server = await start({ toml })
    const a = await connectGuest(server, "idle-player", { reconnect: false })
    clients.push(a)
    await a.join("arena")
    // The session gets no traffic while a plays (inputs go straight to the region): it passivates (~6 s).
    const deadline = Date.now() + 20_000
    while (Date.now() < deadline && (await server.metric("tessera_sessions")) > 0) {
      a.sendInput(1, 0, 0)
      await sleep(250)
    }
    expect(await server.metric("tessera_sessions")).toBe(0)
    await a.leave()
    const b = await connectGuest(server, "idle-witness")
    clients.push(b)
    const joined = await b.join("arena")
    await waitFor("b sees its own entity", () => b.world.entities.has(joined.entityId))
    await sleep(300)
    expect([...b.world.entities.keys()]).toEqual([joined.entityId])
    expect(await server.metric("tessera_players")).toBe(1)
  })
})

describe("restart and shutdown", () => {
  it("stop and restart the server: the player is back where it was", async () => {
    const dataDir = tempDir("restart")
    const port = await freePort()
    const first = await start({ toml: testToml(), dataDir, port })
    const a = await connectGuest(first, "restarter", { reconnect: false })
    const joined = await a.join("arena")
    await walk(a, 1, 0, 0, 20)
    const stop = a.sendInput(0, 0, 0) // velocity persists: stand still so the position is final
    await waitFor("acks", () => a.lastAckedSeq >= stop)
    const before = { ...a.world.entities.get(joined.entityId)! } // a copy: the view keeps updating
    expect(before.x - joined.x).toBeGreaterThan(5)
    await first.stop("SIGTERM")
    await a.close().catch(() => {})

    const second = await start({ toml: testToml(), dataDir, port })
    const b = await connectGuest(second, "restarter", { reconnect: false })
    clients.push(b)
    expect(b.playerId).toBe(a.playerId)
    const rejoined = await b.join("arena")
    expect(rejoined.x).toBeCloseTo(before.x, 0)
    expect(rejoined.z).toBeCloseTo(before.z, 0)
  })

  it("kill -9 and restart: the region reloads its players with the same entities", async () => {
    const dataDir = tempDir("crash")
    const port = await freePort()
    const first = await start({ toml: testToml(), dataDir, port })
    const a = await connectGuest(first, "crasher", { reconnect: false })
    const joined = await a.join("arena")
    await walk(a, 1, 0, 0, 20)
    const stop = a.sendInput(0, 0, 0) // velocity persists: stand still so the stored state is final
    await waitFor("acks", () => a.lastAckedSeq >= stop)
    await sleep(600) // past the 200 ms write-behind: this state is on disk
    const before = { ...a.world.entities.get(joined.entityId)! }
    await first.stop("SIGKILL")
    await a.close().catch(() => {})

    const second = await start({ toml: testToml(), dataDir, port })
    const b = await connectGuest(second, "crasher", { reconnect: false })
    clients.push(b)
    const rejoined = await b.join("arena")
    expect(rejoined.worldId).toBe(joined.worldId)
    expect(rejoined.entityId).toBe(joined.entityId) // the reloaded entity, not a duplicate
    expect(rejoined.x).toBeCloseTo(before.x, 0)
    await waitFor("own entity in view", () => b.world.entities.has(rejoined.entityId))
    expect(b.world.entities.size).toBe(1)
  })

  it("SIGTERM closes clients with the shutdown code, flushes storage and exits 0", async () => {
    const server = await start({ toml: testToml() })
    const a = await connectGuest(server, "sigterm", { reconnect: false })
    const joined = await a.join("arena")
    let closeCode = 0
    let closeReason = ""
    a.on("close", (code, reason) => {
      closeCode = code
      closeReason = reason
    })
    await walk(a, 0, 0, 1, 30) // 1.5 s of movement, never all flushed (write-behind 200 ms)
    const last = a.world.entities.get(joined.entityId)!
    const startedAt = Date.now()
    const exit = await server.stop("SIGTERM")
    const tookMs = Date.now() - startedAt
    expect(exit.code).toBe(0)
    expect(tookMs).toBeLessThan(8000)
    await waitFor("client closed", () => closeCode !== 0)
    expect(closeCode).toBe(CloseCode.ServerShutdown)
    expect(closeReason).toContain("shutting down")

    const row = storedPosition(server.dataDir, a.playerId)
    expect(row?.last_experience_id).toBe("arena")
    // The final position was written on the way out (within one tick of the last snapshot).
    expect(row!.pos_z).toBeGreaterThanOrEqual(last.z - 0.01)
    expect(row!.pos_z - joined.z).toBeGreaterThan(10)
    // The database is consistent (WAL checkpointed or not, integrity holds).
    const db = new Database(Path.join(server.dataDir, "tessera.db"), { readonly: true })
    expect(db.pragma("integrity_check", { simple: true })).toBe("ok")
    db.close()
  })
})
