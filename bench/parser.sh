#!/usr/bin/env bash
# Parser benchmark: our parser beside httparse on the same inputs, in the same run.
#
#   bench/parser.sh                      # 3 layouts x 3 rounds
#   LAYOUTS=5 ROUNDS=3 bench/parser.sh
#   LAYOUTS=0 bench/parser.sh            # the default link order only (quicker, less fair)
#
# The two sides are separate binaries (core/benches/parser.rs and parser_anchor.rs): in one
# binary, the code layout of ours moved httparse's figure by up to 25% from one build to the
# next. Even apart, each side's figure depends on where the linker happens to put its hot
# code: httparse's small POST measured 62.5 ns in one order and 70 ns in another, the same
# source. So each binary is linked LAYOUTS times with its functions in a different order
# (lld's --shuffle-sections, seeded 1..LAYOUTS: the same seeds give the same binaries), and
# every build of both sides runs alternately ROUNDS times, because the machine drifts as well
# (see core/benches/common). Each side's figure is its lowest over every layout and round: its
# best case, so no side is judged on an unlucky layout. The spread over layouts is printed
# too (each layout's lowest, lowest and highest of those).
# ratio = httparse ns / ours ns: above 1 means we are faster. "owned" is ours with owned events
# (next_event) instead of events read in place (next_borrowed, like httparse's slices).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
LAYOUTS=${LAYOUTS:-3}

bins=$(mktemp -d)
out=$(mktemp)
trap 'rm -rf "$bins" "$out"' EXIT

# Builds one bench binary (only its own crate is recompiled and relinked) and copies it aside.
# $1: bench name, $2: layout seed (0: the default order).
build() {
  local flags=()
  [ "$2" = 0 ] || flags=(-C "link-arg=-Wl,--shuffle-sections=*=$2")
  local exe
  exe=$(cargo rustc -q -p weaprous-core --bench "$1" --profile bench --message-format=json \
    -- "${flags[@]}" | grep -o '"executable":"[^"]*"' | cut -d'"' -f4)
  cp "$exe" "$bins/$1.$2"
}

seeds=$(seq "$LAYOUTS")
[ "$LAYOUTS" = 0 ] && seeds=0
for seed in $seeds; do
  build parser "$seed"
  build parser_anchor "$seed"
done

for _ in $(seq "$ROUNDS"); do
  for seed in $seeds; do
    # Each prints a header and then "input bytes ns..." lines.
    "$bins/parser_anchor.$seed" | awk -v s="$seed" 'NR > 1 {print "anchor", s, $1, $2, $3}' >>"$out"
    "$bins/parser.$seed" | awk -v s="$seed" 'NR > 1 {print "ours", s, $1, $2, $3, $4}' >>"$out"
  done
done

awk '
  function lowest(key, v) { if (!(key in best) || v < best[key]) best[key] = v }
  $1 == "anchor" {
    lowest($3 " httparse", $5); lowest($3 " httparse " $2, $5); bytes[$3] = $4
    if (!($3 in seen)) { seen[$3] = 1; order[n++] = $3 }
  }
  $1 == "ours" { lowest($3 " ours", $5); lowest($3 " ours " $2, $5); lowest($3 " owned", $6) }
  $1 == "anchor" || $1 == "ours" { layouts[$2] = 1 }
  END {
    printf "%-12s %9s %9s %12s %10s %14s %7s %12s\n", "input", "ours ns", "owned ns", "httparse ns", "ours MB/s", "httparse MB/s", "ratio", "owned ratio"
    for (i = 0; i < n; i++) {
      k = order[i]; o = best[k " ours"]; w = best[k " owned"]; h = best[k " httparse"]
      printf "%-12s %9.1f %9.1f %12.1f %10.0f %14.0f %7.2f %12.2f\n", k, o, w, h, bytes[k] * 1000 / o, bytes[k] * 1000 / h, h / o, h / w
    }
    print ""
    print "spread over layouts (each layout: its lowest ns; the lowest and highest of those):"
    for (i = 0; i < n; i++) {
      k = order[i]
      for (side = 0; side < 2; side++) {
        name = side ? "httparse" : "ours"; lo = ""; hi = ""
        for (s in layouts) {
          v = best[k " " name " " s]
          if (lo == "" || v < lo) lo = v
          if (hi == "" || v > hi) hi = v
        }
        printf "  %-12s %-8s %7.1f .. %7.1f ns\n", k, name, lo, hi
      }
    }
  }' "$out"
echo "each figure: the lowest over $LAYOUTS layout(s) (0: the default link order) x $ROUNDS rounds, the binaries alternating"
echo "ratio = httparse ns / ours ns (>1 means we are faster); owned ratio = the same with owned events"
