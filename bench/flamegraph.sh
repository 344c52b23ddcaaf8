#!/usr/bin/env bash
# A flame graph of the server under one of the benches' loads.
#
# Usage: bench/flamegraph.sh OUT.svg BENCH [ARGS...]
#   e.g. bench/flamegraph.sh /tmp/ldap.svg bench/ldap_search.sh 20 4 1
# Env:   SECS=10 (how long perf samples), SKIP=0 (seconds more to wait once
#        the server is busy: past a bench's own filling), HZ=499, DWARF=1 (perf's DWARF
#        unwinding: whole Rust stacks; DWARF=0 uses frame pointers, which
#        the release build omits, so user stacks come out short).
# Needs: perf (Debian's linux-perf) and inferno (`cargo install inferno`,
#        for inferno-collapse-perf and inferno-flamegraph).
#
# Runs BENCH in the background, waits for its Postgate
# server (postgate-bench.*serve) to be busy (over 30% of a core for three
# seconds running: the load has started, not a warm-up), samples
# the server's threads for SECS, then writes OUT.svg and OUT.folded (the
# collapsed stacks, for inferno-diff-folded). The bench goes on to its end;
# its output is in OUT.log.
set -u
OUT=${1:?usage: bench/flamegraph.sh OUT.svg BENCH [ARGS...]}; shift
[ $# -ge 1 ] || { echo "usage: bench/flamegraph.sh OUT.svg BENCH [ARGS...]" >&2; exit 2; }
SECS=${SECS:-10} SKIP=${SKIP:-0} HZ=${HZ:-499} DWARF=${DWARF:-1}
for tool in perf inferno-collapse-perf inferno-flamegraph; do
  command -v "$tool" >/dev/null || { echo "flamegraph: $tool not found" >&2; exit 2; }
done
base=${OUT%.svg}
"$@" > "$base.log" 2>&1 &
bench=$!
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
hz=$(getconf CLK_TCK)
pid= busy=0
for _ in $(seq 900); do
  kill -0 "$bench" 2>/dev/null || { echo "flamegraph: the bench ended before its load started; see $base.log" >&2; exit 1; }
  pid=$(pgrep -f 'postgate-bench.*serve' | head -1)
  if [ -n "$pid" ]; then
    a=$(ticks "$pid"); sleep 1; b=$(ticks "$pid")
    if [ $(( (b - a) * 100 / hz )) -ge 30 ]; then busy=$((busy + 1)); else busy=0; fi
    [ "$busy" -ge 3 ] && break
  else
    busy=0; sleep 1
  fi
done
[ -n "$pid" ] || { echo "flamegraph: no server found" >&2; exit 1; }
sleep "$SKIP"
callgraph=(-g)
[ "$DWARF" = 1 ] && callgraph=(--call-graph dwarf,16384)
perf record -F "$HZ" "${callgraph[@]}" -p "$pid" -o "$base.perf" -- sleep "$SECS" 2>>"$base.log"
perf script -i "$base.perf" 2>/dev/null | inferno-collapse-perf > "$base.folded"
rm -f "$base.perf"
title=$(basename "$1")
inferno-flamegraph --title "postgate under $title ${*:2}" --minwidth 0.2 < "$base.folded" > "$OUT"
echo "flamegraph: $OUT ($(wc -l < "$base.folded") stacks); the bench goes on (pid $bench), output in $base.log"
wait "$bench"
