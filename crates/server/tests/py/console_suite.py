"""Drives the web console (issue 13) with headless Chromium through Playwright.

usage: console_suite.py SETUP_JSON

SETUP_JSON holds: chromium (the browser binary), ports {console, imaps},
artifacts (a directory: screenshots NAME.png, the server's HTML of every page
in html/NAME.html), queue_id (a deferred entry), queue_rcpt (its recipient),
admin, plain, xss ([address, password] each; xss: [address, display name]),
secrets (strings that must never show), config_path.

Every step runs even when an earlier one failed (they share the one signed-in
page but each navigates for itself); a failed step leaves failed-STEP.png.
Prints one line per step, PASS or FAIL with why, and exits 1 if any failed.
The order matters where noted: the throttle step runs last, since ten wrong
passwords from 127.0.0.1 hold every sign-in from there for a while.
"""
import http.client
import imaplib
import json
import os
import re
import ssl
import sys
import time
import traceback
import urllib.parse

from playwright.sync_api import sync_playwright

SETUP = json.loads(sys.argv[1])
PORT = SETUP["ports"]["console"]
IMAPS = SETUP["ports"]["imaps"]
BASE = f"https://127.0.0.1:{PORT}"
ART = SETUP["artifacts"]
HTML = os.path.join(ART, "html")
ADMIN, ADMIN_PW = SETUP["admin"]
PLAIN, PLAIN_PW = SETUP["plain"]
XSS_ADDR, XSS_NAME = SETUP["xss"]
QID = str(SETUP["queue_id"])
QRCPT = SETUP["queue_rcpt"]
NEW_USER, NEW_PW, NEW_PW2 = "carol@example.org", "carol-first-pw", "carol-second-pw"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
TIMEOUT_MS = 15000

os.makedirs(HTML, exist_ok=True)
TLS = ssl.create_default_context()
TLS.check_hostname = False
TLS.verify_mode = ssl.CERT_NONE


class Failed(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failed(msg)


def path_of(url):
    return urllib.parse.urlsplit(url).path


def unquote_path(url):
    return urllib.parse.unquote(path_of(url))


def raw(method, path, cookie=None, body=None):
    """One request with http.client (no cookies but `cookie`, no redirects
    followed): (status, headers dict lowercased, body text)."""
    h = http.client.HTTPSConnection("127.0.0.1", PORT, context=TLS, timeout=30)
    headers = {}
    if cookie:
        headers["Cookie"] = cookie
    if body is not None:
        body = urllib.parse.urlencode(body)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    h.request(method, path, body=body, headers=headers)
    r = h.getresponse()
    text = r.read().decode("utf-8", "replace")
    headers = {}
    for k, v in r.getheaders():  # repeated ones (Set-Cookie) joined
        headers[k.lower()] = f"{headers[k.lower()]}, {v}" if k.lower() in headers else v
    out = (r.status, headers, text)
    h.close()
    return out


def check_headers(headers, what):
    """The headers the contract puts on every page."""
    check(headers.get("content-security-policy") == CSP,
          f"{what}: Content-Security-Policy is {headers.get('content-security-policy')!r}")
    check(headers.get("x-content-type-options") == "nosniff", f"{what}: no X-Content-Type-Options: nosniff")
    check(headers.get("referrer-policy") == "same-origin", f"{what}: Referrer-Policy {headers.get('referrer-policy')!r}")
    check("no-store" in headers.get("cache-control", ""), f"{what}: Cache-Control {headers.get('cache-control')!r}")


INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "an inline <script>"),
    (re.compile(r"<style\b", re.I), "a <style> element"),
    (re.compile(r"\sstyle\s*=", re.I), "a style attribute"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "an event handler attribute"),
    (re.compile(r"javascript:", re.I), "a javascript: URL"),
]


def save_html(name, text, headers=None):
    """Keeps the server's HTML for the validator, after the checks every
    page must pass: the security headers, nothing inline."""
    with open(os.path.join(HTML, f"{name}.html"), "w", encoding="utf-8") as f:
        f.write(text)
    if headers is not None:
        check_headers(headers, name)
    for rx, what in INLINE:
        m = rx.search(text)
        check(m is None, f"{name}: {what} in the HTML: {m.group(0) if m else ''!r}")
    check(text.lstrip().lower().startswith("<!doctype html>"), f"{name}: no <!DOCTYPE html>")


def fetch(page, path, name, status=200):
    """The server's HTML of `path`, fetched with the page's session (its
    cookies) without following redirects, checked and saved as NAME.html."""
    r = page.request.get(BASE + path, max_redirects=0)
    text = r.text()
    check(r.status == status, f"GET {path}: status {r.status}, wanted {status}: {text[:300]!r}")
    save_html(name, text, r.headers)
    return text


