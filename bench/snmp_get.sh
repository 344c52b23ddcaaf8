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
pg_start "" "" "" "" "" '[snmp]
listen = ["127.0.0.1:0"]'
[ -n "$PG_SNMP_PORT" ] || { echo "the SNMP agent did not start" >&2; exit 2; }
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
