#!/usr/bin/env bash
# Relay throughput, Postgate beside Postfix, in one run: messages/s from the
# first message submitted until the last one reached the next hop.
#
# Usage: bench/smtp_relay.sh [MESSAGES=10000] [SESSIONS=10] [SIZE=10240] [ROUNDS=3]
# Needs: smtp-source and smtp-sink (Debian's postfix), run as root (smtp-sink
# drops to "nobody"; the peer Postfix's tables are edited). The peer Postfix
# of ../shared/peers on 127.0.0.1:10025 is measured when it runs: for the
# run, its transport table sends @relay.test to the sink and relay.test is
# added to its relay_domains; both are restored on exit.
#
# Each server takes SIZE-byte messages to x@relay.test from smtp-source
# (SESSIONS concurrent, a new connection per message, relaying allowed for
# 127.0.0.0/8 in both: Postfix's mynetworks, Postgate's relay_networks),
# queues them durably (Postfix: its queue files; Postgate: its store, fsync'd)
# and relays them over SMTP to one smtp-sink on 127.0.0.1:SINK_PORT. The
# clock stops when the sink has counted all MESSAGES.
here=$(cd "$(dirname "$0")" && pwd); . "$here/lib.sh"
MSGS=${1:-10000} SESS=${2:-10} SIZE=${3:-10240} ROUNDS=${4:-3}
SINK_PORT=${SINK_PORT:-10026}
TIMEOUT=${TIMEOUT:-300}
PF_DIR=${PF_DIR:-/srv/peers/postfix/etc}
SMTP_SINK=${SMTP_SINK:-$(command -v smtp-sink || echo /usr/sbin/smtp-sink)}
SMTP_SOURCE=${SMTP_SOURCE:-$(command -v smtp-source || echo /usr/sbin/smtp-source)}
[ -x "$SMTP_SINK" ] && [ -x "$SMTP_SOURCE" ] || { echo "smtp-sink/smtp-source not found (apt-get install postfix)" >&2; exit 2; }

pg_build
pg_start "relay_networks = [\"127.0.0.0/8\"]
[outbound]
threads = 16
tls = \"none\"
[outbound.routes]
\"relay.test\" = \"[127.0.0.1]:$SINK_PORT\""

work=$(mktemp -d /tmp/smtp-relay-bench.XXXXXX)
sink_pid=
have_postfix=0
cleanup() {
  [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null && wait "$sink_pid" 2>/dev/null
  if [ $have_postfix = 1 ] && [ -f "$work/transport.regexp" ]; then
    cp "$work/transport.regexp" "$PF_DIR/transport.regexp"
    postconf -c "$PF_DIR" -e "relay_domains = $(cat "$work/relay_domains")"
    postfix -c "$PF_DIR" reload >/dev/null 2>&1
  fi
  rm -rf "$work"
  pg_stop
}
trap cleanup EXIT

# The sink counts what it is given ("mesg=N" on its -c counter).
"$SMTP_SINK" -c -u nobody "127.0.0.1:$SINK_PORT" 512 > "$work/sink.out" 2>&1 &
sink_pid=$!
sleep 0.3
sunk() { tr '\r' '\n' < "$work/sink.out" | sed -n 's/.*mesg=\([0-9]*\).*/\1/p' | tail -1; }

if (exec 3<>/dev/tcp/127.0.0.1/10025) 2>/dev/null && [ -f "$PF_DIR/main.cf" ]; then
  have_postfix=1
  cp "$PF_DIR/transport.regexp" "$work/transport.regexp"
  postconf -c "$PF_DIR" -h relay_domains > "$work/relay_domains"
  printf '/@relay\\.test$/\tsmtp:[127.0.0.1]:%s\n' "$SINK_PORT" | cat - "$work/transport.regexp" > "$PF_DIR/transport.regexp"
  postconf -c "$PF_DIR" -e "relay_domains = $(cat "$work/relay_domains") relay.test"
  postfix -c "$PF_DIR" reload >/dev/null 2>&1
  sleep 1
fi

# run PORT: prints "secs msgs_per_s" from the first submission to the last arrival.
run() {
  local before target t0 t1 n
  before=$(sunk); before=${before:-0}
  target=$((before + MSGS))
  t0=$(date +%s.%N)
  timeout -k 5 "$TIMEOUT" "$SMTP_SOURCE" -s "$SESS" -m "$MSGS" -l "$SIZE" \
    -f bench@example.test -t x@relay.test -M bench.example.test -S relay "inet:127.0.0.1:$1" >/dev/null
  while :; do
    n=$(sunk); n=${n:-0}
    [ "$n" -ge "$target" ] && break
    if awk -v a="$(date +%s.%N)" -v b="$t0" -v t="$TIMEOUT" 'BEGIN{exit !(a-b>t)}'; then
      echo "timeout: $((n - before)) of $MSGS arrived" >&2; break
    fi
    sleep 0.05
  done
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" -v n="$((n - before))" 'BEGIN { d = b - a; printf "arrived=%d secs=%.2f msgs_per_s=%.1f\n", n, d, n / d }'
}

pg_note() { echo " queue_left=$("$PG_BIN" --config "$PG_CONF" queue list | grep -vc "queue is empty")"; }
side_by_side "$ROUNDS" msgs_per_s "$PG_SMTP_PORT" postfix 10025
