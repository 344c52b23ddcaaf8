//! Logging and accounting as the operator configures them (`[logging]`):
//! where log lines go (standard error, and daily files in `dir`), the level
//! of each service, the accounting file, and `postgate log tail`.
//!
//! The daily files themselves (switch at midnight UTC, pruning by age and
//! size) are `postgate_runtime::logfile`; the accounting records are
//! `postgate_delivery::accounting`.
use anyhow::{Context, bail};
use postgate_delivery::accounting::Accounting;
use postgate_runtime::Config;
use postgate_runtime::config::{LOG_SERVICES, LogLevel};
use postgate_runtime::logfile::{self, DailyFile, Retention, SharedDailyFile};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Log files: `postgate-YYYY-MM-DD.log`.
const LOG_PREFIX: &str = "postgate-";
/// See [`LOG_PREFIX`].
const LOG_SUFFIX: &str = ".log";
/// Accounting files: `accounting-YYYY-MM-DD.jsonl`.
const ACCOUNTING_PREFIX: &str = "accounting-";
/// See [`ACCOUNTING_PREFIX`].
const ACCOUNTING_SUFFIX: &str = ".jsonl";
/// How often `log tail` looks for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(250);
/// How much of the end of a file `log tail` reads first; it reads more
/// (4 times as much each round) until it has its lines.
const TAIL_WINDOW: u64 = 64 * 1024;

/// The env-filter directives from the config: `[logging] level` (else the
/// top-level `log` filter), then `crate=level` for each `[logging]
/// services` entry, which wins over the first for that crate's events.
pub fn directives(config: &Config) -> String {
    let mut out = match config.logging.level {
        Some(level) => level.as_str().to_string(),
        None => config.log.clone(),
    };
    for (service, level) in &config.logging.services {
        if let Some((_, target)) = LOG_SERVICES.iter().find(|(s, _)| s == service) {
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str(&format!("{target}={}", level.as_str()));
        }
    }
    out
}

/// Sets up logging: standard error, and the daily files when `[logging]
/// dir` is set. `RUST_LOG` overrides the levels. Fails when the directory
/// cannot be created or written.
pub fn init(config: &Config) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(directives(config)));
    let stderr = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let files = match &config.logging.dir {
        Some(dir) => {
            let file = DailyFile::new(
                dir,
                LOG_PREFIX,
                LOG_SUFFIX,
                Retention {
                    max_age_days: config.logging.max_age,
                    max_size: config.logging.max_size,
                },
            )
            .context("[logging] dir")?;
            Some(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_writer(SharedDailyFile::new(file)),
            )
        }
        None => None,
    };
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(stderr)
        .with(files)
        .with(postgate_runtime::logring::LogRing::global().layer())
        .try_init();
    Ok(())
}

/// The accounting sink `[logging] accounting` asks for: daily files in the
/// log directory (or `data_dir/log`), kept `max_age` days, or off.
pub fn accounting(config: &Config) -> anyhow::Result<Accounting> {
    if !config.logging.accounting {
        return Ok(Accounting::off());
    }
    let file = DailyFile::new(
        config.accounting_dir(),
        ACCOUNTING_PREFIX,
        ACCOUNTING_SUFFIX,
        Retention {
            max_age_days: config.logging.max_age,
            // Billing records are not given up for a busy day's log lines.
            max_size: 0,
        },
    )
    .context("[logging] accounting")?;
    Ok(Accounting::to(file))
}

/// What `log tail` prints.
#[derive(Debug, Clone)]
pub struct TailOptions {
    /// Only this service's lines (a name of [`LOG_SERVICES`]).
    pub service: Option<String>,
    /// Only lines at this level or more severe.
    pub level: Option<LogLevel>,
    /// How many lines first.
    pub lines: usize,
    /// Then wait for more.
    pub follow: bool,
}

/// Decides which lines of a log file to print. A line the formatter wrote
/// starts with its time and level ("2026-05-01T09:30:00.123456Z  INFO …");
/// lines that do not (a message with a line break) go with the line before.
#[derive(Debug, Clone)]
struct LineFilter {
    /// `service="smtp"` (the session span's field) and ` postgate_smtp:`
    /// (the event's target).
    service: Option<(String, String)>,
    level: Option<LogLevel>,
    /// Whether the last line with a level was kept.
    last: bool,
}

impl LineFilter {
    fn new(options: &TailOptions) -> LineFilter {
        let service = options.service.as_deref().map(|name| {
            let target = LOG_SERVICES
                .iter()
                .find(|(s, _)| *s == name)
                .map_or(name, |(_, t)| t);
            (format!("service=\"{name}\""), format!(" {target}:"))
        });
        LineFilter {
            service,
            level: options.level,
            last: false,
        }
    }

