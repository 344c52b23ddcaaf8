//! Appointments and tasks end to end: iMIP (RFC 6047) between the post
//! office and an outside calendar system, played by Python's icalendar
//! package and smtplib (py/ical_tool.py), with the testkit sink standing for
//! the Internet and a loopback DNS for its MX; the client API through curl;
//! the CLI; the Calendar folder over IMAP (imaplib).
use postgate_testkit::dns::Dns;
use postgate_testkit::sink::{Received, Sink, SinkOptions};
use postgate_testkit::{ApiReply, Server, python, python_module};
use serde_json::{Value, json};
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_postgate");
const TOOL: &str = include_str!("py/ical_tool.py");
const ALICE: &str = "alice@example.org:secret";
const BOB: &str = "bob@example.org:secret";

struct World {
    _dns: Dns,
    sink: Sink,
    s: Server,
}

/// remote.test's MX is the sink; alice and bob at example.org (password
/// "secret"). `None` when Python or its icalendar package is missing.
fn world() -> Option<World> {
    if !python_module("icalendar") {
        return None;
    }
    let dns = Dns::start();
    dns.mx("remote.test", 10, "mx.remote.test");
    dns.a("mx.remote.test", Ipv4Addr::new(127, 0, 0, 1));
    let sink = Sink::start(SinkOptions::default());
    let s = Server::start(
        Path::new(BIN),
        &format!(
            "[outbound]\nresolver = \"{}\"\nport = {}\nretry_intervals = [\"1s\"]\nthreads = 4\n",
            dns.addr(),
            sink.port()
        ),
    );
    s.populate(
        "example.org",
        &[
            ("alice@example.org", "Alice Smith"),
            ("bob@example.org", "Bob Jones"),
        ],
    );
    for u in ["alice@example.org", "bob@example.org"] {
        s.set_password(u, "secret");
    }
    Some(World { _dns: dns, sink, s })
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    f()
}

/// The outside system sends an iMIP message into the post office over SMTP.
fn send(w: &World, spec: Value) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spec.json");
    std::fs::write(&path, spec.to_string()).unwrap();
    let (ok, out, err) = python(
        TOOL,
        &[
            "send".into(),
            w.s.addr("smtp").port().to_string(),
            path.display().to_string(),
        ],
    )
    .expect("python3");
    assert!(ok, "ical_tool send failed: {err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["sent"], true, "{r}");
}

/// The outside system reads a message the post office sent.
fn inspect(raw: &[u8]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.eml");
    std::fs::write(&path, raw).unwrap();
    let (ok, out, err) =
        python(TOOL, &["inspect".into(), path.display().to_string()]).expect("python3");
    assert!(ok, "ical_tool inspect failed: {err}");
    serde_json::from_str(&out).unwrap()
}

fn api(w: &World, method: &str, path: &str, user: &str, body: Option<Value>) -> ApiReply {
    w.s.api_json(method, path, user, body.as_ref())
        .expect("curl")
}

fn ok(r: ApiReply) -> Value {
    assert!(
        (200..300).contains(&r.status),
        "HTTP {}: {}",
        r.status,
        r.body
    );
    r.body
}

fn appointments(w: &World, user: &str) -> Vec<Value> {
    ok(api(w, "GET", "/api/v1/calendar", user, None))
        .as_array()
        .unwrap()
        .clone()
}

fn find<'a>(list: &'a [Value], uid: &str) -> Option<&'a Value> {
    list.iter().find(|a| a["uid"] == uid)
}

fn partstat(a: &Value, email: &str) -> Option<String> {
    a["attendees"]
        .as_array()?
        .iter()
        .find(|x| x["email"] == email)
        .and_then(|x| x["partstat"].as_str())
        .map(str::to_string)
}

/// Waits for the sink to hold `n` messages, and reads the last `n` with the
/// outside system (each with its envelope recipients).
fn sent(w: &World, n: usize) -> Vec<(Vec<String>, Value)> {
    let (got, ok) = w.sink.wait_for(Duration::from_secs(30), |r| r.len() >= n);
    assert!(
        ok,
        "the sink got {} of {n} messages; log:\n{}",
        got.len(),
        w.s.log()
    );
    got.iter()
        .map(|r: &Received| {
            (
                r.rcpts.iter().map(|(a, _)| a.clone()).collect(),
                inspect(&r.data),
            )
        })
        .collect()
}

fn only_calendar(m: &Value) -> &Value {
    let cals = m["calendars"].as_array().unwrap();
    assert!(!cals.is_empty(), "no calendar part: {m}");
    &cals[0]
}

