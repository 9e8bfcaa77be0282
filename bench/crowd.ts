/**
 * Crowd load test against a running server:
 *   npm run bench:crowd -- --url ws://127.0.0.1:7350 --ccu 200 --room-size 50 --seconds 20 --server-pid PID
 * Progress goes to stderr once a second; the result is ONE JSON line on stdout.
 */
import { runCrowd, stderrProgress } from "../src/bots/Crowd.js"
import type { CrowdOptions } from "../src/bots/Crowd.js"
import { CrowdArgsError, crowdUsage, parseCrowdArgs } from "../src/bots/parseCrowdArgs.js"

const argv = process.argv.slice(2)
if (argv.includes("--help") || argv.includes("-h")) {
  process.stdout.write(`${crowdUsage}\n`)
  process.exit(0)
}

let options: CrowdOptions
try {
  options = parseCrowdArgs(argv)
} catch (error) {
  if (error instanceof CrowdArgsError) {
    process.stderr.write(`bench:crowd: ${error.message}\n${crowdUsage}\n`)
    process.exit(2)
  }
  throw error
}

const progress = stderrProgress()
try {
  const result = await runCrowd({ ...options, onProgress: progress.onProgress })
  progress.finish()
  // Sockets and keep-alive HTTP connections may linger a moment; once the line is out, leave.
  process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0))
} catch (error) {
  progress.finish()
  process.stderr.write(`bench:crowd failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
  process.exit(1)
}
