//! The operator's configuration: one TOML file, every key optional.
//!
//! With no file at all Postgate keeps its data in `./postgate-data` and listens
//! on 127.0.0.1 only, on high ports (SMTP 2525, submission 5587, SMTPS 4465,
//! IMAP 1143, IMAPS 1993, POP3 1110, POP3S 1995, LDAP 1389, LDAPS 1636,
//! SNMP 1161/udp, console 8443). Every listener key is a list of "ip:port"
//! strings; an empty list disables that listener. Unknown keys are errors, and
//! [`check`] reports every error in a file with its line and column, not just
//! the first.
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The whole configuration.
///
/// `Serialize` writes it back as the parser reads it, secrets and all; to
/// show a configuration use [`Config::effective_toml`], which masks them.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where everything is stored.
    #[serde(serialize_with = "ser_path")]
    pub data_dir: PathBuf,
    /// The name this server gives itself in greetings and trace headers.
    pub hostname: String,
    /// Log filter (tracing's env-filter syntax); `RUST_LOG` overrides it.
    /// `[logging] level` replaces it when given.
    pub log: String,
    /// Levels per service, daily log files and accounting.
    pub logging: LoggingConfig,
    /// Certificate and key shared by every service.
    pub tls: TlsConfig,
    /// SMTP: inbound, submission, SMTPS.
    pub smtp: SmtpConfig,
    /// What happens to mail once accepted.
    pub delivery: DeliveryConfig,
    /// Delivery to the Internet: the queue and its SMTP client.
    pub outbound: OutboundConfig,
    /// IMAP4.
    pub imap: ImapConfig,
    /// POP3.
    pub pop3: Pop3Config,
    /// LDAP.
    pub ldap: LdapConfig,
    /// SNMP agent.
    pub snmp: SnmpConfig,
    /// Web console and client API.
    pub console: ConsoleConfig,
    /// Appointments and tasks.
    pub calendar: CalendarConfig,
    /// Connection caps and login throttling, for every service alike.
    pub limits: LimitsConfig,
    /// Where the post office is kept.
    pub store: StoreConfig,
    /// The resolver for every DNS lookup.
    pub dns: DnsConfig,
    /// The file this configuration was read from, made absolute against the
    /// working directory at the time ([`Config::load`] sets it). `None` when
    /// no file was given (the built-in defaults, which [`Config::load`]
    /// returns for `None`: no default location is searched) or when the
    /// configuration was parsed from a string ([`check`]). Not a key of the
    /// file itself.
    ///
    /// Nothing else is merged in: the command line picks the file (`--config`
    /// or the `POSTGATE_CONFIG` environment variable), and the only override
    /// from the environment, `RUST_LOG` over `log`, is applied when logging
    /// starts and is not reflected here.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("postgate-data"),
            hostname: default_hostname(),
            log: "info".into(),
            logging: LoggingConfig::default(),
            tls: TlsConfig::default(),
            smtp: SmtpConfig::default(),
            delivery: DeliveryConfig::default(),
            outbound: OutboundConfig::default(),
            imap: ImapConfig::default(),
            pop3: Pop3Config::default(),
            ldap: LdapConfig::default(),
            snmp: SnmpConfig::default(),
            console: ConsoleConfig::default(),
            calendar: CalendarConfig::default(),
            limits: LimitsConfig::default(),
            store: StoreConfig::default(),
            dns: DnsConfig::default(),
            source: None,
        }
    }
}

/// `[tls]`: PEM files. Without them a self-signed certificate is generated into
/// the data directory on first start.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// Certificate chain, PEM.
    #[serde(serialize_with = "ser_opt_path")]
    pub cert: Option<PathBuf>,
    /// Private key, PEM.
    #[serde(serialize_with = "ser_opt_path")]
    pub key: Option<PathBuf>,
}

/// `[smtp]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    /// Inbound SMTP (RFC 5321), STARTTLS offered.
    pub listen: Vec<Listen>,
    /// Message submission (RFC 6409), STARTTLS offered.
    pub submission: Vec<Listen>,
    /// Submission over implicit TLS (RFC 8314).
    pub smtps: Vec<Listen>,
    /// Sessions served at once across the SMTP listeners; one more gets
    /// `421 4.3.2` and is closed.
    pub threads: usize,
    /// Largest message accepted, in octets (RFC 1870 SIZE).
    #[serde(deserialize_with = "de_size", serialize_with = "ser_size")]
    pub max_message_size: u64,
    /// Recipients per message; more get `452 4.5.3` (RFC 5321 §4.5.3.1.10).
    pub max_recipients: usize,
    /// Longest command line in octets, CRLF included (RFC 5321 §4.5.3.1.4 says
    /// at least 512; extensions' parameters need more).
    pub max_line_length: usize,
    /// Commands other than MAIL, RCPT, DATA and BDAT allowed in a row before
    /// the session is closed with `421 4.7.0`.
    pub max_commands_before_mail: usize,
    /// Errors allowed in a session before it is closed with `421 4.7.0`.
    pub max_errors: usize,
    /// Whether VRFY answers from the directory; otherwise `252` (RFC 5321 §3.5.3).
    pub vrfy: bool,
    /// Require AUTH on the inbound port too (submission and SMTPS always do).
    pub require_auth: bool,
    /// Offer AUTH without TLS (RFC 4954 §4 advises against cleartext passwords).
    pub allow_plaintext_auth: bool,
    /// Client networks trusted to relay through the inbound port without AUTH
    /// (Postfix's `mynetworks`), as "ip/prefix" or "ip". Empty by default:
    /// only authenticated users relay.
    #[serde(serialize_with = "ser_networks")]
    pub relay_networks: Vec<Network>,
    /// Time limits.
    pub timeouts: SmtpTimeouts,
    /// Defences and authentication of inbound mail (`[smtp.checks]`).
    pub checks: SmtpChecks,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            listen: local(2525),
            submission: local(5587),
            smtps: local(4465),
            threads: 200,
            max_message_size: 50 * 1024 * 1024,
            max_recipients: 1000,
            max_line_length: 4096,
            max_commands_before_mail: 100,
            max_errors: 20,
            vrfy: false,
            require_auth: false,
            allow_plaintext_auth: false,
            relay_networks: Vec::new(),
            timeouts: SmtpTimeouts::default(),
            checks: SmtpChecks::default(),
        }
    }
}

/// What a check does to a client or message that fails it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckAction {
    /// Not checked.
    #[default]
    Off,
    /// Accepted, and filed in the recipients' Junk folder.
    Junk,
    /// Refused with a 5xx reply.
    Reject,
}

/// What DMARC policies (RFC 7489 §6.3 `p=`) do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DmarcAction {
    /// DMARC is evaluated (when `verify` is on) and reported in
    /// Authentication-Results, but its policy is not applied.
    #[default]
    Off,
    /// `p=reject` refuses the message after DATA (`550 5.7.1`),
    /// `p=quarantine` files it in Junk (RFC 7489 §6.6.4).
    Honour,
}

/// `[smtp.mailbomb]`-style limit: at most `messages` in `seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Mailbomb {
    /// Messages allowed in the window.
    pub messages: u32,
    /// The window, in seconds.
    pub seconds: u64,
}

/// `[smtp.checks]`: defences against unwanted clients and the authentication
/// of inbound mail (SPF, DKIM, DMARC, ARC). They apply on the inbound port
/// to clients that are neither authenticated, nor in `relay_networks`, nor
/// in `allow`; `mailbomb` also counts authenticated senders on submission.
/// Everything is off by default.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpChecks {
    /// DNS blocklists ("zen.example"), asked in order for the client's
    /// address (RFC 5782 §2: reversed octets or nibbles under the zone).
    pub dnsbl: Vec<String>,
    /// What a listed client gets: `reject` (554 5.7.1 naming the list, the
    /// default when lists are given) or `junk`.
    pub dnsbl_action: Option<CheckAction>,
    /// DNS allowlists: a listed client skips the other checks.
    pub dnswl: Vec<String>,
    /// A client without forward-confirmed reverse DNS (RFC 8601 §3 iprev).
    pub ptr: CheckAction,
    /// A HELO/EHLO name that is not a valid domain or address literal, is
    /// ours, or does not resolve.
    pub helo: CheckAction,
    /// At most this many messages per client address (per authenticated
    /// sender on submission) in the window; past it `421 4.7.0`.
    pub mailbomb: Option<Mailbomb>,
    /// Hosts that skip the checks: addresses, networks ("198.51.100.0/24")
    /// and reverse names ("*.partner.example" or "mx.partner.example").
    pub allow: Vec<String>,
    /// Verify SPF, DKIM, DMARC and ARC and write an Authentication-Results
    /// header (RFC 8601) under our host name.
    pub verify: bool,
    /// What an SPF `fail` (RFC 7208 §2.6.4) of MAIL FROM does (needs `verify`).
    pub spf: CheckAction,
    /// Whether the sender domain's DMARC policy is applied (needs `verify`).
    pub dmarc: DmarcAction,
}

impl SmtpChecks {
    /// What a listed client gets from the blocklists.
    pub fn dnsbl_action(&self) -> CheckAction {
        match (self.dnsbl.is_empty(), self.dnsbl_action) {
            (true, _) => CheckAction::Off,
            (false, Some(a)) => a,
            (false, None) => CheckAction::Reject,
        }
    }

    /// Whether any check needs DNS or counts messages.
    pub fn any(&self) -> bool {
        !self.dnsbl.is_empty()
            || !self.dnswl.is_empty()
            || self.ptr != CheckAction::Off
            || self.helo != CheckAction::Off
            || self.mailbomb.is_some()
            || self.verify
    }
}

/// `[dns]`: the resolver every lookup goes through (inbound checks, mail
/// authentication, MX lookups, MTA-STS), with one cache honouring TTLs.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    /// Name servers, "ip:port" or "ip" (port 53); empty: the system's
    /// (/etc/resolv.conf).
    pub resolver: Vec<String>,
    /// Answers kept in the cache.
    pub cache_size: usize,
    /// How long one query waits for an answer.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub timeout: Duration,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            resolver: Vec::new(),
            cache_size: 8192,
            timeout: Duration::from_secs(5),
        }
    }
}

