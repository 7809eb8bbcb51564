#!/usr/bin/env bash
# Load benchmark: wrk against our `backend` and against nginx, same files, same machine, same run.
#
#   bench/load.sh                 # every size x connections x mode, 5 s each
#   DURATION=10 bench/load.sh     # longer runs
#   ROUNDS=5 bench/load.sh        # more rounds per figure (default 3; medians are printed)
#   SIZES="1k" CONNS="50" MODES="keepalive" bench/load.sh
#   PIN=1 bench/load.sh           # servers on core 0 (one worker / one thread), wrk on core 1:
#                                 # steadier per-core figures than the default shared-cores run
#   NGINX_DEFERRED=0 bench/load.sh  # nginx's listen without `deferred`, as Debian ships it
#   BEFORE_BIN=/tmp/backend-old bench/load.sh  # also another build of the backend (say, main's
#                                 # before a change), its figures and ours/before ratios
#   PORTABLE=1 bench/load.sh      # also the backend on the portable event loop (`polling`, no
#                                 # sendfile or deferred accept: what macOS and the BSDs run),
#                                 # built into target/portable; ratios are epoll/portable
#
# Prints requests/s, p99 latency and server CPU time per request for both, with ratios
# (ours / nginx: above 1 is better for requests/s, below 1 is better for CPU and p99), and the
# whole machine's busy CPU time per request against each (server, wrk, and the kernel's
# network work, which on loopback runs as softirq in whichever process's context a segment is
# sent, so how it splits between the server's CPU and wrk's differs between servers).
# nginx runs with Debian's default `worker_processes auto` (one per core), sendfile on,
# access logs off, keepalive_requests raised so keep-alive runs measure steady state, and
# `listen ... deferred`, because our listeners defer accept (TCP_DEFER_ACCEPT) by default: so
# both servers take a connection only once its request has arrived. In back-to-back runs that
# option alone took nginx's CPU per 1 KiB `Connection: close` request from 27-28 us to 22-24; so
# without it (NGINX_DEFERRED=0) the close cells measure the option rather than the servers.
# Our backend runs with its default threads (one per core) and access logs off.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
SIZES=${SIZES:-"1k 100k 1m"}
CONNS=${CONNS:-"1 50 256"}
MODES=${MODES:-"keepalive close"}
OURS_PORT=${OURS_PORT:-19080}
NGINX_PORT=${NGINX_PORT:-19081}
PIN=${PIN:-0}
NGINX_DEFERRED=${NGINX_DEFERRED:-1}
BEFORE_BIN=${BEFORE_BIN:-}
BEFORE_LABEL=before
if [ "${PORTABLE:-0}" = 1 ]; then
  cargo build --release -q -p weaprous-apps --bin backend --features weaprous-net-real/portable --target-dir target/portable
  BEFORE_BIN=target/portable/release/backend
  BEFORE_LABEL=portable
fi
if [ -n "$BEFORE_BIN" ]; then BEFORE=1; else BEFORE=0; fi
BEFORE_PORT=${BEFORE_PORT:-19082}
if [ "$PIN" = 1 ]; then
  SERVER_CPU=(taskset -c 0)
  CLIENT_CPU=(taskset -c 1)
  NGINX_WORKERS=1
  OURS_THREADS=1
else
  SERVER_CPU=()
  CLIENT_CPU=()
  NGINX_WORKERS=auto
fi

need() { command -v "$1" >/dev/null 2>&1; }
if ! need wrk || ! need nginx; then
  echo "installing wrk and nginx from Debian's packages" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

cargo build --release -q -p weaprous-apps --bin backend

work=$(mktemp -d /tmp/weaprous-load.XXXXXX)
mkdir -p "$work/www" "$work/static" "$work/nginx"
head -c 1024 /dev/urandom >"$work/static/1k.bin"
head -c $((100 * 1024)) /dev/urandom >"$work/static/100k.bin"
head -c $((1024 * 1024)) /dev/urandom >"$work/static/1m.bin"
echo "<h1>bench</h1>" >"$work/www/index.html"
# nginx's workers run as an unprivileged user: the files must be readable by anyone.
chmod -R a+rX "$work"

