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
  /**
   * How long a player's entity lives without a sign of its connection (a
   * join, or a gateway's periodic presence report). Orphans left by a dead
   * gateway, or reloaded after a crash and never reclaimed, expire.
   */
  readonly leaseMs: number
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
  /** entity id -> time (ms) its lease runs out. */
  private readonly leases = new Map<number, number>()

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
  addPlayer(playerId: string, at: { x: number; y: number; z: number } | undefined, now: number): SimEntity {
    const existing = this.byPlayer.get(playerId)
    if (existing) {
      this.leases.set(existing.id, now + this.options.leaseMs)
      return existing
    }
    const p = at ?? this.logic.spawnPoint(playerId, this.world)
    return this.insert(this.nextEntityId++, playerId, p.x, p.y, p.z, 0, now)
  }

  /**
   * Reloads the members a previous activation of this region stored, with
   * their entity ids and input acks, so connected clients carry on. Each gets
   * a fresh lease: unclaimed ones expire.
   */
  restore(
    members: ReadonlyArray<{ playerId: string; entityId: number; x: number; y: number; z: number; lastSeq: number }>,
    now: number
  ): number {
    let restored = 0
    for (const m of members) {
      if (this.byPlayer.has(m.playerId) || this.world.entities.has(m.entityId)) continue
      this.insert(m.entityId, m.playerId, m.x, m.y, m.z, m.lastSeq, now)
      this.nextEntityId = Math.max(this.nextEntityId, m.entityId + 1)
      restored++
    }
    return restored
  }

  /** A gateway vouches for these entities' connections. */
  renewLeases(entityIds: ReadonlyArray<number>, now: number): void {
    const until = now + this.options.leaseMs
    for (const id of entityIds) if (this.leases.has(id)) this.leases.set(id, until)
  }

  /** Removes every player whose lease ran out; returns them for a last write. */
  expireLeases(now: number): Array<SimEntity> {
    const expired: Array<SimEntity> = []
    for (const [id, until] of this.leases) {
      if (until > now) continue
      const entity = this.world.entities.get(id)
      if (entity !== undefined) expired.push(entity)
    }
    for (const entity of expired) this.removePlayer(entity.playerId)
    return expired
  }

  private insert(id: number, playerId: string, x: number, y: number, z: number, lastSeq: number, now: number) {
    const entity: SimEntity = { id, playerId, x, y, z, vx: 0, vy: 0, vz: 0, lastSeq, buttons: 0 }
    this.world.entities.set(entity.id, entity)
    this.byPlayer.set(playerId, entity)
    this.leases.set(entity.id, now + this.options.leaseMs)
    this.grid.place(entity)
    return entity
  }

  /** Removes the player; returns its final state for a last write. */
  removePlayer(playerId: string): SimEntity | undefined {
    const entity = this.byPlayer.get(playerId)
    if (!entity) return undefined
    this.byPlayer.delete(playerId)
    this.world.entities.delete(entity.id)
    this.leases.delete(entity.id)
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
