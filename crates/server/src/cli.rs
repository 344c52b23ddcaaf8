//! The command line: `postgate [--config FILE] <command>`.
use crate::{admin, logs, serve};
use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use postgate_runtime::Config;
use postgate_runtime::config::{LOG_SERVICES, LogLevel};
use std::path::PathBuf;
use std::process::ExitCode;

/// Postgate: a post office and its Internet gateway.
#[derive(Debug, Parser)]
#[command(name = "postgate", version, about)]
pub struct Cli {
    /// Configuration file (TOML). Without one: data in ./postgate-data, services on 127.0.0.1.
    #[arg(
        long,
        short = 'c',
        global = true,
        value_name = "FILE",
        env = "POSTGATE_CONFIG"
    )]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the services until interrupted.
    Serve,
    /// Check a configuration file and report every error with its line and column.
    CheckConfig {
        /// The file to check.
        file: PathBuf,
    },
    /// Domains this post office system serves.
    #[command(subcommand)]
    Domain(DomainCmd),
    /// Users.
    #[command(subcommand)]
    User(UserCmd),
    /// Other addresses of a user.
    #[command(subcommand)]
    Alias(AliasCmd),
    /// Groups (distribution lists).
    #[command(subcommand)]
    Group(GroupCmd),
    /// A user's folders.
    #[command(subcommand)]
    Folder(FolderCmd),
    /// Items in a user's folders.
    #[command(subcommand)]
    Item(ItemCmd),
    /// The outbound queue: mail waiting for remote recipients.
    #[command(subcommand)]
    Queue(QueueCmd),
    /// A user's appointments and tasks, as iCalendar files.
    #[command(subcommand)]
    Calendar(CalendarCmd),
    /// Classes of service: which services users may use.
    #[command(subcommand)]
    Class(ClassCmd),
    /// How access control applies to a user.
    #[command(subcommand)]
    Access(AccessCmd),
    /// Blocked hosts, domains and networks.
    #[command(subcommand)]
    Block(BlockCmd),
    /// Who may administer the post office through the web console.
    #[command(subcommand)]
    Admin(AdminCmd),
    /// The log files in `[logging] dir`.
    #[command(subcommand)]
    Log(LogCmd),
    /// The store itself: moving a post office between backends.
    #[command(subcommand)]
    Store(StoreCmd),
    /// DKIM signing keys (RFC 6376): mail leaving for the Internet is signed
    /// with every key of its From domain.
    #[command(subcommand)]
    Dkim(DkimCmd),
    /// Copy the embedded store into DIR while the server runs: one
    /// consistent snapshot (messages included), checked before it is
    /// declared good. On PostgreSQL, use pg_dump instead.
    Backup {
        /// Where to write the backup (created; must be empty if it exists).
        dir: PathBuf,
    },
    /// Put a backup made by `postgate backup` into the configured data
    /// directory, which must be empty or absent. The backup is checked first.
    Restore {
        /// The backup.
        dir: PathBuf,
    },
    /// Import mail from an mbox file, a Maildir++ tree or a live IMAP
    /// account, with flags, keywords, internal dates and folders. An
    /// interrupted import continues where it stopped when run again.
    #[command(subcommand)]
    Import(ImportCmd),
}

/// Options every import takes.
#[derive(Debug, Args)]
pub struct ImportOptions {
    /// Where progress is kept, for resuming (default: a file in
    /// DATA_DIR/import-state/ named after the source and user).
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Tests: exit (code 75) once this many messages are committed, before
    /// the progress is recorded: an interruption at the worst moment.
    #[arg(long = "stop-after", hide = true)]
    pub stop_after: Option<u64>,
    /// Messages per commit (default 1000).
    #[arg(long, hide = true)]
    pub batch: Option<usize>,
}

