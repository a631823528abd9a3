//! Refused ceremonies (issue 3, "Negative cases"): each refusal is a clear 4xx and leaves the
//! database as it was.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::authenticator::{Crafted, Soft};
use crate::backend_test;
use crate::browser::Browser;
use crate::harness::TestApp;
use passgate::users::Role;

/// A tenant `acme` and alice, enrolled with `key`.
async fn alice_with(
    app: &TestApp,
    key: &mut dyn crate::browser::Authenticator,
) -> passgate::store::tenants::Tenant {
    let tenant = app.create_tenant("acme").await;
    let token = app.invite(&tenant, "alice@example.com", Role::Member).await;
    let res = Browser::new(app).enroll("acme", &token, key).await;
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    tenant
}

async fn error_of(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Alice's sign-in with `key` as it is now, which must be refused: the refusal's status and
/// body, once checked that it changed nothing in the database.
async fn refused_sign_in(app: &TestApp, key: &mut Crafted) -> (u16, Value) {
    let browser = Browser::new(app);
    let (csrf, answer) = browser.identify("acme", "alice@example.com").await;
    let credential = key.sign(&answer["publicKey"]);
    let before = app.state_snapshot();
    let refusal = error_of(
        browser
            .finish_login("acme", &csrf, &answer["ceremony_id"], credential)
            .await,
    )
    .await;
    assert_eq!(
        app.state_snapshot(),
        before,
        "a refused sign-in changes nothing"
    );
    refusal
}

backend_test! {
    async fn a_replayed_assertion_is_refused(backend) {
        let app = TestApp::spawn(backend).await;
        let mut key = Crafted::new(&app.address);
        alice_with(&app, &mut key).await;
        let browser = Browser::new(&app);
        let (csrf, answer) = browser.identify("acme", "alice@example.com").await;
        let credential = key.sign(&answer["publicKey"]);
        let first = browser.finish_login("acme", &csrf, &answer["ceremony_id"], credential.clone()).await;
        assert_eq!(first.status(), 200);
        let before = app.state_snapshot();
        let (status, body) = error_of(browser.finish_login("acme", &csrf, &answer["ceremony_id"], credential).await).await;
        assert_eq!(status, 400);
        assert_eq!(body["error"], "ceremony_expired");
        assert_eq!(app.state_snapshot(), before, "nothing changed");
    }
}

backend_test! {
    async fn an_assertion_for_another_ceremonys_challenge_is_refused(backend) {
        let app = TestApp::spawn(backend).await;
        let mut key = Crafted::new(&app.address);
        alice_with(&app, &mut key).await;
        let browser = Browser::new(&app);
        let (csrf, first) = browser.identify("acme", "alice@example.com").await;
        let (_, second) = browser.identify("acme", "alice@example.com").await;
        let signed_for_first = key.sign(&first["publicKey"]);
        let before = app.state_snapshot();
        let (status, body) = error_of(browser.finish_login("acme", &csrf, &second["ceremony_id"], signed_for_first).await).await;
        assert_eq!(status, 400);
        assert_eq!(body["error"], "verification_failed");
        assert_eq!(app.state_snapshot(), before);
    }
}

backend_test! {
    /// A phishing page at another origin gets a signature that is useless here.
    async fn an_assertion_made_for_another_origin_is_refused(backend) {
        let app = TestApp::spawn(backend).await;
        let mut key = Soft::new(&app.address);
        alice_with(&app, &mut key).await;
        let browser = Browser::new(&app);
        let (csrf, answer) = browser.identify("acme", "alice@example.com").await;
        let phishing: url::Url = format!("http://localhost:{}", app.address.rsplit(':').next().unwrap().parse::<u16>().unwrap() + 1)
            .parse()
            .unwrap();
        let credential = key.sign_at(&answer["publicKey"], &phishing);
        let before = app.state_snapshot();
        let (status, _) = error_of(browser.finish_login("acme", &csrf, &answer["ceremony_id"], credential).await).await;
        assert_eq!(status, 400);
        assert_eq!(app.state_snapshot(), before);
    }
}

backend_test! {
    async fn an_assertion_whose_signature_does_not_verify_is_refused(backend) {
        let app = TestApp::spawn(backend).await;
        let mut key = Crafted::new(&app.address);
        alice_with(&app, &mut key).await;
        let browser = Browser::new(&app);
        let (csrf, answer) = browser.identify("acme", "alice@example.com").await;
        let mut credential = key.sign(&answer["publicKey"]);
        let genuine = credential.clone();
        let mut signature = URL_SAFE_NO_PAD
            .decode(credential["response"]["signature"].as_str().unwrap())
            .unwrap();
        // The last byte of s: the DER still parses, the signature no longer verifies.
        *signature.last_mut().unwrap() ^= 0x01;
        credential["response"]["signature"] = json!(URL_SAFE_NO_PAD.encode(&signature));
        let before = app.state_snapshot();
        let (status, body) = error_of(browser.finish_login("acme", &csrf, &answer["ceremony_id"], credential).await).await;
        assert_eq!(status, 400);
        assert_eq!(body["error"], "verification_failed");
        assert_eq!(app.state_snapshot(), before);
        let res = browser.finish_login("acme", &csrf, &answer["ceremony_id"], genuine).await;
        assert_eq!(res.status(), 200, "the ceremony is still there for the genuine assertion");
    }
}

backend_test! {
    /// The login page is never framed; an assertion made inside a cross-origin frame was
    /// asked for by someone else's page.
    async fn an_assertion_made_in_a_cross_origin_frame_is_refused(backend) {
        let app = TestApp::spawn(backend).await;
        let mut key = Crafted::new(&app.address);
        alice_with(&app, &mut key).await;
        key.cross_origin = true;
        let (status, body) = refused_sign_in(&app, &mut key).await;
        assert_eq!(status, 400);
        assert_eq!(body["error"], "verification_failed");
    }
}

backend_test! {
    async fn an_assertion_with_a_wrong_rp_id_hash_is_refused(backend) {
        let app = TestApp::spawn(backend).await;
        let mut key = Crafted::new(&app.address);
        alice_with(&app, &mut key).await;
        key.rp_id = "evil.example".into();
        let (status, body) = refused_sign_in(&app, &mut key).await;
        assert_eq!(status, 400);
        assert_eq!(body["error"], "verification_failed");
    }
}

async fn set_policy(app: &TestApp, tenant: &passgate::store::tenants::Tenant, document: Value) {
    let policy = passgate::policy::parse(&document.to_string()).unwrap();
    let (tenant_id, now) = (tenant.id.clone(), app.clock.now());
    app.state
        .store
        .write(move |conn| passgate::policy::save(conn, &tenant_id, &policy, None, now))
        .await
        .unwrap();
}

backend_test! {
    /// P2: with user verification required by policy, an assertion without UV is refused.
    async fn an_assertion_without_user_verification_is_refused_when_policy_requires_it(backend) {
        let app = TestApp::spawn(backend).await;
        let mut key = Crafted::new(&app.address);
        let tenant = alice_with(&app, &mut key).await;
        set_policy(&app, &tenant, json!({ "user_verification": "required" })).await;
        key.user_verified = false;
        let browser = Browser::new(&app);
        let (csrf, answer) = browser.identify("acme", "alice@example.com").await;
        assert_eq!(answer["publicKey"]["userVerification"], "required");
        let credential = key.sign(&answer["publicKey"]);
        let before = app.state_snapshot();
        let (status, body) = error_of(browser.finish_login("acme", &csrf, &answer["ceremony_id"], credential).await).await;
        assert_eq!(status, 403);
        assert_eq!(body["error"], "user_verification_required");
        assert_eq!(app.state_snapshot(), before);

        key.user_verified = true;
        let res = browser.passkey_login("acme", "alice@example.com", &mut key).await;
        assert_eq!(res.status(), 200, "with UV it signs in");
    }
}

/// Moves the stored counter ahead of the authenticator: what a cloned key's earlier use does.
fn advance_stored_counter(app: &TestApp, to: i64) {
    use diesel::prelude::*;
    use passgate::store::schema::passkeys;
    app.db(|conn| {
        Ok(diesel::update(passkeys::table)
            .set(passkeys::sign_count.eq(to))
            .execute(conn)?)
    });
}

backend_test! {
    /// P5, policy `flag`: a counter that did not increase signs in, flags the passkey and
    /// writes an audit event for review.
    async fn a_counter_regression_is_flagged_and_allowed_under_the_flag_policy(backend) {
        let app = TestApp::spawn(backend).await;
        let mut key = Crafted::new(&app.address);
        let tenant = alice_with(&app, &mut key).await;
        advance_stored_counter(&app, 100);
        let browser = Browser::new(&app);
        let res = browser.passkey_login("acme", "alice@example.com", &mut key).await;
        assert_eq!(res.status(), 200, "{:?}", res.text().await);
        let (passkey, audit) = app.db(|conn| {
            let user = passgate::store::users::find_user_by_email(conn, &tenant.id, "alice@example.com")?.unwrap();
            let passkey = passgate::store::passkeys::list_user_passkeys(conn, &tenant.id, &user.id)?.remove(0);
            Ok((passkey, passgate::store::audit::list_audit_events(conn, &tenant.id, 50)?))
        });
        assert!(passkey.counter_flagged_at.is_some());
        assert_eq!(passkey.sign_count, 100, "a lower counter never moves the stored one back");
        let event = audit.iter().find(|e| e.event_type == "passkey.counter_regression").expect("audited");
        assert!(event.needs_review);
    }
}

backend_test! {
    /// P5, policy `refuse`: the same sign-in is refused and nothing changes.
    async fn a_counter_regression_is_refused_under_the_refuse_policy(backend) {
        let app = TestApp::spawn(backend).await;
        let mut key = Crafted::new(&app.address);
        let tenant = alice_with(&app, &mut key).await;
        set_policy(&app, &tenant, json!({ "counter_regression": "refuse" })).await;
        advance_stored_counter(&app, 100);
        let browser = Browser::new(&app);
        let (csrf, answer) = browser.identify("acme", "alice@example.com").await;
        let credential = key.sign(&answer["publicKey"]);
        let before = app.state_snapshot();
        let (status, body) = error_of(browser.finish_login("acme", &csrf, &answer["ceremony_id"], credential).await).await;
        assert_eq!(status, 403);
        assert_eq!(body["error"], "policy_refused");
        assert_eq!(app.state_snapshot(), before);
    }
}

backend_test! {
    /// P5: synced passkeys that always report 0 are not checked.
    async fn a_counter_that_is_always_zero_is_not_checked(backend) {
        let app = TestApp::spawn(backend).await;
        let mut key = Crafted::new(&app.address);
        key.counter_step = 0;
        key.backup_eligible = true;
        alice_with(&app, &mut key).await;
        let browser = Browser::new(&app);
        for _ in 0..2 {
            let res = browser.passkey_login("acme", "alice@example.com", &mut key).await;
            assert_eq!(res.status(), 200);
        }
        let flagged: Vec<Option<time::PrimitiveDateTime>> = app.db(|conn| {
            use diesel::prelude::*;
            use passgate::store::schema::passkeys;
            Ok(passkeys::table.select(passkeys::counter_flagged_at).load(conn)?)
        });
        assert_eq!(flagged, vec![None]);
    }
}

backend_test! {
    /// A credential id registered to anyone (here: another tenant's user) is refused.
    async fn a_credential_id_registered_to_another_user_is_refused(backend) {
        let app = TestApp::spawn(backend).await;
        let mut key = Crafted::new(&app.address);
        alice_with(&app, &mut key).await;
        let other = app.create_tenant("globex").await;
        let token = app.invite(&other, "eve@example.com", Role::Member).await;
        let mut copycat = Crafted::new(&app.address);
        copycat.credential_id = key.credential_id.clone();
        let browser = Browser::new(&app);
        let csrf = browser.csrf(&format!("/t/globex/enroll?token={token}")).await;
        let start: Value = browser.post_json("/t/globex/api/links/start", &csrf, &json!({ "token": token, "kind": "invite" })).await.json().await.unwrap();
        let credential = copycat.register(&start["publicKey"]);
        let before = app.state_snapshot();
        let (status, body) = error_of(browser.post_json(
            "/t/globex/api/passkeys/finish",
            &csrf,
            &json!({ "ceremony_id": start["ceremony_id"], "credential": credential }),
        ).await).await;
        assert_eq!(status, 409);
        assert_eq!(body["error"], "already_registered");
        assert_eq!(app.state_snapshot(), before, "no passkey, the invitation still unused");
    }
}

backend_test! {
    /// P2: ceremonies expire (5 minutes by default, plus a little grace for the round trip).
    async fn an_expired_ceremony_is_refused(backend) {
        let app = TestApp::spawn(backend).await;
        let mut key = Crafted::new(&app.address);
        alice_with(&app, &mut key).await;
        let browser = Browser::new(&app);
        let (csrf, answer) = browser.identify("acme", "alice@example.com").await;
        let credential = key.sign(&answer["publicKey"]);
        app.clock.advance(time::Duration::minutes(6));
        let before = app.state_snapshot();
        let (status, body) = error_of(browser.finish_login("acme", &csrf, &answer["ceremony_id"], credential).await).await;
        assert_eq!(status, 400);
        assert_eq!(body["error"], "ceremony_expired");
        assert_eq!(app.state_snapshot(), before);
    }
}

backend_test! {
    async fn malformed_and_oversized_bodies_are_refused_with_4xx(backend) {
        let app = TestApp::spawn(backend).await;
        let mut key = Crafted::new(&app.address);
        alice_with(&app, &mut key).await;
        let browser = Browser::new(&app);
        let csrf = browser.csrf("/t/acme/login").await;
        let before = app.state_snapshot();
        let url = format!("{}/t/acme/api/login/passkey", app.address);
        let send = |body: String| browser.client.post(&url).header("X-CSRF-Token", &csrf).header("Content-Type", "application/json").body(body).send();
        for body in [
            "{".to_string(),
            "[]".to_string(),
            json!({ "ceremony_id": "x" }).to_string(),
            json!({ "ceremony_id": "x", "credential": { "id": 1 } }).to_string(),
            json!({ "ceremony_id": "nope", "credential": {
                "id": "AA", "rawId": "AA", "type": "public-key",
                "response": { "authenticatorData": "!!", "clientDataJSON": "AA", "signature": "AA" } } }).to_string(),
        ] {
            let res = send(body.clone()).await.unwrap();
            let status = res.status().as_u16();
            assert!((400..500).contains(&status), "{body} -> {status}");
            let json: Value = res.json().await.unwrap();
            assert!(json["error_description"].is_string(), "{json}");
        }
        let huge = format!("{{\"ceremony_id\": \"{}\"}}", "x".repeat(100_000));
        assert_eq!(send(huge).await.unwrap().status(), 413);
        let stranger = json!({ "ceremony_id": "does-not-exist", "credential": key.sign(&json!({ "challenge": URL_SAFE_NO_PAD.encode([0u8; 32]) })) });
        assert_eq!(send(stranger.to_string()).await.unwrap().status(), 400);
        assert_eq!(app.state_snapshot(), before);
    }
}

backend_test! {
    /// CSRF: a missing or wrong token, or a cross-site origin, changes nothing.
    async fn requests_without_the_csrf_token_or_from_another_site_are_refused(backend) {
        let app = TestApp::spawn(backend).await;
        let mut key = Crafted::new(&app.address);
        alice_with(&app, &mut key).await;
        let browser = Browser::new(&app);
        let csrf = browser.csrf("/t/acme/login").await;
        let body = json!({ "email": "alice@example.com" });
        let before = app.state_snapshot();
        for token in ["", "wrong-token"] {
            let res = browser.post_json("/t/acme/api/login/identify", token, &body).await;
            assert_eq!(res.status(), 403, "token {token:?}");
        }
        let cross_site = browser
            .client
            .post(format!("{}/t/acme/api/login/identify", app.address))
            .header("X-CSRF-Token", &csrf)
            .header("Sec-Fetch-Site", "cross-site")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(cross_site.status(), 403);
        let other_origin = browser
            .client
            .post(format!("{}/t/acme/api/login/identify", app.address))
            .header("X-CSRF-Token", &csrf)
            .header("Origin", "https://evil.example")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(other_origin.status(), 403);
        assert_eq!(app.state_snapshot(), before);
        // A token from another browser does not work either.
        let other = Browser::new(&app).csrf("/t/acme/login").await;
        assert_eq!(browser.post_json("/t/acme/api/login/identify", &other, &body).await.status(), 403);
    }
}

backend_test! {
    /// P7: per identifier and per IP, separately; 429 with Retry-After.
    async fn rate_limits_answer_429_with_retry_after(backend) {
        let app = TestApp::builder(backend)
            .settings(|s| {
                s.rate_limit.per_identifier = 3;
                s.rate_limit.per_ip = 6;
            })
            .spawn()
            .await;
        let tenant = app.create_tenant("acme").await;
        app.create_user(&tenant, "bob@example.com", Role::Member, Some("correct horse battery")).await;
        let browser = Browser::new(&app);
        for _ in 0..3 {
            assert_eq!(browser.password_login("acme", "bob@example.com", "wrong password!").await.status(), 401);
        }
        let limited = browser.password_login("acme", "bob@example.com", "correct horse battery").await;
        assert_eq!(limited.status(), 429, "the identifier is limited");
        let retry: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry));
        // Another identifier from the same IP still has room, until the IP limit.
        let other = browser.password_login("acme", "carol@example.com", "whatever pass").await;
        assert_eq!(other.status(), 401);
        let mut last = 0;
        for _ in 0..3 {
            last = browser.password_login("acme", "dave@example.com", "whatever pass").await.status().as_u16();
        }
        assert_eq!(last, 429, "the IP is limited");

        // The windows follow the injected clock on both backends: a minute on, room again.
        app.clock.advance(time::Duration::seconds(61));
        let later = browser.password_login("acme", "bob@example.com", "correct horse battery").await;
        assert_eq!(later.status(), 200, "the next window");
    }
}

