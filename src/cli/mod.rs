//! The command line: `serve` (default), `migrate`, `check-config`, `tenant …`. Commands that
//! create something print exactly one JSON object on stdout; everything else goes to stderr.

mod audit;
mod client;
mod keys;
mod serve;
mod tenant;
mod user;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use serde::Serialize;

use crate::app::AppState;
use crate::clock::Clock;
use crate::config::Settings;

#[derive(Debug, Parser)]
#[command(
    name = "passgate",
    version,
    about = "A passkey-first OpenID Connect identity provider"
)]
pub struct Cli {
    /// TOML configuration file (settings in the environment override it).
    #[arg(long, global = true, env = "PASSGATE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve HTTP (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Validate the configuration without serving; prints the effective settings.
    CheckConfig,
    /// Exit 0 when the server on this node's `bind` address answers ready (`/readyz`), 1
    /// otherwise: for container health checks (the image has no curl).
    Healthcheck,
    /// Manage tenants (organisations).
    #[command(subcommand)]
    Tenant(tenant::TenantCommand),
    /// Manage users: create, invite, recover, list.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Read and review the security audit log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Manage OIDC clients (relying parties) of a tenant.
    #[command(subcommand)]
    Client(client::ClientCommand),
    /// Manage a tenant's signing keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(cli.config.as_deref())?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve::serve(settings),
        Command::Migrate => migrate(settings),
        Command::CheckConfig => check_config(settings),
        Command::Healthcheck => healthcheck(&settings),
        Command::Tenant(cmd) => {
            let (state, _) = open(settings)?;
            tenant::run(&state, cmd)
        }
        Command::User(cmd) => {
            let (state, _) = open(settings)?;
            user::run(&state, cmd)
        }
        Command::Audit(cmd) => {
            let (state, _) = open(settings)?;
            audit::run(&state, cmd)
        }
        Command::Client(cmd) => {
            let (state, _) = open(settings)?;
            client::run(&state, cmd)
        }
        Command::Keys(cmd) => {
            let (state, _) = open(settings)?;
            keys::run(&state, cmd)
        }
    }
}

/// Opens the installation for a management command. Only `serve` and `migrate` create a
/// database: a command run from the wrong directory must not start an empty installation
/// (and a master key) beside the real one.
fn open(settings: Settings) -> anyhow::Result<(AppState, crate::StartupReport)> {
    crate::telemetry::init(settings.log_format, "warn");
    if let crate::store::DatabaseUrl::Sqlite(path) = settings.database()?
        && !path.exists()
    {
        anyhow::bail!(
            "there is no passgate database at {} (data directory {}); run this command where              passgate serves, or point it there with PASSGATE_DATA_DIR, PASSGATE_DATABASE_URL              or --config; `passgate serve` or `passgate migrate` creates a new one",
            path.display(),
            settings.data_dir.display()
        );
    }
    Ok(AppState::open(settings, Clock::System)?)
}

fn migrate(settings: Settings) -> anyhow::Result<()> {
    crate::telemetry::init(settings.log_format, &settings.log_level);
    let database = settings.database()?;
    database.create_private_home()?;
    let (_store, status) = crate::store::Store::open(&database, 1)
        .map_err(|e| anyhow::anyhow!("database {database}: {e}"))?;
    eprintln!(
        "{}: {} migration(s) applied, schema at {}",
        database,
        status.applied_now.len(),
        status.latest
    );
    print_json(&serde_json::json!({
        "database": database.to_string(),
        "applied": status.applied_now,
        "schema": status.latest,
    }))
}

fn check_config(settings: Settings) -> anyhow::Result<()> {
    let mut shown = serde_json::to_value(&settings)?;
    if settings.master_key.is_some() {
        shown["master_key"] = serde_json::Value::String("****".into());
    }
    shown["database_url"] = serde_json::Value::String(settings.database()?.to_string());
    if let Some(smtp) = &settings.smtp_url {
        shown["smtp_url"] = serde_json::Value::String(masked_url(smtp));
    }
    eprintln!("configuration is valid");
    print_json(&shown)
}

/// `GET /readyz` on the bind address (0.0.0.0 and [::] mean this host), within 5 seconds.
fn healthcheck(settings: &Settings) -> anyhow::Result<()> {
    use std::io::{Read, Write};
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
    use std::time::Duration;
    let bind = settings.bind;
    let ip = match bind.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let target = SocketAddr::new(ip, bind.port());
    let limit = Duration::from_secs(5);
    let mut stream = TcpStream::connect_timeout(&target, limit)
        .map_err(|e| anyhow::anyhow!("nothing answers on {target}: {e}"))?;
    stream.set_read_timeout(Some(limit))?;
    stream.set_write_timeout(Some(limit))?;
    write!(
        stream,
        "GET /readyz HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    stream.take(64 * 1024).read_to_string(&mut answer)?;
    let status = answer.lines().next().unwrap_or_default();
    if status.starts_with("HTTP/1.1 200") {
        eprintln!("ready: {target}");
        Ok(())
    } else {
        anyhow::bail!("{target} is not ready: {status}")
    }
}

/// A URL as it may be shown: its password (and any query, where tokens go) masked.
fn masked_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) => {
            if url.password().is_some() {
                let _ = url.set_password(Some("****"));
            }
            if url.query().is_some() {
                url.set_query(Some("****"));
            }
            url.to_string()
        }
        Err(_) => "(not a URL)".to_string(),
    }
}

pub(crate) fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}
