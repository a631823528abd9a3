//! The one error type of the web layer, and the one place domain errors become HTTP.
//! Protocol and API endpoints answer JSON (`{"error": code, "error_description": …}`, the
//! RFC 6749 §5.2 shape); pages answer HTML through [`PageError`]. An unexpected error is an
//! opaque 500 whose detail goes only to the log.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

use crate::store::StoreError;
use crate::tenants::TenantError;

#[derive(Debug)]
pub struct AppError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
    www_authenticate: Option<String>,
}

impl AppError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> AppError {
        AppError {
            status,
            code,
            message: message.into(),
            retry_after: None,
            www_authenticate: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> AppError {
        AppError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> AppError {
        AppError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn forbidden(message: impl Into<String>) -> AppError {
        AppError::new(StatusCode::FORBIDDEN, "access_denied", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> AppError {
        AppError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn conflict(message: impl Into<String>) -> AppError {
        AppError::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn payload_too_large(message: impl Into<String>) -> AppError {
        AppError::new(StatusCode::PAYLOAD_TOO_LARGE, "invalid_request", message)
    }

    pub fn too_many_requests(retry_after_seconds: u64) -> AppError {
        let mut e = AppError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "Too many attempts. Wait a moment and try again.",
        );
        e.retry_after = Some(retry_after_seconds.max(1));
        e
    }

    pub fn unavailable(message: impl Into<String>) -> AppError {
        AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            message,
        )
    }

    /// Logs `detail` and returns an opaque 500: no SQL, stack or key material leaves here.
    pub fn internal(detail: impl fmt::Display) -> AppError {
        tracing::error!(error = %detail, "internal error");
        AppError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "Something went wrong on our side. Please try again.",
        )
    }

    /// Replaces the machine-readable code (the page script maps some codes to guidance).
    pub fn with_code(mut self, code: &'static str) -> AppError {
        self.code = code;
        self
    }

    pub fn with_www_authenticate(mut self, challenge: impl Into<String>) -> AppError {
        self.www_authenticate = Some(challenge.into());
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    fn response_builder(&self) -> actix_web::HttpResponseBuilder {
        let mut builder = HttpResponse::build(self.status);
        builder.insert_header((header::CACHE_CONTROL, "no-store"));
        if let Some(seconds) = self.retry_after {
            builder.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        if let Some(challenge) = &self.www_authenticate
            && let Ok(value) = HeaderValue::from_str(challenge)
        {
            builder.insert_header((header::WWW_AUTHENTICATE, value));
        }
        builder
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

#[derive(serde::Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    error_description: &'a str,
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        self.response_builder().json(ErrorBody {
            error: self.code,
            error_description: &self.message,
        })
    }
}

/// An [`AppError`] shown to a person: the same status, as an HTML page.
#[derive(Debug)]
pub struct PageError(pub AppError);

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
    status: u16,
}

impl PageError {
    fn title(&self) -> &'static str {
        match self.0.status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::UNAUTHORIZED => "Sign-in needed",
            StatusCode::TOO_MANY_REQUESTS => "Slow down",
            StatusCode::PAYLOAD_TOO_LARGE => "Too much data",
            s if s.is_server_error() => "Something went wrong",
            _ => "That did not work",
        }
    }
}

impl fmt::Display for PageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        self.0.status
    }

    fn error_response(&self) -> HttpResponse {
        let page = ErrorPage {
            title: self.title(),
            message: &self.0.message,
            status: self.0.status.as_u16(),
        };
        match page.render() {
            Ok(html) => self
                .0
                .response_builder()
                .content_type("text/html; charset=utf-8")
                .body(html),
            Err(e) => {
                tracing::error!(error = %e, "error page failed to render");
                self.0.error_response()
            }
        }
    }
}

impl<E: Into<AppError>> From<E> for PageError {
    fn from(e: E) -> Self {
        PageError(e.into())
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        AppError::internal(e)
    }
}

impl From<TenantError> for AppError {
    fn from(e: TenantError) -> Self {
        match e {
            TenantError::NotFound(_) => AppError::not_found("There is no such organisation."),
            TenantError::InvalidSlug(_)
            | TenantError::InvalidName
            | TenantError::InvalidSender(_) => AppError::bad_request(e.to_string()),
            TenantError::SlugTaken(_) => AppError::conflict(e.to_string()),
            TenantError::Store(e) => e.into(),
        }
    }
}

impl From<crate::passkeys::PasskeyError> for AppError {
    fn from(e: crate::passkeys::PasskeyError) -> Self {
        use crate::passkeys::PasskeyError as P;
        match e {
            P::CeremonyNotFound => AppError::bad_request(
                "This attempt expired or was already used. Please start again.",
            )
            .with_code("ceremony_expired"),
            P::Verification(detail) => {
                tracing::info!(%detail, "passkey response refused");
                AppError::bad_request("Your passkey's response could not be verified. Please try again.")
                    .with_code("verification_failed")
            }
            P::UnknownCredential => AppError::unauthorized(
                "That passkey is not registered for this account here. Try another passkey or sign in another way.",
            )
            .with_code("unknown_credential"),
            P::AlreadyRegistered => {
                AppError::conflict("This passkey is already registered.").with_code("already_registered")
            }
            P::UserVerificationRequired => AppError::forbidden(
                "Your organisation requires unlocking your passkey with a PIN or biometric. Set one up on your device or security key and try again.",
            )
            .with_code("user_verification_required"),
            P::PolicyRefused { rule, reason } => {
                AppError::forbidden(format!("{reason}. (Your organisation's policy \"{rule}\".)"))
                    .with_code("policy_refused")
            }
            P::CounterRegression => AppError::forbidden(
                "This passkey looks like a copy (its signature counter went backwards), and your organisation's policy refuses it. Use another passkey or contact your administrator.",
            )
            .with_code("policy_refused"),
            P::AccountInactive => AppError::forbidden("This account cannot sign in.").with_code("account_inactive"),
            P::InvalidLabel => AppError::bad_request(e.to_string()),
            P::Policy(e) => AppError::internal(e),
            P::Store(e) => e.into(),
            P::Internal(e) => AppError::internal(e),
        }
    }
}

impl From<crate::signin::SignInError> for AppError {
    fn from(e: crate::signin::SignInError) -> Self {
        use crate::signin::SignInError as S;
        match e {
            S::Passkey(e) => e.into(),
            S::WrongPassword => {
                AppError::unauthorized("Wrong email or password.").with_code("invalid_credentials")
            }
            S::Password(e) => e.into(),
            S::Store(e) => e.into(),
        }
    }
}

impl From<crate::passwords::PasswordError> for AppError {
    fn from(e: crate::passwords::PasswordError) -> Self {
        use crate::passwords::PasswordError as P;
        match e {
            P::Overloaded => {
                let mut err = AppError::unavailable(
                    "Too many sign-ins are being checked right now. Please try again in a moment.",
                );
                err.retry_after = Some(1);
                err
            }
            P::TooShort | P::TooLong => AppError::bad_request(e.to_string()),
            P::Hashing(e) => AppError::internal(e),
        }
    }
}

impl From<crate::enrollment::EnrollmentError> for AppError {
    fn from(e: crate::enrollment::EnrollmentError) -> Self {
        use crate::enrollment::EnrollmentError as E;
        match e {
            E::LinkInvalid => AppError::not_found(
                "This link has expired or was already used. Ask for a new one where you got it, or ask your administrator.",
            )
            .with_code("link_invalid"),
            E::AlreadyActive(_) => AppError::conflict(e.to_string()),
            E::NotYours => AppError::forbidden(e.to_string()),
            E::EmailRecoveryOff => AppError::forbidden(e.to_string()).with_code("email_recovery_off"),
            E::Passkey(e) => e.into(),
            E::User(e) => e.into(),
            E::Tenant(e) => e.into(),
            E::Recovery(e) => e.into(),
            E::Store(e) => e.into(),
        }
    }
}

impl From<crate::users::UserError> for AppError {
    fn from(e: crate::users::UserError) -> Self {
        use crate::users::UserError as U;
        match e {
            U::InvalidEmail(_) => AppError::bad_request(e.to_string()),
            U::EmailTaken(_) => AppError::conflict(e.to_string()),
            U::NotFound => AppError::not_found("No such user."),
            U::Store(e) => e.into(),
        }
    }
}

impl From<crate::ratelimit::RateLimitError> for AppError {
    fn from(e: crate::ratelimit::RateLimitError) -> Self {
        match e {
            crate::ratelimit::RateLimitError::Limited(seconds) => {
                AppError::too_many_requests(seconds)
            }
            crate::ratelimit::RateLimitError::Store(e) => e.into(),
        }
    }
}

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

impl From<crate::recovery::RecoveryError> for AppError {
    fn from(e: crate::recovery::RecoveryError) -> Self {
        use crate::recovery::RecoveryError as R;
        match e {
            R::WrongCode => AppError::unauthorized(
                "That email and recovery code don't match, or the code is locked after too many attempts. Check the code, or recover by email or with your administrator.",
            )
            .with_code("invalid_recovery_code"),
            R::EmailRecoveryOff => AppError::forbidden(e.to_string()).with_code("email_recovery_off"),
            R::UserNotFound => AppError::not_found("No such user in this organisation."),
            R::Forbidden(why) => AppError::forbidden(format!("Not allowed: {why}.")),
            R::StepUpRequired => AppError::forbidden(
                "Your account was recovered recently. For your security, sign in again with a passkey you had before the recovery, then try again.",
            )
            .with_code("step_up_required"),
            R::Passkey(e) => e.into(),
            R::Store(e) => e.into(),
        }
    }
}
