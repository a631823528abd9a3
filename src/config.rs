//! Settings: defaults → optional TOML file (`--config` / `PASSGATE_CONFIG`) → environment
//! (`PASSGATE_*`, nested keys joined with `__`). Unknown keys and invalid values are start-up
//! errors that name the key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::store::{DatabaseUrl, DatabaseUrlError};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address the HTTP server binds to.
    pub bind: SocketAddr,
    /// The URL users and relying parties reach passgate at; issuers are `{public_url}/t/{slug}`.
    pub public_url: Url,
    /// Where the embedded database, the generated master key and outgoing mail files live.
    pub data_dir: PathBuf,
    /// `sqlite://<path>` or `postgres://…`; default `sqlite://<data_dir>/passgate.db`.
    pub database_url: Option<String>,
    pub database_pool_size: u32,
    /// Base64 of 32 random bytes. Give every node of a cluster the same key.
    pub master_key: Option<String>,
    pub master_key_file: Option<PathBuf>,
    pub log_format: LogFormat,
    /// A tracing filter such as `info` or `passgate=debug,info`; `RUST_LOG` overrides it.
    pub log_level: String,
    /// HTTP worker threads; default: one per core.
    pub workers: Option<usize>,
    /// Proxies whose `X-Forwarded-For` is believed when finding the client IP.
    pub trusted_proxies: Vec<IpNet>,
    pub session: SessionSettings,
    pub webauthn: WebauthnSettings,
    pub rate_limit: RateLimitSettings,
    pub password: PasswordSettings,
    pub oidc: OidcSettings,
    /// How long an invitation link stays valid.
    #[serde(with = "humantime_serde")]
    pub invitation_ttl: Duration,
    /// `smtp://host:25`, `smtp://host:587?tls=required` (STARTTLS) or
    /// `smtps://user:pass@host:465`; without it, mail is written as .eml files under
    /// `<data_dir>/mail`.
    pub smtp_url: Option<String>,
    /// The sender when a tenant has none of its own.
    pub mail_from: String,
    pub recovery: RecoverySettings,
}

/// Lifetimes of recovery links (C2–C4) and the recovery-code lockout (C1).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecoverySettings {
    #[serde(with = "humantime_serde")]
    pub email_link_ttl: Duration,
    #[serde(with = "humantime_serde")]
    pub admin_link_ttl: Duration,
    #[serde(with = "humantime_serde")]
    pub device_link_ttl: Duration,
    /// Wrong recovery codes in a row before the code path locks for the account.
    pub code_attempts: u32,
    #[serde(with = "humantime_serde")]
    pub code_lockout: Duration,
}

impl Default for RecoverySettings {
    fn default() -> Self {
        RecoverySettings {
            email_link_ttl: Duration::from_secs(15 * 60),
            admin_link_ttl: Duration::from_secs(24 * 3600),
            device_link_ttl: Duration::from_secs(10 * 60),
            code_attempts: 5,
            code_lockout: Duration::from_secs(3600),
        }
    }
}

