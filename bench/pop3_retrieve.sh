#!/usr/bin/env bash
# POP3 retrieval throughput, Postgate beside Dovecot, in one run.
#
# Usage: bench/pop3_retrieve.sh [SECS=30] [WORKERS=4] [ROUNDS=3]
# Both servers hold pop1..pop20 with 50 messages each (~14 KB on average, from
# ../shared/bench/gen_mbox.py), filled over SMTP; the load is
# ../shared/bench/pop3_load.py (USER/PASS, STAT, RETR every message, QUIT, no
# DELE), alternating between the servers ROUNDS times. Dovecot is the peer of
# ../shared/peers (POP3 on 127.0.0.1:10110, filled through the peer Postfix on
# 10025 if empty).
here=$(cd "$(dirname "$0")" && pwd); . "$here/lib.sh"
SECS=${1:-30} WORKERS=${2:-4} ROUNDS=${3:-3}
MBOX=${MBOX:-${TMPDIR:-/tmp}/bench-imap-1000.mbox}
[ -s "$MBOX" ] || python3 "$LOADS/gen_mbox.py" "$MBOX" 1000 42 >/dev/null
pg_build
pg_start "" "" "[pop3]
listen = [\"127.0.0.1:0\"]
pop3s = []
allow_plaintext = true"
for i in $(seq 20); do
  echo pass | "$PG_BIN" --config "$PG_CONF" user add "pop$i@example.test" --name "Pop $i" --password-stdin >/dev/null
done
python3 "$LOADS/pop3_fill.py" 127.0.0.1 "$PG_SMTP_PORT" "$MBOX" --nusers 20 --per-user 50 >/dev/null
have_dovecot=0
if (exec 3<>/dev/tcp/127.0.0.1/10110) 2>/dev/null; then
  have_dovecot=1
  n=$(python3 -c "import poplib; p=poplib.POP3('127.0.0.1',10110); p.user('pop1'); p.pass_('pass'); print(p.stat()[0])" 2>/dev/null || echo 0)
  if [ "${n:-0}" -lt 50 ]; then
    python3 "$LOADS/pop3_fill.py" 127.0.0.1 10025 "$MBOX" --nusers 20 --per-user 50 --domain example.test >/dev/null
    sleep 10
  fi
fi
pg_rates=() dc_rates=()
for r in $(seq "$ROUNDS"); do
  "$LOADS/wait_quiet.sh" 60 >/dev/null || true
  line=$(python3 "$LOADS/pop3_load.py" 127.0.0.1 "$PG_POP3_PORT" --secs "$SECS" --workers "$WORKERS" --user-fmt "pop%d@example.test")
  echo "round $r postgate $line"; pg_rates+=("$(figure msgs_per_s "$line")")
  if [ $have_dovecot = 1 ]; then
    "$LOADS/wait_quiet.sh" 60 >/dev/null || true
    line=$(python3 "$LOADS/pop3_load.py" 127.0.0.1 10110 --secs "$SECS" --workers "$WORKERS")
    echo "round $r dovecot  $line"; dc_rates+=("$(figure msgs_per_s "$line")")
  fi
done
pg=$(printf '%s\n' "${pg_rates[@]}" | median)
echo "postgate median_msgs_per_s=$pg"
if [ $have_dovecot = 1 ]; then
  dc=$(printf '%s\n' "${dc_rates[@]}" | median)
  echo "dovecot  median_msgs_per_s=$dc"
  echo "ratio postgate/dovecot = $(ratio "$pg" "$dc")"
fi
