//! Sign-in (issue 3): passkey-first login, enrollment, password fallback, sessions, CSRF,
//! rate limits, with real WebAuthn ceremonies from software authenticators.

use serde_json::{Value, json};

use crate::authenticator::{Crafted, Soft};
use crate::backend_test;
use crate::browser::{Browser, attribute};
use crate::harness::{Backend, TestApp};
use passgate::users::Role;

async fn tenant_with_invite(
    app: &TestApp,
    email: &str,
) -> (passgate::store::tenants::Tenant, String) {
    let tenant = app.create_tenant("acme").await;
    let token = app.invite(&tenant, email, Role::Member).await;
    (tenant, token)
}

fn session_cookie_set(res: &reqwest::Response) -> bool {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .any(|v| v.to_str().unwrap().starts_with("pg-session-acme="))
}

backend_test! {
    /// S5, P1, M5: an invitation link enrolls the first passkey and signs the person in.
    async fn an_invitation_enrolls_a_passkey_and_signs_in(backend) {
        let app = TestApp::spawn(backend).await;
        let (_tenant, token) = tenant_with_invite(&app, "alice@example.com").await;
        let browser = Browser::new(&app);
        let page = browser.page(&format!("/t/acme/enroll?token={token}")).await;
        assert!(page.contains("What is a passkey?"), "M5 explanation on the page");
        let mut key = Soft::new(&app.address);
        let res = browser.enroll("acme", &token, &mut key).await;
        assert_eq!(res.status(), 200);
        assert!(session_cookie_set(&res));
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["redirect"], "/t/acme/account?welcome=1");
        let account = browser.page("/t/acme/account").await;
        assert!(account.contains("alice@example.com"));
        assert!(account.contains("data-credential-id="), "{account}");

        // The link is single use.
        let again = browser.get(&format!("/t/acme/enroll?token={token}")).await;
        assert_eq!(again.status(), 404);
    }
}

backend_test! {
    /// P1, P3: after the email step, the user's passkeys are offered and one signs in; every
    /// P1 field is stored, the session records amr and acr, and the auth event is written.
    async fn a_registered_passkey_signs_in_after_the_email_step(backend) {
        let app = TestApp::spawn(backend).await;
        let (tenant, token) = tenant_with_invite(&app, "alice@example.com").await;
        let mut key = Soft::new(&app.address);
        Browser::new(&app).enroll("acme", &token, &mut key).await;

        let browser = Browser::new(&app);
        let (csrf, answer) = browser.identify("acme", "alice@example.com").await;
        assert_eq!(answer["mode"], "passkey");
        assert_eq!(answer["publicKey"]["allowCredentials"].as_array().unwrap().len(), 1);
        let credential = key.sign(&answer["publicKey"]);
        let res = browser.finish_login("acme", &csrf, &answer["ceremony_id"], credential).await;
        assert_eq!(res.status(), 200, "{:?}", res.text().await);
        let account = browser.page("/t/acme/account").await;
        assert!(account.contains("alice@example.com"));

        let (user, passkeys, sessions, events, audit) = app.db(|conn| {
            use diesel::prelude::*;
            use passgate::store::schema::browser_sessions;
            let user = passgate::store::users::find_user_by_email(conn, &tenant.id, "alice@example.com")?.unwrap();
            let passkeys = passgate::store::passkeys::list_user_passkeys(conn, &tenant.id, &user.id)?;
            let sessions = browser_sessions::table
                .order(browser_sessions::created_at.asc())
                .select(passgate::store::sessions::BrowserSession::as_select())
                .load(conn)?;
            let events = passgate::store::auth_events::list_auth_events(conn, &tenant.id)?;
            let audit = passgate::store::audit::list_audit_events(conn, &tenant.id, 50)?;
            Ok((user, passkeys, sessions, events, audit))
        });
        let p = &passkeys[0];
        assert_eq!(p.sign_count, 1, "the counter advanced");
        assert_eq!(p.last_used_at, user.last_login_at, "last used and last login: this sign-in");
        assert!(p.last_used_at.is_some());
        assert!(!p.public_key.is_empty());
        assert_eq!(p.aaguid, "00000000-0000-0000-0000-000000000000");
        assert_eq!(p.enrolled_via, "invite");
        assert_eq!(sessions.len(), 2, "one from enrollment, one from login");
        let session = &sessions[1];
        assert_eq!(session.passkey_id.as_deref(), Some(p.id.as_str()));
        assert_eq!(session.acr.as_deref(), Some("phr"));
        assert!(session.amr.contains("\"user\""), "{}", session.amr);
        assert_eq!(session.ended_at, None);
        let login = events.iter().find(|e| e.method == "passkey").expect("auth event");
        assert_eq!(login.outcome, "success");
        assert_eq!(login.user_id.as_deref(), Some(user.id.as_str()));
        assert_eq!(login.authenticator.as_deref(), Some("device_bound"));
        let audited = audit.iter().find(|e| e.event_type == "signin.succeeded").expect("audited");
        assert!(audited.details.contains(&session.id), "{}", audited.details);
        assert_eq!(audited.subject_user_id.as_deref(), Some(user.id.as_str()));
    }
}

