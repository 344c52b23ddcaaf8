//! UTF-7 (RFC 2152), decoded here rather than by mail-parser.
//!
//! mail-parser 0.11's UTF-7 decoder drops the character that ends a base64 run
//! when it is not `-` (RFC 2152: only `-` is absorbed) and loses a run still open
//! at the end of the input, so "Grüße 日本 €" came out as "Grüße 日本€" or
//! "Grüße 日本". Until a fixed release runs on our compiler, UTF-7 text goes
//! through [`decode`], and the RFC 2047 / RFC 2231 words that carry it through
//! [`decode_words`] and [`decode_rfc2231`].
use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::decoders::quoted_printable::quoted_printable_decode;

/// Whether a charset label names UTF-7 (RFC 2152; "csUTF7" is its IANA alias).
pub fn is_utf7(charset: &str) -> bool {
    let c = charset.trim().trim_matches('"').to_ascii_lowercase();
    matches!(
        c.as_str(),
        "utf-7" | "utf7" | "csutf7" | "unicode-1-1-utf-7"
    )
}

fn b64_value(b: u8) -> Option<u32> {
    Some(match b {
        b'A'..=b'Z' => b - b'A',
        b'a'..=b'z' => b - b'a' + 26,
        b'0'..=b'9' => b - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    } as u32)
}

/// Decodes UTF-7 (RFC 2152 §"UTF-7 Definition"). Malformed input yields
/// U+FFFD where it breaks, never a panic.
///
/// ```
/// assert_eq!(postgate_mime::utf7::decode(b"Gr+APwA3w-e +ZeVnLA +IKw"), "Grüße 日本 €");
/// assert_eq!(postgate_mime::utf7::decode(b"1 +- 1"), "1 + 1");
/// ```
pub fn decode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut units: Vec<u16> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        i += 1;
        if b != b'+' {
            out.push(b as char);
            continue;
        }
        // "+-" is a literal plus.
        if bytes.get(i) == Some(&b'-') {
            out.push('+');
            i += 1;
            continue;
        }
        let (mut acc, mut bits) = (0u32, 0u32);
        while let Some(v) = bytes.get(i).and_then(|&c| b64_value(c)) {
            acc = (acc << 6) | v;
            bits += 6;
            if bits >= 16 {
                bits -= 16;
                units.push((acc >> bits) as u16);
                acc &= (1 << bits) - 1;
            }
            i += 1;
        }
        out.extend(char::decode_utf16(units.drain(..)).map(|r| r.unwrap_or('\u{FFFD}')));
        // RFC 2152: a "-" ending the run is absorbed; any other character is kept.
        if bytes.get(i) == Some(&b'-') {
            i += 1;
        }
    }
    out
}

/// Decodes bytes in `charset`: UTF-7 here, everything else by mail-parser's
/// decoders, unknown charsets as UTF-8 with replacement characters.
pub fn decode_charset(charset: &str, bytes: &[u8]) -> String {
    let label = charset.split('*').next().unwrap_or(charset).trim();
    if is_utf7(label) {
        return decode(bytes);
    }
    match charset_decoder(label.as_bytes()) {
        Some(f) => f(bytes),
        None => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// Decodes an unstructured header value with RFC 2047 encoded words. Linear
/// white space between two adjacent encoded words is dropped (RFC 2047 §6.2).
pub fn decode_words(raw: &str) -> String {
    let mut out = String::new();
    let mut rest = raw;
    let mut pending_space = String::new();
    let mut last_was_word = false;
    while !rest.is_empty() {
        if let Some((word, after)) = encoded_word(rest) {
            if !last_was_word {
                out.push_str(&pending_space);
            }
            pending_space.clear();
            out.push_str(&word);
            last_was_word = true;
            rest = after;
            continue;
        }
        let c = rest.chars().next().unwrap_or(' ');
        rest = &rest[c.len_utf8()..];
        if c == ' ' || c == '\t' || c == '\r' || c == '\n' {
            if c == ' ' || c == '\t' {
                pending_space.push(c);
            }
            continue;
        }
        out.push_str(&pending_space);
        pending_space.clear();
        out.push(c);
        last_was_word = false;
    }
    out.push_str(&pending_space);
    out.trim().to_string()
}

/// One encoded word at the start of `s`: `=?charset?B|Q?text?=` (RFC 2047 §2).
fn encoded_word(s: &str) -> Option<(String, &str)> {
    let body = s.strip_prefix("=?")?;
    let (charset, body) = body.split_once('?')?;
    let (enc, body) = body.split_once('?')?;
    let end = body.find("?=")?;
    let (text, after) = (&body[..end], &body[end + 2..]);
    if charset.is_empty() || text.contains(' ') {
        return None;
    }
    let bytes = match enc {
        "B" | "b" => base64_decode(text.as_bytes())?,
        "Q" | "q" => quoted_printable_decode(text.replace('_', " ").as_bytes())?,
        _ => return None,
    };
    Some((decode_charset(charset, &bytes), after))
}

/// Decodes an RFC 2231 extended value `charset'language'percent-encoded`.
pub fn decode_rfc2231(value: &str) -> Option<String> {
    let mut parts = value.splitn(3, '\'');
    let (charset, _lang, encoded) = (parts.next()?, parts.next()?, parts.next()?);
    let mut bytes = Vec::with_capacity(encoded.len());
    let raw = encoded.as_bytes();
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%'
            && let (Some(h), Some(l)) = (
                raw.get(i + 1).and_then(|c| (*c as char).to_digit(16)),
                raw.get(i + 2).and_then(|c| (*c as char).to_digit(16)),
            )
        {
            bytes.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        bytes.push(raw[i]);
        i += 1;
    }
    Some(decode_charset(charset, &bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2152_examples() {
        // The examples of RFC 2152.
        assert_eq!(decode(b"A+ImIDkQ."), "A\u{2262}\u{0391}.");
        assert_eq!(decode(b"Hi Mom -+Jjo--!"), "Hi Mom -\u{263A}-!");
        assert_eq!(decode(b"+ZeVnLIqe-"), "日本語");
        assert_eq!(decode(b"+AGEAYgBj"), "abc");
        assert_eq!(decode(b"broken +"), "broken ");
    }

    #[test]
    fn words() {
        assert_eq!(decode_words("=?utf-7?Q?Gr=2BAPwA3w-e?= x"), "Grüße x");
        assert_eq!(decode_words("=?utf-8?q?a?= =?utf-8?q?b?="), "ab");
        assert_eq!(
            decode_words("plain  =?iso-8859-1?q?caf=E9?= end"),
            "plain  café end"
        );
        assert_eq!(
            decode_rfc2231("utf-7''Gr%2BAPwA3w-e.txt").as_deref(),
            Some("Grüße.txt")
        );
        assert_eq!(
            decode_rfc2231("iso-8859-1'fr'caf%E9.txt").as_deref(),
            Some("café.txt")
        );
    }
}
