use clap::Subcommand;
use serde_json::json;

use crate::app::AppState;
use crate::tenants::{self, Slug};

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant; prints {"id", "slug", "name", "issuer"}.
    Create {
        /// 2-63 lowercase letters, digits and '-'.
        slug: String,
        /// Display name (default: the slug).
        #[arg(long)]
        name: Option<String>,
    },
    /// List tenants, one JSON object per line.
    List,
    /// Set the address the tenant's mail comes from ("-" for the installation's mail_from).
    SetMailFrom { slug: String, address: String },
    /// Show a tenant's policy (JSON).
    PolicyGet { slug: String },
    /// Replace a tenant's policy with the JSON document in FILE ("-" for standard input).
    PolicySet {
        slug: String,
        file: std::path::PathBuf,
    },
}

pub fn run(state: &AppState, cmd: TenantCommand) -> anyhow::Result<()> {
    match cmd {
        TenantCommand::Create { slug, name } => {
            let slug = Slug::parse(&slug)?;
            let now = state.clock.now();
            let tenant = state
                .store
                .write_blocking(|conn| tenants::create_tenant(conn, &slug, name.as_deref(), now))?;
            eprintln!("created tenant '{}'", tenant.slug);
            super::print_json(&json!({
                "id": tenant.id,
                "slug": tenant.slug,
                "name": tenant.name,
                "issuer": state.settings.issuer(&tenant.slug),
            }))
        }
        TenantCommand::PolicyGet { slug } => {
            let policy = state.store.read_blocking(|conn| {
                let tenant = tenants::find_active_tenant(conn, &slug)?;
                Ok::<_, anyhow::Error>(crate::policy::load(conn, &tenant.id)?)
            })?;
            println!("{}", serde_json::to_string_pretty(&policy)?);
            Ok(())
        }
        TenantCommand::PolicySet { slug, file } => {
            let document = if file.as_os_str() == "-" {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
                s
            } else {
                std::fs::read_to_string(&file)?
            };
            let policy = crate::policy::parse(&document)?;
            let now = state.clock.now();
            state.store.write_blocking(|conn| {
                let tenant = tenants::find_active_tenant(conn, &slug)?;
                crate::policy::save(conn, &tenant.id, &policy, None, now)?;
                crate::audit::record(
                    conn,
                    crate::audit::Record {
                        tenant_id: &tenant.id,
                        event_type: "policy.changed",
                        actor: crate::audit::Actor::Cli,
                        subject_user_id: None,
                        client: None,
                        details: serde_json::to_value(&policy)?,
                        needs_review: false,
                    },
                    now,
                )?;
                Ok::<_, anyhow::Error>(())
            })?;
            eprintln!("policy of '{slug}' updated");
            Ok(())
        }
        TenantCommand::SetMailFrom { slug, address } => {
            let address = (address != "-").then_some(address);
            let now = state.clock.now();
            state.store.write_blocking(|conn| {
                let tenant = tenants::find_active_tenant(conn, &slug)?;
                tenants::set_mail_from(conn, &tenant, address.as_deref(), now)?;
                Ok::<_, anyhow::Error>(())
            })?;
            eprintln!(
                "mail of '{slug}' now comes from {}",
                address.as_deref().unwrap_or(&state.settings.mail_from)
            );
            Ok(())
        }
        TenantCommand::List => {
            let all = state.store.read_blocking(tenants::list_tenants)?;
            for tenant in all {
                super::print_json(&json!({
                    "id": tenant.id,
                    "slug": tenant.slug,
                    "name": tenant.name,
                    "issuer": state.settings.issuer(&tenant.slug),
                    "mail_from": tenant.mail_from,
                    "created_at": tenant.created_at.assume_utc().format(&time::format_description::well_known::Rfc3339)?,
                }))?;
            }
            Ok(())
        }
    }
}