backend_test! {
    /// A ceremony is single use (P6) even when its assertion is sent twice at once: one
    /// sign-in, one session, and the other attempt refused.
    async fn one_ceremony_finished_twice_at_once_signs_in_once(backend) {
        let app = TestApp::spawn(backend).await;
        let (tenant, token) = tenant_with_invite(&app, "alice@example.com").await;
        let mut key = Crafted::new(&app.address);
        Browser::new(&app).enroll("acme", &token, &mut key).await;
        let browser = Browser::new(&app);
        let (csrf, answer) = browser.identify("acme", "alice@example.com").await;
        let credential = key.sign(&answer["publicKey"]);
        let (first, second) = tokio::join!(
            browser.finish_login("acme", &csrf, &answer["ceremony_id"], credential.clone()),
            browser.finish_login("acme", &csrf, &answer["ceremony_id"], credential),
        );
        let mut statuses = [first.status().as_u16(), second.status().as_u16()];
        statuses.sort();
        assert_eq!(statuses, [200, 400]);
        let (sessions, successes) = app.db(|conn| {
            use diesel::prelude::*;
            let sessions: i64 = passgate::store::schema::browser_sessions::table.count().get_result(conn)?;
            let events = passgate::store::auth_events::list_auth_events(conn, &tenant.id)?;
            Ok((sessions, events.iter().filter(|e| e.method == "passkey" && e.outcome == "success").count()))
        });
        assert_eq!(sessions, 2, "the enrollment's and one sign-in's");
        assert_eq!(successes, 1);
    }
}

backend_test! {
    /// No fixation with a passkey either: the browser's session from before is ended.
    async fn a_passkey_login_replaces_the_previous_session(backend) {
        let app = TestApp::spawn(backend).await;
        let (tenant, token) = tenant_with_invite(&app, "alice@example.com").await;
        let mut key = Crafted::new(&app.address);
        Browser::new(&app).enroll("acme", &token, &mut key).await;
        let user = app
            .db(|conn| passgate::store::users::find_user_by_email(conn, &tenant.id, "alice@example.com"))
            .unwrap();
        let old = app.establish_session(&tenant, &user, &["pwd"]).await;
        let res = Browser::of(&app).passkey_login("acme", "alice@example.com", &mut key).await;
        assert_eq!(res.status(), 200, "{:?}", res.text().await);
        let old_session = app.db(|conn| passgate::store::sessions::find_session(conn, &tenant.id, &old)).unwrap();
        assert!(old_session.ended_at.is_some());
    }
}

backend_test! {
    /// O1: a passkey is a credential of its own organisation only — at another tenant of
    /// the same passgate (same origin, so the signature itself is valid) it is refused.
    async fn a_passkey_of_one_tenant_cannot_sign_in_at_another(backend) {
        let app = TestApp::spawn(backend).await;
        let (_tenant, token) = tenant_with_invite(&app, "ann@example.com").await;
        app.create_tenant("other").await;
        let mut key = Crafted::new(&app.address);
        let res = Browser::new(&app).enroll("acme", &token, &mut key).await;
        assert_eq!(res.status(), 200, "{:?}", res.text().await);
        let browser = Browser::new(&app);
        let res = browser.discoverable_login("other", &mut key).await;
        assert!(res.status().is_client_error(), "{}", res.status());
        assert!(!res.headers().get_all("set-cookie").iter().any(|v| {
            v.to_str().unwrap().starts_with("pg-session-other=")
        }));
        let res = browser.discoverable_login("acme", &mut key).await;
        assert_eq!(res.status(), 200, "the same passkey still signs in at its own tenant");
    }
}

backend_test! {
    /// S1: the account picker — a discoverable credential signs in without an email.
    async fn a_discoverable_passkey_signs_in_without_an_email(backend) {
        let app = TestApp::spawn(backend).await;
        let (_tenant, token) = tenant_with_invite(&app, "kiosk@example.com").await;
        let mut key = Crafted::new(&app.address);
        let res = Browser::new(&app).enroll("acme", &token, &mut key).await;
        assert_eq!(res.status(), 200, "{:?}", res.text().await);
        let browser = Browser::new(&app);
        let res = browser.discoverable_login("acme", &mut key).await;
        assert_eq!(res.status(), 200, "{:?}", res.text().await);
        assert!(browser.page("/t/acme/account").await.contains("kiosk@example.com"));
    }
}

