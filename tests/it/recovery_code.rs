//! C1: the recovery code opens a passkey registration — never a session by itself — is used
//! once, and wrong codes are counted and lock the code path.

use serde_json::Value;

use passgate::users::Role;

use crate::authenticator::Crafted;
use crate::backend_test;
use crate::browser::Browser;
use crate::harness::TestApp;
use crate::recovery_support::*;

backend_test! {
    /// C1, C5, C7: email + code → a registration ceremony (no session); the new passkey signs
    /// the user in, a fresh code replaces the used one, the recovery is audited for review and
    /// the user is told by mail. No password appears anywhere.
    async fn recovery_code_registers_a_new_passkey_then_signs_in_with_it(backend) {
        let (app, smtp) = app_with_mail(backend).await;
        let tenant = app.create_tenant("acme").await;
        let alice = enroll(&app, &tenant, "alice@example.com", Role::Member).await;
        assert_eq!(alice.recovery_code.len(), 19, "shown grouped 4×4: {}", alice.recovery_code);

        // Alice lost her laptop: on a new browser, the recovery page.
        let browser = Browser::new(&app);
        let res = recover_with_code(&browser, "acme", "alice@example.com", &alice.recovery_code.to_lowercase()).await;
        assert_eq!(res.status(), 200);
        assert!(res.headers().get_all("set-cookie").iter().all(|c| !c.to_str().unwrap().contains("pg-session")));
        let start: Value = res.json().await.unwrap();
        assert_eq!(start["publicKey"]["authenticatorSelection"]["residentKey"], "required");
        assert!(!is_signed_in(&browser, "acme").await, "C1: the code alone is not a session");

        let mut phone = Crafted::new(&app.address);
        let res = finish_registration(&browser, "acme", "/t/acme/recover", &start, &mut phone).await;
        assert_eq!(res.status(), 200);
        let done: Value = res.json().await.unwrap();
        let fresh_code = done["recovery_code"].as_str().expect("a fresh code is shown");
        assert_ne!(fresh_code, alice.recovery_code);
        assert!(is_signed_in(&browser, "acme").await, "signed in with the new passkey");
        assert_eq!(Browser::new(&app).discoverable_login("acme", &mut phone).await.status(), 200);

        // Single use: the old code is gone; the fresh one works.
        let replay = recover_with_code(&Browser::new(&app), "acme", "alice@example.com", &alice.recovery_code).await;
        assert_eq!(replay.status(), 401);
        assert_eq!(recover_with_code(&Browser::new(&app), "acme", "alice@example.com", fresh_code).await.status(), 200);

        let completed = audit_events(&app, &tenant, "recovery.completed");
        assert_eq!(completed.len(), 1);
        assert_eq!(completed[0]["needs_review"], true);
        assert_eq!(completed[0]["subject_user_id"], alice.user.id.as_str());
        let notice = smtp.wait_for_subject("alice@example.com", "A passkey was added").await;
        assert!(notice.subject.contains("A passkey was added"), "{}", notice.subject);
        assert!(notice.text.contains("recovery code"), "{}", notice.text);
        assert!(notice.text.contains("If this wasn't you"), "{}", notice.text);
        assert!(!notice.text.to_lowercase().contains("password"), "C7: {}", notice.text);
        let has_password = app.db({
            let tenant_id = tenant.id.clone();
            move |conn| passgate::store::users::find_user_by_email_with_password(conn, &tenant_id, "alice@example.com")
        });
        let (_, hash) = has_password.expect("alice's account");
        assert!(hash.is_none(), "C7: no recovery path sets a password");

        // X1, X2: every way in is an auth event — the invitation's enrollment, the recovery,
        // the passkey login after it.
        let tenant_id = tenant.id.clone();
        let events = app.db(move |conn| passgate::store::auth_events::list_auth_events(conn, &tenant_id));
        let mut methods: Vec<_> = events.iter().filter(|e| e.outcome == "success").map(|e| e.method.as_str()).collect();
        methods.sort();
        assert_eq!(methods, ["enrollment", "passkey", "recovery_code"], "{events:?}");
        assert!(events.iter().all(|e| e.user_id.as_deref() == Some(alice.user.id.as_str())));
    }
}

backend_test! {
    /// C1: wrong codes count; at the limit the code path locks (audited), even for the right
    /// code, until the lockout passes. Unknown emails get the same answer as wrong codes.
    async fn wrong_recovery_codes_are_counted_and_lock_the_code_path(backend) {
        let app = TestApp::spawn(backend).await;
        let tenant = app.create_tenant("acme").await;
        let alice = enroll(&app, &tenant, "alice@example.com", Role::Member).await;
        let browser = Browser::new(&app);

        let wrong = recover_with_code(&browser, "acme", "alice@example.com", "AAAA-BBBB-CCCC-DDDD").await;
        assert_eq!(wrong.status(), 401);
        let wrong: Value = wrong.json().await.unwrap();
        let unknown = recover_with_code(&browser, "acme", "nobody@example.com", "AAAA-BBBB-CCCC-DDDD").await;
        assert_eq!(unknown.status(), 401);
        assert_eq!(unknown.json::<Value>().await.unwrap(), wrong, "no enumeration");
        let garbled = recover_with_code(&browser, "acme", "alice@example.com", "not a code").await;
        assert_eq!(garbled.status(), 401, "a malformed code counts as a wrong one");

        for _ in 0..3 {
            let res = recover_with_code(&browser, "acme", "alice@example.com", "AAAA-BBBB-CCCC-DDDD").await;
            assert_eq!(res.status(), 401);
        }
        let locked = audit_events(&app, &tenant, "recovery.code_locked");
        assert_eq!(locked.len(), 1, "the fifth failure locks and is audited");
        assert_eq!(locked[0]["needs_review"], true);
        assert_eq!(locked[0]["details"]["failed_attempts"], 5);

        let right_but_locked = recover_with_code(&browser, "acme", "alice@example.com", &alice.recovery_code).await;
        assert_eq!(right_but_locked.status(), 401);
        assert_eq!(right_but_locked.json::<Value>().await.unwrap(), wrong, "a lock looks like a wrong code");

        app.clock.advance(time::Duration::minutes(61));
        let after = recover_with_code(&Browser::new(&app), "acme", "alice@example.com", &alice.recovery_code).await;
        assert_eq!(after.status(), 200, "the lock lifts after an hour");
    }
}

