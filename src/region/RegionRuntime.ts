import type { GameLogic, SimEntity, WorldState } from "./GameLogic.js"
import { InputBuffer } from "./InputBuffer.js"
import { InterestGrid } from "./InterestGrid.js"
import { CellSnapshotEncoder } from "./CellSnapshotEncoder.js"
import type { LocalRegion } from "./LocalRegions.js"
import { MeshBoundary, type MeshOptions, type TransferState } from "./MeshBoundary.js"
import type { AuthorityClaim } from "./mesh/AuthorityAudit.js"

/** An entity on its way to another region: frozen here until the destination answers. */
interface InFlight {
  readonly entity: SimEntity
  readonly transferId: string
  readonly pending: InputBuffer
}

export type HandoffAccept = "accepted" | "duplicate" | "aborted"

/** What a region needs from the outside world; all synchronous, no IO on the tick. */
export interface RegionPorts {
  /** Publishes one cell's frame to its topic. */
  publishCell(cellKey: string, frame: Uint8Array): void
  /** A player's entity changed interest cell (undefined `to` = left the region). */
  cellChanged(playerId: string, from: string | undefined, to: string | undefined): void
  /** Hands the player's latest state to the write-behind buffer. */
  persist(entity: SimEntity): void
  /** Open worlds: a player's entity arrived here by handoff from `from` (switch its route and cells). */
  arrived?(entity: SimEntity, from: string, cellKey: string): void
  /** Open worlds: a handoff settled (for the transfer log and metrics). */
  transferSettled?(t: { entityId: number; playerId: string; from: string; to: string; startedAt: number; durationMs: number; outcome: "ok" | "failed" }): void
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
  /** Open worlds only: boundaries, ghosts and handoffs. */
  readonly mesh: MeshBoundary | undefined
  private readonly inFlight = new Map<number, InFlight>()
  private readonly leaving: Array<{ entity: SimEntity; to: string }> = []
  /** Open worlds: the region's world edits (set by the region entity once its edits are loaded). */
  worldEdit: LocalRegion["worldEdit"] = undefined

  constructor(
    private readonly options: RegionOptions,
    private readonly logic: GameLogic,
    private readonly ports: RegionPorts,
    mesh?: MeshOptions
  ) {
    this.regionId = options.regionId
    this.grid = new InterestGrid(options.cellSize)
    this.encoder = new CellSnapshotEncoder(options.regionId)
    this.dt = 1 / options.tickRate
    this.mesh = mesh === undefined ? undefined : new MeshBoundary(mesh)
  }

  inputs(): InputBuffer {
    return this.pending
  }

  /** Players whose entity this region holds (in flight ones included until they settle). */
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

