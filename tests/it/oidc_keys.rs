//! Signing-key rotation, the client and key commands, and CORS.

use serde_json::Value;

use passgate::oidc::{Lifetimes, keys};

use crate::backend_test;
use crate::harness::TestApp;
use crate::oidc_support::*;

fn kid_of(jwt: &str) -> String {
    use base64::Engine;
    let header = jwt.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap();
    header["kid"].as_str().unwrap().to_string()
}

async fn jwks_kids(app: &TestApp, rp: &Rp) -> Vec<String> {
    let jwks: Value = app.get(&rp.path("/jwks.json")).await.json().await.unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

backend_test! {
    async fn rotation_publishes_first_and_keeps_old_tokens_verifiable_until_they_expire(backend) {
        let app = TestApp::spawn(backend).await;
        let rp = setup(&app, "acme").await;
        let first = tokens(&app, &rp).await;
        let old_access = first["access_token"].as_str().unwrap().to_string();
        let old_kid = kid_of(&old_access);

        let lead = time::Duration::minutes(5);
        let (tenant_id, master_key) = (rp.tenant.id.clone(), app.state.master_key.clone());
        let lifetimes = Lifetimes::from_settings(&app.state.settings.oidc);
        let now = app.clock.now();
        let rotation = app.state.store.write(move |conn| keys::rotate_keys(conn, &tenant_id, &master_key, &lifetimes, lead, passgate::audit::Actor::Cli, now)).await.unwrap();
        app.state.oidc.forget_keys(&rp.tenant.id);

        // Published at once, not signing yet.
        let kids = jwks_kids(&app, &rp).await;
        assert_eq!(kids.len(), 4);
        assert!(rotation.new_kids.iter().all(|k| kids.contains(k)));
        let (code, verifier) = authorize_code(&app, &rp, &[]).await;
        let (_, body) = redeem(&app, &rp, &code, &verifier).await;
        assert_eq!(kid_of(body["access_token"].as_str().unwrap()), old_kid);

        // After the lead the new keys sign; the old access token still verifies.
        app.clock.advance(lead + time::Duration::seconds(1));
        sign_in(&app, &rp).await;
        let (code, verifier) = authorize_code(&app, &rp, &[]).await;
        let (_, body) = redeem(&app, &rp, &code, &verifier).await;
        let new_kid = kid_of(body["access_token"].as_str().unwrap());
        assert!(rotation.new_kids.contains(&new_kid));
        assert!(jwks_kids(&app, &rp).await.contains(&old_kid));
        assert_eq!(userinfo(&app, &rp, &old_access).await.status(), 200, "signed by the retired key, not expired");

        // Once everything the old keys signed has expired, they leave the JWKS.
        app.clock.advance(time::Duration::hours(2));
        let kids = jwks_kids(&app, &rp).await;
        assert_eq!(kids.len(), 2);
        assert!(!kids.contains(&old_kid));
    }
}

backend_test! {
    async fn the_schedule_rotates_a_due_tenant_once(backend) {
        let app = TestApp::spawn(backend).await;
        let rp = setup(&app, "acme").await;
        tokens(&app, &rp).await;
        assert_eq!(app.rotate_due_keys().await, 0);
        app.clock.advance(time::Duration::days(89) + time::Duration::hours(1));
        assert_eq!(app.rotate_due_keys().await, 1);
        assert_eq!(app.rotate_due_keys().await, 0, "a second node finds nothing due");
        assert_eq!(jwks_kids(&app, &rp).await.len(), 4);
    }
}

backend_test! {
    async fn the_access_token_algorithm_follows_the_tenant_policy(backend) {
        let app = TestApp::spawn(backend).await;
        let rp = setup(&app, "acme").await;
        let es = tokens(&app, &rp).await;
        let header = |jwt: &str| crate::oidc_flow::decode_payload(&format!("x.{}", jwt.split('.').next().unwrap()));
        assert_eq!(header(es["access_token"].as_str().unwrap())["alg"], "ES256");
        assert_eq!(header(es["access_token"].as_str().unwrap())["typ"], "at+jwt");
        assert_eq!(header(es["id_token"].as_str().unwrap())["alg"], "RS256");
        let (tenant_id, now) = (rp.tenant.id.clone(), app.clock.now());
        app.state.store.write(move |conn| keys::set_access_token_alg(conn, &tenant_id, passgate::oidc::jwt::Alg::Rs256, now)).await.unwrap();
        app.state.oidc.forget_keys(&rp.tenant.id);
        let (code, verifier) = authorize_code(&app, &rp, &[]).await;
        let (_, rs) = redeem(&app, &rp, &code, &verifier).await;
        assert_eq!(header(rs["access_token"].as_str().unwrap())["alg"], "RS256");
        assert_eq!(userinfo(&app, &rp, rs["access_token"].as_str().unwrap()).await.status(), 200);
    }
}

backend_test! {
    async fn cors_is_allowed_only_from_public_clients_origins(backend) {
        let app = TestApp::spawn(backend).await;
        let rp = setup(&app, "acme").await;
        register(&app, &rp.tenant, passgate::oidc::clients::NewClient {
            name: "SPA".into(),
            redirect_uris: vec!["https://spa.example.com/cb".into()],
            is_public: true,
            ..Default::default()
        }).await;
        let preflight = |origin: &'static str| app.client
            .request(reqwest::Method::OPTIONS, app.url(&rp.path("/oauth2/token")))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send();
        let res = preflight("https://spa.example.com").await.unwrap();
        assert_eq!(res.status(), 204);
        assert_eq!(res.headers()["access-control-allow-origin"], "https://spa.example.com");
        // The confidential client's origin is not a browser caller.
        let res = preflight("https://app.example.com").await.unwrap();
        assert!(res.headers().get("access-control-allow-origin").is_none());
        let res = app.client.get(app.url(&rp.path("/jwks.json"))).header("origin", "https://spa.example.com").send().await.unwrap();
        assert_eq!(res.headers()["access-control-allow-origin"], "https://spa.example.com");
        let res = app.client.get(app.url(&rp.path("/jwks.json"))).header("origin", "https://evil.example").send().await.unwrap();
        assert!(res.headers().get("access-control-allow-origin").is_none());
    }
}

backend_test! {
    async fn a_public_client_redeems_with_pkce_alone(backend) {
        let app = TestApp::spawn(backend).await;
        let rp = setup(&app, "acme").await;
        let spa = register(&app, &rp.tenant, passgate::oidc::clients::NewClient {
            name: "SPA".into(),
            redirect_uris: vec![REDIRECT_URI.into()],
            is_public: true,
            is_first_party: true,
            id_token_alg: Some("ES256".into()),
            ..Default::default()
        }).await;
        assert!(spa.client_secret.is_none());
        let spa = Rp { client_id: spa.client_id, client_secret: String::new(), ..rp };
        sign_in(&app, &spa).await;
        let (code, verifier) = authorize_code(&app, &spa, &[]).await;
        let res = app.client.post(app.url(&spa.path("/oauth2/token")))
            .form(&[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT_URI), ("code_verifier", &verifier), ("client_id", &spa.client_id)])
            .send().await.unwrap();
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        let header = crate::oidc_flow::decode_payload(&format!("x.{}", body["id_token"].as_str().unwrap().split('.').next().unwrap()));
        assert_eq!(header["alg"], "ES256", "the client asked for ES256 ID tokens");
    }
}

