/**
 * One region's bookkeeping of the handoff protocol, both sides:
 *
 * - outgoing: begin -> complete (destination acked; we forward stray inputs
 *   for a while) or fail (we keep authority); timedOut lists transfers whose
 *   fate the caller must settle, e.g. by asking the destination to abort.
 * - incoming: accept and abort are fenced by transferId, so the race between
 *   a late accept and the source's abort has one outcome whichever arrives
 *   first: accept-then-abort answers "accepted" (the source drops its copy),
 *   abort-then-accept answers "aborted" (we never create a second copy).
 *
 * Pure: no clock, no IO; the caller passes `now`. accept/abort take no time,
 * so the ids they remember are stamped at the next sweep and forgotten
 * `idRetentionMs` later — never earlier, so a fence outlives any retry.
 */

export interface OutgoingTransfer {
  readonly transferId: string
  readonly entityId: number
  readonly playerId: string
  readonly from: string
  readonly to: string
  readonly epoch: number
  readonly startedAt: number
}

export interface HandoffLedgerOptions {
  /** How long inputs for a handed-over entity are forwarded to its new region. */
  readonly forwardTtlMs: number
  /** An outgoing transfer older than this is reported by timedOut. */
  readonly transferTimeoutMs: number
  /** How long incoming transfer ids are remembered; default max(10 * transferTimeoutMs, forwardTtlMs). */
  readonly idRetentionMs?: number
  /** Hard cap on remembered incoming ids (oldest forgotten first); default 100 000. */
  readonly maxRememberedIds?: number
  /**
   * Distinguishes this activation of the region (e.g. its start time), so a
   * restarted region's transfer ids never collide with ids a destination still
   * remembers. Default "0".
   */
  readonly incarnation?: string
}

export type SettledTransfer = OutgoingTransfer & { readonly durationMs: number }

interface Forward {
  readonly to: string
  readonly until: number
}

interface Remembered {
  readonly verdict: "accepted" | "aborted"
  /** The sweep time at which the id was first seen by a sweep. */
  stampedAt: number | undefined
}

export class HandoffLedger {
  readonly regionId: string
  private readonly forwardTtlMs: number
  private readonly transferTimeoutMs: number
  private readonly idRetentionMs: number
  private readonly maxRememberedIds: number
  private readonly incarnation: string
  private counter = 0
  private readonly byEntity = new Map<number, OutgoingTransfer>()
  private readonly byTransfer = new Map<string, OutgoingTransfer>()
  private readonly forwards = new Map<number, Forward>()
  private readonly incoming = new Map<string, Remembered>()

  constructor(regionId: string, options: HandoffLedgerOptions) {
    for (const [name, v] of [
      ["forwardTtlMs", options.forwardTtlMs],
      ["transferTimeoutMs", options.transferTimeoutMs]
    ] as const) {
      if (!(Number.isFinite(v) && v >= 0)) throw new Error(`handoff ledger: ${name} must be a finite number >= 0, got ${v}`)
    }
    this.regionId = regionId
    this.forwardTtlMs = options.forwardTtlMs
    this.transferTimeoutMs = options.transferTimeoutMs
    this.idRetentionMs = options.idRetentionMs ?? Math.max(10 * options.transferTimeoutMs, options.forwardTtlMs)
    this.maxRememberedIds = options.maxRememberedIds ?? 100_000
    this.incarnation = options.incarnation ?? "0"
    if (!(this.idRetentionMs >= 0)) throw new Error(`handoff ledger: idRetentionMs must be >= 0, got ${this.idRetentionMs}`)
    if (!(Number.isInteger(this.maxRememberedIds) && this.maxRememberedIds >= 1)) {
      throw new Error(`handoff ledger: maxRememberedIds must be an integer >= 1, got ${this.maxRememberedIds}`)
    }
  }

  /** Outgoing transfers in flight. */
  get inFlight(): number {
    return this.byEntity.size
  }

  /** Entities whose inputs are being forwarded (including expired ones not yet swept). */
  get forwarding(): number {
    return this.forwards.size
  }

  /** Incoming transfer ids remembered for fencing. */
  get rememberedIds(): number {
    return this.incoming.size
  }

