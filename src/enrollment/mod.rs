//! Getting passkeys onto accounts (S5, M5, C2): invitations to named seats, the first-run
//! owner setup, links opened on a new device or for recovery, and adding passkeys from the
//! account page. Every ceremony ends in [`finish`].

mod begin;
mod finish;

use serde_json::{Value, json};
use time::Duration;

use crate::audit::{self, Actor, Record};
use crate::clock::UtcTime;
use crate::config::Settings;
use crate::links::{self, LinkRequest, LinkTerms};
use crate::mail::{self, Invitation};
use crate::passkeys::{self, PasskeyError, Passkeys, Purpose, RegistrationStart};
use crate::store::links::LinkToken;
use crate::store::tenants::Tenant;
use crate::store::users::{self as user_repo, User};
use crate::store::{DbConn, StoreError, tenants as tenant_repo};
use crate::tenants::{self, Slug};
use crate::users::{self, Email, NewAccount, Role, UserError, UserStatus};

pub use crate::links::IssuedLink;
pub use begin::{begin_additional, begin_from_link, begin_setup, check_setup_link, open_link};
pub use finish::{Enrolled, EnrollmentTerms, RegistrationResponse, finish};

/// The tenant a fresh installation starts with.
pub const DEFAULT_TENANT: &str = "default";
const SETUP_LINK_TTL: Duration = Duration::hours(24);

