//! A SQLite VFS that gathers the writer's WAL writes into one `pwrite` per
//! commit.
//!
//! SQLite writes each WAL frame with two calls, its 24-byte header and then
//! its page (`walWriteOneFrame` in `wal.c`), both at offsets that are not
//! page-aligned. A delivery commits some twenty frames, so the writer's
//! commit made some forty `pwrite` calls before its `fsync`. On this
//! machine's disk (timed from Python), forty-six such calls and an
//! `fdatasync` took 290 µs where one call with the same bytes and an
//! `fdatasync` took 130 µs: the calls cost more than the sync, on the single
//! thread every delivery waits for.
//!
//! This VFS is the default one (`unix`) with one change: a file opened as a
//! WAL keeps the writes that follow one another in memory and hands them to
//! the file in one call before anything that needs them there: a sync, a
//! read, a size, a truncation, a file control, the close. SQLite publishes
//! the frames of a commit (in the wal-index, where other connections find
//! them) only after its sync (`sqlite3WalFrames`), and the store syncs every
//! commit (`synchronous = FULL`), so no other connection can look for a
//! frame that is still here. A write that fails when the bytes go to the
//! file fails the sync that asked for it, so SQLite sees the commit fail, as
//! it would have seen the write fail.
//!
//! No crate does this: the Rust VFS crates (`sqlite-vfs`, `sqlite-plugin`)
//! implement a whole VFS, locks and shared memory included, to be
//! delegated nowhere; a shim over `unix` is a page of code.
#![allow(unsafe_code)]

use rusqlite::ffi;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::OnceLock;

/// The VFS's registered name.
const NAME: &CStr = c"postgate-walbuf";

/// Bytes kept before they go to the file regardless: a large transaction's
/// frames are written in steps of this size, not held all in memory.
const MAX_PENDING: usize = 4 << 20;

/// The most one call to the default VFS writes: its `unixWrite` writes at
/// most 128 KiB − 1 bytes a call (`seekAndWriteFd` masks the length with
/// 0x1ffff) and takes a call that wrote nothing for a full disk.
const MAX_WRITE: usize = 124 << 10;

#[cfg(test)]
thread_local! {
    /// Calls SQLite made on this thread to write a WAL, and calls this VFS
    /// made to the file (for the tests).
    static WRITES: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
}

/// Counts a write SQLite asked for (`asked`) or one made to the file.
fn count(asked: bool) {
    #[cfg(test)]
    WRITES.with(|w| {
        let (a, m) = w.get();
        w.set(if asked { (a + 1, m) } else { (a, m + 1) })
    });
    let _ = asked;
}

/// Registers the VFS (once) and returns its name, for
/// `Connection::open_with_flags_and_vfs`. `None` if SQLite has no default
/// VFS or refused the registration.
pub(crate) fn vfs_name() -> Option<&'static CStr> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            // SAFETY: sqlite3_vfs_find and sqlite3_vfs_register are
            // thread-safe; the VFS is leaked, so it outlives every
            // connection that uses it.
            unsafe {
                let base = ffi::sqlite3_vfs_find(std::ptr::null());
                if base.is_null() {
                    return false;
                }
                let mut vfs: ffi::sqlite3_vfs = *base;
                vfs.zName = NAME.as_ptr();
                vfs.pNext = std::ptr::null_mut();
                vfs.pAppData = base.cast();
                vfs.szOsFile = (inner_offset() + (*base).szOsFile as usize) as c_int;
                vfs.xOpen = Some(open);
                // The other entries are the default VFS's own: they read
                // nothing of the VFS structure but its sizes, which are the
                // same here except the file's.
                let vfs = Box::leak(Box::new(vfs));
                ffi::sqlite3_vfs_register(vfs, 0) == ffi::SQLITE_OK
            }
        })
        .then_some(NAME)
}

/// A WAL file: SQLite's file header (the methods below), the pending
/// writes, then the default VFS's own file.
#[repr(C)]
struct WalFile {
    base: ffi::sqlite3_file,
    /// Where the pending bytes go in the file.
    start: i64,
    pending: Vec<u8>,
}

/// Where the default VFS's file begins inside ours (aligned for it).
const fn inner_offset() -> usize {
    let size = std::mem::size_of::<WalFile>();
    let align = std::mem::align_of::<u64>();
    size.div_ceil(align) * align
}

/// The default VFS's file inside ours.
///
/// # Safety
/// `f` is a file this VFS opened as a WAL.
unsafe fn inner(f: *mut ffi::sqlite3_file) -> *mut ffi::sqlite3_file {
    // SAFETY: the caller's file has szOsFile bytes, the inner file at
    // inner_offset.
    unsafe { f.cast::<u8>().add(inner_offset()).cast() }
}