backend_test! {
    /// A registration ceremony whose stored purpose this version does not know is refused —
    /// never taken for another purpose (it once fell through to admin recovery, which
    /// activates the account) — and changes nothing.
    async fn a_ceremony_of_an_unknown_purpose_is_refused(backend) {
        let app = TestApp::spawn(backend).await;
        let tenant = app.create_tenant("acme").await;
        let token = app.invite(&tenant, "alice@example.com", Role::Member).await;
        let (browser, csrf, start) = start_invitation(&app, &token).await;
        let ceremony_id = start["ceremony_id"].as_str().unwrap().to_string();
        app.db(move |conn| {
            use diesel::prelude::*;
            use passgate::store::schema::webauthn_ceremonies;
            diesel::update(webauthn_ceremonies::table.filter(webauthn_ceremonies::id.eq(&ceremony_id)))
                .set(webauthn_ceremonies::purpose.eq("promote_to_owner"))
                .execute(conn)?;
            Ok(())
        });
        let mut key = Crafted::new(&app.address);
        let credential = crate::browser::Authenticator::register(&mut key, &start["publicKey"]);
        let before = app.state_snapshot();
        let (status, body) = error_of(finish_registration(&browser, &csrf, &start, credential).await).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("ceremony_expired")), "{body}");
        assert_eq!(app.state_snapshot(), before, "nothing changed");
        let alice = app.db(move |conn| passgate::store::users::find_user_by_email(conn, &tenant.id, "alice@example.com"));
        assert_eq!(alice.unwrap().status, "invited");
    }
}

