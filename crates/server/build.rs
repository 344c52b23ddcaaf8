//! Link options for the release `postgate` binary that keep an idle
//! server's resident memory small (issue 15). Both only where they are
//! known to work: the x86_64 GNU/Linux target built on itself, with the
//! toolchain's own linker (rust-lld, the default there since Rust 1.90)
//! and no linker configured in its place.
//! - `--symbol-ordering-file=startup.order`: the functions run from exec
//!   until idle are placed first in .text (bench/startup_order.sh makes
//!   the list), so what startup touches is a few hundred KB of code, not
//!   64 KB fault-around windows spread over all 24 MB of it.
//! - `-z pack-relative-relocs` (DT_RELR) when the C library is glibc 2.36
//!   or newer, which reads it: the relative relocations shrink from 1.8 MB
//!   (.rela.dyn, all read at every start) to 28 KB.
use std::env;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=startup.order");
    println!("cargo:rerun-if-env-changed=POSTGATE_PLAIN_LINK");
    let target = env::var("TARGET").unwrap_or_default();
    let host = env::var("HOST").unwrap_or_default();
    let release = env::var("PROFILE").is_ok_and(|p| p == "release");
    let own_linker = env::var_os("RUSTC_LINKER").is_none()
        && !env::var("CARGO_ENCODED_RUSTFLAGS").is_ok_and(|f| f.contains("link"));
    if !release
        || target != "x86_64-unknown-linux-gnu"
        || host != target
        || !own_linker
        || env::var_os("POSTGATE_PLAIN_LINK").is_some()
    {
        return;
    }
    let order = format!(
        "{}/startup.order",
        env::var("CARGO_MANIFEST_DIR").unwrap_or_default()
    );
    if let Ok(text) = std::fs::read_to_string(&order) {
        // The names carry hashes that change with the compiler: with
        // another one the file matches nothing and idle memory goes back up.
        let made_with = text
            .lines()
            .take_while(|l| l.starts_with('#'))
            .find_map(|l| l.strip_prefix("# rustc: "))
            .unwrap_or("");
        let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
        let ours = Command::new(rustc)
            .arg("-V")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        if made_with != ours {
            println!(
                "cargo:warning=crates/server/startup.order was made with {made_with:?}, this is \
                 {ours:?}: run bench/startup_order.sh again to keep idle memory low"
            );
        }
        println!("cargo:rustc-link-arg-bin=postgate=-Wl,--symbol-ordering-file={order}");
        // Names the file has that this build lacks (a function renamed
        // since it was made) are left where they are, silently.
        println!("cargo:rustc-link-arg-bin=postgate=-Wl,--no-warn-symbol-ordering");
    }
    if glibc_at_least(2, 36) {
        println!("cargo:rustc-link-arg-bin=postgate=-Wl,-z,pack-relative-relocs");
    }
}

/// The build machine's glibc (`getconf GNU_LIBC_VERSION`: "glibc 2.36"),
/// which is the one the binary runs on when host and target are the same.
fn glibc_at_least(major: u32, minor: u32) -> bool {
    let Ok(out) = Command::new("getconf").arg("GNU_LIBC_VERSION").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(version) = text.trim().strip_prefix("glibc ") else {
        return false;
    };
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (a, b) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (a, b) >= (major, minor)
}
