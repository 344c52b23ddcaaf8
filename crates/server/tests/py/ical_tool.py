"""An outside calendar system, in Python's icalendar package (not ours):
builds iMIP messages (RFC 6047) and sends them with smtplib, and reads the
iMIP messages Postgate sends.

usage:
  ical_tool.py send PORT SPEC.json
      SPEC: {"from": "olga@remote.test", "to": ["alice@example.org"],
             "method": "REQUEST", "prodid": "...", "subject": "...",
             "attach": true, "report": false, "no_method_in_body": false,
             "components": [{"type": "VEVENT"|"VTODO"|"VFREEBUSY", "uid": "...",
                 "sequence": 0, "dtstamp": "2026-01-01T00:00:00Z",
                 "dtstart": "2026-03-10T09:00:00" (+ "tzid": "Europe/Berlin") | "...Z" | "2026-03-10" (a date),
                 "dtend": ..., "due": ..., "recurrence_id": ..., "rrule": "FREQ=WEEKLY;COUNT=6",
                 "summary": "...", "location": "...", "status": "...", "comment": "...",
                 "organizer": {"email": "...", "cn": "..."},
                 "attendees": [{"email": "...", "cn": "...", "partstat": "...", "rsvp": true, "role": "..."}],
                 "percent_complete": 100, "completed": "...Z"}]}
      prints {"sent": true} or {"sent": false, "error": [code, text]}
  ical_tool.py inspect MESSAGE.eml
      prints {"subject", "from", "to", "content_types", "attachments": [names],
              "calendars": [{"content_type_method", "method", "prodid", "roundtrip": bool,
                             "timezones": [tzid], "components": [...]}]}
"""
import datetime, json, smtplib, sys
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import make_msgid, formatdate
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, FreeBusy, Todo, vCalAddress, vRecur


def when(value, tzid=None):
    if len(value) == 10:
        return datetime.date.fromisoformat(value)
    if value.endswith("Z"):
        return datetime.datetime.fromisoformat(value[:-1]).replace(tzinfo=datetime.timezone.utc)
    dt = datetime.datetime.fromisoformat(value)
    if tzid:
        dt = dt.replace(tzinfo=ZoneInfo(tzid))
    return dt


def address(p):
    a = vCalAddress("mailto:" + p["email"])
    for key, param in (("cn", "CN"), ("partstat", "PARTSTAT"), ("role", "ROLE")):
        if key in p:
            a.params[param] = p[key]
    if "rsvp" in p:
        a.params["RSVP"] = "TRUE" if p["rsvp"] else "FALSE"
    return a


def build(spec):
    cal = Calendar()
    cal.add("prodid", spec.get("prodid", "-//Python icalendar//Outside//EN"))
    cal.add("version", "2.0")
    if not spec.get("no_method_in_body"):
        cal.add("method", spec["method"])
    for c in spec["components"]:
        comp = {"VEVENT": Event, "VTODO": Todo, "VFREEBUSY": FreeBusy}[c["type"]]()
        if "uid" in c:
            comp.add("uid", c["uid"])
        comp.add("dtstamp", when(c.get("dtstamp", "2026-01-01T00:00:00Z")))
        if "sequence" in c:
            comp.add("sequence", c["sequence"])
        for key in ("dtstart", "dtend", "due", "recurrence_id", "completed"):
            if key in c:
                comp.add(key.replace("_", "-"), when(c[key], c.get("tzid")))
        for key in ("summary", "location", "status", "comment", "description"):
            if key in c:
                comp.add(key, c[key])
        if "percent_complete" in c:
            comp.add("percent-complete", c["percent_complete"])
        if "rrule" in c:
            comp.add("rrule", vRecur.from_ical(c["rrule"]))
        if "organizer" in c:
            comp.add("organizer", address(c["organizer"]))
        for a in c.get("attendees", []):
            comp.add("attendee", address(a), encode=0)
        cal.add_component(comp)
    if hasattr(cal, "add_missing_timezones"):
        cal.add_missing_timezones()
    return cal.to_ical()