impl DnsConfig {
    /// The name servers as socket addresses (port 53 when not given); the
    /// ones that do not parse are left out (`check` reports them).
    pub fn servers(&self) -> Vec<SocketAddr> {
        self.resolver
            .iter()
            .filter_map(|s| parse_dns_server(s))
            .collect()
    }
}

/// "ip:port", "[v6]:port" or a bare address (port 53).
pub fn parse_dns_server(s: &str) -> Option<SocketAddr> {
    let s = s.trim();
    s.parse::<SocketAddr>().ok().or_else(|| {
        s.parse::<std::net::IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, 53))
    })
}

/// `[smtp.timeouts]`: how long the server waits for the client. RFC 5321
/// §4.5.3.2 suggests these minimums for the client's waits; the server's own
/// wait is at least 5 minutes (§4.5.3.2.7).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpTimeouts {
    /// From connect to the client's first command.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub greeting: Duration,
    /// Between commands.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub command: Duration,
    /// Between blocks of message data (DATA or BDAT).
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub data: Duration,
}

impl Default for SmtpTimeouts {
    fn default() -> Self {
        SmtpTimeouts {
            greeting: Duration::from_secs(300),
            command: Duration::from_secs(300),
            data: Duration::from_secs(180),
        }
    }
}

/// `[delivery]`: filing of accepted mail.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Header fields that file a message in Junk, as "Name: value". The match is
    /// case-insensitive; a value ending in `*` matches as a prefix.
    pub junk_headers: Vec<String>,
    /// Who receives mail for postmaster@ a served domain when no user, alias or
    /// group of that name exists (RFC 5321 §4.5.1 requires the address to work).
    pub postmaster: Option<String>,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            junk_headers: vec!["X-Spam-Flag: YES".into()],
            postmaster: None,
        }
    }
}

/// `[outbound]`: the queue for remote recipients and the SMTP client that
/// empties it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboundConfig {
    /// Concurrent deliveries (connections to next hops).
    pub threads: usize,
    /// A smart host taking all outbound mail, "host:port" or "[ip]:port";
    /// port 465 speaks implicit TLS (RFC 8314), others STARTTLS when offered.
    pub relay: Option<String>,
    /// AUTH credentials for the relay (sent only under TLS or to loopback).
    pub relay_user: Option<String>,
    /// Its password.
    pub relay_password: Option<String>,
    /// Per-domain next hops that bypass MX lookup and the relay:
    /// `"example.net" = "[10.0.0.5]:25"`; a key ".example.net" also matches
    /// its subdomains.
    pub routes: std::collections::BTreeMap<String, String>,
    /// A DNS server "ip:port" to use instead of the system's resolvers.
    pub resolver: Option<String>,
    /// The port of MX hosts (25; tests change it).
    pub port: u16,
    /// STARTTLS policy: "none", "may" (opportunistic, RFC 7435: the default),
    /// "require" (encrypted or not sent) or "verify" (encrypted to a
    /// certificate valid for the host).
    pub tls: TlsPolicy,
    /// Per-domain STARTTLS policies that override `tls`.
    pub tls_domains: std::collections::BTreeMap<String, TlsPolicy>,
    /// Waits between attempts after a temporary failure; the last repeats.
    #[serde(deserialize_with = "de_durations", serialize_with = "ser_durations")]
    pub retry_intervals: Vec<Duration>,
    /// How long to keep trying before bouncing (RFC 5321 §4.5.4.1: at least
    /// 4-5 days).
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub max_age: Duration,
    /// When the sender hears that delivery is delayed (RFC 3461 NOTIFY=DELAY).
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub delay_warning: Duration,
    /// How long a claim on queued mail lasts before another node may take it
    /// (at least 10 s; longer than the slowest transaction you expect).
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub lease: Duration,
    /// Connecting to a next hop.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub connect_timeout: Duration,
    /// Waiting for a reply (RFC 5321 §4.5.3.2: 5 minutes for most commands).
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub command_timeout: Duration,
    /// Waiting for the reply after the message data (§4.5.3.2.6: 10 minutes).
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub data_timeout: Duration,
    /// Messages sent over one connection before it is closed.
    pub max_messages_per_connection: usize,
    /// MTA-STS (RFC 8461): for domains reached by MX lookup (not `routes`
    /// nor `relay`), look up the domain's policy and, when it enforces,
    /// send only to the MX hosts it lists, over TLS verified for them.
    pub mta_sts: bool,
    /// The HTTPS port of MTA-STS policy hosts (443, as RFC 8461 §3.3 fixes;
    /// tests change it).
    pub mta_sts_port: u16,
    /// Trust anchors (PEM certificates) added to the system's roots when
    /// verifying next hops' certificates (`tls = "verify"`, MTA-STS
    /// enforce) and MTA-STS policy hosts: a private CA.
    pub tls_ca: Option<PathBuf>,
    /// How often the DKIM signing keys are read again from the store, so
    /// that `postgate dkim generate`/`remove` (another process, or another
    /// node) takes effect within this.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub dkim_refresh: Duration,
}

/// A STARTTLS policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsPolicy {
    /// Never.
    None,
    /// When offered, without checking the certificate.
    May,
    /// Always; unverified.
    Require,
    /// Always, with the certificate verified for the host name.
    Verify,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        OutboundConfig {
            threads: 16,
            relay: None,
            relay_user: None,
            relay_password: None,
            routes: Default::default(),
            resolver: None,
            port: 25,
            tls: TlsPolicy::May,
            tls_domains: Default::default(),
            retry_intervals: [300, 900, 3600, 14400]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
            max_age: Duration::from_secs(5 * 86400),
            delay_warning: Duration::from_secs(4 * 3600),
            lease: Duration::from_secs(15 * 60),
            connect_timeout: Duration::from_secs(30),
            command_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(600),
            max_messages_per_connection: 100,
            mta_sts: true,
            mta_sts_port: 443,
            tls_ca: None,
            dkim_refresh: Duration::from_secs(30),
        }
    }
}

/// `[imap]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImapConfig {
    /// IMAP with STARTTLS.
    pub listen: Vec<Listen>,
    /// IMAP over implicit TLS.
    pub imaps: Vec<Listen>,
    /// Sessions served at once.
    pub threads: usize,
    /// Whether LOGIN and AUTHENTICATE are allowed before STARTTLS on the
    /// cleartext port. Off: LOGINDISABLED is advertised (RFC 9051 §6.2.3).
    pub allow_plaintext: bool,
    /// An authenticated session with no command for this long is logged out
    /// (RFC 9051 §5.4: at least 30 minutes).
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub idle_timeout: std::time::Duration,
    /// Largest message APPEND takes (RFC 7889 APPENDLIMIT).
    #[serde(deserialize_with = "de_size", serialize_with = "ser_size")]
    pub max_append_size: u64,
    /// Storage quota of every user (RFC 9208 STORAGE); 0: none.
    #[serde(deserialize_with = "de_size", serialize_with = "ser_size")]
    pub quota: u64,
    /// A SEARCH, SORT, COPY or MOVE running this long tells the client how
    /// far it has got, and again as often (RFC 9585 INPROGRESS).
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub progress_interval: Duration,
}

impl Default for ImapConfig {
    fn default() -> Self {
        ImapConfig {
            listen: local(1143),
            imaps: local(1993),
            threads: 10_000,
            allow_plaintext: false,
            idle_timeout: Duration::from_secs(30 * 60),
            max_append_size: 50 * 1024 * 1024,
            quota: 0,
            progress_interval: Duration::from_secs(5),
        }
    }
}

/// `[pop3]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Pop3Config {
    /// POP3 with STLS.
    pub listen: Vec<Listen>,
    /// POP3 over implicit TLS.
    pub pop3s: Vec<Listen>,
    /// Sessions served at once.
    pub threads: usize,
    /// Whether USER/PASS and AUTH are allowed before STLS on the cleartext
    /// port (RFC 2595 §4 leaves it to the server; off by default).
    pub allow_plaintext: bool,
    /// A session idle this long is closed (RFC 1939 §3: at least 10 minutes).
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub idle_timeout: Duration,
    /// What DELE does at QUIT: move the message to Trash, or purge it.
    pub delete: DeleteMode,
    /// Days messages stay on the server after retrieval, advertised as EXPIRE
    /// (RFC 2449 §6.7): 0 deletes what a session retrieved at its QUIT; none
    /// means NEVER.
    pub expire: Option<u32>,
    /// Minimum seconds between logins of one user, advertised as LOGIN-DELAY
    /// (RFC 2449 §6.8) and enforced; 0: none.
    pub login_delay: u64,
}

/// What happens to messages deleted over POP3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeleteMode {
    /// Moved to the user's Trash, where IMAP and the console still see them.
    Trash,
    /// Removed for good.
    Purge,
}

impl Default for Pop3Config {
    fn default() -> Self {
        Pop3Config {
            listen: local(1110),
            pop3s: local(1995),
            threads: 200,
            allow_plaintext: false,
            idle_timeout: Duration::from_secs(600),
            delete: DeleteMode::Trash,
            expire: None,
            login_delay: 0,
        }
    }
}

/// `[ldap]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LdapConfig {
    /// LDAP with StartTLS.
    pub listen: Vec<Listen>,
    /// LDAP over implicit TLS.
    pub ldaps: Vec<Listen>,
    /// Sessions served at once.
    pub threads: usize,
    /// The naming context, e.g. "dc=example,dc=org"; by default derived from
    /// the first domain served.
    pub base_dn: Option<String>,
    /// Whether clients that have not bound may search (public access, the
    /// point of an address book; the root DSE is always readable).
    pub anonymous: bool,
    /// Attributes anonymous clients may read and search on; bound users see
    /// every attribute.
    pub attributes: Vec<String>,
    /// Most entries one search returns (a larger search ends with
    /// sizeLimitExceeded); paged searches get this many per page.
    pub max_entries: usize,
    /// Allow simple binds with a password over a connection without TLS
    /// (RFC 4513 §5.1.2 advises against it).
    pub allow_plaintext: bool,
    /// How long an idle session stays open.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub idle_timeout: Duration,
}

