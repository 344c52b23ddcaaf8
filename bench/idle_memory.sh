#!/usr/bin/env bash
# Idle memory (issue 15): Postgate as `cargo run --release -- serve` runs it
# (every listener on, loopback, high ports, a new data directory) plus the
# SNMP agent, which is off by default, on 127.0.0.1:0; no traffic. Prints its resident memory
# SETTLE seconds after "ready": VmRSS and its parts (RssAnon: heap and
# stacks; RssFile: the binary's pages and shared libraries mapped in), in kB.
#
# Usage: bench/idle_memory.sh [SETTLE=5]
# With DROP_CACHES=1 (root) the page cache is emptied first, so the binary's
# pages are read from disk as startup touches them.
here=$(cd "$(dirname "$0")" && pwd); . "$here/lib.sh"
SETTLE=${1:-5}
[ "${NO_BUILD:-0}" = 1 ] || pg_build
dir=$(mktemp -d /tmp/postgate-idle.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
[ "${DROP_CACHES:-0}" = 1 ] && sync && echo 3 > /proc/sys/vm/drop_caches
printf '[snmp]\nlisten = ["127.0.0.1:0"]\ncommunity = "idle-bench"\n' > "$dir/postgate.toml"
(cd "$dir" && exec "$PG_BIN" --config postgate.toml serve > "$dir/stdout" 2> "$dir/stderr") &
pid=$!
for _ in $(seq 300); do grep -q ready "$dir/stdout" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$dir/stdout" || { echo "postgate did not start:" >&2; tail "$dir/stderr" >&2; exit 2; }
listeners=$(grep -c "listening on" "$dir/stdout")
sleep "$SETTLE"
st() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$pid/status"; }
echo "idle_memory listeners=$listeners vmrss_kb=$(st VmRSS) rss_anon_kb=$(st RssAnon) rss_file_kb=$(st RssFile) threads=$(st Threads)"
