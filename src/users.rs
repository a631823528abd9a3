//! People in a tenant: their email (the login identifier), role and status.

use std::fmt;

use crate::clock::UtcTime;
use crate::store::users::{self as repo, User};
use crate::store::{DbConn, StoreError};

/// A normalised email address: trimmed and lowercased, so one person is one account.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("'{0}' is not a valid email address")]
pub struct InvalidEmail(pub String);

impl Email {
    /// Accepts `local@domain` with a dot-free or dotted domain and no spaces, up to 254
    /// characters (RFC 5321 §4.5.3.1.3). Deliverability is proven by the links we send, not
    /// by a regular expression.
    pub fn parse(raw: &str) -> Result<Email, InvalidEmail> {
        let email = raw.trim().to_lowercase();
        let shown = || InvalidEmail(raw.chars().take(100).collect());
        if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(shown());
        }
        let (local, domain) = email.rsplit_once('@').ok_or_else(shown)?;
        if local.is_empty()
            || local.len() > 64
            || domain.is_empty()
            || domain.starts_with('.')
            || domain.ends_with('.')
            || domain.contains("..")
            || domain.contains('@')
        {
            return Err(shown());
        }
        Ok(Email(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A user's role in their organisation (A2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    pub fn parse(raw: &str) -> Option<Role> {
        match raw {
            "owner" => Some(Role::Owner),
            "admin" => Some(Role::Admin),
            "member" => Some(Role::Member),
            _ => None,
        }
    }

    pub fn of(user: &User) -> Role {
        Role::parse(&user.role).unwrap_or(Role::Member)
    }

    pub fn is_admin(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }
}

/// `Invited` until the first credential is enrolled; `Disabled` users cannot sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserStatus {
    Invited,
    Active,
    Disabled,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Invited => "invited",
            UserStatus::Active => "active",
            UserStatus::Disabled => "disabled",
        }
    }

    pub fn parse(raw: &str) -> Option<UserStatus> {
        [
            UserStatus::Invited,
            UserStatus::Active,
            UserStatus::Disabled,
        ]
        .into_iter()
        .find(|s| s.as_str() == raw)
    }

    /// A user's status; a value this version does not know counts as disabled (it can never
    /// sign in, and nothing treats it as active or invited).
    pub fn of(user: &User) -> UserStatus {
        UserStatus::parse(&user.status).unwrap_or(UserStatus::Disabled)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error(transparent)]
    InvalidEmail(#[from] InvalidEmail),
    #[error("a user with email '{0}' already exists in this tenant")]
    EmailTaken(String),
    #[error("no such user")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a new account starts with.
pub struct NewAccount<'a> {
    pub email: &'a Email,
    pub role: Role,
    pub display_name: Option<&'a str>,
    pub status: UserStatus,
    /// An argon2id PHC string, when the account gets a password.
    pub password_hash: Option<&'a str>,
}

pub fn create_user(
    conn: &mut DbConn,
    tenant_id: &str,
    account: NewAccount<'_>,
    now: UtcTime,
) -> Result<User, UserError> {
    if repo::find_user_by_email(conn, tenant_id, account.email.as_str())?.is_some() {
        return Err(UserError::EmailTaken(account.email.to_string()));
    }
    let user = new_user_row(tenant_id, &account, now);
    repo::insert_user(conn, &user).map_err(|e| {
        if e.is_unique_violation() {
            UserError::EmailTaken(account.email.to_string())
        } else {
            e.into()
        }
    })?;
    if let Some(hash) = account.password_hash {
        repo::insert_password_hash(conn, tenant_id, &user.id, hash, now)?;
    }
    Ok(user)
}

/// The row of a new account, not stored yet.
fn new_user_row(tenant_id: &str, account: &NewAccount<'_>, now: UtcTime) -> User {
    User {
        id: crate::crypto::new_id(),
        tenant_id: tenant_id.to_string(),
        email: account.email.to_string(),
        email_verified: false,
        display_name: account
            .display_name
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_string),
        role: account.role.as_str().to_string(),
        status: account.status.as_str().to_string(),
        is_password_disabled: false,
        enrollment_dismissals: 0,
        enrollment_opt_out_reason: None,
        enrollment_opt_out_at: None,
        restricted_since: None,
        restricted_until: None,
        deadline_notice_sent_at: None,
        created_at: now,
        updated_at: now,
        last_login_at: None,
    }
}

/// An active account made in memory, for the unit tests of rules about users.
#[cfg(test)]
pub(crate) fn sample_user(id: &str, role: Role) -> User {
    let email = Email::parse(&format!("{id}@example.com")).unwrap_or(Email(String::new()));
    let account = NewAccount {
        email: &email,
        role,
        display_name: None,
        status: UserStatus::Active,
        password_hash: None,
    };
    User {
        id: id.to_string(),
        ..new_user_row("t1", &account, crate::clock::Clock::default().now())
    }
}

/// The name to greet a user by.
pub fn display_name(user: &User) -> &str {
    user.display_name.as_deref().unwrap_or(&user.email)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            Email::parse("  Alice@Example.COM ").unwrap().as_str(),
            "alice@example.com"
        );
        assert_eq!(Email::parse("a@b").unwrap().domain(), "b");
        for bad in [
            "",
            "alice",
            "@example.com",
            "alice@",
            "a b@c.d",
            "a@.c",
            "a@c.",
            "a@b..c",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
        assert!(Email::parse(&format!("{}@x.y", "a".repeat(65))).is_err());
    }
}
