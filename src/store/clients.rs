//! OIDC clients (relying parties) of a tenant. List-valued columns hold JSON arrays.

use diesel::prelude::*;
use time::PrimitiveDateTime;

use super::schema::oidc_clients;
use super::{DbConn, StoreResult};

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = oidc_clients)]
pub struct OidcClient {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    /// SHA-256 hex of the secret; `None` for public clients.
    pub secret_hash: Option<String>,
    pub is_public: bool,
    pub is_first_party: bool,
    pub token_endpoint_auth_method: String,
    pub redirect_uris: String,
    pub post_logout_redirect_uris: String,
    pub grant_types: String,
    pub scopes: String,
    pub id_token_signed_response_alg: String,
    pub is_refresh_always_issued: bool,
    pub created_at: PrimitiveDateTime,
    pub updated_at: PrimitiveDateTime,
    pub secret_rotated_at: Option<PrimitiveDateTime>,
}

pub fn insert_client(conn: &mut DbConn, client: &OidcClient) -> StoreResult<()> {
    diesel::insert_into(oidc_clients::table)
        .values(client)
        .execute(conn)?;
    Ok(())
}

pub fn find_client(
    conn: &mut DbConn,
    tenant_id: &str,
    id: &str,
) -> StoreResult<Option<OidcClient>> {
    Ok(oidc_clients::table
        .filter(oidc_clients::tenant_id.eq(tenant_id))
        .filter(oidc_clients::id.eq(id))
        .select(OidcClient::as_select())
        .first(conn)
        .optional()?)
}

pub fn list_clients(conn: &mut DbConn, tenant_id: &str) -> StoreResult<Vec<OidcClient>> {
    Ok(oidc_clients::table
        .filter(oidc_clients::tenant_id.eq(tenant_id))
        .order(oidc_clients::created_at.asc())
        .select(OidcClient::as_select())
        .load(conn)?)
}

/// The redirect URIs of the tenant's public clients, as stored (JSON arrays): their origins
/// are the only ones allowed to call the CORS-enabled endpoints.
pub fn find_public_redirect_uris(conn: &mut DbConn, tenant_id: &str) -> StoreResult<Vec<String>> {
    Ok(oidc_clients::table
        .filter(oidc_clients::tenant_id.eq(tenant_id))
        .filter(oidc_clients::is_public.eq(true))
        .select(oidc_clients::redirect_uris)
        .load(conn)?)
}

pub fn delete_client(conn: &mut DbConn, tenant_id: &str, id: &str) -> StoreResult<usize> {
    Ok(diesel::delete(
        oidc_clients::table
            .filter(oidc_clients::tenant_id.eq(tenant_id))
            .filter(oidc_clients::id.eq(id)),
    )
    .execute(conn)?)
}

pub fn update_client_secret(
    conn: &mut DbConn,
    tenant_id: &str,
    id: &str,
    secret_hash: &str,
    now: PrimitiveDateTime,
) -> StoreResult<usize> {
    Ok(diesel::update(oidc_clients::table)
        .filter(oidc_clients::tenant_id.eq(tenant_id))
        .filter(oidc_clients::id.eq(id))
        .set((
            oidc_clients::secret_hash.eq(secret_hash),
            oidc_clients::secret_rotated_at.eq(now),
            oidc_clients::updated_at.eq(now),
        ))
        .execute(conn)?)
}
