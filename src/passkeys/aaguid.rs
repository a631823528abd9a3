//! P9: authenticators are shown by name, looked up by the AAGUID they report. The table is
//! data (`src/passkeys/aaguids.json`, with its source named inside).

use std::collections::HashMap;
use std::sync::LazyLock;

static NAMES: LazyLock<HashMap<String, String>> = LazyLock::new(|| {
    let parsed: HashMap<String, String> =
        serde_json::from_str(include_str!("aaguids.json")).unwrap_or_default();
    parsed
        .into_iter()
        .filter(|(k, _)| !k.starts_with('_'))
        .collect()
});

/// The all-zero AAGUID: the authenticator did not say (or attestation `none` hid it).
pub const UNKNOWN: &str = "00000000-0000-0000-0000-000000000000";

/// The authenticator's name, or a generic one from what we know about the passkey.
pub fn authenticator_name(aaguid: &str, backup_eligible: bool) -> String {
    match NAMES.get(&aaguid.to_ascii_lowercase()) {
        Some(name) => name.clone(),
        None if backup_eligible => "Synced passkey".to_string(),
        None => "Security key or device passkey".to_string(),
    }
}

pub fn format_aaguid(bytes: &[u8]) -> String {
    uuid::Uuid::from_slice(bytes)
        .map(|u| u.to_string())
        .unwrap_or_else(|_| UNKNOWN.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_authenticators_have_names() {
        assert_eq!(
            authenticator_name("FBFC3007-154E-4ECC-8C0B-6E020557D7BD", true),
            "iCloud Keychain"
        );
        assert_eq!(
            authenticator_name("cb69481e-8ff7-4039-93ec-0a2729a154a8", false),
            "YubiKey 5 Series"
        );
        assert_eq!(authenticator_name(UNKNOWN, true), "Synced passkey");
        assert!(NAMES.len() > 20, "the data file parsed");
    }
}
