/**
 * The bots' command line, shared by `tessera bots` and `npm run bench:crowd`:
 * parses the flags, runs the crowd with a progress line on stderr, and prints
 * ONE JSON line on stdout. Resolves with the process exit code.
 */
import { runCrowd, stderrProgress } from "./Crowd.js"
import type { CrowdOptions } from "./Crowd.js"
import { CrowdArgsError, crowdUsage, parseCrowdArgs } from "./parseCrowdArgs.js"

const write = (stream: NodeJS.WriteStream, text: string) =>
  new Promise<void>((resolve) => stream.write(text, () => resolve()))

export const runCrowdCli = async (argv: ReadonlyArray<string>): Promise<number> => {
  if (argv.includes("--help") || argv.includes("-h")) {
    await write(process.stdout, `${crowdUsage}\n`)
    return 0
  }
  let options: CrowdOptions
  try {
    options = parseCrowdArgs(argv)
  } catch (error) {
    if (error instanceof CrowdArgsError) {
      await write(process.stderr, `bots: ${error.message}\n${crowdUsage}\n`)
      return 2
    }
    throw error
  }
  const progress = stderrProgress()
  try {
    const result = await runCrowd({ ...options, onProgress: progress.onProgress })
    progress.finish()
    await write(process.stdout, `${JSON.stringify(result)}\n`)
    return 0
  } catch (error) {
    progress.finish()
    await write(process.stderr, `bots failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
    return 1
  }
}
