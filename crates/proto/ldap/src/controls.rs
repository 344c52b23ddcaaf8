//! Controls ldap3_proto leaves undecoded or encodes loosely: Virtual List
//! View (draft-ietf-ldapext-ldapv3-vlv-09, the one Outlook and Evolution
//! browse address books with) and the server-side sort response (RFC 2891
//! §1.2), hand-encoded in BER (X.690).
use ldap3_lber::common::TagClass;
use ldap3_lber::parse::Parser;
use ldap3_lber::structure::{PL, StructureTag};

/// The paged-results control (RFC 2696).
pub const PAGED: &str = "1.2.840.113556.1.4.319";
/// The server-side sort request (RFC 2891).
pub const SORT_REQUEST: &str = "1.2.840.113556.1.4.473";
/// The server-side sort response (RFC 2891).
pub const SORT_RESPONSE: &str = "1.2.840.113556.1.4.474";
/// The VLV request.
pub const VLV_REQUEST: &str = "2.16.840.1.113730.3.4.9";
/// The VLV response.
pub const VLV_RESPONSE: &str = "2.16.840.1.113730.3.4.10";
/// ManageDsaIT (RFC 3296): accepted; the directory has no referrals.
pub const MANAGE_DSA_IT: &str = "2.16.840.1.113730.3.4.2";

/// Where a VLV request points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VlvTarget {
    /// A 1-based offset into a list the client believes `content_count` long
    /// (0: it does not know).
    ByOffset {
        /// The offset.
        offset: i64,
        /// The client's idea of the list length.
        content_count: i64,
    },
    /// The first entry whose first sort key is >= this value.
    GreaterOrEqual(String),
}

/// A VLV request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VlvRequest {
    /// Entries wanted before the target.
    pub before: i64,
    /// Entries wanted after it.
    pub after: i64,
    /// The target.
    pub target: VlvTarget,
    /// The server's context from an earlier response.
    pub context: Option<Vec<u8>>,
}

fn integer(bytes: &[u8]) -> Option<i64> {
    if bytes.is_empty() || bytes.len() > 8 {
        return None;
    }
    let mut v: i64 = if bytes[0] & 0x80 != 0 { -1 } else { 0 };
    for &b in bytes {
        v = (v << 8) | b as i64;
    }
    Some(v)
}

fn primitive(t: StructureTag, class: TagClass, id: u64) -> Option<Vec<u8>> {
    t.match_class(class)?.match_id(id)?.expect_primitive()
}

/// Decodes a VLV request control's value.
///
/// ```text
/// VirtualListViewRequest ::= SEQUENCE {
///     beforeCount INTEGER, afterCount INTEGER,
///     target CHOICE { byOffset [0] SEQUENCE { offset INTEGER, contentCount INTEGER },
///                     greaterThanOrEqual [1] AssertionValue },
///     contextID OCTET STRING OPTIONAL }
/// ```
pub fn decode_vlv(value: &[u8]) -> Option<VlvRequest> {
    let (_, tag) = Parser::new(8).parse(value).ok()?;
    let mut seq = tag
        .match_class(TagClass::Universal)?
        .match_id(16)?
        .expect_constructed()?
        .into_iter();
    let before = integer(&primitive(seq.next()?, TagClass::Universal, 2)?)?;
    let after = integer(&primitive(seq.next()?, TagClass::Universal, 2)?)?;
    let target = seq.next()?;
    if target.class != TagClass::Context {
        return None;
    }
    let target = match target.id {
        0 => {
            let mut inner = target.expect_constructed()?.into_iter();
            let offset = integer(&primitive(inner.next()?, TagClass::Universal, 2)?)?;
            let content_count = integer(&primitive(inner.next()?, TagClass::Universal, 2)?)?;
            VlvTarget::ByOffset {
                offset,
                content_count,
            }
        }
        1 => VlvTarget::GreaterOrEqual(String::from_utf8(target.expect_primitive()?).ok()?),
        _ => return None,
    };
    let context = match seq.next() {
        Some(t) => Some(primitive(t, TagClass::Universal, 4)?),
        None => None,
    };
    if before < 0 || after < 0 {
        return None;
    }
    Some(VlvRequest {
        before,
        after,
        target,
        context,
    })
}

fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    push_len(&mut out, content.len());
    out.extend_from_slice(content);
    out
}

fn int_content(v: i64) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let mut start = 0;
    while start < 7
        && ((bytes[start] == 0 && bytes[start + 1] & 0x80 == 0)
            || (bytes[start] == 0xff && bytes[start + 1] & 0x80 != 0))
    {
        start += 1;
    }
    bytes[start..].to_vec()
}

/// Encodes a VLV response control's value.
///
/// ```text
/// VirtualListViewResponse ::= SEQUENCE {
///     targetPosition INTEGER, contentCount INTEGER,
///     virtualListViewResult ENUMERATED, contextID OCTET STRING OPTIONAL }
/// ```
pub fn encode_vlv_response(
    target_position: i64,
    content_count: i64,
    result: i64,
    context: Option<&[u8]>,
) -> Vec<u8> {
    let mut inner = tlv(0x02, &int_content(target_position));
    inner.extend(tlv(0x02, &int_content(content_count)));
    inner.extend(tlv(0x0a, &int_content(result)));
    if let Some(c) = context {
        inner.extend(tlv(0x04, c));
    }
    tlv(0x30, &inner)
}

/// Encodes a sort response control's value (RFC 2891 §1.2):
/// `SEQUENCE { sortResult ENUMERATED, attributeType [0] AttributeDescription OPTIONAL }`.
pub fn encode_sort_response(result: i64, attribute: Option<&str>) -> Vec<u8> {
    let mut inner = tlv(0x0a, &int_content(result));
    if let Some(a) = attribute {
        inner.extend(tlv(0x80, a.as_bytes()));
    }
    tlv(0x30, &inner)
}

/// Decodes a BER tag tree (for tests and the fuzz target).
pub fn parse_ber(value: &[u8]) -> Option<StructureTag> {
    Parser::new(16).parse(value).ok().map(|(_, t)| t)
}

/// Whether a tree's payload is primitive.
pub fn is_primitive(t: &StructureTag) -> bool {
    matches!(t.payload, PL::P(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vlv_round_trip() {
        // What ldapsearch -E vlv=2/3:5/0 sends (byOffset), and =Smith (>=).
        let by_offset = [
            0x30, 0x0e, 0x02, 0x01, 0x02, 0x02, 0x01, 0x03, 0xa0, 0x06, 0x02, 0x01, 0x05, 0x02,
            0x01, 0x00,
        ];
        assert_eq!(
            decode_vlv(&by_offset),
            Some(VlvRequest {
                before: 2,
                after: 3,
                target: VlvTarget::ByOffset {
                    offset: 5,
                    content_count: 0
                },
                context: None
            })
        );
        let ge = [
            0x30, 0x0d, 0x02, 0x01, 0x00, 0x02, 0x01, 0x01, 0x81, 0x05, b'S', b'm', b'i', b't',
            b'h',
        ];
        assert_eq!(
            decode_vlv(&ge).unwrap().target,
            VlvTarget::GreaterOrEqual("Smith".into())
        );
        assert!(decode_vlv(&[0x30, 0x00]).is_none());
        assert!(decode_vlv(b"garbage").is_none());
        let r = encode_vlv_response(5, 300, 0, Some(b"c1"));
        assert_eq!(
            r,
            [
                0x30, 0x0e, 0x02, 0x01, 0x05, 0x02, 0x02, 0x01, 0x2c, 0x0a, 0x01, 0x00, 0x04, 0x02,
                b'c', b'1'
            ]
        );
        assert_eq!(int_content(-1), [0xff]);
        assert_eq!(int_content(128), [0x00, 0x80]);
        assert_eq!(
            encode_sort_response(16, Some("cn")),
            [0x30, 0x07, 0x0a, 0x01, 0x10, 0x80, 0x02, b'c', b'n']
        );
    }
}
