use clap::Subcommand;
use serde_json::json;

use crate::app::AppState;
use crate::audit::{self, Filter};
use crate::tenants;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// The tenant's security log, newest first, one JSON object per line.
    List {
        #[arg(long)]
        tenant: String,
        /// Only events flagged for review and not reviewed yet.
        #[arg(long)]
        needs_review: bool,
        /// Only events at or after this RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Mark an event reviewed (recorded with who and when).
    Review {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        id: String,
        #[arg(long)]
        note: Option<String>,
    },
}

pub fn run(state: &AppState, cmd: AuditCommand) -> anyhow::Result<()> {
    match cmd {
        AuditCommand::List {
            tenant,
            needs_review,
            since,
            limit,
        } => {
            let since = since.as_deref().map(audit::parse_since).transpose()?;
            let filter = Filter {
                needs_review,
                since,
                limit: Some(audit::parse_limit(limit)?),
            };
            let events = state.store.read_blocking(|conn| {
                let tenant = tenants::find_active_tenant(conn, &tenant)?;
                Ok::<_, anyhow::Error>(audit::list(conn, &tenant.id, &filter)?)
            })?;
            for event in events {
                super::print_json(&event)?;
            }
            Ok(())
        }
        AuditCommand::Review { tenant, id, note } => {
            let now = state.clock.now();
            let found = state.store.write_blocking(|conn| {
                let tenant = tenants::find_active_tenant(conn, &tenant)?;
                Ok::<_, anyhow::Error>(audit::mark_reviewed(
                    conn,
                    &tenant.id,
                    &id,
                    "cli",
                    note.as_deref(),
                    now,
                )?)
            })?;
            if !found {
                anyhow::bail!("no audit event {id} in that tenant");
            }
            super::print_json(&json!({ "id": id, "reviewed": true }))
        }
    }
}
