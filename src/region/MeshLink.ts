import { Duration, Effect } from "effect"
import * as Metrics from "../observability/Metrics.js"
import type { LocalRegions } from "./LocalRegions.js"
import type { MeshPorts, TransferState } from "./MeshBoundary.js"
import type { RegionRuntime } from "./RegionRuntime.js"
import type { Effect as E } from "effect"

/** A handoff to another runner must answer within this; then the source asks whether it went through. */
const HANDOFF_TIMEOUT = Duration.seconds(2)

type RegionClient = (regionId: string) => {
  readonly Handoff: (payload: TransferState & { readonly inputs: Uint8Array }) => E.Effect<"accepted" | "duplicate" | "aborted", unknown>
  readonly AbortHandoff: (payload: { readonly transferId: string }) => E.Effect<"accepted" | "aborted", unknown>
  readonly Ghosts: (payload: { readonly from: string; readonly records: Uint8Array }) => E.Effect<void, unknown>
  readonly Inputs: (payload: { readonly gatewayId: string; readonly bytes: Uint8Array }) => E.Effect<void, unknown>
}

const EMPTY = new Uint8Array(0)

/**
 * The IO of a mesh region. A neighbour active in this process is called
 * directly, inside the tick (a handoff then settles before the tick ends, so
 * no audit ever sees it in flight); any other goes through an entity message.
 */
export const makeMeshPorts = (deps: {
  readonly regionId: string
  readonly runtime: () => RegionRuntime
  readonly localRegions: LocalRegions["Type"]
  readonly regions: RegionClient
  readonly fork: (effect: Effect.Effect<void>) => void
}): MeshPorts => {
  const { regionId, localRegions, regions, fork } = deps

  const remoteHandoff = (transferId: string, to: string, state: TransferState) =>
    regions(to).Handoff({ ...state, inputs: EMPTY }).pipe(
      Effect.timeout(HANDOFF_TIMEOUT),
      // No answer: fence the transfer off at the destination, or learn that it went through.
      Effect.catchAll(() => regions(to).AbortHandoff({ transferId }).pipe(Effect.timeout(HANDOFF_TIMEOUT))),
      Effect.map((verdict) => (verdict === "accepted" || verdict === "duplicate" ? "ok" as const : "failed" as const)),
      Effect.catchAllCause(() => Effect.succeed("failed" as const)),
      Effect.flatMap((outcome) => Effect.sync(() => deps.runtime().settleHandoff(transferId, outcome)))
    )

  return {
    handoff: (transfer, state) => {
      const local = localRegions.get(transfer.to)
      if (local?.acceptHandoff !== undefined) {
        const verdict = local.acceptHandoff(state, undefined)
        deps.runtime().settleHandoff(transfer.transferId, verdict === "aborted" ? "failed" : "ok")
        return
      }
      fork(remoteHandoff(transfer.transferId, transfer.to, state))
    },
    ghosts: (to, _tick, records) => {
      const local = localRegions.get(to)
      if (local?.applyGhosts !== undefined) return local.applyGhosts(regionId, records)
      fork(regions(to).Ghosts({ from: regionId, records }).pipe(Effect.timeout(HANDOFF_TIMEOUT), Effect.ignore))
    },
    forwardInputs: (to, bytes) => {
      Metrics.inputsForwardedTotal.inc()
      const local = localRegions.get(to)
      if (local !== undefined) return local.inputs().appendBytes(bytes)
      fork(regions(to).Inputs({ gatewayId: regionId, bytes }).pipe(Effect.timeout(HANDOFF_TIMEOUT), Effect.ignore))
    }
  }
}
