//! C2, C3: links that open a passkey registration — the emailed recovery link and the link a
//! signed-in device makes for a new one — followed from the real mail, used once, expiring.

use serde_json::{Value, json};

use passgate::policy::{EmailRecovery, TenantPolicy};
use passgate::users::Role;

use crate::authenticator::Crafted;
use crate::backend_test;
use crate::browser::Browser;
use crate::harness::TestApp;
use crate::recovery_support::*;

fn recovery_link_prefix(app: &TestApp) -> String {
    format!("{}/t/acme/recover/link?token=", app.address)
}

backend_test! {
    /// C3, C5: the emailed link (from the real message) opens a registration, not a session;
    /// the new passkey signs in; the link is single use; the account is restricted (policy
    /// default `on_restricted`); the user is told; the recovery is audited for review.
    async fn email_recovery_link_registers_a_passkey_once(backend) {
        let (app, smtp) = app_with_mail(backend).await;
        let tenant = app.create_tenant("acme").await;
        let alice = enroll(&app, &tenant, "alice@example.com", Role::Member).await;
        app.clock.advance(time::Duration::hours(1));

        let browser = Browser::new(&app);
        let res = request_recovery_email(&browser, "acme", "Alice@Example.com").await;
        assert_eq!(res.status(), 200);
        let mail = smtp.wait_for_subject("alice@example.com", "Recover your").await;
        assert_eq!(mail.subject, "Recover your acme account");
        assert!(mail.html.contains("/t/acme/recover/link?token="));
        let link = mail.link(&recovery_link_prefix(&app));

        let (status, start) = start_from_link(&browser, &link, "recovery").await;
        assert_eq!(status, 200, "{start}");
        assert!(!is_signed_in(&browser, "acme").await, "C3: a link is never a session by itself");
        let mut phone = Crafted::new(&app.address);
        let res = finish_registration(&browser, "acme", "/t/acme/recover", &start, &mut phone).await;
        assert_eq!(res.status(), 200);
        assert!(is_signed_in(&browser, "acme").await);
        let account = browser.page("/t/acme/account").await;
        assert!(account.contains("id=\"restricted\""), "on_restricted: the account says so");

        let (replayed, _) = start_from_link(&Browser::new(&app), &link, "recovery").await;
        assert_eq!(replayed, 404, "single use");

        let completed = audit_events(&app, &tenant, "recovery.completed");
        assert_eq!(completed.len(), 1);
        assert_eq!(completed[0]["needs_review"], true);
        let notice = smtp.wait_for_subject("alice@example.com", "A passkey was added").await;
        assert!(notice.text.contains("emailed link"), "{}", notice.text);
        // The old passkey still works: email recovery adds, it does not revoke.
        let mut old = alice.passkey;
        assert_eq!(Browser::new(&app).discoverable_login("acme", &mut old).await.status(), 200);
    }
}

backend_test! {
    /// C3: the same answer for an address with no account, and no mail for it.
    async fn email_recovery_answers_the_same_for_unknown_addresses(backend) {
        let (app, smtp) = app_with_mail(backend).await;
        let tenant = app.create_tenant("acme").await;
        enroll(&app, &tenant, "alice@example.com", Role::Member).await;
        let browser = Browser::new(&app);
        let known = request_recovery_email(&browser, "acme", "alice@example.com").await;
        let unknown = request_recovery_email(&browser, "acme", "mallory@example.com").await;
        assert_eq!(known.status(), unknown.status());
        assert_eq!(known.text().await.unwrap(), unknown.text().await.unwrap());
        smtp.wait_for_subject("alice@example.com", "Recover your").await;
        app.deliver_mail().await;
        assert!(smtp.to("mallory@example.com").is_empty());
    }
}