    fn keep(&mut self, line: &str) -> bool {
        let Some(level) = level_of(line) else {
            return self.last;
        };
        self.last = self.level.is_none_or(|min| level <= min)
            && self
                .service
                .as_ref()
                .is_none_or(|(field, target)| line.contains(field) || line.contains(target));
        self.last
    }
}

/// The level of a line the formatter wrote: the word after the time.
fn level_of(line: &str) -> Option<LogLevel> {
    let mut words = line.split_whitespace();
    let time = words.next()?;
    if !time.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    words.next()?.parse().ok()
}

/// The last `n` lines of `path` that `filter` keeps, and the offset just
/// after the last whole line read (where following goes on). Reads from the
/// end, more each round, rather than the whole file.
fn last_lines(
    path: &Path,
    n: usize,
    filter: &mut LineFilter,
) -> std::io::Result<(Vec<String>, u64)> {
    let mut file = std::fs::File::open(path)?;
    let end = file.metadata()?.len();
    let mut window = TAIL_WINDOW;
    loop {
        let start = end.saturating_sub(window);
        file.seek(SeekFrom::Start(start))?;
        let mut buf = Vec::new();
        (&mut file).take(end - start).read_to_end(&mut buf)?;
        // Whole lines only: from after the first newline unless at the
        // start of the file, up to the last newline.
        let first = if start == 0 {
            0
        } else {
            buf.iter()
                .position(|&b| b == b'\n')
                .map_or(buf.len(), |i| i + 1)
        };
        let last = buf
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(first, |i| i + 1)
            .max(first);
        let mut f = filter.clone();
        let kept: Vec<String> = String::from_utf8_lossy(&buf[first..last])
            .lines()
            .filter(|l| f.keep(l))
            .map(String::from)
            .collect();
        if start == 0 || (kept.len() >= n && first < buf.len()) {
            *filter = f;
            let skip = kept.len().saturating_sub(n);
            return Ok((kept.into_iter().skip(skip).collect(), start + last as u64));
        }
        window = window.saturating_mul(4);
    }
}

/// Prints `lines`; false when standard output is gone (a closed pipe).
fn print(lines: impl IntoIterator<Item = String>) -> bool {
    let mut out = std::io::stdout().lock();
    for l in lines {
        if writeln!(out, "{l}").is_err() {
            return false;
        }
    }
    out.flush().is_ok()
}

/// Today's log file, or the newest there is when today has none yet.
fn newest(dir: &Path) -> anyhow::Result<PathBuf> {
    let today = dir.join(logfile::file_name(
        LOG_PREFIX,
        chrono::Utc::now().date_naive(),
        LOG_SUFFIX,
    ));
    if today.exists() {
        return Ok(today);
    }
    let files = logfile::series(dir, LOG_PREFIX, LOG_SUFFIX)
        .with_context(|| format!("reading {}", dir.display()))?;
    Ok(files.into_iter().last().map_or(today, |(_, p, _)| p))
}