impl Default for LdapConfig {
    fn default() -> Self {
        LdapConfig {
            listen: local(1389),
            ldaps: local(1636),
            threads: 200,
            base_dn: None,
            anonymous: true,
            attributes: [
                "objectClass",
                "cn",
                "sn",
                "givenName",
                "displayName",
                "mail",
                "uid",
                "telephoneNumber",
                "title",
                "ou",
                "o",
                "dc",
                "member",
                "description",
            ]
            .map(String::from)
            .to_vec(),
            max_entries: 1000,
            allow_plaintext: false,
            idle_timeout: Duration::from_secs(600),
        }
    }
}

/// `[snmp]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SnmpConfig {
    /// UDP addresses of the agent; none (the default): the agent is off.
    pub listen: Vec<Listen>,
    /// SNMPv2c read community.
    pub community: String,
    /// SNMPv2c write community: SET with it may change POSTGATE-MIB's
    /// thresholds and reset its statistics. None (the default): nothing is
    /// writable (RFC 3416 §4.2.5: noAccess).
    pub write_community: Option<String>,
    /// Who may ask; others are dropped unanswered. Default: loopback.
    #[serde(serialize_with = "ser_networks")]
    pub allowed_networks: Vec<Network>,
    /// sysContact.
    pub contact: String,
    /// sysLocation.
    pub location: String,
    /// sysName; default: `hostname`.
    pub name: Option<String>,
    /// Where notifications (SNMPv2-Trap, RFC 3416 §4.2.6) go: "host:port".
    pub trap_receivers: Vec<String>,
    /// The community traps carry; default: `community`.
    pub trap_community: Option<String>,
    /// Send InformRequests, acknowledged and retried (RFC 3416 §4.2.7),
    /// instead of SNMPv2-Traps. Default: false.
    pub inform: bool,
    /// postgateQueueOverThreshold when this many recipients are queued
    /// outbound; 0 (the default): off. A value set over SNMP (kept in the
    /// data directory) takes its place.
    pub queue_depth_threshold: u32,
    /// postgateQueueOverThreshold when the oldest queued message is this
    /// old; 0 (the default): off. A value set over SNMP takes its place.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub deferred_age_threshold: Duration,
    /// postgateAuthFailureStorm when this many logins fail, across every
    /// service, within `auth_failure_window`; 0: never. Default: 20.
    pub auth_failure_storm: u32,
    /// The window of `auth_failure_storm`. Default: "60s".
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub auth_failure_window: Duration,
    /// SNMPv3: the local snmpEngineID (RFC 3411 §5), written in hex (5 to 32
    /// octets); default: one made at first start and kept in the data
    /// directory (`snmp-engine`).
    #[serde(deserialize_with = "de_engine_id", serialize_with = "ser_engine_id")]
    pub engine_id: Option<Vec<u8>>,
    /// SNMPv3 users (`[snmp.users.NAME]`), all authPriv with SHA-256
    /// (RFC 7860) and AES-128 (RFC 3826); none (the default): v3 is off.
    pub users: std::collections::BTreeMap<String, SnmpUser>,
    /// Send notifications as SNMPv3 authPriv from this user (one of
    /// `users`) rather than SNMPv2c with `trap_community`.
    pub trap_user: Option<String>,
}

/// `[snmp.users.NAME]`: an SNMPv3 user's passwords, each localised to a key
/// at start (RFC 3414 §2.6).
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SnmpUser {
    /// The authentication password (HMAC-SHA-256), at least 8 characters.
    pub auth_password: String,
    /// The privacy password (AES-128), at least 8 characters.
    pub priv_password: String,
    /// May SET POSTGATE-MIB's thresholds and resetStats. Default: false.
    #[serde(default)]
    pub write: bool,
}

impl std::fmt::Debug for SnmpUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SnmpUser(***)")
    }
}

/// An engine ID as [`de_engine_id`] reads it: "0x" and lowercase hex.
fn ser_engine_id<S: Serializer>(id: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    match id {
        Some(id) => {
            let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
            s.serialize_str(&format!("0x{hex}"))
        }
        None => s.serialize_none(),
    }
}

/// An engine ID in hex (`80007ed9…` or `0x80007ed9…`), 5 to 32 octets.
fn de_engine_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
    let s = String::deserialize(d)?;
    let t = s.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    let id: Option<Vec<u8>> = t
        .len()
        .is_multiple_of(2)
        .then(|| {
            (0..t.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(t.get(i..i + 2)?, 16).ok())
                .collect()
        })
        .flatten();
    match id {
        // RFC 3411 §5: SnmpEngineID ::= OCTET STRING (SIZE(5..32)).
        Some(id) if (5..=32).contains(&id.len()) => Ok(Some(id)),
        _ => Err(serde::de::Error::custom(format!(
            "\"{s}\" is not an engine ID: 5 to 32 octets in hex (RFC 3411 §5)"
        ))),
    }
}

impl Default for SnmpConfig {
    fn default() -> Self {
        SnmpConfig {
            listen: Vec::new(),
            community: "public".into(),
            allowed_networks: vec![
                "127.0.0.0/8".parse().expect("a network"),
                "::1".parse().expect("a network"),
            ],
            contact: String::new(),
            location: String::new(),
            name: None,
            trap_receivers: Vec::new(),
            trap_community: None,
            write_community: None,
            inform: false,
            queue_depth_threshold: 0,
            deferred_age_threshold: Duration::ZERO,
            auth_failure_storm: 20,
            auth_failure_window: Duration::from_secs(60),
            engine_id: None,
            users: std::collections::BTreeMap::new(),
            trap_user: None,
        }
    }
}

/// `[console]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// HTTPS addresses of the web console and client API (always TLS).
    pub listen: Vec<Listen>,
    /// Concurrent HTTPS connections.
    pub threads: usize,
    /// The bearer token that reads `/metrics` (Prometheus); without one,
    /// `/metrics` is not served.
    pub metrics_token: Option<String>,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            listen: local(8443),
            threads: 256,
            metrics_token: None,
        }
    }
}

/// `[store]`: where the post office is kept.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// The backend.
    pub backend: StoreBackend,
    /// PostgreSQL: `postgres://USER:PASSWORD@HOST:PORT/DB` or libpq
    /// `key=value` pairs (`sslmode` disable/prefer/require honoured).
    pub url: Option<String>,
    /// PostgreSQL: connections in this node's pool.
    pub pool_size: usize,
    /// PostgreSQL: this node's name among those sharing the database
    /// (default: `hostname`).
    pub node: Option<String>,
    /// PostgreSQL: the certificate authorities (PEM) the database server's
    /// certificate is checked against (default: the system's).
    #[serde(serialize_with = "ser_opt_path")]
    pub ca_file: Option<PathBuf>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            backend: StoreBackend::Embedded,
            url: None,
            pool_size: 32,
            node: None,
            ca_file: None,
        }
    }
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password.
        f.debug_struct("StoreConfig")
            .field("backend", &self.backend)
            .field("url", &self.url.as_ref().map(|_| "(set)"))
            .field("pool_size", &self.pool_size)
            .field("node", &self.node)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// The store backends this build has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// SQLite under `data_dir`: one data directory, nothing else to run.
    #[default]
    Embedded,
    /// PostgreSQL at `url`: several nodes may share it.
    Postgres,
}

/// `[limits]`: connection caps and login throttling, the same for every
/// service.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Sessions one client address may hold at once, per service (0: no
    /// cap); past it the client gets the protocol's try-later reply.
    pub per_ip_connections: usize,
    /// Failed logins (per client address and per account, across every
    /// service) answered without delay.
    pub login_free_failures: u32,
    /// The delay before the next attempt once those are used up, doubling
    /// with each further failure (Dovecot's auth penalty)…
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub login_penalty: Duration,
    /// …up to this.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub login_penalty_max: Duration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            per_ip_connections: 100,
            login_free_failures: 2,
            login_penalty: Duration::from_secs(2),
            login_penalty_max: Duration::from_secs(15),
        }
    }
}

/// `[logging]`: the level per service, daily log files and accounting. (The
/// top-level `log` filter predates this section and stays the default level.)
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingConfig {
    /// The level of everything not named in `services`; unset: the
    /// top-level `log` filter.
    pub level: Option<LogLevel>,
    /// Levels per service, e.g. `{ smtp = "debug" }`: each applies to the
    /// events of that service's crate ([`LOG_SERVICES`] names them).
    pub services: std::collections::BTreeMap<String, LogLevel>,
    /// Also write log lines to daily files `postgate-YYYY-MM-DD.log` (UTC
    /// dates) in this directory, besides standard error. Unset: standard
    /// error only.
    #[serde(serialize_with = "ser_opt_path")]
    pub dir: Option<PathBuf>,
    /// Days of files kept, today's included; older ones are removed when the
    /// day changes (and at start).
    pub max_age: u32,
    /// Total octets of log files kept; the oldest are removed first (today's
    /// file never is). 0: no cap.
    #[serde(deserialize_with = "de_size", serialize_with = "ser_size")]
    pub max_size: u64,
    /// One JSON line per message in, out and bounced, in daily files
    /// `accounting-YYYY-MM-DD.jsonl` in `dir` (or `data_dir/log` when `dir` is
    /// unset). Kept `max_age` days; `max_size` does not apply to them, so a
    /// busy day never costs the records billing depends on.
    pub accounting: bool,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            level: None,
            services: Default::default(),
            dir: None,
            max_age: 30,
            max_size: 1 << 30,
            accounting: false,
        }
    }
}

impl Config {
    /// Where accounting files go: `[logging] dir`, else `data_dir/log`.
    pub fn accounting_dir(&self) -> PathBuf {
        self.logging
            .dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("log"))
    }
}

/// The services `[logging] services` can name, with the crate (tracing
/// target) whose events each level applies to.
pub const LOG_SERVICES: &[(&str, &str)] = &[
    ("smtp", "postgate_smtp"),
    ("imap", "postgate_imap"),
    ("pop3", "postgate_pop3"),
    ("ldap", "postgate_ldap"),
    ("console", "postgate_console"),
    ("outbound", "postgate_outbound"),
    ("snmp", "postgate_snmp"),
];

/// A log level, least verbose first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Failures that need the operator.
    Error,
    /// Trouble the server worked around.
    Warn,
    /// One line per session event worth keeping (the default).
    Info,
    /// Protocol detail, for diagnosis.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    /// Every level, least verbose first.
    pub const ALL: [LogLevel; 5] = [
        LogLevel::Error,
        LogLevel::Warn,
        LogLevel::Info,
        LogLevel::Debug,
        LogLevel::Trace,
    ];

    /// The name in config files and env-filter directives ("debug").
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

