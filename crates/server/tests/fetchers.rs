//! Real POP3 clients download a 500-message mailbox: fetchmail over STLS,
//! getmail6 over POP3S (getmail6 has no STLS).
use postgate_testkit::{Server, smtp_fill, tool};
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_postgate");

fn server() -> Server {
    let s = Server::start(Path::new(BIN), "");
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
    smtp_fill(s.addr("smtp"), "alice@example.org", 500);
    assert_eq!(s.items("alice@example.org", "Inbox").len(), 500);
    s
}

fn files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|r| r.count()).unwrap_or(0)
}

#[test]
fn fetchmail_over_stls() {
    let Some(fetchmail) = tool("fetchmail") else {
        return;
    };
    let s = server();
    let out_dir = s.dir().join("fetched");
    std::fs::create_dir_all(&out_dir).unwrap();
    let rc = s.dir().join("fetchmailrc");
    std::fs::write(
        &rc,
        format!(
            "set no bouncemail\n\
             poll localhost port {port} protocol POP3 uidl\n\
             \tuser 'alice@example.org' there with password 'secret'\n\
             \tsslproto 'TLS1.2+' sslcertck sslcertfile '{cert}'\n\
             \tmda \"/bin/sh -c 'cat > {dir}/msg.$$'\"\n",
            port = s.addr("pop3").port(),
            cert = s.dir().join("data/tls/cert.pem").display(),
            dir = out_dir.display(),
        ),
    )
    .unwrap();
    let mut perms = std::fs::metadata(&rc).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o600);
    std::fs::set_permissions(&rc, perms).unwrap();
    let out = Command::new(fetchmail)
        .args(["-f"])
        .arg(&rc)
        .args(["--nodetach", "--nosyslog", "-v"])
        .env("HOME", s.dir())
        .env("FETCHMAILHOME", s.dir())
        .output()
        .unwrap();
    let log =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "fetchmail failed: {log}");
    assert!(log.contains("STLS"), "fetchmail used STLS: {log}");
    assert_eq!(files(&out_dir), 500, "{log}");
    // fetchmail deletes what it fetched (no "keep"): into Trash by default.
    assert_eq!(s.items("alice@example.org", "Inbox").len(), 0);
    assert_eq!(s.items("alice@example.org", "Trash").len(), 500);
    let sample =
        std::fs::read_to_string(out_dir.read_dir().unwrap().next().unwrap().unwrap().path())
            .unwrap();
    assert!(
        sample.contains("\n.starts with a dot"),
        "dot-stuffing undone: {sample}"
    );
}

/// The interpreter getmail's own first line names (Debian's).
const GETMAIL_PYTHON: &str = "/usr/bin/python3";

/// Runs the getmail script given as the first argument with its child wait
/// fixed: the Condition it waits on reports a child the SIGCHLD handler has
/// already reaped instead of waiting for a notification that came before.
const GETMAIL_WAIT: &str = r#"
import runpy, sys, threading, time
import getmailcore.baseclasses as b
class Reaped(threading.Condition):
    def __init__(self, owner):
        super().__init__()
        self.owner = owner
    def wait(self, timeout=None):
        # Looks again every 50 ms: a notify lost between the look and the
        # wait costs 50 ms, not the whole timeout.
        deadline = time.monotonic() + (timeout or 60)
        while self.owner._ForkingBase__child_pid == 0:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            super().wait(min(left, 0.05))
        return True
prepare = b.ForkingBase._prepare_child
def _prepare_child(self):
    prepare(self)
    self._ForkingBase__child_exited = Reaped(self)
b.ForkingBase._prepare_child = _prepare_child
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"#;

#[test]
fn getmail_over_pop3s() {
    let Some(getmail) = tool("getmail") else {
        return;
    };
    let s = server();
    // getmail will not deliver as root, so as root the whole of getmail
    // runs as nobody (setpriv), into a maildir nobody may write. getmail
    // forks a child per message delivered, and its wait for that child
    // loses the wake-up when SIGCHLD comes before the wait begins (getmail6
    // 6.18, `ForkingBase._wait_for_child`: a Condition notified before
    // anyone waits on it), so one message in a few hundred ends the run
    // with "waiting child pid N timed out": not a POP3 matter. getmail runs
    // with that wait made to see a child already reaped, and to look again
    // every 50 ms for one reaped while it was not yet waiting
    // ([`GETMAIL_WAIT`]).
    let maildir = s.dir().join("Maildir");
    let open = |p: &Path, mode: u32| {
        let mut perms = std::fs::metadata(p).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, mode);
        std::fs::set_permissions(p, perms).unwrap();
    };
    open(s.dir(), 0o711);
    std::fs::create_dir_all(&maildir).unwrap();
    open(&maildir, 0o777);
    for d in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(maildir.join(d)).unwrap();
        open(&maildir.join(d), 0o777);
    }
    let conf_dir = s.dir().join("getmail");
    std::fs::create_dir_all(&conf_dir).unwrap();
    open(&conf_dir, 0o777);
    let cert = conf_dir.join("cert.pem");
    std::fs::copy(s.dir().join("data/tls/cert.pem"), &cert).unwrap();
    open(&cert, 0o644);
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    std::fs::write(
        conf_dir.join("getmailrc"),
        format!(
            "[retriever]\ntype = SimplePOP3SSLRetriever\nserver = 127.0.0.1\nport = {port}\n\
             username = alice@example.org\npassword = secret\nca_certs = {cert}\n\n\
             [destination]\ntype = Maildir\npath = {maildir}/\n\n\
             [options]\nread_all = true\ndelete = false\nverbose = 1\n",
            port = s.addr("pop3s").port(),
            cert = cert.display(),
            maildir = maildir.display(),
        ),
    )
    .unwrap();
    let run = || {
        let mut cmd = if root {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(GETMAIL_PYTHON);
            c
        } else {
            Command::new(GETMAIL_PYTHON)
        };
        cmd.arg("-c").arg(GETMAIL_WAIT).arg(&getmail);
        let out = cmd.arg("--getmaildir").arg(&conf_dir).output().unwrap();
        let log = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "getmail failed: {log}");
        assert!(
            !log.to_lowercase().contains("error"),
            "getmail reported errors: {log}"
        );
        log
    };
    run();
    assert_eq!(files(&maildir.join("new")), 500);
    // UIDLs are stable: a second run with read_all=false finds nothing new.
    std::fs::write(
        conf_dir.join("getmailrc"),
        std::fs::read_to_string(conf_dir.join("getmailrc"))
            .unwrap()
            .replace("read_all = true", "read_all = false"),
    )
    .unwrap();
    run();
    run();
    assert_eq!(files(&maildir.join("new")), 500, "nothing fetched twice");
    assert_eq!(
        s.items("alice@example.org", "Inbox").len(),
        500,
        "delete = false kept them"
    );
}
