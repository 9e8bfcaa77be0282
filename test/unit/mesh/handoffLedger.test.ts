import { describe, expect, it } from "vitest"
import { HandoffLedger } from "../../../src/region/mesh/HandoffLedger.js"

const options = { forwardTtlMs: 1_000, transferTimeoutMs: 500 }
const ledger = (extra: Partial<ConstructorParameters<typeof HandoffLedger>[1]> = {}) =>
  new HandoffLedger("w/0/0/0/0", { ...options, ...extra })

describe("outgoing transfers", () => {
  it("begin opens a transfer at the next epoch with a unique id", () => {
    const l = ledger()
    const a = l.begin(1, "p1", 4, "w/0/1/0/0", 100)
    const b = l.begin(2, "p2", 0, "w/0/1/0/0", 101)
    expect(a).toEqual({ transferId: "w/0/0/0/0#0.1", entityId: 1, playerId: "p1", from: "w/0/0/0/0", to: "w/0/1/0/0", epoch: 5, startedAt: 100 })
    expect(b.transferId).toBe("w/0/0/0/0#0.2")
    expect(b.epoch).toBe(1)
    expect(l.outgoing(1)).toEqual(a)
    expect(l.inFlight).toBe(2)
  })

  it("the incarnation keeps a restarted region's ids apart", () => {
    expect(ledger({ incarnation: "1700000000000" }).begin(1, "p", 0, "x", 0).transferId).toBe("w/0/0/0/0#1700000000000.1")
  })

  it("refuses a second transfer for the same entity and a transfer to itself", () => {
    const l = ledger()
    l.begin(1, "p1", 0, "w/0/1/0/0", 0)
    expect(() => l.begin(1, "p1", 0, "w/0/0/0/1", 1)).toThrow(/entity 1 is already being handed to w\/0\/1\/0\/0/)
    expect(() => l.begin(2, "p2", 0, "w/0/0/0/0", 1)).toThrow(/to itself/)
  })

  it("complete ends the transfer, reports its duration and forwards inputs until the ttl", () => {
    const l = ledger()
    const t = l.begin(1, "p1", 0, "w/0/1/0/0", 100)
    expect(l.forwardTo(1, 100)).toBeUndefined() // still ours while in flight
    expect(l.complete(t.transferId, 130)).toEqual({ ...t, durationMs: 30 })
    expect(l.outgoing(1)).toBeUndefined()
    expect(l.inFlight).toBe(0)
    expect(l.forwardTo(1, 130)).toBe("w/0/1/0/0")
    expect(l.forwardTo(1, 1129)).toBe("w/0/1/0/0")
    expect(l.forwardTo(1, 1130)).toBeUndefined()
    expect(l.forwardTo(2, 130)).toBeUndefined()
    expect(l.complete(t.transferId, 140)).toBeUndefined() // settled once
    expect(l.fail(t.transferId, 140)).toBeUndefined()
  })

  it("fail ends the transfer without a forward, and the entity can be handed again", () => {
    const l = ledger()
    const t = l.begin(1, "p1", 2, "w/0/1/0/0", 100)
    expect(l.fail(t.transferId, 350)).toEqual({ ...t, durationMs: 250 })
    expect(l.forwardTo(1, 351)).toBeUndefined()
    const again = l.begin(1, "p1", 2, "w/0/0/0/1", 400)
    expect(again.epoch).toBe(3)
    expect(again.transferId).not.toBe(t.transferId)
    expect(l.complete(t.transferId, 410)).toBeUndefined() // the old id is dead
  })

  it("handing an entity that came back drops its old forward", () => {
    const l = ledger()
    l.complete(l.begin(1, "p1", 0, "w/0/1/0/0", 0).transferId, 10)
    expect(l.forwardTo(1, 20)).toBe("w/0/1/0/0")
    l.begin(1, "p1", 2, "w/0/0/0/1", 30)
    expect(l.forwardTo(1, 31)).toBeUndefined()
  })

  it("timedOut lists transfers in flight longer than the timeout, oldest first", () => {
    const l = ledger()
    const a = l.begin(1, "p1", 0, "x", 0)
    const b = l.begin(2, "p2", 0, "x", 100)
    const c = l.begin(3, "p3", 0, "x", 400)
    expect(l.timedOut(500)).toEqual([])
    expect(l.timedOut(501)).toEqual([a])
    expect(l.timedOut(601)).toEqual([a, b])
    l.fail(a.transferId, 601)
    expect(l.timedOut(10_000)).toEqual([b, c])
  })

  it("rejects bad options", () => {
    expect(() => ledger({ forwardTtlMs: -1 })).toThrow(/forwardTtlMs/)
    expect(() => ledger({ transferTimeoutMs: Number.NaN })).toThrow(/transferTimeoutMs/)
    expect(() => ledger({ maxRememberedIds: 0 })).toThrow(/maxRememberedIds/)
  })
})