def shot(page, name):
    page.screenshot(path=os.path.join(ART, f"{name}.png"), full_page=True)


def visit(page, path, name, main_id, status=200):
    """Opens `path` in the browser, checks main#MAIN_ID, saves a screenshot
    and the server's HTML."""
    resp = page.goto(BASE + path)
    check(resp is not None and resp.status == status, f"{path}: status {resp.status if resp else None}")
    check(page.locator(f"main#{main_id}" if main_id else "main").count() == 1,
          f"{path}: no main#{main_id}, page is {page.url}: {page.inner_text('body')[:300]!r}")
    shot(page, name)
    fetch(page, path, name, status)
    return resp


def text_of(page, selector):
    loc = page.locator(selector)
    check(loc.count() > 0, f"{page.url}: nothing matches {selector}")
    return loc.first.inner_text()


def notice(page):
    loc = page.locator("p.notice[role=status]")
    return loc.first.inner_text() if loc.count() else ""


def submit_form(page, form, button_text=None):
    """Clicks the submit button of `form` (a selector) and returns the
    response to the POST (the 303 when it redirects)."""
    btn = page.locator(f"{form} button[type=submit]")
    if button_text:
        btn = btn.filter(has_text=button_text)
    check(btn.count() >= 1, f"{page.url}: no submit button in {form}")
    with page.expect_response(lambda r: r.request.method == "POST") as info:
        btn.first.click()
    page.wait_for_load_state()
    return info.value


def sign_in(page, address, password):
    page.goto(BASE + "/console/login")
    check(page.locator("form#login").count() == 1, f"no form#login at {page.url}")
    check(page.locator("form#login input[type=hidden][name=csrf]").count() == 1, "the login form has no csrf field")
    page.fill("form#login input[name=login]", address)
    page.fill("form#login input[name=password]", password)
    return submit_form(page, "form#login", "Sign in")


def session_cookie(context):
    for c in context.cookies(BASE + "/console/"):
        if c["name"] == "pg_session":
            return c
    return None


def imap_login(address, password):
    """None when the login succeeded, else the server's refusal."""
    m = imaplib.IMAP4_SSL("127.0.0.1", IMAPS, ssl_context=TLS, timeout=30)
    try:
        m.login(address, password)
        m.select("INBOX")
        m.logout()
        return None
    except imaplib.IMAP4.error as e:
        return str(e)


def dl_pairs(page, selector):
    """A <dl> as {dt text (lowercased): dd text}."""
    return page.evaluate(
        """sel => { const out = {}; let key = null;
            for (const el of document.querySelectorAll(sel + ' > dt, ' + sel + ' > div > dt, ' + sel + ' > dd, ' + sel + ' > div > dd')) {
              if (el.tagName === 'DT') key = el.textContent.trim().toLowerCase();
              else if (key !== null) out[key] = (out[key] ? out[key] + ' ' : '') + el.textContent.trim();
            } return out; }""",
        selector,
    )


def set_field(page, selector, value):
    """Chooses `value` in a select, or types it in an input."""
    loc = page.locator(selector)
    check(loc.count() == 1, f"{page.url}: no field {selector}")
    if loc.evaluate("e => e.tagName") == "SELECT":
        loc.select_option(value)
    else:
        loc.fill(value)


def body_of(r):
    """A response's body (empty for a redirect, which has none)."""
    try:
        return r.text()
    except Exception:
        return ""


def cells(page, row_selector):
    return page.locator(f"{row_selector} > td, {row_selector} > th").all_inner_texts()


STEPS = []


def step(fn):
    STEPS.append(fn)
    return fn


# --- the steps, in order ------------------------------------------------------

@step
def anonymous_redirects(page):
    st, h, _ = raw("GET", "/")
    check(st == 303 and path_of(h.get("location", "")) == "/console/", f"GET / -> {st} {h.get('location')}")
    for p in ["/console/", "/console/queue", "/console/config"]:
        st, h, _ = raw("GET", p)
        check(st == 303 and path_of(h.get("location", "")) == "/console/login",
              f"GET {p} without a session -> {st} {h.get('location')}")
    st, h, body = raw("GET", "/console/login")
    check(st == 200, f"login page {st}")
    check("pg_prelogin=" in h.get("set-cookie", ""), f"no pg_prelogin cookie: {h.get('set-cookie')}")
    save_html("login", body, h)
    for asset, kind in [("/console/static/console.css", "text/css"), ("/console/static/console.js", "javascript")]:
        st, h, _ = raw("GET", asset)
        check(st == 200 and kind in h.get("content-type", ""), f"{asset}: {st} {h.get('content-type')}")