/// Browser sessions: a session ends after `idle_timeout` without requests, and in any case
/// `absolute_timeout` after sign-in.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionSettings {
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub absolute_timeout: Duration,
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings {
            idle_timeout: Duration::from_secs(8 * 3600),
            absolute_timeout: Duration::from_secs(24 * 3600),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebauthnSettings {
    /// How long a registration or sign-in ceremony may take: long enough to find and tap a
    /// roaming security key (P6).
    #[serde(with = "humantime_serde")]
    pub ceremony_timeout: Duration,
    /// The relying party name shown by authenticators.
    pub rp_name: String,
}

impl Default for WebauthnSettings {
    fn default() -> Self {
        WebauthnSettings {
            ceremony_timeout: Duration::from_secs(300),
            rp_name: "passgate".into(),
        }
    }
}

/// P7: credential-bearing endpoints are limited per client IP and per identifier, separately.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitSettings {
    /// Attempts per client IP per window (credential stuffing from one source).
    pub per_ip: u32,
    /// Attempts per identifier (email, account) per window, from anywhere (targeted guessing).
    pub per_identifier: u32,
    /// Admin API calls per acting admin (a console session's user, or a client's token) per
    /// window: one token cannot start hundreds of recoveries, and mails, in seconds.
    pub per_admin: u32,
    #[serde(with = "humantime_serde")]
    pub window: Duration,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        RateLimitSettings {
            per_ip: 60,
            per_identifier: 10,
            per_admin: 60,
            window: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordSettings {
    /// argon2id hashes computed at once; more wait briefly, then get 503. Default: one per
    /// core, so an overload answers quickly instead of exhausting memory (19 MiB each).
    pub max_concurrent_hashes: Option<usize>,
    /// How long a password attempt may wait for a hashing slot before 503: short enough that
    /// an accepted login waits at most this plus one hash under overload (docs/performance.md
    /// has how it was chosen).
    #[serde(with = "humantime_serde")]
    pub queue_timeout: Duration,
}

impl Default for PasswordSettings {
    fn default() -> Self {
        PasswordSettings {
            max_concurrent_hashes: None,
            queue_timeout: Duration::from_millis(100),
        }
    }
}

/// Token lifetimes and the signing-key schedule of the OpenID Connect provider (O3, O7).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OidcSettings {
    /// Authorization codes are single use and short-lived (RFC 6749 §4.1.2 recommends ≤ 10 min).
    #[serde(with = "humantime_serde")]
    pub code_lifetime: Duration,
    #[serde(with = "humantime_serde")]
    pub access_token_lifetime: Duration,
    #[serde(with = "humantime_serde")]
    pub id_token_lifetime: Duration,
    /// A refresh token unused this long expires; every use issues a new one.
    #[serde(with = "humantime_serde")]
    pub refresh_idle_lifetime: Duration,
    /// No refresh token of a family outlives this, however often it is used.
    #[serde(with = "humantime_serde")]
    pub refresh_absolute_lifetime: Duration,
    /// A refresh token presented again this soon after it was rotated is a concurrent use (two
    /// tabs, parallel calls of one app): refused with `invalid_grant`, its family kept. Later,
    /// it is reuse and revokes the family (OAuth 2.0 Security BCP §4.14.2).
    #[serde(with = "humantime_serde")]
    pub refresh_reuse_grace: Duration,
    /// How often each tenant's signing keys are replaced automatically; `0s` turns it off.
    #[serde(with = "humantime_serde")]
    pub key_rotation_interval: Duration,
    /// How long a new key is in the JWKS before it signs, so relying parties that cache the
    /// JWKS already know it.
    #[serde(with = "humantime_serde")]
    pub key_publish_lead: Duration,
    /// How often each node checks whether a rotation is due (and deletes expired codes/tokens).
    #[serde(with = "humantime_serde")]
    pub key_check_interval: Duration,
}

impl Default for OidcSettings {
    fn default() -> Self {
        OidcSettings {
            code_lifetime: Duration::from_secs(60),
            access_token_lifetime: Duration::from_secs(600),
            id_token_lifetime: Duration::from_secs(3600),
            refresh_idle_lifetime: Duration::from_secs(14 * 86_400),
            refresh_absolute_lifetime: Duration::from_secs(30 * 86_400),
            refresh_reuse_grace: Duration::from_secs(5),
            key_rotation_interval: Duration::from_secs(90 * 86_400),
            key_publish_lead: Duration::from_secs(86_400),
            key_check_interval: Duration::from_secs(3600),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: Url::parse("http://localhost:8080").unwrap_or_else(|_| unreachable!()),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            database_pool_size: 16,
            master_key: None,
            master_key_file: None,
            log_format: LogFormat::Human,
            log_level: "info".into(),
            workers: None,
            trusted_proxies: Vec::new(),
            session: SessionSettings::default(),
            webauthn: WebauthnSettings::default(),
            rate_limit: RateLimitSettings::default(),
            password: PasswordSettings::default(),
            oidc: OidcSettings::default(),
            invitation_ttl: Duration::from_secs(72 * 3600),
            smtp_url: None,
            mail_from: "passgate <no-reply@localhost>".into(),
            recovery: RecoverySettings::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Figment(String),
    #[error("configuration key '{key}': {message}")]
    Invalid { key: &'static str, message: String },
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
}

impl From<figment::Error> for ConfigError {
    /// One line: the key (lowercase, as in the TOML file), what is wrong, and where it came
    /// from (the file or the environment variable).
    fn from(e: figment::Error) -> Self {
        let Some(first) = e.into_iter().next() else {
            return ConfigError::Figment("invalid configuration".into());
        };
        let mut message = String::new();
        if !first.path.is_empty() {
            message.push_str(&format!("key '{}': ", first.path.join(".").to_lowercase()));
        }
        message.push_str(&first.kind.to_string());
        if let Some(meta) = &first.metadata {
            match &meta.source {
                Some(figment::Source::File(path)) => {
                    message.push_str(&format!(" (in {})", path.display()))
                }
                _ if meta.name.contains("environment") && !first.path.is_empty() => message
                    .push_str(&format!(
                        " (from PASSGATE_{})",
                        first.path.join("__").to_uppercase()
                    )),
                _ => message.push_str(&format!(" (from {})", meta.name)),
            }
        }
        ConfigError::Figment(message.replace('\n', " "))
    }
}

impl Settings {
    /// Loads settings from the defaults, the file (when given) and the process environment.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        Self::from_figment(Self::figment(file)?)
    }

    fn figment(file: Option<&Path>) -> Result<Figment, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::MissingFile(path.to_path_buf()));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        Ok(figment.merge(Env::prefixed("PASSGATE_").split("__").ignore(&["config"])))
    }

    pub fn from_figment(figment: Figment) -> Result<Settings, ConfigError> {
        let settings: Settings = figment.extract()?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        match self.public_url.scheme() {
            "http" | "https" => {}
            other => {
                return Err(ConfigError::Invalid {
                    key: "public_url",
                    message: format!("scheme must be http or https, not '{other}'"),
                });
            }
        }
        if self.public_url.query().is_some() || self.public_url.fragment().is_some() {
            return Err(ConfigError::Invalid {
                key: "public_url",
                message: "must not have a query or fragment".into(),
            });
        }
        if self.public_url.host_str().is_none() {
            return Err(ConfigError::Invalid {
                key: "public_url",
                message: "must have a host".into(),
            });
        }
        if self.database_pool_size == 0 {
            return Err(ConfigError::Invalid {
                key: "database_pool_size",
                message: "must be at least 1".into(),
            });
        }
        if self.master_key.is_some() && self.master_key_file.is_some() {
            return Err(ConfigError::Invalid {
                key: "master_key",
                message: "set master_key or master_key_file, not both".into(),
            });
        }
        if let Some(key) = &self.master_key {
            crate::crypto::MasterKey::from_base64(key).map_err(|e| ConfigError::Invalid {
                key: "master_key",
                message: e.to_string(),
            })?;
        }
        let positive = |key: &'static str, d: Duration| {
            if d.is_zero() {
                Err(ConfigError::Invalid {
                    key,
                    message: "must be longer than zero".into(),
                })
            } else {
                Ok(())
            }
        };
        positive("session.idle_timeout", self.session.idle_timeout)?;
        positive("session.absolute_timeout", self.session.absolute_timeout)?;
        positive("webauthn.ceremony_timeout", self.webauthn.ceremony_timeout)?;
        positive("rate_limit.window", self.rate_limit.window)?;
        positive("invitation_ttl", self.invitation_ttl)?;
        positive("oidc.code_lifetime", self.oidc.code_lifetime)?;
        positive(
            "oidc.access_token_lifetime",
            self.oidc.access_token_lifetime,
        )?;
        positive("oidc.id_token_lifetime", self.oidc.id_token_lifetime)?;
        positive(
            "oidc.refresh_idle_lifetime",
            self.oidc.refresh_idle_lifetime,
        )?;
        positive(
            "oidc.refresh_absolute_lifetime",
            self.oidc.refresh_absolute_lifetime,
        )?;
        positive("oidc.key_check_interval", self.oidc.key_check_interval)?;
        if !self.oidc.key_rotation_interval.is_zero()
            && self.oidc.key_rotation_interval <= self.oidc.key_publish_lead
        {
            return Err(ConfigError::Invalid {
                key: "oidc.key_rotation_interval",
                message: "must be longer than oidc.key_publish_lead".into(),
            });
        }
        if self.rate_limit.per_ip == 0
            || self.rate_limit.per_identifier == 0
            || self.rate_limit.per_admin == 0
        {
            return Err(ConfigError::Invalid {
                key: "rate_limit",
                message: "per_ip, per_identifier and per_admin must be at least 1".into(),
            });
        }
        if self.password.max_concurrent_hashes == Some(0) {
            return Err(ConfigError::Invalid {
                key: "password.max_concurrent_hashes",
                message: "must be at least 1".into(),
            });
        }
        if let Some(url) = &self.smtp_url {
            lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(url).map_err(|e| {
                ConfigError::Invalid {
                    key: "smtp_url",
                    message: e.to_string(),
                }
            })?;
        }
        self.mail_from
            .parse::<lettre::message::Mailbox>()
            .map_err(|e| ConfigError::Invalid {
                key: "mail_from",
                message: e.to_string(),
            })?;
        positive("recovery.email_link_ttl", self.recovery.email_link_ttl)?;
        positive("recovery.admin_link_ttl", self.recovery.admin_link_ttl)?;
        positive("recovery.device_link_ttl", self.recovery.device_link_ttl)?;
        if self.workers == Some(0) {
            return Err(ConfigError::Invalid {
                key: "workers",
                message: "must be at least 1".into(),
            });
        }
        tracing_subscriber::EnvFilter::try_new(&self.log_level).map_err(|e| {
            ConfigError::Invalid {
                key: "log_level",
                message: e.to_string(),
            }
        })?;
        self.database()?;
        Ok(())
    }

    /// The database to use: the configured URL, or SQLite in the data directory.
    pub fn database(&self) -> Result<DatabaseUrl, ConfigError> {
        match &self.database_url {
            Some(raw) => {
                DatabaseUrl::parse(raw).map_err(|e: DatabaseUrlError| ConfigError::Invalid {
                    key: "database_url",
                    message: e.to_string(),
                })
            }
            None => Ok(DatabaseUrl::sqlite(self.data_dir.join("passgate.db"))),
        }
    }

    /// The public URL without a trailing slash, the base of every issuer and link.
    pub fn public_base(&self) -> String {
        self.public_url.as_str().trim_end_matches('/').to_string()
    }

    pub fn is_https(&self) -> bool {
        self.public_url.scheme() == "https"
    }

    pub fn issuer(&self, tenant_slug: &str) -> String {
        format!("{}/t/{}", self.public_base(), tenant_slug)
    }

    pub fn master_key_path(&self) -> PathBuf {
        self.master_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("master.key"))
    }

    /// The WebAuthn relying party id: the public URL's host, shared by every tenant (a passkey
    /// belongs to the passgate deployment; tenants are told apart by the account it opens).
    pub fn rp_id(&self) -> &str {
        self.public_url.host_str().unwrap_or("localhost")
    }

    /// The origin browsers send (`scheme://host[:port]`), for WebAuthn and CSRF checks.
    pub fn public_origin(&self) -> String {
        self.public_url.origin().ascii_serialization()
    }

    pub fn cores(&self) -> usize {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    }

    pub fn http_workers(&self) -> usize {
        self.workers.unwrap_or_else(|| self.cores())
    }
}