/// `postgate log tail`: the last lines of the log file, then (with
/// `follow`) new lines as they come, moving to the next day's file at
/// midnight, until interrupted.
pub async fn tail(config: &Config, options: TailOptions) -> anyhow::Result<ExitCode> {
    let Some(dir) = &config.logging.dir else {
        bail!(
            "[logging] dir is not set, so there are no log files to read (the server logs to \
             standard error only); set it to a directory and restart the server"
        );
    };
    if !dir.is_dir() {
        bail!(
            "[logging] dir {} does not exist (the server creates it when it starts)",
            dir.display()
        );
    }
    let mut filter = LineFilter::new(&options);
    let mut path = newest(dir)?;
    let mut pos = 0;
    if path.exists() {
        let (lines, end) = last_lines(&path, options.lines, &mut filter)
            .with_context(|| format!("reading {}", path.display()))?;
        pos = end;
        if !print(lines) {
            return Ok(ExitCode::SUCCESS);
        }
    }
    if !options.follow {
        return Ok(ExitCode::SUCCESS);
    }
    loop {
        tokio::time::sleep(FOLLOW_POLL).await;
        let today = dir.join(logfile::file_name(
            LOG_PREFIX,
            chrono::Utc::now().date_naive(),
            LOG_SUFFIX,
        ));
        // Whether the server has moved on to a new day's file: then this one
        // is read to its end once more, and the new one from its start.
        let moved = today != path && today.exists();
        match read_from(&path, &mut pos, &mut filter) {
            Ok(lines) => {
                if !print(lines) {
                    return Ok(ExitCode::SUCCESS);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        }
        if moved {
            path = today;
            pos = 0;
        }
    }
}

/// The whole lines appended to `path` since `pos`, moving `pos` past them;
/// from the start again if the file got shorter (replaced).
fn read_from(path: &Path, pos: &mut u64, filter: &mut LineFilter) -> std::io::Result<Vec<String>> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    if len < *pos {
        *pos = 0;
    }
    if len == *pos {
        return Ok(Vec::new());
    }
    file.seek(SeekFrom::Start(*pos))?;
    let mut buf = Vec::new();
    (&mut file).take(len - *pos).read_to_end(&mut buf)?;
    let Some(last) = buf.iter().rposition(|&b| b == b'\n') else {
        return Ok(Vec::new()); // a line still being written
    };
    *pos += last as u64 + 1;
    Ok(String::from_utf8_lossy(&buf[..=last])
        .lines()
        .filter(|l| filter.keep(l))
        .map(String::from)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(service: Option<&str>, level: Option<LogLevel>) -> TailOptions {
        TailOptions {
            service: service.map(String::from),
            level,
            lines: 20,
            follow: false,
        }
    }

    const LINES: &str = "\
2026-05-01T09:00:00.000001Z  INFO session{service=\"smtp\" role=\"smtp\" id=1 peer=127.0.0.1:5}: postgate_smtp::cmd::data: delivered id=\"a\"
2026-05-01T09:00:00.000002Z  WARN session{service=\"imap\" role=\"imap\" id=2 peer=127.0.0.1:6}: postgate_imap::session: slow
2026-05-01T09:00:00.000003Z DEBUG postgate_smtp::session: detail
2026-05-01T09:00:00.000004Z ERROR postgate_outbound: outbound: cannot read the queue
a second line of that message
2026-05-01T09:00:00.000005Z  INFO postgate_runtime::listener: started
";

    fn kept(o: &TailOptions) -> Vec<usize> {
        let mut f = LineFilter::new(o);
        LINES
            .lines()
            .enumerate()
            .filter(|(_, l)| f.keep(l))
            .map(|(i, _)| i)
            .collect()
    }

    #[test]
    fn filters_by_service_and_level() {
        assert_eq!(kept(&options(None, None)), [0, 1, 2, 3, 4, 5]);
        assert_eq!(kept(&options(Some("smtp"), None)), [0, 2]);
        assert_eq!(kept(&options(Some("smtp"), Some(LogLevel::Info))), [0]);
        assert_eq!(kept(&options(None, Some(LogLevel::Warn))), [1, 3, 4]);
        assert_eq!(kept(&options(Some("outbound"), None)), [3, 4]);
    }

    #[test]
    fn last_lines_reads_from_the_end_in_rounds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("postgate-2026-05-01.log");
        let mut text = String::new();
        for i in 0..20_000 {
            let service = if i % 5000 == 0 { "smtp" } else { "imap" };
            text.push_str(&format!(
                "2026-05-01T09:00:00.000000Z  INFO session{{service=\"{service}\"}}: line {i}\n"
            ));
        }
        text.push_str("2026-05-01T09:00:01.000000Z  INFO partial");
        std::fs::write(&path, &text).unwrap();
        let o = options(Some("smtp"), None);
        let (lines, end) = last_lines(&path, 3, &mut LineFilter::new(&o)).unwrap();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].ends_with("line 5000"), "{lines:?}");
        assert!(lines[2].ends_with("line 15000"), "{lines:?}");
        assert_eq!(end as usize, text.rfind('\n').unwrap() + 1);
        // Following picks up the finished line and no more.
        std::fs::write(&path, format!("{text} done\n")).unwrap();
        let mut pos = end;
        let mut all = LineFilter::new(&options(None, None));
        let new = read_from(&path, &mut pos, &mut all).unwrap();
        assert_eq!(new, ["2026-05-01T09:00:01.000000Z  INFO partial done"]);
        assert!(read_from(&path, &mut pos, &mut all).unwrap().is_empty());
    }

    #[test]
    fn directives_from_level_and_services() {
        let mut c = Config::default();
        assert_eq!(directives(&c), "info");
        c.log = "warn,postgate_store=debug".into();
        c.logging.services.insert("smtp".into(), LogLevel::Debug);
        c.logging
            .services
            .insert("outbound".into(), LogLevel::Error);
        assert_eq!(
            directives(&c),
            "warn,postgate_store=debug,postgate_outbound=error,postgate_smtp=debug"
        );
        c.logging.level = Some(LogLevel::Trace);
        assert_eq!(
            directives(&c),
            "trace,postgate_outbound=error,postgate_smtp=debug"
        );
    }
}
