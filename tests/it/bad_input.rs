//! Bad input (issue 20 #6): malformed requests get a 4xx that says what was wrong with the
//! request, in the endpoint's format, never the names of passgate's own types.

use serde_json::{Value, json};

use crate::backend_test;
use crate::browser::Browser;
use crate::harness::TestApp;
use crate::oidc_support::{setup, tokens};

fn description(body: &Value) -> &str {
    body["error_description"].as_str().unwrap_or_default()
}

backend_test! {
    async fn malformed_json_and_queries_are_explained_without_naming_internals(backend) {
        let app = TestApp::spawn(backend).await;
        app.create_tenant("acme").await;
        let browser = Browser::new(&app);
        let csrf = browser.csrf("/t/acme/login").await;
        for body in [json!([]), json!({ "email": 5 }), json!("alice@example.com"), json!({})] {
            let res = browser.post_json("/t/acme/api/login/identify", &csrf, &body).await;
            assert_eq!(res.status(), 400, "{body}");
            let error: Value = res.json().await.unwrap();
            let said = description(&error);
            assert!(!said.contains("IdentifyBody") && !said.contains("struct"), "{said}");
            assert!(!said.is_empty());
        }
        let res = browser
            .post_json("/t/acme/api/login/passkey", &csrf, &json!({ "ceremony_id": "x", "credential": [] }))
            .await;
        assert_eq!(res.status(), 400);
        let said = description(&res.json::<Value>().await.unwrap()).to_string();
        assert!(!said.contains("PasskeyFinishBody"), "{said}");
    }
}

backend_test! {
    async fn an_oversized_userinfo_body_is_a_json_413(backend) {
        let app = TestApp::spawn(backend).await;
        let rp = setup(&app, "acme").await;
        let access_token = tokens(&app, &rp).await["access_token"].as_str().unwrap().to_string();
        let api = app.new_browser();

        let res = api
            .post(app.url("/t/acme/oauth2/userinfo"))
            .bearer_auth(&access_token)
            .body("x".repeat(300 * 1024))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 413);
        assert!(res.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
        assert!(!description(&res.json::<Value>().await.unwrap()).is_empty());
    }
}
