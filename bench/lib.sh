# Shared helpers for Postgate's benchmarks (sourced).
# Postgate is started here, on loopback, in a temporary data directory, and
# stopped by its PID when the script exits.
set -u
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHARED=${SHARED:-$repo/../shared}
LOADS=$SHARED/bench
# A binary given in PG_BIN (an older build, for a before/after comparison) is
# run as it is; without it the workspace's release build is brought up to date.
PG_BIN_GIVEN=${PG_BIN:+1}
PG_BIN=${PG_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/postgate}
# The bench bins of bench/loadgen (bench-chaos, bench-disk, …): always the
# workspace's own.
BENCH_BIN=${BENCH_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release}

pg_build() {
  [ -n "$PG_BIN_GIVEN" ] && return 0
  (cd "$repo" && cargo build --release -q) || { echo "cargo build --release failed" >&2; exit 2; }
}

# pg_start SMTP_EXTRA [IMAP_SECTION] [POP3_SECTION] [LDAP_SECTION] [CONSOLE_SECTION] [SNMP_SECTION]:
# starts postgate serve; sets PG_DIR, PG_PID, PG_CONF, PG_SMTP_PORT, PG_IMAP_PORT, PG_POP3_PORT,
# PG_CONSOLE_PORT, PG_SNMP_PORT; waits for "ready".
pg_start() {
  PG_DIR=$(mktemp -d /tmp/postgate-bench.XXXXXX)
  PG_CONF=$PG_DIR/postgate.toml
  local store_section=""
  [ -n "${PG_STORE_URL:-}" ] && store_section=$(printf '[store]\nbackend = "postgres"\nurl = "%s"\nnode = "bench"\n' "$PG_STORE_URL")
  cat > "$PG_CONF" <<CONF
data_dir = "$PG_DIR/data"
hostname = "bench.example.test"
log = "warn"
[smtp]
listen = ["127.0.0.1:0"]
$1
${2:-[imap]
listen = []
imaps = []}
${3:-[pop3]
listen = []
pop3s = []}
${4:-[ldap]
listen = []
ldaps = []}
${6:-[snmp]
listen = []}
${5:-[console]
listen = []}
# Every load here comes from one address (loopback): no per-address cap.
[limits]
per_ip_connections = 0
$store_section
CONF
  "$PG_BIN" --config "$PG_CONF" domain add example.test >/dev/null
  "$PG_BIN" --config "$PG_CONF" domain add discard.test >/dev/null
  "$PG_BIN" --config "$PG_CONF" user add sink@example.test --name "Sink" >/dev/null
  "$PG_BIN" --config "$PG_CONF" user add x@discard.test --name "Discard" >/dev/null
  # PG_NO_SERVE=1: configured and filled, not started (see pg_serve).
  [ "${PG_NO_SERVE:-0}" = 1 ] && { trap pg_stop EXIT; return 0; }
  "$PG_BIN" --config "$PG_CONF" serve > "$PG_DIR/stdout" 2> "$PG_DIR/stderr" &
  PG_PID=$!
  trap pg_stop EXIT
  for _ in $(seq 100); do
    grep -q ready "$PG_DIR/stdout" 2>/dev/null && break
    sleep 0.1
  done
  PG_SMTP_PORT=$(sed -n 's/^postgate: smtp listening on 127.0.0.1:\([0-9]*\) (smtp.*/\1/p' "$PG_DIR/stdout" | head -1)
  PG_IMAP_PORT=$(sed -n 's/^postgate: imap listening on 127.0.0.1:\([0-9]*\) (imap,.*/\1/p' "$PG_DIR/stdout" | head -1)
  PG_IMAPS_PORT=$(sed -n 's/^postgate: imap listening on 127.0.0.1:\([0-9]*\) (imaps.*/\1/p' "$PG_DIR/stdout" | head -1)
  PG_POP3_PORT=$(sed -n 's/^postgate: pop3 listening on 127.0.0.1:\([0-9]*\) (pop3,.*/\1/p' "$PG_DIR/stdout" | head -1)
  PG_CONSOLE_PORT=$(sed -n 's/^postgate: console listening on 127.0.0.1:\([0-9]*\) .*/\1/p' "$PG_DIR/stdout" | head -1)
  PG_SNMP_PORT=$(sed -n 's/^postgate: snmp listening on 127.0.0.1:\([0-9]*\) .*/\1/p' "$PG_DIR/stdout" | head -1)
  [ -n "$PG_SMTP_PORT" ] || { echo "postgate did not start:"; cat "$PG_DIR/stderr"; exit 2; } >&2
}

# pg_cluster: with STORE=postgres, starts a throwaway PostgreSQL cluster
# (.ci/pg-cluster; synchronous_commit = on) with an empty database and sets
# PG_STORE_URL, so that pg_start's Postgate keeps its store there. Call
# before pg_start; pg_stop stops the cluster.
pg_cluster() {
  [ "${STORE:-embedded}" = postgres ] || return 0
  PG_CLUSTER=$(mktemp -d /tmp/postgate-bench-pg.XXXXXX); chmod 755 "$PG_CLUSTER"
  local url
  url=$("$repo/.ci/pg-cluster" start "$PG_CLUSTER/c") || { echo "cannot start PostgreSQL" >&2; exit 2; }
  psql -q "$url" -c "CREATE DATABASE bench" >/dev/null
  PG_STORE_URL="${url%/*}/bench"
}

