"""IMAP checks with Python's imaplib against a running Postgate.

usage: imap_suite.py CASE IMAP_PORT IMAPS_PORT SMTP_PORT
Users: alice@example.org / bob@example.org, password "secret".
Exits non-zero with a message on the first failed check.
"""
import imaplib, smtplib, socket, ssl, sys, time, re, email

CASE, IMAP, IMAPS, SMTP = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
HOST = "127.0.0.1"
CTX = ssl.create_default_context()
CTX.check_hostname = False
CTX.verify_mode = ssl.CERT_NONE


def check(cond, what):
    if not cond:
        print("FAILED:", what, file=sys.stderr)
        sys.exit(1)


def ok(resp, what):
    typ, data = resp
    check(typ == "OK", f"{what}: {typ} {data}")
    return data


def starttls_login(user="alice@example.org"):
    m = imaplib.IMAP4(HOST, IMAP)
    caps = m.capabilities
    check("STARTTLS" in caps and "LOGINDISABLED" in caps, f"pre-TLS capabilities {caps}")
    try:
        m.login(user, "secret")
        check(False, "LOGIN before STARTTLS must be refused")
    except imaplib.IMAP4.error:
        pass
    ok(m.starttls(ssl_context=CTX), "STARTTLS")
    ok(m.login(user, "secret"), "LOGIN after STARTTLS")
    return m


def imaps_login(user="alice@example.org"):
    m = imaplib.IMAP4_SSL(HOST, IMAPS, ssl_context=CTX)
    ok(m.login(user, "secret"), "LOGIN over IMAPS")
    return m


def smtp_send(to, subject, body="hello\r\n", extra=""):
    msg = (f"From: Carol Sender <carol@remote.test>\r\nTo: {to}\r\nSubject: {subject}\r\n"
           f"Message-ID: <{subject.replace(' ', '.')}@remote.test>\r\n{extra}"
           f"Date: Thu, 26 Nov 2026 10:00:00 +0000\r\n\r\n{body}").encode()
    with smtplib.SMTP(HOST, SMTP) as s:
        s.sendmail("carol@remote.test", [to], msg)


def case_login():
    m = starttls_login()
    check(m.logout()[0] == "BYE", "LOGOUT")
    m = imaps_login()
    check("IDLE" in m.capabilities, f"caps {m.capabilities}")
    typ, data = m.capability()
    caps = data[0].decode()
    for c in ["IMAP4rev1", "IDLE", "UIDPLUS", "MOVE", "SPECIAL-USE", "CONDSTORE", "QRESYNC",
              "ESEARCH", "SORT", "THREAD=REFERENCES", "COMPRESS=DEFLATE", "LIST-STATUS"]:
        check(c in caps, f"capability {c} in {caps}")
    try:
        imaplib.IMAP4_SSL(HOST, IMAPS, ssl_context=CTX).login("alice@example.org", "wrong")
        check(False, "wrong password accepted")
    except imaplib.IMAP4.error as e:
        check("AUTHENTICATIONFAILED" in str(e), f"failure code: {e}")
    m.logout()


