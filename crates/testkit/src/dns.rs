//! A loopback DNS responder for the delivery agent's MX and address lookups
//! and for the SMTP checks (blocklists, reverse DNS, SPF, DKIM, DMARC,
//! MTA-STS).
//!
//! [`Dns::start`] serves UDP and TCP on the same 127.0.0.1 port, answering
//! authoritatively from the records a test adds with [`Dns::mx`],
//! [`Dns::a`], [`Dns::aaaa`], [`Dns::txt`] and [`Dns::ptr`] (RFC 1035 §4,
//! RFC 3596, written by hand); [`Dns::servfail`] makes a name fail
//! (SERVFAIL, for temporary errors) and [`Dns::remove`] takes a name's
//! records away. A name with no records at or
//! below it is NXDOMAIN; an existing name asked for a type it lacks gets
//! NOERROR with no answers. Both negative answers carry a root SOA (TTL 1) in
//! the authority section. Queries' EDNS OPT records are ignored, so UDP
//! answers over 512 bytes are truncated (TC) for a retry over TCP. Malformed
//! packets are ignored.

use std::io::{Read, Write};
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// The TTL of every answer.
const TTL: u32 = 60;

/// The TTL and minimum of the SOA given with negative answers: short, so that a
/// record added after a lookup is soon seen.
const NEGATIVE_TTL: u32 = 1;

/// The largest UDP reply without EDNS (RFC 1035 §4.2.1); larger ones are
/// truncated (TC set) so the client retries over TCP.
const UDP_LIMIT: usize = 512;

/// How long a TCP connection may stay idle.
const TCP_TIMEOUT: Duration = Duration::from_secs(30);

const TYPE_A: u16 = 1;
const TYPE_SOA: u16 = 6;
const TYPE_PTR: u16 = 12;
const TYPE_MX: u16 = 15;
const TYPE_TXT: u16 = 16;
const TYPE_AAAA: u16 = 28;
const TYPE_ANY: u16 = 255;
const CLASS_IN: u16 = 1;

const RCODE_FORMERR: u8 = 1;
const RCODE_SERVFAIL: u8 = 2;
const RCODE_NXDOMAIN: u8 = 3;
const RCODE_NOTIMP: u8 = 4;
const RCODE_REFUSED: u8 = 5;

/// A running DNS responder; stops when dropped.
pub struct Dns {
    addr: SocketAddr,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

#[derive(Debug)]
enum Record {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    /// Preference and exchange ("" is the root: a null MX).
    Mx(u16, String),
    /// The text, split into strings of at most 255 octets when answered.
    Txt(Vec<u8>),
    /// The name pointed to.
    Ptr(String),
    /// Every question for the name gets SERVFAIL.
    ServFail,
}

#[derive(Default)]
struct Zone {
    /// (lowercased name without trailing dot, record)
    records: Vec<(String, Record)>,
    queries: Vec<(String, u16)>,
}

struct Shared {
    zone: Mutex<Zone>,
    stop: AtomicBool,
}

impl Shared {
    fn zone(&self) -> MutexGuard<'_, Zone> {
        self.zone.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl std::fmt::Debug for Dns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let zone = self.shared.zone();
        f.debug_struct("Dns")
            .field("addr", &self.addr)
            .field("records", &zone.records)
            .field("queries", &zone.queries.len())
            .finish_non_exhaustive()
    }
}

/// The reverse-lookup name of an address: "4.3.2.1.in-addr.arpa" or the
/// nibbles under "ip6.arpa".
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut out = String::with_capacity(72);
            for byte in v6.octets().iter().rev() {
                out.push_str(&format!("{:x}.{:x}.", byte & 0x0F, byte >> 4));
            }
            out.push_str("ip6.arpa");
            out
        }
    }
}

