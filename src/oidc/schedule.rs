//! The per-node maintenance task: rotates signing keys when they are due and deletes what
//! has expired. Every node runs it; the per-tenant key lock and the re-check inside it make
//! a rotation happen once however many nodes notice it is due.

use crate::app::AppState;
use crate::store::StoreError;

/// Runs until the server stops (see `Application::run_until_stopped`).
pub async fn run(state: AppState) {
    let every = state.settings.oidc.key_check_interval;
    loop {
        if let Err(e) = run_once(&state).await {
            tracing::warn!(error = %e, "key maintenance failed; retrying at the next check");
        }
        tokio::time::sleep(every).await;
    }
}

/// One pass over every tenant; returns how many tenants' keys were rotated.
pub async fn run_once(state: &AppState) -> Result<usize, super::Error> {
    let now = state.clock.now();
    let tenants = state
        .store
        .read(crate::store::tenants::list_tenants)
        .await?;
    let mut rotated = 0;
    for tenant in tenants {
        let (id, master_key, settings) = (
            tenant.id.clone(),
            state.master_key.clone(),
            state.settings.oidc.clone(),
        );
        let rotation = state
            .store
            .write(move |conn| super::keys::rotate_if_due(conn, &id, &master_key, &settings, now))
            .await?;
        if let Some(rotation) = rotation {
            tracing::info!(tenant = %tenant.slug, new = ?rotation.new_kids, sign_from = %rotation.sign_from, "signing keys rotated");
            state.oidc.forget_keys(&tenant.id);
            rotated += 1;
        }
    }
    state
        .store
        .write(move |conn| super::keys::delete_expired(conn, now))
        .await
        .map_err(|e: StoreError| super::Error::from(e))?;
    Ok(rotated)
}
