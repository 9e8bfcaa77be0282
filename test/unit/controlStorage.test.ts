/**
 * The control plane's repositories (audit log, scheduler state) on both
 * backends: a real SQLite file in a temp dir per test, and a throwaway
 * database per test on the local PostgreSQL server (127.0.0.1:5432, user
 * postgres), all dropped after the run. (Per test, not per file as in
 * meshStorage.test.ts: the audit log is listed as a whole, so tests cannot
 * keep apart by ids.)
 */
import type { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Logger, LogLevel, Option } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { afterAll } from "vitest"
import * as AuditLogRepository from "../../src/storage/AuditLogRepository.js"
import * as Database from "../../src/storage/Database.js"
import * as SchedulerStateRepository from "../../src/storage/SchedulerStateRepository.js"
import { StorageError } from "../../src/storage/StorageError.js"
import { createDatabase } from "../support/Cluster.js"

const dirs: Array<string> = []
const databases: Array<ReturnType<typeof createDatabase>> = []

afterAll(() => {
  for (const database of databases) database.drop()
  for (const dir of dirs) Fs.rmSync(dir, { recursive: true, force: true })
})

type DatabaseLayer = Layer.Layer<SqlClient.SqlClient, StorageError>

interface Backend {
  readonly name: string
  /** A new empty database: every call of the returned function opens the same one. */
  readonly fresh: () => () => DatabaseLayer
}

const backends: ReadonlyArray<Backend> = [
  {
    name: "sqlite",
    fresh: () => {
      const dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "tessera-control-storage-"))
      dirs.push(dataDir)
      return () => Database.layerSqlite({ dataDir })
    }
  },
  {
    name: "postgres",
    fresh: () => {
      const database = createDatabase()
      databases.push(database)
      return () => Database.layerPostgres({ url: database.url })
    }
  }
]

const quiet = Effect.provide(Logger.minimumLogLevel(LogLevel.None))

const entry = (n: number, target: string | null = `t${n}`): AuditLogRepository.AuditEntry => ({
  at: 1_700_000_000_000 + n,
  actor: n % 2 === 0 ? "scheduler" : `admin:key${n}`,
  action: n % 3 === 0 ? "ScalingDecision" : "ServerSpawned",
  target,
  detail: JSON.stringify({ n, reason: `because ${n}` })
})

