use diesel::connection::SimpleConnection;
use passgate::store::{SchemaError, Store, StoreError};
use passgate::tenants::{self, Slug, TenantError};
use passgate::{AppState, StartupError};

use crate::backend_test;
use crate::harness::{Backend, T0, TestApp, test_settings};

backend_test! {
    async fn migrations_apply_once_and_leave_the_schema_current(backend) {
        let app = TestApp::spawn(backend).await;
        let url = app.database_url();
        let (_store, status) = tokio::task::spawn_blocking(move || Store::open(&url, 1))
            .await
            .unwrap()
            .unwrap();
        assert!(status.applied_now.is_empty(), "second start applies nothing");
        assert!(status.is_current());
    }
}

backend_test! {
    async fn a_schema_newer_than_the_binary_is_refused(backend) {
        let app = TestApp::spawn(backend).await;
        app.db(|conn| {
            Ok(conn.batch_execute(
                "INSERT INTO __diesel_schema_migrations (version) VALUES ('99991231000000')",
            )?)
        });
        let url = app.database_url();
        let err = tokio::task::spawn_blocking(move || Store::open(&url, 1))
            .await
            .unwrap()
            .err()
            .expect("refused");
        assert!(
            matches!(err, StoreError::Schema(SchemaError::TooNew { ref found, .. }) if found == "99991231000000"),
            "{err}"
        );
        assert!(err.to_string().contains("newer than this binary"), "{err}");
    }
}

backend_test! {
    async fn a_node_with_another_master_key_refuses_to_start(backend) {
        let app = TestApp::spawn(backend).await;
        let mut settings = (*app.state.settings).clone();
        settings.master_key = Some(passgate::crypto::MasterKey::generate().to_base64());
        let err = AppState::open_async(settings, app.clock.clone())
            .await
            .err()
            .expect("refused");
        assert!(matches!(err, StartupError::MasterKeyMismatch), "{err}");
    }
}

backend_test! {
    async fn tenants_are_created_listed_and_slugs_are_unique(backend) {
        let app = TestApp::spawn(backend).await;
        let store = &app.state.store;
        for slug in ["beta", "acme"] {
            let slug = Slug::parse(slug).unwrap();
            store
                .write(move |conn| tenants::create_tenant(conn, &slug, None, T0))
                .await
                .unwrap();
        }
        let slug = Slug::parse("acme").unwrap();
        let err = store
            .write(move |conn| tenants::create_tenant(conn, &slug, Some("Again"), T0))
            .await
            .unwrap_err();
        assert!(matches!(err, TenantError::SlugTaken(_)), "{err}");
        let all = store.read(tenants::list_tenants).await.unwrap();
        let slugs: Vec<_> = all.iter().map(|t| t.slug.as_str()).collect();
        assert_eq!(slugs, ["acme", "beta"]);
        assert_eq!(all[0].created_at, T0, "timestamps round-trip exactly");
    }
}

backend_test! {
    async fn a_failed_operation_rolls_back_everything_it_wrote(backend) {
        let app = TestApp::spawn(backend).await;
        let result: Result<(), TenantError> = app
            .state
            .store
            .write(|conn| {
                tenants::create_tenant(conn, &Slug::parse("doomed").unwrap(), None, T0)?;
                Err(TenantError::InvalidName)
            })
            .await;
        assert!(result.is_err());
        let all = app.state.store.read(tenants::list_tenants).await.unwrap();
        assert!(all.is_empty(), "the tenant was rolled back");
    }
}

