"""Helpers for bench/calendar.sh.

  calendar_tool.py templates DIR SIZE
      writes DIR/imip.eml (an invitation as Google sends it: multipart/mixed
      of text, HTML, text/calendar;method=REQUEST and invite.ics, its UID
      "{N}"-numbered) and DIR/plain.eml (plain text mail padded to the same
      size, "{N}" in its Message-ID), both SIZE bytes or just over.
  calendar_tool.py populate OUT.ics [EVENTS=10000] [SERIES=500] [SEED=7]
      a calendar of EVENTS single appointments over 2027 and SERIES
      recurring series (daily, weekly, monthly, yearly; some with COUNT or
      UNTIL, some without end; some with EXDATEs and moved instances),
      in Europe/Berlin, America/New_York and UTC.
  calendar_tool.py query PORT USER PASS [QUERIES=1000] [SEED=9]
      GET /api/v1/calendar?from&to over HTTPS keep-alive, for random spans of
      a day, a week and a month in 2027; prints one line with p50/p99/max
      latency (ms) and the mean number of occurrences returned.
"""
import base64, datetime, http.client, json, os, random, ssl, statistics, sys, time

def templates(d, size):
    ics = """BEGIN:VCALENDAR\r
PRODID:-//Google Inc//Google Calendar 70.9054//EN\r
VERSION:2.0\r
CALSCALE:GREGORIAN\r
METHOD:REQUEST\r
BEGIN:VTIMEZONE\r
TZID:Europe/Berlin\r
BEGIN:DAYLIGHT\r
TZOFFSETFROM:+0100\r
TZOFFSETTO:+0200\r
TZNAME:CEST\r
DTSTART:19700329T020000\r
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r
END:DAYLIGHT\r
BEGIN:STANDARD\r
TZOFFSETFROM:+0200\r
TZOFFSETTO:+0100\r
TZNAME:CET\r
DTSTART:19701025T030000\r
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r
END:STANDARD\r
END:VTIMEZONE\r
BEGIN:VEVENT\r
DTSTART;TZID=Europe/Berlin:20270310T090000\r
DTEND;TZID=Europe/Berlin:20270310T100000\r
DTSTAMP:20261101T120000Z\r
ORGANIZER;CN=Olga Organizer:mailto:olga@remote.test\r
UID:bench-{N}@google.com\r
ATTENDEE;CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=\r
 TRUE;CN=sink@example.test;X-NUM-GUESTS=0:mailto:sink@example.test\r
ATTENDEE;CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED;RSVP=TRUE\r
 ;CN=Olga Organizer;X-NUM-GUESTS=0:mailto:olga@remote.test\r
CREATED:20261101T120000Z\r
DESCRIPTION:Quarterly planning with the whole team.\r
LAST-MODIFIED:20261101T120000Z\r
LOCATION:Room 4\r
SEQUENCE:0\r
STATUS:CONFIRMED\r
SUMMARY:Quarterly planning {N}\r
TRANSP:OPAQUE\r
BEGIN:VALARM\r
ACTION:DISPLAY\r
DESCRIPTION:This is an event reminder\r
TRIGGER:-P0DT0H10M0S\r
END:VALARM\r
END:VEVENT\r
END:VCALENDAR\r
"""
    head = ("From: Olga Organizer <olga@remote.test>\r\nTo: sink@example.test\r\n"
            "Subject: Invitation: Quarterly planning {N}\r\nMessage-ID: <bench-{N}@remote.test>\r\n"
            "Date: Mon, 01 Nov 2026 12:00:00 +0000\r\nMIME-Version: 1.0\r\n")
    text = "You have been invited to Quarterly planning.\r\nWhen: Wednesday 10 March 2027 09:00 - 10:00 (CET)\r\n"
    imip = (head + 'Content-Type: multipart/mixed; boundary="m"\r\n\r\n--m\r\n'
            'Content-Type: multipart/alternative; boundary="a"\r\n\r\n'
            '--a\r\nContent-Type: text/plain; charset="UTF-8"\r\n\r\n' + text +
            '--a\r\nContent-Type: text/html; charset="UTF-8"\r\n\r\n<p>' + text + '</p>\r\n'
            '--a\r\nContent-Type: text/calendar; charset="UTF-8"; method=REQUEST\r\n\r\n' + ics +
            '--a--\r\n\r\n--m\r\nContent-Type: application/ics; name="invite.ics"\r\n'
            # 7bit, not base64 as Google writes it, so that the load generator's
            # {N} numbering reaches the attachment's UID too.
            'Content-Disposition: attachment; filename="invite.ics"\r\nContent-Transfer-Encoding: 7bit\r\n\r\n'
            + ics + '--m--\r\n')
    pad = max(0, size - len(imip))
    imip = imip.replace("--m--\r\n", "--m--\r\n" + ("x" * 76 + "\r\n") * (pad // 78))
    plain_head = head.replace("Invitation: ", "")
    plain_body = "Plain mail of the same size.\r\n"
    filler = max(0, len(imip) - len(plain_head) - len('Content-Type: text/plain\r\n\r\n') - len(plain_body))
    plain = (plain_head + 'Content-Type: text/plain\r\n\r\n' + plain_body +
             ("y" * 76 + "\r\n") * (filler // 78) + "y" * max(0, filler % 78 - 2) + "\r\n")
    open(f"{d}/imip.eml", "w").write(imip)
    open(f"{d}/plain.eml", "w").write(plain)
    print(f"templates imip_bytes={len(imip)} plain_bytes={len(plain)}")

def populate(out, events=10000, series=500, seed=7):
    rnd = random.Random(seed)
    zones = ["Europe/Berlin", "America/New_York", "UTC"]
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Postgate bench//EN"]
    base = datetime.datetime(2027, 1, 1, 8, 0)
    for i in range(events):
        start = base + datetime.timedelta(days=rnd.randrange(365), hours=rnd.randrange(10), minutes=rnd.choice([0, 30]))
        z = rnd.choice(zones)
        fmt = "%Y%m%dT%H%M%S"
        tz = "" if z == "UTC" else f";TZID={z}"
        zz = "Z" if z == "UTC" else ""
        lines += ["BEGIN:VEVENT", f"UID:single-{i}@bench", "DTSTAMP:20261101T000000Z",
                  f"DTSTART{tz}:{start.strftime(fmt)}{zz}",
                  f"DTEND{tz}:{(start + datetime.timedelta(minutes=rnd.choice([30, 60, 90]))).strftime(fmt)}{zz}",
                  f"SUMMARY:Meeting {i}", "ORGANIZER:mailto:sink@example.test",
                  "ATTENDEE;PARTSTAT=ACCEPTED:mailto:sink@example.test",
                  f"ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:p{i % 97}@remote.test", "END:VEVENT"]
    # The series a busy office calendar holds, by share: most weekly or
    # every other week, some monthly, a few yearly, and daily ones with an end
    # (a course, a project phase) or on weekdays (a stand-up).
    rules = (["FREQ=WEEKLY"] * 30 + ["FREQ=WEEKLY;BYDAY=TU,TH"] * 10 + ["FREQ=WEEKLY;INTERVAL=2"] * 15
             + ["FREQ=MONTHLY;BYDAY=2TH"] * 12 + ["FREQ=MONTHLY;BYMONTHDAY=15"] * 5
             + ["FREQ=YEARLY"] * 8 + ["FREQ=DAILY;COUNT=20"] * 5 + ["FREQ=WEEKLY;UNTIL=20271231T000000Z"] * 7
             + ["FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"] * 3 + ["FREQ=DAILY"] * 5)
    for i in range(series):
        # Series that began up to five years ago: expansion must not walk them from the start.
        start = datetime.datetime(2022 + rnd.randrange(6), 1 + rnd.randrange(12), 1 + rnd.randrange(28), 9 + rnd.randrange(8), 0)
        z = rnd.choice(zones)
        tz = "" if z == "UTC" else f";TZID={z}"
        zz = "Z" if z == "UTC" else ""
        fmt = "%Y%m%dT%H%M%S"
        rule = rnd.choice(rules)
        lines += ["BEGIN:VEVENT", f"UID:series-{i}@bench", "DTSTAMP:20261101T000000Z",
                  f"DTSTART{tz}:{start.strftime(fmt)}{zz}",
                  f"DTEND{tz}:{(start + datetime.timedelta(hours=1)).strftime(fmt)}{zz}",
                  f"RRULE:{rule}", f"SUMMARY:Series {i}"]
        if i % 5 == 0:
            ex = start + datetime.timedelta(days=7 * (1 + rnd.randrange(20)))
            lines.append(f"EXDATE{tz}:{ex.strftime(fmt)}{zz}")
        lines.append("END:VEVENT")
        if i % 10 == 0 and "FREQ=WEEKLY" in rule:
            rid = start + datetime.timedelta(days=28)
            lines += ["BEGIN:VEVENT", f"UID:series-{i}@bench", "DTSTAMP:20261101T000000Z",
                      f"RECURRENCE-ID{tz}:{rid.strftime(fmt)}{zz}",
                      f"DTSTART{tz}:{(rid + datetime.timedelta(hours=2)).strftime(fmt)}{zz}",
                      f"DTEND{tz}:{(rid + datetime.timedelta(hours=3)).strftime(fmt)}{zz}",
                      f"SUMMARY:Series {i} (moved)", "END:VEVENT"]
    lines.append("END:VCALENDAR")
    open(out, "w").write("\r\n".join(lines) + "\r\n")
    print(f"populate events={events} series={series}")

def query(port, user, password, n=1000, seed=9):
    rnd = random.Random(seed)
    ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=60)
    auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    spans = {"day": 1, "week": 7, "month": 31}
    lat = {k: [] for k in spans}
    found = {k: [] for k in spans}
    t_end = time.time() + 300
    for i in range(n):
        if time.time() > t_end:
            break
        name = os.environ.get("SPAN") or list(spans)[i % 3]
        start = datetime.datetime(2027, 1, 1) + datetime.timedelta(days=rnd.randrange(330))
        end = start + datetime.timedelta(days=spans[name])
        path = f"/api/v1/calendar?from={start.strftime('%Y-%m-%dT%H:%M:%SZ')}&to={end.strftime('%Y-%m-%dT%H:%M:%SZ')}"
        t0 = time.perf_counter()
        conn.request("GET", path, headers={"Authorization": auth})
        r = conn.getresponse()
        body = r.read()
        lat[name].append((time.perf_counter() - t0) * 1000)
        if r.status != 200:
            print(f"HTTP {r.status}: {body[:200]}", file=sys.stderr); sys.exit(1)
        found[name].append(len(json.loads(body)))
    for name in spans:
        if not lat[name]:
            continue
        l = sorted(lat[name])
        q = lambda p: l[min(len(l) - 1, int(p * len(l)))]
        print(f"calendar_range span={name} queries={len(l)} p50_ms={q(0.5):.2f} p99_ms={q(0.99):.2f} "
              f"max_ms={l[-1]:.2f} mean_occurrences={statistics.mean(found[name]):.1f}")

cmd = sys.argv[1]
if cmd == "templates":
    templates(sys.argv[2], int(sys.argv[3]))
elif cmd == "populate":
    populate(sys.argv[2], *[int(a) for a in sys.argv[3:]])
else:
    query(int(sys.argv[2]), sys.argv[3], sys.argv[4], *[int(a) for a in sys.argv[5:]])
