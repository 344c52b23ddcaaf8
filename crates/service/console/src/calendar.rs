//! `/api/v1/calendar`, `/api/v1/tasks`, `/api/v1/freebusy`: appointments and
//! tasks through the client API. Times are RFC 3339 (in the appointment's own
//! zone offset; all-day dates as `YYYY-MM-DD`), statuses and participation
//! the RFC 5545 tokens. What users do is planned by the scheduler and carried
//! out by delivery: their calendar, local attendees' calendars and the iMIP
//! mail to others, in one commit.
use crate::api::{ApiError, Ctx, user};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use postgate_calendar::organize::Spec;
use postgate_calendar::{CalendarError, Plan};
use postgate_ical::Tz;
use postgate_ical::expand::Source;
use postgate_ical::itip::component_of;
use postgate_ical::zone::of_time;
use postgate_store::{CalendarEntry, User};
use postgate_types::calendar::{CalTime, CalendarComponent, CalendarObject, PartStat};
use postgate_types::{EmailAddress, ItemKind};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashMap;

pub(crate) fn routes(router: Router<Ctx>) -> Router<Ctx> {
    router
        .route(
            "/api/v1/calendar",
            get(list_appointments).post(create_appointment),
        )
        .route("/api/v1/calendar/import", post(import))
        .route(
            "/api/v1/calendar/{id}",
            get(get_appointment)
                .patch(patch_appointment)
                .delete(delete_appointment),
        )
        .route("/api/v1/calendar/{id}/reply", post(reply))
        .route(
            "/api/v1/calendar/{id}/counters/{n}/accept",
            post(accept_counter),
        )
        .route(
            "/api/v1/calendar/{id}/counters/{n}/decline",
            post(decline_counter),
        )
        .route("/api/v1/tasks", get(list_tasks).post(create_task))
        .route(
            "/api/v1/tasks/{id}",
            get(get_task).patch(patch_task).delete(delete_task),
        )
        .route("/api/v1/tasks/{id}/complete", post(complete))
        .route("/api/v1/freebusy", get(freebusy))
}

impl From<CalendarError> for ApiError {
    fn from(e: CalendarError) -> ApiError {
        match e {
            CalendarError::Invalid(m) => ApiError::bad(m),
            CalendarError::Unknown(m) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, m),
            CalendarError::NotFound => {
                ApiError::new(StatusCode::NOT_FOUND, "no such appointment or task")
            }
            CalendarError::Forbidden(m) => ApiError::new(StatusCode::FORBIDDEN, m),
            CalendarError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, m),
            CalendarError::Store(e) => ApiError::store(e),
        }
    }
}

/// How the times of one object are shown.
struct Shown<'a> {
    obj: &'a CalendarObject,
    default: Tz,
}

/// An instant as RFC 3339 in the offset of `like`'s zone; a date for DATEs.
fn at(utc: i64, like: &CalTime, shown: &Shown<'_>) -> Option<String> {
    let zone = of_time(shown.obj, like, shown.default);
    if like.is_date() {
        return Some(zone.to_local(utc).date().to_string());
    }
    let offset = zone.offset_at(utc);
    let t = chrono::FixedOffset::east_opt(offset)
        .and_then(|o| chrono::DateTime::from_timestamp(utc, 0).map(|t| t.with_timezone(&o)))?;
    Some(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, offset == 0))
}

fn time(t: Option<&CalTime>, shown: &Shown<'_>) -> Option<String> {
    t.and_then(|t| at(t.utc, t, shown))
}

/// An attendee as the API shows it.
#[derive(Debug, Serialize)]
struct AttendeeOut<'a> {
    email: &'a str,
    name: Option<&'a str>,
    partstat: &'a str,
    role: &'a str,
    rsvp: bool,
}

/// The organizer as the API shows it.
#[derive(Debug, Serialize)]
struct OrganizerOut<'a> {
    email: &'a str,
    name: Option<&'a str>,
}

/// A counter-proposal as the API shows it.
#[derive(Debug, Serialize)]
struct CounterOut<'a> {
    index: usize,
    from: &'a str,
    recurrence_id: Option<String>,
    start: Option<String>,
    end: Option<String>,
    location: Option<&'a str>,
    comment: Option<&'a str>,
}

