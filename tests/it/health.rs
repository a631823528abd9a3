use diesel::connection::SimpleConnection;
use serde_json::Value;

use crate::backend_test;
use crate::harness::TestApp;

backend_test! {
    async fn healthz_answers_ok(backend) {
        let app = TestApp::spawn(backend).await;
        let res = app.get("/healthz").await;
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["status"], "ok");
    }
}

backend_test! {
    async fn readyz_reports_the_database_and_its_schema(backend) {
        let app = TestApp::spawn(backend).await;
        let res = app.get("/readyz").await;
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["status"], "ready");
        let expected = match backend {
            crate::harness::Backend::Sqlite => "sqlite",
            crate::harness::Backend::Postgres => "postgres",
        };
        assert_eq!(body["database"], expected);
        assert!(body["schema"].as_str().unwrap().starts_with("2026"));
    }
}

backend_test! {
    async fn readyz_is_503_while_a_migration_is_pending(backend) {
        let app = TestApp::spawn(backend).await;
        app.db(|conn| Ok(conn.batch_execute("DELETE FROM __diesel_schema_migrations")?));
        let res = app.get("/readyz").await;
        assert_eq!(res.status(), 503);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["status"], "not_ready");
        assert_eq!(body["reason"], "migrations pending");
    }
}

backend_test! {
    async fn every_response_carries_the_security_headers(backend) {
        let app = TestApp::spawn(backend).await;
        for path in ["/healthz", "/static/style.css", "/no/such/page"] {
            let res = app.get(path).await;
            let h = res.headers();
            let csp = h["content-security-policy"].to_str().unwrap();
            assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
            assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
            assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
            assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
            assert!(h.get("x-request-id").is_some(), "{path}");
            assert!(h.get("strict-transport-security").is_none(), "{path}: no HSTS over http");
        }
    }
}

backend_test! {
    async fn hsts_is_sent_when_the_public_url_is_https(backend) {
        let app = TestApp::builder(backend)
            .settings(|s| s.public_url = "https://id.example.com".parse().unwrap())
            .spawn()
            .await;
        let res = app.get("/healthz").await;
        assert_eq!(res.headers()["strict-transport-security"], "max-age=31536000");
    }
}

backend_test! {
    async fn unknown_api_paths_answer_json_and_unknown_pages_answer_html(backend) {
        let app = TestApp::spawn(backend).await;
        let res = app.get("/t/acme/oauth2/nothing").await;
        assert_eq!(res.status(), 404);
        assert!(res.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "not_found");

        let res = app.get("/no/such/page").await;
        assert_eq!(res.status(), 404);
        assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        let html = res.text().await.unwrap();
        assert!(html.contains("Not found"), "{html}");

        // Issue 20 #23: the root says passgate is running and where sign-in pages are.
        let res = app.get("/").await;
        assert_eq!(res.status(), 200);
        let html = res.text().await.unwrap();
        assert!(html.contains("passgate is running") && html.contains("/t/&lt;organisation&gt;/login"), "{html}");
    }
}
