import { Context, Layer } from "effect"
import type { InputBuffer } from "./InputBuffer.js"
import type { TransferState } from "./MeshBoundary.js"
import type { WorldEditRequest, WorldEditVerdict } from "./WorldEdits.js"

/**
 * The in-process fast path: regions active on this runner register their
 * input buffer here on activation and remove it in their scope's finalizer.
 * A co-located gateway pushes inputs straight into it (no entity message).
 */
export interface LocalRegion {
  readonly regionId: string
  /** The buffer the next tick consumes; the region swaps it each tick. */
  inputs(): InputBuffer
  /** A co-located gateway vouches for these entities' connections (see RegionRuntime leases). */
  renewLeases(entityIds: ReadonlyArray<number>, now: number): void
  /** Open worlds: neighbours in this process hand entities over and share ghosts by direct call. */
  acceptHandoff?(state: TransferState, pendingInputs: Uint8Array | undefined, now?: number): "accepted" | "duplicate" | "aborted"
  applyGhosts?(from: string, records: Uint8Array): void
  /** Open worlds: a co-located gateway hands a player's world edit over by direct call. */
  worldEdit?: ((playerId: string, edit: WorldEditRequest) => WorldEditVerdict) | undefined
}

export class LocalRegions extends Context.Tag("tessera/LocalRegions")<LocalRegions, {
  readonly get: (regionId: string) => LocalRegion | undefined
  readonly register: (region: LocalRegion) => void
  readonly unregister: (region: LocalRegion) => void
  readonly size: () => number
}>() {
  static readonly layer: Layer.Layer<LocalRegions> = Layer.sync(LocalRegions, () => {
    const regions = new Map<string, LocalRegion>()
    return {
      get: (regionId) => regions.get(regionId),
      register: (region) => void regions.set(region.regionId, region),
      // Only the registrant may remove itself: a re-activated region may already have replaced it.
      unregister: (region) => {
        if (regions.get(region.regionId) === region) regions.delete(region.regionId)
      },
      size: () => regions.size
    }
  })
}
