//! The password fallback: argon2id on the bounded hashing pool, a dummy verification for
//! unknown accounts and accounts without a usable password, one answer for every failure.

use super::{LoginContext, LoginResult, SignInError, SignInParts, SignedIn, establish_session};
use crate::auth_events::{self, Attempt, AuthMethod, FailureReason};
use crate::clock::UtcTime;
use crate::passwords;
use crate::store::users as user_repo;
use crate::users::{Email, UserStatus};

pub async fn password_login(
    parts: SignInParts<'_>,
    tenant_id: &str,
    email: &Email,
    password: String,
    ctx: &LoginContext,
    now: UtcTime,
) -> Result<SignedIn, SignInError> {
    let (tenant, address) = (tenant_id.to_string(), email.to_string());
    let found = parts
        .store
        .read(move |conn| user_repo::find_user_by_email_with_password(conn, &tenant, &address))
        .await?;
    let usable = found.filter(|(user, hash)| {
        UserStatus::of(user) == UserStatus::Active && !user.is_password_disabled && hash.is_some()
    });
    let (user, hash) = match usable {
        Some((user, Some(hash))) => (Some(user), Some(hash)),
        _ => (None, None),
    };
    let verified_against = hash.clone();
    let verification = parts
        .hashing
        .run(move || match hash {
            Some(hash) => passwords::verify_blocking(&password, &hash),
            None => {
                passwords::dummy_verify_blocking(&password);
                passwords::Verification {
                    is_valid: false,
                    rehashed: None,
                }
            }
        })
        .await?;
    let user = match user {
        Some(user) if verification.is_valid => user,
        user => {
            let reason = if user.is_some() {
                FailureReason::WrongPassword
            } else {
                FailureReason::UnknownAccount
            };
            let user_id = user.map(|u| u.id);
            let event = auth_events::row(
                Attempt {
                    tenant_id,
                    user_id: user_id.as_deref(),
                    method: AuthMethod::Password,
                    failure: Some(reason),
                    authenticator: None,
                    client: &ctx.client,
                    duration_ms: None,
                },
                now,
            );
            auth_events::record_failure(parts.store, event).await;
            return Err(SignInError::WrongPassword);
        }
    };
    let (settings, ctx) = (parts.sessions.clone(), ctx.clone());
    let signed_in = parts
        .store
        .write(move |conn| {
            // Only replaces the hash we verified: a password changed meanwhile stays.
            if let (Some(new), Some(old)) = (&verification.rehashed, &verified_against) {
                user_repo::replace_password_hash(conn, &user.tenant_id, &user.id, old, new, now)?;
            }
            establish_session(conn, LoginResult::password(user, now), &ctx, &settings, now)
        })
        .await?;
    Ok(signed_in)
}
