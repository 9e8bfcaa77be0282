/**
 * Instance spawn time: each join of a one-player experience makes the
 * scheduler create a new instance (a Region entity activated on demand), so
 * join() latency through the SDK = placement + region activation + routing.
 *   node --import tsx bench/spawn.ts --url http://127.0.0.1:7350 --experience solo --count 200
 * Prints ONE JSON line: p50/p99/max of join latency for new instances, and of joins into existing ones.
 */
import WebSocket from "ws"
import { TesseraClient } from "../src/client/TesseraClient.js"

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback
}
const url = arg("url", "http://127.0.0.1:7350")
const experience = arg("experience", "solo")
const count = Number(arg("count", "200"))

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
const summary = (samples: Array<number>) => {
  const sorted = [...samples].sort((a, b) => a - b)
  const round = (v: number) => Math.round(v * 100) / 100
  return { n: sorted.length, p50: round(percentile(sorted, 50)), p99: round(percentile(sorted, 99)), max: round(sorted.at(-1) ?? NaN) }
}

const spawned: Array<number> = []
const worlds = new Set<string>()
const clients: Array<TesseraClient> = []
for (let i = 0; i < count; i++) {
  const client = await TesseraClient.guest(url, { deviceId: `spawn-${process.pid}-${i}` }, {
    WebSocket: WebSocket as never,
    webSocketOptions: { perMessageDeflate: false },
    pingIntervalMs: 0,
    reconnect: false
  })
  await client.connect()
  const started = performance.now()
  const joined = await client.join(experience)
  spawned.push(performance.now() - started)
  worlds.add(joined.worldId)
  clients.push(client)
}
await Promise.all(clients.map((c) => c.close()))
process.stdout.write(
  `${JSON.stringify({ bench: "spawn", experience, joins: count, instances: worlds.size, joinMs: summary(spawned) })}\n`,
  () => process.exit(0)
)
