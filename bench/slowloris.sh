#!/usr/bin/env bash
# Slowloris: many clients holding sessions open by trickling bytes, while a
# normal client keeps working.
#
# Usage: bench/slowloris.sh [SLOW=10000] [SECS=180] [INTERVAL_S=5]
# Env:   SMTP_THREADS=4000 POP3_THREADS=4000 (sessions at once; IMAP keeps
#        its default, 10,000), TIMEOUT=30s (SMTP greeting and command
#        timeouts, POP3 idle timeout), IMAP_IDLE=60s.
# Needs: nothing beyond the build (bench/loadgen's bench-slowloris); raises
# `ulimit -n` (root may, others up to their hard limit).
#
# SLOW clients spread over the SMTP, IMAP and POP3 listeners connect, read
# the greeting and send one byte of a never-ending command every INTERVAL_S
# (±25%); when the server closes on them they connect again. Each comes
# from its own loopback address (127.0.A.B): the per-address cap
# ([limits] per_ip_connections, left at its default of 100) sees one
# client each and never bites, and the normal client, on 127.0.0.1, is not
# counted with them. Timeouts are shortened so that cuts happen within the
# run: SMTP greeting/command TIMEOUT (RFC 5321 §4.5.3.2.7 asks 5 minutes of
# a production server), POP3 idle TIMEOUT (RFC 1939 §3: 10 minutes), IMAP
# idle IMAP_IDLE (before login Postgate allows min(2 min, idle timeout)).
# The server must cut a trickling client when its command is not complete
# by the timeout, whatever bytes came meanwhile.
# Summary: the normal client's p50/p99 and failures per protocol, and per
# listener how many slow sessions the server cut, after how long (p50), and
# how many it refused at the greeting (try later: the session cap).
here=$(cd "$(dirname "$0")" && pwd); . "$here/lib.sh"
SLOW=${1:-10000} SECS=${2:-180} INTERVAL_S=${3:-5}
SMTP_THREADS=${SMTP_THREADS:-4000} POP3_THREADS=${POP3_THREADS:-4000}
TIMEOUT=${TIMEOUT:-30s} IMAP_IDLE=${IMAP_IDLE:-60s}
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
pg_build_bench
PG_NO_SERVE=1 pg_start "submission = []
smtps = []
threads = $SMTP_THREADS
[smtp.timeouts]
greeting = \"$TIMEOUT\"
command = \"$TIMEOUT\"" "[imap]
listen = [\"127.0.0.1:0\"]
imaps = []
allow_plaintext = true
idle_timeout = \"$IMAP_IDLE\"" "[pop3]
listen = [\"127.0.0.1:0\"]
pop3s = []
allow_plaintext = true
threads = $POP3_THREADS
idle_timeout = \"$TIMEOUT\""
# pg_start turns the per-address cap off ("every load comes from
# loopback"); here it stays at its default, as in production.
sed -i 's/^per_ip_connections = 0$/per_ip_connections = 100/' "$PG_CONF"
echo secret | "$PG_BIN" --config "$PG_CONF" user add normal@example.test --name Normal --password-stdin >/dev/null
PG_PORTS=$PG_DIR/ports
pg_serve
fds_before=$(ls "/proc/$PG_PID/fd" | wc -l)
rss_max=0 fds_max=0
( while kill -0 "$PG_PID" 2>/dev/null; do
    echo "$(ls "/proc/$PG_PID/fd" 2>/dev/null | wc -l) $(awk '/VmRSS/ {print $2}' "/proc/$PG_PID/status" 2>/dev/null)"
    sleep 5
  done ) > "$PG_DIR/samples" &
sampler=$!
trap 'kill $sampler 2>/dev/null; pg_stop' EXIT
out=$(nice -n 5 "$BENCH_BIN/bench-slowloris" "$PG_PORTS" "$SLOW" "$SECS" "$INTERVAL_S" normal@example.test secret)
kill $sampler 2>/dev/null; wait $sampler 2>/dev/null
read -r fds_max rss_max < <(awk '$1 > f {f = $1} $2 > r {r = $2} END {print f + 0, r + 0}' "$PG_DIR/samples")
alive=$(kill -0 "$PG_PID" 2>/dev/null && echo yes || echo no)
grep -v '^slowloris ' <<<"$out" >&2
echo "$(grep '^slowloris ' <<<"$out") server_alive=$alive server_fds_max=$fds_max server_rss_max_kb=$rss_max fds_before=$fds_before"