backend_test! {
    /// Issue 20 #13, WebAuthn L3 §7.2 step 19: backup eligibility is fixed at registration;
    /// a device-bound passkey that presents itself as backup eligible is another
    /// authenticator or tampering, and is refused (it changes nothing).
    async fn a_device_bound_passkey_that_turns_backup_eligible_is_refused(backend) {
        let app = TestApp::spawn(backend).await;
        let mut key = Crafted::new(&app.address);
        alice_with(&app, &mut key).await;
        key.backup_eligible = true;
        let (status, body) = refused_sign_in(&app, &mut key).await;
        assert_eq!(status, 400);
        assert_eq!(body["error"], "verification_failed");
    }
}

backend_test! {
    /// Issue 20 #12, WebAuthn L3 §6.1: authenticator data with bytes beyond what its flags
    /// declare is malformed, though the signature covers them — at sign-in and registration.
    async fn authenticator_data_with_undeclared_bytes_is_refused(backend) {
        let app = TestApp::spawn(backend).await;
        let mut key = Crafted::new(&app.address);
        let tenant = alice_with(&app, &mut key).await;
        key.trailing = vec![0; 8];
        let (status, body) = refused_sign_in(&app, &mut key).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("verification_failed")), "{body}");

        let token = app.invite(&tenant, "bob@example.com", Role::Member).await;
        let (browser, csrf, start) = start_invitation(&app, &token).await;
        let mut bobs = Crafted::new(&app.address);
        bobs.trailing = vec![0; 8];
        let credential = crate::browser::Authenticator::register(&mut bobs, &start["publicKey"]);
        let before = app.state_snapshot();
        let res = finish_registration(&browser, &csrf, &start, credential).await;
        assert_eq!(res.status(), 400);
        assert_eq!(app.state_snapshot(), before, "nothing registered");
    }
}

