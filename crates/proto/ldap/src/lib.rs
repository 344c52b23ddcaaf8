//! LDAPv3 wire pieces (RFC 4511) beyond ldap3_proto's codec: DNs, schema,
//! matching rules, filters, and the VLV and sort controls. Pure functions,
//! no I/O: the engine (postgate-ldap) and the fuzz target share them.
#![deny(missing_docs)]

pub mod ber;
pub mod controls;
pub mod dn;
pub mod filter;
pub mod matching;
pub mod schema;

pub use ldap3_proto;

use bytes::BytesMut;
use ldap3_proto::LdapCodec;
use ldap3_proto::proto::LdapMsg;
use tokio_util::codec::{Decoder, Encoder};

/// Largest request accepted, in octets (a search filter or a bind is far
/// smaller; this bounds what one client can make the server buffer).
pub const MAX_REQUEST: usize = 256 * 1024;

/// A request that cannot be decoded: the session ends with a Notice of
/// Disconnection (RFC 4511 §4.4.1, protocolError).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeError {}

/// The request decoder: takes whole LDAPMessages off the front of `buf`.
pub struct RequestDecoder {
    codec: LdapCodec,
}

impl std::fmt::Debug for RequestDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RequestDecoder")
    }
}

impl Default for RequestDecoder {
    fn default() -> Self {
        RequestDecoder {
            codec: LdapCodec::new(Some(MAX_REQUEST), None),
        }
    }
}

impl RequestDecoder {
    /// The next message, `None` if `buf` does not hold a whole one yet.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<LdapMsg>, DecodeError> {
        // RFC 4511 §5.1: an LDAPMessage is a SEQUENCE; its declared length
        // tells at once whether it could ever be accepted.
        if let Some(&first) = buf.first()
            && first != 0x30
        {
            return Err(DecodeError(format!(
                "not an LDAPMessage (tag {first:#04x})"
            )));
        }
        if let Some(&len0) = buf.get(1)
            && len0 & 0x80 != 0
        {
            let n = (len0 & 0x7f) as usize;
            if n == 0 || n > 4 {
                return Err(DecodeError("bad BER length".into()));
            }
            if let Some(bytes) = buf.get(2..2 + n) {
                let len = bytes.iter().fold(0usize, |a, &b| a << 8 | b as usize);
                if len > MAX_REQUEST {
                    return Err(DecodeError(format!("request of {len} octets is too large")));
                }
            }
        }
        self.codec
            .decode(buf)
            .map_err(|e| DecodeError(e.to_string()))
    }
}

/// Encodes a response onto `out`.
pub fn encode(msg: LdapMsg, out: &mut BytesMut) -> Result<(), DecodeError> {
    LdapCodec::default()
        .encode(msg, out)
        .map_err(|e| DecodeError(e.to_string()))
}

/// Decodes everything in `data` as a client would send it, every message
/// and its controls: what the fuzz target drives. Never panics.
pub fn decode_all(data: &[u8]) -> Vec<Result<LdapMsg, DecodeError>> {
    let mut buf = BytesMut::from(data);
    let mut d = RequestDecoder::default();
    let mut out = Vec::new();
    loop {
        match d.decode(&mut buf) {
            Ok(Some(m)) => {
                for c in &m.ctrl {
                    if let ldap3_proto::control::LdapControl::Unknown {
                        oid,
                        value: Some(v),
                        ..
                    } = c
                        && oid == controls::VLV_REQUEST
                    {
                        let _ = controls::decode_vlv(v);
                    }
                }
                if let ldap3_proto::proto::LdapOp::SearchRequest(s) = &m.op {
                    let _ = dn::normalize(&s.base);
                    let f = filter::compile(&s.filter, &|_| true);
                    let _ = f.required_equality("mail");
                }
                out.push(Ok(m));
            }
            Ok(None) => break,
            Err(e) => {
                out.push(Err(e));
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_a_search_and_garbage() {
        // ldapsearch -x -b dc=example,dc=org '(uid=alice)' cn
        let search: &[u8] = &[
            0x30, 0x3b, 0x02, 0x01, 0x02, 0x63, 0x36, 0x04, 0x11, b'd', b'c', b'=', b'e', b'x',
            b'a', b'm', b'p', b'l', b'e', b',', b'd', b'c', b'=', b'o', b'r', b'g', 0x0a, 0x01,
            0x02, 0x0a, 0x01, 0x00, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x01, 0x01, 0x00, 0xa3,
            0x0c, 0x04, 0x03, b'u', b'i', b'd', 0x04, 0x05, b'a', b'l', b'i', b'c', b'e', 0x30,
            0x04, 0x04, 0x02, b'c', b'n',
        ];
        let got = decode_all(search);
        assert!(matches!(got.as_slice(), [Ok(m)] if m.msgid == 2), "{got:?}");
        let got = decode_all(&[0x30, 0x03, 0x02, 0x01]);
        assert!(got.is_empty(), "incomplete: wait for more");
        let got = decode_all(&[0x31, 0x03, 0x02, 0x01, 0x01]);
        assert!(matches!(got.as_slice(), [Err(_)]), "{got:?}");
        let got = decode_all(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]);
        assert!(
            matches!(got.as_slice(), [Err(_)]),
            "over the size limit: {got:?}"
        );
    }
}
