/**
 * What an instance's heartbeat reports about its process (CPU and memory),
 * and the development-only hook that silences chosen instances' heartbeats.
 */
import * as Fs from "node:fs"

/**
 * Process CPU since the previous call, as a fraction of one core (1 = one
 * core busy), and resident memory. One sampler per region: every region in a
 * process reports the same process figures.
 */
export const makeProcessSampler = () => {
  let lastUsage = process.cpuUsage()
  let lastAt = performance.now()
  return (): { readonly cpu: number; readonly memoryBytes: number } => {
    const usage = process.cpuUsage()
    const now = performance.now()
    const micros = usage.user - lastUsage.user + usage.system - lastUsage.system
    const elapsedMs = Math.max(1, now - lastAt)
    lastUsage = usage
    lastAt = now
    return { cpu: micros / 1000 / elapsedMs, memoryBytes: process.memoryUsage.rss() }
  }
}

/**
 * Test hook (dev mode only): the environment variable naming a file of world
 * ids and runner addresses (host:port), one per line or comma-separated. A
 * named instance's region keeps ticking but stops sending heartbeats, as a
 * hung or partitioned instance would; a named runner keeps running but stops
 * sending its runner heartbeats (RunnerHeartbeat). Read at each heartbeat, so
 * a test can freeze an instance or a runner while it runs.
 */
export const HEARTBEAT_FREEZE_FILE_ENV = "DEV_TESSERA_FREEZE_HEARTBEATS_FILE"

/** Whether the heartbeats of `worldId` (or a runner address) are frozen by the test hook (always false outside dev mode). */
export const heartbeatFrozen = (worldId: string, dev: boolean): boolean => {
  if (!dev) return false
  const file = process.env[HEARTBEAT_FREEZE_FILE_ENV]
  if (file === undefined || file === "") return false
  try {
    return Fs.readFileSync(file, "utf8").split(/[\s,]+/).includes(worldId)
  } catch {
    return false
  }
}