impl std::str::FromStr for LogLevel {
    type Err = String;

    /// Parses a level name, in any case ("WARN" as a log line writes it).
    fn from_str(s: &str) -> Result<LogLevel, String> {
        LogLevel::ALL
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("\"{s}\" is not a level (error, warn, info, debug, trace)"))
    }
}

/// `[calendar]`: appointments and tasks.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CalendarConfig {
    /// The IANA zone in which times without a zone ("floating", RFC 5545
    /// §3.3.5) and all-day dates are placed in time, for range queries and
    /// free/busy.
    #[serde(deserialize_with = "de_zone", serialize_with = "ser_zone")]
    pub time_zone: chrono_tz::Tz,
    /// Answer VFREEBUSY requests that arrive by mail with the recipient's
    /// busy periods (RFC 5546 §3.3.2), as calendar systems expect.
    pub answer_freebusy: bool,
    /// The most occurrences one appointment yields to one query; more are
    /// left out and the reply says so.
    pub max_occurrences_per_item: usize,
    /// The most occurrences one query returns.
    pub max_occurrences_per_query: usize,
}

impl Default for CalendarConfig {
    fn default() -> Self {
        CalendarConfig {
            time_zone: chrono_tz::UTC,
            answer_freebusy: true,
            max_occurrences_per_item: 1_000,
            max_occurrences_per_query: 10_000,
        }
    }
}

fn ser_zone<S: Serializer>(zone: &chrono_tz::Tz, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(zone.name())
}

fn de_zone<'de, D: Deserializer<'de>>(d: D) -> Result<chrono_tz::Tz, D::Error> {
    let s = String::deserialize(d)?;
    s.trim().parse::<chrono_tz::Tz>().map_err(|_| {
        serde::de::Error::custom(format!(
            "\"{s}\" is not an IANA time zone (e.g. \"Europe/Berlin\", \"UTC\")"
        ))
    })
}

/// Parses a next hop: "host", "host:port", "[ip]" or "[ip]:port" (IPv6 as
/// "[::1]:25"), giving the host (without brackets) and the port.
pub fn parse_next_hop(s: &str, default_port: u16) -> Option<(String, u16)> {
    let s = s.trim();
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after {
            "" => default_port,
            p => p.strip_prefix(':')?.parse().ok()?,
        };
        host.parse::<std::net::IpAddr>().ok()?;
        (host, port)
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().ok()?),
            None => (s, default_port),
        }
    };
    let valid = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_'));
    valid.then(|| (host.to_string(), port))
}

pub use postgate_types::Network;

/// A listening address, written "ip:port" (IPv6 as "[::1]:25").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Listen(pub SocketAddr);

impl Serialize for Listen {
    /// Written as it is read: `"ip:port"`, IPv6 as `"[::1]:25"`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Listen {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse::<SocketAddr>().map(Listen).map_err(|_| {
            serde::de::Error::custom(format!(
                "\"{s}\" is not an \"ip:port\" address (IPv6: \"[::1]:25\")"
            ))
        })
    }
}

fn local(port: u16) -> Vec<Listen> {
    vec![Listen(SocketAddr::from(([127, 0, 0, 1], port)))]
}

fn default_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumOrStr {
    Num(u64),
    Str(String),
}

/// Durations: seconds as an integer, or "90s", "5m", "1h", "2d".
fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    match NumOrStr::deserialize(d)? {
        NumOrStr::Num(n) => Ok(Duration::from_secs(n)),
        NumOrStr::Str(s) => parse_duration(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "\"{s}\" is not a duration (write seconds, or e.g. \"90s\", \"5m\", \"1h\", \"2d\")"
            ))
        }),
    }
}

/// A list of durations.
fn de_durations<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
    let items = Vec::<NumOrStr>::deserialize(d)?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        out.push(match item {
            NumOrStr::Num(n) => Duration::from_secs(n),
            NumOrStr::Str(s) => parse_duration(&s).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "\"{s}\" is not a duration (write seconds, or e.g. \"90s\", \"5m\", \"1h\", \"2d\")"
                ))
            })?,
        });
    }
    if out.is_empty() {
        return Err(serde::de::Error::custom("give at least one interval"));
    }
    Ok(out)
}

/// Writes a duration as [`parse_duration`] reads it, in the largest unit
/// that keeps it exact: "2d", "4h", "15m", "90s", "250ms" ("0s" for none).
/// Parts of a millisecond, which no configuration can hold, are dropped.
pub fn format_duration(d: Duration) -> String {
    if d.subsec_nanos() != 0 {
        return format!("{}ms", d.as_millis());
    }
    let secs = d.as_secs();
    match [(86_400, "d"), (3_600, "h"), (60, "m")]
        .into_iter()
        .find(|(unit, _)| secs != 0 && secs.is_multiple_of(*unit))
    {
        Some((unit, name)) => format!("{}{name}", secs / unit),
        None => format!("{secs}s"),
    }
}

fn ser_duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_duration(*d))
}

fn ser_durations<S: Serializer>(ds: &[Duration], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(ds.iter().map(|d| format_duration(*d)))
}

/// Parses "250ms", "90s", "5m", "1h", "2d" (or bare seconds).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    let mult = match unit.trim() {
        "ms" => return Some(Duration::from_millis(n)),
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return None,
    };
    Some(Duration::from_secs(n.checked_mul(mult)?))
}

/// Sizes: octets as an integer, or "512KiB", "50MiB", "1GiB" (also KB/MB/GB as
/// powers of 1000, and K/M/G as powers of 1024).
fn de_size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match NumOrStr::deserialize(d)? {
        NumOrStr::Num(n) => Ok(n),
        NumOrStr::Str(s) => parse_size(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "\"{s}\" is not a size (write octets, or e.g. \"512KiB\", \"50MiB\")"
            ))
        }),
    }
}

/// A size as [`de_size`] reads it: "1GiB", "50MiB" or "512KiB" when exact,
/// otherwise octets (an integer, or a string of digits past TOML's
/// integers).
fn ser_size<S: Serializer>(n: &u64, s: S) -> Result<S::Ok, S::Error> {
    let n = *n;
    match [(1u64 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")]
        .into_iter()
        .find(|(unit, _)| n != 0 && n.is_multiple_of(*unit))
    {
        Some((unit, name)) => s.serialize_str(&format!("{}{name}", n / unit)),
        None => match i64::try_from(n) {
            Ok(n) => s.serialize_i64(n),
            Err(_) => s.serialize_str(&n.to_string()),
        },
    }
}

/// Networks as `Network` reads them: "192.0.2.0/24", or an address alone.
fn ser_networks<S: Serializer>(networks: &[Network], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(networks.iter().map(|n| n.to_string()))
}

/// A path as a string; one that is not UTF-8 (which no TOML file can hold)
/// is written with replacement characters rather than failing.
fn ser_path<S: Serializer>(path: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&path.to_string_lossy())
}

fn ser_opt_path<S: Serializer>(path: &Option<PathBuf>, s: S) -> Result<S::Ok, S::Error> {
    match path {
        Some(p) => ser_path(p, s),
        None => s.serialize_none(),
    }
}

/// Parses a size with an optional unit.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// 1-based line, when known.
    pub line: usize,
    /// 1-based column (in characters), when known.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("{path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The file has errors.
    #[error("{path}: {}", .errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every error found.
        errors: Vec<ConfigError>,
    },
}

