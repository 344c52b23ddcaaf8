"""POP3 checks with Python's poplib against a running Postgate.

usage: pop3_suite.py CASE POP3_PORT POP3S_PORT SMTP_PORT
alice@example.org / "secret" has the messages the Rust test delivered.
"""
import base64, poplib, smtplib, ssl, sys, time

CASE, POP, POPS, SMTP = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
HOST = "127.0.0.1"
CTX = ssl.create_default_context()
CTX.check_hostname = False
CTX.verify_mode = ssl.CERT_NONE


def check(cond, what):
    if not cond:
        print("FAILED:", what, file=sys.stderr)
        sys.exit(1)


def expect_err(fn, code, what):
    try:
        fn()
    except poplib.error_proto as e:
        check(code in str(e), f"{what}: {e}")
        return
    check(False, f"{what}: no error")


def stls(user="alice@example.org"):
    p = poplib.POP3(HOST, POP)
    caps = p.capa()
    check("STLS" in caps and "USER" not in caps, f"pre-TLS CAPA {caps}")
    expect_err(lambda: p.user(user), "[AUTH]", "USER before STLS")
    p.stls(context=CTX)
    caps = p.capa()
    for c in ["TOP", "UIDL", "USER", "SASL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "EXPIRE"]:
        check(c in caps, f"CAPA has {c}: {caps}")
    check("STLS" not in caps, "no STLS under TLS")
    p.user(user)
    p.pass_("secret")
    return p


def case_commands():
    p = stls()
    count, size = p.stat()
    check(count == 3, f"STAT {count}")
    resp, lines, _ = p.list()
    check(len(lines) == 3 and lines[0].startswith(b"1 "), f"LIST {lines}")
    check(p.list(2).startswith(b"+OK 2 "), "LIST 2")
    expect_err(lambda: p.list(9), "-ERR", "LIST beyond")
    resp, uidls, _ = p.uidl()
    uids = [u.split()[1] for u in uidls]
    check(len(set(uids)) == 3, f"UIDL unique {uidls}")
    check(p.uidl(1).split()[2] == uids[0], "UIDL 1")
    resp, lines, octets = p.retr(1)
    msg = b"\r\n".join(lines)
    check(b"Subject: first" in msg, f"RETR 1: {msg[:200]!r}")
    # The message whose lines start with dots comes back unstuffed, byte-exact.
    resp, lines, octets = p.retr(2)
    check(b".leading dot" in lines and b".." in lines and b"." in lines, f"dot lines: {lines}")
    resp, lines, _ = p.top(3, 1)
    check(lines[-1] == b"body line 1" and b"body line 2" not in lines, f"TOP 3 1: {lines}")
    p.noop()
    p.dele(1)
    expect_err(lambda: p.retr(1), "-ERR", "RETR deleted")
    check(p.stat()[0] == 2, "STAT after DELE")
    p.rset()
    check(p.stat()[0] == 3, "RSET undoes DELE")
    p.dele(3)
    p.quit()
    # QUIT committed: the message went to Trash (default), the others stay.
    p = stls()
    check(p.stat()[0] == 2, "QUIT committed DELE")
    resp, uidls2, _ = p.uidl()
    check([u.split()[1] for u in uidls2] == uids[:2], "UIDLs stable across sessions")
    p.quit()


def case_auth():
    p = poplib.POP3_SSL(HOST, POPS, context=CTX)
    ir = base64.b64encode(b"\0alice@example.org\0secret").decode()
    check(p._shortcmd("AUTH PLAIN " + ir).startswith(b"+OK"), "AUTH PLAIN with initial response")
    # A second session on the same maildrop is refused while the first holds it.
    q = poplib.POP3_SSL(HOST, POPS, context=CTX)
    q.user("alice@example.org")
    expect_err(lambda: q.pass_("secret"), "[IN-USE]", "second session")
    p.quit()
    q.quit()
    q = poplib.POP3_SSL(HOST, POPS, context=CTX)
    # poplib raises on anything but "+..."; RFC 5034 §4: "+" SP and the
    # (empty, for PLAIN) base64 challenge.
    resp = q._shortcmd("AUTH PLAIN")
    check(resp == b"+ ", f"AUTH continuation {resp!r}")
    check(q._shortcmd(base64.b64encode(b"\0alice@example.org\0secret").decode()).startswith(b"+OK"), "AUTH PLAIN continued")
    q.quit()
    r = poplib.POP3_SSL(HOST, POPS, context=CTX)
    r.user("alice@example.org")
    expect_err(lambda: r.pass_("wrong"), "[AUTH]", "bad password")
    r.user("alice@example.org:colour=blue")
    expect_err(lambda: r.pass_("secret"), "[AUTH]", "unknown option")
    r.quit()


def login(opts):
    p = poplib.POP3_SSL(HOST, POPS, context=CTX)
    p.user("alice@example.org" + opts)
    p.pass_("secret")
    return p


def case_options():
    p = login(":sdl=2")
    check(p.stat()[0] == 2, "sdl=2")
    p.quit()
    p = login(":days=7")
    check(p.stat()[0] == 3, "days=7 keeps recent mail")
    p.quit()
    p = login(":folder=Projects/2026")
    check(p.stat()[0] == 1, "folder=Projects/2026")
    p.quit()
    p = login(":keep")
    p.dele(1)
    p.quit()
    p = login(":days=7:sdl=20")
    check(p.stat()[0] == 3, "keep left the message")
    p.quit()
    p = login(":purge")
    p.dele(1)
    p.quit()
    p = login("")
    check(p.stat()[0] == 2, "purge removed it")
    p.quit()
    p = login(":folder=Trash")
    check(p.stat()[0] == 0, "purge did not go to Trash")
    p.quit()
    p = login(":sdl=1")
    p.dele(1)
    p.quit()
    p = login(":folder=Trash")
    check(p.stat()[0] == 1, "default DELE moved to Trash")
    p.quit()


{"commands": case_commands, "auth": case_auth, "options": case_options}[CASE]()
print("ok")
