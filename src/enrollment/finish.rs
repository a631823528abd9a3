//! The end of every registration ceremony: the new passkey is saved and what the ceremony's
//! purpose means happens in the same transaction — a link or recovery code consumed, the
//! account activated or restricted, the audit event, the security notice, the session.

use serde_json::{Value, json};
use webauthn_rs_core::proto::RegisterPublicKeyCredential;

use super::EnrollmentError;
use crate::app::AppState;
use crate::audit::{self, Actor, Record};
use crate::client::ClientInfo;
use crate::clock::{UtcTime, display};
use crate::links;
use crate::mail::{self, PasskeyAdded};
use crate::passkeys::{self, VerifiedRegistration, purpose};
use crate::policy::EmailRecovery;
use crate::recovery::{RecoveryCode, RecoveryError, codes, purpose as recovery, restriction};
use crate::sessions::{self, StartedSession};
use crate::store::passkeys::{self as passkey_repo, Passkey};
use crate::store::tenants::Tenant;
use crate::store::users::{self as user_repo, User};
use crate::store::{DbConn, StoreError};
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
    signs_in: bool,
    activates: bool,
    is_recovery: bool,
    /// Mails "a passkey was added to your account …" (C2, C5).
    notifies: Option<&'static str>,
}

fn meaning(purpose: &str) -> Meaning {
    let base = Meaning {
        uses_link: true,
        signs_in: true,
        activates: false,
        is_recovery: false,
        notifies: None,
    };
    match purpose {
        purpose::INVITE | purpose::SETUP => Meaning {
            activates: true,
            ..base
        },
        purpose::ACCOUNT => Meaning {
            uses_link: false,
            signs_in: false,
            ..base
        },
        recovery::TRUSTED_DEVICE => Meaning {
            notifies: Some("a link from one of your signed-in devices"),
            ..base
        },
        recovery::RECOVERY_CODE => Meaning {
            uses_link: false,
            is_recovery: true,
            notifies: Some("account recovery with your recovery code"),
            ..base
        },
        recovery::EMAIL_RECOVERY => Meaning {
            is_recovery: true,
            notifies: Some("account recovery with an emailed link"),
            ..base
        },
        _ => Meaning {
            activates: true,
            is_recovery: true,
            notifies: Some("account recovery started by your administrator"),
            ..base
        },
    }
}

/// Verifies the new passkey, then saves it and carries out its purpose in one transaction.
pub async fn finish(
    state: &AppState,
    tenant: &Tenant,
    response: RegistrationResponse,
    signed_in_user: Option<&User>,
    client: &ClientInfo,
    now: UtcTime,
) -> Result<Enrolled, EnrollmentError> {
    let verified = passkeys::verify_registration(
        &state.store,
        &state.passkeys,
        &tenant.id,
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
    let (state, tenant, client) = (state.clone(), tenant.clone(), client.clone());
    state
        .clone()
        .store
        .write(move |conn| complete(conn, &state, &tenant, &verified, &client, now))
        .await
}

fn complete(
    conn: &mut DbConn,
    state: &AppState,
    tenant: &Tenant,
    verified: &VerifiedRegistration,
    client: &ClientInfo,
    now: UtcTime,
) -> Result<Enrolled, EnrollmentError> {
    let meaning = meaning(&verified.ceremony.purpose);
    let user = &verified.user;
    let context: Value = serde_json::from_str(&verified.ceremony.context).unwrap_or_default();
    let passkey = passkeys::save_registration(conn, verified)?;
    if meaning.uses_link {
        let link_id = context["link_id"].as_str().unwrap_or_default();
        if !links::use_link(conn, link_id, now)? {
            return Err(EnrollmentError::LinkInvalid);
        }
    }
    let first_passkey = passkey_repo::count_user_passkeys(conn, &user.tenant_id, &user.id)? == 1;
    let recovery_code = match verified.ceremony.purpose.as_str() {
        recovery::RECOVERY_CODE => {
            let code_hash = context["code_hash"].as_str().unwrap_or_default();
            Some(
                codes::consume(conn, &state.master_key, user, code_hash, now)
                    .map_err(recovery_failed)?,
            )
        }
        _ if first_passkey && meaning.activates => {
            Some(codes::issue(conn, &state.master_key, user, now).map_err(recovery_failed)?)
        }
        _ => None,
    };
    if meaning.activates {
        user_repo::activate_user(conn, &user.tenant_id, &user.id, now)?;
    }
    let policy = crate::policy::load(conn, &tenant.id).map_err(passkeys::PasskeyError::from)?;
    if verified.ceremony.purpose == recovery::EMAIL_RECOVERY
        && policy.email_recovery == EmailRecovery::OnRestricted
    {
        restriction::restrict(conn, user, now)?;
    }
    audit::record(
        conn,
        Record {
            tenant_id: &user.tenant_id,
            event_type: if meaning.is_recovery {
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
            needs_review: meaning.is_recovery,
        },
        now,
    )?;
    if let Some(how) = meaning.notifies {
        notify(conn, state, tenant, user, &passkey, client, how, now)?;
    }
    let session = if meaning.signs_in {
        let auth = sessions::Authentication {
            user_id: user.id.clone(),
            amr: registration_amr(&passkey),
            acr: Some(sessions::ACR_PHISHING_RESISTANT.to_string()),
            auth_time: now,
            passkey_id: Some(passkey.id.clone()),
        };
        let settings = &state.settings.session;
        Some(sessions::start_session(
            conn,
            &user.tenant_id,
            &auth,
            client,
            settings,
            now,
        )?)
    } else {
        None
    };
    let user = user_repo::find_user(conn, &user.tenant_id, &user.id)?
        .ok_or(EnrollmentError::User(UserError::NotFound))?;
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
    state: &AppState,
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
        &state.settings.mail_from,
        &user.email,
        &PasskeyAdded {
            tenant_name: tenant.name.clone(),
            email: user.email.clone(),
            label: passkey.label.clone(),
            device: client.describe(),
            when: display(now),
            how: how.to_string(),
            account_url: format!("{}/t/{}/account", state.settings.public_base(), tenant.slug),
        },
        now,
    )
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
