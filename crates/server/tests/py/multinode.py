"""Two Postgate nodes on one PostgreSQL database, driven by Python's stdlib
clients: IDLE on one node wakes for mail delivered on the other; concurrent
APPENDs on both nodes keep UIDs ascending for a third session; POP3 on one
node locks the maildrop against the other. Prints "ok" on success."""
import imaplib, poplib, smtplib, socket, ssl, sys, threading, time

CTX = ssl.create_default_context()
CTX.check_hostname = False
CTX.verify_mode = ssl.CERT_NONE
USER, PASSWORD = "alice@example.org", "secret"


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def imap(port):
    m = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=CTX)
    m.login(USER, PASSWORD)
    return m


def idle_wakes(imaps_b, smtp_a):
    """IDLE on node B (RFC 2177), a message into node A over SMTP: B's
    client hears EXISTS within a second."""
    raw = CTX.wrap_socket(socket.create_connection(("127.0.0.1", imaps_b)))
    f = raw.makefile("rb")

    def until(tag):
        while True:
            line = f.readline()
            if not line:
                fail("connection closed")
            if line.startswith(tag):
                return line

    until(b"* OK")
    raw.sendall(b"a LOGIN %s %s\r\n" % (USER.encode(), PASSWORD.encode()))
    line = until(b"a ")
    if not line.startswith(b"a OK"):
        fail("LOGIN on node B: %r" % line)
    raw.sendall(b"b SELECT INBOX\r\n")
    until(b"b OK")
    raw.sendall(b"c IDLE\r\n")
    until(b"+")
    s = smtplib.SMTP("127.0.0.1", smtp_a)
    s.sendmail("someone@remote.test", [USER],
               b"From: someone@remote.test\r\nTo: alice@example.org\r\nSubject: cross-node\r\n\r\nhello\r\n")
    sent = time.monotonic()
    s.quit()
    raw.settimeout(5)
    line = until(b"* ")
    while b"EXISTS" not in line:
        line = until(b"* ")
    waited = time.monotonic() - sent
    raw.sendall(b"DONE\r\n")
    until(b"c OK")
    raw.close()
    if waited > 1.0:
        fail("IDLE on node B woke %.3f s after delivery on node A" % waited)
    print("idle woke after %.3f s" % waited)


def appends_ascend(imaps_a, imaps_b, per_client):
    """Four clients (two per node) APPEND to one folder at once while a
    third session on node B polls it: a UID it sees later is never below
    one it saw earlier (RFC 3501 §2.3.1.1)."""
    setup = imap(imaps_a)
    setup.create("Shared")
    setup.logout()
    errors = []
    done = threading.Event()

    def appender(port, n):
        try:
            m = imap(port)
            for i in range(per_client):
                msg = ("Subject: append %d-%d\r\n\r\nbody\r\n" % (n, i)).encode()
                typ, _ = m.append("Shared", None, None, msg)
                if typ != "OK":
                    errors.append("APPEND %s" % typ)
            m.logout()
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    watcher = imap(imaps_b)
    watcher.select("Shared", readonly=True)
    threads = [threading.Thread(target=appender, args=(p, n))
               for n, p in enumerate([imaps_a, imaps_b, imaps_a, imaps_b])]
    for t in threads:
        t.start()
    seen, polls = set(), 0
    highest = 0
    settle = None
    while True:
        finished = not any(t.is_alive() for t in threads)
        if finished and settle is None:
            # The last appends on the other node reach this session when
            # their notification does: a moment more.
            settle = time.monotonic() + 5
        typ, data = watcher.uid("SEARCH", None, "ALL")
        uids = [int(u) for u in data[0].split()]
        new = [u for u in uids if u not in seen]
        if new and min(new) < highest:
            fail("a new UID %d appeared below %d, seen before" % (min(new), highest))
        seen.update(new)
        if seen:
            highest = max(seen)
        polls += 1
        if finished and (len(seen) >= 4 * per_client or time.monotonic() > settle):
            break
        if finished:
            time.sleep(0.05)
    for t in threads:
        t.join()
    if errors:
        fail("; ".join(errors[:5]))
    if len(seen) != 4 * per_client:
        fail("saw %d messages, expected %d" % (len(seen), 4 * per_client))
    if sorted(seen) != list(range(1, 4 * per_client + 1)):
        fail("UIDs are not 1..%d" % (4 * per_client))
    watcher.logout()
    print("%d appends on two nodes, %d polls, UIDs ascending" % (4 * per_client, polls))


def pop3_lock(pop3s_a, pop3s_b):
    """RFC 1939 §8: a maildrop open on node A is locked against node B."""
    a = poplib.POP3_SSL("127.0.0.1", pop3s_a, context=CTX)
    a.user(USER)
    a.pass_(PASSWORD)
    b = poplib.POP3_SSL("127.0.0.1", pop3s_b, context=CTX)
    b.user(USER)
    try:
        b.pass_(PASSWORD)
        fail("node B opened a maildrop node A holds")
    except poplib.error_proto as e:
        if b"IN-USE" not in e.args[0]:
            fail("expected -ERR [IN-USE], got %r" % e.args[0])
    b.close()
    a.quit()
    b = poplib.POP3_SSL("127.0.0.1", pop3s_b, context=CTX)
    b.user(USER)
    b.pass_(PASSWORD)
    count, _ = b.stat()
    b.quit()
    print("maildrop locked across nodes; %d messages" % count)


case = sys.argv[1]
ports = [int(p) for p in sys.argv[2:]]
if case == "idle":
    idle_wakes(*ports)
elif case == "appends":
    appends_ascend(ports[0], ports[1], ports[2])
elif case == "pop3":
    pop3_lock(*ports)
else:
    fail("unknown case " + case)
print("ok")
