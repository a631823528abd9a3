//! The identifier step (P3, P4, S1): after the email, a mode and a ceremony — real, or a
//! decoy of the same shape for an email nobody has; or a discoverable ceremony for the
//! account picker and conditional UI.

use serde::Serialize;

use super::{AccountShape, LoginMode, SignInError, SignInParts, login_mode};
use crate::clock::UtcTime;
use crate::passkeys::{self, LoginStart, PasskeyError};
use crate::store::{ceremonies, signins};
use crate::users::{Email, UserStatus};

/// How the identifier step answers. Every answer has the same shape: a mode and a ceremony,
/// real or decoy (P3).
#[derive(Debug, Serialize)]
pub struct IdentifyAnswer {
    pub mode: LoginMode,
    #[serde(flatten)]
    pub ceremony: LoginStart,
}

/// After the email step: the mode [`login_mode`] gives the account, with a ceremony listing
/// its passkeys — or a decoy for an email with none here. The account is read by one
/// statement, the same for an unknown email, so the answer takes as long (P3).
pub async fn identify(
    parts: SignInParts<'_>,
    tenant_id: &str,
    email: &Email,
    now: UtcTime,
) -> Result<IdentifyAnswer, SignInError> {
    let policy = parts
        .policies
        .get(parts.store, tenant_id)
        .await
        .map_err(PasskeyError::from)?;
    let (passkeys, master_key) = (parts.passkeys.clone(), parts.master_key.clone());
    let (tenant, address) = (tenant_id.to_string(), email.to_string());
    signins::claim_and_start_ceremony(
        parts.store,
        tenant_id.to_string(),
        email.to_string(),
        move |claimed| {
            let shape = claimed.as_ref().map(|c| AccountShape {
                is_active: UserStatus::of(&c.user) == UserStatus::Active,
                passkeys: c.passkeys.len(),
                has_password: c.password_hash.is_some(),
                is_password_disabled: c.user.is_password_disabled,
            });
            let mode = login_mode(shape.as_ref());
            // Only an active account's passkeys are offered; any other email gets a decoy.
            let active = claimed.filter(|c| UserStatus::of(&c.user) == UserStatus::Active);
            let claimant = passkeys::Claimant {
                tenant_id: &tenant,
                email: &address,
                user: active.as_ref().map(|c| &c.user),
                passkeys: active.as_ref().map_or(&[][..], |c| &c.passkeys),
            };
            let (ceremony, start) =
                passkeys::start_identified_login(&passkeys, &policy, &master_key, claimant, now)?
                    .into_parts();
            Ok::<_, SignInError>((
                ceremony,
                IdentifyAnswer {
                    mode,
                    ceremony: start,
                },
            ))
        },
    )
    .await
}

/// A discoverable ceremony: any passkey of this tenant may answer (S1, P4).
pub async fn start_discoverable(
    parts: SignInParts<'_>,
    tenant_id: &str,
    now: UtcTime,
) -> Result<LoginStart, SignInError> {
    let policy = parts
        .policies
        .get(parts.store, tenant_id)
        .await
        .map_err(PasskeyError::from)?;
    let (ceremony, start) =
        passkeys::start_discoverable_login(parts.passkeys, &policy, tenant_id, now)?.into_parts();
    ceremonies::save_ceremony(parts.store, ceremony).await?;
    Ok(start)
}
