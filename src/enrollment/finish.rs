//! The end of every registration ceremony: the new passkey is saved and what the ceremony's
//! purpose means happens in the same transaction — a link or recovery code consumed, the
//! account activated or restricted, the audit event, the security notice, the session.

use serde_json::{Value, json};
use webauthn_rs_core::proto::RegisterPublicKeyCredential;

use std::sync::Arc;

use super::EnrollmentError;
use crate::audit::{self, Actor, Record};
use crate::auth_events::{AuthMethod, AuthenticatorKind};
use crate::client::ClientInfo;
use crate::clock::{UtcTime, display};
use crate::config::Settings;
use crate::crypto::MasterKey;
use crate::links;
use crate::mail::{self, PasskeyAdded};
use crate::passkeys::{self, Passkeys, Purpose, VerifiedRegistration};
use crate::policy::EmailRecovery;
use crate::recovery::{RecoveryCode, RecoveryError, codes, restriction};
use crate::sessions::StartedSession;
use crate::signin::{AuthenticatorFacts, LoginContext, LoginResult, establish_session};
use crate::store::passkeys::{self as passkey_repo, Passkey};
use crate::store::tenants::Tenant;
use crate::store::users::{self as user_repo, User};
use crate::store::{DbConn, Store, StoreError};
use crate::users::UserError;

/// What the browser sends back to finish a registration.
pub struct RegistrationResponse {
    pub ceremony_id: String,
    pub credential: RegisterPublicKeyCredential,
    pub label: Option<String>,
}

/// The outcome of a finished enrollment.
pub struct Enrolled {
    pub passkey: Passkey,
    pub user: User,
    /// A session, when enrolling signs the person in (every path but the account page).
    pub session: Option<StartedSession>,
    /// A recovery code to show once (first passkey; after a recovery by code).
    pub recovery_code: Option<RecoveryCode>,
    /// The tenant requires two passkeys and this account has one (C6).
    pub needs_second_passkey: bool,
}

/// What a purpose means beyond saving the passkey.
struct Meaning {
    /// Consumes the link named in the ceremony's context.
    uses_link: bool,
    /// Enrolling signs the person in, a login of this method.
    signs_in: Option<AuthMethod>,
    activates: bool,
    /// Mails "a passkey was added to your account …" (C2, C5).
    notifies: Option<&'static str>,
}

/// `None` for a purpose no registration has (a sign-in ceremony).
fn meaning(purpose: Purpose) -> Option<Meaning> {
    let signs_in = |method| Meaning {
        uses_link: true,
        signs_in: Some(method),
        activates: false,
        notifies: None,
    };
    Some(match purpose {
        Purpose::Invite | Purpose::Setup => Meaning {
            activates: true,
            ..signs_in(AuthMethod::Enrollment)
        },
        Purpose::Account => Meaning {
            uses_link: false,
            signs_in: None,
            activates: false,
            notifies: None,
        },
        Purpose::TrustedDevice => Meaning {
            notifies: Some("a link from one of your signed-in devices"),
            ..signs_in(AuthMethod::TrustedDevice)
        },
        Purpose::RecoveryCode => Meaning {
            uses_link: false,
            notifies: Some("account recovery with your recovery code"),
            ..signs_in(AuthMethod::RecoveryCode)
        },
        Purpose::EmailRecovery => Meaning {
            notifies: Some("account recovery with an emailed link"),
            ..signs_in(AuthMethod::EmailRecovery)
        },
        Purpose::AdminRecovery => Meaning {
            activates: true,
            notifies: Some("account recovery started by your administrator"),
            ..signs_in(AuthMethod::AdminRecovery)
        },
        Purpose::Login => return None,
    })
}

/// What finishing an enrollment uses besides the store: the relying party, the key recovery
/// codes are digested with, and the settings (session lifetimes, the sender, the public URL
/// for mails).
#[derive(Clone)]
pub struct EnrollmentTerms {
    pub passkeys: Passkeys,
    pub master_key: Arc<MasterKey>,
    pub settings: Arc<Settings>,
}

/// Verifies the new passkey, then saves it and carries out its purpose in one transaction.
pub async fn finish(
    store: &Store,
    terms: EnrollmentTerms,
    tenant: &Tenant,
    response: RegistrationResponse,
    signed_in_user: Option<&User>,
    ctx: &LoginContext,
    now: UtcTime,
) -> Result<Enrolled, EnrollmentError> {
    let verified = passkeys::verify_registration(
        store,
        &terms.passkeys,
        &tenant.id,
        &response.ceremony_id,
        response.credential,
        response.label,
        now,
    )
    .await?;
    if verified.purpose == Purpose::Account
        && signed_in_user.map(|u| u.id.as_str()) != Some(verified.user.id.as_str())
    {
        return Err(EnrollmentError::NotYours);
    }
    let (tenant, ctx) = (tenant.clone(), ctx.clone());
    store
        .write(move |conn| complete(conn, &terms, &tenant, &verified, &ctx, now))
        .await
}

