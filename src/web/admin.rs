//! The admin JSON API (A1, C4): authorized by an owner's or admin's browser session (with
//! the CSRF header), or by a client-credentials access token carrying `passgate:admin`.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::extract::OptionalJson;
use super::{AppError, Visit};
use crate::admin::AdminActor;
use crate::audit::{self, Filter};
use crate::ratelimit::Key;
use crate::recovery::links::start_admin_recovery;
use crate::recovery::restriction::check_trusted_session;
use crate::users::Role;

/// The admin API.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/api/audit", web::get().to(get_audit))
        .route(
            "/admin/api/users/{id}/recovery",
            web::post().to(post_user_recovery),
        )
        .route("/admin/api/audit/{id}/review", web::post().to(post_review));
}

pub const ADMIN_SCOPE: &str = "passgate:admin";

/// An authorized call to a tenant's admin API: an owner's or admin's browser session with
/// the CSRF header, or a client-credentials access token carrying `passgate:admin`.
pub struct AdminCaller {
    pub visit: Visit,
    pub actor: AdminActor,
}

impl FromRequest for AdminCaller {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<AdminCaller, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let (req, visit) = (req.clone(), Visit::from_request(req, payload));
        Box::pin(async move {
            let visit = visit.await?;
            let actor = authorize(&req, &visit).await?;
            let state = &visit.state;
            let key = Key::Admin(format!("{}|{}", visit.tenant.id, actor.reviewer_name()));
            state
                .limiter
                .check(&state.store, "admin", &[key])
                .await
                .map_err(AppError::from)?;
            Ok(AdminCaller { visit, actor })
        })
    }
}

async fn authorize(req: &HttpRequest, visit: &Visit) -> Result<AdminActor, AppError> {
    let bearer = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    if let Some(token) = bearer {
        let claims = super::oidc::verify_bearer(&visit.state, &visit.tenant, token)
            .await
            .map_err(|_| {
                AppError::unauthorized("The access token is missing, expired or revoked.")
                    .with_code("invalid_token")
                    .with_www_authenticate("Bearer error=\"invalid_token\"")
            })?;
        if claims.is_for_user() || !claims.scopes().contains(ADMIN_SCOPE) {
            return Err(AppError::forbidden(format!(
                "The token needs the {ADMIN_SCOPE} scope, issued to a client (client_credentials)."
            ))
            .with_code("insufficient_scope")
            .with_www_authenticate(format!(
                "Bearer error=\"insufficient_scope\", scope=\"{ADMIN_SCOPE}\""
            )));
        }
        return Ok(AdminActor::Client(claims.client_id));
    }
    let signed_in = visit.require_signed_in()?.clone();
    visit.check_csrf_header(req)?;
    if !Role::of(&signed_in.user).is_admin() {
        return Err(AppError::forbidden("Only owners and admins can do this."));
    }
    // Admin actions are sensitive: a recently recovered admin confirms first (C3).
    let state = &visit.state;
    check_trusted_session(
        &state.store,
        signed_in.user.clone(),
        signed_in.session,
        state.clock.now(),
    )
    .await?;
    Ok(AdminActor::User(Box::new(signed_in.user)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoveryBody {
    #[serde(default)]
    revoke_passkeys: bool,
}

/// `POST /t/{tenant}/admin/api/users/{id}/recovery`: C4, admin-assisted recovery.
pub async fn post_user_recovery(
    caller: AdminCaller,
    path: web::Path<(String, String)>,
    OptionalJson(body): OptionalJson<RecoveryBody>,
) -> Result<HttpResponse, AppError> {
    let AdminCaller { visit, actor } = caller;
    let (_, user_id) = path.into_inner();
    let revoke = body.revoke_passkeys;
    let (tenant, settings, now) = (
        visit.tenant.clone(),
        visit.state.settings.clone(),
        visit.state.clock.now(),
    );
    let started = visit
        .state
        .store
        .write(move |conn| {
            start_admin_recovery(conn, &tenant, &actor, &user_id, revoke, &settings, now)
        })
        .await?;
    visit.state.mailer.wake();
    Ok(HttpResponse::build(StatusCode::CREATED)
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({
            "user_id": started.user.id,
            "email": started.user.email,
            "recovery_url": started.link.url,
            "expires_at": audit::rfc3339(started.expires_at),
            "passkeys_revoked": started.passkeys_revoked,
        })))
}

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    needs_review: Option<bool>,
    since: Option<String>,
    limit: Option<i64>,
}

/// `GET /t/{tenant}/admin/api/audit`: the tenant's security log, newest first.
pub async fn get_audit(
    caller: AdminCaller,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, AppError> {
    let visit = caller.visit;
    let since = query
        .since
        .as_deref()
        .map(audit::parse_since)
        .transpose()
        .map_err(|e| AppError::bad_request(e.to_string()))?;
    let filter = Filter {
        needs_review: query.needs_review.unwrap_or(false),
        since,
        limit: query
            .limit
            .map(audit::parse_limit)
            .transpose()
            .map_err(|e| AppError::bad_request(e.to_string()))?,
    };
    let tenant_id = visit.tenant.id.clone();
    let events = visit
        .state
        .store
        .read(move |conn| audit::list(conn, &tenant_id, &filter))
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({ "events": events })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewBody {
    note: Option<String>,
}

/// `POST /t/{tenant}/admin/api/audit/{id}/review`: records who reviewed it, and when.
pub async fn post_review(
    caller: AdminCaller,
    path: web::Path<(String, String)>,
    OptionalJson(body): OptionalJson<ReviewBody>,
) -> Result<HttpResponse, AppError> {
    let AdminCaller { visit, actor } = caller;
    let (_, event_id) = path.into_inner();
    let note = body.note;
    if note.as_ref().is_some_and(|n| n.chars().count() > 2000) {
        return Err(AppError::bad_request(
            "The note is longer than 2,000 characters.",
        ));
    }
    let (tenant_id, reviewer, now) = (
        visit.tenant.id.clone(),
        actor.reviewer_name(),
        visit.state.clock.now(),
    );
    let found = visit
        .state
        .store
        .write(move |conn| {
            audit::mark_reviewed(conn, &tenant_id, &event_id, &reviewer, note.as_deref(), now)
        })
        .await?;
    if !found {
        return Err(AppError::not_found(
            "No such audit event in this organisation.",
        ));
    }
    Ok(HttpResponse::Ok().json(json!({ "reviewed": true })))
}
