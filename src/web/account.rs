//! The account page (P9, P10): the user's passkeys by authenticator name, rename, remove
//! with confirmation, add another, sign out.

use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::pages::{render, see_other};
use super::{AppError, PageError, SignedIn, Visit};
use crate::account::{self, AccountError};
use crate::clock::display;
use crate::passkeys::aaguid::authenticator_name;
use crate::store::passkeys::Passkey;
use crate::users;

/// The account page and its forms. Patterns with a parameter are matched by regex: after
/// the literal paths.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/account", web::get().to(get_account))
        .route("/account/recovery-code", web::post().to(post_recovery_code))
        .route("/account/device-link", web::post().to(post_device_link))
        .route("/account/passkeys/{id}/rename", web::post().to(post_rename))
        .route("/account/passkeys/{id}/remove", web::get().to(get_remove))
        .route("/account/passkeys/{id}/remove", web::post().to(post_remove));
}

pub struct PasskeyRow {
    pub id: String,
    pub credential_id: String,
    pub label: String,
    pub authenticator: String,
    pub created: String,
    pub last_used: String,
    pub is_synced: bool,
    pub is_flagged: bool,
}

impl From<&Passkey> for PasskeyRow {
    fn from(p: &Passkey) -> Self {
        PasskeyRow {
            id: p.id.clone(),
            credential_id: p.credential_id.clone(),
            label: p.label.clone(),
            authenticator: authenticator_name(&p.aaguid, p.backup_eligible),
            created: display(p.created_at),
            last_used: p
                .last_used_at
                .map(display)
                .unwrap_or_else(|| "never".into()),
            is_synced: p.backup_eligible,
            is_flagged: p.counter_flagged_at.is_some(),
        }
    }
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    tenant_name: &'a str,
    tenant_path: String,
    csrf: String,
    name: &'a str,
    email: &'a str,
    passkeys: Vec<PasskeyRow>,
    welcome: bool,
    added: bool,
    restricted: bool,
    restricted_until: String,
    has_recovery_code: bool,
}

#[derive(Debug, Deserialize)]
pub struct AccountQuery {
    welcome: Option<String>,
    added: Option<String>,
}

impl From<AccountError> for AppError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::PasskeyNotFound => {
                AppError::not_found("No such passkey on your account.")
            }
            AccountError::Passkey(e) => e.into(),
            AccountError::Recovery(e) => e.into(),
            AccountError::Store(e) => e.into(),
        }
    }
}

/// Signed-in pages send anonymous visitors to the login page and back.
fn signed_in_or_login(visit: &Visit, here: &str) -> Result<SignedIn, HttpResponse> {
    visit.signed_in.clone().ok_or_else(|| {
        let login = format!(
            "{}?return_to={}",
            visit.tenant_path("/login"),
            url::form_urlencoded::byte_serialize(visit.tenant_path(here).as_bytes())
                .collect::<String>()
        );
        see_other(&login)
    })
}

pub async fn get_account(
    visit: Visit,
    query: web::Query<AccountQuery>,
) -> Result<HttpResponse, PageError> {
    let signed_in = match signed_in_or_login(&visit, "/account") {
        Ok(s) => s,
        Err(redirect) => return Ok(redirect),
    };
    let user = signed_in.user.clone();
    let (passkeys, has_recovery_code) = visit
        .state
        .store
        .read(move |conn| {
            Ok::<_, AccountError>((
                account::list_passkeys(conn, &user)?,
                account::has_recovery_code(conn, &user)?,
            ))
        })
        .await
        .map_err(AppError::from)?;
    let now = visit.state.clock.now();
    Ok(render(&AccountPage {
        tenant_name: &visit.tenant.name,
        tenant_path: visit.tenant_path(""),
        csrf: visit.csrf_token(),
        name: users::display_name(&signed_in.user),
        email: &signed_in.user.email,
        passkeys: passkeys.iter().map(PasskeyRow::from).collect(),
        welcome: query.welcome.is_some(),
        added: query.added.is_some(),
        restricted: crate::recovery::restriction::is_restricted(&signed_in.user, now),
        restricted_until: signed_in
            .user
            .restricted_until
            .map(display)
            .unwrap_or_default(),
        has_recovery_code,
    })?)
}

#[derive(Debug, Deserialize)]
pub struct RenameForm {
    csrf_token: String,
    label: String,
}