backend_test! {
    /// The password fallback signs in; a wrong password and an unknown account get the same
    /// answer.
    async fn the_password_fallback_signs_in_and_fails_uniformly(backend) {
        let app = TestApp::spawn(backend).await;
        let tenant = app.create_tenant("acme").await;
        app.create_user(&tenant, "bob@example.com", Role::Member, Some("correct horse battery")).await;
        let browser = Browser::new(&app);
        let (_, answer) = browser.identify("acme", "bob@example.com").await;
        assert_eq!(answer["mode"], "password", "no passkey yet");

        let wrong = browser.password_login("acme", "bob@example.com", "wrong horse battery").await;
        assert_eq!(wrong.status(), 401);
        let wrong: Value = wrong.json().await.unwrap();
        let unknown = browser.password_login("acme", "nobody@example.com", "wrong horse battery").await;
        assert_eq!(unknown.status(), 401);
        let unknown: Value = unknown.json().await.unwrap();
        assert_eq!(wrong, unknown);

        let ok = browser.password_login("acme", "bob@example.com", "correct horse battery").await;
        assert_eq!(ok.status(), 200);
        assert!(browser.page("/t/acme/account").await.contains("bob@example.com"));
    }
}

backend_test! {
    /// P3: an unknown email gets the same shape as a known one, with stable decoy credentials,
    /// and costs the same work.
    async fn an_unknown_email_is_indistinguishable_from_a_known_one(backend) {
        let app = TestApp::builder(backend)
            .settings(|s| s.rate_limit.per_identifier = 1000)
            .spawn()
            .await;
        let (_tenant, token) = tenant_with_invite(&app, "alice@example.com").await;
        // Browsers report transports for real passkeys, as the crafted authenticator does.
        let mut key = Crafted::new(&app.address);
        Browser::new(&app).enroll("acme", &token, &mut key).await;
        let browser = Browser::new(&app);

        let (_, known) = browser.identify("acme", "alice@example.com").await;
        let (_, unknown) = browser.identify("acme", "mallory@example.com").await;
        fn shape(v: &Value) -> Value {
            match v {
                Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
                Value::Array(a) => Value::Array(a.iter().take(1).map(shape).collect()),
                Value::String(_) => json!("s"),
                Value::Number(_) => json!(0),
                other => other.clone(),
            }
        }
        assert_eq!(known["mode"], unknown["mode"]);
        assert_eq!(shape(&known), shape(&unknown));
        let (_, unknown_again) = browser.identify("acme", "mallory@example.com").await;
        assert_eq!(
            unknown["publicKey"]["allowCredentials"], unknown_again["publicKey"]["allowCredentials"],
            "decoy credentials repeat like real ones"
        );
        assert_ne!(unknown["publicKey"]["challenge"], unknown_again["publicKey"]["challenge"]);

        // The same work for both (their timing is measured by `cargo bench --bench signin`,
        // not asserted here): one statement reads the account, one ceremony is stored.
        let ceremonies = || app.db(|conn| {
            use diesel::prelude::*;
            Ok(passgate::store::schema::webauthn_ceremonies::table.count().get_result::<i64>(conn)?)
        });
        for email in ["alice@example.com", "mallory@example.com"] {
            let before = ceremonies();
            browser.identify("acme", email).await;
            assert_eq!(ceremonies(), before + 1, "{email}: one ceremony stored, real or decoy");
        }
    }
}

backend_test! {
    /// P3: a wrong password, an unknown account, and an account whose password is disabled
    /// each cost one argon2 verification (a real one or the dummy), so their timing cannot
    /// tell them apart. The timing itself is measured by `cargo bench --bench signin`.
    async fn password_failures_take_the_same_work_for_unknown_accounts(backend) {
        let app = TestApp::builder(backend)
            .settings(|s| s.rate_limit.per_identifier = 1000)
            .spawn()
            .await;
        let tenant = app.create_tenant("acme").await;
        app.create_user(&tenant, "bob@example.com", Role::Member, Some("correct horse battery")).await;
        let carol = app.create_user(&tenant, "carol@example.com", Role::Member, Some("correct horse battery")).await;
        set_password_disabled(&app, &carol);
        let browser = Browser::new(&app);
        let hashing = &app.state.hashing;
        for email in ["bob@example.com", "nobody@example.com", "carol@example.com"] {
            let before = hashing.jobs_run();
            let res = browser.password_login("acme", email, "not the password").await;
            assert_eq!(res.status(), 401, "{email}");
            assert_eq!(hashing.jobs_run(), before + 1, "{email}: one verification");
        }
    }
}

