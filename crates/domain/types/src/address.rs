//! Mailbox addresses as SMTP and the directory see them (RFC 5321 §4.1.2).
use std::fmt;

/// Why a string is not a usable mailbox address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// No `@`, or nothing on one side of it.
    #[error("not an address of the form local@domain")]
    Shape,
    /// RFC 5321 §4.5.3.1.1: a local part is at most 64 octets.
    #[error("local part longer than 64 octets")]
    LocalTooLong,
    /// RFC 5321 §4.5.3.1.2: a domain is at most 255 octets.
    #[error("domain longer than 255 octets")]
    DomainTooLong,
    /// A character that cannot appear unquoted in an address we store.
    #[error("invalid character in address")]
    Character,
}

/// A mailbox `local@domain`. The domain is kept lower-case; the local part as
/// given (RFC 5321 §2.4 says it may be case-sensitive), with [`EmailAddress::key`]
/// giving the case-folded form the directory matches on, as every mainstream
/// server does.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress {
    local: String,
    domain: String,
}

impl EmailAddress {
    /// Parses `local@domain`, splitting at the last `@` (a quoted local part may hold one).
    ///
    /// ```
    /// use postgate_types::EmailAddress;
    /// let a = EmailAddress::parse("Alice.Smith@Example.ORG").unwrap();
    /// assert_eq!(a.domain(), "example.org");
    /// assert_eq!(a.local(), "Alice.Smith");
    /// assert_eq!(a.key(), "alice.smith@example.org");
    /// ```
    pub fn parse(s: &str) -> Result<Self, AddressError> {
        let s = s.trim();
        let s = s
            .strip_prefix('<')
            .and_then(|s| s.strip_suffix('>'))
            .unwrap_or(s);
        let (local, domain) = s.rsplit_once('@').ok_or(AddressError::Shape)?;
        if local.is_empty() || domain.is_empty() {
            return Err(AddressError::Shape);
        }
        if local.len() > 64 {
            return Err(AddressError::LocalTooLong);
        }
        if domain.len() > 255 {
            return Err(AddressError::DomainTooLong);
        }
        if local
            .chars()
            .chain(domain.chars())
            .any(|c| c.is_control() || c == ' ' || c == '<' || c == '>')
            || domain.contains('@')
        {
            return Err(AddressError::Character);
        }
        let domain = domain.trim_end_matches('.').to_lowercase();
        Ok(EmailAddress {
            local: local.to_string(),
            domain,
        })
    }

    /// The local part as given.
    pub fn local(&self) -> &str {
        &self.local
    }
    /// The domain, lower-case.
    pub fn domain(&self) -> &str {
        &self.domain
    }
    /// The local part case-folded: what the directory matches on.
    pub fn local_key(&self) -> String {
        self.local.to_lowercase()
    }
    /// The whole address case-folded.
    pub fn key(&self) -> String {
        format!("{}@{}", self.local_key(), self.domain)
    }
    /// Whether any character is outside ASCII (needs SMTPUTF8, RFC 6531).
    pub fn is_utf8(&self) -> bool {
        !self.local.is_ascii() || !self.domain.is_ascii()
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{self}>")
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = AddressError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        EmailAddress::parse(&s)
    }
}

impl From<EmailAddress> for String {
    fn from(a: EmailAddress) -> String {
        a.to_string()
    }
}

impl std::str::FromStr for EmailAddress {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EmailAddress::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        assert!(EmailAddress::parse("a@b").is_ok());
        assert!(EmailAddress::parse("<a@b>").is_ok());
        assert_eq!(EmailAddress::parse("ab"), Err(AddressError::Shape));
        assert_eq!(EmailAddress::parse("@b"), Err(AddressError::Shape));
        assert_eq!(EmailAddress::parse("a@"), Err(AddressError::Shape));
        assert_eq!(EmailAddress::parse("a b@c"), Err(AddressError::Character));
        let long = format!("{}@x", "a".repeat(65));
        assert_eq!(EmailAddress::parse(&long), Err(AddressError::LocalTooLong));
        let u = EmailAddress::parse("Jörg@Bücher.example").unwrap();
        assert!(u.is_utf8());
        assert_eq!(u.key(), "jörg@bücher.example");
    }
}
