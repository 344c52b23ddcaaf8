//! Small clients shared by the bench bins (`bench-chaos`, `bench-disk`,
//! `bench-slowloris`, `bench-soak`): SMTP, IMAP and POP3 over plain TCP on
//! loopback, each step bounded by a timeout, and the percentiles their
//! latencies are reported with. Not a test, not shipped.
//!
//! Servers restarted by a bench get new ports (they listen on port 0): a
//! [`Ports`] file, rewritten by the script at each start, is read again
//! before each connection.
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpSocket, TcpStream};

/// How long one step (a connect, a reply) may take before it counts as failed.
pub const STEP: Duration = Duration::from_secs(30);

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "step timed out")
}

/// Runs `f` within [`STEP`].
pub async fn step<T>(f: impl std::future::Future<Output = io::Result<T>>) -> io::Result<T> {
    tokio::time::timeout(STEP, f)
        .await
        .unwrap_or_else(|_| Err(timed_out()))
}

/// The listeners of the server as the script last wrote them: lines
/// `ROLE PORT` (smtp, submission, imap, pop3).
#[derive(Debug, Clone, Default)]
pub struct Ports(Vec<(String, u16)>);

impl Ports {
    /// Reads the file; an absent or half-written file gives no ports.
    pub fn read(path: &Path) -> Ports {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        Ports(
            text.lines()
                .filter_map(|l| {
                    let (role, port) = l.split_once(' ')?;
                    Some((role.to_string(), port.trim().parse().ok()?))
                })
                .collect(),
        )
    }

    /// The loopback address of a role's listener.
    pub fn addr(&self, role: &str) -> Option<SocketAddr> {
        self.0
            .iter()
            .find(|(r, _)| r == role)
            .map(|(_, p)| SocketAddr::from(([127, 0, 0, 1], *p)))
    }
}

/// A line-oriented connection.
#[derive(Debug)]
pub struct Conn {
    r: BufReader<OwnedReadHalf>,
    w: OwnedWriteHalf,
}

impl Conn {
    /// Connects to `addr`.
    pub async fn connect(addr: SocketAddr) -> io::Result<Conn> {
        let s = step(TcpStream::connect(addr)).await?;
        Ok(Conn::from_stream(s))
    }

    /// Connects to `addr` from the local address `from` (a loopback address
    /// other than 127.0.0.1, so that per-address caps see many clients).
    pub async fn connect_from(from: IpAddr, addr: SocketAddr) -> io::Result<Conn> {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(from, 0))?;
        let s = step(socket.connect(addr)).await?;
        Ok(Conn::from_stream(s))
    }

    fn from_stream(s: TcpStream) -> Conn {
        let _ = s.set_nodelay(true);
        let (r, w) = s.into_split();
        // A small buffer: the slowloris bench holds thousands of these.
        Conn {
            r: BufReader::with_capacity(2048, r),
            w,
        }
    }

    /// Sends bytes.
    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        step(self.w.write_all(bytes)).await
    }

    /// The next line, CRLF included; end of stream is an error.
    pub async fn line(&mut self) -> io::Result<Vec<u8>> {
        let mut line = Vec::new();
        let n = step(self.r.read_until(b'\n', &mut line)).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(line)
    }

    /// Exactly `n` bytes.
    pub async fn exact(&mut self, n: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0; n];
        step(self.r.read_exact(&mut buf)).await?;
        Ok(buf)
    }

    /// Waits for the server to close the connection (or `limit`); what it
    /// sent meanwhile, or `None` if it was still open at `limit`.
    pub async fn until_closed(&mut self, limit: Duration) -> Option<Vec<u8>> {
        let mut all = Vec::new();
        let mut buf = [0u8; 512];
        let read = async {
            loop {
                match self.r.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => all.extend_from_slice(&buf[..n]),
                }
            }
        };
        tokio::time::timeout(limit, read).await.ok().map(|()| all)
    }

    /// Splits into its halves (reader, writer) for a client that reads and
    /// writes at once.
    pub fn into_parts(self) -> (BufReader<OwnedReadHalf>, OwnedWriteHalf) {
        (self.r, self.w)
    }
}

