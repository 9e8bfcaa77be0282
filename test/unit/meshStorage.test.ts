/**
 * The open-world repositories (mesh directory, world deltas, transfer log) on
 * both backends: a real SQLite file in a temp dir, and a throwaway database
 * on the local PostgreSQL server (127.0.0.1:5432, user postgres), dropped
 * after the run.
 */
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Logger, LogLevel, Option } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { afterAll, beforeAll } from "vitest"
import * as Metrics from "../../src/observability/Metrics.js"
import type { Box } from "../../src/region/mesh/MeshGeometry.js"
import * as Database from "../../src/storage/Database.js"
import * as MeshDirectoryRepository from "../../src/storage/MeshDirectoryRepository.js"
import { StorageError } from "../../src/storage/StorageError.js"
import * as TransferLog from "../../src/storage/TransferLog.js"
import * as WorldDeltaRepository from "../../src/storage/WorldDeltaRepository.js"
import { createDatabase } from "../support/Cluster.js"

const dirs: Array<string> = []
let postgres: ReturnType<typeof createDatabase> | undefined

beforeAll(() => {
  postgres = createDatabase()
})
afterAll(() => {
  postgres?.drop()
  for (const dir of dirs) Fs.rmSync(dir, { recursive: true, force: true })
})

type DatabaseLayer = Layer.Layer<SqlClient.SqlClient, StorageError>

interface Backend {
  readonly name: string
  /** A database for one test: every call of the returned function opens the same one. */
  readonly fresh: () => () => DatabaseLayer
}

const backends: ReadonlyArray<Backend> = [
  {
    name: "sqlite",
    fresh: () => {
      const dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "tessera-mesh-storage-"))
      dirs.push(dataDir)
      return () => Database.layerSqlite({ dataDir })
    }
  },
  {
    name: "postgres",
    // One database for the file; tests keep apart by using their own world ids.
    fresh: () => () => {
      if (postgres === undefined) throw new Error("PostgreSQL test database was not created")
      return Database.layerPostgres({ url: postgres.url })
    }
  }
]

const quiet = Effect.provide(Logger.minimumLogLevel(LogLevel.None))

let worldCount = 0
/** A world id no other test (or earlier run on the shared database) uses. */
const newWorld = () => `w${++worldCount}-${Math.random().toString(36).slice(2, 8)}.world`

const box = (minX: number, minY: number, minZ: number, maxX: number, maxY: number, maxZ: number): Box => ({
  minX,
  minY,
  minZ,
  maxX,
  maxY,
  maxZ
})

const delta = (key: string, x: number, value: string | null, at = 1000, y = 0, z = 0) => ({
  key,
  x,
  y,
  z,
  value,
  at
})

const transfer = (worldId: string, n: number, outcome: TransferLog.TransferOutcome = "ok"): TransferLog.TransferEntry => ({
  worldId,
  entityId: n,
  playerId: n % 2 === 0 ? `p${n}` : null,
  fromRegion: `${worldId}/0/0/0/0`,
  toRegion: `${worldId}/0/1/0/0`,
  startedAt: 10_000 + n,
  durationMs: 1.5 + n,
  outcome,
  reason: outcome === "ok" ? null : `reason ${n}`
})

