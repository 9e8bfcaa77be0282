/**
 * The control plane's event bus: history, live subscribers, the audit log
 * written behind (to a fake repository, and to real SQLite and PostgreSQL
 * as in controlStorage.test.ts), and the SSE framing.
 */
import type { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import {
  Chunk,
  Context,
  Effect,
  Either,
  Exit,
  Fiber,
  Layer,
  Logger,
  LogLevel,
  Schema,
  Scope,
  Stream,
  TestClock
} from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { afterAll } from "vitest"
import {
  type Actor,
  adminActor,
  type ControlEnvelope,
  ControlEnvelopeJson,
  type ControlEvent
} from "../../src/control/ControlEvent.js"
import * as ControlEvents from "../../src/control/ControlEvents.js"
import { parseLastEventId, sseComment, sseFrame, sseRetry } from "../../src/control/Sse.js"
import * as Metrics from "../../src/observability/Metrics.js"
import * as AuditLogRepository from "../../src/storage/AuditLogRepository.js"
import * as Database from "../../src/storage/Database.js"
import { StorageError } from "../../src/storage/StorageError.js"
import { createDatabase } from "../support/Cluster.js"

/** Temp dirs and PostgreSQL databases of the audit tests (one per test), removed after the run. */
const dirs: Array<string> = []
const databases: Array<ReturnType<typeof createDatabase>> = []
afterAll(() => {
  for (const database of databases) database.drop()
  for (const dir of dirs) Fs.rmSync(dir, { recursive: true, force: true })
})

const quiet = Effect.provide(Logger.minimumLogLevel(LogLevel.None))

const spawned = (n: number): ControlEvent => ({
  _tag: "ServerSpawned",
  worldId: `arena-${n}`,
  experienceId: "arena",
  reason: "scale up"
})

const seqs = (envelopes: Iterable<ControlEnvelope>) => Array.from(envelopes, (e) => e.seq)

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

/** An AuditLogRepository in memory that can be switched "down". */
const fakeAuditLog = () => {
  const rows: Array<AuditLogRepository.AuditEntry> = []
  const calls: Array<number> = []
  let down = false
  const service = AuditLogRepository.AuditLogRepository.of({
    append: (entries) =>
      Effect.suspend(() => {
        calls.push(entries.length)
        if (down) return Effect.fail(new StorageError({ message: "auditLog.append failed: down" }))
        rows.push(...entries)
        return Effect.void
      }),
    list: () => Effect.succeed([])
  })
  return {
    rows,
    calls,
    setDown: (value: boolean) => {
      down = value
    },
    layer: Layer.succeed(AuditLogRepository.AuditLogRepository, service)
  }
}

describe("ControlEvents", () => {
  describe("history", () => {
    it.effect("is bounded, ordered, numbered and timed from the Clock", () =>
      Effect.gen(function*() {
        const events = yield* ControlEvents.ControlEvents
        expect(events.lastSeq()).toBe(0)
        expect(yield* events.history()).toEqual([])
        yield* TestClock.setTime(1_700_000_000_000)
        const first = yield* events.publish("scheduler", spawned(1))
        expect(first).toEqual({ seq: 1, at: 1_700_000_000_000, actor: "scheduler", event: spawned(1) })
        for (let n = 2; n <= 12; n++) {
          yield* TestClock.adjust(10)
          yield* events.publish(n % 2 === 0 ? "system" : adminActor("ops"), spawned(n))
        }
        expect(events.lastSeq()).toBe(12)
        const kept = yield* events.history()
        expect(seqs(kept)).toEqual([8, 9, 10, 11, 12])
        expect(kept.map((e) => e.at)).toEqual([70, 80, 90, 100, 110].map((d) => 1_700_000_000_000 + d))
        expect(kept.map((e) => e.event)).toEqual(range(8, 12).map(spawned))
        expect(kept[1]!.actor).toBe("admin:ops")
      }).pipe(Effect.provide(ControlEvents.layerMemory({ historySize: 5 }))))

    it.effect("sinceSeq returns what came after it; an unknown future seq (a restart) returns everything kept", () =>
      Effect.gen(function*() {
        const events = yield* ControlEvents.ControlEvents
        for (let n = 1; n <= 12; n++) yield* events.publish("scheduler", spawned(n))
        expect(seqs(yield* events.history(10))).toEqual([11, 12])
        expect(seqs(yield* events.history(12))).toEqual([])
        expect(seqs(yield* events.history(0))).toEqual(range(8, 12))
        expect(seqs(yield* events.history(3))).toEqual(range(8, 12)) // older than kept: all kept
        expect(seqs(yield* events.history(7))).toEqual(range(8, 12))
        expect(seqs(yield* events.history(8))).toEqual(range(9, 12))
        expect(seqs(yield* events.history(500))).toEqual(range(8, 12)) // from before a restart
        expect(seqs(yield* events.history(-1))).toEqual(range(8, 12))
      }).pipe(Effect.provide(ControlEvents.layerMemory({ historySize: 5 }))))

    it.effect("keeps 1000 by default", () =>
      Effect.gen(function*() {
        const events = yield* ControlEvents.ControlEvents
        for (let n = 1; n <= 1500; n++) yield* events.publish("scheduler", spawned(n))
        expect(seqs(yield* events.history())).toEqual(range(501, 1500))
      }).pipe(Effect.provide(ControlEvents.layerMemory())))
  })

  describe("subscribe", () => {
    it.scoped("a live subscriber receives every event after it subscribed, in order", () =>
      Effect.gen(function*() {
        const events = yield* ControlEvents.ControlEvents
        yield* events.publish("system", spawned(0)) // before: not delivered
        const stream = yield* events.subscribe()
        const published: Array<ControlEnvelope> = []
        for (let n = 1; n <= 5; n++) published.push(yield* events.publish("scheduler", spawned(n)))
        const received = yield* Stream.runCollect(Stream.take(stream, 5))
        expect(Chunk.toReadonlyArray(received)).toEqual(published)
        expect(seqs(received)).toEqual([2, 3, 4, 5, 6])
      }).pipe(Effect.provide(ControlEvents.layerMemory())))

    it.scoped("concurrent publishers: every subscriber sees one gap-free seq order", () =>
      Effect.gen(function*() {
        const events = yield* ControlEvents.ControlEvents
        const a = yield* events.subscribe()
        const b = yield* events.subscribe()
        const collectA = yield* Effect.fork(Stream.runCollect(Stream.take(a, 200)))
        const collectB = yield* Effect.fork(Stream.runCollect(Stream.take(b, 200)))
        yield* Effect.all(
          Array.from({ length: 10 }, (_, p) =>
            Effect.forEach(range(1, 20), (n) => events.publish("scheduler", spawned(p * 100 + n)), { discard: true })),
          { concurrency: "unbounded" }
        )
        const [gotA, gotB] = [yield* Fiber.join(collectA), yield* Fiber.join(collectB)]
        expect(seqs(gotA)).toEqual(range(1, 200))
        expect(Chunk.toReadonlyArray(gotB)).toEqual(Chunk.toReadonlyArray(gotA))
        expect(Chunk.toReadonlyArray(gotA)).toEqual(yield* events.history())
      }).pipe(Effect.provide(ControlEvents.layerMemory({ subscriberBuffer: 256 }))))

    it.scoped("a slow subscriber never blocks publish: it loses its oldest events instead", () =>
      Effect.gen(function*() {
        const events = yield* ControlEvents.ControlEvents
        const slow = yield* events.subscribe() // never read until the end
        // one that keeps up: reads what is there after every publish
        const fast = yield* Stream.toPull(yield* events.subscribe())
        const fastGot: Array<ControlEnvelope> = []
        for (let n = 1; n <= 1000; n++) {
          yield* events.publish("scheduler", spawned(n))
          fastGot.push(...(yield* fast))
        }
        expect(events.lastSeq()).toBe(1000)
        expect(seqs(fastGot)).toEqual(range(1, 1000))
        // the slow one kept the newest 16 (its buffer) and goes on live from there
        expect(seqs(yield* Stream.runCollect(Stream.take(slow, 16)))).toEqual(range(985, 1000))
        yield* events.publish("scheduler", spawned(1001))
        expect(seqs(yield* Stream.runCollect(Stream.take(slow, 1)))).toEqual([1001])
      }).pipe(Effect.provide(ControlEvents.layerMemory({ subscriberBuffer: 16 }))))

    it.scoped("with sinceSeq, replays history after it, then goes live without duplicates", () =>
      Effect.gen(function*() {
        const events = yield* ControlEvents.ControlEvents
        for (let n = 1; n <= 3; n++) yield* events.publish("scheduler", spawned(n))
        const resumed = yield* events.subscribe(1)
        const fromStart = yield* events.subscribe(0)
        const afterRestart = yield* events.subscribe(99)
        for (let n = 4; n <= 5; n++) yield* events.publish("scheduler", spawned(n))
        expect(seqs(yield* Stream.runCollect(Stream.take(resumed, 4)))).toEqual([2, 3, 4, 5])
        expect(seqs(yield* Stream.runCollect(Stream.take(fromStart, 5)))).toEqual([1, 2, 3, 4, 5])
        expect(seqs(yield* Stream.runCollect(Stream.take(afterRestart, 5)))).toEqual([1, 2, 3, 4, 5])
      }).pipe(Effect.provide(ControlEvents.layerMemory())))

    it.effect("streams end when the layer closes; publishing afterwards still succeeds", () =>
      Effect.gen(function*() {
        const layerScope = yield* Scope.make()
        const context = yield* Layer.buildWithScope(ControlEvents.layerMemory(), layerScope)
        const events = Context.get(context, ControlEvents.ControlEvents)
        const ended = yield* Effect.scoped(Effect.gen(function*() {
          const stream = yield* events.subscribe()
          const fiber = yield* Effect.fork(Stream.runCollect(stream))
          yield* Scope.close(layerScope, Exit.void)
          return yield* Fiber.join(fiber)
        }))
        expect(Chunk.size(ended)).toBe(0)
        const late = yield* events.publish("system", spawned(1))
        expect(late.seq).toBe(1)
        expect(seqs(yield* events.history())).toEqual([1])
      }))
  })

  describe("audit log (write-behind)", () => {
    const mixed: ReadonlyArray<readonly [Actor, ControlEvent]> = [
      [adminActor("key-7"), { _tag: "RunnerDraining", runner: "runner-2", by: "admin:key-7" }],
      ["scheduler", { _tag: "ScalingDecision", experienceId: "arena", decision: "ScaleUp", count: 2, reason: "players 90% > 80%" }],
      ["system", { _tag: "PlayerConnected", playerId: "p1", gateway: "gw-1" }],
      ["scheduler", { _tag: "PlayerRouted", playerId: "p1", toWorld: "arena-1", by: "scheduler" }],
      ["scheduler", { _tag: "HealthChanged", target: "arena-1", kind: "instance", from: "healthy", to: "unhealthy", reason: "missed 3 heartbeats" }],
      [adminActor("key-7"), { _tag: "PlayerRouted", playerId: "p2", fromWorld: "arena-1", toWorld: "arena-2", by: "admin:key-7" }],
      ["system", { _tag: "PlayerDisconnected", playerId: "p1", reason: "closed" }],
      ["scheduler", { _tag: "ServerSpawned", worldId: "arena-3", experienceId: "arena", reason: "scale up" }],
      ["scheduler", { _tag: "ServerTerminated", worldId: "arena-1", experienceId: "arena", reason: "unhealthy" }],
      ["system", { _tag: "MatchmakingEvent", experienceId: "arena", mode: "duo", detail: "queue 12" }]
    ]
    /** [actor, action, target] of the audited ones of `mixed`, in order. */
    const auditedRows = [
      ["admin:key-7", "RunnerDraining", "runner-2"],
      ["scheduler", "ScalingDecision", "arena"],
      ["scheduler", "HealthChanged", "arena-1"],
      ["admin:key-7", "PlayerRouted", "p2"],
      ["scheduler", "ServerSpawned", "arena-3"],
      ["scheduler", "ServerTerminated", "arena-1"]
    ]

    const fake = fakeAuditLog()
    it.effect("audits admin actions and spawn/terminate/scaling/health events, written on flush", () =>
      Effect.gen(function*() {
        const events = yield* ControlEvents.ControlEvents
        yield* TestClock.setTime(5000)
        for (const [actor, event] of mixed) yield* events.publish(actor, event)
        expect(events.auditStats()).toEqual({ pending: 6, written: 0, failedFlushes: 0, dropped: 0 })
        expect(fake.rows).toEqual([])
        yield* events.flushAudit
        expect(fake.calls).toEqual([6]) // one batch
        expect(fake.rows.map((r) => [r.actor, r.action, r.target])).toEqual(auditedRows)
        expect(fake.rows[1]).toEqual({
          at: 5000,
          actor: "scheduler",
          action: "ScalingDecision",
          target: "arena",
          detail: JSON.stringify(mixed[1]![1])
        })
        expect(events.auditStats()).toEqual({ pending: 0, written: 6, failedFlushes: 0, dropped: 0 })
        yield* events.flushAudit // nothing pending: no call
        expect(fake.calls).toEqual([6])
      }).pipe(Effect.provide(ControlEvents.layer({ auditFlushIntervalMs: 3_600_000 }).pipe(Layer.provide(fake.layer)))))

    it.effect("writes on its interval (TestClock) and once more when the layer closes", () =>
      Effect.gen(function*() {
        const log = fakeAuditLog()
        const layerScope = yield* Scope.make()
        const context = yield* Layer.buildWithScope(
          ControlEvents.layer({ auditFlushIntervalMs: 1000 }).pipe(Layer.provide(log.layer)),
          layerScope
        )
        const events = Context.get(context, ControlEvents.ControlEvents)
        yield* events.publish("scheduler", spawned(1))
        yield* TestClock.adjust(999)
        expect(log.rows).toHaveLength(0)
        yield* TestClock.adjust(1)
        expect(log.rows.map((r) => r.target)).toEqual(["arena-1"])
        yield* events.publish("scheduler", spawned(2))
        yield* events.publish("system", spawned(3))
        yield* Scope.close(layerScope, Exit.void)
        expect(log.rows.map((r) => r.target)).toEqual(["arena-1", "arena-2", "arena-3"])
      }))

    it.effect("a failing write is counted and logged, never thrown; entries are kept, the oldest dropped past the bound", () =>
      Effect.gen(function*() {
        const log = fakeAuditLog()
        const errors = Metrics.storageFlushErrorsTotal.value
        yield* Effect.gen(function*() {
          const events = yield* ControlEvents.ControlEvents
          log.setDown(true)
          for (let n = 1; n <= 3; n++) yield* events.publish("scheduler", spawned(n))
          yield* events.flushAudit
          expect(events.auditStats()).toEqual({ pending: 3, written: 0, failedFlushes: 1, dropped: 0 })
          expect(Metrics.storageFlushErrorsTotal.value).toBe(errors + 1)
          // publish is unaffected while storage is down
          for (let n = 4; n <= 6; n++) yield* events.publish("scheduler", spawned(n))
          expect(events.auditStats()).toEqual({ pending: 4, written: 0, failedFlushes: 1, dropped: 2 })
          yield* events.flushAudit
          expect(events.auditStats()).toMatchObject({ pending: 4, failedFlushes: 2 })
          log.setDown(false)
          yield* events.flushAudit
          expect(log.rows.map((r) => r.target)).toEqual(["arena-3", "arena-4", "arena-5", "arena-6"])
          expect(events.auditStats()).toEqual({ pending: 0, written: 4, failedFlushes: 2, dropped: 2 })
        }).pipe(
          Effect.provide(
            ControlEvents.layer({ auditFlushIntervalMs: 3_600_000, auditMaxBuffered: 4 }).pipe(Layer.provide(log.layer))
          )
        )
      }).pipe(quiet))

    it.effect("the audit policy can be replaced", () =>
      Effect.gen(function*() {
        const events = yield* ControlEvents.ControlEvents
        for (const [actor, event] of mixed) yield* events.publish(actor, event)
        expect(events.auditStats().pending).toBe(1)
      }).pipe(
        Effect.provide(
          ControlEvents.layer({ audit: (e) => e.event._tag === "MatchmakingEvent" }).pipe(
            Layer.provide(fakeAuditLog().layer)
          )
        )
      ))

    describe.each([
      {
        name: "sqlite",
        database: (): Layer.Layer<SqlClient.SqlClient, StorageError> => {
          const dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "tessera-control-events-"))
          dirs.push(dataDir)
          return Database.layerSqlite({ dataDir })
        }
      },
      {
        name: "postgres",
        database: (): Layer.Layer<SqlClient.SqlClient, StorageError> => {
          const database = createDatabase()
          databases.push(database)
          return Database.layerPostgres({ url: database.url })
        }
      }
    ])("to $name", ({ database }) => {
      it.live("stores who did what to what, when; and what is queued when the layer closes", () =>
        Effect.gen(function*() {
          const db = database()
          const storage = AuditLogRepository.layer.pipe(Layer.provideMerge(db))
          const before = Date.now()
          yield* Effect.gen(function*() {
            const events = yield* ControlEvents.ControlEvents
            const repo = yield* AuditLogRepository.AuditLogRepository
            for (const [actor, event] of mixed.slice(0, 5)) yield* events.publish(actor, event)
            yield* events.flushAudit
            const stored = yield* repo.list(100)
            expect(stored.map((r) => [r.actor, r.action, r.target])).toEqual(auditedRows.slice(0, 3).reverse())
            expect(JSON.parse(stored[0]!.detail)).toEqual(mixed[4]![1])
            expect(stored[0]!.at).toBeGreaterThanOrEqual(before)
            expect(stored[0]!.at).toBeLessThanOrEqual(Date.now())
            for (const [actor, event] of mixed.slice(5)) yield* events.publish(actor, event)
          }).pipe(Effect.provide(ControlEvents.layer({ auditFlushIntervalMs: 3_600_000 }).pipe(Layer.provideMerge(storage))))

          const stored = yield* Effect.flatMap(AuditLogRepository.AuditLogRepository, (repo) => repo.list(100)).pipe(
            Effect.provide(storage)
          )
          expect(stored.map((r) => [r.actor, r.action, r.target])).toEqual([...auditedRows].reverse())
        }).pipe(quiet))
    })
  })
})

