//! C4 and the audit log (A1): admin-assisted recovery by the admin API (browser session or
//! `passgate:admin` token) and by the CLI; who may act on whom; listing and reviewing events.

use serde_json::{Value, json};

use passgate::oidc::clients::NewClient;
use passgate::users::Role;

use crate::authenticator::Crafted;
use crate::backend_test;
use crate::browser::Browser;
use crate::cli::passgate_beside;
use crate::harness::TestApp;
use crate::oidc_support::{Rp, register, token};
use crate::recovery_support::*;

/// `POST /t/{tenant}/admin/api/users/{id}/recovery` from an admin's console session.
async fn admin_recovery(
    admin: &Browser,
    tenant: &str,
    user_id: &str,
    body: Value,
) -> reqwest::Response {
    let csrf = admin.csrf(&format!("/t/{tenant}/account")).await;
    admin
        .post_json(
            &format!("/t/{tenant}/admin/api/users/{user_id}/recovery"),
            &csrf,
            &body,
        )
        .await
}

backend_test! {
    /// C4: an owner revokes a lost device's passkeys and sessions and sends a re-enrollment
    /// link; the user follows it from the mail, registers a new passkey and is signed in.
    async fn owner_recovers_a_user_who_lost_their_device(backend) {
        let (app, smtp) = app_with_mail(backend).await;
        let tenant = app.create_tenant("acme").await;
        let owner = enroll(&app, &tenant, "owner@example.com", Role::Owner).await;
        let alice = enroll(&app, &tenant, "alice@example.com", Role::Member).await;

        let res = admin_recovery(&owner.browser, "acme", &alice.user.id, json!({ "revoke_passkeys": true })).await;
        assert_eq!(res.status(), 201);
        assert_eq!(res.headers()["cache-control"], "no-store");
        let started: Value = res.json().await.unwrap();
        assert_eq!(started["passkeys_revoked"], 1);
        let url = started["recovery_url"].as_str().unwrap();
        assert!(!is_signed_in(&alice.browser, "acme").await, "the lost device's session ended");
        let mut lost = alice.passkey;
        assert_eq!(Browser::new(&app).discoverable_login("acme", &mut lost).await.status(), 401);

        let mail = smtp.wait_for_subject("alice@example.com", "Set up a new passkey").await;
        assert!(mail.subject.contains("Set up a new passkey"), "{}", mail.subject);
        let link = mail.link(&format!("{}/t/acme/recover/link?token=", app.address));
        assert_eq!(link, url, "the mailed link is the one the admin got");
        let browser = Browser::new(&app);
        let (status, start) = start_from_link(&browser, &link, "recovery").await;
        assert_eq!(status, 200);
        assert!(!is_signed_in(&browser, "acme").await);
        let mut new_key = Crafted::new(&app.address);
        assert_eq!(finish_registration(&browser, "acme", "/t/acme/recover", &start, &mut new_key).await.status(), 200);
        assert!(is_signed_in(&browser, "acme").await);

        let admin_started = audit_events(&app, &tenant, "recovery.admin_started");
        assert_eq!(admin_started.len(), 1);
        assert_eq!(admin_started[0]["actor_id"], owner.user.id.as_str());
        assert_eq!(admin_started[0]["needs_review"], true);
        assert_eq!(audit_events(&app, &tenant, "recovery.completed").len(), 1);
        let notice = smtp.wait_for_subject("alice@example.com", "A passkey was added").await;
        assert!(notice.text.contains("administrator"), "{}", notice.text);
    }
}