backend_test! {
    /// C3: the emailed link expires after 15 minutes (fixed clock).
    async fn email_recovery_link_expires_after_fifteen_minutes(backend) {
        let (app, smtp) = app_with_mail(backend).await;
        let tenant = app.create_tenant("acme").await;
        enroll(&app, &tenant, "alice@example.com", Role::Member).await;
        request_recovery_email(&Browser::new(&app), "acme", "alice@example.com").await;
        let link = smtp.wait_for_subject("alice@example.com", "Recover your").await.link(&recovery_link_prefix(&app));
        app.clock.advance(time::Duration::minutes(16));
        let before = app.state_snapshot();
        let (status, _) = start_from_link(&Browser::new(&app), &link, "recovery").await;
        assert_eq!(status, 404);
        assert_eq!(app.state_snapshot(), before);
    }
}

backend_test! {
    /// C3: tenant policy `email_recovery = off` refuses the email path, saying why, and stops
    /// links already sent.
    async fn email_recovery_can_be_turned_off_by_policy(backend) {
        let (app, smtp) = app_with_mail(backend).await;
        let tenant = app.create_tenant("acme").await;
        enroll(&app, &tenant, "alice@example.com", Role::Member).await;
        request_recovery_email(&Browser::new(&app), "acme", "alice@example.com").await;
        let sent_before = smtp.wait_for_subject("alice@example.com", "Recover your").await.link(&recovery_link_prefix(&app));
        smtp.wait_for("alice@example.com", 1).await;
        let policy = TenantPolicy { email_recovery: EmailRecovery::Off, ..TenantPolicy::default() };
        let (tenant_id, now) = (tenant.id.clone(), app.clock.now());
        app.state.store.write(move |conn| passgate::policy::save(conn, &tenant_id, &policy, None, now)).await.unwrap();
        let before = app.state_snapshot();
        let res = request_recovery_email(&Browser::new(&app), "acme", "alice@example.com").await;
        assert_eq!(res.status(), 403);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "email_recovery_off");
        assert_eq!(app.state_snapshot(), before);
        app.deliver_mail().await;
        assert_eq!(smtp.to("alice@example.com").len(), 2, "the invitation and the link sent before");
        let (status, body) = start_from_link(&Browser::new(&app), &sent_before, "recovery").await;
        assert_eq!((status, body["error"].as_str()), (403, Some("email_recovery_off")), "a link sent before the switch stops working");
    }
}

/// `POST /api/passkeys/start` from the account page: the first step of adding a passkey.
async fn start_adding_passkey(browser: &Browser) -> reqwest::Response {
    let csrf = browser.csrf("/t/acme/account").await;
    browser
        .post_json("/t/acme/api/passkeys/start", &csrf, &json!({}))
        .await
}

backend_test! {
    /// C3 restricted mode: for 7 days after an email recovery, adding a passkey, a new
    /// recovery code or a device link need a fresh sign-in with a passkey from before the
    /// recovery; the recovered passkey alone is not enough.
    async fn after_email_recovery_sensitive_actions_need_an_older_passkey(backend) {
        let (app, smtp) = app_with_mail(backend).await;
        let tenant = app.create_tenant("acme").await;
        let alice = enroll(&app, &tenant, "alice@example.com", Role::Member).await;
        app.clock.advance(time::Duration::days(1));
        let recovered = Browser::new(&app);
        request_recovery_email(&recovered, "acme", "alice@example.com").await;
        let link = smtp.wait_for_subject("alice@example.com", "Recover your").await.link(&recovery_link_prefix(&app));
        let (_, start) = start_from_link(&recovered, &link, "recovery").await;
        let mut new_key = Crafted::new(&app.address);
        assert_eq!(finish_registration(&recovered, "acme", "/t/acme/recover", &start, &mut new_key).await.status(), 200);

        let refused = start_adding_passkey(&recovered).await;
        assert_eq!(refused.status(), 403);
        assert_eq!(refused.json::<Value>().await.unwrap()["error"], "step_up_required");
        let csrf = recovered.csrf("/t/acme/account").await;
        for action in ["/t/acme/account/recovery-code", "/t/acme/account/device-link"] {
            let res = recovered.post_form(action, &[("csrf_token", &csrf)]).await;
            assert_eq!(res.status(), 403, "{action}");
        }

        // The owner of the account still has the old passkey: a fresh sign-in with it unlocks.
        let owner = Browser::new(&app);
        let mut old_key = alice.passkey;
        assert_eq!(owner.discoverable_login("acme", &mut old_key).await.status(), 200);
        assert_eq!(start_adding_passkey(&owner).await.status(), 200);
        app.clock.advance(time::Duration::minutes(11));
        assert_eq!(start_adding_passkey(&owner).await.status(), 403, "the confirmation must be recent");

        // After seven days the restriction lifts.
        app.clock.advance(time::Duration::days(7));
        let later = Browser::new(&app);
        assert_eq!(later.discoverable_login("acme", &mut new_key).await.status(), 200);
        assert_eq!(start_adding_passkey(&later).await.status(), 200);
    }
}

