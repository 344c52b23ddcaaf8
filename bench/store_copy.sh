#!/usr/bin/env bash
# `postgate store copy` of a large embedded post office into PostgreSQL,
# with an IMAP client (mbsync) synced before the move and after it.
#
# Usage: bench/store_copy.sh [MESSAGES=100000] [SIZE=4096]
# Needs: Debian's postgresql (a throwaway cluster via .ci/pg-cluster),
# smtp-source (postfix) and mbsync (isync).
# Fills one mailbox over SMTP, syncs it to a local maildir with mbsync,
# stops the server, copies the data directory into PostgreSQL (timed),
# starts the server on PostgreSQL and syncs again: the local maildir must
# not change (same UIDVALIDITY and UIDs: nothing to fetch, nothing renamed).
here=$(cd "$(dirname "$0")" && pwd); . "$here/lib.sh"
MSGS=${1:-100000} SIZE=${2:-4096}
pg_build
STORE=postgres pg_cluster
TARGET=$PG_STORE_URL; PG_STORE_URL=
KEEP=1 pg_start "" "[imap]
listen = [\"127.0.0.1:0\"]
imaps = []
allow_plaintext = true"
echo secret | "$PG_BIN" --config "$PG_CONF" user add bulk@example.test --name Bulk --password-stdin >/dev/null
t0=$(date +%s.%N)
RCPT=bulk@example.test TIMEOUT=1200 "$LOADS/smtp_load.sh" 127.0.0.1 "$PG_SMTP_PORT" "$MSGS" 10 "$SIZE"
MAILDIR=$PG_DIR/maildir; mkdir -p "$MAILDIR"
rc() { cat > "$PG_DIR/mbsyncrc" <<RC
IMAPAccount a
Host 127.0.0.1
Port $1
User bulk@example.test
Pass secret
SSLType None
AuthMechs LOGIN
Timeout 600

IMAPStore far
Account a

MaildirStore near
Path $MAILDIR/
Inbox $MAILDIR/INBOX
SubFolders Verbatim

Channel c
Far :far:
Near :near:
Patterns INBOX
Create Near
SyncState *
RC
}
rc "$PG_IMAP_PORT"
s=$(date +%s.%N); mbsync -q -c "$PG_DIR/mbsyncrc" -a || exit 1
echo "mbsync before the move: $(find "$MAILDIR/INBOX" -type f -path '*/cur/*' -o -type f -path '*/new/*' | wc -l) messages in $(awk -v a="$s" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s"
before=$(find "$MAILDIR" -type f \( -path '*/cur/*' -o -path '*/new/*' \) -printf '%P\n' | sort | md5sum)
kill "$PG_PID"; wait "$PG_PID" 2>/dev/null; PG_PID=
s=$(date +%s.%N)
"$PG_BIN" --config "$PG_CONF" store copy --to "$TARGET" --quiet | tail -3
echo "store copy: $(awk -v a="$s" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s for $MSGS messages"
printf '[store]\nbackend = "postgres"\nurl = "%s"\nnode = "bench"\n' "$TARGET" >> "$PG_CONF"
"$PG_BIN" --config "$PG_CONF" serve > "$PG_DIR/stdout2" 2> "$PG_DIR/stderr2" &
PG_PID=$!
for _ in $(seq 100); do grep -q ready "$PG_DIR/stdout2" 2>/dev/null && break; sleep 0.1; done
port=$(sed -n 's/^postgate: imap listening on 127.0.0.1:\([0-9]*\) (imap,.*/\1/p' "$PG_DIR/stdout2" | head -1)
rc "$port"
s=$(date +%s.%N); mbsync -q -c "$PG_DIR/mbsyncrc" -a || exit 1
after=$(find "$MAILDIR" -type f \( -path '*/cur/*' -o -path '*/new/*' \) -printf '%P\n' | sort | md5sum)
echo "mbsync after the move: $(awk -v a="$s" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s"
if [ "$before" = "$after" ]; then
  echo "store_copy msgs=$MSGS result=unchanged (mbsync found nothing to do)"
else
  echo "store_copy msgs=$MSGS result=CHANGED (mbsync resynced)"; exit 1
fi
KEEP=0
