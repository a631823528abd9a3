//! The `passgate` binary as an operator runs it: real processes, real exit codes.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::backend_test;
use crate::harness::{Backend, test_settings};

pub fn passgate() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_passgate"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd
}

/// A command configured for a fresh database of `backend`; the guards keep it alive.
pub fn passgate_on(
    backend: Backend,
) -> (Command, tempfile::TempDir, Option<crate::pg::TestDatabase>) {
    let (settings, dir, db) = test_settings(backend);
    let mut cmd = passgate();
    cmd.env("PASSGATE_DATA_DIR", &settings.data_dir);
    if let Some(url) = &settings.database_url {
        cmd.env("PASSGATE_DATABASE_URL", url);
    }
    (cmd, dir, db)
}

/// [`passgate_on`] after `passgate migrate`: an installation the management commands, which
/// never create a database, can run on.
pub fn passgate_installed(
    backend: Backend,
) -> (Command, tempfile::TempDir, Option<crate::pg::TestDatabase>) {
    let (mut cmd, dir, db) = passgate_on(backend);
    let out = cmd.arg("migrate").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let mut fresh = passgate();
    fresh.envs(same_env(&cmd));
    (fresh, dir, db)
}

/// A command on the same data directory, database and public URL as a running test app
/// (what an operator runs beside the server).
pub fn passgate_beside(app: &crate::harness::TestApp) -> Command {
    let mut cmd = passgate();
    cmd.env("PASSGATE_DATA_DIR", &app.state.settings.data_dir)
        .env("PASSGATE_PUBLIC_URL", &app.address);
    if let Some(url) = &app.state.settings.database_url {
        cmd.env("PASSGATE_DATABASE_URL", url);
    }
    cmd
}

fn stdout_json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

/// The environment `cmd` was given, for more commands on the same installation.
pub fn same_env(cmd: &Command) -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
    cmd.get_envs()
        .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned())))
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

backend_test! {
    async fn tenant_create_prints_exactly_one_json_object(backend) {
        let (mut cmd, _dir, _db) = passgate_installed(backend);
        let out = cmd.args(["tenant", "create", "acme", "--name", "Acme Inc"]).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let lines = stdout_json_lines(&out);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["slug"], "acme");
        assert_eq!(lines[0]["name"], "Acme Inc");
        assert_eq!(lines[0]["issuer"], "http://localhost:8080/t/acme");

        let (mut again, _, _) = (passgate(), (), ());
        again.envs(same_env(&cmd));
        let out = again.args(["tenant", "list"]).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let lines = stdout_json_lines(&out);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["slug"], "acme");
    }
}