cat >"$work/nginx/nginx.conf" <<CONF
worker_processes $NGINX_WORKERS;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  types { application/octet-stream bin; text/html html; }
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  server {
    listen 127.0.0.1:$NGINX_PORT$([ "$NGINX_DEFERRED" = 1 ] && echo " deferred");
    root $work/static;
  }
}
CONF

ours_pid=""
before_pid=""
cleanup() {
  [ -n "$ours_pid" ] && kill "$ours_pid" 2>/dev/null || true
  [ -n "$before_pid" ] && kill "$before_pid" 2>/dev/null || true
  [ -f "$work/nginx/nginx.pid" ] && "$NGINX" -c "$work/nginx/nginx.conf" -s stop 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"${SERVER_CPU[@]}" target/release/backend --server-ip 127.0.0.1 --server-port "$OURS_PORT" --www "$work/www" --static "$work/static" --no-access-log ${OURS_THREADS:+--threads $OURS_THREADS} >/dev/null &
ours_pid=$!
"${SERVER_CPU[@]}" "$NGINX" -c "$work/nginx/nginx.conf"
wait_ready "$OURS_PORT" "$NGINX_PORT"

# Both servers must answer 200 with the whole file, or the comparison means nothing.
check_answers "$OURS_PORT" "$NGINX_PORT"
if [ "$BEFORE" = 1 ]; then
  "${SERVER_CPU[@]}" "$BEFORE_BIN" --server-ip 127.0.0.1 --server-port "$BEFORE_PORT" --www "$work/www" --static "$work/static" --no-access-log ${OURS_THREADS:+--threads $OURS_THREADS} >/dev/null &
  before_pid=$!
  wait_ready "$BEFORE_PORT" "$NGINX_PORT"
  check_answers "$BEFORE_PORT" "$NGINX_PORT"
fi

HZ=$(getconf CLK_TCK)

# run PORT SIZE CONNS MODE PIDS... -> "rps p99_ms requests cpu_us_per_req machine_us_per_req"
# The server's CPU time is what its processes were charged, which on loopback is not the same as
# what serving cost. Delivering a segment into the peer's socket (and sending what an ACK
# releases) runs as softirq work in the context of whichever process sent it, and this kernel
# (no IRQ time accounting) charges that time to the process it interrupts, in the ticks of
# /proc/PID/stat and in the exact count `cpu_ns` reads alike. A large send pushed out within
# the server's sendfile is charged to the server, delivery included; the part that waits for
# wrk's ACKs is charged to wrk; how much goes which way differs between servers and between
# runs. With 1 MiB files, softirq ticks were a third
# (keep-alive) to a half (close) of the machine's busy time per request. So the machine's busy
# time per request (all CPUs, everything but idle and iowait, from /proc/stat) is measured too:
# the whole cost of a request, client included.
run() {
  local port=$1 size=$2 conns=$3 mode=$4; shift 4
  local hdr=()
  [ "$mode" = close ] && hdr=(-H "Connection: close")
  local threads=2
  [ "$conns" -lt 2 ] || [ "$PIN" = 1 ] && threads=1
  local before after m_before m_after out
  before=$(cpu_ns "$@")
  m_before=$(machine_ticks)
  out=$("${CLIENT_CPU[@]}" wrk -t"$threads" -c"$conns" -d"${DURATION}s" --latency "${hdr[@]}" "http://127.0.0.1:$port/$size.bin" 2>&1)
  m_after=$(machine_ticks)
  after=$(cpu_ns "$@")
  local rps p99 reqs
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  p99=$(wrk_p99 <<<"$out")
  local cpu_us
  cpu_us=$(echo "scale=3; ($after - $before) / 1000 / ($reqs + 1)" | bc)
  local machine_us
  machine_us=$(echo "scale=3; ($m_after - $m_before) * 1000000 / $HZ / ($reqs + 1)" | bc)
  echo "$rps ${p99:-0} $reqs $cpu_us $machine_us"
}


echo "each figure: the median of $ROUNDS rounds of ${DURATION} s, which server goes first alternating"
printf '%-5s %5s %-9s | %10s %10s %6s | %8s %8s | %9s %9s %6s | %9s %9s %6s\n' size conns mode "ours r/s" "nginx r/s" ratio "ours p99" "nginx p99" "ours cpu" "nginx cpu" ratio "mach:ours" "mach:nginx" ratio
printf '%-5s %5s %-9s | %10s %10s %6s | %8s %8s | %9s %9s %6s | %9s %9s %6s\n' "" "" "" "" "" "" "ms" "ms" "us/req" "us/req" "" "us/req" "us/req" ""
for size in $SIZES; do
  for conns in $CONNS; do
    for mode in $MODES; do
      o_rps=() o_p99=() o_cpu=() o_mach=() n_rps=() n_p99=() n_cpu=() n_mach=() b_rps=() b_cpu=()
      for round in $(seq "$ROUNDS"); do
        order=$( ((round % 2)) && echo "ours nginx" || echo "nginx ours")
        [ "$BEFORE" = 1 ] && order=$( ((round % 2)) && echo "ours before nginx" || echo "nginx before ours")
        for who in $order; do
          if [ "$who" = before ]; then
            read -r r p _ c w < <(run "$BEFORE_PORT" "$size" "$conns" "$mode" "$before_pid")
            b_rps+=("$r") b_cpu+=("$c")
          elif [ "$who" = ours ]; then
            read -r r p _ c w < <(run "$OURS_PORT" "$size" "$conns" "$mode" "$ours_pid")
            o_rps+=("$r") o_p99+=("$p") o_cpu+=("$c") o_mach+=("$w")
          else
            # shellcheck disable=SC2046
            read -r r p _ c w < <(run "$NGINX_PORT" "$size" "$conns" "$mode" $(nginx_pids))
            n_rps+=("$r") n_p99+=("$p") n_cpu+=("$c") n_mach+=("$w")
          fi
        done
      done
      o_rps=$(median "${o_rps[@]}") o_p99=$(median "${o_p99[@]}") o_cpu=$(median "${o_cpu[@]}")
      n_rps=$(median "${n_rps[@]}") n_p99=$(median "${n_p99[@]}") n_cpu=$(median "${n_cpu[@]}")
      o_mach=$(median "${o_mach[@]}") n_mach=$(median "${n_mach[@]}")
      rps_ratio=$(echo "scale=2; $o_rps / $n_rps" | bc)
      cpu_ratio=$(echo "scale=2; $o_cpu / ($n_cpu + 0.0001)" | bc)
      mach_ratio=$(echo "scale=2; $o_mach / ($n_mach + 0.0001)" | bc)
      printf '%-5s %5s %-9s | %10.0f %10.0f %6s | %8.2f %8.2f | %9.1f %9.1f %6s | %9.1f %9.1f %6s' "$size" "$conns" "$mode" "$o_rps" "$n_rps" "$rps_ratio" "$o_p99" "$n_p99" "$o_cpu" "$n_cpu" "$cpu_ratio" "$o_mach" "$n_mach" "$mach_ratio"
      if [ "$BEFORE" = 1 ]; then
        b_rps=$(median "${b_rps[@]}") b_cpu=$(median "${b_cpu[@]}")
        printf ' | %s %8.0f r/s %5s  %7.1f us/req %5s' "$BEFORE_LABEL" "$b_rps" "$(echo "scale=2; $o_rps / $b_rps" | bc)" "$b_cpu" "$(echo "scale=2; $o_cpu / ($b_cpu + 0.0001)" | bc)"
      fi
      printf '\n'
    done
  done
done