  /** Open worlds: a player whose entity id the world assigned (unique across its regions). */
  addPlayerWithId(playerId: string, entityId: number, at: { x: number; y: number; z: number }, now: number): SimEntity {
    const existing = this.byPlayer.get(playerId)
    if (existing) {
      this.leases.set(existing.id, now + this.options.leaseMs)
      return existing
    }
    if (this.mesh?.dropGhost(entityId)) this.grid.remove(entityId)
    return this.insert(entityId, playerId, at.x, at.y, at.z, 0, now)
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
    this.inFlight.delete(entity.id)
    this.mesh?.epochs.delete(entity.id)
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
  tick(now: number = Date.now()): number {
    const batch = this.pending
    this.pending = this.spare
    this.spare = batch
    const mesh = this.mesh
    if (mesh !== undefined) mesh.routeInputs(batch, this.world.entities, this.inFlight, now)
    this.logic.step(this.world, batch, this.dt)
    batch.clear()
    const tick = ++this.world.tick
    for (const entity of this.world.entities.values()) {
      const change = this.grid.place(entity)
      if (change !== undefined) this.ports.cellChanged(change.playerId, change.from, change.to)
    }
    if (mesh !== undefined) this.meshStep(mesh, tick, now)
    if (tick % this.options.persistEveryTicks === 0) this.persistAll()
    return this.encoder.encodeTick(this.grid, tick, this.publish)
  }

  private meshStep(mesh: MeshBoundary, tick: number, now: number): void {
    const leaving = this.leaving
    mesh.afterStep(this.world.entities.values(), tick, leaving)
    mesh.expireGhosts(tick, this.removeFromGrid)
    for (const { entity, to } of leaving) this.beginHandoff(mesh, entity, to, now)
    leaving.length = 0
  }

  /**
   * Step 1 of a handoff: the entity stops being simulated here (it stays
   * visible, frozen) and its state goes to the destination. Authority stays
   * here, at the current epoch, until the destination accepts at epoch + 1.
   */
  private beginHandoff(mesh: MeshBoundary, entity: SimEntity, to: string, now: number): void {
    const transfer = mesh.options.ledger.begin(entity.id, entity.playerId, mesh.epochOf(entity.id), to, now)
    this.world.entities.delete(entity.id)
    this.inFlight.set(entity.id, { entity, transferId: transfer.transferId, pending: new InputBuffer(8) })
    mesh.options.ports.handoff(transfer, {
      transferId: transfer.transferId,
      from: this.regionId,
      epoch: transfer.epoch,
      entityId: entity.id,
      playerId: entity.playerId,
      x: entity.x,
      y: entity.y,
      z: entity.z,
      vx: entity.vx,
      vy: entity.vy,
      vz: entity.vz,
      lastSeq: entity.lastSeq,
      buttons: entity.buttons
    })
  }

  /**
   * The last step of a handoff, on the source: "ok" drops the entity (inputs
   * that arrived meanwhile follow it), "failed" takes it back into the
   * simulation at its old epoch.
   */
  settleHandoff(transferId: string, outcome: "ok" | "failed", now: number = Date.now()): void {
    const mesh = this.mesh
    if (mesh === undefined) return
    const settled = outcome === "ok" ? mesh.options.ledger.complete(transferId, now) : mesh.options.ledger.fail(transferId, now)
    if (settled === undefined) return
    const flight = this.inFlight.get(settled.entityId)
    if (flight === undefined || flight.transferId !== transferId) return
    this.inFlight.delete(settled.entityId)
    const entity = flight.entity
    if (outcome === "ok") {
      this.byPlayer.delete(entity.playerId)
      this.leases.delete(entity.id)
      mesh.epochs.delete(entity.id)
      this.grid.remove(entity.id)
      if (flight.pending.count > 0) mesh.options.ports.forwardInputs(settled.to, flight.pending.toBytes())
    } else {
      this.world.entities.set(entity.id, entity)
      for (let i = 0; i < flight.pending.count; i++) {
        this.pending.push(flight.pending.entityId(i), flight.pending.seq(i), flight.pending.dx(i), flight.pending.dy(i), flight.pending.dz(i), flight.pending.buttons(i))
      }
    }
    this.ports.transferSettled?.({
      entityId: entity.id,
      playerId: entity.playerId,
      from: this.regionId,
      to: settled.to,
      startedAt: settled.startedAt,
      durationMs: settled.durationMs,
      outcome
    })
  }

  /**
   * Step 2, on the destination: accept once (fenced by the transfer id), take
   * authority at the new epoch and start simulating from the next tick.
   */
  acceptHandoff(state: TransferState, pendingInputs: Uint8Array | undefined, now: number = Date.now()): HandoffAccept {
    const mesh = this.mesh
    if (mesh === undefined) return "aborted"
    const verdict = mesh.options.ledger.accept(state.transferId)
    if (verdict !== "accepted") return verdict
    const previous = this.byPlayer.get(state.playerId)
    if (previous !== undefined && previous.id !== state.entityId) this.removePlayer(state.playerId)
    if (mesh.dropGhost(state.entityId)) this.grid.remove(state.entityId)
    const entity: SimEntity = {
      id: state.entityId,
      playerId: state.playerId,
      x: state.x,
      y: state.y,
      z: state.z,
      vx: state.vx,
      vy: state.vy,
      vz: state.vz,
      lastSeq: state.lastSeq,
      buttons: state.buttons
    }
    this.world.entities.set(entity.id, entity)
    this.byPlayer.set(entity.playerId, entity)
    this.leases.set(entity.id, now + this.options.leaseMs)
    mesh.epochs.set(entity.id, state.epoch)
    this.grid.place(entity)
    if (pendingInputs !== undefined && pendingInputs.byteLength > 0) this.pending.appendBytes(pendingInputs)
    this.ports.arrived?.(entity, state.from, this.grid.cellOf(entity.id) ?? "0,0,0")
    return "accepted"
  }

  /** The source gave up on a transfer: tell it whether we had already accepted it. */
  abortHandoff(transferId: string): "accepted" | "aborted" {
    return this.mesh?.options.ledger.abort(transferId) ?? "aborted"
  }

  /** A neighbour's ghosts near our border (read-only copies, shown in our cells). */
  applyGhosts(from: string, records: Uint8Array): void {
    this.mesh?.applyGhosts(
      from,
      this.world.tick,
      records,
      (id) => this.world.entities.has(id) || this.inFlight.has(id),
      this.placeInGrid,
      this.removeFromGrid
    )
  }

  /** Which entities this region claims authority over, at which epoch (for the invariant audit). */
  authorityClaims(): Array<AuthorityClaim> {
    const claims: Array<AuthorityClaim> = []
    const epochOf = (id: number) => this.mesh?.epochOf(id) ?? 0
    for (const id of this.world.entities.keys()) claims.push({ regionId: this.regionId, entityId: id, epoch: epochOf(id) })
    for (const id of this.inFlight.keys()) claims.push({ regionId: this.regionId, entityId: id, epoch: epochOf(id) })
    return claims
  }

  /** Entities in flight to another region (for tests and Info). */
  get inFlightCount(): number {
    return this.inFlight.size
  }

  private readonly placeInGrid = (entity: SimEntity): void => {
    this.grid.place(entity)
  }

  private readonly removeFromGrid = (entityId: number): void => {
    this.grid.remove(entityId)
  }

  persistAll(): void {
    for (const entity of this.world.entities.values()) this.ports.persist(entity)
    for (const flight of this.inFlight.values()) this.ports.persist(flight.entity)
  }

  private readonly publish = (cellKey: string, frame: Uint8Array): void => this.ports.publishCell(cellKey, frame)
}
