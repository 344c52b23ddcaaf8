#!/usr/bin/env bash
# POP3 retrieval throughput, Postgate beside Dovecot, in one run.
#
# Usage: bench/pop3_retrieve.sh [SECS=30] [WORKERS=4] [ROUNDS=3]
# Both servers hold pop1..pop20 with 50 messages each (~14 KB on average, from
# ../shared/bench/gen_mbox.py), filled over SMTP; the load is
# ../shared/bench/pop3_load.py's loop (USER/PASS, STAT, RETR every message, QUIT, no
# DELE), alternating between the servers ROUNDS times. LOADGEN=rust (default):
# the load is bench-pop3 (bench/loadgen), the same loop on WORKERS connections
# on THREADS=1 thread, printing its own CPU use (loadgen_cpu_pct, percent of
# one core); LOADGEN=python: pop3_load.py, WORKERS processes. Dovecot is the peer of
# ../shared/peers (POP3 on 127.0.0.1:10110, filled through the peer Postfix on
# 10025 if empty).
here=$(cd "$(dirname "$0")" && pwd); . "$here/lib.sh"
SECS=${1:-30} WORKERS=${2:-4} ROUNDS=${3:-3}
MBOX=${MBOX:-${TMPDIR:-/tmp}/bench-imap-1000.mbox}
[ -s "$MBOX" ] || python3 "$LOADS/gen_mbox.py" "$MBOX" 1000 42 >/dev/null
LOADGEN=${LOADGEN:-rust} THREADS=${THREADS:-1}
if [ "$LOADGEN" = rust ]; then pg_build_bench; else pg_build; fi
pg_start "" "" "[pop3]
listen = [\"127.0.0.1:0\"]
pop3s = []
allow_plaintext = true"
for i in $(seq 20); do
  echo pass | "$PG_BIN" --config "$PG_CONF" user add "pop$i@example.test" --name "Pop $i" --password-stdin >/dev/null
done
python3 "$LOADS/pop3_fill.py" 127.0.0.1 "$PG_SMTP_PORT" "$MBOX" --nusers 20 --per-user 50 >/dev/null
if (exec 3<>/dev/tcp/127.0.0.1/10110) 2>/dev/null; then
  n=$(python3 -c "import poplib; p=poplib.POP3('127.0.0.1',10110); p.user('pop1'); p.pass_('pass'); print(p.stat()[0])" 2>/dev/null || echo 0)
  if [ "${n:-0}" -lt 50 ]; then
    python3 "$LOADS/pop3_fill.py" 127.0.0.1 10025 "$MBOX" --nusers 20 --per-user 50 --domain example.test >/dev/null
    sleep 10
  fi
fi
# Postgate's users log in by address; Dovecot's by name.
run() {
  local fmt="pop%d"
  [ "$1" = "$PG_POP3_PORT" ] && fmt="pop%d@example.test"
  if [ "$LOADGEN" = rust ]; then
    "$BENCH_BIN/bench-pop3" 127.0.0.1 "$1" --secs "$SECS" --conns "$WORKERS" --threads "$THREADS" --user-fmt "$fmt"
  else
    python3 "$LOADS/pop3_load.py" 127.0.0.1 "$1" --secs "$SECS" --workers "$WORKERS" --user-fmt "$fmt"
  fi
}
side_by_side "$ROUNDS" msgs_per_s "$PG_POP3_PORT" dovecot 10110