@step
def sign_in_admin(page):
    page.goto(BASE + "/console/login")
    shot(page, "login")
    r = sign_in(page, ADMIN, ADMIN_PW)
    check(r.status == 303, f"sign-in answered {r.status}")
    page.wait_for_url(BASE + "/console/")
    c = session_cookie(page.context)
    check(c is not None, "no pg_session cookie after signing in")
    check(c["secure"] and c["httpOnly"] and c["sameSite"] == "Strict" and c["path"] == "/console",
          f"pg_session cookie attributes: {c}")
    left = c["expires"] - time.time()
    check(28000 < left <= 28800 + 5, f"pg_session expires in {left:.0f} s, not 8 h")


@step
def status_page(page):
    visit(page, "/console/", "status", "status")
    nav = page.locator("header nav[aria-label=Console] a")
    hrefs = [path_of(h) for h in nav.evaluate_all("as => as.map(a => a.href)")]
    want = ["/console/", "/console/stats", "/console/queue", "/console/directory",
            "/console/access", "/console/log", "/console/config"]
    check(hrefs == want, f"nav links {hrefs}")
    cur = page.locator("header nav a[aria-current=page]")
    check(cur.count() == 1 and path_of(cur.get_attribute("href") or "") in ("/console/", ""),
          "the Status link is not aria-current=page")
    summary = dl_pairs(page, "dl#summary")
    text = " ".join(f"{k}={v}" for k, v in summary.items())
    for key in ["version", "uptime", "node", "store", "queue", "oldest", "disk"]:
        check(any(key in k for k in summary), f"summary has no {key!r}: {summary}")
    depth = next(v for k, v in summary.items() if "queue" in k)
    check(re.search(r"\b1\b", depth), f"queue depth {depth!r}, wanted 1 (the deferred entry)")
    store = next(v for k, v in summary.items() if "store" in k)
    check(store.strip().split()[0] in ("embedded", "postgres"), f"store {store!r}")
    for svc in ["smtp", "imap", "pop3", "ldap", "console", "snmp"]:
        check(page.locator(f"table#services tr[data-service={svc}]").count() == 1, f"no services row for {svc}")
    smtp = cells(page, "table#services tr[data-service=smtp]")
    check("up" in [c.strip() for c in smtp], f"smtp row does not say up: {smtp}")
    check("127.0.0.1:" in " ".join(smtp), f"smtp row shows no listening address: {smtp}")
    warnings = page.locator("ul#warnings li").all_inner_texts()
    check(any("self-signed" in w for w in warnings), f"no self-signed certificate warning: {warnings} ({text})")
    # On a phone: nothing wider than the screen but inside its own scroller.
    page.set_viewport_size({"width": 390, "height": 844})
    try:
        page.reload()
        shot(page, "status-phone")
        over = page.evaluate("document.documentElement.scrollWidth")
        check(over <= 391, f"on a 390 px screen the status page is {over} px wide")
    finally:
        page.set_viewport_size({"width": 1280, "height": 900})


@step
def stats_page(page):
    visit(page, "/console/stats", "stats", "stats")
    figs = page.locator("main#stats figure")
    check(figs.count() >= 7, f"{figs.count()} charts, wanted 7 (messages, bytes, recipients, bounces, logins, errors, connections)")
    for i in range(figs.count()):
        f = figs.nth(i)
        check(f.locator("svg[role=img]").count() == 1, f"chart {i} has no svg[role=img]")
        check(f.locator("figcaption").inner_text().strip() != "", f"chart {i} has no caption")
    caps = " ".join(figs.locator("figcaption").all_inner_texts()).lower()
    for word in ["messages", "bytes", "recipients", "bounces", "logins", "errors"]:
        check(word in caps, f"no {word} chart: {caps}")
    row = page.locator("table#totals tr[data-name=messages_in]")
    check(row.count() == 1, "no messages_in total")
    n = [int(x.replace(",", "")) for x in re.findall(r"\d[\d,]*", row.inner_text())]
    check(n and max(n) >= 4, f"messages_in total {row.inner_text()!r}, wanted at least the 4 sent")
    check(page.locator("script[src='/console/static/console.js']").count() == 1, "no console.js (live refresh)")
    for rng in ["day", "week"]:
        visit(page, f"/console/stats?range={rng}", f"stats-{rng}", "stats")
        check(page.locator("main#stats figure svg[role=img]").count() >= 7, f"range={rng}: charts missing")


