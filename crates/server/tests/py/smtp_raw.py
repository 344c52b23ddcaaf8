"""Sends one raw message (read from FILE) with Python's smtplib, from an
optional local source address, and prints each step's reply as JSON.

usage: smtp_raw.py PORT MAIL_FROM RCPT FILE [--helo NAME] [--source IP]
Prints {"mail": [code, text], "rcpt": [code, text] | null, "data": [code, text] | null}.
"""
import json, smtplib, sys

args = sys.argv[1:]
port, sender, rcpt, path = int(args[0]), args[1], args[2], args[3]
opts = args[4:]
def opt(name, default=None):
    return opts[opts.index(name) + 1] if name in opts else default

with open(path, "rb") as f:
    message = f.read()
source = opt("--source")
s = smtplib.SMTP("127.0.0.1", port, timeout=60,
                 source_address=(source, 0) if source else None)
out = {"mail": None, "rcpt": None, "data": None}
try:
    s.ehlo(opt("--helo", "client.test"))
    code, text = s.mail(sender)
    out["mail"] = [code, text.decode(errors="replace")]
    if code == 250:
        code, text = s.rcpt(rcpt)
        out["rcpt"] = [code, text.decode(errors="replace")]
        if code == 250:
            code, text = s.data(message)
            out["data"] = [code, text.decode(errors="replace")]
    try:
        s.quit()
    except smtplib.SMTPException:
        pass
except smtplib.SMTPDataError as e:
    out["data"] = [e.smtp_code, e.smtp_error.decode(errors="replace")]
except smtplib.SMTPServerDisconnected as e:
    out["error"] = str(e)
print(json.dumps(out))
