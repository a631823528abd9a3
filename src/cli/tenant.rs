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
        TenantCommand::List => {
            let all = state.store.read_blocking(tenants::list_tenants)?;
            for tenant in all {
                super::print_json(&json!({
                    "id": tenant.id,
                    "slug": tenant.slug,
                    "name": tenant.name,
                    "issuer": state.settings.issuer(&tenant.slug),
                    "created_at": tenant.created_at.assume_utc().format(&time::format_description::well_known::Rfc3339)?,
                }))?;
            }
            Ok(())
        }
    }
}
