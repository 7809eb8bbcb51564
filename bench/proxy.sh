#!/usr/bin/env bash
# Proxy benchmark: wrk through our `proxy`, through nginx (upstream keep-alive on) and through
# HAProxy, each in front of the same `backend`, same files, same machine, same run.
#
#   bench/proxy.sh                       # 1k and 100k files, 50 and 256 connections, 5 s each
#   ROUNDS=5 bench/proxy.sh              # more rounds per figure (default 3; medians are printed)
#   DURATION=10 SIZES=1k CONNS=50 bench/proxy.sh
#
# Prints requests/s, p99 latency and the proxy's CPU time per request (the backend's is not
# counted) for each proxy, with our ratios to each (above 1 is better for requests/s, below 1
# for CPU and p99). nginx and HAProxy are installed from Debian's packages when missing; each
# proxy uses one worker/thread per core, keeps upstream connections alive, logs nothing, and
# defers accept until a request arrives (nginx `deferred`, HAProxy `defer-accept`), as ours does.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
SIZES=${SIZES:-"1k 100k"}
CONNS=${CONNS:-"50 256"}
BACKEND_PORT=${BACKEND_PORT:-19090}
OURS_PORT=${OURS_PORT:-19091}
NGINX_PORT=${NGINX_PORT:-19092}
HAPROXY_PORT=${HAPROXY_PORT:-19093}

need() { command -v "$1" >/dev/null 2>&1; }
if ! need wrk || ! need nginx || ! need haproxy; then
  echo "installing wrk, nginx and haproxy from Debian's packages" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx haproxy >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
CORES=$(nproc)

cargo build --release -q -p weaprous-apps --bin backend --bin proxy

work=$(mktemp -d /tmp/weaprous-proxybench.XXXXXX)
mkdir -p "$work/www" "$work/static" "$work/nginx"
head -c 1024 /dev/urandom >"$work/static/1k.bin"
head -c $((100 * 1024)) /dev/urandom >"$work/static/100k.bin"
echo "<h1>bench</h1>" >"$work/www/index.html"
chmod -R a+rX "$work"

cat >"$work/proxy.conf" <<CONF
default { proxy_pass http://127.0.0.1:$BACKEND_PORT; }
CONF

cat >"$work/nginx/nginx.conf" <<CONF
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  keepalive_requests 1000000;
  upstream backend { server 127.0.0.1:$BACKEND_PORT; keepalive 512; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:$NGINX_PORT deferred;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
CONF

cat >"$work/haproxy.cfg" <<CONF
global
  nbthread $CORES
  maxconn 4096
  pidfile $work/haproxy.pid
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option http-keep-alive
frontend f
  bind 127.0.0.1:$HAPROXY_PORT defer-accept
  default_backend b
backend b
  http-reuse always
  server s1 127.0.0.1:$BACKEND_PORT
CONF

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$work/nginx/nginx.pid" ] && "$NGINX" -c "$work/nginx/nginx.conf" -s stop 2>/dev/null || true
  # HAProxy daemonizes (-D): its pid is only in its pidfile.
  [ -f "$work/haproxy.pid" ] && kill "$(cat "$work/haproxy.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

target/release/backend --server-ip 127.0.0.1 --server-port "$BACKEND_PORT" --www "$work/www" --static "$work/static" --no-access-log >/dev/null &
pids+=($!)
target/release/proxy --server-ip 127.0.0.1 --server-port "$OURS_PORT" --config "$work/proxy.conf" --no-access-log >/dev/null &
ours_pid=$!
pids+=($ours_pid)
"$NGINX" -c "$work/nginx/nginx.conf"
"$HAPROXY" -f "$work/haproxy.cfg" -D
wait_ready "$BACKEND_PORT" "$OURS_PORT" "$NGINX_PORT" "$HAPROXY_PORT"

# Every proxy must answer 200 with the whole file, or the comparison means nothing.
check_answers "$OURS_PORT" "$NGINX_PORT" "$HAPROXY_PORT"

haproxy_pids() { cat "$work/haproxy.pid"; }

# run PORT SIZE CONNS PIDS... -> "rps p99_ms cpu_us_per_req"
run() {
  local port=$1 size=$2 conns=$3; shift 3
  local before after out
  before=$(cpu_ns "$@")
  out=$(wrk -t2 -c"$conns" -d"${DURATION}s" --latency "http://127.0.0.1:$port/$size.bin" 2>&1)
  after=$(cpu_ns "$@")
  local rps p99 reqs errors
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  errors=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out")
  if [ -n "$errors" ]; then echo "port $port: $errors" >&2; fi
  p99=$(wrk_p99 <<<"$out")
  local cpu_us
  cpu_us=$(echo "scale=3; ($after - $before) / 1000 / ($reqs + 1)" | bc)
  echo "$rps ${p99:-0} $cpu_us"
}


# One measurement of proxy NAME (ours|nginx|haproxy) -> "rps p99 cpu"
measure() {
  case $1 in
    # shellcheck disable=SC2046
    ours) run "$OURS_PORT" "$2" "$3" "$ours_pid" ;;
    # shellcheck disable=SC2046
    nginx) run "$NGINX_PORT" "$2" "$3" $(nginx_pids) ;;
    # shellcheck disable=SC2046
    haproxy) run "$HAPROXY_PORT" "$2" "$3" $(haproxy_pids) ;;
  esac
}

echo "each figure: the median of $ROUNDS rounds of ${DURATION} s, the proxies' order rotating each round"
printf '%-5s %5s | %9s %9s %9s %5s %5s | %7s %7s %7s | %7s %7s %7s %5s %5s\n' \
  size conns "ours r/s" "nginx" "haproxy" "/ngx" "/hap" "p99 ms" "nginx" "haproxy" "cpu us" "nginx" "haproxy" "/ngx" "/hap"
for size in $SIZES; do
  for conns in $CONNS; do
    declare -A rps=() p99=() cpu=()
    order=(ours nginx haproxy)
    for _ in $(seq "$ROUNDS"); do
      for name in "${order[@]}"; do
        read -r r p c < <(measure "$name" "$size" "$conns")
        rps[$name]+="$r "
        p99[$name]+="$p "
        cpu[$name]+="$c "
      done
      # Rotate, so no proxy always runs first (or right after another's load).
      order=("${order[@]:1}" "${order[0]}")
    done
    # shellcheck disable=SC2086
    for name in ours nginx haproxy; do
      rps[$name]=$(median ${rps[$name]})
      p99[$name]=$(median ${p99[$name]})
      cpu[$name]=$(median ${cpu[$name]})
    done
    printf '%-5s %5s | %9.0f %9.0f %9.0f %5s %5s | %7.2f %7.2f %7.2f | %7.1f %7.1f %7.1f %5s %5s\n' \
      "$size" "$conns" "${rps[ours]}" "${rps[nginx]}" "${rps[haproxy]}" \
      "$(echo "scale=2; ${rps[ours]} / ${rps[nginx]}" | bc)" "$(echo "scale=2; ${rps[ours]} / ${rps[haproxy]}" | bc)" \
      "${p99[ours]}" "${p99[nginx]}" "${p99[haproxy]}" "${cpu[ours]}" "${cpu[nginx]}" "${cpu[haproxy]}" \
      "$(echo "scale=2; ${cpu[ours]} / (${cpu[nginx]} + 0.0001)" | bc)" "$(echo "scale=2; ${cpu[ours]} / (${cpu[haproxy]} + 0.0001)" | bc)"
    unset rps p99 cpu
  done
done