fn event(
    uid: &str,
    seq: u32,
    start: &str,
    end: &str,
    organizer: &str,
    attendees: &[(&str, &str)],
) -> Value {
    json!({
        "type": "VEVENT", "uid": uid, "sequence": seq, "dtstart": start, "dtend": end,
        "tzid": "Europe/Berlin", "summary": "Quarterly review", "location": "Room 4",
        "organizer": {"email": organizer, "cn": "Olga Organizer"},
        "attendees": attendees.iter().map(|(e, p)| json!({"email": e, "partstat": p, "rsvp": true, "role": "REQ-PARTICIPANT"})).collect::<Vec<_>>(),
    })
}

fn msg(method: &str, from: &str, to: &str, components: Vec<Value>) -> Value {
    json!({
        "from": from, "to": [to], "method": method,
        "prodid": "-//Google Inc//Google Calendar 70.9054//EN",
        "subject": format!("{method}: Quarterly review"),
        "components": components,
    })
}

#[test]
fn outside_invitation_accepted_through_the_api_then_cancelled() {
    let Some(w) = world() else { return };
    let uid = "olga-0001@remote.test";
    let attendees = [
        ("olga@remote.test", "ACCEPTED"),
        ("alice@example.org", "NEEDS-ACTION"),
    ];
    send(
        &w,
        msg(
            "REQUEST",
            "olga@remote.test",
            "alice@example.org",
            vec![event(
                uid,
                0,
                "2027-03-10T09:00:00",
                "2027-03-10T10:00:00",
                "olga@remote.test",
                &attendees,
            )],
        ),
    );
    // The mail is in the Inbox; the appointment in the Calendar.
    assert_eq!(w.s.items("alice@example.org", "Inbox").len(), 1);
    let cal = w.s.items("alice@example.org", "Calendar");
    assert_eq!(cal.len(), 1, "{cal:?}");
    assert_eq!(cal[0]["kind"], "appointment");
    let list = appointments(&w, ALICE);
    let a = find(&list, uid).expect("the invitation is an appointment");
    assert_eq!(a["summary"], "Quarterly review");
    assert_eq!(a["start"], "2027-03-10T09:00:00+01:00");
    assert_eq!(a["end"], "2027-03-10T10:00:00+01:00");
    assert_eq!(a["time_zone"], "Europe/Berlin");
    assert_eq!(a["organizer"]["email"], "olga@remote.test");
    assert_eq!(
        partstat(a, "alice@example.org").as_deref(),
        Some("NEEDS-ACTION")
    );
    let id = a["id"].as_i64().unwrap();

    // Alice accepts through the API: the organizer gets a REPLY.
    let r = ok(api(
        &w,
        "POST",
        &format!("/api/v1/calendar/{id}/reply"),
        ALICE,
        Some(json!({"partstat": "ACCEPTED", "comment": "See you there"})),
    ));
    assert_eq!(
        partstat(&r, "alice@example.org").as_deref(),
        Some("ACCEPTED")
    );
    let out = sent(&w, 1);
    assert_eq!(out[0].0, vec!["olga@remote.test"]);
    let m = &out[0].1;
    assert!(
        m["subject"]
            .as_str()
            .unwrap()
            .starts_with("Accepted: Quarterly review"),
        "{m}"
    );
    let c = only_calendar(m);
    assert_eq!(c["method"], "REPLY");
    assert_eq!(c["content_type_method"], "REPLY");
    assert_eq!(c["roundtrip"], true);
    let v = &c["components"][0];
    // What Google needs in a REPLY: UID, SEQUENCE, DTSTART, DTSTAMP,
    // ORGANIZER and only the replying attendee.
    assert_eq!(v["uid"], uid);
    assert_eq!(v["sequence"], 0);
    assert_eq!(v["dtstart"], "2027-03-10T08:00:00Z");
    assert!(v["dtstamp"].is_string());
    assert_eq!(v["organizer"], "olga@remote.test");
    assert_eq!(v["attendees"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["attendees"][0]["email"], "alice@example.org");
    assert_eq!(v["attendees"][0]["partstat"], "ACCEPTED");
    assert_eq!(v["comment"], "See you there");

    // A CANCEL from someone else changes nothing; the organizer's does.
    let cancel = |from: &str| {
        let mut e = event(
            uid,
            1,
            "2027-03-10T09:00:00",
            "2027-03-10T10:00:00",
            "olga@remote.test",
            &attendees,
        );
        e["status"] = json!("CANCELLED");
        msg("CANCEL", from, "alice@example.org", vec![e])
    };
    send(&w, cancel("eve@remote.test"));
    let a = appointments(&w, ALICE);
    assert_eq!(
        find(&a, uid).unwrap()["status"],
        Value::Null,
        "a stranger cancelled it"
    );
    send(&w, cancel("olga@remote.test"));
    let a = appointments(&w, ALICE);
    assert_eq!(find(&a, uid).unwrap()["status"], "CANCELLED");
    assert_eq!(w.s.items("alice@example.org", "Inbox").len(), 3);
}

#[test]
fn inside_appointment_with_an_outside_and_an_inside_attendee() {
    let Some(w) = world() else { return };
    let r = ok(api(
        &w,
        "POST",
        "/api/v1/calendar",
        ALICE,
        Some(json!({
            "summary": "Design review: ΩΣ", "start": "2027-05-04T14:00:00+02:00",
            "end": "2027-05-04T15:30:00+02:00", "time_zone": "Europe/Berlin",
            "location": "Room 7", "description": "Agenda:\n1. specs\n2. budget; costs, totals",
            "attendees": ["carol@remote.test", "bob@example.org"],
        })),
    ));
    let (id, uid) = (
        r["id"].as_i64().unwrap(),
        r["uid"].as_str().unwrap().to_string(),
    );

    // The outsider gets a REQUEST, as Outlook and Google send one.
    let out = sent(&w, 1);
    assert_eq!(out[0].0, vec!["carol@remote.test"]);
    let m = &out[0].1;
    assert_eq!(m["subject"], "Invitation: Design review: ΩΣ");
    assert!(
        m["content_types"]
            .as_array()
            .unwrap()
            .contains(&json!("text/html")),
        "{m}"
    );
    assert!(
        m["attachments"]
            .as_array()
            .unwrap()
            .contains(&json!("invite.ics")),
        "{m}"
    );
    let c = only_calendar(m);
    assert_eq!(
        (c["method"].as_str(), c["content_type_method"].as_str()),
        (Some("REQUEST"), Some("REQUEST"))
    );
    assert_eq!(c["roundtrip"], true);
    assert!(
        c["timezones"]
            .as_array()
            .unwrap()
            .contains(&json!("Europe/Berlin")),
        "{c}"
    );
    let v = &c["components"][0];
    assert_eq!(v["uid"], uid.as_str());
    assert_eq!(v["summary"], "Design review: ΩΣ");
    assert_eq!(
        v["description"],
        "Agenda:\n1. specs\n2. budget; costs, totals"
    );
    assert_eq!(v["tzid"], "Europe/Berlin");
    assert_eq!(v["dtstart"], "2027-05-04T12:00:00Z");
    assert_eq!(v["dtend"], "2027-05-04T13:30:00Z");
    assert_eq!(v["organizer"], "alice@example.org");
    let emails: Vec<&str> = v["attendees"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["email"].as_str().unwrap())
        .collect();
    assert!(
        emails.contains(&"carol@remote.test") && emails.contains(&"bob@example.org"),
        "{v}"
    );

    // The insider gets the appointment directly, no mail.
    let b = appointments(&w, BOB);
    let bob_copy = find(&b, &uid).expect("bob's copy");
    assert_eq!(
        partstat(bob_copy, "bob@example.org").as_deref(),
        Some("NEEDS-ACTION")
    );
    assert!(w.s.items("bob@example.org", "Inbox").is_empty());
    // Bob accepts: alice's copy says so at once.
    ok(api(
        &w,
        "POST",
        &format!("/api/v1/calendar/{}/reply", bob_copy["id"]),
        BOB,
        Some(json!({"partstat": "TENTATIVE"})),
    ));
    let a = appointments(&w, ALICE);
    assert_eq!(
        partstat(find(&a, &uid).unwrap(), "bob@example.org").as_deref(),
        Some("TENTATIVE")
    );

    // The outsider replies (as Outlook.com does: no ORGANIZER, no DTSTART);
    // a reply for them from someone else is ignored.
    let reply = |from: &str, ps: &str| {
        json!({
            "from": from, "to": ["alice@example.org"], "method": "REPLY",
            "prodid": "Microsoft Exchange Server 2010", "attach": false,
            "components": [{"type": "VEVENT", "uid": uid, "sequence": 0,
                "attendees": [{"email": "carol@remote.test", "partstat": ps}]}],
        })
    };
    send(&w, reply("eve@remote.test", "DECLINED"));
    send(&w, reply("carol@remote.test", "ACCEPTED"));
    let a = appointments(&w, ALICE);
    assert_eq!(
        partstat(find(&a, &uid).unwrap(), "carol@remote.test").as_deref(),
        Some("ACCEPTED")
    );

    // COUNTER: carol proposes an hour later; alice accepts; everyone is asked again.
    let counter = |start: &str, end: &str| {
        json!({
            "from": "carol@remote.test", "to": ["alice@example.org"], "method": "COUNTER",
            "components": [{"type": "VEVENT", "uid": uid, "sequence": 0,
                "dtstart": start, "dtend": end, "tzid": "Europe/Berlin",
                "comment": "Later, please",
                "organizer": {"email": "alice@example.org"},
                "attendees": [{"email": "carol@remote.test", "partstat": "TENTATIVE"}]}],
        })
    };
    send(&w, counter("2027-05-04T15:00:00", "2027-05-04T16:30:00"));
    let a = ok(api(
        &w,
        "GET",
        &format!("/api/v1/calendar/{id}"),
        ALICE,
        None,
    ));
    assert_eq!(a["counters"][0]["from"], "carol@remote.test", "{a}");
    assert_eq!(a["counters"][0]["start"], "2027-05-04T15:00:00+02:00");
    assert_eq!(a["counters"][0]["comment"], "Later, please");
    let a = ok(api(
        &w,
        "POST",
        &format!("/api/v1/calendar/{id}/counters/0/accept"),
        ALICE,
        None,
    ));
    assert_eq!(a["start"], "2027-05-04T15:00:00+02:00");
    assert_eq!(a["sequence"], 1);
    assert!(a.get("counters").is_none(), "{a}");
    let out = sent(&w, 2);
    let v = &only_calendar(&out[1].1)["components"][0];
    assert_eq!(only_calendar(&out[1].1)["method"], "REQUEST");
    assert_eq!(
        (v["sequence"].as_u64(), v["dtstart"].as_str()),
        (Some(1), Some("2027-05-04T13:00:00Z"))
    );
    let b = appointments(&w, BOB);
    let bob_copy = find(&b, &uid).unwrap();
    assert_eq!(
        bob_copy["start"], "2027-05-04T15:00:00+02:00",
        "bob's copy moved"
    );
    assert_eq!(
        partstat(bob_copy, "bob@example.org").as_deref(),
        Some("NEEDS-ACTION")
    );
    // A second proposal, declined: carol gets DECLINECOUNTER.
    send(&w, counter("2027-05-04T17:00:00", "2027-05-04T18:00:00"));
    ok(api(
        &w,
        "POST",
        &format!("/api/v1/calendar/{id}/counters/0/decline"),
        ALICE,
        Some(json!({"comment": "Too late in the day"})),
    ));
    let out = sent(&w, 3);
    assert_eq!(out[2].0, vec!["carol@remote.test"]);
    let c = only_calendar(&out[2].1);
    assert_eq!(c["method"], "DECLINECOUNTER");
    assert_eq!(c["components"][0]["uid"], uid.as_str());

    // A change of place: a new SEQUENCE to carol.
    let a = ok(api(
        &w,
        "PATCH",
        &format!("/api/v1/calendar/{id}"),
        ALICE,
        Some(json!({"location": "Room 9"})),
    ));
    assert_eq!(
        (a["location"].as_str(), a["sequence"].as_u64()),
        (Some("Room 9"), Some(2))
    );
    let out = sent(&w, 4);
    let v = &only_calendar(&out[3].1)["components"][0];
    assert_eq!(
        (v["location"].as_str(), v["sequence"].as_u64()),
        (Some("Room 9"), Some(2))
    );

    // An attendee who lost the invitation asks again (REFRESH): the current one.
    send(
        &w,
        json!({
            "from": "carol@remote.test", "to": ["alice@example.org"], "method": "REFRESH",
            "components": [{"type": "VEVENT", "uid": uid,
                "organizer": {"email": "alice@example.org"},
                "attendees": [{"email": "carol@remote.test"}]}],
        }),
    );
    let out = sent(&w, 5);
    assert_eq!(out[4].0, vec!["carol@remote.test"]);
    let c = only_calendar(&out[4].1);
    assert_eq!(c["method"], "REQUEST");
    assert_eq!(c["components"][0]["sequence"], 2);
    assert_eq!(c["components"][0]["location"], "Room 9");

    // Deleting it cancels it for everyone.
    let r = api(&w, "DELETE", &format!("/api/v1/calendar/{id}"), ALICE, None);
    assert_eq!(r.status, 204);
    let out = sent(&w, 6);
    let c = only_calendar(&out[5].1);
    assert_eq!(c["method"], "CANCEL");
    assert_eq!(c["components"][0]["status"], "CANCELLED");
    assert!(find(&appointments(&w, ALICE), &uid).is_none());
    let b = appointments(&w, BOB);
    assert_eq!(find(&b, &uid).unwrap()["status"], "CANCELLED");
}

#[test]
fn recurring_meeting_with_a_moved_and_a_cancelled_instance() {
    let Some(w) = world() else { return };
    let uid = "weekly-0001@remote.test";
    let people = [
        ("olga@remote.test", "ACCEPTED"),
        ("alice@example.org", "NEEDS-ACTION"),
    ];
    let mut series = event(
        uid,
        0,
        "2027-01-05T10:00:00",
        "2027-01-05T11:00:00",
        "olga@remote.test",
        &people,
    );
    series["rrule"] = json!("FREQ=WEEKLY;COUNT=6");
    send(
        &w,
        msg(
            "REQUEST",
            "olga@remote.test",
            "alice@example.org",
            vec![series],
        ),
    );
    // Google sends a moved instance on its own: the 2nd, two hours later.
    let mut moved = event(
        uid,
        0,
        "2027-01-12T12:00:00",
        "2027-01-12T13:00:00",
        "olga@remote.test",
        &people,
    );
    moved["recurrence_id"] = json!("2027-01-12T10:00:00");
    moved["dtstamp"] = json!("2026-01-02T00:00:00Z");
    send(
        &w,
        msg(
            "REQUEST",
            "olga@remote.test",
            "alice@example.org",
            vec![moved],
        ),
    );
    // And cancels the 4th.
    let mut gone = event(
        uid,
        0,
        "2027-01-26T10:00:00",
        "2027-01-26T11:00:00",
        "olga@remote.test",
        &people,
    );
    gone["recurrence_id"] = json!("2027-01-26T10:00:00");
    gone["status"] = json!("CANCELLED");
    send(
        &w,
        msg(
            "CANCEL",
            "olga@remote.test",
            "alice@example.org",
            vec![gone],
        ),
    );

    let r = api(
        &w,
        "GET",
        "/api/v1/calendar?from=2027-01-01T00:00:00Z&to=2027-03-01T00:00:00Z",
        ALICE,
        None,
    );
    assert_eq!(r.header("Postgate-Truncated"), Some("false"));
    let list = ok(r);
    let starts: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["start"].as_str().unwrap())
        .collect();
    assert_eq!(
        starts,
        [
            "2027-01-05T10:00:00+01:00",
            "2027-01-12T12:00:00+01:00",
            "2027-01-19T10:00:00+01:00",
            "2027-02-02T10:00:00+01:00",
            "2027-02-09T10:00:00+01:00",
        ],
        "{list}"
    );
    let moved = &list[1];
    assert_eq!(moved["recurrence_id"], "2027-01-12T10:00:00+01:00");
    assert_eq!(moved["uid"], uid);
    // A narrower span: only what falls in it.
    let r = ok(api(
        &w,
        "GET",
        "/api/v1/calendar?from=2027-01-12T11:30:00%2B01:00&to=2027-01-20T00:00:00Z",
        ALICE,
        None,
    ));
    let starts: Vec<&str> = r
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["start"].as_str().unwrap())
        .collect();
    assert_eq!(
        starts,
        ["2027-01-12T12:00:00+01:00", "2027-01-19T10:00:00+01:00"]
    );

    // The Calendar folder over IMAP: read-only, each item a text/calendar message.
    let script = r#"
