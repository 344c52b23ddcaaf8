//! Daily files: `PREFIX` + `YYYY-MM-DD` + `SUFFIX` in one directory (UTC
//! dates), switched at midnight, with old files pruned by age and by total
//! size. The log (`postgate-2026-05-01.log`) and accounting
//! (`accounting-2026-05-01.jsonl`) are two such series; each prunes only its
//! own files, so they can share a directory.
//!
//! Why not tracing-appender: its `RollingFileAppender` switches files daily
//! too, but it keeps the newest N files (`max_log_files`) and knows neither
//! an age in days nor a total size. Both limits are needed here, and the
//! writer is small enough to own, with the clock injected ([`Clock`]) so that
//! the switch at midnight and the pruning are tested without waiting.
//!
//! [`DailyFile`] is a plain [`std::io::Write`]; [`SharedDailyFile`] puts one
//! behind a mutex as tracing-subscriber's `MakeWriter`, each event written
//! with one `write` to a file opened for appending.
//!
//! Nothing here logs through `tracing`: the log writer calling `tracing`
//! would wait on its own lock. Problems while pruning go to standard error.
use chrono::{DateTime, NaiveDate, Utc};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// What time it is; [`Utc::now`] but in tests.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// How the date is written in file names.
const DATE_FORMAT: &str = "%Y-%m-%d";

/// What a series keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Days of files kept, today's included: at a day's switch, files of
    /// days this many days or more before it are removed. 0: no limit.
    pub max_age_days: u32,
    /// Total octets of the series' files kept; the oldest are removed first,
    /// today's never. 0: no cap.
    pub max_size: u64,
}

/// The name of a series' file for `date`.
pub fn file_name(prefix: &str, date: NaiveDate, suffix: &str) -> String {
    format!("{prefix}{}{suffix}", date.format(DATE_FORMAT))
}

/// The files of a series in `dir`, oldest first: (day, path, size). Files
/// whose names do not match are ignored; a missing directory has none.
pub fn series(
    dir: &Path,
    prefix: &str,
    suffix: &str,
) -> io::Result<Vec<(NaiveDate, PathBuf, u64)>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(date) = name
            .to_str()
            .and_then(|n| n.strip_prefix(prefix))
            .and_then(|n| n.strip_suffix(suffix))
            .and_then(|d| NaiveDate::parse_from_str(d, DATE_FORMAT).ok())
        else {
            continue;
        };
        let meta = entry.metadata()?;
        if meta.is_file() {
            out.push((date, entry.path(), meta.len()));
        }
    }
    out.sort();
    Ok(out)
}

/// One series of daily files, written to as one stream.
pub struct DailyFile {
    dir: PathBuf,
    prefix: String,
    suffix: String,
    retention: Retention,
    clock: Clock,
    /// The file open for appending and its day.
    current: Option<(NaiveDate, File)>,
    /// Octets in the series as of the last pruning, plus those written since:
    /// when it passes `max_size`, older files are pruned without waiting for
    /// the next day.
    total: u64,
    /// Pruning left the series over `max_size` (today's file alone is larger):
    /// no further pruning until the next day, rather than a directory scan
    /// per line.
    over_cap: bool,
}

impl std::fmt::Debug for DailyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DailyFile")
            .field("dir", &self.dir)
            .field("prefix", &self.prefix)
            .field("suffix", &self.suffix)
            .field("retention", &self.retention)
            .field("day", &self.current.as_ref().map(|(d, _)| *d))
            .finish_non_exhaustive()
    }
}

impl DailyFile {
    /// Opens today's file of the series in `dir` (created if missing), after
    /// pruning what `retention` no longer keeps.
    pub fn new(
        dir: impl Into<PathBuf>,
        prefix: &str,
        suffix: &str,
        retention: Retention,
    ) -> io::Result<DailyFile> {
        Self::with_clock(dir, prefix, suffix, retention, Arc::new(Utc::now))
    }