/// An invitation's registration ceremony, started: the browser, its CSRF token, the options.
async fn start_invitation(app: &TestApp, token: &str) -> (Browser, String, Value) {
    let browser = Browser::new(app);
    let csrf = browser.csrf(&format!("/t/acme/enroll?token={token}")).await;
    let start: Value = browser
        .post_json(
            "/t/acme/api/links/start",
            &csrf,
            &json!({ "token": token, "kind": "invite" }),
        )
        .await
        .json()
        .await
        .unwrap();
    (browser, csrf, start)
}

async fn finish_registration(
    browser: &Browser,
    csrf: &str,
    start: &Value,
    credential: Value,
) -> reqwest::Response {
    browser
        .post_json("/t/acme/api/passkeys/finish", csrf, &json!({ "ceremony_id": start["ceremony_id"], "credential": credential, "label": null }))
        .await
}

/// `key`'s response with one of its names changed.
fn renamed(mut credential: Value, field: &str, value: &str) -> Value {
    credential[field] = json!(value);
    credential
}

backend_test! {
    /// Issue 20 #14, WebAuthn L3 §5.1: a response whose `id` is not its `rawId`, or whose
    /// `type` is not `public-key`, names no one credential: refused at sign-in and at
    /// registration, nothing changed.
    async fn a_credential_whose_id_and_raw_id_differ_or_of_another_type_is_refused(backend) {
        let app = TestApp::spawn(backend).await;
        let mut key = Crafted::new(&app.address);
        let tenant = alice_with(&app, &mut key).await;
        let other_id = URL_SAFE_NO_PAD.encode([9u8; 32]);
        for (field, value) in [("id", other_id.as_str()), ("type", "password")] {
            let browser = Browser::new(&app);
            let (csrf, answer) = browser.identify("acme", "alice@example.com").await;
            let credential = renamed(key.sign(&answer["publicKey"]), field, value);
            let before = app.state_snapshot();
            let (status, body) = error_of(browser.finish_login("acme", &csrf, &answer["ceremony_id"], credential).await).await;
            assert_eq!((status, body["error"].as_str()), (400, Some("verification_failed")), "{field}: {body}");
            assert_eq!(app.state_snapshot(), before, "{field}");
        }

        for (field, value) in [("id", other_id.as_str()), ("type", "password")] {
            let token = app.invite(&tenant, "bob@example.com", Role::Member).await;
            let (browser, csrf, start) = start_invitation(&app, &token).await;
            let mut bobs = Crafted::new(&app.address);
            let credential = renamed(crate::browser::Authenticator::register(&mut bobs, &start["publicKey"]), field, value);
            let before = app.state_snapshot();
            let res = finish_registration(&browser, &csrf, &start, credential).await;
            assert_eq!(res.status(), 400, "{field}");
            assert_eq!(app.state_snapshot(), before, "{field}");
        }
    }
}

