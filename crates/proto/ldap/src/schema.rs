//! The schema Postgate's directory publishes: the attribute types and object
//! classes of its entries (RFC 4512, RFC 4519, RFC 4524, RFC 2798), their
//! syntaxes and matching rules. One table serves both the subschema entry
//! clients read and the matching the server does.

/// How values of an attribute compare (RFC 4517 §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// Directory String, caseIgnoreMatch / caseIgnoreOrderingMatch /
    /// caseIgnoreSubstringsMatch.
    CaseIgnore,
    /// IA5 String, caseIgnoreIA5Match (mail, dc).
    CaseIgnoreIa5,
    /// Telephone Number, telephoneNumberMatch: spaces and hyphens ignored.
    Telephone,
    /// DN, distinguishedNameMatch.
    Dn,
    /// OID, objectIdentifierMatch (objectClass names and OIDs alike).
    Oid,
    /// Boolean, booleanMatch.
    Boolean,
    /// Integer, integerMatch.
    Integer,
}

impl Syntax {
    /// The syntax OID.
    pub fn oid(self) -> &'static str {
        match self {
            Syntax::CaseIgnore => "1.3.6.1.4.1.1466.115.121.1.15",
            Syntax::CaseIgnoreIa5 => "1.3.6.1.4.1.1466.115.121.1.26",
            Syntax::Telephone => "1.3.6.1.4.1.1466.115.121.1.50",
            Syntax::Dn => "1.3.6.1.4.1.1466.115.121.1.12",
            Syntax::Oid => "1.3.6.1.4.1.1466.115.121.1.38",
            Syntax::Boolean => "1.3.6.1.4.1.1466.115.121.1.7",
            Syntax::Integer => "1.3.6.1.4.1.1466.115.121.1.27",
        }
    }
    fn rules(self) -> (&'static str, Option<&'static str>, Option<&'static str>) {
        match self {
            Syntax::CaseIgnore => (
                "caseIgnoreMatch",
                Some("caseIgnoreOrderingMatch"),
                Some("caseIgnoreSubstringsMatch"),
            ),
            Syntax::CaseIgnoreIa5 => (
                "caseIgnoreIA5Match",
                None,
                Some("caseIgnoreIA5SubstringsMatch"),
            ),
            Syntax::Telephone => (
                "telephoneNumberMatch",
                None,
                Some("telephoneNumberSubstringsMatch"),
            ),
            Syntax::Dn => ("distinguishedNameMatch", None, None),
            Syntax::Oid => ("objectIdentifierMatch", None, None),
            Syntax::Boolean => ("booleanMatch", None, None),
            Syntax::Integer => ("integerMatch", Some("integerOrderingMatch"), None),
        }
    }
}

/// An attribute type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttributeType {
    /// The canonical name, as entries carry it.
    pub name: &'static str,
    /// Other names (RFC 4519 short and long forms).
    pub aliases: &'static [&'static str],
    /// Its OID.
    pub oid: &'static str,
    /// How values compare.
    pub syntax: Syntax,
    /// One value at most.
    pub single: bool,
    /// Operational (RFC 4512 §3.4): returned only when asked for, or with "+".
    pub operational: bool,
    /// Description.
    pub desc: &'static str,
}

const fn at(
    name: &'static str,
    aliases: &'static [&'static str],
    oid: &'static str,
    syntax: Syntax,
    desc: &'static str,
) -> AttributeType {
    AttributeType {
        name,
        aliases,
        oid,
        syntax,
        single: false,
        operational: false,
        desc,
    }
}

const fn op(
    name: &'static str,
    oid: &'static str,
    syntax: Syntax,
    desc: &'static str,
) -> AttributeType {
    AttributeType {
        name,
        aliases: &[],
        oid,
        syntax,
        single: false,
        operational: true,
        desc,
    }
}

