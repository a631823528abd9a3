use std::io::Read;

use clap::Subcommand;
use serde_json::json;

use crate::app::AppState;
use crate::audit::Actor;
use crate::enrollment;
use crate::passwords;
use crate::tenants;
use crate::users::{self, Email, NewAccount, Role, UserStatus};

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an active user; prints {"user_id", "email", "role"}.
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "member", value_parser = parse_role)]
        role: Role,
        #[arg(long)]
        name: Option<String>,
        /// Read a password from standard input (never from the command line).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Invite a person to enroll a passkey; prints {"user_id", "enrollment_url"}.
    Invite {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "member", value_parser = parse_role)]
        role: Role,
    },
    /// List a tenant's users, one JSON object per line.
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Start an admin-assisted recovery: prints {"user_id", "recovery_url", "expires_at"}; the
    /// link is also mailed to the user.
    Recover {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
        /// The device was lost or stolen: revoke the user's passkeys and sessions now.
        #[arg(long)]
        revoke_passkeys: bool,
    },
}

fn parse_role(raw: &str) -> Result<Role, String> {
    Role::parse(raw).ok_or_else(|| format!("unknown role '{raw}': use owner, admin or member"))
}

pub fn run(state: &AppState, cmd: UserCommand) -> anyhow::Result<()> {
    let now = state.clock.now();
    match cmd {
        UserCommand::Create {
            tenant,
            email,
            role,
            name,
            password_stdin,
        } => {
            let email = Email::parse(&email)?;
            let hash = if password_stdin {
                let mut password = String::new();
                std::io::stdin().read_to_string(&mut password)?;
                let password = password.trim_end_matches(['\r', '\n']);
                Some(passwords::hash_password_blocking(password)?)
            } else {
                None
            };
            let user = state.store.write_blocking(|conn| {
                let tenant = tenants::find_active_tenant(conn, &tenant)?;
                let account = NewAccount {
                    email: &email,
                    role,
                    display_name: name.as_deref(),
                    status: UserStatus::Active,
                    password_hash: hash.as_deref(),
                };
                Ok::<_, anyhow::Error>(users::create_user(conn, &tenant.id, account, now)?)
            })?;
            eprintln!("created user {}", user.email);
            super::print_json(
                &json!({ "user_id": user.id, "email": user.email, "role": user.role }),
            )
        }
        UserCommand::Invite {
            tenant,
            email,
            role,
        } => {
            let email = Email::parse(&email)?;
            let link = state.store.write_blocking(|conn| {
                let tenant = tenants::find_active_tenant(conn, &tenant)?;
                Ok::<_, anyhow::Error>(enrollment::invite_user(
                    conn,
                    &tenant,
                    &email,
                    role,
                    &state.settings,
                    Actor::Cli,
                    now,
                )?)
            })?;
            let user_id = link.user.map(|u| u.id).unwrap_or_default();
            eprintln!(
                "invitation for {email} valid for {}",
                humantime_serde::re::humantime::format_duration(state.settings.invitation_ttl)
            );
            super::print_json(&json!({ "user_id": user_id, "enrollment_url": link.url }))
        }
        UserCommand::Recover {
            tenant,
            email,
            revoke_passkeys,
        } => {
            let email = Email::parse(&email)?;
            let started = state.store.write_blocking(|conn| {
                let tenant = tenants::find_active_tenant(conn, &tenant)?;
                let user =
                    crate::store::users::find_user_by_email(conn, &tenant.id, email.as_str())?
                        .ok_or_else(|| {
                            anyhow::anyhow!("no user {email} in tenant '{}'", tenant.slug)
                        })?;
                Ok::<_, anyhow::Error>(crate::recovery::links::start_admin_recovery(
                    conn,
                    &tenant,
                    &crate::admin::AdminActor::Cli,
                    &user.id,
                    revoke_passkeys,
                    &state.settings,
                    now,
                )?)
            })?;
            eprintln!(
                "recovery link for {} (also mailed){}",
                started.user.email,
                if started.passkeys_revoked > 0 {
                    format!("; {} passkey(s) revoked", started.passkeys_revoked)
                } else {
                    String::new()
                }
            );
            super::print_json(&json!({
                "user_id": started.user.id,
                "recovery_url": started.link.url,
                "expires_at": started.expires_at.assume_utc().format(&time::format_description::well_known::Rfc3339)?,
                "passkeys_revoked": started.passkeys_revoked,
            }))
        }
        UserCommand::List { tenant } => {
            let all = state.store.read_blocking(|conn| {
                let tenant = tenants::find_active_tenant(conn, &tenant)?;
                Ok::<_, anyhow::Error>(crate::store::users::list_users(conn, &tenant.id)?)
            })?;
            for user in all {
                super::print_json(&json!({
                    "user_id": user.id,
                    "email": user.email,
                    "role": user.role,
                    "status": user.status,
                }))?;
            }
            Ok(())
        }
    }
}
