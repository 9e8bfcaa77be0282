/**
 * A token bucket: holds up to `burst` tokens, refills at `ratePerSecond`,
 * starts full. Pure and allocation-free (two numbers of state); the caller
 * passes the clock, so one class serves per-connection, per-IP and per-player
 * limits and tests need no fake timers.
 *
 * A clock that goes backwards refills nothing (the bucket re-anchors at the
 * new time). `ratePerSecond = 0` never refills; `burst = 0` never allows.
 */
export class TokenBucket {
  private tokens: number
  private lastMs = Number.NaN

  constructor(readonly ratePerSecond: number, readonly burst: number) {
    if (!(ratePerSecond >= 0) || !Number.isFinite(ratePerSecond)) {
      throw new RangeError(`TokenBucket ratePerSecond must be a finite number >= 0, got ${ratePerSecond}`)
    }
    if (!(burst >= 0) || !Number.isFinite(burst)) {
      throw new RangeError(`TokenBucket burst must be a finite number >= 0, got ${burst}`)
    }
    this.tokens = burst
  }

  /** Takes `n` tokens if available (true) or takes nothing (false). */
  take(nowMs: number, n = 1): boolean {
    this.refill(nowMs)
    if (this.tokens >= n) {
      this.tokens -= n
      return true
    }
    return false
  }

  /** Tokens that would be available at `nowMs`. Does not change the bucket. */
  available(nowMs: number): number {
    const elapsed = nowMs - this.lastMs
    if (!(elapsed > 0)) return this.tokens
    const t = this.tokens + (elapsed * this.ratePerSecond) / 1000
    return t < this.burst ? t : this.burst
  }

  /**
   * True when the bucket would be full at `nowMs`, i.e. dropping it and
   * starting a new one changes nothing. Does not change the bucket.
   */
  isFull(nowMs: number): boolean {
    return this.available(nowMs) >= this.burst
  }

  /** The clock reading of the last `take` (NaN before the first). */
  get lastUsedMs(): number {
    return this.lastMs
  }

  private refill(nowMs: number): void {
    this.tokens = this.available(nowMs)
    // First use (NaN), forward or backward in time: re-anchor at nowMs.
    this.lastMs = nowMs
  }
}
