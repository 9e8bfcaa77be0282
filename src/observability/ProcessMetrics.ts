import { monitorEventLoopDelay } from "node:perf_hooks"
import { registry } from "./Metrics.js"

/**
 * Process-level gauges every Node service exports: CPU, resident memory, and
 * event-loop delay. The loop delay is what a player feels when one
 * synchronous piece of work (a big tick, a GC pause, a synchronous write)
 * holds the loop: inputs wait behind it. p99 and max are over the last
 * complete window of LAG_WINDOW_MS, so every scrape reads a stable value.
 */
const LAG_WINDOW_MS = 5_000

const lag = monitorEventLoopDelay({ resolution: 10 })
let lagP99Seconds = 0
let lagMaxSeconds = 0
let started = false

/** Starts the event-loop delay sampling (idempotent; the timer does not keep the process alive). */
export const startProcessMetrics = (): void => {
  if (started) return
  started = true
  lag.enable()
  setInterval(() => {
    lagP99Seconds = lag.percentile(99) / 1e9
    lagMaxSeconds = lag.max / 1e9
    lag.reset()
  }, LAG_WINDOW_MS).unref()
}

/** The event loop's delay p99 over the last complete window, in ms (0 until sampling started and one window passed). */
export const eventLoopLagP99Ms = (): number => lagP99Seconds * 1000

registry.gauge("tessera_process_cpu_seconds", "CPU time (user + system) this process has used, in seconds.", () => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1e6
})
registry.gauge("tessera_process_resident_memory_bytes", "Resident set size of this process.", () => process.memoryUsage.rss())
registry.gauge(
  "tessera_event_loop_lag_p99_seconds",
  `p99 of the event loop's delay over the last ${LAG_WINDOW_MS / 1000} s window.`,
  () => lagP99Seconds
)
registry.gauge(
  "tessera_event_loop_lag_max_seconds",
  `Longest event loop delay in the last ${LAG_WINDOW_MS / 1000} s window.`,
  () => lagMaxSeconds
)