@step
def queue_list(page):
    visit(page, "/console/queue", "queue", "queue")
    row = page.locator(f"table#queue-list tr[data-id='{QID}']")
    check(row.count() == 1, f"entry {QID} not listed: {page.inner_text('main')[:500]!r}")
    t = row.inner_text()
    check(QRCPT in t and "deferred" in t, f"entry row {t!r} lacks {QRCPT} or deferred")
    check("451" in t, f"entry row {t!r} lacks the sink's 451")
    check(re.match(r"\s*1 entr", text_of(page, "p#queue-count")), f"count {text_of(page, 'p#queue-count')!r}")
    check(page.locator("form#queue-filter").count() == 1, "no filter form")
    for q, listed in [("state=deferred", True), ("state=held", False),
                      ("domain=remote.test", True), ("domain=nowhere.test", False),
                      ("sender=" + urllib.parse.quote(ADMIN), True), ("age=600", False)]:
        page.goto(BASE + "/console/queue?" + q)
        n = page.locator(f"table#queue-list tr[data-id='{QID}']").count()
        check(n == (1 if listed else 0), f"filter {q}: entry listed {n} times")
    page.goto(BASE + "/console/queue")
    page.select_option("form#queue-filter select[name=state]", "held")
    page.locator("form#queue-filter button[type=submit]").click()
    page.wait_for_load_state()
    check("state=held" in page.url, f"the filter form went to {page.url}")
    check(page.locator(f"table#queue-list tr[data-id='{QID}']").count() == 0, "held filter lists the deferred entry")
    st = page.goto(BASE + "/console/queue/987654321").status
    check(st == 404, f"a missing entry answered {st}")
    fetch(page, "/console/queue/987654321", "queue-missing", 404)


def attempts(page):
    row = page.locator("table#rcpts tr").filter(has_text=QRCPT)
    check(row.count() == 1, f"no recipient row for {QRCPT}")
    c = [x.strip() for x in cells(page, f"table#rcpts tr:has-text('{QRCPT}')")]
    check(len(c) >= 3 and c[2].isdigit(), f"recipient row cells {c}: no attempts in the third")
    return int(c[2])


def confirm(page, action, landing, message):
    """Follows the entry's ACTION link to its confirmation page, confirms,
    and checks where it lands and the notice there."""
    page.goto(BASE + f"/console/queue/{QID}")
    link = page.locator("main#queue-entry a", has_text=action.capitalize())
    check(link.count() >= 1 and path_of(link.first.get_attribute("href")) == f"/console/queue/{QID}/{action}",
          f"no {action} link")
    link.first.click()
    page.wait_for_load_state()
    check(page.locator("main#confirm").count() == 1, f"{action} did not ask for confirmation: {page.url}")
    check(page.locator("main#confirm form[method=post] input[type=hidden][name=csrf]").count() == 1,
          f"no csrf on the {action} confirmation")
    check(page.locator("main#confirm a", has_text="Cancel").count() == 1, f"no Cancel link on the {action} confirmation")
    shot(page, f"confirm-{action}")
    fetch(page, f"/console/queue/{QID}/{action}", f"confirm-{action}")
    r = submit_form(page, "main#confirm form", "Confirm")
    check(r.status == 303, f"POST {action} answered {r.status}")
    check(path_of(page.url) == landing, f"after {action} at {page.url}, wanted {landing}")
    check(message in notice(page), f"after {action} the notice is {notice(page)!r}, wanted {message!r}")


@step
def queue_retry_hold_release_remove(page):
    visit(page, f"/console/queue/{QID}", "queue-entry", "queue-entry")
    before = attempts(page)
    check(before >= 1, f"{before} attempts before the retry")
    confirm(page, "retry", f"/console/queue/{QID}", f"Entry {QID} will be retried now")
    shot(page, "queue-entry-retried")
    # The retry is real: the sink refuses once more and the attempts go up.
    deadline = time.time() + 30
    while True:
        page.goto(BASE + f"/console/queue/{QID}")
        now = attempts(page)
        if now > before:
            break
        check(time.time() < deadline, f"attempts still {now} 30 s after the retry")
        time.sleep(0.5)
    confirm(page, "hold", f"/console/queue/{QID}", "held")
    page.goto(BASE + "/console/queue?state=held")
    check(page.locator(f"table#queue-list tr[data-id='{QID}']").count() == 1, "the held entry is not listed as held")
    confirm(page, "release", f"/console/queue/{QID}", "released")
    page.goto(BASE + "/console/queue?state=held")
    check(page.locator(f"table#queue-list tr[data-id='{QID}']").count() == 0, "the released entry is still held")
    confirm(page, "remove", "/console/queue", f"Entry {QID} removed")
    check(page.locator(f"table#queue-list tr[data-id='{QID}']").count() == 0, "removed entry still listed")
    shot(page, "queue-after-remove")
    check(page.goto(BASE + f"/console/queue/{QID}").status == 404, "the removed entry's page is not a 404")


