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

mod enrollment;
mod oidc;
mod signin;

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
