import { Cause, Context, Duration, Effect, Layer, PubSub, Schedule, type Scope, Stream } from "effect"
import * as Metrics from "../observability/Metrics.js"
import { AuditLogRepository, type AuditEntry } from "../storage/AuditLogRepository.js"
import { Ring } from "../common/Ring.js"
import {
  type Actor,
  type ControlEnvelope,
  type ControlEvent,
  type ControlEventTag,
  eventTarget,
  isAdminActor
} from "./ControlEvent.js"

/** Default number of envelopes kept in the in-memory history. */
export const DEFAULT_HISTORY_SIZE = 1000
/** Default envelopes a live subscriber may lag behind before its oldest are dropped (a power of two). */
export const DEFAULT_SUBSCRIBER_BUFFER = 256
/** Default interval of the audit log's write-behind flush. */
export const DEFAULT_AUDIT_FLUSH_INTERVAL_MS = 1000
/** Default most audit entries kept unwritten while storage is down. */
export const DEFAULT_AUDIT_MAX_BUFFERED = 10_000

export interface ControlEventsOptions {
  /** Envelopes kept for `history` (default DEFAULT_HISTORY_SIZE). */
  readonly historySize?: number
  /** Per-subscriber lag before the oldest undelivered envelopes are dropped (default DEFAULT_SUBSCRIBER_BUFFER). */
  readonly subscriberBuffer?: number
  /** Write-behind interval of the audit log (default DEFAULT_AUDIT_FLUSH_INTERVAL_MS). */
  readonly auditFlushIntervalMs?: number
  /** Audit entries kept while storage is down; past it the oldest are dropped (default DEFAULT_AUDIT_MAX_BUFFERED). */
  readonly auditMaxBuffered?: number
  /** Which envelopes go to the audit log (default `isAudited`). */
  readonly audit?: (envelope: ControlEnvelope) => boolean
}

/** Counters of the audit log's write-behind since the layer was built. */
export interface AuditStats {
  /** Entries queued, not yet written. */
  readonly pending: number
  /** Entries written. */
  readonly written: number
  /** Flushes that failed (their entries were kept for the next one). */
  readonly failedFlushes: number
  /** Entries dropped unwritten because the queue was full while storage was down. */
  readonly dropped: number
}

/**
 * The control plane's event bus (Forge lifecycle events): the scheduler,
 * gateways and admin API `publish`; admin streams (SSE) `subscribe`; the
 * admin API reads `history`. Audited events are written behind to the audit
 * log. Per process: the history and seqs are this process's.
 */
export class ControlEvents extends Context.Tag("tessera/control/ControlEvents")<
  ControlEvents,
  {
    /**
     * Numbers (seq), times (`at`, from the Clock) and records the event:
     * appends it to the history, hands it to every live subscriber and, if it
     * is audited, queues it for the audit log. Never blocks on a subscriber or
     * on storage and never fails; returns the envelope.
     */
    readonly publish: (actor: Actor, event: ControlEvent) => Effect.Effect<ControlEnvelope>
    /**
     * The kept envelopes with a seq greater than `sinceSeq` (all kept ones
     * without it), oldest first. A `sinceSeq` greater than the last seq
     * published comes from before a restart or a failover (seqs start again
     * at 1): then all kept envelopes are returned.
     */
    readonly history: (sinceSeq?: number) => Effect.Effect<ReadonlyArray<ControlEnvelope>>
    /**
     * Subscribes in the caller's scope (so nothing published after this
     * effect returns is missed) and returns the stream of envelopes: first
     * `history(sinceSeq)` when `sinceSeq` is given (to resume an SSE stream
     * from Last-Event-ID), then everything published after, in seq order,
     * without duplicates. A subscriber that lags more than the subscriber
     * buffer behind loses the oldest undelivered envelopes (seen as a gap in
     * seq; it can fill it from `history`). The stream ends when the scope or
     * the layer closes.
     */
    readonly subscribe: (sinceSeq?: number) => Effect.Effect<Stream.Stream<ControlEnvelope>, never, Scope.Scope>
    /** The seq of the last published envelope; 0 before the first. */
    readonly lastSeq: () => number
    /**
     * Writes every queued audit entry now (also done every
     * auditFlushIntervalMs and when the layer closes). Never fails: an error is
     * logged and counted and the entries stay queued. Serialised.
     */
    readonly flushAudit: Effect.Effect<void>
    readonly auditStats: () => AuditStats
  }