/// The default VFS's methods for the inner file.
///
/// # Safety
/// As [`inner`]; the inner file is open.
unsafe fn methods(f: *mut ffi::sqlite3_file) -> &'static ffi::sqlite3_io_methods {
    // SAFETY: an open file's pMethods is set and static in the default VFS.
    unsafe { &*(*inner(f)).pMethods }
}

/// Calls the default VFS's method `$m` on the inner file (SQLITE_IOERR if it
/// has none); `flushed` hands it the pending bytes first.
macro_rules! forward {
    ($f:expr, $m:ident $(, $arg:expr)*) => {
        match methods($f).$m {
            Some(m) => m(inner($f) $(, $arg)*),
            None => ffi::SQLITE_IOERR,
        }
    };
    (flushed $f:expr, $m:ident $(, $arg:expr)*) => {
        match flush($f) {
            ffi::SQLITE_OK => forward!($f, $m $(, $arg)*),
            rc => rc,
        }
    };
}

/// Writes the pending bytes to the file.
///
/// # Safety
/// `f` is a WAL file of this VFS, open.
unsafe fn flush(f: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: per the caller.
    unsafe {
        let w = &mut *f.cast::<WalFile>();
        if w.pending.is_empty() {
            return ffi::SQLITE_OK;
        }
        let mut rc = ffi::SQLITE_OK;
        let mut at = w.start;
        for piece in w.pending.chunks(MAX_WRITE) {
            count(false);
            rc = forward!(f, xWrite, piece.as_ptr().cast(), piece.len() as c_int, at);
            if rc != ffi::SQLITE_OK {
                break;
            }
            at += piece.len() as i64;
        }
        // The capacity stays for the next commit (at most twice
        // MAX_PENDING, which `write` never lets the bytes pass).
        w.pending.clear();
        rc
    }
}

unsafe extern "C" fn open(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    // SAFETY: SQLite gives szOsFile bytes at `file`; pAppData is the
    // default VFS (set at registration).
    unsafe {
        let base = (*vfs).pAppData.cast::<ffi::sqlite3_vfs>();
        let Some(base_open) = (*base).xOpen else {
            return ffi::SQLITE_CANTOPEN;
        };
        if flags & ffi::SQLITE_OPEN_WAL == 0 {
            // Anything but a WAL is the default VFS's file, as it is.
            return base_open(base, name, file, flags, out_flags);
        }
        (*file).pMethods = std::ptr::null();
        let rc = base_open(base, name, inner(file), flags, out_flags);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        std::ptr::addr_of_mut!((*file.cast::<WalFile>()).start).write(0);
        std::ptr::addr_of_mut!((*file.cast::<WalFile>()).pending).write(Vec::new());
        (*file).pMethods = &METHODS;
        ffi::SQLITE_OK
    }
}

/// Version 1: shared memory and memory mapping (versions 2 and 3) belong to
/// the database file; SQLite never asks them of a WAL.
static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 1,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: None,
    xShmLock: None,
    xShmBarrier: None,
    xShmUnmap: None,
    xFetch: None,
    xUnfetch: None,
};

// Every method below is called by SQLite on a file `open` set up as a WAL
// (its pMethods is METHODS), from one thread at a time.

unsafe extern "C" fn close(f: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: see above; the pending buffer is dropped once, here.
    unsafe {
        let rc = flush(f);
        let close_rc = forward!(f, xClose);
        std::ptr::drop_in_place(std::ptr::addr_of_mut!((*f.cast::<WalFile>()).pending));
        (*f).pMethods = std::ptr::null();
        if rc != ffi::SQLITE_OK { rc } else { close_rc }
    }
}

unsafe extern "C" fn read(f: *mut ffi::sqlite3_file, buf: *mut c_void, n: c_int, at: i64) -> c_int {
    // SAFETY: see above.
    unsafe { forward!(flushed f, xRead, buf, n, at) }
}

