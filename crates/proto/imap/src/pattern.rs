//! LIST and LSUB mailbox patterns (RFC 3501 §6.3.8, RFC 9051 §6.3.9): which
//! mailbox names a reference and a pattern with `*` and `%` select.
//!
//! [`join`] puts the reference and the pattern together into one pattern;
//! [`matches()`] tests a mailbox name against it. The matcher runs in
//! O(pattern × name) time whatever the pattern (a set of pattern positions is
//! carried along the name, no backtracking), so `*a*a*a*b` against a long
//! name costs no more than any other pattern of its length.
//!
//! Names are compared character by character, case-sensitively, except the
//! leading `INBOX` of `INBOX` itself and of its children (`INBOX/…`), which
//! RFC 3501 §5.1 makes case-insensitive. Callers pass names in their
//! canonical form, INBOX spelt `INBOX`; the pattern may spell it any way.
//! Pattern and name must also be in the same form: both UTF-8 (decode a
//! modified UTF-7 pattern with [`crate::utf7::decode`] first; wildcards are
//! printable ASCII and pass through it) or both modified UTF-7.

/// Joins a LIST reference and mailbox pattern into one pattern, by the
/// simple rule RFC 3501 §6.3.8 calls normal for a server without break-out
/// characters: "the canonical form is normally the reference name appended
/// with the mailbox name".
///
/// The one adjustment: if the reference ends with the delimiter and the
/// pattern starts with it, one delimiter is dropped (`"a/"` + `"/b"` is
/// `"a/b"`), since no level of a name is empty. A reference that does not
/// end with the delimiter is joined as is (`"foo/bar"` + `"rag/baz"` is
/// `"foo/barrag/baz"`), one of the readings RFC 3501 leaves to the server.
/// An empty reference leaves the pattern as it is.
///
/// ```
/// use postgate_imap_proto::pattern::join;
/// assert_eq!(join("~/Mail/", "%", '/'), "~/Mail/%");
/// assert_eq!(join("", "INBOX", '/'), "INBOX");
/// assert_eq!(join("a/", "/b", '/'), "a/b");
/// ```
pub fn join(reference: &str, pattern: &str, delimiter: char) -> String {
    let pattern = if reference.ends_with(delimiter) {
        pattern.strip_prefix(delimiter).unwrap_or(pattern)
    } else {
        pattern
    };
    let mut out = String::with_capacity(reference.len() + pattern.len());
    out.push_str(reference);
    out.push_str(pattern);
    out
}

/// One element of a compiled pattern.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tok {
    /// `*`: zero or more characters (RFC 3501 §6.3.8).
    Star,
    /// `%`: zero or more characters other than the delimiter.
    Percent,
    /// A character that must appear as is.
    Lit(char),
}

/// Whether `name` is selected by `pattern`, where `*` matches any run of
/// characters and `%` any run without `delimiter` (RFC 3501 §6.3.8). The
/// `INBOX` prefix of `INBOX` and `INBOX<delimiter>…` is matched
/// case-insensitively (RFC 3501 §5.1); `name` must spell it `INBOX`.
///
/// ```
/// use postgate_imap_proto::pattern::matches;
/// assert!(matches("%", "Sent", '/'));
/// assert!(!matches("%", "Lists/rust", '/'));
/// assert!(matches("*", "Lists/rust", '/'));
/// assert!(matches("inbox", "INBOX", '/'));
/// assert!(matches("Inbox/%", "INBOX/Receipts", '/'));
/// assert!(!matches("inbox", "Inbox2", '/'));
/// ```
pub fn matches(pattern: &str, name: &str, delimiter: char) -> bool {
    let toks = compile(pattern);
    // RFC 3501 §5.1: INBOX is case-insensitive; so is the INBOX level of its
    // children. Only that prefix of the name is compared without case.
    let inbox_chars = match name.strip_prefix("INBOX") {
        Some(rest) if rest.is_empty() || rest.starts_with(delimiter) => 5,
        _ => 0,
    };

    // active[i]: some way of matching the name so far ends just before
    // toks[i]. A wildcard may match nothing, so each active wildcard also
    // activates the position after it (the epsilon closure).
    let mut active = vec![false; toks.len() + 1];
    let mut next = vec![false; toks.len() + 1];
    active[0] = true;
    close(&toks, &mut active);
    for (j, c) in name.chars().enumerate() {
        next.iter_mut().for_each(|x| *x = false);
        let mut any = false;
        for (i, tok) in toks.iter().enumerate() {
            if !active[i] {
                continue;
            }
            match *tok {
                Tok::Star => next[i] = true,
                Tok::Percent if c != delimiter => next[i] = true,
                Tok::Percent => {}
                Tok::Lit(p) => {
                    let same = if j < inbox_chars {
                        p.to_ascii_uppercase() == c
                    } else {
                        p == c
                    };
                    if same {
                        next[i + 1] = true;
                    }
                }
            }
            any = true;
        }
        if !any {
            return false;
        }
        close(&toks, &mut next);
        std::mem::swap(&mut active, &mut next);
    }
    active[toks.len()]
}