impl Config {
    /// Loads a configuration file; `None` gives the defaults. The result's
    /// [`source`](Config::source) is the file read (absolute), or `None` for
    /// the defaults.
    pub fn load(path: Option<&Path>) -> Result<Config, LoadError> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text = std::fs::read_to_string(path).map_err(|error| LoadError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        let mut config = check(&text).map_err(|errors| LoadError::Invalid {
            path: path.to_path_buf(),
            errors,
        })?;
        config.source = Some(std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()));
        Ok(config)
    }

    /// Every listener of every service, with the service's name: for clash checks.
    fn listeners(&self) -> Vec<(&'static str, &'static str, Listen)> {
        let mut out = Vec::new();
        let mut add = |section: &'static str, key: &'static str, l: &[Listen]| {
            out.extend(l.iter().map(|l| (section, key, *l)));
        };
        add("smtp", "listen", &self.smtp.listen);
        add("smtp", "submission", &self.smtp.submission);
        add("smtp", "smtps", &self.smtp.smtps);
        add("imap", "listen", &self.imap.listen);
        add("imap", "imaps", &self.imap.imaps);
        add("pop3", "listen", &self.pop3.listen);
        add("pop3", "pop3s", &self.pop3.pop3s);
        add("ldap", "listen", &self.ldap.listen);
        add("ldap", "ldaps", &self.ldap.ldaps);
        add("console", "listen", &self.console.listen);
        out
    }

    /// Checks that go across keys; each names the key (section, key) it is about.
    fn validate(&self) -> Vec<(Vec<&'static str>, String)> {
        let mut errs = Vec::new();
        let mut seen = std::collections::HashMap::new();
        for (section, key, l) in self.listeners() {
            if l.0.port() == 0 {
                continue; // port 0: the system picks a free port for each.
            }
            if let Some((s2, k2)) = seen.insert(l, (section, key)) {
                errs.push((
                    vec![section, key],
                    format!("{} is also used by [{s2}] {k2}", l.0),
                ));
            }
        }
        if self.store.backend == StoreBackend::Postgres && self.store.url.is_none() {
            errs.push((
                vec!["store", "url"],
                "backend = \"postgres\" needs the database's url".into(),
            ));
        }
        if self
            .snmp
            .write_community
            .as_ref()
            .is_some_and(|w| *w == self.snmp.community)
        {
            errs.push((
                vec!["snmp", "write_community"],
                "must differ from community (every reader could write)".into(),
            ));
        }
        // The ranges of POSTGATE-MIB's postgateQueueDepthThreshold and
        // postgateDeferredAgeThreshold.
        if self.snmp.queue_depth_threshold > 100_000_000 {
            errs.push((
                vec!["snmp", "queue_depth_threshold"],
                "at most 100000000".into(),
            ));
        }
        if self.snmp.deferred_age_threshold > Duration::from_secs(366 * 86_400) {
            errs.push((
                vec!["snmp", "deferred_age_threshold"],
                "at most 366 days".into(),
            ));
        }
        if self.snmp.auth_failure_window < Duration::from_secs(1)
            || self.snmp.auth_failure_window > Duration::from_secs(86_400)
        {
            errs.push((
                vec!["snmp", "auth_failure_window"],
                "from 1 second to 1 day".into(),
            ));
        }
        if self.store.pool_size == 0 {
            errs.push((vec!["store", "pool_size"], "must be at least 1".into()));
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            let key = if self.tls.cert.is_some() {
                "cert"
            } else {
                "key"
            };
            errs.push((
                vec!["tls", key],
                "cert and key must be given together".into(),
            ));
        }
        for (name, n) in [
            ("smtp", self.smtp.threads),
            ("imap", self.imap.threads),
            ("pop3", self.pop3.threads),
            ("ldap", self.ldap.threads),
            ("outbound", self.outbound.threads),
            ("console", self.console.threads),
        ] {
            if n == 0 {
                errs.push((vec![name, "threads"], "threads must be at least 1".into()));
            }
        }
        if self.smtp.max_line_length < 512 {
            errs.push((
                vec!["smtp", "max_line_length"],
                "must be at least 512 (RFC 5321 §4.5.3.1.4)".into(),
            ));
        }
        if self.smtp.max_recipients < 1 {
            errs.push((vec!["smtp", "max_recipients"], "must be at least 1".into()));
        }
        for (i, rule) in self.delivery.junk_headers.iter().enumerate() {
            if !rule.contains(':') {
                errs.push((
                    vec!["delivery", "junk_headers"],
                    format!(
                        "entry {} (\"{rule}\") is not of the form \"Header: value\"",
                        i + 1
                    ),
                ));
            }
        }
        if self.hostname.trim().is_empty() {
            errs.push((vec!["hostname"], "must not be empty".into()));
        }
        if let Some(relay) = &self.outbound.relay
            && parse_next_hop(relay, 25).is_none()
        {
            errs.push((
                vec!["outbound", "relay"],
                format!("\"{relay}\" is not \"host:port\" or \"[ip]:port\""),
            ));
        }
        if self.outbound.relay_user.is_some() != self.outbound.relay_password.is_some() {
            errs.push((
                vec!["outbound", "relay_user"],
                "relay_user and relay_password must be given together".into(),
            ));
        }
        for (domain, hop) in &self.outbound.routes {
            if parse_next_hop(hop, 25).is_none() {
                errs.push((
                    vec!["outbound", "routes"],
                    format!("{domain}: \"{hop}\" is not \"host:port\" or \"[ip]:port\""),
                ));
            }
        }
        for r in &self.dns.resolver {
            if parse_dns_server(r).is_none() {
                errs.push((
                    vec!["dns", "resolver"],
                    format!("\"{r}\" is not an \"ip:port\" address or an IP address"),
                ));
            }
        }
        if let Some(m) = &self.smtp.checks.mailbomb
            && (m.messages == 0 || m.seconds == 0)
        {
            errs.push((
                vec!["smtp", "checks", "mailbomb"],
                "messages and seconds must both be at least 1".into(),
            ));
        }
        for a in &self.smtp.checks.allow {
            let name = a.strip_prefix("*.").unwrap_or(a);
            if a.parse::<Network>().is_err() && (name.is_empty() || name.contains(['/', ' ', '@']))
            {
                errs.push((
                    vec!["smtp", "checks", "allow"],
                    format!("\"{a}\" is not an address, a network or a host name"),
                ));
            }
        }
        if let Some(r) = &self.outbound.resolver
            && r.parse::<SocketAddr>().is_err()
        {
            errs.push((
                vec!["outbound", "resolver"],
                format!("\"{r}\" is not an \"ip:port\" address"),
            ));
        }
        if self.outbound.max_messages_per_connection == 0 {
            errs.push((
                vec!["outbound", "max_messages_per_connection"],
                "must be at least 1".into(),
            ));
        }
        if self.outbound.mta_sts_port == 0 {
            errs.push((
                vec!["outbound", "mta_sts_port"],
                "must be a port from 1 to 65535".into(),
            ));
        }
        if let Some(ca) = &self.outbound.tls_ca
            && !ca.is_file()
        {
            errs.push((
                vec!["outbound", "tls_ca"],
                format!("{} is not a readable file", ca.display()),
            ));
        }
        for name in self.logging.services.keys() {
            if !LOG_SERVICES.iter().any(|(s, _)| s == name) {
                let known: Vec<&str> = LOG_SERVICES.iter().map(|(s, _)| *s).collect();
                errs.push((
                    vec!["logging", "services"],
                    format!("\"{name}\" is not a service (one of: {})", known.join(", ")),
                ));
            }
        }
        for (name, user) in &self.snmp.users {
            // RFC 3414 §2.4: usmUserName is 1 to 32 octets.
            if name.is_empty() || name.len() > 32 {
                errs.push((
                    vec!["snmp", "users"],
                    format!("user \"{name}\": a user name has 1 to 32 octets"),
                ));
            }
            for (key, password) in [
                ("auth_password", &user.auth_password),
                ("priv_password", &user.priv_password),
            ] {
                // RFC 3414 §11.2: shorter passwords make guessable keys.
                if password.chars().count() < 8 {
                    errs.push((
                        vec!["snmp", "users"],
                        format!(
                            "user \"{name}\": {key} must be at least 8 characters (RFC 3414 §11.2)"
                        ),
                    ));
                }
            }
        }
        if let Some(t) = &self.snmp.trap_user
            && !self.snmp.users.contains_key(t)
        {
            errs.push((
                vec!["snmp", "trap_user"],
                format!("\"{t}\" is not one of [snmp.users]"),
            ));
        }
        if self.snmp.inform && self.snmp.trap_user.is_some() {
            // RFC 3414 §4: an SNMPv3 inform's receiver is the authoritative
            // engine, whose ID the sender must first discover.
            errs.push((
                vec!["snmp", "inform"],
                "informs are sent over SNMPv2c only; with trap_user, notifications are SNMPv3 traps".into(),
            ));
        }
        if self.logging.max_age == 0 {
            errs.push((
                vec!["logging", "max_age"],
                "must be at least 1 (day)".into(),
            ));
        }
        errs
    }
}

/// What [`Config::effective_toml`] writes in place of every secret.
pub const SECRET_MASK: &str = "********";

/// Words that make a key a secret wherever it is (see [`Config::effective_toml`]).
const SECRET_WORDS: [&str; 4] = ["password", "secret", "token", "community"];

/// Tables whose keys the operator names (domains, services, SNMP users)
/// rather than settings: their keys are not taken for secrets' names.
const NAMED_KEY_TABLES: [&[&str]; 4] = [
    &["outbound", "routes"],
    &["outbound", "tls_domains"],
    &["logging", "services"],
    &["snmp", "users"],
];

impl Config {
    /// The whole effective configuration as TOML: every key, the defaults
    /// filled in (unset optional keys left out), in the order of this
    /// module's structs (top-level keys, then `[logging]`, `[tls]`,
    /// `[smtp]`, …), in the forms the parser reads (durations as "15m",
    /// sizes as "50MiB", listeners as "ip:port"). It is for showing, as the
    /// console does; [`source`](Config::source) says which file it came
    /// from.
    ///
    /// Every secret is replaced by [`SECRET_MASK`]:
    /// - any key whose name holds "password", "secret", "token" or
    ///   "community", at any depth, whether a string or a list of strings
    ///   (keys of tables the operator names, such as `[outbound] routes`,
    ///   are not settings and are not matched). Today these are
    ///   `[outbound] relay_password`, `[snmp] community`, `write_community`
    ///   and `trap_community`, `[snmp.users.NAME] auth_password` and
    ///   `priv_password`, and `[console] metrics_token`; a key added later
    ///   with such a name is masked without further ado;
    /// - the password inside `[store] url`: in `postgres://USER:PASSWORD@…`
    ///   only PASSWORD, also a `password=` query parameter; in libpq
    ///   `key=value` form the value of `password` (quoted or not). A string
    ///   of neither form that cannot be read as `key=value` pairs is masked
    ///   whole, since what the database client would make of it is unknown.
    ///
    /// Without masking (when no secret is set) the text parses back, with
    /// [`check`], to the same values. With masking it still parses, but to
    /// the mask as the secrets; [`check`] rejects such a text when both
    /// `community` and `write_community` are set, as they are then equal.
    ///
    /// (`Config`'s `Serialize` writes the same, secrets included: use this
    /// to show a configuration, never a bare serialization.)
    pub fn effective_toml(&self) -> String {
        let text = match toml::to_string(self) {
            Ok(text) => text,
            // Only integers past TOML's (2^63 - 1 threads, say), which no
            // file can have given, make this fail.
            Err(e) => return format!("# the configuration cannot be written as TOML: {e}\n"),
        };
        let mut doc: toml_edit::DocumentMut = match text.parse() {
            Ok(doc) => doc,
            Err(e) => return format!("# the configuration cannot be written as TOML: {e}\n"),
        };
        mask_table(doc.as_table_mut(), &mut Vec::new());
        if let Some(url) = doc
            .get_mut("store")
            .and_then(|s| s.get_mut("url"))
            .and_then(|u| u.as_value_mut())
            && let Some(text) = url.as_str()
        {
            set_string(url, mask_store_url(text));
        }
        doc.to_string()
    }
}

/// Masks the secret-named keys in `table` (at `path`) and below.
fn mask_table(table: &mut dyn toml_edit::TableLike, path: &mut Vec<String>) {
    let named_keys = NAMED_KEY_TABLES
        .iter()
        .any(|p| p.iter().copied().eq(path.iter().map(String::as_str)));
    for (key, item) in table.iter_mut() {
        let name = key.get().to_ascii_lowercase();
        let secret = !named_keys && SECRET_WORDS.iter().any(|w| name.contains(w));
        path.push(key.get().to_string());
        match item {
            toml_edit::Item::Value(value) => mask_value(value, secret, path),
            toml_edit::Item::Table(t) => mask_table(t, path),
            toml_edit::Item::ArrayOfTables(tables) => {
                for t in tables.iter_mut() {
                    mask_table(t, path);
                }
            }
            toml_edit::Item::None => {}
        }
        path.pop();
    }
}