backend_test! {
    /// Concurrent writes (which SQLite's writer commits in batches): each failing one rolls
    /// back its own writes and nothing else, and every successful one is committed.
    async fn concurrent_writes_succeed_or_fail_each_on_its_own(backend) {
        let app = TestApp::spawn(backend).await;
        let writes = (0..24).map(|i| {
            let store = app.state.store.clone();
            tokio::spawn(async move {
                store
                    .write(move |conn| {
                        let slug = Slug::parse(&format!("org-{i}")).unwrap();
                        tenants::create_tenant(conn, &slug, None, T0)?;
                        if i % 3 == 0 {
                            return Err(TenantError::InvalidName);
                        }
                        Ok(())
                    })
                    .await
            })
        });
        let results = futures_util::future::join_all(writes).await;
        for (i, result) in results.into_iter().enumerate() {
            assert_eq!(result.unwrap().is_ok(), i % 3 != 0, "write {i}");
        }
        let mut kept: Vec<String> = (app.state.store.read(tenants::list_tenants).await.unwrap())
            .into_iter()
            .map(|t| t.slug)
            .collect();
        kept.sort();
        let mut expected: Vec<String> =
            (0..24).filter(|i| i % 3 != 0).map(|i| format!("org-{i}")).collect();
        expected.sort();
        assert_eq!(kept, expected);
    }
}

backend_test! {
    /// O1: the schema itself refuses a row that points at another tenant's user.
    async fn the_database_refuses_rows_that_cross_tenants(backend) {
        let app = TestApp::spawn(backend).await;
        let ts = "'2026-03-02 09:00:00'";
        app.db(|conn| {
            Ok(conn.batch_execute(&format!(
                "INSERT INTO tenants (id, slug, name, is_disabled, created_at, updated_at)
                   VALUES ('ta', 'a', 'A', FALSE, {ts}, {ts}), ('tb', 'b', 'B', FALSE, {ts}, {ts});
                 INSERT INTO users (id, tenant_id, email, email_verified, role, status, created_at, updated_at)
                   VALUES ('ua', 'ta', 'a@example.com', TRUE, 'member', 'active', {ts}, {ts});"
            ))?)
        });
        let crossing = format!(
            "INSERT INTO password_credentials (user_id, tenant_id, phc_hash, created_at, updated_at)
               VALUES ('ua', 'tb', 'x', {ts}, {ts})"
        );
        let result = app.state.store.read_blocking(|conn| {
            conn.batch_execute(&crossing).map_err(StoreError::from)
        });
        assert!(result.is_err(), "a credential of tenant b for a user of tenant a is refused");
        let same = crossing.replace("'tb'", "'ta'");
        app.db(|conn| Ok(conn.batch_execute(&same)?));
    }
}

/// Several nodes starting together on one PostgreSQL take turns under the advisory lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_together_on_postgres_migrate_once() {
    if crate::pg::admin_url().is_none() {
        return;
    }
    let (settings, _dir, _db) = test_settings(Backend::Postgres);
    let url = settings.database().unwrap();
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || Store::open(&url, 1).map(|(_, status)| status))
        })
        .collect();
    let statuses: Vec<_> = starts
        .into_iter()
        .map(|t| t.join().unwrap().expect("every node starts"))
        .collect();
    let mut applied: Vec<&String> = statuses.iter().flat_map(|s| &s.applied_now).collect();
    let total = applied.len();
    applied.sort();
    applied.dedup();
    assert!(total > 0);
    assert_eq!(total, applied.len(), "no migration was applied twice");
    assert!(statuses.iter().all(|s| s.is_current()));
}

backend_test! {
    /// Expired ceremonies do not pile up: housekeeping deletes them, and only them.
    async fn housekeeping_deletes_expired_ceremonies_only(backend) {
        let app = TestApp::spawn(backend).await;
        app.create_tenant("acme").await;
        let browser = crate::browser::Browser::new(&app);
        let csrf = browser.csrf("/t/acme/login").await;
        let body = serde_json::json!({});
        let path = "/t/acme/api/login/discoverable";
        assert_eq!(browser.post_json(path, &csrf, &body).await.status(), 200);
        app.clock.advance(time::Duration::minutes(10));
        assert_eq!(browser.post_json(path, &csrf, &body).await.status(), 200);
        let removed = app.sweep().await;
        assert!(removed >= 1, "the expired ceremony (and, on PostgreSQL, its rate-limit window)");
        let left: i64 = app.db(|conn| {
            use diesel::prelude::*;
            Ok(passgate::store::schema::webauthn_ceremonies::table.count().get_result(conn)?)
        });
        assert_eq!(left, 1);
    }
}

