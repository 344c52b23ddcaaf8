//! Search filters (RFC 4511 §4.5.1.7), compiled once per search (attribute
//! types resolved, assertion values normalized) and evaluated per entry in
//! LDAP's three-valued logic: an unknown attribute type, or an assertion its
//! matching rules cannot make, is Undefined, which NOT leaves Undefined and
//! which only a search for TRUE filters away.
use crate::matching::{self, normalize, normalize_piece};
use crate::schema::{self, AttributeType, Syntax};
use ldap3_proto::proto::LdapFilter;

/// True, False or Undefined (RFC 4511 §4.5.1.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tri {
    /// TRUE.
    True,
    /// FALSE.
    False,
    /// Undefined.
    Undefined,
}

impl Tri {
    fn not(self) -> Tri {
        match self {
            Tri::True => Tri::False,
            Tri::False => Tri::True,
            Tri::Undefined => Tri::Undefined,
        }
    }
    fn of(b: bool) -> Tri {
        if b { Tri::True } else { Tri::False }
    }
}

/// An attribute value as entries hold it (shared: equal values, and a value
/// equal to its normal form, are one allocation).
pub type Value = std::sync::Arc<str>;

/// What the filter sees of an entry.
pub trait Entry {
    /// The normal forms of an attribute's values, if the entry has it.
    fn normalized(&self, attr: &'static AttributeType) -> Option<&[Value]>;
    /// The values as stored, if the entry has it.
    fn raw(&self, attr: &'static AttributeType) -> Option<&[Value]>;
    /// The entry's DN.
    fn dn(&self) -> &str;
}

/// An extensible match's rule (RFC 4511 §4.5.1.7.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// The attribute's own equality rule.
    Equality,
    /// caseExactMatch.
    Exact,
}

/// A compiled filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// All of.
    And(Vec<Filter>),
    /// Any of.
    Or(Vec<Filter>),
    /// Not.
    Not(Box<Filter>),
    /// Equality with a normalized value.
    Equal(&'static AttributeType, String),
    /// Substrings, normalized pieces.
    Substrings(
        &'static AttributeType,
        Option<String>,
        Vec<String>,
        Option<String>,
    ),
    /// >= (ordering rule).
    GreaterOrEqual(&'static AttributeType, String),
    /// <= (ordering rule).
    LessOrEqual(&'static AttributeType, String),
    /// Presence.
    Present(&'static AttributeType),
    /// Approximate, raw assertion.
    Approx(&'static AttributeType, String),
    /// Extensible match.
    Extensible {
        /// The type, or every type.
        attr: Option<&'static AttributeType>,
        /// The rule.
        rule: RuleChoice,
        /// Normalized (for the equality rule) or raw (for exact) value.
        value: String,
        /// Also match the DN's attribute values.
        dn_attributes: bool,
    },
    /// Always Undefined: an unknown or hidden attribute, or an unsupported rule.
    Undefined,
}

/// A rule an extensible match names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleChoice(Rule);

fn has_ordering(a: &AttributeType) -> bool {
    matches!(a.syntax, Syntax::CaseIgnore | Syntax::Integer)
}

/// Compiles `f`; `visible` says which attribute types this client may
/// search on (others are Undefined, as unknown ones are).
pub fn compile(f: &LdapFilter, visible: &dyn Fn(&AttributeType) -> bool) -> Filter {
    let attr = |name: &str| schema::attribute(name).filter(|a| visible(a));
    match f {
        LdapFilter::And(v) => Filter::And(v.iter().map(|f| compile(f, visible)).collect()),
        LdapFilter::Or(v) => Filter::Or(v.iter().map(|f| compile(f, visible)).collect()),
        LdapFilter::Not(f) => Filter::Not(Box::new(compile(f, visible))),
        LdapFilter::Equality(a, v) => match attr(a) {
            Some(t) => Filter::Equal(t, normalize(t.syntax, v)),
            None => Filter::Undefined,
        },
        LdapFilter::Substring(a, s) => match attr(a) {
            // Substring rules exist for the string syntaxes only.
            Some(t)
                if matches!(
                    t.syntax,
                    Syntax::CaseIgnore | Syntax::CaseIgnoreIa5 | Syntax::Telephone
                ) =>
            {
                Filter::Substrings(
                    t,
                    s.initial.as_deref().map(|p| normalize_piece(t.syntax, p)),
                    s.any.iter().map(|p| normalize_piece(t.syntax, p)).collect(),
                    s.final_.as_deref().map(|p| normalize_piece(t.syntax, p)),
                )
            }
            _ => Filter::Undefined,
        },
        LdapFilter::GreaterOrEqual(a, v) => match attr(a) {
            Some(t) if has_ordering(t) => Filter::GreaterOrEqual(t, normalize(t.syntax, v)),
            _ => Filter::Undefined,
        },
        LdapFilter::LessOrEqual(a, v) => match attr(a) {
            Some(t) if has_ordering(t) => Filter::LessOrEqual(t, normalize(t.syntax, v)),
            _ => Filter::Undefined,
        },
        LdapFilter::Present(a) => match attr(a) {
            Some(t) => Filter::Present(t),
            // RFC 4511 §4.5.1.7.5: an unknown type is FALSE here, not Undefined.
            None => Filter::Not(Box::new(Filter::And(Vec::new()))),
        },
        LdapFilter::Approx(a, v) => match attr(a) {
            Some(t) => Filter::Approx(t, v.clone()),
            None => Filter::Undefined,
        },
        LdapFilter::Extensible(m) => {
            let rule = match m.matching_rule.as_deref() {
                None => Some(Rule::Equality),
                Some(r) => match r.to_ascii_lowercase().as_str() {
                    "caseignorematch"
                    | "2.5.13.2"
                    | "caseignoreia5match"
                    | "1.3.6.1.4.1.1466.109.114.2"
                    | "distinguishednamematch"
                    | "2.5.13.1"
                    | "objectidentifiermatch"
                    | "2.5.13.0"
                    | "telephonenumbermatch"
                    | "2.5.13.20" => Some(Rule::Equality),
                    "caseexactmatch" | "2.5.13.5" => Some(Rule::Exact),
                    _ => None,
                },
            };
            let Some(rule) = rule else {
                return Filter::Undefined;
            };
            let t = match m.type_.as_deref() {
                Some(name) => match attr(name) {
                    Some(t) => Some(t),
                    None => return Filter::Undefined,
                },
                None => None,
            };
            let value = match (rule, t) {
                (Rule::Equality, Some(t)) => normalize(t.syntax, &m.match_value),
                (Rule::Equality, None) => normalize(Syntax::CaseIgnore, &m.match_value),
                (Rule::Exact, _) => m.match_value.clone(),
            };
            Filter::Extensible {
                attr: t,
                rule: RuleChoice(rule),
                value,
                dn_attributes: m.dn_attributes,
            }
        }
    }
}

impl Filter {
    /// Evaluates the filter against an entry.
    pub fn eval(&self, e: &dyn Entry) -> Tri {
        match self {
            Filter::And(v) => {
                let mut out = Tri::True;
                for f in v {
                    match f.eval(e) {
                        Tri::False => return Tri::False,
                        Tri::Undefined => out = Tri::Undefined,
                        Tri::True => {}
                    }
                }
                out
            }
            Filter::Or(v) => {
                let mut out = Tri::False;
                for f in v {
                    match f.eval(e) {
                        Tri::True => return Tri::True,
                        Tri::Undefined => out = Tri::Undefined,
                        Tri::False => {}
                    }
                }
                out
            }
            Filter::Not(f) => f.eval(e).not(),
            Filter::Equal(t, v) => Tri::of(
                e.normalized(t)
                    .is_some_and(|vals| vals.iter().any(|x| **x == **v)),
            ),
            Filter::Substrings(t, i, a, f) => Tri::of(e.normalized(t).is_some_and(|vals| {
                vals.iter()
                    .any(|x| matching::substrings(x, i.as_deref(), a, f.as_deref()))
            })),
            Filter::GreaterOrEqual(t, v) => Tri::of(
                e.normalized(t)
                    .is_some_and(|vals| vals.iter().any(|x| compare(t, x, v).is_ge())),
            ),
            Filter::LessOrEqual(t, v) => Tri::of(
                e.normalized(t)
                    .is_some_and(|vals| vals.iter().any(|x| compare(t, x, v).is_le())),
            ),
            Filter::Present(t) => Tri::of(e.normalized(t).is_some()),
            Filter::Approx(t, v) => Tri::of(
                e.raw(t)
                    .is_some_and(|vals| vals.iter().any(|x| matching::approx(x, v))),
            ),
            Filter::Extensible {
                attr,
                rule,
                value,
                dn_attributes,
            } => {
                let test = |t: &'static AttributeType| -> bool {
                    match rule.0 {
                        Rule::Equality => {
                            // Without a type, the value was normalized as a
                            // string; compare each type's values likewise.
                            let want = if attr.is_some() {
                                value.clone()
                            } else {
                                normalize(t.syntax, value)
                            };
                            e.normalized(t)
                                .is_some_and(|vals| vals.iter().any(|x| **x == *want))
                        }
                        Rule::Exact => e
                            .raw(t)
                            .is_some_and(|vals| vals.iter().any(|x| **x == **value)),
                    }
                };
                let mut hit = match attr {
                    Some(t) => test(t),
                    None => schema::ATTRIBUTES
                        .iter()
                        .filter(|t| !t.operational)
                        .any(test),
                };
                if !hit
                    && *dn_attributes
                    && let Ok(dn) = crate::dn::Dn::parse(e.dn())
                {
                    hit = dn.0.iter().flatten().any(|ava| {
                        let Some(t) = schema::attribute(&ava.attr) else {
                            return false;
                        };
                        if attr.is_some_and(|a| a.name != t.name) {
                            return false;
                        }
                        match rule.0 {
                            Rule::Equality => {
                                normalize(t.syntax, &ava.value)
                                    == if attr.is_some() {
                                        value.clone()
                                    } else {
                                        normalize(t.syntax, value)
                                    }
                            }
                            Rule::Exact => ava.value == *value,
                        }
                    });
                }
                Tri::of(hit)
            }
            Filter::Undefined => Tri::Undefined,
        }
    }

    /// Equality assertions on `attr` that every match must satisfy (the
    /// filter is one, or an AND holding one): for index lookups.
    pub fn required_equality(&self, attr: &str) -> Option<&str> {
        match self {
            Filter::Equal(t, v) if t.name == attr => Some(v),
            Filter::And(v) => v.iter().find_map(|f| f.required_equality(attr)),
            _ => None,
        }
    }
}

/// Orders two normal forms by the attribute's ordering rule.
pub fn compare(t: &AttributeType, a: &str, b: &str) -> std::cmp::Ordering {
    if t.syntax == Syntax::Integer
        && let (Ok(x), Ok(y)) = (a.parse::<i64>(), b.parse::<i64>())
    {
        return x.cmp(&y);
    }
    a.cmp(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ldap3_proto::proto::{LdapMatchingRuleAssertion, LdapSubstringFilter};

    struct E(Vec<(&'static str, Vec<&'static str>)>);
    impl Entry for E {
        fn normalized(&self, a: &'static AttributeType) -> Option<&[Value]> {
            // Tests normalize on the fly through a leaked cache.
            let vals = self.0.iter().find(|(n, _)| *n == a.name)?;
            let v: Vec<Value> = vals
                .1
                .iter()
                .map(|x| normalize(a.syntax, x).into())
                .collect();
            Some(Box::leak(v.into_boxed_slice()))
        }
        fn raw(&self, a: &'static AttributeType) -> Option<&[Value]> {
            let vals = self.0.iter().find(|(n, _)| *n == a.name)?;
            let v: Vec<Value> = vals.1.iter().map(|x| Value::from(*x)).collect();
            Some(Box::leak(v.into_boxed_slice()))
        }
        fn dn(&self) -> &str {
            "uid=alice,ou=People,dc=example,dc=org"
        }
    }

    fn alice() -> E {
        E(vec![
            (
                "objectClass",
                vec!["top", "person", "organizationalPerson", "inetOrgPerson"],
            ),
            ("cn", vec!["Alice Smith"]),
            ("sn", vec!["Smith"]),
            ("mail", vec!["Alice@Example.org", "ali@example.org"]),
            ("telephoneNumber", vec!["+1 555-0100"]),
        ])
    }

    fn run(f: LdapFilter) -> Tri {
        compile(&f, &|_| true).eval(&alice())
    }

    #[test]
    fn every_filter_type() {
        use LdapFilter::*;
        assert_eq!(run(Equality("CN".into(), "alice  smith".into())), Tri::True);
        assert_eq!(
            run(Equality("mail".into(), "ALI@example.org".into())),
            Tri::True
        );
        assert_eq!(
            run(Equality(
                "objectClass".into(),
                "2.16.840.1.113730.3.2.2".into()
            )),
            Tri::True
        );
        assert_eq!(
            run(Equality("telephoneNumber".into(), "+15550100".into())),
            Tri::True
        );
        assert_eq!(
            run(Substring("cn".into(), LdapSubstringFilter::from("al*sm*"))),
            Tri::True
        );
        assert_eq!(
            run(Substring(
                "mail".into(),
                LdapSubstringFilter::from("*@example.org")
            )),
            Tri::True
        );
        assert_eq!(run(Present("givenName".into())), Tri::False);
        assert_eq!(run(Present("nonsense".into())), Tri::False);
        assert_eq!(run(Equality("nonsense".into(), "x".into())), Tri::Undefined);
        assert_eq!(
            run(Not(Box::new(Equality("nonsense".into(), "x".into())))),
            Tri::Undefined
        );
        assert_eq!(
            run(Or(vec![
                Equality("nonsense".into(), "x".into()),
                Present("cn".into())
            ])),
            Tri::True
        );
        assert_eq!(run(GreaterOrEqual("sn".into(), "S".into())), Tri::True);
        assert_eq!(run(LessOrEqual("sn".into(), "R".into())), Tri::False);
        assert_eq!(
            run(GreaterOrEqual("mail".into(), "a".into())),
            Tri::Undefined,
            "no ordering rule"
        );
        assert_eq!(run(Approx("sn".into(), "Smyth".into())), Tri::True);
        assert_eq!(
            run(And(vec![
                Present("cn".into()),
                Not(Box::new(Present("mail".into())))
            ])),
            Tri::False
        );
        let ext = |t: Option<&str>, rule: Option<&str>, v: &str, dn: bool| {
            Extensible(LdapMatchingRuleAssertion {
                matching_rule: rule.map(String::from),
                type_: t.map(String::from),
                match_value: v.into(),
                dn_attributes: dn,
            })
        };
        assert_eq!(
            run(ext(
                Some("cn"),
                Some("caseExactMatch"),
                "Alice Smith",
                false
            )),
            Tri::True
        );
        assert_eq!(
            run(ext(
                Some("cn"),
                Some("caseExactMatch"),
                "alice smith",
                false
            )),
            Tri::False
        );
        assert_eq!(run(ext(Some("sn"), None, "SMITH", false)), Tri::True);
        assert_eq!(
            run(ext(Some("ou"), None, "people", true)),
            Tri::True,
            "from the DN"
        );
        assert_eq!(
            run(ext(Some("cn"), Some("1.2.3.4"), "x", false)),
            Tri::Undefined
        );
    }

    #[test]
    fn hidden_attributes_are_undefined() {
        let f = compile(
            &LdapFilter::Equality("mail".into(), "ali@example.org".into()),
            &|a| a.name != "mail",
        );
        assert_eq!(f.eval(&alice()), Tri::Undefined);
    }
}