backend_test! {
    /// C4: admins act only within their tenant (another tenant's user → 404) and never on an
    /// owner (403); members cannot start recoveries; a console request needs its CSRF token.
    /// Refusals change nothing.
    async fn admins_cannot_recover_owners_or_other_tenants_users(backend) {
        let app = TestApp::spawn(backend).await;
        let acme = app.create_tenant("acme").await;
        let globex = app.create_tenant("globex").await;
        let owner = enroll(&app, &acme, "owner@example.com", Role::Owner).await;
        let admin = enroll(&app, &acme, "admin@example.com", Role::Admin).await;
        let member = enroll(&app, &acme, "member@example.com", Role::Member).await;
        let outsider = enroll(&app, &globex, "gina@example.com", Role::Member).await;
        let before = app.state_snapshot();

        let res = admin_recovery(&admin.browser, "acme", &outsider.user.id, json!({})).await;
        assert_eq!(res.status(), 404, "tenant A's admin cannot see tenant B's users");
        let res = admin.browser.post_json(&format!("/t/globex/admin/api/users/{}/recovery", outsider.user.id), "x", &json!({})).await;
        assert_eq!(res.status(), 401, "an acme session is no session in globex");
        let res = admin_recovery(&admin.browser, "acme", &owner.user.id, json!({ "revoke_passkeys": true })).await;
        assert_eq!(res.status(), 403, "an admin cannot recover an owner");
        assert!(res.text().await.unwrap().contains("cannot recover an owner"));
        let res = admin_recovery(&member.browser, "acme", &admin.user.id, json!({})).await;
        assert_eq!(res.status(), 403, "members cannot");
        let res = admin.browser.post_json(&format!("/t/acme/admin/api/users/{}/recovery", member.user.id), "forged", &json!({})).await;
        assert_eq!(res.status(), 403, "CSRF");
        let res = admin_recovery(&admin.browser, "acme", "no-such-user", json!({})).await;
        assert_eq!(res.status(), 404);
        assert_eq!(app.state_snapshot(), before, "refusals change nothing");

        assert_eq!(admin_recovery(&admin.browser, "acme", &member.user.id, json!({})).await.status(), 201);
        assert_eq!(admin_recovery(&owner.browser, "acme", &admin.user.id, json!({})).await.status(), 201, "owners may recover admins");
    }
}

/// A confidential client allowed client_credentials, with the admin scope when `admin`.
async fn service_token(
    app: &TestApp,
    tenant: &passgate::store::tenants::Tenant,
    admin: bool,
) -> String {
    let issued = register(
        app,
        tenant,
        NewClient {
            name: "Provisioning".into(),
            grant_types: vec!["client_credentials".into()],
            extra_scopes: if admin {
                vec!["passgate:admin".into()]
            } else {
                vec![]
            },
            ..NewClient::default()
        },
    )
    .await;
    let rp = Rp {
        tenant: tenant.clone(),
        user: user_by_email(app, tenant, "owner@example.com"),
        client_id: issued.client_id,
        client_secret: issued.client_secret.unwrap(),
        passkey: tokio::sync::Mutex::new(Crafted::new(&app.address)),
    };
    let (status, body) = token(app, &rp, &[("grant_type", "client_credentials")]).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_string()
}

backend_test! {
    /// C4, A1: a service with a `passgate:admin` token starts a recovery, lists the audit
    /// events that need review and marks one reviewed (who and when are recorded); a token
    /// without the scope, or no token, is refused.
    async fn admin_api_by_token_recovers_and_reviews_the_audit_log(backend) {
        let app = TestApp::spawn(backend).await;
        let tenant = app.create_tenant("acme").await;
        enroll(&app, &tenant, "owner@example.com", Role::Owner).await;
        let alice = enroll(&app, &tenant, "alice@example.com", Role::Member).await;
        let admin_token = service_token(&app, &tenant, true).await;
        let plain_token = service_token(&app, &tenant, false).await;
        let api = app.new_browser();
        let recovery_url = app.url(&format!("/t/acme/admin/api/users/{}/recovery", alice.user.id));

        let res = api.post(&recovery_url).bearer_auth(&plain_token).send().await.unwrap();
        assert_eq!(res.status(), 403);
        assert!(res.headers()["www-authenticate"].to_str().unwrap().contains("insufficient_scope"));
        let res = api.post(&recovery_url).bearer_auth("not-a-token").send().await.unwrap();
        assert_eq!(res.status(), 401);
        let res = api.post(&recovery_url).send().await.unwrap();
        assert_eq!(res.status(), 401, "no session, no token");

        let res = api.post(&recovery_url).bearer_auth(&admin_token).json(&json!({})).send().await.unwrap();
        assert_eq!(res.status(), 201);
        let started: Value = res.json().await.unwrap();
        assert_eq!(started["passkeys_revoked"], 0);

        let audit_url = app.url("/t/acme/admin/api/audit?needs_review=true");
        let listed: Value = api.get(&audit_url).bearer_auth(&admin_token).send().await.unwrap().json().await.unwrap();
        let events = listed["events"].as_array().unwrap();
        let event = events.iter().find(|e| e["event_type"] == "recovery.admin_started").expect("listed for review");
        assert_eq!(event["actor_kind"], "client");
        assert_eq!(event["subject_user_id"], alice.user.id.as_str());

        let review_url = app.url(&format!("/t/acme/admin/api/audit/{}/review", event["id"].as_str().unwrap()));
        let res = api.post(&review_url).bearer_auth(&admin_token).json(&json!({ "note": "called Alice, it was her" })).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let listed: Value = api.get(&audit_url).bearer_auth(&admin_token).send().await.unwrap().json().await.unwrap();
        assert!(listed["events"].as_array().unwrap().iter().all(|e| e["id"] != event["id"]), "reviewed: no longer pending");
        let all: Value = api.get(app.url("/t/acme/admin/api/audit")).bearer_auth(&admin_token).send().await.unwrap().json().await.unwrap();
        let reviewed = all["events"].as_array().unwrap().iter().find(|e| e["id"] == event["id"]).unwrap();
        assert!(reviewed["reviewed_by"].as_str().unwrap().starts_with("client:"));
        assert_eq!(reviewed["reviewed_at"], "2026-03-02T09:00:00Z");

        let res = api.post(app.url("/t/acme/admin/api/audit/nope/review")).bearer_auth(&admin_token).send().await.unwrap();
        assert_eq!(res.status(), 404);
        let res = api.get(app.url("/t/acme/admin/api/audit?since=yesterday")).bearer_auth(&admin_token).send().await.unwrap();
        assert_eq!(res.status(), 400);
        let res = api.get(app.url("/t/acme/admin/api/audit")).bearer_auth(&plain_token).send().await.unwrap();
        assert_eq!(res.status(), 403);
    }
}