/// A message's bytes as sent: CRLF lines, leading dots doubled (RFC 5321
/// §4.5.2), without the final dot.
pub fn stuffed(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 64);
    for line in text.lines() {
        if line.starts_with('.') {
            out.push(b'.');
        }
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A message of about `size` bytes with this Message-ID and subject.
pub fn message(id: &str, subject: &str, to: &str, size: usize) -> String {
    let mut m = format!(
        "From: Bench <bench@remote.test>\r\nTo: {to}\r\nSubject: {subject}\r\n\
         Message-ID: <{id}>\r\nDate: Mon, 1 Dec 2025 10:00:00 +0000\r\n\r\n"
    );
    let line = "The quick brown fox jumps over the lazy dog, again and again.\r\n";
    while m.len() < size {
        m.push_str(line);
    }
    m
}

/// An SMTP reply: code and its last line.
pub async fn smtp_reply(c: &mut Conn) -> io::Result<(u16, String)> {
    loop {
        let line = c.line().await?;
        if line.get(3) != Some(&b'-') {
            let text = String::from_utf8_lossy(&line).trim_end().to_string();
            let code = text.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
            return Ok((code, text));
        }
    }
}

/// Base64 (RFC 4648 §4), for AUTH PLAIN.
pub fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// One SMTP transaction on a new connection: greeting, EHLO, (AUTH PLAIN),
/// MAIL, RCPT, DATA, the message, QUIT. The reply that ended it: the
/// answer to the end of the data (`250` when accepted), or the first
/// refusal before it.
pub async fn smtp_send(
    addr: SocketAddr,
    auth: Option<(&str, &str)>,
    from: &str,
    rcpt: &str,
    body: &[u8],
) -> io::Result<(u16, String)> {
    let mut c = Conn::connect(addr).await?;
    let greeting = smtp_reply(&mut c).await?;
    if greeting.0 != 220 {
        return Ok(greeting);
    }
    let mut cmds = vec![("EHLO loadgen.test\r\n".to_string(), 250)];
    if let Some((user, pass)) = auth {
        cmds.push((
            format!(
                "AUTH PLAIN {}\r\n",
                base64(format!("\0{user}\0{pass}").as_bytes())
            ),
            235,
        ));
    }
    cmds.push((format!("MAIL FROM:<{from}>\r\n"), 250));
    cmds.push((format!("RCPT TO:<{rcpt}>\r\n"), 250));
    cmds.push(("DATA\r\n".to_string(), 354));
    for (cmd, want) in cmds {
        c.send(cmd.as_bytes()).await?;
        let r = smtp_reply(&mut c).await?;
        if r.0 != want {
            let _ = c.send(b"QUIT\r\n").await;
            return Ok(r);
        }
    }
    c.send(body).await?;
    c.send(b".\r\n").await?;
    let r = smtp_reply(&mut c).await?;
    let _ = c.send(b"QUIT\r\n").await;
    let _ = smtp_reply(&mut c).await;
    Ok(r)
}

/// An IMAP client: tagged commands, responses with their literals inline.
#[derive(Debug)]
pub struct Imap {
    c: Conn,
    tag: u32,
}

/// A tagged IMAP response: the untagged lines before it and the tagged line.
#[derive(Debug, Default)]
pub struct ImapResponse {
    /// Untagged responses, literals included in place.
    pub untagged: Vec<Vec<u8>>,
    /// The tagged completion line, without the tag.
    pub done: String,
}

impl ImapResponse {
    /// Whether the command completed with OK.
    pub fn ok(&self) -> bool {
        self.done.starts_with("OK")
    }
}

impl Imap {
    /// Connects; the greeting must be `* OK`.
    pub async fn connect(addr: SocketAddr) -> io::Result<Imap> {
        let mut c = Conn::connect(addr).await?;
        let greeting = c.line().await?;
        if !greeting.starts_with(b"* OK") {
            return Err(io::Error::other(format!(
                "IMAP greeting: {}",
                String::from_utf8_lossy(&greeting).trim_end()
            )));
        }
        Ok(Imap { c, tag: 0 })
    }

    /// One logical response line: a line and, for each literal it
    /// announces, the literal's bytes and the line's continuation.
    async fn logical_line(&mut self) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let line = self.c.line().await?;
            let literal = literal_len(&line);
            out.extend_from_slice(&line);
            match literal {
                Some(n) => {
                    let data = self.c.exact(n).await?;
                    out.extend_from_slice(&data);
                }
                None => return Ok(out),
            }
        }
    }

    fn next_tag(&mut self) -> String {
        self.tag += 1;
        format!("t{}", self.tag)
    }

    async fn finish(&mut self, tag: &str) -> io::Result<ImapResponse> {
        let mut r = ImapResponse::default();
        let prefix = format!("{tag} ");
        loop {
            let line = self.logical_line().await?;
            if let Some(rest) = line.strip_prefix(prefix.as_bytes()) {
                r.done = String::from_utf8_lossy(rest).trim_end().to_string();
                return Ok(r);
            }
            r.untagged.push(line);
        }
    }

    /// Runs one command (without tag and CRLF).
    pub async fn cmd(&mut self, command: &str) -> io::Result<ImapResponse> {
        let tag = self.next_tag();
        self.c
            .send(format!("{tag} {command}\r\n").as_bytes())
            .await?;
        self.finish(&tag).await
    }

    /// APPENDs a message to `mailbox` with a synchronizing literal (RFC 9051
    /// §6.3.12, §7.5: the data goes after the `+` continuation).
    pub async fn append(&mut self, mailbox: &str, message: &[u8]) -> io::Result<ImapResponse> {
        let tag = self.next_tag();
        self.c
            .send(format!("{tag} APPEND {mailbox} {{{}}}\r\n", message.len()).as_bytes())
            .await?;
        let line = self.c.line().await?;
        if !line.starts_with(b"+") {
            let text = String::from_utf8_lossy(&line).trim_end().to_string();
            let done = text
                .strip_prefix(&format!("{tag} "))
                .unwrap_or(&text)
                .to_string();
            return Ok(ImapResponse {
                untagged: Vec::new(),
                done,
            });
        }
        self.c.send(message).await?;
        self.c.send(b"\r\n").await?;
        self.finish(&tag).await
    }
}

