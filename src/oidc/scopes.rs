//! Scopes: the OIDC ones a user grants (`openid`, `profile`, `email`, `offline_access`) and
//! the extra API scopes a client may be registered for (e.g. `passgate:admin` for the admin
//! API with client credentials).

use std::collections::BTreeSet;

pub const OPENID: &str = "openid";
pub const PROFILE: &str = "profile";
pub const EMAIL: &str = "email";
pub const OFFLINE_ACCESS: &str = "offline_access";
/// The scope the admin API (issue 5) accepts on client-credentials tokens.
pub const ADMIN: &str = "passgate:admin";

/// The user-facing scopes, in the order discovery lists them.
pub const OIDC_SCOPES: [&str; 4] = [OPENID, PROFILE, EMAIL, OFFLINE_ACCESS];

/// A SQL LIKE pattern that matches a space-separated scope holding `scope` (its `_` escaped,
/// LIKE's one-character wildcard; the statement names `\` as the escape character).
pub fn like_pattern(scope: &str) -> String {
    format!(
        "% {} %",
        scope
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    )
}

pub fn is_oidc_scope(scope: &str) -> bool {
    OIDC_SCOPES.contains(&scope)
}

/// A set of scope tokens (RFC 6749 §3.3: space-delimited, case-sensitive, order irrelevant).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(BTreeSet<String>);

impl Scopes {
    /// Parses a `scope` parameter; `None` when a token has characters RFC 6749 §3.3 forbids.
    pub fn parse(raw: &str) -> Option<Scopes> {
        let mut set = BTreeSet::new();
        for token in raw.split(' ').filter(|t| !t.is_empty()) {
            let valid = token.len() <= 128
                && token
                    .bytes()
                    .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
            if !valid {
                return None;
            }
            set.insert(token.to_string());
        }
        Some(Scopes(set))
    }

    pub fn of<'a>(items: impl IntoIterator<Item = &'a str>) -> Scopes {
        Scopes(items.into_iter().map(str::to_string).collect())
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.0.contains(scope)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn is_subset(&self, other: &Scopes) -> bool {
        self.0.is_subset(&other.0)
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// The space-separated form, in a stable order.
    pub fn to_param(&self) -> String {
        self.iter().collect::<Vec<_>>().join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_as_a_set_and_refuse_forbidden_characters() {
        let s = Scopes::parse("openid  email openid").unwrap();
        assert_eq!(s.to_param(), "email openid");
        assert!(Scopes::parse("openid \"quoted\"").is_none());
        assert!(Scopes::parse("back\\slash").is_none());
        assert!(Scopes::parse("").unwrap().is_empty());
        assert!(Scopes::parse("openid").unwrap().is_subset(&s));
    }

    #[test]
    fn a_scope_becomes_a_like_pattern_with_its_wildcards_escaped() {
        assert_eq!(like_pattern(OFFLINE_ACCESS), "% offline\\_access %");
        assert_eq!(like_pattern("a%b\\c"), "% a\\%b\\\\c %");
    }
}
