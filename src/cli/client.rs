use clap::Subcommand;
use serde_json::json;

use crate::app::AppState;
use crate::oidc::clients::{self, NewClient};
use crate::tenants;

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client; prints {"client_id", "client_secret"} (the secret is shown once).
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        name: String,
        /// Exact redirect URI (https, or http on 127.0.0.1/[::1]); repeat for more.
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// A public client (SPA, native app): no secret, PKCE only.
        #[arg(long)]
        public: bool,
        /// A first-party client: users are not asked for consent.
        #[arg(long)]
        first_party: bool,
        /// authorization_code (default, with refresh_token) or client_credentials; repeatable.
        #[arg(long = "grant")]
        grants: Vec<String>,
        /// client_secret_basic (default) or client_secret_post.
        #[arg(long)]
        token_auth_method: Option<String>,
        /// An API scope beyond the OIDC ones, e.g. passgate:admin; repeatable.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// RS256 (default) or ES256.
        #[arg(long)]
        id_token_alg: Option<String>,
        /// Issue refresh tokens even without offline_access.
        #[arg(long)]
        always_refresh: bool,
    },
    /// List a tenant's clients, one JSON object per line.
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Delete a client; its codes, consents and refresh tokens go with it.
    Delete {
        #[arg(long)]
        tenant: String,
        client_id: String,
    },
    /// Give a confidential client a new secret; prints {"client_id", "client_secret"}.
    RotateSecret {
        #[arg(long)]
        tenant: String,
        client_id: String,
    },
}

fn tenant_id(state: &AppState, slug: &str) -> anyhow::Result<String> {
    Ok(state
        .store
        .read_blocking(|conn| tenants::find_active_tenant(conn, slug))?
        .id)
}

pub fn run(state: &AppState, cmd: ClientCommand) -> anyhow::Result<()> {
    let now = state.clock.now();
    match cmd {
        ClientCommand::Create {
            tenant,
            name,
            redirect_uris,
            post_logout_redirect_uris,
            public,
            first_party,
            grants,
            token_auth_method,
            scopes,
            id_token_alg,
            always_refresh,
        } => {
            let tenant_id = tenant_id(state, &tenant)?;
            let new = NewClient {
                name,
                redirect_uris,
                post_logout_redirect_uris,
                is_public: public,
                is_first_party: first_party,
                grant_types: grants,
                auth_method: token_auth_method,
                extra_scopes: scopes,
                id_token_alg,
                is_refresh_always_issued: always_refresh,
            };
            let issued = state.store.write_blocking(|conn| {
                let issued = clients::create_client(conn, &tenant_id, &new, now)?;
                audit_client_change(conn, &tenant_id, "client.created", &issued.client_id, now)?;
                Ok::<_, anyhow::Error>(issued)
            })?;
            eprintln!(
                "registered client '{}' in tenant '{tenant}'",
                new.name.trim()
            );
            super::print_json(&issued)
        }
        ClientCommand::List { tenant } => {
            let tenant_id = tenant_id(state, &tenant)?;
            let all = state
                .store
                .read_blocking(|conn| clients::list_clients(conn, &tenant_id))?;
            for row in all {
                let list =
                    |raw: &str| serde_json::from_str::<serde_json::Value>(raw).unwrap_or_default();
                super::print_json(&json!({
                    "client_id": row.id,
                    "name": row.name,
                    "public": row.is_public,
                    "first_party": row.is_first_party,
                    "token_auth_method": row.token_endpoint_auth_method,
                    "redirect_uris": list(&row.redirect_uris),
                    "post_logout_redirect_uris": list(&row.post_logout_redirect_uris),
                    "grant_types": list(&row.grant_types),
                    "scopes": list(&row.scopes),
                    "id_token_alg": row.id_token_signed_response_alg,
                }))?;
            }
            Ok(())
        }
        ClientCommand::Delete { tenant, client_id } => {
            let tenant_id = tenant_id(state, &tenant)?;
            if !state.store.write_blocking(|conn| {
                let deleted = clients::delete_client(conn, &tenant_id, &client_id)?;
                if deleted {
                    audit_client_change(conn, &tenant_id, "client.deleted", &client_id, now)?;
                }
                Ok::<_, anyhow::Error>(deleted)
            })? {
                anyhow::bail!("no client '{client_id}' in tenant '{tenant}'");
            }
            eprintln!("deleted client '{client_id}'");
            Ok(())
        }
        ClientCommand::RotateSecret { tenant, client_id } => {
            let tenant_id = tenant_id(state, &tenant)?;
            let issued = state.store.write_blocking(|conn| {
                let issued = clients::rotate_secret(conn, &tenant_id, &client_id, now)?;
                audit_client_change(conn, &tenant_id, "client.secret_rotated", &client_id, now)?;
                Ok::<_, anyhow::Error>(issued)
            })?;
            eprintln!("new secret for client '{client_id}'; the old one no longer works");
            super::print_json(&issued)
        }
    }
}

/// Client changes are audited in the transaction that makes them (A1).
fn audit_client_change(
    conn: &mut crate::store::DbConn,
    tenant_id: &str,
    event_type: &'static str,
    client_id: &str,
    now: crate::clock::UtcTime,
) -> Result<(), crate::store::StoreError> {
    crate::audit::record(
        conn,
        crate::audit::Record {
            tenant_id,
            event_type,
            actor: crate::audit::Actor::Cli,
            subject_user_id: None,
            client: None,
            details: json!({ "client_id": client_id }),
            needs_review: false,
        },
        now,
    )
}