backend_test! {
    /// C4, A1 from the command line: `user recover` prints the link (and mails it), `audit
    /// list --needs-review` prints JSON lines, `audit review` records the review.
    async fn cli_recovers_a_user_and_reviews_the_audit_log(backend) {
        let app = TestApp::spawn(backend).await;
        let tenant = app.create_tenant("acme").await;
        let alice = enroll(&app, &tenant, "alice@example.com", Role::Member).await;
        let cli = || passgate_beside(&app);
        let out = cli().args(["user", "recover", "--tenant", "acme", "--email", "alice@example.com", "--revoke-passkeys"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(printed["user_id"], alice.user.id.as_str());
        assert_eq!(printed["passkeys_revoked"], 1);
        let (status, _) = start_from_link(&Browser::new(&app), printed["recovery_url"].as_str().unwrap(), "recovery").await;
        assert_eq!(status, 200, "the printed link opens the registration");

        let out = cli().args(["audit", "list", "--tenant", "acme", "--needs-review"]).output().unwrap();
        assert!(out.status.success());
        let lines: Vec<Value> = String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0]["event_type"], "recovery.admin_started");
        assert_eq!(lines[0]["actor_kind"], "cli");
        let id = lines[0]["id"].as_str().unwrap();

        let out = cli().args(["audit", "review", "--tenant", "acme", "--id", id, "--note", "ticket 42"]).output().unwrap();
        assert!(out.status.success());
        let out = cli().args(["audit", "list", "--tenant", "acme", "--needs-review"]).output().unwrap();
        assert!(out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stdout));
        let out = cli().args(["audit", "review", "--tenant", "acme", "--id", "nope"]).output().unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("no audit event nope"));
        let out = cli().args(["user", "recover", "--tenant", "acme", "--email", "nobody@example.com"]).output().unwrap();
        assert!(!out.status.success());
        assert!(out.stdout.is_empty());
        // Issue 20 #23: a limit of 0 is refused, not read as 1.
        for limit in ["0", "1001"] {
            let out = cli().args(["audit", "list", "--tenant", "acme", "--limit", limit]).output().unwrap();
            assert!(!out.status.success(), "--limit {limit}");
            assert!(out.stdout.is_empty());
            assert!(String::from_utf8_lossy(&out.stderr).contains("limit must be between 1 and 1000"));
        }
    }
}

