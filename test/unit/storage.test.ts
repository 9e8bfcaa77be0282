import { SqlClient } from "@effect/sql"
import { assert, describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Logger, LogLevel, Option, TestClock } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { afterAll } from "vitest"
import * as Metrics from "../../src/observability/Metrics.js"
import * as ChatRepository from "../../src/storage/ChatRepository.js"
import * as Database from "../../src/storage/Database.js"
import * as PlayerRepository from "../../src/storage/PlayerRepository.js"
import type { PlayerStateRow } from "../../src/storage/PlayerRepository.js"
import * as PlayerStateWriter from "../../src/storage/PlayerStateWriter.js"
import { StorageError } from "../../src/storage/StorageError.js"

const dirs: Array<string> = []
const tempDir = (): string => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "tessera-storage-"))
  dirs.push(dir)
  return dir
}
afterAll(() => {
  for (const dir of dirs) Fs.rmSync(dir, { recursive: true, force: true })
})

/** Database + repositories on `dataDir`, as one layer. */
const storage = (dataDir: string) =>
  Layer.mergeAll(PlayerRepository.layer, ChatRepository.layer).pipe(
    Layer.provideMerge(Database.layerSqlite({ dataDir }))
  )

const quiet = Effect.provide(Logger.minimumLogLevel(LogLevel.None))

const row = (playerId: string, x: number, at = 1000): PlayerStateRow => ({
  playerId,
  experienceId: "exp-1",
  worldId: "world-1",
  x,
  y: x + 1,
  z: x + 2,
  entityId: 7,
  lastSeq: 42,
  at
})

describe("Database", () => {
  it.effect("creates the data dir, uses WAL and applies migrations idempotently", () =>
    Effect.gen(function*() {
      const dataDir = Path.join(tempDir(), "nested", "data")
      const open = Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const migrations = yield* sql<{ migration_id: number; name: string }>`
          SELECT migration_id, name FROM effect_sql_migrations ORDER BY migration_id`
        const tables = yield* sql<{ name: string }>`
          SELECT name FROM sqlite_master WHERE type IN ('table', 'index') AND name NOT LIKE 'sqlite_%' ORDER BY name`
        const [mode] = yield* sql<{ journal_mode: string }>`PRAGMA journal_mode`
        const [sync] = yield* sql<{ synchronous: number }>`PRAGMA synchronous`
        return { migrations, tables: tables.map((t) => t.name), mode: mode!.journal_mode, sync: sync!.synchronous }
      }).pipe(Effect.provide(Database.layerSqlite({ dataDir })))

      const first = yield* open
      const second = yield* open
      expect(Fs.existsSync(Path.join(dataDir, "tessera.db"))).toBe(true)
      expect(first.migrations).toEqual([
        { migration_id: 1, name: "initial" },
        { migration_id: 2, name: "region_membership" },
        { migration_id: 3, name: "world_mesh" },
        { migration_id: 4, name: "control_plane" }
      ])
      expect(second).toEqual(first)
      expect(first.tables).toEqual(
        expect.arrayContaining([
          "chat_messages",
          "chat_messages_channel_key_id",
          "effect_sql_migrations",
          "players",
          "players_region_members",
          "mesh_directory",
          "authority_transfers",
          "authority_transfers_world_started",
          "world_deltas",
          "world_deltas_world_xz",
          "world_delta_seqs",
          "audit_log",
          "audit_log_at",
          "scheduler_state"
        ])
      )
      expect(first.mode).toBe("wal")
      expect(first.sync).toBe(1) // NORMAL
    }).pipe(quiet))

  it.effect("fails with a StorageError when the data dir cannot be created", () =>
    Effect.gen(function*() {
      const file = Path.join(tempDir(), "a-file")
      Fs.writeFileSync(file, "")
      const error = yield* Effect.flip(Layer.build(Database.layerSqlite({ dataDir: Path.join(file, "data") })).pipe(Effect.scoped))
      expect(error).toBeInstanceOf(StorageError)
      expect(error.message).toContain("creating data directory")
    }))
})

