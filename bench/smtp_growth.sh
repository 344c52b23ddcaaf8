#!/usr/bin/env bash
# Does inbound throughput stay flat while one mailbox grows?
#
# Usage: bench/smtp_growth.sh [TOTAL=100000] [STEP=10000] [SESSIONS=10] [SIZE=10240]
# Delivers TOTAL messages of SIZE bytes into sink@example.test in rounds of
# STEP, printing the rate of each round beside the mailbox size before it.
here=$(cd "$(dirname "$0")" && pwd); . "$here/lib.sh"
TOTAL=${1:-100000} STEP=${2:-10000} SESS=${3:-10} SIZE=${4:-10240}
pg_build
pg_start ""
done_=0
while [ "$done_" -lt "$TOTAL" ]; do
  line=$(RCPT=sink@example.test TIMEOUT=600 "$LOADS/smtp_load.sh" 127.0.0.1 "$PG_SMTP_PORT" "$STEP" "$SESS" "$SIZE")
  echo "mailbox_before=$done_ $line"
  done_=$((done_ + STEP))
done
stored=$("$PG_BIN" --config "$PG_CONF" item list sink@example.test | tail -n +2 | wc -l)
echo "stored=$stored"
du -sh "$PG_DIR/data"
