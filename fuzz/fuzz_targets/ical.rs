//! The iCalendar parser and conversion, as delivery feeds them a
//! text/calendar part from the Internet: parse every VCALENDAR, convert to
//! appointment and task objects, find their spans, expand their occurrences
//! (capped), re-read their own text, and apply each as iTIP REQUEST, REPLY,
//! CANCEL and COUNTER to itself. Nothing may panic, hang or allocate without
//! bound.
#![no_main]
use libfuzzer_sys::fuzz_target;
use postgate_ical::expand::{occurrences, span};
use postgate_ical::itip::{Incoming, apply};
use postgate_ical::write::Doc;
use postgate_ical::{Context, Method, parse_all};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let ctx = Context::default();
    let Ok(all) = parse_all(&text, &ctx) else {
        return;
    };
    let who = vec!["a@b".to_string()];
    for p in all {
        for o in p.objects.iter().take(4) {
            let obj = &o.object;
            let (lo, hi) = span(obj).unwrap_or((0, 0));
            let _ = occurrences(
                obj,
                lo,
                hi.min(lo.saturating_add(400 * 86400)),
                ctx.zone,
                200,
            );
            if let Some(doc) = Doc::of(obj) {
                let _ = doc.into_object(Vec::new(), &ctx);
            }
            for method in [
                Method::Request,
                Method::Reply,
                Method::Cancel,
                Method::Counter,
            ] {
                let msg = Incoming {
                    method: &method,
                    kind: o.kind,
                    object: obj,
                    senders: &who,
                    recipient: &who,
                    now: 0,
                };
                let _ = apply(Some(obj), &msg, &ctx);
                let _ = apply(None, &msg, &ctx);
            }
        }
    }
});
