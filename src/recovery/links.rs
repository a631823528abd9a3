//! Recovery and new-device links (C2, C3, C4): single use, short-lived, stored as hashes,
//! each opening a passkey registration for one account.

use serde_json::json;
use time::Duration;

use super::RecoveryError;
use crate::admin::{AdminActor, AdminRefusal};
use crate::audit::{self, Actor, Record};
use crate::clock::UtcTime;
use crate::config::Settings;
use crate::links::{IssuedLink, LinkRequest, LinkTerms, issue_link};
use crate::mail::{self, AdminRecoveryLink, EmailRecoveryLink};
use crate::passkeys::Purpose;
use crate::policy::{self, EmailRecovery};
use crate::store::tenants::Tenant;
use crate::store::users::{self as user_repo, User};
use crate::store::{DbConn, passkeys as passkey_repo};
use crate::users::{Email, UserStatus};

fn ttl(d: std::time::Duration) -> Duration {
    Duration::try_from(d).unwrap_or(Duration::minutes(15))
}

/// C3: mails a recovery link to an active account with this email. Says nothing about
/// whether there is one: the caller answers the same either way.
pub fn request_email_recovery(
    conn: &mut DbConn,
    tenant: &Tenant,
    email: &Email,
    settings: &Settings,
    now: UtcTime,
) -> Result<(), RecoveryError> {
    let policy = policy::load(conn, &tenant.id).map_err(crate::passkeys::PasskeyError::from)?;
    if policy.email_recovery == EmailRecovery::Off {
        return Err(RecoveryError::EmailRecoveryOff);
    }
    let Some(user) = user_repo::find_user_by_email(conn, &tenant.id, email.as_str())?
        .filter(|u| UserStatus::of(u) == UserStatus::Active)
    else {
        return Ok(());
    };
    let lifetime = ttl(settings.recovery.email_link_ttl);
    let base = settings.public_base();
    let link = issue_link(
        conn,
        LinkRequest {
            tenant,
            user_id: Some(&user.id),
            purpose: Purpose::EmailRecovery,
            page: "recover/link",
            created_by: None,
        },
        LinkTerms {
            base_url: &base,
            ttl: lifetime,
        },
        now,
    )?;
    audit::record(
        conn,
        Record {
            tenant_id: &tenant.id,
            event_type: "recovery.email_requested",
            actor: Actor::User(user.id.clone()),
            subject_user_id: Some(&user.id),
            client: None,
            details: json!({}),
            needs_review: false,
        },
        now,
    )?;
    mail::enqueue(
        conn,
        tenant,
        &settings.mail_from,
        &user.email,
        &EmailRecoveryLink {
            tenant_name: tenant.name.clone(),
            email: user.email.clone(),
            link,
            minutes: lifetime.whole_minutes(),
        },
        now,
    )?;
    Ok(())
}

/// An admin-assisted recovery just started.
#[derive(Debug)]
pub struct AdminRecovery {
    pub user: User,
    pub link: IssuedLink,
    pub expires_at: UtcTime,
    pub passkeys_revoked: usize,
}

/// C4: an owner or admin starts recovery for a user of the same tenant: a link (also mailed
/// to the user), optionally revoking the user's passkeys and sessions (a lost or stolen
/// device).
pub fn start_admin_recovery(
    conn: &mut DbConn,
    tenant: &Tenant,
    actor: &AdminActor,
    target_user_id: &str,
    revoke_passkeys: bool,
    settings: &Settings,
    now: UtcTime,
) -> Result<AdminRecovery, RecoveryError> {
    let user = user_repo::find_user(conn, &tenant.id, target_user_id)?
        .filter(|u| UserStatus::of(u) != UserStatus::Disabled)
        .ok_or(RecoveryError::UserNotFound)?;
    actor.may_act_on(&user).map_err(|refusal| match refusal {
        AdminRefusal::NotAnAdmin => {
            RecoveryError::Forbidden("only owners and admins can start a recovery")
        }
        AdminRefusal::TargetIsOwner => RecoveryError::Forbidden("an admin cannot recover an owner"),
    })?;
    let passkeys_revoked = if revoke_passkeys {
        let removed = passkey_repo::delete_user_passkeys(conn, &tenant.id, &user.id)?;
        crate::sessions::end_all_sessions(conn, &tenant.id, &user.id, now)?;
        removed
    } else {
        0
    };
    let lifetime = ttl(settings.recovery.admin_link_ttl);
    let base = settings.public_base();
    let created_by = actor.created_by();
    let url = issue_link(
        conn,
        LinkRequest {
            tenant,
            user_id: Some(&user.id),
            purpose: Purpose::AdminRecovery,
            page: "recover/link",
            created_by,
        },
        LinkTerms {
            base_url: &base,
            ttl: lifetime,
        },
        now,
    )?;
    audit::record(
        conn,
        Record {
            tenant_id: &tenant.id,
            event_type: "recovery.admin_started",
            actor: actor.audit(),
            subject_user_id: Some(&user.id),
            client: None,
            details: json!({ "passkeys_revoked": passkeys_revoked, "expires_at": crate::clock::display(now + lifetime) }),
            needs_review: true,
        },
        now,
    )?;
    mail::enqueue(
        conn,
        tenant,
        &settings.mail_from,
        &user.email,
        &AdminRecoveryLink {
            tenant_name: tenant.name.clone(),
            email: user.email.clone(),
            link: url.clone(),
            hours: lifetime.whole_hours(),
            passkeys_revoked: passkeys_revoked > 0,
        },
        now,
    )?;
    Ok(AdminRecovery {
        user: user.clone(),
        link: IssuedLink {
            user: Some(user),
            url,
        },
        expires_at: now + lifetime,
        passkeys_revoked,
    })
}

/// C2: a short-lived link a signed-in user opens on a new device to add a passkey there.
pub fn create_device_link(
    conn: &mut DbConn,
    tenant: &Tenant,
    user: &User,
    settings: &Settings,
    now: UtcTime,
) -> Result<(String, UtcTime), RecoveryError> {
    let lifetime = ttl(settings.recovery.device_link_ttl);
    let base = settings.public_base();
    let url = issue_link(
        conn,
        LinkRequest {
            tenant,
            user_id: Some(&user.id),
            purpose: Purpose::TrustedDevice,
            page: "device",
            created_by: Some(&user.id),
        },
        LinkTerms {
            base_url: &base,
            ttl: lifetime,
        },
        now,
    )?;
    Ok((url, now + lifetime))
}
