//! Signing in, as the server sees it (DESIGN "Login"): the identifier step, the ceremony
//! (passkey or password), then a session and an auth event, in one transaction.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use webauthn_rs_core::proto::PublicKeyCredential;

use crate::app::AppState;
use crate::audit::{self, Actor, Record};
use crate::client::ClientInfo;
use crate::clock::UtcTime;
use crate::crypto::{constant_time_eq, new_id, sha256_hex};
use crate::passkeys::{self, LoginStart, PasskeyError, VerifiedLogin};
use crate::passwords::{self, PasswordError};
use crate::sessions::{self, Authentication, StartedSession};
use crate::store::audit::insert_audit_event;
use crate::store::auth_events::{AuthEvent, insert_auth_event};
use crate::store::signins::{PasskeySignIn, find_claimed_account, record_passkey_sign_in};
use crate::store::users::{self as user_repo, User};
use crate::store::{DbConn, StoreError};
use crate::users::{Email, status};

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error(transparent)]
    Passkey(#[from] PasskeyError),
    #[error("wrong email or password")]
    WrongPassword,
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How the identifier step answers. Every answer has the same shape: a mode and a ceremony,
/// real or decoy (P3).
#[derive(Debug, Serialize)]
pub struct IdentifyAnswer {
    pub mode: &'static str,
    #[serde(flatten)]
    pub ceremony: LoginStart,
}

/// After the email step: `passkey` with the user's passkeys — also, with a decoy, for an
/// email nobody has — or `password` for an account that has no passkey yet.
pub async fn identify(
    state: &AppState,
    tenant_id: &str,
    email: &Email,
    now: UtcTime,
) -> Result<IdentifyAnswer, SignInError> {
    let policy = state
        .policies
        .get(&state.store, tenant_id)
        .await
        .map_err(PasskeyError::from)?;
    let (tenant, address) = (tenant_id.to_string(), email.clone());
    let (passkeys, master_key) = (state.passkeys.clone(), state.master_key.clone());
    // One job: the account (one statement, the same for an unknown email, so the answer
    // takes as long, P3) and the ceremony's insert. On SQLite both run on the writer's warm
    // cache in one hand-off; on PostgreSQL they are two statements, no transaction.
    let (mode, ceremony) = state
        .store
        .write_autocommit(move |conn| {
            let claimed = find_claimed_account(conn, &tenant, address.as_str())?
                .filter(|claimed| claimed.user.status == status::ACTIVE);
            let (user, has_password, owned) = match claimed {
                Some(c) => (Some(c.user), c.password_hash.is_some(), c.passkeys),
                None => (None, false, Vec::new()),
            };
            let mode = if user.is_some() && owned.is_empty() && has_password {
                "password"
            } else {
                "passkey"
            };
            let claimant = passkeys::Claimant {
                tenant_id: &tenant,
                email: address.as_str(),
                user: user.as_ref(),
                passkeys: &owned,
            };
            let pending =
                passkeys::start_identified_login(&passkeys, &policy, &master_key, claimant, now)?;
            Ok::<_, SignInError>((mode, pending.insert(conn)?))
        })
        .await?;
    Ok(IdentifyAnswer { mode, ceremony })
}

pub async fn start_discoverable(
    state: &AppState,
    tenant_id: &str,
    now: UtcTime,
) -> Result<LoginStart, SignInError> {
    let policy = state
        .policies
        .get(&state.store, tenant_id)
        .await
        .map_err(PasskeyError::from)?;
    Ok(
        passkeys::start_discoverable_login(&state.passkeys, &policy, tenant_id, now)?
            .save(&state.store)
            .await?,
    )
}

/// When the login page was served, carried by the page in a MAC'd token, so time-to-login
/// (X4) is measured from the page to the session without keeping per-visit state.
pub struct LoginClock;

impl LoginClock {
    pub fn token(state: &AppState, tenant_id: &str, now: UtcTime) -> String {
        let millis = now.assume_utc().unix_timestamp_nanos() / 1_000_000;
        format!("{millis}.{}", Self::mac(state, tenant_id, millis))
    }

    fn mac(state: &AppState, tenant_id: &str, millis: i128) -> String {
        URL_SAFE_NO_PAD.encode(
            &state
                .master_key
                .mac(format!("login-start|{tenant_id}|{millis}").as_bytes())[..16],
        )
    }

    /// Milliseconds since the page was served, if the token is genuine and recent.
    pub fn elapsed_ms(
        state: &AppState,
        tenant_id: &str,
        token: Option<&str>,
        now: UtcTime,
    ) -> Option<i64> {
        let (millis, mac) = token?.split_once('.')?;
        let millis: i128 = millis.parse().ok()?;
        if !constant_time_eq(
            mac.as_bytes(),
            Self::mac(state, tenant_id, millis).as_bytes(),
        ) {
            return None;
        }
        let now_ms = now.assume_utc().unix_timestamp_nanos() / 1_000_000;
        let elapsed = i64::try_from(now_ms - millis).ok()?;
        (0..=3_600_000).contains(&elapsed).then_some(elapsed)
    }
}

/// Where a login attempt comes from.
#[derive(Debug, Clone, Default)]
pub struct LoginContext {
    pub client: ClientInfo,
    /// Milliseconds from the login page to now (X4), when known.
    pub duration_ms: Option<i64>,
    /// The browser's current session cookie, ended when the new session starts (no
    /// fixation).
    pub previous_session_token: Option<String>,
}

fn end_previous(
    conn: &mut DbConn,
    tenant_id: &str,
    ctx: &LoginContext,
    now: UtcTime,
) -> Result<(), StoreError> {
    if let Some(token) = &ctx.previous_session_token {
        sessions::end_session_by_token(conn, tenant_id, token, now)?;
    }
    Ok(())
}

/// A finished sign-in: the new session (its token goes into the cookie) and who it is.
pub struct SignedIn {
    pub started: StartedSession,
    pub user: User,
}

/// What an auth event says about an attempt.
pub struct Attempt<'a> {
    pub tenant_id: &'a str,
    pub user_id: Option<&'a str>,
    pub method: &'static str,
    pub failure: Option<&'a str>,
    pub authenticator: Option<&'static str>,
    pub client: &'a ClientInfo,
    pub duration_ms: Option<i64>,
}

