/**
 * Crowd load test against a running server:
 *   npm run bench:crowd -- --url ws://127.0.0.1:7350 --ccu 200 --room-size 50 --seconds 20 --server-pid PID
 * Progress goes to stderr once a second; the result is ONE JSON line on stdout.
 * (The same as `tessera bots ...`.) Sockets may linger after the result: exit explicitly.
 */
import { runCrowdCli } from "../src/bots/runCrowdCli.js"

process.exit(await runCrowdCli(process.argv.slice(2)))