/// An appointment, a task, or one occurrence, as the API shows it (see
/// docs/openapi.yaml); written straight to the response, with no JSON tree
/// built on the way (a month of a busy calendar is thousands of these).
#[derive(Debug, Serialize)]
struct ItemOut<'a> {
    id: i64,
    uid: &'a str,
    kind: ItemKind,
    summary: Option<&'a str>,
    /// Left out of an occurrence's shared part (see [`occurrences_json`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    start: Option<Option<String>>,
    /// Appointments only.
    #[serde(skip_serializing_if = "Option::is_none")]
    end: Option<Option<String>>,
    all_day: bool,
    time_zone: Option<&'a str>,
    location: Option<&'a str>,
    description: Option<&'a str>,
    organizer: Option<OrganizerOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attendees: Option<Vec<AttendeeOut<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    assignees: Option<Vec<AttendeeOut<'a>>>,
    status: Option<&'a str>,
    sequence: u32,
    rrule: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    categories: &'a [String],
    /// Tasks only.
    #[serde(skip_serializing_if = "Option::is_none")]
    due: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    priority: Option<Option<u8>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    percent_complete: Option<Option<u8>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    completed: Option<Option<String>>,
    /// Occurrences only.
    #[serde(skip_serializing_if = "Option::is_none")]
    recurrence_id: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    overridden_instances: Option<usize>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    exdates: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    counters: Vec<CounterOut<'a>>,
}

fn item_out<'a>(
    e: &'a CalendarEntry,
    c: &'a CalendarComponent,
    shown: &Shown<'_>,
    times: bool,
) -> ItemOut<'a> {
    let task = e.kind == ItemKind::Task;
    let people: Vec<AttendeeOut<'a>> = c
        .attendees
        .iter()
        .map(|a| AttendeeOut {
            email: &a.email,
            name: a.name.as_deref(),
            partstat: a.partstat.as_str(),
            role: a.role.as_str(),
            rsvp: a.rsvp,
        })
        .collect();
    let (start, end) = match times {
        true => (
            Some(time(c.start.as_ref(), shown)),
            Some(time(c.end.as_ref(), shown)),
        ),
        false => (None, None),
    };
    let (attendees, assignees) = if task {
        (None, Some(people))
    } else {
        (Some(people), None)
    };
    ItemOut {
        id: e.id,
        uid: &e.object.uid,
        kind: e.kind,
        summary: c.summary.as_deref(),
        start,
        end: end.filter(|_| !task),
        all_day: c.all_day,
        time_zone: c.time_zone.as_deref(),
        location: c.location.as_deref(),
        description: c.description.as_deref(),
        organizer: c.organizer.as_ref().map(|o| OrganizerOut {
            email: &o.email,
            name: o.name.as_deref(),
        }),
        attendees,
        assignees,
        status: c.status.as_ref().map(|s| s.as_str()),
        sequence: c.sequence,
        rrule: c.rrule.as_deref(),
        categories: &c.categories,
        due: task.then(|| time(c.due.as_ref(), shown)),
        priority: task.then_some(c.priority),
        percent_complete: task.then_some(c.percent_complete),
        completed: task.then(|| {
            c.completed
                .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
                .map(|t| t.to_rfc3339())
        }),
        recurrence_id: None,
        overridden_instances: None,
        exdates: Vec::new(),
        counters: Vec::new(),
    }
}

fn entry_json(e: &CalendarEntry, default: Tz) -> Value {
    let shown = Shown {
        obj: &e.object,
        default,
    };
    let empty = CalendarComponent::default();
    let c = e.object.main().unwrap_or(&empty);
    let mut out = item_out(e, c, &shown, true);
    if !e.object.overrides.is_empty() && e.object.master.is_some() {
        out.overridden_instances = Some(e.object.overrides.len());
    }
    out.exdates = c
        .exdates
        .iter()
        .filter_map(|x| at(x.utc, x, &shown))
        .collect();
    out.counters = e
        .object
        .counters
        .iter()
        .enumerate()
        .map(|(i, k)| CounterOut {
            index: i,
            from: &k.from,
            recurrence_id: k.recurrence_id.as_ref().and_then(|r| at(r.utc, r, &shown)),
            start: time(k.start.as_ref(), &shown),
            end: time(k.end.as_ref(), &shown),
            location: k.location.as_deref(),
            comment: k.comment.as_deref(),
        })
        .collect();
    serde_json::to_value(&out).unwrap_or(Value::Null)
}

/// One occurrence's own fields, written before the fields it shares with
/// its appointment.
#[derive(Serialize)]
struct OccurrenceHead {
    start: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end: Option<Option<String>>,
    recurrence_id: Option<String>,
}

