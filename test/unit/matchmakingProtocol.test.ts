import { describe, expect, it } from "vitest"
import { loadConfig } from "../../src/config/loadConfig.js"
import { renderConfig } from "../../src/config/loadConfig.js"
import { matchModeOf } from "../../src/experts/matchmaking/MatchmakerLive.js"
import { matchQueueKey, queueKeyOfId } from "../../src/experts/matchmaking/MatchmakerEntity.js"
import { validateMode } from "../../src/experts/matchmaking/Matchmaker.js"
import { decode, encode } from "../../src/protocol/Codec.js"
import { MAX_MATCH_REGIONS, MAX_PARTY_MEMBERS, parseClientFrame } from "../../src/protocol/Messages.js"
import { ClientOp, ErrorCode } from "../../src/protocol/Opcodes.js"

/** Through the real codec, as the gateway sees it. */
const parse = (frame: unknown) => parseClientFrame(decode(encode(frame)), 500)

describe("matchmaking client frames", () => {
  it.each([
    ["a solo queue", [20, "arena", "squads", [], 1200, { eu: 30 }]],
    ["a party with no latencies", [20, "arena", "squads", ["p2", "p3"], -5.5, {}]],
    ["a cancel", [21]],
    ["an accept", [22, "arena:squads/abc.match-1"]],
    ["a decline", [23, "arena:squads/abc.match-1"]]
  ])("accepts %s", (_name, frame) => {
    const parsed = parse(frame)
    expect(parsed.ok).toBe(true)
    if (parsed.ok) expect(parsed.frame).toEqual(frame)
  })

  it.each([
    ["too few fields", [20, "arena", "squads", [], 1], "match queue is [20"],
    ["an empty experience", [20, "", "squads", [], 1, {}], "experienceId and mode"],
    ["a numeric mode", [20, "arena", 7, [], 1, {}], "experienceId and mode"],
    ["a party that is not an array", [20, "arena", "squads", "p2", 1, {}], "party must be an array"],
    ["a huge party", [20, "arena", "squads", Array.from({ length: MAX_PARTY_MEMBERS + 1 }, (_, i) => `p${i}`), 1, {}], "at most"],
    ["a party member twice", [20, "arena", "squads", ["p2", "p2"], 1, {}], "twice"],
    ["a non-string member", [20, "arena", "squads", [5], 1, {}], "party members must be player ids"],
    ["a NaN skill", [20, "arena", "squads", [], Number.NaN, {}], "skill"],
    ["an infinite skill", [20, "arena", "squads", [], Infinity, {}], "skill"],
    ["a huge skill", [20, "arena", "squads", [], 1e12, {}], "skill"],
    ["latencies as an array", [20, "arena", "squads", [], 1, [1, 2]], "latencies must be a map"],
    ["a negative latency", [20, "arena", "squads", [], 1, { eu: -1 }], "ms must be a number"],
    ["a string latency", [20, "arena", "squads", [], 1, { eu: "10" }], "ms must be a number"],
    ["too many regions", [20, "arena", "squads", [], 1, Object.fromEntries(Array.from({ length: MAX_MATCH_REGIONS + 1 }, (_, i) => [`r${i}`, 1]))], "at most"],
    ["a cancel with a field", [21, "x"], "match cancel is [21]"],
    ["an accept without id", [22], "match accept is [22, matchId]"],
    ["a decline with a number", [23, 5], "match decline is [23, matchId]"],
    ["an accept with a huge id", [22, "x".repeat(1000)], "matchId of 1.."]
  ])("rejects %s with a clear message", (_name, frame, text) => {
    const parsed = parse(frame)
    expect(parsed.ok).toBe(false)
    if (!parsed.ok) {
      expect(parsed.code).toBe(ErrorCode.BadShape)
      expect(parsed.message).toContain(text)
    }
  })

  it("copies latencies into a fresh record (no prototype tricks)", () => {
    const parsed = parseClientFrame([ClientOp.MatchQueue, "arena", "squads", [], 1, JSON.parse('{"__proto__": 5}')], 500)
    // JSON.parse makes an own "__proto__" key: refused.
    expect(parsed.ok).toBe(false)
  })
})

describe("matchmaking ids and config", () => {
  it("ticket and match ids name their queue", () => {
    expect(matchQueueKey("arena", "squads")).toBe("arena:squads")
    expect(queueKeyOfId("arena:squads/k1.match-3")).toBe("arena:squads")
    expect(queueKeyOfId("no-slash")).toBeUndefined()
    expect(queueKeyOfId("/leading")).toBeUndefined()
  })

  const mode = {
    experience: "arena",
    mode: "squads",
    matchSize: 10,
    minPlayers: 0,
    initialSkillWindow: 100,
    skillWindowGrowthPerSecond: 25,
    maxSkillWindow: 500,
    ticketTimeoutSeconds: 120,
    readyCheckSeconds: 0,
    maxLatencyMs: 150,
    backfill: true
  }

  it("a configured mode loads, renders back, and is a valid core mode", () => {
    const config = loadConfig({ env: {}, overrides: { matchmaking: { modes: [{ ...mode, readyCheckSeconds: 10 }] } } })
    expect(config.matchmaking.modes).toEqual([{ ...mode, readyCheckSeconds: 10 }])
    const core = matchModeOf(config.matchmaking.modes[0]!)
    expect(validateMode(core)).toBeUndefined()
    expect(core).toMatchObject({ ticketTimeoutMs: 120_000, readyCheckTimeoutMs: 10_000 })
    expect(core.minPlayers).toBeUndefined()
    expect(renderConfig(config)).toContain('modes = [{ experience = "arena", mode = "squads", match_size = 10')
  })

  it.each([
    ["an unknown experience", { ...mode, experience: "nope" }, "matchmaking.modes[0].experience", "configured experience"],
    ["a match larger than an instance", { ...mode, matchSize: 60 }, "matchmaking.modes[0].match_size", "max_players (50)"],
    ["min_players above match_size", { ...mode, minPlayers: 11 }, "matchmaking.modes[0].min_players", "at most match_size"],
    ["a max window below the initial", { ...mode, maxSkillWindow: 50 }, "matchmaking.modes[0].max_skill_window", "at least initial_skill_window"]
  ])("refuses %s, naming the key", (_name, bad, key, text) => {
    let error: unknown
    try {
      loadConfig({ env: {}, overrides: { matchmaking: { modes: [bad] } } })
    } catch (e) {
      error = e
    }
    expect(String((error as Error).message)).toContain(key)
    expect(String((error as Error).message)).toContain(text)
  })

  it("refuses the same (experience, mode) twice", () => {
    expect(() => loadConfig({ env: {}, overrides: { matchmaking: { modes: [mode, mode] } } })).toThrow(
      /duplicate matchmaking mode experience\+mode "arena"\+"squads"/
    )
  })
})
