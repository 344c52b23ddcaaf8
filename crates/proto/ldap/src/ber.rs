//! The two responses a search sends most, SearchResultEntry and a
//! SearchResultDone without controls, encoded straight into the output
//! buffer (RFC 4511 §4.5.2, §4.1.9; BER definite lengths, X.690 §8.1.3).
//!
//! ldap3_proto's encoder first builds a tree of tagged structures, one
//! allocation per element, then writes it out: most of the cost of sending
//! an entry. The bytes here are the same (tests compare them with the
//! codec's).
use bytes::{BufMut, BytesMut};

/// Octets of a definite length (X.690 §8.1.3.4, §8.1.3.5: short form below
/// 128, else the fewest octets that hold it).
fn length_len(n: usize) -> usize {
    if n < 0x80 {
        1
    } else {
        1 + (usize::BITS - n.leading_zeros()).div_ceil(8) as usize
    }
}

/// Octets of a tag-length-value whose value has `n` octets.
fn tlv_len(n: usize) -> usize {
    1 + length_len(n) + n
}

fn put_header(out: &mut BytesMut, tag: u8, n: usize) {
    out.put_u8(tag);
    if n < 0x80 {
        out.put_u8(n as u8);
    } else {
        let k = length_len(n) - 1;
        out.put_u8(0x80 | k as u8);
        for i in (0..k).rev() {
            out.put_u8((n >> (8 * i)) as u8);
        }
    }
}

