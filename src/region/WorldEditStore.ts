import { Cause, Duration, Effect, Schedule, type Scope } from "effect"
import * as Metrics from "../observability/Metrics.js"
import { encode } from "../protocol/Codec.js"
import type { WorldEditEntry, WorldEditsFrame } from "../protocol/Messages.js"
import { ErrorCode, ServerOp } from "../protocol/Opcodes.js"
import { WorldDeltaRepository } from "../storage/WorldDeltaRepository.js"
import { cellCoord, cellKey } from "./InterestGrid.js"
import type { Box } from "./mesh/MeshGeometry.js"
import { checkEdit, chunk, entryOf, RegionWorldEdits, type WorldEditRequest, type WorldEditVerdict } from "./WorldEdits.js"

/** A new region loads its box once more this long after activation (catches a predecessor's last flush). */
const CATCH_UP_RELOAD = Duration.seconds(1)
/** A failed load at activation is retried this often until it succeeds. */
const LOAD_RETRY = Duration.seconds(1)

export interface WorldEditStoreOptions {
  readonly regionId: string
  readonly worldId: string
  /** keyString of the region (stored with each delta). */
  readonly regionKey: string
  readonly box: Box
  readonly world: Box
  readonly reach: number
  readonly cellSize: number
  /** Write-behind period, ms: at most this much of accepted edits is unwritten (plus a failing storage). */
  readonly flushEveryMs: number
  /** The player's entity position, when its entity is simulated here (not in flight, not gone). */
  readonly positionOf: (playerId: string) => { readonly x: number; readonly y: number; readonly z: number } | undefined
  /** False once the region is no longer a leaf of the directory (split or merged away). */
  readonly isLeaf: () => boolean
  readonly publish: (topicCellKey: string, frame: Uint8Array) => void
  readonly sendToPlayer: (playerId: string, frame: Uint8Array) => boolean
}

export interface WorldEditStore {
  /** Validates and applies one player's edit (synchronous; storage is written behind). */
  readonly edit: (playerId: string, edit: WorldEditRequest) => WorldEditVerdict
  /** Sends the region's current edits to a player (on join and arrival), in frames of at most 200. */
  readonly sendStateTo: (playerId: string) => void
  /** Writes every accepted edit (serialised; never fails: on error the edits stay queued). */
  readonly flush: Effect.Effect<void>
  readonly edits: RegionWorldEdits
}

/**
 * The world modifications of one open-world region: loads the deltas of the
 * region's box at activation, validates and applies players' edits, writes
 * them behind in one append per period (flushed at once when the region
 * stops being a leaf, and on stop), and publishes each stored edit with its
 * seq to the interest cell of its position.
 */
