//! CORS for the endpoints single-page apps call from the browser (discovery, JWKS, token,
//! userinfo, revocation): allowed only from the origins of the tenant's public clients'
//! registered redirect URIs — a confidential client's backend needs no CORS, and nothing else
//! should read these answers from a browser.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};

use crate::app::AppState;
use crate::oidc::clients::allowed_origins;
use crate::web::AppError;
use crate::web::context::tenant_of;

const ALLOWED_METHODS: &str = "GET, POST";
const ALLOWED_HEADERS: &str = "authorization, content-type";
const PREFLIGHT_MAX_AGE: &str = "600";

pub async fn cors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(origin) = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
    else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| AppError::internal("application state missing"))?;
    let is_allowed = match tenant_of(req.request(), &state).await {
        Ok(tenant) => allowed_origins(&state.store, &state.oidc, &tenant.id)
            .await
            .map_err(AppError::from)?
            .contains(&origin),
        Err(_) => false,
    };
    let is_preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if is_preflight {
        let mut res = if is_allowed {
            HttpResponse::NoContent()
        } else {
            HttpResponse::Forbidden()
        };
        res.insert_header((header::VARY, "Origin"));
        if is_allowed {
            res.insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.as_str()))
                .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, ALLOWED_METHODS))
                .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOWED_HEADERS))
                .insert_header((header::ACCESS_CONTROL_MAX_AGE, PREFLIGHT_MAX_AGE));
        }
        return Ok(req.into_response(res.finish()));
    }
    let mut res = next.call(req).await?.map_into_boxed_body();
    let headers = res.headers_mut();
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    if is_allowed && let Ok(value) = HeaderValue::from_str(&origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    }
    Ok(res)
}
