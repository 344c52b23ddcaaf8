//! A live IMAP account into a user's folders: `imaps://USER@HOST[:PORT]`
//! (implicit TLS, RFC 8314 §3.3) or `imap://…` (STARTTLS when the server
//! offers it, RFC 9051 §6.2.1), the password on standard input.
//!
//! Why a client of our own: what an import needs is small (LOGIN or
//! AUTHENTICATE PLAIN, LIST, EXAMINE, UID FETCH of FLAGS, INTERNALDATE and
//! BODY.PEEK[], LOGOUT), and the maintained client crates either pull a
//! second TLS stack and async runtime glue (async-imap) or are still
//! alpha and server-oriented (imap-codec's client side would need
//! imap-next too). About 600 lines over tokio and tokio-rustls, which the
//! server already has, cost less than either.
//!
//! The walk: LIST every mailbox (with RFC 6154 SPECIAL-USE attributes when
//! the server has LIST-EXTENDED), map its hierarchy onto "/" paths (the
//! Sent, Drafts, Trash and Junk mailboxes onto ours), skip the ones that
//! cannot be selected and the virtual \All and \Flagged views (Gmail's All
//! Mail would duplicate every message), then for each: EXAMINE (read-only,
//! so no \Seen is set), `UID FETCH last+1:* (UID RFC822.SIZE)` to plan
//! batches of at most [`FETCH_MESSAGES`] messages and [`FETCH_BYTES`]
//! bytes, and `UID FETCH` each batch `(UID FLAGS INTERNALDATE
//! BODY.PEEK[])`. Messages keep their bytes exactly as the server sent
//! them.
//!
//! Resuming: per mailbox, the UIDVALIDITY and the last UID stored. A
//! mailbox whose UIDVALIDITY changed since is skipped with a warning (its
//! old UIDs mean nothing now, and importing it again would duplicate).
use super::{Incoming, Sink};
use anyhow::{Context, bail};
use postgate_types::{Flags, FolderRole};
use std::collections::{BTreeMap, HashMap};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Messages per UID FETCH.
const FETCH_MESSAGES: usize = 200;
/// Bytes per UID FETCH (by RFC822.SIZE; a larger message comes alone).
const FETCH_BYTES: u64 = 16 << 20;
/// How long the server may stay silent.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);
/// The longest response line we accept (literals apart).
const MAX_LINE: usize = 1 << 20;

/// Where to import from.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Source {
    tls: bool,
    user: String,
    host: String,
    port: u16,
}

/// Parses `imaps://USER@HOST[:PORT]` or `imap://…` (the user may hold
/// `@`, or `%40`).
fn parse_url(url: &str) -> anyhow::Result<Source> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("imaps://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("imap://") {
        (false, r)
    } else {
        bail!("{url:?}: give imaps://USER@HOST[:PORT] or imap://USER@HOST[:PORT]");
    };
    let rest = rest.trim_end_matches('/');
    let (user, hostport) = rest
        .rsplit_once('@')
        .with_context(|| format!("{url:?}: no USER@ before the host"))?;
    let user = percent_decode(user);
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (
            h,
            p.parse::<u16>()
                .with_context(|| format!("{url:?}: bad port {p:?}"))?,
        ),
        _ => (hostport, if tls { 993 } else { 143 }),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if user.is_empty() || host.is_empty() {
        bail!("{url:?}: USER and HOST are needed");
    }
    Ok(Source {
        tls,
        user,
        host: host.to_string(),
        port,
    })
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// A value of a response (RFC 9051 §4).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Atom(String),
    /// A quoted string or a literal.
    Str(Vec<u8>),
    List(Vec<Value>),
    Nil,
}

