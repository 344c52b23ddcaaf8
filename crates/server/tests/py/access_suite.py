"""Access control driven with stock clients: imaplib, poplib, smtplib,
ldap3, http.client. Each case checks one rule and prints "ok ..." lines;
the first failure exits non-zero.

usage: access_suite.py CASE JSON_PORTS [ARGS...]
JSON_PORTS maps listener roles ("smtp", "imaps", ...) to ports.
"""
import base64, http.client, imaplib, json, poplib, smtplib, ssl, sys, time
import ldap3

case, ports = sys.argv[1], json.loads(sys.argv[2])
args = sys.argv[3:]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
tls = ldap3.Tls(validate=ssl.CERT_NONE)

def check(name, cond, detail=""):
    if not cond:
        print(f"FAIL {name}: {detail}")
        sys.exit(1)
    print(f"ok {name}")

def imap_login(user, pw, source=None):
    """(ok, response text)"""
    m = imaplib.IMAP4_SSL("127.0.0.1", ports["imaps"], ssl_context=ctx, timeout=30)
    try:
        m.login(user, pw)
        m.logout()
        return True, ""
    except imaplib.IMAP4.error as e:
        return False, str(e)

def pop_login(user, pw):
    p = poplib.POP3_SSL("127.0.0.1", ports["pop3s"], context=ctx, timeout=30)
    try:
        p.user(user)
        p.pass_(pw)
        p.quit()
        return True, ""
    except poplib.error_proto as e:
        return False, str(e)

def ldap_bind(user, pw):
    s = ldap3.Server("127.0.0.1", port=ports["ldaps"], use_ssl=True, tls=tls, get_info=ldap3.NONE)
    c = ldap3.Connection(s, user=user, password=pw, receive_timeout=30)
    c.open()
    ok = c.bind()
    code = c.result["result"]
    return ok, code, c

def api_get(user, pw, path="/api/v1/folders"):
    h = http.client.HTTPSConnection("127.0.0.1", ports["console"], context=ctx, timeout=30)
    auth = base64.b64encode(f"{user}:{pw}".encode()).decode()
    h.request("GET", path, headers={"Authorization": "Basic " + auth})
    r = h.getresponse()
    body = r.read()
    h.close()
    return r.status, body

def smtp_auth(user, pw):
    s = smtplib.SMTP("127.0.0.1", ports["submission"], timeout=30)
    s.starttls(context=ctx)
    try:
        s.login(user, pw)
        s.quit()
        return True, 235
    except smtplib.SMTPAuthenticationError as e:
        return False, e.smtp_code
    except smtplib.SMTPResponseException as e:
        return False, e.smtp_code

def rcpt(sender, rcpt_to, port="smtp", login=None, source=None):
    """The RCPT reply code for one recipient (and the session, still open)."""
    s = smtplib.SMTP("127.0.0.1", ports[port], timeout=30, source_address=source)
    s.ehlo("client.test")
    if login:
        s.starttls(context=ctx); s.ehlo("client.test"); s.login(*login)
    code, _ = s.mail(sender)
    assert code == 250, code
    code, msg = s.rcpt(rcpt_to)
    return code, msg, s

def send(port, sender, rcpt_to, body, login=None):
    """One message over one session: (code, text) of the reply to the data
    (MAIL and RCPT must be accepted)."""
    s = smtplib.SMTP("127.0.0.1", ports[port], timeout=30)
    s.ehlo("client.test")
    if login:
        s.starttls(context=ctx); s.ehlo("client.test"); s.login(*login)
    code, msg = s.mail(sender)
    check(f"MAIL FROM:<{sender}> accepted", code == 250, (code, msg))
    code, msg = s.rcpt(rcpt_to)
    check(f"RCPT TO:<{rcpt_to}> accepted", code == 250, (code, msg))
    code, msg = s.data(body)
    s.quit()
    return code, msg

def delivered(code, msg):
    """The server's reply says the message was taken (RFC 5321 §4.1.1.4)."""
    return code == 250 and msg.startswith(b"2.0.0 Ok: queued as ")

if case == "services":
    # alice is in group staff, whose class denies IMAP, POP3, LDAP and the API.
    ok, why = imap_login("alice@example.org", "pw")
    check("imap: a denied member is refused", not ok and "CONTACTADMIN" in why, why)
    ok, why = imap_login("bob@example.org", "pw")
    check("imap: a non-member logs in", ok, why)
    ok, why = imap_login("alice@example.org", "wrong")
    check("imap: a wrong password says so, not the class", not ok and "AUTHENTICATIONFAILED" in why, why)
    ok, why = pop_login("alice@example.org", "pw")
    check("pop3: a denied member is refused", not ok and "[SYS/PERM]" in why, why)
    ok, why = pop_login("bob@example.org", "pw")
    check("pop3: a non-member logs in", ok, why)
    ok, code, _ = ldap_bind("alice@example.org", "pw")
    check("ldap: a denied member gets insufficientAccessRights", not ok and code == 50, code)
    ok, code, _ = ldap_bind("alice@example.org", "nope")
    check("ldap: a wrong password gets invalidCredentials", not ok and code == 49, code)
    ok, code, c = ldap_bind("bob@example.org", "pw")
    check("ldap: a non-member binds", ok, code)
    status, body = api_get("alice@example.org", "pw")
    check("api: a denied member gets 403", status == 403, (status, body))
    status, body = api_get("alice@example.org", "wrong")
    check("api: a wrong password gets 401", status == 401, (status, body))
    status, body = api_get("bob@example.org", "pw")
    check("api: a non-member gets 200", status == 200, (status, body))