/// `import …`
#[derive(Debug, Subcommand)]
pub enum ImportCmd {
    /// An mbox file (mboxrd or mboxo) into one folder. Status, X-Status,
    /// X-Keywords (and Thunderbird's X-Mozilla-Status, X-Mozilla-Keys)
    /// become flags and keywords; the From_ line's date, the internal date.
    Mbox {
        /// The mbox file.
        file: PathBuf,
        /// The user.
        address: String,
        /// The folder (created if missing).
        #[arg(long, default_value = "INBOX")]
        folder: String,
        /// How From_ lines in bodies were quoted.
        #[arg(long, value_enum, default_value = "mboxrd")]
        format: crate::import::mbox::Format,
        #[command(flatten)]
        options: ImportOptions,
    },
    /// A Maildir++ tree (Dovecot's or Courier's): cur/ and new/ into the
    /// Inbox, each .A.B subfolder into A/B, flags from the :2, suffix,
    /// keywords through dovecot-keywords.
    Maildir {
        /// The Maildir's root.
        dir: PathBuf,
        /// The user.
        address: String,
        #[command(flatten)]
        options: ImportOptions,
    },
    /// Every mailbox of an IMAP account, the password read from the first
    /// line of standard input.
    Imap {
        /// imaps://USER@HOST[:PORT] (TLS) or imap://USER@HOST[:PORT]
        /// (STARTTLS if offered).
        #[arg(long)]
        from: String,
        /// The user to import into.
        address: String,
        /// Accept a server certificate that is not trusted (self-signed).
        #[arg(long)]
        insecure: bool,
        #[command(flatten)]
        options: ImportOptions,
    },
}

/// `dkim …`
#[derive(Debug, Subcommand)]
pub enum DkimCmd {
    /// Make a signing key for a domain, store it, and print the DNS TXT
    /// record to publish. Mail is signed with it from the next key refresh
    /// on (`[outbound] dkim_refresh`), so publish the record first or at
    /// once. A domain with an RSA and an Ed25519 key gets both signatures
    /// (RFC 8463 §5): run this once with each algorithm.
    Generate {
        /// The domain mail is sent from (the From header's).
        domain: String,
        /// The selector; default `pgYYYYMM` with `r` (RSA) or `e` (Ed25519)
        /// after it, then a number if taken. Rotation is a new selector.
        #[arg(long)]
        selector: Option<String>,
        /// rsa (RSA-2048, rsa-sha256: known to every verifier) or ed25519
        /// (ed25519-sha256, RFC 8463).
        #[arg(long, default_value = "rsa", value_parser = ["rsa", "ed25519"])]
        algorithm: String,
    },
    /// List the keys with their DNS records.
    List {
        /// Only this domain's.
        domain: Option<String>,
        /// Print JSON (domain, selector, algorithm, created, name, txt).
        #[arg(long)]
        json: bool,
    },
    /// Remove a key: mail is no longer signed with it. Remove its DNS
    /// record a few days later, when no mail signed with it is in transit.
    Remove {
        /// The domain.
        domain: String,
        /// The selector.
        selector: String,
    },
}

/// `store …`
#[derive(Debug, Subcommand)]
pub enum StoreCmd {
    /// Copy the embedded store in `data_dir` into an empty PostgreSQL
    /// database, keeping every id, UIDVALIDITY, UID and modseq (IMAP
    /// clients do not resync). Stop the server first. An interrupted copy
    /// resumes where it stopped when run again.
    Copy {
        /// The target: `postgres://USER:PASSWORD@HOST:PORT/DB` or libpq
        /// `key=value` pairs.
        #[arg(long)]
        to: String,
        /// No progress bar (one line per table instead).
        #[arg(long)]
        quiet: bool,
    },
    /// Check the store's integrity: SQLite's own check (embedded), every
    /// message's bytes against their size and SHA-256, references, and
    /// folder counters. Only reads; may run while the server runs. Prints
    /// "ok" and exits 0 when clean, else each problem, exiting 1.
    Check,
}