/// Every attribute type the directory knows.
pub static ATTRIBUTES: &[AttributeType] = &[
    at(
        "objectClass",
        &[],
        "2.5.4.0",
        Syntax::Oid,
        "RFC 4512: object classes of the entity",
    ),
    at(
        "cn",
        &["commonName"],
        "2.5.4.3",
        Syntax::CaseIgnore,
        "RFC 4519: common name(s) for which the entity is known by",
    ),
    at(
        "sn",
        &["surname"],
        "2.5.4.4",
        Syntax::CaseIgnore,
        "RFC 4519: last (family) name(s) for which the entity is known by",
    ),
    at(
        "givenName",
        &["gn"],
        "2.5.4.42",
        Syntax::CaseIgnore,
        "RFC 4519: first name(s) for which the entity is known by",
    ),
    AttributeType {
        single: true,
        ..at(
            "displayName",
            &[],
            "2.16.840.1.113730.3.1.241",
            Syntax::CaseIgnore,
            "RFC 2798: preferred name to be used when displaying entries",
        )
    },
    at(
        "mail",
        &["rfc822Mailbox"],
        "0.9.2342.19200300.100.1.3",
        Syntax::CaseIgnoreIa5,
        "RFC 4524: RFC 822 Mailbox",
    ),
    at(
        "uid",
        &["userid"],
        "0.9.2342.19200300.100.1.1",
        Syntax::CaseIgnore,
        "RFC 4519: user identifier",
    ),
    at(
        "telephoneNumber",
        &[],
        "2.5.4.20",
        Syntax::Telephone,
        "RFC 4519: Telephone Number",
    ),
    at(
        "title",
        &[],
        "2.5.4.12",
        Syntax::CaseIgnore,
        "RFC 4519: title associated with the entity",
    ),
    at(
        "ou",
        &["organizationalUnitName"],
        "2.5.4.11",
        Syntax::CaseIgnore,
        "RFC 4519: organizational unit this object belongs to",
    ),
    at(
        "o",
        &["organizationName"],
        "2.5.4.10",
        Syntax::CaseIgnore,
        "RFC 4519: organization this object belongs to",
    ),
    at(
        "dc",
        &["domainComponent"],
        "0.9.2342.19200300.100.1.25",
        Syntax::CaseIgnoreIa5,
        "RFC 4519: domain component",
    ),
    at(
        "member",
        &[],
        "2.5.4.31",
        Syntax::Dn,
        "RFC 4519: member of a group",
    ),
    at(
        "description",
        &[],
        "2.5.4.13",
        Syntax::CaseIgnore,
        "RFC 4519: descriptive information",
    ),
    // Operational (RFC 4512 §3.4, RFC 5020).
    op("entryDN", "1.3.6.1.1.20", Syntax::Dn, "DN of the entry"),
    op(
        "subschemaSubentry",
        "2.5.18.10",
        Syntax::Dn,
        "name of controlling subschema entry",
    ),
    op(
        "hasSubordinates",
        "2.5.18.9",
        Syntax::Boolean,
        "X.501: entry has children",
    ),
    op(
        "structuralObjectClass",
        "2.5.21.9",
        Syntax::Oid,
        "structural object class of entry",
    ),
    op(
        "numSubordinates",
        "1.3.6.1.4.1.453.16.2.103",
        Syntax::Integer,
        "number of immediate subordinates",
    ),
    op(
        "namingContexts",
        "1.3.6.1.4.1.1466.101.120.5",
        Syntax::Dn,
        "RFC 4512: naming contexts",
    ),
    op(
        "supportedControl",
        "1.3.6.1.4.1.1466.101.120.13",
        Syntax::Oid,
        "RFC 4512: supported controls",
    ),
    op(
        "supportedExtension",
        "1.3.6.1.4.1.1466.101.120.7",
        Syntax::Oid,
        "RFC 4512: supported extended operations",
    ),
    op(
        "supportedFeatures",
        "1.3.6.1.4.1.4203.1.3.5",
        Syntax::Oid,
        "RFC 4512: features supported by the server",
    ),
    op(
        "supportedLDAPVersion",
        "1.3.6.1.4.1.1466.101.120.15",
        Syntax::Integer,
        "RFC 4512: supported LDAP versions",
    ),
    op(
        "supportedSASLMechanisms",
        "1.3.6.1.4.1.1466.101.120.14",
        Syntax::CaseIgnore,
        "RFC 4512: supported SASL mechanisms",
    ),
    op(
        "vendorName",
        "1.3.6.1.1.4",
        Syntax::CaseIgnore,
        "RFC 3045: name of implementation vendor",
    ),
    op(
        "vendorVersion",
        "1.3.6.1.1.5",
        Syntax::CaseIgnore,
        "RFC 3045: version of implementation",
    ),
    op(
        "attributeTypes",
        "2.5.21.5",
        Syntax::CaseIgnore,
        "RFC 4512: attribute types",
    ),
    op(
        "objectClasses",
        "2.5.21.6",
        Syntax::CaseIgnore,
        "RFC 4512: object classes",
    ),
    op(
        "ldapSyntaxes",
        "1.3.6.1.4.1.1466.101.120.16",
        Syntax::CaseIgnore,
        "RFC 4512: LDAP syntaxes",
    ),
    op(
        "matchingRules",
        "2.5.21.4",
        Syntax::CaseIgnore,
        "RFC 4512: matching rules",
    ),
];

