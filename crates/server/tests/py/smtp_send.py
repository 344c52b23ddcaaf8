"""Sends one message with Python's smtplib and prints the outcome as JSON.

usage: smtp_send.py PORT FROM TO[,TO...] [--starttls] [--size N] [--utf8] [--header H:V] [--subject S]
Prints {"refused": {rcpt: [code, text]}, "error": null|[code, text], "ehlo": [...]}.
"""
import json, smtplib, ssl, sys
from email.message import EmailMessage

args = sys.argv[1:]
port, sender, rcpts = int(args[0]), args[1], args[2].split(",")
opts = args[3:]
def opt(name, default=None):
    return opts[opts.index(name) + 1] if name in opts else default

starttls = "--starttls" in opts
size = int(opt("--size", "0"))
utf8 = "--utf8" in opts
subject = opt("--subject", "test message")
extra = [opts[i + 1] for i, o in enumerate(opts) if o == "--header"]

body_line = "The quick brown fox jumps over the lazy dog 0123456789.\r\n"
if utf8:
    body_line = "Grüße aus Köln, 日本語のテキスト, ünïcödé.\r\n"
body = ""
if size:
    reps = size // len(body_line.encode()) + 1
    body = body_line * reps
else:
    body = body_line
headers = f"From: <{sender}>\r\nTo: {', '.join('<%s>' % r for r in rcpts)}\r\nSubject: {subject}\r\n"
for h in extra:
    headers += h + "\r\n"
msg = (headers + "\r\n" + body).encode("utf-8")

out = {"refused": {}, "error": None}
s = smtplib.SMTP("127.0.0.1", port, timeout=120)
try:
    code, text = s.ehlo("client.test")
    out["ehlo"] = text.decode().split("\n")
    if starttls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s.starttls(context=ctx)
        code, text = s.ehlo("client.test")
        out["ehlo_tls"] = text.decode().split("\n")
    mail_options = ["SMTPUTF8", "BODY=8BITMIME"] if utf8 else []
    try:
        refused = s.sendmail(sender, rcpts, msg, mail_options=mail_options)
        out["refused"] = {k: [v[0], v[1].decode()] for k, v in refused.items()}
    except smtplib.SMTPRecipientsRefused as e:
        out["refused"] = {k: [v[0], v[1].decode()] for k, v in e.recipients.items()}
    except smtplib.SMTPSenderRefused as e:
        out["error"] = [e.smtp_code, e.smtp_error.decode()]
    except smtplib.SMTPDataError as e:
        out["error"] = [e.smtp_code, e.smtp_error.decode()]
    out["noop"] = s.noop()[0]
    s.quit()
except smtplib.SMTPServerDisconnected as e:
    out["error"] = ["disconnected", str(e)]
out["sent_bytes"] = len(msg)
print(json.dumps(out))
