import { SNAPSHOT_RECORD_BYTES, writeSnapshotRecord } from "../protocol/Messages.js"
import type { SimEntity } from "./GameLogic.js"
import { InputBuffer } from "./InputBuffer.js"
import type { HandoffLedger, OutgoingTransfer } from "./mesh/HandoffLedger.js"
import { boundsOf, type Box, regionIdOf, type RegionKey } from "./mesh/MeshGeometry.js"
import type { RegionDirectory } from "./mesh/RegionDirectory.js"

/** An entity's whole state as it crosses from one region to another. */
export interface TransferState {
  readonly transferId: string
  readonly from: string
  readonly epoch: number
  readonly entityId: number
  readonly playerId: string
  readonly x: number
  readonly y: number
  readonly z: number
  readonly vx: number
  readonly vy: number
  readonly vz: number
  readonly lastSeq: number
  readonly buttons: number
}

/** The IO a mesh region asks for; all calls are made from the tick, none may block. */
export interface MeshPorts {
  /**
   * Hand `state` to `transfer.to`. The caller settles it later (or at once, in
   * process) with `RegionRuntime.settleHandoff`.
   */
  handoff(transfer: OutgoingTransfer, state: TransferState): void
  /** This tick's ghosts for one neighbour (snapshot records; empty = none any more). */
  ghosts(to: string, tick: number, records: Uint8Array): void
  /** Inputs that reached us for an entity another region now owns. */
  forwardInputs(to: string, bytes: Uint8Array): void
}

export interface MeshOptions {
  readonly worldId: string
  readonly key: RegionKey
  /** The current directory (it changes when regions split or merge). */
  readonly directory: () => RegionDirectory
  readonly ledger: HandoffLedger
  readonly ports: MeshPorts
}

interface Ghost {
  readonly entity: SimEntity
  from: string
  seenTick: number
  stamp: number
}

/** Ghosts not refreshed for this many ticks are dropped (their source stopped sending). */
const GHOST_STALE_TICKS = 10

/**
 * The open-world side of a region: which of its entities cross a boundary
 * (handoff, with the directory's hysteresis), which are near enough to a
 * neighbour to be replicated there as ghosts, and where inputs for entities
 * that left are forwarded. Pure bookkeeping; IO goes through MeshPorts.
 */
export class MeshBoundary {
  readonly regionId: string
  readonly box: Box
  /** entity id -> authority epoch (raised by one at every handoff). */
  readonly epochs = new Map<number, number>()
  /** Read-only copies of neighbours' entities near our border. */
  readonly ghosts = new Map<number, Ghost>()
  /** The same ghosts by the region that sends them, so each batch only looks at its own. */
  private readonly ghostsBySource = new Map<string, Map<number, Ghost>>()
  /** Bumped per applied batch: a ghost of the source not stamped by this batch has left its overlap zone. */
  private applyStamp = 0
  private readonly inner: Box
  private readonly batches = new Map<string, { view: DataView; bytes: Uint8Array; used: number }>()
  /** Neighbours that got a non-empty ghost batch last tick (they get an empty one when it empties). */
  private ghostedLastTick = new Set<string>()
  private readonly forwards = new Map<string, InputBuffer>()
  /** Reused per entity by afterStep (the neighbours it is ghosted to). */
  private readonly ghostTargets: Array<string> = []

  constructor(readonly options: MeshOptions) {
    this.regionId = regionIdOf(options.worldId, options.key)
    const directory = options.directory()
    this.box = boundsOf(directory.geometry, options.key)
    const o = directory.geometry.overlap
    this.inner = {
      minX: this.box.minX + o,
      minY: this.box.minY + o,
      minZ: this.box.minZ + o,
      maxX: this.box.maxX - o,
      maxY: this.box.maxY - o,
      maxZ: this.box.maxZ - o
    }
  }

  epochOf(entityId: number): number {
    return this.epochs.get(entityId) ?? 0
  }

  /**
   * Splits a tick's inputs: those for entities another region now owns are
   * forwarded there (not lost), those for entities in flight are kept for
   * the transfer's outcome. Returns true if anything was taken out.
   */
  routeInputs(
    batch: InputBuffer,
    owned: ReadonlyMap<number, SimEntity>,
    inFlight: ReadonlyMap<number, { pending: InputBuffer }>,
    now: number
  ): void {
    const n = batch.count
    for (let i = 0; i < n; i++) {
      const id = batch.entityId(i)
      if (owned.has(id)) continue
      const flight = inFlight.get(id)
      if (flight !== undefined) {
        flight.pending.push(id, batch.seq(i), batch.dx(i), batch.dy(i), batch.dz(i), batch.buttons(i))
        continue
      }
      const to = this.options.ledger.forwardTo(id, now)
      if (to === undefined) continue
      let buffer = this.forwards.get(to)
      if (buffer === undefined) this.forwards.set(to, (buffer = new InputBuffer(16)))
      buffer.push(id, batch.seq(i), batch.dx(i), batch.dy(i), batch.dz(i), batch.buttons(i))
    }
    if (this.forwards.size === 0) return
    for (const [to, buffer] of this.forwards) {
      if (buffer.count > 0) this.options.ports.forwardInputs(to, buffer.toBytes())
      buffer.clear()
    }
    this.forwards.clear()
  }

