//! Distinguished names (RFC 4514): parsing, escaping, and the normal form
//! distinguishedNameMatch compares (RFC 4517 §4.2.15): attribute types by
//! their canonical name, values by their attribute's equality rule.
use crate::matching;
use crate::schema;

/// One attribute-value assertion of an RDN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ava {
    /// The attribute type as written.
    pub attr: String,
    /// The value, unescaped.
    pub value: String,
}

/// A DN: its RDNs, most specific first. The empty DN (the root DSE) has none.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dn(pub Vec<Vec<Ava>>);

/// A DN that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidDn(pub String);

impl std::fmt::Display for InvalidDn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid DN: {}", self.0)
    }
}

impl std::error::Error for InvalidDn {}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

impl Dn {
    /// Parses the string form (RFC 4514 §3). Spaces around separators are
    /// tolerated, as RFC 2253's readers did.
    pub fn parse(s: &str) -> Result<Dn, InvalidDn> {
        let bad = |why: &str| InvalidDn(format!("{s:?}: {why}"));
        let b = s.as_bytes();
        let mut i = 0;
        let skip_spaces = |i: &mut usize| {
            while *i < b.len() && b[*i] == b' ' {
                *i += 1;
            }
        };
        let mut rdns = Vec::new();
        skip_spaces(&mut i);
        if i == b.len() {
            return Ok(Dn(rdns));
        }
        let mut rdn = Vec::new();
        loop {
            // attributeType
            skip_spaces(&mut i);
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'-' || b[i] == b'.') {
                i += 1;
            }
            if i == start {
                return Err(bad("attribute type expected"));
            }
            let attr = s[start..i].to_string();
            skip_spaces(&mut i);
            if i >= b.len() || b[i] != b'=' {
                return Err(bad("'=' expected"));
            }
            i += 1;
            skip_spaces(&mut i);
            // attributeValue
            let mut value: Vec<u8> = Vec::new();
            if i < b.len() && b[i] == b'#' {
                // A BER encoding in hex: kept as written.
                let start = i;
                i += 1;
                while i < b.len() && b[i].is_ascii_hexdigit() {
                    i += 1;
                }
                value.extend_from_slice(&b[start..i]);
            } else {
                let mut trailing_spaces = 0usize;
                while i < b.len() {
                    match b[i] {
                        b',' | b'+' | b';' => break,
                        b'\\' => {
                            i += 1;
                            let Some(&c) = b.get(i) else {
                                return Err(bad("dangling escape"));
                            };
                            if let (Some(h), Some(l)) = (hex(c), b.get(i + 1).and_then(|&x| hex(x)))
                            {
                                value.push(h << 4 | l);
                                i += 2;
                            } else if b" \"#+,;<=>\\".contains(&c) {
                                value.push(c);
                                i += 1;
                            } else {
                                return Err(bad("bad escape"));
                            }
                            trailing_spaces = 0;
                            continue;
                        }
                        b' ' => {
                            trailing_spaces += 1;
                            value.push(b' ');
                        }
                        c => {
                            trailing_spaces = 0;
                            value.push(c);
                        }
                    }
                    i += 1;
                }
                // Unescaped trailing spaces are not part of the value.
                value.truncate(value.len() - trailing_spaces);
            }
            let value = String::from_utf8(value).map_err(|_| bad("value is not UTF-8"))?;
            rdn.push(Ava { attr, value });
            skip_spaces(&mut i);
            match b.get(i) {
                None => {
                    rdns.push(rdn);
                    return Ok(Dn(rdns));
                }
                Some(b'+') => {
                    i += 1;
                }
                Some(b',') | Some(b';') => {
                    i += 1;
                    rdns.push(std::mem::take(&mut rdn));
                }
                Some(_) => return Err(bad("separator expected")),
            }
        }
    }

    /// The normal form: canonical lower-case attribute names, values
    /// normalized by their equality rule and escaped, multi-valued RDNs in
    /// order, "," between RDNs. Equal DNs have equal normal forms.
    pub fn normalized(&self) -> String {
        let mut out = String::new();
        for (n, rdn) in self.0.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            let mut avas: Vec<String> = rdn
                .iter()
                .map(|a| {
                    let (name, syntax) = match schema::attribute(&a.attr) {
                        Some(t) => (t.name.to_ascii_lowercase(), t.syntax),
                        None => (a.attr.to_ascii_lowercase(), schema::Syntax::CaseIgnore),
                    };
                    format!("{name}={}", escape(&matching::normalize(syntax, &a.value)))
                })
                .collect();
            avas.sort();
            out.push_str(&avas.join("+"));
        }
        out
    }

    /// The parent DN (None for the root).
    pub fn parent(&self) -> Option<Dn> {
        (!self.0.is_empty()).then(|| Dn(self.0[1..].to_vec()))
    }
}

/// Normalizes a DN string; `None` if it does not parse.
pub fn normalize(s: &str) -> Option<String> {
    Dn::parse(s).ok().map(|d| d.normalized())
}

/// Escapes an attribute value for a DN string (RFC 4514 §2.4).
pub fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 4);
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '=' => out.push_str("\\="),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '#' if i == 0 => out.push_str("\\#"),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
    out
}

/// Whether normalized `dn` is `base` or below it.
pub fn is_under(dn: &str, base: &str) -> bool {
    base.is_empty()
        || dn == base
        || (dn.len() > base.len()
            && dn.ends_with(base)
            && dn.as_bytes()[dn.len() - base.len() - 1] == b',')
}

/// The normalized parent of a normalized DN (its first unescaped comma).
pub fn parent_of(dn: &str) -> &str {
    let b = dn.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b',' => return &dn[i + 1..],
            _ => i += 1,
        }
    }
    ""
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_escape_normalize() {
        let d = Dn::parse("uid=Alice , ou=People,DC=Example,dc=ORG").unwrap();
        assert_eq!(d.0.len(), 4);
        assert_eq!(d.normalized(), "uid=alice,ou=people,dc=example,dc=org");
        assert_eq!(
            normalize("CN=Smith\\, John+mail=J@X.org,o=A  B").unwrap(),
            "cn=smith\\, john+mail=j@x.org,o=a b"
        );
        assert_eq!(normalize("cn=\\23x\\2C\\20y").unwrap(), "cn=\\#x\\, y");
        assert_eq!(normalize("commonName=x,2.5.4.10=Y").unwrap(), "cn=x,o=y");
        assert_eq!(normalize(""), Some(String::new()));
        assert!(Dn::parse("uid").is_err());
        assert!(Dn::parse("=x").is_err());
        assert!(Dn::parse("cn=a\\").is_err());
        assert_eq!(escape(" a,b#"), "\\ a\\,b#");
        assert_eq!(escape("#x "), "\\#x\\ ");
    }

    #[test]
    fn hierarchy() {
        assert!(is_under("uid=a,ou=people,dc=x", "dc=x"));
        assert!(is_under("dc=x", "dc=x"));
        assert!(!is_under("dc=xx", "dc=x"));
        assert!(!is_under("dc=x", "ou=people,dc=x"));
        assert!(is_under("dc=x", ""));
        assert_eq!(parent_of("cn=a\\,b,dc=x"), "dc=x");
        assert_eq!(parent_of("dc=x"), "");
    }
}
