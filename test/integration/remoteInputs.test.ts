import { Duration, Effect, Layer, Runtime } from "effect"
import { describe, expect, it } from "@effect/vitest"
import { makeServerLayer } from "../../src/cluster/ServerLayer.js"
import { parseRoles } from "../../src/cluster/Roles.js"
import { loadConfig } from "../../src/config/loadConfig.js"
import { InputRouter } from "../../src/gateway/InputRouter.js"
import { LocalRegions } from "../../src/region/LocalRegions.js"
import { RegionEntity } from "../../src/region/RegionEntity.js"
import { RegionInputBus } from "../../src/region/RegionInputBus.js"
import type { RegionRuntime } from "../../src/region/RegionRuntime.js"
import { tempDir } from "../support/ServerProcess.js"

// Every role but the gateway, on real SQLite cluster storage: the entity path a gateway on
// another node takes (one Inputs message per region per flush) instead of the in-process one.
const config = loadConfig({
  env: {},
  overrides: {
    server: { logLevel: "warning" },
    storage: { dataDir: tempDir("remote-inputs") },
    cluster: { simulateRemoteSerialization: true }
  }
})
const server = makeServerLayer(config, parseRoles(["region,session,scheduler,expert:chat"]))

describe("gateway -> region input batches over entity messages", () => {
  it.scopedLive("a batch flushed by the InputRouter reaches the region and moves the player", () =>
    Effect.gen(function*() {
      const regions = yield* RegionEntity.client
      const local = yield* LocalRegions
      const joined = yield* regions("arena.1").Join({ playerId: "remote-p", gatewayId: "gw-remote", resumed: false })
      const region = local.get("arena.1") as RegionRuntime
      const entity = region.entityOf("remote-p")!
      const x0 = entity.x

      // A router that sees no co-located regions, so it batches for the remote path.
      const noLocalRegions = { get: () => undefined, register: () => {}, unregister: () => {}, size: () => 0 }
      const runtime = yield* Effect.runtime<never>()
      const router = new InputRouter(
        "gw-remote",
        noLocalRegions,
        regions,
        (e) => void Runtime.runFork(runtime)(e),
        yield* RegionInputBus
      )
      for (let seq = 1; seq <= 10; seq++) {
        router.push("arena.1", joined.entityId, seq, 1, 0, 0, 0)
        router.flush()
        yield* Effect.sleep(Duration.millis(50))
      }
      yield* Effect.sleep(Duration.millis(200))
      expect(entity.lastSeq).toBe(10)
      expect(entity.x).toBeGreaterThan(x0 + 3)
    }).pipe(Effect.provide(Layer.fresh(server)))
  , 30_000)

  it.scopedLive("a malformed batch is dropped without disturbing the region", () =>
    Effect.gen(function*() {
      const regions = yield* RegionEntity.client
      const local = yield* LocalRegions
      yield* regions("arena.2").Join({ playerId: "p2", gatewayId: "gw", resumed: false })
      yield* regions("arena.2").Inputs({ gatewayId: "gw", bytes: new Uint8Array([1, 2, 3]) })
      const info = yield* regions("arena.2").Info()
      expect(info.players).toBe(1)
      expect(info.ticking).toBe(true)
      expect((local.get("arena.2") as RegionRuntime).entityOf("p2")).toBeDefined()
    }).pipe(Effect.provide(Layer.fresh(server)))
  , 30_000)
})