/// A name as stored: lowercase, without a trailing dot ("" for the root).
fn normalize(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

impl Dns {
    /// Starts a UDP and TCP DNS server on 127.0.0.1 (the same port for both);
    /// panics if it cannot.
    pub fn start() -> Dns {
        let mut attempt = 0;
        let (udp, tcp) = loop {
            let udp = UdpSocket::bind("127.0.0.1:0").expect("bind DNS UDP socket");
            let addr = udp.local_addr().expect("DNS UDP address");
            match TcpListener::bind(addr) {
                Ok(tcp) => break (udp, tcp),
                Err(e) => {
                    attempt += 1;
                    assert!(attempt < 20, "bind DNS TCP listener on {addr}: {e}");
                }
            }
        };
        let addr = udp.local_addr().expect("DNS address");
        let shared = Arc::new(Shared {
            zone: Mutex::new(Zone::default()),
            stop: AtomicBool::new(false),
        });
        let _ = udp.set_read_timeout(Some(Duration::from_millis(500)));
        let udp_thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("dns-udp".into())
                .spawn(move || serve_udp(udp, shared))
                .expect("spawn DNS UDP thread")
        };
        let tcp_thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("dns-tcp".into())
                .spawn(move || serve_tcp(tcp, shared))
                .expect("spawn DNS TCP thread")
        };
        Dns {
            addr,
            shared,
            threads: vec![udp_thread, tcp_thread],
        }
    }

    /// The address it answers on (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Adds an MX record; `exchange` "." makes a null MX (RFC 7505).
    pub fn mx(&self, domain: &str, preference: u16, exchange: &str) {
        let exchange = normalize(exchange);
        encode_name(&exchange).unwrap_or_else(|| panic!("bad MX exchange {exchange:?}"));
        self.add(domain, Record::Mx(preference, exchange));
    }

    /// Adds an A record.
    pub fn a(&self, name: &str, ip: Ipv4Addr) {
        self.add(name, Record::A(ip));
    }

    /// Adds an AAAA record (RFC 3596).
    pub fn aaaa(&self, name: &str, ip: Ipv6Addr) {
        self.add(name, Record::Aaaa(ip));
    }

    /// Adds a TXT record; text longer than 255 octets is answered as
    /// several strings of one record (RFC 1035 §3.3.14), which readers join.
    pub fn txt(&self, name: &str, text: &str) {
        self.add(name, Record::Txt(text.as_bytes().to_vec()));
    }

    /// Adds a PTR record for `ip` (under in-addr.arpa or ip6.arpa,
    /// RFC 1035 §3.5, RFC 3596 §2.5) pointing to `name`.
    pub fn ptr(&self, ip: IpAddr, name: &str) {
        let name = normalize(name);
        encode_name(&name).unwrap_or_else(|| panic!("bad PTR target {name:?}"));
        self.add(&reverse_name(ip), Record::Ptr(name));
    }

    /// Makes every question about `name` fail with SERVFAIL.
    pub fn servfail(&self, name: &str) {
        self.add(name, Record::ServFail);
    }

    /// Removes every record of `name` (exactly that name).
    pub fn remove(&self, name: &str) {
        let name = normalize(name);
        self.shared.zone().records.retain(|(n, _)| *n != name);
    }

    fn add(&self, name: &str, record: Record) {
        let name = normalize(name);
        assert!(
            !name.is_empty() && encode_name(&name).is_some(),
            "bad DNS name {name:?}"
        );
        self.shared.zone().records.push((name, record));
    }

    /// The questions seen so far: (lowercased name without trailing dot, qtype).
    pub fn queries(&self) -> Vec<(String, u16)> {
        self.shared.zone().queries.clone()
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake both threads.
        if let Ok(s) = UdpSocket::bind("127.0.0.1:0") {
            let _ = s.send_to(&[], self.addr);
        }
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5));
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn serve_udp(socket: UdpSocket, shared: Arc<Shared>) {
    let mut buf = [0u8; 65535];
    while !shared.stop.load(Ordering::SeqCst) {
        let Ok((n, peer)) = socket.recv_from(&mut buf) else {
            continue;
        };
        if let Some(mut reply) = respond(&shared, &buf[..n]) {
            if reply.len() > UDP_LIMIT {
                reply = truncated(&reply);
            }
            let _ = socket.send_to(&reply, peer);
        }
    }
}

fn serve_tcp(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let shared = Arc::clone(&shared);
        let _ = std::thread::Builder::new()
            .name("dns-tcp-conn".into())
            .spawn(move || serve_tcp_connection(stream, &shared));
    }
}

