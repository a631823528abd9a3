//! How the OIDC provider's errors read: the RFC 6749 §5.2 codes, with their challenges.

use actix_web::http::StatusCode;

use super::AppError;

impl From<crate::oidc::Error> for AppError {
    /// The OAuth error code is kept as `code`; `invalid_client` and `invalid_token` are 401s
    /// with their challenges (RFC 6749 §5.2, RFC 6750 §3); server faults stay opaque.
    fn from(e: crate::oidc::Error) -> Self {
        use crate::oidc::Error;
        match &e {
            Error::Store(_) | Error::Keys(_) => AppError::internal(e),
            Error::InvalidClient { used_basic, .. } => {
                let err = AppError::new(StatusCode::UNAUTHORIZED, e.code(), e.to_string());
                if *used_basic {
                    err.with_www_authenticate("Basic realm=\"passgate\"")
                } else {
                    err
                }
            }
            Error::InvalidToken(message) => {
                let challenge = format!(
                    "Bearer error=\"invalid_token\", error_description=\"{}\"",
                    message.replace('"', "'")
                );
                AppError::new(StatusCode::UNAUTHORIZED, e.code(), e.to_string())
                    .with_www_authenticate(challenge)
            }
            Error::AccessDenied(_) => AppError::new(StatusCode::FORBIDDEN, e.code(), e.to_string()),
            _ => AppError::new(StatusCode::BAD_REQUEST, e.code(), e.to_string()),
        }
    }
}
