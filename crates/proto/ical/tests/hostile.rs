//! Hostile input: what has broken calendar gateways before, and what an
//! attacker would send. Each case is refused whole with a reason
//! ([`ParseError`]), or read with what is wrong dropped and said
//! ([`Parsed::problems`]); none panics, none makes unbounded work.
use postgate_ical::expand::{occurrences, span};
use postgate_ical::{Context, ParseError, parse_all, parse_one};

fn cal(body: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nMETHOD:REQUEST\r\n{body}END:VCALENDAR\r\n"
    )
}

fn event(extra: &str) -> String {
    cal(&format!(
        "BEGIN:VEVENT\r\nUID:h1@test\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20270301T090000Z\r\n{extra}END:VEVENT\r\n"
    ))
}

fn ctx() -> Context {
    Context::default()
}

#[test]
fn a_very_long_tzname_is_harmless() {
    let text = cal(&format!(
        "BEGIN:VTIMEZONE\r\nTZID:Long\r\nBEGIN:STANDARD\r\nTZNAME:{}\r\nDTSTART:19700101T000000\r\n\
TZOFFSETFROM:+0200\r\nTZOFFSETTO:+0200\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n\
BEGIN:VEVENT\r\nUID:z\r\nDTSTART;TZID=Long:20270301T090000\r\nEND:VEVENT\r\n",
        "A".repeat(1_000_000)
    ));
    let p = parse_one(&text, &ctx()).unwrap();
    let start = p.objects[0]
        .object
        .master
        .as_ref()
        .unwrap()
        .start
        .as_ref()
        .unwrap()
        .clone();
    // 09:00 at +02:00.
    assert_eq!(start.utc, chrono_ts("2027-03-01T07:00:00Z"));
}

fn chrono_ts(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp()
}

#[test]
fn beyond_the_size_limit_is_refused() {
    let text = event(&format!("DESCRIPTION:{}\r\n", "x".repeat(5 << 20)));
    assert!(matches!(
        parse_one(&text, &ctx()),
        Err(ParseError::TooLarge(_))
    ));
    // A long value under the limit is cut, and said so.
    let text = event(&format!("SUMMARY:{}\r\n", "é".repeat(100_000)));
    let p = parse_one(&text, &ctx()).unwrap();
    let s = p.objects[0]
        .object
        .master
        .as_ref()
        .unwrap()
        .summary
        .clone()
        .unwrap();
    assert!(s.len() <= 64 * 1024 && s.chars().all(|c| c == 'é'));
    assert!(
        p.problems.iter().any(|x| x.contains("SUMMARY")),
        "{:?}",
        p.problems
    );
}

#[test]
fn ten_thousand_attendees() {
    let mut extra = String::from("ORGANIZER:mailto:o@test\r\n");
    for i in 0..10_000 {
        extra.push_str(&format!(
            "ATTENDEE;CN=Person {i};RSVP=TRUE:mailto:p{i}@test\r\n"
        ));
    }
    let p = parse_one(&event(&extra), &ctx()).unwrap();
    assert_eq!(
        p.objects[0].object.master.as_ref().unwrap().attendees.len(),
        10_000
    );
    // One more than the limit: the rest dropped, and said so.
    extra.push_str("ATTENDEE:mailto:one-too-many@test\r\n");
    let p = parse_one(&event(&extra), &ctx()).unwrap();
    assert_eq!(
        p.objects[0].object.master.as_ref().unwrap().attendees.len(),
        10_000
    );
    assert!(p.problems.iter().any(|x| x.contains("attendees")));
}

#[test]
fn deep_or_unbalanced_nesting() {
    let deep = cal(&"BEGIN:VEVENT\r\n".repeat(10_000));
    assert!(matches!(
        parse_one(&deep, &ctx()),
        Err(ParseError::TooLarge(_))
    ));
    let many = cal(&"BEGIN:X\r\nEND:X\r\n".repeat(6_000));
    assert!(matches!(
        parse_one(&many, &ctx()),
        Err(ParseError::TooLarge(_))
    ));
    // ENDs without BEGINs, and a VEVENT never ended: read as far as it goes.
    let unbalanced = "END:VEVENT\r\nEND:VALARM\r\nBEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:u\r\nDTSTART:20270301T090000Z\r\nEND:VTODO\r\n";
    if let Ok(all) = parse_all(unbalanced, &ctx()) {
        assert!(all.len() <= 1);
    }
    assert!(parse_one("END:VCALENDAR\r\nEND:VCALENDAR\r\n", &ctx()).is_err());
    assert!(parse_one("", &ctx()).is_err());
    assert!(parse_one("\u{0}\u{0}BEGIN", &ctx()).is_err());
}

