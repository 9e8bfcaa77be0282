#!/usr/bin/env bash
# The crowd measurement: one server pinned to core 0, the bots pinned to core 1.
#
#   bench/crowd.sh                       # CCUs 200 1200 2000, rooms of 50, 20 s windows
#   CCUS="200" DURATION=10 bench/crowd.sh
#
# stdout: one JSON line for the boot ({"bench":"crowd-boot","coldStartMs","idleRssMB"}),
# then one JSON line per CCU (the CrowdResult of bench/crowd.ts). Progress and the
# server log location go to stderr. Only the server started here is ever killed.
#
# Env: PORT (7350), CCUS ("200 1200 2000"), DURATION (20, seconds per window),
#      RAMP (200 bots/s), PAUSE (3, seconds between runs), SERVER_CORE (0), BOT_CORE (1),
#      KEEP_DATA (1 keeps the temp data dir and server log), CONFIG (bench/crowd.toml),
#      BOT_SCRIPT (bench/crowd.ts; bench/open-world.sh runs bench/open-world.ts), BOT_ARGS (extra bot flags).
set -euo pipefail

cd "$(dirname "$0")/.."

PORT=${PORT:-7350}
CCUS=${CCUS:-200 1200 2000}
ROOM_SIZE=50
DURATION=${DURATION:-20}
RAMP=${RAMP:-200}
PAUSE=${PAUSE:-3}
SERVER_CORE=${SERVER_CORE:-0}
BOT_CORE=${BOT_CORE:-1}
CONFIG=${CONFIG:-bench/crowd.toml}
BOT_SCRIPT=${BOT_SCRIPT:-bench/crowd.ts}
read -r -a bot_args <<<"${BOT_ARGS:-}"
BASE="http://127.0.0.1:${PORT}"

log() { printf 'crowd.sh: %s\n' "$*" >&2; }

# Pin only when there are the cores to pin to.
server_pin=()
bot_pin=()
if command -v taskset >/dev/null 2>&1 && [ "$(nproc --all 2>/dev/null || echo 1)" -ge 2 ]; then
  server_pin=(taskset -c "$SERVER_CORE")
  bot_pin=(taskset -c "$BOT_CORE")
else
  log "warning: taskset or a second core is missing; server and bots are NOT pinned"
fi

if curl -fsS -o /dev/null --max-time 1 "${BASE}/health" 2>/dev/null; then
  log "something already answers on port ${PORT}; set PORT to a free port"
  exit 1
fi

DATA_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tessera-crowd.XXXXXX")
SERVER_LOG="${DATA_DIR}/server.log"
SERVER_PID=""

cleanup() {
  local status=$?
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 150); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
      log "server ${SERVER_PID} did not stop in 15 s; killing it"
      kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ "${KEEP_DATA:-0}" = "1" ] || [ "$status" -ne 0 ]; then
    log "server data and log kept in ${DATA_DIR}"
  else
    rm -rf "$DATA_DIR"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# ---- boot: spawn -> /ready answers 200 (the bundle `npm start` runs, built first) ----
node scripts/build.mjs
spawned_at=$(now_ms)
${server_pin[@]+"${server_pin[@]}"} node dist/tessera.mjs serve \
  --port "$PORT" --data-dir "$DATA_DIR" --config "$CONFIG" >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!
log "server pid ${SERVER_PID}, log ${SERVER_LOG}"

ready=0
for _ in $(seq 1 3000); do # up to ~60 s
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    log "server exited during boot; last log lines:"
    tail -n 30 "$SERVER_LOG" >&2 || true
    exit 1
  fi
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "${BASE}/ready" 2>/dev/null || true)
  if [ "$code" = "200" ]; then
    ready=1
    break
  fi
  sleep 0.02
done
ready_at=$(now_ms)
if [ "$ready" -ne 1 ]; then
  log "server not ready after 60 s; last log lines:"
  tail -n 30 "$SERVER_LOG" >&2 || true
  exit 1
fi
cold_start_ms=$((ready_at - spawned_at))

# Idle RSS: booted and ready, before any bot.
sleep 1
idle_rss_kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/${SERVER_PID}/status")
idle_rss_mb=$(awk -v kb="$idle_rss_kb" 'BEGIN { printf "%.1f", kb / 1024 }')
printf '{"bench":"crowd-boot","coldStartMs":%d,"idleRssMB":%s}\n' "$cold_start_ms" "$idle_rss_mb"

# ---- one run per CCU ----
failures=0
first=1
for ccu in $CCUS; do
  if [ "$first" -ne 1 ]; then sleep "$PAUSE"; fi
  first=0
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    log "server died before the ccu=${ccu} run; last log lines:"
    tail -n 30 "$SERVER_LOG" >&2 || true
    exit 1
  fi
  log "ccu=${ccu}: rooms of ${ROOM_SIZE}, ${DURATION}s window"
  if ! ${bot_pin[@]+"${bot_pin[@]}"} node --import tsx "$BOT_SCRIPT" \
    --url "ws://127.0.0.1:${PORT}" --ccu "$ccu" --room-size "$ROOM_SIZE" ${bot_args[@]+"${bot_args[@]}"} \
    --seconds "$DURATION" --ramp "$RAMP" --server-pid "$SERVER_PID"; then
    log "ccu=${ccu}: the bot run failed"
    failures=$((failures + 1))
  fi
done

[ "$failures" -eq 0 ]
