#!/usr/bin/env bash
# The cost of [smtp.checks]: inbound SMTP throughput with every check on
# beside every check off, in one run (goal: on/off >= 0.7).
#
# Usage: bench/smtp_checks.sh [MESSAGES=10000] [SESSIONS=10] [SIZE=10240] [ROUNDS=3]
# Needs: smtp-source (Debian's postfix).
#
# Two servers, alike but for [smtp.checks]; both resolve through one
# loopback DNS (bench/loadgen's bench-dns), which gives the client
# (127.0.0.1) forward-confirmed reverse DNS, lists it nowhere, and publishes
# SPF and DMARC for the sender's domain: every check runs and passes, so
# the figure is the checks' cost (lookups answered from the caches once
# warm), not Junk filing. With checks on: dnsbl and dnswl (one list each),
# ptr = "junk", helo = "junk", mailbomb too high to trigger, verify = true,
# spf = "junk", dmarc = "honour". The load, like bench/smtp_inbound.sh:
# smtp-source, SIZE-byte messages, SESSIONS concurrent senders, a new
# connection per message (HELO client.bench.test), to sink@example.test;
# alternately on each server ROUNDS times after a warm-up. Prints each run,
# one summary line per server and the ratio.
repo=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
PG_BIN=${PG_BIN:-$target/release/postgate}
here=$(cd "$(dirname "$0")" && pwd); . "$here/lib.sh"; . "$LOADS/common.sh"
MSGS=${1:-10000} SESS=${2:-10} SIZE=${3:-10240} ROUNDS=${4:-3}
SMTP_SOURCE=${SMTP_SOURCE:-$(command -v smtp-source || echo /usr/sbin/smtp-source)}
[ -x "$SMTP_SOURCE" ] || { echo "smtp-source not found (apt-get install postfix)" >&2; exit 2; }
pg_build
(cd "$repo" && cargo build --release -q -p postgate-loadgen) || exit 2

DNS_OUT=$(mktemp /tmp/postgate-bench-dns.XXXXXX)
"$target/release/bench-dns" > "$DNS_OUT" &
DNS_PID=$!
for _ in $(seq 50); do [ -s "$DNS_OUT" ] && break; sleep 0.1; done
DNS_PORT=$(head -1 "$DNS_OUT")
[ -n "$DNS_PORT" ] || { echo "bench-dns did not start" >&2; kill "$DNS_PID"; exit 2; }
DNS="[dns]
resolver = [\"127.0.0.1:$DNS_PORT\"]"
CHECKS='[smtp.checks]
dnsbl = ["bl.bench.test"]
dnswl = ["wl.bench.test"]
ptr = "junk"
helo = "junk"
mailbomb = { messages = 100000000, seconds = 60 }
verify = true
spf = "junk"
dmarc = "honour"'

# pg_stop (which pg_start installs as the EXIT trap, and which runs when a
# start fails) also stops the first server and the DNS.
OFF_PID= OFF_DIR=
eval "orig_$(declare -f pg_stop)"
pg_stop() {
  kill $OFF_PID $DNS_PID 2>/dev/null; wait $OFF_PID $DNS_PID 2>/dev/null
  rm -rf "$OFF_DIR" "$DNS_OUT"; orig_pg_stop
}
# Both servers run at once: every listener on a port of its own.
PORTS='submission = ["127.0.0.1:0"]
smtps = ["127.0.0.1:0"]'
pg_start "$PORTS
$DNS"
OFF_DIR=$PG_DIR OFF_PID=$PG_PID OFF_PORT=$PG_SMTP_PORT OFF_CONF=$PG_CONF
PG_PID= PG_DIR=
pg_start "$PORTS
$CHECKS
$DNS"
ON_PORT=$PG_SMTP_PORT ON_CONF=$PG_CONF

# run PORT COUNT: one smtp-source load; prints a summary line.
run() {
  local t0 t1 rc
  t0=$(bench_now)
  timeout -k 5 "${TIMEOUT:-300}" "$SMTP_SOURCE" -s "$SESS" -m "$2" -l "$SIZE" -f bench@example.test \
    -t sink@example.test -M client.bench.test -S bench "inet:127.0.0.1:$1" >/dev/null
  rc=$?
  t1=$(bench_now)
  awk -v n="$2" -v t0="$t0" -v t1="$t1" -v rc="$rc" 'BEGIN { d = t1 - t0
    printf "msgs=%d secs=%.2f msgs_per_s=%.1f rc=%d%s\n", n, d, (rc == 0 ? n / d : 0), rc,
      (rc == 0 ? "" : " (FAILED or timed out: no valid figure)") }'
}
# stored CONF FOLDER: messages in sink's FOLDER.
stored() { "$PG_BIN" --config "$1" item list sink@example.test --folder "$2" | tail -n +2 | wc -l; }

run "$OFF_PORT" 200 >/dev/null; run "$ON_PORT" 200 >/dev/null   # warm-up: caches, files
off=() on=()
for r in $(seq "$ROUNDS"); do
  "$LOADS/wait_quiet.sh" 60 >/dev/null || true
  line=$(run "$OFF_PORT" "$MSGS"); echo "round $r checks-off $line"; off+=("$(figure msgs_per_s "$line")")
  "$LOADS/wait_quiet.sh" 60 >/dev/null || true
  line=$(run "$ON_PORT" "$MSGS"); echo "round $r checks-on  $line"; on+=("$(figure msgs_per_s "$line")")
done
a=$(printf '%s\n' "${off[@]}" | median) b=$(printf '%s\n' "${on[@]}" | median)
echo "checks-off median_msgs_per_s=$a inbox=$(stored "$OFF_CONF" Inbox)"
echo "checks-on  median_msgs_per_s=$b inbox=$(stored "$ON_CONF" Inbox) junk=$(stored "$ON_CONF" Junk)"
echo "ratio on/off = $(ratio "$b" "$a") (goal >= 0.7)"
