use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::app::AppState;

/// Liveness: the process answers HTTP. Deliberately touches nothing else.
pub async fn get_healthz() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({ "status": "ok" }))
}

/// Readiness: the database answers and its schema is the one this binary expects.
pub async fn get_readyz(state: web::Data<AppState>) -> HttpResponse {
    let backend = state.store.backend().name();
    let (status, body) = match state.store.check_ready().await {
        Ok(schema) if schema.is_current() => (
            actix_web::http::StatusCode::OK,
            json!({ "status": "ready", "database": backend, "schema": schema.latest }),
        ),
        Ok(schema) => (
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            json!({ "status": "not_ready", "database": backend,
                    "reason": "migrations pending", "pending": schema.pending }),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                json!({ "status": "not_ready", "database": backend,
                        "reason": "database unavailable" }),
            )
        }
    };
    HttpResponse::build(status)
        .insert_header(("Cache-Control", "no-store"))
        .json(body)
}