/// The occurrences of a listing, serialized as one JSON array. What an
/// occurrence shares with its appointment (summary, people, …) is written
/// once per appointment and copied for each of its instances: a month of a
/// busy calendar is thousands of occurrences of a few hundred series.
fn occurrences_json(listing: &postgate_calendar::query::Listing, default: Tz) -> Vec<u8> {
    let empty = CalendarComponent::default();
    let mut shared: HashMap<(usize, Source), Vec<u8>> = HashMap::new();
    let mut out = Vec::with_capacity(64 + listing.occurrences.len() * 512);
    out.push(b'[');
    for (n, (i, o)) in listing.occurrences.iter().enumerate() {
        let e = &listing.entries[*i];
        let shown = Shown {
            obj: &e.object,
            default,
        };
        let c = component_of(&e.object, o.source).unwrap_or(&empty);
        let like = c.start.as_ref();
        let head = OccurrenceHead {
            start: like.and_then(|l| at(o.start, l, &shown)),
            end: (e.kind != ItemKind::Task)
                .then(|| like.and_then(|l| at(o.end, c.end.as_ref().unwrap_or(l), &shown))),
            recurrence_id: match (
                o.recurrence_id,
                e.object.main().and_then(|m| m.start.as_ref()),
            ) {
                (Some(r), Some(like)) => at(r, like, &shown),
                _ => None,
            },
        };
        if n > 0 {
            out.push(b',');
        }
        // Serializing to a Vec cannot fail for these types.
        let _ = serde_json::to_writer(&mut out, &head);
        out.pop(); // the head's closing brace
        let rest = shared.entry((*i, o.source)).or_insert_with(|| {
            let mut rest = serde_json::to_vec(&item_out(e, c, &shown, false)).unwrap_or_default();
            if rest.first() == Some(&b'{') {
                rest[0] = b',';
            }
            rest
        });
        out.extend_from_slice(rest);
    }
    out.push(b']');
    out
}

fn parse_instant(s: &str, what: &str) -> Result<i64, ApiError> {
    let s = s.trim();
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp())
        .or_else(|_| {
            chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").map(|d| {
                d.and_hms_opt(0, 0, 0)
                    .unwrap_or_default()
                    .and_utc()
                    .timestamp()
            })
        })
        .map_err(|_| ApiError::bad(format!("{what}: {s:?} is not an RFC 3339 time")))
}

#[derive(Debug, Deserialize)]
struct Range {
    from: Option<String>,
    to: Option<String>,
}

async fn list(
    ctx: &Ctx,
    headers: &HeaderMap,
    range: Range,
    kind: ItemKind,
) -> Result<Response, ApiError> {
    let u = user(ctx, headers).await?;
    let s = ctx.delivery.scheduler();
    let zone = s.context().zone;
    match (range.from, range.to) {
        (None, None) => {
            let entries = ctx
                .delivery
                .store()
                .calendar_entries(u.id, kind)
                .await
                .map_err(ApiError::internal)?;
            Ok(axum::Json(Value::Array(
                entries.iter().map(|e| entry_json(e, zone)).collect(),
            ))
            .into_response())
        }
        (Some(from), Some(to)) => {
            let from = parse_instant(&from, "from")?;
            let to = parse_instant(&to, "to")?;
            if to <= from {
                return Err(ApiError::bad("to must be after from"));
            }
            let listing = s.occurrences(u.id, kind, from, to).await?;
            let mut r = (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                occurrences_json(&listing, zone),
            )
                .into_response();
            // The caps, stated in every reply; whether they cut anything off.
            let caps = s.caps();
            let h = r.headers_mut();
            h.insert(
                "Postgate-Occurrence-Limit",
                format!("per-item={}, per-query={}", caps.per_item, caps.per_query)
                    .parse()
                    .expect("ascii"),
            );
            h.insert(
                "Postgate-Truncated",
                if listing.truncated { "true" } else { "false" }
                    .parse()
                    .expect("ascii"),
            );
            Ok(r)
        }
        _ => Err(ApiError::bad("give both from and to, or neither")),
    }
}

async fn list_appointments(
    State(ctx): State<Ctx>,
    Query(range): Query<Range>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    list(&ctx, &headers, range, ItemKind::Appointment).await
}

async fn list_tasks(
    State(ctx): State<Ctx>,
    Query(range): Query<Range>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    list(&ctx, &headers, range, ItemKind::Task).await
}

/// The body of `POST`/`PATCH /api/v1/calendar` and `/api/v1/tasks`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    summary: Option<String>,
    start: Option<String>,
    end: Option<String>,
    due: Option<String>,
    all_day: Option<bool>,
    time_zone: Option<String>,
    location: Option<String>,
    description: Option<String>,
    attendees: Option<Vec<String>>,
    assignees: Option<Vec<String>>,
    rrule: Option<String>,
    priority: Option<u8>,
    percent_complete: Option<u8>,
}

