//! LDAP search load in Rust, so that the generator is not what limits the
//! figure (../shared/bench/ldap_load.py runs four Python processes on a
//! two-core machine).
//!
//! `bench-ldap HOST PORT [--secs 20] [--conns 8] [--threads 1]
//! [--max-ops 2000000] [--base dc=example,dc=test] [--users 10000]
//! [--domain example.test] [--mix eq_mail,eq_uid,sub_cn,sub_mail]`
//!
//! The query mix and the directory are ldap_load.py's (gen_ldif.py's users:
//! uid=userN, cn "User N", mail userN@DOMAIN): `(mail=userN@DOMAIN)`,
//! `(uid=userN)`, `(cn=User PPP*)`, `(mail=*erN@*)`, subtree under the base,
//! attributes cn and mail, N random. Each connection binds anonymously, then
//! sends one search at a time and reads its entries up to SearchResultDone
//! (messages encoded and decoded by ldap3_proto, the codec the LDAP crates
//! of the Rust ecosystem share). Stops after --secs or --max-ops searches,
//! loopback only. Prints one line, ldap_load's fields plus the generator's
//! own CPU use (user+system seconds per wall second, in percent of one
//! core), so that a reader can see who was saturated:
//!
//! `ldap_load host=H port=P client=rust conns=C threads=T secs=S searches=N
//! searches_per_s=X p50_ms=.. p99_ms=.. entries=E empty=Z errors=R
//! loadgen_cpu_pct=U`
use futures_util::{SinkExt, StreamExt};
use ldap3_proto::LdapCodec;
use ldap3_proto::proto::{
    LdapBindCred, LdapBindRequest, LdapDerefAliases, LdapFilter, LdapMsg, LdapOp, LdapResultCode,
    LdapSearchRequest, LdapSearchScope, LdapSubstringFilter,
};
use postgate_loadgen::{Args, Rng, percentile, run_clients};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

struct Cfg {
    host: String,
    port: u16,
    base: String,
    users: u64,
    domain: String,
    mix: Vec<String>,
    deadline: Instant,
    quota: u64,
}

#[derive(Default)]
struct Tally {
    searches: u64,
    entries: u64,
    empty: u64,
    errors: u64,
    latencies_ms: Vec<f64>,
}

fn filter(kind: &str, rng: &mut Rng, cfg: &Cfg) -> LdapFilter {
    let n = rng.below(cfg.users) + 1;
    match kind {
        "eq_mail" => LdapFilter::Equality("mail".into(), format!("user{n}@{}", cfg.domain)),
        "eq_uid" => LdapFilter::Equality("uid".into(), format!("user{n}")),
        "sub_cn" => {
            let hi = (cfg.users / 10).clamp(100, 999);
            let p = 100 + rng.below(hi - 99);
            LdapFilter::Substring(
                "cn".into(),
                LdapSubstringFilter {
                    initial: Some(format!("User {p}")),
                    any: Vec::new(),
                    final_: None,
                },
            )
        }
        "sub_mail" => LdapFilter::Substring(
            "mail".into(),
            LdapSubstringFilter {
                initial: None,
                any: vec![format!("er{n}@")],
                final_: None,
            },
        ),
        other => panic!("unknown search kind {other}"),
    }
}

