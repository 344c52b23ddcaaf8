#!/usr/bin/env bash
# LDAP search throughput, Postgate beside OpenLDAP slapd (mdb), in one run.
#
# Usage: bench/ldap_search.sh [SECS=20] [WORKERS=4] [ROUNDS=3] [USERS=10000]
# Env:   LOADGEN=rust (default): the load is bench-ldap (bench/loadgen), WORKERS
#        connections on THREADS=1 thread, which prints its own CPU use
#        (loadgen_cpu_pct, percent of one core) so a reader can see whether
#        the generator or the server was saturated; LOADGEN=python: the
#        shared ldap_load.py, WORKERS processes.
# Needs: /usr/bin/python3 with python3-ldap (Debian) for LOADGEN=python, and the peer slapd of
# ../shared/peers on 127.0.0.1:10389 (start.sh), which holds the same
# USERS=10000 entries (../shared/bench/gen_ldif.py); without it only
# Postgate is measured.
#
# Postgate gets the same directory: gen_ldif.py's LDIF imported with
# `postgate user import` (uid=userN, cn "User N", mail userN@example.test,
# under dc=example,dc=test). Both are searched anonymously by
# the load generator (WORKERS connections; a mix of (mail=userN@...),
# (uid=userN), (cn=User PPP*), (mail=*erN@*)), alternately, ROUNDS times.
# Prints each run, the medians and their ratio.
here=$(cd "$(dirname "$0")" && pwd); . "$here/lib.sh"
SECS=${1:-20} WORKERS=${2:-4} ROUNDS=${3:-3} USERS=${4:-10000}
PY=${PY:-/usr/bin/python3} LOADGEN=${LOADGEN:-rust} THREADS=${THREADS:-1}
if [ "$LOADGEN" = rust ]; then pg_build_bench; else pg_build; fi
pg_start "" "" "" "[ldap]
listen = [\"127.0.0.1:0\"]
ldaps = []
max_entries = 1000"
ldif=$PG_DIR/users.ldif
python3 "$LOADS/gen_ldif.py" "$ldif" "$USERS" >/dev/null
"$PG_BIN" --config "$PG_CONF" user import "$ldif" >/dev/null || { echo "import failed" >&2; exit 2; }
# Let the server see the import (it checks the directory a few times a second).
sleep 1
PG_LDAP_PORT=$(sed -n 's/^postgate: ldap listening on 127.0.0.1:\([0-9]*\) (ldap,.*/\1/p' "$PG_DIR/stdout" | head -1)
[ -n "$PG_LDAP_PORT" ] || { echo "no LDAP listener" >&2; exit 2; }
run() {
  if [ "$LOADGEN" = rust ]; then
    "$BENCH_BIN/bench-ldap" 127.0.0.1 "$1" --secs "$SECS" --conns "$WORKERS" --threads "$THREADS" --users "$USERS"
  else
    "$PY" "$LOADS/ldap_load.py" 127.0.0.1 "$1" --secs "$SECS" --workers "$WORKERS" --users "$USERS"
  fi
}
# Warm Postgate up (its first search builds the directory view).
SECS=1 WORKERS=1 run "$PG_LDAP_PORT" >/dev/null 2>&1 || true
side_by_side "$ROUNDS" searches_per_s "$PG_LDAP_PORT" slapd 10389
