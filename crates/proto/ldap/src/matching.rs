//! Matching rules (RFC 4517 §4.2), through one normal form per syntax: two
//! values match for equality when their normal forms are equal, order by
//! their normal forms, and substring assertions apply to them (RFC 4518's
//! string preparation, reduced to what the directory's values need: case
//! folding and insignificant space handling).
use crate::schema::{self, Syntax};

/// The normal form of `value` under `syntax`.
pub fn normalize(syntax: Syntax, value: &str) -> String {
    match syntax {
        Syntax::CaseIgnore | Syntax::CaseIgnoreIa5 => fold_spaces(value).to_lowercase(),
        // RFC 4517 §4.2.29: spaces and hyphens are insignificant.
        Syntax::Telephone => value
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .flat_map(char::to_lowercase)
            .collect(),
        Syntax::Dn => crate::dn::normalize(value).unwrap_or_else(|| value.to_lowercase()),
        // Names and OIDs of object classes and attributes compare alike.
        Syntax::Oid => {
            let v = value.trim();
            if let Some(c) = schema::object_class(v) {
                c.name.to_ascii_lowercase()
            } else if let Some(a) = schema::attribute(v) {
                a.name.to_ascii_lowercase()
            } else {
                v.to_ascii_lowercase()
            }
        }
        Syntax::Boolean => value.trim().to_ascii_uppercase(),
        Syntax::Integer => value
            .trim()
            .parse::<i64>()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| value.trim().to_string()),
    }
}

/// Leading and trailing spaces removed, inner runs of spaces made one
/// (RFC 4518 §2.6.1, insignificant space handling).
fn fold_spaces(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for w in v.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

/// A substring assertion on normal forms (RFC 4511 §4.5.1.7.2): `initial`
/// at the start, each of `any` after it in order, `final_` at the end,
/// without overlap.
pub fn substrings(
    value: &str,
    initial: Option<&str>,
    any: &[String],
    final_: Option<&str>,
) -> bool {
    let mut rest = value;
    if let Some(i) = initial {
        match rest.strip_prefix(i) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    let mut end = rest.len();
    if let Some(f) = final_ {
        if !rest.ends_with(f) {
            return false;
        }
        end -= f.len();
    }
    let mut rest = &rest[..end];
    for a in any {
        if a.is_empty() {
            continue;
        }
        match rest.find(a.as_str()) {
            Some(p) => rest = &rest[p + a.len()..],
            None => return false,
        }
    }
    true
}

/// The normal form of a substring assertion's piece: as for equality, but
/// with spaces at its ends kept as one (they are significant next to "*").
pub fn normalize_piece(syntax: Syntax, piece: &str) -> String {
    match syntax {
        Syntax::CaseIgnore | Syntax::CaseIgnoreIa5 => {
            let lead = piece.starts_with(char::is_whitespace);
            let trail = piece.ends_with(char::is_whitespace) && !piece.trim().is_empty();
            let mut s = String::new();
            if lead && !piece.trim().is_empty() {
                s.push(' ');
            }
            s.push_str(&fold_spaces(piece).to_lowercase());
            if trail {
                s.push(' ');
            }
            s
        }
        other => normalize(other, piece),
    }
}

/// Approximate match (RFC 4511 §4.5.1.7.6 leaves the algorithm to the
/// server): equal once case, spaces and punctuation are dropped, or each
/// word sounds alike (Soundex), as OpenLDAP's approx matching does.
pub fn approx(value: &str, assertion: &str) -> bool {
    let squash = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect()
    };
    if squash(value) == squash(assertion) {
        return true;
    }
    let words = |s: &str| -> Vec<String> { s.split_whitespace().map(soundex).collect() };
    let (v, a) = (words(value), words(assertion));
    !a.is_empty() && v == a
}

/// American Soundex of a word ("Robert" → "R163").
pub fn soundex(word: &str) -> String {
    let code = |c: char| match c.to_ascii_lowercase() {
        'b' | 'f' | 'p' | 'v' => Some('1'),
        'c' | 'g' | 'j' | 'k' | 'q' | 's' | 'x' | 'z' => Some('2'),
        'd' | 't' => Some('3'),
        'l' => Some('4'),
        'm' | 'n' => Some('5'),
        'r' => Some('6'),
        _ => None,
    };
    let mut chars = word.chars().filter(|c| c.is_ascii_alphabetic());
    let Some(first) = chars.next() else {
        return word.to_lowercase();
    };
    let mut out = String::new();
    out.push(first.to_ascii_uppercase());
    let mut last = code(first);
    for c in chars {
        let d = code(c);
        if d.is_some() && d != last {
            out.push(d.unwrap_or('0'));
            if out.len() == 4 {
                break;
            }
        }
        // 'h' and 'w' do not separate equal codes; vowels do.
        if !matches!(c.to_ascii_lowercase(), 'h' | 'w') {
            last = d;
        }
    }
    while out.len() < 4 {
        out.push('0');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_forms() {
        assert_eq!(
            normalize(Syntax::CaseIgnore, "  Alice   SMITH "),
            "alice smith"
        );
        assert_eq!(normalize(Syntax::Telephone, "+1 555-0100"), "+15550100");
        assert_eq!(normalize(Syntax::Oid, "InetOrgPerson"), "inetorgperson");
        assert_eq!(normalize(Syntax::Oid, "2.5.6.6"), "person");
        assert_eq!(normalize(Syntax::Dn, "UID=a, DC=X"), "uid=a,dc=x");
        assert_eq!(normalize(Syntax::Boolean, "true"), "TRUE");
    }

    #[test]
    fn substring_assertions() {
        assert!(substrings("user 123", Some("user 1"), &[], None));
        assert!(substrings(
            "user123@example.test",
            None,
            &["er123@".into()],
            None
        ));
        assert!(substrings("abcabc", Some("ab"), &["ca".into()], Some("bc")));
        assert!(
            !substrings("abc", Some("ab"), &[], Some("bc")),
            "no overlap"
        );
        assert!(!substrings("alice", None, &["x".into()], None));
        assert_eq!(normalize_piece(Syntax::CaseIgnore, "User "), "user ");
    }

    #[test]
    fn approximate() {
        assert_eq!(soundex("Robert"), "R163");
        assert_eq!(soundex("Rupert"), "R163");
        assert_eq!(soundex("Ashcraft"), "A261");
        assert!(approx("Jon Smith", "John Smyth"));
        assert!(approx("O'Brien", "obrien"));
        assert!(!approx("Alice", "Bob"));
    }
}
