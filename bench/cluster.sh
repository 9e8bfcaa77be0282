#!/usr/bin/env bash
# The multi-node crowd measurement: four real processes of the binary on loopback forming one
# cluster (socket runners, PostgreSQL, Redis): gateway A, gateway B, region+session, and
# expert:chat+scheduler, plus two bot processes (half the bots each, one per gateway). Nothing is
# pinned: six processes and the databases share this machine's two cores.
#
#   bash bench/cluster.sh                  # CCUS "1000 2000", rooms of 50, 15 s windows
#   CCUS="1000" DURATION=10 bash bench/cluster.sh
# RAMP (20 bots/s per bot process): joins cross three processes; faster ramps time joins out here.
#
# stdout: one JSON line per CCU: both bot results and each server process's CPU % and RSS over
# the window. Needs PostgreSQL and Redis on 127.0.0.1 (a database and key prefix of its own, both
# removed at the end). Only the processes started here are ever stopped, by pid.
set -euo pipefail
cd "$(dirname "$0")/.."

CCUS=${CCUS:-1000 2000}
DURATION=${DURATION:-15}
RAMP=${RAMP:-20}
BASE_PORT=${BASE_PORT:-7600}
CONFIG=${CONFIG:-bench/crowd.toml}
DB="tessera_bench_$$"
PREFIX="tessera-bench:$$:"
log() { printf 'cluster.sh: %s\n' "$*" >&2; }

node scripts/build.mjs
psql -h 127.0.0.1 -U postgres -d test -q -c "CREATE DATABASE ${DB}"
LOGDIR=$(mktemp -d "${TMPDIR:-/tmp}/tessera-cluster.XXXXXX")
declare -A PIDS=()
cleanup() {
  for name in "${!PIDS[@]}"; do kill -TERM "${PIDS[$name]}" 2>/dev/null || true; done
  for name in "${!PIDS[@]}"; do
    for _ in $(seq 1 150); do kill -0 "${PIDS[$name]}" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "${PIDS[$name]}" 2>/dev/null || true
  done
  psql -h 127.0.0.1 -U postgres -d test -q -c "DROP DATABASE IF EXISTS ${DB} WITH (FORCE)" || true
  redis-cli -h 127.0.0.1 --scan --pattern "${PREFIX}*" | xargs -r redis-cli -h 127.0.0.1 DEL >/dev/null || true
}
trap cleanup EXIT

start() { # name roles http-port runner-port
  TESSERA_STORAGE_BACKEND=postgres TESSERA_STORAGE_POSTGRES_URL="postgres://postgres@127.0.0.1:5432/${DB}" \
  TESSERA_CLUSTER_TRANSPORT=socket TESSERA_CLUSTER_RUNNER_PORT="$4" TESSERA_CLUSTER_RUNNER_LISTEN_HOST=127.0.0.1 \
  TESSERA_REDIS_ENABLED=true TESSERA_REDIS_PREFIX="$PREFIX" \
    node dist/tessera.mjs serve --roles "$2" --port "$3" --config "$CONFIG" \
      --data-dir "$LOGDIR/$1" >"$LOGDIR/$1.log" 2>&1 &
  PIDS[$1]=$!
}
start gatewayA gateway $((BASE_PORT)) 34600
start gatewayB gateway $((BASE_PORT + 1)) 34601
start region region,session $((BASE_PORT + 2)) 34602
start control expert:chat,scheduler $((BASE_PORT + 3)) 34603
for port in $BASE_PORT $((BASE_PORT + 1)) $((BASE_PORT + 2)) $((BASE_PORT + 3)); do
  for _ in $(seq 1 600); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${port}/ready" || true)" = "200" ] && break
    sleep 0.1
  done
done
log "cluster ready (logs in ${LOGDIR})"

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
rss_mb() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

for ccu in $CCUS; do
  half=$((ccu / 2))
  log "ccu=${ccu}: ${half} bots on each gateway"
  node --import tsx bench/crowd.ts --url "ws://127.0.0.1:${BASE_PORT}" --ccu "$half" \
    --seconds "$DURATION" --device-prefix "a${ccu}" --ramp "$RAMP" >"$LOGDIR/bots-a-${ccu}.json" 2>"$LOGDIR/bots-a-${ccu}.err" &
  bots_a=$!
  node --import tsx bench/crowd.ts --url "ws://127.0.0.1:$((BASE_PORT + 1))" --ccu "$half" \
    --seconds "$DURATION" --device-prefix "b${ccu}" --ramp "$RAMP" >"$LOGDIR/bots-b-${ccu}.json" 2>"$LOGDIR/bots-b-${ccu}.err" &
  bots_b=$!
  # The bots ramp (ccu/2 at RAMP/s each) and warm up 2 s before their window: sample the servers over the same span.
  sleep $(( half / RAMP + 3 ))
  declare -A before=()
  for name in "${!PIDS[@]}"; do before[$name]=$(cpu_ticks "${PIDS[$name]}"); done
  sleep "$DURATION"
  servers=""
  for name in gatewayA gatewayB region control; do
    used=$(( $(cpu_ticks "${PIDS[$name]}") - ${before[$name]} ))
    pct=$(awk -v t="$used" -v s="$DURATION" 'BEGIN { printf "%.1f", t / s }')
    servers="${servers}${servers:+,}\"${name}\":{\"cpuPct\":${pct},\"rssMB\":$(rss_mb "${PIDS[$name]}")}"
  done
  wait "$bots_a" "$bots_b" || log "a bot process failed (see ${LOGDIR})"
  printf '{"bench":"cluster","ccu":%d,"servers":{%s},"botsA":%s,"botsB":%s}\n' \
    "$ccu" "$servers" "$(tail -n 1 "$LOGDIR/bots-a-${ccu}.json")" "$(tail -n 1 "$LOGDIR/bots-b-${ccu}.json")"
  sleep 3
done
