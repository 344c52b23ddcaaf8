#!/usr/bin/env bash
# `postgate import mbox` of a large mbox: messages per second and the
# importer's peak resident memory, on one summary line.
#
# Usage: bench/import.sh [MESSAGES=200000]
# Env: MBOX=FILE reuses a generated mbox (else one is made in /tmp and kept
# as /tmp/postgate-import-bench-MESSAGES.mbox for the next run);
# NO_BUILD=1 skips the release build; PG_BIN names the binary.
#
# The messages come from ../shared/bench/gen_mbox.py (1-30 KB, a quarter
# multipart with attachments, threading headers): a pool of POOL=5000 is
# generated and replayed, each copy made distinct (see below).
# The import runs with no server (the store's writer is the importer's),
# into a fresh data directory, timed by /usr/bin/time -v. Then a server is
# started on that directory and bench/import_verify.py reads the mbox on its
# own and every message back over IMAPS, comparing bytes, flags and
# keywords, and internal dates (VERIFY=0 skips this).
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
PG_BIN=${PG_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/postgate}
. "$here/lib.sh"
MSGS=${1:-200000}
if [ -z "${NO_BUILD:-}" ]; then
  (cd "$repo" && nice -n 19 cargo build --release -q -p postgate) || { echo "build failed" >&2; exit 2; }
fi
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (Debian: time)" >&2; exit 2; }
MBOX=${MBOX:-/tmp/postgate-import-bench-v2-$MSGS.mbox}
if [ ! -s "$MBOX" ]; then
  # gen_mbox.py writes ~1.6 GB per 100,000 messages at a few MB/s of
  # Python: a pool of POOL messages from it is replayed instead, each copy
  # made distinct (its own From_ date, Message-ID and Subject), so that
  # every message is hashed, parsed and stored as a new one. Some copies
  # carry the state fields mail stores keep flags in (Status, X-Status,
  # X-Keywords), for the check to find as flags and keywords.
  POOL=${POOL:-5000}
  python3 "$LOADS/gen_mbox.py" "$MBOX.pool" "$POOL" 42 >/dev/null || exit 2
  python3 - "$MBOX.pool" "$MBOX.tmp" "$MSGS" <<'PY' || exit 2
import re, sys, time
pool_file, out_file, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
text = open(pool_file, "rb").read()
msgs = [m for m in re.split(rb"(?m)^(?=From \S+ \w{3} \w{3} )", text) if m]
with open(out_file, "wb", buffering=1 << 20) as f:
    for i in range(n):
        m = msgs[i % len(msgs)]
        first, rest = m.split(b"\n", 1)
        sender = first.split(b" ")[1]
        date = time.asctime(time.gmtime(1600000000 + i * 61)).encode()
        rest = re.sub(rb"(?m)^Message-ID: <", b"Message-ID: <c%d." % i, rest, count=1)
        rest = re.sub(rb"(?m)^Subject: ", b"Subject: [%d] " % i, rest, count=1)
        state = b""
        if i % 3 == 0:
            state += b"Status: RO\n"
        if i % 5 == 0:
            state += b"X-Status: AF\n"
        if i % 7 == 0:
            state += b"X-Keywords: $Label1 Work%d\n" % (i % 4)
        f.write(b"From " + sender + b" " + date + b"\n" + state + rest)
PY
  mv "$MBOX.tmp" "$MBOX" && rm -f "$MBOX.pool"
fi
DIR=$(mktemp -d /tmp/postgate-import-bench.XXXXXX)
trap 'rm -rf "$DIR"' EXIT
CONF=$DIR/postgate.toml
imaps_only_conf "$DIR/data" > "$CONF"
"$PG_BIN" --config "$CONF" domain add example.test >/dev/null
echo secret | "$PG_BIN" --config "$CONF" user add bulk@example.test --name Bulk --password-stdin >/dev/null
/usr/bin/time -v "$PG_BIN" --config "$CONF" import mbox "$MBOX" bulk@example.test --quiet \
  > "$DIR/out" 2> "$DIR/time" || { cat "$DIR/out" "$DIR/time" >&2; exit 1; }
imported=$(sed -n 's/^imported \([0-9]*\) messages.*/\1/p' "$DIR/out")
secs=$(sed -n 's/.* in \([0-9.]*\) s (.*/\1/p' "$DIR/out")
rss_kb=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$DIR/time")
wall=$(sed -n 's/.*Elapsed (wall clock) time.*: //p' "$DIR/time")
mbox_mb=$(( $(stat -c %s "$MBOX") / 1048576 ))
store_mb=$(( $(du -sk "$DIR/data" | cut -f1) / 1024 ))
rate=$(echo "scale=0; $imported / $secs" | bc)
line="messages=$imported mbox_mb=$mbox_mb secs=$secs msgs_per_s=$rate mb_per_s=$(echo "scale=1; $mbox_mb / $secs" | bc) peak_rss_mb=$(( rss_kb / 1024 )) wall=$wall store_mb=$store_mb"
[ "$imported" = "$MSGS" ] || { echo "$line"; echo "expected $MSGS messages" >&2; exit 1; }
if [ "${VERIFY:-1}" = 0 ]; then echo "$line"; exit 0; fi
"$PG_BIN" --config "$CONF" serve > "$DIR/stdout" 2> "$DIR/stderr" &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq 100); do grep -q ready "$DIR/stdout" 2>/dev/null && break; sleep 0.1; done
PORT=$(sed -n 's/^postgate: imap listening on 127.0.0.1:\([0-9]*\) (imaps.*/\1/p' "$DIR/stdout" | head -1)
[ -n "$PORT" ] || { echo "postgate did not start" >&2; cat "$DIR/stderr" >&2; exit 2; }
v0=$(date +%s)
check=$(python3 "$here/import_verify.py" "$MBOX" 127.0.0.1 "$PORT" bulk@example.test secret)
rc=$?
echo "$line $check verify_secs=$(( $(date +%s) - v0 ))"
exit $rc
