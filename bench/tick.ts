/**
 * Micro-benchmark of one region tick's pure work: KinematicLogic.step +
 * InterestGrid.place for every entity + CellSnapshotEncoder.encodeTick.
 * Every entity sends one input per tick (a slowly turning random walk over a
 * 500 m x 500 m area, i.e. 100 cells of 50 m). Filling the InputBuffer (the
 * gateway's work) is not timed. Prints one JSON line.
 *
 *   node --import tsx bench/tick.ts [secondsPerSize=2]
 */
import { CellSnapshotEncoder } from "../src/region/CellSnapshotEncoder.js"
import { advanceWorld, makeSimEntity, makeWorldState } from "../src/region/GameLogic.js"
import { InputBuffer } from "../src/region/InputBuffer.js"
import { InterestGrid } from "../src/region/InterestGrid.js"
import { makeKinematicLogic } from "../src/region/KinematicLogic.js"

const TICK_RATE = 20
const DT = 1 / TICK_RATE
const CELL_SIZE = 50
const AREA_HALF = 250
const SECONDS = Number(process.argv[2] ?? 2)
const WARMUP_TICKS = 200

let seed = 12345
const rnd = (): number => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = seed
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

interface Result {
  readonly entities: number
  readonly ticks: number
  readonly usPerTick: number
  readonly usPerEntity: number
  readonly p50UsPerTick: number
  readonly p99UsPerTick: number
  readonly maxUsPerTick: number
  readonly framesPerTick: number
  readonly bytesPerTick: number
  readonly cellChangesPerTick: number
  readonly tickBudgetUsedPct: number
}

let bytesThisTick = 0
const emit = (_key: string, frame: Uint8Array): void => {
  bytesThisTick += frame.byteLength
}

const run = (n: number): Result => {
  const logic = makeKinematicLogic({ maxSpeed: 10, worldHalfExtent: AREA_HALF, spawnRadius: 10 })
  const world = makeWorldState()
  const heading = new Float64Array(n + 1)
  for (let id = 1; id <= n; id++) {
    world.entities.set(id, makeSimEntity(id, `player-${id}`, (rnd() * 2 - 1) * AREA_HALF, 0, (rnd() * 2 - 1) * AREA_HALF))
    heading[id] = rnd() * 2 * Math.PI
  }
  const grid = new InterestGrid(CELL_SIZE)
  for (const e of world.entities.values()) grid.place(e)
  const encoder = new CellSnapshotEncoder("bench-region")
  const inputs = new InputBuffer()

  const samples: Array<number> = []
  let frames = 0
  let bytes = 0
  let changes = 0
  let measuredNs = 0
  const budgetNs = SECONDS * 1e9
  let tick = 0
  while (true) {
    inputs.clear()
    for (let id = 1; id <= n; id++) {
      const h = (heading[id] = heading[id]! + (rnd() - 0.5) * 0.3)
      inputs.push(id, tick + 1, Math.cos(h), 0, Math.sin(h), 0)
    }
    bytesThisTick = 0
    const t0 = process.hrtime.bigint()
    advanceWorld(logic, world, inputs, DT)
    let changed = 0
    for (const e of world.entities.values()) if (grid.place(e) !== undefined) changed++
    const f = encoder.encodeTick(grid, world.tick, emit)
    const ns = Number(process.hrtime.bigint() - t0)
    tick++
    if (tick <= WARMUP_TICKS) continue
    samples.push(ns)
    measuredNs += ns
    frames += f
    bytes += bytesThisTick
    changes += changed
    if (measuredNs >= budgetNs) break
  }
  samples.sort((a, b) => a - b)
  const ticks = samples.length
  const us = measuredNs / 1e3 / ticks
  const round = (v: number, d = 2) => Math.round(v * 10 ** d) / 10 ** d
  return {
    entities: n,
    ticks,
    usPerTick: round(us),
    usPerEntity: round(us / n, 3),
    p50UsPerTick: round(samples[Math.floor(ticks * 0.5)]! / 1e3),
    p99UsPerTick: round(samples[Math.floor(ticks * 0.99)]! / 1e3),
    maxUsPerTick: round(samples[ticks - 1]! / 1e3),
    framesPerTick: round(frames / ticks),
    bytesPerTick: round(bytes / ticks, 0),
    cellChangesPerTick: round(changes / ticks),
    tickBudgetUsedPct: round((us / (1e6 / TICK_RATE)) * 100, 3)
  }
}

const results = [50, 200, 1000].map(run)
process.stdout.write(
  JSON.stringify({
    bench: "region-tick",
    node: process.version,
    arch: process.arch,
    tickRate: TICK_RATE,
    cellSize: CELL_SIZE,
    area: `${AREA_HALF * 2}x${AREA_HALF * 2} m`,
    secondsPerSize: SECONDS,
    results
  }) + "\n"
)
