#!/usr/bin/env bash
# LDAP search throughput, Postgate beside OpenLDAP slapd (mdb), in one run.
#
# Usage: bench/ldap_search.sh [SECS=20] [WORKERS=4] [ROUNDS=3] [USERS=10000]
# Needs: /usr/bin/python3 with python3-ldap (Debian), and the peer slapd of
# ../shared/peers on 127.0.0.1:10389 (start.sh), which holds the same
# USERS=10000 entries (../shared/bench/gen_ldif.py); without it only
# Postgate is measured.
#
# Postgate gets the same directory: gen_ldif.py's LDIF imported with
# `postgate user import` (uid=userN, cn "User N", mail userN@example.test,
# under dc=example,dc=test). Both are searched anonymously by
# ../shared/bench/ldap_load.py (WORKERS processes, one connection each; a mix
# of (mail=userN@...), (uid=userN), (cn=User PPP*), (mail=*erN@*)),
# alternately, ROUNDS times. Prints each run, the medians and their ratio.
here=$(cd "$(dirname "$0")" && pwd); . "$here/lib.sh"
SECS=${1:-20} WORKERS=${2:-4} ROUNDS=${3:-3} USERS=${4:-10000}
PY=${PY:-/usr/bin/python3}
pg_build
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
run() { "$PY" "$LOADS/ldap_load.py" 127.0.0.1 "$1" --secs "$SECS" --workers "$WORKERS" --users "$USERS"; }
# Warm Postgate up (its first search builds the directory view).
"$PY" "$LOADS/ldap_load.py" 127.0.0.1 "$PG_LDAP_PORT" --secs 1 --workers 1 --users "$USERS" >/dev/null 2>&1 || true
side_by_side "$ROUNDS" searches_per_s "$PG_LDAP_PORT" slapd 10389
