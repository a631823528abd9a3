//! A passkey assertion (WebAuthn L3 §7.2) → a [`LoginResult`] → a session, the session
//! written with what the assertion spends. Every refusal is an auth event.

use serde_json::json;
use webauthn_rs_core::proto::PublicKeyCredential;

use super::session::establish_passkey_session;
use super::{AuthenticatorFacts, LoginContext, LoginResult, SignInError, SignInParts, SignedIn};
use crate::audit::{self, Actor, Record};
use crate::auth_events::{self, Attempt, AuthMethod, AuthenticatorKind, FailureReason};
use crate::clock::UtcTime;
use crate::passkeys::{self, PasskeyError, VerifiedLogin};
use crate::store::signins::PasskeyProof;

fn failure_reason(e: &PasskeyError) -> FailureReason {
    match e {
        PasskeyError::CeremonyNotFound => FailureReason::CeremonyExpiredOrUsed,
        PasskeyError::UnknownCredential => FailureReason::UnknownCredential,
        PasskeyError::UserVerificationRequired => FailureReason::UserVerificationMissing,
        PasskeyError::CounterRegression => FailureReason::CounterRegression,
        PasskeyError::AccountInactive => FailureReason::AccountInactive,
        PasskeyError::PolicyRefused { .. } => FailureReason::Policy,
        _ => FailureReason::VerificationFailed,
    }
}

/// Verifies a passkey assertion and starts the session: the ceremony spent, the passkey's
/// use recorded, the session, the auth event and the audit event written as one (and the
/// review event of a flagged counter, P5).
pub async fn finish_passkey_login(
    parts: SignInParts<'_>,
    tenant_id: &str,
    ceremony_id: &str,
    credential: PublicKeyCredential,
    ctx: &LoginContext,
    now: UtcTime,
) -> Result<SignedIn, SignInError> {
    let refused = |user_id: Option<String>, e: &PasskeyError| {
        let event = auth_events::row(
            Attempt {
                tenant_id,
                user_id: user_id.as_deref(),
                method: AuthMethod::Passkey,
                failure: Some(failure_reason(e)),
                authenticator: None,
                client: &ctx.client,
                duration_ms: None,
            },
            now,
        );
        auth_events::record_failure(parts.store, event)
    };
    let policy = parts
        .policies
        .get(parts.store, tenant_id)
        .await
        .map_err(PasskeyError::from)?;
    let verified = match passkeys::verify_login(
        parts.store,
        parts.passkeys,
        &policy,
        tenant_id,
        ceremony_id,
        credential,
        now,
    )
    .await
    {
        Ok(v) => v,
        Err(e) => {
            refused(None, &e).await;
            return Err(e.into());
        }
    };
    let user_id = verified.user.id.clone();
    let (login, proof) = assertion_login(verified, ctx, now);
    let result =
        establish_passkey_session(parts.store, login, proof, ctx, parts.sessions, now).await;
    if let Err(SignInError::Passkey(e)) = &result {
        refused(Some(user_id), e).await;
    }
    result
}

/// What a verified assertion proves, and what it spends.
fn assertion_login(
    verified: VerifiedLogin,
    ctx: &LoginContext,
    now: UtcTime,
) -> (LoginResult, PasskeyProof) {
    let user = &verified.user;
    let flagged = verified.counter_flagged.then(|| {
        audit::row(
            Record {
                tenant_id: &user.tenant_id,
                event_type: "passkey.counter_regression",
                actor: Actor::User(user.id.clone()),
                subject_user_id: Some(&user.id),
                client: Some(&ctx.client),
                details: json!({
                    "passkey_id": verified.passkey.id,
                    "stored_counter": verified.passkey.sign_count,
                    "presented_counter": verified.counter,
                    "policy": "flag",
                }),
                needs_review: true,
            },
            now,
        )
    });
    let proof = PasskeyProof {
        ceremony_id: verified.ceremony.id.clone(),
        passkey_id: verified.passkey.id.clone(),
        expected_sign_count: verified.passkey.sign_count,
        passkey_use: verified.passkey_use(now),
        flagged,
    };
    let authenticator = AuthenticatorFacts {
        passkey_id: verified.passkey.id.clone(),
        kind: AuthenticatorKind::of(verified.backup_eligible),
        is_user_verified: verified.user_verified,
    };
    let login = LoginResult::passkey(verified.user, AuthMethod::Passkey, authenticator, now);
    (login, proof)
}
