import { TokenBucket } from "./TokenBucket.js"

export interface KeyedRateLimiterOptions {
  readonly ratePerSecond: number
  readonly burst: number
  /** A key untouched this long whose bucket has refilled is forgotten. Default 60 000. */
  readonly idleMs?: number
  /** Sweep at most every this many `take` calls (at least every `size` calls). Default 1024. */
  readonly sweepEvery?: number
  /**
   * Hard cap on tracked keys. When reached, a sweep evicts every full bucket
   * regardless of idleness; if still at the cap, new keys are refused
   * (`take` returns false) until room frees up. Default 100 000.
   */
  readonly maxKeys?: number
}

/**
 * One TokenBucket per key (IP, player id, ...), with bounded memory: keys
 * whose bucket is full again and has been idle for `idleMs` are evicted by a
 * sweep run every `max(sweepEvery, size)` calls (amortised O(1) per call).
 * Evicting a full bucket is lossless: a new key starts with a full bucket.
 */
export class KeyedRateLimiter {
  private readonly buckets = new Map<string, TokenBucket>()
  private readonly idleMs: number
  private readonly sweepEvery: number
  private readonly maxKeys: number
  private calls = 0

  constructor(private readonly options: KeyedRateLimiterOptions) {
    this.idleMs = options.idleMs ?? 60_000
    this.sweepEvery = Math.max(1, options.sweepEvery ?? 1024)
    this.maxKeys = Math.max(1, options.maxKeys ?? 100_000)
    // Validates rate and burst once, up front.
    new TokenBucket(options.ratePerSecond, options.burst)
  }

  /** Takes `n` tokens from `key`'s bucket; false when limited (or refused at the key cap). */
  take(key: string, nowMs: number, n = 1): boolean {
    if (++this.calls >= this.sweepEvery && this.calls >= this.buckets.size) this.sweep(nowMs)
    let bucket = this.buckets.get(key)
    if (bucket === undefined) {
      if (this.buckets.size >= this.maxKeys) {
        this.sweep(nowMs, 0)
        if (this.buckets.size >= this.maxKeys) return false
      }
      bucket = new TokenBucket(this.options.ratePerSecond, this.options.burst)
      this.buckets.set(key, bucket)
    }
    return bucket.take(nowMs, n)
  }

  /** Forgets `key` (e.g. on disconnect). */
  delete(key: string): void {
    this.buckets.delete(key)
  }

  /** Keys currently tracked. */
  get size(): number {
    return this.buckets.size
  }

  /** Evicts keys idle for `idleMs` (default: the configured one) whose bucket is full; returns how many. */
  sweep(nowMs: number, idleMs: number = this.idleMs): number {
    this.calls = 0
    let evicted = 0
    for (const [key, bucket] of this.buckets) {
      if (nowMs - bucket.lastUsedMs >= idleMs && bucket.isFull(nowMs)) {
        this.buckets.delete(key)
        evicted++
      }
    }
    return evicted
  }
}