/// `log …`
#[derive(Debug, Subcommand)]
pub enum LogCmd {
    /// Print the last lines of today's log file, then new lines as they are
    /// written (like `tail -f`) until interrupted.
    Tail {
        /// Only this service's lines (its sessions and its crate's events):
        /// smtp, imap, pop3, ldap, console, outbound, snmp.
        #[arg(long, value_parser = parse_service)]
        service: Option<String>,
        /// Only lines at this level or more severe: error, warn, info,
        /// debug, trace.
        #[arg(long, value_parser = parse_level)]
        level: Option<LogLevel>,
        /// How many lines to print first.
        #[arg(long, short = 'n', default_value_t = 20)]
        lines: usize,
        /// Print those lines and exit.
        #[arg(long = "no-follow")]
        no_follow: bool,
    },
}

fn parse_service(s: &str) -> Result<String, String> {
    if LOG_SERVICES.iter().any(|(name, _)| *name == s) {
        Ok(s.to_string())
    } else {
        let known: Vec<&str> = LOG_SERVICES.iter().map(|(name, _)| *name).collect();
        Err(format!("not a service (one of: {})", known.join(", ")))
    }
}

fn parse_level(s: &str) -> Result<LogLevel, String> {
    s.parse()
}

/// Who a class is assigned to (exactly one).
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct Target {
    /// A user, by address.
    #[arg(long)]
    pub user: Option<String>,
    /// A group, by address (its members, nested groups included).
    #[arg(long)]
    pub group: Option<String>,
    /// A post office, by name.
    #[arg(long = "post-office")]
    pub post_office: Option<String>,
    /// A domain.
    #[arg(long)]
    pub domain: Option<String>,
}

