import { Effect } from "effect"

/**
 * A warning for a failure that can repeat many times a second while a
 * dependency is down (Redis, storage): the first in each window is logged
 * with how many were suppressed since, the rest are counted.
 */
export const makeThrottledWarning = (label: string, everyMs = 10_000) => {
  let lastLogAt = -Infinity
  let suppressed = 0
  return (what: string, e: unknown): Effect.Effect<void> =>
    Effect.suspend(() => {
      const now = Date.now()
      if (now - lastLogAt < everyMs) {
        suppressed++
        return Effect.void
      }
      lastLogAt = now
      const more = suppressed > 0 ? ` (${suppressed} more failures since the last report)` : ""
      suppressed = 0
      return Effect.logWarning(`${label} ${what} failed: ${e instanceof Error ? e.message : String(e)}${more}`)
    })
}
