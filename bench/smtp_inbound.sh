#!/usr/bin/env bash
# Inbound SMTP throughput, Postgate beside Postfix, in one run.
#
# Usage: bench/smtp_inbound.sh [MESSAGES=20000] [SESSIONS=10] [SIZE=10240] [ROUNDS=3]
# Needs: smtp-source (Debian's postfix), and the peer Postfix of ../shared/peers
# running on 127.0.0.1:10025 (start.sh); without it only Postgate is measured.
# Both servers get the same load, alternately, ROUNDS times: SIZE-byte messages,
# SESSIONS concurrent senders, a new connection per message, every message
# delivered into one mailbox (sink@example.test): Postfix into a maildir,
# Postgate into its store with fsync'd group commits. Prints each run, the
# medians and their ratio.
#
# Then the same beside Postfix's smtp-sink (on 127.0.0.1:SINK_PORT, started
# and stopped here; it must run as root, it drops to "nobody"): a server
# that answers SMTP and stores nothing, the ceiling this load can reach on
# this machine (issue 17's goal: Postgate at 70% of it or more). SINK=0
# leaves it out.
#
# Then the same beside bench-durable-sink (bench/loadgen): smtp-sink plus
# the one thing every real server owes before its 250, an fdatasync of the
# message's bytes (appended to one file, syncs shared by the messages that
# end together). It parses, converts and indexes nothing: the ceiling of a
# server that loses nothing, on this machine and this load. DSINK=0 leaves
# it out; DSINK_OPTS passes options (e.g. "--batch 4 --linger-us 300":
# fuller syncs, tuned to this load).
here=$(cd "$(dirname "$0")" && pwd); . "$here/lib.sh"
MSGS=${1:-20000} SESS=${2:-10} SIZE=${3:-10240} ROUNDS=${4:-3}
pg_build_bench
pg_start ""
run() { RCPT=sink@example.test TIMEOUT=${TIMEOUT:-300} "$LOADS/smtp_load.sh" 127.0.0.1 "$1" "$MSGS" "$SESS" "$SIZE"; }
# Every message Postgate acknowledged must be in the mailbox: PASSES
# comparisons so far, ROUNDS runs each.
PASSES=1
pg_note() { echo " stored=$("$PG_BIN" --config "$PG_CONF" item list sink@example.test | tail -n +2 | wc -l) (of $((MSGS * ROUNDS * PASSES)))"; }
side_by_side "$ROUNDS" msgs_per_s "$PG_SMTP_PORT" postfix 10025
SMTP_SINK=${SMTP_SINK:-$(command -v smtp-sink || echo /usr/sbin/smtp-sink)}
if [ "${SINK:-1}" = 1 ] && [ -x "$SMTP_SINK" ]; then
  SINK_PORT=${SINK_PORT:-10028}
  "$SMTP_SINK" -u nobody "127.0.0.1:$SINK_PORT" 512 >/dev/null 2>&1 &
  sink_pid=$!
  trap 'kill "$sink_pid" 2>/dev/null; wait "$sink_pid" 2>/dev/null; pg_stop' EXIT
  sleep 0.3
  PASSES=$((PASSES + 1))
  side_by_side "$ROUNDS" msgs_per_s "$PG_SMTP_PORT" smtp-sink "$SINK_PORT"
  kill "$sink_pid" 2>/dev/null; wait "$sink_pid" 2>/dev/null
fi
if [ "${DSINK:-1}" = 1 ]; then
  # shellcheck disable=SC2086 # DSINK_OPTS: words on purpose
  "$BENCH_BIN/bench-durable-sink" "$PG_DIR/durable-sink" ${DSINK_OPTS:-} > "$PG_DIR/durable-sink.port" &
  dsink_pid=$!
  trap 'kill "$dsink_pid" 2>/dev/null; wait "$dsink_pid" 2>/dev/null; pg_stop' EXIT
  for _ in $(seq 50); do [ -s "$PG_DIR/durable-sink.port" ] && break; sleep 0.1; done
  PASSES=$((PASSES + 1))
  side_by_side "$ROUNDS" msgs_per_s "$PG_SMTP_PORT" durable-sink "$(cat "$PG_DIR/durable-sink.port")"
fi