import imaplib, json, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
m = imaplib.IMAP4_SSL("127.0.0.1", int(sys.argv[1]), ssl_context=ctx)
m.login("alice@example.org", "secret")
typ, data = m.select("Calendar", readonly=True)
n = int(data[0])
typ, fetched = m.fetch("1:*", "(BODY.PEEK[])")
bodies = [f[1].decode() for f in fetched if isinstance(f, tuple)]
typ, app = m.append("Calendar", None, None, b"Subject: x\r\n\r\ny\r\n")
print(json.dumps({"exists": n, "bodies": bodies, "append": typ}))
"#;
    let (okp, out, err) = python(script, &[w.s.addr("imaps").port().to_string()]).unwrap();
    assert!(okp, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["exists"], 1, "{v}");
    let body = v["bodies"][0].as_str().unwrap();
    assert!(body.contains("text/calendar"), "{body}");
    assert!(body.contains(uid), "{body}");
    assert_eq!(
        v["append"], "NO",
        "the Calendar folder is read-only over IMAP"
    );
}

#[test]
fn task_assigned_from_outside_and_completed_inside() {
    let Some(w) = world() else { return };
    let uid = "task-0001@remote.test";
    send(
        &w,
        json!({
            "from": "olga@remote.test", "to": ["alice@example.org"], "method": "REQUEST",
            "prodid": "-//Microsoft Corporation//Outlook 16.0 MIMEDIR//EN",
            "components": [{"type": "VTODO", "uid": uid, "sequence": 0,
                "summary": "File the report", "due": "2027-02-01T17:00:00Z", "status": "NEEDS-ACTION",
                "organizer": {"email": "olga@remote.test"},
                "attendees": [{"email": "alice@example.org", "partstat": "NEEDS-ACTION", "rsvp": true}]}],
        }),
    );
    assert_eq!(w.s.items("alice@example.org", "Tasks").len(), 1);
    let tasks = ok(api(&w, "GET", "/api/v1/tasks", ALICE, None));
    let t = find(tasks.as_array().unwrap(), uid)
        .expect("the task")
        .clone();
    assert_eq!(t["summary"], "File the report");
    assert_eq!(t["due"], "2027-02-01T17:00:00Z");
    assert_eq!(t["status"], "NEEDS-ACTION");
    let done = ok(api(
        &w,
        "POST",
        &format!("/api/v1/tasks/{}/complete", t["id"]),
        ALICE,
        None,
    ));
    assert_eq!(done["status"], "COMPLETED");
    assert_eq!(done["percent_complete"], 100);
    let out = sent(&w, 1);
    assert_eq!(out[0].0, vec!["olga@remote.test"]);
    let c = only_calendar(&out[0].1);
    assert_eq!(c["method"], "REPLY");
    let v = &c["components"][0];
    assert_eq!(v["type"], "VTODO");
    assert_eq!(v["status"], "COMPLETED");
    assert_eq!(v["attendees"][0]["partstat"], "COMPLETED");

    // A task alice assigns outside; the assignee's REPLY completes it.
    let r = ok(api(
        &w,
        "POST",
        "/api/v1/tasks",
        ALICE,
        Some(
            json!({"summary": "Order chairs", "due": "2027-03-01T12:00:00Z", "priority": 1, "assignees": ["carol@remote.test"]}),
        ),
    ));
    let out = sent(&w, 2);
    let c = only_calendar(&out[1].1);
    assert_eq!(
        (c["method"].as_str(), c["components"][0]["type"].as_str()),
        (Some("REQUEST"), Some("VTODO"))
    );
    let tuid = r["uid"].as_str().unwrap();
    send(
        &w,
        json!({
            "from": "carol@remote.test", "to": ["alice@example.org"], "method": "REPLY",
            "components": [{"type": "VTODO", "uid": tuid, "sequence": 0, "status": "COMPLETED",
                "completed": "2027-02-20T09:00:00Z",
                "attendees": [{"email": "carol@remote.test", "partstat": "COMPLETED"}]}],
        }),
    );
    let t = ok(api(
        &w,
        "GET",
        &format!("/api/v1/tasks/{}", r["id"]),
        ALICE,
        None,
    ));
    assert_eq!(t["status"], "COMPLETED", "{t}");
    assert_eq!(t["completed"], "2027-02-20T09:00:00+00:00");
    assert_eq!(
        partstat(
            &{
                let mut x = t.clone();
                x["attendees"] = x["assignees"].clone();
                x
            },
            "carol@remote.test"
        )
        .as_deref(),
        Some("COMPLETED")
    );
    assert_eq!(t["priority"], 1);

    // A task of one's own: changed, then deleted.
    let own = ok(api(
        &w,
        "POST",
        "/api/v1/tasks",
        ALICE,
        Some(json!({"summary": "Water plants"})),
    ));
    let t = ok(api(
        &w,
        "PATCH",
        &format!("/api/v1/tasks/{}", own["id"]),
        ALICE,
        Some(json!({"percent_complete": 40, "due": "2027-04-01T08:00:00Z"})),
    ));
    assert_eq!(
        (t["percent_complete"].as_u64(), t["due"].as_str()),
        (Some(40), Some("2027-04-01T08:00:00Z"))
    );
    let path = format!("/api/v1/tasks/{}", own["id"]);
    assert_eq!(api(&w, "DELETE", &path, ALICE, None).status, 204);
    assert_eq!(api(&w, "GET", &path, ALICE, None).status, 404);
    assert_eq!(w.s.items("alice@example.org", "Tasks").len(), 2);
}