describe.each(backends)("$name", (backend) => {
  const repositories = (database: DatabaseLayer) =>
    Layer.mergeAll(MeshDirectoryRepository.layer, WorldDeltaRepository.layer).pipe(Layer.provideMerge(database))

  describe("MeshDirectoryRepository", () => {
    it.live("stores a directory and only ever replaces it with a newer version", () =>
      Effect.gen(function*() {
        const repo = yield* MeshDirectoryRepository.MeshDirectoryRepository
        const world = newWorld()
        expect(yield* repo.get(world)).toEqual(Option.none())

        expect(yield* repo.put(world, 1, ["0/0/0/0", "0/1/0/0"])).toBe(true)
        expect(yield* repo.get(world)).toEqual(Option.some({ version: 1, leaves: ["0/0/0/0", "0/1/0/0"] }))

        // stale and equal versions are refused and change nothing
        expect(yield* repo.put(world, 1, ["stale"])).toBe(false)
        expect(yield* repo.put(world, 0, ["older"])).toBe(false)
        expect(yield* repo.get(world)).toEqual(Option.some({ version: 1, leaves: ["0/0/0/0", "0/1/0/0"] }))

        const split = ["0/1/0/0", ...Array.from({ length: 8 }, (_, i) => `1/${i & 1}/${(i >> 1) & 1}/${i >> 2}`)]
        expect(yield* repo.put(world, 2, split)).toBe(true)
        expect(yield* repo.get(world)).toEqual(Option.some({ version: 2, leaves: split }))

        // large versions survive the BIGINT round trip
        expect(yield* repo.put(world, 2 ** 40, [])).toBe(true)
        expect(yield* repo.get(world)).toEqual(Option.some({ version: 2 ** 40, leaves: [] }))

        // worlds are independent
        const other = newWorld()
        expect(yield* repo.put(other, 1, ["x"])).toBe(true)
        expect(Option.getOrThrow(yield* repo.get(world)).version).toBe(2 ** 40)
      }).pipe(Effect.provide(repositories(backend.fresh()())), quiet))

    it.live("concurrent writers: the highest version wins whatever the order", () =>
      Effect.gen(function*() {
        const repo = yield* MeshDirectoryRepository.MeshDirectoryRepository
        const world = newWorld()
        const versions = [7, 3, 12, 1, 9, 12, 5, 11, 2, 8]
        const results = yield* Effect.all(
          versions.map((v) => repo.put(world, v, [`v${v}`])),
          { concurrency: "unbounded" }
        )
        expect(yield* repo.get(world)).toEqual(Option.some({ version: 12, leaves: ["v12"] }))
        // exactly one of the two writers of version 12 won
        expect(results.filter((stored, i) => stored && versions[i] === 12)).toHaveLength(1)
      }).pipe(Effect.provide(repositories(backend.fresh()())), quiet))

    it.live("a corrupt stored row is a StorageError, not a defect", () =>
      Effect.gen(function*() {
        const repo = yield* MeshDirectoryRepository.MeshDirectoryRepository
        const sql = yield* SqlClient.SqlClient
        const world = newWorld()
        yield* sql`INSERT INTO mesh_directory (world_id, version, leaves, updated_at) VALUES (${world}, 1, '{"no":1}', 0)`
        const error = yield* Effect.flip(repo.get(world))
        expect(error).toBeInstanceOf(StorageError)
        expect(error.message).toContain("meshDirectory.get failed")
      }).pipe(Effect.provide(repositories(backend.fresh()())), quiet))
  })

  describe("WorldDeltaRepository", () => {
    it.live("numbers deltas per world, in order, across appends", () =>
      Effect.gen(function*() {
        const repo = yield* WorldDeltaRepository.WorldDeltaRepository
        const sql = yield* SqlClient.SqlClient
        const [a, b] = [newWorld(), newWorld()]
        const before = Metrics.worldDeltasTotal.value

        expect(yield* repo.append(a, "0/0/0/0", [])).toBe(0)
        expect(yield* repo.append(a, "0/0/0/0", [delta("k1", 1, "v1"), delta("k2", 2, "v2")])).toBe(2)
        expect(yield* repo.append(a, "0/1/0/0", [delta("k1", 3, "v1b")])).toBe(3)
        expect(yield* repo.append(b, "0/0/0/0", [delta("k1", 1, "other")])).toBe(1)
        expect(Metrics.worldDeltasTotal.value).toBe(before + 4)

        const rows = yield* sql<{ key: string; seq: number | string; region_key: string }>`
          SELECT key, seq, region_key FROM world_deltas WHERE world_id = ${a} ORDER BY seq`
        expect(rows.map((r) => [r.key, Number(r.seq), r.region_key])).toEqual([
          ["k1", 1, "0/0/0/0"],
          ["k2", 2, "0/0/0/0"],
          ["k1", 3, "0/1/0/0"]
        ])
      }).pipe(Effect.provide(repositories(backend.fresh()())), quiet))

    it.live("loadBox returns the latest value of each key inside the box", () =>
      Effect.gen(function*() {
        const repo = yield* WorldDeltaRepository.WorldDeltaRepository
        const world = newWorld()
        yield* repo.append(world, "r", [
          delta("door", 10, "closed", 1),
          delta("chest", 20, "full", 2),
          delta("torch", 30, "lit", 3),
          delta("crate", 40, "here", 4),
          delta("far", 500, "away", 5)
        ])
        yield* repo.append(world, "r", [
          delta("door", 10, "open", 6), // changed
          delta("chest", 20, null, 7), // removed
          delta("crate", 600, "moved", 8) // moved out of the box
        ])
        yield* repo.append(world, "r", [delta("torch", 30, "out", 9), delta("torch", 30, "relit", 10)])

        const inside = yield* repo.loadBox(world, box(0, -10, -10, 100, 10, 10))
        expect(inside.map((d) => [d.key, d.value])).toEqual([
          ["door", "open"],
          ["torch", "relit"]
        ])
        expect(inside[0]).toEqual({ key: "door", x: 10, y: 0, z: 0, value: "open", seq: 6, at: 6, regionKey: "r" })

        const outside = yield* repo.loadBox(world, box(100, -10, -10, 1000, 10, 10))
        expect(outside.map((d) => [d.key, d.value])).toEqual([
          ["far", "away"],
          ["crate", "moved"]
        ])
        expect(yield* repo.loadBox(newWorld(), box(0, -10, -10, 1000, 10, 10))).toEqual([])
      }).pipe(Effect.provide(repositories(backend.fresh()())), quiet))

    it.live("boxes are half-open, closed on the world's max faces: each point loads exactly once", () =>
      Effect.gen(function*() {
        const repo = yield* WorldDeltaRepository.WorldDeltaRepository
        const world = newWorld()
        const worldBox = box(-100, -100, -100, 100, 100, 100)
        // two leaves side by side along x, splitting the world at x = 0
        const west = box(-100, -100, -100, 0, 100, 100)
        const east = box(0, -100, -100, 100, 100, 100)
        const points: Array<[string, number, number, number]> = [
          ["min-corner", -100, -100, -100],
          ["on-split", 0, 5, 5],
          ["max-x-face", 100, 0, 0],
          ["max-corner", 100, 100, 100],
          ["fraction", -0.000001, 99.999999, 0]
        ]
        yield* repo.append(world, "r", points.map(([key, x, y, z]) => delta(key, x, key, 1, y, z)))

        const keys = (deltas: ReadonlyArray<WorldDeltaRepository.WorldDelta>) => deltas.map((d) => d.key).sort()
        const westKeys = keys(yield* repo.loadBox(world, west, worldBox))
        const eastKeys = keys(yield* repo.loadBox(world, east, worldBox))
        expect(westKeys).toEqual(["fraction", "min-corner"])
        expect(eastKeys).toEqual(["max-corner", "max-x-face", "on-split"])
        // without the world box, max faces are open
        expect(keys(yield* repo.loadBox(world, east))).toEqual(["on-split"])
      }).pipe(Effect.provide(repositories(backend.fresh()())), quiet))

    it.live("a batch is one transaction: a bad delta leaves nothing written and no seq used", () =>
      Effect.gen(function*() {
        const repo = yield* WorldDeltaRepository.WorldDeltaRepository
        const world = newWorld()
        const bad = { ...delta("bad", 1, "x"), key: null as unknown as string } // NOT NULL violation
        const error = yield* Effect.flip(repo.append(world, "r", [delta("good", 1, "x"), bad]))
        expect(error).toBeInstanceOf(StorageError)
        expect(error.message).toContain("worldDeltas.append failed")
        expect(yield* repo.loadBox(world, box(-10, -10, -10, 10, 10, 10))).toEqual([])
        expect(yield* repo.append(world, "r", [delta("good", 1, "x")])).toBe(1)
      }).pipe(Effect.provide(repositories(backend.fresh()())), quiet))

    it.live("large batches and concurrent writers get unique, gap-free seqs", () =>
      Effect.gen(function*() {
        const repo = yield* WorldDeltaRepository.WorldDeltaRepository
        const sql = yield* SqlClient.SqlClient
        const world = newWorld()
        expect(
          yield* repo.append(world, "big", Array.from({ length: 1234 }, (_, i) => delta(`k${i}`, i % 50, `v${i}`)))
        ).toBe(1234)
        // 8 regions of one world appending at once, 5 batches of 20 each
        yield* Effect.all(
          Array.from({ length: 8 }, (_, r) =>
            Effect.forEach(
              Array.from({ length: 5 }, (_, b) => b),
              (b) => repo.append(world, `r${r}`, Array.from({ length: 20 }, (_, i) => delta(`r${r}-${b}-${i}`, r, "v"))),
              { discard: true }
            )),
          { concurrency: "unbounded" }
        )
        const [stats] = yield* sql<{ n: number | string; distinct_seqs: number | string; lo: number | string; hi: number | string }>`
          SELECT COUNT(*) AS n, COUNT(DISTINCT seq) AS distinct_seqs, MIN(seq) AS lo, MAX(seq) AS hi
          FROM world_deltas WHERE world_id = ${world}`
        const total = 1234 + 8 * 5 * 20
        expect([Number(stats!.n), Number(stats!.distinct_seqs), Number(stats!.lo), Number(stats!.hi)]).toEqual([
          total,
          total,
          1,
          total
        ])
        // within one batch, seqs follow the batch order
        const batch = yield* sql<{ key: string }>`
          SELECT key FROM world_deltas WHERE world_id = ${world} AND region_key = 'r3' ORDER BY seq`
        expect(batch.slice(0, 20).map((r) => r.key)).toEqual(Array.from({ length: 20 }, (_, i) => `r3-0-${i}`))
      }).pipe(Effect.provide(repositories(backend.fresh()())), quiet))
  })

  describe("TransferLog", () => {
    const logLayer = (database: DatabaseLayer, options: { intervalMs: number; maxBuffered?: number }) =>
      TransferLog.layer(options).pipe(Layer.provideMerge(database))

    it.live("records cheaply, counts metrics, writes in batches and lists the newest first", () =>
      Effect.gen(function*() {
        const log = yield* TransferLog.TransferLog
        const [world, other] = [newWorld(), newWorld()]
        const total = Metrics.authorityTransferTotal.value
        const failures = Metrics.authorityTransferFailuresTotal.value
        const durations = Metrics.authorityTransferDurationSeconds.count

        log.record(transfer(world, 1))
        log.record(transfer(world, 2, "failed"))
        log.record(transfer(world, 3, "aborted"))
        log.record(transfer(other, 4))
        expect(log.pending()).toBe(4)
        expect(Metrics.authorityTransferTotal.value).toBe(total + 4)
        expect(Metrics.authorityTransferFailuresTotal.value).toBe(failures + 2)
        expect(Metrics.authorityTransferDurationSeconds.count).toBe(durations + 2)
        expect(yield* log.recent(world, 10)).toEqual([]) // not written yet

        yield* log.flush
        expect(log.pending()).toBe(0)
        const recent = yield* log.recent(world, 10)
        expect(recent.map((t) => t.entityId)).toEqual([3, 2, 1])
        const { id, ...entry } = recent[1]!
        expect(entry).toEqual(transfer(world, 2, "failed"))
        expect(typeof id).toBe("number")
        expect(recent[2]).toMatchObject({ playerId: null, outcome: "ok", reason: null, durationMs: 2.5 })
        expect((yield* log.recent(world, 2)).map((t) => t.entityId)).toEqual([3, 2])
        expect(yield* log.recent(world, 0)).toEqual([])
        expect((yield* log.recent(other, 10)).map((t) => t.entityId)).toEqual([4])
      }).pipe(Effect.provide(logLayer(backend.fresh()(), { intervalMs: 3_600_000 })), quiet))

    it.live("flushes on its interval", () =>
      Effect.gen(function*() {
        const log = yield* TransferLog.TransferLog
        const world = newWorld()
        log.record(transfer(world, 1))
        for (let i = 0; i < 100 && log.pending() > 0; i++) yield* Effect.sleep("20 millis")
        expect(log.pending()).toBe(0)
        expect((yield* log.recent(world, 10)).map((t) => t.entityId)).toEqual([1])
      }).pipe(Effect.provide(logLayer(backend.fresh()(), { intervalMs: 25 })), quiet))

    it.live("flushes in its finalizer when the scope closes", () =>
      Effect.gen(function*() {
        const database = backend.fresh()
        const world = newWorld()
        yield* Effect.gen(function*() {
          const log = yield* TransferLog.TransferLog
          for (let n = 1; n <= 3; n++) log.record(transfer(world, n))
        }).pipe(Effect.provide(logLayer(database(), { intervalMs: 3_600_000 })))

        const stored = yield* Effect.flatMap(TransferLog.TransferLog, (log) => log.recent(world, 10)).pipe(
          Effect.provide(logLayer(database(), { intervalMs: 3_600_000 }))
        )
        expect(stored.map((t) => t.entityId)).toEqual([3, 2, 1])
      }).pipe(quiet))

    it.live("keeps entries while storage is down, dropping the oldest past its bound", () =>
      Effect.gen(function*() {
        const log = yield* TransferLog.TransferLog
        const sql = yield* SqlClient.SqlClient
        const world = newWorld()
        const dropped = Metrics.transferLogDroppedTotal.value
        const errors = Metrics.storageFlushErrorsTotal.value
        // Storage "down": every insert fails. (On SQLite by a trigger, not by renaming the
        // table: @effect/sql-sqlite-node caches a failed prepare for minutes.)
        yield* sql.onDialectOrElse({
          sqlite: () =>
            sql`CREATE TRIGGER transfers_down BEFORE INSERT ON authority_transfers BEGIN SELECT RAISE(ABORT, 'down'); END`,
          orElse: () => sql`ALTER TABLE authority_transfers RENAME TO authority_transfers_away`
        })
        const restore = sql.onDialectOrElse({
          sqlite: () => sql`DROP TRIGGER transfers_down`,
          orElse: () => sql`ALTER TABLE authority_transfers_away RENAME TO authority_transfers`
        })
        yield* Effect.gen(function*() {
          for (let n = 1; n <= 3; n++) log.record(transfer(world, n))
          yield* log.flush // fails: kept
          expect(log.pending()).toBe(3)
          expect(Metrics.storageFlushErrorsTotal.value).toBe(errors + 1)
          expect(Metrics.transferLogDroppedTotal.value).toBe(dropped)

          for (let n = 4; n <= 8; n++) log.record(transfer(world, n))
          expect(log.pending()).toBe(5)
          expect(Metrics.transferLogDroppedTotal.value).toBe(dropped + 3)
          yield* log.flush // fails again: still the newest 5
          expect(log.pending()).toBe(5)
        }).pipe(Effect.ensuring(Effect.orDie(restore)))

        yield* log.flush
        expect(log.pending()).toBe(0)
        expect((yield* log.recent(world, 100)).map((t) => t.entityId)).toEqual([8, 7, 6, 5, 4])
      }).pipe(Effect.provide(logLayer(backend.fresh()(), { intervalMs: 3_600_000, maxBuffered: 5 })), quiet))
  })
})