@step
def directory(page):
    visit(page, "/console/directory", "directory", "directory")
    for a in [ADMIN, PLAIN, XSS_ADDR]:
        check(page.locator(f"table#users tr[data-address='{a}']").count() == 1, f"{a} not listed")
    page.fill("form#user-search input[name=q]", "mallory")
    page.locator("form#user-search button[type=submit]").click()
    page.wait_for_load_state()
    check("q=mallory" in page.url, f"search went to {page.url}")
    rows = page.locator("table#users tr[data-address]")
    check(rows.count() == 1 and rows.first.get_attribute("data-address") == XSS_ADDR,
          f"search for mallory: {rows.evaluate_all('rs => rs.map(r => r.dataset.address)')}")
    check(re.match(r"\s*1 user", text_of(page, "p#user-count")), f"count {text_of(page, 'p#user-count')!r}")
    shot(page, "directory-search")
    fetch(page, "/console/directory?q=mallory", "directory-search")
    link = page.locator("main#directory a", has_text="Add user")
    check(link.count() >= 1 and path_of(link.first.get_attribute("href")) == "/console/users/new", "no Add user link")
    visit(page, "/console/domains", "domains", "domains")
    check("example.org" in text_of(page, "table#domain-list"), "example.org not in the domains table")
    visit(page, "/console/groups", "groups", "groups")
    g = text_of(page, "table#group-list")
    check("staff@example.org" in g and PLAIN in g, f"groups table {g!r} lacks staff and its member")


@step
def script_name_shown_as_text(page):
    page.goto(BASE + "/console/directory?q=mallory")
    row = page.locator(f"table#users tr[data-address='{XSS_ADDR}']")
    check(XSS_NAME in row.inner_text(), f"the row shows {row.inner_text()!r}, not the literal {XSS_NAME!r}")
    check(page.locator("main script").count() == 0, "a <script> element inside main")
    visit(page, "/console/users/" + urllib.parse.quote(XSS_ADDR), "user-script-name", "user")
    check(XSS_NAME in page.inner_text("main#user"), "the user page does not show the name as text")
    html = fetch(page, "/console/users/" + urllib.parse.quote(XSS_ADDR), "user-script-name")
    check("<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html,
          "the name is not escaped in the HTML")
    page.wait_for_timeout(500)
    check(not DIALOGS, f"a dialog fired: {DIALOGS}")


@step
def add_user_and_imap(page):
    visit(page, "/console/users/new", "new-user", "new-user")
    f = "form#new-user-form"
    check(page.locator(f"{f} input[type=hidden][name=csrf]").count() == 1, "the new-user form has no csrf")
    page.fill(f"{f} [name=address]", NEW_USER)
    page.fill(f"{f} [name=display_name]", "Carol Console")
    page.fill(f"{f} [name=password]", NEW_PW)
    r = submit_form(page, f, "Add user")
    check(r.status == 303, f"POST new user answered {r.status}: {body_of(r)[:300]!r}")
    check(unquote_path(page.url) == f"/console/users/{NEW_USER}", f"after adding at {page.url}")
    check(f"User {NEW_USER} added" in notice(page), f"notice {notice(page)!r}")
    check(page.locator("main#user").count() == 1, "not on the user page")
    shot(page, "user-added")
    err = imap_login(NEW_USER, NEW_PW)
    check(err is None, f"IMAP login as the new user refused: {err}")
    # Edit: title and department, kept.
    page.fill("form#edit-user [name=title]", "Night Postmaster")
    page.fill("form#edit-user [name=department]", "Operations")
    r = submit_form(page, "form#edit-user", "Save")
    check(r.status == 303, f"POST edit answered {r.status}")
    page.goto(BASE + "/console/users/" + urllib.parse.quote(NEW_USER))
    check(page.input_value("form#edit-user [name=title]") == "Night Postmaster", "title not saved")
    check(page.input_value("form#edit-user [name=department]") == "Operations", "department not saved")
    # Group membership.
    page.fill("form#add-member [name=group]", "staff@example.org")
    r = submit_form(page, "form#add-member", "Add to group")
    check(r.status == 303, f"POST add-member answered {r.status}")
    page.goto(BASE + "/console/users/" + urllib.parse.quote(NEW_USER))
    check("staff@example.org" in text_of(page, "section#membership"), "membership not shown")
    # A new password, through the form, works over IMAP.
    page.fill("form#reset-password [name=password]", NEW_PW2)
    r = submit_form(page, "form#reset-password", "Set password")
    check(r.status == 303, f"POST reset-password answered {r.status}")
    err = imap_login(NEW_USER, NEW_PW2)
    check(err is None, f"IMAP login with the password set in the console refused: {err}")
    visit(page, "/console/users/" + urllib.parse.quote(NEW_USER), "user", "user")
    cos = text_of(page, "dl#class-of-service")
    check("default" in cos, f"class of service before any assignment: {cos!r}")


