//! Signing-key rotation (O7) as a scheduled job: rotates each tenant's keys when they are
//! due and deletes what has expired. Every node runs it; the per-tenant key lock and the
//! re-check inside it make a rotation happen once however many nodes notice it is due.

use std::sync::Arc;
use std::time::Duration;

use super::OidcCache;
use crate::clock::UtcTime;
use crate::config::OidcSettings;
use crate::crypto::MasterKey;
use crate::scheduler::{Job, JobFuture};
use crate::store::{Store, StoreError};

pub struct KeyRotation {
    pub master_key: Arc<MasterKey>,
    pub settings: OidcSettings,
    /// This node's cache of tenant keys, forgotten for a tenant whose keys rotated.
    pub cache: OidcCache,
}

impl KeyRotation {
    /// One pass over every tenant; returns how many tenants' keys were rotated.
    pub async fn run_once(&self, store: &Store, now: UtcTime) -> Result<usize, super::Error> {
        let tenants = store.read(crate::store::tenants::list_tenants).await?;
        let mut rotated = 0;
        for tenant in tenants {
            let (id, master_key, settings) = (
                tenant.id.clone(),
                self.master_key.clone(),
                self.settings.clone(),
            );
            let rotation = store
                .write(move |conn| {
                    super::keys::rotate_if_due(conn, &id, &master_key, &settings, now)
                })
                .await?;
            if let Some(rotation) = rotation {
                tracing::info!(tenant = %tenant.slug, new = ?rotation.new_kids, sign_from = %rotation.sign_from, "signing keys rotated");
                self.cache.forget_keys(&tenant.id);
                rotated += 1;
            }
        }
        store
            .write(move |conn| super::keys::delete_expired(conn, now))
            .await
            .map_err(|e: StoreError| super::Error::from(e))?;
        Ok(rotated)
    }
}

impl Job for KeyRotation {
    fn name(&self) -> &'static str {
        "signing-keys"
    }

    fn every(&self) -> Duration {
        self.settings.key_check_interval
    }

    fn run<'a>(&'a self, store: &'a Store, now: UtcTime) -> JobFuture<'a> {
        Box::pin(async move { self.run_once(store, now).await.map_err(|e| e.to_string()) })
    }
}
