//! The store jobs that open and begin enrollments, for the pages and endpoints that start
//! them: each runs one domain operation in one transaction (or one read), and takes only
//! what it uses.

use super::{
    EnrollmentError, find_link, link_account, start_additional, start_from_link, start_setup,
};
use crate::clock::UtcTime;
use crate::passkeys::{Passkeys, Purpose, RegistrationStart};
use crate::recovery::restriction::require_trusted_session;
use crate::store::Store;
use crate::store::sessions::BrowserSession;
use crate::store::users::User;
use crate::users::Email;

/// The account a link names, if the link is usable for one of `purposes` (the page a link
/// opens; it never signs anyone in by itself).
pub async fn open_link(
    store: &Store,
    tenant_id: &str,
    token: &str,
    purposes: &'static [Purpose],
    now: UtcTime,
) -> Result<User, EnrollmentError> {
    let (tenant_id, token) = (tenant_id.to_string(), token.to_string());
    store
        .read(move |conn| {
            let mut last = EnrollmentError::LinkInvalid;
            for purpose in purposes {
                match link_account(conn, &tenant_id, &token, *purpose, now) {
                    Ok(user) => return Ok(user),
                    Err(e) => last = e,
                }
            }
            Err(last)
        })
        .await
}

/// Whether the first-run setup link is still usable.
pub async fn check_setup_link(
    store: &Store,
    tenant_id: &str,
    token: &str,
    now: UtcTime,
) -> Result<(), EnrollmentError> {
    let (tenant_id, token) = (tenant_id.to_string(), token.to_string());
    store
        .read(move |conn| find_link(conn, &tenant_id, &token, Purpose::Setup, now).map(|_| ()))
        .await
}

/// The ceremony a link opens, for the first of `purposes` the link is usable for.
pub async fn begin_from_link(
    store: &Store,
    passkeys: &Passkeys,
    tenant_id: &str,
    token: &str,
    purposes: &'static [Purpose],
    now: UtcTime,
) -> Result<RegistrationStart, EnrollmentError> {
    let (passkeys, tenant_id, token) = (passkeys.clone(), tenant_id.to_string(), token.to_string());
    store
        .write(move |conn| {
            let mut last = EnrollmentError::LinkInvalid;
            for purpose in purposes {
                match start_from_link(conn, &passkeys, &tenant_id, &token, *purpose, now) {
                    Ok((start, _)) => return Ok(start),
                    Err(EnrollmentError::LinkInvalid) => last = EnrollmentError::LinkInvalid,
                    Err(e) => return Err(e),
                }
            }
            Err(last)
        })
        .await
}

/// The first owner's ceremony, from the setup link.
pub async fn begin_setup(
    store: &Store,
    passkeys: &Passkeys,
    tenant_id: &str,
    token: &str,
    email: Email,
    display_name: Option<String>,
    now: UtcTime,
) -> Result<RegistrationStart, EnrollmentError> {
    let (passkeys, tenant_id, token) = (passkeys.clone(), tenant_id.to_string(), token.to_string());
    store
        .write(move |conn| {
            start_setup(
                conn,
                &passkeys,
                &tenant_id,
                &token,
                &email,
                display_name.as_deref(),
                now,
            )
        })
        .await
}

/// A signed-in user starts adding another passkey: a sensitive action, so a recently
/// recovered account confirms with an older passkey first (C3).
pub async fn begin_additional(
    store: &Store,
    passkeys: &Passkeys,
    user: User,
    session: BrowserSession,
    now: UtcTime,
) -> Result<RegistrationStart, EnrollmentError> {
    let passkeys = passkeys.clone();
    store
        .write(move |conn| {
            require_trusted_session(conn, &user, &session, now)?;
            start_additional(conn, &passkeys, &user, now)
        })
        .await
}