    /// [`DailyFile::new`] with another clock (tests).
    pub fn with_clock(
        dir: impl Into<PathBuf>,
        prefix: &str,
        suffix: &str,
        retention: Retention,
        clock: Clock,
    ) -> io::Result<DailyFile> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot create {}: {e}", dir.display()))
        })?;
        let mut f = DailyFile {
            dir,
            prefix: prefix.to_string(),
            suffix: suffix.to_string(),
            retention,
            clock,
            current: None,
            total: 0,
            over_cap: false,
        };
        // Open now, so that a directory we cannot write to fails at start.
        f.file()?;
        Ok(f)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of the series' file for `date`.
    pub fn path(&self, date: NaiveDate) -> PathBuf {
        self.dir.join(file_name(&self.prefix, date, &self.suffix))
    }

    /// Today's file, switching to it (and pruning) when the day has changed.
    fn file(&mut self) -> io::Result<&mut File> {
        let today = (self.clock)().date_naive();
        if self.current.as_ref().is_none_or(|(day, _)| *day != today) {
            let path = self.path(today);
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
            self.current = Some((today, file));
            self.over_cap = false;
            self.prune_reporting(today);
        }
        match &mut self.current {
            Some((_, file)) => Ok(file),
            None => Err(io::Error::other("no file open")),
        }
    }

    /// Removes the files `retention` no longer keeps, as of `today`: those of
    /// days `max_age_days` or more before it, then the oldest until the series
    /// is within `max_size` (today's file is never removed). Returns the
    /// removed paths.
    pub fn prune(&mut self, today: NaiveDate) -> io::Result<Vec<PathBuf>> {
        let mut files = series(&self.dir, &self.prefix, &self.suffix)?;
        let mut removed = Vec::new();
        let mut remove = |path: &Path| match fs::remove_file(path) {
            Ok(()) => {
                removed.push(path.to_path_buf());
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io::Error::new(
                e.kind(),
                format!("cannot remove {}: {e}", path.display()),
            )),
        };
        if self.retention.max_age_days > 0 {
            let days = i64::from(self.retention.max_age_days);
            let mut kept = Vec::with_capacity(files.len());
            for f in files {
                if (today - f.0).num_days() >= days {
                    remove(&f.1)?;
                } else {
                    kept.push(f);
                }
            }
            files = kept;
        }
        let mut total: u64 = files.iter().map(|f| f.2).sum();
        if self.retention.max_size > 0 {
            // Oldest first; today's (and any dated later, after a clock step
            // back) stay.
            for (day, path, size) in &files {
                if total <= self.retention.max_size || *day >= today {
                    break;
                }
                remove(path)?;
                total -= size;
            }
            self.over_cap = total > self.retention.max_size;
        }
        self.total = total;
        Ok(removed)
    }

    /// [`DailyFile::prune`], its failure reported on standard error: a file
    /// that cannot be removed must not stop the logging.
    fn prune_reporting(&mut self, today: NaiveDate) {
        if let Err(e) = self.prune(today) {
            eprintln!(
                "postgate: pruning {}{}: {e}",
                self.dir.join(&self.prefix).display(),
                self.suffix
            );
        }
    }
}

impl Write for DailyFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file()?.write(buf)?;
        self.total += n as u64;
        if self.retention.max_size > 0
            && self.total > self.retention.max_size
            && !self.over_cap
            && let Some(today) = self.current.as_ref().map(|(day, _)| *day)
        {
            self.prune_reporting(today);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.current {
            Some((_, file)) => file.flush(),
            None => Ok(()),
        }
    }
}

/// A [`DailyFile`] shared by threads: tracing-subscriber's `MakeWriter`.
#[derive(Debug, Clone)]
pub struct SharedDailyFile(Arc<Mutex<DailyFile>>);

impl SharedDailyFile {
    /// Shares `file`.
    pub fn new(file: DailyFile) -> SharedDailyFile {
        SharedDailyFile(Arc::new(Mutex::new(file)))
    }

    fn lock(&self) -> MutexGuard<'_, DailyFile> {
        // A panic while writing leaves the file usable.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The file, locked for one event.
#[derive(Debug)]
pub struct DailyFileGuard<'a>(MutexGuard<'a, DailyFile>);

impl Write for DailyFileGuard<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for SharedDailyFile {
    type Writer = DailyFileGuard<'a>;

