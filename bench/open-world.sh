#!/usr/bin/env bash
# The open-world (server meshing) measurement: the crowd harness of bench/crowd.sh
# (server pinned to core 0, bots to core 1) with bench/open-world.toml and the
# open-world bot script, which adds the mesh figures to each result line.
#
#   bench/open-world.sh                    # 1000 and 3000 bots, 30 s windows
#   CCUS="1000" DURATION=20 bench/open-world.sh
#
# stdout: the boot line, then one JSON line per CCU ({"bench":"open-world", ...crowd result, mesh: {...}}).
set -euo pipefail
cd "$(dirname "$0")/.."
export CONFIG=${CONFIG:-bench/open-world.toml}
export CCUS=${CCUS:-1000 3000}
export DURATION=${DURATION:-30}
export BOT_SCRIPT=bench/open-world.ts
# Joins go through the scheduler singleton: a gentler ramp than the crowd's, and time to settle the splits.
export RAMP=${RAMP:-150}
export BOT_ARGS="--experience frontier --warmup ${WARMUP:-15} ${BOT_ARGS:-}"
exec bash bench/crowd.sh