describe("PlayerRepository", () => {
  it.effect("finds or creates guests by device id", () =>
    Effect.gen(function*() {
      const repo = yield* PlayerRepository.PlayerRepository
      const a = yield* repo.findOrCreateGuest("device-a", undefined)
      expect(a.name).toBe(`guest-${a.id.slice(0, 6)}`)
      expect(a.deviceId).toBe("device-a")
      expect(a.position).toBeNull()
      expect(a.lastWorldId).toBeNull()

      const again = yield* repo.findOrCreateGuest("device-a", undefined)
      expect(again).toEqual(a)

      const renamed = yield* repo.findOrCreateGuest("device-a", "  Alice ")
      expect(renamed).toEqual({ ...a, name: "Alice" })
      expect(yield* repo.get(a.id)).toEqual(Option.some(renamed))

      const b = yield* repo.findOrCreateGuest("device-b", "Bob")
      expect(b.id).not.toBe(a.id)
      expect(b.name).toBe("Bob")

      const anon1 = yield* repo.findOrCreateGuest(undefined, undefined)
      const anon2 = yield* repo.findOrCreateGuest(undefined, undefined)
      expect(anon1.id).not.toBe(anon2.id)
      expect(anon1.deviceId).toBeNull()

      const [c1, c2] = yield* Effect.all(
        [repo.findOrCreateGuest("device-c", undefined), repo.findOrCreateGuest("device-c", undefined)],
        { concurrency: 2 }
      )
      expect(c1.id).toBe(c2.id)

      expect(yield* repo.get("nobody")).toEqual(Option.none())
    }).pipe(Effect.provide(storage(tempDir())), quiet))

  it.effect("saves a batch of states and reads them back from a re-opened database", () =>
    Effect.gen(function*() {
      const dataDir = tempDir()
      const [p1, p2] = yield* Effect.gen(function*() {
        const repo = yield* PlayerRepository.PlayerRepository
        const p1 = yield* repo.findOrCreateGuest("d1", undefined)
        const p2 = yield* repo.findOrCreateGuest("d2", undefined)
        yield* repo.saveStates([row(p1.id, 1), row(p2.id, 10), row("unknown-player", 5)])
        yield* repo.saveStates([])
        return [p1, p2] as const
      }).pipe(Effect.provide(storage(dataDir)))

      yield* Effect.gen(function*() {
        const repo = yield* PlayerRepository.PlayerRepository
        const r1 = Option.getOrThrow(yield* repo.get(p1.id))
        const r2 = Option.getOrThrow(yield* repo.get(p2.id))
        expect(r1).toEqual({
          ...p1,
          lastExperienceId: "exp-1",
          lastWorldId: "world-1",
          position: { x: 1, y: 2, z: 3 }
        })
        expect(r2.position).toEqual({ x: 10, y: 11, z: 12 })
      }).pipe(Effect.provide(storage(dataDir)))
    }).pipe(quiet))

  it.effect("lists a region's stored members, and forgets a player that left", () =>
    Effect.gen(function*() {
      const repo = yield* PlayerRepository.PlayerRepository
      const a = yield* repo.findOrCreateGuest("member-a", undefined)
      const b = yield* repo.findOrCreateGuest("member-b", undefined)
      const c = yield* repo.findOrCreateGuest("member-c", undefined)
      yield* repo.saveStates([
        { ...row(a.id, 1), entityId: 3, lastSeq: 17 },
        { ...row(b.id, 2), entityId: 4, lastSeq: 0 },
        { ...row(c.id, 3), worldId: "other-world", entityId: 1 }
      ])
      yield* repo.saveStates([{ ...row(b.id, 5), entityId: null }]) // b left the region
      const members = yield* repo.regionMembers("world-1")
      expect(members).toEqual([{ playerId: a.id, entityId: 3, x: 1, y: 2, z: 3, lastSeq: 17 }])
      expect(yield* repo.regionMembers("nowhere")).toEqual([])
    }).pipe(Effect.provide(storage(tempDir())), quiet))

  it.effect("ignores a row older than the stored one (a handoff's source flushing after its destination)", () =>
    Effect.gen(function*() {
      const repo = yield* PlayerRepository.PlayerRepository
      const p = yield* repo.findOrCreateGuest("late-flush", undefined)
      yield* repo.saveStates([{ ...row(p.id, 20, 2000), worldId: "region-b", entityId: 9 }]) // the destination's row
      yield* repo.saveStates([{ ...row(p.id, 10, 1500), worldId: "region-a", entityId: 9 }]) // the source's, late
      expect(Option.getOrThrow(yield* repo.get(p.id)).lastWorldId).toBe("region-b")
      expect(yield* repo.regionMembers("region-a")).toEqual([])
      expect((yield* repo.regionMembers("region-b")).map((m) => m.x)).toEqual([20])
    }).pipe(Effect.provide(storage(tempDir())), quiet))

  it.effect("writes a batch in one transaction: a failing row leaves nothing written", () =>
    Effect.gen(function*() {
      const repo = yield* PlayerRepository.PlayerRepository
      const p = yield* repo.findOrCreateGuest("d1", undefined)
      const bad = { ...row(p.id, 2), x: Symbol("not bindable") as unknown as number }
      const error = yield* Effect.flip(repo.saveStates([row(p.id, 1), bad]))
      expect(error).toBeInstanceOf(StorageError)
      expect(error.message).toContain("players.saveStates failed")
      expect(Option.getOrThrow(yield* repo.get(p.id)).position).toBeNull()
    }).pipe(Effect.provide(storage(tempDir())), quiet))
})

