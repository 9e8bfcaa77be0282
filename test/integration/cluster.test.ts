import { afterAll, beforeAll, describe, expect, it } from "vitest"
import WebSocket from "ws"
import type { JoinedInfo, MoveInfo, TesseraClient } from "../../src/client/TesseraClient.js"
import { ChatChannel } from "../../src/protocol/Opcodes.js"
import { connectGuest, waitFor, walk } from "../support/clients.js"
import { type ClusterNode, startCluster } from "../support/Cluster.js"

const ADMIN_KEY = "cluster-test-admin-key-0123456789"
let cluster: Awaited<ReturnType<typeof startCluster>>
const clients: Array<TesseraClient> = []
const node = (roles: string): ClusterNode => cluster.nodes.find((n) => n.roles === roles)!

beforeAll(async () => {
  cluster = await startCluster(["gateway", "gateway,expert:chat", "region,session", "scheduler"], {
    env: { TESSERA_ADMIN_KEY: ADMIN_KEY }
  })
}, 90_000)

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => {})))
  await cluster?.stop()
})

describe("role-tagged runners on PostgreSQL", () => {
  it("every runner answers /health and /ready; only the gateway serves clients", async () => {
    for (const { server } of cluster.nodes) {
      expect((await fetch(`${server.httpUrl}/health`)).status).toBe(200)
      expect((await fetch(`${server.httpUrl}/ready`)).status).toBe(200)
    }
    const regionRunner = node("region,session").server
    const auth = await fetch(`${regionRunner.httpUrl}/v1/auth/guest`, { method: "POST", body: "{}" })
    expect(auth.status).toBe(404)
    const upgrade = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`${regionRunner.wsUrl}/v1/ws?token=x`)
      ws.on("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0))
      ws.on("open", () => resolve(101))
      ws.on("error", () => resolve(0))
    })
    expect(upgrade).not.toBe(101)
  })

  it("a client on the gateway joins an instance hosted by the region runner", async () => {
    const gateway = node("gateway").server
    const a = await connectGuest(gateway, "cluster-a")
    clients.push(a)
    const joined = await a.join("arena")
    expect(joined.worldId).toBe("arena.1")
    // The region lives on the region runner, not on the gateway.
    expect(await node("region,session").server.metric("tessera_regions")).toBe(1)
    expect(await gateway.metric("tessera_regions")).toBe(0)
    expect(await node("region,session").server.metric("tessera_players")).toBeGreaterThanOrEqual(1)
  })

  it("players on two gateways share an instance: they see each other move and chat", async () => {
    const a = await connectGuest(node("gateway").server, "two-gw-a")
    const b = await connectGuest(node("gateway,expert:chat").server, "two-gw-b")
    clients.push(a, b)
    const ja = await a.join("lobby")
    const jb = await b.join("lobby")
    expect(jb.worldId).toBe(ja.worldId)
    // Cell snapshots published once by the region reach both gateways through Redis.
    await waitFor("a sees b", () => a.world.entities.has(jb.entityId))
    await waitFor("b sees a", () => b.world.entities.has(ja.entityId))
    const x0 = b.world.entities.get(ja.entityId)!.x
    const seq = await walk(a, 1, 0, 0, 10)
    await waitFor("a's acks across nodes", () => a.lastAckedSeq >= seq)
    await waitFor("b sees a move", () => b.world.entities.get(ja.entityId)!.x > x0 + 3)

    const heardByA: Array<string> = []
    const heardByB: Array<string> = []
    a.on("chat", (m) => heardByA.push(m.text))
    b.on("chat", (m) => heardByB.push(m.text))
    a.chat(ChatChannel.Instance, "hi from gateway A")
    await waitFor("b hears a", () => heardByB.includes("hi from gateway A"))
    b.chat(ChatChannel.Private, "whisper across", a.playerId)
    await waitFor("a gets the whisper", () => heardByA.includes("whisper across"))

    // Presence is shared: either gateway counts the players of both.
    for (const gateway of [node("gateway").server, node("gateway,expert:chat").server]) {
      const online = (await (await fetch(`${gateway.httpUrl}/v1/online`)).json()) as {
        total: number
        experiences: Record<string, number>
      }
      expect(online.experiences.lobby).toBe(2)
      expect(online.total).toBeGreaterThanOrEqual(3) // plus cluster-a from the previous test
    }
  })

  it("an admin's route moves a player seamlessly across nodes (session runner -> gateway envelope)", async () => {
    const gateway = node("gateway").server
    const p = await connectGuest(gateway, "cluster-route")
    clients.push(p)
    const admin = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${gateway.httpUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${ADMIN_KEY}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) })
      })
      return { status: res.status, json: (await res.json()) as any }
    }
    const from = (await p.join("duel")).worldId
    const spawned = await admin("POST", "/v1/admin/servers", { experience: "duel" })
    expect(spawned.status).toBe(201)
    const to = spawned.json.worldId as string
    const moving = new Promise<{ move: MoveInfo; joined: JoinedInfo }>((resolve) =>
      p.once("moved", (move) => p.once("joined", (joined) => resolve({ move, joined })))
    )
    const sentBefore = p.stats.msgsOut
    const routed = await admin("POST", "/v1/admin/route", { playerId: p.playerId, worldId: to })
    expect(routed.status).toBe(200)
    expect(routed.json).toEqual({ playerId: p.playerId, fromWorld: from, toWorld: to, told: true })
    const { move, joined } = await moving
    expect(move).toEqual({ fromWorld: from, toWorld: to, reason: `moved to ${to} by an admin` })
    expect(joined.worldId).toBe(to)
    expect(p.stats.msgsOut).toBe(sentBefore)
    const seq = await walk(p, 1, 0, 0, 5)
    await waitFor("acks in the new instance across nodes", () => p.lastAckedSeq >= seq)
    expect(await gateway.metric("tessera_player_moves_total")).toBe(1)

    // Terminated with nowhere to go: Moved, then 4006 from the player's gateway.
    const closed = new Promise<number>((resolve) => p.once("close", (code) => resolve(code)))
    const terminated = await admin("DELETE", `/v1/admin/servers/${to}?reason=cluster%20test&move=none`)
    expect(terminated.status).toBe(200)
    expect(await closed).toBe(4006)
    expect(p.state).toBe("closed")
  })
})
