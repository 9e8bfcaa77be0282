import Database from "better-sqlite3"
import * as Path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import type { TesseraClient, TesseraError, WorldEditChange } from "../../src/client/TesseraClient.js"
import { MAX_EDIT_KEY_LENGTH, MAX_EDIT_VALUE_LENGTH } from "../../src/protocol/Messages.js"
import { ErrorCode } from "../../src/protocol/Opcodes.js"
import { connectGuest, sleep, waitFor } from "../support/clients.js"
import { openWorldToml, own, stopAt, walkTo } from "../support/openWorldWalk.js"
import { startCluster } from "../support/Cluster.js"
import { ServerProcess, tempDir } from "../support/ServerProcess.js"

/**
 * World edits in the open world of openWorldToml: 2 x 1 x 2 root regions of
 * 64 m meeting at the origin, cells of 8 m, edit reach 8 m (the default).
 */

const started: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const stop of started.splice(0).reverse()) await stop()
})

const connect = async (server: ServerProcess, id: string) => {
  const client = await connectGuest(server, id)
  started.push(() => client.close().catch(() => {}))
  return client
}

/** Every error and world edit the client gets, from now on. */
const record = (client: TesseraClient) => {
  const errors: Array<TesseraError> = []
  const edits: Array<WorldEditChange> = []
  client.on("error", (e) => errors.push(e))
  client.on("worldEdit", (change) => edits.push(change))
  return { errors, edits }
}

/** Joins the open world and walks to (x, z), stopping there. */
const joinAndWalk = async (client: TesseraClient, x: number, z: number) => {
  await client.join("frontier")
  await waitFor("own entity", () => own(client) !== undefined)
  await walkTo(client, "x", x)
  await stopAt(client)
  await walkTo(client, "z", z)
  await stopAt(client)
  return own(client)!
}

const storedDeltas = (dataDir: string) => {
  const db = new Database(Path.join(dataDir, "tessera.db"), { readonly: true })
  try {
    return db.prepare("SELECT key, value, seq, region_key AS regionKey FROM world_deltas ORDER BY seq").all() as Array<{
      key: string
      value: string | null
      seq: number
      regionKey: string
    }>
  } finally {
    db.close()
  }
}