describe.each(backends)("$name", (backend) => {
  const repositories = (database: DatabaseLayer) =>
    Layer.mergeAll(AuditLogRepository.layer, SchedulerStateRepository.layer).pipe(Layer.provideMerge(database))

  describe("AuditLogRepository", () => {
    it.live("appends batches and lists newest first, paging back by id", () =>
      Effect.gen(function*() {
        const repo = yield* AuditLogRepository.AuditLogRepository
        expect(yield* repo.list(10)).toEqual([])
        yield* repo.append([])
        yield* repo.append([entry(1), entry(2), entry(3, null)])
        yield* repo.append([entry(4), entry(5)])

        const all = yield* repo.list(10)
        expect(all.map((e) => JSON.parse(e.detail).n)).toEqual([5, 4, 3, 2, 1])
        const { id, ...first } = all[4]!
        expect(first).toEqual(entry(1))
        expect(typeof id).toBe("number")
        expect(all[2]).toMatchObject({ target: null, actor: "admin:key3", action: "ScalingDecision" })
        // ids increase with insertion order
        const ids = all.map((e) => e.id)
        expect([...ids].sort((a, b) => b - a)).toEqual(ids)
        expect(new Set(ids).size).toBe(5)

        const page1 = yield* repo.list(2)
        expect(page1.map((e) => e.id)).toEqual(ids.slice(0, 2))
        const page2 = yield* repo.list(2, page1[1]!.id)
        expect(page2.map((e) => e.id)).toEqual(ids.slice(2, 4))
        const page3 = yield* repo.list(2, page2[1]!.id)
        expect(page3.map((e) => e.id)).toEqual(ids.slice(4))
        expect(yield* repo.list(2, page3[0]!.id)).toEqual([])
        expect(yield* repo.list(0)).toEqual([])
        expect(yield* repo.list(-3)).toEqual([])
      }).pipe(Effect.provide(repositories(backend.fresh()())), quiet))

    it.live("large batches keep their order across insert chunks", () =>
      Effect.gen(function*() {
        const repo = yield* AuditLogRepository.AuditLogRepository
        yield* repo.append(Array.from({ length: 1234 }, (_, i) => entry(i)))
        const newest = yield* repo.list(2000)
        expect(newest).toHaveLength(1234)
        expect(newest.map((e) => e.at)).toEqual(Array.from({ length: 1234 }, (_, i) => entry(1233 - i).at))
      }).pipe(Effect.provide(repositories(backend.fresh()())), quiet))

    it.live("a batch is one transaction: a bad entry leaves nothing written", () =>
      Effect.gen(function*() {
        const repo = yield* AuditLogRepository.AuditLogRepository
        const bad = { ...entry(2), actor: null as unknown as string } // NOT NULL violation
        const error = yield* Effect.flip(repo.append([entry(1), bad]))
        expect(error).toBeInstanceOf(StorageError)
        expect(error.message).toContain("auditLog.append failed")
        expect(yield* repo.list(10)).toEqual([])
      }).pipe(Effect.provide(repositories(backend.fresh()())), quiet))
  })

  describe("SchedulerStateRepository", () => {
    it.live("puts (insert or replace) and gets values per key, stamped with the time", () =>
      Effect.gen(function*() {
        const repo = yield* SchedulerStateRepository.SchedulerStateRepository
        expect(yield* repo.get("registry")).toEqual(Option.none())

        const before = Date.now()
        yield* repo.put("registry", JSON.stringify({ instances: ["arena-1"] }))
        const stored = Option.getOrThrow(yield* repo.get("registry"))
        expect(JSON.parse(stored.value)).toEqual({ instances: ["arena-1"] })
        expect(stored.updatedAt).toBeGreaterThanOrEqual(before)
        expect(stored.updatedAt).toBeLessThanOrEqual(Date.now())

        yield* repo.put("registry", JSON.stringify({ instances: [] }))
        yield* repo.put("scaling:arena", "{\"lastScaleUp\":1700000000000}")
        expect(Option.map(yield* repo.get("registry"), (e) => e.value)).toEqual(Option.some("{\"instances\":[]}"))
        expect(Option.map(yield* repo.get("scaling:arena"), (e) => e.value)).toEqual(
          Option.some("{\"lastScaleUp\":1700000000000}")
        )
        expect(yield* repo.get("other")).toEqual(Option.none())
      }).pipe(Effect.provide(repositories(backend.fresh()())), quiet))

    it.live("concurrent puts of one key leave exactly one of the values", () =>
      Effect.gen(function*() {
        const repo = yield* SchedulerStateRepository.SchedulerStateRepository
        const values = Array.from({ length: 10 }, (_, i) => JSON.stringify({ writer: i }))
        yield* Effect.all(values.map((v) => repo.put("leader", v)), { concurrency: "unbounded" })
        const stored = Option.getOrThrow(yield* repo.get("leader"))
        expect(values).toContain(stored.value)
      }).pipe(Effect.provide(repositories(backend.fresh()())), quiet))

    it.live("remove deletes a key and says whether it was there; of concurrent removes exactly one sees it", () =>
      Effect.gen(function*() {
        const repo = yield* SchedulerStateRepository.SchedulerStateRepository
        expect(yield* repo.remove("runner.drain.127.0.0.1:1")).toBe(false)
        yield* repo.put("runner.drain.127.0.0.1:1", "{}")
        yield* repo.put("keep", "1")
        expect(yield* repo.remove("runner.drain.127.0.0.1:1")).toBe(true)
        expect(yield* repo.get("runner.drain.127.0.0.1:1")).toEqual(Option.none())
        expect(Option.isSome(yield* repo.get("keep"))).toBe(true)
        yield* repo.put("once", "{}")
        const removed = yield* Effect.all(Array.from({ length: 5 }, () => repo.remove("once")), { concurrency: "unbounded" })
        expect(removed.filter(Boolean)).toHaveLength(1)
      }).pipe(Effect.provide(repositories(backend.fresh()())), quiet))

    it.live("state survives reopening the database (failover to another runner)", () =>
      Effect.gen(function*() {
        const database = backend.fresh()
        yield* Effect.flatMap(SchedulerStateRepository.SchedulerStateRepository, (repo) => repo.put("k", "[1,2,3]")).pipe(
          Effect.provide(repositories(database()))
        )
        const stored = yield* Effect.flatMap(SchedulerStateRepository.SchedulerStateRepository, (repo) => repo.get("k"))
          .pipe(Effect.provide(repositories(database())))
        expect(Option.map(stored, (e) => e.value)).toEqual(Option.some("[1,2,3]"))
      }).pipe(quiet))
  })
})