fn serve_tcp_connection(mut stream: TcpStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(TCP_TIMEOUT));
    let _ = stream.set_write_timeout(Some(TCP_TIMEOUT));
    loop {
        let mut len = [0u8; 2];
        if stream.read_exact(&mut len).is_err() {
            break;
        }
        let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if stream.read_exact(&mut query).is_err() || shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Some(reply) = respond(shared, &query) else {
            continue;
        };
        let Ok(n) = u16::try_from(reply.len()) else {
            continue;
        };
        let mut out = n.to_be_bytes().to_vec();
        out.extend_from_slice(&reply);
        if stream.write_all(&out).is_err() {
            break;
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
}

/// The header and question of a reply, with TC set and no records.
fn truncated(reply: &[u8]) -> Vec<u8> {
    let question_end = 12 + question_len(&reply[12..]);
    let mut out = reply[..question_end].to_vec();
    out[2] |= 0x02; // TC
    out[6..12].fill(0); // no answer, authority or additional records
    out
}

/// The length of the (uncompressed) question at the start of `q`.
fn question_len(q: &[u8]) -> usize {
    let mut i = 0;
    while i < q.len() && q[i] != 0 {
        i += 1 + usize::from(q[i]);
    }
    (i + 1 + 4).min(q.len())
}

/// A parsed question.
struct Question {
    /// The labels as sent (case kept, for echoing).
    labels: Vec<Vec<u8>>,
    qtype: u16,
    qclass: u16,
}

impl Question {
    fn name(&self) -> String {
        let labels: Vec<String> = self
            .labels
            .iter()
            .map(|l| String::from_utf8_lossy(l).to_ascii_lowercase())
            .collect();
        labels.join(".")
    }
}

/// Reads a possibly compressed name at `pos`; returns its labels and the
/// offset just after it (where it is, not where a pointer led).
fn read_name(packet: &[u8], mut pos: usize) -> Option<(Vec<Vec<u8>>, usize)> {
    let mut labels = Vec::new();
    let mut total = 0usize;
    let mut end = None;
    let mut jumps = 0;
    loop {
        let len = *packet.get(pos)?;
        match len & 0xC0 {
            0x00 if len == 0 => {
                return Some((labels, end.unwrap_or(pos + 1)));
            }
            0x00 => {
                let label = packet.get(pos + 1..pos + 1 + usize::from(len))?;
                total += 1 + label.len();
                if total > 255 {
                    return None;
                }
                labels.push(label.to_vec());
                pos += 1 + usize::from(len);
            }
            0xC0 => {
                let low = *packet.get(pos + 1)?;
                let target = (usize::from(len & 0x3F) << 8) | usize::from(low);
                jumps += 1;
                if jumps > 16 || target >= packet.len() {
                    return None;
                }
                end.get_or_insert(pos + 2);
                pos = target;
            }
            _ => return None,
        }
    }
}

fn read_u16(packet: &[u8], pos: usize) -> Option<u16> {
    let b = packet.get(pos..pos + 2)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// Encodes a dotted name ("" is the root) uncompressed; `None` if a label is
/// empty or too long.
fn encode_name(name: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    if !name.is_empty() {
        for label in name.split('.') {
            if label.is_empty() || label.len() > 63 {
                return None;
            }
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
    }
    out.push(0);
    (out.len() <= 255).then_some(out)
}

/// The reply to one query message, or `None` to ignore it.
fn respond(shared: &Shared, query: &[u8]) -> Option<Vec<u8>> {
    let header = query.get(..12)?;
    if header[2] & 0x80 != 0 {
        return None; // a response, not a query
    }
    let id = [header[0], header[1]];
    let opcode = (header[2] >> 3) & 0x0F;
    let rd = header[2] & 0x01;
    let qdcount = read_u16(query, 4)?;
    let reply_header = |rcode: u8, qd: u16, an: u16, ns: u16| {
        let mut h = Vec::with_capacity(512);
        h.extend_from_slice(&id);
        h.push(0x80 | (opcode << 3) | 0x04 | rd); // QR, opcode, AA, RD
        h.push(0x80 | rcode); // RA
        for n in [qd, an, ns, 0] {
            h.extend_from_slice(&n.to_be_bytes());
        }
        h
    };
    if opcode != 0 {
        return Some(reply_header(RCODE_NOTIMP, 0, 0, 0));
    }
    if qdcount != 1 {
        return Some(reply_header(RCODE_FORMERR, 0, 0, 0));
    }
    let (labels, end) = read_name(query, 12)?;
    let question = Question {
        labels,
        qtype: read_u16(query, end)?,
        qclass: read_u16(query, end + 2)?,
    };
    // Any answer, authority and additional records (an EDNS OPT) are ignored.
    let name = question.name();
    let mut zone = shared.zone();
    zone.queries.push((name.clone(), question.qtype));

    let mut echoed = Vec::new();
    for label in &question.labels {
        echoed.push(label.len() as u8);
        echoed.extend_from_slice(label);
    }
    echoed.push(0);
    echoed.extend_from_slice(&question.qtype.to_be_bytes());
    echoed.extend_from_slice(&question.qclass.to_be_bytes());

    if question.qclass != CLASS_IN {
        let mut out = reply_header(RCODE_REFUSED, 1, 0, 0);
        out.extend_from_slice(&echoed);
        return Some(out);
    }
    let known: Vec<&Record> = zone
        .records
        .iter()
        .filter(|(n, _)| *n == name)
        .map(|(_, r)| r)
        .collect();
    if known.iter().any(|r| matches!(r, Record::ServFail)) {
        let mut out = reply_header(RCODE_SERVFAIL, 1, 0, 0);
        out.extend_from_slice(&echoed);
        return Some(out);
    }
    let mut answers = Vec::new();
    let mut count = 0u16;
    for record in &known {
        let (rtype, rdata) = match record {
            Record::A(ip) => (TYPE_A, ip.octets().to_vec()),
            Record::Aaaa(ip) => (TYPE_AAAA, ip.octets().to_vec()),
            Record::Mx(pref, exchange) => {
                let mut rdata = pref.to_be_bytes().to_vec();
                rdata.extend(encode_name(exchange)?);
                (TYPE_MX, rdata)
            }
            Record::Txt(text) => {
                let mut rdata = Vec::with_capacity(text.len() + text.len() / 255 + 1);
                if text.is_empty() {
                    rdata.push(0);
                }
                for part in text.chunks(255) {
                    rdata.push(part.len() as u8);
                    rdata.extend_from_slice(part);
                }
                (TYPE_TXT, rdata)
            }
            Record::Ptr(target) => (TYPE_PTR, encode_name(target)?),
            Record::ServFail => continue,
        };
        if question.qtype != rtype && question.qtype != TYPE_ANY {
            continue;
        }
        answers.extend_from_slice(&[0xC0, 0x0C]); // the question's name
        answers.extend_from_slice(&rtype.to_be_bytes());
        answers.extend_from_slice(&CLASS_IN.to_be_bytes());
        answers.extend_from_slice(&TTL.to_be_bytes());
        answers.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        answers.extend_from_slice(&rdata);
        count += 1;
    }
    // A name exists if it has records or is an ancestor of one that does
    // (an empty non-terminal, RFC 8020).
    let suffix = format!(".{name}");
    let exists = name.is_empty()
        || zone
            .records
            .iter()
            .any(|(n, _)| *n == name || n.ends_with(&suffix));
    let rcode = if exists { 0 } else { RCODE_NXDOMAIN };
    let mut out = reply_header(rcode, 1, count, u16::from(count == 0));
    out.extend_from_slice(&echoed);
    out.extend_from_slice(&answers);
    if count == 0 {
        out.extend_from_slice(&soa());
    }
    Some(out)
}

/// An SOA record owned by the root, for negative answers.
fn soa() -> Vec<u8> {
    let mut rdata = encode_name("ns.test").unwrap_or_default();
    rdata.extend(encode_name("hostmaster.test").unwrap_or_default());
    for n in [1, 3600, 600, 86400, NEGATIVE_TTL] {
        rdata.extend_from_slice(&u32::to_be_bytes(n));
    }
    let mut rr = vec![0]; // the root
    rr.extend_from_slice(&TYPE_SOA.to_be_bytes());
    rr.extend_from_slice(&CLASS_IN.to_be_bytes());
    rr.extend_from_slice(&NEGATIVE_TTL.to_be_bytes());
    rr.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    rr.extend_from_slice(&rdata);
    rr
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query for `name`/`qtype` with RD set and an EDNS OPT record.
    fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
        let mut q = id.to_be_bytes().to_vec();
        q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1]);
        q.extend(encode_name(name).unwrap());
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&[0, 1]);
        // OPT: root name, type 41, UDP size 1232, TTL 0, no options.
        q.extend_from_slice(&[0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0]);
        q
    }

    fn udp_ask(dns: &Dns, packet: &[u8]) -> Option<Vec<u8>> {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        s.send_to(packet, dns.addr()).unwrap();
        let mut buf = [0u8; 4096];
        let (n, _) = s.recv_from(&mut buf).ok()?;
        Some(buf[..n].to_vec())
    }

    fn question_bytes(name: &str, qtype: u16) -> Vec<u8> {
        let mut q = encode_name(name).unwrap();
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&[0, 1]);
        q
    }

    #[test]
    fn answers_txt_ptr_aaaa_and_servfail() {
        let dns = Dns::start();
        let long = "v=DKIM1; p=".to_string() + &"A".repeat(300);
        dns.txt("sel._domainkey.x.test", &long);
        dns.ptr(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), "client.x.test");
        dns.aaaa("v6.x.test", "2001:db8::1".parse().unwrap());
        dns.servfail("broken.x.test");

        // TXT: one record of two strings (255 + the rest), over TCP-sized UDP
        // it is truncated; read it from the answer before truncation.
        let r = respond(&dns.shared, &query(1, "sel._domainkey.x.test", TYPE_TXT)).unwrap();
        assert_eq!(read_u16(&r, 6), Some(1), "one answer");
        let q_end = 12 + question_len(&r[12..]);
        let rdata = &r[q_end + 12..];
        assert_eq!(usize::from(rdata[0]), 255);
        assert_eq!(usize::from(rdata[256]), long.len() - 255);
        let mut joined = rdata[1..256].to_vec();
        joined.extend_from_slice(&rdata[257..]);
        assert_eq!(joined, long.as_bytes());

        let r = udp_ask(&dns, &query(2, "2.0.0.127.in-addr.arpa", TYPE_PTR)).unwrap();
        assert_eq!(read_u16(&r, 6), Some(1));
        assert!(r.ends_with(&encode_name("client.x.test").unwrap()));

        let r = udp_ask(&dns, &query(3, "v6.x.test", TYPE_AAAA)).unwrap();
        assert_eq!(read_u16(&r, 6), Some(1));
        assert!(r.ends_with(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets()));

        let r = udp_ask(&dns, &query(4, "broken.x.test", TYPE_TXT)).unwrap();
        assert_eq!(r[3] & 0x0F, RCODE_SERVFAIL);
        assert_eq!(
            reverse_name("2001:db8::1".parse().unwrap()),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
        );
        dns.remove("v6.x.test");
        let r = udp_ask(&dns, &query(5, "v6.x.test", TYPE_AAAA)).unwrap();
        assert_eq!(r[3] & 0x0F, RCODE_NXDOMAIN);
    }

    fn zone() -> Dns {
        let dns = Dns::start();
        dns.mx("X.test.", 10, "mx1.x.test");
        dns.mx("x.test", 20, "mx2.x.test.");
        dns.mx("null.test", 0, ".");
        dns.a("mx1.x.test", Ipv4Addr::new(127, 0, 0, 1));
        dns
    }

    #[test]
    fn answers_mx_a_and_nxdomain_over_udp() {
        let dns = zone();

        // MX: two answers, flags QR AA RD RA, question echoed in its case.
        let r = udp_ask(&dns, &query(0x1234, "x.TEST", TYPE_MX)).unwrap();
        let mut want = vec![0x12, 0x34, 0x85, 0x80, 0, 1, 0, 2, 0, 0, 0, 0];
        want.extend(question_bytes("x.TEST", TYPE_MX));
        for (pref, ex) in [(10u16, "mx1.x.test"), (20, "mx2.x.test")] {
            let rdata: Vec<u8> = pref
                .to_be_bytes()
                .into_iter()
                .chain(encode_name(ex).unwrap())
                .collect();
            want.extend_from_slice(&[0xC0, 0x0C, 0, 15, 0, 1, 0, 0, 0, 60, 0, rdata.len() as u8]);
            want.extend(rdata);
        }
        assert_eq!(r, want);

        // A.
        let r = udp_ask(&dns, &query(7, "mx1.x.test", TYPE_A)).unwrap();
        let mut want = vec![0, 7, 0x85, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
        want.extend(question_bytes("mx1.x.test", TYPE_A));
        want.extend_from_slice(&[0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
        assert_eq!(r, want);

        // Null MX: the exchange is the root.
        let r = udp_ask(&dns, &query(8, "null.test", TYPE_MX)).unwrap();
        assert_eq!(&r[6..8], &[0, 1]);
        assert!(r.ends_with(&[0xC0, 0x0C, 0, 15, 0, 1, 0, 0, 0, 60, 0, 3, 0, 0, 0]));

        // NXDOMAIN with an SOA.
        let r = udp_ask(&dns, &query(9, "nowhere.test", TYPE_MX)).unwrap();
        let mut want = vec![0, 9, 0x85, 0x83, 0, 1, 0, 0, 0, 1, 0, 0];
        want.extend(question_bytes("nowhere.test", TYPE_MX));
        want.extend(soa());
        assert_eq!(r, want);

        // NODATA: a known name, a type it lacks.
        let r = udp_ask(&dns, &query(10, "mx1.x.test", 28)).unwrap();
        assert_eq!(&r[2..12], &[0x85, 0x80, 0, 1, 0, 0, 0, 1, 0, 0]);
        // An empty non-terminal exists too.
        let r = udp_ask(&dns, &query(11, "test", TYPE_MX)).unwrap();
        assert_eq!(&r[2..12], &[0x85, 0x80, 0, 1, 0, 0, 0, 1, 0, 0]);

        assert_eq!(
            dns.queries(),
            [
                ("x.test".to_string(), TYPE_MX),
                ("mx1.x.test".to_string(), TYPE_A),
                ("null.test".to_string(), TYPE_MX),
                ("nowhere.test".to_string(), TYPE_MX),
                ("mx1.x.test".to_string(), 28),
                ("test".to_string(), TYPE_MX),
            ]
        );
    }

    #[test]
    fn tcp_several_queries_per_connection() {
        let dns = zone();
        let mut s = TcpStream::connect(dns.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        for (id, name, qtype, ancount) in
            [(1u16, "x.test", TYPE_MX, 2u8), (2, "mx1.x.test", TYPE_A, 1)]
        {
            let q = query(id, name, qtype);
            let mut framed = (q.len() as u16).to_be_bytes().to_vec();
            framed.extend(q);
            s.write_all(&framed).unwrap();
            let mut len = [0u8; 2];
            s.read_exact(&mut len).unwrap();
            let mut r = vec![0u8; usize::from(u16::from_be_bytes(len))];
            s.read_exact(&mut r).unwrap();
            assert_eq!(&r[..8], &[0, id as u8, 0x85, 0x80, 0, 1, 0, ancount]);
        }
    }

    #[test]
    fn malformed_packets_are_ignored() {
        let dns = zone();
        let mut looped = query(1, "x.test", TYPE_MX);
        looped.truncate(12);
        looped.extend_from_slice(&[0xC0, 12, 0, 15, 0, 1]); // a pointer to itself
        let mut bad_label = query(2, "x.test", TYPE_MX);
        bad_label[12] = 0x80;
        for packet in [
            &b""[..],
            &[0u8; 5],
            &query(3, "x.test", TYPE_MX)[..20],
            &looped,
            &bad_label,
        ] {
            assert_eq!(udp_ask(&dns, packet), None, "{packet:?}");
        }
        // A compressed question (pointing into an earlier part) is understood.
        let mut compressed = query(4, "x.test", TYPE_MX);
        compressed.truncate(12);
        compressed
            .extend_from_slice(&[1, b'x', 0xC0, 20, 0, 15, 0, 1, 4, b't', b'e', b's', b't', 0]);
        let r = udp_ask(&dns, &compressed).unwrap();
        assert_eq!(&r[2..8], &[0x85, 0x80, 0, 1, 0, 2]);
        // Still serving.
        assert!(udp_ask(&dns, &query(5, "x.test", TYPE_MX)).is_some());
    }

    #[test]
    fn large_udp_answers_are_truncated() {
        let dns = Dns::start();
        for i in 0..40 {
            dns.mx(
                "big.test",
                i,
                &format!("a-rather-long-exchange-name-{i}.big.test"),
            );
        }
        let r = udp_ask(&dns, &query(1, "big.test", TYPE_MX)).unwrap();
        assert_eq!(&r[2..12], &[0x87, 0x80, 0, 1, 0, 0, 0, 0, 0, 0]);
    }

    /// Cross-check with dig when it is installed (skipped silently otherwise).
    #[test]
    fn dig_cross_check() {
        let found = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join("dig"))
                .find(|p| p.is_file())
        });
        let Some(dig) = found else {
            return;
        };
        let dns = zone();
        let port = dns.addr().port().to_string();
        for (extra, qtype, name, want) in [
            ("+notcp", "MX", "x.test", "10 mx1.x.test.\n20 mx2.x.test."),
            ("+tcp", "MX", "x.test", "10 mx1.x.test.\n20 mx2.x.test."),
            ("+notcp", "A", "mx1.x.test", "127.0.0.1"),
            ("+notcp", "MX", "null.test", "0 ."),
            ("+notcp", "MX", "nowhere.test", ""),
        ] {
            let out = std::process::Command::new(&dig)
                .args([
                    "+short",
                    "+tries=1",
                    "+time=5",
                    extra,
                    "-p",
                    &port,
                    "@127.0.0.1",
                    qtype,
                    name,
                ])
                .output()
                .expect("run dig");
            let mut got: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
            got.sort_unstable();
            assert_eq!(got.join("\n"), want, "dig {extra} {qtype} {name}");
        }
    }
}
