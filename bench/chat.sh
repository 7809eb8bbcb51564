#!/usr/bin/env bash
# The chat server's benchmarks, each printed beside its anchor from the same run:
#
# 1. Durable messages/s at 1, 8 and 32 clients: `sampleapp` answers a post only once its
#    record is synced (group commit), beside PostgreSQL (a private cluster this script starts:
#    fsync and synchronous_commit on, its defaults; pgbench, one INSERT per transaction), and
#    records per sync (from the server's own count, printed when it stops).
# 2. The time from one post to its event on each of 1,000 event-stream subscribers.
# 3. 10,000 open event streams: the server's resident memory per stream, beside what an idle
#    keep-alive connection after one request costs nginx (and our static backend).
# 4. Restart with a million messages stored: the time from start to the first answered
#    request, and the resident memory then.
#
#   bench/chat.sh
#   SECONDS_EACH=10 CLIENTS="1 8 32" SUBSCRIBERS=1000 HOLD=10000 bench/chat.sh
#
# Memory is the growth of the processes' resident set (VmRSS, every worker for nginx) from
# before the connections open to once they all are open and idle, divided by their number:
# user-space memory only, since the kernel's socket buffers are not in any process's RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

SECONDS_EACH=${SECONDS_EACH:-5}
CLIENTS=${CLIENTS:-"1 8 32"}
SUBSCRIBERS=${SUBSCRIBERS:-1000}
ROUNDS=${ROUNDS:-20}
HOLD=${HOLD:-10000}
RESTART_MESSAGES=${RESTART_MESSAGES:-1000000}
PORT=${PORT:-19180}
NGINX_PORT=${NGINX_PORT:-19181}
BACKEND_PORT=${BACKEND_PORT:-19182}
PG_PORT=${PG_PORT:-19183}

need() { command -v "$1" >/dev/null 2>&1; }
pg_bin() {
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return; }
  done
  dirname "$(command -v initdb)"
}
if ! need nginx || ! need curl || ! { need initdb || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; }; then
  echo "installing nginx, curl and postgresql from Debian's packages" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx curl postgresql >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
PG=$(pg_bin)
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt $((HOLD + 100)) ]; then
  echo "the open-files limit ($(ulimit -n)) is below HOLD=$HOLD; set HOLD lower" >&2
  exit 1
fi

cargo build --release -q -p weaprous-apps --bin sampleapp --bin backend --bin httptool

# The data directories live on the same file system as the repository (a tmpfs would make
# every sync free and the comparison meaningless).
work=$(mktemp -d "$PWD/target/bench-chat.XXXXXX")
chmod 755 "$work"
mkdir -p "$work/www" "$work/static" "$work/nginx"
head -c 1024 /dev/urandom >"$work/static/1k.bin"
chmod -R a+rX "$work"
app_pid=""
backend_pid=""
cleanup() {
  [ -n "$app_pid" ] && kill "$app_pid" 2>/dev/null || true
  [ -n "$backend_pid" ] && kill "$backend_pid" 2>/dev/null || true
  [ -f "$work/nginx/nginx.pid" ] && "$NGINX" -c "$work/nginx/nginx.conf" -s stop 2>/dev/null || true
  [ -d "$work/pg" ] && as_pg "$PG/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# PostgreSQL will not run as root: as root, its cluster belongs to the postgres user.
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Starts sampleapp on a data directory of its own (kept with KEEP=1); waits until it serves.
start_app() {
  [ "${KEEP:-0}" = 1 ] || rm -rf "$work/data"
  target/release/sampleapp --server-ip 127.0.0.1 --server-port "$PORT" --data-dir "$work/data" \
    2>"$work/app.err" >/dev/null &
  app_pid=$!
  for _ in $(seq 6000); do
    curl -sf -o /dev/null -u admin:password "http://127.0.0.1:$PORT/me" && return
    sleep 0.02
  done
  echo "sampleapp did not start:" >&2
  cat "$work/app.err" >&2
  exit 1
}
# Stops it (SIGTERM) and prints its "appended N records in M syncs" figures as "N M".
stop_app() {
  kill -TERM "$app_pid"
  wait "$app_pid" 2>/dev/null || true
  app_pid=""
  sed -n 's/.*appended \([0-9]*\) records in \([0-9]*\) syncs.*/\1 \2/p' "$work/app.err" | tail -1
}

rss_kb() { for p in "$@"; do awk '/^VmRSS/ {print $2}' "/proc/$p/status"; done | awk '{s += $1} END {print s + 0}'; }

echo "== durable messages/s (each answered after its sync), ${SECONDS_EACH}s per cell"
# PostgreSQL: a private cluster, defaults (fsync on, synchronous_commit on, fdatasync).
chown postgres "$work" 2>/dev/null || true
mkdir -p "$work/pg" "$work/pgsock"
[ "$(id -u)" = 0 ] && chown postgres "$work/pg" "$work/pgsock"
as_pg "$PG/initdb" -D "$work/pg" -A trust -U bench >/dev/null
as_pg "$PG/pg_ctl" -D "$work/pg" -l "$work/pg/log" -w \
  -o "-p $PG_PORT -k $work/pgsock -c listen_addresses='' -c max_connections=100" start >/dev/null
as_pg "$PG/psql" -q -h "$work/pgsock" -p "$PG_PORT" -U bench -d postgres \
  -c "CREATE TABLE messages (id bigserial PRIMARY KEY, channel text NOT NULL, author text NOT NULL, text text NOT NULL, ts timestamptz NOT NULL DEFAULT now())"
echo "INSERT INTO messages (channel, author, text) VALUES ('bench', 'admin', 'client message ' || :client_id);" >"$work/insert.sql"
chmod a+r "$work/insert.sql"
printf '%-8s %14s %14s %8s %14s %12s\n' clients ours_msgs/s pg_inserts/s ratio records/sync ours_p99_ms
for c in $CLIENTS; do
  start_app
  ours=$(target/release/httptool chat-load --addr "127.0.0.1:$PORT" --clients "$c" --seconds "$SECONDS_EACH")
  read -r appended syncs <<<"$(stop_app)"
  pg=$(as_pg "$PG/pgbench" -n -h "$work/pgsock" -p "$PG_PORT" -U bench -c "$c" -j "$c" -T "$SECONDS_EACH" -f "$work/insert.sql" postgres 2>/dev/null |
    awk '/^tps/ {print $3; exit}')
  ours_rate=$(awk '{print $6}' <<<"$ours")
  ours_p99=$(awk '{print $11}' <<<"$ours")
  printf '%-8s %14.0f %14.0f %8.2f %14.1f %12s\n' "$c" "$ours_rate" "$pg" \
    "$(awk -v a="$ours_rate" -v b="$pg" 'BEGIN {print a / b}')" \
    "$(awk -v a="$appended" -v b="$syncs" 'BEGIN {print (b > 0 ? a / b : 0)}')" "$ours_p99"
done
as_pg "$PG/pg_ctl" -D "$work/pg" -m fast stop >/dev/null

echo
echo "== one post to $SUBSCRIBERS event streams ($ROUNDS posts)"
start_app
target/release/httptool chat-fanout --addr "127.0.0.1:$PORT" --subscribers "$SUBSCRIBERS" --rounds "$ROUNDS"
stop_app >/dev/null

echo
echo "== $HOLD idle connections: resident memory per connection"
cat >"$work/nginx/nginx.conf" <<CONF
worker_processes auto;
worker_rlimit_nofile $((HOLD * 2 + 100));
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections $((HOLD + 100)); }
http {
  access_log off;
  keepalive_timeout 600s;
  keepalive_requests 1000000;
  types { application/octet-stream bin; }
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  server { listen 127.0.0.1:$NGINX_PORT; root $work/static; }
}
CONF
"$NGINX" -c "$work/nginx/nginx.conf"
target/release/backend --server-ip 127.0.0.1 --server-port "$BACKEND_PORT" --www "$work/www" \
  --static "$work/static" --no-access-log >/dev/null 2>&1 &