#[derive(Debug, thiserror::Error)]
pub enum EnrollmentError {
    #[error("this link has expired or was already used")]
    LinkInvalid,
    #[error("{0} already has an active account; use account recovery instead")]
    AlreadyActive(String),
    #[error("that passkey registration belongs to another account")]
    NotYours,
    #[error("recovery by email is turned off in this organisation; ask your administrator")]
    EmailRecoveryOff,
    #[error(transparent)]
    Passkey(#[from] PasskeyError),
    #[error(transparent)]
    User(#[from] UserError),
    #[error(transparent)]
    Tenant(#[from] tenants::TenantError),
    #[error(transparent)]
    Recovery(#[from] crate::recovery::RecoveryError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Invites a person to a named seat: the account exists (status `invited`) and the link —
/// printed for the inviter and mailed to the person — enrolls its first passkey. Inviting
/// again replaces the previous link.
pub fn invite_user(
    conn: &mut DbConn,
    tenant: &Tenant,
    email: &Email,
    role: Role,
    settings: &Settings,
    actor: Actor,
    now: UtcTime,
) -> Result<IssuedLink, EnrollmentError> {
    let ttl = Duration::try_from(settings.invitation_ttl).unwrap_or(Duration::hours(72));
    let base = settings.public_base();
    let terms = LinkTerms {
        base_url: &base,
        ttl,
    };
    let user = match user_repo::find_user_by_email(conn, &tenant.id, email.as_str())? {
        Some(u) if UserStatus::of(&u) == UserStatus::Invited => u,
        Some(_) => return Err(EnrollmentError::AlreadyActive(email.to_string())),
        None => users::create_user(
            conn,
            &tenant.id,
            NewAccount {
                email,
                role,
                display_name: None,
                status: UserStatus::Invited,
                password_hash: None,
            },
            now,
        )?,
    };
    let created_by = match &actor {
        Actor::User(id) => Some(id.as_str()),
        _ => None,
    };
    let url = links::issue_link(
        conn,
        LinkRequest {
            tenant,
            user_id: Some(&user.id),
            purpose: Purpose::Invite,
            page: "enroll",
            created_by,
        },
        terms,
        now,
    )?;
    mail::enqueue(
        conn,
        tenant,
        &settings.mail_from,
        &user.email,
        &Invitation {
            tenant_name: tenant.name.clone(),
            email: user.email.clone(),
            link: url.clone(),
            hours: ttl.whole_hours(),
        },
        now,
    )?;
    audit::record(
        conn,
        Record {
            tenant_id: &tenant.id,
            event_type: "user.invited",
            actor,
            subject_user_id: Some(&user.id),
            client: None,
            details: json!({ "email": user.email, "role": user.role }),
            needs_review: false,
        },
        now,
    )?;
    Ok(IssuedLink {
        user: Some(user),
        url,
    })
}

/// First run: with no tenant, creates `default`; while no owner has enrolled anywhere,
/// issues a fresh one-time setup link (the previous one stops working).
pub fn ensure_setup_link(
    conn: &mut DbConn,
    base_url: &str,
    now: UtcTime,
) -> Result<Option<IssuedLink>, EnrollmentError> {
    if tenant_repo::count_tenants(conn)? == 0 {
        let slug = Slug::parse(DEFAULT_TENANT).map_err(tenants::TenantError::from)?;
        tenants::create_tenant(conn, &slug, Some("Default organisation"), now)?;
    }
    if user_repo::count_active_owners(conn)? > 0 {
        return Ok(None);
    }
    let Some(tenant) = tenant_repo::find_tenant_by_slug(conn, DEFAULT_TENANT)? else {
        return Ok(None);
    };
    let url = links::issue_link(
        conn,
        LinkRequest {
            tenant: &tenant,
            user_id: None,
            purpose: Purpose::Setup,
            page: "setup",
            created_by: None,
        },
        LinkTerms {
            base_url,
            ttl: SETUP_LINK_TTL,
        },
        now,
    )?;
    Ok(Some(IssuedLink { user: None, url }))
}

/// The link behind a token, if it can still be used for `link_purpose`.
pub fn find_link(
    conn: &mut DbConn,
    tenant_id: &str,
    token: &str,
    link_purpose: Purpose,
    now: UtcTime,
) -> Result<LinkToken, EnrollmentError> {
    links::find_usable(conn, tenant_id, token, link_purpose, now)?
        .ok_or(EnrollmentError::LinkInvalid)
}

/// The ceremony a link opens: an invitation's first passkey, a recovery, or a new device.
/// Only the account the link names can be enrolled, and only if its state fits the link.
pub fn start_from_link(
    conn: &mut DbConn,
    passkeys: &Passkeys,
    tenant_id: &str,
    token: &str,
    link_purpose: Purpose,
    now: UtcTime,
) -> Result<(RegistrationStart, User), EnrollmentError> {
    let link = find_link(conn, tenant_id, token, link_purpose, now)?;
    let fits = |u: &User| match link_purpose {
        Purpose::Invite => UserStatus::of(u) == UserStatus::Invited,
        Purpose::AdminRecovery => UserStatus::of(u) != UserStatus::Disabled,
        Purpose::EmailRecovery | Purpose::TrustedDevice => UserStatus::of(u) == UserStatus::Active,
        // No link opens these ceremonies.
        Purpose::Setup | Purpose::Account | Purpose::Login | Purpose::RecoveryCode => false,
    };
    let user = link
        .user_id
        .as_deref()
        .map(|id| user_repo::find_user(conn, tenant_id, id))
        .transpose()?
        .flatten()
        .filter(fits)
        .ok_or(EnrollmentError::LinkInvalid)?;
    let policy = crate::policy::load(conn, tenant_id).map_err(PasskeyError::from)?;
    // Turning email recovery off (say, during a phishing campaign) stops links already sent.
    if link_purpose == Purpose::EmailRecovery
        && policy.email_recovery == crate::policy::EmailRecovery::Off
    {
        return Err(EnrollmentError::EmailRecoveryOff);
    }
    let start = passkeys::start_registration(
        conn,
        passkeys,
        &policy,
        &user,
        link_purpose,
        json!({ "link_id": link.id }),
        now,
    )?;
    Ok((start, user))
}

/// The account a usable link names, for the page that opens it.
pub fn link_account(
    conn: &mut DbConn,
    tenant_id: &str,
    token: &str,
    link_purpose: Purpose,
    now: UtcTime,
) -> Result<User, EnrollmentError> {
    let link = find_link(conn, tenant_id, token, link_purpose, now)?;
    link.user_id
        .as_deref()
        .map(|id| user_repo::find_user(conn, tenant_id, id))
        .transpose()?
        .flatten()
        .ok_or(EnrollmentError::LinkInvalid)
}

/// The first owner's ceremony: the account is made (or reused, if an earlier attempt was
/// abandoned) from the email given on the setup page.
pub fn start_setup(
    conn: &mut DbConn,
    passkeys: &Passkeys,
    tenant_id: &str,
    token: &str,
    email: &Email,
    display_name: Option<&str>,
    now: UtcTime,
) -> Result<RegistrationStart, EnrollmentError> {
    let link = find_link(conn, tenant_id, token, Purpose::Setup, now)?;
    let user = match user_repo::find_user_by_email(conn, tenant_id, email.as_str())? {
        Some(u) if UserStatus::of(&u) == UserStatus::Invited => u,
        Some(_) => return Err(EnrollmentError::AlreadyActive(email.to_string())),
        None => users::create_user(
            conn,
            tenant_id,
            NewAccount {
                email,
                role: Role::Owner,
                display_name,
                status: UserStatus::Invited,
                password_hash: None,
            },
            now,
        )?,
    };
    let policy = crate::policy::load(conn, tenant_id).map_err(PasskeyError::from)?;
    Ok(passkeys::start_registration(
        conn,
        passkeys,
        &policy,
        &user,
        Purpose::Setup,
        json!({ "link_id": link.id }),
        now,
    )?)
}

/// A signed-in user adds another passkey (P10, C2 on the same device).
pub fn start_additional(
    conn: &mut DbConn,
    passkeys: &Passkeys,
    user: &User,
    now: UtcTime,
) -> Result<RegistrationStart, EnrollmentError> {
    let policy = crate::policy::load(conn, &user.tenant_id).map_err(PasskeyError::from)?;
    Ok(passkeys::start_registration(
        conn,
        passkeys,
        &policy,
        user,
        Purpose::Account,
        Value::Object(Default::default()),
        now,
    )?)
}
