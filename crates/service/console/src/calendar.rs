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
use postgate_ical::expand::Occurrence;
use postgate_ical::itip::component_of;
use postgate_ical::zone::of_time;
use postgate_store::{CalendarEntry, User};
use postgate_types::calendar::{CalTime, CalendarComponent, CalendarObject, PartStat};
use postgate_types::{EmailAddress, ItemKind};
use serde::Deserialize;
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
            CalendarError::Store(e) => ApiError::internal(e),
        }
    }
}

/// How the times of one object are shown.
struct Shown<'a> {
    obj: &'a CalendarObject,
    default: Tz,
}

/// An instant as RFC 3339 in the offset of `like`'s zone; a date for DATEs.
fn at(utc: i64, like: &CalTime, shown: &Shown<'_>) -> Value {
    let zone = of_time(shown.obj, like, shown.default);
    if like.is_date() {
        return json!(zone.to_local(utc).date().to_string());
    }
    let offset = zone.offset_at(utc);
    match chrono::FixedOffset::east_opt(offset)
        .and_then(|o| chrono::DateTime::from_timestamp(utc, 0).map(|t| t.with_timezone(&o)))
    {
        Some(t) if offset == 0 => json!(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        Some(t) => json!(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, false)),
        None => Value::Null,
    }
}

fn time(t: Option<&CalTime>, shown: &Shown<'_>) -> Value {
    t.map(|t| at(t.utc, t, shown)).unwrap_or(Value::Null)
}

fn component_json(
    kind: ItemKind,
    c: &CalendarComponent,
    shown: &Shown<'_>,
    span: Option<(i64, i64)>,
) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    let attendees: Vec<Value> = c
        .attendees
        .iter()
        .map(|a| {
            json!({
                "email": a.email,
                "name": a.name,
                "partstat": a.partstat.as_str(),
                "role": a.role.as_str(),
                "rsvp": a.rsvp,
            })
        })
        .collect();
    m.insert("summary".into(), json!(c.summary));
    let (start, end) = match (span, &c.start) {
        (Some((s, e)), Some(like)) => (
            at(s, like, shown),
            at(e, c.end.as_ref().unwrap_or(like), shown),
        ),
        _ => (time(c.start.as_ref(), shown), time(c.end.as_ref(), shown)),
    };
    m.insert("start".into(), start);
    if kind == ItemKind::Appointment {
        m.insert("end".into(), end);
    }
    m.insert("all_day".into(), json!(c.all_day));
    m.insert("time_zone".into(), json!(c.time_zone));
    m.insert("location".into(), json!(c.location));
    m.insert("description".into(), json!(c.description));
    m.insert(
        "organizer".into(),
        c.organizer
            .as_ref()
            .map(|o| json!({"email": o.email, "name": o.name}))
            .unwrap_or(Value::Null),
    );
    m.insert(
        if kind == ItemKind::Task {
            "assignees"
        } else {
            "attendees"
        }
        .into(),
        Value::Array(attendees),
    );
    m.insert(
        "status".into(),
        json!(c.status.as_ref().map(|s| s.as_str())),
    );
    m.insert("sequence".into(), json!(c.sequence));
    m.insert("rrule".into(), json!(c.rrule));
    if !c.categories.is_empty() {
        m.insert("categories".into(), json!(c.categories));
    }
    if kind == ItemKind::Task {
        m.insert("due".into(), time(c.due.as_ref(), shown));
        m.insert("priority".into(), json!(c.priority));
        m.insert("percent_complete".into(), json!(c.percent_complete));
        m.insert(
            "completed".into(),
            json!(
                c.completed
                    .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
                    .map(|t| t.to_rfc3339())
            ),
        );
    }
    m
}

fn entry_json(e: &CalendarEntry, default: Tz) -> Value {
    let shown = Shown {
        obj: &e.object,
        default,
    };
    let c = e.object.main().cloned().unwrap_or_default();
    let mut m = component_json(e.kind, &c, &shown, None);
    m.insert("id".into(), json!(e.id));
    m.insert("uid".into(), json!(e.object.uid));
    m.insert("kind".into(), json!(e.kind));
    if !e.object.overrides.is_empty() && e.object.master.is_some() {
        m.insert(
            "overridden_instances".into(),
            json!(e.object.overrides.len()),
        );
    }
    if !c.exdates.is_empty() {
        m.insert(
            "exdates".into(),
            Value::Array(c.exdates.iter().map(|x| at(x.utc, x, &shown)).collect()),
        );
    }
    if !e.object.counters.is_empty() {
        m.insert(
            "counters".into(),
            Value::Array(
                e.object
                    .counters
                    .iter()
                    .enumerate()
                    .map(|(i, k)| {
                        json!({
                            "index": i,
                            "from": k.from,
                            "recurrence_id": k.recurrence_id.as_ref().map(|r| at(r.utc, r, &shown)),
                            "start": time(k.start.as_ref(), &shown),
                            "end": time(k.end.as_ref(), &shown),
                            "location": k.location,
                            "comment": k.comment,
                        })
                    })
                    .collect(),
            ),
        );
    }
    Value::Object(m)
}

fn occurrence_json(e: &CalendarEntry, o: &Occurrence, default: Tz) -> Value {
    let shown = Shown {
        obj: &e.object,
        default,
    };
    let c = component_of(&e.object, o.source)
        .cloned()
        .unwrap_or_default();
    let mut m = component_json(e.kind, &c, &shown, Some((o.start, o.end)));
    m.insert("id".into(), json!(e.id));
    m.insert("uid".into(), json!(e.object.uid));
    m.insert(
        "recurrence_id".into(),
        match (
            o.recurrence_id,
            e.object.main().and_then(|m| m.start.as_ref()),
        ) {
            (Some(r), Some(like)) => at(r, like, &shown),
            _ => Value::Null,
        },
    );
    Value::Object(m)
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
            let body: Vec<Value> = listing
                .occurrences
                .iter()
                .map(|(i, o)| occurrence_json(&listing.entries[*i], o, zone))
                .collect();
            let mut r = axum::Json(Value::Array(body)).into_response();
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
        e => ApiError::internal(e),
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
