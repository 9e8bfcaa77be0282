#!/usr/bin/env node
// The installed `tessera` command: the bundled server (npm run build), or the sources through tsx.
import { existsSync } from "node:fs"

if (existsSync(new URL("../dist/tessera.mjs", import.meta.url))) {
  await import("../dist/tessera.mjs")
} else {
  const { register } = await import("tsx/esm/api")
  register()
  await import("../src/main.ts")
}
