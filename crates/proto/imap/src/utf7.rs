//! Modified UTF-7, the form IMAP4rev1 gives mailbox names on the wire
//! (RFC 3501 §5.1.3): printable US-ASCII stands for itself, `&` is written
//! `&-`, and every other run of characters is written `&` + modified BASE64
//! of its UTF-16BE form + `-`.
//!
//! [`encode`] turns a mailbox name (UTF-8, as the store keeps it) into the
//! wire form; [`decode`] turns a name a client sent back into UTF-8, or
//! refuses it.
//!
//! Decoding is strict: it accepts exactly the strings [`encode`] produces, so
//! every mailbox has one spelling and `encode(decode(x)?) == x` always holds.
//! In particular it refuses, as RFC 3501 §5.1.3 asks or implies:
//! - characters outside printable US-ASCII (0x20–0x7e) in the encoded form;
//! - `&` not followed by `-` or by modified BASE64 closed with `-`;
//! - BASE64 that encodes a printable US-ASCII character, which "MUST NOT" be
//!   encoded (so `&ACY-` for `&` is refused);
//! - padding that an encoder would not write: a length that leaves a whole
//!   extra BASE64 character, or leftover bits that are not zero;
//! - UTF-16 that is not valid: lone or reversed surrogates, an odd number of
//!   bytes;
//! - two encoded runs next to each other (`&AOQ-&AOQ-`), which an encoder
//!   writes as one run (`&AOQA5A-`), the "unnecessary shift" Dovecot refuses too;
//! - U+0000, which [`encode`] would write as `&AAA-` but no mailbox name may
//!   hold. This is the one exception to the round trip above.

/// The modified BASE64 alphabet of RFC 3501 §5.1.3: RFC 2045's with `,` in
/// place of `/`.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/// The value of a modified BASE64 character, or `None`.
fn b64_value(b: u8) -> Option<u32> {
    match b {
        b'A'..=b'Z' => Some(u32::from(b - b'A')),
        b'a'..=b'z' => Some(u32::from(b - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(b - b'0') + 52),
        b'+' => Some(62),
        b',' => Some(63),
        _ => None,
    }
}

/// Whether `c` represents itself (RFC 3501 §5.1.3: "printable US-ASCII
/// characters, except for '&', represent themselves").
fn is_direct(c: char) -> bool {
    (' '..='~').contains(&c) && c != '&'
}

/// Encodes a mailbox name into modified UTF-7.
///
/// ```
/// use postgate_imap_proto::utf7::encode;
/// assert_eq!(encode("~peter/mail/台北/日本語"), "~peter/mail/&U,BTFw-/&ZeVnLIqe-");
/// assert_eq!(encode("Tom & Jerry"), "Tom &- Jerry");
/// ```
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 8);
    let mut run: Vec<u16> = Vec::new();
    for c in name.chars() {
        if is_direct(c) || c == '&' {
            flush(&mut out, &run);
            run.clear();
            if c == '&' {
                // RFC 3501 §5.1.3: "&" is represented by "&-".
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut units = [0u16; 2];
            run.extend_from_slice(c.encode_utf16(&mut units));
        }
    }
    flush(&mut out, &run);
    out
}

