//! Extractor limits and errors: malformed or oversized input is a clear 4xx in the format the
//! path calls for, never a 500.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::error::{JsonPayloadError, QueryPayloadError, UrlencodedError};
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use serde::de::DeserializeOwned;

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
                JsonPayloadError::Deserialize(e) => AppError::bad_request(json_problem(e)),
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
        let problem = match &err {
            QueryPayloadError::Deserialize(e) => format!("A query parameter is not valid: {e}."),
            _ => "The query string is not valid.".to_string(),
        };
        for_path(req, AppError::bad_request(problem))
    })
}

/// What was wrong with a JSON body, in the words of the request (the field, the type it
/// should have been, where), never the name of our own types.
fn json_problem(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof => format!("The body is not valid JSON: {e}."),
        Category::Data => {
            let said = e.to_string();
            let said = match said.find("expected struct ") {
                Some(at) => {
                    let rest = &said[at + "expected struct ".len()..];
                    let name_end = rest.find(' ').unwrap_or(rest.len());
                    format!("{}expected a JSON object{}", &said[..at], &rest[name_end..])
                }
                None => said,
            };
            format!("The body does not have the expected fields: {said}.")
        }
        Category::Io => "The body could not be read.".to_string(),
    }
}

/// A JSON object body that may be absent (no body at all: `T::default()`), but that is refused
/// with 400 or 413 when present and not what the endpoint takes — never read as absent. An
/// array is not an object, though serde would fill a struct from one.
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default + 'static> FromRequest for OptionalJson<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<OptionalJson<T>, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let headers = req.headers();
        let has_body = headers.contains_key(header::TRANSFER_ENCODING)
            || headers
                .get(header::CONTENT_LENGTH)
                .is_some_and(|len| len.as_bytes() != b"0");
        if !has_body {
            return Box::pin(async { Ok(OptionalJson(T::default())) });
        }
        let (req, json) = (
            req.clone(),
            web::Json::<serde_json::Value>::from_request(req, payload),
        );
        Box::pin(async move {
            let value = json.await?.into_inner();
            if !value.is_object() {
                let refusal = AppError::bad_request("The body must be a JSON object.");
                return Err(for_path(&req, refusal));
            }
            serde_json::from_value(value)
                .map(OptionalJson)
                .map_err(|e| for_path(&req, AppError::bad_request(json_problem(&e))))
        })
    }
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|_err, req| {
        for_path(
            req,
            AppError::not_found("There is nothing at this address."),
        )
    })
}
