#!/usr/bin/env bash
# Relay throughput with DKIM signing beside without, in one run: messages/s
# from the first message submitted until the last one reached the next hop.
#
# Usage: bench/smtp_relay_dkim.sh [MESSAGES=3000] [SESSIONS=10] [SIZE=10240] [ROUNDS=3]
# Needs: smtp-source and smtp-sink (Debian's postfix), run as root
# (smtp-sink drops to "nobody").
#
# One Postgate relays SIZE-byte messages from smtp-source (SESSIONS
# concurrent, relaying allowed for 127.0.0.0/8) to one smtp-sink, as
# bench/smtp_relay.sh does. smtp-source writes its -f address into the From
# header, so the two runs of a round differ only in the sender's domain:
# signed.test has an RSA-2048 and an Ed25519 key (every message gets two
# DKIM-Signature fields, RFC 8463 §5), unsigned.test has none. The runs
# alternate, each after waiting for a quiet machine; the medians and their
# ratio (signed/unsigned; the goal is at least 0.8) are printed.
here=$(cd "$(dirname "$0")" && pwd); . "$here/lib.sh"
MSGS=${1:-3000} SESS=${2:-10} SIZE=${3:-10240} ROUNDS=${4:-3}
SINK_PORT=${SINK_PORT:-10027}
TIMEOUT=${TIMEOUT:-300}
SMTP_SINK=${SMTP_SINK:-$(command -v smtp-sink || echo /usr/sbin/smtp-sink)}
SMTP_SOURCE=${SMTP_SOURCE:-$(command -v smtp-source || echo /usr/sbin/smtp-source)}
[ -x "$SMTP_SINK" ] && [ -x "$SMTP_SOURCE" ] || { echo "smtp-sink/smtp-source not found (apt-get install postfix)" >&2; exit 2; }

[ "${NO_BUILD:-0}" = 1 ] || pg_build
pg_start "relay_networks = [\"127.0.0.0/8\"]
[outbound]
threads = 16
tls = \"none\"
dkim_refresh = \"1s\"
[outbound.routes]
\"relay.test\" = \"[127.0.0.1]:$SINK_PORT\""
# ALGORITHMS: the keys signed.test gets ("rsa ed25519" by default: dual
# signing; "ed25519" or "rsa" alone to see each one's cost).
for alg in ${ALGORITHMS:-rsa ed25519}; do
  "$PG_BIN" --config "$PG_CONF" dkim generate signed.test --algorithm "$alg" >/dev/null
done
echo "keys: $("$PG_BIN" --config "$PG_CONF" dkim list | grep -v '^ ' | cut -f1-3 | tr '\t\n' ' ;')"
sleep 2 # the agent's next key refresh

work=$(mktemp -d /tmp/smtp-relay-dkim.XXXXXX)
sink_pid=
cleanup() {
  [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null && wait "$sink_pid" 2>/dev/null
  rm -rf "$work"
  pg_stop
}
trap cleanup EXIT

# The sink counts what it is given ("mesg=N" on its -c counter).
"$SMTP_SINK" -c -u nobody "127.0.0.1:$SINK_PORT" 512 > "$work/sink.out" 2>&1 &
sink_pid=$!
sleep 0.3
sunk() { tr '\r' '\n' < "$work/sink.out" | sed -n 's/.*mesg=\([0-9]*\).*/\1/p' | tail -1; }

# run FROM: prints "arrived=N secs=S msgs_per_s=R" from the first
# submission to the last arrival.
run() {
  local before target t0 t1 n
  before=$(sunk); before=${before:-0}
  target=$((before + MSGS))
  t0=$(date +%s.%N)
  timeout -k 5 "$TIMEOUT" "$SMTP_SOURCE" -s "$SESS" -m "$MSGS" -l "$SIZE" \
    -f "$1" -t x@relay.test -M bench.example.test -S relay "inet:127.0.0.1:$PG_SMTP_PORT" >/dev/null
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

plain=() signed=()
for r in $(seq "$ROUNDS"); do
  "$LOADS/wait_quiet.sh" 60 >/dev/null 2>&1 || true
  line=$(run bench@unsigned.test); echo "round $r unsigned $line"
  plain+=("$(figure msgs_per_s "$line")")
  "$LOADS/wait_quiet.sh" 60 >/dev/null 2>&1 || true
  line=$(run bench@signed.test); echo "round $r signed   $line"
  signed+=("$(figure msgs_per_s "$line")")
done
p=$(printf '%s\n' "${plain[@]}" | median)
s=$(printf '%s\n' "${signed[@]}" | median)
errors=$(grep -c "dkim: sign" "$PG_DIR/stderr" "$PG_DIR/stdout" 2>/dev/null | awk -F: '{n+=$2} END {print n+0}')
echo "unsigned median_msgs_per_s=$p"
echo "signed   median_msgs_per_s=$s (signatures on each: ${ALGORITHMS:-rsa ed25519})"
echo "signing errors logged: $errors"
echo "ratio signed/unsigned = $(ratio "$s" "$p") (goal >= 0.80)"