  /**
   * After the step: the entities that must move to another region (a region
   * that is no longer a leaf, after a split or merge, hands over everything),
   * and this tick's ghost batches for the neighbours.
   */
  afterStep(entities: Iterable<SimEntity>, tick: number, leaving: Array<{ entity: SimEntity; to: string }>): void {
    const directory = this.options.directory()
    const self = this.regionId
    const isLeaf = directory.hasLeafId(self)
    const targets = this.ghostTargets
    for (const e of entities) {
      const target = isLeaf ? directory.handoffTargetId(e, self) : directory.locateId(e)
      if (target !== undefined && target !== self) {
        leaving.push({ entity: e, to: target })
        continue
      }
      if (!isLeaf || this.insideInner(e)) continue
      directory.ghostTargetIds(e, self, targets)
      for (let i = 0; i < targets.length; i++) this.addGhostRecord(targets[i]!, e)
    }
    this.flushGhosts(tick)
  }

  /** Replaces the ghosts `from` sent with this batch; returns entities to (re)place in the grid and ids to remove. */
  applyGhosts(
    from: string,
    tick: number,
    records: Uint8Array,
    isOwned: (entityId: number) => boolean,
    place: (entity: SimEntity) => void,
    remove: (entityId: number) => void
  ): void {
    const view = new DataView(records.buffer, records.byteOffset, records.byteLength)
    const stamp = ++this.applyStamp
    let mine = this.ghostsBySource.get(from)
    if (mine === undefined) this.ghostsBySource.set(from, (mine = new Map()))
    for (let o = 0; o + SNAPSHOT_RECORD_BYTES <= records.byteLength; o += SNAPSHOT_RECORD_BYTES) {
      const id = view.getUint32(o, true)
      if (isOwned(id)) continue
      let ghost = this.ghosts.get(id)
      if (ghost === undefined) {
        ghost = {
          entity: { id, playerId: "", x: 0, y: 0, z: 0, vx: 0, vy: 0, vz: 0, lastSeq: 0, buttons: 0 },
          from,
          seenTick: tick,
          stamp
        }
        this.ghosts.set(id, ghost)
      } else if (ghost.from !== from) {
        // The entity moved on to another neighbour, which now sends it.
        this.ghostsBySource.get(ghost.from)?.delete(id)
        ghost.from = from
      }
      mine.set(id, ghost)
      ghost.seenTick = tick
      ghost.stamp = stamp
      ghost.entity.x = view.getFloat32(o + 4, true)
      ghost.entity.y = view.getFloat32(o + 8, true)
      ghost.entity.z = view.getFloat32(o + 12, true)
      ghost.entity.lastSeq = view.getUint32(o + 16, true)
      place(ghost.entity)
    }
    for (const [id, ghost] of mine) {
      if (ghost.stamp !== stamp) {
        mine.delete(id)
        this.ghosts.delete(id)
        remove(id)
      }
    }
  }

  /** Drops ghosts whose source went quiet; `localTick` is this region's tick. */
  expireGhosts(localTick: number, remove: (entityId: number) => void): void {
    for (const [id, ghost] of this.ghosts) {
      if (localTick - ghost.seenTick > GHOST_STALE_TICKS) {
        this.forget(id, ghost)
        remove(id)
      }
    }
  }

  /** Forgets a ghost (its entity became ours). */
  dropGhost(entityId: number): boolean {
    const ghost = this.ghosts.get(entityId)
    if (ghost === undefined) return false
    this.forget(entityId, ghost)
    return true
  }

  private forget(id: number, ghost: Ghost): void {
    this.ghosts.delete(id)
    this.ghostsBySource.get(ghost.from)?.delete(id)
  }

  private insideInner(p: { x: number; y: number; z: number }): boolean {
    const b = this.inner
    return p.x >= b.minX && p.x < b.maxX && p.y >= b.minY && p.y < b.maxY && p.z >= b.minZ && p.z < b.maxZ
  }

  private addGhostRecord(to: string, e: SimEntity): void {
    let batch = this.batches.get(to)
    if (batch === undefined) {
      const bytes = new Uint8Array(16 * SNAPSHOT_RECORD_BYTES)
      batch = { bytes, view: new DataView(bytes.buffer), used: 0 }
      this.batches.set(to, batch)
    }
    if (batch.used + SNAPSHOT_RECORD_BYTES > batch.bytes.byteLength) {
      const bytes = new Uint8Array(batch.bytes.byteLength * 2)
      bytes.set(batch.bytes.subarray(0, batch.used))
      batch.bytes = bytes
      batch.view = new DataView(bytes.buffer)
    }
    writeSnapshotRecord(batch.view, batch.used, e.id, e.x, e.y, e.z, e.lastSeq > 0 ? e.lastSeq : 0)
    batch.used += SNAPSHOT_RECORD_BYTES
  }

  private flushGhosts(tick: number): void {
    const sent = new Set<string>()
    for (const [to, batch] of this.batches) {
      if (batch.used === 0) continue
      // A copy: the receiver may keep it (remote) while we reuse the batch next tick.
      this.options.ports.ghosts(to, tick, batch.bytes.slice(0, batch.used))
      batch.used = 0
      sent.add(to)
    }
    for (const to of this.ghostedLastTick) {
      if (!sent.has(to)) this.options.ports.ghosts(to, tick, new Uint8Array(0))
    }
    this.ghostedLastTick = sent
  }
}