/// The content octets of an INTEGER (X.690 §8.3: two's complement, fewest
/// octets).
fn integer(v: i64) -> ([u8; 8], usize) {
    let bytes = v.to_be_bytes();
    let mut start = 0;
    while start < 7 {
        let (b, next) = (bytes[start], bytes[start + 1]);
        if (b == 0 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    (bytes, start)
}

fn put_integer(out: &mut BytesMut, tag: u8, v: i64) {
    let (bytes, start) = integer(v);
    put_header(out, tag, 8 - start);
    out.put_slice(&bytes[start..]);
}

fn integer_len(v: i64) -> usize {
    tlv_len(8 - integer(v).1)
}

fn put_octets(out: &mut BytesMut, tag: u8, v: &[u8]) {
    put_header(out, tag, v.len());
    out.put_slice(v);
}

/// One attribute of an entry: its description and values.
pub type EntryAttribute<'a, V> = (&'a str, &'a [V]);

/// Appends a SearchResultEntry (RFC 4511 §4.5.2) for message `msgid`.
/// `attributes` are sent in order; an empty value list is what typesOnly
/// sends. Values are the directory's strings, sent as their UTF-8 octets.
pub fn encode_entry<V: AsRef<str>>(
    msgid: i32,
    dn: &str,
    attributes: &[EntryAttribute<'_, V>],
    out: &mut BytesMut,
) {
    // PartialAttribute ::= SEQUENCE { type, vals SET OF value }
    let vals_len = |vals: &[V]| {
        vals.iter()
            .map(|v| tlv_len(v.as_ref().len()))
            .sum::<usize>()
    };
    let attr_len = |(name, vals): &EntryAttribute<'_, V>| {
        tlv_len(tlv_len(name.len()) + tlv_len(vals_len(vals)))
    };
    let attrs_len: usize = attributes.iter().map(attr_len).sum();
    let op_len = tlv_len(dn.len()) + tlv_len(attrs_len);
    let msg_len = integer_len(msgid.into()) + tlv_len(op_len);
    out.reserve(tlv_len(msg_len));
    put_header(out, 0x30, msg_len);
    put_integer(out, 0x02, msgid.into());
    put_header(out, 0x64, op_len); // [APPLICATION 4]
    put_octets(out, 0x04, dn.as_bytes());
    put_header(out, 0x30, attrs_len);
    for (name, vals) in attributes {
        let set_len = vals_len(vals);
        put_header(out, 0x30, tlv_len(name.len()) + tlv_len(set_len));
        put_octets(out, 0x04, name.as_bytes());
        put_header(out, 0x31, set_len);
        for v in vals.iter() {
            put_octets(out, 0x04, v.as_ref().as_bytes());
        }
    }
}

/// Appends a SearchResultDone (RFC 4511 §4.5.2, an LDAPResult under
/// [APPLICATION 5]) without referral or controls.
pub fn encode_done(msgid: i32, code: i64, matched_dn: &str, message: &str, out: &mut BytesMut) {
    let op_len = integer_len(code) + tlv_len(matched_dn.len()) + tlv_len(message.len());
    let msg_len = integer_len(msgid.into()) + tlv_len(op_len);
    out.reserve(tlv_len(msg_len));
    put_header(out, 0x30, msg_len);
    put_integer(out, 0x02, msgid.into());
    put_header(out, 0x65, op_len); // [APPLICATION 5]
    put_integer(out, 0x0a, code); // ENUMERATED
    put_octets(out, 0x04, matched_dn.as_bytes());
    put_octets(out, 0x04, message.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use ldap3_proto::proto::{
        LdapMsg, LdapOp, LdapPartialAttribute, LdapResult, LdapResultCode, LdapSearchResultEntry,
    };

    fn codec(msg: LdapMsg) -> Vec<u8> {
        let mut out = BytesMut::new();
        crate::encode(msg, &mut out).unwrap();
        out.to_vec()
    }

    #[test]
    fn an_entry_is_the_codecs_bytes() {
        let long = "x".repeat(70_000);
        let many: Vec<String> = (0..300).map(|i| format!("value number {i}")).collect();
        type Case<'a> = (i32, String, Vec<(&'a str, Vec<String>)>);
        let cases: Vec<Case> = vec![
            (
                2,
                "uid=user1,dc=example,dc=test".into(),
                vec![
                    ("cn", vec!["User 1".into()]),
                    ("mail", vec!["user1@example.test".into()]),
                ],
            ),
            (0, String::new(), vec![]),
            (127, "cn=a".into(), vec![("objectClass", vec![])]),
            (
                128,
                "cn=b".into(),
                vec![("description", vec![long.clone()])],
            ),
            (65_535, "cn=c".into(), vec![("member", many.clone())]),
            (i32::MAX, "cn=d".into(), vec![("cn", vec![String::new()])]),
            (-1, "cn=e".into(), vec![("cn", vec!["é".into()])]),
            (
                0x80_00,
                "x".repeat(200),
                vec![("a", vec!["b".repeat(127)]), ("c", vec!["d".repeat(128)])],
            ),
        ];
        for (msgid, dn, attrs) in cases {
            let ours = {
                let list: Vec<(&str, &[String])> =
                    attrs.iter().map(|(n, v)| (*n, v.as_slice())).collect();
                let mut out = BytesMut::new();
                encode_entry(msgid, &dn, &list, &mut out);
                out.to_vec()
            };
            let theirs = codec(LdapMsg {
                msgid,
                op: LdapOp::SearchResultEntry(LdapSearchResultEntry {
                    dn: dn.clone(),
                    attributes: attrs
                        .iter()
                        .map(|(n, v)| LdapPartialAttribute {
                            atype: n.to_string(),
                            vals: v.iter().map(|s| s.as_bytes().to_vec()).collect(),
                        })
                        .collect(),
                }),
                ctrl: Vec::new(),
            });
            assert_eq!(ours, theirs, "msgid {msgid}, dn {} octets", dn.len());
        }
    }

    #[test]
    fn a_done_is_the_codecs_bytes() {
        let long = "m".repeat(300);
        for (msgid, code, matched, message) in [
            (2, LdapResultCode::Success, "", ""),
            (300, LdapResultCode::SizeLimitExceeded, "", long.as_str()),
            (
                7,
                LdapResultCode::NoSuchObject,
                "dc=example,dc=test",
                "no such entry",
            ),
            (1, LdapResultCode::Other, "", ""),
        ] {
            let mut ours = BytesMut::new();
            encode_done(msgid, code.clone() as i64, matched, message, &mut ours);
            let theirs = codec(LdapMsg {
                msgid,
                op: LdapOp::SearchResultDone(LdapResult {
                    code,
                    matcheddn: matched.into(),
                    message: message.into(),
                    referral: Vec::new(),
                }),
                ctrl: Vec::new(),
            });
            assert_eq!(ours.to_vec(), theirs, "msgid {msgid}");
        }
    }
}