#[test]
fn an_invalid_slug_is_refused_with_a_clear_message() {
    let (mut cmd, _dir, _db) = passgate_installed(Backend::Sqlite);
    let out = cmd
        .args(["tenant", "create", "Acme_Corp"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert!(err.contains("invalid tenant slug 'Acme_Corp'"), "{err}");
    assert!(err.contains("lowercase letters, digits and '-'"), "{err}");
}

/// Start-up errors are one line naming the problem, and a non-zero exit.
fn assert_refuses_to_start(cmd: &mut Command, expected: &str) {
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line: {err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    assert!(err.contains(expected), "expected '{expected}' in: {err}");
}

#[test]
fn an_unknown_setting_refuses_to_start_naming_it() {
    let (mut cmd, _dir, _db) = passgate_on(Backend::Sqlite);
    cmd.env("PASSGATE_PUBLIC_ULR", "http://x");
    assert_refuses_to_start(&mut cmd, "public_ulr");
}

#[test]
fn a_malformed_config_file_refuses_to_start() {
    let (mut cmd, dir, _db) = passgate_on(Backend::Sqlite);
    let file = dir.path().join("passgate.toml");
    std::fs::write(&file, "bind = [\n").unwrap();
    cmd.arg("--config").arg(&file).arg("check-config");
    assert_refuses_to_start(&mut cmd, "passgate.toml");
}

#[test]
fn an_invalid_value_refuses_to_start_naming_the_key() {
    let (mut cmd, _dir, _db) = passgate_on(Backend::Sqlite);
    cmd.env("PASSGATE_DATABASE_POOL_SIZE", "lots");
    assert_refuses_to_start(&mut cmd, "database_pool_size");
}

#[test]
fn a_mistyped_postgres_url_never_becomes_a_sqlite_file() {
    let (mut cmd, dir, _db) = passgate_on(Backend::Sqlite);
    cmd.env(
        "PASSGATE_DATABASE_URL",
        "postgress://passgate@localhost/passgate",
    )
    .args(["tenant", "list"]);
    assert_refuses_to_start(&mut cmd, "unsupported database URL scheme 'postgress'");
    let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(files.is_empty(), "nothing was created: {files:?}");
}

#[test]
fn an_unreachable_database_refuses_to_start() {
    let (mut cmd, _dir, _db) = passgate_on(Backend::Sqlite);
    cmd.env(
        "PASSGATE_DATABASE_URL",
        "postgres://passgate@127.0.0.1:1/passgate",
    )
    .arg("migrate");
    assert_refuses_to_start(
        &mut cmd,
        "database postgres://passgate@127.0.0.1:1/passgate",
    );
}

/// Issue 20 #16 too: every secret is masked, the SMTP password included.
#[test]
fn check_config_validates_without_serving_and_masks_the_master_key() {
    let (mut cmd, _dir, _db) = passgate_on(Backend::Sqlite);
    let key = passgate::crypto::MasterKey::generate().to_base64();
    let out = cmd
        .env("PASSGATE_MASTER_KEY", &key)
        .env(
            "PASSGATE_DATABASE_URL",
            "postgres://app:s3cret@db.internal/passgate",
        )
        .env(
            "PASSGATE_SMTP_URL",
            "smtp://mailer:hunter2secret@mail.internal:587",
        )
        .arg("check-config")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = String::from_utf8(out.stdout).unwrap();
    assert!(!shown.contains(&key), "{shown}");
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(!shown.contains("hunter2secret"), "{shown}");
    let value: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(value["master_key"], "****");
    assert_eq!(value["smtp_url"], "smtp://mailer:****@mail.internal:587");
    assert_eq!(value["bind"], "127.0.0.1:8080");
}

#[test]
fn migrate_applies_the_schema_and_reports_it() {
    let (mut cmd, _dir, _db) = passgate_on(Backend::Sqlite);
    let out = cmd.arg("migrate").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let report = &stdout_json_lines(&out)[0];
    assert!(!report["applied"].as_array().unwrap().is_empty());
    let again = cmd.output().unwrap();
    assert_eq!(
        stdout_json_lines(&again)[0]["applied"],
        serde_json::json!([]),
        "nothing left to apply"
    );
}

/// A `serve` process on a free port; killed when dropped.
pub struct ServeProcess {
    pub child: Child,
    pub base_url: String,
}

impl ServeProcess {
    pub fn start(mut cmd: Command) -> ServeProcess {
        let mut child = cmd
            .env("PASSGATE_BIND", "127.0.0.1:0")
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        // Keep draining, so the server never writes into a closed pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let base_url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in: {first}"))
            .to_string();
        ServeProcess { child, base_url }
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub fn wait_for_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(start.elapsed() < limit, "process did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

backend_test! {
    async fn serve_prints_where_it_listens_and_stops_gracefully_on_sigterm(backend) {
        let (cmd, dir, _db) = passgate_on(backend);
        let mut server = ServeProcess::start(cmd);
        let res = reqwest::get(format!("{}/readyz", server.base_url)).await.unwrap();
        assert_eq!(res.status(), 200);
        if backend == Backend::Sqlite {
            assert!(dir.path().join("passgate.db").exists());
        }
        assert!(dir.path().join("master.key").exists(), "the master key is generated on first run");
        server.signal("TERM");
        let status = server.wait_for_exit(Duration::from_secs(15));
        assert!(status.success(), "{status:?}");
    }
}

/// Done-when of issue 2: SIGKILL in the middle of a stream of writes on SQLite; the database
/// opens cleanly afterwards with every acknowledged row present.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_keeps_every_acknowledged_write_across_sigkill() {
    let (mut cmd, dir, _db) = passgate_on(Backend::Sqlite);
    cmd.env("PASSGATE_RATE_LIMIT__PER_IP", "1000000");
    let mut server = ServeProcess::start(cmd);
    let base = server.base_url.replace("127.0.0.1", "localhost");
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let page = client
        .get(format!("{base}/t/default/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = crate::browser::attribute(&page, "data-csrf").unwrap();

    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let (client, csrf, base, acknowledged) = (
                client.clone(),
                csrf.clone(),
                base.clone(),
                acknowledged.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let res = client
                        .post(format!("{base}/t/default/api/login/discoverable"))
                        .header("X-CSRF-Token", &csrf)
                        .json(&serde_json::json!({}))
                        .send()
                        .await;
                    let Ok(res) = res else { break };
                    let Ok(body) = res.json::<Value>().await else {
                        break;
                    };
                    if let Some(id) = body["ceremony_id"].as_str() {
                        acknowledged.lock().unwrap().push(id.to_string());
                    }
                }
            })
        })
        .collect();
    while acknowledged.lock().unwrap().len() < 200 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.signal("KILL");
    let status = server.wait_for_exit(Duration::from_secs(10));
    assert!(!status.success(), "killed, not exited");
    for w in writers {
        let _ = w.await;
    }
    let acknowledged = acknowledged.lock().unwrap().clone();

    let url = passgate::store::DatabaseUrl::sqlite(dir.path().join("passgate.db"));
    let (store, migrations) =
        passgate::store::Store::open(&url, 1).expect("the database opens cleanly");
    assert!(migrations.is_current());
    let stored: Vec<String> = store
        .read_blocking(|conn| {
            use diesel::prelude::*;
            use passgate::store::schema::webauthn_ceremonies::dsl::*;
            webauthn_ceremonies
                .select(id)
                .load::<String>(conn)
                .map_err(passgate::store::StoreError::from)
        })
        .unwrap();
    let stored: std::collections::HashSet<String> = stored.into_iter().collect();
    let missing: Vec<&String> = acknowledged
        .iter()
        .filter(|a| !stored.contains(*a))
        .collect();
    println!(
        "SIGKILL after {} acknowledged writes; {} rows on disk",
        acknowledged.len(),
        stored.len()
    );
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    let integrity: Vec<String> = store
        .read_blocking(|conn| {
            #[derive(diesel::QueryableByName)]
            struct Check {
                #[diesel(sql_type = diesel::sql_types::Text)]
                integrity_check: String,
            }
            use diesel::RunQueryDsl;
            let rows: Vec<Check> = diesel::sql_query("PRAGMA integrity_check").load(conn)?;
            Ok::<_, passgate::store::StoreError>(
                rows.into_iter().map(|r| r.integrity_check).collect(),
            )
        })
        .unwrap();
    assert_eq!(integrity, vec!["ok".to_string()]);
}

backend_test! {
    /// S5: `user invite` prints the user id and a working enrollment link.
    async fn user_invite_prints_an_enrollment_link(backend) {
        let (mut cmd, _dir, _db) = passgate_installed(backend);
        let envs = same_env(&cmd);
        assert!(cmd.args(["tenant", "create", "acme"]).output().unwrap().status.success());
        let out = passgate().envs(envs.clone()).args(["user", "invite", "--tenant", "acme", "--email", "Ann@Example.com", "--role", "admin"]).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let lines = stdout_json_lines(&out);
        assert_eq!(lines.len(), 1);
        assert!(lines[0]["user_id"].as_str().unwrap().len() == 36);
        let url = lines[0]["enrollment_url"].as_str().unwrap();
        assert!(url.starts_with("http://localhost:8080/t/acme/enroll?token="), "{url}");

        let bad = passgate().envs(envs.clone()).args(["user", "invite", "--tenant", "acme", "--email", "x", "--role", "admin"]).output().unwrap();
        assert_eq!(bad.status.code(), Some(1));
        assert!(stderr(&bad).contains("not a valid email"));
        let bad = passgate().envs(envs).args(["user", "invite", "--tenant", "acme", "--email", "b@example.com", "--role", "boss"]).output().unwrap();
        assert!(!bad.status.success());
        assert!(stderr(&bad).contains("unknown role 'boss'"));
    }
}

#[test]
fn user_create_reads_the_password_from_stdin_only() {
    use std::io::Write;
    let (mut cmd, _dir, _db) = passgate_installed(Backend::Sqlite);
    let envs = same_env(&cmd);
    assert!(
        cmd.args(["tenant", "create", "acme"])
            .output()
            .unwrap()
            .status
            .success()
    );
    let mut child = passgate()
        .envs(envs.clone())
        .args([
            "user",
            "create",
            "--tenant",
            "acme",
            "--email",
            "bob@example.com",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct horse battery\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout_json_lines(&out)[0]["email"], "bob@example.com");
    let out = passgate()
        .envs(envs)
        .args([
            "user",
            "create",
            "--tenant",
            "acme",
            "--email",
            "c@example.com",
            "--password",
            "secret",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "there is no --password flag");
}

/// Issue 20 #17: a management command run where there is no installation refuses, saying
/// where it looked and how to point it elsewhere, and creates nothing.
#[test]
fn a_management_command_never_creates_a_database() {
    let (mut cmd, dir, _db) = passgate_on(Backend::Sqlite);
    let out = cmd.args(["tenant", "list"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("no passgate database at"), "{err}");
    assert!(err.contains("PASSGATE_DATA_DIR"), "{err}");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "nothing created: {left:?}");
}

/// Issue 20 #18: a second start on a busy port fails before it touches the installation, so
/// the running server's printed setup link keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_start_on_a_busy_port_leaves_the_running_servers_setup_link_working() {
    let (cmd, _dir, _db) = passgate_on(Backend::Sqlite);
    let envs = same_env(&cmd);
    let mut child = passgate()
        .envs(envs.clone())
        .env("PASSGATE_BIND", "127.0.0.1:0")
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let banner: Vec<String> = (&mut lines)
        .map(|l| l.unwrap())
        .take_while(|l| !l.contains("passgate user invite"))
        .collect();
    std::thread::spawn(move || lines.for_each(drop));
    let address = banner[0]
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_string();
    let link = banner
        .iter()
        .map(|l| l.trim())
        .find(|l| l.contains("/setup?token="))
        .unwrap()
        .to_string();
    let link = link.replace("http://localhost:8080", &address);

    let second = passgate()
        .envs(envs)
        .env("PASSGATE_BIND", address.trim_start_matches("http://"))
        .arg("serve")
        .output()
        .unwrap();
    assert!(!second.status.success());
    assert!(
        stderr(&second).contains("cannot listen"),
        "{}",
        stderr(&second)
    );

    let page = reqwest::get(&link).await.unwrap();
    assert_eq!(
        page.status(),
        200,
        "the first server's setup link still works"
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// Issue 20 #23: `passgate healthcheck` (the image's HEALTHCHECK; it has no curl) exits 0
/// while the server on the bind address is ready, and 1 when nothing answers there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_reports_whether_the_server_is_ready() {
    let (cmd, _dir, _db) = passgate_on(Backend::Sqlite);
    let envs = same_env(&cmd);
    let server = ServeProcess::start(cmd);
    let bind = server.base_url.trim_start_matches("http://").to_string();
    let ok = passgate()
        .envs(envs.clone())
        .env("PASSGATE_BIND", &bind)
        .arg("healthcheck")
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", stderr(&ok));
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let down = passgate()
        .envs(envs)
        .env("PASSGATE_BIND", free.to_string())
        .arg("healthcheck")
        .output()
        .unwrap();
    assert_eq!(down.status.code(), Some(1));
    assert!(
        stderr(&down).contains("nothing answers"),
        "{}",
        stderr(&down)
    );
}
