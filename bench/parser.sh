#!/usr/bin/env bash
# Parser benchmark: our parser beside httparse on the same inputs, in the same run.
#
#   bench/parser.sh              # 3 rounds; each figure is the lowest of its rounds
#   ROUNDS=5 bench/parser.sh
#
# The two sides are separate binaries (core/benches/parser.rs and parser_anchor.rs): in one
# binary, the code layout of ours moved httparse's figure by up to 25% from one build to the
# next. They run alternately because the machine drifts as well (see core/benches/common).
# ratio = httparse ns / ours ns: above 1 means we are faster. "owned" is ours with owned events
# (next_event) instead of events read in place (next_borrowed, like httparse's slices).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}

# The executables cargo built, from its JSON messages (their names carry a hash).
exes=$(cargo bench -q -p weaprous-core --bench parser --bench parser_anchor --no-run \
  --message-format=json | grep -o '"executable":"[^"]*"' | cut -d'"' -f4)
ours=$(grep '/parser-' <<<"$exes")
anchor=$(grep '/parser_anchor-' <<<"$exes")

out=$(mktemp)
trap 'rm -f "$out"' EXIT
for _ in $(seq "$ROUNDS"); do
  # Each prints a header and then "input bytes ns..." lines.
  "$anchor" | awk 'NR > 1 {print "anchor", $1, $2, $3}' >>"$out"
  "$ours" | awk 'NR > 1 {print "ours", $1, $2, $3, $4}' >>"$out"
done

awk '
  function lowest(key, v) { if (!(key in best) || v < best[key]) best[key] = v }
  $1 == "anchor" { lowest($2 " httparse", $4); bytes[$2] = $3; if (!($2 in seen)) { seen[$2] = 1; order[n++] = $2 } }
  $1 == "ours" { lowest($2 " ours", $4); lowest($2 " owned", $5) }
  END {
    printf "%-12s %9s %9s %12s %10s %14s %7s %12s\n", "input", "ours ns", "owned ns", "httparse ns", "ours MB/s", "httparse MB/s", "ratio", "owned ratio"
    for (i = 0; i < n; i++) {
      k = order[i]; o = best[k " ours"]; w = best[k " owned"]; h = best[k " httparse"]
      printf "%-12s %9.1f %9.1f %12.1f %10.0f %14.0f %7.2f %12.2f\n", k, o, w, h, bytes[k] * 1000 / o, bytes[k] * 1000 / h, h / o, h / w
    }
  }' "$out"
echo "each figure: the lowest of $ROUNDS rounds, the two binaries alternating"
echo "ratio = httparse ns / ours ns (>1 means we are faster); owned ratio = the same with owned events"
