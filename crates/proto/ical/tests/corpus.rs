//! The interoperability corpus (tests/corpus/README.md): real iCalendar
//! objects and iMIP messages from Exchange/Outlook, Outlook.com, Google,
//! Apple, Lotus Notes, Thunderbird and Evolution, each converted and checked
//! field by field against the expectations written beside it by hand; and
//! the hostile files, which must neither panic nor hang.
use postgate_ical::expand::{Source, occurrences};
use postgate_ical::{Context, Parsed, parse_all, parse_one};
use postgate_types::calendar::{CalTime, CalendarComponent, TimeForm};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

fn expectations(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            expectations(&p, out);
        } else if p.to_string_lossy().ends_with(".expect.json") {
            out.push(p);
        }
    }
}

/// The data file beside an expectation, and the calendar text in it (an
/// .eml's first text/calendar part).
fn calendar_text(expect: &Path) -> (PathBuf, String) {
    let stem = expect
        .to_string_lossy()
        .trim_end_matches(".expect.json")
        .to_string();
    for ext in ["ics", "eml"] {
        let p = PathBuf::from(format!("{stem}.{ext}"));
        if let Ok(bytes) = std::fs::read(&p) {
            if ext == "eml" {
                let m = postgate_mime::parse_message(&bytes);
                let text = m
                    .calendars
                    .first()
                    .map(|c| c.text.clone())
                    .unwrap_or_default();
                return (p, text);
            }
            return (p, String::from_utf8_lossy(&bytes).into_owned());
        }
    }
    panic!("no data file for {}", expect.display());
}

/// An expected time as an instant: `…Z` as it says; a DATE or a floating
/// time as read in the test's calendar zone, UTC.
fn instant(s: &str) -> i64 {
    if s.len() == 10 {
        let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        return d.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp();
    }
    if !s.ends_with('Z') {
        let d = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").unwrap();
        return d.and_utc().timestamp();
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("bad instant {s}: {e}"))
        .timestamp()
}

/// Whether a CalTime is what the expectation writes: a UTC instant
/// (`…Z`), a DATE (`YYYY-MM-DD`) or a floating time (no `Z`).
fn time_is(t: &CalTime, want: &str) -> Result<(), String> {
    if want.ends_with('Z') {
        if t.is_date() || t.utc != instant(want) {
            return Err(format!(
                "{} ({:?} {}) is not {want}",
                t.utc_string(),
                t.form,
                t.local
            ));
        }
    } else if want.len() == 10 {
        let local = want.replace('-', "");
        if !t.is_date() || t.local != local {
            return Err(format!("{:?} {} is not the date {want}", t.form, t.local));
        }
    } else {
        let local = want.replace(['-', ':'], "");
        if t.form != TimeForm::Floating || t.local != local {
            return Err(format!("{:?} {} is not floating {want}", t.form, t.local));
        }
    }
    Ok(())
}

trait UtcString {
    fn utc_string(&self) -> String;
}
impl UtcString for CalTime {
    fn utc_string(&self) -> String {
        chrono::DateTime::from_timestamp(self.utc, 0)
            .map(|d| d.to_rfc3339())
            .unwrap_or_default()
    }
}

fn rrule_parts(r: &str) -> Vec<String> {
    let mut parts: Vec<String> = r
        .split(';')
        .map(|p| p.trim().to_ascii_uppercase())
        .filter(|p| !p.is_empty())
        .map(|p| {
            // INTERVAL=1 is the default; writers differ on spelling it out.
            if p == "INTERVAL=1" { String::new() } else { p }
        })
        .filter(|p| !p.is_empty())
        .collect();
    parts.sort();
    parts
}

