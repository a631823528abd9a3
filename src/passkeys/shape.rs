//! What makes a response name one credential, in one well-formed piece, before anything in it
//! is believed (issue 20 #12, #14).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// WebAuthn L3 §6.1: rpIdHash (32) ‖ flags (1) ‖ signCount (4).
const HEADER: usize = 37;
const FLAG_AT: u8 = 0x40;
const FLAG_ED: u8 = 0x80;

/// WebAuthn L3 §6.1: authenticator data is exactly its header, the attested credential data
/// when the AT flag says so (§6.5.2: AAGUID, credential id length and id, the COSE key) and the
/// extensions when the ED flag says so — one CBOR map. Bytes beyond what the flags declare make
/// it malformed, even when the signature covers them.
pub fn is_exact_authenticator_data(data: &[u8]) -> bool {
    let Some(&flags) = data.get(32) else {
        return false;
    };
    let Some(mut rest) = data.get(HEADER..) else {
        return false;
    };
    if flags & FLAG_AT != 0 {
        let Some(length) = rest.get(16..18) else {
            return false;
        };
        let id_end = 18 + usize::from(u16::from_be_bytes([length[0], length[1]]));
        let Some(after_id) = rest.get(id_end..) else {
            return false;
        };
        rest = after_id;
        if !skip_cbor_value(&mut rest) {
            return false;
        }
    }
    if flags & FLAG_ED != 0 && !skip_cbor_value(&mut rest) {
        return false;
    }
    rest.is_empty()
}

/// The credential id in the attested credential data, if the AT flag is set.
pub fn attested_credential_id(data: &[u8]) -> Option<&[u8]> {
    if data.get(32)? & FLAG_AT == 0 {
        return None;
    }
    let rest = data.get(HEADER..)?;
    let length = rest.get(16..18)?;
    rest.get(18..18 + usize::from(u16::from_be_bytes([length[0], length[1]])))
}

/// Reads one CBOR value off the front of `rest`.
fn skip_cbor_value(rest: &mut &[u8]) -> bool {
    ciborium::from_reader::<ciborium::Value, _>(&mut *rest).is_ok()
}

/// WebAuthn L3 §5.1: a credential's `id` is its `rawId` in base64url, and its type is
/// `public-key`; a request whose two names differ names no credential unambiguously.
pub fn names_one_credential(id: &str, raw_id: &[u8], type_: &str) -> bool {
    type_ == "public-key" && id == URL_SAFE_NO_PAD.encode(raw_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(flags: u8) -> Vec<u8> {
        let mut data = vec![7u8; 32];
        data.push(flags);
        data.extend_from_slice(&[0, 0, 0, 1]);
        data
    }

    fn cbor(value: &ciborium::Value) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(value, &mut out).unwrap();
        out
    }

    fn attested(credential_id: &[u8]) -> Vec<u8> {
        let mut data = header(0x41);
        data.extend_from_slice(&[0u8; 16]);
        data.extend_from_slice(&(credential_id.len() as u16).to_be_bytes());
        data.extend_from_slice(credential_id);
        let key = ciborium::Value::Map(vec![(1.into(), 2.into()), (3.into(), (-7).into())]);
        data.extend(cbor(&key));
        data
    }

    #[test]
    fn authenticator_data_is_exactly_what_its_flags_declare() {
        let extensions = cbor(&ciborium::Value::Map(vec![(
            "credProtect".into(),
            1.into(),
        )]));
        let with_extensions = [header(0x81), extensions.clone()].concat();
        let table: [(&str, Vec<u8>, bool); 9] = [
            ("header only", header(0x01), true),
            (
                "header and 8 bytes more",
                [header(0x01), vec![0; 8]].concat(),
                false,
            ),
            ("short header", header(0x01)[..36].to_vec(), false),
            ("extensions as ED declares", with_extensions.clone(), true),
            ("ED without extensions", header(0x81), false),
            (
                "extensions without ED",
                [header(0x01), extensions].concat(),
                false,
            ),
            (
                "bytes after the extensions",
                [with_extensions, vec![1]].concat(),
                false,
            ),
            ("attested credential data", attested(b"cred-1"), true),
            (
                "bytes after the COSE key",
                [attested(b"cred-1"), vec![0xff]].concat(),
                false,
            ),
        ];
        for (case, data, exact) in table {
            assert_eq!(is_exact_authenticator_data(&data), exact, "{case}");
        }
        assert_eq!(
            attested_credential_id(&attested(b"cred-1")),
            Some(&b"cred-1"[..])
        );
        assert_eq!(attested_credential_id(&header(0x01)), None);
    }

    #[test]
    fn a_credential_is_named_by_one_id_of_type_public_key() {
        let raw = b"\x01\x02\x03";
        let id = URL_SAFE_NO_PAD.encode(raw);
        assert!(names_one_credential(&id, raw, "public-key"));
        assert!(!names_one_credential("AQID_other", raw, "public-key"));
        assert!(!names_one_credential(&id, raw, "password"));
        assert!(!names_one_credential(&id, b"\x01\x02", "public-key"));
    }
}
