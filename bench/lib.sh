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

# CPU time in ns of a set of pids, every thread of each: the scheduler's own count of the time
# each thread ran (the first field of /proc/PID/task/TID/schedstat), which on this kernel (no
# IRQ time accounting) includes the softirq work done while it ran, as the ticks of
# /proc/PID/stat do. Those ticks are sampled at CONFIG_HZ (250 here) and reported in 10 ms
# units: a server busy for 0.75 s of a 5 s run got ~190 samples, and the per-request figure
# moved by +-7% from that alone. This count is exact. (Threads that exit during a run would be
# missed; neither server starts or ends threads while it serves.)
cpu_ns() {
  for p in "$@"; do cat "/proc/$p/task/"*/schedstat 2>/dev/null; done | awk '{s += $1} END {printf "%.0f\n", s}'
}

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
