#!/usr/bin/env bash
# Appointments: inbound iMIP REQUEST delivery beside plain mail of the same
# size, and "what is on between A and B" over a large calendar, in one run.
#
# Usage: bench/calendar.sh [MESSAGES=5000] [SESSIONS=10] [SIZE=10240] [ROUNDS=3] [QUERIES=1000]
#
# 1. Throughput: bench/loadgen sends MESSAGES distinct messages (a new
#    connection each, SESSIONS at once) to sink@example.test, alternately
#    plain mail and invitations (Google's shape: text, HTML, text/calendar
#    with METHOD:REQUEST, invite.ics; each with its own UID, so each makes a
#    new appointment), both SIZE bytes, ROUNDS times; medians and their ratio.
# 2. Range queries: a second user gets 10,000 appointments and 500 recurring
#    series (calendar import), then QUERIES random day/week/month spans of
#    2027 are asked through the client API (HTTPS keep-alive, one at a time):
#    p50 and p99 latency as the client sees it.
here=$(cd "$(dirname "$0")" && pwd); . "$here/lib.sh"
MSGS=${1:-5000} SESS=${2:-10} SIZE=${3:-10240} ROUNDS=${4:-3} QUERIES=${5:-1000}
pg_build
(cd "$repo" && cargo build --release -q -p postgate-loadgen) || exit 2
LOADGEN=$repo/target/release/postgate-loadgen
pg_start "" "" "" "" '[console]
listen = ["127.0.0.1:0"]'
work=$PG_DIR/work; mkdir -p "$work"
python3 "$here/calendar_tool.py" templates "$work" "$SIZE"

plain=() imip=()
for r in $(seq "$ROUNDS"); do
  for kind in plain imip; do
    "$LOADS/wait_quiet.sh" 60 >/dev/null || true
    line=$("$LOADGEN" smtp "$PG_SMTP_PORT" "$MSGS" "$SESS" "$work/$kind.eml" sink@example.test 300 $(( (r - 1) * MSGS )))
    echo "round $r $kind $line"
    v=$(figure msgs_per_s "$line")
    if [ $kind = plain ]; then plain+=("$v"); else imip+=("$v"); fi
  done
done
p=$(printf '%s\n' "${plain[@]}" | median); i=$(printf '%s\n' "${imip[@]}" | median)
echo "plain median_msgs_per_s=$p"
echo "imip  median_msgs_per_s=$i appointments=$("$PG_BIN" --config "$PG_CONF" item list sink@example.test --folder Calendar | tail -n +2 | wc -l)"
echo "ratio imip/plain = $(ratio "$i" "$p")"

"$PG_BIN" --config "$PG_CONF" user add cal@example.test --name "Busy Person" >/dev/null
echo 'bench' | "$PG_BIN" --config "$PG_CONF" user passwd cal@example.test >/dev/null
python3 "$here/calendar_tool.py" populate "$work/big.ics" 10000 500
"$PG_BIN" --config "$PG_CONF" calendar import cal@example.test "$work/big.ics" | tail -1
"$LOADS/wait_quiet.sh" 60 >/dev/null || true
python3 "$here/calendar_tool.py" query "$PG_CONSOLE_PORT" cal@example.test bench "$QUERIES"
