#!/usr/bin/env bash
# SNMP GET latency and walk, Postgate beside net-snmp's snmpd, in one run.
#
# Usage: bench/snmp_get.sh [COUNT=20000] [ROUNDS=3]
# The load is ../shared/bench/snmp_load.py (hand-encoded BER over UDP, one
# request outstanding): COUNT GETs of sysDescr.0, then a GETNEXT walk of
# mib-2, against Postgate's agent and against the peer snmpd of
# ../shared/peers (udp/10161; without it only Postgate is measured),
# alternately ROUNDS times. Prints each run, the medians and the ratio.
here=$(cd "$(dirname "$0")" && pwd); . "$here/lib.sh"
COUNT=${1:-20000} ROUNDS=${2:-3}
pg_build
# lib.sh's pg_start writes [snmp] listen = []: this script writes its own
# configuration, with only the agent listening.
PG_SNMP='[snmp]
listen = ["127.0.0.1:0"]'
pg_start_snmp() {
  PG_DIR=$(mktemp -d /tmp/postgate-bench.XXXXXX)
  PG_CONF=$PG_DIR/postgate.toml
  cat > "$PG_CONF" <<CONF
data_dir = "$PG_DIR/data"
hostname = "bench.example.test"
log = "warn"
[smtp]
listen = []
submission = []
smtps = []
[imap]
listen = []
imaps = []
[pop3]
listen = []
pop3s = []
[ldap]
listen = []
ldaps = []
[console]
listen = []
$PG_SNMP
CONF
  "$PG_BIN" --config "$PG_CONF" serve > "$PG_DIR/stdout" 2> "$PG_DIR/stderr" &
  PG_PID=$!
  trap pg_stop EXIT
  for _ in $(seq 100); do
    grep -q ready "$PG_DIR/stdout" 2>/dev/null && break
    sleep 0.1
  done
  PG_SNMP_PORT=$(sed -n 's/^postgate: snmp listening on 127.0.0.1:\([0-9]*\) .*/\1/p' "$PG_DIR/stdout" | head -1)
  [ -n "$PG_SNMP_PORT" ] || { echo "postgate did not start:"; cat "$PG_DIR/stderr"; exit 2; } >&2
}
pg_start_snmp
peer=0
MIBS='' timeout 3 snmpget -Oqv -v2c -c public -t 1 -r 0 127.0.0.1:10161 1.3.6.1.2.1.1.3.0 >/dev/null 2>&1 && peer=1
[ $peer = 1 ] || echo "peer snmpd not answering on udp/10161 (../shared/peers/start.sh): Postgate only"
ours=() theirs=()
for r in $(seq "$ROUNDS"); do
  line=$(python3 "$LOADS/snmp_load.py" 127.0.0.1 "$PG_SNMP_PORT" --count "$COUNT" --secs 60)
  echo "round $r postgate $line"; ours+=("$(figure get_per_s "$line")")
  if [ $peer = 1 ]; then
    line=$(python3 "$LOADS/snmp_load.py" 127.0.0.1 10161 --count "$COUNT" --secs 60)
    echo "round $r snmpd    $line"; theirs+=("$(figure get_per_s "$line")")
  fi
done
a=$(printf '%s\n' "${ours[@]}" | median)
echo "postgate median_get_per_s=$a"
if [ $peer = 1 ]; then
  b=$(printf '%s\n' "${theirs[@]}" | median)
  echo "snmpd    median_get_per_s=$b"
  echo "ratio postgate/snmpd = $(ratio "$a" "$b")"
fi
