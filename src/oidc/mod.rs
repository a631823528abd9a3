//! The OpenID Connect provider (MISSION O1–O7): per-tenant discovery and keys, clients, the
//! authorization code flow with PKCE, the token endpoint, userinfo, introspection, revocation
//! and RP-initiated logout. Domain functions take the connection and `now`; the web layer
//! (`web::oidc`) parses requests and renders.

pub mod authorize;
pub mod cache;
pub mod claims;
pub mod clients;
pub mod discovery;
pub mod introspect;
pub mod jwt;
pub mod keys;
pub mod logout;
pub mod redeem;
pub mod refresh;
pub mod revoke;
pub mod schedule;
pub mod scopes;
pub mod token;

pub use cache::OidcCache;

use crate::store::StoreError;

/// The protocol errors, exactly the codes of RFC 6749 §4.1.2.1 / §5.2, OIDC Core §3.1.2.6,
/// RFC 6750 §3.1 and RFC 7009 §2.2.1. The message is safe to show to the caller.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidRequest(String),
    /// RFC 6749 §5.2: 401, with `WWW-Authenticate` when the client tried HTTP Basic.
    #[error("{message}")]
    InvalidClient { message: String, used_basic: bool },
    #[error("{0}")]
    InvalidGrant(String),
    #[error("{0}")]
    UnauthorizedClient(String),
    #[error("the grant type is not supported")]
    UnsupportedGrantType,
    #[error("only response_type=code is supported")]
    UnsupportedResponseType,
    #[error("{0}")]
    InvalidScope(String),
    #[error("{0}")]
    AccessDenied(String),
    #[error("the user is not signed in")]
    LoginRequired,
    #[error("the user has not consented to this client")]
    ConsentRequired,
    #[error("request objects are not supported")]
    RequestNotSupported,
    #[error("request_uri is not supported")]
    RequestUriNotSupported,
    /// RFC 6750 §3.1: a missing, expired, revoked or foreign access token.
    #[error("{0}")]
    InvalidToken(String),
    #[error("{0}")]
    UnsupportedTokenType(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Key material could not be made or opened: a server fault, never the caller's.
    #[error("signing keys: {0}")]
    Keys(String),
}

impl Error {
    /// The registered error code.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidRequest(_) => "invalid_request",
            Error::InvalidClient { .. } => "invalid_client",
            Error::InvalidGrant(_) => "invalid_grant",
            Error::UnauthorizedClient(_) => "unauthorized_client",
            Error::UnsupportedGrantType => "unsupported_grant_type",
            Error::UnsupportedResponseType => "unsupported_response_type",
            Error::InvalidScope(_) => "invalid_scope",
            Error::AccessDenied(_) => "access_denied",
            Error::LoginRequired => "login_required",
            Error::ConsentRequired => "consent_required",
            Error::RequestNotSupported => "request_not_supported",
            Error::RequestUriNotSupported => "request_uri_not_supported",
            Error::InvalidToken(_) => "invalid_token",
            Error::UnsupportedTokenType(_) => "unsupported_token_type",
            Error::Store(_) | Error::Keys(_) => "server_error",
        }
    }

    pub fn invalid_client(message: impl Into<String>, used_basic: bool) -> Error {
        Error::InvalidClient {
            message: message.into(),
            used_basic,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The configured lifetimes as `time::Duration`s for clock arithmetic.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    pub code: time::Duration,
    pub access_token: time::Duration,
    pub id_token: time::Duration,
    pub refresh_idle: time::Duration,
    pub refresh_absolute: time::Duration,
    pub refresh_reuse_grace: time::Duration,
}

impl Lifetimes {
    pub fn from_settings(s: &crate::config::OidcSettings) -> Lifetimes {
        let convert =
            |d: std::time::Duration| time::Duration::try_from(d).unwrap_or(time::Duration::HOUR);
        Lifetimes {
            code: convert(s.code_lifetime),
            access_token: convert(s.access_token_lifetime),
            id_token: convert(s.id_token_lifetime),
            refresh_idle: convert(s.refresh_idle_lifetime),
            refresh_absolute: convert(s.refresh_absolute_lifetime),
            refresh_reuse_grace: convert(s.refresh_reuse_grace),
        }
    }

    /// The longest a JWT we sign stays valid: a retired key stays published this long.
    pub fn longest_jwt(&self) -> time::Duration {
        self.access_token.max(self.id_token)
    }
}