pub async fn post_rename(
    visit: Visit,
    path: web::Path<(String, String)>,
    form: web::Form<RenameForm>,
) -> Result<HttpResponse, PageError> {
    visit.check_csrf(Some(&form.csrf_token))?;
    let user = visit.require_signed_in()?.user.clone();
    let (_, id) = path.into_inner();
    let label = form.into_inner().label;
    let (client, now) = (visit.client.clone(), visit.state.clock.now());
    visit
        .state
        .store
        .write(move |conn| account::rename_passkey(conn, &user, &id, &label, &client, now))
        .await
        .map_err(AppError::from)?;
    Ok(see_other(&visit.tenant_path("/account")))
}

#[derive(Template)]
#[template(path = "passkey_remove.html")]
struct RemovePage<'a> {
    tenant_name: &'a str,
    tenant_path: String,
    csrf: String,
    passkey: PasskeyRow,
    is_last: bool,
}

/// The confirmation step before removing a passkey, with a warning for the last one.
pub async fn get_remove(
    visit: Visit,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, PageError> {
    let (_, id) = path.into_inner();
    let signed_in = match signed_in_or_login(&visit, &format!("/account/passkeys/{id}/remove")) {
        Ok(s) => s,
        Err(redirect) => return Ok(redirect),
    };
    let user = signed_in.user.clone();
    let (passkey, count) = visit
        .state
        .store
        .read(move |conn| {
            let passkey = account::find_passkey(conn, &user, &id)?;
            let count = account::list_passkeys(conn, &user)?.len();
            Ok::<_, AccountError>((passkey, count))
        })
        .await
        .map_err(AppError::from)?;
    Ok(render(&RemovePage {
        tenant_name: &visit.tenant.name,
        tenant_path: visit.tenant_path(""),
        csrf: visit.csrf_token(),
        passkey: PasskeyRow::from(&passkey),
        is_last: count <= 1,
    })?)
}

#[derive(Debug, Deserialize)]
pub struct RemoveForm {
    csrf_token: String,
}

pub async fn post_remove(
    visit: Visit,
    path: web::Path<(String, String)>,
    form: web::Form<RemoveForm>,
) -> Result<HttpResponse, PageError> {
    visit.check_csrf(Some(&form.csrf_token))?;
    let signed_in = visit.require_signed_in()?.clone();
    let (_, id) = path.into_inner();
    let (client, now) = (visit.client.clone(), visit.state.clock.now());
    visit
        .state
        .store
        .write(move |conn| {
            account::remove_passkey(conn, &signed_in.user, &signed_in.session, &id, &client, now)
        })
        .await
        .map_err(AppError::from)?;
    Ok(see_other(&visit.tenant_path("/account")))
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf_token: String,
}

#[derive(Template)]
#[template(path = "recovery_code.html")]
struct RecoveryCodePage<'a> {
    tenant_name: &'a str,
    tenant_path: String,
    code: String,
}

/// Makes a new recovery code and shows it once.
pub async fn post_recovery_code(
    visit: Visit,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    visit.check_csrf(Some(&form.csrf_token))?;
    let signed_in = visit.require_signed_in()?.clone();
    let (key, client, now) = (
        visit.state.master_key.clone(),
        visit.client.clone(),
        visit.state.clock.now(),
    );
    let code = visit
        .state
        .store
        .write(move |conn| {
            account::regenerate_recovery_code(
                conn,
                &key,
                &signed_in.user,
                &signed_in.session,
                &client,
                now,
            )
        })
        .await
        .map_err(AppError::from)?;
    Ok(render(&RecoveryCodePage {
        tenant_name: &visit.tenant.name,
        tenant_path: visit.tenant_path(""),
        code: code.grouped(),
    })?)
}

#[derive(Template)]
#[template(path = "device_link.html")]
struct DeviceLinkPage<'a> {
    tenant_name: &'a str,
    tenant_path: String,
    url: String,
    qr_svg: String,
    expires: String,
}

/// C2: a link and QR code to open on a device that is not signed in.
pub async fn post_device_link(
    visit: Visit,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    visit.check_csrf(Some(&form.csrf_token))?;
    let signed_in = visit.require_signed_in()?.clone();
    let (tenant, settings, now) = (
        visit.tenant.clone(),
        visit.state.settings.clone(),
        visit.state.clock.now(),
    );
    let (url, expires) = visit
        .state
        .store
        .write(move |conn| {
            account::make_device_link(
                conn,
                &tenant,
                &signed_in.user,
                &signed_in.session,
                &settings,
                now,
            )
        })
        .await
        .map_err(AppError::from)?;
    let qr_svg = qrcode::QrCode::new(url.as_bytes())
        .map(|code| {
            code.render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(200, 200)
                .build()
        })
        .map_err(AppError::internal)?;
    Ok(render(&DeviceLinkPage {
        tenant_name: &visit.tenant.name,
        tenant_path: visit.tenant_path(""),
        url,
        qr_svg,
        expires: display(expires),
    })?)
}
