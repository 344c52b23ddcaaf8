#!/usr/bin/env bash
# A search over a large directory: results stream in bounded memory.
#
# Usage: bench/ldap_large.sh [USERS=100000]
# Imports USERS people (../shared/bench/gen_ldif.py), then with ldapsearch:
# one search returning every entry (max_entries raised for it) and one paged
# through in pages of 1000, while sampling the server's resident memory.
# Prints the view's build time, the RSS before and the peak RSS during each
# search, and the entries and seconds.
here=$(cd "$(dirname "$0")" && pwd); . "$here/lib.sh"
USERS=${1:-100000}
command -v ldapsearch >/dev/null || { echo "ldapsearch not found (apt-get install ldap-utils)" >&2; exit 2; }
pg_build
pg_start "" "" "" "[ldap]
listen = [\"127.0.0.1:0\"]
ldaps = []
max_entries = 1000000"
ldif=$PG_DIR/users.ldif
python3 "$LOADS/gen_ldif.py" "$ldif" "$USERS" >/dev/null
t0=$(date +%s.%N)
"$PG_BIN" --config "$PG_CONF" user import "$ldif" >/dev/null || { echo "import failed" >&2; exit 2; }
t1=$(date +%s.%N)
sleep 1
PORT=$(sed -n 's/^postgate: ldap listening on 127.0.0.1:\([0-9]*\) (ldap,.*/\1/p' "$PG_DIR/stdout" | head -1)
rss() { awk '/VmRSS/ {print $2}' "/proc/$PG_PID/status"; }
# The first search builds the directory view.
b0=$(date +%s.%N)
ldapsearch -x -H "ldap://127.0.0.1:$PORT" -b dc=example,dc=test -s base '(objectClass=*)' 1.1 >/dev/null
b1=$(date +%s.%N)
measure() { # label, ldapsearch args...
  local label=$1; shift
  local before peak=0 r s0 s1 n
  before=$(rss)
  s0=$(date +%s.%N)
  ldapsearch -x -H "ldap://127.0.0.1:$PORT" -b dc=example,dc=test "$@" > "$PG_DIR/out.ldif" &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    r=$(rss); [ "$r" -gt "$peak" ] && peak=$r
    sleep 0.05
  done
  wait "$pid"
  s1=$(date +%s.%N)
  n=$(grep -c '^dn: uid=' "$PG_DIR/out.ldif")
  awk -v l="$label" -v n="$n" -v a="$before" -v p="$peak" -v t0="$s0" -v t1="$s1" 'BEGIN {
    printf "%s entries=%d secs=%.2f rss_before_kb=%d rss_peak_kb=%d growth_kb=%d\n", l, n, t1 - t0, a, p, p - a }'
}
awk -v u="$USERS" -v i0="$t0" -v i1="$t1" -v b0="$b0" -v b1="$b1" -v r="$(rss)" 'BEGIN {
  printf "users=%d import_secs=%.1f view_build_secs=%.2f rss_after_view_kb=%d\n", u, i1 - i0, b1 - b0, r }'
measure "full_search" '(objectClass=inetOrgPerson)' cn mail
measure "paged_1000" -E pr=1000/noprompt '(objectClass=inetOrgPerson)' cn mail
measure "substring_all" '(mail=*@example.test)' cn mail