#[cfg(test)]
#[expect(
    clippy::result_large_err,
    reason = "figment::Jail fixes the closure's error type"
)]
mod tests {
    use super::*;
    use figment::Jail;

    fn load_in_jail(jail: &mut Jail, file: Option<&str>) -> Result<Settings, ConfigError> {
        let path = file.map(|content| {
            jail.create_file("passgate.toml", content).unwrap();
            PathBuf::from("passgate.toml")
        });
        Settings::load(path.as_deref())
    }

    #[test]
    fn defaults_serve_sqlite_in_the_data_directory() {
        Jail::expect_with(|jail| {
            let s = load_in_jail(jail, None).unwrap();
            assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
            assert_eq!(s.public_base(), "http://localhost:8080");
            assert_eq!(
                s.database().unwrap(),
                DatabaseUrl::sqlite(PathBuf::from("./data/passgate.db"))
            );
            assert_eq!(s.issuer("acme"), "http://localhost:8080/t/acme");
            Ok(())
        });
    }

    #[test]
    fn environment_overrides_the_file_and_nests_with_double_underscore() {
        Jail::expect_with(|jail| {
            jail.set_env("PASSGATE_BIND", "0.0.0.0:9000");
            jail.set_env("PASSGATE_DATA_DIR", "/var/lib/passgate");
            let s = load_in_jail(
                jail,
                Some("bind = \"127.0.0.1:7000\"\npublic_url = \"https://id.example.com/\"\n"),
            )
            .unwrap();
            assert_eq!(s.bind.to_string(), "0.0.0.0:9000");
            assert_eq!(s.public_base(), "https://id.example.com");
            assert!(s.is_https());
            assert_eq!(
                s.database().unwrap(),
                DatabaseUrl::sqlite(PathBuf::from("/var/lib/passgate/passgate.db"))
            );
            Ok(())
        });
    }