fn set_password_disabled(app: &TestApp, user: &passgate::store::users::User) {
    let (tenant_id, user_id) = (user.tenant_id.clone(), user.id.clone());
    app.db(move |conn| {
        use diesel::prelude::*;
        use passgate::store::schema::users;
        diesel::update(
            users::table
                .filter(users::tenant_id.eq(&tenant_id))
                .filter(users::id.eq(&user_id)),
        )
        .set(users::is_password_disabled.eq(true))
        .execute(conn)?;
        Ok(())
    });
}

backend_test! {
    /// P3, M4: an account whose password is disabled is not offered the password step (it
    /// gets a passkey ceremony, like an unknown email), and its password is refused.
    async fn a_disabled_password_is_neither_offered_nor_accepted(backend) {
        let app = TestApp::spawn(backend).await;
        let tenant = app.create_tenant("acme").await;
        let carol = app.create_user(&tenant, "carol@example.com", Role::Member, Some("correct horse battery")).await;
        let browser = Browser::new(&app);
        assert_eq!(browser.identify("acme", "carol@example.com").await.1["mode"], "password");
        set_password_disabled(&app, &carol);
        assert_eq!(browser.identify("acme", "carol@example.com").await.1["mode"], "passkey");
        let res = browser.password_login("acme", "carol@example.com", "correct horse battery").await;
        assert_eq!(res.status(), 401);
    }
}

backend_test! {
    async fn signing_out_ends_the_session_and_everywhere_ends_them_all(backend) {
        let app = TestApp::spawn(backend).await;
        let tenant = app.create_tenant("acme").await;
        app.create_user(&tenant, "bob@example.com", Role::Member, Some("correct horse battery")).await;
        let (laptop, phone) = (Browser::new(&app), Browser::new(&app));
        for b in [&laptop, &phone] {
            assert_eq!(b.password_login("acme", "bob@example.com", "correct horse battery").await.status(), 200);
        }
        let csrf = attribute(&laptop.page("/t/acme/account").await, "data-csrf").unwrap();
        let res = laptop.post_form("/t/acme/signout", &[("csrf_token", &csrf)]).await;
        assert_eq!(res.status(), 303);
        assert_eq!(laptop.get("/t/acme/account").await.status(), 303, "laptop signed out");
        assert_eq!(phone.get("/t/acme/account").await.status(), 200, "phone still signed in");

        assert_eq!(laptop.password_login("acme", "bob@example.com", "correct horse battery").await.status(), 200);
        let csrf = attribute(&laptop.page("/t/acme/account").await, "data-csrf").unwrap();
        laptop.post_form("/t/acme/signout", &[("csrf_token", &csrf), ("everywhere", "1")]).await;
        assert_eq!(phone.get("/t/acme/account").await.status(), 303, "signed out everywhere");
    }
}

backend_test! {
    /// A new session id at every login: the session from before is ended, not reused.
    async fn a_login_replaces_the_previous_session(backend) {
        let app = TestApp::spawn(backend).await;
        let tenant = app.create_tenant("acme").await;
        let user = app.create_user(&tenant, "bob@example.com", Role::Member, Some("correct horse battery")).await;
        let old = app.establish_session(&tenant, &user, &["pwd"]).await;
        let browser = Browser::of(&app);
        assert_eq!(browser.password_login("acme", "bob@example.com", "correct horse battery").await.status(), 200);
        let old_session = app.db(|conn| passgate::store::sessions::find_session(conn, &tenant.id, &old)).unwrap();
        assert!(old_session.ended_at.is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_expire_when_idle_and_at_their_absolute_lifetime() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let tenant = app.create_tenant("acme").await;
    let user = app
        .create_user(&tenant, "bob@example.com", Role::Member, None)
        .await;
    app.establish_session(&tenant, &user, &["pwd"]).await;
    let browser = Browser::of(&app);
    assert_eq!(browser.get("/t/acme/account").await.status(), 200);
    app.clock.advance(time::Duration::hours(7));
    assert_eq!(
        browser.get("/t/acme/account").await.status(),
        200,
        "activity extends the idle deadline"
    );
    app.clock.advance(time::Duration::hours(7));
    assert_eq!(browser.get("/t/acme/account").await.status(), 200);
    app.clock.advance(time::Duration::hours(11));
    assert_eq!(
        browser.get("/t/acme/account").await.status(),
        303,
        "24 h absolute lifetime"
    );

    app.establish_session(&tenant, &user, &["pwd"]).await;
    assert_eq!(browser.get("/t/acme/account").await.status(), 200);
    app.clock
        .advance(time::Duration::hours(8) + time::Duration::seconds(1));
    assert_eq!(
        browser.get("/t/acme/account").await.status(),
        303,
        "8 h idle"
    );
}
