//! What people do with their own account (P9, P10): see, rename and remove their passkeys.

use serde_json::json;

use crate::audit::{self, Actor, Record};
use crate::client::ClientInfo;
use crate::clock::UtcTime;
use crate::config::Settings;
use crate::crypto::MasterKey;
use crate::passkeys::{PasskeyError, clean_label};
use crate::recovery::restriction::require_trusted_session;
use crate::recovery::{RecoveryCode, RecoveryError, codes, links};
use crate::store::passkeys::{self as repo, Passkey};
use crate::store::sessions::BrowserSession;
use crate::store::tenants::Tenant;
use crate::store::users::User;
use crate::store::{DbConn, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("no such passkey on this account")]
    PasskeyNotFound,
    #[error(transparent)]
    Passkey(#[from] PasskeyError),
    #[error(transparent)]
    Recovery(#[from] RecoveryError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub fn list_passkeys(conn: &mut DbConn, user: &User) -> Result<Vec<Passkey>, AccountError> {
    Ok(repo::list_user_passkeys(conn, &user.tenant_id, &user.id)?)
}

pub fn find_passkey(conn: &mut DbConn, user: &User, id: &str) -> Result<Passkey, AccountError> {
    repo::find_user_passkey(conn, &user.tenant_id, &user.id, id)?
        .ok_or(AccountError::PasskeyNotFound)
}

pub fn rename_passkey(
    conn: &mut DbConn,
    user: &User,
    id: &str,
    label: &str,
    client: &ClientInfo,
    now: UtcTime,
) -> Result<(), AccountError> {
    let label = clean_label(label)?;
    if repo::rename_passkey(conn, &user.tenant_id, &user.id, id, &label)? == 0 {
        return Err(AccountError::PasskeyNotFound);
    }
    audit::record(
        conn,
        Record {
            tenant_id: &user.tenant_id,
            event_type: "passkey.renamed",
            actor: Actor::User(user.id.clone()),
            subject_user_id: Some(&user.id),
            client: Some(client),
            details: json!({ "passkey_id": id, "label": label }),
            needs_review: false,
        },
        now,
    )?;
    Ok(())
}

/// Removes one of the user's own passkeys (a sensitive action under C3); the audit event is
/// written with it.
pub fn remove_passkey(
    conn: &mut DbConn,
    user: &User,
    session: &BrowserSession,
    id: &str,
    client: &ClientInfo,
    now: UtcTime,
) -> Result<Passkey, AccountError> {
    let passkey = find_passkey(conn, user, id)?;
    require_trusted_session(conn, user, session, now)?;
    repo::delete_passkey(conn, &user.tenant_id, &user.id, id)?;
    audit::record(
        conn,
        Record {
            tenant_id: &user.tenant_id,
            event_type: "passkey.removed",
            actor: Actor::User(user.id.clone()),
            subject_user_id: Some(&user.id),
            client: Some(client),
            details: json!({ "passkey_id": passkey.id, "label": passkey.label }),
            needs_review: false,
        },
        now,
    )?;
    Ok(passkey)
}

pub fn has_recovery_code(conn: &mut DbConn, user: &User) -> Result<bool, AccountError> {
    Ok(crate::store::recovery_codes::find_code(conn, &user.tenant_id, &user.id)?.is_some())
}

/// C1 "regenerate": a new recovery code replaces the old one, shown once.
pub fn regenerate_recovery_code(
    conn: &mut DbConn,
    key: &MasterKey,
    user: &User,
    session: &BrowserSession,
    client: &ClientInfo,
    now: UtcTime,
) -> Result<RecoveryCode, AccountError> {
    require_trusted_session(conn, user, session, now)?;
    let code = codes::issue(conn, key, user, now)?;
    audit::record(
        conn,
        Record {
            tenant_id: &user.tenant_id,
            event_type: "recovery.code_regenerated",
            actor: Actor::User(user.id.clone()),
            subject_user_id: Some(&user.id),
            client: Some(client),
            details: serde_json::json!({}),
            needs_review: false,
        },
        now,
    )?;
    Ok(code)
}

/// C2: a link to open on a device that is not signed in, to add a passkey there.
pub fn make_device_link(
    conn: &mut DbConn,
    tenant: &Tenant,
    user: &User,
    session: &BrowserSession,
    settings: &Settings,
    now: UtcTime,
) -> Result<(String, UtcTime), AccountError> {
    require_trusted_session(conn, user, session, now)?;
    Ok(links::create_device_link(
        conn, tenant, user, settings, now,
    )?)
}
