//! A page-level client over HTTP: what the login and enrollment pages' script does, step by
//! step, with a software authenticator in place of the browser's WebAuthn.

use serde_json::{Value, json};

use crate::authenticator::{Crafted, Soft};
use crate::harness::TestApp;

pub trait Authenticator {
    fn register(&mut self, public_key: &Value) -> Value;
    fn sign(&mut self, public_key: &Value) -> Value;
}

impl Authenticator for Soft {
    fn register(&mut self, pk: &Value) -> Value {
        Soft::register(self, pk)
    }
    fn sign(&mut self, pk: &Value) -> Value {
        Soft::sign(self, pk)
    }
}

impl Authenticator for Crafted {
    fn register(&mut self, pk: &Value) -> Value {
        Crafted::register(self, pk)
    }
    fn sign(&mut self, pk: &Value) -> Value {
        Crafted::sign(self, pk)
    }
}

pub struct Browser {
    pub client: reqwest::Client,
    pub base: String,
}

/// The value of `attr="…"` in a page.
pub fn attribute(html: &str, attr: &str) -> Option<String> {
    let start = html.find(&format!("{attr}=\""))? + attr.len() + 2;
    let end = html[start..].find('"')? + start;
    // Attribute values as the browser reads them: entities decoded.
    let mut value = html[start..end].to_string();
    for (entity, ch) in [
        ("&#38;", "&"),
        ("&#34;", "\""),
        ("&#39;", "'"),
        ("&#60;", "<"),
        ("&#62;", ">"),
        ("&quot;", "\""),
        ("&lt;", "<"),
        ("&gt;", ">"),
        ("&amp;", "&"),
    ] {
        value = value.replace(entity, ch);
    }
    Some(value)
}

impl Browser {
    pub fn new(app: &TestApp) -> Browser {
        Browser {
            client: app.new_browser(),
            base: app.address.clone(),
        }
    }

    /// The default client of the app (its cookie jar is the one `establish_session` fills).
    pub fn of(app: &TestApp) -> Browser {
        Browser {
            client: app.client.clone(),
            base: app.address.clone(),
        }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{}", self.base, path))
            .send()
            .await
            .unwrap()
    }

    pub async fn page(&self, path: &str) -> String {
        let res = self.get(path).await;
        assert_eq!(res.status(), 200, "GET {path}");
        res.text().await.unwrap()
    }

    /// The CSRF token a page hands its script.
    pub async fn csrf(&self, path: &str) -> String {
        let html = self.page(path).await;
        attribute(&html, "data-csrf").expect("page has a CSRF token")
    }

    pub async fn post_json(&self, path: &str, csrf: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}{}", self.base, path))
            .header("X-CSRF-Token", csrf)
            .header("Origin", &self.base)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(format!("{}{}", self.base, path))
            .header("Origin", &self.base)
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// Enrolls through an invitation link: the page, start, the ceremony, finish.
    pub async fn enroll(
        &self,
        tenant: &str,
        token: &str,
        authenticator: &mut dyn Authenticator,
    ) -> reqwest::Response {
        let csrf = self
            .csrf(&format!("/t/{tenant}/enroll?token={token}"))
            .await;
        let start = self
            .post_json(
                &format!("/t/{tenant}/api/links/start"),
                &csrf,
                &json!({ "token": token, "kind": "invite" }),
            )
            .await;
        assert_eq!(start.status(), 200, "enroll start");
        let start: Value = start.json().await.unwrap();
        let credential = authenticator.register(&start["publicKey"]);
        self.post_json(
            &format!("/t/{tenant}/api/passkeys/finish"),
            &csrf,
            &json!({ "ceremony_id": start["ceremony_id"], "credential": credential, "label": null }),
        )
        .await
    }

    /// The identifier step, as the login page's script makes it.
    pub async fn identify(&self, tenant: &str, email: &str) -> (String, Value) {
        let csrf = self.csrf(&format!("/t/{tenant}/login?prompt=login")).await;
        let res = self
            .post_json(
                &format!("/t/{tenant}/api/login/identify"),
                &csrf,
                &json!({ "email": email }),
            )
            .await;
        assert_eq!(res.status(), 200, "identify");
        (csrf, res.json().await.unwrap())
    }

    pub async fn finish_login(
        &self,
        tenant: &str,
        csrf: &str,
        ceremony_id: &Value,
        credential: Value,
    ) -> reqwest::Response {
        self.post_json(
            &format!("/t/{tenant}/api/login/passkey"),
            csrf,
            &json!({ "ceremony_id": ceremony_id, "credential": credential }),
        )
        .await
    }

    /// Email step, passkey ceremony, finish: the identified passkey login.
    pub async fn passkey_login(
        &self,
        tenant: &str,
        email: &str,
        authenticator: &mut dyn Authenticator,
    ) -> reqwest::Response {
        let (csrf, answer) = self.identify(tenant, email).await;
        assert_eq!(answer["mode"], "passkey");
        let credential = authenticator.sign(&answer["publicKey"]);
        self.finish_login(tenant, &csrf, &answer["ceremony_id"], credential)
            .await
    }

    /// The account picker (S1): a discoverable ceremony any saved passkey may answer.
    pub async fn discoverable_login(
        &self,
        tenant: &str,
        authenticator: &mut dyn Authenticator,
    ) -> reqwest::Response {
        let csrf = self.csrf(&format!("/t/{tenant}/login?prompt=login")).await;
        let start: Value = self
            .post_json(
                &format!("/t/{tenant}/api/login/discoverable"),
                &csrf,
                &json!({}),
            )
            .await
            .json()
            .await
            .unwrap();
        let credential = authenticator.sign(&start["publicKey"]);
        self.finish_login(tenant, &csrf, &start["ceremony_id"], credential)
            .await
    }

    pub async fn password_login(
        &self,
        tenant: &str,
        email: &str,
        password: &str,
    ) -> reqwest::Response {
        let csrf = self.csrf(&format!("/t/{tenant}/login?prompt=login")).await;
        self.post_json(
            &format!("/t/{tenant}/api/login/password"),
            &csrf,
            &json!({ "email": email, "password": password }),
        )
        .await
    }
}
