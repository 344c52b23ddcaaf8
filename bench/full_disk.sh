#!/usr/bin/env bash
# A full disk: refused politely, reads go on, nothing corrupted, and taking
# mail again once there is room, without a restart.
#
# Usage: bench/full_disk.sh [SIZE_MB=48] [BALLAST_MB=8] [MESSAGE_KB=200]
# Needs: root (mount -t tmpfs); nothing beyond the build otherwise.
# Postgate's data directory is a SIZE_MB tmpfs made here (unmounted on
# exit), with a BALLAST_MB file placed in it first. Then:
# 1. fill: MESSAGE_KB messages over SMTP until one is refused: the
#    refusal must be `452 4.3.1` (RFC 3463 §3.4 "mail system full"; RFC
#    5321 §4.2.2 452), and the next try of the same size too;
# 2. IMAP APPEND must be refused with a tagged NO, not [SERVERBUG] (RFC
#    5530 §3: [OVERQUOTA]);
# 3. IMAP (SELECT, FETCH of the last message) and POP3 (STAT, RETR) still
#    read;
# 4. the ballast is deleted: SMTP must take a message again (250) and IMAP
#    APPEND too, from the same server process;
# 5. the server is stopped and `postgate store check` must be clean.
# Summary: each step's outcome and the server's PID before and after.
here=$(cd "$(dirname "$0")" && pwd); . "$here/lib.sh"
SIZE_MB=${1:-48} BALLAST_MB=${2:-8} MESSAGE_KB=${3:-200}
[ "$(id -u)" = 0 ] || { echo "full_disk.sh mounts a tmpfs: run it as root" >&2; exit 2; }
pg_build_bench
PG_NO_SERVE=1 pg_start "submission = []
smtps = []" "[imap]
listen = [\"127.0.0.1:0\"]
imaps = []
allow_plaintext = true" "[pop3]
listen = [\"127.0.0.1:0\"]
pop3s = []
allow_plaintext = true"
echo secret | "$PG_BIN" --config "$PG_CONF" user add fill@example.test --name Fill --password-stdin >/dev/null
# The data directory as made so far (schema, users), moved onto the tmpfs.
data=$PG_DIR/data
mv "$data" "$PG_DIR/seed"; mkdir "$data"
mount -t tmpfs -o "size=${SIZE_MB}m" tmpfs "$data" || exit 2
mounted=1
cleanup() {
  if [ -n "${PG_PID:-}" ]; then kill "$PG_PID" 2>/dev/null; wait "$PG_PID" 2>/dev/null; PG_PID=; fi
  [ "${mounted:-0}" = 1 ] && umount "$data" && mounted=0
  pg_stop
}
trap cleanup EXIT
cp -a "$PG_DIR/seed/." "$data/"
dd if=/dev/zero of="$data/ballast" bs=1M count="$BALLAST_MB" status=none
pg_serve
pid_before=$PG_PID
U=fill@example.test
disk() { "$BENCH_BIN/bench-disk" "$@"; }
verdicts=()
pass() { verdicts+=("$1=ok"); }
fail() { verdicts+=("$1=FAIL"); echo "FAIL $1: $2" >&2; }

# 1. Fill until refused.
fill=$(disk fill "$PG_SMTP_PORT" "$U" $((MESSAGE_KB * 1024)) 100000); echo "$fill" >&2
stored=$(figure stored "$fill")
df -k "$data" | tail -1 >&2
# RFC 3463 §3.4: X.3.1 "mail system full".
grep -q 'reply="452 4.3.1' <<<"$fill" && pass smtp_full_452 || fail smtp_full_452 "$fill"
# The next message of the same size: refused the same way (a smaller one
# may still fit in the pages SQLite has free).
again=$(disk smtp "$PG_SMTP_PORT" "$U" $((MESSAGE_KB * 1024))); echo "$again" >&2
grep -q 'reply="452 4.3.1' <<<"$again" && pass smtp_again_452 || fail smtp_again_452 "$again"
grep -q 'reply="250' <<<"$again" && stored=$((stored + 1))
# 2. IMAP APPEND: NO, never [SERVERBUG].
append=$(disk append "$PG_IMAP_PORT" "$U" secret $((MESSAGE_KB * 1024))); echo "$append" >&2
grep -q 'reply="NO' <<<"$append" && ! grep -q SERVERBUG <<<"$append" && pass append_no || fail append_no "$append"
# 3. Reads.
read=$(disk read "$PG_IMAP_PORT" "$PG_POP3_PORT" "$U" secret); rc=$?; echo "$read" >&2
[ $rc = 0 ] && [ "$(figure imap_exists "$read")" = "$stored" ] && [ "$(figure pop3_count "$read")" = "$stored" ] &&
  pass reads || fail reads "$read (stored=$stored)"
# 4. Room again: the same process takes mail.
rm -f "$data/ballast"
ok=0
for _ in 1 2 3 4 5; do
  after=$(disk smtp "$PG_SMTP_PORT" "$U" 10240) && { ok=1; break; }
  sleep 1
done
echo "$after" >&2
[ $ok = 1 ] && pass smtp_after_free || fail smtp_after_free "$after"
append2=$(disk append "$PG_IMAP_PORT" "$U" secret 10240); echo "$append2" >&2
grep -q 'reply="OK' <<<"$append2" && pass append_after_free || fail append_after_free "$append2"
kill -0 "$pid_before" 2>/dev/null && [ "$PG_PID" = "$pid_before" ] && pass same_process || fail same_process "server gone"
grep -qi "panic" "$PG_DIR/stderr" && fail no_panic "$(grep -i panic "$PG_DIR/stderr" | head -3)" || pass no_panic
# 5. Stopped, checked.
kill "$PG_PID"; wait "$PG_PID" 2>/dev/null; PG_PID=
check=$("$PG_BIN" --config "$PG_CONF" store check 2>&1) && pass store_check || fail store_check "$check"
echo "$check" >&2
echo "full_disk size_mb=$SIZE_MB stored_before_full=$stored ${verdicts[*]} check=\"$(tail -1 <<<"$check")\""
! grep -q FAIL <<<"${verdicts[*]}"
