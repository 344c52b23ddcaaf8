#!/usr/bin/env bash
# Inbound SMTP throughput, Postgate beside Postfix, in one run.
#
# Usage: bench/smtp_inbound.sh [MESSAGES=20000] [SESSIONS=10] [SIZE=10240]
# Needs: smtp-source (Debian's postfix), the peer Postfix of ../shared/peers
# running on 127.0.0.1:10025 (start.sh); otherwise only Postgate is measured.
# Each server gets the same load: 10 KB messages, 10 concurrent senders, a new
# connection per message, every message delivered into one mailbox
# (sink@example.test): Postfix into a maildir, Postgate into its store with
# fsync'd group commits. Prints one line per server and the ratio.
here=$(cd "$(dirname "$0")" && pwd); . "$here/lib.sh"
MSGS=${1:-20000} SESS=${2:-10} SIZE=${3:-10240}
pg_build
pg_start ""
run() { RCPT=sink@example.test TIMEOUT=${TIMEOUT:-300} "$LOADS/smtp_load.sh" 127.0.0.1 "$1" "$MSGS" "$SESS" "$SIZE"; }
"$LOADS/wait_quiet.sh" 60 >/dev/null || true
pg=$(run "$PG_SMTP_PORT")
echo "postgate $pg"
stored=$("$PG_BIN" --config "$PG_CONF" item list sink@example.test | tail -n +2 | wc -l)
echo "postgate stored=$stored"
if (exec 3<>/dev/tcp/127.0.0.1/10025) 2>/dev/null; then
  "$LOADS/wait_quiet.sh" 60 >/dev/null || true
  pf=$(run 10025)
  echo "postfix  $pf"
  echo "ratio postgate/postfix = $(ratio "$(figure msgs_per_s "$pg")" "$(figure msgs_per_s "$pf")")"
else
  echo "postfix: not running on 127.0.0.1:10025 (../shared/peers/start.sh); no comparison"
fi
