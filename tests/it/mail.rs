//! D4: mail goes through the outbox — kept while the SMTP server is down, delivered once it
//! is back, exactly once when several nodes deliver; without SMTP, written as .eml files.

use std::collections::HashMap;

use passgate::mail::{self, PasskeyAdded};
use passgate::store::mail::list_messages;
use passgate::{AppState, Clock};

use crate::backend_test;
use crate::browser::Browser;
use crate::harness::TestApp;
use crate::recovery_support::*;

backend_test! {
    /// D4: while the SMTP server refuses, the message stays in the outbox with its error and
    /// a retry time; when it is back and the retry is due, it is delivered once, and its body
    /// (a secret link) is dropped from the database.
    async fn mail_waits_in_the_outbox_while_smtp_is_down(backend) {
        let (app, smtp) = app_with_mail(backend).await;
        smtp.set_down(true);
        let tenant = app.create_tenant("acme").await;
        app.invite(&tenant, "alice@example.com", passgate::users::Role::Member).await;
        // This node's background worker may be the one that tries; either way the attempt fails.
        let waiting = loop {
            app.deliver_mail().await;
            let waiting = app.db(list_messages);
            if waiting[0].last_error.is_some() {
                break waiting;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        };
        assert_eq!(waiting.len(), 1);
        assert!(waiting[0].sent_at.is_none());
        assert!(waiting[0].attempts >= 1);
        assert!(waiting[0].last_error.as_deref().is_some_and(|e| e.contains("421")), "{:?}", waiting[0].last_error);
        assert!(waiting[0].next_attempt_at > app.clock.now(), "retried later, not in a hot loop");

        smtp.set_down(false);
        app.deliver_mail().await;
        assert!(smtp.received().is_empty(), "not before the retry is due");
        app.clock.advance(time::Duration::minutes(10));
        app.deliver_mail().await;
        let invitation = smtp.wait_for("alice@example.com", 1).await;
        assert!(invitation.text.contains("/t/acme/enroll?token="));
        app.deliver_mail().await;
        assert_eq!(smtp.received().len(), 1, "delivered once");
        let sent = app.db(list_messages);
        assert!(sent[0].sent_at.is_some());
        assert!(sent[0].body_text.is_empty() && sent[0].body_html.is_none());
    }
}

backend_test! {
    /// D4: two nodes delivering the same outbox at the same time send each message once.
    async fn two_nodes_deliver_each_message_exactly_once(backend) {
        let (app, smtp) = app_with_mail(backend).await;
        let tenant = app.create_tenant("acme").await;
        let now = app.clock.now();
        let settings = (*app.state.settings).clone();
        app.state.store.write(move |conn| {
            for i in 0..60 {
                mail::enqueue(conn, &tenant, &settings.mail_from, &format!("user{i}@example.com"), &PasskeyAdded {
                    tenant_name: "acme".into(),
                    email: format!("user{i}@example.com"),
                    label: "Phone".into(),
                    device: "Firefox on Linux".into(),
                    when: "now".into(),
                    how: "a test".into(),
                    account_url: "http://localhost/t/acme/account".into(),
                }, now)?;
            }
            Ok::<_, passgate::store::StoreError>(())
        }).await.unwrap();

        // A second node: its own pool and worker identity on the same database.
        let (other, _) = AppState::open_async((*app.state.settings).clone(), Clock::fixed(now)).await.unwrap();
        let deliver_all = |state: AppState| async move {
            loop {
                if state.mailer.deliver_due(&state.store, state.clock.now()).await.unwrap() == 0 {
                    break;
                }
            }
        };
        tokio::join!(deliver_all(app.state.clone()), deliver_all(other.clone()), deliver_all(app.state.clone()));

        let mut counts: HashMap<String, usize> = HashMap::new();
        for _ in 0..200 {
            if smtp.received().len() >= 60 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        for message in smtp.received() {
            *counts.entry(message.recipients[0].clone()).or_default() += 1;
        }
        assert_eq!(counts.len(), 60, "every message delivered");
        assert!(counts.values().all(|&n| n == 1), "none twice: {counts:?}");
        assert!(app.db(list_messages).iter().all(|m| m.sent_at.is_some()));
    }
}

backend_test! {
    /// D4: with no SMTP configured (the embedded default), mail becomes .eml files under the
    /// data directory, so a newcomer can still follow a link.
    async fn without_smtp_mail_is_written_as_eml_files(backend) {
        let app = TestApp::spawn(backend).await;
        let tenant = app.create_tenant("acme").await;
        enroll(&app, &tenant, "alice@example.com", passgate::users::Role::Member).await;
        request_recovery_email(&Browser::new(&app), "acme", "alice@example.com").await;
        let dir = app.state.settings.data_dir.join("mail");
        let mut files = Vec::new();
        for _ in 0..200 {
            app.deliver_mail().await;
            files = std::fs::read_dir(&dir)
                .map(|d| d.map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "eml")).collect())
                .unwrap_or_default();
            if files.len() >= 2 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        assert_eq!(files.len(), 2, "the invitation and the recovery link: {files:?}");
        let raw: Vec<String> = files.iter().map(|f| std::fs::read_to_string(f).unwrap()).collect();
        let recovery = raw.iter().find(|m| m.contains("Subject: Recover your acme account")).expect("the recovery mail");
        assert!(recovery.contains("To: alice@example.com"));
        let parsed = mailparse::parse_mail(recovery.as_bytes()).unwrap();
        let text = parsed.subparts.iter().find(|p| p.ctype.mimetype == "text/plain").unwrap().get_body().unwrap();
        assert!(text.contains(&format!("{}/t/acme/recover/link?token=", app.address)), "{text}");
        // Issue 20 #21: the file a newcomer opens has the link whole, on one line.
        let link = text.split_whitespace().find(|w| w.contains("/recover/link?token=")).unwrap();
        assert!(recovery.lines().any(|l| l.contains(link)), "the link unbroken in the .eml: {recovery}");

        // Issue 20 #15: links in mail are secrets; the folder and the files are private.
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        for file in &files {
            assert_eq!(mode(file), 0o600, "{file:?}");
        }
        let data = &app.state.settings.data_dir;
        assert_eq!(mode(data), 0o700, "the data directory");
        for name in ["passgate.db", "passgate.db-wal", "master.key"] {
            let path = data.join(name);
            if backend == crate::harness::Backend::Sqlite || name == "master.key" {
                assert_eq!(mode(&path), 0o600, "{name}");
            }
        }
    }
}

backend_test! {
    /// D4: a tenant can have its own sender (`passgate tenant set-mail-from`); an invalid
    /// address is refused; "-" goes back to the installation's `mail_from`.
    async fn a_tenant_sends_from_its_own_address(backend) {
        let (app, smtp) = app_with_mail(backend).await;
        let tenant = app.create_tenant("acme").await;
        let cli = |args: &[&str]| crate::cli::passgate_beside(&app).args(args).output().unwrap();
        let refused = cli(&["tenant", "set-mail-from", "acme", "not an address"]);
        assert!(!refused.status.success());
        assert!(String::from_utf8_lossy(&refused.stderr).contains("is not a mail address"));
        let set = cli(&["tenant", "set-mail-from", "acme", "Acme Sign-in <signin@acme.example>"]);
        assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));

        enroll(&app, &tenant, "alice@example.com", passgate::users::Role::Member).await;
        request_recovery_email(&Browser::new(&app), "acme", "alice@example.com").await;
        let mail = smtp.wait_for_subject("alice@example.com", "Recover your").await;
        assert!(mail.from.contains("Acme Sign-in") && mail.from.ends_with("<signin@acme.example>"), "{}", mail.from);
    }
}
