//! PostgreSQL for the tests. `TEST_POSTGRES_URL` names a running server (an admin URL, as
//! `.ci/run` may provide); otherwise a throwaway cluster is made with the local `initdb` under
//! the temp directory, started as the `postgres` user when we are root (PostgreSQL refuses
//! root), and reused by later runs. Every test gets its own database.
//!
//! Without PostgreSQL binaries the tests print a loud notice and skip — except under
//! `CI=true`, where that is a failure.

use std::fs::{self, File};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};

static ADMIN_URL: OnceLock<Option<String>> = OnceLock::new();

pub fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The admin URL of a running server, or `None` (after a notice) when there is none here.
pub fn admin_url() -> Option<String> {
    ADMIN_URL
        .get_or_init(|| {
            if let Ok(url) = std::env::var("TEST_POSTGRES_URL") {
                return Some(url);
            }
            match ensure_local_cluster() {
                Ok(url) => Some(url),
                Err(why) => {
                    if is_ci() {
                        panic!("PostgreSQL is required when CI=true: {why}");
                    }
                    eprintln!(
                        "\n*** NOTICE: PostgreSQL tests SKIPPED: {why}.\n*** Install PostgreSQL (initdb) or set TEST_POSTGRES_URL to run them.\n"
                    );
                    None
                }
            }
        })
        .clone()
}

/// A database of its own for one test, dropped (with its connections) at the end.
pub struct TestDatabase {
    admin_url: String,
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    pub fn create() -> Option<TestDatabase> {
        let admin_url = admin_url()?;
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::establish(&admin_url)
            .unwrap_or_else(|e| panic!("connect to test PostgreSQL: {e}"));
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("create test database: {e}"));
        let mut url = url::Url::parse(&admin_url).expect("admin URL");
        url.set_path(&format!("/{name}"));
        Some(TestDatabase {
            admin_url,
            name,
            url: url.to_string(),
        })
    }

    /// This database over the local cluster's Unix socket (libpq's `host=<dir>`); `None`
    /// when the server is one named by `TEST_POSTGRES_URL`, whose socket is not ours to know.
    pub fn socket_url(&self) -> Option<String> {
        if std::env::var("TEST_POSTGRES_URL").is_ok() {
            return None;
        }
        let port = url::Url::parse(&self.admin_url).ok()?.port()?;
        let dir = cluster_dir();
        Some(format!(
            "postgres:///{}?host={}&port={port}&user=postgres",
            self.name,
            dir.display()
        ))
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgConnection::establish(&self.admin_url) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

fn bin_dir() -> Result<PathBuf, String> {
    let mut candidates: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    candidates.sort();
    candidates
        .into_iter()
        .rev()
        .find(|bin| bin.join("initdb").exists() && bin.join("pg_ctl").exists())
        .ok_or_else(|| "no initdb found under /usr/lib/postgresql/*/bin".to_string())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs a PostgreSQL tool, as `postgres` when we are root.
fn pg_command(bin: &Path, tool: &str, as_postgres: bool) -> Command {
    if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(tool));
        c
    } else {
        Command::new(bin.join(tool))
    }
}

/// Where the throwaway cluster lives (its data, and its Unix socket).
fn cluster_dir() -> PathBuf {
    std::env::temp_dir().join("passgate-test-pg")
}

fn ensure_local_cluster() -> Result<String, String> {
    let bin = bin_dir()?;
    let as_postgres = is_root();
    let base = std::env::temp_dir();
    let dir = cluster_dir();
    // Several test processes (cargo test, nextest) may race to set the cluster up.
    let lock = File::create(base.join("passgate-test-pg.lock")).map_err(|e| e.to_string())?;
    lock.lock().map_err(|e| e.to_string())?;

    if !dir.join("PG_VERSION").exists() {
        let _ = fs::remove_dir_all(&dir);
        let out = pg_command(&bin, "initdb", as_postgres)
            .args(["-D"])
            .arg(&dir)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ])
            .output()
            .map_err(|e| format!("cannot run initdb: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    let port_file = dir.join("passgate-port");
    let running = pg_command(&bin, "pg_ctl", as_postgres)
        .args(["status", "-D"])
        .arg(&dir)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    let port = match (running, fs::read_to_string(&port_file)) {
        (true, Ok(port)) => port.trim().to_string(),
        _ => {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| e.to_string())?
                .port()
                .to_string();
            let opts = format!(
                "-p {port} -c listen_addresses=127.0.0.1 -k {} -F -c max_connections=300 -c synchronous_commit=off -c full_page_writes=off",
                dir.display()
            );
            let out = pg_command(&bin, "pg_ctl", as_postgres)
                .args(["start", "-w", "-t", "60", "-D"])
                .arg(&dir)
                .arg("-l")
                .arg(dir.join("server.log"))
                .args(["-o", &opts])
                .output()
                .map_err(|e| format!("cannot run pg_ctl: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "pg_ctl start failed: {} {}",
                    String::from_utf8_lossy(&out.stdout).trim(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            fs::write(&port_file, &port).map_err(|e| e.to_string())?;
            port
        }
    };
    Ok(format!("postgres://postgres@127.0.0.1:{port}/postgres"))
}