describe("world edits (open world deltas)", () => {
  it("live to players nearby, refused out of reach and for bad frames, stored as deltas and sent on join after a restart", async () => {
    const dataDir = tempDir("edits")
    const toml = openWorldToml()
    const server = await ServerProcess.start({ toml, dataDir })
    started.push(() => server.stop())

    const alice = await connect(server, "we-alice")
    const bob = await connect(server, "we-bob")
    const a = record(alice)
    const b = record(bob)
    const at = await joinAndWalk(alice, 10, 10)
    await joinAndWalk(bob, 10, 10)
    expect(alice.joined?.regionId ?? "").toMatch(/^frontier\.world\//)

    // An edit near Alice: Bob (nearby, same region) sees it live, with its stored seq; so does Alice.
    const spot = { x: at.x + 2, y: at.y, z: at.z + 2 }
    expect(alice.sendWorldEdit("block:1", spot.x, spot.y, spot.z, "stone")).toBe(true)
    const seen = await waitFor("Bob sees the edit", () => b.edits.find((e) => e.key === "block:1"))
    expect(seen).toMatchObject({ key: "block:1", value: "stone", x: spot.x, z: spot.z })
    expect(seen.seq).toBeGreaterThan(0)
    expect(bob.worldEdits.get("block:1")).toEqual({ x: spot.x, y: spot.y, z: spot.z, value: "stone", seq: seen.seq })
    await waitFor("Alice sees her edit", () => alice.worldEdits.get("block:1")?.seq === seen.seq)

    // Too far: a clear error, nothing published, nothing stored.
    alice.sendWorldEdit("far:1", at.x + 30, at.y, at.z, "stone")
    const far = await waitFor("the out-of-reach error", () => a.errors.find((e) => e.code === ErrorCode.EditRejected))
    expect(far.message).toContain("out of reach")

    // Bad frames: a clear error each, and the connection carries on.
    const before = a.errors.length
    alice.sendWorldEdit("k".repeat(MAX_EDIT_KEY_LENGTH + 1), spot.x, spot.y, spot.z, "x")
    alice.sendWorldEdit("nan:1", Number.NaN, spot.y, spot.z, "x")
    alice.sendWorldEdit("long:1", spot.x, spot.y, spot.z, "v".repeat(MAX_EDIT_VALUE_LENGTH + 1))
    await waitFor("three bad-shape errors", () => a.errors.length >= before + 3)
    const bad = a.errors.slice(before)
    expect(bad.map((e) => e.code)).toEqual([ErrorCode.BadShape, ErrorCode.BadShape, ErrorCode.BadShape])
    expect(bad[0]!.message).toContain("key")
    expect(bad[1]!.message).toContain("finite")
    expect(bad[2]!.message).toContain("value")
    expect(await alice.ping()).toBeGreaterThanOrEqual(0)
    expect(alice.connected).toBe(true)

    // A removal and a second key still work after the bad frames.
    alice.sendWorldEdit("block:2", spot.x, spot.y, spot.z - 1, "wood")
    alice.sendWorldEdit("block:1", spot.x, spot.y, spot.z, null)
    await waitFor("Bob sees the removal", () => b.edits.some((e) => e.key === "block:1" && e.value === null))
    expect(bob.worldEdits.has("block:1")).toBe(false)
    const wood = await waitFor("Bob sees block:2", () => bob.worldEdits.get("block:2"))
    alice.sendWorldEdit("block:1", spot.x, spot.y, spot.z, "glass")
    const glass = await waitFor("Bob sees block:1 again", () =>
      bob.worldEdits.get("block:1")?.value === "glass" ? bob.worldEdits.get("block:1") : undefined)
    expect(glass.seq).toBeGreaterThan(wood.seq)

    // A player in an instanced world (or in none) is told edits are for open worlds.
    const carol = await connect(server, "we-carol")
    const c = record(carol)
    carol.sendWorldEdit("x", 0, 0, 0, "y")
    await carol.join("arena")
    carol.sendWorldEdit("x", 0, 0, 0, "y")
    await waitFor("two errors", () => c.errors.length >= 2)
    for (const e of c.errors) expect(e).toMatchObject({ code: ErrorCode.NotInWorld, message: "world edits are for open worlds" })
    expect(b.edits.some((e) => e.key === "x")).toBe(false)
    expect(b.errors).toEqual([])

    // Restart on the same data: the deltas were stored (not a snapshot), and Bob, back near the spot, gets them on join.
    await alice.close()
    await bob.close()
    await carol.close()
    expect((await server.stop()).code).toBe(0)
    const rows = storedDeltas(dataDir)
    expect(rows.map((r) => [r.key, r.value])).toEqual([
      ["block:1", "stone"],
      ["block:2", "wood"],
      ["block:1", null],
      ["block:1", "glass"]
    ])
    expect(rows.every((r) => r.regionKey === "0/1/0/1")).toBe(true)

    const again = await ServerProcess.start({ toml, dataDir })
    started.push(() => again.stop())
    const bob2 = await connect(again, "we-bob")
    const b2 = record(bob2)
    const joined = await bob2.join("frontier")
    expect(joined.regionId).toBe("frontier.world/0/1/0/1")
    await waitFor("the stored edits on join", () => bob2.worldEdits.size === 2)
    expect(bob2.worldEdits.get("block:1")).toEqual({ x: spot.x, y: spot.y, z: spot.z, value: "glass", seq: glass.seq })
    expect(bob2.worldEdits.get("block:2")?.seq).toBe(wood.seq)
    expect(b2.edits.some((e) => e.key === "far:1")).toBe(false)
    expect(b2.errors).toEqual([])
  }, 120_000)

  it("an edit in one region, a walk into the next and back: the view stays consistent", async () => {
    const server = await ServerProcess.start({ toml: openWorldToml() })
    started.push(() => server.stop())
    const walker = await connect(server, "we-walker")
    const w = record(walker)
    const at = await joinAndWalk(walker, 10, 10)

    walker.sendWorldEdit("east:1", at.x + 2, at.y, at.z, "torch")
    const east = await waitFor("own edit in the east region", () => walker.worldEdits.get("east:1"))
    expect(east.seq).toBeGreaterThan(0)

    // Into the west region (x < 0), past the handoff hysteresis: a spot across the border, in reach, is refused.
    await walkTo(walker, "x", -3)
    await stopAt(walker)
    const border = own(walker)!
    expect(border.x).toBeLessThan(-2)
    const before = w.errors.length
    walker.sendWorldEdit("east:2", border.x + 4, border.y, border.z, "torch")
    const refused = await waitFor("the neighbour-spot error", () => w.errors.slice(before).find((e) => e.code === ErrorCode.EditRejected))
    expect(refused.message).toBe("that spot belongs to a neighbouring region; move closer")
    // Deeper in the west region, an edit there.
    await walkTo(walker, "x", -10)
    await stopAt(walker)
    const west = own(walker)!
    walker.sendWorldEdit("west:1", west.x - 2, west.y, west.z, "lamp")
    await waitFor("own edit in the west region", () => walker.worldEdits.get("west:1"))

    // Back east: the east region's state arrives again on arrival and agrees with the view.
    const arrivals = w.edits.length
    await walkTo(walker, "x", 10)
    await stopAt(walker)
    await waitFor("the east region's state on arrival", () => w.edits.slice(arrivals).some((e) => e.key === "east:1"))
    expect(walker.worldEdits.get("east:1")).toEqual(east)
    expect(walker.worldEdits.get("west:1")?.value).toBe("lamp")
    expect(walker.worldEdits.has("east:2")).toBe(false)
    // And the east region still takes edits, newer than everything before.
    walker.sendWorldEdit("east:1", at.x + 2, at.y, at.z, "lantern")
    await waitFor("the new value", () => walker.worldEdits.get("east:1")?.value === "lantern")
    expect(walker.worldEdits.get("east:1")!.seq).toBeGreaterThan(walker.worldEdits.get("west:1")!.seq)
    await sleep(100)
    expect(w.errors.filter((e) => e.code !== ErrorCode.EditRejected)).toEqual([])
  }, 120_000)

  it("across runners: the gateway sends edits to the remote region by entity message; live and on join through Redis", async () => {
    const cluster = await startCluster(["gateway", "session,scheduler,expert:chat", "region"], { toml: openWorldToml() })
    started.push(() => cluster.stop())
    const gateway = cluster.nodes.find((n) => n.roles === "gateway")!.server
    const alice = await connect(gateway, "wer-alice")
    const bob = await connect(gateway, "wer-bob")
    const a = record(alice)
    const b = record(bob)
    const at = await joinAndWalk(alice, 10, 10)
    await joinAndWalk(bob, 10, 10)

    alice.sendWorldEdit("remote:1", at.x + 2, at.y, at.z + 2, "brick")
    const seen = await waitFor("Bob sees the remote edit", () => b.edits.find((e) => e.key === "remote:1"), 15_000)
    expect(seen).toMatchObject({ value: "brick" })
    expect(seen.seq).toBeGreaterThan(0)
    alice.sendWorldEdit("remote:far", at.x + 40, at.y, at.z, "brick")
    const far = await waitFor("the refusal from the remote region", () => a.errors.find((e) => e.code === ErrorCode.EditRejected), 15_000)
    expect(far.message).toContain("out of reach")

    // A third player joining the same region gets its current edits on join.
    const carol = await connect(gateway, "wer-carol")
    await joinAndWalk(carol, 10, 10)
    await waitFor("Carol has the edit", () => carol.worldEdits.get("remote:1")?.seq === seen.seq, 15_000)
    expect(carol.worldEdits.has("remote:far")).toBe(false)
  }, 180_000)

  it("after a split, the new regions load their boxes from storage: the edit reaches the player in the child region", async () => {
    // The open world of openWorldToml, but a region with more than one player splits (and nothing merges).
    const toml = openWorldToml("", { splitPlayers: 1, mergePlayers: 0 })
    const server = await ServerProcess.start({ toml })
    started.push(() => server.stop())
    const alice = await connect(server, "wes-alice")
    const a = record(alice)
    const at = await joinAndWalk(alice, 10, 10)
    alice.sendWorldEdit("split:1", at.x + 2, at.y, at.z + 2, "stone")
    const before = await waitFor("the edit in the root region", () => a.edits.find((e) => e.key === "split:1"))
    expect(before.regionId).toBe("frontier.world/0/1/0/1")

    // A second player in the same root region: it splits, and Alice is handed to the child holding her.
    const bob = await connect(server, "wes-bob")
    await joinAndWalk(bob, 10, 10)
    const fromChild = await waitFor(
      "the child region's edits on arrival",
      () => a.edits.find((e) => e.key === "split:1" && e.regionId.startsWith("frontier.world/1/")),
      20_000
    )
    expect(fromChild).toMatchObject({ value: "stone", seq: before.seq })
    expect(alice.worldEdits.get("split:1")?.seq).toBe(before.seq)
    // The child takes edits of its own box.
    alice.sendWorldEdit("split:2", own(alice)!.x + 1, own(alice)!.y, own(alice)!.z, "wood")
    const child = await waitFor("the child's live edit", () => a.edits.find((e) => e.key === "split:2"))
    expect(child.regionId).toBe(fromChild.regionId)
    expect(child.seq).toBeGreaterThan(before.seq)
  }, 120_000)
})