/// Masks `value` if it is a secret's string (or list of strings), and the
/// secret-named keys of inline tables in it.
fn mask_value(value: &mut toml_edit::Value, secret: bool, path: &mut Vec<String>) {
    match value {
        toml_edit::Value::String(_) if secret => set_string(value, SECRET_MASK.to_string()),
        toml_edit::Value::Array(items) => {
            for item in items.iter_mut() {
                mask_value(item, secret, path);
            }
        }
        toml_edit::Value::InlineTable(t) => mask_table(t, path),
        _ => {}
    }
}

/// Replaces a value by a string, keeping the spacing around it.
fn set_string(value: &mut toml_edit::Value, text: String) {
    let decor = value.decor().clone();
    *value = toml_edit::Value::from(text);
    *value.decor_mut() = decor;
}

/// `[store] url` with its password masked, read as the PostgreSQL client
/// reads it (tokio-postgres, after libpq): a `postgres://` or
/// `postgresql://` URL, else `key=value` pairs.
fn mask_store_url(url: &str) -> String {
    for scheme in ["postgres://", "postgresql://"] {
        if let Some(rest) = url.strip_prefix(scheme) {
            return format!("{scheme}{}", mask_url_rest(rest));
        }
    }
    mask_key_values(url).unwrap_or_else(|| SECRET_MASK.to_string())
}

/// A URL after its scheme: the credentials run to the first `@` (the
/// client's reading, even when a `/` comes first), the password after
/// their first `:`; query parameters follow the first `?` after them.
fn mask_url_rest(rest: &str) -> String {
    let mut out = String::with_capacity(rest.len());
    let after_credentials = match rest.split_once('@') {
        Some((credentials, after)) => {
            match credentials.split_once(':') {
                Some((user, password)) if !password.is_empty() => {
                    out.push_str(user);
                    out.push(':');
                    out.push_str(SECRET_MASK);
                }
                _ => out.push_str(credentials),
            }
            out.push('@');
            after
        }
        None => rest,
    };
    match after_credentials.split_once('?') {
        Some((host_and_path, query)) => {
            out.push_str(host_and_path);
            out.push('?');
            let params: Vec<String> = query
                .split('&')
                .map(|param| match param.split_once('=') {
                    Some((key, _)) if is_password_key(&percent_decode(key)) => {
                        format!("{key}={SECRET_MASK}")
                    }
                    _ => param.to_string(),
                })
                .collect();
            out.push_str(&params.join("&"));
        }
        None => out.push_str(after_credentials),
    }
    out
}

/// libpq `key=value` pairs (spaces around `=` allowed, values plain with
/// `\` escapes or in single quotes) with the password's value masked;
/// `None` when the text is not such pairs.
fn mask_key_values(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let trimmed = rest.trim_start();
        out.push_str(&rest[..rest.len() - trimmed.len()]);
        rest = trimmed;
        if rest.is_empty() {
            return Some(out);
        }
        let key_end = rest
            .find(|c: char| c.is_whitespace() || c == '=')
            .unwrap_or(rest.len());
        let key = &rest[..key_end];
        let after_key = &rest[key_end..];
        let eq = after_key.trim_start().strip_prefix('=')?;
        let value = eq.trim_start();
        // Everything up to the value, verbatim.
        out.push_str(&rest[..rest.len() - value.len()]);
        let value_len = value_len(value)?;
        if key.is_empty() {
            return None;
        }
        if is_password_key(key) {
            out.push_str(SECRET_MASK);
        } else {
            out.push_str(&value[..value_len]);
        }
        rest = &value[value_len..];
    }
}

/// The length in bytes of the libpq value `text` starts with.
fn value_len(text: &str) -> Option<usize> {
    let mut chars = text.char_indices();
    if text.starts_with('\'') {
        chars.next();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    chars.next();
                }
                '\'' => return Some(i + 1),
                _ => {}
            }
        }
        None // unterminated
    } else {
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    chars.next();
                }
                c if c.is_whitespace() => return (i > 0).then_some(i),
                _ => {}
            }
        }
        (!text.is_empty()).then_some(text.len())
    }
}

fn is_password_key(key: &str) -> bool {
    key.trim().eq_ignore_ascii_case("password")
}

/// `%XX` escapes decoded (as the client decodes a URL's parameter names).
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Parses and validates a configuration, collecting every error with its position.
///
/// Serde stops at the first error, so this repeats: on each error it records the
/// position, blanks out the offending `key = value` (keeping byte offsets, so
/// later positions still point into the original text) and tries again.
pub fn check(text: &str) -> Result<Config, Vec<ConfigError>> {
    let doc = match toml_edit::Document::parse(text) {
        Ok(d) => d,
        Err(e) => {
            let offset = e.span().map(|s| s.start).unwrap_or(0);
            return Err(vec![error_at(text, offset, e.message().trim().to_string())]);
        }
    };
    let mut errors = Vec::new();
    let mut work = text.as_bytes().to_vec();
    // Each round removes one offending entry; the bound is a guard, not a limit
    // anyone should reach.
    for _ in 0..256 {
        let current = String::from_utf8_lossy(&work).into_owned();
        match toml::from_str::<Config>(&current) {
            Ok(config) => {
                for (path, message) in config.validate() {
                    let offset = locate(&doc, &path).unwrap_or(0);
                    errors.push(error_at(text, offset, message));
                }
                return if errors.is_empty() {
                    Ok(config)
                } else {
                    Err(errors)
                };
            }
            Err(e) => {
                let Some(span) = e.span() else {
                    errors.push(error_at(text, 0, e.message().to_string()));
                    return Err(errors);
                };
                errors.push(error_at(text, span.start, e.message().to_string()));
                match entry_extent(&doc, span.start) {
                    Some(range) if work[range.clone()].iter().any(|b| !b.is_ascii_whitespace()) => {
                        for b in &mut work[range] {
                            if *b != b'\n' && *b != b'\r' {
                                *b = b' ';
                            }
                        }
                    }
                    _ => return Err(errors),
                }
            }
        }
    }
    Err(errors)
}

fn error_at(text: &str, offset: usize, message: String) -> ConfigError {
    let offset = offset.min(text.len());
    let before = &text[..text.floor_char_boundary(offset)];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    ConfigError {
        line,
        column,
        message,
    }
}

/// The byte range of the innermost `key = value` (or whole `[table]`) holding `offset`.
fn entry_extent(doc: &toml_edit::Document<&str>, offset: usize) -> Option<std::ops::Range<usize>> {
    fn walk(
        table: &dyn toml_edit::TableLike,
        offset: usize,
        best: &mut Option<std::ops::Range<usize>>,
    ) {
        for (key, item) in table.iter() {
            let Some((k, _)) = table.get_key_value(key) else {
                continue;
            };
            let start = k.span().map(|s| s.start);
            let extent = match item {
                toml_edit::Item::Table(t) => {
                    // A [table]: its header and everything in it.
                    let end = t
                        .iter()
                        .filter_map(|(kk, _)| {
                            t.get_key_value(kk)
                                .and_then(|(_, v)| v.span())
                                .map(|s| s.end)
                        })
                        .max()
                        .into_iter()
                        .chain(t.span().map(|s| s.end))
                        .max();
                    let start = t.span().map(|s| s.start).or(start);
                    start.zip(end).map(|(s, e)| s..e)
                }
                other => start.zip(other.span().map(|s| s.end)).map(|(s, e)| s..e),
            };
            if let Some(r) = extent
                && r.contains(&offset)
                && best.as_ref().is_none_or(|b| r.len() <= b.len())
            {
                *best = Some(r);
            }
            match item {
                toml_edit::Item::Table(t) => walk(t, offset, best),
                toml_edit::Item::Value(toml_edit::Value::InlineTable(t)) => walk(t, offset, best),
                _ => {}
            }
        }
    }
    let mut best = None;
    walk(doc.as_table(), offset, &mut best);
    best
}

