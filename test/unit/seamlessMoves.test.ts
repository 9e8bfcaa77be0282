import { describe, expect, it } from "vitest"
import { defaultExperience } from "../../src/config/ConfigSchema.js"
import type { ExperienceConfig } from "../../src/config/TesseraConfig.js"
import type { GatewayPort } from "../../src/gateway/ClientDelivery.js"
import { dispatchEnvelope, encodeRelocateEnvelope, EnvelopeKind } from "../../src/gateway/ClientDeliveryRedis.js"
import { closeReason } from "../../src/gateway/WebSocketHandler.js"
import { encode } from "../../src/protocol/Codec.js"
import type { JoinedInfo } from "../../src/protocol/Location.js"
import { QueueReports } from "../../src/scheduler/autoscale/QueueReports.js"
import { assignPlayer, emptyRegistry, placePlayer, spawnInstance } from "../../src/scheduler/Placement.js"

/**
 * The server side of seamless moves, without a server: the Relocate envelope
 * across gateways, the scheduler's Assign placement, the queue reports the
 * autoscaler reads, and the 4006 close reason.
 */

const joined: JoinedInfo = {
  experienceId: "arena",
  worldId: "arena.2",
  regionId: "arena.2",
  entityId: 4,
  x: 1.25,
  y: 0,
  z: -3,
  cellKey: "0,0,-1",
  tickRate: 20,
  cellSize: 50,
  interestRadius: 1
}

const recordingPort = () => {
  const relocations: Array<[string, JoinedInfo | null, string]> = []
  const port: GatewayPort = {
    publish: () => {},
    sendToPlayer: () => false,
    moveCells: () => {},
    relocate: (playerId, j, reason) => {
      relocations.push([playerId, j, reason])
      return true
    }
  }
  return { port, relocations }
}

describe("the Relocate envelope (kind 3)", () => {
  it("carries the JoinedInfo (or null) and the reason to the gateway's port", () => {
    const { port, relocations } = recordingPort()
    expect(dispatchEnvelope(port, encodeRelocateEnvelope("p1", joined, "moved to arena.2 by an admin"))).toBe(true)
    expect(dispatchEnvelope(port, encodeRelocateEnvelope("p2", null, "arena.1: maintenance"))).toBe(true)
    expect(relocations).toEqual([["p1", joined, "moved to arena.2 by an admin"], ["p2", null, "arena.1: maintenance"]])
  })

  it.each([
    ["a JoinedInfo without entityId", [EnvelopeKind.Relocate, "p", { ...joined, entityId: "4" }, "r"]],
    ["a JoinedInfo missing a field", [EnvelopeKind.Relocate, "p", { worldId: "arena.2" }, "r"]],
    ["no reason", [EnvelopeKind.Relocate, "p", null]],
    ["a number as reason", [EnvelopeKind.Relocate, "p", null, 5]],
    ["an array as JoinedInfo", [EnvelopeKind.Relocate, "p", [1, 2], "r"]],
    ["no player", [EnvelopeKind.Relocate, null, null, "r"]]
  ])("is refused, and nothing applied, with %s", (_what, value) => {
    const { port, relocations } = recordingPort()
    expect(dispatchEnvelope(port, encode(value))).toBe(false)
    expect(relocations).toEqual([])
  })
})

const exp = (id: string, maxPlayers: number): ExperienceConfig => ({ ...defaultExperience(id), maxPlayers })

describe("Placement: assign (a match places a player in no world)", () => {
  it("places a player in no world; idempotent where it is; names the other world when it is elsewhere", () => {
    const arena = exp("arena", 2)
    const registry = emptyRegistry()
    placePlayer(registry, arena, "a", 0)
    spawnInstance(registry, arena, 0)
    expect(assignPlayer(registry, "b", "arena.2")).toEqual({ _tag: "Assigned" })
    expect(registry.placements.get("b")).toBe("arena.2")
    expect(registry.instances.get("arena.2")!.emptySince).toBeNull()
    expect(assignPlayer(registry, "b", "arena.2")).toEqual({ _tag: "AlreadyThere" })
    expect(assignPlayer(registry, "a", "arena.2")).toEqual({ _tag: "InAnotherWorld", worldId: "arena.1" })
    expect(registry.placements.get("a")).toBe("arena.1")
    expect(assignPlayer(registry, "c", "arena.9")).toEqual({ _tag: "Refused", code: "not_found", reason: "no instance \"arena.9\"" })
  })

  it("respects the instance's capacity and the experience's player quota", () => {
    const arena = exp("arena", 2)
    const registry = emptyRegistry()
    spawnInstance(registry, arena, 0)
    spawnInstance(registry, arena, 0)
    expect(assignPlayer(registry, "a", "arena.1")._tag).toBe("Assigned")
    expect(assignPlayer(registry, "b", "arena.1")._tag).toBe("Assigned")
    expect(assignPlayer(registry, "c", "arena.1")).toEqual({
      _tag: "Refused",
      code: "conflict",
      reason: "instance \"arena.1\" is full (2 players)"
    })
    expect(assignPlayer(registry, "c", "arena.2", 2)).toEqual({
      _tag: "Refused",
      code: "conflict",
      reason: "experience \"arena\" is full (quota of 2 players)"
    })
    expect(registry.placements.has("c")).toBe(false)
    expect(assignPlayer(registry, "c", "arena.2", 3)._tag).toBe("Assigned")
  })
})

describe("QueueReports (ReportQueue)", () => {
  it("sums each source's latest report per experience, drops silent sources, and clamps bad counts", () => {
    const q = new QueueReports(1000)
    expect(q.queued("squads", 0)).toBe(0)
    q.report("squads", 3, 0, "squads:ten")
    q.report("squads", 2, 0, "squads:ranked")
    q.report("arena", 5, 0)
    expect(q.queued("squads", 10)).toBe(5)
    q.report("squads", 1, 500, "squads:ten")
    expect(q.queued("squads", 600)).toBe(3)
    // squads:ranked last reported at 0: silent past the TTL, it stops counting.
    expect(q.queued("squads", 1200)).toBe(1)
    q.report("squads", 0, 1300, "squads:ten")
    expect(q.queued("squads", 1300)).toBe(0)
    q.report("arena", -4, 1300)
    expect(q.queued("arena", 1300)).toBe(0)
    q.report("arena", Number.NaN, 1300)
    expect(q.queued("arena", 1300)).toBe(0)
    expect(q.queued("arena", 5000)).toBe(0)
  })
})

describe("closeReason (the 4006 close frame's text)", () => {
  it("keeps a short reason and cuts a long one to at most 123 bytes of UTF-8 at a character boundary", () => {
    expect(closeReason("instance terminated: arena.1: maintenance")).toBe("instance terminated: arena.1: maintenance")
    const long = closeReason(`instance terminated: ${"é".repeat(200)}`)
    expect(Buffer.byteLength(long)).toBeLessThanOrEqual(123)
    expect(long.endsWith("...")).toBe(true)
    expect(long).not.toContain("\uFFFD")
    const emoji = closeReason("😀".repeat(100))
    expect(Buffer.byteLength(emoji)).toBeLessThanOrEqual(123)
    expect([...emoji.slice(0, -3)].every((c) => c === "😀")).toBe(true)
  })
})