pub fn record_attempt(
    conn: &mut DbConn,
    attempt: Attempt<'_>,
    now: UtcTime,
) -> Result<(), StoreError> {
    insert_auth_event(conn, &attempt_event(attempt, now))
}

fn attempt_event(attempt: Attempt<'_>, now: UtcTime) -> AuthEvent {
    AuthEvent {
        id: new_id(),
        tenant_id: attempt.tenant_id.to_string(),
        user_id: attempt.user_id.map(str::to_string),
        occurred_at: now,
        method: attempt.method.to_string(),
        outcome: if attempt.failure.is_none() {
            "success"
        } else {
            "failure"
        }
        .to_string(),
        failure_reason: attempt.failure.map(str::to_string),
        authenticator: attempt.authenticator.map(str::to_string),
        browser_family: attempt.client.browser_family.clone(),
        os_family: attempt.client.os_family.clone(),
        duration_ms: attempt.duration_ms,
    }
}

/// Failure attempts are written on their own: the operation they belong to rolled back.
async fn record_failure(
    state: &AppState,
    tenant_id: &str,
    user_id: Option<String>,
    method: &'static str,
    reason: &'static str,
    client: &ClientInfo,
    now: UtcTime,
) {
    let (tenant_id, client) = (tenant_id.to_string(), client.clone());
    let result = state
        .store
        .write(move |conn| {
            record_attempt(
                conn,
                Attempt {
                    tenant_id: &tenant_id,
                    user_id: user_id.as_deref(),
                    method,
                    failure: Some(reason),
                    authenticator: None,
                    client: &client,
                    duration_ms: None,
                },
                now,
            )
        })
        .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "could not record a failed sign-in attempt");
    }
}

fn passkey_failure_reason(e: &PasskeyError) -> &'static str {
    match e {
        PasskeyError::CeremonyNotFound => "ceremony_expired_or_used",
        PasskeyError::UnknownCredential => "unknown_credential",
        PasskeyError::UserVerificationRequired => "user_verification_missing",
        PasskeyError::CounterRegression => "counter_regression",
        PasskeyError::AccountInactive => "account_inactive",
        PasskeyError::PolicyRefused { .. } => "policy",
        _ => "verification_failed",
    }
}

/// Verifies a passkey assertion and, in one transaction, records the use, starts the
/// session and writes the auth event (and an audit event for a flagged counter, P5).
pub async fn finish_passkey_login(
    state: &AppState,
    tenant_id: &str,
    ceremony_id: &str,
    credential: PublicKeyCredential,
    ctx: &LoginContext,
    now: UtcTime,
) -> Result<SignedIn, SignInError> {
    let client = &ctx.client;
    let policy = state
        .policies
        .get(&state.store, tenant_id)
        .await
        .map_err(PasskeyError::from)?;
    let verified = match passkeys::verify_login(
        &state.store,
        &state.passkeys,
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
            record_failure(
                state,
                tenant_id,
                None,
                "passkey",
                passkey_failure_reason(&e),
                client,
                now,
            )
            .await;
            return Err(e.into());
        }
    };
    let user_id = verified.user.id.clone();
    let result = complete_passkey_login(state, verified, ctx, now).await;
    if let Err(SignInError::Passkey(e)) = &result {
        record_failure(
            state,
            tenant_id,
            Some(user_id),
            "passkey",
            passkey_failure_reason(e),
            client,
            now,
        )
        .await;
    }
    result
}