/// `class …`
#[derive(Debug, Subcommand)]
pub enum ClassCmd {
    /// Add a class (every setting allows until set).
    Add {
        /// Its name.
        name: String,
        /// What it is for.
        #[arg(long)]
        description: Option<String>,
    },
    /// Set one setting: imap, pop3, ldap, api (allow|deny); smtp.send,
    /// smtp.receive (allow|deny); smtp.send.except, smtp.receive.except
    /// (domains, hosts, *.domain, addresses, networks, comma-separated);
    /// smtp.send.max_size, smtp.receive.max_size (bytes, 0: the server's);
    /// pop3.delete (trash|purge|keep|server); pop3.max_days (0: all);
    /// ldap.attributes (comma-separated; empty: all, or [ldap] attributes
    /// for the default class).
    Set {
        /// The class.
        name: String,
        /// The setting.
        key: String,
        /// Its value.
        value: String,
    },
    /// Assign a class (it replaces the class the target had).
    Assign {
        /// The class.
        name: String,
        #[command(flatten)]
        target: Target,
    },
    /// Remove an assignment.
    Unassign {
        /// The class.
        name: String,
        #[command(flatten)]
        target: Target,
    },
    /// List classes and where they are assigned.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a class's settings and assignments.
    Show {
        /// The class.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a class and its assignments.
    Remove {
        /// The class.
        name: String,
    },
}

/// `access …`
#[derive(Debug, Subcommand)]
pub enum AccessCmd {
    /// A user's effective class of service, where it came from, and what it
    /// allows.
    Explain {
        /// The user.
        address: String,
        /// One service: imap, pop3, ldap, api, smtp.send, smtp.receive.
        service: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `admin …`
#[derive(Debug, Subcommand)]
pub enum AdminCmd {
    /// Let a user administer the post office through the web console
    /// (signing in with their own address and password).
    Grant {
        /// The user, by address or alias.
        address: String,
    },
    /// Take a user's console administration away.
    Revoke {
        /// The user, by address or alias.
        address: String,
    },
    /// List the console administrators, one address a line.
    List,
}

/// `block …`
#[derive(Debug, Subcommand)]
pub enum BlockCmd {
    /// Block an address, a network (CIDR, IPv4 or IPv6), a host or domain
    /// name, or every name under a domain (*.example.com).
    Add {
        /// What to block.
        pattern: String,
        /// in: clients and senders reaching us; out: destinations we send
        /// to; both.
        #[arg(long, default_value = "both")]
        direction: String,
        /// Why.
        #[arg(long)]
        note: Option<String>,
    },
    /// List blocks.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a block.
    Remove {
        /// The pattern, as added.
        pattern: String,
    },
}

/// `calendar …`
#[derive(Debug, Subcommand)]
pub enum CalendarCmd {
    /// Import an iCalendar file (.ics) into a user's Calendar and Tasks (no
    /// invitations are sent).
    Import {
        /// The user.
        address: String,
        /// The file ("-" for standard input).
        file: PathBuf,
    },
    /// Print a user's appointments and tasks as one iCalendar file.
    Export {
        /// The user.
        address: String,
    },
}

/// `queue …`
#[derive(Debug, Subcommand)]
pub enum QueueCmd {
    /// List queued messages: id, age, size, sender, recipients and their state.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one queued message with each recipient's attempts and last error.
    Show {
        /// Queue id.
        id: i64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Make one message's waiting recipients (or, without an id, all) due now.
    Retry {
        /// Queue id.
        id: Option<i64>,
    },
    /// Drop a queued message without sending or bouncing it.
    Remove {
        /// Queue id.
        id: i64,
    },
    /// Make every waiting recipient due now (the same as `retry` without an id).
    Flush,
    /// Hold one message's waiting recipients (or, with --all, every
    /// message's): they are not tried until released. Recipients being
    /// tried right now are left alone.
    Hold {
        /// Queue id.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<i64>,
        /// Every queued message.
        #[arg(long)]
        all: bool,
    },
    /// Release one message's held recipients (or, with --all, every
    /// message's): they are due now.
    Release {
        /// Queue id.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<i64>,
        /// Every queued message.
        #[arg(long)]
        all: bool,
    },
}

/// `domain …`
#[derive(Debug, Subcommand)]
pub enum DomainCmd {
    /// Add a domain.
    Add {
        /// Domain name, e.g. example.org.
        name: String,
    },
    /// List domains.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a domain that has no users, aliases or groups left.
    Remove {
        /// Domain name.
        name: String,
    },
}

/// `user add` options.
#[derive(Debug, Args)]
pub struct UserAdd {
    /// The user's address, e.g. alice@example.org.
    pub address: String,
    /// Full name, e.g. "Alice Smith".
    #[arg(long)]
    pub name: String,
    /// Given name (default: first word of --name).
    #[arg(long)]
    pub given: Option<String>,
    /// Surname (default: last word of --name).
    #[arg(long)]
    pub surname: Option<String>,
    /// Job title.
    #[arg(long)]
    pub title: Option<String>,
    /// Department.
    #[arg(long)]
    pub department: Option<String>,
    /// Telephone number.
    #[arg(long)]
    pub phone: Option<String>,
    /// Post office within the domain (default: the domain's first).
    #[arg(long = "post-office")]
    pub post_office: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long = "password-stdin")]
    pub password_stdin: bool,
}

/// `user …`
#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Add a user, with the standard folders.
    Add(UserAdd),
    /// List users.
    List {
        /// Only this domain.
        #[arg(long)]
        domain: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a user.
    Show {
        /// Address or alias.
        address: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a user and everything they hold.
    Remove {
        /// Address.
        address: String,
    },
    /// Add the people of an LDIF file (RFC 2849), as slapcat or an address
    /// book exports them: entries with a `mail` become users (cn, sn,
    /// givenName, title, telephoneNumber, departmentNumber or ou). Entries
    /// already present are skipped.
    Import {
        /// The LDIF file ("-" for standard input).
        file: PathBuf,
        /// Add the domains of the addresses when not yet served.
        #[arg(long = "add-domains")]
        add_domains: bool,
        /// Also import plain-text `userPassword` values (hashed with argon2id
        /// on the way in; slow for large files).
        #[arg(long)]
        passwords: bool,
    },
    /// Set a user's password, read from the first line of standard input.
    Passwd {
        /// Address.
        address: String,
        /// Accepted for symmetry with `user add`; the password is always read from standard input.
        #[arg(long = "password-stdin")]
        password_stdin: bool,
    },
}

/// `alias …`
#[derive(Debug, Subcommand)]
pub enum AliasCmd {
    /// Make ALIAS another address of USER.
    Add {
        /// The new address.
        alias: String,
        /// The user it reaches.
        user: String,
    },
    /// Remove an alias.
    Remove {
        /// The alias.
        alias: String,
    },
}

/// `group …`
#[derive(Debug, Subcommand)]
pub enum GroupCmd {
    /// Add a group.
    Add {
        /// The group's address.
        address: String,
        /// Display name (default: the local part).
        #[arg(long)]
        name: Option<String>,
    },
    /// Remove a group.
    Remove {
        /// The group's address.
        address: String,
    },
    /// List groups and their members.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Group membership.
    #[command(subcommand)]
    Member(MemberCmd),
}

/// `group member …`
#[derive(Debug, Subcommand)]
pub enum MemberCmd {
    /// Add a user, alias or group to a group.
    Add {
        /// The group.
        group: String,
        /// The member's address.
        address: String,
    },
    /// Remove a member.
    Remove {
        /// The group.
        group: String,
        /// The member's address.
        address: String,
    },
}

/// `folder …`
#[derive(Debug, Subcommand)]
pub enum FolderCmd {
    /// List a user's folders with their counts.
    List {
        /// The user.
        address: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Create a folder (and missing parents), e.g. "Projects/2026".
    Add {
        /// The user.
        address: String,
        /// Folder path, "/"-separated.
        path: String,
    },
}

/// `item …`
#[derive(Debug, Subcommand)]
pub enum ItemCmd {
    /// List the items of a folder: uid, kind, from, subject, date, size, flags.
    List {
        /// The user.
        address: String,
        /// Folder (default: Inbox).
        #[arg(long, default_value = "Inbox")]
        folder: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one item: its fields, or with --raw its RFC 5322 bytes exactly as stored.
    Show {
        /// The user.
        address: String,
        /// The item's UID in the folder.
        uid: u32,
        /// Folder (default: Inbox).
        #[arg(long, default_value = "Inbox")]
        folder: String,
        /// Print the stored RFC 5322 message byte for byte.
        #[arg(long)]
        raw: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let load = |path: Option<PathBuf>| Config::load(path.as_deref()).context("configuration");
    match cli.command {
        Command::CheckConfig { file } => Ok(check_config(&file)),
        Command::Serve => serve::serve(load(cli.config)?).await,
        Command::Log(LogCmd::Tail {
            service,
            level,
            lines,
            no_follow,
        }) => {
            let options = logs::TailOptions {
                service,
                level,
                lines,
                follow: !no_follow,
            };
            logs::tail(&load(cli.config)?, options).await
        }
        Command::Backup { dir } => crate::backup::backup(&load(cli.config)?, &dir).await,
        Command::Restore { dir } => crate::backup::restore(&load(cli.config)?, &dir).await,
        Command::Import(cmd) => crate::import::run(&load(cli.config)?, cmd).await,
        Command::Store(StoreCmd::Copy { to, quiet }) => {
            crate::admin::store_copy(&load(cli.config)?, &to, quiet).await
        }
        Command::Store(StoreCmd::Check) => crate::admin::store_check(&load(cli.config)?).await,
        other => admin::run(load(cli.config)?, other).await,
    }
}

fn check_config(file: &std::path::Path) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{}: {e}", file.display());
            return ExitCode::FAILURE;
        }
    };
    match postgate_runtime::config::check(&text) {
        Ok(_) => {
            println!("{}: OK", file.display());
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("{}:{}:{}: {}", file.display(), e.line, e.column, e.message);
            }
            eprintln!("{}: {} error(s)", file.display(), errors.len());
            ExitCode::FAILURE
        }
    }
}