/// The length of the literal a line ends with (`{N}` or `{N+}`), if any.
fn literal_len(line: &[u8]) -> Option<usize> {
    let line = line.strip_suffix(b"\r\n").or(line.strip_suffix(b"\n"))?;
    let line = line.strip_suffix(b"}")?;
    let open = line.iter().rposition(|&b| b == b'{')?;
    let digits = &line[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Every Message-ID in `mailbox`'s messages (one FETCH of that header field).
pub async fn imap_message_ids(imap: &mut Imap, mailbox: &str) -> io::Result<Vec<String>> {
    let r = imap.cmd(&format!("SELECT {mailbox}")).await?;
    if !r.ok() {
        return Err(io::Error::other(format!("SELECT: {}", r.done)));
    }
    let r = imap
        .cmd("FETCH 1:* (BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        .await?;
    let mut ids = Vec::new();
    for u in &r.untagged {
        let text = String::from_utf8_lossy(u);
        for line in text.lines() {
            if line.to_ascii_lowercase().starts_with("message-id:")
                && let (Some(a), Some(b)) = (line.find('<'), line.rfind('>'))
                && a < b
            {
                ids.push(line[a + 1..b].to_string());
            }
        }
    }
    Ok(ids)
}

/// A POP3 client.
#[derive(Debug)]
pub struct Pop3 {
    c: Conn,
}

impl Pop3 {
    /// Connects; the greeting must be `+OK`.
    pub async fn connect(addr: SocketAddr) -> io::Result<Pop3> {
        let mut c = Conn::connect(addr).await?;
        let greeting = c.line().await?;
        if !greeting.starts_with(b"+OK") {
            return Err(io::Error::other(format!(
                "POP3 greeting: {}",
                String::from_utf8_lossy(&greeting).trim_end()
            )));
        }
        Ok(Pop3 { c })
    }

    /// A one-line command's status line.
    pub async fn cmd(&mut self, command: &str) -> io::Result<String> {
        self.c.send(format!("{command}\r\n").as_bytes()).await?;
        Ok(String::from_utf8_lossy(&self.c.line().await?)
            .trim_end()
            .to_string())
    }

    /// USER and PASS (RFC 1939 §7); an error carries the refusal.
    pub async fn login(&mut self, user: &str, password: &str) -> io::Result<()> {
        for cmd in [format!("USER {user}"), format!("PASS {password}")] {
            let r = self.cmd(&cmd).await?;
            if !r.starts_with("+OK") {
                return Err(io::Error::other(r));
            }
        }
        Ok(())
    }

    /// The message count STAT gives (RFC 1939 §5), 0 if unreadable.
    pub async fn count(&mut self) -> io::Result<u64> {
        let stat = self.cmd("STAT").await?;
        Ok(stat
            .split_whitespace()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0))
    }

    /// A multi-line command: its status line and, after `+OK`, the lines
    /// up to the terminating dot (RFC 1939 §3), dot-unstuffed.
    pub async fn multi(&mut self, command: &str) -> io::Result<(String, Vec<u8>)> {
        let status = self.cmd(command).await?;
        let mut body = Vec::new();
        if status.starts_with("+OK") {
            loop {
                let line = self.c.line().await?;
                if line == b".\r\n" {
                    break;
                }
                body.extend_from_slice(line.strip_prefix(b".").unwrap_or(&line));
            }
        }
        Ok((status, body))
    }
}

/// The `p`-th percentile (0–100) of `v` (sorted in place), nearest rank; 0
/// for none.
pub fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// A small deterministic random number generator (xorshift64*), so that
/// the bins need no dependency for jitter.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded from `seed` (0 is replaced).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// This process's CPU time so far (user + system), in seconds, from
/// /proc/self/stat (clock ticks of 1/100 s, as Linux reports them to user
/// space); 0 where it cannot be read.
pub fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which is in parentheses and may hold
    // spaces): state is field 3, utime 14, stime 15.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// What [`run_clients`] measured: each client's result, the wall time and
/// this process's CPU time meanwhile (seconds).
#[derive(Debug)]
pub struct ClientsRun<T> {
    /// Each client's result, in the order started.
    pub results: Vec<T>,
    /// Wall seconds from the first start to the last end.
    pub wall: f64,
    /// CPU seconds this process used meanwhile (all threads).
    pub cpu: f64,
}

/// Runs `clients` clients (`client(0)`, `client(1)`, …) at once on a tokio
/// runtime of `threads` worker threads, and measures the run. A client
/// that panics counts as `T::default()`.
pub fn run_clients<T, F, Fut>(clients: u64, threads: usize, client: F) -> ClientsRun<T>
where
    T: Default + Send + 'static,
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .expect("runtime");
    let cpu0 = cpu_seconds();
    let started = std::time::Instant::now();
    let results = rt.block_on(async {
        let tasks: Vec<_> = (0..clients).map(|i| tokio::spawn(client(i))).collect();
        let mut out = Vec::with_capacity(tasks.len());
        for t in tasks {
            out.push(t.await.unwrap_or_default());
        }
        out
    });
    ClientsRun {
        results,
        wall: started.elapsed().as_secs_f64(),
        cpu: cpu_seconds() - cpu0,
    }
}

/// Exits unless `host` is a loopback address (set BENCH_ALLOW_NONLOCAL=1
/// to allow another), as the shared load scripts do.
pub fn loopback_only(host: &str) {
    let local = host
        .parse::<IpAddr>()
        .map(|a| a.is_loopback())
        .unwrap_or(host == "localhost");
    if !local && std::env::var("BENCH_ALLOW_NONLOCAL").as_deref() != Ok("1") {
        eprintln!("refusing non-loopback host {host} (set BENCH_ALLOW_NONLOCAL=1)");
        std::process::exit(2);
    }
}

/// Command-line arguments: positionals in order, then `--name value`
/// options; anything left over or malformed ends the process with the usage.
#[derive(Debug)]
pub struct Args {
    usage: &'static str,
    positional: std::collections::VecDeque<String>,
    options: std::collections::HashMap<String, String>,
}

impl Args {
    /// This process's arguments.
    pub fn from_env(usage: &'static str) -> Args {
        let mut positional = std::collections::VecDeque::new();
        let mut options = std::collections::HashMap::new();
        let mut it = std::env::args().skip(1);
        while let Some(a) = it.next() {
            if a.starts_with("--") {
                let Some(v) = it.next() else {
                    Args::fail(usage, &format!("{a} needs a value"));
                };
                options.insert(a, v);
            } else {
                positional.push_back(a);
            }
        }
        Args {
            usage,
            positional,
            options,
        }
    }

    fn fail(usage: &str, why: &str) -> ! {
        eprintln!("{why}\nusage: {usage}");
        std::process::exit(2);
    }

    /// The next positional argument.
    pub fn positional(&mut self, name: &str) -> String {
        self.positional
            .pop_front()
            .unwrap_or_else(|| Args::fail(self.usage, &format!("{name} missing")))
    }

    /// `--name value`, parsed, or `default`.
    pub fn opt<T: std::str::FromStr>(&mut self, name: &str, default: T) -> T {
        match self.options.remove(name) {
            None => default,
            Some(v) => v
                .parse()
                .unwrap_or_else(|_| Args::fail(self.usage, &format!("{name} {v}: not valid"))),
        }
    }

    /// Ends the process if anything was not taken.
    pub fn done(self) {
        if let Some(p) = self.positional.front() {
            Args::fail(self.usage, &format!("unexpected {p}"));
        }
        if let Some(o) = self.options.keys().next() {
            Args::fail(self.usage, &format!("unknown option {o}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_known_answers() {
        // RFC 4648 §10 test vectors.
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn literal_lengths() {
        assert_eq!(literal_len(b"* 1 FETCH (BODY[] {12}\r\n"), Some(12));
        assert_eq!(literal_len(b"a APPEND x {3+}\r\n"), Some(3));
        assert_eq!(literal_len(b"* OK done\r\n"), None);
    }

    #[test]
    fn own_cpu_time_is_read() {
        let before = cpu_seconds();
        let mut x = 0u64;
        let t = std::time::Instant::now();
        while t.elapsed() < Duration::from_millis(300) {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        assert!(x > 0);
        assert!(cpu_seconds() - before >= 0.1, "{before}");
    }

    #[test]
    fn percentiles() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&mut v, 50.0), 50.0);
        assert_eq!(percentile(&mut v, 99.0), 99.0);
        assert_eq!(percentile(&mut [], 99.0), 0.0);
    }
}
