#!/usr/bin/env bash
# imaptest stress, Postgate beside Dovecot, in one run.
#
# Usage: bench/imap_stress.sh [SECS=60] [CLIENTS=50] [USERS=100]
# Env:   IMAPTEST=/path/to/imaptest (required; Dovecot's tester, built separately)
#        ROUNDS=1
#        STORE=postgres   Postgate's store on a throwaway PostgreSQL cluster
#        TLS=1            the load over implicit TLS (Postgate's IMAPS port,
#                         imaptest's ssl=any-cert); the peer Dovecot has no TLS
#                         port, so only Postgate is measured (for a before/after
#                         with PG_BIN=an older build)
# Postgate gets users user1..userUSERS@example.test (password "pass") and runs
# with cleartext login allowed, as the peer Dovecot does; both get imaptest's
# default command mix with state tracking, messages APPENDed from a 1,000-message
# mbox (../shared/bench/gen_mbox.py). Dovecot is the peer of ../shared/peers
# (127.0.0.1:10143, users user1..user100). Prints each run's summary line, the
# error and assertion counts imaptest reported, and the ratio.
here=$(cd "$(dirname "$0")" && pwd); . "$here/lib.sh"
SECS=${1:-60} CLIENTS=${2:-50} USERS=${3:-100} ROUNDS=${ROUNDS:-1} TLS=${TLS:-0}
imaps="imaps = []"
[ "$TLS" = 1 ] && imaps='imaps = ["127.0.0.1:0"]'
: "${IMAPTEST:?set IMAPTEST to the imaptest binary}"
pg_build
pg_cluster
pg_start "" "[imap]
listen = [\"127.0.0.1:0\"]
$imaps
allow_plaintext = true"
"$PG_BIN" --config "$PG_CONF" domain add example.test >/dev/null 2>&1 || true
for i in $(seq "$USERS"); do
  echo pass | "$PG_BIN" --config "$PG_CONF" user add "user$i@example.test" --name "User $i" --password-stdin >/dev/null
done
# run PORT: one imaptest run; the summary line, then its most common errors.
run() {
  local fmt="user%d" err errors asserts line
  local extra=${EXTRA:-}
  [ "$1" = "$PG_IMAP_PORT" ] && fmt="user%d@example.test"
  [ "$TLS" = 1 ] && [ "$1" = "$PG_IMAPS_PORT" ] && fmt="user%d@example.test" extra="ssl=any-cert $extra"
  err=$(mktemp)
  line=$(EXTRA=$extra USER_FMT=$fmt IMAPTEST=$IMAPTEST "$LOADS/imap_load.sh" 127.0.0.1 "$1" "$SECS" "$CLIENTS" "$USERS" 2>"$err")
  errors=$(grep -c "^Error:" "$err")
  asserts=$(grep -ci "assert" "$err")
  echo "$line errors=$errors assertion_lines=$asserts"
  grep "^Error:" "$err" | cut -c1-200 | sort | uniq -c | sort -rn | head -5 | sed "s/^/  /"
  rm -f "$err"
}
if [ "$TLS" = 1 ]; then
  side_by_side "$ROUNDS" cmds_per_s "$PG_IMAPS_PORT" dovecot-tls 0
else
  side_by_side "$ROUNDS" cmds_per_s "$PG_IMAP_PORT" dovecot 10143
fi
