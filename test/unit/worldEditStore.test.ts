import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Layer, Scope } from "effect"
import { decode } from "../../src/protocol/Codec.js"
import { ServerOp } from "../../src/protocol/Opcodes.js"
import type { Box } from "../../src/region/mesh/MeshGeometry.js"
import { makeWorldEditStore } from "../../src/region/WorldEditStore.js"
import { StorageError } from "../../src/storage/StorageError.js"
import { type WorldDelta, WorldDeltaRepository, type WorldDeltaInput } from "../../src/storage/WorldDeltaRepository.js"

const world: Box = { minX: -64, minY: -32, minZ: -64, maxX: 64, maxY: 32, maxZ: 64 }
const box: Box = { minX: 0, minY: -32, minZ: 0, maxX: 64, maxY: 32, maxZ: 64 }

/** An in-memory repository whose next `failures` appends fail. */
const fakeRepo = (stored: Array<WorldDelta>, state: { failures: number; appends: number }) =>
  Layer.succeed(WorldDeltaRepository, {
    append: (_worldId: string, regionKey: string, deltas: ReadonlyArray<WorldDeltaInput>) =>
      Effect.suspend(() => {
        state.appends++
        if (state.failures > 0) {
          state.failures--
          return Effect.fail(new StorageError({ message: "worldDeltas.append failed: disk on fire" }))
        }
        let seq = stored.length === 0 ? 0 : stored[stored.length - 1]!.seq
        for (const d of deltas) stored.push({ ...d, value: d.value as string, seq: ++seq, regionKey })
        return Effect.succeed(seq)
      }),
    loadBox: () => Effect.succeed(stored.filter((d) => d.value !== null))
  })

const setup = (stored: Array<WorldDelta>, state: { failures: number; appends: number }) =>
  Effect.gen(function*() {
    const published: Array<[string, unknown]> = []
    const sent: Array<[string, unknown]> = []
    const scope = yield* Scope.make()
    const store = yield* makeWorldEditStore({
      regionId: "w.world/0/1/0/1",
      worldId: "w.world",
      regionKey: "0/1/0/1",
      box,
      world,
      reach: 8,
      cellSize: 8,
      flushEveryMs: 50,
      positionOf: (playerId) => (playerId === "p" ? { x: 10, y: 0, z: 10 } : undefined),
      isLeaf: () => true,
      publish: (cell, frame) => void published.push([cell, decode(frame)]),
      sendToPlayer: (playerId, frame) => (sent.push([playerId, decode(frame)]), true)
    }).pipe(Scope.extend(scope), Effect.provide(fakeRepo(stored, state)))
    return { store, published, sent, scope }
  })

describe("WorldEditStore", () => {
  it.effect("loads its box, takes edits, writes them in one append and publishes them per cell with their seqs", () =>
    Effect.gen(function*() {
      const stored: Array<WorldDelta> = [{ key: "old", x: 1, y: 0, z: 1, value: "v", seq: 1, at: 0, regionKey: "0/1/0/1" }]
      const state = { failures: 0, appends: 0 }
      const { published, scope, sent, store } = yield* setup(stored, state)
      store.sendStateTo("p")
      expect(sent).toEqual([["p", [ServerOp.WorldEdits, "w.world/0/1/0/1", [["old", 1, 0, 1, "v", 1]]]]])

      expect(store.edit("p", { key: "a", x: 12, y: 0, z: 12, value: "stone" })).toEqual({ ok: true })
      expect(store.edit("p", { key: "b", x: 4, y: 0, z: 10, value: "wood" })).toEqual({ ok: true })
      expect(store.edit("p", { key: "far", x: 30, y: 0, z: 10, value: "x" }).ok).toBe(false)
      expect(store.edit("ghost", { key: "a", x: 12, y: 0, z: 12, value: "x" }).ok).toBe(false)
      yield* store.flush
      expect(state.appends).toBe(1)
      expect(stored.map((d) => [d.key, d.seq])).toEqual([["old", 1], ["a", 2], ["b", 3]])
      expect(published).toEqual([
        ["2,0,2", [ServerOp.WorldEdits, "w.world/0/1/0/1", [["a", 12, 0, 12, "stone", 2]]]],
        ["1,0,1", [ServerOp.WorldEdits, "w.world/0/1/0/1", [["b", 4, 0, 10, "wood", 3]]]]
      ])
      yield* store.flush // nothing pending: no append
      expect(state.appends).toBe(1)
      yield* Scope.close(scope, Exit.void)
    }))

  it.effect("a failing storage keeps the edits (nothing dropped, nothing published) and the next flush writes them", () =>
    Effect.gen(function*() {
      const stored: Array<WorldDelta> = []
      const state = { failures: 2, appends: 0 }
      const { published, scope, store } = yield* setup(stored, state)
      store.edit("p", { key: "a", x: 12, y: 0, z: 12, value: "stone" })
      yield* store.flush
      store.edit("p", { key: "a", x: 12, y: 0, z: 12, value: null })
      yield* store.flush
      expect(stored).toEqual([])
      expect(published).toEqual([])
      expect(store.edits.pendingCount).toBe(2)
      yield* store.flush
      expect(stored.map((d) => [d.key, d.value, d.seq])).toEqual([["a", "stone", 1], ["a", null, 2]])
      expect(published).toHaveLength(1)
      expect(store.edits.entries()).toEqual([])
      yield* Scope.close(scope, Exit.void)
    }))

  it.effect("closing the region's scope flushes what is pending", () =>
    Effect.gen(function*() {
      const stored: Array<WorldDelta> = []
      const state = { failures: 0, appends: 0 }
      const { scope, store } = yield* setup(stored, state)
      store.edit("p", { key: "a", x: 12, y: 0, z: 12, value: "stone" })
      yield* Scope.close(scope, Exit.void)
      expect(stored.map((d) => d.key)).toEqual(["a"])
    }))
})
