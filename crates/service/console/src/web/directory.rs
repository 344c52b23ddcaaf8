//! The directory: users (search, view, add, edit, password, groups, class of
//! service and why), domains with their post offices, groups, aliases.
use super::{Admin, PageResult, Problem, WebState, after, enc, given, page, page_number, pager};
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use maud::html;
use postgate_store::{NewUser, UserFilter, UserUpdate};
use postgate_types::{EmailAddress, Secret};
use std::collections::HashMap;

/// Users per page.
const PAGE: usize = 50;

pub(crate) fn routes(r: Router<WebState>) -> Router<WebState> {
    r.route("/console/directory", get(directory))
        .route("/console/domains", get(domains))
        .route("/console/groups", get(groups))
        .route("/console/users/new", get(new_user_form).post(new_user))
        .route("/console/users/{address}", get(user).post(edit_user))
        .route("/console/users/{address}/password", post(reset_password))
        .route("/console/users/{address}/groups", post(membership))
        .route("/console/users/{address}/aliases", post(aliases))
}

fn parse(address: &str) -> Result<EmailAddress, Problem> {
    EmailAddress::parse(address.trim())
        .map_err(|e| Problem::bad(format!("{address:?} is not an address: {e}")))
}

fn user_href(a: &EmailAddress) -> String {
    format!("/console/users/{}", enc(&a.to_string()))
}

/// The directory's sub-navigation.
fn tabs(current: &str) -> maud::Markup {
    html! {
        nav aria-label="Directory" class="tabs" {
            ul {
                @for (href, label) in [("/console/directory", "Users"), ("/console/groups", "Groups"), ("/console/domains", "Domains and post offices"), ("/console/users/new", "Add user")] {
                    li {
                        @if label == current { a href=(href) aria-current="page" { (label) } }
                        @else { a href=(href) { (label) } }
                    }
                }
            }
        }
    }
}