/// One connection's loop: bind, then search until the deadline or quota.
async fn connection(idx: u64, cfg: Arc<Cfg>, done: Arc<AtomicU64>) -> Tally {
    let mut t = Tally::default();
    let stream = match TcpStream::connect((cfg.host.as_str(), cfg.port)).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bench-ldap: connect: {e}");
            t.errors += 1;
            return t;
        }
    };
    let _ = stream.set_nodelay(true);
    let mut io = Framed::new(stream, LdapCodec::default());
    let bind = LdapMsg {
        msgid: 1,
        op: LdapOp::BindRequest(LdapBindRequest {
            version: 3,
            dn: String::new(),
            cred: LdapBindCred::Simple(String::new()),
        }),
        ctrl: Vec::new(),
    };
    let bound = async {
        io.send(bind).await.ok()?;
        match io.next().await?.ok()?.op {
            LdapOp::BindResponse(r) if r.res.code == LdapResultCode::Success => Some(()),
            _ => None,
        }
    };
    if bound.await.is_none() {
        eprintln!("bench-ldap: anonymous bind refused");
        t.errors += 1;
        return t;
    }
    let mut rng = Rng::new(1000 + idx);
    let mut msgid = 1;
    let mut k = idx as usize;
    while Instant::now() < cfg.deadline && done.fetch_add(1, Ordering::Relaxed) < cfg.quota {
        msgid += 1;
        let kind = &cfg.mix[k % cfg.mix.len()];
        k += 1;
        let req = LdapMsg {
            msgid,
            op: LdapOp::SearchRequest(LdapSearchRequest {
                base: cfg.base.clone(),
                scope: LdapSearchScope::Subtree,
                aliases: LdapDerefAliases::Never,
                sizelimit: 0,
                timelimit: 0,
                typesonly: false,
                filter: filter(kind, &mut rng, &cfg),
                attrs: vec!["cn".into(), "mail".into()],
            }),
            ctrl: Vec::new(),
        };
        let started = Instant::now();
        if io.send(req).await.is_err() {
            t.errors += 1;
            break;
        }
        let mut found = 0;
        let ok = loop {
            match io.next().await {
                Some(Ok(m)) if m.msgid == msgid => match m.op {
                    LdapOp::SearchResultEntry(_) => found += 1,
                    LdapOp::SearchResultDone(r) => break r.code == LdapResultCode::Success,
                    _ => {}
                },
                Some(Ok(_)) => {}
                _ => break false,
            }
        };
        t.latencies_ms.push(started.elapsed().as_secs_f64() * 1e3);
        t.searches += 1;
        if !ok {
            t.errors += 1;
            if t.errors > 1000 {
                break;
            }
            continue;
        }
        t.entries += found;
        t.empty += u64::from(found == 0);
    }
    let _ = io
        .send(LdapMsg {
            msgid: msgid + 1,
            op: LdapOp::UnbindRequest,
            ctrl: Vec::new(),
        })
        .await;
    t
}

fn main() {
    let mut a = Args::from_env("bench-ldap HOST PORT [--secs S] [--conns C] …");
    let host = a.positional("HOST");
    let port: u16 = a.positional("PORT").parse().expect("PORT");
    postgate_loadgen::loopback_only(&host);
    let secs: f64 = a.opt("--secs", 20.0_f64).min(600.0);
    let conns: u64 = a.opt("--conns", 8);
    let threads: usize = a.opt("--threads", 1);
    let cfg = Arc::new(Cfg {
        host: host.clone(),
        port,
        base: a.opt("--base", "dc=example,dc=test".to_string()),
        users: a.opt("--users", 10_000),
        domain: a.opt("--domain", "example.test".to_string()),
        mix: a
            .opt("--mix", "eq_mail,eq_uid,sub_cn,sub_mail".to_string())
            .split(',')
            .map(str::to_string)
            .collect(),
        deadline: Instant::now() + Duration::from_secs_f64(secs),
        quota: a.opt("--max-ops", 2_000_000),
    });
    a.done();
    let done = Arc::new(AtomicU64::new(0));
    let run = run_clients(conns, threads, |i| connection(i, cfg.clone(), done.clone()));
    let (tallies, wall, cpu) = (run.results, run.wall, run.cpu);
    let mut all = Tally::default();
    for t in tallies {
        all.searches += t.searches;
        all.entries += t.entries;
        all.empty += t.empty;
        all.errors += t.errors;
        all.latencies_ms.extend(t.latencies_ms);
    }
    let p50 = percentile(&mut all.latencies_ms, 50.0);
    let p99 = percentile(&mut all.latencies_ms, 99.0);
    println!(
        "ldap_load host={host} port={port} client=rust conns={conns} threads={threads} \
         secs={wall:.1} searches={} searches_per_s={:.1} p50_ms={p50:.2} p99_ms={p99:.2} \
         entries={} empty={} errors={} loadgen_cpu_pct={:.0}",
        all.searches,
        all.searches as f64 / wall,
        all.entries,
        all.empty,
        all.errors,
        100.0 * cpu / wall
    );
}
