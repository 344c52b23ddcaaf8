//! A loopback DNS for bench/smtp_checks.sh (not a test, not shipped): the
//! testkit's responder (`postgate_testkit::dns`) with the records a client
//! on 127.0.0.1 needs to pass every `[smtp.checks]` check, so that the
//! bench measures the checks' cost, not a refusal or Junk filing:
//!
//! - forward-confirmed reverse DNS: 127.0.0.1 → `client.bench.test` →
//!   127.0.0.1 (`ptr`; also the HELO name, which then resolves: `helo`);
//! - no listing on any DNS list (NXDOMAIN under every zone: `dnsbl`, `dnswl`);
//! - SPF for the sender's domain `example.test` allowing 127.0.0.0/8, and
//!   a DMARC record (p=none) (`verify`, `spf`, `dmarc`).
//!
//! Prints the port (UDP and TCP on 127.0.0.1) and serves until killed.
use postgate_testkit::dns::Dns;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};

fn main() {
    let dns = Dns::start();
    let client = Ipv4Addr::LOCALHOST;
    dns.ptr(IpAddr::V4(client), "client.bench.test");
    dns.a("client.bench.test", client);
    dns.txt("example.test", "v=spf1 ip4:127.0.0.0/8 -all");
    dns.txt("_dmarc.example.test", "v=DMARC1; p=none");
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{}", dns.addr().port());
    let _ = out.flush();
    loop {
        std::thread::park();
    }
}