/// The link the account page's "add a passkey on another device" shows.
async fn device_link(browser: &Browser) -> reqwest::Response {
    let csrf = browser.csrf("/t/acme/account").await;
    browser
        .post_form("/t/acme/account/device-link", &[("csrf_token", &csrf)])
        .await
}

fn link_on_page(page: &str) -> String {
    let start = page
        .find("id=\"device-link\">")
        .expect("the page shows the link")
        + "id=\"device-link\">".len();
    let end = page[start..].find('<').unwrap() + start;
    page[start..end].trim().replace("&#61;", "=")
}

backend_test! {
    /// C2: a signed-in device makes a 10-minute, single-use link (with a QR code); the new
    /// device registers its own passkey and signs in; the user is told by mail.
    async fn a_device_link_enrolls_a_new_device_and_is_announced(backend) {
        let (app, smtp) = app_with_mail(backend).await;
        let tenant = app.create_tenant("acme").await;
        let alice = enroll(&app, &tenant, "alice@example.com", Role::Member).await;
        let res = device_link(&alice.browser).await;
        assert_eq!(res.status(), 200);
        let page = res.text().await.unwrap();
        assert!(page.contains("<svg"), "a QR code");
        let link = link_on_page(&page);
        assert!(link.starts_with(&format!("{}/t/acme/device?token=", app.address)), "{link}");

        let tablet = Browser::new(&app);
        let (status, start) = start_from_link(&tablet, &link, "device").await;
        assert_eq!(status, 200, "{start}");
        assert!(!is_signed_in(&tablet, "acme").await);
        let mut tablet_key = Crafted::new(&app.address);
        let res = finish_registration(&tablet, "acme", "/t/acme/recover", &start, &mut tablet_key).await;
        assert_eq!(res.status(), 200);
        assert!(is_signed_in(&tablet, "acme").await);
        let notice = smtp.wait_for_subject("alice@example.com", "A passkey was added").await;
        assert!(notice.subject.contains("A passkey was added"));
        assert!(notice.text.contains("signed-in devices"), "{}", notice.text);
        assert_eq!(audit_events(&app, &tenant, "passkey.registered").len(), 2);
        assert!(audit_events(&app, &tenant, "recovery.completed").is_empty(), "a device link is not a recovery");

        assert_eq!(start_from_link(&Browser::new(&app), &link, "device").await.0, 404, "single use");
        // A recovery page does not accept a device link, nor the reverse.
        let other = link_on_page(&device_link(&alice.browser).await.text().await.unwrap());
        assert_eq!(start_from_link(&Browser::new(&app), &other.replace("/device?", "/recover/link?"), "recovery").await.0, 404);
        app.clock.advance(time::Duration::minutes(11));
        assert_eq!(start_from_link(&Browser::new(&app), &other, "device").await.0, 404, "expired after 10 minutes");
    }
}
