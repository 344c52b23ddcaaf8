//! FETCH BODY and BODYSTRUCTURE (RFC 3501 §7.4.2, RFC 9051 §7.5.2): the MIME
//! tree of [`crate::mime`] written as an IMAP `body`.
//!
//! BODY is the non-extensible form; BODYSTRUCTURE adds the extension data
//! (MD5, disposition, language, location for single parts; parameters,
//! disposition, language, location for multiparts). Where the RFCs leave a
//! choice, the output is Dovecot 2.3's (`src/lib-imap/imap-bodystructure.c`):
//!
//! - Type, subtype, parameter names and values are sent as written, not
//!   case-folded; message/rfc822 parts are written `"message" "rfc822"`.
//! - A part without `Content-Type` is `"text" "plain"`, and every text part
//!   gets `("charset" "us-ascii")` appended to its parameters if it has no
//!   charset (RFC 2045 §5.2); other parts without parameters get NIL.
//! - Encoding is `"7bit"` when absent (RFC 2045 §6.1).
//! - A multipart with no body parts is written with one empty text/plain
//!   part, since the grammar needs at least one.
//! - A message/rfc822 or multipart part that could not be divided (nesting
//!   limit, or `Content-Type: multipart` without subtype) is
//!   `"application" "octet-stream"`.
//! - Sizes are the body octets as stored (Dovecot reports them after its
//!   LF→CRLF conversion; for messages stored with CRLF both agree). Line
//!   counts count LF octets.

use crate::envelope::{envelope, nstring_nolf};
use crate::mime::{Param, Part, Structure};
use crate::wire;

const EMPTY_BODY: &[u8] = b"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)";
const EMPTY_BODYSTRUCTURE: &[u8] =
    b"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)";

/// Appends the FETCH BODY value of the message parsed into `root` from `raw`,
/// parenthesised.
///
/// ```
/// let raw = b"Subject: x\r\n\r\nhello\r\n";
/// let root = postgate_imap_proto::mime::parse(raw);
/// let mut out = Vec::new();
/// postgate_imap_proto::bodystructure::body(&mut out, raw, &root);
/// assert_eq!(out, b"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 7 1)");
/// ```
pub fn body(out: &mut Vec<u8>, raw: &[u8], root: &Part) {
    out.push(b'(');
    write_part(out, raw, root, false);
    out.push(b')');
}

/// Appends the FETCH BODYSTRUCTURE value of the message parsed into `root`
/// from `raw`, parenthesised.
///
/// ```
/// let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nhi\r\n--b--\r\n";
/// let root = postgate_imap_proto::mime::parse(raw);
/// let mut out = Vec::new();
/// postgate_imap_proto::bodystructure::bodystructure(&mut out, raw, &root);
/// assert_eq!(
///     String::from_utf8(out).unwrap(),
///     "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 2 0 NIL NIL NIL NIL) \
///      \"mixed\" (\"boundary\" \"b\") NIL NIL NIL)"
/// );
/// ```
pub fn bodystructure(out: &mut Vec<u8>, raw: &[u8], root: &Part) {
    out.push(b'(');
    write_part(out, raw, root, true);
    out.push(b')');
}

/// Writes a `body` without its outer parentheses.
fn write_part(out: &mut Vec<u8>, raw: &[u8], part: &Part, extended: bool) {
    match &part.structure {
        Structure::Multipart { parts, .. } => {
            // RFC 3501 body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart]
            if parts.is_empty() {
                out.extend_from_slice(if extended {
                    EMPTY_BODYSTRUCTURE
                } else {
                    EMPTY_BODY
                });
            }
            for child in parts {
                out.push(b'(');
                write_part(out, raw, child, extended);
                out.push(b')');
            }
            out.push(b' ');
            wire::string(out, part.media_type.as_ref().map_or(&b""[..], |m| &m.sub));
            if extended {
                // body-ext-mpart = body-fld-param [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc]]]
                out.push(b' ');
                write_params(out, &part.params, false);
                write_common_ext(out, part);
            }
        }
        Structure::Message(_) | Structure::Single => write_single(out, raw, part, extended),
    }
}