fn complete(
    conn: &mut DbConn,
    terms: &EnrollmentTerms,
    tenant: &Tenant,
    verified: &VerifiedRegistration,
    ctx: &LoginContext,
    now: UtcTime,
) -> Result<Enrolled, EnrollmentError> {
    let meaning = meaning(verified.purpose).ok_or(passkeys::PasskeyError::CeremonyNotFound)?;
    let is_recovery = meaning.signs_in.is_some_and(AuthMethod::is_recovery);
    let user = &verified.user;
    let client = &ctx.client;
    let context: Value = serde_json::from_str(&verified.ceremony.context).unwrap_or_default();
    let passkey = passkeys::save_registration(conn, verified)?;
    if meaning.uses_link {
        let link_id = context["link_id"].as_str().unwrap_or_default();
        if !links::use_link(conn, link_id, now)? {
            return Err(EnrollmentError::LinkInvalid);
        }
    }
    let first_passkey = passkey_repo::count_user_passkeys(conn, &user.tenant_id, &user.id)? == 1;
    let key = &terms.master_key;
    let recovery_code = match verified.purpose {
        Purpose::RecoveryCode => {
            let code_hash = context["code_hash"].as_str().unwrap_or_default();
            Some(codes::consume(conn, key, user, code_hash, now).map_err(recovery_failed)?)
        }
        _ if first_passkey && meaning.activates => {
            Some(codes::issue(conn, key, user, now).map_err(recovery_failed)?)
        }
        _ => None,
    };
    if meaning.activates {
        user_repo::activate_user(conn, &user.tenant_id, &user.id, now)?;
    }
    let policy = crate::policy::load(conn, &tenant.id).map_err(passkeys::PasskeyError::from)?;
    if verified.purpose == Purpose::EmailRecovery
        && policy.email_recovery == EmailRecovery::OnRestricted
    {
        restriction::restrict(conn, user, now)?;
    }
    audit::record(
        conn,
        Record {
            tenant_id: &user.tenant_id,
            event_type: if is_recovery {
                "recovery.completed"
            } else {
                "passkey.registered"
            },
            actor: Actor::User(user.id.clone()),
            subject_user_id: Some(&user.id),
            client: Some(client),
            details: json!({
                "passkey_id": passkey.id,
                "label": passkey.label,
                "aaguid": passkey.aaguid,
                "via": passkey.enrolled_via,
            }),
            needs_review: is_recovery,
        },
        now,
    )?;
    if let Some(how) = meaning.notifies {
        notify(
            conn,
            &terms.settings,
            tenant,
            user,
            &passkey,
            client,
            how,
            now,
        )?;
    }
    let user = user_repo::find_user(conn, &user.tenant_id, &user.id)?
        .ok_or(EnrollmentError::User(UserError::NotFound))?;
    let session = match meaning.signs_in {
        Some(method) => {
            let authenticator = AuthenticatorFacts {
                passkey_id: passkey.id.clone(),
                kind: AuthenticatorKind::of(passkey.backup_eligible),
                is_user_verified: passkey.user_verified,
            };
            let login = LoginResult::passkey(user.clone(), method, authenticator, now);
            Some(establish_session(conn, login, ctx, &terms.settings.session, now)?.started)
        }
        None => None,
    };
    Ok(Enrolled {
        needs_second_passkey: policy.require_two_passkeys && first_passkey,
        passkey,
        user,
        session,
        recovery_code,
    })
}

fn recovery_failed(e: RecoveryError) -> EnrollmentError {
    match e {
        RecoveryError::Store(e) => EnrollmentError::Store(e),
        // The code that opened this ceremony was used or replaced meanwhile.
        _ => EnrollmentError::LinkInvalid,
    }
}

#[allow(clippy::too_many_arguments)]
fn notify(
    conn: &mut DbConn,
    settings: &Settings,
    tenant: &Tenant,
    user: &User,
    passkey: &Passkey,
    client: &ClientInfo,
    how: &str,
    now: UtcTime,
) -> Result<(), StoreError> {
    mail::enqueue(
        conn,
        tenant,
        &settings.mail_from,
        &user.email,
        &PasskeyAdded {
            tenant_name: tenant.name.clone(),
            email: user.email.clone(),
            label: passkey.label.clone(),
            device: client.describe(),
            when: display(now),
            how: how.to_string(),
            account_url: format!("{}/t/{}/account", settings.public_base(), tenant.slug),
        },
        now,
    )
}