#[test]
fn broken_folding() {
    // A continuation line that starts with a no-break space (mail clients
    // that turn the folding space into one).
    let text = event("SUMMARY:Quarterly\r\n\u{a0}review\r\nLOCATION:Room\r\n 4\r\n");
    let p = parse_one(&text, &ctx()).unwrap();
    let m = p.objects[0].object.master.as_ref().unwrap();
    assert_eq!(m.summary.as_deref(), Some("Quarterlyreview"));
    assert_eq!(m.location.as_deref(), Some("Room4"));
    // Quoted-printable soft breaks mixed with folding (vCalendar 1.0 style).
    let text = event("DESCRIPTION;ENCODING=QUOTED-PRINTABLE:Line one=0D=0A=\r\nLine =\r\n two\r\n");
    let p = parse_one(&text, &ctx()).unwrap();
    assert!(
        p.objects[0]
            .object
            .master
            .as_ref()
            .unwrap()
            .description
            .is_some()
    );
    // LF-only lines, a bare CR, tabs as folding.
    let text = event("SUMMARY:A\n\tB\rC\n").replace("\r\n", "\n");
    assert!(parse_one(&text, &ctx()).is_ok());
}

#[test]
fn bad_dates() {
    // 30 February does not exist: DTSTART dropped, said so.
    let p = parse_one(&event("DTEND:20270230T100000Z\r\n"), &ctx()).unwrap();
    assert!(
        p.problems.iter().any(|x| x.contains("DTEND")),
        "{:?}",
        p.problems
    );
    let p = parse_one(
        &cal("BEGIN:VEVENT\r\nUID:d\r\nDTSTART:20270230T090000Z\r\nEND:VEVENT\r\n"),
        &ctx(),
    )
    .unwrap();
    assert!(p.objects[0].object.master.as_ref().unwrap().start.is_none());
    // TZID on a UTC time: the TZID is wrong and ignored.
    let p = parse_one(&cal("BEGIN:VEVENT\r\nUID:d\r\nDTSTART;TZID=Europe/Berlin:20270301T090000Z\r\nEND:VEVENT\r\n"), &ctx()).unwrap();
    let s = p.objects[0]
        .object
        .master
        .as_ref()
        .unwrap()
        .start
        .clone()
        .unwrap();
    assert_eq!(s.utc, chrono_ts("2027-03-01T09:00:00Z"));
    assert!(p.problems.iter().any(|x| x.contains("TZID on a UTC time")));
    // Empty TZID: floating.
    let p = parse_one(
        &cal("BEGIN:VEVENT\r\nUID:d\r\nDTSTART;TZID=:20270301T090000\r\nEND:VEVENT\r\n"),
        &ctx(),
    )
    .unwrap();
    assert_eq!(
        p.objects[0]
            .object
            .master
            .as_ref()
            .unwrap()
            .start
            .as_ref()
            .unwrap()
            .form,
        postgate_types::calendar::TimeForm::Floating
    );
    // A TZID nobody defines: floating, said so.
    let p = parse_one(&cal("BEGIN:VEVENT\r\nUID:d\r\nDTSTART;TZID=Atlantis/Capital:20270301T090000\r\nEND:VEVENT\r\n"), &ctx()).unwrap();
    assert!(p.problems.iter().any(|x| x.contains("defined nowhere")));
    // DTEND before DTSTART; year 0; year 9999.
    for d in [
        "DTEND:20270101T000000Z\r\n",
        "DTEND:00000101T000000Z\r\n",
        "DTEND:99991231T235959Z\r\n",
    ] {
        let p = parse_one(&event(d), &ctx()).unwrap();
        let o = &p.objects[0].object;
        let _ = span(o);
        let _ = occurrences(o, 0, i64::MAX, chrono_tz::UTC, 10);
    }
}

#[test]
fn sequence_beyond_two_to_the_31() {
    for (v, want) in [
        ("2147483648", i32::MAX as u32),
        ("99999999999999999999999", i32::MAX as u32),
        ("-5", 0),
        ("banana", 0),
    ] {
        let p = parse_one(&event(&format!("SEQUENCE:{v}\r\n")), &ctx()).unwrap();
        assert_eq!(
            p.objects[0].object.master.as_ref().unwrap().sequence,
            want,
            "{v}"
        );
    }
}

#[test]
fn duplicated_uids_and_properties() {
    // The same UID twice: the newer kept, said so.
    let text = cal(
        "BEGIN:VEVENT\r\nUID:dup\r\nSEQUENCE:1\r\nSUMMARY:new\r\nDTSTART:20270301T090000Z\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:dup\r\nSEQUENCE:0\r\nSUMMARY:old\r\nDTSTART:20270301T090000Z\r\nEND:VEVENT\r\n",
    );
    let p = parse_one(&text, &ctx()).unwrap();
    assert_eq!(p.objects.len(), 1);
    assert_eq!(
        p.objects[0]
            .object
            .master
            .as_ref()
            .unwrap()
            .summary
            .as_deref(),
        Some("new")
    );
    assert!(p.problems.iter().any(|x| x.contains("twice")));
    // Two DTSTARTs, two SUMMARYs: the first of each.
    let p = parse_one(
        &event("SUMMARY:one\r\nSUMMARY:two\r\nDTSTART:20280101T000000Z\r\n"),
        &ctx(),
    )
    .unwrap();
    let m = p.objects[0].object.master.as_ref().unwrap();
    assert_eq!(m.summary.as_deref(), Some("one"));
    assert_eq!(
        m.start.as_ref().unwrap().utc,
        chrono_ts("2027-03-01T09:00:00Z")
    );
    // No UID at all: one is made up from the content, the same each time.
    let text =
        cal("BEGIN:VEVENT\r\nSUMMARY:nameless\r\nDTSTART:20270301T090000Z\r\nEND:VEVENT\r\n");
    let a = parse_one(&text, &ctx()).unwrap();
    let b = parse_one(&text, &ctx()).unwrap();
    assert!(a.objects[0].object.uid.starts_with("postgate-"));
    assert_eq!(a.objects[0].object.uid, b.objects[0].object.uid);
}

