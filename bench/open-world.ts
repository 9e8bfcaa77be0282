/**
 * Open-world load test against a running server: the crowd bots (random walk
 * at 20 Hz) in an open world, plus the server meshing figures read from the
 * server's /metrics at the start and the end of the measured window.
 *   node --import tsx bench/open-world.ts --url ws://127.0.0.1:7350 --ccu 1000 --experience frontier --server-pid PID
 * Takes the flags of bench/crowd.ts. Progress goes to stderr; the result is ONE JSON line on stdout:
 * the crowd result plus `mesh`: handoffs/s, handoff duration p50/p99 (upper bucket bounds) and mean,
 * failures, relocations/s, regions by level, players per region, and tick p99 per region (max and median).
 */
import { runCrowd, stderrProgress } from "../src/bots/Crowd.js"
import { CrowdArgsError, crowdUsage, parseCrowdArgs } from "../src/bots/parseCrowdArgs.js"

interface Sample {
  readonly at: number
  readonly text: string
}

/** `name{labels} value` lines of one metric family (exact name match, labels as one string). */
const series = (text: string, name: string): Array<{ labels: string; value: number }> => {
  const out: Array<{ labels: string; value: number }> = []
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue
    const rest = line.slice(name.length)
    if (rest[0] !== " " && rest[0] !== "{") continue
    const close = rest.indexOf("}")
    const labels = rest[0] === "{" ? rest.slice(1, close) : ""
    const value = Number(rest.slice(rest[0] === "{" ? close + 1 : 0).trim().split(" ")[0])
    out.push({ labels, value })
  }
  return out
}
const scalar = (text: string, name: string): number => series(text, name).find((s) => s.labels === "")?.value ?? 0
const label = (labels: string, key: string): string | undefined => new RegExp(`${key}="([^"]*)"`).exec(labels)?.[1]

/** Cumulative buckets (le -> count) of one histogram series, optionally filtered by a label. */
const buckets = (text: string, name: string, filter: (labels: string) => boolean = () => true): Map<string, number> => {
  const map = new Map<string, number>()
  for (const s of series(text, `${name}_bucket`)) {
    if (!filter(s.labels)) continue
    const le = label(s.labels, "le")!
    map.set(le, (map.get(le) ?? 0) + s.value)
  }
  return map
}

/** The smallest bucket bound holding quantile q of the window's observations (b - a); null without any. */
const quantileBound = (a: Map<string, number>, b: Map<string, number>, q: number): number | null => {
  const bounds = [...b.keys()].sort((x, y) => (x === "+Inf" ? 1 : y === "+Inf" ? -1 : Number(x) - Number(y)))
  const total = (b.get("+Inf") ?? 0) - (a.get("+Inf") ?? 0)
  if (total <= 0) return null
  for (const le of bounds) {
    if ((b.get(le) ?? 0) - (a.get(le) ?? 0) >= q * total) return le === "+Inf" ? Number.POSITIVE_INFINITY : Number(le)
  }
  return null
}

const ms = (seconds: number | null) => (seconds === null ? null : Number.isFinite(seconds) ? +(seconds * 1000).toFixed(3) : "over the top bucket")

const meshFigures = (start: Sample, end: Sample) => {
  const dt = (end.at - start.at) / 1000
  const delta = (name: string) => scalar(end.text, name) - scalar(start.text, name)
  const transfers = delta("tessera_authority_transfer_total")
  const durA = buckets(start.text, "tessera_authority_transfer_duration_seconds")
  const durB = buckets(end.text, "tessera_authority_transfer_duration_seconds")
  const durCount = delta("tessera_authority_transfer_duration_seconds_count")
  const durSum = delta("tessera_authority_transfer_duration_seconds_sum")

  // Tick p99 per region over the window (regions present at the end).
  const regions = new Set(series(end.text, "tessera_region_tick_duration_seconds_count").map((s) => label(s.labels, "region")!))
  const p99s: Array<number> = []
  for (const region of regions) {
    const only = (labels: string) => label(labels, "region") === region
    const p = quantileBound(buckets(start.text, "tessera_region_tick_duration_seconds", only), buckets(end.text, "tessera_region_tick_duration_seconds", only), 0.99)
    if (p !== null) p99s.push(p)
  }
  p99s.sort((a, b) => a - b)
  const players = series(end.text, "tessera_region_players").map((s) => s.value).sort((a, b) => a - b)
  const byLevel: Record<string, number> = {}
  for (const s of series(end.text, "tessera_mesh_regions")) if (s.value > 0) byLevel[label(s.labels, "level")!] = s.value
  const allTicks = quantileBound(buckets(start.text, "tessera_tick_duration_seconds"), buckets(end.text, "tessera_tick_duration_seconds"), 0.99)
  return {
    windowSeconds: +dt.toFixed(1),
    handoffs: transfers,
    handoffsPerSec: +(transfers / dt).toFixed(1),
    handoffFailures: delta("tessera_authority_transfer_failures_total"),
    handoffMs: {
      mean: durCount > 0 ? +((durSum / durCount) * 1000).toFixed(3) : null,
      p50: ms(quantileBound(durA, durB, 0.5)),
      p99: ms(quantileBound(durA, durB, 0.99))
    },
    relocationsPerSec: +(delta("tessera_relocations_total") / dt).toFixed(1),
    inputsForwardedPerSec: +(delta("tessera_inputs_forwarded_total") / dt).toFixed(1),
    splits: delta("tessera_mesh_splits_total"),
    merges: delta("tessera_mesh_merges_total"),
    regionsByLevel: byLevel,
    regions: regions.size,
    playersPerRegion: players.length === 0 ? null : { min: players[0], median: players[Math.floor(players.length / 2)], max: players[players.length - 1] },
    tickP99Ms: {
      allRegions: ms(allTicks),
      perRegionMedian: p99s.length === 0 ? null : ms(p99s[Math.floor(p99s.length / 2)]!),
      perRegionMax: p99s.length === 0 ? null : ms(p99s[p99s.length - 1]!)
    }
  }
}

const main = async (argv: ReadonlyArray<string>): Promise<number> => {
  let options
  try {
    options = parseCrowdArgs(argv)
  } catch (error) {
    if (error instanceof CrowdArgsError) {
      process.stderr.write(`open-world: ${error.message}\n${crowdUsage}\n`)
      return 2
    }
    throw error
  }
  const metricsUrl = `${options.url.replace(/^ws/, "http")}/metrics`
  const scrape = async (): Promise<Sample> => ({ at: Date.now(), text: await (await fetch(metricsUrl)).text() })
  let start: Promise<Sample> | undefined
  let end: Promise<Sample> | undefined
  const progress = stderrProgress()
  const result = await runCrowd({
    ...options,
    experience: options.experience ?? "frontier",
    onProgress: progress.onProgress,
    onWindow: async (edge) => {
      if (edge === "start") start = scrape()
      else {
        end = scrape()
        await end
      }
    }
  })
  progress.finish()
  if (start === undefined || end === undefined) throw new Error("the run ended before its measured window")
  const mesh = meshFigures(await start, await end)
  process.stdout.write(`${JSON.stringify({ bench: "open-world", ...result, mesh })}\n`)
  return 0
}

process.exit(await main(process.argv.slice(2)))
