#!/usr/bin/env bash
# Memory after logins: the server's RSS idle, right after LOGINS IMAP logins
# (CONCURRENT at a time, each one an argon2id verification), and 10 s later.
# A login must not leave memory behind: argon2's ~19 MiB per verification
# is returned once it is done (crates/domain/store/src/password.rs).
#
# Usage: bench/login_memory.sh [LOGINS=40] [CONCURRENT=8]
# Needs: python3. Prints one summary line (kB).
here=$(cd "$(dirname "$0")" && pwd); . "$here/lib.sh"
LOGINS=${1:-40} CONCURRENT=${2:-8}
pg_build
pg_start "" "[imap]
listen = [\"127.0.0.1:0\"]
imaps = []
allow_plaintext = true"
echo secret | "$PG_BIN" --config "$PG_CONF" user add login@example.test --name Login --password-stdin >/dev/null
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$PG_PID/status"; }
sleep 2
idle=$(rss)
python3 - "$PG_IMAP_PORT" "$LOGINS" "$CONCURRENT" <<'PY' || exit 1
import imaplib, sys
from concurrent.futures import ThreadPoolExecutor
port, n, k = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def login(_):
    m = imaplib.IMAP4("127.0.0.1", port)
    m.login("login@example.test", "secret")
    m.logout()
with ThreadPoolExecutor(k) as ex:
    list(ex.map(login, range(n)))
PY
after=$(rss)
sleep 10
later=$(rss)
echo "login_memory logins=$LOGINS concurrent=$CONCURRENT rss_idle_kb=$idle rss_after_kb=$after rss_10s_later_kb=$later"