backend_test! {
    /// Issue 20 #11: a ceremony lives exactly its documented lifetime
    /// (`webauthn.ceremony_timeout`): finished a second before it ends it signs in; at the
    /// instant it ends it is refused.
    async fn a_ceremony_expires_exactly_at_its_lifetime(backend) {
        let app = TestApp::builder(backend)
            .settings(|s| s.webauthn.ceremony_timeout = std::time::Duration::from_secs(20))
            .spawn()
            .await;
        let mut key = Crafted::new(&app.address);
        alice_with(&app, &mut key).await;
        let browser = Browser::new(&app);
        let (csrf, answer) = browser.identify("acme", "alice@example.com").await;
        let timeout = answer["publicKey"]["timeout"].as_u64().unwrap();
        assert!((18_000..20_000).contains(&timeout), "the browser gives up first: {timeout} ms");
        app.clock.advance(time::Duration::seconds(19));
        let credential = key.sign(&answer["publicKey"]);
        assert_eq!(browser.finish_login("acme", &csrf, &answer["ceremony_id"], credential).await.status(), 200);

        let browser = Browser::new(&app);
        let (csrf, answer) = browser.identify("acme", "alice@example.com").await;
        app.clock.advance(time::Duration::seconds(20));
        let credential = key.sign(&answer["publicKey"]);
        let before = app.state_snapshot();
        let (status, body) = error_of(browser.finish_login("acme", &csrf, &answer["ceremony_id"], credential).await).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("ceremony_expired")), "{body}");
        assert_eq!(app.state_snapshot(), before);
    }
}

backend_test! {
    /// The reverse is not an authenticator's doing: a synced passkey that presents itself as
    /// device-bound is refused.
    async fn a_synced_passkey_that_loses_backup_eligibility_is_refused(backend) {
        let app = TestApp::spawn(backend).await;
        let mut key = Crafted::new(&app.address);
        key.backup_eligible = true;
        alice_with(&app, &mut key).await;
        key.backup_eligible = false;
        let (status, body) = refused_sign_in(&app, &mut key).await;
        assert_eq!(status, 400);
        assert_eq!(body["error"], "verification_failed");
    }
}
