/**
 * The runner's side of an admin drain (RunnerDrainWatcher): its key is
 * polled, taken (deleted) once, and only then the shutdown runs; storage
 * errors do not stop the watcher. On a real SQLite database; the shutdown
 * is a stand-in (the real one is a SIGTERM, see runnerDrain.test.ts).
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Layer, Logger, LogLevel, Option, Ref, TestClock } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { afterAll } from "vitest"
import * as Watcher from "../../src/cluster/RunnerDrainWatcher.js"
import * as Database from "../../src/storage/Database.js"
import * as SchedulerStateRepository from "../../src/storage/SchedulerStateRepository.js"
import { StorageError } from "../../src/storage/StorageError.js"

const dirs: Array<string> = []
afterAll(() => {
  for (const dir of dirs) Fs.rmSync(dir, { recursive: true, force: true })
})

const sqlite = () => {
  const dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "tessera-drain-watcher-"))
  dirs.push(dataDir)
  return SchedulerStateRepository.layer.pipe(Layer.provideMerge(Database.layerSqlite({ dataDir })))
}
const quiet = Effect.provide(Logger.minimumLogLevel(LogLevel.None))
const ME = "10.0.0.5:34431"

describe("RunnerDrainWatcher", () => {
  it("parses drain requests, tolerating junk", () => {
    expect(Watcher.runnerDrainKey(ME)).toBe("runner.drain.10.0.0.5:34431")
    expect(Watcher.parseDrainRequest(JSON.stringify({ by: "admin:abc", at: 5, reason: "kernel update" })))
      .toEqual({ by: "admin:abc", at: 5, reason: "kernel update" })
    expect(Watcher.parseDrainRequest("not json")).toEqual({ by: "unknown", at: 0, reason: "" })
    expect(Watcher.parseDrainRequest("null")).toEqual({ by: "unknown", at: 0, reason: "" })
  })

  it.live("checkOnce: nothing without its own key; with it, deletes the key and then drains, once", () =>
    Effect.gen(function*() {
      const repo = yield* SchedulerStateRepository.SchedulerStateRepository
      const drained: Array<{ request: Watcher.RunnerDrainRequest; keyLeft: boolean }> = []
      const drain = (request: Watcher.RunnerDrainRequest) =>
        Effect.map(repo.get(Watcher.runnerDrainKey(ME)), (entry) => void drained.push({ request, keyLeft: Option.isSome(entry) }))
          .pipe(Effect.orDie)

      expect(yield* Watcher.checkOnce(ME, drain)).toEqual(Option.none())
      // Another runner's drain is not ours.
      yield* repo.put(Watcher.runnerDrainKey("10.0.0.6:34431"), JSON.stringify({ by: "admin:x", at: 1, reason: "r" }))
      expect(yield* Watcher.checkOnce(ME, drain)).toEqual(Option.none())

      const request = { by: "admin:abc", at: 1_700_000_000_000, reason: "kernel update" }
      yield* repo.put(Watcher.runnerDrainKey(ME), JSON.stringify(request))
      expect(yield* Watcher.checkOnce(ME, drain)).toEqual(Option.some(request))
      // The key was gone before the shutdown started: a restarted runner rejoins normally.
      expect(drained).toEqual([{ request, keyLeft: false }])
      expect(yield* Watcher.checkOnce(ME, drain)).toEqual(Option.none())
      expect(drained).toHaveLength(1)
      expect(Option.isSome(yield* repo.get(Watcher.runnerDrainKey("10.0.0.6:34431")))).toBe(true)
    }).pipe(Effect.provide(sqlite()), quiet))

  it.effect("watch: polls every interval, survives storage errors, stops after draining", () =>
    Effect.gen(function*() {
      const store = new Map<string, string>()
      const failing = yield* Ref.make(true)
      const reads = yield* Ref.make(0)
      const fail = new StorageError({ message: "schedulerState.get failed: down" })
      const fake = SchedulerStateRepository.SchedulerStateRepository.of({
        get: (key) =>
          Effect.gen(function*() {
            yield* Ref.update(reads, (n) => n + 1)
            if (yield* Ref.get(failing)) return yield* Effect.fail(fail)
            const value = store.get(key)
            return value === undefined ? Option.none() : Option.some({ value, updatedAt: 0 })
          }),
        put: (key, value) => Effect.sync(() => void store.set(key, value)),
        remove: (key) => Effect.sync(() => store.delete(key))
      })
      const drains = yield* Ref.make(0)
      const fiber = yield* Watcher.watch(ME, () => Ref.update(drains, (n) => n + 1), Duration.seconds(1)).pipe(
        Effect.provideService(SchedulerStateRepository.SchedulerStateRepository, fake),
        Effect.fork
      )
      yield* TestClock.adjust(Duration.seconds(3))
      expect(yield* Ref.get(reads)).toBe(4) // at 0, 1, 2, 3 s, each failing, the watcher still going
      yield* Ref.set(failing, false)
      yield* TestClock.adjust(Duration.seconds(2))
      expect(yield* Ref.get(drains)).toBe(0)
      store.set(Watcher.runnerDrainKey(ME), JSON.stringify({ by: "admin:abc", at: 1, reason: "r" }))
      yield* TestClock.adjust(Duration.seconds(1))
      expect(yield* Ref.get(drains)).toBe(1)
      expect(store.size).toBe(0)
      // Done: the watcher stopped (the process is on its way out).
      expect(Option.isSome(yield* Fiber.poll(fiber))).toBe(true)
    }).pipe(quiet))
})