export const makeWorldEditStore = (
  options: WorldEditStoreOptions
): Effect.Effect<WorldEditStore, never, WorldDeltaRepository | Scope.Scope> =>
  Effect.gen(function*() {
    const repo = yield* WorldDeltaRepository
    const edits = new RegionWorldEdits()
    const { regionId, worldId } = options
    const lock = yield* Effect.makeSemaphore(1)

    const load = repo.loadBox(worldId, options.box, options.world).pipe(
      Effect.tap((deltas) => Effect.sync(() => edits.load(deltas)))
    )
    const loaded = yield* load.pipe(
      Effect.as(true),
      Effect.catchAll((error) => Effect.as(Effect.logWarning("could not load world edits; retrying", error), false))
    )
    if (!loaded) {
      yield* load.pipe(
        Effect.retry(Schedule.spaced(LOAD_RETRY)),
        Effect.tap(() => Effect.logInfo("world edits loaded after a retry")),
        Effect.ignore,
        Effect.forkScoped
      )
    }
    // A region created by a split or merge may have activated before its predecessor's last flush landed.
    yield* load.pipe(Effect.delay(CATCH_UP_RELOAD), Effect.ignore, Effect.forkScoped)

    const publishStored = (stored: ReadonlyArray<{ key: string; x: number; y: number; z: number; value: string | null; seq: number }>) => {
      const byCell = new Map<string, Array<WorldEditEntry>>()
      const size = options.cellSize
      for (const s of stored) {
        const cell = cellKey(cellCoord(s.x, size), cellCoord(s.y, size), cellCoord(s.z, size))
        let list = byCell.get(cell)
        if (list === undefined) byCell.set(cell, (list = []))
        list.push(entryOf(s))
      }
      for (const [cell, list] of byCell) {
        for (const part of chunk(list)) {
          const frame: WorldEditsFrame = [ServerOp.WorldEdits, regionId, part]
          options.publish(cell, encode(frame))
        }
      }
    }

    // Failures in a row: the first is logged with its cause, then one line per minute of outage.
    let failuresInRow = 0
    const flushOnce = Effect.suspend(() => {
      const batch = edits.drain()
      if (batch === undefined) return Effect.void
      const started = performance.now()
      Metrics.storageFlushTotal.inc()
      return repo.append(worldId, options.regionKey, batch).pipe(
        Effect.matchCauseEffect({
          onSuccess: (lastSeq) =>
            Effect.suspend(() => {
              publishStored(edits.stored(lastSeq))
              const failed = failuresInRow
              failuresInRow = 0
              return failed === 0 ? Effect.void : Effect.logInfo(
                `world edits stored after ${failed} failed attempts; nothing was dropped`
              ).pipe(Effect.annotateLogs({ rows: batch.length }))
            }),
          onFailure: (cause) =>
            Effect.suspend(() => {
              edits.restore()
              Metrics.storageFlushErrorsTotal.inc()
              failuresInRow++
              const everyMinute = Math.max(1, Math.round(60_000 / Math.max(1, options.flushEveryMs)))
              if (failuresInRow > 1 && failuresInRow % everyMinute !== 0) return Effect.void
              return Effect.logWarning(
                `world edit flush failed (${failuresInRow} in a row); edits kept for the next flush`
              ).pipe(Effect.annotateLogs({ rows: edits.pendingCount, error: Cause.pretty(cause) }))
            })
        }),
        Effect.ensuring(
          Effect.sync(() => Metrics.storageFlushDurationSeconds.observe((performance.now() - started) / 1000))
        )
      )
    })
    const flush: Effect.Effect<void> = lock.withPermits(1)(Effect.uninterruptible(flushOnce)).pipe(
      Effect.annotateLogs({ regionId, worldId })
    )

    // Added before the loop is forked, so it runs after the loop is interrupted: the last flush sees everything.
    yield* Effect.addFinalizer(() => flush)
    // Every period (a tick): a region that stops being a leaf has handed its last edits to storage
    // within one tick, before its successors' catch-up reload. Idle periods cost a counter check.
    const flushIfPending = Effect.suspend(() => (edits.pendingCount === 0 ? Effect.void : flush))
    yield* flushIfPending.pipe(
      Effect.repeat(Schedule.spaced(Duration.millis(Math.max(1, options.flushEveryMs)))),
      Effect.delay(Duration.millis(Math.max(1, options.flushEveryMs))),
      Effect.forkScoped
    )

    const edit = (playerId: string, request: WorldEditRequest): WorldEditVerdict => {
      const at = options.positionOf(playerId)
      if (at === undefined) {
        return { ok: false, code: ErrorCode.EditRejected, message: "you are not in this region any more; try again" }
      }
      if (!options.isLeaf()) {
        return { ok: false, code: ErrorCode.EditRejected, message: "this part of the world is being reorganised; try again in a moment" }
      }
      const verdict = checkEdit(request, at, options.reach, options.box, options.world)
      if (verdict.ok) edits.accept(request, Date.now())
      return verdict
    }

    const sendStateTo = (playerId: string): void => {
      for (const part of chunk(edits.entries())) {
        const frame: WorldEditsFrame = [ServerOp.WorldEdits, regionId, part]
        options.sendToPlayer(playerId, encode(frame))
      }
    }

    return { edit, sendStateTo, flush, edits }
  })
