"""Reads or fills a whole IMAP account with Python's imaplib, for the
import and backup tests.

usage:
  PORT "plain:N" connects without TLS.
  mailbox_tool.py dump HOST PORT USER PASS
      prints JSON {mailbox: [{uid, flags, internaldate, size, sha256,
      message_id}]} over IMAPS (any certificate), every selectable
      mailbox, messages in UID order; flags sorted, without \\Recent.
  mailbox_tool.py fill HOST PORT USER PASS SPEC.json
      SPEC: [{mailbox, flags: [..], date: unix seconds, raw_b64}], appended
      in order (mailboxes created first; INBOX exists).
  mailbox_tool.py store HOST PORT USER PASS MAILBOX UIDS FLAGS
      UID STORE UIDS +FLAGS (FLAGS) in MAILBOX.
"""
import base64, datetime, email.parser, hashlib, imaplib, json, re, ssl, sys

CTX = ssl.create_default_context()
CTX.check_hostname = False
CTX.verify_mode = ssl.CERT_NONE


def connect(host, port, user, password):
    if port.startswith("plain:"):  # a peer without TLS (bench/import_dovecot.sh)
        m = imaplib.IMAP4(host, int(port[6:]))
    else:
        m = imaplib.IMAP4_SSL(host, int(port), ssl_context=CTX)
    m.login(user, password)
    return m


def ok(resp, what):
    typ, data = resp
    if typ != "OK":
        sys.exit(f"FAILED: {what}: {typ} {data}")
    return data


LIST_RE = re.compile(rb'\((?P<attrs>[^)]*)\) (?P<delim>"[^"]*"|NIL) (?P<name>.*)$')


def mailboxes(m):
    out = []
    for line in ok(m.list(), "LIST"):
        if isinstance(line, tuple):  # a literal name
            attrs_part, name = line
            mo = LIST_RE.match(attrs_part.rstrip() + b" x")
            name = name
        else:
            mo = LIST_RE.match(line)
            name = mo.group("name")
            if name.startswith(b'"'):
                name = name[1:-1].replace(b'\\"', b'"').replace(b"\\\\", b"\\")
        if b"\\noselect" in mo.group("attrs").lower():
            continue
        out.append(name.decode())
    return sorted(out)


def to_unix(s):
    s = s.strip()
    return int(datetime.datetime.strptime(s, "%d-%b-%Y %H:%M:%S %z").timestamp())


def dump(m):
    result = {}
    for name in mailboxes(m):
        quoted = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        ok(m.select(quoted, readonly=True), f"EXAMINE {name}")
        uids = ok(m.uid("SEARCH", None, "ALL"), "SEARCH")[0].split()
        msgs = []
        for uid in uids:
            data = ok(m.uid("FETCH", uid, "(UID FLAGS INTERNALDATE BODY.PEEK[])"), "FETCH")
            meta, body = None, None
            for part in data:
                if isinstance(part, tuple):
                    meta, body = part[0], part[1]
            meta = meta.decode()
            flags = re.search(r"FLAGS \(([^)]*)\)", meta).group(1).split()
            flags = sorted(f for f in flags if f.lower() != "\\recent")
            date = re.search(r'INTERNALDATE "([^"]*)"', meta).group(1)
            headers = email.parser.BytesHeaderParser().parsebytes(body)
            msgs.append({
                "uid": int(uid),
                "flags": flags,
                "internaldate": to_unix(date),
                "size": len(body),
                "sha256": hashlib.sha256(body).hexdigest(),
                "message_id": (headers.get("Message-ID") or "").strip(),
            })
        result[name] = msgs
        m.close()
    return result


def fill(m, spec):
    have = set(mailboxes(m))
    for entry in spec:
        box = entry["mailbox"]
        if box not in have and box.upper() != "INBOX":
            ok(m.create('"' + box + '"'), f"CREATE {box}")
            have.add(box)
    for entry in spec:
        flags = "(" + " ".join(entry["flags"]) + ")"
        date = imaplib.Time2Internaldate(entry["date"])
        raw = base64.b64decode(entry["raw_b64"])
        ok(m.append('"' + entry["mailbox"] + '"', flags, date, raw), f"APPEND {entry['mailbox']}")


def main():
    cmd, host, port, user, password = sys.argv[1:6]
    m = connect(host, port, user, password)
    if cmd == "dump":
        print(json.dumps(dump(m)))
    elif cmd == "fill":
        with open(sys.argv[6]) as f:
            fill(m, json.load(f))
        print("ok")
    elif cmd == "store":
        box, uids, flags = sys.argv[6:9]
        ok(m.select('"' + box + '"'), f"SELECT {box}")
        ok(m.uid("STORE", uids, "+FLAGS", "(" + flags + ")"), "STORE")
        print("ok")
    m.logout()


if __name__ == "__main__":
    main()
