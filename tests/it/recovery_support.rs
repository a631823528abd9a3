//! Shared by the recovery tests: an app that mails through the loopback SMTP listener, users
//! enrolled through their invitation, and the recovery page's requests.

use serde_json::{Value, json};

use passgate::store::tenants::Tenant;
use passgate::store::users::User;
use passgate::users::Role;

use crate::authenticator::Crafted;
use crate::browser::Browser;
use crate::harness::{Backend, TestApp};
use crate::smtp::SmtpServer;

/// A passgate whose mail goes to a fresh SMTP listener.
pub async fn app_with_mail(backend: Backend) -> (TestApp, SmtpServer) {
    let smtp = SmtpServer::start().await;
    let url = smtp.url();
    let app = TestApp::builder(backend)
        .settings(|s| s.smtp_url = Some(url))
        .spawn()
        .await;
    (app, smtp)
}

/// Someone who accepted an invitation: their browser (signed in), their passkey and the
/// recovery code shown after the first enrollment.
pub struct Enrolled {
    pub user: User,
    pub browser: Browser,
    pub passkey: Crafted,
    pub recovery_code: String,
}

pub async fn enroll(app: &TestApp, tenant: &Tenant, email: &str, role: Role) -> Enrolled {
    let token = app.invite(tenant, email, role).await;
    let browser = Browser::new(app);
    let mut passkey = Crafted::new(&app.address);
    let res = browser.enroll(&tenant.slug, &token, &mut passkey).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let recovery_code = body["recovery_code"]
        .as_str()
        .expect("the first passkey comes with a recovery code")
        .to_string();
    Enrolled {
        user: user_by_email(app, tenant, email),
        browser,
        passkey,
        recovery_code,
    }
}

pub fn user_by_email(app: &TestApp, tenant: &Tenant, email: &str) -> User {
    let (tenant_id, email) = (tenant.id.clone(), email.to_string());
    app.db(move |conn| passgate::store::users::find_user_by_email(conn, &tenant_id, &email))
        .expect("user exists")
}

/// `POST /api/recover/code` from the recovery page.
pub async fn recover_with_code(
    browser: &Browser,
    tenant: &str,
    email: &str,
    code: &str,
) -> reqwest::Response {
    let csrf = browser.csrf(&format!("/t/{tenant}/recover")).await;
    browser
        .post_json(
            &format!("/t/{tenant}/api/recover/code"),
            &csrf,
            &json!({ "email": email, "code": code }),
        )
        .await
}

/// `POST /api/recover/email` from the recovery page.
pub async fn request_recovery_email(
    browser: &Browser,
    tenant: &str,
    email: &str,
) -> reqwest::Response {
    let csrf = browser.csrf(&format!("/t/{tenant}/recover")).await;
    browser
        .post_json(
            &format!("/t/{tenant}/api/recover/email"),
            &csrf,
            &json!({ "email": email }),
        )
        .await
}

/// Registers a passkey on the ceremony a recovery answer started, as the page's script does.
pub async fn finish_registration(
    browser: &Browser,
    tenant: &str,
    csrf_page: &str,
    start: &Value,
    passkey: &mut Crafted,
) -> reqwest::Response {
    let csrf = browser.csrf(csrf_page).await;
    let credential = passkey.register(&start["publicKey"]);
    browser
        .post_json(
            &format!("/t/{tenant}/api/passkeys/finish"),
            &csrf,
            &json!({ "ceremony_id": start["ceremony_id"], "credential": credential, "label": null }),
        )
        .await
}

/// Opens a link page (`/enroll`, `/recover/link`, `/device`) and starts its ceremony.
pub async fn start_from_link(browser: &Browser, link: &str, kind: &str) -> (u16, Value) {
    let url = reqwest::Url::parse(link).unwrap();
    let token = url
        .query_pairs()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.to_string())
        .expect("the link carries a token");
    let tenant = url.path().split('/').nth(2).unwrap().to_string();
    let page = browser
        .get(&format!("{}?{}", url.path(), url.query().unwrap()))
        .await;
    if page.status() != 200 {
        return (page.status().as_u16(), Value::Null);
    }
    let csrf = crate::browser::attribute(&page.text().await.unwrap(), "data-csrf").unwrap();
    let res = browser
        .post_json(
            &format!("/t/{tenant}/api/links/start"),
            &csrf,
            &json!({ "token": token, "kind": kind }),
        )
        .await;
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

/// Whether this browser has a session in `tenant` (the account page answers, not a redirect).
pub async fn is_signed_in(browser: &Browser, tenant: &str) -> bool {
    browser
        .get(&format!("/t/{tenant}/account"))
        .await
        .status()
        .is_success()
}

/// The tenant's audit events of one type, oldest first.
pub fn audit_events(app: &TestApp, tenant: &Tenant, event_type: &str) -> Vec<Value> {
    let tenant_id = tenant.id.clone();
    let mut events: Vec<Value> = app
        .db(move |conn| {
            passgate::audit::list(conn, &tenant_id, &passgate::audit::Filter::default())
        })
        .into_iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .filter(|e| e["event_type"] == event_type)
        .collect();
    events.reverse();
    events
}
