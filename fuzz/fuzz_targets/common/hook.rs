//! The panic hook every target that reaches `postgate_mime::parse_message`
//! installs in place of libfuzzer-sys's own (which aborts on any panic, even
//! one that is caught).
//!
//! mail-parser can panic on hostile input, and `parse_message` (and
//! `sent_day`) catch that and fall back to the header alone
//! (crates/proto/mime/src/parse.rs): such a panic is handled, not a finding.
//! Every other panic, in the target or in any server task, aborts the
//! process, which libFuzzer reports as a crash with the input that caused it.

use std::sync::Once;

static HOOK: Once = Once::new();

/// Installs the hook (once per process).
pub fn install() {
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let caught = info
                .location()
                .is_some_and(|l| l.file().contains("/mail-parser-"));
            if !caught {
                eprintln!("{info}");
                std::process::abort();
            }
        }));
    });
}
