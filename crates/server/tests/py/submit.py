"""Submits messages with Python's smtplib (RFC 6409 submission) and prints the
outcome as JSON.

usage: submit.py PORT MODE USER PASSWORD FROM TO[,TO...] [options]
  MODE: starttls (submission port), smtps (implicit TLS), plain (no TLS)
  USER "-": do not authenticate
  --count N          messages over the one session (default 1), subject "SUBJECT n"
  --subject S        subject prefix (default "outbound test")
  --rcpt-opt X       an RCPT parameter for every recipient (repeatable), e.g. NOTIFY=SUCCESS
  --mail-opt X       a MAIL parameter (repeatable), e.g. RET=HDRS, ENVID=abc
  --header-from A    the From: header (default FROM)
  --eight-bit        a UTF-8 body sent as 8bit (add --mail-opt BODY=8BITMIME)
Prints {"sent": n, "error": null|[code, text, stage], "refused": {...}, "ehlo": [...], "auth": [code, text]|null}.
"""
import json, smtplib, ssl, sys
from email.message import EmailMessage
from email.utils import make_msgid, formatdate

args = sys.argv[1:]
port, mode, user, password, sender, rcpts = int(args[0]), args[1], args[2], args[3], args[4], args[5].split(",")
opts = args[6:]
def opt(name, default=None):
    return opts[opts.index(name) + 1] if name in opts else default
def multi(name):
    return [opts[i + 1] for i, o in enumerate(opts) if o == name]

count = int(opt("--count", "1"))
subject = opt("--subject", "outbound test")
rcpt_opts = multi("--rcpt-opt")
mail_opts = multi("--mail-opt")
header_from = opt("--header-from", sender)
eight_bit = "--eight-bit" in opts

ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE

out = {"sent": 0, "error": None, "refused": {}, "auth": None}
if mode == "smtps":
    s = smtplib.SMTP_SSL("127.0.0.1", port, timeout=120, context=ctx)
else:
    s = smtplib.SMTP("127.0.0.1", port, timeout=120)
try:
    s.ehlo("client.test")
    if mode == "starttls":
        s.starttls(context=ctx)
        s.ehlo("client.test")
    out["ehlo"] = [f"{k} {v}".strip() for k, v in s.esmtp_features.items()]
    if user != "-":
        try:
            code, text = s.login(user, password)
            out["auth"] = [code, text.decode()]
        except smtplib.SMTPAuthenticationError as e:
            out["auth"] = [e.smtp_code, e.smtp_error.decode()]
            raise
    for i in range(count):
        m = EmailMessage()
        m["From"] = header_from
        m["To"] = ", ".join(rcpts)
        m["Subject"] = f"{subject} {i + 1}"
        m["Message-ID"] = make_msgid(domain="client.test")
        m["Date"] = formatdate(localtime=True)
        if eight_bit:
            m.set_content(f"Grüße, message {i + 1} of {count}: 日本語.\n", cte="8bit")
        else:
            m.set_content(f"Message {i + 1} of {count}.\n.leading dot line\nThe end.\n")
        refused = s.send_message(m, from_addr=sender, to_addrs=rcpts,
                                 mail_options=mail_opts, rcpt_options=rcpt_opts)
        out["refused"].update({k: [v[0], v[1].decode()] for k, v in refused.items()})
        out["sent"] += 1
    s.quit()
except smtplib.SMTPSenderRefused as e:
    out["error"] = [e.smtp_code, e.smtp_error.decode(), "mail"]
except smtplib.SMTPRecipientsRefused as e:
    out["error"] = [0, json.dumps({k: [v[0], v[1].decode()] for k, v in e.recipients.items()}), "rcpt"]
except smtplib.SMTPAuthenticationError as e:
    out["error"] = [e.smtp_code, e.smtp_error.decode(), "auth"]
except smtplib.SMTPNotSupportedError as e:
    out["error"] = [0, str(e), "auth-not-offered"]
except smtplib.SMTPResponseException as e:
    out["error"] = [e.smtp_code, e.smtp_error.decode(), "other"]
print(json.dumps(out))
