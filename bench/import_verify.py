#!/usr/bin/env python3
"""Checks an imported mbox message by message against what an IMAP server
serves, for bench/import.sh.

usage: import_verify.py MBOX HOST PORT USER PASS [MAILBOX=INBOX]

The mbox is read here on its own terms (RFC 4155 and the mboxrd quoting
of ../shared/bench/gen_mbox.py), not with Postgate's reader: a message
runs from its From_ line to the next From_ line that follows an empty
line; that empty line is the separator (so is one at the end of the
file, as RFC 4155's writers leave it and Python's mailbox module reads it); `>From ` (and `>>From `...) loses
one `>`; lines end in CRLF on the IMAP side (RFC 5322 §2.1); the mail-store
state fields Status, X-Status and X-Keywords are taken out of the header
and become flags and keywords (R: \\Seen; X-Status A/F/T/D: \\Answered,
\\Flagged, \\Draft, \\Deleted); the From_ line's date is the INTERNALDATE.

Streamed on both sides (the mbox line by line, IMAP FETCH in batches by
sequence number over IMAPS), so a 2.7 GB mbox is checked in bounded
memory. Prints one line `verified=N mismatches=M`; the first mismatches
are described on stderr. Exit 1 on any mismatch or count difference.
"""
import calendar, hashlib, imaplib, re, ssl, sys, time

BATCH = 500
STATE_FIELDS = (b"status", b"x-status", b"x-keywords")
X_STATUS = {"A": "\\Answered", "F": "\\Flagged", "T": "\\Draft", "D": "\\Deleted"}
FROM_QUOTED = re.compile(rb"^>(>*From )")


def mbox_messages(path):
    """Yields (raw_lines_without_from_line, from_line) per message."""
    with open(path, "rb", buffering=1 << 20) as f:
        cur, from_line, prev_empty = None, None, True
        for line in f:
            if line.startswith(b"From ") and prev_empty:
                if cur is not None:
                    if cur and cur[-1] in (b"\n", b"\r\n"):
                        cur.pop()  # the separator line
                    yield cur, from_line
                cur, from_line = [], line
                prev_empty = False
                continue
            prev_empty = line in (b"\n", b"\r\n")
            cur.append(line)
        if cur is not None:
            if cur and cur[-1] in (b"\n", b"\r\n"):
                cur.pop()  # the last message ends with its separator too
            yield cur, from_line


def expected(lines, from_line):
    """(bytes as stored, flags, internal date) of one mbox message."""
    flags, out, in_header, skipping = set(), [], True, False
    for line in lines:
        body = line.rstrip(b"\r\n")
        if in_header:
            if body == b"":
                in_header = False
            elif body[:1] in (b" ", b"\t"):
                if skipping:
                    continue
            else:
                name = body.split(b":", 1)[0].strip().lower()
                skipping = name in STATE_FIELDS
                if skipping:
                    value = body.split(b":", 1)[1].decode().strip()
                    if name == b"status" and "R" in value:
                        flags.add("\\Seen")
                    elif name == b"x-status":
                        flags.update(X_STATUS[c] for c in value if c in X_STATUS)
                    elif name == b"x-keywords":
                        flags.update(k for k in re.split(r"[\s,]+", value) if k)
                    continue
        else:
            body = FROM_QUOTED.sub(rb"\1", body)
        out.append(body + (b"\r\n" if line.endswith(b"\n") else b""))
    date = from_line.decode().rstrip().split(" ", 2)[2]
    when = calendar.timegm(time.strptime(date, "%a %b %d %H:%M:%S %Y"))
    return b"".join(out), flags, when


def served(m, lo, hi):
    """{seq: (bytes, flags, internal date)} for sequence numbers lo..hi."""
    typ, data = m.fetch(f"{lo}:{hi}", "(FLAGS INTERNALDATE BODY.PEEK[])")
    if typ != "OK":
        sys.exit(f"FETCH {lo}:{hi}: {typ} {data}")
    got = {}
    for part in data:
        if not isinstance(part, tuple):
            continue
        meta = part[0].decode()
        seq = int(meta.split(" ", 1)[0])
        fl = re.search(r"FLAGS \(([^)]*)\)", meta).group(1).split()
        fl = {f for f in fl if f.lower() != "\\recent"}
        date = re.search(r'INTERNALDATE "([^"]*)"', meta).group(1)
        when = int(time.mktime(imaplib.Internaldate2tuple(b'INTERNALDATE "' + date.encode() + b'"')))
        got[seq] = (part[1], fl, when)
    return got


def main():
    mbox, host, port, user, password = sys.argv[1:6]
    mailbox = sys.argv[6] if len(sys.argv) > 6 else "INBOX"
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    m = imaplib.IMAP4_SSL(host, int(port), ssl_context=ctx)
    m.login(user, password)
    typ, data = m.select(f'"{mailbox}"', readonly=True)
    if typ != "OK":
        sys.exit(f"EXAMINE {mailbox}: {typ} {data}")
    exists = int(data[0])
    checked = mismatches = 0
    batch = {}
    for lines, from_line in mbox_messages(mbox):
        checked += 1
        if checked > exists:
            continue
        if checked not in batch:
            batch = served(m, checked, min(checked + BATCH - 1, exists))
        want = expected(lines, from_line)
        have = batch.pop(checked, None)
        problems = []
        if have is None:
            problems.append("not fetched")
        else:
            if have[0] != want[0]:
                problems.append(
                    f"bytes: {len(have[0])} octets sha256 {hashlib.sha256(have[0]).hexdigest()[:16]},"
                    f" expected {len(want[0])} octets sha256 {hashlib.sha256(want[0]).hexdigest()[:16]}"
                )
            if have[1] != want[1]:
                problems.append(f"flags {sorted(have[1])}, expected {sorted(want[1])}")
            if have[2] != want[2]:
                problems.append(f"internal date {have[2]}, expected {want[2]}")
        if problems:
            mismatches += 1
            if mismatches <= 10:
                print(f"message {checked}: " + "; ".join(problems), file=sys.stderr)
    m.logout()
    if checked != exists:
        print(f"the mbox holds {checked} messages, the mailbox {exists}", file=sys.stderr)
        mismatches += abs(checked - exists)
    print(f"verified={min(checked, exists)} mismatches={mismatches}")
    sys.exit(1 if mismatches else 0)


if __name__ == "__main__":
    main()