    #[test]
    fn an_unknown_environment_key_is_an_error_naming_it() {
        Jail::expect_with(|jail| {
            jail.set_env("PASSGATE_BIDN", "0.0.0.0:9000");
            let err = load_in_jail(jail, None).unwrap_err().to_string();
            assert!(err.contains("bidn"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn an_unknown_file_key_is_an_error_naming_it() {
        Jail::expect_with(|jail| {
            let err = load_in_jail(jail, Some("colour = \"blue\"\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("colour"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn an_invalid_value_is_an_error_naming_the_key() {
        Jail::expect_with(|jail| {
            jail.set_env("PASSGATE_BIND", "not-an-address");
            let err = load_in_jail(jail, None).unwrap_err().to_string();
            assert!(err.contains("bind"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_mistyped_database_url_names_the_key() {
        Jail::expect_with(|jail| {
            jail.set_env("PASSGATE_DATABASE_URL", "postgress://u@h/db");
            let err = load_in_jail(jail, None).unwrap_err().to_string();
            assert!(err.contains("database_url"), "{err}");
            assert!(err.contains("postgress"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn malformed_toml_is_an_error() {
        Jail::expect_with(|jail| {
            let err = load_in_jail(jail, Some("bind = \n"))
                .unwrap_err()
                .to_string();
            assert!(!err.is_empty());
            Ok(())
        });
    }

    #[test]
    fn a_public_url_with_another_scheme_is_refused() {
        Jail::expect_with(|jail| {
            jail.set_env("PASSGATE_PUBLIC_URL", "ftp://example.com");
            let err = load_in_jail(jail, None).unwrap_err().to_string();
            assert!(err.contains("public_url"), "{err}");
            Ok(())
        });
    }
}
