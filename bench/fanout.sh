#!/usr/bin/env bash
# Fan-out: the time from one node message to 1,000 connections. Runs the line node
# (`httptool linenode`, a node of one per process on worker 0: subscribers on the other worker
# are reached through its mailbox) and `httptool fanout`, which subscribes CONNS connections
# and times ROUNDS publications until every subscriber has read its copy. The client reads the
# subscribers one after another, so the figure is an upper bound that includes its own reads.
#
#   bench/fanout.sh
#   CONNS=1000 ROUNDS=100 bench/fanout.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CONNS=${CONNS:-1000}
ROUNDS=${ROUNDS:-50}
cargo build --release -q -p weaprous-apps --bin httptool
out=$(mktemp)
target/release/httptool linenode --listen 127.0.0.1:0 >"$out" &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -f "$out"' EXIT
for _ in $(seq 50); do grep -q "listening on" "$out" && break; sleep 0.1; done
addr=$(awk '/listening on/ {print $4; exit}' "$out")
target/release/httptool fanout --addr "$addr" --conns "$CONNS" --rounds "$ROUNDS"
