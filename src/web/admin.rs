//! The admin JSON API (A1, C4): authorized by an owner's or admin's browser session (with
//! the CSRF header), or by a client-credentials access token carrying `passgate:admin`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::{AppError, Visit};
use crate::audit::{self, Filter};
use crate::recovery::links::{AdminActor, start_admin_recovery};
use crate::recovery::restriction::require_trusted_session;
use crate::users::Role;

pub const ADMIN_SCOPE: &str = "passgate:admin";

/// Who is calling, once authorized.
async fn admin_caller(req: &HttpRequest, visit: &Visit) -> Result<AdminActor, AppError> {
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
    let now = visit.state.clock.now();
    let user = signed_in.user.clone();
    visit
        .state
        .store
        .read(move |conn| require_trusted_session(conn, &signed_in.user, &signed_in.session, now))
        .await?;
    Ok(AdminActor::User(Box::new(user)))
}

fn reviewer_name(actor: &AdminActor) -> String {
    match actor {
        AdminActor::User(u) => format!("user:{}", u.id),
        AdminActor::Client(id) => format!("client:{id}"),
        AdminActor::Cli => "cli".to_string(),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct RecoveryBody {
    #[serde(default)]
    revoke_passkeys: bool,
}

/// `POST /t/{tenant}/admin/api/users/{id}/recovery`: C4, admin-assisted recovery.
pub async fn post_user_recovery(
    req: HttpRequest,
    visit: Visit,
    path: web::Path<(String, String)>,
    body: Option<web::Json<RecoveryBody>>,
) -> Result<HttpResponse, AppError> {
    let actor = admin_caller(&req, &visit).await?;
    let (_, user_id) = path.into_inner();
    let revoke = body.map(|b| b.revoke_passkeys).unwrap_or_default();
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
    req: HttpRequest,
    visit: Visit,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, AppError> {
    admin_caller(&req, &visit).await?;
    let since = query
        .since
        .as_deref()
        .map(audit::parse_since)
        .transpose()
        .map_err(|e| AppError::bad_request(e.to_string()))?;
    let filter = Filter {
        needs_review: query.needs_review.unwrap_or(false),
        since,
        limit: query.limit,
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
pub struct ReviewBody {
    note: Option<String>,
}

/// `POST /t/{tenant}/admin/api/audit/{id}/review`: records who reviewed it, and when.
pub async fn post_review(
    req: HttpRequest,
    visit: Visit,
    path: web::Path<(String, String)>,
    body: Option<web::Json<ReviewBody>>,
) -> Result<HttpResponse, AppError> {
    let actor = admin_caller(&req, &visit).await?;
    let (_, event_id) = path.into_inner();
    let note = body
        .and_then(|b| b.into_inner().note)
        .filter(|n| n.chars().count() <= 2000);
    let (tenant_id, reviewer, now) = (
        visit.tenant.id.clone(),
        reviewer_name(&actor),
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
