import { Duration, Effect } from "effect"
import { InputBuffer } from "../region/InputBuffer.js"
import type { LocalRegions } from "../region/LocalRegions.js"
import type { RegionInputBus } from "../region/RegionInputBus.js"
import { RegionEntity } from "../region/RegionEntity.js"
import type { WorldEditRequest, WorldEditVerdict } from "../region/WorldEdits.js"
import { GameError } from "../protocol/GameError.js"
import { ErrorCode } from "../protocol/Opcodes.js"

type RegionClient = Effect.Effect.Success<typeof RegionEntity.client>

/**
 * The gateway's path to regions. Routes one client input to its region. Co-located region: straight into
 * the region's next-tick buffer. Remote region: appended to this gateway's
 * batch for that region, sent as ONE message per region per flush (on the
 * region input bus across nodes, or as an entity message without one).
 */
export class InputRouter {
  private readonly remote = new Map<string, InputBuffer>()

  constructor(
    private readonly gatewayId: string,
    private readonly localRegions: LocalRegions["Type"],
    private readonly regions: RegionClient,
    private readonly runFork: (effect: Effect.Effect<void>) => void,
    private readonly bus: RegionInputBus["Type"]
  ) {}

  push(regionId: string, entityId: number, seq: number, dx: number, dy: number, dz: number, buttons: number): void {
    const local = this.localRegions.get(regionId)
    if (local !== undefined) {
      local.inputs().push(entityId, seq, dx, dy, dz, buttons)
      return
    }
    let batch = this.remote.get(regionId)
    if (batch === undefined) {
      batch = new InputBuffer()
      this.remote.set(regionId, batch)
    }
    batch.push(entityId, seq, dx, dy, dz, buttons)
  }

  /**
   * Routes one world edit to the player's region. Co-located: a direct call,
   * answered at once. Remote: one Edit entity message (edits are rare next to
   * inputs), answered by the returned effect, which fails with the region's
   * GameError or an Internal one when the region does not answer.
   */
  edit(
    regionId: string,
    playerId: string,
    edit: WorldEditRequest
  ): WorldEditVerdict | Effect.Effect<void, GameError> {
    const local = this.localRegions.get(regionId)
    if (local !== undefined) {
      return local.worldEdit?.(playerId, edit) ??
        { ok: false, code: ErrorCode.NotInWorld, message: "world edits are for open worlds" }
    }
    return this.regions(regionId).Edit({ playerId, ...edit }).pipe(
      Effect.timeout(Duration.seconds(2)),
      Effect.asVoid,
      Effect.catchAll((error) =>
        error instanceof GameError
          ? Effect.fail(error)
          : Effect.zipRight(
            Effect.logWarning("world edit not delivered", error).pipe(Effect.annotateLogs({ regionId })),
            Effect.fail(new GameError({ code: ErrorCode.Internal, message: "the region did not answer; try again" }))
          )
      )
    )
  }

  /**
   * Tells each region which of its entities this gateway still serves, so
   * their leases stay renewed (one call per region, every few seconds).
   */
  renewLeases(byRegion: ReadonlyMap<string, ReadonlyArray<number>>): void {
    const now = Date.now()
    for (const [regionId, entityIds] of byRegion) {
      const local = this.localRegions.get(regionId)
      if (local !== undefined) {
        local.renewLeases(entityIds, now)
        continue
      }
      this.sendRemote(regionId, "presence report", this.regions(regionId).Present({ gatewayId: this.gatewayId, entityIds }))
    }
  }

  /** Sends every pending remote batch (called once per gateway tick). */
  flush(): void {
    for (const [regionId, batch] of this.remote) {
      if (batch.count === 0) {
        this.remote.delete(regionId)
        continue
      }
      const bytes = batch.toBytes()
      batch.clear()
      if (this.bus.enabled) {
        this.bus.publish(regionId, bytes)
        continue
      }
      this.sendRemote(regionId, "input batch", this.regions(regionId).Inputs({ gatewayId: this.gatewayId, bytes }))
    }
  }

  /** Fire-and-forget to a region entity, forked and bounded: a remote send waits for the remote handler. */
  private sendRemote(regionId: string, what: string, send: Effect.Effect<void, unknown>): void {
    this.runFork(
      send.pipe(
        Effect.timeout(Duration.seconds(2)),
        Effect.catchAllCause((cause) => Effect.logWarning(`${what} not delivered`, cause)),
        Effect.annotateLogs({ regionId })
      )
    )
  }
}
