#!/usr/bin/env bash
# 10,000 concurrent IMAP IDLE sessions against Postgate: resident memory per
# connection, and how fast a delivery wakes them.
#
# Usage: [TLS=1] bench/imap_idle.sh [CONNS=10000] [USERS=100]
# TLS=1: every connection on the IMAPS port (implicit TLS, the server's
# rustls session state included in the figure).
here=$(cd "$(dirname "$0")" && pwd); . "$here/lib.sh"
CONNS=${1:-10000} USERS=${2:-100}
ulimit -n $((CONNS * 2 + 1024)) 2>/dev/null || ulimit -n 65536 2>/dev/null || true
pg_build
if [ "${TLS:-0}" = 1 ]; then imaps='["127.0.0.1:0"]'; else imaps='[]'; fi
pg_start "" "[imap]
listen = [\"127.0.0.1:0\"]
imaps = $imaps
allow_plaintext = true
threads = $((CONNS + 100))"
"$PG_BIN" --config "$PG_CONF" domain add example.test >/dev/null 2>&1 || true
for i in $(seq "$USERS"); do
  echo pass | "$PG_BIN" --config "$PG_CONF" user add "user$i@example.test" --name "User $i" --password-stdin >/dev/null
done
port=$PG_IMAP_PORT tls=
[ "${TLS:-0}" = 1 ] && port=$PG_IMAPS_PORT tls=--tls
python3 "$here/imap_idle.py" 127.0.0.1 "$port" "$PG_SMTP_PORT" "$PG_PID" --conns "$CONNS" --users "$USERS" $tls