def case_mailboxes():
    m = imaps_login()
    lines = [l.decode() for l in ok(m.list(), "LIST")]
    def attrs(name):
        for l in lines:
            if l.endswith(f'"{name}"') or l.endswith(f" {name}"):
                return l
        return None
    check("\\Sent" in (attrs("Sent Items") or ""), f"Sent Items special-use: {lines}")
    check("\\Trash" in (attrs("Trash") or ""), "Trash special-use")
    check("\\Junk" in (attrs("Junk") or ""), "Junk special-use")
    check("\\Drafts" in (attrs("Drafts") or ""), "Drafts special-use")
    check(attrs("INBOX") is not None, "INBOX listed")
    ok(m.create("Projects/2026"), "CREATE nested")
    lines = [l.decode() for l in ok(m.list('""', "Projects/*"), "LIST Projects/*")]
    check(any("Projects/2026" in l for l in lines), f"nested created: {lines}")
    lines = [l.decode() for l in ok(m.list('""', "%"), "LIST %")]
    check(any('HasChildren' in l and 'Projects' in l for l in lines), f"\\HasChildren: {lines}")
    ok(m.rename("Projects", "Archive"), "RENAME with children")
    lines = [l.decode() for l in ok(m.list('""', "*"), "LIST *")]
    check(any("Archive/2026" in l for l in lines) and not any("Projects" in l for l in lines), f"renamed: {lines}")
    # imaplib leaves names to the caller: "Grüße" in modified UTF-7 (RFC 3501 §5.1.3).
    ok(m.create("Gr&APwA3w-e"), "CREATE with non-ASCII name")
    lines = [l.decode() for l in ok(m.list('""', "Gr*"), "LIST Gr*")]
    check(any("Gr&APwA3w-e" in l for l in lines), f"modified UTF-7: {lines}")
    ok(m.subscribe("Archive/2026"), "SUBSCRIBE")
    lines = [l.decode() for l in ok(m.lsub('""', "Archive/*"), "LSUB")]
    check(any("Archive/2026" in l for l in lines), f"LSUB: {lines}")
    typ, data = m._simple_command("LIST", "(SPECIAL-USE)", '""', "*")
    lines = [l.decode() for l in m.untagged_responses.pop("LIST", [])]
    check(typ == "OK" and len(lines) == 4, f"LIST (SPECIAL-USE): {typ} {lines}")
    typ, data = m._simple_command("LIST", '""', "INBOX", "RETURN", "(STATUS (MESSAGES UIDNEXT))")
    status = [l.decode() for l in m.untagged_responses.pop("STATUS", [])]
    check(typ == "OK" and any("MESSAGES" in s for s in status), f"LIST-STATUS: {status}")
    ok(m.delete("Archive/2026"), "DELETE")
    ok(m.delete("Archive"), "DELETE parent")
    typ, _ = m.delete("Trash")
    check(typ == "NO", "system folder not deletable")
    typ, data = m.status("INBOX", "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN RECENT HIGHESTMODSEQ)")
    check(typ == "OK" and b"UIDVALIDITY" in data[0], f"STATUS {data}")
    m.logout()


def populate(m):
    for i, (subj, frm) in enumerate([("apple pie", "Zed <zed@b.test>"), ("Re: apple pie", "Amy <amy@a.test>"),
                                       ("banana split", "Bob <bob@c.test>")]):
        refs = "References: <apple.pie@x>\r\n" if subj.startswith("Re:") else ""
        mid = "<apple.pie@x>" if i == 0 else f"<m{i}@x>"
        raw = (f"From: {frm}\r\nTo: alice@example.org\r\nSubject: {subj}\r\nMessage-ID: {mid}\r\n{refs}"
               f"Date: Thu, 2{i} Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
               f"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
               f"body number {i} with Grüße\r\n--b\r\nContent-Type: application/octet-stream; name=\"f{i}.bin\"\r\n"
               f"Content-Transfer-Encoding: base64\r\n\r\nAAEC\r\n--b--\r\n").encode()
        ok(m.append("INBOX", "(\\Seen)" if i == 2 else None, None, raw), f"APPEND {i}")


