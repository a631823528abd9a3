//! Getting a first passkey onto an account (S5, M5): invitations to named seats, the
//! first-run owner setup, and adding passkeys from the account page. Links are single use,
//! expire, and are stored only as hashes.

use serde_json::{Value, json};
use time::Duration;
use webauthn_rs_core::proto::RegisterPublicKeyCredential;

use crate::app::AppState;
use crate::audit::{self, Actor, Record};
use crate::client::ClientInfo;
use crate::clock::UtcTime;
use crate::crypto::{new_id, random_token, sha256_hex};
use crate::passkeys::{self, PasskeyError, RegistrationStart, purpose};
use crate::sessions::{self, StartedSession};
use crate::store::links::{self, LinkToken};
use crate::store::passkeys::Passkey;
use crate::store::tenants::Tenant;
use crate::store::users::{self as user_repo, User};
use crate::store::{DbConn, StoreError, tenants as tenant_repo};
use crate::tenants::{self, Slug};
use crate::users::{self, Email, NewAccount, Role, UserError, status};

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
    #[error(transparent)]
    Passkey(#[from] PasskeyError),
    #[error(transparent)]
    User(#[from] UserError),
    #[error(transparent)]
    Tenant(#[from] tenants::TenantError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A link just made: the token appears only here and in the URL.
#[derive(Debug)]
pub struct IssuedLink {
    pub user: Option<User>,
    pub url: String,
}

/// Where links point and how long they live.
#[derive(Debug, Clone, Copy)]
pub struct LinkTerms<'a> {
    pub base_url: &'a str,
    pub ttl: Duration,
}

/// A link to make: for whom, for what, opening which page.
struct LinkRequest<'a> {
    tenant: &'a Tenant,
    user_id: Option<&'a str>,
    purpose: &'a str,
    page: &'a str,
    created_by: Option<&'a str>,
}

fn issue_link(
    conn: &mut DbConn,
    request: LinkRequest<'_>,
    terms: LinkTerms<'_>,
    now: UtcTime,
) -> Result<String, StoreError> {
    let LinkRequest {
        tenant,
        user_id,
        purpose: link_purpose,
        page,
        created_by,
    } = request;
    let LinkTerms { base_url, ttl } = terms;
    links::void_links(conn, &tenant.id, user_id, link_purpose, now)?;
    let token = random_token(32);
    links::insert_link(
        conn,
        &LinkToken {
            id: new_id(),
            tenant_id: tenant.id.clone(),
            user_id: user_id.map(str::to_string),
            purpose: link_purpose.to_string(),
            token_hash: sha256_hex(&token),
            created_by: created_by.map(str::to_string),
            details: "{}".into(),
            created_at: now,
            expires_at: now + ttl,
            used_at: None,
        },
    )?;
    Ok(format!("{base_url}/t/{}/{page}?token={token}", tenant.slug))
}

/// Invites a person to a named seat: the account exists (status `invited`) and the link
/// enrolls its first passkey. Inviting again replaces the previous link.
pub fn invite_user(
    conn: &mut DbConn,
    tenant: &Tenant,
    email: &Email,
    role: Role,
    terms: LinkTerms<'_>,
    actor: Actor,
    now: UtcTime,
) -> Result<IssuedLink, EnrollmentError> {
    let user = match user_repo::find_user_by_email(conn, &tenant.id, email.as_str())? {
        Some(u) if u.status == status::INVITED => u,
        Some(_) => return Err(EnrollmentError::AlreadyActive(email.to_string())),
        None => users::create_user(
            conn,
            &tenant.id,
            NewAccount {
                email,
                role,
                display_name: None,
                status: status::INVITED,
                password_hash: None,
            },
            now,
        )?,
    };
    let created_by = match &actor {
        Actor::User(id) => Some(id.as_str()),
        _ => None,
    };
    let url = issue_link(
        conn,
        LinkRequest {
            tenant,
            user_id: Some(&user.id),
            purpose: purpose::INVITE,
            page: "enroll",
            created_by,
        },
        terms,
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
    let url = issue_link(
        conn,
        LinkRequest {
            tenant: &tenant,
            user_id: None,
            purpose: purpose::SETUP,
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

/// The link behind a token, if it can still be used.
pub fn find_link(
    conn: &mut DbConn,
    tenant_id: &str,
    token: &str,
    link_purpose: &str,
    now: UtcTime,
) -> Result<LinkToken, EnrollmentError> {
    links::find_usable_link(conn, tenant_id, &sha256_hex(token), link_purpose, now)?
        .ok_or(EnrollmentError::LinkInvalid)
}

/// The invited person's first passkey ceremony.
pub fn start_invited(
    conn: &mut DbConn,
    state: &AppState,
    tenant_id: &str,
    token: &str,
    now: UtcTime,
) -> Result<RegistrationStart, EnrollmentError> {
    let link = find_link(conn, tenant_id, token, purpose::INVITE, now)?;
    let user = link
        .user_id
        .as_deref()
        .map(|id| user_repo::find_user(conn, tenant_id, id))
        .transpose()?
        .flatten()
        .filter(|u| u.status == status::INVITED)
        .ok_or(EnrollmentError::LinkInvalid)?;
    let policy = crate::policy::load(conn, tenant_id).map_err(PasskeyError::from)?;
    Ok(passkeys::start_registration(
        conn,
        &state.passkeys,
        &policy,
        &user,
        purpose::INVITE,
        json!({ "link_id": link.id }),
        now,
    )?)
}

/// The first owner's ceremony: the account is made (or reused, if an earlier attempt was
/// abandoned) from the email given on the setup page.
pub fn start_setup(
    conn: &mut DbConn,
    state: &AppState,
    tenant_id: &str,
    token: &str,
    email: &Email,
    display_name: Option<&str>,
    now: UtcTime,
) -> Result<RegistrationStart, EnrollmentError> {
    let link = find_link(conn, tenant_id, token, purpose::SETUP, now)?;
    let user = match user_repo::find_user_by_email(conn, tenant_id, email.as_str())? {
        Some(u) if u.status == status::INVITED => u,
        Some(_) => return Err(EnrollmentError::AlreadyActive(email.to_string())),
        None => users::create_user(
            conn,
            tenant_id,
            NewAccount {
                email,
                role: Role::Owner,
                display_name,
                status: status::INVITED,
                password_hash: None,
            },
            now,
        )?,
    };
    let policy = crate::policy::load(conn, tenant_id).map_err(PasskeyError::from)?;
    Ok(passkeys::start_registration(
        conn,
        &state.passkeys,
        &policy,
        &user,
        purpose::SETUP,
        json!({ "link_id": link.id }),
        now,
    )?)
}

/// A signed-in user adds another passkey (P10, C2 on the same device).
pub fn start_additional(
    conn: &mut DbConn,
    state: &AppState,
    user: &User,
    now: UtcTime,
) -> Result<RegistrationStart, EnrollmentError> {
    let policy = crate::policy::load(conn, &user.tenant_id).map_err(PasskeyError::from)?;
    Ok(passkeys::start_registration(
        conn,
        &state.passkeys,
        &policy,
        user,
        purpose::ACCOUNT,
        Value::Object(Default::default()),
        now,
    )?)
}

/// The outcome of a finished enrollment.
pub struct Enrolled {
    pub passkey: Passkey,
    pub user: User,
    /// A session, when enrolling signed the person in (invitation, setup).
    pub session: Option<StartedSession>,
}

/// Verifies the new passkey and, in one transaction, stores it and does what its ceremony's
/// purpose means: consume the link and activate the account and sign in (invite, setup), or
/// nothing more (a signed-in user's additional passkey, which must be theirs).
/// What the browser sends back to finish a registration.
pub struct RegistrationResponse {
    pub ceremony_id: String,
    pub credential: RegisterPublicKeyCredential,
    pub label: Option<String>,
}

pub async fn finish(
    state: &AppState,
    tenant_id: &str,
    response: RegistrationResponse,
    signed_in_user: Option<&User>,
    client: &ClientInfo,
    now: UtcTime,
) -> Result<Enrolled, EnrollmentError> {
    let verified = passkeys::verify_registration(
        &state.store,
        &state.passkeys,
        tenant_id,
        &response.ceremony_id,
        response.credential,
        response.label,
        now,
    )
    .await?;
    if verified.ceremony.purpose == purpose::ACCOUNT
        && signed_in_user.map(|u| u.id.as_str()) != Some(verified.user.id.as_str())
    {
        return Err(EnrollmentError::NotYours);
    }
    let settings = state.settings.session.clone();
    let client = client.clone();
    state
        .store
        .write(move |conn| {
            let passkey = passkeys::save_registration(conn, &verified)?;
            let user = &verified.user;
            let activates =
                [purpose::INVITE, purpose::SETUP].contains(&verified.ceremony.purpose.as_str());
            if activates {
                let context: Value =
                    serde_json::from_str(&verified.ceremony.context).unwrap_or_default();
                let link_id = context["link_id"].as_str().unwrap_or_default();
                if !links::use_link(conn, link_id, now)? {
                    return Err(EnrollmentError::LinkInvalid);
                }
                user_repo::activate_user(conn, &user.tenant_id, &user.id, now)?;
            }
            audit::record(
                conn,
                Record {
                    tenant_id: &user.tenant_id,
                    event_type: "passkey.registered",
                    actor: Actor::User(user.id.clone()),
                    subject_user_id: Some(&user.id),
                    client: Some(&client),
                    details: json!({
                        "passkey_id": passkey.id,
                        "label": passkey.label,
                        "aaguid": passkey.aaguid,
                        "via": passkey.enrolled_via,
                    }),
                    needs_review: false,
                },
                now,
            )?;
            let session = if activates {
                let auth = sessions::Authentication {
                    user_id: user.id.clone(),
                    amr: registration_amr(&passkey),
                    acr: Some(sessions::ACR_PHISHING_RESISTANT.to_string()),
                    auth_time: now,
                };
                Some(sessions::start_session(
                    conn,
                    &user.tenant_id,
                    &auth,
                    &client,
                    &settings,
                    now,
                )?)
            } else {
                None
            };
            let user = user_repo::find_user(conn, &user.tenant_id, &user.id)?
                .ok_or(EnrollmentError::User(UserError::NotFound))?;
            Ok(Enrolled {
                passkey,
                user,
                session,
            })
        })
        .await
}

/// The methods proven by creating a passkey: possession of it, and the user's presence.
fn registration_amr(passkey: &Passkey) -> Vec<String> {
    let mut amr = vec![
        if passkey.backup_eligible {
            "swk"
        } else {
            "hwk"
        }
        .to_string(),
        "user".to_string(),
    ];
    if passkey.user_verified {
        amr.push("mfa".to_string());
    }
    amr
}