/// RFC 7662 introspection of `token` by the RP's client.
async fn introspect(app: &TestApp, rp: &Rp, token: &str) -> Value {
    app.new_browser()
        .post(app.url(&rp.path("/oauth2/introspect")))
        .basic_auth(&rp.client_id, Some(&rp.client_secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

backend_test! {
    /// Issue 20 #3: `passgate keys revoke` withdraws a compromised key at once: out of the
    /// JWKS (each node's cached keys live at most a minute; this node's are dropped here as
    /// that minute would), the tokens it signed fail userinfo and introspection, a new key
    /// signs in its place, and the revocation is audited for review.
    async fn a_revoked_key_leaves_the_jwks_at_once_and_its_tokens_stop_verifying(backend) {
        let app = TestApp::spawn(backend).await;
        let rp = setup(&app, "acme").await;
        let first = tokens(&app, &rp).await;
        let access = first["access_token"].as_str().unwrap().to_string();
        let kid = kid_of(&access);
        assert_eq!(userinfo(&app, &rp, &access).await.status(), 200);

        // What `passgate keys revoke` runs, at this app's (fixed) time.
        let (tenant_id, master_key, now, revoked) = (rp.tenant.id.clone(), app.state.master_key.clone(), app.clock.now(), kid.clone());
        let revocation = app.state.store.write(move |conn| keys::revoke_key(conn, &tenant_id, &revoked, &master_key, passgate::audit::Actor::Cli, now)).await.unwrap().unwrap();
        assert_eq!(revocation.revoked_kid, kid);
        let replacement = revocation.replacement_kid.unwrap();
        app.state.oidc.forget_keys(&rp.tenant.id);

        let kids = jwks_kids(&app, &rp).await;
        assert!(!kids.contains(&kid), "{kids:?}");
        assert!(kids.contains(&replacement));
        assert_eq!(userinfo(&app, &rp, &access).await.status(), 401);
        let introspected = introspect(&app, &rp, &access).await;
        assert_eq!(introspected["active"], false, "{introspected}");
        let (code, verifier) = authorize_code(&app, &rp, &[]).await;
        let (status, body) = redeem(&app, &rp, &code, &verifier).await;
        assert_eq!(status, 200);
        assert_eq!(kid_of(body["access_token"].as_str().unwrap()), replacement, "the new key signs at once");
        let fresh = introspect(&app, &rp, body["access_token"].as_str().unwrap()).await;
        assert_eq!(fresh["active"], true, "the replacement's tokens verify: {fresh}");
        let revoked = crate::recovery_support::audit_events(&app, &rp.tenant, "keys.revoked");
        assert_eq!(revoked.len(), 1);
        assert_eq!(revoked[0]["needs_review"], true);

        let cli = || crate::cli::passgate_beside(&app);
        let unknown = cli().args(["keys", "revoke", "--tenant", "acme", "no-such-kid"]).output().unwrap();
        assert!(!unknown.status.success());
        assert!(String::from_utf8_lossy(&unknown.stderr).contains("has no key 'no-such-kid'"));
        let out = cli().args(["keys", "revoke", "--tenant", "acme", &replacement]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(printed["revoked_kid"], replacement.as_str());
        assert!(printed["replacement_kid"].is_string(), "the command replaces a signing key: {printed}");
    }
}