impl Body {
    fn spec(self) -> Spec {
        Spec {
            summary: self.summary,
            start: self.start,
            end: self.end,
            due: self.due,
            all_day: self.all_day,
            time_zone: self.time_zone,
            location: self.location,
            description: self.description,
            attendees: self.attendees.or(self.assignees),
            rrule: self.rrule,
            priority: self.priority,
            percent_complete: self.percent_complete,
        }
    }
}

fn body<T: for<'de> Deserialize<'de>>(bytes: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad(format!("the body is not valid: {e}")))
}

async fn carry_out(ctx: &Ctx, plan: Plan) -> Result<(), ApiError> {
    ctx.delivery.carry_out(plan).await.map_err(|e| match e {
        postgate_store::StoreError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, m),
        e => ApiError::store(e),
    })
}

async fn create(
    ctx: &Ctx,
    headers: &HeaderMap,
    bytes: &Bytes,
    kind: ItemKind,
) -> Result<Response, ApiError> {
    let u = user(ctx, headers).await?;
    let b: Body = body(bytes)?;
    let s = ctx.delivery.scheduler();
    let (plan, uid) = s.create(&u, kind, &b.spec()).await?;
    carry_out(ctx, plan).await?;
    let entry = ctx
        .delivery
        .store()
        .calendar_by_uid(u.id, kind, &uid)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::internal("created object not found"))?;
    tracing::info!(user = %u.address, uid, kind = %kind, "client API: created");
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"id": entry.id, "uid": uid})),
    )
        .into_response())
}

async fn create_appointment(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    create(&ctx, &headers, &bytes, ItemKind::Appointment).await
}

async fn create_task(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    create(&ctx, &headers, &bytes, ItemKind::Task).await
}

async fn entry(ctx: &Ctx, u: &User, id: i64, kind: ItemKind) -> Result<CalendarEntry, ApiError> {
    ctx.delivery
        .store()
        .calendar_entry(u.id, id)
        .await
        .map_err(ApiError::internal)?
        .filter(|e| e.kind == kind)
        .ok_or_else(|| ApiError::from(CalendarError::NotFound))
}

async fn show(
    ctx: &Ctx,
    headers: &HeaderMap,
    id: i64,
    kind: ItemKind,
) -> Result<Response, ApiError> {
    let u = user(ctx, headers).await?;
    let e = entry(ctx, &u, id, kind).await?;
    Ok(axum::Json(entry_json(&e, ctx.delivery.scheduler().context().zone)).into_response())
}

async fn get_appointment(
    State(ctx): State<Ctx>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    show(&ctx, &headers, id, ItemKind::Appointment).await
}

async fn get_task(
    State(ctx): State<Ctx>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    show(&ctx, &headers, id, ItemKind::Task).await
}

async fn patch(
    ctx: &Ctx,
    headers: &HeaderMap,
    id: i64,
    bytes: &Bytes,
    kind: ItemKind,
) -> Result<Response, ApiError> {
    let u = user(ctx, headers).await?;
    let b: Body = body(bytes)?;
    let e = entry(ctx, &u, id, kind).await?;
    let plan = ctx.delivery.scheduler().update(&u, &e, &b.spec()).await?;
    carry_out(ctx, plan).await?;
    show(ctx, headers, id, kind).await
}

async fn patch_appointment(
    State(ctx): State<Ctx>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    patch(&ctx, &headers, id, &bytes, ItemKind::Appointment).await
}

async fn patch_task(
    State(ctx): State<Ctx>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    patch(&ctx, &headers, id, &bytes, ItemKind::Task).await
}

