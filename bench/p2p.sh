#!/usr/bin/env bash
# The peer-to-peer benchmarks, each printed beside its anchor from the same run. The anchor
# is the other way the same message could go: through the chat server (a durable post, then
# its event on every stream), which is what a user without P2P would use.
#
# 1. Direct messages between two peer nodes on loopback, at 1 and 8 clients of the sender's
#    API: sent/s (each answered once durable at the sender) and delivered/s (until the
#    recipient acknowledged every one, which it does only once it durably took them), beside
#    durable posts/s on the chat server with as many clients.
# 2. One broadcast to 50 peers: the time until every recipient's event stream shows it (p50
#    and p99 over the rounds after the first, which also opens the links) and the messages
#    sent per broadcast, beside one post to 49 event streams of the chat server.
#
#   bench/p2p.sh
#   SECONDS_EACH=10 PEERS=50 ROUNDS=41 bench/p2p.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

SECONDS_EACH=${SECONDS_EACH:-5}
CLIENTS=${CLIENTS:-"1 8"}
PEERS=${PEERS:-50}
ROUNDS=${ROUNDS:-21}
PORT=${PORT:-19280}
UI_BASE=${UI_BASE:-19300}
P2P_BASE=${P2P_BASE:-19400}

command -v curl >/dev/null || {
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl >/dev/null
}
ulimit -n "$(ulimit -Hn)"
cargo build --release -q -p weaprous-apps --bin sampleapp --bin httptool

# On the repository's file system: a tmpfs would make every sync free (BENCH_DIR=/dev/shm
# shows what the syncs cost).
work=$(mktemp -d "${BENCH_DIR:-$PWD/target}/bench-p2p.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

target/release/sampleapp --server-ip 127.0.0.1 --server-port "$PORT" --data-dir "$work/chat" \
  --peer-heartbeat 500ms --no-access-log 2>"$work/chat.err" >/dev/null &
pids+=($!)
for _ in $(seq 3000); do
  curl -sf -o /dev/null -u admin:password "http://127.0.0.1:$PORT/me" && break
  sleep 0.02
done

name() { echo "p$1"; }
password() { echo "pw-of-p$1"; }
# Starts peer I (its account made first).
start_peer() {
  local i=$1 n
  n=$(name "$i")
  curl -sf -o /dev/null -X POST "http://127.0.0.1:$PORT/register" \
    -H 'Content-Type: application/json' -d "{\"user\":\"$n\",\"password\":\"$(password "$i")\"}"
  WEAPROUS_PASSWORD=$(password "$i") target/release/sampleapp --tracker "http://127.0.0.1:$PORT" \
    --name "$n" --server-port $((UI_BASE + i)) --p2p-ip 127.0.0.1 --p2p-port $((P2P_BASE + i)) \
    --data-dir "$work/peer-$i" --no-access-log 2>"$work/peer-$i.err" >/dev/null &
  pids+=($!)
}
peer() { echo "127.0.0.1:$((UI_BASE + $1)) $(name "$1") $(password "$1")"; }
# Waits until peer I lists N others.
wait_listed() {
  local i=$1 n=$2
  for _ in $(seq 1200); do
    got=$(curl -sf -u "$(name "$i"):$(password "$i")" "http://127.0.0.1:$((UI_BASE + i))/peers" |
      grep -o '"listed":true' | wc -l || true)
    [ "${got:-0}" -ge "$n" ] && return
    sleep 0.05
  done
  echo "peer $i lists ${got:-0} of $n peers" >&2
  exit 1
}

start_peer 1
start_peer 2
wait_listed 1 1

echo "== direct messages between two peers, ${SECONDS_EACH}s per cell (the anchor: durable posts to the chat server)"
printf '%-8s %12s %16s %14s %14s %10s\n' clients sent/s delivered/s server_posts/s delivered/srv send_p99_ms
for c in $CLIENTS; do
  ours=$(target/release/httptool p2p-direct --from "$(peer 1)" --to "$(name 2)" --clients "$c" --seconds "$SECONDS_EACH")
  server=$(target/release/httptool chat-load --addr "127.0.0.1:$PORT" --clients "$c" --seconds "$SECONDS_EACH")
  sent=$(awk '{print $6}' <<<"$ours")
  delivered=$(awk '{print $8}' <<<"$ours")
  p99=$(awk '{print $13}' <<<"$ours")
  posts=$(awk '{print $6}' <<<"$server")
  printf '%-8s %12.0f %16.0f %14.0f %14.2f %10s\n' "$c" "$sent" "$delivered" "$posts" \
    "$(awk -v a="$delivered" -v b="$posts" 'BEGIN {print a / b}')" "$p99"
done

echo
echo "== one broadcast to $PEERS peers, $((ROUNDS - 1)) rounds after the first (the anchor: one post to $((PEERS - 1)) event streams of the chat server)"
for i in $(seq 3 "$PEERS"); do start_peer "$i"; done
wait_listed 1 $((PEERS - 1))
for i in $(seq 2 "$PEERS"); do peer "$i"; done >"$work/recipients"
# How busy the whole machine was meanwhile: near 100% means the figure is the machine's
# (51 processes on its cores), not the protocol's.
ticks_before=$(machine_ticks)
t0=$(date +%s.%N)
target/release/httptool p2p-broadcast --from "$(peer 1)" --rounds "$ROUNDS" <"$work/recipients"
ticks_after=$(machine_ticks)
t1=$(date +%s.%N)
awk -v a="$ticks_before" -v b="$ticks_after" -v t0="$t0" -v t1="$t1" -v hz="$(getconf CLK_TCK)" -v n="$(nproc)" \
  'BEGIN {printf "machine busy during the broadcasts: %.0f%% of %d cores\n", 100 * (b - a) / hz / (t1 - t0) / n, n}'
target/release/httptool chat-fanout --addr "127.0.0.1:$PORT" --subscribers $((PEERS - 1)) --rounds $((ROUNDS - 1))