def case_messages():
    m = imaps_login()
    populate(m)
    typ, data = m.select("INBOX")
    check(typ == "OK" and int(data[0]) == 3, f"SELECT {data}")
    # RFC 9051 §6.3.2: the tagged OK of SELECT carries [READ-WRITE].
    typ, tagged = m._simple_command("SELECT", "INBOX")
    check(typ == "OK" and b"[READ-WRITE]" in b"".join(tagged), f"read-write {tagged}")
    items = "(UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY BODYSTRUCTURE BODY.PEEK[HEADER] BODY.PEEK[TEXT] BODY.PEEK[1] BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[]<0.10> BINARY.PEEK[2] BINARY.SIZE[2] MODSEQ RFC822.HEADER)"
    data = ok(m.fetch("1", items), "FETCH every item")
    flat = b"".join(p if isinstance(p, bytes) else b"".join(p) for p in data)
    for needle in [b"ENVELOPE (", b"BODYSTRUCTURE ((\"text\" \"plain\"", b"BODY[HEADER.FIELDS (SUBJECT)]", b"Subject: apple pie",
                   b"BINARY[2] ~{3}", b"\x00\x01\x02", b"BINARY.SIZE[2] 3", b"MODSEQ (", b"BODY[]<0>", b"RFC822.SIZE "]:
        check(needle in flat, f"FETCH reply has {needle!r}: {flat[:600]!r}")
    data = ok(m.fetch("1", "(FLAGS)"), "FETCH FLAGS")
    check(b"\\Seen" not in data[0], "PEEK does not set \\Seen")
    data = ok(m.fetch("1", "(BODY[TEXT])"), "FETCH BODY[TEXT]")
    flat = b"".join(p if isinstance(p, bytes) else b"".join(p) for p in data)
    check(b"\\Seen" in flat, f"BODY[] sets \\Seen: {flat[:300]!r}")
    # SEARCH, charset-aware over decoded text
    check(ok(m.search(None, "FROM", "amy"), "SEARCH FROM")[0] == b"2", "SEARCH FROM")
    m.literal = "Grüße".encode()
    check(ok(m.search("UTF-8", "BODY"), "SEARCH BODY")[0] == b"1 2 3", "SEARCH BODY utf-8")
    check(ok(m.search(None, "UNSEEN"), "SEARCH UNSEEN")[0] == b"2", "SEARCH UNSEEN")
    check(ok(m.search(None, "OR", "SUBJECT", "banana", "HEADER", "Message-ID", "apple.pie"), "SEARCH OR")[0] == b"1 3", "SEARCH OR/HEADER")
    check(ok(m.uid("SEARCH", "LARGER", "10"), "UID SEARCH")[0].split() != [], "UID SEARCH")
    check(ok(m.sort("(SUBJECT)", "UTF-8", "ALL"), "SORT")[0] == b"1 2 3", "SORT SUBJECT")
    check(ok(m.sort("(FROM)", "UTF-8", "ALL"), "SORT")[0] == b"2 3 1", "SORT FROM")
    check(ok(m.sort("(REVERSE DATE)", "UTF-8", "ALL"), "SORT")[0] == b"3 2 1", "SORT REVERSE DATE")
    check(ok(m.thread("REFERENCES", "UTF-8", "ALL"), "THREAD")[0] == b"(1 2)(3)", "THREAD REFERENCES")
    check(ok(m.thread("ORDEREDSUBJECT", "UTF-8", "ALL"), "THREAD")[0] == b"(1 2)(3)", "THREAD ORDEREDSUBJECT")
    # STORE, COPY, MOVE, EXPUNGE
    data = ok(m.store("1:2", "+FLAGS", "(\\Flagged $Work)"), "STORE")
    check(len(data) == 2 and b"$Work" in data[0], f"STORE reply {data}")
    ok(m.create("Saved"), "CREATE Saved")
    typ, data = m.copy("1:2", "Saved")
    check(typ == "OK", f"COPY {data}")
    typ, data = m._simple_command("MOVE", "3", "Saved")
    check(typ == "OK", f"MOVE {typ} {data}")
    check(m.untagged_responses.pop("EXPUNGE", None) == [b"3"], f"MOVE expunged 3: {m.untagged_responses}")
    typ, data = m.status("Saved", "(MESSAGES)")
    check(b"MESSAGES 3" in data[0], f"Saved has 3: {data}")
    ok(m.store("1", "+FLAGS", "(\\Deleted)"), "STORE \\Deleted")
    data = ok(m.expunge(), "EXPUNGE")
    check(data == [b"1"], f"EXPUNGE reply {data}")
    typ, data = m.select("Saved", readonly=True)
    check(typ == "OK", "EXAMINE")
    typ, data = m.store("1", "+FLAGS", "(\\Seen)")
    check(typ == "NO", "STORE refused in EXAMINE")
    data = ok(m.fetch("1:*", "(FLAGS)"), "FETCH in EXAMINE")
    check(b"$Work" in data[0], f"copied keywords kept: {data}")
    ok(m.close(), "CLOSE")
    typ, data = m.append("Nowhere", None, None, b"Subject: x\r\n\r\ny\r\n")
    check(typ == "NO" and b"TRYCREATE" in data[0], f"APPEND to missing: {data}")
    m.logout()