async fn delete(
    ctx: &Ctx,
    headers: &HeaderMap,
    id: i64,
    kind: ItemKind,
) -> Result<Response, ApiError> {
    let u = user(ctx, headers).await?;
    let e = entry(ctx, &u, id, kind).await?;
    let plan = ctx.delivery.scheduler().delete(&u, &e).await?;
    carry_out(ctx, plan).await?;
    tracing::info!(user = %u.address, uid = %e.object.uid, "client API: deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn delete_appointment(
    State(ctx): State<Ctx>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    delete(&ctx, &headers, id, ItemKind::Appointment).await
}

async fn delete_task(
    State(ctx): State<Ctx>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    delete(&ctx, &headers, id, ItemKind::Task).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplyBody {
    partstat: String,
    comment: Option<String>,
    recurrence_id: Option<String>,
}

async fn reply(
    State(ctx): State<Ctx>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let u = user(&ctx, &headers).await?;
    let b: ReplyBody = body(&bytes)?;
    let partstat = PartStat::parse(&b.partstat);
    if !matches!(
        partstat,
        PartStat::Accepted | PartStat::Declined | PartStat::Tentative
    ) {
        return Err(ApiError::bad("partstat is ACCEPTED, DECLINED or TENTATIVE"));
    }
    let rid = b
        .recurrence_id
        .as_deref()
        .map(|r| parse_instant(r, "recurrence_id"))
        .transpose()?;
    let e = entry(&ctx, &u, id, ItemKind::Appointment).await?;
    let plan = ctx
        .delivery
        .scheduler()
        .reply(&u, &e, &partstat, b.comment.as_deref(), rid)
        .await?;
    carry_out(&ctx, plan).await?;
    tracing::info!(user = %u.address, uid = %e.object.uid, partstat = %partstat, "client API: answered");
    show(&ctx, &headers, id, ItemKind::Appointment).await
}

async fn complete(
    State(ctx): State<Ctx>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let u = user(&ctx, &headers).await?;
    let e = entry(&ctx, &u, id, ItemKind::Task).await?;
    let plan = ctx.delivery.scheduler().complete(&u, &e).await?;
    carry_out(&ctx, plan).await?;
    show(&ctx, &headers, id, ItemKind::Task).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeclineBody {
    comment: Option<String>,
}

async fn accept_counter(
    State(ctx): State<Ctx>,
    Path((id, n)): Path<(i64, usize)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let u = user(&ctx, &headers).await?;
    let e = entry(&ctx, &u, id, ItemKind::Appointment).await?;
    let plan = ctx.delivery.scheduler().accept_counter(&u, &e, n).await?;
    carry_out(&ctx, plan).await?;
    show(&ctx, &headers, id, ItemKind::Appointment).await
}

async fn decline_counter(
    State(ctx): State<Ctx>,
    Path((id, n)): Path<(i64, usize)>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let u = user(&ctx, &headers).await?;
    let b: DeclineBody = if bytes.is_empty() {
        DeclineBody::default()
    } else {
        body(&bytes)?
    };
    let e = entry(&ctx, &u, id, ItemKind::Appointment).await?;
    let plan = ctx
        .delivery
        .scheduler()
        .decline_counter(&u, &e, n, b.comment.as_deref())
        .await?;
    carry_out(&ctx, plan).await?;
    show(&ctx, &headers, id, ItemKind::Appointment).await
}

/// `POST /api/v1/calendar/import`: a text/calendar body.
async fn import(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let u = user(&ctx, &headers).await?;
    let text = String::from_utf8_lossy(&bytes);
    let postgate_calendar::organize::Import {
        plan,
        imported: done,
        problems,
    } = ctx.delivery.scheduler().import(&u, &text)?;
    carry_out(&ctx, plan).await?;
    let mut imported = Vec::new();
    for (kind, uid) in done {
        let id = ctx
            .delivery
            .store()
            .calendar_by_uid(u.id, kind, &uid)
            .await
            .map_err(ApiError::internal)?
            .map(|e| e.id);
        imported.push(json!({"kind": kind, "uid": uid, "id": id}));
    }
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"imported": imported, "problems": problems})),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
struct FreeBusyQuery {
    users: String,
    from: String,
    to: String,
}

/// `GET /api/v1/freebusy?users=a@x,b@x&from=&to=`.
async fn freebusy(
    State(ctx): State<Ctx>,
    Query(q): Query<FreeBusyQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let _ = user(&ctx, &headers).await?;
    let from = parse_instant(&q.from, "from")?;
    let to = parse_instant(&q.to, "to")?;
    if to <= from || to - from > 366 * 86400 {
        return Err(ApiError::bad(
            "from and to must span up to a year, to after from",
        ));
    }
    let store = ctx.delivery.store();
    let mut out: HashMap<String, Value> = HashMap::new();
    for addr in q
        .users
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .take(100)
    {
        let Ok(a) = EmailAddress::parse(addr) else {
            out.insert(addr.to_string(), json!({"error": "not an address"}));
            continue;
        };
        let Some(target) = store.user(&a).await.map_err(ApiError::internal)? else {
            out.insert(
                addr.to_string(),
                json!({"error": "not a user of this post office"}),
            );
            continue;
        };
        let busy = ctx
            .delivery
            .scheduler()
            .freebusy(target.id, from, to)
            .await?;
        let utc = |t: i64| {
            chrono::DateTime::from_timestamp(t, 0)
                .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        };
        out.insert(
            addr.to_string(),
            Value::Array(
                busy.iter()
                    .map(|b| json!({"start": utc(b.start), "end": utc(b.end), "type": b.kind}))
                    .collect(),
            ),
        );
    }
    Ok(axum::Json(json!(out)).into_response())
}
