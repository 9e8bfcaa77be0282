/**
 * Runner health (issue 5), the pure parts: the runners' tracker policy from
 * [health], the event-loop lag threshold, what a runner reports and how the
 * scheduler lists it, and a drain meant for an earlier process at an address.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Logger, LogLevel, Option } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { afterAll } from "vitest"
import * as Watcher from "../../src/cluster/RunnerDrainWatcher.js"
import { makeReport } from "../../src/cluster/RunnerHeartbeat.js"
import { defaultConfig } from "../../src/config/ConfigSchema.js"
import { runnerHealthPolicyOf } from "../../src/scheduler/autoscale/PolicyConfig.js"
import * as Health from "../../src/scheduler/health/HealthTracker.js"
import { runnerInfoOf } from "../../src/scheduler/SchedulerLive.js"
import * as Database from "../../src/storage/Database.js"
import * as SchedulerStateRepository from "../../src/storage/SchedulerStateRepository.js"

const R = "127.0.0.1:4001"
const beat = (lag: number, cpu = 0.1): Health.HeartbeatReport => ({
  tickP99Ms: Number.NaN,
  players: 0,
  cpu,
  memoryBytes: 100 * 1024 ** 2,
  eventLoopLagP99Ms: lag
})

describe("runner health policy", () => {
  it("is [health] without a tick limit, with max_event_loop_lag_ms (0 = off)", () => {
    const off = runnerHealthPolicyOf(defaultConfig.health)
    expect(defaultConfig.health.maxEventLoopLagMs).toBe(0)
    expect(defaultConfig.health.drainUnhealthyRunners).toBe(false)
    expect(off.maxTickMs).toBe(Number.POSITIVE_INFINITY)
    expect(off.maxEventLoopLagMs).toBeUndefined()
    expect(off.heartbeatIntervalMs).toBe(defaultConfig.health.heartbeatIntervalMs)
    expect(off.unhealthyThreshold).toBe(defaultConfig.health.unhealthyThreshold)
    const on = runnerHealthPolicyOf({ ...defaultConfig.health, maxEventLoopLagMs: 100, maxCpu: 2, maxMemoryMb: 512 })
    expect(on.maxEventLoopLagMs).toBe(100)
    expect(on.maxCpu).toBe(2)
    expect(on.maxMemoryBytes).toBe(512 * 1024 ** 2)
  })

  it("fails a check over the lag limit; a NaN tick (runners have none) never fails", () => {
    const policy = runnerHealthPolicyOf({ ...defaultConfig.health, maxEventLoopLagMs: 100 })
    expect(Health.thresholdFailures(beat(20), policy)).toEqual([])
    expect(Health.thresholdFailures(beat(250.04), policy)).toEqual(["event loop lag p99 250 ms > 100 ms"])
    expect(Health.thresholdFailures(beat(250), runnerHealthPolicyOf(defaultConfig.health))).toEqual([])
    // Instances report no lag: the limit does not apply to them.
    expect(Health.thresholdFailures({ tickP99Ms: 1, players: 1, cpu: 0, memoryBytes: 0 }, policy)).toEqual([])
  })

  it("damps: unhealthy after unhealthy_threshold lagging checks, healthy again after healthy_threshold; missed beats fail", () => {
    const policy = {
      ...runnerHealthPolicyOf({ ...defaultConfig.health, maxEventLoopLagMs: 100 }),
      heartbeatIntervalMs: 1000,
      missedHeartbeats: 3,
      unhealthyThreshold: 2,
      healthyThreshold: 2
    }
    const state = Health.emptyHealthState()
    Health.heartbeat(state, R, beat(5), 0)
    expect(Health.evaluate(state, policy, 0)).toEqual([])
    Health.heartbeat(state, R, beat(5), 1000)
    expect(Health.evaluate(state, policy, 1000)).toEqual([{ target: R, from: "unknown", to: "healthy", reason: "passed 2 checks" }])
    Health.heartbeat(state, R, beat(300), 2000)
    expect(Health.evaluate(state, policy, 2000)).toEqual([])
    Health.heartbeat(state, R, beat(300), 3000)
    expect(Health.evaluate(state, policy, 3000)).toEqual([
      { target: R, from: "healthy", to: "unhealthy", reason: "event loop lag p99 300 ms > 100 ms for 2 checks" }
    ])
    Health.heartbeat(state, R, beat(5), 4000)
    expect(Health.evaluate(state, policy, 4000)).toEqual([])
    Health.heartbeat(state, R, beat(5), 5000)
    expect(Health.evaluate(state, policy, 5000)).toEqual([{ target: R, from: "unhealthy", to: "healthy", reason: "passed 2 checks" }])
    // Silent: missed 3 intervals, then 2 failed checks.
    expect(Health.evaluate(state, policy, 8000)).toEqual([])
    expect(Health.evaluate(state, policy, 9000)).toEqual([{ target: R, from: "healthy", to: "unhealthy", reason: "missed 4 heartbeats" }])
  })
})

describe("runner reports and listing", () => {
  it("makeReport: sorted roles, the sampler's figures, a finite lag, this process's start", () => {
    const report = makeReport(R, ["session", "gateway"], () => ({ cpu: 0.25, memoryBytes: 42 }), () => Number.NaN)
    expect(report).toEqual({
      runner: R,
      roles: ["gateway", "session"],
      cpu: 0.25,
      memoryBytes: 42,
      eventLoopLagP99Ms: 0,
      startedAt: Watcher.processStartedAt
    })
    expect(makeReport(R, [], () => ({ cpu: 0, memoryBytes: 0 }), () => 12.5).eventLoopLagP99Ms).toBe(12.5)
  })

  it("runnerInfoOf: address, roles, health, last beat and its figures, the last failure, draining", () => {
    const state = Health.emptyHealthState()
    Health.register(state, R, 0)
    expect(runnerInfoOf(Health.get(state, R)!, ["region"], false)).toEqual({
      runner: R,
      roles: ["region"],
      health: "unknown",
      lastHeartbeatAt: null
    })
    Health.heartbeat(state, R, beat(7, 0.5), 1234)
    const tracked = Health.get(state, R)!
    tracked.lastFailure = "missed 3 heartbeats"
    tracked.status = "unhealthy"
    expect(runnerInfoOf(tracked, ["region"], true)).toEqual({
      runner: R,
      roles: ["region"],
      health: "unhealthy",
      lastHeartbeatAt: 1234,
      cpu: 0.5,
      memoryBytes: 100 * 1024 ** 2,
      eventLoopLagP99Ms: 7,
      lastFailure: "missed 3 heartbeats",
      draining: true
    })
  })
})

const dirs: Array<string> = []
afterAll(() => {
  for (const dir of dirs) Fs.rmSync(dir, { recursive: true, force: true })
})
const sqlite = () => {
  const dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "tessera-runner-health-"))
  dirs.push(dataDir)
  return SchedulerStateRepository.layer.pipe(Layer.provideMerge(Database.layerSqlite({ dataDir })))
}

describe("a drain meant for one process", () => {
  it("parses startedAt", () => {
    expect(Watcher.parseDrainRequest(JSON.stringify({ by: "scheduler", at: 5, reason: "r", startedAt: 77 })))
      .toEqual({ by: "scheduler", at: 5, reason: "r", startedAt: 77 })
  })

  it.live("is dropped (key deleted, no drain) by a later process at the address, carried out by its own", () =>
    Effect.gen(function*() {
      const repo = yield* SchedulerStateRepository.SchedulerStateRepository
      const key = Watcher.runnerDrainKey(R)
      let drains = 0
      const drain = () => Effect.sync(() => void drains++)
      yield* repo.put(key, JSON.stringify({ by: "scheduler", at: 1, reason: "missed 3 heartbeats", startedAt: 1000 }))
      expect(yield* Watcher.checkOnce(R, drain, 2000)).toEqual(Option.none())
      expect(drains).toBe(0)
      expect(Option.isNone(yield* repo.get(key))).toBe(true)

      const request = { by: "scheduler", at: 1, reason: "missed 3 heartbeats", startedAt: 2000 }
      yield* repo.put(key, JSON.stringify(request))
      expect(yield* Watcher.checkOnce(R, drain, 2000)).toEqual(Option.some(request))
      expect(drains).toBe(1)
    }).pipe(Effect.provide(sqlite()), Effect.provide(Logger.minimumLogLevel(LogLevel.None))))
})
