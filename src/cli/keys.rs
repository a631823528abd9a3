use clap::Subcommand;

use crate::app::AppState;
use crate::oidc::{Lifetimes, keys};
use crate::tenants;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Replace a tenant's signing keys: the new ones are published now and sign after
    /// oidc.key_publish_lead; the old ones stay published until their tokens expire.
    Rotate {
        #[arg(long)]
        tenant: String,
        /// Sign with the new keys at once (after a suspected compromise): relying parties
        /// that cached the JWKS must refetch it.
        #[arg(long)]
        immediately: bool,
    },
    /// Withdraw one key at once (a compromised key): out of the JWKS now, the tokens it
    /// signed no longer verify; a new key signs in its place.
    Revoke {
        #[arg(long)]
        tenant: String,
        kid: String,
    },
}

pub fn run(state: &AppState, cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::Rotate {
            tenant,
            immediately,
        } => {
            let now = state.clock.now();
            let tenant_id = state
                .store
                .read_blocking(|conn| tenants::find_active_tenant(conn, &tenant))?
                .id;
            let lifetimes = Lifetimes::from_settings(&state.settings.oidc);
            let lead = if immediately {
                time::Duration::ZERO
            } else {
                time::Duration::try_from(state.settings.oidc.key_publish_lead)?
            };
            let rotation = state.store.write_blocking(|conn| {
                keys::rotate_keys(
                    conn,
                    &tenant_id,
                    &state.master_key,
                    &lifetimes,
                    lead,
                    crate::audit::Actor::Cli,
                    now,
                )
            })?;
            eprintln!(
                "rotated the keys of tenant '{tenant}': new keys sign from {}, old keys leave the JWKS at {}",
                rotation.sign_from, rotation.remove_at
            );
            super::print_json(&rotation)
        }
        KeysCommand::Revoke { tenant, kid } => {
            let now = state.clock.now();
            let tenant_id = state
                .store
                .read_blocking(|conn| tenants::find_active_tenant(conn, &tenant))?
                .id;
            let revoked = state.store.write_blocking(|conn| {
                keys::revoke_key(
                    conn,
                    &tenant_id,
                    &kid,
                    &state.master_key,
                    crate::audit::Actor::Cli,
                    now,
                )
            })?;
            let Some(revocation) = revoked else {
                anyhow::bail!("tenant '{tenant}' has no key '{kid}' in its JWKS");
            };
            eprintln!(
                "revoked key {kid} of tenant '{tenant}': it is out of the JWKS now, and every node drops it within a minute"
            );
            super::print_json(&revocation)
        }
    }
}