describe("ChatRepository", () => {
  it.effect("returns the newest `limit` messages of a channel, oldest first", () =>
    Effect.gen(function*() {
      const chat = yield* ChatRepository.ChatRepository
      for (let i = 1; i <= 5; i++) {
        yield* chat.append({
          channelKey: "world:w1",
          fromPlayerId: "p1",
          fromName: "Alice",
          toPlayerId: null,
          text: `hello ${i}`,
          sentAt: 1000 + i
        })
      }
      yield* chat.append({
        channelKey: "world:w2",
        fromPlayerId: "p2",
        fromName: "Bob",
        toPlayerId: "p1",
        text: "psst",
        sentAt: 2000
      })

      const last3 = yield* chat.history("world:w1", 3)
      expect(last3.map((m) => m.text)).toEqual(["hello 3", "hello 4", "hello 5"])
      expect(last3[0]).toMatchObject({
        channelKey: "world:w1",
        fromPlayerId: "p1",
        fromName: "Alice",
        toPlayerId: null,
        sentAt: 1003
      })
      expect(last3[0]!.id).toBeLessThan(last3[1]!.id)

      expect((yield* chat.history("world:w1", 100)).map((m) => m.text)).toEqual(
        ["hello 1", "hello 2", "hello 3", "hello 4", "hello 5"]
      )
      expect(yield* chat.history("world:w2", 10)).toMatchObject([{ text: "psst", toPlayerId: "p1" }])
      expect(yield* chat.history("world:w1", 0)).toEqual([])
      expect(yield* chat.history("nowhere", 10)).toEqual([])
    }).pipe(Effect.provide(storage(tempDir())), quiet))
})

/** A PlayerRepository whose saveStates is scripted; records every batch. */
const fakeRepo = (saveStates: (rows: ReadonlyArray<PlayerStateRow>, call: number) => Effect.Effect<void, StorageError>) => {
  const batches: Array<ReadonlyArray<PlayerStateRow>> = []
  const layer = Layer.succeed(
    PlayerRepository.PlayerRepository,
    PlayerRepository.PlayerRepository.of({
      findOrCreateGuest: () => Effect.die("unused"),
      get: () => Effect.die("unused"),
      regionMembers: () => Effect.die("unused"),
      saveStates: (rows) => {
        batches.push([...rows])
        return saveStates(rows, batches.length)
      }
    })
  )
  return { batches, layer }
}