  /** Starts handing entityId to `to`; returns the transfer (epoch = current+1). Throws if one is already in flight for that entity. */
  begin(entityId: number, playerId: string, currentEpoch: number, to: string, now: number): OutgoingTransfer {
    const existing = this.byEntity.get(entityId)
    if (existing !== undefined) {
      throw new Error(
        `region ${this.regionId}: entity ${entityId} is already being handed to ${existing.to} (${existing.transferId})`
      )
    }
    if (to === this.regionId) throw new Error(`region ${this.regionId}: cannot hand entity ${entityId} to itself`)
    this.counter++
    const transfer: OutgoingTransfer = {
      transferId: `${this.regionId}#${this.incarnation}.${this.counter}`,
      entityId,
      playerId,
      from: this.regionId,
      to,
      epoch: currentEpoch + 1,
      startedAt: now
    }
    // We own the entity again (it came back), so an old forward for it is void.
    this.forwards.delete(entityId)
    this.byEntity.set(entityId, transfer)
    this.byTransfer.set(transfer.transferId, transfer)
    return transfer
  }

  outgoing(entityId: number): OutgoingTransfer | undefined {
    return this.byEntity.get(entityId)
  }

  /** The destination acknowledged: the entity is no longer ours; inputs for it are forwarded to `to` for forwardTtlMs. */
  complete(transferId: string, now: number): SettledTransfer | undefined {
    const transfer = this.settle(transferId)
    if (transfer === undefined) return undefined
    this.forwards.set(transfer.entityId, { to: transfer.to, until: now + this.forwardTtlMs })
    return { ...transfer, durationMs: now - transfer.startedAt }
  }

  /** The destination refused or the call failed: we keep authority. */
  fail(transferId: string, now: number): SettledTransfer | undefined {
    const transfer = this.settle(transferId)
    return transfer === undefined ? undefined : { ...transfer, durationMs: now - transfer.startedAt }
  }

  /** Where inputs for an entity we no longer own go (undefined when unknown or expired). */
  forwardTo(entityId: number, now: number): string | undefined {
    const f = this.forwards.get(entityId)
    return f !== undefined && now < f.until ? f.to : undefined
  }

  /** Forgets the forward for an entity that is ours again. */
  clearForward(entityId: number): void {
    this.forwards.delete(entityId)
  }

  /** Transfers in flight longer than transferTimeoutMs, oldest first. */
  timedOut(now: number): ReadonlyArray<OutgoingTransfer> {
    const out: Array<OutgoingTransfer> = []
    // Insertion order is begin order, i.e. oldest first.
    for (const t of this.byTransfer.values()) if (now - t.startedAt > this.transferTimeoutMs) out.push(t)
    return out
  }

  /**
   * Incoming side, idempotent and fenced: accept a transferId once; a transferId that was aborted is refused.
   * Pass the entity id to drop a stale forward for an entity coming back to us.
   */
  accept(transferId: string, entityId?: number): "accepted" | "duplicate" | "aborted" {
    const seen = this.incoming.get(transferId)
    if (seen !== undefined) return seen.verdict === "accepted" ? "duplicate" : "aborted"
    this.remember(transferId, "accepted")
    if (entityId !== undefined) this.forwards.delete(entityId)
    return "accepted"
  }

  /** Source gave up: returns "accepted" if we already accepted it (so the source must drop the entity), else records it as aborted and returns "aborted". */
  abort(transferId: string): "accepted" | "aborted" {
    const seen = this.incoming.get(transferId)
    if (seen !== undefined) return seen.verdict
    this.remember(transferId, "aborted")
    return "aborted"
  }

  /** Forgets forwards past their ttl and incoming ids older than the retention (bounded memory). */
  sweep(now: number): void {
    for (const [entityId, f] of this.forwards) if (now >= f.until) this.forwards.delete(entityId)
    for (const [id, r] of this.incoming) {
      if (r.stampedAt === undefined) r.stampedAt = now
      else if (now - r.stampedAt >= this.idRetentionMs) this.incoming.delete(id)
    }
  }

  private settle(transferId: string): OutgoingTransfer | undefined {
    const transfer = this.byTransfer.get(transferId)
    if (transfer === undefined) return undefined
    this.byTransfer.delete(transferId)
    this.byEntity.delete(transfer.entityId)
    return transfer
  }

  private remember(transferId: string, verdict: "accepted" | "aborted"): void {
    this.incoming.set(transferId, { verdict, stampedAt: undefined })
    // Map iteration is insertion order: the first key is the oldest.
    while (this.incoming.size > this.maxRememberedIds) {
      const oldest = this.incoming.keys().next()
      if (oldest.done === true) break
      this.incoming.delete(oldest.value)
    }
  }
}