unsafe extern "C" fn write(
    f: *mut ffi::sqlite3_file,
    buf: *const c_void,
    n: c_int,
    at: i64,
) -> c_int {
    // SAFETY: see above; SQLite's buffer holds n bytes.
    unsafe {
        count(true);
        let w = &mut *f.cast::<WalFile>();
        if !w.pending.is_empty() && at != w.start + w.pending.len() as i64 {
            // Not where the last write ended (a frame written again, the
            // header after a rewind): what is pending goes first, in order.
            let rc = flush(f);
            if rc != ffi::SQLITE_OK {
                return rc;
            }
        }
        let w = &mut *f.cast::<WalFile>();
        if w.pending.is_empty() {
            w.start = at;
        }
        w.pending
            .extend_from_slice(std::slice::from_raw_parts(buf.cast::<u8>(), n as usize));
        if w.pending.len() >= MAX_PENDING {
            return flush(f);
        }
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn truncate(f: *mut ffi::sqlite3_file, size: i64) -> c_int {
    // SAFETY: see above.
    unsafe { forward!(flushed f, xTruncate, size) }
}

unsafe extern "C" fn sync(f: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    // SAFETY: see above.
    unsafe { forward!(flushed f, xSync, flags) }
}

unsafe extern "C" fn file_size(f: *mut ffi::sqlite3_file, size: *mut i64) -> c_int {
    // SAFETY: see above.
    unsafe { forward!(flushed f, xFileSize, size) }
}

unsafe extern "C" fn lock(f: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    // SAFETY: see above.
    unsafe { forward!(f, xLock, level) }
}

unsafe extern "C" fn unlock(f: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    // SAFETY: see above.
    unsafe { forward!(f, xUnlock, level) }
}

unsafe extern "C" fn check_reserved_lock(f: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    // SAFETY: see above.
    unsafe { forward!(f, xCheckReservedLock, out) }
}

unsafe extern "C" fn file_control(f: *mut ffi::sqlite3_file, op: c_int, arg: *mut c_void) -> c_int {
    // SAFETY: see above. A file control may look at or change the file
    // (a size hint, a chunk size): the pending bytes go first.
    unsafe { forward!(flushed f, xFileControl, op, arg) }
}

unsafe extern "C" fn sector_size(f: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: see above.
    unsafe { forward!(f, xSectorSize) }
}

unsafe extern "C" fn device_characteristics(f: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: see above.
    unsafe { forward!(f, xDeviceCharacteristics) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::{Connection, OpenFlags};

    /// A database in `dir` with table `t`, and the writer's connection to it
    /// through this VFS.
    fn writer(dir: &tempfile::TempDir) -> (std::path::PathBuf, Connection) {
        let path = dir.path().join("t.db");
        let vfs = vfs_name().expect("registered");
        let w = Connection::open_with_flags_and_vfs(&path, OpenFlags::default(), vfs).unwrap();
        w.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
             CREATE TABLE t (id INTEGER PRIMARY KEY, data BLOB);",
        )
        .unwrap();
        (path, w)
    }

    fn writes() -> (u64, u64) {
        WRITES.with(|w| w.get())
    }

    #[test]
    fn a_commit_is_one_write_and_other_connections_read_it() {
        let dir = tempfile::tempdir().unwrap();
        let (path, w) = writer(&dir);
        let r = Connection::open(&path).unwrap();
        for i in 0..20u8 {
            let before = writes();
            w.execute("INSERT INTO t (data) VALUES (?1)", [vec![i; 10_000]])
                .unwrap();
            let (asked, made) = (writes().0 - before.0, writes().1 - before.1);
            // Four or more frames, two calls each, then a sync: one call.
            assert!(asked >= 8, "SQLite wrote {asked} times");
            assert_eq!(made, 1, "{asked} writes asked, {made} made");
            let (n, last): (i64, Vec<u8>) = r
                .query_row(
                    "SELECT count(*), (SELECT data FROM t ORDER BY id DESC) FROM t",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap();
            assert_eq!(n, i64::from(i) + 1);
            assert_eq!(last, vec![i; 10_000]);
        }
    }

    #[test]
    fn large_transactions_are_written_in_pieces_and_read_back_whole() {
        // Past 128 KiB (what the default VFS writes in one call) and past
        // MAX_PENDING (written before the commit), in one transaction.
        let dir = tempfile::tempdir().unwrap();
        let (path, w) = writer(&dir);
        for size in [200_000usize, 6 << 20] {
            w.execute_batch("BEGIN").unwrap();
            for i in 0..3u8 {
                w.execute("INSERT INTO t (data) VALUES (?1)", [vec![i; size]])
                    .unwrap();
            }
            w.execute_batch("COMMIT").unwrap();
        }
        drop(w);
        let r = Connection::open(&path).unwrap();
        let check: String = r
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
        let rows: Vec<(i64, i64, Vec<u8>)> = r
            .prepare("SELECT id, length(data), substr(data, length(data) - 3) FROM t ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(rows.len(), 6);
        for (k, (_, len, tail)) in rows.iter().enumerate() {
            let size = if k < 3 { 200_000 } else { 6 << 20 };
            assert_eq!(*len, size as i64);
            assert_eq!(tail, &vec![(k % 3) as u8; 4]);
        }
    }
}