@step
def class_of_service(page):
    visit(page, "/console/access", "access", "access")
    page.fill("form#new-class [name=name]", "interns")
    page.fill("form#new-class [name=description]", "no IMAP")
    r = submit_form(page, "form#new-class", "Add class")
    check(r.status == 303, f"POST new class answered {r.status}")
    row = page.locator("table#classes tr[data-class=interns]")
    check(row.count() == 1, "the new class is not listed")
    form = page.locator("form.set-class[action='/console/access/classes/interns']")
    check(form.count() == 1, "no set-class form for interns")
    form.locator("select[name=key]").select_option("imap")
    form.locator("[name=value]").fill("deny")
    with page.expect_response(lambda r: r.request.method == "POST") as info:
        form.locator("button[type=submit]").click()
    page.wait_for_load_state()
    check(info.value.status == 303, f"POST set answered {info.value.status}")
    page.goto(BASE + "/console/access")
    row = page.locator("table#classes tr[data-class=interns]").inner_text()
    check("deny" in row, f"interns row after setting imap = deny: {row!r}")
    set_field(page, "form#assign [name=class]", "interns")
    set_field(page, "form#assign [name=kind]", "user")
    page.fill("form#assign [name=name]", NEW_USER)
    r = submit_form(page, "form#assign", "Assign")
    check(r.status == 303, f"POST assign answered {r.status}")
    page.goto(BASE + "/console/access")
    check(NEW_USER in text_of(page, "table#assignments"), "the assignment is not listed")
    shot(page, "access-changed")
    fetch(page, "/console/access", "access-changed")
    # The change is real: IMAP now refuses the user (the policy cache
    # reads the store again within a moment).
    deadline = time.time() + 10
    while True:
        err = imap_login(NEW_USER, NEW_PW2)
        if err is not None:
            break
        check(time.time() < deadline, "IMAP still lets the user in 10 s after the class said deny")
        time.sleep(0.3)
    check("interns" in err or "not allowed" in err, f"refused, but not for the class: {err}")
    page.goto(BASE + "/console/users/" + urllib.parse.quote(NEW_USER))
    cos = text_of(page, "dl#class-of-service")
    check("interns" in cos and "assigned to user" in cos, f"class of service shown: {cos!r}")
    shot(page, "user-class")
    # Blocks: add one, see it, remove it.
    page.goto(BASE + "/console/access")
    page.fill("form#add-block [name=pattern]", "203.0.113.0/24")
    set_field(page, "form#add-block [name=direction]", "in")
    page.fill("form#add-block [name=reason]", "documentation network")
    r = submit_form(page, "form#add-block", "Block")
    check(r.status == 303, f"POST block answered {r.status}")
    page.goto(BASE + "/console/access")
    brow = page.locator("table#blocks tr").filter(has_text="203.0.113.0/24")
    check(brow.count() == 1, "the block is not listed")
    with page.expect_response(lambda r: r.request.method == "POST") as info:
        brow.locator("button[type=submit]", has_text="Remove").click()
    page.wait_for_load_state()
    check(info.value.status == 303, f"POST remove block answered {info.value.status}")
    page.goto(BASE + "/console/access")
    check(page.locator("table#blocks tr").filter(has_text="203.0.113.0/24").count() == 0, "the block is still listed")