def case_idle():
    m = starttls_login()
    ok(m.select("INBOX"), "SELECT")
    tag = m._new_tag()
    m.send(tag + b" IDLE\r\n")
    line = m.readline()
    check(line.startswith(b"+"), f"IDLE continuation {line!r}")
    t0 = time.time()
    smtp_send("alice@example.org", "wake up")
    m.sock.settimeout(5)
    line = m.readline()
    waited = time.time() - t0
    check(re.match(rb"\* \d+ EXISTS", line), f"IDLE woke with EXISTS: {line!r}")
    check(waited < 1.0, f"IDLE woke within a second of delivery: {waited:.3f}s")
    m.send(b"DONE\r\n")
    while True:
        line = m.readline()
        if line.startswith(tag):
            check(b"OK" in line, f"IDLE done {line!r}")
            break
    m.logout()


def case_two_sessions():
    a = imaps_login()
    b = imaps_login()
    ok(a.select("INBOX"), "A SELECT")
    ok(b.select("INBOX"), "B SELECT")
    ok(b.append("INBOX", None, None, b"Subject: one\r\n\r\nx\r\n"), "B APPEND")
    ok(b.append("INBOX", None, None, b"Subject: two\r\n\r\nx\r\n"), "B APPEND")
    ok(a.noop(), "A NOOP")
    check(a.untagged_responses.get("EXISTS", [None])[-1] == b"2", f"A sees EXISTS 2: {a.untagged_responses}")
    a.untagged_responses.clear()
    ok(b.store("1", "+FLAGS", "(\\Answered)"), "B STORE")
    ok(a.noop(), "A NOOP")
    fetches = a.untagged_responses.get("FETCH", [])
    check(any(b"\\Answered" in f for f in fetches), f"A sees B's flags: {a.untagged_responses}")
    a.untagged_responses.clear()
    ok(b.store("1", "+FLAGS", "(\\Deleted)"), "B STORE deleted")
    ok(b.expunge(), "B EXPUNGE")
    # During FETCH no EXPUNGE may arrive (RFC 3501 §7.4.1); NOOP brings it.
    data = ok(a.fetch("1:2", "(FLAGS)"), "A FETCH")
    check("EXPUNGE" not in a.untagged_responses, f"no EXPUNGE during FETCH: {a.untagged_responses}")
    ok(a.noop(), "A NOOP")
    check(a.untagged_responses.get("EXPUNGE") == [b"1"], f"A sees EXPUNGE 1: {a.untagged_responses}")
    a.logout(); b.logout()


