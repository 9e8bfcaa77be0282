import { describe, expect, it } from "vitest"
import { FixedTicker } from "../../src/region/FixedTicker.js"

/** Deterministic PRNG (mulberry32) for jitter. */
const rng = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = seed
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

describe("FixedTicker", () => {
  it("schedules against absolute deadlines (start 1000 ms, 20 Hz)", () => {
    const t = new FixedTicker(20, 1000)
    // [now, ticksDue, delayMs, skipped], applied in order
    const table = [
      [990, 0, 10, 0],
      [1000, 1, 50, 0],
      [1010, 0, 40, 0],
      [1052, 1, 48, 0],
      [1100, 1, 50, 0],
      [1260, 3, 40, 0],
      [1300, 1, 50, 0]
    ] as const
    for (const [now, ticksDue, delayMs, skipped] of table) {
      expect({ now, ...t.next(now) }).toEqual({ now, ticksDue, delayMs, skipped })
    }
  })

  it("does not drift over 10,000 ticks with jittery wake-ups", () => {
    const random = rng(42)
    const start = 5000
    const t = new FixedTicker(20, start)
    let now = start
    let ran = 0
    let lastRunAt = 0
    let naive = start // what chaining setTimeout(50) with the same overshoot would reach
    while (ran < 10_000) {
      const { ticksDue, delayMs, skipped } = t.next(now)
      expect(skipped).toBe(0)
      if (ticksDue > 0) lastRunAt = now
      for (let i = 0; i < ticksDue && ran < 10_000; i++) ran++
      const overshoot = random() * 4 // the timer fires 0..4 ms late
      now += delayMs + overshoot
      naive += 50 + overshoot
    }
    const ideal = start + 9_999 * 50
    expect(lastRunAt).toBeGreaterThanOrEqual(ideal)
    expect(lastRunAt - ideal).toBeLessThan(4)
    expect(naive - ideal).toBeGreaterThan(10_000) // the drift it avoids
    expect(t.nextTick).toBe(10_000)
  })

  it("handles a non-integer period (60 Hz) without drift", () => {
    const t = new FixedTicker(60, 0)
    let now = 0
    let ran = 0
    while (ran < 6000) {
      const r = t.next(now)
      ran += r.ticksDue
      now += r.delayMs
    }
    expect(ran).toBe(6000)
    expect(Math.abs(now - 100_000)).toBeLessThan(1e-6)
  })

  it("catches up to maxCatchUp ticks at once", () => {
    const t = new FixedTicker(20, 0)
    expect(t.next(0).ticksDue).toBe(1)
    // 4 deadlines passed (50, 100, 150, 200) plus a bit
    expect(t.next(210)).toEqual({ ticksDue: 4, delayMs: 40, skipped: 0 })
    const t2 = new FixedTicker(20, 0)
    t2.next(0)
    expect(t2.next(250)).toEqual({ ticksDue: 5, delayMs: 50, skipped: 0 })
  })

  it("skips ahead when behind by more than maxCatchUp", () => {
    const t = new FixedTicker(20, 0)
    t.next(0) // tick 0
    // A 1 s stall: deadlines 50..1000 = 20 ticks overdue.
    expect(t.next(1000)).toEqual({ ticksDue: 5, delayMs: 50, skipped: 15 })
    expect(t.skippedTotal).toBe(15)
    expect(t.nextTick).toBe(21)
    // back on schedule afterwards
    expect(t.next(1050)).toEqual({ ticksDue: 1, delayMs: 50, skipped: 0 })
  })

  it("honours a custom maxCatchUp", () => {
    const t = new FixedTicker(10, 0, 1)
    expect(t.next(350)).toEqual({ ticksDue: 1, delayMs: 50, skipped: 3 })
  })

  it.each([
    [0, 0, 5],
    [-1, 0, 5],
    [Number.NaN, 0, 5],
    [20, Number.POSITIVE_INFINITY, 5],
    [20, 0, 0],
    [20, 0, 1.5]
  ])("rejects bad arguments (%s, %s, %s)", (rate, start, max) => {
    expect(() => new FixedTicker(rate, start, max)).toThrow()
  })
})
