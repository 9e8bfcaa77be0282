import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { TesseraClient } from "../../src/client/TesseraClient.js"
import { connectGuest, waitFor } from "../support/clients.js"
import { metricValue, ServerProcess } from "../support/ServerProcess.js"
import { testToml } from "../support/testConfig.js"

let server: ServerProcess
let client: TesseraClient | undefined

beforeAll(async () => {
  server = await ServerProcess.start({ toml: testToml() })
})
afterAll(async () => {
  await client?.close().catch(() => {})
  await server?.stop()
})

const post = (path: string, body: string) =>
  fetch(`${server.httpUrl}${path}`, { method: "POST", body, headers: { "content-type": "application/json" } })

describe("HTTP API", () => {
  it("/health and /ready answer", async () => {
    const health = await fetch(`${server.httpUrl}/health`)
    expect(health.status).toBe(200)
    expect(await health.json()).toEqual({ status: "ok" })
    const ready = await fetch(`${server.httpUrl}/ready`)
    expect(ready.status).toBe(200)
    expect(await ready.json()).toEqual({ ready: true, checks: { storage: "ok", cluster: "ok" } })
  })

  it("guest auth: same deviceId, same player; fresh without one", async () => {
    const a = await (await post("/v1/auth/guest", JSON.stringify({ deviceId: "http-dev", name: "Ana" }))).json()
    const b = await (await post("/v1/auth/guest", JSON.stringify({ deviceId: "http-dev" }))).json()
    const c = await (await post("/v1/auth/guest", "")).json()
    expect(a.playerId).toBe(b.playerId)
    expect(a.name).toBe("Ana")
    expect(c.playerId).not.toBe(a.playerId)
    expect(typeof a.token).toBe("string")
    expect(a.expiresAt).toBeGreaterThan(Date.now())
  })

  it.each([
    ["not JSON", "{nope", "not valid JSON"],
    ["an array", "[]", "JSON object"],
    ["unknown field", JSON.stringify({ deviceId: "x", admin: true }), "unknown field \"admin\""],
    ["empty deviceId", JSON.stringify({ deviceId: "" }), "deviceId"],
    ["bad name", JSON.stringify({ name: "<script>" }), "name"],
    ["oversize body", JSON.stringify({ deviceId: "x".repeat(5000) }), "exceeds"]
  ])("guest auth rejects %s with 400 and a clear message", async (_what, body, message) => {
    const res = await post("/v1/auth/guest", body)
    expect(res.status).toBe(400)
    const json = await res.json()
    expect(json.error.code).toBe("bad_request")
    expect(json.error.message).toContain(message)
  })

  it("/v1/online counts the players online per experience", async () => {
    const before = (await (await fetch(`${server.httpUrl}/v1/online`)).json()) as {
      total: number
      experiences: Record<string, number>
    }
    expect(Object.keys(before.experiences).sort()).toEqual(["arena", "duel", "lobby"])
    const p = await connectGuest(server, "online-counter")
    await p.join("duel")
    const after = (await (await fetch(`${server.httpUrl}/v1/online`)).json()) as typeof before
    expect(after.experiences.duel).toBe(before.experiences.duel! + 1)
    expect(after.total).toBe(before.total + 1)
    await p.close()
  })

  it("unknown routes are 404 JSON", async () => {
    const res = await fetch(`${server.httpUrl}/v1/nothing`)
    expect(res.status).toBe(404)
    expect((await res.json()).error.code).toBe("not_found")
  })

  it("/metrics exposes tessera_ metrics that move with traffic", async () => {
    client = await connectGuest(server, "metrics-client")
    const joined = await client.join("arena")
    for (let i = 0; i < 5; i++) client.sendInput(1, 0, 0)
    const c = client
    await waitFor("own snapshot", () => c.world.entities.has(joined.entityId))
    const body = await (await fetch(`${server.httpUrl}/metrics`)).text()
    expect(body).toContain("# TYPE tessera_tick_duration_seconds histogram")
    expect(metricValue(body, "tessera_connections")).toBeGreaterThanOrEqual(1)
    expect(metricValue(body, "tessera_regions")).toBeGreaterThanOrEqual(1)
    expect(metricValue(body, "tessera_sessions")).toBeGreaterThanOrEqual(1)
    expect(metricValue(body, "tessera_players")).toBeGreaterThanOrEqual(1)
    expect(metricValue(body, "tessera_inputs_total")).toBeGreaterThanOrEqual(5)
    expect(metricValue(body, "tessera_snapshots_published_total")).toBeGreaterThan(0)
    expect(body).toMatch(/tessera_messages_rejected_total\{reason="bad_shape"\} \d+/)
  })
})