elif case == "services-after":
    # The class was unassigned by the CLI while the server ran.
    ok, why = imap_login("alice@example.org", "pw")
    check("imap: allowed again without a restart", ok, why)
    ok, why = pop_login("alice@example.org", "pw")
    check("pop3: allowed again", ok, why)
    ok, code, _ = ldap_bind("alice@example.org", "pw")
    check("ldap: allowed again", ok, code)

elif case == "ldap-attributes":
    # bob's class may read cn and mail; anonymous (the default class) only cn.
    ok, code, c = ldap_bind("bob@example.org", "pw")
    check("bind", ok, code)
    c.search("dc=example,dc=org", "(uid=alice)", attributes=["*"])
    check("bound: no match on an attribute the class may not read", len(c.response) == 0, c.response)
    c.search("dc=example,dc=org", "(mail=alice@example.org)", attributes=["*"])
    attrs = set(k.lower() for k, v in c.response[0]["raw_attributes"].items() if v)
    check("bound: only the class's attributes", attrs == {"cn", "mail"}, attrs)
    c.search("dc=example,dc=org", "(sn=Smith)", attributes=["cn"])
    check("bound: no filtering on a hidden attribute", len(c.response) == 0, c.response)
    c.search("dc=example,dc=org", "(cn=Alice Smith)", attributes=["cn"])
    check("bound: filtering on an allowed one", len(c.response) == 1, c.response)
    s = ldap3.Server("127.0.0.1", port=ports["ldap"], get_info=ldap3.NONE)
    a = ldap3.Connection(s, auto_bind=True, receive_timeout=30)
    a.search("dc=example,dc=org", "(cn=Alice Smith)", attributes=["*"])
    attrs = set(k.lower() for k, v in a.response[0]["raw_attributes"].items() if v)
    check("anonymous: the default class's attributes", attrs == {"cn"}, attrs)

elif case == "receive":
    code, msg, s = rcpt("x@remote.test", "alice@example.org")
    check("smtp.receive denied: 550 5.7.1 at RCPT", code == 550 and b"5.7.1" in msg, (code, msg))
    code, msg = s.rcpt("bob@example.org")
    check("another recipient in the same transaction is accepted", code == 250, (code, msg))
    s.quit()
    code, msg, s = rcpt("y@partner.test", "alice@example.org")
    check("an excepted sender domain gets through", code == 250, (code, msg))
    s.quit()
    code, msg, s = rcpt("z@host.partner.test", "alice@example.org")
    check("*.domain exceptions cover subdomains", code == 250, (code, msg))
    s.quit()

elif case == "send":
    # bob's class denies smtp.send except to allowed.test.
    code, msg, s = rcpt("bob@example.org", "someone@remote.test", "submission", ("bob@example.org", "pw"))
    check("smtp.send denied: 550 5.7.1 at RCPT", code == 550 and b"5.7.1" in msg, (code, msg))
    code, msg = s.rcpt("alice@example.org")
    check("local recipients stay allowed", code == 250, (code, msg))
    code, msg = s.data(b"Subject: local\r\n\r\nhello alice\r\n")
    check("local delivery accepted", code == 250, (code, msg))
    s.quit()
    code, msg, s = rcpt("bob@example.org", "friend@allowed.test", "submission", ("bob@example.org", "pw"))
    check("an excepted destination is allowed", code == 250, (code, msg))
    s.quit()
    # The API refuses the same with 403 and the reason.
    h = http.client.HTTPSConnection("127.0.0.1", ports["console"], context=ctx, timeout=30)
    auth = base64.b64encode(b"bob@example.org:pw").decode()
    body = json.dumps({"to": ["someone@remote.test"], "subject": "x", "text": "x"})
    h.request("POST", "/api/v1/messages", body=body, headers={"Authorization": "Basic " + auth, "Content-Type": "application/json"})
    r = h.getresponse(); text = r.read()
    check("api: smtp.send denied is 403 with the reason", r.status == 403 and b"may not send" in text, (r.status, text))

