//! POP3 with Python's poplib against the real server, over STLS and POP3S.
use postgate_testkit::{RawClient, Server, python};

const BIN: &str = env!("CARGO_BIN_EXE_postgate");
const SUITE: &str = include_str!("py/pop3_suite.py");

fn deliver(s: &Server, message: &str) {
    let mut c = RawClient::connect(s.addr("smtp"));
    c.reply();
    c.cmd("EHLO t");
    c.cmd("MAIL FROM:<carol@remote.test>");
    c.cmd("RCPT TO:<alice@example.org>");
    c.send(format!("BDAT {} LAST\r\n", message.len()).as_bytes());
    c.send(message.as_bytes());
    assert!(c.reply()[0].starts_with("250"));
}

fn run(case: &str) {
    let s = Server::start(std::path::Path::new(BIN), "");
    s.cli(&["domain", "add", "example.org"]);
    let out = s.cli_output(
        &[
            "user",
            "add",
            "alice@example.org",
            "--name",
            "Alice Smith",
            "--password-stdin",
        ],
        Some("secret\n"),
    );
    assert!(out.status.success());
    deliver(&s, "Subject: first\r\n\r\nhello\r\n");
    deliver(
        &s,
        "Subject: dots\r\n\r\n.leading dot\r\n..\r\n.\r\nend\r\n",
    );
    deliver(&s, "Subject: third\r\n\r\nbody line 1\r\nbody line 2\r\n");
    s.cli(&["folder", "add", "alice@example.org", "Projects/2026"]);
    let args = vec![
        case.to_string(),
        s.addr("pop3").port().to_string(),
        s.addr("pop3s").port().to_string(),
        s.addr("smtp").port().to_string(),
    ];
    if case == "options" {
        // One message in Projects/2026 for folder=, put there by IMAP APPEND.
        let script = "import imaplib,ssl,sys\nctx=ssl.create_default_context();ctx.check_hostname=False;ctx.verify_mode=ssl.CERT_NONE\nm=imaplib.IMAP4_SSL('127.0.0.1',int(sys.argv[1]),ssl_context=ctx)\nm.login('alice@example.org','secret')\nassert m.append('Projects/2026',None,None,b'Subject: project\\r\\n\\r\\nx\\r\\n')[0]=='OK'\nm.logout()\n";
        let Some((ok, _, err)) = python(script, &[s.addr("imaps").port().to_string()]) else {
            return;
        };
        assert!(ok, "{err}");
    }
    let Some((ok, out, err)) = python(SUITE, &args) else {
        return;
    };
    assert!(
        ok && out.contains("ok"),
        "pop3_suite {case}: {err}\n--- server log ---\n{}",
        s.log()
    );
}

#[test]
fn capa_stls_user_pass_and_every_command() {
    run("commands");
}

#[test]
fn auth_plain_in_use_and_failures() {
    run("auth");
}

#[test]
fn login_options() {
    run("options");
}