/// Writes one shifted run: `&`, the UTF-16BE bytes in modified BASE64
/// without `=` padding, `-` (RFC 3501 §5.1.3).
fn flush(out: &mut String, run: &[u16]) {
    if run.is_empty() {
        return;
    }
    out.push('&');
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &unit in run {
        acc = (acc << 16) | u32::from(unit);
        bits += 16;
        while bits >= 6 {
            bits -= 6;
            out.push(char::from(ALPHABET[((acc >> bits) & 0x3f) as usize]));
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        // The last character carries the leftover bits, zero-filled.
        out.push(char::from(ALPHABET[((acc << (6 - bits)) & 0x3f) as usize]));
    }
    out.push('-');
}

/// Decodes a modified UTF-7 mailbox name, or returns `None` if it is not in
/// the canonical form [`encode`] writes (see the module notes for what is
/// refused and why).
///
/// ```
/// use postgate_imap_proto::utf7::decode;
/// assert_eq!(decode("~peter/mail/&U,BTFw-/&ZeVnLIqe-").as_deref(), Some("~peter/mail/台北/日本語"));
/// assert_eq!(decode("&-").as_deref(), Some("&"));
/// assert_eq!(decode("&"), None);
/// ```
pub fn decode(name: &str) -> Option<String> {
    let b = name.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    // Where the last encoded run ended, to refuse a run starting right there.
    let mut run_end = None;
    while let Some(&c) = b.get(i) {
        // RFC 3501 §5.1.3: only printable US-ASCII appears in the encoded form.
        if !(0x20..=0x7e).contains(&c) {
            return None;
        }
        if c != b'&' {
            out.push(char::from(c));
            i += 1;
            continue;
        }
        if b.get(i + 1) == Some(&b'-') {
            // RFC 3501 §5.1.3: "&-" is "&".
            out.push('&');
            i += 2;
            continue;
        }
        if run_end == Some(i) {
            // Two adjacent runs: an encoder writes one.
            return None;
        }
        let start = i + 1;
        let mut end = start;
        while b.get(end).is_some_and(|&x| b64_value(x).is_some()) {
            end += 1;
        }
        // The run must be non-empty (else "&-" above) and closed by "-".
        if end == start || b.get(end) != Some(&b'-') {
            return None;
        }
        decode_run(&b[start..end], &mut out)?;
        i = end + 1;
        run_end = Some(i);
    }
    Some(out)
}

/// Decodes one run of modified BASE64 (without `&` and `-`) as UTF-16BE and
/// appends it to `out`.
fn decode_run(run: &[u8], out: &mut String) -> Option<()> {
    let mut units = Vec::with_capacity(run.len() * 6 / 16);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &ch in run {
        acc = (acc << 6) | b64_value(ch)?;
        bits += 6;
        if bits >= 16 {
            bits -= 16;
            units.push(((acc >> bits) & 0xffff) as u16);
            acc &= (1 << bits) - 1;
        }
    }
    // No padding beyond what an encoder writes: the run is exactly
    // ceil(16 * units / 6) characters long and the leftover bits are zero.
    let minimal = (units.len() * 16).div_ceil(6);
    if units.is_empty() || run.len() != minimal || acc != 0 {
        return None;
    }
    for c in char::decode_utf16(units) {
        let c = c.ok()?;
        // RFC 3501 §5.1.3: modified BASE64 "MUST NOT be used to represent
        // any printing US-ASCII character which can represent itself" (and
        // '&' has its own form). NUL is no part of any mailbox name.
        if (' '..='~').contains(&c) || c == '\0' {
            return None;
        }
        out.push(c);
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known answers: the RFC 3501 §5.1.3 example and Dovecot's examples.
    #[test]
    fn known_answers() {
        let cases = [
            ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
            ("&", "&-"),
            ("&&x&&", "&-&-x&-&-"),
            ("tietä&jä&", "tiet&AOQ-&-j&AOQ-&-"),
            ("", ""),
            ("INBOX", "INBOX"),
            ("ää", "&AOQA5A-"),
            ("€", "&IKw-"),
            ("𝄞", "&2DTdHg-"),
            ("a\tb", "a&AAk-b"),
            ("x&-y", "x&--y"),
        ];
        for (utf8, mutf7) in cases {
            assert_eq!(encode(utf8), mutf7, "encode {utf8:?}");
            assert_eq!(decode(mutf7).as_deref(), Some(utf8), "decode {mutf7:?}");
        }
    }

    #[test]
    fn refused() {
        for bad in [
            "&",                  // shift never closed
            "&Jjo",               // run not closed by "-"
            "&Jjo!",              // bad character in the run
            "&U,BTFw-&ZeVnLIqe-", // unnecessary shift between runs
            "&AOQ-&AOQ-",         // same
            "&ACY-",              // '&' encoded
            "&AEE-",              // 'A' encoded
            "&AAA-",              // NUL
            "&AOQ",               // unterminated
            "&AO-",               // 12 bits: not a whole UTF-16 unit
            "&AOR-",              // leftover bits not zero
            "&AOQA-",             // an extra character beyond the padding
            "&2DQ-",              // lone high surrogate
            "&3R4-",              // lone low surrogate
            "&3R7YNA-",           // reversed pair
            "&2DQ-&3R4-",         // a pair split over two runs
            "ä",                  // 8-bit in the encoded form
            "a\tb",               // control character in the encoded form
            "a\u{7f}",            // DEL
            "&=-",                // RFC 2045 padding is not in the alphabet
            "&AOQ=-",
            "&AOQ/-", // '/' is not in the modified alphabet
        ] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
    }

    /// Every printable ASCII character but '&' codes itself; encoding any of
    /// them, alone, in BASE64 is refused.
    #[test]
    fn printable_ascii_is_direct() {
        for b in 0x20u8..0x7f {
            let c = char::from(b);
            let s = c.to_string();
            let mut enc = String::new();
            flush(&mut enc, &[u16::from(b)]);
            assert_eq!(decode(&enc), None, "{enc}");
            if c != '&' {
                assert_eq!(encode(&s), s);
                assert_eq!(decode(&s), Some(s));
            }
        }
    }

    /// xorshift64*, enough to drive round-trip properties without a
    /// dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn pick<T: Copy>(&mut self, from: &[T]) -> T {
            from[(self.next() % from.len() as u64) as usize]
        }
    }

    /// decode(encode(s)) == s for names without NUL, including characters
    /// outside the BMP and runs of every length modulo 3.
    #[test]
    fn round_trip_from_utf8() {
        let chars = [
            'a',
            '&',
            '-',
            ' ',
            '/',
            'ä',
            '€',
            '台',
            '𝄞',
            '\u{1}',
            '\u{ffff}',
            '\u{10000}',
        ];
        let mut rng = Rng(0x1234_5678_9abc_def1);
        for _ in 0..5000 {
            let len = (rng.next() % 12) as usize;
            let s: String = (0..len).map(|_| rng.pick(&chars)).collect();
            let e = encode(&s);
            assert!(e.bytes().all(|b| (0x20..=0x7e).contains(&b)), "{e:?}");
            assert_eq!(decode(&e).as_deref(), Some(s.as_str()), "{s:?} -> {e:?}");
        }
    }

    /// Whatever decode accepts, encode writes back byte for byte: one
    /// spelling per name. Random strings over the encoded alphabet.
    #[test]
    fn decode_accepts_only_canonical() {
        let bytes = b"&-AOQAIKw2DTdHgZeV+,x& -9";
        let mut rng = Rng(0x0ddb_a11c_afe0_0001);
        let mut accepted = 0;
        for _ in 0..50_000 {
            let len = (rng.next() % 10) as usize;
            let s: String = (0..len).map(|_| char::from(rng.pick(bytes))).collect();
            if let Some(d) = decode(&s) {
                accepted += 1;
                assert_eq!(encode(&d), s, "{s:?} decoded to {d:?}");
            }
        }
        assert!(accepted > 1000);
    }
}
