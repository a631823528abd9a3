use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable, Text, Timestamp};
use time::PrimitiveDateTime;

use super::prepared::{bind, prepared};
use super::schema::passkeys;
use super::{DbConn, StoreResult, per_backend};

/// P1: every stored field of a passkey. `credential` is the verifier's state (webauthn-rs
/// `Credential` JSON); the columns beside it are the source of truth for counter and flags.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = passkeys)]
pub struct Passkey {
    pub id: String,
    pub tenant_id: String,
    pub user_id: String,
    /// base64url, unique across every user and tenant.
    pub credential_id: String,
    /// The COSE public key.
    pub public_key: Vec<u8>,
    pub sign_count: i64,
    pub aaguid: String,
    /// JSON array of transports (`usb`, `nfc`, `ble`, `internal`, `hybrid`).
    pub transports: String,
    pub backup_eligible: bool,
    pub backup_state: bool,
    pub user_verified: bool,
    pub attestation_format: String,
    pub label: String,
    pub credential: String,
    pub enrolled_via: String,
    pub created_at: PrimitiveDateTime,
    pub last_used_at: Option<PrimitiveDateTime>,
    pub counter_flagged_at: Option<PrimitiveDateTime>,
}

pub fn insert_passkey(conn: &mut DbConn, passkey: &Passkey) -> StoreResult<()> {
    diesel::insert_into(passkeys::table)
        .values(passkey)
        .execute(conn)?;
    Ok(())
}

pub fn list_user_passkeys(
    conn: &mut DbConn,
    tenant_id: &str,
    user_id: &str,
) -> StoreResult<Vec<Passkey>> {
    Ok(per_backend!(conn, |c| passkeys::table
        .filter(passkeys::tenant_id.eq(tenant_id))
        .filter(passkeys::user_id.eq(user_id))
        .order(passkeys::created_at.asc())
        .select(Passkey::as_select())
        .load(c))?)
}

/// Credential ids are unique across tenants, so this finds at most one passkey anywhere.
pub fn find_passkey_by_credential_id(
    conn: &mut DbConn,
    credential_id: &str,
) -> StoreResult<Option<Passkey>> {
    Ok(passkeys::table
        .filter(passkeys::credential_id.eq(credential_id))
        .select(Passkey::as_select())
        .first(conn)
        .optional()?)
}

pub fn find_user_passkey(
    conn: &mut DbConn,
    tenant_id: &str,
    user_id: &str,
    id: &str,
) -> StoreResult<Option<Passkey>> {
    Ok(passkeys::table
        .filter(passkeys::tenant_id.eq(tenant_id))
        .filter(passkeys::user_id.eq(user_id))
        .filter(passkeys::id.eq(id))
        .select(Passkey::as_select())
        .first(conn)
        .optional()?)
}

/// What a successful assertion changes.
#[derive(Debug, Clone)]
pub struct PasskeyUse {
    pub sign_count: i64,
    pub backup_eligible: bool,
    pub backup_state: bool,
    pub last_used_at: Option<PrimitiveDateTime>,
    pub counter_flagged_at: Option<PrimitiveDateTime>,
}

/// Records a use, but only if the counter is still the one the assertion was checked
/// against: two concurrent uses of one counter cannot both pass. Returns rows changed.
pub fn update_passkey_use(
    conn: &mut DbConn,
    id: &str,
    expected_sign_count: i64,
    change: &PasskeyUse,
) -> StoreResult<usize> {
    Ok(per_backend!(conn, |c| prepared![
        "UPDATE passkeys SET sign_count = ", ", backup_eligible = ", ", backup_state = ",
        ", last_used_at = ", ", counter_flagged_at = ", " WHERE id = ", " AND sign_count = ", "";
        bind::<BigInt, _>(change.sign_count),
        bind::<Bool, _>(change.backup_eligible),
        bind::<Bool, _>(change.backup_state),
        bind::<Nullable<Timestamp>, _>(change.last_used_at),
        bind::<Nullable<Timestamp>, _>(change.counter_flagged_at),
        bind::<Text, _>(id),
        bind::<BigInt, _>(expected_sign_count)
    ]
    .execute(c))?)
}

pub fn rename_passkey(
    conn: &mut DbConn,
    tenant_id: &str,
    user_id: &str,
    id: &str,
    label: &str,
) -> StoreResult<usize> {
    Ok(diesel::update(passkeys::table)
        .filter(passkeys::tenant_id.eq(tenant_id))
        .filter(passkeys::user_id.eq(user_id))
        .filter(passkeys::id.eq(id))
        .set(passkeys::label.eq(label))
        .execute(conn)?)
}

pub fn delete_passkey(
    conn: &mut DbConn,
    tenant_id: &str,
    user_id: &str,
    id: &str,
) -> StoreResult<usize> {
    Ok(diesel::delete(
        passkeys::table
            .filter(passkeys::tenant_id.eq(tenant_id))
            .filter(passkeys::user_id.eq(user_id))
            .filter(passkeys::id.eq(id)),
    )
    .execute(conn)?)
}

pub fn count_user_passkeys(conn: &mut DbConn, tenant_id: &str, user_id: &str) -> StoreResult<i64> {
    Ok(passkeys::table
        .filter(passkeys::tenant_id.eq(tenant_id))
        .filter(passkeys::user_id.eq(user_id))
        .count()
        .get_result(conn)?)
}

/// Revokes every passkey of a user (admin recovery after a lost or stolen device).
pub fn delete_user_passkeys(
    conn: &mut DbConn,
    tenant_id: &str,
    user_id: &str,
) -> StoreResult<usize> {
    Ok(diesel::delete(
        passkeys::table
            .filter(passkeys::tenant_id.eq(tenant_id))
            .filter(passkeys::user_id.eq(user_id)),
    )
    .execute(conn)?)
}