impl Value {
    fn atom(&self) -> Option<&str> {
        match self {
            Value::Atom(a) => Some(a),
            _ => None,
        }
    }
    /// An astring's bytes (atom or string).
    fn bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Atom(a) => Some(a.as_bytes()),
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// One server response.
#[derive(Debug)]
enum Response {
    /// A status response: tag (`*` untagged), OK/NO/BAD/BYE/PREAUTH, the
    /// response code in brackets, the text.
    Status {
        tag: String,
        status: String,
        code: Option<String>,
        text: String,
    },
    /// Untagged data (after `* `).
    Data(Vec<Value>),
    /// A continuation request.
    Continue,
}

/// A connection, plain or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

struct Conn<S> {
    io: BufReader<S>,
    next_tag: u32,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    fn new(s: S) -> Conn<S> {
        Conn {
            io: BufReader::with_capacity(64 << 10, s),
            next_tag: 1,
        }
    }

    async fn line(&mut self) -> anyhow::Result<Vec<u8>> {
        let mut line = Vec::new();
        let n = tokio::time::timeout(TIMEOUT, async {
            (&mut self.io)
                .take(MAX_LINE as u64)
                .read_until(b'\n', &mut line)
                .await
        })
        .await
        .context("the server stayed silent")??;
        if n == 0 {
            bail!("the server closed the connection");
        }
        if !line.ends_with(b"\n") {
            bail!("a response line over {MAX_LINE} bytes");
        }
        Ok(line)
    }

    async fn read(&mut self) -> anyhow::Result<Response> {
        let line = self.line().await?;
        if line.starts_with(b"+") {
            return Ok(Response::Continue);
        }
        let text = String::from_utf8_lossy(&line);
        let mut words = text.splitn(3, ' ');
        let tag = words.next().unwrap_or_default().to_string();
        let second = words.next().unwrap_or_default().trim_end();
        let upper = second.to_ascii_uppercase();
        if matches!(upper.as_str(), "OK" | "NO" | "BAD" | "BYE" | "PREAUTH") {
            let rest = words.next().unwrap_or_default().trim_end().to_string();
            let (code, text) = match rest.strip_prefix('[').and_then(|r| r.split_once(']')) {
                Some((c, t)) => (Some(c.to_string()), t.trim().to_string()),
                None => (None, rest),
            };
            return Ok(Response::Status {
                tag,
                status: upper,
                code,
                text,
            });
        }
        if tag != "*" {
            bail!("unexpected response {:?}", text.trim_end());
        }
        let values = self.values(line[2..].to_vec()).await?;
        Ok(Response::Data(values))
    }