def send(port, spec):
    ics = build(spec)
    msg = EmailMessage()
    msg["From"] = spec["from"]
    msg["To"] = ", ".join(spec["to"])
    msg["Subject"] = spec.get("subject", "Invitation")
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = make_msgid(domain="remote.test")
    method = spec["method"]
    if spec.get("report"):
        # A bounce quoting the invitation (RFC 3464): must not be applied.
        from email.mime.multipart import MIMEMultipart
        from email.mime.text import MIMEText
        report = MIMEMultipart("report", report_type="delivery-status")
        for k in ("From", "To", "Subject", "Date", "Message-ID"):
            report[k] = msg[k]
        report.attach(MIMEText("Delivery failed.\n"))
        from email.message import Message
        status = Message()
        status["Content-Type"] = "message/delivery-status"
        per_msg, per_rcpt = Message(), Message()
        per_msg["Reporting-MTA"] = "dns; mx.remote.test"
        per_rcpt["Final-Recipient"] = "rfc822; x@remote.test"
        per_rcpt["Action"] = "failed"
        per_rcpt["Status"] = "5.1.1"
        status.set_payload([per_msg, per_rcpt])
        report.attach(status)
        report.attach(MIMEText(ics.decode(), "calendar"))
        report.get_payload()[-1].set_param("method", method)
        msg = report
    else:
        msg.set_content("You are invited.\n")
        params = {} if spec.get("no_method_in_body") else {"method": method}
        msg.add_alternative(ics.decode(), subtype="calendar", params=params)
        if spec.get("attach", True):
            msg.make_mixed()
            msg.add_attachment(ics, maintype="application", subtype="ics", filename="invite.ics")
    s = smtplib.SMTP("127.0.0.1", port, timeout=60)
    try:
        s.ehlo("remote.test")
        s.send_message(msg, from_addr=spec.get("mail_from", spec["from"]), to_addrs=spec["to"])
        return {"sent": True}
    except smtplib.SMTPResponseException as e:
        return {"sent": False, "error": [e.smtp_code, e.smtp_error.decode(errors="replace")]}
    except smtplib.SMTPRecipientsRefused as e:
        return {"sent": False, "error": [550, str(e.recipients)]}
    finally:
        try:
            s.quit()
        except Exception:
            pass


def text(v):
    return None if v is None else str(v)


def utc(v):
    if v is None:
        return None
    d = v.dt
    if isinstance(d, datetime.datetime):
        if d.tzinfo is None:
            return d.isoformat()
        return d.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return d.isoformat()


def people(comp):
    out = []
    atts = comp.get("attendee")
    if atts is None:
        return out
    if not isinstance(atts, list):
        atts = [atts]
    for a in atts:
        out.append({
            "email": str(a).lower().replace("mailto:", ""),
            "partstat": a.params.get("PARTSTAT"),
            "role": a.params.get("ROLE"),
            "rsvp": a.params.get("RSVP"),
            "cn": a.params.get("CN"),
        })
    return out


def inspect(path):
    raw = open(path, "rb").read()
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    out = {"subject": msg["Subject"], "from": msg["From"], "to": msg["To"],
           "content_types": [], "attachments": [], "calendars": []}
    for part in msg.walk():
        out["content_types"].append(part.get_content_type())
        if part.get_filename():
            out["attachments"].append(part.get_filename())
        if part.get_content_type() not in ("text/calendar", "application/ics"):
            continue
        body = part.get_content()
        if isinstance(body, bytes):
            body = body.decode()
        cal = Calendar.from_ical(body)
        again = Calendar.from_ical(cal.to_ical())
        info = {
            "part": part.get_content_type(),
            "content_type_method": part.get_param("method"),
            "method": text(cal.get("method")),
            "prodid": text(cal.get("prodid")),
            "roundtrip": again.to_ical() == cal.to_ical(),
            "timezones": [text(tz.get("tzid")) for tz in cal.walk("VTIMEZONE")],
            "components": [],
        }
        for comp in cal.walk():
            if comp.name not in ("VEVENT", "VTODO", "VFREEBUSY"):
                continue
            c = {"type": comp.name}
            for key in ("uid", "summary", "location", "status", "comment", "description"):
                c[key] = text(comp.get(key))
            c["sequence"] = int(comp.get("sequence")) if comp.get("sequence") is not None else None
            for key in ("dtstart", "dtend", "due", "dtstamp", "recurrence-id", "completed"):
                c[key.replace("-", "_")] = utc(comp.get(key))
            start = comp.get("dtstart")
            c["tzid"] = start.params.get("TZID") if start is not None else None
            c["rrule"] = comp.get("rrule").to_ical().decode() if comp.get("rrule") else None
            org = comp.get("organizer")
            c["organizer"] = str(org).lower().replace("mailto:", "") if org else None
            c["attendees"] = people(comp)
            c["percent_complete"] = int(comp.get("percent-complete")) if comp.get("percent-complete") is not None else None
            fb = comp.get("freebusy")
            if fb is not None:
                fbs = fb if isinstance(fb, list) else [fb]
                c["freebusy"] = []
                for line in fbs:
                    kind = line.params.get("FBTYPE", "BUSY")
                    periods = getattr(line, "dts", None) or [line]
                    for p in periods:
                        s, e = p.dt
                        if not isinstance(e, datetime.datetime):
                            e = s + e
                        c["freebusy"].append([s.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                                              e.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                                              kind])
            info["components"].append(c)
        out["calendars"].append(info)
    return out


if sys.argv[1] == "send":
    print(json.dumps(send(int(sys.argv[2]), json.load(open(sys.argv[3])))))
else:
    print(json.dumps(inspect(sys.argv[2])))
