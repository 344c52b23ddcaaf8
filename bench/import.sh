#!/usr/bin/env bash
# `postgate import mbox` of a large mbox: messages per second and the
# importer's peak resident memory, on one summary line.
#
# Usage: bench/import.sh [MESSAGES=200000]
# Env: MBOX=FILE reuses a generated mbox (else one is made in /tmp and kept
# as /tmp/postgate-import-bench-MESSAGES.mbox for the next run);
# NO_BUILD=1 skips the release build; PG_BIN names the binary.
#
# The mbox comes from ../shared/bench/gen_mbox.py (1-30 KB messages, a
# quarter multipart with attachments); it makes at most 100,000 messages a
# file, so larger counts are made in parts with other seeds and joined.
# The import runs with no server (the store's writer is the importer's),
# into a fresh data directory, timed by /usr/bin/time -v.
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
PG_BIN=${PG_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/postgate}
. "$here/lib.sh"
MSGS=${1:-200000}
if [ -z "${NO_BUILD:-}" ]; then
  (cd "$repo" && nice -n 19 cargo build --release -q -p postgate) || { echo "build failed" >&2; exit 2; }
fi
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (Debian: time)" >&2; exit 2; }
MBOX=${MBOX:-/tmp/postgate-import-bench-$MSGS.mbox}
if [ ! -s "$MBOX" ]; then
  parts=$(mktemp -d /tmp/postgate-import-gen.XXXXXX)
  left=$MSGS seed=42 i=0
  while [ "$left" -gt 0 ]; do
    n=$(( left > 100000 ? 100000 : left ))
    python3 "$LOADS/gen_mbox.py" "$parts/$i.mbox" "$n" "$seed" >/dev/null || exit 2
    left=$(( left - n )) seed=$(( seed + 1 )) i=$(( i + 1 ))
  done
  cat "$parts"/*.mbox > "$MBOX.tmp" && mv "$MBOX.tmp" "$MBOX"
  rm -rf "$parts"
fi
DIR=$(mktemp -d /tmp/postgate-import-bench.XXXXXX)
trap 'rm -rf "$DIR"' EXIT
CONF=$DIR/postgate.toml
printf 'data_dir = "%s/data"\nhostname = "bench.example.test"\nlog = "warn"\n' "$DIR" > "$CONF"
"$PG_BIN" --config "$CONF" domain add example.test >/dev/null
"$PG_BIN" --config "$CONF" user add bulk@example.test --name Bulk >/dev/null
/usr/bin/time -v "$PG_BIN" --config "$CONF" import mbox "$MBOX" bulk@example.test --quiet \
  > "$DIR/out" 2> "$DIR/time" || { cat "$DIR/out" "$DIR/time" >&2; exit 1; }
imported=$(sed -n 's/^imported \([0-9]*\) messages.*/\1/p' "$DIR/out")
secs=$(sed -n 's/.* in \([0-9.]*\) s (.*/\1/p' "$DIR/out")
rss_kb=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$DIR/time")
wall=$(sed -n 's/.*Elapsed (wall clock) time.*: //p' "$DIR/time")
mbox_mb=$(( $(stat -c %s "$MBOX") / 1048576 ))
store_mb=$(( $(du -sk "$DIR/data" | cut -f1) / 1024 ))
rate=$(echo "scale=0; $imported / $secs" | bc)
echo "messages=$imported mbox_mb=$mbox_mb secs=$secs msgs_per_s=$rate mb_per_s=$(echo "scale=1; $mbox_mb / $secs" | bc) peak_rss_mb=$(( rss_kb / 1024 )) wall=$wall store_mb=$store_mb"
[ "$imported" = "$MSGS" ] || { echo "expected $MSGS messages" >&2; exit 1; }