describe("incoming transfers", () => {
  type Step = readonly ["accept" | "abort", string, string]
  it.each<[string, ReadonlyArray<Step>]>([
    ["accept once", [["accept", "t1", "accepted"]]],
    ["a duplicate accept", [["accept", "t1", "accepted"], ["accept", "t1", "duplicate"], ["accept", "t1", "duplicate"]]],
    ["accept then abort: the source must drop its copy", [["accept", "t1", "accepted"], ["abort", "t1", "accepted"]]],
    ["abort then accept: the late accept is refused", [["abort", "t1", "aborted"], ["accept", "t1", "aborted"]]],
    ["abort twice", [["abort", "t1", "aborted"], ["abort", "t1", "aborted"], ["accept", "t1", "aborted"]]],
    [
      "ids are independent",
      [["abort", "t1", "aborted"], ["accept", "t2", "accepted"], ["abort", "t2", "accepted"], ["accept", "t1", "aborted"]]
    ]
  ])("%s", (_name, steps) => {
    const l = ledger()
    for (const [op, id, expected] of steps) {
      expect(op === "accept" ? l.accept(id) : l.abort(id), `${op} ${id}`).toBe(expected)
    }
  })

  it("accepting an entity back clears its old forward", () => {
    const l = ledger()
    l.complete(l.begin(1, "p1", 0, "w/0/1/0/0", 0).transferId, 10)
    expect(l.accept("w/0/1/0/0#0.1", 1)).toBe("accepted")
    expect(l.forwardTo(1, 20)).toBeUndefined()
  })
})

describe("sweep", () => {
  it("forgets expired forwards only", () => {
    const l = ledger()
    l.complete(l.begin(1, "p1", 0, "x", 0).transferId, 0) // forward until 1000
    l.complete(l.begin(2, "p2", 0, "y", 500).transferId, 500) // forward until 1500
    l.sweep(999)
    expect(l.forwarding).toBe(2)
    l.sweep(1000)
    expect(l.forwarding).toBe(1)
    expect(l.forwardTo(2, 1000)).toBe("y")
    l.sweep(1500)
    expect(l.forwarding).toBe(0)
  })

  it("remembers incoming ids for the retention after the sweep that first sees them", () => {
    const l = ledger({ idRetentionMs: 5_000 })
    l.accept("a")
    l.abort("b")
    l.sweep(1_000) // stamps a and b
    l.accept("c")
    l.sweep(5_999)
    expect(l.rememberedIds).toBe(3)
    expect(l.abort("a")).toBe("accepted")
    expect(l.accept("b")).toBe("aborted")
    l.sweep(6_000) // a and b are 5 s past their stamp; c was stamped at 5999
    expect(l.rememberedIds).toBe(1)
    expect(l.accept("c")).toBe("duplicate")
    l.sweep(10_999)
    expect(l.rememberedIds).toBe(0)
  })

  it("the default retention outlives the transfer timeout by far", () => {
    const l = ledger() // transferTimeoutMs 500 -> retention 5000
    l.abort("t")
    l.sweep(0)
    l.sweep(4_999)
    expect(l.accept("t")).toBe("aborted")
    l.sweep(5_000)
    expect(l.rememberedIds).toBe(0)
  })

  it("memory stays bounded under a flood of ids, oldest forgotten first", () => {
    const l = ledger({ maxRememberedIds: 100 })
    for (let i = 0; i < 1_000; i++) l.accept(`t${i}`)
    expect(l.rememberedIds).toBe(100)
    expect(l.accept("t999")).toBe("duplicate")
    expect(l.accept("t900")).toBe("duplicate")
    expect(l.accept("t0")).toBe("accepted") // forgotten, so it looks new
  })

  it("a long run with periodic sweeps keeps every table small", () => {
    const l = ledger()
    let now = 0
    for (let i = 0; i < 5_000; i++) {
      now += 10
      const t = l.begin(i, `p${i}`, 0, "x", now)
      if (i % 3 === 0) l.fail(t.transferId, now + 5)
      else l.complete(t.transferId, now + 5)
      l.accept(`in${i}`)
      if (i % 100 === 0) l.sweep(now)
    }
    expect(l.inFlight).toBe(0)
    expect(l.forwarding).toBeLessThanOrEqual(1_000 / 10 + 100)
    expect(l.rememberedIds).toBeLessThanOrEqual(5_000 / 10 + 2 * 100)
  })
})
