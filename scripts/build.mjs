// Bundles the server into dist/tessera.mjs: one file, ~0.4 s cold start and half the
// memory of running the TypeScript sources through a loader. Native modules stay external.
// The source map is written but not loaded by default (it costs ~100 MB of RSS): set
// NODE_OPTIONS=--enable-source-maps to get TypeScript stack traces.
import { build } from "esbuild"

await build({
  entryPoints: ["src/main.ts"],
  outfile: "dist/tessera.mjs",
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  sourcemap: "linked",
  logLevel: "warning",
  external: ["uWebSockets.js", "better-sqlite3", "msgpackr", "msgpackr-extract", "@parcel/watcher"],
  // Bundled CommonJS dependencies call require(): give the ESM bundle one.
  banner: { js: "import { createRequire as __tesseraRequire } from 'node:module'; const require = __tesseraRequire(import.meta.url);" }
})
