#!/usr/bin/env bash
# Access control's cost: IMAP login throughput and SMTP inbound throughput
# with 20 classes of service and 200 group assignments in force, beside the
# same server without them, in one run (goal: within 5%).
#
# Usage: bench/access.sh [LOGINS=20000] [MESSAGES=5000] [SESSIONS=10] [ROUNDS=3]
#
# Two servers, alike but for the classes: 200 users (user1..user200, each in
# its own group g1..g200), sink@example.test in g1. On one of them 20
# classes (settings that allow the load: exception lists, size limits, POP3
# and LDAP rules) are assigned to the 200 groups. The load alternates
# between them ROUNDS times: bench/loadgen imap-login (a new connection and
# LOGIN per login, users cycling; a warm-up pass first, so argon2id runs once
# per user and the auth cache serves the rest, as on a live server), and
# bench/loadgen smtp (10 KB messages to sink@example.test, a new connection
# each). Prints each run, the medians and the ratios.
here=$(cd "$(dirname "$0")" && pwd); . "$here/lib.sh"
LOGINS=${1:-20000} MSGS=${2:-5000} SESS=${3:-10} ROUNDS=${4:-3}
pg_build
(cd "$repo" && cargo build --release -q -p postgate-loadgen) || exit 2
LOADGEN=$repo/target/release/postgate-loadgen
NOSUB='submission = []
smtps = []'
IMAP='[imap]
listen = ["127.0.0.1:0"]
imaps = []
allow_plaintext = true'

setup() { # CONF
  local conf=$1
  for i in $(seq 200); do
    echo "user$i@example.test:User $i"
  done | while IFS=: read -r a n; do "$PG_BIN" --config "$conf" user add "$a" --name "$n" >/dev/null; done
  for i in $(seq 200); do echo bench | "$PG_BIN" --config "$conf" user passwd "user$i@example.test" >/dev/null; done
  for i in $(seq 200); do
    "$PG_BIN" --config "$conf" group add "g$i@example.test" >/dev/null
    "$PG_BIN" --config "$conf" group member add "g$i@example.test" "user$i@example.test" >/dev/null
  done
  "$PG_BIN" --config "$conf" group member add g1@example.test sink@example.test >/dev/null
}

classes() { # CONF
  local conf=$1
  for c in $(seq 20); do
    "$PG_BIN" --config "$conf" class add "c$c" >/dev/null
    "$PG_BIN" --config "$conf" class set "c$c" smtp.receive.except "spam$c.test,*.bad$c.test,198.51.$c.0/24" >/dev/null
    "$PG_BIN" --config "$conf" class set "c$c" smtp.receive.max_size $((50 * 1024 * 1024)) >/dev/null
    "$PG_BIN" --config "$conf" class set "c$c" smtp.send.except "partner$c.test" >/dev/null
    "$PG_BIN" --config "$conf" class set "c$c" pop3.max_days 30 >/dev/null
    "$PG_BIN" --config "$conf" class set "c$c" ldap.attributes cn,mail,sn >/dev/null
  done
  for i in $(seq 200); do
    "$PG_BIN" --config "$conf" class assign "c$(( (i - 1) % 20 + 1 ))" --group "g$i@example.test" >/dev/null
  done
}

pg_start "$NOSUB" "$IMAP"
A_DIR=$PG_DIR A_PID=$PG_PID A_CONF=$PG_CONF A_SMTP=$PG_SMTP_PORT A_IMAP=$PG_IMAP_PORT
PG_PID= PG_DIR=
pg_start "$NOSUB" "$IMAP"
# pg_start stops only the server it started last: stop the first one too.
trap 'kill $A_PID 2>/dev/null; wait $A_PID 2>/dev/null; rm -rf "$A_DIR"; pg_stop' EXIT
B_SMTP=$PG_SMTP_PORT B_IMAP=$PG_IMAP_PORT B_CONF=$PG_CONF
setup "$A_CONF"; setup "$B_CONF"; classes "$B_CONF"
echo "with classes: $("$PG_BIN" --config "$B_CONF" class list | wc -l) classes, $("$PG_BIN" --config "$B_CONF" class list --json | grep -c '"kind": "group"') group assignments"
"$PG_BIN" --config "$B_CONF" access explain user7@example.test | head -1
python3 "$here/calendar_tool.py" templates "$PG_DIR" 10240 >/dev/null
for port in "$A_IMAP" "$B_IMAP"; do "$LOADGEN" imap-login "$port" 200 4 200 bench >/dev/null; done

lw=() lo=() sw=() so=()
for r in $(seq "$ROUNDS"); do
  for kind in without with; do
    if [ $kind = without ]; then imap=$A_IMAP smtp=$A_SMTP; else imap=$B_IMAP smtp=$B_SMTP; fi
    "$LOADS/wait_quiet.sh" 60 >/dev/null || true
    l=$("$LOADGEN" imap-login "$imap" "$LOGINS" "$SESS" 200 bench 300)
    echo "round $r $kind $l"
    s=$("$LOADGEN" smtp "$smtp" "$MSGS" "$SESS" "$PG_DIR/plain.eml" sink@example.test 300 $(( (r - 1) * MSGS )))
    echo "round $r $kind $s"
    if [ $kind = without ]; then lo+=("$(figure logins_per_s "$l")") so+=("$(figure msgs_per_s "$s")")
    else lw+=("$(figure logins_per_s "$l")") sw+=("$(figure msgs_per_s "$s")"); fi
  done
done
a=$(printf '%s\n' "${lo[@]}" | median) b=$(printf '%s\n' "${lw[@]}" | median)
echo "imap logins/s: without=$a with=$b ratio=$(ratio "$b" "$a")"
a=$(printf '%s\n' "${so[@]}" | median) b=$(printf '%s\n' "${sw[@]}" | median)
echo "smtp msgs/s:   without=$a with=$b ratio=$(ratio "$b" "$a")"