#[test]
fn free_busy_requests_are_answered() {
    let Some(w) = world() else { return };
    let mk = |summary: &str, start: &str, end: &str, extra: Value| {
        let mut b = json!({"summary": summary, "start": start, "end": end});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        ok(api(&w, "POST", "/api/v1/calendar", ALICE, Some(b)));
    };
    mk(
        "Busy",
        "2027-06-07T09:00:00Z",
        "2027-06-07T10:00:00Z",
        json!({}),
    );
    mk(
        "Overlapping",
        "2027-06-07T09:30:00Z",
        "2027-06-07T11:00:00Z",
        json!({}),
    );
    mk(
        "Weekly",
        "2027-06-01T15:00:00Z",
        "2027-06-01T16:00:00Z",
        json!({"rrule": "FREQ=WEEKLY;COUNT=3"}),
    );
    // An invitation alice has not answered: tentatively busy.
    send(
        &w,
        msg(
            "REQUEST",
            "olga@remote.test",
            "alice@example.org",
            vec![event(
                "fb-0001@remote.test",
                0,
                "2027-06-09T14:00:00",
                "2027-06-09T15:00:00",
                "olga@remote.test",
                &[
                    ("olga@remote.test", "ACCEPTED"),
                    ("alice@example.org", "NEEDS-ACTION"),
                ],
            )],
        ),
    );
    let fb = ok(api(
        &w,
        "GET",
        "/api/v1/freebusy?users=alice@example.org,bob@example.org,nobody@example.org&from=2027-06-07T00:00:00Z&to=2027-06-14T00:00:00Z",
        ALICE,
        None,
    ));
    assert_eq!(
        fb["alice@example.org"],
        json!([
            {"start": "2027-06-07T09:00:00Z", "end": "2027-06-07T11:00:00Z", "type": "BUSY"},
            {"start": "2027-06-08T15:00:00Z", "end": "2027-06-08T16:00:00Z", "type": "BUSY"},
            {"start": "2027-06-09T12:00:00Z", "end": "2027-06-09T13:00:00Z", "type": "BUSY-TENTATIVE"},
        ]),
        "{fb}"
    );
    assert_eq!(fb["bob@example.org"], json!([]));
    assert!(fb["nobody@example.org"]["error"].is_string());

    // By iMIP (RFC 5546 §3.3.2): a VFREEBUSY REQUEST gets a REPLY.
    send(
        &w,
        json!({
            "from": "olga@remote.test", "to": ["alice@example.org"], "method": "REQUEST",
            "components": [{"type": "VFREEBUSY", "uid": "fbq-1@remote.test",
                "dtstart": "2027-06-07T00:00:00Z", "dtend": "2027-06-08T00:00:00Z",
                "organizer": {"email": "olga@remote.test"},
                "attendees": [{"email": "alice@example.org"}]}],
        }),
    );
    let out = sent(&w, 1);
    assert_eq!(out[0].0, vec!["olga@remote.test"]);
    let c = only_calendar(&out[0].1);
    assert_eq!(c["method"], "REPLY");
    let v = &c["components"][0];
    assert_eq!(v["type"], "VFREEBUSY");
    assert_eq!(v["uid"], "fbq-1@remote.test");
    assert_eq!(v["organizer"], "olga@remote.test");
    assert_eq!(v["attendees"][0]["email"], "alice@example.org");
    assert_eq!(
        v["freebusy"],
        json!([["2027-06-07T09:00:00Z", "2027-06-07T11:00:00Z", "BUSY"]])
    );
}