async fn directory(
    State(web): State<WebState>,
    admin: Admin,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let text = given(q.get("q"));
    let domain = given(q.get("domain"));
    let page_no = page_number(&q);
    let (users, total) = web
        .ctx
        .delivery
        .store()
        .find_users(
            UserFilter {
                text: text.clone(),
                domain: domain.clone(),
            },
            (page_no - 1) * PAGE,
            PAGE,
        )
        .await?;
    let pages = (total as usize).div_ceil(PAGE).max(1);
    let keep = format!(
        "q={}&domain={}",
        enc(text.as_deref().unwrap_or("")),
        enc(domain.as_deref().unwrap_or(""))
    );
    let body = html! {
        main id="directory" {
            h1 { "Directory" }
            (tabs("Users"))
            form id="user-search" method="get" action="/console/directory" class="inline" {
                label for="user-q" { "Name or address" }
                input id="user-q" type="search" name="q" value=(text.as_deref().unwrap_or(""));
                @if let Some(d) = &domain { input type="hidden" name="domain" value=(d); }
                button type="submit" { "Search" }
            }
            p id="user-count" { (total) (if total == 1 { " user" } else { " users" }) @if pages > 1 { ", page " (page_no) " of " (pages) } "." }
            div class="scroll" {
                table id="users" {
                    thead { tr {
                        th scope="col" { "Address" } th scope="col" { "Name" } th scope="col" { "Post office" }
                        th scope="col" { "Title" } th scope="col" { "Department" }
                    } }
                    tbody {
                        @for u in &users {
                            tr data-address=(u.address.to_string()) {
                                td { a href=(user_href(&u.address)) { (u.address.to_string()) } }
                                td { (u.display_name) }
                                td { (u.post_office) }
                                td { (u.title.as_deref().unwrap_or("")) }
                                td { (u.department.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
            }
            (pager("/console/directory", &keep, page_no, pages))
        }
    };
    Ok(page(&admin, "Directory", "directory", body))
}

async fn domains(State(web): State<WebState>, admin: Admin) -> PageResult {
    let domains = web.ctx.delivery.store().list_domains().await?;
    let body = html! {
        main id="domains" {
            h1 { "Domains and post offices" }
            (tabs("Domains and post offices"))
            table id="domain-list" {
                thead { tr { th scope="col" { "Domain" } th scope="col" { "Post offices" } th scope="col" { "Users" } } }
                tbody {
                    @for d in &domains {
                        tr data-domain=(d.name) {
                            td { a href=(format!("/console/directory?domain={}", enc(&d.name))) { (d.name) } }
                            td { (d.post_offices.join(", ")) }
                            td class="num" { (d.users) }
                        }
                    }
                }
            }
        }
    };
    Ok(page(&admin, "Domains", "directory", body))
}

async fn groups(State(web): State<WebState>, admin: Admin) -> PageResult {
    let groups = web.ctx.delivery.store().list_groups(None).await?;
    let body = html! {
        main id="groups" {
            h1 { "Groups" }
            (tabs("Groups"))
            table id="group-list" {
                thead { tr { th scope="col" { "Group" } th scope="col" { "Name" } th scope="col" { "Members" } } }
                tbody {
                    @for g in &groups {
                        tr data-group=(g.address.to_string()) {
                            td { (g.address.to_string()) }
                            td { (g.display_name) }
                            td { ul class="plain" {
                                @for m in &g.members { li { a href=(user_href(m)) { (m.to_string()) } } }
                            } }
                        }
                    }
                }
            }
        }
    };
    Ok(page(&admin, "Groups", "directory", body))
}

async fn new_user_form(admin: Admin) -> PageResult {
    let body = html! {
        main id="new-user" {
            h1 { "Add a user" }
            (tabs("Add user"))
            form id="new-user-form" method="post" action="/console/users/new" {
                (admin.csrf_field())
                p { label for="nu-address" { "Address" } input id="nu-address" type="email" name="address" required; }
                p { label for="nu-name" { "Name" } input id="nu-name" name="display_name" required; }
                p { label for="nu-po" { "Post office (default: the domain's first)" } input id="nu-po" name="post_office"; }
                p { label for="nu-title" { "Title" } input id="nu-title" name="title"; }
                p { label for="nu-dept" { "Department" } input id="nu-dept" name="department"; }
                p { label for="nu-phone" { "Phone" } input id="nu-phone" type="tel" name="phone"; }
                p { label for="nu-password" { "Password" } input id="nu-password" type="password" name="password" autocomplete="new-password"; }
                p { button type="submit" { "Add user" } }
            }
        }
    };
    Ok(page(&admin, "Add user", "directory", body))
}

async fn new_user(
    State(web): State<WebState>,
    admin: Admin,
    Form(f): Form<HashMap<String, String>>,
) -> PageResult {
    admin.check(&f)?;
    let address = match given(f.get("address")).map(|a| EmailAddress::parse(&a)) {
        Some(Ok(a)) => a,
        _ => {
            web.flash_error(&admin, "Give the new user's address.");
            return Ok(Redirect::to("/console/users/new").into_response());
        }
    };
    let name = given(f.get("display_name")).unwrap_or_else(|| address.local().to_string());
    let password_hash = match given(f.get("password")) {
        Some(p) => Some(
            postgate_store::password::hash_blocking(Secret::new(p))
                .await
                .map_err(Problem::internal)?,
        ),
        None => None,
    };
    let words: Vec<&str> = name.split_whitespace().collect();
    let r = web
        .ctx
        .delivery
        .store()
        .add_user(NewUser {
            address: address.clone(),
            post_office: given(f.get("post_office")),
            display_name: name.clone(),
            given_name: words.first().map(|s| s.to_string()),
            surname: (words.len() > 1).then(|| words[words.len() - 1].to_string()),
            title: given(f.get("title")),
            department: given(f.get("department")),
            phone: given(f.get("phone")),
            password_hash,
        })
        .await;
    if r.is_ok() {
        admin.audit("user add", &address.to_string());
    }
    let to = if r.is_ok() {
        user_href(&address)
    } else {
        "/console/users/new".to_string()
    };
    after(&web, &admin, &to, r, |u| {
        format!("User {} added.", u.address)
    })
}

async fn user(
    State(web): State<WebState>,
    admin: Admin,
    Path(address): Path<String>,
) -> PageResult {
    let address = parse(&address)?;
    let store = web.ctx.delivery.store();
    let u = store
        .user(&address)
        .await?
        .ok_or_else(|| Problem::not_found(format!("No user {address}.")))?;
    let groups = store.groups_of(&u).await?;
    let class = web.ctx.auth.policy().class_of(&u).await?;
    let is_admin = store.is_console_admin(u.id).await?;
    let href = user_href(&u.address);
    let body = html! {
        main id="user" {
            h1 { (u.display_name) " " small { "<" (u.address.to_string()) ">" } }
            dl {
                dt { "Post office" } dd { (u.post_office) }
                dt { "Password" } dd { (if u.has_password { "set" } else { "none: cannot sign in" }) }
                dt { "Console administrator" } dd { (if is_admin { "yes" } else { "no" }) }
                dt { "Aliases" } dd {
                    @if u.aliases.is_empty() { "none" }
                    @else { (u.aliases.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", ")) }
                }
            }
            h2 { "Class of service" }
            dl id="class-of-service" {
                dt { "Class" } dd { a href="/console/access" { (class.class) } }
                dt { "Why" } dd {
                    @match &class.origin {
                        Some(o) => { "assigned to " (o.to_string()) }
                        None => { "the built-in default: no class is assigned to the user, their groups, post office or domain" }
                    }
                }
            }
            h2 { "Details" }
            form id="edit-user" method="post" action=(href) {
                (admin.csrf_field())
                p { label for="eu-name" { "Name" } input id="eu-name" name="display_name" value=(u.display_name) required; }
                p { label for="eu-title" { "Title" } input id="eu-title" name="title" value=(u.title.as_deref().unwrap_or("")); }
                p { label for="eu-dept" { "Department" } input id="eu-dept" name="department" value=(u.department.as_deref().unwrap_or("")); }
                p { label for="eu-phone" { "Phone" } input id="eu-phone" type="tel" name="phone" value=(u.phone.as_deref().unwrap_or("")); }
                p { button type="submit" { "Save" } }
            }
            h2 { "Password" }
            form id="reset-password" method="post" action=(format!("{href}/password")) {
                (admin.csrf_field())
                p { label for="rp-password" { "New password" } input id="rp-password" type="password" name="password" autocomplete="new-password" required; }
                p { button type="submit" { "Set password" } }
            }
            section id="membership" {
                h2 { "Groups" }
                @if groups.is_empty() { p { "Member of no group." } }
                ul {
                    @for g in &groups {
                        li {
                            form method="post" action=(format!("{href}/groups")) class="inline" {
                                (admin.csrf_field())
                                (g.to_string()) " "
                                input type="hidden" name="group" value=(g.to_string());
                                input type="hidden" name="op" value="remove";
                                button type="submit" { "Leave" }
                            }
                        }
                    }
                }
                form id="add-member" method="post" action=(format!("{href}/groups")) class="inline" {
                    (admin.csrf_field())
                    input type="hidden" name="op" value="add";
                    label for="am-group" { "Group address" }
                    input id="am-group" type="email" name="group" required;
                    button type="submit" { "Add to group" }
                }
            }
            section id="aliases" {
                h2 { "Aliases" }
                form id="add-alias" method="post" action=(format!("{href}/aliases")) class="inline" {
                    (admin.csrf_field())
                    input type="hidden" name="op" value="add";
                    label for="aa-alias" { "New alias" }
                    input id="aa-alias" type="email" name="alias" required;
                    button type="submit" { "Add alias" }
                }
                @for a in &u.aliases {
                    form method="post" action=(format!("{href}/aliases")) class="inline" {
                        (admin.csrf_field())
                        (a.to_string()) " "
                        input type="hidden" name="alias" value=(a.to_string());
                        input type="hidden" name="op" value="remove";
                        button type="submit" { "Remove alias" }
                    }
                }
            }
        }
    };
    Ok(page(&admin, &u.display_name, "directory", body))
}

/// An optional field: empty clears it.
fn field(f: &HashMap<String, String>, k: &str) -> Option<Option<String>> {
    f.get(k).map(|v| {
        let v = v.trim();
        (!v.is_empty()).then(|| v.to_string())
    })
}

async fn edit_user(
    State(web): State<WebState>,
    admin: Admin,
    Path(address): Path<String>,
    Form(f): Form<HashMap<String, String>>,
) -> PageResult {
    admin.check(&f)?;
    let address = parse(&address)?;
    let update = UserUpdate {
        display_name: given(f.get("display_name")),
        title: field(&f, "title"),
        department: field(&f, "department"),
        phone: field(&f, "phone"),
    };
    let r = web.ctx.delivery.store().update_user(&address, update).await;
    admin.audit("user edit", &address.to_string());
    after(&web, &admin, &user_href(&address), r, |u| {
        format!("{} saved.", u.address)
    })
}

async fn reset_password(
    State(web): State<WebState>,
    admin: Admin,
    Path(address): Path<String>,
    Form(f): Form<HashMap<String, String>>,
) -> PageResult {
    admin.check(&f)?;
    let address = parse(&address)?;
    let Some(pw) = f.get("password").filter(|p| !p.is_empty()) else {
        web.flash_error(&admin, "Give the new password.");
        return Ok(Redirect::to(&user_href(&address)).into_response());
    };
    let hash = postgate_store::password::hash_blocking(Secret::new(pw.clone()))
        .await
        .map_err(Problem::internal)?;
    let r = web
        .ctx
        .delivery
        .store()
        .set_password_hash(&address, Some(hash))
        .await;
    admin.audit("user password", &address.to_string());
    after(&web, &admin, &user_href(&address), r, |_| {
        format!("Password of {address} set.")
    })
}

async fn membership(
    State(web): State<WebState>,
    admin: Admin,
    Path(address): Path<String>,
    Form(f): Form<HashMap<String, String>>,
) -> PageResult {
    admin.check(&f)?;
    let address = parse(&address)?;
    let group = parse(f.get("group").map(String::as_str).unwrap_or(""))?;
    let store = web.ctx.delivery.store();
    let remove = f.get("op").map(String::as_str) == Some("remove");
    let r = if remove {
        store.remove_group_member(&group, &address).await
    } else {
        store.add_group_member(&group, &address).await
    };
    admin.audit(
        if remove {
            "group member remove"
        } else {
            "group member add"
        },
        &format!("{group} {address}"),
    );
    after(&web, &admin, &user_href(&address), r, |_| {
        if remove {
            format!("{address} left {group}.")
        } else {
            format!("{address} added to {group}.")
        }
    })
}

async fn aliases(
    State(web): State<WebState>,
    admin: Admin,
    Path(address): Path<String>,
    Form(f): Form<HashMap<String, String>>,
) -> PageResult {
    admin.check(&f)?;
    let address = parse(&address)?;
    let alias = parse(f.get("alias").map(String::as_str).unwrap_or(""))?;
    let store = web.ctx.delivery.store();
    let remove = f.get("op").map(String::as_str) == Some("remove");
    let r = if remove {
        store.remove_alias(&alias).await
    } else {
        store.add_alias(&alias, &address).await
    };
    admin.audit(
        if remove { "alias remove" } else { "alias add" },
        &format!("{alias} {address}"),
    );
    after(&web, &admin, &user_href(&address), r, |_| {
        if remove {
            format!("Alias {alias} removed.")
        } else {
            format!("Alias {alias} added.")
        }
    })
}
