/**
 * Matchmaking throughput of the pure Matchmaker core at a large queue:
 * N tickets (default 5000; ~60% solos, the rest parties of 2-5, party skill
 * ~ normal(1500, 300), 3 regions with a random home region at 15-80 ms and
 * 60-250 ms elsewhere, maxLatency 150 ms) are queued at t=0; then `tick` runs
 * once per simulated second until the queue is empty or stalls (no match for
 * `STALL_TICKS` ticks after every window has reached its maximum).
 * No ready check, no backfill, no timeouts (the timeout is far away) — this
 * measures matching alone. Only `tick` is timed; a smaller warm-up run first
 * lets the JIT settle, then `--runs` fresh queues (different seeds) are drained.
 *
 *   npx tsx bench/matchmaking.ts [--tickets 5000] [--match-size 10] [--runs 5] [--seed 1]
 *
 * Prints ONE JSON line. tickMs: wall time of every tick of every run (the first
 * tick of a run, which matches almost the whole queue, is also given on its
 * own, as the median over runs); ticketsMatchedPerSecond = tickets matched /
 * process CPU time (process.cpuUsage, user + system) spent inside tick.
 */
import { enqueue, makeMatchmakerState, type MatchMode, queuedTickets, type Ticket, tick } from "../src/experts/matchmaking/Matchmaker.js"

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback
}
const TICKETS = Number(arg("tickets", "5000"))
const MATCH_SIZE = Number(arg("match-size", "10"))
const SEED = Number(arg("seed", "1"))
const RUNS = Number(arg("runs", "5"))
const STALL_TICKS = 5
const MAX_TICKS = 600

const mode: MatchMode = {
  experienceId: "bench",
  mode: "squads",
  matchSize: MATCH_SIZE,
  initialSkillWindow: 50,
  skillWindowGrowthPerSecond: 10,
  maxSkillWindow: 300,
  ticketTimeoutMs: 3_600_000,
  readyCheckTimeoutMs: 0,
  maxLatencyMs: 150
}
const REGIONS = ["eu", "us", "ap"]

const makeRandom = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = seed
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

const generate = (n: number, seed: number): Array<Ticket> => {
  const rnd = makeRandom(seed)
  const normal = () => Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd())
  const tickets: Array<Ticket> = []
  for (let i = 0; i < n; i++) {
    const r = rnd()
    const size = Math.min(MATCH_SIZE, r < 0.6 ? 1 : r < 0.8 ? 2 : r < 0.9 ? 3 : r < 0.97 ? 4 : 5)
    const base = 1500 + normal() * 300
    const home = Math.floor(rnd() * REGIONS.length)
    const latencies: Record<string, number> = {}
    REGIONS.forEach((region, k) => {
      latencies[region] = Math.round(k === home ? 15 + rnd() * 65 : 60 + rnd() * 190)
    })
    tickets.push({
      ticketId: `t${i}`,
      experienceId: mode.experienceId,
      mode: mode.mode,
      players: Array.from({ length: size }, (_, j) => ({ playerId: `p${i}.${j}`, skill: base + normal() * 50 })),
      latencies,
      createdAt: 0
    })
  }
  return tickets
}

interface Run {
  readonly samples: Array<number>
  readonly cpuUs: number
  readonly matches: number
  readonly matchedTickets: number
  readonly matchedPlayers: number
  readonly remaining: number
  readonly ticks: number
}

const run = (n: number, seed: number): Run => {
  const state = makeMatchmakerState([mode])
  for (const t of generate(n, seed)) {
    const result = enqueue(state, t)
    if (!result.ok) throw new Error(result.reason)
  }
  const windowMaxedAt = ((mode.maxSkillWindow - mode.initialSkillWindow) / mode.skillWindowGrowthPerSecond) * 1000
  const samples: Array<number> = []
  let cpuUs = 0
  let matches = 0
  let matchedTickets = 0
  let matchedPlayers = 0
  let idle = 0
  let ticks = 0
  while (queuedTickets(state) > 0 && ticks < MAX_TICKS) {
    const now = ticks * 1000
    const cpu0 = process.cpuUsage()
    const t0 = process.hrtime.bigint()
    const events = tick(state, now)
    const ms = Number(process.hrtime.bigint() - t0) / 1e6
    const cpu = process.cpuUsage(cpu0)
    ticks++
    samples.push(ms)
    cpuUs += cpu.user + cpu.system
    let matchedNow = 0
    for (const e of events) {
      if (e._tag !== "MatchReady") continue
      matches++
      matchedNow++
      matchedTickets += e.tickets.length
      matchedPlayers += e.players.length
    }
    idle = matchedNow === 0 && now >= windowMaxedAt ? idle + 1 : 0
    if (idle >= STALL_TICKS) break
  }
  return { samples, cpuUs, matches, matchedTickets, matchedPlayers, remaining: queuedTickets(state), ticks }
}

run(Math.min(1000, TICKETS), SEED + 1000) // warm-up
const runs = Array.from({ length: RUNS }, (_, i) => run(TICKETS, SEED + i))
const sum = (f: (r: Run) => number) => runs.reduce((acc, r) => acc + f(r), 0)
const pct = (values: ReadonlyArray<number>, p: number) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!
}
const samples = runs.flatMap((r) => r.samples)
const round = (v: number, d = 3) => Math.round(v * 10 ** d) / 10 ** d
const perRun = (f: (r: Run) => number) => Math.round(sum(f) / RUNS)
process.stdout.write(
  JSON.stringify({
    bench: "matchmaking",
    node: process.version,
    arch: process.arch,
    tickets: TICKETS,
    matchSize: MATCH_SIZE,
    runs: RUNS,
    // per run (mean over runs)
    matchedPlayers: perRun((r) => r.matchedPlayers),
    matchedTickets: perRun((r) => r.matchedTickets),
    matches: perRun((r) => r.matches),
    ticks: perRun((r) => r.ticks),
    remaining: perRun((r) => r.remaining),
    tickMs: {
      firstTickP50: round(pct(runs.map((r) => r.samples[0]!), 0.5)),
      p50: round(pct(samples, 0.5)),
      p99: round(pct(samples, 0.99)),
      max: round(pct(samples, 1))
    },
    ticketsMatchedPerSecond: Math.round(sum((r) => r.matchedTickets) / (sum((r) => r.cpuUs) / 1e6))
  }) + "\n"
)
