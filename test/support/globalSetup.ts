import { execFileSync } from "node:child_process"
import * as Path from "node:path"

/**
 * Integration tests run the real artifact: build dist/tessera.mjs once before the run.
 * TESSERA_SKIP_BUILD=1 skips it for unit-only runs, so parallel runs never race on the bundle.
 */
export default function setup() {
  if (process.env.TESSERA_SKIP_BUILD === "1") return
  execFileSync(process.execPath, ["scripts/build.mjs"], { cwd: Path.resolve(import.meta.dirname, "../.."), stdio: "inherit" })
}