describe("PlayerStateWriter", () => {
  it.scoped("flushes on its interval", () =>
    Effect.gen(function*() {
      const ctx = yield* Layer.build(
        PlayerStateWriter.layer({ intervalMs: 1000 }).pipe(Layer.provideMerge(storage(tempDir())))
      )
      const repo = Context.get(ctx, PlayerRepository.PlayerRepository)
      const writer = Context.get(ctx, PlayerStateWriter.PlayerStateWriter)
      const p = yield* repo.findOrCreateGuest("d1", undefined)

      writer.put(row(p.id, 1))
      expect(writer.pending()).toBe(1)
      yield* TestClock.adjust("999 millis")
      expect(writer.pending()).toBe(1)
      expect(Option.getOrThrow(yield* repo.get(p.id)).position).toBeNull()

      yield* TestClock.adjust("1 millis")
      expect(writer.pending()).toBe(0)
      expect(Option.getOrThrow(yield* repo.get(p.id)).position).toEqual({ x: 1, y: 2, z: 3 })

      writer.put(row(p.id, 7))
      yield* TestClock.adjust("1 second")
      expect(Option.getOrThrow(yield* repo.get(p.id)).position).toEqual({ x: 7, y: 8, z: 9 })
    }).pipe(quiet))

  it.effect("flushes in its finalizer when the scope closes (durable across a restart)", () =>
    Effect.gen(function*() {
      const dataDir = tempDir()
      const flushes = Metrics.storageFlushTotal.value
      const playerId = yield* Effect.gen(function*() {
        const repo = yield* PlayerRepository.PlayerRepository
        const writer = yield* PlayerStateWriter.PlayerStateWriter
        const p = yield* repo.findOrCreateGuest("d1", undefined)
        writer.put(row(p.id, 42))
        return p.id
      }).pipe(
        // Interval far away: only the finalizer can write it.
        Effect.provide(PlayerStateWriter.layer({ intervalMs: 3_600_000 }).pipe(Layer.provideMerge(storage(dataDir))))
      )
      expect(Metrics.storageFlushTotal.value).toBe(flushes + 1)

      const stored = yield* Effect.flatMap(PlayerRepository.PlayerRepository, (repo) => repo.get(playerId)).pipe(
        Effect.provide(storage(dataDir))
      )
      expect(Option.getOrThrow(stored).position).toEqual({ x: 42, y: 43, z: 44 })
    }).pipe(quiet))

  it.effect("keeps only the newest row per player", () =>
    Effect.gen(function*() {
      const fake = fakeRepo(() => Effect.void)
      yield* Effect.gen(function*() {
        const writer = yield* PlayerStateWriter.PlayerStateWriter
        writer.put(row("a", 1))
        writer.put(row("b", 1))
        writer.put(row("a", 2))
        const newestA = row("a", 3)
        writer.put(newestA)
        expect(writer.pending()).toBe(2)
        yield* writer.flush
        expect(writer.pending()).toBe(0)
        expect(fake.batches).toHaveLength(1)
        expect(fake.batches[0]).toEqual([newestA, row("b", 1)])
        assert.strictEqual(fake.batches[0]![0], newestA) // the row itself, not a copy
        yield* writer.flush // nothing pending: no call
        expect(fake.batches).toHaveLength(1)
      }).pipe(Effect.provide(PlayerStateWriter.layer({ intervalMs: 3_600_000 }).pipe(Layer.provide(fake.layer))))
    }).pipe(quiet))

  it.effect("keeps rows after a failed flush and writes them on the next one", () =>
    Effect.gen(function*() {
      const fail = new StorageError({ message: "disk on fire" })
      const fake = fakeRepo((_, call) => call === 1 ? Effect.fail(fail) : Effect.void)
      const errors = Metrics.storageFlushErrorsTotal.value
      yield* Effect.gen(function*() {
        const writer = yield* PlayerStateWriter.PlayerStateWriter
        writer.put(row("a", 1))
        writer.put(row("b", 1))
        yield* writer.flush // fails, not an Effect failure
        expect(writer.pending()).toBe(2)
        expect(Metrics.storageFlushErrorsTotal.value).toBe(errors + 1)
        yield* writer.flush
        expect(writer.pending()).toBe(0)
        expect(fake.batches).toEqual([[row("a", 1), row("b", 1)], [row("a", 1), row("b", 1)]])
      }).pipe(Effect.provide(PlayerStateWriter.layer({ intervalMs: 3_600_000 }).pipe(Layer.provide(fake.layer))))
    }).pipe(quiet))

  it.effect("does not put back a failed row when a newer one arrived during the flush", () =>
    Effect.gen(function*() {
      let writerRef: PlayerStateWriter.PlayerStateWriter["Type"] | undefined
      const fake = fakeRepo((_, call) =>
        call === 1
          ? Effect.suspend(() => {
            writerRef!.put(row("a", 99)) // a tick during the flush
            return Effect.fail(new StorageError({ message: "busy" }))
          })
          : Effect.void
      )
      yield* Effect.gen(function*() {
        const writer = yield* PlayerStateWriter.PlayerStateWriter
        writerRef = writer
        writer.put(row("a", 1))
        writer.put(row("b", 1))
        yield* writer.flush
        expect(writer.pending()).toBe(2)
        yield* writer.flush
        expect(fake.batches[1]).toEqual(expect.arrayContaining([row("a", 99), row("b", 1)]))
        expect(fake.batches[1]).toHaveLength(2)
      }).pipe(Effect.provide(PlayerStateWriter.layer({ intervalMs: 3_600_000 }).pipe(Layer.provide(fake.layer))))
    }).pipe(quiet))
})