/// The offset of the key at `path`, or of the nearest enclosing table that exists.
fn locate(doc: &toml_edit::Document<&str>, path: &[&str]) -> Option<usize> {
    let mut table: &dyn toml_edit::TableLike = doc.as_table();
    let mut found = None;
    for (i, seg) in path.iter().enumerate() {
        let (k, item) = table.get_key_value(seg)?;
        found = k.span().map(|s| s.start).or(found);
        if i + 1 < path.len() {
            match item {
                toml_edit::Item::Table(t) => {
                    found = t.span().map(|s| s.start).or(found);
                    table = t;
                }
                toml_edit::Item::Value(toml_edit::Value::InlineTable(t)) => table = t,
                _ => break,
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_listen_on_loopback_only() {
        let c = check("").unwrap();
        assert_eq!(c.smtp.listen[0].0.to_string(), "127.0.0.1:2525");
        assert_eq!(c.smtp.max_message_size, 50 * 1024 * 1024);
        for (_, _, l) in c.listeners() {
            assert!(l.0.ip().is_loopback(), "{l:?}");
        }
    }

    #[test]
    fn parses_every_section() {
        let c = check(
            r#"
data_dir = "/var/lib/postgate"
hostname = "mail.example.org"
[tls]
cert = "/etc/c.pem"
key = "/etc/k.pem"
[smtp]
listen = ["0.0.0.0:25", "[::]:25"]
submission = []
smtps = ["0.0.0.0:465"]
threads = 50
max_message_size = "20MiB"
[smtp.timeouts]
command = "2m"
data = 600
[imap]
listen = []
threads = 5
[pop3]
pop3s = ["127.0.0.1:995"]
[ldap]
ldaps = []
[snmp]
community = "s3cret"
write_community = "wr1te"
inform = true
queue_depth_threshold = 500
deferred_age_threshold = "4h"
auth_failure_storm = 30
auth_failure_window = "2m"
[console]
listen = ["127.0.0.1:443"]
"#,
        )
        .unwrap();
        assert_eq!(c.smtp.listen.len(), 2);
        assert!(c.smtp.submission.is_empty());
        assert_eq!(c.smtp.max_message_size, 20 << 20);
        assert_eq!(c.smtp.timeouts.command, Duration::from_secs(120));
        assert_eq!(c.smtp.timeouts.data, Duration::from_secs(600));
        assert_eq!(c.smtp.timeouts.greeting, Duration::from_secs(300));
        assert_eq!(c.imap.threads, 5);
        assert_eq!(c.snmp.community, "s3cret");
        assert_eq!(c.snmp.write_community.as_deref(), Some("wr1te"));
        assert!(c.snmp.inform);
        assert_eq!(c.snmp.queue_depth_threshold, 500);
        assert_eq!(c.snmp.deferred_age_threshold, Duration::from_secs(4 * 3600));
        assert_eq!(c.snmp.auth_failure_storm, 30);
        assert_eq!(c.snmp.auth_failure_window, Duration::from_secs(120));
    }

    #[test]
    fn snmp_write_community_and_thresholds_are_checked() {
        let text = "[snmp]\ncommunity = \"same\"\nwrite_community = \"same\"\nqueue_depth_threshold = 100000001\ndeferred_age_threshold = \"400d\"\nauth_failure_window = 0\n";
        let errs = check(text).unwrap_err();
        let summary: Vec<(usize, &str)> =
            errs.iter().map(|e| (e.line, e.message.as_str())).collect();
        for (line, what) in [
            (3, "must differ"),
            (4, "at most 100000000"),
            (5, "at most 366 days"),
            (6, "from 1 second"),
        ] {
            assert!(
                errs.iter()
                    .any(|e| e.line == line && e.message.contains(what)),
                "{summary:?}"
            );
        }
        assert!(check("[snmp]\nwrite_community = \"other\"\n").is_ok());
    }

    #[test]
    fn snmp_users_and_engine_id() {
        let c = check(
            "[snmp]\nengine_id = \"0x80007ed9040102\"\ntrap_user = \"ops\"\n[snmp.users.ops]\nauth_password = \"authpass1\"\npriv_password = \"privpass1\"\n",
        )
        .unwrap();
        assert_eq!(c.snmp.engine_id, Some(vec![0x80, 0, 0x7e, 0xd9, 4, 1, 2]));
        assert_eq!(c.snmp.users["ops"].priv_password, "privpass1");
        assert_eq!(format!("{:?}", c.snmp.users["ops"]), "SnmpUser(***)");
        let errs = check(
            "[snmp]\nengine_id = \"8000\"\ntrap_user = \"nobody\"\n[snmp.users.ops]\nauth_password = \"short\"\npriv_password = \"privpass1\"\n",
        )
        .unwrap_err();
        let all: Vec<&str> = errs.iter().map(|e| e.message.as_str()).collect();
        assert!(
            all.iter().any(|m| m.contains("not an engine ID")),
            "{all:?}"
        );
        let errs = check(
            "[snmp]\ntrap_user = \"nobody\"\n[snmp.users.ops]\nauth_password = \"short\"\npriv_password = \"privpass1\"\n",
        )
        .unwrap_err();
        let all: Vec<&str> = errs.iter().map(|e| e.message.as_str()).collect();
        assert!(
            all.iter()
                .any(|m| m.contains("auth_password must be at least 8 characters")),
            "{all:?}"
        );
        assert!(
            all.iter().any(|m| m.contains("\"nobody\" is not one of")),
            "{all:?}"
        );
    }

    #[test]
    fn reports_every_error_with_position() {
        let text = "hostname = \"x\"\nbogus = 1\n[smtp]\nthreads = \"many\"\nlisten = [\"nowhere\"]\n[imap]\nlisten = [\"127.0.0.1:25\"]\n[nosuch]\na = 1\n";
        let errs = check(text).unwrap_err();
        let summary: Vec<(usize, &str)> =
            errs.iter().map(|e| (e.line, e.message.as_str())).collect();
        assert!(
            errs.iter()
                .any(|e| e.line == 2 && e.message.contains("bogus")),
            "{summary:?}"
        );
        assert!(
            errs.iter().any(|e| e.line == 4 && e.column == 11),
            "{summary:?}"
        );
        assert!(
            errs.iter()
                .any(|e| e.line == 5 && e.message.contains("nowhere")),
            "{summary:?}"
        );
        assert!(
            errs.iter()
                .any(|e| e.line == 8 && e.message.contains("nosuch")),
            "{summary:?}"
        );
        assert_eq!(errs.len(), 4, "{summary:?}");
    }

    #[test]
    fn cross_key_errors_name_their_key() {
        let text = "[smtp]\nlisten = [\"127.0.0.1:2500\"]\n[imap]\nlisten = [\"127.0.0.1:2500\"]\n[tls]\ncert = \"c.pem\"\n";
        let errs = check(text).unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(
            errs.iter()
                .any(|e| e.line == 4 && e.message.contains("also used"))
        );
        assert!(
            errs.iter()
                .any(|e| e.line == 6 && e.message.contains("together"))
        );
    }

    #[test]
    fn mta_sts_keys_default_and_validate() {
        let c = check("").unwrap();
        assert!(c.outbound.mta_sts);
        assert_eq!(c.outbound.mta_sts_port, 443);
        assert_eq!(c.outbound.tls_ca, None);
        let c = check("[outbound]\nmta_sts = false\nmta_sts_port = 8443\n").unwrap();
        assert!(!c.outbound.mta_sts);
        assert_eq!(c.outbound.mta_sts_port, 8443);
        let errs =
            check("[outbound]\nmta_sts_port = 0\ntls_ca = \"/nonexistent/ca.pem\"\n").unwrap_err();
        let summary: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert!(
            errs.iter()
                .any(|e| e.line == 2 && e.message.contains("port from 1")),
            "{summary:?}"
        );
        assert!(
            errs.iter()
                .any(|e| e.line == 3 && e.message.contains("not a readable file")),
            "{summary:?}"
        );
    }

    #[test]
    fn logging_section_beside_the_old_log_key() {
        let c = check("log = \"warn\"\n").unwrap();
        assert_eq!(c.log, "warn");
        assert_eq!(c.logging.level, None);
        assert_eq!(c.logging.max_age, 30);
        assert_eq!(c.logging.max_size, 1 << 30);
        assert!(!c.logging.accounting);
        assert_eq!(c.accounting_dir(), c.data_dir.join("log"));
        let c = check(
            "log = \"info\"\n[logging]\nlevel = \"debug\"\nservices = { smtp = \"trace\", imap = \"warn\" }\ndir = \"/var/log/postgate\"\nmax_age = 7\nmax_size = \"10MiB\"\naccounting = true\n",
        )
        .unwrap();
        assert_eq!(c.logging.level, Some(LogLevel::Debug));
        assert_eq!(c.logging.services["smtp"], LogLevel::Trace);
        assert_eq!(c.logging.services["imap"], LogLevel::Warn);
        assert_eq!(c.logging.max_size, 10 << 20);
        assert_eq!(c.accounting_dir(), PathBuf::from("/var/log/postgate"));
        let errs =
            check("[logging]\nservices = { smtpd = \"debug\" }\nmax_age = 0\nlevel = \"loud\"\n")
                .unwrap_err();
        let summary: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert!(
            errs.iter()
                .any(|e| e.line == 4 && e.message.contains("loud")),
            "{summary:?}"
        );
        assert!(
            errs.iter()
                .any(|e| e.line == 2 && e.message.contains("\"smtpd\" is not a service")),
            "{summary:?}"
        );
        assert!(
            errs.iter()
                .any(|e| e.line == 3 && e.message.contains("at least 1")),
            "{summary:?}"
        );
        assert_eq!("WARN".parse::<LogLevel>(), Ok(LogLevel::Warn));
        assert!("loud".parse::<LogLevel>().is_err());
    }

    #[test]
    fn syntax_errors_have_positions() {
        let errs = check("[smtp\nthreads = 1").unwrap_err();
        assert_eq!(errs[0].line, 1);
    }

    #[test]
    fn units() {
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("2d"), Some(Duration::from_secs(172800)));
        assert_eq!(parse_duration("x"), None);
        assert_eq!(parse_size("50MiB"), Some(50 << 20));
        assert_eq!(parse_size("10 KB"), Some(10_000));
        assert_eq!(parse_size("1.5G"), None);
    }

    /// Every section and nearly every key, each away from its default, with
    /// a distinct value for every secret.
    const RICH: &str = r#"
data_dir = "/var/lib/postgate"
hostname = "mail.example.org"
log = "warn"

[logging]
level = "debug"
services = { smtp = "trace", imap = "warn" }
dir = "/var/log/postgate"
max_age = 7
max_size = 1000
accounting = true

[tls]
cert = "/etc/postgate/cert.pem"
key = "/etc/postgate/key.pem"

[smtp]
listen = ["0.0.0.0:25", "[::]:25"]
submission = []
smtps = ["[2001:db8::1]:465"]
threads = 50
max_message_size = "20MiB"
max_recipients = 50
max_line_length = 1000
max_commands_before_mail = 10
max_errors = 5
vrfy = true
require_auth = true
allow_plaintext_auth = true
relay_networks = ["192.0.2.0/24", "2001:db8::/32", "198.51.100.7"]

[smtp.timeouts]
greeting = "250ms"
command = "90s"
data = 600

[delivery]
junk_headers = ["X-Spam-Flag: YES", "X-Spam-Status: Yes*"]
postmaster = "admin@example.org"

[outbound]
threads = 4
relay = "smtp.example.net:587"
relay_user = "relayuser"
relay_password = "relay-pw-1"
routes = { "example.net" = "[10.0.0.5]:25", ".example.com" = "mx.example.com:2525" }
resolver = "192.0.2.53:53"
port = 2525
tls = "verify"
tls_domains = { "example.net" = "require", "old.example" = "none" }
retry_intervals = [60, "10m", "2h", "1d"]
max_age = "3d"
delay_warning = "1500ms"
lease = "20m"
connect_timeout = "45s"
command_timeout = "4m"
data_timeout = "11m"
max_messages_per_connection = 7

[imap]
listen = []
imaps = ["0.0.0.0:993"]
threads = 5
allow_plaintext = true
idle_timeout = "31m"
max_append_size = "10 KB"
quota = "2GiB"

[pop3]
listen = ["0.0.0.0:110"]
pop3s = ["0.0.0.0:995"]
threads = 9
allow_plaintext = true
idle_timeout = "11m"
delete = "purge"
expire = 3
login_delay = 60

[ldap]
listen = ["0.0.0.0:389"]
ldaps = []
threads = 3
base_dn = "dc=example,dc=org"
anonymous = false
attributes = ["cn", "mail"]
max_entries = 50
allow_plaintext = true
idle_timeout = "1h"

[snmp]
listen = ["0.0.0.0:161"]
community = "snmp-read-c0mm"
write_community = "snmp-write-c0mm"
allowed_networks = ["10.0.0.0/8"]
contact = "ops@example.org"
location = "Rack 4"
name = "mail1"
trap_receivers = ["192.0.2.9:162"]
trap_community = "snmp-trap-c0mm"
inform = false
queue_depth_threshold = 500
deferred_age_threshold = "4h"
auth_failure_storm = 30
auth_failure_window = "2m"
engine_id = "0x80007ED9040102"
trap_user = "ops"

[snmp.users.ops]
auth_password = "snmp-auth-pw-1"
priv_password = "snmp-priv-pw-1"
write = true

[snmp.users.viewer]
auth_password = "snmp-auth-pw-2"
priv_password = "snmp-priv-pw-2"

[console]
listen = ["0.0.0.0:8443", "[::]:8443"]
threads = 64
metrics_token = "metrics-t0ken"

[calendar]
time_zone = "Europe/Berlin"
answer_freebusy = false
max_occurrences_per_item = 10
max_occurrences_per_query = 100

[limits]
per_ip_connections = 0
login_free_failures = 5
login_penalty = "3s"
login_penalty_max = "1m"

[store]
backend = "postgres"
url = "postgres://postgate:db-pa55word@db.example.org:5432/postgate?sslmode=require"
pool_size = 8
node = "node-1"
ca_file = "/etc/postgate/db-ca.pem"
"#;

    /// The secrets of [`RICH`].
    const RICH_SECRETS: [&str; 10] = [
        "relay-pw-1",
        "snmp-read-c0mm",
        "snmp-write-c0mm",
        "snmp-trap-c0mm",
        "snmp-auth-pw-1",
        "snmp-priv-pw-1",
        "snmp-auth-pw-2",
        "snmp-priv-pw-2",
        "metrics-t0ken",
        "db-pa55word",
    ];

    /// `c` with its secrets replaced as `effective_toml` replaces them.
    fn masked(mut c: Config) -> Config {
        let mask = || SECRET_MASK.to_string();
        c.outbound.relay_password = c.outbound.relay_password.map(|_| mask());
        c.snmp.community = mask();
        c.snmp.write_community = c.snmp.write_community.map(|_| mask());
        c.snmp.trap_community = c.snmp.trap_community.map(|_| mask());
        for user in c.snmp.users.values_mut() {
            user.auth_password = mask();
            user.priv_password = mask();
        }
        c.console.metrics_token = c.console.metrics_token.map(|_| mask());
        c.store.url = c.store.url.as_deref().map(mask_store_url);
        c
    }

    /// Equal, as far as Debug shows and for the fields it hides.
    fn assert_same(a: &Config, b: &Config) {
        assert_eq!(format!("{a:#?}"), format!("{b:#?}"));
        assert_eq!(a.store.url, b.store.url);
        let users = |c: &Config| -> Vec<(String, String, String, bool)> {
            c.snmp
                .users
                .iter()
                .map(|(n, u)| {
                    let u = u.clone();
                    (n.clone(), u.auth_password, u.priv_password, u.write)
                })
                .collect()
        };
        assert_eq!(users(a), users(b));
    }

    #[test]
    fn effective_toml_round_trips_with_secrets_masked() {
        let original = check(RICH).unwrap();
        let text = original.effective_toml();
        // The parser takes it (`check` would not: write_community and
        // community are now both the mask).
        let back: Config = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_same(&back, &masked(original.clone()));
        // Written in the forms the parser reads.
        for line in [
            "hostname = \"mail.example.org\"",
            "max_size = 1000",
            "max_message_size = \"20MiB\"",
            "max_append_size = 10000",
            "quota = \"2GiB\"",
            "greeting = \"250ms\"",
            "command = \"90s\"",
            "data = \"10m\"",
            "retry_intervals = [\"1m\", \"10m\", \"2h\", \"1d\"]",
            "delay_warning = \"1500ms\"",
            "smtps = [\"[2001:db8::1]:465\"]",
            "relay_networks = [\"192.0.2.0/24\", \"2001:db8::/32\", \"198.51.100.7\"]",
            "engine_id = \"0x80007ed9040102\"",
            "time_zone = \"Europe/Berlin\"",
            "tls = \"verify\"",
            "delete = \"purge\"",
            "backend = \"postgres\"",
        ] {
            assert!(text.lines().any(|l| l == line), "{line}\n{text}");
        }
        // Top-level keys first, then the sections in the structs' order.
        let headers: Vec<&str> = text.lines().filter(|l| l.starts_with('[')).collect();
        let position = |h: &str| headers.iter().position(|x| *x == h).unwrap();
        assert!(text.starts_with("data_dir = "), "{text}");
        assert_eq!(headers[0], "[logging]");
        assert!(position("[tls]") < position("[smtp]"));
        assert!(position("[smtp]") < position("[smtp.timeouts]"));
        assert!(position("[snmp]") < position("[snmp.users.ops]"));
        assert!(position("[calendar]") < position("[store]"));
    }

    #[test]
    fn serialization_round_trips_every_value() {
        // Unmasked, the same text passes every check and gives back every
        // value, the secrets too.
        let original = check(RICH).unwrap();
        let text = toml::to_string(&original).unwrap();
        let back = check(&text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
        assert_same(&back, &original);
        assert_eq!(back.snmp.users["ops"].auth_password, "snmp-auth-pw-1");
    }

    #[test]
    fn default_config_round_trips() {
        let default = Config::default();
        let text = default.effective_toml();
        let back = check(&text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
        // The one secret of the defaults: community "public".
        assert_eq!(back.snmp.community, SECRET_MASK);
        assert_same(&back, &masked(default));
        // An empty file is the defaults too.
        assert_same(&check("").unwrap(), &Config::default());
    }

    #[test]
    fn odd_values_round_trip() {
        let mut c = Config::default();
        c.logging.max_size = u64::MAX;
        c.imap.quota = 3 << 20;
        c.imap.max_append_size = (1 << 20) + 1;
        c.smtp.timeouts.data = Duration::ZERO;
        c.outbound.retry_intervals = vec![Duration::from_millis(1), Duration::from_secs(3601)];
        c.snmp.engine_id = Some(vec![0xff; 32]);
        c.outbound
            .routes
            .insert(".token.example".into(), "[::1]:25".into());
        let text = c.effective_toml();
        let back = check(&text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
        assert_same(&back, &masked(c));
        // A route's domain is not a setting: not masked for its name.
        assert!(text.contains("\".token.example\" = \"[::1]:25\""), "{text}");
    }

    #[test]
    fn effective_toml_masks_every_secret() {
        let text = check(RICH).unwrap().effective_toml();
        for secret in RICH_SECRETS {
            assert!(!text.contains(secret), "{secret} shown:\n{text}");
        }
        for line in [
            "relay_password = \"********\"",
            "community = \"********\"",
            "write_community = \"********\"",
            "trap_community = \"********\"",
            "auth_password = \"********\"",
            "priv_password = \"********\"",
            "metrics_token = \"********\"",
            "url = \"postgres://postgate:********@db.example.org:5432/postgate?sslmode=require\"",
        ] {
            assert!(text.lines().any(|l| l == line), "{line}\n{text}");
        }
        assert_eq!(text.matches(SECRET_MASK).count(), 10, "{text}");
        // What is not secret stays.
        assert!(text.contains("relay_user = \"relayuser\""), "{text}");
        assert!(text.contains("trap_user = \"ops\""), "{text}");
    }

    #[test]
    fn store_url_passwords_are_masked() {
        for (url, shown) in [
            (
                "postgresql://pg:s3cret@db/post",
                "postgresql://pg:********@db/post",
            ),
            // The client takes credentials up to the first @.
            (
                "postgres://pg:pa/ss@db/post",
                "postgres://pg:********@db/post",
            ),
            ("postgres://pg@db/post", "postgres://pg@db/post"),
            ("postgres://db:5432/post", "postgres://db:5432/post"),
            (
                "postgres://pg@db/post?sslmode=require&password=s3cret",
                "postgres://pg@db/post?sslmode=require&password=********",
            ),
            (
                "postgres://db/post?p%61ssword=s3cret&user=pg",
                "postgres://db/post?p%61ssword=********&user=pg",
            ),
            (
                "host=db user=pg password=s3cret dbname=post",
                "host=db user=pg password=******** dbname=post",
            ),
            (
                "host=db password = 'a b\\' s3cret' sslmode=require",
                "host=db password = ******** sslmode=require",
            ),
            ("password=s3c\\ ret host=db", "password=******** host=db"),
            ("host=db user=pg", "host=db user=pg"),
            // Not something the client reads: nothing of it is shown.
            ("POSTGRES://pg:s3cret@db/post", SECRET_MASK),
            ("host=db password='s3cret", SECRET_MASK),
        ] {
            assert_eq!(mask_store_url(url), shown, "{url}");
        }
    }

    #[test]
    fn load_records_the_source() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("postgate.toml");
        std::fs::write(&path, "hostname = \"mx.example.org\"\n").unwrap();
        let c = Config::load(Some(&path)).unwrap();
        assert_eq!(c.source.as_deref(), Some(path.as_path()));
        assert_eq!(c.hostname, "mx.example.org");
        assert!(!c.effective_toml().contains("source"));
        assert_eq!(Config::load(None).unwrap().source, None);
        assert_eq!(check("").unwrap().source, None);
        // Not a key of the file.
        assert!(check("source = \"/etc/postgate.toml\"\n").is_err());
    }

    #[test]
    fn durations_are_written_as_read() {
        for (d, text) in [
            (Duration::ZERO, "0s"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_millis(1500), "1500ms"),
            (Duration::from_secs(90), "90s"),
            (Duration::from_secs(120), "2m"),
            (Duration::from_secs(7200), "2h"),
            (Duration::from_secs(86_400 * 5), "5d"),
            (Duration::from_secs(86_400 + 1), "86401s"),
        ] {
            assert_eq!(format_duration(d), text);
            assert_eq!(parse_duration(text), Some(d));
        }
    }
}