backend_pid=$!
wait_ready "$NGINX_PORT" "$BACKEND_PORT"
start_app

# hold NAME ADDR PATH BASIC PIDS...: prints NAME and bytes per connection.
hold() {
  local name=$1 addr=$2 path=$3 basic=$4
  shift 4
  local before after fifo="$work/hold.fifo"
  before=$(rss_kb "$@")
  rm -f "$fifo"
  mkfifo "$fifo"
  local args=(--addr "$addr" --path "$path" --conns "$HOLD")
  [ -n "$basic" ] && args+=(--basic "$basic")
  target/release/httptool hold "${args[@]}" <"$fifo" >"$work/hold.out" &
  local hold_pid=$!
  exec 9>"$fifo"
  for _ in $(seq 600); do grep -q holding "$work/hold.out" 2>/dev/null && break; sleep 0.1; done
  grep -q holding "$work/hold.out" || { echo "$name: the connections did not open" >&2; exit 1; }
  after=$(rss_kb "$@")
  exec 9>&-
  wait "$hold_pid" || true
  printf '%-34s %10.0f\n' "$name" "$(awk -v a="$after" -v b="$before" -v n="$HOLD" 'BEGIN {print (a - b) * 1024 / n}')"
}
printf '%-34s %10s\n' what bytes/conn
# nginx's master accepts nothing: its workers hold the connections.
hold "nginx, idle keep-alive" "127.0.0.1:$NGINX_PORT" /1k.bin "" $(pgrep -P "$(cat "$work/nginx/nginx.pid")")
hold "ours (backend), idle keep-alive" "127.0.0.1:$BACKEND_PORT" /1k.bin "" "$backend_pid"
hold "ours (sampleapp), open event stream" "127.0.0.1:$PORT" /events admin:password "$app_pid"

echo
echo "== restart with $RESTART_MESSAGES messages stored"
stop_app >/dev/null
rm -rf "$work/data"
mkdir -m 700 "$work/data"
target/release/httptool chat-log --out "$work/data/chat" --messages "$RESTART_MESSAGES"
# The first start makes the default account (a password hash); the second is the restart.
KEEP=1 start_app
stop_app >/dev/null
t0=$(date +%s%N)
KEEP=1 start_app
t1=$(date +%s%N)
printf 'log %s MiB, ready after %.2f s, resident %s MiB\n' \
  "$(( $(stat -c %s "$work/data/chat") / 1048576 ))" \
  "$(awk -v a="$t0" -v b="$t1" 'BEGIN {print (b - a) / 1e9}')" "$(( $(rss_kb "$app_pid") / 1024 ))"