#[test]
fn what_is_not_scheduling_stays_mail() {
    let Some(w) = world() else { return };
    let people = [
        ("olga@remote.test", "ACCEPTED"),
        ("alice@example.org", "NEEDS-ACTION"),
    ];
    // A bounce quoting an invitation.
    let mut bounce = msg(
        "REQUEST",
        "mailer-daemon@remote.test",
        "alice@example.org",
        vec![event(
            "bounce-1@remote.test",
            0,
            "2027-04-01T09:00:00",
            "2027-04-01T10:00:00",
            "olga@remote.test",
            &people,
        )],
    );
    bounce["report"] = json!(true);
    send(&w, bounce);
    // A calendar without METHOD.
    let mut plain = msg(
        "REQUEST",
        "olga@remote.test",
        "alice@example.org",
        vec![event(
            "nomethod-1@remote.test",
            0,
            "2027-04-02T09:00:00",
            "2027-04-02T10:00:00",
            "olga@remote.test",
            &people,
        )],
    );
    plain["no_method_in_body"] = json!(true);
    send(&w, plain);
    // PUBLISH: kept as mail, importable.
    send(
        &w,
        msg(
            "PUBLISH",
            "olga@remote.test",
            "alice@example.org",
            vec![event(
                "publish-1@remote.test",
                0,
                "2027-04-03T09:00:00",
                "2027-04-03T10:00:00",
                "olga@remote.test",
                &people,
            )],
        ),
    );
    assert_eq!(w.s.items("alice@example.org", "Inbox").len(), 3);
    assert!(
        appointments(&w, ALICE).is_empty(),
        "{:?}",
        appointments(&w, ALICE)
    );

    // Hostile calendars: the mail is delivered, nothing else happens.
    let deep = format!(
        "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\n{}END:VCALENDAR\r\n",
        "BEGIN:VEVENT\r\n".repeat(50)
    );
    let huge_tz = format!(
        "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VTIMEZONE\r\nTZID:X\r\nBEGIN:STANDARD\r\nTZNAME:{}\r\nDTSTART:19700101T000000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\nBEGIN:VEVENT\r\nUID:tz-1\r\nDTSTART;TZID=X:20270401T090000\r\nORGANIZER:mailto:olga@remote.test\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        "N".repeat(200_000)
    );
    for ics in [deep, huge_tz] {
        let mut c = postgate_testkit::RawClient::connect(w.s.addr("smtp"));
        c.reply();
        c.cmd("EHLO remote.test");
        assert!(c.cmd("MAIL FROM:<olga@remote.test>").starts_with("250"));
        assert!(c.cmd("RCPT TO:<alice@example.org>").starts_with("250"));
        assert!(c.cmd("DATA").starts_with("354"));
        c.send(format!("From: olga@remote.test\r\nSubject: hostile\r\nContent-Type: text/calendar; method=REQUEST\r\n\r\n{ics}\r\n.\r\n").as_bytes());
        let r = c.reply();
        assert!(r[0].starts_with("250"), "{r:?}");
    }
    assert_eq!(w.s.items("alice@example.org", "Inbox").len(), 5);
    // The long TZNAME did no harm: its zone (+01:00, from the VTIMEZONE) is read.
    let cal = appointments(&w, ALICE);
    assert_eq!(
        find(&cal, "tz-1").expect("tz-1")["start"],
        "2027-04-01T09:00:00+01:00"
    );
    assert!(wait_until(Duration::from_secs(5), || w
        .s
        .log()
        .contains("calendar part rejected")));

    // The PUBLISHed one, imported through the API.
    let ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Apple Inc.//macOS 14.0//EN\r\nBEGIN:VEVENT\r\nUID:import-1@remote.test\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;VALUE=DATE:20270410\r\nDTEND;VALUE=DATE:20270412\r\nSUMMARY:Offsite\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    let r =
        w.s.api(
            "POST",
            "/api/v1/calendar/import",
            ALICE,
            Some(("text/calendar", ics.as_bytes())),
        )
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    let list = appointments(&w, ALICE);
    let a = find(&list, "import-1@remote.test").unwrap();
    assert_eq!(
        (
            a["start"].as_str(),
            a["end"].as_str(),
            a["all_day"].as_bool()
        ),
        (Some("2027-04-10"), Some("2027-04-12"), Some(true))
    );
}