    fn make_writer(&'a self) -> DailyFileGuard<'a> {
        DailyFileGuard(self.lock())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// A clock the test sets.
    fn clock(start: DateTime<Utc>) -> (Arc<Mutex<DateTime<Utc>>>, Clock) {
        let now = Arc::new(Mutex::new(start));
        let read = now.clone();
        (now, Arc::new(move || *read.lock().unwrap()))
    }

    fn at(y: i32, m: u32, d: u32, h: u32, min: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, s).unwrap()
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    const KEEP_ALL: Retention = Retention {
        max_age_days: 0,
        max_size: 0,
    };

    #[test]
    fn a_write_after_midnight_goes_to_the_next_days_file() {
        let dir = tempfile::tempdir().unwrap();
        let (now, clock) = clock(at(2026, 3, 31, 23, 59, 59));
        let mut f =
            DailyFile::with_clock(dir.path(), "postgate-", ".log", KEEP_ALL, clock).unwrap();
        f.write_all(b"before midnight\n").unwrap();
        *now.lock().unwrap() = at(2026, 4, 1, 0, 0, 0);
        f.write_all(b"after midnight\n").unwrap();
        f.write_all(b"later\n").unwrap();
        assert_eq!(
            names(dir.path()),
            ["postgate-2026-03-31.log", "postgate-2026-04-01.log"]
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("postgate-2026-03-31.log")).unwrap(),
            "before midnight\n"
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("postgate-2026-04-01.log")).unwrap(),
            "after midnight\nlater\n"
        );
        // A restart the same day appends to the day's file.
        let (_, clock) = self::clock(at(2026, 4, 1, 8, 0, 0));
        let mut f =
            DailyFile::with_clock(dir.path(), "postgate-", ".log", KEEP_ALL, clock).unwrap();
        f.write_all(b"restarted\n").unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("postgate-2026-04-01.log")).unwrap(),
            "after midnight\nlater\nrestarted\n"
        );
    }

    #[test]
    fn files_older_than_max_age_are_removed_at_the_switch() {
        let dir = tempfile::tempdir().unwrap();
        for d in 1..=10 {
            fs::write(
                dir.path()
                    .join(file_name("postgate-", day(2026, 1, d), ".log")),
                "x\n",
            )
            .unwrap();
        }
        // Another series and strangers in the same directory are left alone.
        fs::write(dir.path().join("accounting-2026-01-01.jsonl"), "{}\n").unwrap();
        fs::write(dir.path().join("postgate-notes.log"), "mine\n").unwrap();
        let (now, clock) = clock(at(2026, 1, 10, 12, 0, 0));
        let keep_3 = Retention {
            max_age_days: 3,
            max_size: 0,
        };
        let mut f = DailyFile::with_clock(dir.path(), "postgate-", ".log", keep_3, clock).unwrap();
        // At start: today and the two days before.
        let kept: Vec<NaiveDate> = series(dir.path(), "postgate-", ".log")
            .unwrap()
            .into_iter()
            .map(|s| s.0)
            .collect();
        assert_eq!(kept, [day(2026, 1, 8), day(2026, 1, 9), day(2026, 1, 10)]);
        // Two days on (one day without a file): the 8th and 9th go.
        *now.lock().unwrap() = at(2026, 1, 12, 0, 0, 1);
        f.write_all(b"new day\n").unwrap();
        assert_eq!(
            names(dir.path()),
            [
                "accounting-2026-01-01.jsonl",
                "postgate-2026-01-10.log",
                "postgate-2026-01-12.log",
                "postgate-notes.log",
            ]
        );
    }

    #[test]
    fn total_size_is_capped_by_removing_the_oldest() {
        let dir = tempfile::tempdir().unwrap();
        for d in 1..=4 {
            let name = file_name("postgate-", day(2026, 2, d), ".log");
            fs::write(dir.path().join(name), vec![b'x'; 100]).unwrap();
        }
        let (now, clock) = clock(at(2026, 2, 4, 9, 0, 0));
        let cap = Retention {
            max_age_days: 0,
            max_size: 250,
        };
        // At start, today's 100 and the 3rd's 100 fit; the 1st and 2nd go.
        let mut f = DailyFile::with_clock(dir.path(), "postgate-", ".log", cap, clock).unwrap();
        assert_eq!(
            names(dir.path()),
            ["postgate-2026-02-03.log", "postgate-2026-02-04.log"]
        );
        // Past the cap during the day: the older file goes at once.
        f.write_all(&[b'y'; 60]).unwrap();
        assert_eq!(names(dir.path()), ["postgate-2026-02-04.log"]);
        // Today's file alone over the cap is kept, and written to.
        f.write_all(&[b'z'; 200]).unwrap();
        assert_eq!(fs::metadata(f.path(day(2026, 2, 4))).unwrap().len(), 360);
        // At the switch it is the oldest, and goes.
        *now.lock().unwrap() = at(2026, 2, 5, 0, 0, 0);
        f.write_all(b"next\n").unwrap();
        assert_eq!(names(dir.path()), ["postgate-2026-02-05.log"]);
    }

    #[test]
    fn make_writer_writes_each_event_through_the_shared_file() {
        use tracing_subscriber::fmt::MakeWriter;
        let dir = tempfile::tempdir().unwrap();
        let (_, clock) = clock(at(2026, 5, 1, 10, 0, 0));
        let shared = SharedDailyFile::new(
            DailyFile::with_clock(dir.path(), "postgate-", ".log", KEEP_ALL, clock).unwrap(),
        );
        shared.make_writer().write_all(b"one\n").unwrap();
        shared.clone().make_writer().write_all(b"two\n").unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("postgate-2026-05-01.log")).unwrap(),
            "one\ntwo\n"
        );
    }

    #[test]
    fn an_unwritable_directory_fails_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        fs::write(&file, "").unwrap();
        let e = DailyFile::new(file.join("logs"), "postgate-", ".log", KEEP_ALL).unwrap_err();
        assert!(e.to_string().contains("cannot create"), "{e}");
    }
}