def case_extensions():
    """The newer extensions as imaplib sends them: its own methods where it
    has them (ENABLE, MYRIGHTS, GETACL), and commands it does not know
    through _simple_command, their literals as LITERAL+ (RFC 7888)."""
    for name, states in [("UNAUTHENTICATE", ("AUTH", "SELECTED")),
                         ("CANCELUPDATE", ("SELECTED",)),
                         ("SETMETADATA", ("AUTH", "SELECTED")),
                         ("GETMETADATA", ("AUTH", "SELECTED"))]:
        imaplib.Commands.setdefault(name, states)
    m = imaps_login()
    for cap in ["MULTIAPPEND", "CATENATE", "ESORT", "CONTEXT=SEARCH", "CONTEXT=SORT", "WITHIN",
                "PREVIEW", "OBJECTID", "UTF8=ACCEPT", "ACL", "UNAUTHENTICATE", "STATUS=SIZE",
                "SAVEDATE", "CREATE-SPECIAL-USE", "PARTIAL", "METADATA"]:
        check(cap in m.capabilities, f"{cap} in {m.capabilities}")
    one = b"From: a@example.org\r\nSubject: first\r\n\r\nHello there,\r\n  world.\r\n"
    two = b"Subject: second\r\n\r\nsecond body\r\n"
    lit = lambda b: "{%d+}\r\n%s" % (len(b), b.decode())
    # MULTIAPPEND (RFC 3502): two messages, one command, one APPENDUID set.
    data = ok(m._simple_command("APPEND", "INBOX", "(\\Seen)", lit(one), "(\\Flagged)", lit(two)),
              "MULTIAPPEND")
    mo = re.search(rb"APPENDUID (\d+) 1:2", data[0])
    check(mo, f"APPENDUID with both UIDs: {data}")
    # CATENATE (RFC 4469): the first message's header and new text.
    ok(m.create("Out"), "CREATE Out")
    data = ok(m._simple_command("APPEND", "Out", "CATENATE",
                                '(URL "/INBOX/;UID=1/;SECTION=HEADER" TEXT %s)' % lit(b"new body\r\n")),
              "CATENATE")
    ok(m.select("Out", readonly=True), "EXAMINE Out")
    data = ok(m.fetch("1", "(BODY.PEEK[])"), "FETCH catenated")
    check(data[0][1] == one.split(b"\r\n\r\n")[0] + b"\r\n\r\nnew body\r\n", f"catenated bytes {data}")
    ok(m.select("INBOX"), "SELECT")
    # ESORT (RFC 5267 §3).
    ok(m._simple_command("SORT", "RETURN", "(MIN MAX COUNT)", "(SUBJECT)", "UTF-8", "ALL"), "ESORT")
    es = m.untagged_responses.pop("ESEARCH", [b""])[-1]
    check(b"MIN 1 MAX 2 COUNT 2" in es, f"ESORT reply {es}")
    # CONTEXT=SEARCH (RFC 5267 §4): a live result, then a change to it.
    ok(m._simple_command("SEARCH", "RETURN", "(UPDATE)", "FLAGGED"), "SEARCH UPDATE")
    es = m.untagged_responses.pop("ESEARCH", [b""])[-1]
    check(es.endswith(b"ALL 2"), f"initial live result {es}")
    ok(m.store("1", "+FLAGS", "(\\Flagged)"), "STORE")
    es = m.untagged_responses.pop("ESEARCH", [b""])[-1]
    check(es.endswith(b"ADDTO (0 1)"), f"ADDTO after STORE {es}")
    tag = re.search(rb'TAG "([^"]+)"', es).group(1).decode()
    ok(m._simple_command("CANCELUPDATE", '"%s"' % tag), "CANCELUPDATE")
    # PREVIEW (RFC 8970), OBJECTID (RFC 8474), WITHIN (RFC 5032).
    data = ok(m.fetch("1", "(PREVIEW EMAILID)"), "FETCH PREVIEW")
    check(b'PREVIEW "Hello there, world."' in data[0] and b"EMAILID (" in data[0], f"PREVIEW {data}")
    data = ok(m.search(None, "YOUNGER", "3600"), "SEARCH YOUNGER")
    check(data == [b"1 2"], f"YOUNGER {data}")
    # SAVEDATE (RFC 8514): saved today, whatever the internal date.
    today = time.strftime("%d-%b-%Y", time.gmtime())
    data = ok(m.fetch("1:2", "(SAVEDATE)"), "FETCH SAVEDATE")
    check(all(b'SAVEDATE "' in d for d in data), f"SAVEDATE {data}")
    data = ok(m.search(None, "SAVEDSINCE", today), "SEARCH SAVEDSINCE")
    check(data == [b"1 2"], f"SAVEDSINCE {data}")
    # PARTIAL (RFC 9394): the last message of the set only.
    data = ok(m._simple_command("UID", "FETCH", "1:*", "(FLAGS)", "(PARTIAL -1:-1)"), "FETCH PARTIAL")
    fetched = m.untagged_responses.pop("FETCH", [])
    check(len(fetched) == 1 and fetched[0].startswith(b"2 "), f"PARTIAL FETCH {fetched}")
    # CREATE-SPECIAL-USE (RFC 6154 §3), then LIST shows the use.
    ok(m._simple_command("CREATE", "Binned", "(USE (\\Trash))"), "CREATE USE")
    data = ok(m.list('""', "Binned"), "LIST Binned")
    check(b"\\Trash" in data[0], f"\\Trash on the new mailbox {data}")
    # METADATA (RFC 5464): set and read back a mailbox comment.
    ok(m._simple_command("SETMETADATA", "INBOX", '(/private/comment "kept")'), "SETMETADATA")
    ok(m._simple_command("GETMETADATA", "INBOX", "/private/comment"), "GETMETADATA")
    md = m.untagged_responses.pop("METADATA", [b""])[-1]
    check(b'/private/comment "kept"' in md, f"METADATA {md}")
    # ACL (RFC 4314) with imaplib's own methods.
    data = ok(m.myrights("INBOX"), "MYRIGHTS")
    check(data == [b"INBOX lrswipkxtea"], f"MYRIGHTS {data}")
    data = ok(m.getacl("INBOX"), "GETACL")
    check(data == [b"INBOX alice@example.org lrswipkxtea"], f"GETACL {data}")
    # UNAUTHENTICATE (RFC 8437), then Bob on the same connection.
    ok(m._simple_command("UNAUTHENTICATE"), "UNAUTHENTICATE")
    m.state = "NONAUTH"
    ok(m.login("bob@example.org", "secret"), "LOGIN as Bob")
    # UTF8=ACCEPT (RFC 6855): imaplib's enable() switches it to UTF-8.
    ok(m.enable("UTF8=ACCEPT"), "ENABLE UTF8=ACCEPT")
    ok(m.create('"Grüße"'), "CREATE UTF-8 name")
    data = ok(m.list('""', '"Gr*"'), "LIST")
    check(any("Grüße" in (d.decode() if isinstance(d, bytes) else d[1].decode()) for d in data),
          f"UTF-8 name listed as is {data}")
    m.logout()