#[test]
fn calendar_import_and_export_from_the_command_line() {
    let Some(w) = world() else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.ics");
    // Two events and a task, one event in a Windows zone as Exchange writes it.
    std::fs::write(
        &file,
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:Microsoft Exchange Server 2010\r\n\
BEGIN:VTIMEZONE\r\nTZID:W. Europe Standard Time\r\nBEGIN:STANDARD\r\nDTSTART:16010101T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nRRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=10\r\nEND:STANDARD\r\nBEGIN:DAYLIGHT\r\nDTSTART:16010101T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nRRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=3\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\n\
BEGIN:VEVENT\r\nUID:ex-1\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;TZID=W. Europe Standard Time:20270701T090000\r\nDTEND;TZID=W. Europe Standard Time:20270701T100000\r\nSUMMARY:Exchange meeting\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:ex-2\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20270702T090000Z\r\nSUMMARY:Second\r\nEND:VEVENT\r\n\
BEGIN:VTODO\r\nUID:td-1\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:A task\r\nDUE:20270703T090000Z\r\nEND:VTODO\r\nEND:VCALENDAR\r\n",
    )
    .unwrap();
    let out = w.s.cli(&[
        "calendar",
        "import",
        "alice@example.org",
        &file.display().to_string(),
    ]);
    assert!(out.contains("3"), "{out}");
    let items = w.s.items("alice@example.org", "Calendar");
    assert_eq!(items.len(), 2);
    assert!(
        items.iter().all(|i| i["kind"] == "appointment"),
        "{items:?}"
    );
    assert_eq!(w.s.items("alice@example.org", "Tasks")[0]["kind"], "task");
    let a = appointments(&w, ALICE);
    assert_eq!(
        find(&a, "ex-1").unwrap()["start"],
        "2027-07-01T09:00:00+02:00"
    );
    assert_eq!(find(&a, "ex-1").unwrap()["time_zone"], "Europe/Berlin");

    let exported = w.s.cli(&["calendar", "export", "alice@example.org"]);
    let path = dir.path().join("out.ics");
    std::fs::write(&path, &exported).unwrap();
    let script = r#"
import json, sys
from icalendar import Calendar
cal = Calendar.from_ical(open(sys.argv[1]).read())
print(json.dumps(sorted([str(c.get("uid")) for c in cal.walk() if c.name in ("VEVENT", "VTODO")])))
"#;
    let (okp, out, err) = python(script, &[path.display().to_string()]).unwrap();
    assert!(okp, "{err}\n{exported}");
    assert_eq!(out.trim(), r#"["ex-1", "ex-2", "td-1"]"#);
}
