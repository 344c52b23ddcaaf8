#!/usr/bin/env bash
# The web console's status page on a big server: issue 13 wants it under
# 50 ms with 100,000 users and 100,000 queue entries.
#
# Usage: bench/console_status.sh [USERS=100000] [ENTRIES=100000] [REQUESTS=200] [SESSIONS=20]
#
# A fresh data directory gets USERS users (an LDIF from
# ../shared/bench/gen_ldif.py through `postgate user import`, without
# passwords, so no argon2 per user) and ENTRIES queue entries: real ones,
# relayed over SMTP by bench/loadgen from a relay network to a remote
# recipient while the outbound relay points at a closed loopback port, so
# each is tried once, refused, and stays deferred for a day. Once the server
# is quiet, an administrator signs in through the login form and
# GET /console/ is timed REQUESTS times over one keep-alive connection (after
# a few warm-up requests). Prints one summary line:
#   console status: median X ms, p95 Y ms over N requests (U users, E queue entries)
# Everything started here (the server, its data directory) is stopped and
# removed on exit (KEEP=1 keeps the directory).
here=$(cd "$(dirname "$0")" && pwd); . "$here/lib.sh"
USERS=${1:-100000} ENTRIES=${2:-100000} REQUESTS=${3:-200} SESS=${4:-20}
target=${CARGO_TARGET_DIR:-$repo/target}
PG_BIN=$target/release/postgate
(cd "$repo" && cargo build --release -q -p postgate -p postgate-loadgen) || { echo "cargo build --release failed" >&2; exit 2; }
LOADGEN=$target/release/postgate-loadgen
[ -f "$LOADS/gen_ldif.py" ] || { echo "$LOADS/gen_ldif.py not found (../shared/bench)" >&2; exit 2; }

# A loopback port nobody listens on: the outbound relay, refused at once.
closed=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
pg_start "relay_networks = [\"127.0.0.0/8\"]
submission = []
smtps = []
[outbound]
relay = \"127.0.0.1:$closed\"
retry_intervals = [\"1d\"]" "" "" "" "[console]
listen = [\"127.0.0.1:0\"]"
[ -n "$PG_CONSOLE_PORT" ] || { echo "no console listener" >&2; exit 2; }
pg() { "$PG_BIN" --config "$PG_CONF" "$@"; }

# The users.
python3 "$LOADS/gen_ldif.py" "$PG_DIR/users.ldif" "$USERS" >/dev/null
t0=$(date +%s.%N)
pg user import "$PG_DIR/users.ldif" >/dev/null || { echo "user import failed" >&2; exit 2; }
t1=$(date +%s.%N)
echo "bench-admin-pw" | pg user add admin@example.test --name "Bench Admin" --password-stdin >/dev/null
pg admin grant admin@example.test >/dev/null || { echo "postgate admin grant failed" >&2; exit 2; }

# The queue: ENTRIES relayed messages, each to be tried once and deferred.
printf 'From: bench@remote.test\nTo: far@elsewhere.test\nSubject: queued {N}\nMessage-ID: <q{N}@remote.test>\n\nqueued for the console bench, number {N}\n' > "$PG_DIR/msg.txt"
fill=$("$LOADGEN" smtp "$PG_SMTP_PORT" "$ENTRIES" "$SESS" "$PG_DIR/msg.txt" far@elsewhere.test 1200)
echo "fill: users=$USERS import_secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') queue: $fill"
[ "$(figure ok "$fill")" = "$ENTRIES" ] || { echo "not every message was queued: $fill" >&2; tail -5 "$PG_DIR/stderr" >&2; exit 2; }

# Wait until the outbound agent has tried every entry once (the server's CPU
# time stops growing), so that only the page is measured.
cpu() { awk '{print $14 + $15}' "/proc/$PG_PID/stat"; }
hz=$(getconf CLK_TCK)
for _ in $(seq 300); do
  a=$(cpu); sleep 1; b=$(cpu)
  [ $((b - a)) -le $((hz / 20)) ] && break
done

python3 - "$PG_CONSOLE_PORT" "$REQUESTS" "$USERS" "$ENTRIES" <<'PY'
import http.client, re, ssl, statistics, sys, time, urllib.parse
port, n, users, entries = (int(a) for a in sys.argv[1:5])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
h = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=60)
def get(path, cookie):
    h.request("GET", path, headers={"Cookie": cookie})
    r = h.getresponse(); return r, r.read().decode("utf-8", "replace")
def cookies(r):
    return "; ".join(v.split(";")[0] for k, v in r.getheaders() if k.lower() == "set-cookie")
r, body = get("/console/login", "")
pre = cookies(r)
m = re.search(r'name="csrf"[^>]*value="([^"]*)"|value="([^"]*)"[^>]*name="csrf"', body)
if r.status != 200 or not m:
    sys.exit(f"login page: {r.status}, csrf field found: {bool(m)}")
form = urllib.parse.urlencode({"login": "admin@example.test", "password": "bench-admin-pw", "csrf": m.group(1) or m.group(2)})
h.request("POST", "/console/login", body=form,
          headers={"Cookie": pre, "Content-Type": "application/x-www-form-urlencoded"})
r = h.getresponse(); r.read()
session = cookies(r)
if r.status != 303 or "pg_session=" not in session:
    sys.exit(f"sign-in answered {r.status}")
for _ in range(5):
    get("/console/", session)
times = []
for _ in range(n):
    t = time.perf_counter()
    r, body = get("/console/", session)
    times.append((time.perf_counter() - t) * 1000)
    if r.status != 200 or 'id="status"' not in body:
        sys.exit(f"GET /console/ answered {r.status}")
# The page really saw the queue: its depth, however it is written.
digits = re.sub(r"[,\u202f\u00a0 ]", "", re.sub(r"<[^>]*>", " ", body))
if str(entries) not in digits:
    print(f"warning: the status page does not show a queue depth of {entries}", file=sys.stderr)
times.sort()
p95 = times[min(len(times) - 1, int(round(0.95 * len(times))) - 1)]
print(f"console status: median {statistics.median(times):.1f} ms, p95 {p95:.1f} ms over {n} requests "
      f"({users} users, {entries} queue entries)")
PY
