//! Access control: classes of service, their settings and assignments, and
//! blocked hosts, editable. The same store calls as `postgate class` and
//! `postgate block`; the policy sees a change at its next look at the
//! directory generation.
use super::{Admin, PageResult, Problem, WebState, after, enc, given, page};
use axum::Router;
use axum::extract::{Form, Path, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use maud::html;
use postgate_types::access::{Assignee, Block, CLASS_KEYS, Direction, Pattern};
use std::collections::HashMap;

pub(crate) fn routes(r: Router<WebState>) -> Router<WebState> {
    r.route("/console/access", get(access))
        .route("/console/access/classes", post(new_class))
        .route("/console/access/classes/{name}", post(set_class))
        .route("/console/access/assign", post(assign))
        .route("/console/access/blocks", post(block))
}

const TO: &str = "/console/access";

async fn access(State(web): State<WebState>, admin: Admin) -> PageResult {
    let store = web.ctx.delivery.store();
    let classes = store.classes().await?;
    let blocks = store.blocks().await?;
    let body = html! {
        main id="access" {
            h1 { "Access control" }
            h2 { "Classes of service" }
            p { "A user gets the class assigned to them, else to one of their groups, else to their post office, else to their domain, else the built-in default (everything allowed)." }
            div class="scroll" {
                table id="classes" {
                    thead { tr {
                        th scope="col" { "Class" } th scope="col" { "Settings" } th scope="col" { "Change a setting" }
                    } }
                    tbody {
                        @for c in &classes {
                            tr data-class=(c.name) {
                                th scope="row" { (c.name) @if !c.description.is_empty() { br; small { (c.description) } } }
                                td { dl class="settings" {
                                    @for (k, v) in c.settings.entries() { dt { (k) } dd data-key=(k) { (v) } }
                                } }
                                td {
                                    form class="set-class" method="post" action=(format!("/console/access/classes/{}", enc(&c.name))) {
                                        (admin.csrf_field())
                                        label for=(format!("key-{}", c.name)) { "Setting" }
                                        select id=(format!("key-{}", c.name)) name="key" {
                                            @for k in CLASS_KEYS { option value=(k) { (k) } }
                                        }
                                        label for=(format!("value-{}", c.name)) { "Value" }
                                        input id=(format!("value-{}", c.name)) name="value" required;
                                        button type="submit" { "Set" }
                                    }
                                    form method="post" action=(format!("/console/access/classes/{}", enc(&c.name))) {
                                        (admin.csrf_field())
                                        input type="hidden" name="op" value="remove";
                                        button type="submit" { "Remove class" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            form id="new-class" method="post" action="/console/access/classes" class="inline" {
                (admin.csrf_field())
                label for="nc-name" { "New class" }
                input id="nc-name" name="name" required;
                label for="nc-desc" { "Description" }
                input id="nc-desc" name="description";
                button type="submit" { "Add class" }
            }
            h2 { "Assignments" }
            table id="assignments" {
                thead { tr { th scope="col" { "Class" } th scope="col" { "Assigned to" } th scope="col" { "" } } }
                tbody {
                    @for c in &classes {
                        @for a in &c.assigned {
                            tr {
                                td { (c.name) }
                                td { (a.to_string()) }
                                td {
                                    form method="post" action="/console/access/assign" {
                                        (admin.csrf_field())
                                        input type="hidden" name="class" value=(c.name);
                                        input type="hidden" name="kind" value=(a.kind());
                                        input type="hidden" name="name" value=(a.name());
                                        input type="hidden" name="op" value="remove";
                                        button type="submit" { "Unassign" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            form id="assign" method="post" action="/console/access/assign" class="inline" {
                (admin.csrf_field())
                label for="as-class" { "Class" }
                select id="as-class" name="class" {
                    @for c in &classes { option value=(c.name) { (c.name) } }
                }
                label for="as-kind" { "to" }
                select id="as-kind" name="kind" {
                    @for (v, t) in [("user", "user"), ("group", "group"), ("post_office", "post office"), ("domain", "domain")] {
                        option value=(v) { (t) }
                    }
                }
                label for="as-name" { "Name or address" }
                input id="as-name" name="name" required;
                button type="submit" { "Assign" }
            }
            h2 { "Blocked hosts" }
            table id="blocks" {
                thead { tr { th scope="col" { "Pattern" } th scope="col" { "Direction" } th scope="col" { "Why" } th scope="col" { "" } } }
                tbody {
                    @for b in &blocks {
                        tr data-pattern=(b.pattern) {
                            td { code { (b.pattern) } }
                            td { (b.direction.as_str()) }
                            td { (b.note) }
                            td {
                                form method="post" action="/console/access/blocks" {
                                    (admin.csrf_field())
                                    input type="hidden" name="pattern" value=(b.pattern);
                                    input type="hidden" name="op" value="remove";
                                    button type="submit" { "Remove" }
                                }
                            }
                        }
                    }
                }
            }
            form id="add-block" method="post" action="/console/access/blocks" class="inline" {
                (admin.csrf_field())
                label for="ab-pattern" { "Host, domain, *.domain, address or network" }
                input id="ab-pattern" name="pattern" required;
                label for="ab-direction" { "Direction" }
                select id="ab-direction" name="direction" {
                    @for d in ["in", "out", "both"] { option value=(d) { (d) } }
                }
                label for="ab-reason" { "Why" }
                input id="ab-reason" name="reason";
                button type="submit" { "Block" }
            }
        }
    };
    Ok(page(&admin, "Access control", "access", body))
}

async fn new_class(
    State(web): State<WebState>,
    admin: Admin,
    Form(f): Form<HashMap<String, String>>,
) -> PageResult {
    admin.check(&f)?;
    let name = given(f.get("name")).ok_or_else(|| Problem::bad("Give the class a name."))?;
    let description = given(f.get("description")).unwrap_or_default();
    let r = web
        .ctx
        .delivery
        .store()
        .add_class(&name, &description)
        .await;
    admin.audit("class add", &name);
    after(&web, &admin, TO, r, |_| format!("Class {name} added."))
}

async fn set_class(
    State(web): State<WebState>,
    admin: Admin,
    Path(name): Path<String>,
    Form(f): Form<HashMap<String, String>>,
) -> PageResult {
    admin.check(&f)?;
    let store = web.ctx.delivery.store();
    if f.get("op").map(String::as_str) == Some("remove") {
        let r = store.remove_class(&name).await;
        admin.audit("class remove", &name);
        return after(&web, &admin, TO, r, |_| format!("Class {name} removed."));
    }
    let class = store
        .classes()
        .await?
        .into_iter()
        .find(|c| c.name.eq_ignore_ascii_case(&name))
        .ok_or_else(|| Problem::not_found(format!("No class {name}.")))?;
    let key = f.get("key").map(String::as_str).unwrap_or("");
    let value = f.get("value").map(String::as_str).unwrap_or("").trim();
    let mut settings = class.settings.clone();
    if let Err(e) = settings.set(key, value) {
        web.flash_error(&admin, format!("{key}: {e}"));
        return Ok(axum::response::Redirect::to(TO).into_response());
    }
    let r = store.set_class(&class.name, settings).await;
    admin.audit("class set", &format!("{} {key}={value}", class.name));
    after(&web, &admin, TO, r, |_| {
        format!("Class {}: {key} = {value}.", class.name)
    })
}

async fn assign(
    State(web): State<WebState>,
    admin: Admin,
    Form(f): Form<HashMap<String, String>>,
) -> PageResult {
    admin.check(&f)?;
    let class = given(f.get("class")).ok_or_else(|| Problem::bad("Choose a class."))?;
    let kind = f.get("kind").map(String::as_str).unwrap_or("");
    let name = given(f.get("name"))
        .unwrap_or_default()
        .to_ascii_lowercase();
    let Some(to) = Assignee::from_parts(kind, &name) else {
        web.flash_error(
            &admin,
            format!("{kind} {name:?}: not something a class is assigned to."),
        );
        return Ok(axum::response::Redirect::to(TO).into_response());
    };
    let store = web.ctx.delivery.store();
    let remove = f.get("op").map(String::as_str) == Some("remove");
    let r = if remove {
        store.unassign_class(&class, to.clone()).await
    } else {
        store.assign_class(&class, to.clone()).await
    };
    admin.audit(
        if remove {
            "class unassign"
        } else {
            "class assign"
        },
        &format!("{class} {to}"),
    );
    after(&web, &admin, TO, r, |_| {
        if remove {
            format!("Class {class} no longer assigned to {to}.")
        } else {
            format!("Class {class} assigned to {to}.")
        }
    })
}

async fn block(
    State(web): State<WebState>,
    admin: Admin,
    Form(f): Form<HashMap<String, String>>,
) -> PageResult {
    admin.check(&f)?;
    let store = web.ctx.delivery.store();
    let pattern = given(f.get("pattern"))
        .unwrap_or_default()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    if f.get("op").map(String::as_str) == Some("remove") {
        let r = store.remove_block(&pattern).await;
        admin.audit("block remove", &pattern);
        return after(&web, &admin, TO, r, |found| {
            if found {
                format!("{pattern} unblocked.")
            } else {
                format!("{pattern} was not blocked.")
            }
        });
    }
    if Pattern::parse(&pattern).is_none() {
        web.flash_error(
            &admin,
            format!("{pattern:?} is not an address, network, host, domain or *.domain."),
        );
        return Ok(axum::response::Redirect::to(TO).into_response());
    }
    let direction = Direction::parse(f.get("direction").map(String::as_str).unwrap_or("in"))
        .unwrap_or(Direction::In);
    let r = store
        .add_block(Block {
            pattern: pattern.clone(),
            direction,
            note: given(f.get("reason")).unwrap_or_default(),
        })
        .await;
    admin.audit("block add", &pattern);
    after(&web, &admin, TO, r, |_| {
        format!("{pattern} blocked ({}).", direction.as_str())
    })
}
