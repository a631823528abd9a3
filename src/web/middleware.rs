use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::{DefaultHeaders, Next};
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RequestId, RootSpanBuilder};

/// Security headers on every response. `form-action` is left out on purpose: browsers apply
/// it to the redirect after a form post, which would block returning to a relying party.
pub fn security_headers(is_https: bool) -> DefaultHeaders {
    let headers = DefaultHeaders::new()
        .add((
            "Content-Security-Policy",
            "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
        ))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Referrer-Policy", "no-referrer"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Cross-Origin-Opener-Policy", "same-origin"));
    if is_https {
        headers.add(("Strict-Transport-Security", "max-age=31536000"))
    } else {
        headers
    }
}

/// Echoes the request id of the tracing span, so a user's report can be found in the logs.
pub async fn request_id_header(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = req.extensions().get::<RequestId>().copied();
    let mut res = next.call(req).await?;
    if let Some(id) = id
        && let Ok(value) = HeaderValue::from_str(&id.to_string())
    {
        res.headers_mut()
            .insert(HeaderName::from_static("x-request-id"), value);
    }
    Ok(res)
}

/// The span each request runs in. With INFO enabled it is tracing-actix-web's full span
/// (route, client IP, user agent, status…); otherwise only the request id, which warnings
/// and errors still carry — the full span's fields cost a route lookup and several header
/// parses per request, for a span nothing would record.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        if tracing::level_enabled!(tracing::Level::INFO) {
            return tracing_actix_web::root_span!(request);
        }
        match request.extensions().get::<RequestId>() {
            Some(id) => tracing::warn_span!("HTTP request", request_id = %id),
            None => tracing::warn_span!("HTTP request"),
        }
    }

    /// Replaces tracing-actix-web's per-error event (its `emit_event_on_error` feature is
    /// off), which logged every 4xx as a warning and every 503 as an error: a client's
    /// mistakes and load shedding are expected (the auth events and metrics count them), and
    /// a flood of bad requests must not become a flood of log lines. Internal errors are
    /// logged with their detail where they happen; this adds the status.
    fn on_request_end<B: MessageBody>(
        span: Span,
        outcome: &Result<ServiceResponse<B>, actix_web::Error>,
    ) {
        let status = match outcome {
            Ok(response) => response.status(),
            Err(error) => error.as_response_error().status_code(),
        };
        DefaultRootSpanBuilder::on_request_end(span, outcome);
        if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
            tracing::error!(status = status.as_u16(), "request failed");
        } else if status.is_client_error() || status.is_server_error() {
            tracing::debug!(status = status.as_u16(), "request refused");
        }
    }
}
