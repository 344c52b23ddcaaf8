//! The string forms of IMAP responses (RFC 9051 §4.3): how a value is written
//! so that any client reads back exactly the bytes meant.

/// Appends `s` as an IMAP string: quoted when it is short 7-bit text without
/// CR, LF or NUL (RFC 9051 §4.3 `quoted`), otherwise as a literal `{n}\r\n…`.
/// Quoted specials `"` and `\` are escaped.
///
/// ```
/// let mut out = Vec::new();
/// postgate_imap_proto::wire::string(&mut out, b"a \"b\"");
/// assert_eq!(out, b"\"a \\\"b\\\"\"");
/// out.clear();
/// postgate_imap_proto::wire::string(&mut out, b"two\r\nlines");
/// assert_eq!(out, b"{10}\r\ntwo\r\nlines");
/// ```
pub fn string(out: &mut Vec<u8>, s: &[u8]) {
    if s.len() <= 1024
        && s.iter()
            .all(|&b| b.is_ascii() && b != b'\r' && b != b'\n' && b != 0)
    {
        quoted(out, s);
    } else {
        literal(out, s);
    }
}

/// Appends `s` quoted, escaping `"` and `\`. The caller guarantees there is
/// no CR, LF or NUL.
pub fn quoted(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &b in s {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// Appends `s` as a literal: `{n}\r\n` followed by the bytes, each NUL
/// written as 0x80. RFC 9051 §4.3: a literal is `*CHAR8`, which excludes
/// NUL (only BINARY's literal8 may carry one, RFC 3516 §4.2); a message or
/// header holding NUL is sent with the same length, as Dovecot does
/// (istream-nonuls).
pub fn literal(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'{');
    out.extend_from_slice(s.len().to_string().as_bytes());
    out.extend_from_slice(b"}\r\n");
    let start = out.len();
    out.extend_from_slice(s);
    if s.contains(&0) {
        for b in &mut out[start..] {
            if *b == 0 {
                *b = 0x80;
            }
        }
    }
}

/// Appends `NIL` for `None`, else the string (RFC 9051 `nstring`).
pub fn nstring(out: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        Some(s) => string(out, s),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// Appends `s` as an atom if it is one (RFC 9051 `atom`), else as a string.
pub fn astring(out: &mut Vec<u8>, s: &[u8]) {
    let is_atom = !s.is_empty()
        && s.iter().all(|&b| {
            b.is_ascii_graphic()
                && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
        });
    if is_atom {
        out.extend_from_slice(s);
    } else {
        string(out, s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_never_carries_nul() {
        let mut o = Vec::new();
        nstring(&mut o, Some(b"a\0b"));
        // RFC 9051 §4.3: CHAR8 excludes NUL; same length.
        assert_eq!(o, b"{3}\r\na\x80b");
    }

    #[test]
    fn forms() {
        let mut o = Vec::new();
        astring(&mut o, b"INBOX");
        o.push(b' ');
        astring(&mut o, b"Sent Items");
        o.push(b' ');
        nstring(&mut o, None);
        o.push(b' ');
        string(&mut o, "Grüße".as_bytes());
        assert_eq!(o, "INBOX \"Sent Items\" NIL {7}\r\nGrüße".as_bytes());
    }
}