/// Turns the pattern into tokens, folding runs of wildcards: `%%` is `%`,
/// and any run holding a `*` is `*` (it matches the same names, and keeps
/// the state set small).
fn compile(pattern: &str) -> Vec<Tok> {
    let mut toks: Vec<Tok> = Vec::with_capacity(pattern.len());
    for c in pattern.chars() {
        let tok = match c {
            '*' => Tok::Star,
            '%' => Tok::Percent,
            c => Tok::Lit(c),
        };
        match (toks.last_mut(), tok) {
            (Some(last @ Tok::Percent), Tok::Star) => *last = Tok::Star,
            (Some(Tok::Star), Tok::Star | Tok::Percent) | (Some(Tok::Percent), Tok::Percent) => {}
            _ => toks.push(tok),
        }
    }
    toks
}

/// Activates the position after every active wildcard, left to right, so
/// that chains of wildcards are all skipped in one pass.
fn close(toks: &[Tok], set: &mut [bool]) {
    for (i, tok) in toks.iter().enumerate() {
        if set[i] && matches!(tok, Tok::Star | Tok::Percent) {
            set[i + 1] = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known answers, the YES/NO cases of Dovecot's imap-match tests among
    /// them.
    #[test]
    fn known_answers() {
        let cases = [
            ("", "", true),
            ("a", "b", false),
            ("foo", "foo", true),
            ("foo", "foo/", false),
            ("%", "", true),
            ("%", "foo", true),
            ("%", "foo/", false),
            ("%/", "foo/", true),
            ("%", "foo/bar", false),
            ("%/%", "foo", false),
            ("%/%", "foo/", true),
            ("%/%", "foo/bar", true),
            ("%/%", "foo/bar/baz", false),
            ("foo*", "foo", true),
            ("foo*", "foo/", true),
            ("foo*", "fobo", false),
            ("*foo*", "bar/foo/", true),
            ("*foo*", "fobo", false),
            ("foo*bar", "foobar/baz", false),
            ("foo*bar", "foo/x/bar", true),
            ("foo%bar", "foo/bar", false),
            ("foo%bar", "fooxbar", true),
            ("*", "", true),
            ("*", "a/b/c", true),
            ("%*%", "a/b", true),
            ("a%%b", "ab", true),
            ("a%*b", "a/b", true),
            ("*%", "a/b", true),
            ("%*", "a/b", true),
            ("a", "A", false),
            ("Sent*", "sent", false),
            ("台北/%", "台北/日本語", true),
            ("台%", "台北/日本語", false),
        ];
        for (p, n, want) in cases {
            assert_eq!(matches(p, n, '/'), want, "{p:?} vs {n:?}");
        }
    }

    /// INBOX is case-insensitive in the pattern, and so is the INBOX level of
    /// its children; nothing else is (RFC 3501 §5.1). Dovecot's inbox cases.
    #[test]
    fn inbox() {
        let cases = [
            ("inbox", "INBOX", true),
            ("iNbOx", "INBOX", true),
            ("INBOX", "INBOX", true),
            ("i%X", "INBOX", true),
            ("%I%N%B%O%X%", "INBOX", true),
            ("i%X/foo", "INBOX/foo", true),
            ("%I%N%B%O%X%/foo", "INBOX/foo", true),
            ("inbox/%", "INBOX/Receipts", true),
            ("inbox/receipts", "INBOX/Receipts", false),
            ("in*", "INBOX", true),
            ("in*", "INBOX/x", true),
            ("in%", "INBOX/x", false),
            ("inbox", "INBOXES", false),
            ("in*", "INBOXES", false),
            ("inbox", "Inbox", false),
            ("%", "INBOX", true),
            ("*x", "INBOX", true),
            ("*X", "INBOX", true),
            ("i%X/foo", "INBX/foo", false),
        ];
        for (p, n, want) in cases {
            assert_eq!(matches(p, n, '/'), want, "{p:?} vs {n:?}");
        }
        // The INBOX prefix ends at the delimiter of the namespace in use.
        assert!(matches("inbox.%", "INBOX.Sent", '.'));
        assert!(!matches("inbox.%", "INBOX.Sent", '/'));
    }

    #[test]
    fn other_delimiters() {
        assert!(matches("%", "a/b", '.'));
        assert!(!matches("%", "a.b", '.'));
        assert!(matches("a.%", "a.b", '.'));
    }

    /// A pattern that makes a backtracking matcher exponential runs in
    /// linear time here; the test would not finish otherwise.
    #[test]
    fn no_exponential_backtracking() {
        let name = "a".repeat(10_000);
        let pattern = "*a".repeat(50) + "b";
        assert!(!matches(&pattern, &name, '/'));
        let pattern = "%a".repeat(50) + "%b";
        assert!(!matches(&pattern, &name, '/'));
        let name = name + "b";
        assert!(matches(&pattern, &name, '/'));
        assert!(matches("*a*a*a*b", &name, '/'));
    }

    #[test]
    fn joins() {
        assert_eq!(join("", "%", '/'), "%");
        assert_eq!(join("foo/", "%", '/'), "foo/%");
        assert_eq!(join("foo/bar", "rag/baz", '/'), "foo/barrag/baz");
        assert_eq!(join("foo/", "/bar", '/'), "foo/bar");
        assert_eq!(join("", "/bar", '/'), "/bar");
        assert_eq!(join("INBOX.", "*", '.'), "INBOX.*");
        // A joined pattern then matches names below the reference.
        assert!(matches(&join("inbox/", "%", '/'), "INBOX/Receipts", '/'));
    }
}