/// RFC 3501 body-type-1part: body-type-basic / body-type-msg / body-type-text.
fn write_single(out: &mut Vec<u8>, raw: &[u8], part: &Part, extended: bool) {
    let text;
    if let Structure::Message(_) = part.structure {
        out.extend_from_slice(b"\"message\" \"rfc822\"");
        text = false;
    } else if part.is_opaque() {
        out.extend_from_slice(b"\"application\" \"octet-stream\"");
        text = false;
    } else if let Some(m) = &part.media_type {
        wire::string(out, &m.top);
        out.push(b' ');
        wire::string(out, &m.sub);
        text = m.top.eq_ignore_ascii_case(b"text");
    } else {
        out.extend_from_slice(b"\"text\" \"plain\""); // RFC 2045 §5.2
        text = true;
    }
    // body-fields = body-fld-param SP body-fld-id SP body-fld-desc SP body-fld-enc SP body-fld-octets
    out.push(b' ');
    write_params(out, &part.params, text);
    out.push(b' ');
    nstring_nolf(out, part.id.as_deref());
    out.push(b' ');
    nstring_nolf(out, part.description.as_deref());
    out.push(b' ');
    match &part.encoding {
        Some(e) => wire::string(out, e),
        None => out.extend_from_slice(b"\"7bit\""),
    }
    out.push(b' ');
    out.extend_from_slice(part.size().to_string().as_bytes());
    if text {
        // body-type-text: SP body-fld-lines
        out.push(b' ');
        out.extend_from_slice(part.lines.to_string().as_bytes());
    } else if let Structure::Message(inner) = &part.structure {
        // body-type-msg: SP envelope SP body SP body-fld-lines
        out.push(b' ');
        envelope(out, raw, inner.header.clone());
        out.extend_from_slice(b" (");
        write_part(out, raw, inner, extended);
        out.extend_from_slice(b") ");
        out.extend_from_slice(part.lines.to_string().as_bytes());
    }
    if extended {
        // body-ext-1part = body-fld-md5 [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc]]]
        out.push(b' ');
        nstring_nolf(out, part.md5.as_deref());
        write_common_ext(out, part);
    }
}

/// body-fld-param: NIL, or `(name value …)`; text parts get a default
/// charset (RFC 2045 §5.2) when they have none.
fn write_params(out: &mut Vec<u8>, params: &[Param], default_charset: bool) {
    if params.is_empty() && !default_charset {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    let mut seen_charset = false;
    for (i, p) in params.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        seen_charset |= p.name.eq_ignore_ascii_case(b"charset");
        wire::string(out, &p.name);
        out.push(b' ');
        wire::string(out, &p.value);
    }
    if default_charset && !seen_charset {
        if !params.is_empty() {
            out.push(b' ');
        }
        out.extend_from_slice(b"\"charset\" \"us-ascii\"");
    }
    out.push(b')');
}

