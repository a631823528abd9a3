//! What every node keeps in memory, each entry short-lived or invalidated on change, so a
//! stale value is harmless (DESIGN "state that must survive any one node"): decrypted signing
//! keys with their pre-serialised JWKS, clients, the CORS origins of public clients, and the
//! discovery documents.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::clients::Client;
use super::keys::TenantKeys;
use crate::clock::UtcTime;

/// Keys change rarely and are published ahead of use, so a minute of staleness on another
/// node is covered by the publish lead.
const KEYS_TTL: Duration = Duration::from_secs(60);
/// A deleted client or rotated secret stops working on other nodes within this time.
const CLIENT_TTL: Duration = Duration::from_secs(10);
const MAX_ENTRIES: usize = 10_000;

/// An entry that expires a fixed time after it was loaded.
type Timed<T> = (Arc<T>, Instant);
/// `(tenant id, client id)`.
type ClientKey = (String, String);

#[derive(Clone, Default)]
pub struct OidcCache {
    keys: Arc<RwLock<HashMap<String, Arc<TenantKeys>>>>,
    clients: Arc<RwLock<HashMap<ClientKey, Timed<Client>>>>,
    origins: Arc<RwLock<HashMap<String, Timed<HashSet<String>>>>>,
    discovery: Arc<RwLock<HashMap<String, bytes::Bytes>>>,
}

fn insert_bounded<K: std::hash::Hash + Eq, V>(map: &RwLock<HashMap<K, V>>, key: K, value: V) {
    if let Ok(mut map) = map.write() {
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(key, value);
    }
}

impl OidcCache {
    pub fn keys(&self, tenant_id: &str, now: UtcTime) -> Option<Arc<TenantKeys>> {
        let keys = self.keys.read().ok()?.get(tenant_id).cloned()?;
        let fresh = keys.loaded_at.elapsed() < KEYS_TTL && keys.valid_until.is_none_or(|t| now < t);
        fresh.then_some(keys)
    }

    pub fn put_keys(&self, tenant_id: &str, keys: Arc<TenantKeys>) {
        insert_bounded(&self.keys, tenant_id.to_string(), keys);
    }

    /// After a rotation on this node.
    pub fn forget_keys(&self, tenant_id: &str) {
        if let Ok(mut map) = self.keys.write() {
            map.remove(tenant_id);
        }
    }

    pub fn client(&self, tenant_id: &str, client_id: &str) -> Option<Arc<Client>> {
        let map = self.clients.read().ok()?;
        let (client, at) = map.get(&(tenant_id.to_string(), client_id.to_string()))?;
        (at.elapsed() < CLIENT_TTL).then(|| client.clone())
    }

    pub fn put_client(&self, client: Arc<Client>) {
        let key = (client.tenant_id.clone(), client.id.clone());
        insert_bounded(&self.clients, key, (client, Instant::now()));
    }

    /// After a client changed on this node (deleted, secret rotated, registered).
    pub fn forget_client(&self, tenant_id: &str, client_id: &str) {
        if let Ok(mut map) = self.clients.write() {
            map.remove(&(tenant_id.to_string(), client_id.to_string()));
        }
        if let Ok(mut map) = self.origins.write() {
            map.remove(tenant_id);
        }
    }

    pub fn origins(&self, tenant_id: &str) -> Option<Arc<HashSet<String>>> {
        let map = self.origins.read().ok()?;
        let (origins, at) = map.get(tenant_id)?;
        (at.elapsed() < CLIENT_TTL).then(|| origins.clone())
    }

    pub fn put_origins(&self, tenant_id: &str, origins: Arc<HashSet<String>>) {
        insert_bounded(
            &self.origins,
            tenant_id.to_string(),
            (origins, Instant::now()),
        );
    }

    /// Discovery depends only on the settings and the tenant's slug, so it never goes stale.
    pub fn discovery(&self, slug: &str) -> Option<bytes::Bytes> {
        self.discovery.read().ok()?.get(slug).cloned()
    }

    pub fn put_discovery(&self, slug: &str, document: bytes::Bytes) {
        insert_bounded(&self.discovery, slug.to_string(), document);
    }
}