    /// Parses values from `line` on, reading literals and the lines after
    /// them as they come.
    async fn values(&mut self, mut line: Vec<u8>) -> anyhow::Result<Vec<Value>> {
        let mut stack: Vec<Vec<Value>> = vec![Vec::new()];
        let mut i = 0;
        loop {
            while i < line.len() && line[i] == b' ' {
                i += 1;
            }
            let Some(&b) = line.get(i) else {
                bail!("response ended early");
            };
            let top = stack.len() - 1;
            match b {
                b'\r' | b'\n' => {
                    if stack.len() != 1 {
                        bail!("unbalanced parentheses in a response");
                    }
                    return Ok(stack.pop().unwrap_or_default());
                }
                b'(' => {
                    stack.push(Vec::new());
                    i += 1;
                }
                b')' => {
                    let list = stack.pop().context("unbalanced parentheses")?;
                    stack
                        .last_mut()
                        .context("unbalanced parentheses")?
                        .push(Value::List(list));
                    i += 1;
                }
                b'"' => {
                    let mut s = Vec::new();
                    i += 1;
                    loop {
                        match line.get(i) {
                            Some(b'\\') => {
                                s.push(*line.get(i + 1).context("bad quoted string")?);
                                i += 2;
                            }
                            Some(b'"') => {
                                i += 1;
                                break;
                            }
                            Some(b'\r' | b'\n') | None => bail!("unterminated quoted string"),
                            Some(&c) => {
                                s.push(c);
                                i += 1;
                            }
                        }
                    }
                    stack[top].push(Value::Str(s));
                }
                b'{' | b'~' => {
                    // RFC 9051 §4.3 literal (RFC 3516 literal8 with ~).
                    let start = if b == b'~' { i + 2 } else { i + 1 };
                    let close = line[start..]
                        .iter()
                        .position(|&c| c == b'}')
                        .context("bad literal")?;
                    let n: usize = std::str::from_utf8(&line[start..start + close])?
                        .trim_end_matches('+')
                        .parse()
                        .context("bad literal length")?;
                    let mut data = vec![0u8; n];
                    tokio::time::timeout(TIMEOUT, self.io.read_exact(&mut data))
                        .await
                        .context("the server stayed silent")??;
                    stack[top].push(Value::Str(data));
                    line = self.line().await?;
                    i = 0;
                }
                _ => {
                    let start = i;
                    let mut depth = 0;
                    while let Some(&c) = line.get(i) {
                        match c {
                            b'[' => depth += 1,
                            b']' if depth > 0 => depth -= 1,
                            b' ' | b'(' | b')' | b'\r' | b'\n' if depth == 0 => break,
                            b'\r' | b'\n' => break,
                            _ => {}
                        }
                        i += 1;
                    }
                    let atom = String::from_utf8_lossy(&line[start..i]).into_owned();
                    stack[top].push(if atom.eq_ignore_ascii_case("NIL") {
                        Value::Nil
                    } else {
                        Value::Atom(atom)
                    });
                }
            }
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        let io = self.io.get_mut();
        io.write_all(bytes).await?;
        io.flush().await?;
        Ok(())
    }

    /// Sends a command; collects untagged data until its tagged reply,
    /// which must be OK. `on_data` sees each untagged data response; the
    /// response codes of the untagged status responses and of the tagged
    /// one are returned, in order.
    async fn command(
        &mut self,
        command: &str,
        mut on_data: impl FnMut(Vec<Value>) -> anyhow::Result<()>,
    ) -> anyhow::Result<Vec<String>> {
        let tag = format!("i{}", self.next_tag);
        self.next_tag += 1;
        self.send(format!("{tag} {command}\r\n").as_bytes()).await?;
        let mut codes = Vec::new();
        loop {
            match self.read().await? {
                Response::Data(v) => on_data(v)?,
                Response::Continue => bail!("{}: unexpected continuation", verb(command)),
                Response::Status {
                    tag: t,
                    status,
                    code,
                    text,
                } if t == tag => {
                    if status != "OK" {
                        bail!("{}: {status} {text}", verb(command));
                    }
                    codes.extend(code);
                    return Ok(codes);
                }
                Response::Status { status, text, .. } if status == "BYE" => {
                    bail!("the server said BYE: {text}")
                }
                Response::Status { code, .. } => codes.extend(code),
            }
        }
    }
}

/// A command's name, for messages (never its arguments: LOGIN has the password).
fn verb(command: &str) -> &str {
    command.split(' ').next().unwrap_or(command)
}

/// A string as an IMAP quoted string (RFC 9051 §4.3).
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The capabilities in a CAPABILITY response or response code.
fn capabilities(words: impl Iterator<Item = String>) -> Vec<String> {
    words
        .filter(|w| !w.eq_ignore_ascii_case("CAPABILITY"))
        .map(|w| w.to_ascii_uppercase())
        .collect()
}

fn has(caps: &[String], cap: &str) -> bool {
    caps.iter().any(|c| c == cap)
}

async fn tls(
    tcp: TcpStream,
    host: &str,
    insecure: bool,
) -> anyhow::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    // mail-send's connector (as outbound uses it): the platform's trust
    // store, or (`--insecure`) any certificate at all.
    let connector = mail_send::smtp::tls::build_tls_connector(insecure)
        .map_err(|e| anyhow::anyhow!("TLS: {e}"))?;
    let name = rustls_pki_types::ServerName::try_from(host.to_string())
        .with_context(|| format!("{host:?}: not a host name"))?;
    connector.connect(name, tcp).await.with_context(|| {
        format!("TLS with {host} (--insecure accepts a certificate that is not trusted)")
    })
}

/// Connects and logs in; the capabilities after login.
async fn connect(
    src: &Source,
    password: &str,
    insecure: bool,
) -> anyhow::Result<(Conn<Box<dyn Io>>, Vec<String>)> {
    let tcp = tokio::time::timeout(TIMEOUT, TcpStream::connect((src.host.as_str(), src.port)))
        .await
        .context("connecting timed out")?
        .with_context(|| format!("connecting to {}:{}", src.host, src.port))?;
    tcp.set_nodelay(true)?;
    let (mut conn, mut caps): (Conn<Box<dyn Io>>, Vec<String>) = if src.tls {
        let mut c: Conn<Box<dyn Io>> = Conn::new(Box::new(tls(tcp, &src.host, insecure).await?));
        let caps = greeting(&mut c).await?;
        (c, caps)
    } else {
        let mut c = Conn::new(tcp);
        let mut caps = greeting(&mut c).await?;
        if caps.is_empty() {
            caps = capability(&mut c).await?;
        }
        if has(&caps, "STARTTLS") {
            c.command("STARTTLS", |_| Ok(())).await?;
            // Anything the server sent after its OK would have come before
            // TLS: refuse it (CVE-2011-0411's kind of injection).
            if !c.io.buffer().is_empty() {
                bail!("the server sent data after agreeing to STARTTLS");
            }
            let tcp = c.io.into_inner();
            // RFC 9051 §6.2.1: capabilities learnt before TLS are forgotten.
            (
                Conn::new(Box::new(tls(tcp, &src.host, insecure).await?)),
                Vec::new(),
            )
        } else {
            if has(&caps, "LOGINDISABLED") {
                bail!("the server offers neither STARTTLS nor plain-text login");
            }
            eprintln!(
                "warning: {} offers no STARTTLS: the password and mail cross the network in clear",
                src.host
            );
            if !c.io.buffer().is_empty() {
                bail!("the server sent data nobody asked for");
            }
            (Conn::new(Box::new(c.io.into_inner()) as Box<dyn Io>), caps)
        }
    };
    if caps.is_empty() {
        caps = capability(&mut conn).await?;
    }
    login(&mut conn, &caps, &src.user, password).await?;
    let caps = capability(&mut conn).await?;
    Ok((conn, caps))
}

/// Reads the greeting; the capabilities it named, if any.
async fn greeting<S: AsyncRead + AsyncWrite + Unpin>(
    c: &mut Conn<S>,
) -> anyhow::Result<Vec<String>> {
    match c.read().await? {
        Response::Status {
            status, code, text, ..
        } => match status.as_str() {
            "OK" | "PREAUTH" => Ok(code
                .filter(|c| c.to_ascii_uppercase().starts_with("CAPABILITY "))
                .map(|c| capabilities(c.split_whitespace().map(str::to_string)))
                .unwrap_or_default()),
            _ => bail!("the server refused the connection: {status} {text}"),
        },
        other => bail!("unexpected greeting {other:?}"),
    }
}

async fn capability<S: AsyncRead + AsyncWrite + Unpin>(
    c: &mut Conn<S>,
) -> anyhow::Result<Vec<String>> {
    let mut caps = Vec::new();
    c.command("CAPABILITY", |v| {
        if v.first()
            .and_then(Value::atom)
            .is_some_and(|a| a.eq_ignore_ascii_case("CAPABILITY"))
        {
            caps = capabilities(v.iter().filter_map(|x| x.atom().map(str::to_string)));
        }
        Ok(())
    })
    .await?;
    Ok(caps)
}

async fn login<S: AsyncRead + AsyncWrite + Unpin>(
    c: &mut Conn<S>,
    caps: &[String],
    user: &str,
    password: &str,
) -> anyhow::Result<()> {
    use base64::Engine;
    if has(caps, "AUTH=PLAIN") {
        // RFC 4616: authzid NUL authcid NUL password.
        let ir = base64::engine::general_purpose::STANDARD
            .encode(format!("\0{user}\0{password}").as_bytes());
        let tag = format!("i{}", c.next_tag);
        c.next_tag += 1;
        if has(caps, "SASL-IR") {
            // RFC 4959: the initial response on the command line.
            c.send(format!("{tag} AUTHENTICATE PLAIN {ir}\r\n").as_bytes())
                .await?;
        } else {
            c.send(format!("{tag} AUTHENTICATE PLAIN\r\n").as_bytes())
                .await?;
        }
        loop {
            match c.read().await? {
                Response::Continue => c.send(format!("{ir}\r\n").as_bytes()).await?,
                Response::Status {
                    tag: t,
                    status,
                    text,
                    ..
                } if t == tag => {
                    if status != "OK" {
                        bail!("login as {user} refused: {status} {text}");
                    }
                    return Ok(());
                }
                _ => {}
            }
        }
    }
    c.command(
        &format!("LOGIN {} {}", quoted(user), quoted(password)),
        |_| Ok(()),
    )
    .await
    .map_err(|e| anyhow::anyhow!("login as {user} refused: {e}"))?;
    Ok(())
}

/// A mailbox as LIST showed it.
#[derive(Debug, Clone)]
struct Listed {
    /// Its name on the wire (to EXAMINE it).
    wire: Vec<u8>,
    /// Its name decoded, hierarchy as "/".
    path: String,
    attributes: Vec<String>,
}

async fn list(c: &mut Conn<Box<dyn Io>>, caps: &[String]) -> anyhow::Result<Vec<Listed>> {
    let mut out = Vec::new();
    // RFC 6154 §5.1: ask for the special-use attributes where possible.
    let command = if has(caps, "SPECIAL-USE") && has(caps, "LIST-EXTENDED") {
        "LIST \"\" \"*\" RETURN (SPECIAL-USE)"
    } else {
        "LIST \"\" \"*\""
    };
    c.command(command, |v| {
        // RFC 9051 §7.3.1: LIST (attributes) delimiter name [extended items].
        let [Value::Atom(kind), Value::List(attrs), delim, name, ..] = v.as_slice() else {
            return Ok(());
        };
        if !kind.eq_ignore_ascii_case("LIST") {
            return Ok(());
        }
        let Some(wire) = name.bytes() else {
            return Ok(());
        };
        let decoded = String::from_utf8_lossy(wire).into_owned();
        // RFC 3501 §5.1.3: names are in modified UTF-7.
        let decoded = postgate_imap_proto::utf7::decode(&decoded).unwrap_or(decoded);
        let delim = match delim {
            Value::Str(d) if d.len() == 1 => Some(d[0] as char),
            Value::Atom(d) if d.len() == 1 => d.chars().next(),
            _ => None,
        };
        // Our separator is "/": a "/" inside a name under another
        // separator becomes "_".
        let path = match delim {
            Some(d) => decoded
                .split(d)
                .filter(|s| !s.is_empty())
                .map(|s| s.replace('/', "_"))
                .collect::<Vec<_>>()
                .join("/"),
            None => decoded.replace('/', "_"),
        };
        out.push(Listed {
            wire: wire.to_vec(),
            path,
            attributes: attrs
                .iter()
                .filter_map(|a| a.atom().map(|a| a.to_ascii_lowercase()))
                .collect(),
        });
        Ok(())
    })
    .await?;
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// A mailbox name as an IMAP quoted string (RFC 9051 §4.3), as LIST gave it.
fn mailbox_arg(wire: &[u8]) -> String {
    let mut v = String::from("\"");
    for &b in wire {
        if b == b'"' || b == b'\\' {
            v.push('\\');
        }
        v.push(b as char);
    }
    v.push('"');
    v
}

/// One message as fetched.
#[derive(Debug, Default)]
struct Fetched {
    flags: Option<(Flags, Vec<String>)>,
    internal_date: Option<i64>,
    body: Option<Vec<u8>>,
    size: Option<u64>,
}

/// The items of a FETCH response into `into`, by UID.
fn fetch_items(v: Vec<Value>, into: &mut BTreeMap<u32, Fetched>) {
    // RFC 9051 §7.5.2: * n FETCH (items).
    let mut it = v.into_iter();
    let (Some(Value::Atom(_)), Some(Value::Atom(kind)), Some(Value::List(items))) =
        (it.next(), it.next(), it.next())
    else {
        return;
    };
    if !kind.eq_ignore_ascii_case("FETCH") {
        return;
    }
    let mut f = Fetched::default();
    let mut uid = None;
    let mut items = items.into_iter();
    while let (Some(Value::Atom(name)), Some(value)) = (items.next(), items.next()) {
        match (name.to_ascii_uppercase().as_str(), value) {
            ("UID", Value::Atom(u)) => uid = u.parse().ok(),
            ("FLAGS", Value::List(l)) => {
                let mut flags = Flags::default();
                let mut keywords = Vec::new();
                for a in l.iter().filter_map(Value::atom) {
                    if let Some(flag) = Flags::from_name(a) {
                        flags = flags.with(flag);
                    } else if !a.starts_with('\\') {
                        keywords.push(a.to_string());
                    }
                }
                f.flags = Some((flags, keywords));
            }
            ("INTERNALDATE", Value::Str(d)) => {
                f.internal_date = internal_date(&String::from_utf8_lossy(&d));
            }
            ("RFC822.SIZE", Value::Atom(n)) => f.size = n.parse().ok(),
            ("BODY[]", Value::Str(b)) => f.body = Some(b),
            ("BODY[]", Value::Nil) => f.body = Some(Vec::new()),
            _ => {}
        }
    }
    if let Some(uid) = uid {
        let e = into.entry(uid).or_default();
        if f.flags.is_some() {
            e.flags = f.flags;
        }
        e.internal_date = f.internal_date.or(e.internal_date);
        e.size = f.size.or(e.size);
        if f.body.is_some() {
            e.body = f.body;
        }
    }
}

/// RFC 9051 §9 date-time: "dd-Mon-yyyy hh:mm:ss +zzzz" (day may be
/// space-padded).
fn internal_date(s: &str) -> Option<i64> {
    let s = s.trim();
    chrono::DateTime::parse_from_str(s, "%d-%b-%Y %H:%M:%S %z")
        .or_else(|_| chrono::DateTime::parse_from_str(&format!("0{s}"), "%d-%b-%Y %H:%M:%S %z"))
        .ok()
        .map(|d| d.timestamp())
}

/// Per mailbox: UIDVALIDITY and the last UID stored.
type Progress = HashMap<String, (u32, u32)>;

/// Runs the import.
pub async fn import(sink: &mut Sink, url: &str, insecure: bool) -> anyhow::Result<()> {
    let src = parse_url(url)?;
    let password = read_password()?;
    let (mut conn, caps) = connect(&src, &password, insecure).await?;
    drop(password);
    let mailboxes = list(&mut conn, &caps).await?;
    let mut progress: Progress =
        serde_json::from_value(sink.cursor().get("mailboxes").cloned().unwrap_or_default())
            .unwrap_or_default();
    let roles = role_paths(sink).await?;
    let mut total = 0u64;
    let mut plans = Vec::new();
    for mb in &mailboxes {
        if mb.attributes.iter().any(|a| {
            matches!(
                a.as_str(),
                "\\noselect" | "\\nonexistent" | "\\all" | "\\flagged"
            )
        }) {
            if mb
                .attributes
                .iter()
                .any(|a| a == "\\all" || a == "\\flagged")
            {
                sink.note(&format!(
                    "{}: a virtual view of other mailboxes, skipped",
                    mb.path
                ));
            }
            continue;
        }
        let target = target_path(mb, &roles);
        let mut exists = 0u64;
        let codes = conn
            .command(&format!("EXAMINE {}", mailbox_arg(&mb.wire)), |v| {
                if let [Value::Atom(n), Value::Atom(k)] = v.as_slice()
                    && k.eq_ignore_ascii_case("EXISTS")
                {
                    exists = n.parse().unwrap_or(0);
                }
                Ok(())
            })
            .await
            .with_context(|| format!("EXAMINE {}", mb.path))?;
        // RFC 9051 §7.1: UIDVALIDITY in an untagged OK's response code.
        let validity: u32 = codes
            .iter()
            .find_map(|c| {
                let (name, value) = c.split_once(' ')?;
                name.eq_ignore_ascii_case("UIDVALIDITY")
                    .then(|| value.trim().parse().ok())?
            })
            .with_context(|| format!("EXAMINE {}: no UIDVALIDITY", mb.path))?;
        let last = match progress.get(&mb.path) {
            Some(&(v, last)) if v == validity => last,
            Some(_) => {
                sink.note(&format!(
                    "{}: UIDVALIDITY changed since the previous run; skipped (remove the state file to import it again)",
                    mb.path
                ));
                continue;
            }
            None => 0,
        };
        // The UIDs after `last`, with their sizes, to plan the fetches.
        let mut sizes: BTreeMap<u32, Fetched> = BTreeMap::new();
        if exists > 0 {
            conn.command(
                &format!("UID FETCH {}:* (UID RFC822.SIZE)", last + 1),
                |v| {
                    fetch_items(v, &mut sizes);
                    Ok(())
                },
            )
            .await
            .with_context(|| format!("UID FETCH in {}", mb.path))?;
        }
        // RFC 9051 §6.4.9: "n:*" includes the last message even when its
        // UID is below n.
        let uids: Vec<(u32, u64)> = sizes
            .into_iter()
            .filter(|(u, _)| *u > last)
            .map(|(u, f)| (u, f.size.unwrap_or(0)))
            .collect();
        if target.is_none() && !uids.is_empty() {
            sink.note(&format!(
                "{}: {} messages skipped (it maps onto a calendar folder)",
                mb.path,
                uids.len()
            ));
        }
        total += uids.len() as u64;
        plans.push((mb.clone(), target, validity, uids));
    }
    sink.bar_messages(total);
    for (mb, target, validity, uids) in plans {
        let Some(target) = target else {
            sink.advance(uids.len() as u64);
            continue;
        };
        if uids.is_empty() {
            progress.entry(mb.path.clone()).or_insert((validity, 0));
            sink.advance_cursor(serde_json::json!({ "mailboxes": progress }))
                .await?;
            continue;
        }
        conn.command(&format!("EXAMINE {}", mailbox_arg(&mb.wire)), |_| Ok(()))
            .await?;
        for chunk in chunks(&uids) {
            let set: Vec<String> = chunk.iter().map(|u| u.to_string()).collect();
            let mut got: BTreeMap<u32, Fetched> = BTreeMap::new();
            conn.command(
                &format!(
                    "UID FETCH {} (UID FLAGS INTERNALDATE BODY.PEEK[])",
                    set.join(",")
                ),
                |v| {
                    fetch_items(v, &mut got);
                    Ok(())
                },
            )
            .await
            .with_context(|| format!("UID FETCH in {}", mb.path))?;
            for uid in chunk {
                let Some(f) = got.remove(&uid) else {
                    // Expunged meanwhile.
                    sink.advance(1);
                    continue;
                };
                let Some(body) = f.body.filter(|b| !b.is_empty()) else {
                    sink.advance(1);
                    continue;
                };
                let (flags, keywords) = f.flags.unwrap_or_default();
                progress.insert(mb.path.clone(), (validity, uid));
                sink.push(
                    &target,
                    Incoming {
                        raw: body,
                        flags,
                        keywords,
                        internal_date: f.internal_date,
                    },
                    serde_json::json!({ "mailboxes": progress }),
                )
                .await?;
                sink.advance(1);
            }
        }
    }
    let _ = conn.command("LOGOUT", |_| Ok(())).await;
    Ok(())
}

/// UIDs in fetch-sized groups.
fn chunks(uids: &[(u32, u64)]) -> Vec<Vec<u32>> {
    let mut out: Vec<Vec<u32>> = Vec::new();
    let mut cur = Vec::new();
    let mut bytes = 0;
    for &(uid, size) in uids {
        if !cur.is_empty() && (cur.len() >= FETCH_MESSAGES || bytes + size > FETCH_BYTES) {
            out.push(std::mem::take(&mut cur));
            bytes = 0;
        }
        cur.push(uid);
        bytes += size;
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Our folders with a role, by role.
async fn role_paths(sink: &Sink) -> anyhow::Result<HashMap<FolderRole, String>> {
    Ok(sink
        .store
        .folders(sink.user.id)
        .await?
        .into_iter()
        .filter_map(|f| Some((f.role?, f.path)))
        .collect())
}

/// Where a mailbox goes: INBOX to the Inbox, a special-use mailbox (RFC
/// 6154 §2) to our folder of that use, a name that is one of our calendar
/// folders to "NAME (imported)" (if it has messages), the rest as named.
fn target_path(mb: &Listed, roles: &HashMap<FolderRole, String>) -> Option<String> {
    if mb.path.eq_ignore_ascii_case("inbox") {
        return Some("INBOX".into());
    }
    for (attr, role) in [
        ("\\sent", FolderRole::Sent),
        ("\\drafts", FolderRole::Drafts),
        ("\\trash", FolderRole::Trash),
        ("\\junk", FolderRole::Junk),
    ] {
        if mb.attributes.iter().any(|a| a == attr)
            && let Some(p) = roles.get(&role)
        {
            return Some(p.clone());
        }
    }
    for role in [FolderRole::Calendar, FolderRole::Tasks] {
        if roles
            .get(&role)
            .is_some_and(|p| p.eq_ignore_ascii_case(&mb.path))
        {
            return None;
        }
    }
    Some(mb.path.clone())
}

/// The source account's password: the first line of standard input.
fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let pw = line.trim_end_matches(['\r', '\n']).to_string();
    if pw.is_empty() {
        bail!("no password on standard input (the source account's, on the first line)");
    }
    Ok(pw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("imaps://alice@example.org@mail.example.org").unwrap(),
            Source {
                tls: true,
                user: "alice@example.org".into(),
                host: "mail.example.org".into(),
                port: 993
            }
        );
        let s = parse_url("imap://bob%40x.test@127.0.0.1:10143").unwrap();
        assert_eq!(
            (s.tls, s.user.as_str(), s.host.as_str(), s.port),
            (false, "bob@x.test", "127.0.0.1", 10143)
        );
        assert!(parse_url("pop3://a@b").is_err());
        assert!(parse_url("imap://host-only").is_err());
    }

    #[test]
    fn dates() {
        // RFC 9051 §9 date-time.
        assert_eq!(internal_date("17-Jul-1996 02:44:25 -0700"), Some(837596665));
        assert_eq!(internal_date(" 7-Jul-1996 09:44:25 +0000"), Some(836732665));
    }

    #[tokio::test]
    async fn fetch_responses_with_literals() {
        let wire = b"* 1 FETCH (UID 7 FLAGS (\\Seen $Label1 \\Recent) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" BODY[] {9}\r\nab\r\n)cd\r\n)\r\n* LIST (\\HasNoChildren \\Sent) \"/\" {5}\r\nSe nt\r\n* LIST () NIL INBOX\r\n";
        let mut c = Conn::new(tokio::io::join(&wire[..], tokio::io::sink()));
        let Response::Data(v) = c.read().await.unwrap() else {
            panic!()
        };
        let mut got = BTreeMap::new();
        fetch_items(v, &mut got);
        let f = &got[&7];
        assert_eq!(f.body.as_deref(), Some(&b"ab\r\n)cd\r\n"[..]));
        assert_eq!(f.flags, Some((Flags::SEEN, vec!["$Label1".to_string()])));
        assert_eq!(f.internal_date, Some(837596665));
        let Response::Data(v) = c.read().await.unwrap() else {
            panic!()
        };
        assert_eq!(v[3], Value::Str(b"Se nt".to_vec()));
        assert_eq!(
            v[1],
            Value::List(vec![
                Value::Atom("\\HasNoChildren".into()),
                Value::Atom("\\Sent".into())
            ])
        );
        let Response::Data(v) = c.read().await.unwrap() else {
            panic!()
        };
        assert_eq!(v[2], Value::Nil);
    }
}