/// The position of an attribute type in [`ATTRIBUTES`] (for per-type
/// tables); `None` for a type not from that table.
pub fn index_of(at: &AttributeType) -> Option<usize> {
    let start = ATTRIBUTES.as_ptr() as usize;
    let addr = at as *const AttributeType as usize;
    let size = std::mem::size_of::<AttributeType>();
    let i = addr.checked_sub(start)? / size;
    (i < ATTRIBUTES.len() && std::ptr::eq(&ATTRIBUTES[i], at)).then_some(i)
}

/// The attribute type named `name` (a name, an alias or an OID; any case;
/// options such as ";lang-de" ignored).
pub fn attribute(name: &str) -> Option<&'static AttributeType> {
    let base = name.split(';').next().unwrap_or(name);
    ATTRIBUTES.iter().find(|a| {
        a.name.eq_ignore_ascii_case(base)
            || a.oid == base
            || a.aliases.iter().any(|x| x.eq_ignore_ascii_case(base))
    })
}

/// An object class.
#[derive(Debug, Clone, Copy)]
pub struct ObjectClass {
    /// Name.
    pub name: &'static str,
    /// OID.
    pub oid: &'static str,
    /// Its superclass.
    pub sup: Option<&'static str>,
    /// "STRUCTURAL", "AUXILIARY" or "ABSTRACT".
    pub kind: &'static str,
    /// Required attributes.
    pub must: &'static [&'static str],
    /// Allowed attributes.
    pub may: &'static [&'static str],
}

/// Every object class entries use.
pub static OBJECT_CLASSES: &[ObjectClass] = &[
    ObjectClass {
        name: "top",
        oid: "2.5.6.0",
        sup: None,
        kind: "ABSTRACT",
        must: &["objectClass"],
        may: &[],
    },
    ObjectClass {
        name: "person",
        oid: "2.5.6.6",
        sup: Some("top"),
        kind: "STRUCTURAL",
        must: &["sn", "cn"],
        may: &["telephoneNumber", "description"],
    },
    ObjectClass {
        name: "organizationalPerson",
        oid: "2.5.6.7",
        sup: Some("person"),
        kind: "STRUCTURAL",
        must: &[],
        may: &["title", "ou"],
    },
    ObjectClass {
        name: "inetOrgPerson",
        oid: "2.16.840.1.113730.3.2.2",
        sup: Some("organizationalPerson"),
        kind: "STRUCTURAL",
        must: &[],
        may: &["displayName", "givenName", "mail", "uid", "o"],
    },
    ObjectClass {
        name: "groupOfNames",
        oid: "2.5.6.9",
        sup: Some("top"),
        kind: "STRUCTURAL",
        must: &["member", "cn"],
        may: &["description", "o", "ou"],
    },
    ObjectClass {
        name: "organizationalUnit",
        oid: "2.5.6.5",
        sup: Some("top"),
        kind: "STRUCTURAL",
        must: &["ou"],
        may: &["description"],
    },
    ObjectClass {
        name: "organization",
        oid: "2.5.6.4",
        sup: Some("top"),
        kind: "STRUCTURAL",
        must: &["o"],
        may: &["description"],
    },
    ObjectClass {
        name: "dcObject",
        oid: "1.3.6.1.4.1.1466.344",
        sup: Some("top"),
        kind: "AUXILIARY",
        must: &["dc"],
        may: &[],
    },
    ObjectClass {
        name: "extensibleObject",
        oid: "1.3.6.1.4.1.1466.101.120.111",
        sup: Some("top"),
        kind: "AUXILIARY",
        must: &[],
        may: &[],
    },
    ObjectClass {
        name: "subentry",
        oid: "2.5.17.0",
        sup: Some("top"),
        kind: "STRUCTURAL",
        must: &["cn"],
        may: &[],
    },
    ObjectClass {
        name: "subschema",
        oid: "2.5.20.1",
        sup: None,
        kind: "AUXILIARY",
        must: &[],
        may: &[
            "attributeTypes",
            "objectClasses",
            "ldapSyntaxes",
            "matchingRules",
        ],
    },
];