#[test]
fn two_vcalendars_in_one_part() {
    let text = format!("{}{}", event(""), event(""));
    assert_eq!(
        parse_one(&text, &ctx()).unwrap_err(),
        ParseError::SeveralCalendars(2)
    );
    // A file may hold several (an export).
    assert_eq!(parse_all(&text, &ctx()).unwrap().len(), 2);
}

#[test]
fn endless_and_every_second_rules_are_capped() {
    for rule in [
        "FREQ=SECONDLY",
        "FREQ=SECONDLY;INTERVAL=1;BYMONTH=2",
        "FREQ=MINUTELY;COUNT=4000000000",
        "FREQ=DAILY;UNTIL=99991231T000000Z",
        "FREQ=YEARLY;BYWEEKNO=53;BYDAY=MO",
        "FREQ=MONTHLY;BYMONTHDAY=31;BYMONTH=2",
        "FREQ=YEARLY;BYSETPOS=-1;BYDAY=MO,TU,WE,TH,FR,SA,SU;BYMONTH=1,2,3,4,5,6,7,8,9,10,11,12",
        "FREQ=HOURLY;INTERVAL=65535;BYSECOND=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20",
    ] {
        let p = parse_one(&event(&format!("RRULE:{rule}\r\n")), &ctx()).unwrap();
        let o = &p.objects[0].object;
        let x = occurrences(o, 0, i64::MAX / 2, chrono_tz::UTC, 500);
        assert!(x.occurrences.len() <= 500, "{rule}");
        let year = occurrences(
            o,
            chrono_ts("2027-01-01T00:00:00Z"),
            chrono_ts("2028-01-01T00:00:00Z"),
            chrono_tz::UTC,
            500,
        );
        assert!(year.occurrences.len() <= 500, "{rule}");
        if rule == "FREQ=SECONDLY" {
            assert!(year.truncated, "the cap must be reported");
        }
    }
    // A garbage RRULE is ignored and said so.
    let p = parse_one(&event("RRULE:FREQ=SOMETIMES;COUNT=x\r\n"), &ctx()).unwrap();
    assert!(p.objects[0].object.master.as_ref().unwrap().rrule.is_none() || !p.problems.is_empty());
}

#[test]
fn garbage_never_panics() {
    let seeds = [
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nRRULE:FREQ=WEEKLY;BYDAY=\r\nEND:VEVENT\r\nEND:VCALENDAR",
        "BEGIN:VCALENDAR\r\nBEGIN:VTIMEZONE\r\nTZID:X\r\nBEGIN:DAYLIGHT\r\nTZOFFSETFROM:+9999\r\nTZOFFSETTO:-9999\r\nDTSTART:16010101T000000\r\nRRULE:FREQ=YEARLY;BYMONTH=13;BYDAY=9SU\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\nBEGIN:VEVENT\r\nUID:x\r\nDTSTART;TZID=X:20270101T000000\r\nEND:VEVENT\r\nEND:VCALENDAR",
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:;;;\r\nATTENDEE;CN=\"unterminated:mailto:x\r\nORGANIZER:\r\nDURATION:P99999999W\r\nDTSTART:20270101\r\nEND:VEVENT\r\nEND:VCALENDAR",
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:r\r\nRECURRENCE-ID;RANGE=THISANDFUTURE:20270101T000000Z\r\nDTSTART:20270101T000000Z\r\nEXDATE:garbage,20270101T000000Z\r\nRDATE;VALUE=PERIOD:20270101T000000Z/PT1H,bad\r\nEND:VEVENT\r\nEND:VCALENDAR",
    ];
    for s in seeds {
        for cut in [s.len(), s.len() / 2, s.len() / 3, 7] {
            let text = &s[..cut.min(s.len())];
            if let Ok(all) = parse_all(text, &ctx()) {
                for p in all {
                    for o in p.objects {
                        let _ = span(&o.object);
                        let _ =
                            occurrences(&o.object, i64::MIN / 4, i64::MAX / 4, chrono_tz::UTC, 100);
                    }
                }
            }
        }
    }
}

/// Inputs the fuzzer (fuzz/fuzz_targets/ical.rs) found crashes with, kept
/// as regression tests.
#[test]
fn fuzzer_findings() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzzed");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(all) = parse_all(&text, &ctx()) {
            for p in all {
                for o in p.objects {
                    let _ = span(&o.object);
                    let _ = occurrences(&o.object, 0, i64::MAX / 4, chrono_tz::UTC, 100);
                }
            }
        }
        n += 1;
    }
    assert!(n >= 1);
}