backend_test! {
    /// C1 and the audit rule: two ceremonies opened with one code — the first to finish uses
    /// it; the second fails and leaves nothing behind (no passkey, no audit event, no session).
    async fn a_recovery_code_is_used_once_even_by_concurrent_ceremonies(backend) {
        let app = TestApp::spawn(backend).await;
        let tenant = app.create_tenant("acme").await;
        let alice = enroll(&app, &tenant, "alice@example.com", Role::Member).await;

        let (first, second) = (Browser::new(&app), Browser::new(&app));
        let start_first: Value = recover_with_code(&first, "acme", "alice@example.com", &alice.recovery_code).await.json().await.unwrap();
        let start_second: Value = recover_with_code(&second, "acme", "alice@example.com", &alice.recovery_code).await.json().await.unwrap();

        let res = finish_registration(&first, "acme", "/t/acme/recover", &start_first, &mut Crafted::new(&app.address)).await;
        assert_eq!(res.status(), 200);
        let before = app.state_snapshot();
        let mut late = Crafted::new(&app.address);
        let res = finish_registration(&second, "acme", "/t/acme/recover", &start_second, &mut late).await;
        assert!(res.status().is_client_error(), "{}", res.status());
        let body: Value = res.json().await.unwrap();
        assert!(body["error_description"].is_string(), "{body}");
        assert_eq!(app.state_snapshot().replace(&ceremony_line(&start_second), ""), before.replace(&ceremony_line(&start_second), ""),
            "nothing but the spent ceremony changed");
        assert!(!is_signed_in(&second, "acme").await);
        assert_eq!(audit_events(&app, &tenant, "recovery.completed").len(), 1);
        assert_eq!(Browser::new(&app).discoverable_login("acme", &mut late).await.status(), 401, "the late passkey was not saved");
    }
}

/// The snapshot line of a ceremony (it is consumed whether or not the ceremony succeeds).
fn ceremony_line(start: &Value) -> String {
    format!("ceremony {}\n", start["ceremony_id"].as_str().unwrap())
}

backend_test! {
    /// C1: regenerating the code on the account page replaces it: the old one stops working.
    async fn regenerating_the_recovery_code_replaces_the_old_one(backend) {
        let app = TestApp::spawn(backend).await;
        let tenant = app.create_tenant("acme").await;
        let alice = enroll(&app, &tenant, "alice@example.com", Role::Member).await;
        let csrf = alice.browser.csrf("/t/acme/account").await;
        let res = alice.browser.post_form("/t/acme/account/recovery-code", &[("csrf_token", &csrf)]).await;
        assert_eq!(res.status(), 200);
        let page = res.text().await.unwrap();
        let start = page.find("id=\"code-value\">").unwrap() + "id=\"code-value\">".len();
        let new_code = &page[start..start + 19];
        assert_ne!(new_code, alice.recovery_code);

        let browser = Browser::new(&app);
        assert_eq!(recover_with_code(&browser, "acme", "alice@example.com", &alice.recovery_code).await.status(), 401);
        assert_eq!(recover_with_code(&browser, "acme", "alice@example.com", new_code).await.status(), 200);
    }
}

backend_test! {
    /// C1, P7: recovery-code attempts are rate limited per account (from any address) with
    /// 429 and Retry-After, on top of the lock.
    async fn recovery_code_attempts_are_rate_limited_per_account(backend) {
        let app = TestApp::spawn(backend).await;
        let tenant = app.create_tenant("acme").await;
        enroll(&app, &tenant, "alice@example.com", Role::Member).await;
        let mut statuses = Vec::new();
        for _ in 0..11 {
            let res = recover_with_code(&Browser::new(&app), "acme", "alice@example.com", "AAAA-BBBB-CCCC-DDDD").await;
            if res.status() == 429 {
                assert!(res.headers().contains_key("retry-after"));
            }
            statuses.push(res.status().as_u16());
        }
        assert_eq!(&statuses[..10], &[401; 10], "{statuses:?}");
        assert_eq!(statuses[10], 429, "the 11th attempt in a minute for one account");
        let other = recover_with_code(&Browser::new(&app), "acme", "bob@example.com", "AAAA-BBBB-CCCC-DDDD").await;
        assert_eq!(other.status(), 401, "another account is not limited");
    }
}
