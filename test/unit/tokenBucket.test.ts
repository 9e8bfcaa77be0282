import { describe, expect, it } from "vitest"
import { KeyedRateLimiter } from "../../src/gateway/KeyedRateLimiter.js"
import { TokenBucket } from "../../src/gateway/TokenBucket.js"

type Step = readonly [atMs: number, n: number, expected: boolean]

const cases: Array<{ name: string; rate: number; burst: number; steps: ReadonlyArray<Step> }> = [
  {
    name: "starts full and allows a burst",
    rate: 1,
    burst: 3,
    steps: [[0, 1, true], [0, 1, true], [0, 1, true], [0, 1, false]]
  },
  {
    name: "refills at the rate",
    rate: 10,
    burst: 1,
    steps: [[0, 1, true], [50, 1, false], [100, 1, true], [150, 1, false], [200, 1, true]]
  },
  {
    name: "never refills above burst",
    rate: 100,
    burst: 2,
    steps: [[0, 2, true], [60_000, 1, true], [60_000, 1, true], [60_000, 1, false]]
  },
  {
    name: "takes several tokens at once or none",
    rate: 1,
    burst: 5,
    steps: [[0, 3, true], [0, 3, false], [0, 2, true], [0, 1, false]]
  },
  {
    name: "a request larger than burst never passes",
    rate: 1000,
    burst: 2,
    steps: [[0, 3, false], [10_000, 3, false], [10_000, 2, true]]
  },
  {
    name: "fractional refill accumulates",
    rate: 2,
    burst: 1,
    steps: [[0, 1, true], [250, 1, false], [400, 1, false], [500, 1, true]]
  },
  {
    name: "rate 0 never refills",
    rate: 0,
    burst: 1,
    steps: [[0, 1, true], [1e9, 1, false]]
  },
  {
    name: "burst 0 never allows",
    rate: 100,
    burst: 0,
    steps: [[0, 1, false], [1000, 1, false]]
  },
  {
    name: "a clock going backwards refills nothing",
    rate: 10,
    burst: 1,
    steps: [[1000, 1, true], [500, 1, false], [550, 1, false], [600, 1, true]]
  },
  {
    name: "first use at an arbitrary clock reading",
    rate: 1,
    burst: 1,
    steps: [[1_700_000_000_000, 1, true], [1_700_000_000_500, 1, false], [1_700_000_001_000, 1, true]]
  }
]

describe("TokenBucket", () => {
  for (const c of cases) {
    it(c.name, () => {
      const bucket = new TokenBucket(c.rate, c.burst)
      const results = c.steps.map(([at, n]) => bucket.take(at, n))
      expect(results).toEqual(c.steps.map(([, , expected]) => expected))
    })
  }

  it("reports availability and fullness without changing the bucket", () => {
    const b = new TokenBucket(10, 5)
    expect(b.isFull(0)).toBe(true)
    expect(b.take(0, 5)).toBe(true)
    expect(b.available(100)).toBe(1)
    expect(b.available(100)).toBe(1)
    expect(b.isFull(400)).toBe(false)
    expect(b.isFull(500)).toBe(true)
    expect(b.lastUsedMs).toBe(0)
  })

  it("rejects invalid parameters", () => {
    expect(() => new TokenBucket(-1, 1)).toThrow(RangeError)
    expect(() => new TokenBucket(1, Number.NaN)).toThrow(RangeError)
    expect(() => new TokenBucket(Infinity, 1)).toThrow(RangeError)
  })
})

describe("KeyedRateLimiter", () => {
  it("limits each key independently", () => {
    const limiter = new KeyedRateLimiter({ ratePerSecond: 1, burst: 2 })
    expect([0, 0, 0].map(() => limiter.take("a", 0))).toEqual([true, true, false])
    expect(limiter.take("b", 0)).toBe(true)
    expect(limiter.take("a", 1000)).toBe(true)
    expect(limiter.size).toBe(2)
  })

  it("evicts keys that are idle and full, keeps the others", () => {
    const limiter = new KeyedRateLimiter({ ratePerSecond: 1, burst: 100, idleMs: 60_000 })
    limiter.take("refilled", 0)
    limiter.take("drained", 0, 100)
    limiter.take("recent", 59_000)
    // At 61 s: "refilled" is full and idle; "drained" has 61 tokens of 100; "recent" is not idle.
    expect(limiter.sweep(61_000)).toBe(1)
    expect(limiter.size).toBe(2)
    // At 100 s "drained" is full again.
    expect(limiter.sweep(100_000)).toBe(1)
    expect(limiter.size).toBe(1)
  })

  it("sweeps on its own every N calls", () => {
    const limiter = new KeyedRateLimiter({ ratePerSecond: 10, burst: 1, idleMs: 1000, sweepEvery: 4 })
    for (let i = 0; i < 3; i++) limiter.take(`k${i}`, 0)
    expect(limiter.size).toBe(3)
    limiter.take("k0", 10_000) // 4th call: sweep runs first; k0 is re-created
    expect(limiter.size).toBe(1)
  })

  it("bounds memory: at the key cap it evicts full buckets, then refuses new keys", () => {
    const limiter = new KeyedRateLimiter({ ratePerSecond: 1, burst: 1, maxKeys: 2, sweepEvery: 1_000_000 })
    expect(limiter.take("a", 0)).toBe(true)
    expect(limiter.take("b", 0)).toBe(true)
    expect(limiter.take("c", 0)).toBe(false) // both buckets drained: nothing evictable
    expect(limiter.size).toBe(2)
    expect(limiter.take("c", 1000)).toBe(true) // a and b refilled: evicted to make room
    expect(limiter.size).toBe(1)
    limiter.delete("c")
    expect(limiter.size).toBe(0)
  })
})
