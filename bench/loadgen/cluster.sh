#!/usr/bin/env bash
# The cluster benchmark: two Banter nodes on one PostgreSQL database with NATS as the bus,
# against one node on the same database, in the same run. Appends `RESULT {json}` lines
# to $OUT:
#   latency-single  senders and subscribers on node A;
#   latency-cross   subscribers on node A, senders on node B (every event crosses NATS);
#   fanout-single   one node's deliveries/s at saturation;
#   fanout-cluster  subscribers spread over both nodes, senders on both.
# Build first:
#   CARGO_TARGET_DIR=/tmp/target-bench cargo build --release -p banter -p loadgen
# Usage: bench/loadgen/cluster.sh   (RATE sets the latency runs' messages/s, default 200)
set -euo pipefail
ulimit -n 20000
BIN=${BIN:-/tmp/target-bench/release}
WORK=${WORK:-/tmp/loadgen-cluster}
OUT=${OUT:-$WORK/results.txt}
NATS=${NATS:-nats://127.0.0.1:4222}
RATE=${RATE:-200}
mkdir -p "$WORK"
A=http://127.0.0.1:8301
B=http://127.0.0.1:8302
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

fresh_database() {
  psql -q -h 127.0.0.1 -U postgres -c 'DROP DATABASE IF EXISTS banter_cluster_load' \
    -c 'CREATE DATABASE banter_cluster_load'
}
start_node() { # $1 = port, $2 = bus url or empty
  local bus=()
  [ -n "$2" ] && bus=(BUS_URL="$2" CLUSTER_NAME="load$$")
  env "${bus[@]}" DATABASE_URL=postgres://postgres@127.0.0.1:5432/banter_cluster_load \
    DATA_DIR="$WORK/data" SECRET_KEY=cluster-benchmark-secret-key-0123456789 \
    BIND=127.0.0.1:$1 RUST_LOG=warn ACCESS_TOKEN_LIFETIME=120 \
    "$BIN/banter" serve >>"$WORK/banter-$1.log" 2>&1 &
  local pid=$!; PIDS+=("$pid")
  for _ in $(seq 50); do
    kill -0 "$pid" && curl -sf "http://127.0.0.1:$1/readyz" >/dev/null && { LAST_PID=$pid; return; }
    sleep 0.2
  done
  echo "banter on port $1 did not start" >&2; exit 1
}
stop_all() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  PIDS=()
}
lg() { # $1 = label, rest = loadgen args
  local label=$1; shift
  echo "== $label: loadgen $*" >&2
  "$BIN/loadgen" "$@" 2>"$WORK/$label.err" | grep '^RESULT' | sed "s/^RESULT /RESULT $label /" | tee -a "$OUT" ||
    { echo "$label failed:"; tail -3 "$WORK/$label.err"; } >&2
}
ROOMS=(--rooms 4 --subscribers-per-room 500 --senders 40)

# One node, with the bus (so it pays the same publish cost as a cluster node).
fresh_database; start_node 8301 "$NATS"
lg latency-single --scenario latency --url $A "${ROOMS[@]}" --rate "$RATE" --duration 10
lg fanout-single --scenario fanout --url $A "${ROOMS[@]}" --window 50 --duration 10
stop_all

# Two nodes.
fresh_database; start_node 8301 "$NATS"; start_node 8302 "$NATS"
lg latency-cross --scenario latency --url $A --sender-url $B "${ROOMS[@]}" --rate "$RATE" --duration 10
lg fanout-cluster --scenario fanout --url $A,$B "${ROOMS[@]}" --window 50 --duration 10
stop_all
