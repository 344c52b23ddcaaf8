//! The outbound queue: a filtered, paged list, each entry's recipients, and
//! retry, hold, release, remove and flush behind a confirmation page.
use super::{
    Admin, PageResult, Problem, WebState, age, confirm, enc, given, page, page_number, pager, size,
    when,
};
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use maud::html;
use postgate_store::{QueueFilter, QueuedMessage, QueuedRcpt};
use std::collections::HashMap;

/// Entries per page.
const PAGE: usize = 50;

pub(crate) fn routes(r: Router<WebState>) -> Router<WebState> {
    r.route("/console/queue", get(list))
        .route("/console/queue/flush", get(flush_confirm).post(flush))
        .route("/console/queue/{id}", get(entry))
        .route(
            "/console/queue/{id}/{action}",
            get(action_confirm).post(action),
        )
}

/// What a recipient is waiting for, as the list shows it.
fn state(r: &QueuedRcpt) -> &'static str {
    match r.status.as_str() {
        "held" => "held",
        "queued" if r.attempts == 0 => "due",
        "queued" => "deferred",
        "sending" | "claimed" | "in_flight" => "being sent",
        _ => "waiting",
    }
}

fn recipients(m: &QueuedMessage) -> String {
    let mut s: Vec<&str> = m.rcpts.iter().take(3).map(|r| r.address.as_str()).collect();
    if m.rcpts.len() > 3 {
        s.push("…");
    }
    s.join(", ")
}

fn sender(m: &QueuedMessage) -> &str {
    if m.outbound.mail_from.is_empty() {
        "<>"
    } else {
        &m.outbound.mail_from
    }
}

async fn list(
    State(web): State<WebState>,
    admin: Admin,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let state_f = given(q.get("state"));
    let domain = given(q.get("domain")).map(|d| d.to_ascii_lowercase());
    let sender_f = given(q.get("sender"));
    let age_min = given(q.get("age")).and_then(|a| a.parse::<i64>().ok());
    let page_no = page_number(&q);
    let now = super::now();
    let filter = QueueFilter {
        state: state_f.clone(),
        domain: domain.clone(),
        sender: sender_f.clone(),
        created_before: age_min.map(|m| now - m * 60),
    };
    let (entries, total) = web
        .ctx
        .delivery
        .store()
        .queue_page(filter, (page_no - 1) * PAGE, PAGE)
        .await?;
    let pages = (total as usize).div_ceil(PAGE).max(1);
    let keep = format!(
        "state={}&domain={}&sender={}&age={}",
        enc(state_f.as_deref().unwrap_or("")),
        enc(domain.as_deref().unwrap_or("")),
        enc(sender_f.as_deref().unwrap_or("")),
        age_min.map(|a| a.to_string()).unwrap_or_default()
    );
    let body = html! {
        main id="queue" {
            h1 { "Queue" }
            form id="queue-filter" method="get" action="/console/queue" class="inline" {
                label for="q-state" { "State" }
                select id="q-state" name="state" {
                    @for (v, t) in [("", "any"), ("due", "due"), ("deferred", "deferred"), ("in_flight", "being sent"), ("held", "held")] {
                        option value=(v) selected[state_f.as_deref().unwrap_or("") == v] { (t) }
                    }
                }
                label for="q-domain" { "Destination domain" }
                input id="q-domain" name="domain" value=(domain.as_deref().unwrap_or(""));
                label for="q-sender" { "Sender" }
                input id="q-sender" name="sender" value=(sender_f.as_deref().unwrap_or(""));
                label for="q-age" { "Older than (minutes)" }
                input id="q-age" name="age" type="number" min="0" value=(age_min.map(|a| a.to_string()).unwrap_or_default());
                button type="submit" { "Filter" }
            }
            p id="queue-count" { (total) (if total == 1 { " entry" } else { " entries" }) @if pages > 1 { ", page " (page_no) " of " (pages) } "." }
            p { a href="/console/queue/flush" class="button" { "Flush" } " retries every waiting recipient now." }
            div class="scroll" {
                table id="queue-list" {
                    thead { tr {
                        th scope="col" { "Id" } th scope="col" { "Sender" } th scope="col" { "Recipients" }
                        th scope="col" { "Size" } th scope="col" { "Age" } th scope="col" { "State" }
                        th scope="col" { "Last error" } th scope="col" { "Next attempt" }
                    } }
                    tbody {
                        @for m in &entries {
                            @let first = m.rcpts.iter().find(|r| r.last_error.is_some()).or(m.rcpts.first());
                            tr data-id=(m.id) {
                                td { a href=(format!("/console/queue/{}", m.id)) { (m.id) } }
                                td { (sender(m)) }
                                td { (recipients(m)) }
                                td class="num" { (size(m.size)) }
                                td { (age(now - m.created)) }
                                td { (first.map(state).unwrap_or("")) }
                                td { (first.and_then(|r| r.last_error.as_deref()).unwrap_or("")) }
                                td { @if let Some(r) = first { @if r.status == "held" { "held" } @else { (when(r.next_attempt)) } } }
                            }
                        }
                    }
                }
            }
            (pager("/console/queue", &keep, page_no, pages))
        }
    };
    Ok(page(&admin, "Queue", "queue", body))
}

