#!/usr/bin/env bash
# `postgate import imap` of a live Dovecot account (the peer kit's, over
# plain IMAP on 127.0.0.1:10143), checked message by message: every
# mailbox, each message's bytes, flags, keywords and internal date.
#
# Usage: bench/import_dovecot.sh [MESSAGES=300] [USER=user97]
# Needs the peers running: ../shared/peers/setup.sh DIR && start.sh DIR.
# Appends MESSAGES messages to USER's account first (over IMAP APPEND:
# random flags and keywords, dates, seven mailboxes with subfolders and a
# non-ASCII name), imports the whole account into a fresh Postgate data
# directory, serves it, reads both accounts back with imaplib and compares.
# Then the same account from Dovecot's own files: `postgate import maildir`
# of PEERS_DIR/data/mail/USER/Maildir (default PEERS_DIR=/srv/peers; read
# while Dovecot runs, as an operator leaving it would), compared the same way.
# Prints one summary line per import; exits non-zero on any difference.
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
PG_BIN=${PG_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/postgate}
. "$here/lib.sh"
MSGS=${1:-300} PEER_USER=${2:-user97}
TOOL=$repo/crates/server/tests/py/mailbox_tool.py
timeout 2 bash -c '</dev/tcp/127.0.0.1/10143' 2>/dev/null \
  || { echo "no Dovecot on 127.0.0.1:10143: run ../shared/peers/start.sh DIR" >&2; exit 2; }
DIR=$(mktemp -d /tmp/postgate-import-dovecot.XXXXXX)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; rm -rf "$DIR"; }
trap cleanup EXIT

# 1. Fill the peer account.
python3 - "$DIR/spec.json" "$MSGS" <<'PY'
import base64, json, random, sys
out, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(7)
boxes = ["INBOX", "Archive", "Archive/2024", "Projects", "Projects/Alpha", "Sent", "&AMk-t&AOk-"]
flags = ["\\Seen", "\\Answered", "\\Flagged", "\\Draft", "\\Deleted", "$Label1", "Work", "NonJunk", "$Forwarded"]
spec = []
for i in range(n):
    body = "\r\n".join("line %d of message %d %s" % (j, i, "x" * rng.randint(0, 70))
                       for j in range(rng.randint(1, 200)))
    raw = ("From: Peer <peer@example.test>\r\nTo: <user@example.test>\r\n"
           "Subject: dovecot import %d\r\nMessage-ID: <%d.%d@dovecot.test>\r\n\r\n%s\r\n"
           % (i, i, rng.getrandbits(32), body)).encode()
    spec.append({"mailbox": rng.choice(boxes),
                 "flags": sorted(set(rng.sample(flags, rng.randint(0, 4)))),
                 "date": 1500000000 + rng.randint(0, 200000000),
                 "raw_b64": base64.b64encode(raw).decode()})
json.dump(spec, open(out, "w"))
PY
python3 "$TOOL" fill 127.0.0.1 plain:10143 "$PEER_USER" pass "$DIR/spec.json" >/dev/null || exit 1

# 2. Import it into a fresh post office.
CONF=$DIR/postgate.toml
imaps_only_conf "$DIR/data" > "$CONF"
"$PG_BIN" --config "$CONF" domain add example.test >/dev/null
echo secret | "$PG_BIN" --config "$CONF" user add dest@example.test --name Dest --password-stdin >/dev/null
echo secret | "$PG_BIN" --config "$CONF" user add fromdisk@example.test --name Disk --password-stdin >/dev/null
MAILDIR=${PEERS_DIR:-/srv/peers}/data/mail/$PEER_USER/Maildir
[ -d "$MAILDIR" ] || { echo "no Dovecot maildir at $MAILDIR (PEERS_DIR)" >&2; exit 2; }
m0=$(date +%s.%N)
"$PG_BIN" --config "$CONF" import maildir "$MAILDIR" fromdisk@example.test --quiet \
  > "$DIR/maildir.out" 2> "$DIR/maildir.err" \
  || { cat "$DIR/maildir.out" "$DIR/maildir.err" >&2; exit 1; }
m1=$(date +%s.%N)
t0=$(date +%s.%N)
echo pass | "$PG_BIN" --config "$CONF" import imap --from "imap://$PEER_USER@127.0.0.1:10143" \
  dest@example.test --quiet > "$DIR/import.out" 2> "$DIR/import.err" \
  || { cat "$DIR/import.out" "$DIR/import.err" >&2; exit 1; }
t1=$(date +%s.%N)

# 3. Read both back and compare.
"$PG_BIN" --config "$CONF" serve > "$DIR/stdout" 2> "$DIR/stderr" &
PID=$!
for _ in $(seq 100); do grep -q ready "$DIR/stdout" 2>/dev/null && break; sleep 0.1; done
PORT=$(sed -n 's/^postgate: imap listening on 127.0.0.1:\([0-9]*\) (imaps.*/\1/p' "$DIR/stdout" | head -1)
[ -n "$PORT" ] || { echo "postgate did not start" >&2; cat "$DIR/stderr" >&2; exit 2; }
python3 "$TOOL" dump 127.0.0.1 plain:10143 "$PEER_USER" pass > "$DIR/peer.json" || exit 1
python3 "$TOOL" dump 127.0.0.1 "$PORT" dest@example.test secret > "$DIR/ours.json" || exit 1
python3 "$TOOL" dump 127.0.0.1 "$PORT" fromdisk@example.test secret > "$DIR/disk.json" || exit 1
compare() {
python3 - "$1" "$2" "$3" "$4" <<'PY'
import json, sys
peer, ours, secs = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), float(sys.argv[3])
keys = lambda m: (m["sha256"], m["size"], m["flags"], m["internaldate"])
bad, total = [], 0
for box, msgs in peer.items():
    total += len(msgs)
    mine = ours.get(box)
    if mine is None:
        bad.append("%s: missing" % box); continue
    if [keys(m) for m in msgs] != [keys(m) for m in mine]:
        diff = next((i for i, (a, b) in enumerate(zip(msgs, mine)) if keys(a) != keys(b)), min(len(msgs), len(mine)))
        bad.append("%s: %d vs %d messages, first difference at #%d" % (box, len(msgs), len(mine), diff))
extra = [b for b, m in ours.items() if b not in peer and m]
bad += ["%s: not at the peer, yet holds messages" % b for b in extra]
print("%s mailboxes=%d messages=%d secs=%.2f msgs_per_s=%.0f mismatches=%d" % (sys.argv[4], len(peer), total, secs, total / max(secs, 0.001), len(bad)))
for b in bad:
    print("  " + b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
}
compare "$DIR/peer.json" "$DIR/ours.json" "$(echo "$t1 - $t0" | bc)" import_imap; a=$?
compare "$DIR/peer.json" "$DIR/disk.json" "$(echo "$m1 - $m0" | bc)" import_maildir; b=$?
[ $a = 0 ] && [ $b = 0 ]
