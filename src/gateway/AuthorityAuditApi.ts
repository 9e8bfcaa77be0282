import { Duration, Effect, type Exit } from "effect"
import type { TemplatedApp } from "uWebSockets.js"
import { audit } from "../region/mesh/AuthorityAudit.js"
import type { MeshDirectories } from "../region/MeshDirectories.js"
import { openWorldId } from "../region/WorldIds.js"
import { json } from "./HttpApi.js"

/**
 * The invariant checker of server meshing, over HTTP (dev mode only): asks
 * every leaf region of an open world which entities it claims, at which
 * epoch, and audits that each entity has exactly one authority.
 * `GET /v1/debug/authority?experience=<id>` -> { version, regions, entities, violations }.
 */
export const installAuthorityAuditApi = (
  app: TemplatedApp,
  deps: {
    readonly openExperiences: ReadonlyArray<string>
    readonly directories: MeshDirectories["Type"]
    readonly regions: (regionId: string) => { readonly Authority: () => Effect.Effect<ReadonlyArray<{ regionId: string; entityId: number; epoch: number }>, unknown> }
    readonly run: <A, E>(effect: Effect.Effect<A, E>, onExit: (exit: Exit.Exit<A, E>) => void) => void
  }
): void => {
  app.get("/v1/debug/authority", (res, req) => {
    const experience = req.getQuery("experience") ?? ""
    let aborted = false
    res.onAborted(() => {
      aborted = true
    })
    if (!deps.openExperiences.includes(experience)) {
      json(res, "404 Not Found", { error: { code: "not_found", message: `no open world "${experience}"` } })
      return
    }
    const report = Effect.gen(function*() {
      const directory = yield* deps.directories.get(openWorldId(experience))
      const leaves = directory.leafIds()
      const claims = (yield* Effect.forEach(
        leaves,
        (regionId) => deps.regions(regionId).Authority().pipe(Effect.timeout(Duration.seconds(3))),
        { concurrency: 16 }
      )).flat()
      return {
        version: directory.version,
        regions: leaves.length,
        entities: new Set(claims.map((c) => c.entityId)).size,
        violations: audit(claims)
      }
    })
    deps.run(report, (exit) => {
      if (aborted) return
      if (exit._tag === "Success") json(res, "200 OK", exit.value)
      else json(res, "503 Service Unavailable", { error: { code: "audit_failed", message: "a region did not answer" } })
    })
  })
}
