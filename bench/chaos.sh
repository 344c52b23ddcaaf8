#!/usr/bin/env bash
# Crash safety: kill -9 under load, KILLS times, and nothing acknowledged lost.
#
# Usage: bench/chaos.sh [KILLS=10] [SESSIONS=4] [MIN_S=1] [MAX_S=6]
# Needs: nothing beyond the build (bench/loadgen's bench-chaos).
# A mixed load (bench-chaos load: SESSIONS SMTP senders and SESSIONS IMAP
# appenders into chaos@example.test, each message with its own Message-ID,
# logged only once acknowledged: 250 after DATA, tagged OK after APPEND)
# runs against Postgate, which is killed with SIGKILL after a random
# MIN_S..MAX_S seconds, `postgate store check` run on the store the crash
# left, and started again; KILLS times. Then the load stops, and every
# acknowledged Message-ID must be in the mailbox (bench-chaos verify, over
# IMAP); the server is stopped and the store checked once more.
# Summary: kills, acknowledged, missing (must be 0), extra (stored, never
# acknowledged: allowed), store checks clean out of run.
here=$(cd "$(dirname "$0")" && pwd); . "$here/lib.sh"
KILLS=${1:-10} SESSIONS=${2:-4} MIN_S=${3:-1} MAX_S=${4:-6}
pg_build_bench
PG_NO_SERVE=1 pg_start "submission = []
smtps = []" "[imap]
listen = [\"127.0.0.1:0\"]
imaps = []
allow_plaintext = true"
echo secret | "$PG_BIN" --config "$PG_CONF" user add chaos@example.test --name Chaos --password-stdin >/dev/null
work=$PG_DIR/chaos; mkdir -p "$work"
PG_PORTS=$work/ports
load_pid=
cleanup() {
  touch "$work/stop"
  [ -n "$load_pid" ] && { kill "$load_pid" 2>/dev/null; wait "$load_pid" 2>/dev/null; }
  pg_stop
}
trap cleanup EXIT

checks=0 clean=0
store_check() {
  checks=$((checks + 1))
  if "$PG_BIN" --config "$PG_CONF" store check > "$work/check.$checks" 2>&1; then
    clean=$((clean + 1))
  else
    echo "store check $checks after a kill:" >&2; head -20 "$work/check.$checks" >&2
  fi
}

pg_serve
"$BENCH_BIN/bench-chaos" load "$PG_PORTS" "$work/acks" "$work/stop" "$SESSIONS" \
  chaos@example.test secret > "$work/load.out" 2> "$work/load.err" &
load_pid=$!
for k in $(seq "$KILLS"); do
  delay=$(awk -v a="$MIN_S" -v b="$MAX_S" -v r="$RANDOM" 'BEGIN { printf "%.2f", a + (b - a) * r / 32767 }')
  sleep "$delay"
  kill -9 "$PG_PID"; wait "$PG_PID" 2>/dev/null
  echo "kill $k after ${delay}s: $(wc -l < "$work/acks") acknowledged so far" >&2
  store_check
  pg_serve
done
# A few seconds of load on the last start, then stop it and look.
sleep 2
touch "$work/stop"
wait "$load_pid"; load_pid=
verify=$("$BENCH_BIN/bench-chaos" verify "$PG_PORTS" "$work/acks" chaos@example.test secret 2> "$work/verify.err")
kill "$PG_PID"; wait "$PG_PID" 2>/dev/null; PG_PID=
store_check
final=$(tail -1 "$work/check.$checks")
cat "$work/load.out" "$work/verify.err" >&2
echo "$verify" >&2
acked=$(figure acked "$verify") missing=$(figure missing "$verify") extra=$(figure extra "$verify")
smtp=$(grep -c '^smtp ' "$work/acks") imap=$(grep -c '^imap ' "$work/acks")
echo "chaos kills=$KILLS acknowledged=${acked:-?} (smtp=$smtp imap=$imap) missing=${missing:-?} extra=${extra:-?} store_checks_clean=$clean/$checks final_check=\"$final\""
[ "${missing:-1}" = 0 ] && [ "$clean" = "$checks" ]
