import { execFileSync } from "node:child_process"
import * as Path from "node:path"

/** Integration tests run the real artifact: build dist/tessera.mjs once before the run. */
export default function setup() {
  execFileSync(process.execPath, ["scripts/build.mjs"], { cwd: Path.resolve(import.meta.dirname, "../.."), stdio: "inherit" })
}