@step
def csrf_refused(page):
    page.goto(BASE + "/console/access")
    form = "form.set-class[action='/console/access/classes/interns']"
    check(page.locator(form).count() == 1, "no set-class form for interns")
    token = page.get_attribute(f"{form} input[name=csrf]", "value")
    check(token, "the set-class form has no csrf value")
    # In the browser: the same form without its token, then with a wrong one.
    for name, js in [("csrf-missing", "f => f.querySelector('input[name=csrf]').remove()"),
                     ("csrf-wrong", "f => { const i = f.querySelector('input[name=csrf]'); i.value = (i.value[0] === 'x' ? 'y' : 'x') + i.value.slice(1); }")]:
        page.goto(BASE + "/console/access")
        page.locator(form).evaluate(js)
        page.locator(form).locator("select[name=key]").select_option("imap")
        page.locator(form).locator("[name=value]").fill("allow")
        with page.expect_response(lambda r: r.request.method == "POST") as info:
            page.locator(form).locator("button[type=submit]").click()
        page.wait_for_load_state()
        r = info.value
        body = body_of(r)
        check(r.status == 403 and "CSRF" in body, f"{name}: answered {r.status}: {body[:300]!r}")
        shot(page, name)
        save_html(name, body, r.headers)
    c = session_cookie(page.context)
    cookie = f"pg_session={c['value']}"
    st, _, body = raw("POST", "/console/access/classes/interns", cookie, {"key": "imap", "value": "allow"})
    check(st == 403 and "CSRF" in body, f"POST without csrf (http.client) answered {st}")
    page.goto(BASE + "/console/access")
    row = page.locator("table#classes tr[data-class=interns]").inner_text()
    check("deny" in row, f"the refused posts changed the class: {row!r}")
    check(imap_login(NEW_USER, NEW_PW2) is not None, "a refused post let the user in over IMAP")
    # The same post with the page's token is taken: the 403s were the token's.
    st, h, body = raw("POST", "/console/access/classes/interns", cookie,
                      {"csrf": token, "key": "pop3", "value": "deny"})
    check(st == 303, f"POST with the page's csrf answered {st}: {body[:300]!r}")


@step
def log_page_follows(page):
    visit(page, "/console/log", "log", "log")
    check(page.locator("ol#log-lines li").count() > 0, "no log lines")
    li = page.locator("ol#log-lines li").first
    check(li.get_attribute("data-level") and li.get_attribute("data-service") is not None, "li without data-level/data-service")
    page.wait_for_selector("p#follow-state:has-text('Following')", timeout=TIMEOUT_MS)
    count_js = "() => [...document.querySelectorAll('#log-lines li')].filter(li => li.textContent.includes('login failed')).length"
    n = page.evaluate(count_js)
    err = imap_login("nobody-live@example.org", "wrong")
    check(err is not None, "a made-up user logged in")
    page.wait_for_function(f"() => ({count_js})() > {n}", timeout=TIMEOUT_MS)
    shot(page, "log-followed")
    # The audit lines of what this suite did, under service console.
    page.goto(BASE + "/console/log?level=info&service=console")
    lines = page.locator("ol#log-lines li").all_inner_texts()
    check(any(f"admin={ADMIN}" in l for l in lines), f"no audit line with admin={ADMIN}: {lines[-5:]}")
    check(all(li == "console" for li in page.locator("ol#log-lines li").evaluate_all("ls => ls.map(l => l.dataset.service)")),
          "the service filter let other services through")
    shot(page, "log-console")
    fetch(page, "/console/log?level=info&service=console", "log-console")
    page.goto(BASE + "/console/log")
    page.fill("form#accounting-search [name=q]", "friend@remote.test")
    page.locator("form#accounting-search button[type=submit]").click()
    page.wait_for_load_state()
    rows = page.locator("table#accounting tr").filter(has_text="friend@remote.test")
    check(rows.count() >= 1, f"no accounting record for friend@remote.test at {page.url}")
    shot(page, "log-accounting")
    u = urllib.parse.urlsplit(page.url)
    fetch(page, f"{u.path}?{u.query}", "log-accounting")


@step
def config_page(page):
    visit(page, "/console/config", "config", "config")
    cfg = text_of(page, "pre#config-text")
    check("********" in cfg, "no masked secret in the configuration")
    html = fetch(page, "/console/config", "config")
    for s in SETUP["secrets"]:
        check(s not in cfg and s not in html, f"the secret {s!r} shows")
    check("metrics_token" in cfg and "community" in cfg, "the masked settings are not shown at all")
    src = text_of(page, "p#config-source")
    check(SETUP["config_path"] in src, f"config source {src!r}")


@step
def stats_screenshot_late(page):
    # The statistics again, with a minute or more of samples behind them,
    # for the README.
    visit(page, "/console/stats", "stats", "stats")
    visit(page, "/console/", "status", "status")


