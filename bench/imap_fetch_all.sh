#!/usr/bin/env bash
# A FETCH of every message of a large mailbox runs in bounded memory.
#
# Usage: bench/imap_fetch_all.sh [MESSAGES=100000] [SIZE=10240]
# Fills sink@example.test with MESSAGES messages (smtp-source), then one
# client sends "UID FETCH 1:* (UID RFC822.SIZE BODY.PEEK[])" and reads the reply
# to the end, discarding it. Prints the server's resident memory before, its
# peak (VmHWM) during the FETCH, the octets received and the time taken.
here=$(cd "$(dirname "$0")" && pwd); . "$here/lib.sh"
MSGS=${1:-100000} SIZE=${2:-10240}
pg_build
pg_start "" "[imap]
listen = [\"127.0.0.1:0\"]
imaps = []
allow_plaintext = true"
echo pass | "$PG_BIN" --config "$PG_CONF" user passwd sink@example.test >/dev/null
RCPT=sink@example.test TIMEOUT=900 "$LOADS/smtp_load.sh" 127.0.0.1 "$PG_SMTP_PORT" "$MSGS" 10 "$SIZE" >/dev/null
python3 - "$PG_IMAP_PORT" "$PG_PID" "$MSGS" <<'PY'
import socket, sys, time
port, pid, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def mem(key):
    for l in open(f"/proc/{pid}/status"):
        if l.startswith(key):
            return int(l.split()[1])
s = socket.create_connection(("127.0.0.1", port))
f = s.makefile("rb")
f.readline()
s.sendall(b"a LOGIN sink@example.test pass\r\nb SELECT INBOX\r\n")
while not f.readline().startswith(b"b "):
    pass
before = mem("VmRSS:")
t0 = time.time()
s.sendall(b"c UID FETCH 1:* (UID RFC822.SIZE BODY.PEEK[])\r\n")
got = fetched = 0
while True:
    line = f.readline()
    got += len(line)
    if line.startswith(b"c "):
        ok = line.startswith(b"c OK")
        break
    if line.startswith(b"* "):
        fetched += 1
    if line.endswith(b"}\r\n"):
        k = int(line[line.rindex(b"{") + 1:-3])
        got += len(f.read(k))
secs = time.time() - t0
print(f"imap_fetch_all messages={fetched} ok={ok} octets={got} secs={secs:.1f} "
      f"rss_before_kib={before} rss_after_kib={mem('VmRSS:')} peak_kib={mem('VmHWM:')}")
PY
