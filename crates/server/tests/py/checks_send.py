"""One SMTP session from a chosen loopback source address, with Python's
smtplib, reporting every reply as JSON (for the [smtp.checks] tests).

usage: checks_send.py PORT SOURCE_IP HELO[,HELO...] RCPT [COUNT=1]
Connects from SOURCE_IP, says EHLO with each name in turn until one is
accepted, then sends COUNT messages to RCPT (stopping at the first refusal).
Prints {"greeting": [code, text], "ehlo": [[code, text], ...],
        "sent": [[code, text], ...], "refused": null | [stage, code, text]}.
"""
import json, smtplib, sys

port, source, helos, rcpt = int(sys.argv[1]), sys.argv[2], sys.argv[3].split(","), sys.argv[4]
count = int(sys.argv[5]) if len(sys.argv) > 5 else 1
out = {"greeting": None, "ehlo": [], "sent": [], "refused": None}


def text(b):
    return b.decode("utf-8", "replace") if isinstance(b, bytes) else str(b)


s = smtplib.SMTP(source_address=(source, 0), timeout=60)
try:
    code, msg = s.connect("127.0.0.1", port)
    out["greeting"] = [code, text(msg)]
    if code != 220:
        raise StopIteration
    for name in helos:
        code, msg = s.ehlo(name)
        out["ehlo"].append([code, text(msg)])
        if code == 250:
            break
    else:
        raise StopIteration
    for i in range(count):
        body = (
            f"From: <sender@remote.test>\r\nTo: <{rcpt}>\r\nSubject: check {i}\r\n"
            f"Message-ID: <check{i}.{source}@remote.test>\r\n\r\nbody {i}\r\n"
        ).encode()
        code, msg = s.mail("sender@remote.test")
        if code != 250:
            out["refused"] = ["MAIL", code, text(msg)]
            break
        code, msg = s.rcpt(rcpt)
        if code != 250:
            out["refused"] = ["RCPT", code, text(msg)]
            break
        code, msg = s.data(body)
        out["sent"].append([code, text(msg)])
        if code != 250:
            out["refused"] = ["DATA", code, text(msg)]
            break
    s.quit()
except StopIteration:
    pass
except smtplib.SMTPServerDisconnected as e:
    if out["refused"] is None:
        out["refused"] = ["disconnected", 0, str(e)]
finally:
    s.close()
print(json.dumps(out))
