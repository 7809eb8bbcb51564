# Shared by the benchmark scripts (sourced, not run). Expects $work (the scratch folder with
# static/ and nginx/) and $SIZES.

# Waits until every PORT answers /1k.bin (up to 5 s each).
wait_ready() {
  for port in "$@"; do
    for _ in $(seq 50); do
      curl -sf -o /dev/null "http://127.0.0.1:$port/1k.bin" && break
      sleep 0.1
    done
  done
}

# Every PORT must answer 200 with the whole file for every size, or the comparison means nothing.
check_answers() {
  for port in "$@"; do
    for size in $SIZES; do
      got=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' "http://127.0.0.1:$port/$size.bin")
      want="200 $(stat -c %s "$work/static/$size.bin")"
      if [ "$got" != "$want" ]; then
        echo "port $port /$size.bin answered '$got', expected '$want'" >&2
        exit 1
      fi
    done
  done
}

# Busy CPU ticks of the whole machine, all CPUs: user, nice, system, irq, softirq and steal
# (everything but idle and iowait).
machine_ticks() { awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }

# CPU ticks (user + system) of a set of pids.
ticks() { for p in "$@"; do awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0; done | paste -sd+ | bc; }

# nginx's master and workers.
nginx_pids() {
  local master
  master=$(cat "$work/nginx/nginx.pid")
  echo "$master"
  pgrep -P "$master"
}

# The p99 latency of wrk --latency output on stdin, in ms.
wrk_p99() {
  awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; print v}'
}

# The median of its arguments (for an odd count, the middle one).
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