/// Writes the sign-in: on PostgreSQL one statement that commits by itself, unless a flagged
/// counter adds its audit event (then both in one transaction).
async fn complete_passkey_login(
    state: &AppState,
    verified: VerifiedLogin,
    ctx: &LoginContext,
    now: UtcTime,
) -> Result<SignedIn, SignInError> {
    let client = &ctx.client;
    let user = &verified.user;
    let tenant_id = user.tenant_id.clone();
    let started = sessions::new_session(
        &tenant_id,
        &verified.authentication(now),
        client,
        &state.settings.session,
        now,
    );
    let attempt = attempt_event(
        Attempt {
            tenant_id: &tenant_id,
            user_id: Some(&user.id),
            method: "passkey",
            failure: None,
            authenticator: Some(if verified.backup_eligible {
                "synced"
            } else {
                "device_bound"
            }),
            client,
            duration_ms: ctx.duration_ms,
        },
        now,
    );
    let audit = audit::row(sign_in_record(user, &started, client), now);
    let flagged = verified.counter_flagged.then(|| {
        audit::row(
            Record {
                tenant_id: &tenant_id,
                event_type: "passkey.counter_regression",
                actor: Actor::User(user.id.clone()),
                subject_user_id: Some(&user.id),
                client: Some(client),
                details: serde_json::json!({
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
    let previous_session_hash = ctx.previous_session_token.as_deref().map(sha256_hex);
    let passkey_use = verified.passkey_use(now);
    let write = move |conn: &mut DbConn| {
        let sign_in = PasskeySignIn {
            tenant_id: &tenant_id,
            ceremony_id: &verified.ceremony.id,
            passkey_id: &verified.passkey.id,
            expected_sign_count: verified.passkey.sign_count,
            passkey_use: &passkey_use,
            attempt: &attempt,
            previous_session_hash: previous_session_hash.as_deref(),
            session: &started.session,
            audit: &audit,
        };
        if !record_passkey_sign_in(conn, &sign_in, now)? {
            return Err(SignInError::Passkey(PasskeyError::CeremonyNotFound));
        }
        if let Some(flagged) = &flagged {
            insert_audit_event(conn, flagged)?;
        }
        Ok(SignedIn {
            started,
            user: verified.user,
        })
    };
    if verified.counter_flagged {
        state.store.write(write).await
    } else {
        state.store.write_autocommit(write).await
    }
}

/// The password fallback: argon2id on the bounded hashing pool, a dummy verification for
/// unknown accounts and accounts without a password, one answer for every failure.
pub async fn password_login(
    state: &AppState,
    tenant_id: &str,
    email: &Email,
    password: String,
    ctx: &LoginContext,
    now: UtcTime,
) -> Result<SignedIn, SignInError> {
    let client = &ctx.client;
    let (tenant, address) = (tenant_id.to_string(), email.to_string());
    let found = state
        .store
        .read(move |conn| user_repo::find_user_by_email_with_password(conn, &tenant, &address))
        .await?;
    let usable = found.filter(|(user, hash)| {
        user.status == status::ACTIVE && !user.is_password_disabled && hash.is_some()
    });
    let (user, hash) = match usable {
        Some((user, Some(hash))) => (Some(user), Some(hash)),
        _ => (None, None),
    };
    let verified_against = hash.clone();
    let verification = state
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
                "wrong_password"
            } else {
                "unknown_account"
            };
            record_failure(
                state,
                tenant_id,
                user.map(|u| u.id),
                "password",
                reason,
                client,
                now,
            )
            .await;
            return Err(SignInError::WrongPassword);
        }
    };
    let settings = state.settings.session.clone();
    let ctx = ctx.clone();
    state
        .store
        .write(move |conn| {
            let client = &ctx.client;
            // Only replaces the hash we verified: a password changed meanwhile stays.
            if let (Some(new), Some(old)) = (&verification.rehashed, &verified_against) {
                user_repo::replace_password_hash(conn, &user.tenant_id, &user.id, old, new, now)?;
            }
            record_attempt(
                conn,
                Attempt {
                    tenant_id: &user.tenant_id,
                    user_id: Some(&user.id),
                    method: "password",
                    failure: None,
                    authenticator: None,
                    client,
                    duration_ms: ctx.duration_ms,
                },
                now,
            )?;
            end_previous(conn, &user.tenant_id, &ctx, now)?;
            let auth = Authentication {
                user_id: user.id.clone(),
                amr: vec!["pwd".to_string()],
                acr: None,
                auth_time: now,
                passkey_id: None,
            };
            let started =
                sessions::start_session(conn, &user.tenant_id, &auth, client, &settings, now)?;
            audit::record(conn, sign_in_record(&user, &started, client), now)?;
            Ok(SignedIn { started, user })
        })
        .await
}

/// The audit log's record of a sign-in, with how (amr) and from where, written with its
/// session. Refused attempts are auth events (for the metrics), not audit.
fn sign_in_record<'a>(
    user: &'a User,
    started: &StartedSession,
    client: &'a ClientInfo,
) -> Record<'a> {
    Record {
        tenant_id: &user.tenant_id,
        event_type: "signin.succeeded",
        actor: Actor::User(user.id.clone()),
        subject_user_id: Some(&user.id),
        client: Some(client),
        details: serde_json::json!({
            "session_id": started.session.id,
            "amr": started.session.amr,
        }),
        needs_review: false,
    }
}