describe("Sse", () => {
  const envelope: ControlEnvelope = {
    seq: 42,
    at: 1_700_000_000_123,
    actor: "scheduler",
    event: { _tag: "HealthChanged", target: "runner-1", kind: "runner", from: "healthy", to: "unhealthy", reason: "a\nb\r\n\nc" }
  }

  it("frames an envelope as id, event and one data line of JSON", () => {
    const frame = sseFrame(envelope)
    expect(frame).toBe(
      "id: 42\nevent: HealthChanged\ndata: " +
        "{\"seq\":42,\"at\":1700000000123,\"actor\":\"scheduler\",\"event\":{\"_tag\":\"HealthChanged\"," +
        "\"target\":\"runner-1\",\"kind\":\"runner\",\"from\":\"healthy\",\"to\":\"unhealthy\",\"reason\":\"a\\nb\\r\\n\\nc\"}}" +
        "\n\n"
    )
    // exactly one blank line, at the end; three fields
    expect(frame.indexOf("\n\n")).toBe(frame.length - 2)
    expect(frame.slice(0, -2).split("\n")).toHaveLength(3)
    // the data decodes back to the envelope with the exported schema
    const data = frame.split("\n")[2]!.slice("data: ".length)
    expect(Schema.decodeUnknownSync(ControlEnvelopeJson)(data)).toEqual(envelope)
    expect(Schema.encodeSync(ControlEnvelopeJson)(envelope)).toBe(data)
  })

  it("comments, retry and Last-Event-ID", () => {
    expect(sseComment()).toBe(": keep-alive\n\n")
    expect(sseComment("a\nb\r\nc")).toBe(": a b c\n\n")
    expect(sseRetry(3000)).toBe("retry: 3000\n\n")
    expect(parseLastEventId("17")).toBe(17)
    expect(parseLastEventId(" 17 ")).toBe(17)
    expect(parseLastEventId("0")).toBe(0)
    for (const bad of [undefined, null, "", "-1", "1.5", "abc", "1e3", "9".repeat(16)]) {
      expect(parseLastEventId(bad)).toBeUndefined()
    }
  })

  it("the envelope schema rejects unknown actors, tags and fields of the wrong type", () => {
    const decode = Schema.decodeUnknownEither(ControlEnvelopeJson)
    const valid = JSON.parse(sseFrame(envelope).split("\n")[2]!.slice(6))
    expect(Either.isRight(decode(JSON.stringify(valid)))).toBe(true)
    expect(Either.isRight(decode(JSON.stringify({ ...valid, actor: "admin:key-1" })))).toBe(true)
    expect(Either.isLeft(decode(JSON.stringify({ ...valid, actor: "root" })))).toBe(true)
    expect(Either.isLeft(decode(JSON.stringify({ ...valid, seq: 0 })))).toBe(true)
    expect(Either.isLeft(decode(JSON.stringify({ ...valid, event: { ...valid.event, _tag: "Nope" } })))).toBe(true)
    expect(Either.isLeft(decode(JSON.stringify({ ...valid, event: { ...valid.event, to: "sick" } })))).toBe(true)
    expect(Either.isLeft(decode("{not json"))).toBe(true)
  })
})