backend_test! {
    /// A1 (issue 5's audit log): sign-ins, passkey renames, client changes and key rotations
    /// are recorded with who did them.
    async fn the_audit_log_records_sign_ins_renames_client_changes_and_key_rotations(backend) {
        let app = TestApp::spawn(backend).await;
        let tenant = app.create_tenant("acme").await;
        let mut alice = enroll(&app, &tenant, "alice@example.com", Role::Member).await;
        let browser = Browser::new(&app);
        assert_eq!(browser.discoverable_login("acme", &mut alice.passkey).await.status(), 200);
        let page = browser.page("/t/acme/account").await;
        let passkey_id = crate::browser::attribute(&page, "data-passkey-id").unwrap();
        let csrf = crate::browser::attribute(&page, "data-csrf").unwrap();
        let renamed = browser.post_form(&format!("/t/acme/account/passkeys/{passkey_id}/rename"), &[("csrf_token", &csrf), ("label", "Desk key")]).await;
        assert_eq!(renamed.status(), 303);

        let cli = |args: &[&str]| {
            let out = passgate_beside(&app).args(args).output().unwrap();
            assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
            serde_json::from_slice::<Value>(&out.stdout).unwrap_or(Value::Null)
        };
        let created = cli(&["client", "create", "--tenant", "acme", "--name", "CRM", "--redirect-uri", "https://crm.example.com/cb"]);
        let client_id = created["client_id"].as_str().unwrap();
        cli(&["client", "rotate-secret", "--tenant", "acme", client_id]);
        cli(&["client", "delete", "--tenant", "acme", client_id]);
        cli(&["keys", "rotate", "--tenant", "acme"]);

        // Every way in ends in the one session establishment, which audits it: the
        // invitation's enrollment signed alice in too, then her passkey login.
        let sign_ins = audit_events(&app, &tenant, "signin.succeeded");
        assert_eq!(sign_ins.len(), 2, "{sign_ins:?}");
        let mut methods: Vec<_> = sign_ins.iter().map(|e| e["details"]["method"].as_str().unwrap()).collect();
        methods.sort();
        assert_eq!(methods, ["enrollment", "passkey"]);
        for sign_in in &sign_ins {
            assert_eq!(sign_in["actor_id"], alice.user.id.as_str());
            assert!(sign_in["details"]["amr"].as_str().unwrap().contains("user"), "{sign_in}");
        }
        let renames = audit_events(&app, &tenant, "passkey.renamed");
        assert_eq!(renames[0]["details"]["label"], "Desk key");
        for event in ["client.created", "client.secret_rotated", "client.deleted"] {
            let events = audit_events(&app, &tenant, event);
            assert_eq!(events.len(), 1, "{event}");
            assert_eq!(events[0]["details"]["client_id"], client_id);
            assert_eq!(events[0]["actor_kind"], "cli");
        }
        assert_eq!(audit_events(&app, &tenant, "keys.rotated").len(), 1);
    }
}

