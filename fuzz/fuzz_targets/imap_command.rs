//! The IMAP command grammar as a session parses what a client sends
//! (`postgate_imap::rewrite`, then imap-codec): the input is framed into
//! commands as the session frames it (lines, and the literals they announce,
//! `{n}`, `{n+}`, `~{n}`), each command's tag and name taken, then prepared
//! (LIST/LSUB and LIST-EXTENDED, ID, SEARCH RETURN, SEARCHRES `$` against no
//! saved result, an empty one and a real one, UTF-8 quoted strings) and
//! decoded by [`rewrite::decode`]; mailbox names of LIST commands are read
//! back as the session reads them. Nothing may panic or loop.
#![no_main]
use libfuzzer_sys::fuzz_target;
use postgate_imap::names;
use postgate_imap::rewrite::{self, Prepared, Saved};

/// Commands parsed per input.
const MAX_COMMANDS: usize = 32;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    for _ in 0..MAX_COMMANDS {
        if rest.is_empty() {
            break;
        }
        let (frame, after) = frame(rest);
        rest = after;
        command(&frame);
    }
});

/// One command as `Session::read_command` frames it: a line, and while the
/// line ends in a literal announcement, the literal's octets and the next
/// line. At the end of the input the command is cut short, as when the
/// client closes.
fn frame(mut input: &[u8]) -> (Vec<u8>, &[u8]) {
    let mut bytes = Vec::new();
    loop {
        let line_end = input
            .iter()
            .position(|&b| b == b'\n')
            .map_or(input.len(), |i| i + 1);
        let line = &input[..line_end];
        bytes.extend_from_slice(line);
        input = &input[line_end..];
        let Some(lit) = rewrite::literal_at_end(line) else {
            return (bytes, input);
        };
        assert!(
            lit.marker_len <= line.len(),
            "literal marker longer than the line"
        );
        let n = lit.len.min(input.len());
        bytes.extend_from_slice(&input[..n]);
        input = &input[n..];
        if input.is_empty() {
            return (bytes, input);
        }
    }
}

fn command(bytes: &[u8]) {
    let _ = rewrite::tag_of(bytes);
    let _ = rewrite::command_name(bytes);
    // The saved result of SEARCHRES (RFC 5182) and the mailbox view it is
    // turned into sequence numbers against.
    let view = [1, 2, 3, 5, 8, 13, 21];
    let saved = [
        None,
        Some(Saved {
            uids: &[],
            view: &view,
        }),
        Some(Saved {
            uids: &[2, 3, 5, 21, 99],
            view: &view,
        }),
    ];
    for s in saved {
        match rewrite::prepare(bytes, s) {
            Ok(Prepared::List(list)) => {
                for p in list.patterns.iter().chain([&list.reference]) {
                    let _ = names::from_wire(p);
                    let _ = names::from_wire_utf8(p);
                }
            }
            Ok(
                Prepared::Id
                | Prepared::Unauthenticate
                | Prepared::MultiAppend { .. }
                | Prepared::Acl { .. }
                | Prepared::Url { .. }
                | Prepared::Metadata(_)
                | Prepared::Notify(_)
                | Prepared::CancelUpdate(_),
            )
            | Err(_) => {}
            Ok(Prepared::Command { bytes, .. }) => {
                if let Ok(cmd) = rewrite::decode(&bytes) {
                    let _ = cmd.body.name();
                }
            }
        }
    }
}
