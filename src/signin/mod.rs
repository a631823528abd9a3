//! Signing in, as the server sees it (DESIGN "Login"): the identifier step answers a
//! [`LoginMode`]; every ceremony — passkey (identified, discoverable, conditional), password,
//! and the passkeys enrolled from links and recoveries — ends in one [`LoginResult`]; and
//! [`establish_session`] is the one place a result becomes a session.

mod identify;
mod login_clock;
mod mode;
mod passkey;
mod password;
mod result;
mod session;

use std::sync::Arc;

use crate::client::ClientInfo;
use crate::config::SessionSettings;
use crate::crypto::MasterKey;
use crate::passkeys::{PasskeyError, Passkeys};
use crate::passwords::{HashingPool, PasswordError};
use crate::policy::PolicyCache;
use crate::sessions::StartedSession;
use crate::store::users::User;
use crate::store::{Store, StoreError};

pub use identify::{IdentifyAnswer, identify, start_discoverable};
pub use login_clock::LoginClock;
pub use mode::{AccountShape, LoginMode, login_mode};
pub use passkey::finish_passkey_login;
pub use password::password_login;
pub use result::{AuthenticatorFacts, LoginResult};
pub use session::establish_session;

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

/// What signing in uses of the application, each part borrowed.
#[derive(Clone, Copy)]
pub struct SignInParts<'a> {
    pub store: &'a Store,
    pub policies: &'a PolicyCache,
    pub passkeys: &'a Passkeys,
    pub master_key: &'a Arc<MasterKey>,
    pub hashing: &'a HashingPool,
    pub sessions: &'a SessionSettings,
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

/// A finished sign-in: the new session (its token goes into the cookie) and who it is.
pub struct SignedIn {
    pub started: StartedSession,
    pub user: User,
}
