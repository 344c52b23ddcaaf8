#!/usr/bin/env bash
# Inbound SMTP on the PostgreSQL store, with one node and with two nodes,
# beside the embedded store and Postfix, in one run.
#
# Usage: bench/smtp_inbound_pg.sh [MESSAGES=20000] [SESSIONS=10] [SIZE=10240] [ROUNDS=3]
# Needs: Debian's postgresql (a throwaway cluster is started with
# .ci/pg-cluster: synchronous_commit = on, fsync = on) and smtp-source
# (postfix); Postfix of ../shared/peers on 127.0.0.1:10025 if running.
# The load is bench/smtp_inbound.sh's: SIZE-byte messages, SESSIONS
# concurrent senders, a new connection per message, all into one mailbox.
# With two nodes the same load is split between them (half the messages
# and half the senders each, at once); their figure is all messages over
# the longer of the two runs. Each round runs every configuration once.
here=$(cd "$(dirname "$0")" && pwd); . "$here/lib.sh"
MSGS=${1:-20000} SESS=${2:-10} SIZE=${3:-10240} ROUNDS=${4:-3}
pg_build

PGC=$(mktemp -d /tmp/postgate-bench-pg.XXXXXX); chmod 755 "$PGC"
NODES=()
cleanup() {
  for pid in "${NODES[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  "$repo/.ci/pg-cluster" stop "$PGC/cluster"
  rm -rf "$PGC"
  pg_stop
}
URL=$("$repo/.ci/pg-cluster" start "$PGC/cluster") || { echo "cannot start PostgreSQL" >&2; exit 2; }
DB_URL="${URL%/*}/bench"
psql -q "$URL" -c "CREATE DATABASE bench" >/dev/null

# node NAME: starts a Postgate node on the bench database; sets NODE_PORT.
node() {
  local dir=$PGC/$1
  mkdir -p "$dir"
  cat > "$dir/postgate.toml" <<CONF
data_dir = "$dir/data"
hostname = "bench.example.test"
log = "warn"
[smtp]
listen = ["127.0.0.1:0"]
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
[snmp]
listen = []
[console]
listen = []
[limits]
per_ip_connections = 0
[store]
backend = "postgres"
url = "$DB_URL"
node = "$1"
pool_size = 32
CONF
  if [ "$1" = pg-a ]; then
    for cmd in "domain add example.test" "domain add discard.test" \
               "user add sink@example.test --name Sink" "user add x@discard.test --name Discard"; do
      # shellcheck disable=SC2086
      "$PG_BIN" --config "$dir/postgate.toml" $cmd >/dev/null
    done
  fi
  "$PG_BIN" --config "$dir/postgate.toml" serve > "$dir/stdout" 2> "$dir/stderr" &
  NODES+=($!)
  for _ in $(seq 100); do grep -q ready "$dir/stdout" 2>/dev/null && break; sleep 0.1; done
  NODE_PORT=$(sed -n 's/^postgate: smtp listening on 127.0.0.1:\([0-9]*\) (smtp.*/\1/p' "$dir/stdout" | head -1)
  [ -n "$NODE_PORT" ] || { echo "node $1 did not start:"; cat "$dir/stderr"; exit 2; } >&2
}

pg_start ""
trap cleanup EXIT
node pg-a; A_PORT=$NODE_PORT
node pg-b; B_PORT=$NODE_PORT

load() { RCPT=sink@example.test TIMEOUT=${TIMEOUT:-300} "$LOADS/smtp_load.sh" 127.0.0.1 "$@"; }
two() {
  local fa fb la lb
  fa=$(mktemp) fb=$(mktemp)
  load "$A_PORT" $((MSGS / 2)) $((SESS / 2)) "$SIZE" > "$fa" &
  load "$B_PORT" $((MSGS / 2)) $((SESS / 2)) "$SIZE" > "$fb" &
  wait %1 %2
  la=$(cat "$fa") lb=$(cat "$fb"); rm -f "$fa" "$fb"
  awk -v a="$(figure secs "$la")" -v b="$(figure secs "$lb")" -v n="$MSGS" 'BEGIN {
    s = (a > b) ? a : b; printf "two_nodes msgs=%d secs=%.2f msgs_per_s=%.1f\n", n, s, n / s }'
}

have_peer=0
(exec 3<>/dev/tcp/127.0.0.1/10025) 2>/dev/null && have_peer=1
declare -A rates
for r in $(seq "$ROUNDS"); do
  for cfg in ${CONFIGS:-embedded pg1 pg2 postfix}; do
    [ $cfg = postfix ] && [ $have_peer = 0 ] && continue
    "$LOADS/wait_quiet.sh" 60 >/dev/null || true
    case $cfg in
      embedded) line=$(load "$PG_SMTP_PORT" "$MSGS" "$SESS" "$SIZE") ;;
      pg1) line=$(load "$A_PORT" "$MSGS" "$SESS" "$SIZE") ;;
      pg2) line=$(two) ;;
      postfix) line=$(load 10025 "$MSGS" "$SESS" "$SIZE") ;;
    esac
    printf 'round %s %-8s %s\n' "$r" "$cfg" "$line"
    rates[$cfg]+="$(figure msgs_per_s "$line") "
  done
done
stored=$("$PG_BIN" --config "$PGC/pg-a/postgate.toml" item list sink@example.test | tail -n +2 | wc -l)
for cfg in embedded pg1 pg2 postfix; do
  [ -n "${rates[$cfg]:-}" ] || continue
  m=$(tr ' ' '\n' <<<"${rates[$cfg]}" | grep . | median)
  printf '%-8s median_msgs_per_s=%s\n' "$cfg" "$m"
  declare "med_$cfg=$m"
done
echo "stored on PostgreSQL: $stored (of $((MSGS * ROUNDS * 2)))"
if [ $have_peer = 1 ]; then
  echo "ratio pg1/postfix = $(ratio "${med_pg1:-0}" "$med_postfix")  pg2/postfix = $(ratio "${med_pg2:-0}" "$med_postfix")  embedded/postfix = $(ratio "${med_embedded:-0}" "$med_postfix")"
else
  echo "postfix: not running on 127.0.0.1:10025 (../shared/peers/start.sh); no comparison"
fi
