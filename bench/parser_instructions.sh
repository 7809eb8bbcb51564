#!/usr/bin/env bash
# Instructions per message, ours beside httparse, counted by valgrind's callgrind: the same
# inputs as bench/parser.sh, and a figure that does not drift with the machine or the link
# order, so a change of a few instructions shows where the timed bench cannot tell it from noise.
# It is not a time: this CPU retires ~5-7 instructions a cycle on this code, and more of ours
# than of httparse's (ours takes more instructions than httparse's on every input while timing
# level with it or faster), and changes with fewer instructions have timed slower when they
# made the scan wait on loaded data; so the ratio of instructions is a guide, never the result.
#
#   bench/parser_instructions.sh
#
# Each binary runs the named input (PARSER_PROFILE) N1 and N2 times; the difference over
# N2 - N1 is the count per message, free of start-up and of the warm-up.
set -euo pipefail
cd "$(dirname "$0")/.."
N1=20000
N2=120000

if ! command -v valgrind >/dev/null 2>&1; then
  echo "installing valgrind from Debian's packages" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
fi

# The bench binary's path (built if needed): $1 is its name.
binary() {
  cargo rustc -q -p weaprous-core --bench "$1" --profile bench --message-format=json |
    grep -o '"executable":"[^"]*"' | cut -d'"' -f4
}
ours=$(binary parser)
anchor=$(binary parser_anchor)

# Instructions for $2 messages of input $3 by binary $1.
count() {
  PARSER_PROFILE=$3 PARSER_PROFILE_ITERS=$2 valgrind --tool=callgrind \
    --callgrind-out-file=/dev/null "$1" 2>&1 | awk '/ refs:/ {gsub(",", "", $4); print $4}'
}
per_message() {
  echo $((($(count "$1" $N2 "$2") - $(count "$1" $N1 "$2")) / (N2 - N1)))
}

printf '%-12s %10s %14s %7s\n' input "ours ins" "httparse ins" ratio
for input in browser-GET small-POST response; do
  a=$(per_message "$ours" "$input")
  b=$(per_message "$anchor" "$input")
  awk -v i="$input" -v a="$a" -v b="$b" 'BEGIN { printf "%-12s %10d %14d %7.2f\n", i, a, b, b / a }'
done
echo "ratio = httparse instructions / ours (>1: we execute fewer)"
