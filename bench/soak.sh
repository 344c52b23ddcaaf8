#!/usr/bin/env bash
# Soak: a steady mixed load for a long time; do memory, descriptors, the
# WAL and latencies stay flat?
#
# Usage: bench/soak.sh [DURATION=1800] [USERS=20]
# Env:   SMTP_RATE=10 SUBMIT_RATE=1 IMAP_SESSIONS=2 POP3_SESSIONS=1 (see
#        bench/loadgen/src/bin/bench-soak.rs), CSV=FILE (default: kept in
#        /tmp/postgate-soak-*.csv).
# Needs: smtp-sink (Debian's postfix), run as root (it drops to nobody).
#
# Postgate gets user1..userUSERS@example.test (password "pass") and, for
# mail to relay.test, a route to an smtp-sink on loopback. bench-soak (run
# under `nice -n 5`; the server is not) sends SMTP in, submits (AUTH PLAIN,
# relayed to the sink), reads and flags over IMAP and reads over POP3, and
# every 10 s writes the server's RSS, open descriptors, WAL size and each
# protocol's p99 over those 10 s to the CSV. Its summary gives first/last/max
# of each figure and a verdict per figure: flat when the mean of the last
# third of the samples is within 10% of the middle third's (the first third
# is warm-up), with small absolute slacks; then what the sink received and
# what is left in the queue.
here=$(cd "$(dirname "$0")" && pwd); . "$here/lib.sh"
DURATION=${1:-1800} USERS=${2:-20}
SMTP_SINK=${SMTP_SINK:-$(command -v smtp-sink || echo /usr/sbin/smtp-sink)}
[ -x "$SMTP_SINK" ] || { echo "smtp-sink not found (apt-get install postfix)" >&2; exit 2; }
pg_build_bench
SINK_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
PG_NO_SERVE=1 pg_start "submission = [\"127.0.0.1:0\"]
smtps = []
allow_plaintext_auth = true
[outbound]
tls = \"none\"
[outbound.routes]
\"relay.test\" = \"[127.0.0.1]:$SINK_PORT\"" "[imap]
listen = [\"127.0.0.1:0\"]
imaps = []
allow_plaintext = true" "[pop3]
listen = [\"127.0.0.1:0\"]
pop3s = []
allow_plaintext = true"
for i in $(seq "$USERS"); do
  echo pass | "$PG_BIN" --config "$PG_CONF" user add "user$i@example.test" --name "User $i" --password-stdin >/dev/null
done
CSV=${CSV:-$(mktemp /tmp/postgate-soak-XXXXXX.csv)}
"$SMTP_SINK" -c -u nobody "127.0.0.1:$SINK_PORT" 256 > "$PG_DIR/sink.out" 2>&1 &
sink_pid=$!
trap 'kill $sink_pid 2>/dev/null; wait $sink_pid 2>/dev/null; pg_stop' EXIT
PG_PORTS=$PG_DIR/ports
pg_serve
out=$(nice -n 5 "$BENCH_BIN/bench-soak" "$PG_PORTS" "$DURATION" "$PG_PID" "$PG_DIR/data" "$CSV" "$USERS" pass)
# The queue drains after the load: give the last submissions time to leave.
for _ in $(seq 30); do
  left=$("$PG_BIN" --config "$PG_CONF" queue list | grep -vc "queue is empty")
  [ "$left" = 0 ] && break
  sleep 1
done
sunk=$(tr '\r' '\n' < "$PG_DIR/sink.out" | sed -n 's/.*mesg=\([0-9]*\).*/\1/p' | tail -1)
errors=$(grep -c ERROR "$PG_DIR/stderr")
grep -v '^soak ' <<<"$out" >&2
echo "csv: $CSV" >&2
echo "$(grep '^soak ' <<<"$out") sink_received=${sunk:-0} queue_left=$left server_error_lines=$errors"
