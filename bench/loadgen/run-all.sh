#!/usr/bin/env bash
# Runs every real-time scenario against the raw broadcast baseline and a fresh Banter
# (SQLite, and PostgreSQL for durable sends), one after the other in the same run, and
# appends each `RESULT {json}` line to $OUT. Build first:
#   CARGO_TARGET_DIR=/tmp/target-bench cargo build --release -p banter -p loadgen -p raw-broadcast
# Usage: bench/loadgen/run-all.sh [scenario ...]   (default: all)
# LATENCY_RATE (messages/s) sets the latency/slow/burst load; default: half the raw
# fan-out saturation measured in this run.
set -euo pipefail
ulimit -n 20000
BIN=${BIN:-/tmp/target-bench/release}
WORK=${WORK:-/tmp/loadgen-run}
OUT=${OUT:-$WORK/results.txt}
mkdir -p "$WORK"
RAW=http://127.0.0.1:9000
SQLITE=http://127.0.0.1:8100
PG=http://127.0.0.1:8200
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

start_raw() {
  "$BIN/raw-broadcast" 127.0.0.1:9000 >"$WORK/raw.log" 2>&1 &
  RAW_PID=$!; PIDS+=("$RAW_PID"); sleep 0.5
  kill -0 "$RAW_PID" || { echo "raw-broadcast did not start (port 9000 taken?)" >&2; exit 1; }
}
start_banter() { # $1 = sqlite|pg
  local data="$WORK/data-$1-$(date +%s)" port=8100 db=()
  if [ "$1" = pg ]; then
    port=8200
    psql -q -h 127.0.0.1 -U postgres -c 'DROP DATABASE IF EXISTS banter_load' -c 'CREATE DATABASE banter_load'
    db=(DATABASE_URL=postgres://postgres@127.0.0.1:5432/banter_load)
  fi
  env "${db[@]}" DATA_DIR="$data" BIND=127.0.0.1:$port RUST_LOG=warn ACCESS_TOKEN_LIFETIME=120 \
    "$BIN/banter" serve >"$WORK/banter-$1.log" 2>&1 &
  BANTER_PID=$!; PIDS+=("$BANTER_PID")
  for _ in $(seq 50); do
    kill -0 "$BANTER_PID" && curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && return
    sleep 0.2
  done
  echo "banter ($1) did not start" >&2; exit 1
}
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
lg() { # $1 = label, rest = loadgen args
  local label=$1; shift
  echo "== $label: loadgen $*" >&2
  "$BIN/loadgen" "$@" 2>"$WORK/$label.err" | grep '^RESULT' | sed "s/^RESULT /RESULT $label /" | tee -a "$OUT" ||
    { echo "$label failed:"; tail -3 "$WORK/$label.err"; } >&2
}
# Each scenario: the raw baseline, then Banter, each on a fresh server.
pair() { # $1 = scenario label, rest = loadgen args
  local label=$1; shift
  start_raw; lg "$label-raw" --raw --url $RAW --server-pid "$RAW_PID" "$@"; stop "$RAW_PID"
  start_banter sqlite; lg "$label-banter" --url $SQLITE --server-pid "$BANTER_PID" "$@"; stop "$BANTER_PID"
}
ROOMS=(--rooms 4 --subscribers-per-room 1000 --senders 100)
rate_from_fanout() { # half the raw saturation, in messages/s
  grep '^RESULT fanout-raw' "$OUT" | tail -1 | sed 's/^RESULT fanout-raw //' |
    python3 -c 'import json,sys; print(round(json.load(sys.stdin)["messages_acked_per_s"]/2))'
}
SCENARIOS=${*:-idle fanout latency slow burst sends churn}
for s in $SCENARIOS; do
  case $s in
    idle) pair idle --scenario idle --connections 19000 --duration 10 ;;
    fanout) pair fanout --scenario fanout "${ROOMS[@]}" --window 50 --duration 10 ;;
    latency|slow|burst)
      rate=${LATENCY_RATE:-$(rate_from_fanout)}
      case $s in
        latency) pair latency --scenario latency "${ROOMS[@]}" --rate "$rate" --duration 10 ;;
        slow) pair slow --scenario slow "${ROOMS[@]}" --rate "$rate" --slow-percent 1 --duration 10 ;;
        burst) pair burst --scenario burst "${ROOMS[@]}" --burst 5 --duration 10 ;;
      esac ;;
    sends)
      SENDS=(--scenario sends --senders 3000 --users 1500 --rooms 100 --rate 54000 --in-flight 2 --duration 10)
      pair sends "${SENDS[@]}"
      start_banter pg; lg sends-banter-pg --url $PG "${SENDS[@]}"; stop "$BANTER_PID" ;;
    churn) pair churn --scenario churn --connections 200 --sources 8 --duration 10 ;;
    *) echo "unknown scenario $s" >&2; exit 2 ;;
  esac
done
