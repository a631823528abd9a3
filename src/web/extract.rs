//! Extractor limits and errors: malformed or oversized input is a clear 4xx in the format the
//! path calls for, never a 500.

use actix_web::error::{JsonPayloadError, UrlencodedError};
use actix_web::{HttpRequest, web};

use super::{AppError, PageError, is_api_path};

/// JSON bodies (WebAuthn responses, admin API) are small; anything bigger is refused unread.
const JSON_LIMIT: usize = 64 * 1024;
const FORM_LIMIT: usize = 16 * 1024;

fn for_path(req: &HttpRequest, err: AppError) -> actix_web::Error {
    if is_api_path(req.path()) {
        err.into()
    } else {
        PageError(err).into()
    }
}

pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(JSON_LIMIT)
        .error_handler(|err, req| {
            let app = match &err {
                JsonPayloadError::Overflow { .. }
                | JsonPayloadError::OverflowKnownLength { .. } => AppError::payload_too_large(
                    format!("The request body is larger than {JSON_LIMIT} bytes."),
                ),
                JsonPayloadError::ContentType => {
                    AppError::bad_request("Expected Content-Type: application/json.")
                }
                JsonPayloadError::Deserialize(e) => {
                    AppError::bad_request(format!("Malformed JSON: {e}"))
                }
                _ => AppError::bad_request("Malformed request body."),
            };
            for_path(req, app)
        })
}

pub fn form_config() -> web::FormConfig {
    web::FormConfig::default()
        .limit(FORM_LIMIT)
        .error_handler(|err, req| {
            let app = match &err {
                UrlencodedError::Overflow { .. } => AppError::payload_too_large(format!(
                    "The form is larger than {FORM_LIMIT} bytes."
                )),
                UrlencodedError::ContentType => AppError::bad_request(
                    "Expected Content-Type: application/x-www-form-urlencoded.",
                ),
                UrlencodedError::Parse(e) => AppError::bad_request(format!("Malformed form: {e}")),
                _ => AppError::bad_request("Malformed form."),
            };
            for_path(req, app)
        })
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, req| {
        for_path(
            req,
            AppError::bad_request(format!("Malformed query: {err}")),
        )
    })
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|_err, req| {
        for_path(
            req,
            AppError::not_found("There is nothing at this address."),
        )
    })
}