/// The object class named `name` (name or OID, any case).
pub fn object_class(name: &str) -> Option<&'static ObjectClass> {
    OBJECT_CLASSES
        .iter()
        .find(|c| c.name.eq_ignore_ascii_case(name) || c.oid == name)
}

/// Matching rules (RFC 4517 §4.2), as the subschema lists them.
pub static MATCHING_RULES: &[(&str, &str, &str)] = &[
    (
        "2.5.13.0",
        "objectIdentifierMatch",
        "1.3.6.1.4.1.1466.115.121.1.38",
    ),
    (
        "2.5.13.1",
        "distinguishedNameMatch",
        "1.3.6.1.4.1.1466.115.121.1.12",
    ),
    (
        "2.5.13.2",
        "caseIgnoreMatch",
        "1.3.6.1.4.1.1466.115.121.1.15",
    ),
    (
        "2.5.13.3",
        "caseIgnoreOrderingMatch",
        "1.3.6.1.4.1.1466.115.121.1.15",
    ),
    (
        "2.5.13.4",
        "caseIgnoreSubstringsMatch",
        "1.3.6.1.4.1.1466.115.121.1.58",
    ),
    (
        "2.5.13.5",
        "caseExactMatch",
        "1.3.6.1.4.1.1466.115.121.1.15",
    ),
    ("2.5.13.13", "booleanMatch", "1.3.6.1.4.1.1466.115.121.1.7"),
    ("2.5.13.14", "integerMatch", "1.3.6.1.4.1.1466.115.121.1.27"),
    (
        "2.5.13.15",
        "integerOrderingMatch",
        "1.3.6.1.4.1.1466.115.121.1.27",
    ),
    (
        "2.5.13.20",
        "telephoneNumberMatch",
        "1.3.6.1.4.1.1466.115.121.1.50",
    ),
    (
        "2.5.13.21",
        "telephoneNumberSubstringsMatch",
        "1.3.6.1.4.1.1466.115.121.1.58",
    ),
    (
        "1.3.6.1.4.1.1466.109.114.2",
        "caseIgnoreIA5Match",
        "1.3.6.1.4.1.1466.115.121.1.26",
    ),
    (
        "1.3.6.1.4.1.1466.109.114.3",
        "caseIgnoreIA5SubstringsMatch",
        "1.3.6.1.4.1.1466.115.121.1.58",
    ),
];

/// LDAP syntaxes (RFC 4517 §3.3), as the subschema lists them.
pub static SYNTAXES: &[(&str, &str)] = &[
    ("1.3.6.1.4.1.1466.115.121.1.7", "Boolean"),
    ("1.3.6.1.4.1.1466.115.121.1.12", "Distinguished Name"),
    ("1.3.6.1.4.1.1466.115.121.1.15", "Directory String"),
    ("1.3.6.1.4.1.1466.115.121.1.26", "IA5 String"),
    ("1.3.6.1.4.1.1466.115.121.1.27", "INTEGER"),
    ("1.3.6.1.4.1.1466.115.121.1.38", "OID"),
    ("1.3.6.1.4.1.1466.115.121.1.50", "Telephone Number"),
    ("1.3.6.1.4.1.1466.115.121.1.58", "Substring Assertion"),
];