elif case == "sizes":
    # carol's effective class limits mail from the Internet to 1000 bytes.
    big = b"Subject: big\r\n\r\n" + b"x" * 3000 + b"\r\n"
    s = smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=30)
    try:
        s.sendmail("x@remote.test", ["carol@example.org"], big)
        check("oversized for the class: 552 5.3.4", False, "accepted")
    except smtplib.SMTPDataError as e:
        check("oversized for the class: 552 5.3.4", e.smtp_code == 552 and b"5.3.4" in e.smtp_error, e)
    code, msg = send("smtp", "x@remote.test", "bob@example.org", big)
    check("another class's user takes it", delivered(code, msg), (code, msg))
    # The sender's class (bob: smtp.send.max_size 2000) at MAIL SIZE=.
    s = smtplib.SMTP("127.0.0.1", ports["submission"], timeout=30)
    s.starttls(context=ctx); s.ehlo(); s.login("bob@example.org", "pw")
    code, msg = s.mail("bob@example.org", ["SIZE=5000"])
    check("the sender's class limit at MAIL SIZE=", code == 552 and b"5.3.4" in msg, (code, msg))
    s.quit()

elif case == "sizes-after":
    big = b"Subject: big\r\n\r\n" + b"x" * 3000 + b"\r\n"
    code, msg = send("smtp", "x@remote.test", "carol@example.org", big)
    check("the post office's class beats the domain's", delivered(code, msg), (code, msg))

elif case == "blocked-ip":
    # The client binds to 127.0.0.2 (the block) or 127.0.0.1.
    expect_blocked = args[0] == "blocked"
    try:
        s = smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=30, source_address=("127.0.0.2", 0))
        s.quit()
        check("127.0.0.2 is served", not expect_blocked, "greeted")
    except smtplib.SMTPConnectError as e:
        check("127.0.0.2 refused at connect with 554 5.7.1", expect_blocked and e.smtp_code == 554 and b"5.7.1" in e.smtp_error, e)
    s = smtplib.SMTP(timeout=30, source_address=("127.0.0.1", 0))
    code, msg = s.connect("127.0.0.1", ports["smtp"])
    check("127.0.0.1 is served", code == 220, (code, msg))
    s.quit()

elif case == "submit":
    # A message with neither Date nor Message-ID through submission.
    code, msg = send("submission", "bob@example.org", args[0],
                     b"From: bob@example.org\r\nTo: x\r\nSubject: bare\r\n\r\nno date, no id\r\n",
                     login=("bob@example.org", "pw"))
    check("submitted", delivered(code, msg), (code, msg))

elif case == "submit-rcpt":
    code, msg, sess = rcpt("bob@example.org", args[0], "submission", ("bob@example.org", "pw"))
    sess.quit()
    check(f"RCPT {args[0]}: {code} {msg!r}", str(code) == args[1] and args[2].encode() in msg, (code, msg))

elif case == "pop3-keep":
    # bob's class: pop3.delete keep. DELE hides for the session; nothing goes.
    p = poplib.POP3_SSL("127.0.0.1", ports["pop3s"], context=ctx, timeout=30)
    p.user("bob@example.org"); p.pass_("pw")
    n, _ = p.stat()
    check("bob has mail", n >= 1, n)
    p.dele(1)
    p.quit()
    p = poplib.POP3_SSL("127.0.0.1", ports["pop3s"], context=ctx, timeout=30)
    p.user("bob@example.org"); p.pass_("pw")
    m, _ = p.stat()
    check("pop3.delete keep: the message stays", m == n, (n, m))
    p.quit()

elif case == "fetch-headers":
    m = imaplib.IMAP4_SSL("127.0.0.1", ports["imaps"], ssl_context=ctx, timeout=30)
    m.login(args[0], "pw"); m.select("INBOX")
    typ, data = m.search(None, "SUBJECT", args[1])
    n = data[0].split()[-1]
    typ, data = m.fetch(n, "(BODY.PEEK[])")
    raw = data[0][1]
    head = raw.split(b"\r\n\r\n", 1)[0]
    print(head.decode(errors="replace"))
    for h in args[2:]:
        check(f"{h} present", (b"\r\n" + h.encode().lower()) in (b"\r\n" + head).lower(), head)

elif case == "brute":
    # 50 wrong passwords for one account from this address, per service,
    # then the right one; prints the seconds each service took.
    service, n = args[0], int(args[1])
    user = "alice@example.org"
    attempt = {
        "imap": lambda u, p: imap_login(u, p)[0],
        "pop3": lambda u, p: pop_login(u, p)[0],
        "ldap": lambda u, p: ldap_bind(u, p)[0],
        "api": lambda u, p: api_get(u, p)[0] == 200,
        "smtp": lambda u, p: smtp_auth(u, p)[0],
    }[service]
    many = len(args) > 2 and args[2] == "many"
    t0 = time.monotonic()
    for i in range(n):
        who = f"nobody{i}@example.org" if many else user
        check(f"{service} wrong password {i} refused", not attempt(who, "wrong"))
    took = time.monotonic() - t0
    check(f"{service} right password works afterwards", attempt(user, "pw"))
    print(f"took {took:.3f}")

else:
    print(f"unknown case {case}")
    sys.exit(2)
