//! Helpers shared by the OIDC tests: a tenant with a user and a registered client, signing
//! in, PKCE, and raw protocol requests for the negative cases.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use sha2::{Digest, Sha256};

use passgate::oidc::clients::{self, IssuedClient, NewClient};
use passgate::store::tenants::Tenant;
use passgate::store::users::User;
use passgate::users::Role;

use crate::authenticator::Crafted;
use crate::browser::Browser;
use crate::harness::TestApp;

pub const REDIRECT_URI: &str = "https://app.example.com/callback";

pub struct Rp {
    pub tenant: Tenant,
    pub user: User,
    pub client_id: String,
    pub client_secret: String,
    /// The user's passkey: `sign_in` uses it on the real login page.
    pub passkey: tokio::sync::Mutex<Crafted>,
}

impl Rp {
    pub fn issuer(&self, app: &TestApp) -> String {
        app.url(&format!("/t/{}", self.tenant.slug))
    }

    pub fn path(&self, path: &str) -> String {
        format!("/t/{}{path}", self.tenant.slug)
    }
}

/// Registers a client in `tenant` with the domain function the CLI uses.
pub async fn register(app: &TestApp, tenant: &Tenant, new: NewClient) -> IssuedClient {
    let tenant_id = tenant.id.clone();
    let now = app.clock.now();
    app.state
        .store
        .write(move |conn| clients::create_client(conn, &tenant_id, &new, now))
        .await
        .unwrap()
}

pub fn first_party_client() -> NewClient {
    NewClient {
        name: "Acme CRM".into(),
        redirect_uris: vec![REDIRECT_URI.into(), "http://127.0.0.1/callback".into()],
        post_logout_redirect_uris: vec!["https://app.example.com/signed-out".into()],
        is_first_party: true,
        ..NewClient::default()
    }
}

/// A tenant, a member and a confidential first-party client.
pub async fn setup(app: &TestApp, slug: &str) -> Rp {
    setup_with(app, slug, first_party_client()).await
}

/// A tenant, alice enrolled with a passkey through her invitation (in a browser of her own),
/// and a registered client.
pub async fn setup_with(app: &TestApp, slug: &str, new: NewClient) -> Rp {
    let tenant = app.create_tenant(slug).await;
    let email = format!("alice@{slug}.example");
    let token = app.invite(&tenant, &email, Role::Member).await;
    let mut passkey = Crafted::new(&app.address);
    let enrolled = Browser::new(app).enroll(slug, &token, &mut passkey).await;
    assert_eq!(enrolled.status(), 200);
    let tenant_id = tenant.id.clone();
    let user = app.db(move |conn| {
        Ok(passgate::store::users::find_user_by_email(conn, &tenant_id, &email)?.unwrap())
    });
    let issued = register(app, &tenant, new).await;
    Rp {
        tenant,
        user,
        client_id: issued.client_id,
        client_secret: issued.client_secret.unwrap_or_default(),
        passkey: tokio::sync::Mutex::new(passkey),
    }
}

/// Signs the RP's user in, in the test app's browser, through the real login page: the email
/// step, a passkey assertion, the session cookie.
pub async fn sign_in(app: &TestApp, rp: &Rp) {
    let mut passkey = rp.passkey.lock().await;
    let res = Browser::of(app)
        .passkey_login(&rp.tenant.slug, &rp.user.email, &mut *passkey)
        .await;
    assert_eq!(res.status(), 200, "passkey sign-in");
}

/// A PKCE verifier and its S256 challenge.
pub fn pkce() -> (String, String) {
    let verifier = passgate::crypto::random_token(32);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// The query of a valid authorization request, with `extra` pairs overriding or adding.
pub fn authorize_query(rp: &Rp, challenge: &str, extra: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", &rp.client_id),
        ("redirect_uri", REDIRECT_URI),
        ("scope", "openid email profile offline_access"),
        ("state", "st-123"),
        ("nonce", "n-456"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ];
    for (k, v) in extra {
        pairs.retain(|(name, _)| name != k);
        if !v.is_empty() {
            pairs.push((k, v));
        }
    }
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        query.append_pair(k, v);
    }
    query.finish()
}

pub async fn authorize(app: &TestApp, rp: &Rp, query: &str) -> reqwest::Response {
    app.get(&format!("{}?{query}", rp.path("/oauth2/authorize")))
        .await
}

/// The query parameters of a redirect's `Location`.
pub fn location_params(res: &reqwest::Response) -> Vec<(String, String)> {
    let location = res
        .headers()
        .get("location")
        .unwrap_or_else(|| panic!("no Location in a {} answer", res.status()))
        .to_str()
        .unwrap();
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Signs in (if needed elsewhere), authorizes and returns `(code, verifier)`.
pub async fn authorize_code(app: &TestApp, rp: &Rp, extra: &[(&str, &str)]) -> (String, String) {
    let (verifier, challenge) = pkce();
    let res = authorize(app, rp, &authorize_query(rp, &challenge, extra)).await;
    assert_eq!(res.status(), 302, "{:?}", res.text().await);
    let params = location_params(&res);
    let code = param(&params, "code").unwrap_or_else(|| panic!("no code: {params:?}"));
    (code.to_string(), verifier)
}

/// A token-endpoint request with HTTP Basic client authentication.
pub async fn token(app: &TestApp, rp: &Rp, form: &[(&str, &str)]) -> (u16, Value) {
    let res = app
        .client
        .post(app.url(&rp.path("/oauth2/token")))
        .basic_auth(&rp.client_id, Some(&rp.client_secret))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    assert_eq!(res.headers()["cache-control"], "no-store");
    (status, res.json().await.unwrap_or(Value::Null))
}

pub async fn redeem(app: &TestApp, rp: &Rp, code: &str, verifier: &str) -> (u16, Value) {
    token(
        app,
        rp,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier),
        ],
    )
    .await
}

pub async fn userinfo(app: &TestApp, rp: &Rp, access_token: &str) -> reqwest::Response {
    app.new_browser()
        .get(app.url(&rp.path("/oauth2/userinfo")))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
}

/// Signed in, with a code redeemed: the token response.
pub async fn tokens(app: &TestApp, rp: &Rp) -> Value {
    sign_in(app, rp).await;
    let (code, verifier) = authorize_code(app, rp, &[]).await;
    let (status, body) = redeem(app, rp, &code, &verifier).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Sets the RP's user's status (active, disabled …) directly in the database.
pub fn set_user_status(app: &TestApp, rp: &Rp, status: passgate::users::UserStatus) {
    let (tenant_id, user_id, now) = (rp.tenant.id.clone(), rp.user.id.clone(), app.clock.now());
    app.db(move |conn| {
        passgate::store::users::update_user_status(conn, &tenant_id, &user_id, status.as_str(), now)
    })
}
