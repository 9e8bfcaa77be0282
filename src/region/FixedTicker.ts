/**
 * Drift-free fixed-timestep schedule (pure arithmetic; the Effect loop that
 * sleeps lives with the Region entity).
 *
 * Tick n (0-based schedule index) is due at `startMs + n * 1000 / tickRate`,
 * computed from n every time, so sleep overshoot never accumulates. The loop:
 *
 *   const { ticksDue, delayMs } = ticker.next(monotonicNowMs)
 *   run ticksDue ticks back to back (each with dt = 1 / tickRate)
 *   sleep delayMs, repeat
 *
 * Each call consumes the ticks it reports. If more than `maxCatchUp` ticks are
 * overdue (a long GC pause, a suspended VM) the oldest ones are skipped:
 * `ticksDue` is capped at `maxCatchUp` and `skipped` says how many schedule
 * slots were dropped, so the loop never spirals trying to catch up.
 * Use a monotonic clock (performance.now / Clock.currentTimeMillis of a
 * monotonic Clock); a clock that steps backwards only delays ticks.
 */

export interface TickerDecision {
  /** Ticks to run now, back to back (0..maxCatchUp). */
  readonly ticksDue: number
  /** Time until the next tick's deadline (>= 0). */
  readonly delayMs: number
  /** Schedule slots dropped by this call because the loop fell too far behind. */
  readonly skipped: number
}

export const DEFAULT_MAX_CATCH_UP = 5

export class FixedTicker {
  readonly tickRate: number
  readonly periodMs: number
  readonly startMs: number
  readonly maxCatchUp: number
  private nextIndex = 0
  private skippedCount = 0

  constructor(tickRate: number, startMs: number, maxCatchUp: number = DEFAULT_MAX_CATCH_UP) {
    if (!(Number.isFinite(tickRate) && tickRate > 0)) {
      throw new Error(`tickRate must be a finite number > 0, got ${tickRate}`)
    }
    if (!Number.isFinite(startMs)) throw new Error(`startMs must be finite, got ${startMs}`)
    if (!(Number.isInteger(maxCatchUp) && maxCatchUp >= 1)) {
      throw new Error(`maxCatchUp must be an integer >= 1, got ${maxCatchUp}`)
    }
    this.tickRate = tickRate
    this.periodMs = 1000 / tickRate
    this.startMs = startMs
    this.maxCatchUp = maxCatchUp
  }

  /** Deadline of schedule slot n. */
  deadline(n: number): number {
    return this.startMs + (n * 1000) / this.tickRate
  }

  /** Schedule index of the next tick to run (= ticks consumed + ticks skipped). */
  get nextTick(): number {
    return this.nextIndex
  }

  /** Schedule slots skipped since the start. */
  get skippedTotal(): number {
    return this.skippedCount
  }

  next(nowMs: number): TickerDecision {
    // Last slot whose deadline has passed; the estimate is corrected against
    // deadline() so both agree exactly despite floating-point rounding.
    let last = Math.floor(((nowMs - this.startMs) * this.tickRate) / 1000)
    if (!(last >= -1)) last = -1 // before the start, or a NaN clock
    while (this.deadline(last + 1) <= nowMs) last++
    while (last >= 0 && this.deadline(last) > nowMs) last--
    let due = last + 1 - this.nextIndex
    if (due < 0) due = 0
    let skipped = 0
    if (due > this.maxCatchUp) {
      skipped = due - this.maxCatchUp
      due = this.maxCatchUp
      this.nextIndex += skipped
      this.skippedCount += skipped
    }
    this.nextIndex += due
    const delay = this.deadline(this.nextIndex) - nowMs
    return { ticksDue: due, delayMs: delay > 0 ? delay : 0, skipped }
  }
}