>() {}

const AUDITED_TAGS: ReadonlySet<ControlEventTag> = new Set<ControlEventTag>([
  "ServerSpawned",
  "ServerTerminated",
  "ScalingDecision",
  "HealthChanged"
])

/**
 * The default audit policy: everything an admin did (actor `admin:...`), and
 * the scheduler's and system's spawn, terminate, scaling and health events.
 * Player traffic and matchmaking are streamed and kept in history only.
 */
export const isAudited = (envelope: ControlEnvelope): boolean =>
  isAdminActor(envelope.actor) || AUDITED_TAGS.has(envelope.event._tag)

/** The audit log row of an envelope: action = the event's tag, detail = the event as JSON. */
export const toAuditEntry = (envelope: ControlEnvelope): AuditEntry => ({
  at: envelope.at,
  actor: envelope.actor,
  action: envelope.event._tag,
  target: eventTarget(envelope.event),
  detail: JSON.stringify(envelope.event)
})


const positiveInt = (n: number | undefined, fallback: number): number =>
  n === undefined || !Number.isFinite(n) ? fallback : Math.max(1, Math.floor(n))

const make = (options: ControlEventsOptions, repository: Context.Tag.Service<typeof AuditLogRepository> | undefined) =>
  Effect.gen(function*() {
    const historySize = positiveInt(options.historySize, DEFAULT_HISTORY_SIZE)
    const auditIntervalMs = positiveInt(options.auditFlushIntervalMs, DEFAULT_AUDIT_FLUSH_INTERVAL_MS)
    const audited = options.audit ?? isAudited

    const pubsub = yield* Effect.acquireRelease(
      PubSub.sliding<ControlEnvelope>(positiveInt(options.subscriberBuffer, DEFAULT_SUBSCRIBER_BUFFER)),
      (p) => PubSub.shutdown(p)
    )
    const history = new Ring<ControlEnvelope>(historySize)
    const auditQueue = new Ring<AuditEntry>(positiveInt(options.auditMaxBuffered, DEFAULT_AUDIT_MAX_BUFFERED))
    // Seq assignment, history append and the hand-off to subscribers happen
    // under one permit, so subscribers see envelopes in seq order.
    const lock = yield* Effect.makeSemaphore(1)
    let seq = 0
    let written = 0
    let failedFlushes = 0
    let dropped = 0

    const enqueueAudit = (entry: AuditEntry): void => {
      if (auditQueue.push(entry)) dropped++
    }

    const publish = (actor: Actor, event: ControlEvent): Effect.Effect<ControlEnvelope> =>
      Effect.clockWith((clock) =>
        lock.withPermits(1)(Effect.suspend(() => {
          const envelope: ControlEnvelope = { seq: ++seq, at: clock.unsafeCurrentTimeMillis(), actor, event }
          history.push(envelope)
          if (repository !== undefined && audited(envelope)) enqueueAudit(toAuditEntry(envelope))
          // Sliding: never suspends; a lagging subscriber loses its oldest instead.
          // After shutdown (layer closed) publish would interrupt: skip it.
          return pubsub.isActive() ? Effect.as(PubSub.publish(pubsub, envelope), envelope) : Effect.succeed(envelope)
        }))
      ).pipe(Effect.uninterruptible)

    /** Synchronous: must run with no yield between it and a subscribe (see subscribe). */
    const since = (sinceSeq: number | undefined): Array<ControlEnvelope> => {
      if (sinceSeq === undefined || !(sinceSeq >= 0) || sinceSeq > seq) return history.last(history.size)
      return history.last(seq - Math.floor(sinceSeq))
    }

    const subscribe = (sinceSeq?: number) =>
      Effect.gen(function*() {
        const dequeue = yield* PubSub.subscribe(pubsub)
        const live = Stream.fromQueue(dequeue)
        if (sinceSeq === undefined) return live
        // Subscribed first, then the snapshot: an envelope published in
        // between is in both, and the filter drops the second copy.
        const replay = since(sinceSeq)
        const upTo = seq
        return Stream.concat(Stream.fromIterable(replay), Stream.filter(live, (e) => e.seq > upTo))
      })

    // --- audit write-behind (as TransferLog) ---
    const flushLock = yield* Effect.makeSemaphore(1)
    let failuresInRow = 0

    const flushOnce = Effect.suspend(() => {
      if (repository === undefined || auditQueue.size === 0) return Effect.void
      const batch = auditQueue.drain()
      const started = performance.now()
      Metrics.storageFlushTotal.inc()
      return repository.append(batch).pipe(
        Effect.matchCauseEffect({
          onSuccess: () =>
            Effect.suspend(() => {
              written += batch.length
              const failed = failuresInRow
              failuresInRow = 0
              return failed === 0 ? Effect.void : Effect.logInfo(
                `audit log flush succeeded after ${failed} failed attempts`
              ).pipe(Effect.annotateLogs({ rows: batch.length }))
            }),
          onFailure: (cause) =>
            Effect.suspend(() => {
              // Back in front of what was queued meanwhile, oldest first; the
              // ring drops the oldest if the two no longer fit.
              const newer = auditQueue.drain()
              for (const entry of batch) enqueueAudit(entry)
              for (const entry of newer) enqueueAudit(entry)
              Metrics.storageFlushErrorsTotal.inc()
              failedFlushes++
              failuresInRow++
              const everyMinute = Math.max(1, Math.round(60_000 / auditIntervalMs))
              if (failuresInRow > 1 && failuresInRow % everyMinute !== 0) return Effect.void
              return Effect.logWarning(
                `audit log flush failed (${failuresInRow} in a row); entries kept for the next flush`
              ).pipe(Effect.annotateLogs({ rows: auditQueue.size, error: Cause.pretty(cause) }))
            })
        }),
        Effect.ensuring(
          Effect.sync(() => Metrics.storageFlushDurationSeconds.observe((performance.now() - started) / 1000))
        )
      )
    })

    const flushAudit: Effect.Effect<void> = flushLock.withPermits(1)(Effect.uninterruptible(flushOnce))

    if (repository !== undefined) {
      const interval = Duration.millis(auditIntervalMs)
      // Added before the fiber is forked, so it runs after the fiber is
      // interrupted: the last flush sees everything and cannot race a periodic one.
      yield* Effect.addFinalizer(() => flushAudit)
      yield* flushAudit.pipe(Effect.repeat(Schedule.spaced(interval)), Effect.delay(interval), Effect.forkScoped)
    }

    return ControlEvents.of({
      publish,
      history: (sinceSeq) => Effect.sync(() => since(sinceSeq)),
      subscribe,
      lastSeq: () => seq,
      flushAudit,
      auditStats: () => ({ pending: auditQueue.size, written, failedFlushes, dropped })
    })
  })

/**
 * The event bus with the audit log in AuditLogRepository: a scoped fiber
 * writes queued audit entries every `auditFlushIntervalMs`, and the layer's
 * finalizer writes what is left and ends every subscriber's stream.
 */
export const layer = (
  options: ControlEventsOptions = {}
): Layer.Layer<ControlEvents, never, AuditLogRepository> =>
  Layer.scoped(ControlEvents, Effect.flatMap(AuditLogRepository, (repository) => make(options, repository)))

/** The event bus without an audit log (tests, tools): history and live streams only. */
export const layerMemory = (options: ControlEventsOptions = {}): Layer.Layer<ControlEvents> =>
  Layer.scoped(ControlEvents, make(options, undefined))