/// ` body-fld-dsp body-fld-lang body-fld-loc`.
fn write_common_ext(out: &mut Vec<u8>, part: &Part) {
    out.push(b' ');
    match &part.disposition {
        Some(d) => {
            out.push(b'(');
            wire::string(out, &d.value);
            out.push(b' ');
            write_params(out, &d.params, false);
            out.push(b')');
        }
        None => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    if part.language.is_empty() {
        out.extend_from_slice(b"NIL");
    } else {
        out.push(b'(');
        for (i, l) in part.language.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            wire::string(out, l);
        }
        out.push(b')');
    }
    out.push(b' ');
    nstring_nolf(out, part.location.as_deref());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mime::parse;

    /// Messages are written with LF for readability and stored with CRLF,
    /// as Dovecot reports sizes after converting LF to CRLF.
    fn crlf(s: &str) -> Vec<u8> {
        s.replace('\n', "\r\n").into_bytes()
    }

    fn both(msg: &str) -> (String, String) {
        let raw = crlf(msg);
        let root = parse(&raw);
        let (mut b, mut bs) = (Vec::new(), Vec::new());
        body(&mut b, &raw, &root);
        bodystructure(&mut bs, &raw, &root);
        (
            String::from_utf8_lossy(&b).into_owned(),
            String::from_utf8_lossy(&bs).into_owned(),
        )
    }

    fn check(msg: &str, want_body: &str, want_bs: &str) {
        let (b, bs) = both(msg);
        assert_eq!(bs, format!("({want_bs})"));
        assert_eq!(b, format!("({want_body})"));
    }

    // The cases of Dovecot's test-imap-bodystructure.c.

    #[test]
    fn dovecot_text_plain() {
        check(
            "From: user@domain.org\nDate: Sat, 24 Mar 2017 23:00:00 +0200\nMime-Version: 1.0\n\
Content-Type: text/plain; charset=us-ascii\n\nbody\n",
            "\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 6 1",
            "\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 6 1 NIL NIL NIL NIL",
        );
        check(
            "From: user@domain.org\nMime-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\
Content-Transfer-Encoding: 8bit\n\nbody\n\n",
            "\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"8bit\" 8 2",
            "\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"8bit\" 8 2 NIL NIL NIL NIL",
        );
    }

    #[test]
    fn dovecot_multipart_folded_boundary() {
        check(
            "From: user@domain.org\nMime-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"foo\n bar\"\n\n\
--foo bar\nContent-Type: text/x-myown; charset=us-ascii\n\nhello\n\n--foo bar--\n\n",
            "(\"text\" \"x-myown\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 7 1) \"mixed\"",
            "(\"text\" \"x-myown\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 7 1 NIL NIL NIL NIL) \"mixed\" \
(\"boundary\" \"foo bar\") NIL NIL NIL",
        );
    }

    #[test]
    fn dovecot_message_rfc822() {
        let msg = "From: user@domain.org\nDate: Sat, 24 Mar 2017 23:00:00 +0200\nMime-Version: 1.0\n\
Content-Type: multipart/mixed; boundary=\"foo bar\"\n\n--foo bar\nContent-Type: text/plain; charset=us-ascii\n\
Content-ID: <A.frop.example.com>\nContent-Description: Container message\n\nSee attached...\n\n\
--foo bar\nContent-Type: message/rfc822\nContent-ID: <B.frop.example.com>\nContent-Description: Forwarded\n\n\
From: user@domain.org\nDate: Sat, 24 Mar 2017 23:00:00 +0200\nMime-Version: 1.0\n\
Content-Type: text/plain; charset=us-ascii\n\nbody\n\n--foo bar--\n";
        let env = "(\"Sat, 24 Mar 2017 23:00:00 +0200\" NIL ((NIL NIL \"user\" \"domain.org\")) \
((NIL NIL \"user\" \"domain.org\")) ((NIL NIL \"user\" \"domain.org\")) NIL NIL NIL NIL NIL)";
        check(
            msg,
            &format!(
                "(\"text\" \"plain\" (\"charset\" \"us-ascii\") \"<A.frop.example.com>\" \"Container message\" \
\"7bit\" 17 1)(\"message\" \"rfc822\" NIL \"<B.frop.example.com>\" \"Forwarded\" \"7bit\" 133 {env} \
(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 6 1) 6) \"mixed\""
            ),
            &format!(
                "(\"text\" \"plain\" (\"charset\" \"us-ascii\") \"<A.frop.example.com>\" \"Container message\" \
\"7bit\" 17 1 NIL NIL NIL NIL)(\"message\" \"rfc822\" NIL \"<B.frop.example.com>\" \"Forwarded\" \"7bit\" 133 {env} \
(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 6 1 NIL NIL NIL NIL) 6 NIL NIL NIL NIL) \"mixed\" \
(\"boundary\" \"foo bar\") NIL NIL NIL"
            ),
        );
    }

    #[test]
    fn dovecot_extension_data() {
        let msg = "From: user@domain.org\nMime-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"foo\n bar\"\n\n\
Root MIME prologue\n\n--foo bar\nContent-Type: text/x-myown; charset=us-ascii; foo=\"quoted\\\"string\"\n\
Content-ID: <foo@example.com>\nContent-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\nContent-Disposition: inline; foo=bar\n\
Content-Description: hellodescription\nContent-Language: en, fi, se\n\
Content-Location: http://example.com/test.txt\n\nhello\n\n--foo bar\nContent-Type: message/rfc822\n\n\
From: sub@domain.org\nTo: sub-to1@domain.org, sub-to2@domain.org\nDate: Sun, 12 Aug 2012 12:34:56 +0300\n\
Subject: submsg\nContent-Type: multipart/alternative; boundary=\"sub1\"\n\nSub MIME prologue\n--sub1\n\
Content-Type: text/html\nContent-Transfer-Encoding: 8bit\n\n<p>Hello world</p>\n\n--sub1\n\
Content-Type: text/plain\nContent-Transfer-Encoding: ?invalid\n\nHello another world\n\n--sub1--\n\
Sub MIME epilogue\n\n--foo bar--\nRoot MIME epilogue\n";
        let (_, bs) = both(msg);
        assert_eq!(
            bs,
            "((\"text\" \"x-myown\" (\"charset\" \"us-ascii\" \"foo\" \"quoted\\\"string\") \"<foo@example.com>\" \
\"hellodescription\" \"7bit\" 7 1 \"Q2hlY2sgSW50ZWdyaXR5IQ==\" (\"inline\" (\"foo\" \"bar\")) (\"en\" \"fi\" \"se\") \
\"http://example.com/test.txt\")(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 412 (\"Sun, 12 Aug 2012 12:34:56 +0300\" \
\"submsg\" ((NIL NIL \"sub\" \"domain.org\")) ((NIL NIL \"sub\" \"domain.org\")) ((NIL NIL \"sub\" \"domain.org\")) \
((NIL NIL \"sub-to1\" \"domain.org\")(NIL NIL \"sub-to2\" \"domain.org\")) NIL NIL NIL NIL) ((\"text\" \"html\" \
(\"charset\" \"us-ascii\") NIL NIL \"8bit\" 20 1 NIL NIL NIL NIL)(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL \
NIL \"7bit\" 21 1 NIL NIL NIL NIL) \"alternative\" (\"boundary\" \"sub1\") NIL NIL NIL) 21 NIL NIL NIL NIL) \"mixed\" \
(\"boundary\" \"foo bar\") NIL NIL NIL)"
        );
    }

    #[test]
    fn dovecot_image_attachment() {
        let msg = "Mime-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"foo bar\"\n\n--foo bar\n\
Content-Type: text/plain; charset=us-ascii; format=\"flowed\";\n  delsp=\"no\"\nContent-Language: la\n\nLorem\n\n\
--foo bar\nContent-Type: image/png\nContent-Transfer-Encoding: base64\n\
Content-Disposition: attachment; filename=\"pigeon.png\"\n\niVBORw0KGgo=\n--foo bar--\n";
        let (b, bs) = both(msg);
        assert_eq!(
            bs,
            "((\"text\" \"plain\" (\"charset\" \"us-ascii\" \"format\" \"flowed\" \"delsp\" \"no\") NIL NIL \"7bit\" 7 1 \
NIL NIL (\"la\") NIL)(\"image\" \"png\" NIL NIL NIL \"base64\" 12 NIL (\"attachment\" (\"filename\" \"pigeon.png\")) \
NIL NIL) \"mixed\" (\"boundary\" \"foo bar\") NIL NIL NIL)"
        );
        assert_eq!(
            b,
            "((\"text\" \"plain\" (\"charset\" \"us-ascii\" \"format\" \"flowed\" \"delsp\" \"no\") NIL NIL \"7bit\" 7 1)\
(\"image\" \"png\" NIL NIL NIL \"base64\" 12) \"mixed\")"
        );
    }

    #[test]
    fn multipart_without_parts() {
        check(
            "Content-Type: multipart/mixed; boundary=\"foo\"\n\n",
            "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0) \"mixed\"",
            "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL) \"mixed\" \
(\"boundary\" \"foo\") NIL NIL NIL",
        );
        // No boundary parameter at all.
        let (_, bs) = both("Content-Type: multipart/related\n\n--x\n\nhi\n");
        assert_eq!(
            bs,
            format!(
                "({} \"related\" NIL NIL NIL NIL)",
                std::str::from_utf8(EMPTY_BODYSTRUCTURE).unwrap_or("")
            )
        );
    }

    /// imaptest's fetch-bodystructure message.
    #[test]
    fn imaptest_bodystructure() {
        let (b, _) = both(
            "From: user@domain.org\nDate: Sat, 24 Mar 2007 23:00:00 +0200\nMime-Version: 1.0\n\
Content-Type: multipart/mixed; boundary=\"foo\n bar\"\n\n--foo bar\nContent-Type: text/x-myown; charset=us-ascii\n\n\
hello\n\n--foo bar--\n",
        );
        assert_eq!(
            b,
            "((\"text\" \"x-myown\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 7 1) \"mixed\")"
        );
    }

    #[test]
    fn parts_without_content_type_and_case_as_written() {
        let (_, bs) = both("Subject: plain\n\nhi\n");
        assert_eq!(
            bs,
            "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 4 1 NIL NIL NIL NIL)"
        );
        let (b, _) = both(
            "MIME-Version: 1.0\nContent-Type: TEXT/Html; Format=Flowed\nContent-Transfer-Encoding: QUOTED-PRINTABLE\n\nx",
        );
        assert_eq!(
            b,
            "(\"TEXT\" \"Html\" (\"Format\" \"Flowed\" \"charset\" \"us-ascii\") NIL NIL \"QUOTED-PRINTABLE\" 1 0)"
        );
        let (b, _) = both("Content-Type: application/pdf\n\nx");
        assert_eq!(b, "(\"application\" \"pdf\" NIL NIL NIL \"7bit\" 1)");
        // A broken Content-Type is reported as Dovecot parsed it.
        let (b, _) = both("Content-Type: text/plain garbage\n\nx");
        assert_eq!(b, "(\"\" \"\" NIL NIL NIL \"7bit\" 1)");
        let (b, _) = both("Content-Type: multipart\n\nx");
        assert_eq!(
            b,
            "(\"application\" \"octet-stream\" NIL NIL NIL \"7bit\" 1)"
        );
    }

    #[test]
    fn digest_and_message_structure() {
        let msg = "Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: one\n\nbody one\n--d--\n";
        let (b, _) = both(msg);
        assert_eq!(
            b,
            "((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 24 (NIL \"one\" NIL NIL NIL NIL NIL NIL NIL NIL) \
(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 8 0) 2) \"digest\")"
        );
    }

    #[test]
    fn size_as_stored_and_line_counts() {
        // Bare LF stored: sizes are stored octets, lines count LFs.
        let raw = b"Subject: x\n\nab\ncd";
        let root = parse(raw);
        let mut out = Vec::new();
        body(&mut out, raw, &root);
        assert_eq!(
            out,
            b"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 5 1)"
        );
    }

    #[test]
    fn folded_values_are_unfolded() {
        let (_, bs) = both(
            "MIME-Version: 1.0\nContent-Description: two\n  lines\nContent-Location: a\n b\n\n",
        );
        assert_eq!(
            bs,
            "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL \"two  lines\" \"7bit\" 0 0 NIL NIL NIL \"a b\")"
        );
    }

    #[test]
    fn too_deep_message_is_opaque() {
        let mut msg = String::new();
        for _ in 0..120 {
            msg.push_str("Content-Type: message/rfc822\n\n");
        }
        let (b, _) = both(&msg);
        assert!(b.contains("(\"application\" \"octet-stream\" NIL NIL NIL \"7bit\" "));
        assert_eq!(b.matches("\"message\" \"rfc822\"").count(), 99);
    }
}