backend_test! {
    /// Issue 20 #5, #6: a body the admin API cannot parse is refused — 400, or 413 when too
    /// large — in words a client developer understands, and changes nothing: no link, no
    /// mail, nothing revoked (it used to be read as no body and start a recovery).
    async fn the_admin_api_refuses_bodies_it_cannot_parse(backend) {
        let app = TestApp::spawn(backend).await;
        let tenant = app.create_tenant("acme").await;
        enroll(&app, &tenant, "owner@example.com", Role::Owner).await;
        let alice = enroll(&app, &tenant, "alice@example.com", Role::Member).await;
        let token = service_token(&app, &tenant, true).await;
        let api = app.new_browser();
        let recovery_url = app.url(&format!("/t/acme/admin/api/users/{}/recovery", alice.user.id));
        let before = app.state_snapshot();
        for (content_type, body, status) in [
            ("application/json", r#"{"revoke_passkeys":true"#.to_string(), 400),
            ("application/json", r#"{"revoke_passkeys":"true"}"#.to_string(), 400),
            ("application/json", r#"{"revoke_passkey":true}"#.to_string(), 400),
            ("application/json", "[]".to_string(), 400),
            ("application/x-www-form-urlencoded", "revoke_passkeys=true".to_string(), 400),
        ] {
            let res = api.post(&recovery_url).bearer_auth(&token).header("content-type", content_type).body(body.clone()).send().await.unwrap();
            assert_eq!(res.status(), status, "{}", &body[..body.len().min(40)]);
            let error: Value = res.json().await.unwrap();
            let said = error["error_description"].as_str().unwrap();
            assert!(!said.contains("RecoveryBody") && !said.contains("struct"), "{said}");
        }
        // A 2 MB body is refused by its announced length, before it is read (a client still
        // writing it would see the connection close): headers alone get the 413.
        let too_large = {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let path = format!("/t/acme/admin/api/users/{}/recovery", alice.user.id);
            let host = app.address.trim_start_matches("http://").to_string();
            let mut stream = tokio::net::TcpStream::connect(&host).await.unwrap();
            let head = format!("POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 2097152\r\nConnection: close\r\n\r\n");
            stream.write_all(head.as_bytes()).await.unwrap();
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer).await;
            String::from_utf8_lossy(&answer).to_string()
        };
        assert!(too_large.starts_with("HTTP/1.1 413"), "{too_large}");
        let events = audit_events(&app, &tenant, "recovery.admin_started");
        let event_id = audit_events(&app, &tenant, "passkey.registered")[0]["id"].as_str().unwrap().to_string();
        assert!(events.is_empty(), "no recovery started");
        assert_eq!(app.state_snapshot(), before, "nothing changed");

        let review_url = app.url(&format!("/t/acme/admin/api/audit/{event_id}/review"));
        for body in [r#"{"note": "truncated"#, r#"{"note": 42}"#, &format!(r#"{{"note": "{}"}}"#, "n".repeat(2001))] {
            let res = api.post(&review_url).bearer_auth(&token).header("content-type", "application/json").body(body.to_string()).send().await.unwrap();
            assert_eq!(res.status(), 400, "{}", &body[..body.len().min(40)]);
        }
        let listed = audit_events(&app, &tenant, "passkey.registered");
        assert!(listed.iter().all(|e| e["reviewed_by"].is_null()), "no review recorded");
        let res = api.post(&review_url).bearer_auth(&token).send().await.unwrap();
        assert_eq!(res.status(), 200, "no body at all is a review without a note");

        let res = api.get(app.url("/t/acme/admin/api/audit?limit=99999999999999999999999")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(res.status(), 400);
        let said = res.json::<Value>().await.unwrap()["error_description"].as_str().unwrap().to_string();
        assert!(said.contains("number"), "{said}");
        assert!(!said.contains("Query deserialize error"), "{said}");
    }
}

backend_test! {
    /// Issue 20 #10: once a browser is signed in, only its session's CSRF token counts; the
    /// token it held before signing in (the login page's) no longer authorizes anything.
    async fn a_pre_sign_in_csrf_token_does_not_count_once_signed_in(backend) {
        let app = TestApp::spawn(backend).await;
        let tenant = app.create_tenant("acme").await;
        let owner = enroll(&app, &tenant, "owner@example.com", Role::Owner).await;
        let alice = enroll(&app, &tenant, "alice@example.com", Role::Member).await;
        let pre_sign_in = owner.browser.csrf("/t/acme/login?prompt=login").await;
        let session_token = owner.browser.csrf("/t/acme/account").await;
        assert_ne!(pre_sign_in, session_token);
        let path = format!("/t/acme/admin/api/users/{}/recovery", alice.user.id);
        let before = app.state_snapshot();
        let res = owner.browser.post_json(&path, &pre_sign_in, &json!({})).await;
        assert_eq!(res.status(), 403);
        assert_eq!(app.state_snapshot(), before, "nothing changed");
        let res = owner.browser.post_json(&path, &session_token, &json!({})).await;
        assert_eq!(res.status(), 201);
    }
}

backend_test! {
    /// Issue 20 #8: the admin API is rate limited per acting admin: one token cannot start
    /// hundreds of recoveries (and mails) in seconds; past the limit, 429 with Retry-After.
    async fn the_admin_api_is_rate_limited_per_actor(backend) {
        let app = TestApp::builder(backend)
            .settings(|s| s.rate_limit.per_admin = 3)
            .spawn()
            .await;
        let tenant = app.create_tenant("acme").await;
        enroll(&app, &tenant, "owner@example.com", Role::Owner).await;
        let alice = enroll(&app, &tenant, "alice@example.com", Role::Member).await;
        let token = service_token(&app, &tenant, true).await;
        let api = app.new_browser();
        let url = app.url(&format!("/t/acme/admin/api/users/{}/recovery", alice.user.id));
        for _ in 0..3 {
            assert_eq!(api.post(&url).bearer_auth(&token).send().await.unwrap().status(), 201);
        }
        let limited = api.post(&url).bearer_auth(&token).send().await.unwrap();
        assert_eq!(limited.status(), 429);
        assert!(limited.headers().contains_key("retry-after"));
        assert_eq!(audit_events(&app, &tenant, "recovery.admin_started").len(), 3, "the fourth started nothing");
    }
}