pg_stop() {
  if [ -n "${PG_PID:-}" ]; then
    kill "$PG_PID" 2>/dev/null
    wait "$PG_PID" 2>/dev/null
    PG_PID=
  fi
  [ -n "${PG_DIR:-}" ] && [ "${KEEP:-0}" != 1 ] && rm -rf "$PG_DIR"
  if [ -n "${PG_CLUSTER:-}" ]; then
    "$repo/.ci/pg-cluster" stop "$PG_CLUSTER/c"
    rm -rf "$PG_CLUSTER"
    PG_CLUSTER=
  fi
}

# figure KEY LINE: the value of key=value in a summary line
figure() { sed -n "s/.*[ ^]$1=\([0-9.]*\).*/\1/p" <<<"$2"; }

# median: the median of the numbers on standard input, one a line.
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

# side_by_side ROUNDS KEY PG_PORT PEER PEER_PORT: calls the script's
# `run PORT` on Postgate and, when something listens on PEER_PORT, on the
# peer, alternately, ROUNDS times, each after waiting for a quiet machine;
# prints every run, both medians of the KEY figure and their ratio. A
# `pg_note` function, when the script defines one, adds to Postgate's line.
side_by_side() {
  local rounds=$1 key=$2 pg_port=$3 peer=$4 peer_port=$5 r line pg pe have=0
  local pg_rates=() peer_rates=()
  (exec 3<>"/dev/tcp/127.0.0.1/$peer_port") 2>/dev/null && have=1
  for r in $(seq "$rounds"); do
    "$LOADS/wait_quiet.sh" 60 >/dev/null || true
    line=$(run "$pg_port"); echo "round $r postgate $line"
    pg_rates+=("$(figure "$key" "$line")")
    if [ $have = 1 ]; then
      "$LOADS/wait_quiet.sh" 60 >/dev/null || true
      line=$(run "$peer_port"); printf 'round %s %-8s %s\n' "$r" "$peer" "$line"
      peer_rates+=("$(figure "$key" "$line")")
    fi
  done
  pg=$(printf '%s\n' "${pg_rates[@]}" | median)
  echo "postgate median_$key=$pg$(declare -F pg_note >/dev/null && pg_note)"
  if [ $have = 1 ]; then
    pe=$(printf '%s\n' "${peer_rates[@]}" | median)
    printf '%-8s median_%s=%s\n' "$peer" "$key" "$pe"
    echo "ratio postgate/$peer = $(ratio "$pg" "$pe")"
  else
    echo "$peer: not running on 127.0.0.1:$peer_port (../shared/peers/start.sh); no comparison"
  fi
}

# pg_build_bench: builds postgate and the bench bins (release), gently.
pg_build_bench() {
  (cd "$repo" && nice -n 19 cargo build --release -q -p postgate -p postgate-loadgen) ||
    { echo "cargo build --release failed" >&2; exit 2; }
}

# pg_serve: starts `postgate serve` again on PG_CONF (after a kill or a
# stop), waits for "ready", sets PG_PID and the PG_*_PORT variables as
# pg_start does (and PG_SUBMISSION_PORT), and writes "ROLE PORT" lines to
# PG_PORTS when it is set, for load generators that outlive a server. Each
# start's output goes to its own file, $PG_DIR/stdout.N.
pg_serve() {
  PG_STARTS=$(( ${PG_STARTS:-0} + 1 ))
  local out="$PG_DIR/stdout.$PG_STARTS"
  "$PG_BIN" --config "$PG_CONF" serve > "$out" 2>> "$PG_DIR/stderr" &
  PG_PID=$!
  for _ in $(seq 300); do
    grep -q ready "$out" 2>/dev/null && break
    kill -0 "$PG_PID" 2>/dev/null || break
    sleep 0.1
  done
  PG_SMTP_PORT=$(sed -n 's/^postgate: smtp listening on 127.0.0.1:\([0-9]*\) (smtp.*/\1/p' "$out" | head -1)
  PG_SUBMISSION_PORT=$(sed -n 's/^postgate: smtp listening on 127.0.0.1:\([0-9]*\) (submission.*/\1/p' "$out" | head -1)
  PG_IMAP_PORT=$(sed -n 's/^postgate: imap listening on 127.0.0.1:\([0-9]*\) (imap,.*/\1/p' "$out" | head -1)
  PG_POP3_PORT=$(sed -n 's/^postgate: pop3 listening on 127.0.0.1:\([0-9]*\) (pop3,.*/\1/p' "$out" | head -1)
  [ -n "$PG_SMTP_PORT" ] || { echo "postgate did not start:"; tail -20 "$PG_DIR/stderr"; exit 2; } >&2
  if [ -n "${PG_PORTS:-}" ]; then
    printf 'smtp %s\nsubmission %s\nimap %s\npop3 %s\n' "$PG_SMTP_PORT" "${PG_SUBMISSION_PORT:-0}" \
      "${PG_IMAP_PORT:-0}" "${PG_POP3_PORT:-0}" > "$PG_PORTS.new" && mv "$PG_PORTS.new" "$PG_PORTS"
  fi
}

# imaps_only_conf DATA_DIR: a config (on stdout) for a server with IMAPS on
# 127.0.0.1:0 and every other listener off, storing in DATA_DIR (the
# import benches read what they imported through it).
imaps_only_conf() {
  cat <<CONF
data_dir = "$1"
hostname = "bench.example.test"
log = "warn"
[smtp]
listen = []
submission = []
smtps = []
[imap]
listen = []
imaps = ["127.0.0.1:0"]
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
CONF
}