@step
def sign_out(page):
    ctx = page.context.browser.new_context(ignore_https_errors=True)
    try:
        p = ctx.new_page()
        p.set_default_timeout(TIMEOUT_MS)
        r = sign_in(p, ADMIN, ADMIN_PW)
        check(r.status == 303, f"second sign-in answered {r.status}")
        old = session_cookie(ctx)
        check(old is not None, "no session")
        check(p.locator("header form#logout[method=post][action='/console/logout'] input[name=csrf]").count() == 1,
              "no sign-out form with csrf in the header")
        r = submit_form(p, "header form#logout", "Sign out")
        check(r.status == 303, f"sign-out answered {r.status}")
        check(path_of(p.url) == "/console/login", f"after sign-out at {p.url}")
        shot(p, "signed-out")
        st, h, _ = raw("GET", "/console/", f"pg_session={old['value']}")
        check(st == 303 and path_of(h.get("location", "")) == "/console/login",
              f"the signed-out session still answers: {st} {h.get('location')}")
        # The other session (the main page's) is untouched.
        other = session_cookie(page.context)
        st, _, _ = raw("GET", "/console/", f"pg_session={other['value']}")
        check(st == 200, f"signing out one session ended another: {st}")
    finally:
        ctx.close()


@step
def not_an_administrator(page):
    ctx = page.context.browser.new_context(ignore_https_errors=True)
    try:
        p = ctx.new_page()
        p.set_default_timeout(TIMEOUT_MS)
        r = sign_in(p, PLAIN, PLAIN_PW)
        body = body_of(r)
        check(r.status == 403 and "not a console administrator" in body, f"non-administrator: {r.status} {body[:300]!r}")
        check(session_cookie(ctx) is None, "a non-administrator got a session cookie")
        shot(p, "not-admin")
        save_html("not-admin", body, r.headers)
        st, h, _ = raw("GET", "/console/")
        check(st == 303, "no session, yet the status page answered")
    finally:
        ctx.close()


@step
def wrong_passwords_throttled(page):
    ctx = page.context.browser.new_context(ignore_https_errors=True)
    try:
        p = ctx.new_page()
        p.set_default_timeout(60000)
        seen = []
        for i in range(10):
            r = sign_in(p, ADMIN, f"wrong-{i}")
            body = body_of(r)
            seen.append(r.status)
            if i == 0:
                check(r.status == 401 and "Wrong address or password." in body, f"first wrong password: {r.status}")
                check(p.locator("p.error[role=alert]").count() == 1, "no error alert")
                shot(p, "wrong-password")
                save_html("wrong-password", body, r.headers)
        check(r.status == 429, f"ten wrong passwords answered {seen}")
        m = re.search(r"Too many failed sign-ins\. Try again in (\d+) seconds?\.", p.inner_text("p.error[role=alert]"))
        check(m and int(m.group(1)) > 0, f"throttled message {p.inner_text('p.error[role=alert]')!r}")
        shot(p, "throttled")
        save_html("throttled", body, r.headers)
        # Held even with the right password, and answered at once.
        t0 = time.time()
        r = sign_in(p, ADMIN, ADMIN_PW)
        check(r.status == 429, f"the right password while throttled answered {r.status}")
        check(time.time() - t0 < 5, f"the throttled answer took {time.time() - t0:.1f} s")
        check(session_cookie(ctx) is None, "a throttled sign-in got a session")
    finally:
        ctx.close()


DIALOGS = []
PROBLEMS = []


def main():
    results = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=SETUP["chromium"], args=["--no-sandbox"])
        ctx = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 900})
        page = ctx.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("dialog", lambda d: (DIALOGS.append(d.message), d.dismiss()))
        page.on("pageerror", lambda e: PROBLEMS.append(f"script error: {e}"))
        page.on("console", lambda m: PROBLEMS.append(f"console: {m.text}")
                if m.type == "error" and ("Content Security Policy" in m.text or "Refused to" in m.text) else None)
        for fn in STEPS:
            t0 = time.time()
            try:
                fn(page)
                results.append((fn.__name__, None))
                print(f"PASS {fn.__name__} ({time.time() - t0:.1f} s)", flush=True)
            except Exception as e:  # every step runs; each failure is reported
                where = [f.lineno for f in traceback.extract_tb(e.__traceback__)
                         if f.filename == "<string>" and f.name != "check"]
                why = f"{type(e).__name__}: {e}".strip() if not isinstance(e, Failed) else str(e)
                why = f"(line {where[-1] if where else '?'}) {why}"
                results.append((fn.__name__, why))
                print(f"FAIL {fn.__name__}: {why}", flush=True)
                try:
                    shot(page, f"failed-{fn.__name__}")
                except Exception:
                    pass
        browser.close()
    if DIALOGS:
        results.append(("no_dialogs", f"dialogs fired: {DIALOGS}"))
        print(f"FAIL no_dialogs: {DIALOGS}")
    if PROBLEMS:
        results.append(("no_csp_violations", "; ".join(PROBLEMS)))
        print(f"FAIL no_csp_violations: {PROBLEMS}")
    failed = [n for n, why in results if why]
    print(json.dumps({"steps": len(results), "failed": failed}))
    sys.exit(1 if failed else 0)


main()