/// The values of the subschema entry's `attributeTypes` (RFC 4512 §4.1.2).
pub fn attribute_type_descriptions() -> Vec<String> {
    ATTRIBUTES
        .iter()
        .map(|a| {
            let names = std::iter::once(a.name)
                .chain(a.aliases.iter().copied())
                .map(|n| format!("'{n}'"))
                .collect::<Vec<_>>();
            let names = if names.len() == 1 {
                names[0].clone()
            } else {
                format!("( {} )", names.join(" "))
            };
            let (eq, ord, sub) = a.syntax.rules();
            let mut s = format!("( {} NAME {names} DESC '{}' EQUALITY {eq}", a.oid, a.desc);
            if let Some(o) = ord {
                s.push_str(&format!(" ORDERING {o}"));
            }
            if let Some(o) = sub {
                s.push_str(&format!(" SUBSTR {o}"));
            }
            s.push_str(&format!(" SYNTAX {}", a.syntax.oid()));
            if a.single {
                s.push_str(" SINGLE-VALUE");
            }
            if a.operational {
                s.push_str(" NO-USER-MODIFICATION USAGE directoryOperation");
            }
            s.push_str(" )");
            s
        })
        .collect()
}

/// The values of the subschema entry's `objectClasses` (RFC 4512 §4.1.1).
pub fn object_class_descriptions() -> Vec<String> {
    let list = |v: &[&str]| {
        if v.len() == 1 {
            v[0].to_string()
        } else {
            format!("( {} )", v.join(" $ "))
        }
    };
    OBJECT_CLASSES
        .iter()
        .map(|c| {
            let mut s = format!("( {} NAME '{}'", c.oid, c.name);
            if let Some(sup) = c.sup {
                s.push_str(&format!(" SUP {sup}"));
            }
            s.push_str(&format!(" {}", c.kind));
            if !c.must.is_empty() {
                s.push_str(&format!(" MUST {}", list(c.must)));
            }
            if !c.may.is_empty() {
                s.push_str(&format!(" MAY {}", list(c.may)));
            }
            s.push_str(" )");
            s
        })
        .collect()
}

/// The values of `matchingRules` (RFC 4512 §4.1.3).
pub fn matching_rule_descriptions() -> Vec<String> {
    MATCHING_RULES
        .iter()
        .map(|(oid, name, syntax)| format!("( {oid} NAME '{name}' SYNTAX {syntax} )"))
        .collect()
}

/// The values of `ldapSyntaxes` (RFC 4512 §4.1.5).
pub fn syntax_descriptions() -> Vec<String> {
    SYNTAXES
        .iter()
        .map(|(oid, desc)| format!("( {oid} DESC '{desc}' )"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_and_descriptions() {
        assert_eq!(attribute("commonName").unwrap().name, "cn");
        assert_eq!(attribute("CN;lang-de").unwrap().name, "cn");
        assert_eq!(attribute("2.5.4.4").unwrap().name, "sn");
        assert!(attribute("userPassword").is_none());
        assert_eq!(index_of(attribute("sn").unwrap()), Some(2));
        let copy = *attribute("sn").unwrap();
        assert_eq!(index_of(&copy), None);
        assert_eq!(
            object_class("2.16.840.1.113730.3.2.2").unwrap().name,
            "inetOrgPerson"
        );
        let at = attribute_type_descriptions();
        assert!(
            at.iter()
                .any(|d| d.starts_with("( 2.5.4.3 NAME ( 'cn' 'commonName' )"))
        );
        let oc = object_class_descriptions();
        assert!(oc.iter().any(|d| d == "( 2.5.6.6 NAME 'person' SUP top STRUCTURAL MUST ( sn $ cn ) MAY ( telephoneNumber $ description ) )"));
    }
}
