"""Parses a message with Python's email package and prints what a test checks,
as JSON.

usage: inspect_mail.py FILE
Prints {"subject", "from", "to", "cc", "bcc", "message_id", "importance",
"content_type", "text", "html", "attachments": [{"filename", "content_type",
"data_hex"}], "seven_bit": bool, "max_line": n, "defects": [...],
"report": null | {"report_type", "envelope_id", "reporting_mta",
"recipients": [{"final_recipient", "original_recipient", "action", "status",
"remote_mta", "diagnostic"}], "returned": "headers"|"full"|null}}.
"""
import json, sys
from email import policy
from email.parser import BytesParser

raw = open(sys.argv[1], "rb").read()
msg = BytesParser(policy=policy.default).parsebytes(raw)

out = {
    "subject": msg["Subject"],
    "from": msg["From"],
    "to": msg["To"],
    "cc": msg["Cc"],
    "bcc": msg["Bcc"],
    "message_id": msg["Message-ID"],
    "importance": msg["Importance"],
    "x_priority": msg["X-Priority"],
    "content_type": msg.get_content_type(),
    "text": None,
    "html": None,
    "attachments": [],
    "seven_bit": all(b < 128 for b in raw),
    "max_line": max((len(l) for l in raw.split(b"\r\n")), default=0),
    "defects": [str(d) for d in msg.defects],
    "report": None,
}

if msg.get_content_type() == "multipart/report":
    report = {
        "report_type": msg.get_param("report-type"),
        "recipients": [],
        "returned": None,
    }
    for part in msg.iter_parts():
        ct = part.get_content_type()
        if ct == "message/delivery-status":
            # The payload is a list of header blocks: per-message, then one per recipient.
            blocks = part.get_payload()
            first = blocks[0]
            report["envelope_id"] = first["Original-Envelope-Id"]
            report["reporting_mta"] = first["Reporting-MTA"]
            for b in blocks[1:]:
                report["recipients"].append({
                    "final_recipient": b["Final-Recipient"],
                    "original_recipient": b["Original-Recipient"],
                    "action": b["Action"],
                    "status": b["Status"],
                    "remote_mta": b["Remote-MTA"],
                    "diagnostic": b["Diagnostic-Code"],
                })
        elif ct == "text/rfc822-headers":
            report["returned"] = "headers"
        elif ct == "message/rfc822":
            report["returned"] = "full"
    out["report"] = report
else:
    body = msg.get_body(preferencelist=("plain",))
    out["text"] = body.get_content() if body else None
    body = msg.get_body(preferencelist=("html",))
    out["html"] = body.get_content() if body else None
    for a in msg.iter_attachments():
        out["attachments"].append({
            "filename": a.get_filename(),
            "content_type": a.get_content_type(),
            "data_hex": a.get_payload(decode=True).hex(),
        })
print(json.dumps(out))