fn check_item(
    parsed: &Parsed,
    want: &serde_json::Map<String, Value>,
    fb_index: &mut usize,
) -> Result<(), String> {
    let kind = want["kind"].as_str().unwrap();
    if kind == "freebusy" {
        let fb = parsed
            .freebusy
            .get(*fb_index)
            .ok_or("no VFREEBUSY parsed")?;
        *fb_index += 1;
        for (k, v) in want {
            match k.as_str() {
                "kind" => {}
                "start" => (fb.start == Some(instant(v.as_str().unwrap())))
                    .then_some(())
                    .ok_or(format!("freebusy start {:?}", fb.start))?,
                "end" => (fb.end == Some(instant(v.as_str().unwrap())))
                    .then_some(())
                    .ok_or(format!("freebusy end {:?}", fb.end))?,
                "organizer" => (fb.organizer.as_ref().map(|o| o.email.as_str()) == v.as_str())
                    .then_some(())
                    .ok_or(format!("freebusy organizer {:?}", fb.organizer))?,
                "uid" => (fb.uid.as_deref() == v.as_str())
                    .then_some(())
                    .ok_or(format!("freebusy uid {:?}", fb.uid))?,
                "attendees" => {
                    let emails: Vec<&str> = fb.attendees.iter().map(|a| a.email.as_str()).collect();
                    let want: Vec<&str> = v
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|a| a["email"].as_str().unwrap())
                        .collect();
                    (emails == want)
                        .then_some(())
                        .ok_or(format!("freebusy attendees {emails:?}"))?
                }
                "recurrence_id" | "sequence" | "alarms" if v.is_null() || v == 0 => {}
                other => return Err(format!("freebusy: key {other} not checked by this test")),
            }
        }
        return Ok(());
    }
    let expect_kind = match kind {
        "appointment" => postgate_types::ItemKind::Appointment,
        "task" => postgate_types::ItemKind::Task,
        k => return Err(format!("kind {k}")),
    };
    let obj = match want.get("uid").and_then(|u| u.as_str()) {
        Some(uid) => parsed
            .objects
            .iter()
            .find(|o| o.object.uid == uid && o.kind == expect_kind)
            .ok_or(format!("no {kind} with UID {uid}"))?,
        // A component that came without UID got one made up: find it by
        // its summary and start.
        None => parsed
            .objects
            .iter()
            .find(|o| {
                o.kind == expect_kind
                    && o.object.uid.starts_with("postgate-")
                    && o.object.main().is_some_and(|m| {
                        m.summary.as_deref() == want.get("summary").and_then(|s| s.as_str())
                            && want.get("start").and_then(|s| s.as_str()).is_none_or(|s| {
                                m.start.as_ref().is_some_and(|t| time_is(t, s).is_ok())
                            })
                    })
            })
            .ok_or(format!(
                "no {kind} without UID like {:?}",
                want.get("summary")
            ))?,
    };
    let rid = want.get("recurrence_id").and_then(|v| v.as_str());
    let (comp, source): (&CalendarComponent, Source) = match rid {
        None => (
            obj.object.master.as_ref().ok_or("no master")?,
            Source::Master,
        ),
        Some(r) => {
            let (i, c) = obj
                .object
                .overrides
                .iter()
                .enumerate()
                .find(|(_, o)| {
                    o.recurrence_id
                        .as_ref()
                        .is_some_and(|t| time_is(t, r).is_ok())
                })
                .ok_or(format!("no instance {r}"))?;
            (c, Source::Override(i))
        }
    };
    let _ = source;
    let text = |v: Option<&String>, w: &Value, what: &str| -> Result<(), String> {
        (v.map(String::as_str) == w.as_str())
            .then_some(())
            .ok_or(format!("{what}: {v:?} is not {w}"))
    };
    for (k, v) in want {
        match k.as_str() {
            "kind" | "uid" | "recurrence_id" => {}
            "this_and_future" => (comp.this_and_future == v.as_bool().unwrap())
                .then_some(())
                .ok_or("this_and_future")?,
            "sequence" => (comp.sequence as u64 == v.as_u64().unwrap())
                .then_some(())
                .ok_or(format!("sequence {}", comp.sequence))?,
            "summary" => text(comp.summary.as_ref(), v, "summary")?,
            "location" => text(comp.location.as_ref(), v, "location")?,
            "comment" => text(comp.comment.as_ref(), v, "comment")?,
            "description_starts" => {
                let d = comp.description.as_deref().unwrap_or("");
                if !d.starts_with(v.as_str().unwrap()) {
                    return Err(format!(
                        "description {:?}…",
                        &d.chars().take(40).collect::<String>()
                    ));
                }
            }
            "organizer" => (comp.organizer.as_ref().map(|o| o.email.as_str()) == v.as_str())
                .then_some(())
                .ok_or(format!("organizer {:?}", comp.organizer))?,
            "organizer_name" => (comp.organizer.as_ref().and_then(|o| o.name.as_deref())
                == v.as_str())
            .then_some(())
            .ok_or(format!("organizer name {:?}", comp.organizer))?,
            "attendees" => {
                let want = v.as_array().unwrap();
                if want.len() != comp.attendees.len() {
                    return Err(format!(
                        "{} attendees, not {}: {:?}",
                        comp.attendees.len(),
                        want.len(),
                        comp.attendees.iter().map(|a| &a.email).collect::<Vec<_>>()
                    ));
                }
                for w in want {
                    let email = w["email"].as_str().unwrap();
                    let a = comp.attendee(email).ok_or(format!("no attendee {email}"))?;
                    for (ak, av) in w.as_object().unwrap() {
                        let ok = match ak.as_str() {
                            "email" => true,
                            "name" => a.name.as_deref() == av.as_str(),
                            "partstat" => a.partstat.as_str() == av.as_str().unwrap(),
                            "role" => a.role.as_str() == av.as_str().unwrap(),
                            "rsvp" => a.rsvp == av.as_bool().unwrap(),
                            "delegated_to" => a
                                .delegated_to
                                .iter()
                                .any(|d| Some(d.as_str()) == av.as_str()),
                            "delegated_from" => a
                                .delegated_from
                                .iter()
                                .any(|d| Some(d.as_str()) == av.as_str()),
                            other => {
                                return Err(format!(
                                    "attendee key {other} not checked by this test"
                                ));
                            }
                        };
                        if !ok {
                            return Err(format!("attendee {email}: {ak} is {a:?}, not {av}"));
                        }
                    }
                }
            }
            "start" => time_is(comp.start.as_ref().ok_or("no start")?, v.as_str().unwrap())
                .map_err(|e| format!("start: {e}"))?,
            "end" => time_is(comp.end.as_ref().ok_or("no end")?, v.as_str().unwrap())
                .map_err(|e| format!("end: {e}"))?,
            "due" => time_is(comp.due.as_ref().ok_or("no due")?, v.as_str().unwrap())
                .map_err(|e| format!("due: {e}"))?,
            "completed" => (comp.completed == Some(instant(v.as_str().unwrap())))
                .then_some(())
                .ok_or(format!("completed {:?}", comp.completed))?,
            "all_day" => (comp.all_day == v.as_bool().unwrap())
                .then_some(())
                .ok_or("all_day")?,
            "tzid" => (comp.start.as_ref().and_then(|s| s.tzid()) == v.as_str())
                .then_some(())
                .ok_or(format!("tzid {:?}", comp.start.as_ref().map(|s| &s.form)))?,
            "time_zone" => text(comp.time_zone.as_ref(), v, "time_zone")?,
            "status" => (comp.status.as_ref().map(|s| s.as_str()) == v.as_str())
                .then_some(())
                .ok_or(format!("status {:?}", comp.status))?,
            "transparency" => text(comp.transparency.as_ref(), v, "transparency")?,
            "priority" => (comp.priority.map(u64::from) == v.as_u64())
                .then_some(())
                .ok_or(format!("priority {:?}", comp.priority))?,
            "percent_complete" => (comp.percent_complete.map(u64::from) == v.as_u64())
                .then_some(())
                .ok_or(format!("percent {:?}", comp.percent_complete))?,
            "rrule" => {
                let got = comp.rrule.as_deref().map(rrule_parts);
                let want = v.as_str().map(rrule_parts);
                (got == want)
                    .then_some(())
                    .ok_or(format!("rrule {:?}", comp.rrule))?
            }
            "exdates" | "rdates" => {
                let list = if k == "exdates" {
                    &comp.exdates
                } else {
                    &comp.rdates
                };
                let want = v.as_array().unwrap();
                if list.len() != want.len() {
                    return Err(format!("{k}: {} values, not {}", list.len(), want.len()));
                }
                for w in want {
                    let w = w.as_str().unwrap();
                    if !list.iter().any(|t| time_is(t, w).is_ok()) {
                        return Err(format!("{k}: {w} missing"));
                    }
                }
            }
            "categories" => {
                let want: Vec<&str> = v
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_str().unwrap())
                    .collect();
                (comp
                    .categories
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    == want)
                    .then_some(())
                    .ok_or(format!("categories {:?}", comp.categories))?
            }
            "alarms" => (comp.alarms.len() as u64 == v.as_u64().unwrap())
                .then_some(())
                .ok_or(format!("{} alarms", comp.alarms.len()))?,
            "first_occurrences" => {
                let start = comp.start.as_ref().ok_or("no start")?.utc;
                let e = occurrences(&obj.object, start, i64::MAX / 2, chrono_tz::UTC, 3);
                let got: Vec<i64> = e.occurrences.iter().map(|o| o.start).collect();
                let want: Vec<i64> = v
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| instant(s.as_str().unwrap()))
                    .collect();
                (got == want).then_some(()).ok_or(format!(
                    "first occurrences {:?}",
                    got.iter()
                        .map(|t| chrono::DateTime::from_timestamp(*t, 0)
                            .unwrap()
                            .to_rfc3339())
                        .collect::<Vec<_>>()
                ))?
            }
            other => return Err(format!("key {other} not checked by this test")),
        }
    }
    Ok(())
}