def read_until(m, pattern, what, timeout=5.0):
    """Reads unsolicited lines (with their literals) until one matches
    `pattern`; returns everything read. Fails after `timeout` seconds."""
    m.sock.settimeout(timeout)
    seen = []
    try:
        while True:
            line = m.readline()
            lit = re.search(rb"\{(\d+)\}\r\n$", line)
            if lit:
                line += m.read(int(lit.group(1))) + m.readline()
            seen.append(line)
            if re.search(pattern, line):
                return seen
    except (socket.timeout, TimeoutError):
        check(False, f"{what}: nothing matching {pattern!r} in {seen}")
    finally:
        m.sock.settimeout(None)


def case_notify():
    """NOTIFY (RFC 5465) as imaplib sends it: events in the selected
    mailbox and in others, mailbox names and subscriptions, reported while
    the client sends nothing."""
    imaplib.Commands.setdefault("NOTIFY", ("AUTH", "SELECTED"))
    a = imaps_login()
    b = imaps_login()
    check("NOTIFY" in a.capabilities, f"NOTIFY in {a.capabilities}")
    for name in ["Lists", "Lists/rust", "Other"]:
        ok(b.create(name), f"CREATE {name}")
    ok(b.append("Lists/rust", None, None, b"Subject: old\r\n\r\nx\r\n"), "APPEND old")
    ok(a.select("INBOX"), "SELECT")
    # SET STATUS: the watched mailboxes' state before the tagged OK (§3.1).
    ok(a._simple_command(
        "NOTIFY", "SET", "STATUS",
        "(selected (MessageNew (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)]) MessageExpunge FlagChange))",
        "(subtree Lists (MessageNew MessageExpunge))",
        "(personal (MailboxName SubscriptionChange))"), "NOTIFY SET")
    statuses = a.untagged_responses.pop("STATUS", [])
    check(any(b'Lists/rust" (MESSAGES 1 UIDNEXT 2' in s or b"Lists/rust (MESSAGES 1 UIDNEXT 2" in s
              for s in statuses), f"initial STATUS of Lists/rust: {statuses}")
    check(not any(b"Other" in s for s in statuses), f"no STATUS for Other: {statuses}")
    # Mail delivered to the selected mailbox: EXISTS and the FETCH items (§5.2).
    smtp_send("alice@example.org", "pushed")
    seen = read_until(a, rb"FETCH", "MessageNew in INBOX")
    check(any(re.match(rb"\* 1 EXISTS", l) for l in seen), f"EXISTS first: {seen}")
    check(b"Subject: pushed" in seen[-1] and b"UID 1" in seen[-1], f"FETCH items: {seen}")
    # Another session's append to a watched mailbox: STATUS (§5.2); to one
    # only watched for names: nothing.
    ok(b.append("Other", None, None, b"Subject: quiet\r\n\r\nx\r\n"), "APPEND Other")
    ok(b.append("Lists/rust", None, None, b"Subject: new\r\n\r\nx\r\n"), "APPEND Lists/rust")
    seen = read_until(a, rb"STATUS .*Lists/rust", "MessageNew in Lists/rust")
    check(b"MESSAGES 2 UIDNEXT 3" in seen[-1], f"STATUS counts: {seen}")
    check(not any(b"Other" in l for l in seen), f"nothing for Other: {seen}")
    # Names (§5.4): created, renamed (OLDNAME), deleted.
    ok(b.create("Made"), "CREATE Made")
    seen = read_until(a, rb"LIST", "MailboxName create")
    check(re.search(rb'LIST \(\) "/" "?Made"?', seen[-1]), f"created: {seen}")
    ok(b.rename("Made", "Renamed"), "RENAME")
    seen = read_until(a, rb"LIST", "MailboxName rename")
    check(b"Renamed" in seen[-1] and b'("OLDNAME" ("Made"))' in seen[-1], f"renamed: {seen}")
    ok(b.delete("Renamed"), "DELETE")
    seen = read_until(a, rb"LIST", "MailboxName delete")
    check(b"\\NonExistent" in seen[-1] and b"Renamed" in seen[-1], f"deleted: {seen}")
    # Subscriptions (§5.5).
    ok(b.subscribe("Other"), "SUBSCRIBE")
    seen = read_until(a, rb"LIST", "SubscriptionChange")
    check(b"\\Subscribed" in seen[-1] and b"Other" in seen[-1], f"subscribed: {seen}")
    # Flags and expunges in the selected mailbox, as they happen (§5.1, §5.3).
    ok(b.select("INBOX"), "B SELECT")
    ok(b.store("1", "+FLAGS", "(\\Flagged)"), "B STORE")
    seen = read_until(a, rb"FETCH", "FlagChange")
    check(b"\\Flagged" in seen[-1], f"flags: {seen}")
    ok(b.store("1", "+FLAGS", "(\\Deleted)"), "B STORE deleted")
    ok(b.expunge(), "B EXPUNGE")
    read_until(a, rb"\* 1 EXPUNGE", "MessageExpunge")
    # NOTIFY NONE (§3.2): quiet again.
    ok(a._simple_command("NOTIFY", "NONE"), "NOTIFY NONE")
    ok(b.append("Lists/rust", None, None, b"Subject: unheard\r\n\r\nx\r\n"), "APPEND after NONE")
    ok(a.noop(), "NOOP")
    check("STATUS" not in a.untagged_responses, f"no STATUS after NONE: {a.untagged_responses}")
    # Unknown and unsupported events.
    typ, data = a._simple_command("NOTIFY", "SET", "(personal (AnnotationChange))")
    check(typ == "NO" and b"[BADEVENT (" in data[0], f"BADEVENT: {typ} {data}")
    a.logout(); b.logout()


{"login": case_login, "mailboxes": case_mailboxes, "messages": case_messages,
 "idle": case_idle, "two_sessions": case_two_sessions, "extensions": case_extensions,
 "notify": case_notify}[CASE]()
print("ok")