async fn find(web: &WebState, id: &str) -> Result<QueuedMessage, Problem> {
    let id: i64 = id
        .parse()
        .map_err(|_| Problem::not_found(format!("No queue entry {id}.")))?;
    web.ctx
        .delivery
        .store()
        .queue_get(id)
        .await?
        .ok_or_else(|| {
            Problem::not_found(format!(
                "No queue entry {id}: it was sent, bounced or removed."
            ))
        })
}

async fn entry(State(web): State<WebState>, admin: Admin, Path(id): Path<String>) -> PageResult {
    let m = find(&web, &id).await?;
    let now = super::now();
    let body = html! {
        main id="queue-entry" {
            h1 { "Queue entry " (m.id) }
            dl {
                dt { "Sender" } dd { (sender(&m)) }
                dt { "Size" } dd { (size(m.size)) }
                dt { "Queued" } dd { (when(m.created)) " (" (age(now - m.created)) " ago)" }
                @if let Some(e) = &m.outbound.env_id { dt { "Envelope id" } dd { (e) } }
            }
            h2 { "Recipients" }
            div class="scroll" {
                table id="rcpts" {
                    thead { tr {
                        th scope="col" { "Recipient" } th scope="col" { "State" } th scope="col" { "Attempts" }
                        th scope="col" { "Last error" } th scope="col" { "Next attempt" }
                    } }
                    tbody {
                        @for r in &m.rcpts {
                            tr {
                                td { (r.address) }
                                td { (state(r)) }
                                td class="num" { (r.attempts) }
                                td { (r.last_error.as_deref().unwrap_or("")) }
                                td { @if r.status == "held" { "held" } @else { (when(r.next_attempt)) } }
                            }
                        }
                    }
                }
            }
            ul class="actions" {
                @for (a, t) in [("retry", "Retry"), ("hold", "Hold"), ("release", "Release"), ("remove", "Remove")] {
                    li { a href=(format!("/console/queue/{}/{a}", m.id)) class="button" { (t) } }
                }
            }
        }
    };
    Ok(page(
        &admin,
        &format!("Queue entry {}", m.id),
        "queue",
        body,
    ))
}

fn question(action: &str, id: i64) -> Option<String> {
    Some(match action {
        "retry" => format!("Retry entry {id}'s waiting recipients now?"),
        "hold" => format!("Hold entry {id}? Its recipients are not tried until released."),
        "release" => format!("Release entry {id}? Its held recipients become due now."),
        "remove" => format!("Remove entry {id}? It is dropped without being sent or bounced."),
        _ => return None,
    })
}

async fn action_confirm(
    State(web): State<WebState>,
    admin: Admin,
    Path((id, action)): Path<(String, String)>,
) -> PageResult {
    let m = find(&web, &id).await?;
    let q = question(&action, m.id).ok_or_else(|| Problem::not_found("No such action."))?;
    Ok(confirm(
        &admin,
        "queue",
        &q,
        &format!("/console/queue/{}/{action}", m.id),
        &format!("/console/queue/{}", m.id),
    ))
}

async fn action(
    State(web): State<WebState>,
    admin: Admin,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    admin.check(&form)?;
    let m = find(&web, &id).await?;
    question(&action, m.id).ok_or_else(|| Problem::not_found("No such action."))?;
    let store = web.ctx.delivery.store();
    let id = m.id;
    let (message, to) = match action.as_str() {
        "retry" => {
            let n = store.queue_retry(Some(id)).await?;
            web.ctx.delivery.queue_signal().notify_one();
            (
                format!("Entry {id} will be retried now ({n} recipients)."),
                format!("/console/queue/{id}"),
            )
        }
        "hold" => {
            let n = store.queue_hold(Some(id), true).await?;
            (
                format!("Entry {id} held ({n} recipients)."),
                format!("/console/queue/{id}"),
            )
        }
        "release" => {
            let n = store.queue_hold(Some(id), false).await?;
            web.ctx.delivery.queue_signal().notify_one();
            (
                format!("Entry {id} released ({n} recipients)."),
                format!("/console/queue/{id}"),
            )
        }
        _ => {
            if !store.queue_remove(id).await? {
                return Err(Problem::not_found(format!("No queue entry {id}.")));
            }
            (format!("Entry {id} removed."), "/console/queue".to_string())
        }
    };
    admin.audit(&format!("queue {action}"), &id.to_string());
    web.flash(&admin, message);
    Ok(Redirect::to(&to).into_response())
}

async fn flush_confirm(admin: Admin) -> PageResult {
    Ok(confirm(
        &admin,
        "queue",
        "Flush the queue? Every waiting recipient is tried now (held ones stay held).",
        "/console/queue/flush",
        "/console/queue",
    ))
}

async fn flush(
    State(web): State<WebState>,
    admin: Admin,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    admin.check(&form)?;
    let n = web.ctx.delivery.store().queue_retry(None).await?;
    web.ctx.delivery.queue_signal().notify_one();
    admin.audit("queue flush", "all");
    web.flash(
        &admin,
        format!("Queue flushed: {n} recipients will be tried now."),
    );
    Ok(Redirect::to("/console/queue").into_response())
}