#[test]
fn corpus_converts_field_by_field() {
    let mut files = Vec::new();
    expectations(&corpus(), &mut files);
    files.sort();
    let mut checked = 0;
    let mut producers = std::collections::BTreeMap::new();
    let mut failures = Vec::new();
    for f in &files {
        let want: Value = serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
        if want.get("hostile").is_some() {
            continue;
        }
        let (data, text) = calendar_text(f);
        let name = data.strip_prefix(corpus()).unwrap().display().to_string();
        let parsed = match parse_one(&text, &Context::default()) {
            Ok(p) => p,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        let method = parsed.method.as_ref().map(|m| m.as_str().to_string());
        if want["method"].as_str().map(str::to_string) != method {
            failures.push(format!("{name}: method {method:?}"));
        }
        let mut fb = 0;
        for (i, item) in want["items"].as_array().unwrap().iter().enumerate() {
            if let Err(e) = check_item(&parsed, item.as_object().unwrap(), &mut fb) {
                failures.push(format!("{name} item {i}: {e}"));
            }
        }
        *producers
            .entry(want["producer"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
        checked += 1;
    }
    println!("checked {checked} files; by producer: {producers:?}");
    assert!(checked >= 50, "only {checked} files");
    for p in [
        "outlook",
        "exchange",
        "google",
        "apple",
        "notes",
        "thunderbird",
        "evolution",
    ] {
        assert!(producers.contains_key(p), "no file from {p}");
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn hostile_files_neither_panic_nor_hang() {
    let mut files = Vec::new();
    expectations(&corpus(), &mut files);
    let mut n = 0;
    for f in &files {
        let (_data, text) = calendar_text(f);
        if let Ok(all) = parse_all(&text, &Context::default()) {
            for p in &all {
                for o in &p.objects {
                    // Every occurrence there is, up to the cap.
                    let e = occurrences(&o.object, 0, i64::MAX / 2, chrono_tz::UTC, 1000);
                    assert!(e.occurrences.len() <= 1000);
                }
            }
        }
        n += 1;
    }
    assert!(n >= 70);
}
