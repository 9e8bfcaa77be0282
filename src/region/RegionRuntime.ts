import type { GameLogic, SimEntity, WorldState } from "./GameLogic.js"
import { InputBuffer } from "./InputBuffer.js"
import { InterestGrid } from "./InterestGrid.js"
import { CellSnapshotEncoder } from "./CellSnapshotEncoder.js"
import type { LocalRegion } from "./LocalRegions.js"

/** What a region needs from the outside world; all synchronous, no IO on the tick. */
export interface RegionPorts {
  /** Publishes one cell's frame to its topic. */
  publishCell(cellKey: string, frame: Uint8Array): void
  /** A player's entity changed interest cell (undefined `to` = left the region). */
  cellChanged(playerId: string, from: string | undefined, to: string | undefined): void
  /** Hands the player's latest state to the write-behind buffer. */
  persist(entity: SimEntity): void
}

export interface RegionOptions {
  readonly regionId: string
  readonly tickRate: number
  readonly cellSize: number
  /** Persist every player's state every this many ticks (write-behind granularity). */
  readonly persistEveryTicks: number
}

/**
 * One region's authoritative state and its tick, free of Effect and IO so the
 * hot loop is plain code: swap the input buffer, step the game logic, update
 * interest cells, encode one buffer per cell.
 */
export class RegionRuntime implements LocalRegion {
  readonly regionId: string
  readonly world: WorldState = { tick: 0, entities: new Map() }
  private readonly byPlayer = new Map<string, SimEntity>()
  private readonly grid: InterestGrid
  private readonly encoder: CellSnapshotEncoder
  private pending = new InputBuffer()
  private spare = new InputBuffer()
  private nextEntityId = 1
  private readonly dt: number

  constructor(
    private readonly options: RegionOptions,
    private readonly logic: GameLogic,
    private readonly ports: RegionPorts
  ) {
    this.regionId = options.regionId
    this.grid = new InterestGrid(options.cellSize)
    this.encoder = new CellSnapshotEncoder(options.regionId)
    this.dt = 1 / options.tickRate
  }

  inputs(): InputBuffer {
    return this.pending
  }

  get playerCount(): number {
    return this.byPlayer.size
  }

  entityOf(playerId: string): SimEntity | undefined {
    return this.byPlayer.get(playerId)
  }

  cellOf(entityId: number): string | undefined {
    return this.grid.cellOf(entityId)
  }

  /** Adds a player at `at` (or the logic's spawn point); a player already here keeps its entity. */
  addPlayer(playerId: string, at: { x: number; y: number; z: number } | undefined): SimEntity {
    const existing = this.byPlayer.get(playerId)
    if (existing) return existing
    const p = at ?? this.logic.spawnPoint(playerId, this.world)
    const entity: SimEntity = {
      id: this.nextEntityId++,
      playerId,
      x: p.x,
      y: p.y,
      z: p.z,
      vx: 0,
      vy: 0,
      vz: 0,
      lastSeq: 0,
      buttons: 0
    }
    this.world.entities.set(entity.id, entity)
    this.byPlayer.set(playerId, entity)
    this.grid.place(entity)
    return entity
  }

  /** Removes the player; returns its final state for a last write. */
  removePlayer(playerId: string): SimEntity | undefined {
    const entity = this.byPlayer.get(playerId)
    if (!entity) return undefined
    this.byPlayer.delete(playerId)
    this.world.entities.delete(entity.id)
    const from = this.grid.remove(entity.id)
    this.ports.cellChanged(playerId, from, undefined)
    return entity
  }

  /** Appends a remote gateway's batch to the next tick's inputs. */
  enqueueBytes(bytes: Uint8Array): void {
    this.pending.appendBytes(bytes)
  }

  /** Runs one tick; returns the number of cell frames published. */
  tick(): number {
    const batch = this.pending
    this.pending = this.spare
    this.spare = batch
    this.logic.step(this.world, batch, this.dt)
    batch.clear()
    const tick = ++this.world.tick
    for (const entity of this.world.entities.values()) {
      const change = this.grid.place(entity)
      if (change !== undefined) this.ports.cellChanged(change.playerId, change.from, change.to)
    }
    if (tick % this.options.persistEveryTicks === 0) this.persistAll()
    return this.encoder.encodeTick(this.grid, tick, this.publish)
  }

  persistAll(): void {
    for (const entity of this.world.entities.values()) this.ports.persist(entity)
  }

  private readonly publish = (cellKey: string, frame: Uint8Array): void => this.ports.publishCell(cellKey, frame)
}