/// A pooled PostgreSQL connection that the server ended (a restart, a failover, an
/// administrator) costs at most the one request that finds it dead: connections are pinged
/// before use only when idle or after an error, and a failed ping replaces them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_connection_ended_by_the_server_is_replaced() {
    if crate::pg::admin_url().is_none() {
        return;
    }
    let app = TestApp::spawn(Backend::Postgres).await;
    assert_eq!(app.get("/readyz").await.status(), 200);
    let ended = {
        use diesel::{Connection, RunQueryDsl};
        #[derive(diesel::QueryableByName)]
        struct Ended {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let passgate::store::DatabaseUrl::Postgres(url) = app.database_url() else {
            unreachable!("a PostgreSQL test app")
        };
        let mut admin = diesel::PgConnection::establish(&url).unwrap();
        let ended: Ended = diesel::sql_query(
            "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .get_result(&mut admin)
        .unwrap();
        ended.n
    };
    assert!(ended >= 1, "the server's pooled connections were ended");
    // Back to back, well inside the window in which a healthy connection is not pinged.
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(app.get("/readyz").await.status().as_u16());
    }
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 503),
        "a dead connection is a 503, never a 500: {statuses:?}"
    );
    let failed = statuses.iter().filter(|s| **s == 503).count();
    assert!(
        failed as i64 <= ended,
        "each ended connection fails at most one request: {statuses:?}"
    );
    assert!(
        statuses[failed..].iter().all(|s| *s == 200),
        "once a dead connection failed it is replaced: {statuses:?}"
    );
}

/// A PostgreSQL on passgate's own host is reached over its Unix socket when the URL says
/// `host=<socket directory>` (libpq's form): no TCP stack on either side of each statement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_on_the_same_host_is_reached_over_its_unix_socket() {
    if crate::pg::admin_url().is_none() {
        return;
    }
    let Some(builder) = TestApp::builder(Backend::Postgres).over_unix_socket() else {
        return;
    };
    let app = builder.spawn().await;
    assert_eq!(app.get("/readyz").await.status(), 200);
    app.create_tenant("acme").await;
    #[derive(diesel::QueryableByName)]
    struct Peer {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        over_socket: bool,
    }
    let peer: Peer = app.db(|conn| {
        use diesel::RunQueryDsl;
        let passgate::store::DbConn::Postgres(pg) = conn else {
            unreachable!("a PostgreSQL test app")
        };
        // The server's address of a Unix-socket connection is NULL.
        Ok(diesel::sql_query("SELECT inet_server_addr() IS NULL AS over_socket").get_result(pg)?)
    });
    assert!(
        peer.over_socket,
        "the pool's connections use the Unix socket"
    );
}

/// On PostgreSQL only the rate-limit windows are unlogged (no WAL, emptied after a crash: the
/// limits count afresh). Everything else — credentials, sessions, ceremonies, the event
/// logs — is durable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_rate_limit_windows_are_unlogged_on_postgres() {
    if crate::pg::admin_url().is_none() {
        return;
    }
    let app = TestApp::spawn(Backend::Postgres).await;
    #[derive(diesel::QueryableByName)]
    struct Unlogged {
        #[diesel(sql_type = diesel::sql_types::Text)]
        relname: String,
    }
    let unlogged: Vec<String> = app.db(|conn| {
        use diesel::RunQueryDsl;
        let passgate::store::DbConn::Postgres(pg) = conn else {
            unreachable!("a PostgreSQL test app")
        };
        let rows: Vec<Unlogged> = diesel::sql_query(
            "SELECT relname::TEXT AS relname FROM pg_class \
             WHERE relkind = 'r' AND relpersistence = 'u' \
               AND relnamespace = 'public'::regnamespace ORDER BY relname",
        )
        .load(pg)?;
        Ok(rows.into_iter().map(|r| r.relname).collect())
    });
    assert_eq!(unlogged, ["rate_limit_windows"]);
}
