//! The account page (P9, P10), first-run setup and sensitive-role policies (P8).

use serde_json::{Value, json};

use crate::authenticator::Crafted;
use crate::backend_test;
use crate::browser::{Browser, attribute};
use crate::harness::TestApp;
use passgate::users::Role;

async fn enrolled(
    app: &TestApp,
    tenant: &passgate::store::tenants::Tenant,
    email: &str,
    role: Role,
) -> (Browser, Crafted) {
    let token = app.invite(tenant, email, role).await;
    let browser = Browser::new(app);
    let mut key = Crafted::new(&app.address);
    let res = browser.enroll(&tenant.slug, &token, &mut key).await;
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    (browser, key)
}

/// Adds a passkey from the account page, as its "Add a passkey" button does.
async fn add_passkey(browser: &Browser, tenant: &str, key: &mut Crafted) -> reqwest::Response {
    let csrf = browser.csrf(&format!("/t/{tenant}/account")).await;
    let start = browser
        .post_json(
            &format!("/t/{tenant}/api/passkeys/start"),
            &csrf,
            &json!({}),
        )
        .await;
    assert_eq!(start.status(), 200);
    let start: Value = start.json().await.unwrap();
    let credential = key.register(&start["publicKey"]);
    browser
        .post_json(
            &format!("/t/{tenant}/api/passkeys/finish"),
            &csrf,
            &json!({ "ceremony_id": start["ceremony_id"], "credential": credential, "label": "Backup key" }),
        )
        .await
}

backend_test! {
    /// P9, P10, C6: passkeys are listed by authenticator name; a single passkey gets the nudge;
    /// a second can be added (its id excluded from nothing else), renamed and removed.
    async fn the_account_page_lists_renames_adds_and_removes_passkeys(backend) {
        let app = TestApp::spawn(backend).await;
        let tenant = app.create_tenant("acme").await;
        let (browser, mut first) = {
            let token = app.invite(&tenant, "alice@example.com", Role::Member).await;
            let browser = Browser::new(&app);
            let mut key = Crafted::new(&app.address);
            key.aaguid = uuid::Uuid::parse_str("cb69481e-8ff7-4039-93ec-0a2729a154a8").unwrap().into_bytes();
            browser.enroll("acme", &token, &mut key).await;
            (browser, key)
        };
        let page = browser.page("/t/acme/account").await;
        assert!(page.contains("YubiKey 5 Series"), "named from its AAGUID");
        assert!(page.contains("id=\"nudge\""), "one passkey: nudged to add a second");

        // The existing passkey is excluded from the new ceremony.
        let csrf = browser.csrf("/t/acme/account").await;
        let start: Value = browser.post_json("/t/acme/api/passkeys/start", &csrf, &json!({})).await.json().await.unwrap();
        let excluded = start["publicKey"]["excludeCredentials"].as_array().unwrap();
        assert_eq!(excluded.len(), 1);
        assert_eq!(start["publicKey"]["authenticatorSelection"]["residentKey"], "required");

        let mut second = Crafted::new(&app.address);
        let res = add_passkey(&browser, "acme", &mut second).await;
        assert_eq!(res.status(), 200, "{:?}", res.text().await);
        let page = browser.page("/t/acme/account").await;
        assert!(page.contains("Backup key"));
        assert!(!page.contains("id=\"nudge\""));

        let ids: Vec<String> = page
            .match_indices("data-passkey-id=\"")
            .map(|(i, _)| attribute(&page[i..], "data-passkey-id").unwrap())
            .collect();
        assert_eq!(ids.len(), 2);
        let csrf = attribute(&page, "data-csrf").unwrap();
        let renamed = browser
            .post_form(&format!("/t/acme/account/passkeys/{}/rename", ids[0]), &[("csrf_token", &csrf), ("label", "Desk key")])
            .await;
        assert_eq!(renamed.status(), 303);
        assert!(browser.page("/t/acme/account").await.contains("Desk key"));

        let confirm = browser.page(&format!("/t/acme/account/passkeys/{}/remove", ids[0])).await;
        assert!(!confirm.contains("This is your only passkey"));
        let removed = browser
            .post_form(&format!("/t/acme/account/passkeys/{}/remove", ids[0]), &[("csrf_token", &csrf)])
            .await;
        assert_eq!(removed.status(), 303);
        let confirm = browser.page(&format!("/t/acme/account/passkeys/{}/remove", ids[1])).await;
        assert!(confirm.contains("This is your only passkey"), "the last one is warned about");

        // The removed passkey no longer signs in; the other one does.
        let fresh = Browser::new(&app);
        let (status, _) = {
            let res = fresh.discoverable_login("acme", &mut first).await;
            (res.status().as_u16(), ())
        };
        assert_eq!(status, 401);
        assert_eq!(fresh.discoverable_login("acme", &mut second).await.status(), 200);
    }
}

backend_test! {
    /// P10: nobody can rename or remove someone else's passkey.
    async fn another_users_passkey_cannot_be_touched(backend) {
        let app = TestApp::spawn(backend).await;
        let tenant = app.create_tenant("acme").await;
        let (alice, _) = enrolled(&app, &tenant, "alice@example.com", Role::Member).await;
        let (bob, _) = enrolled(&app, &tenant, "bob@example.com", Role::Member).await;
        let bobs_page = bob.page("/t/acme/account").await;
        let bobs_passkey = attribute(&bobs_page, "data-passkey-id").unwrap();
        let csrf = attribute(&alice.page("/t/acme/account").await, "data-csrf").unwrap();
        let before = app.state_snapshot();
        let res = alice
            .post_form(&format!("/t/acme/account/passkeys/{bobs_passkey}/remove"), &[("csrf_token", &csrf)])
            .await;
        assert_eq!(res.status(), 404);
        assert_eq!(alice.get(&format!("/t/acme/account/passkeys/{bobs_passkey}/remove")).await.status(), 404);
        assert_eq!(app.state_snapshot(), before);
    }
}

backend_test! {
    /// P8: a rule for admins requiring a USB or NFC security key refuses a platform passkey
    /// with a sentence naming the policy, and accepts a security key; members are unaffected.
    async fn a_transport_rule_for_admins_is_enforced_at_registration(backend) {
        let app = TestApp::spawn(backend).await;
        let tenant = app.create_tenant("acme").await;
        let policy = passgate::policy::parse(&json!({ "sensitive_roles": [
            { "name": "Admins use hardware keys", "roles": ["admin", "owner"], "transports": ["usb", "nfc"] }
        ]}).to_string()).unwrap();
        let (tenant_id, now) = (tenant.id.clone(), app.clock.now());
        app.state.store.write(move |conn| passgate::policy::save(conn, &tenant_id, &policy, None, now)).await.unwrap();

        let token = app.invite(&tenant, "root@example.com", Role::Admin).await;
        let browser = Browser::new(&app);
        let csrf = browser.csrf(&format!("/t/acme/enroll?token={token}")).await;
        let start: Value = browser.post_json("/t/acme/api/links/start", &csrf, &json!({ "token": token, "kind": "invite" })).await.json().await.unwrap();
        assert_eq!(start["publicKey"]["authenticatorSelection"]["authenticatorAttachment"], "cross-platform");
        let mut laptop = Crafted::new(&app.address);
        laptop.transports = vec!["internal".into()];
        let credential = laptop.register(&start["publicKey"]);
        let before = app.state_snapshot();
        let res = browser.post_json("/t/acme/api/passkeys/finish", &csrf, &json!({ "ceremony_id": start["ceremony_id"], "credential": credential })).await;
        assert_eq!(res.status(), 403);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "policy_refused");
        let message = body["error_description"].as_str().unwrap();
        assert!(message.contains("Admins use hardware keys"), "{message}");
        assert!(message.contains("security key"), "{message}");
        assert_eq!(app.state_snapshot(), before);

        let mut usb = Crafted::new(&app.address);
        assert_eq!(browser.enroll("acme", &token, &mut usb).await.status(), 200);

        let (_, _) = enrolled(&app, &tenant, "member@example.com", Role::Member).await;
    }
}

backend_test! {
    /// P8: a rule demanding attested authenticators from an allow-list refuses a passkey
    /// without attestation, and says which authenticators it accepts.
    async fn an_attestation_rule_accepts_only_attested_authenticators_of_its_list(backend) {
        let app = TestApp::spawn(backend).await;
        let tenant = app.create_tenant("acme").await;
        let vendor = AttestationVendor::new();
        let ca = vendor.ca_pem.clone();
        let policy = passgate::policy::parse(&json!({ "sensitive_roles": [{
            "name": "Owners use approved keys", "roles": ["owner"],
            "authenticators": [{ "aaguid": "cb69481e-8ff7-4039-93ec-0a2729a154a8", "name": "YubiKey 5", "ca_pem": ca }]
        }]}).to_string()).unwrap();
        let (tenant_id, now) = (tenant.id.clone(), app.clock.now());
        app.state.store.write(move |conn| passgate::policy::save(conn, &tenant_id, &policy, None, now)).await.unwrap();

        let token = app.invite(&tenant, "owner@example.com", Role::Owner).await;
        let browser = Browser::new(&app);
        let csrf = browser.csrf(&format!("/t/acme/enroll?token={token}")).await;
        let start: Value = browser.post_json("/t/acme/api/links/start", &csrf, &json!({ "token": token, "kind": "invite" })).await.json().await.unwrap();
        assert_eq!(start["publicKey"]["attestation"], "direct", "attestation is requested");
        let mut key = Crafted::new(&app.address);
        key.aaguid = uuid::Uuid::parse_str("cb69481e-8ff7-4039-93ec-0a2729a154a8").unwrap().into_bytes();
        let credential = key.register(&start["publicKey"]);
        let before = app.state_snapshot();
        let res = browser.post_json("/t/acme/api/passkeys/finish", &csrf, &json!({ "ceremony_id": start["ceremony_id"], "credential": credential })).await;
        assert_eq!(res.status(), 403, "a claimed AAGUID without attestation proves nothing");
        let body: Value = res.json().await.unwrap();
        let message = body["error_description"].as_str().unwrap();
        assert!(message.contains("YubiKey 5") && message.contains("Owners use approved keys"), "{message}");
        assert_eq!(app.state_snapshot(), before);

        // The same model with a genuine attestation from the vendor's chain is accepted.
        let mut attested = Crafted::new(&app.address);
        attested.aaguid = key.aaguid;
        attested.attestation = Some(vendor.attestation_certificate());
        let res = browser.enroll("acme", &token, &mut attested).await;
        assert_eq!(res.status(), 200, "{:?}", res.text().await);
        // …and another vendor's genuine attestation is not.
        let stranger = AttestationVendor::new();
        let token = app.invite(&tenant, "owner2@example.com", Role::Owner).await;
        let mut other = Crafted::new(&app.address);
        other.aaguid = key.aaguid;
        other.attestation = Some(stranger.attestation_certificate());
        assert_eq!(Browser::new(&app).enroll("acme", &token, &mut other).await.status(), 403);
    }
}

/// An authenticator vendor: a root CA and attestation certificates that chain to it, in the
/// shape WebAuthn L3 §8.2.1 requires of packed attestation certificates.
struct AttestationVendor {
    ca_key: openssl::pkey::PKey<openssl::pkey::Private>,
    ca_cert: openssl::x509::X509,
    ca_pem: String,
}

impl AttestationVendor {
    fn key() -> openssl::pkey::PKey<openssl::pkey::Private> {
        let group =
            openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
        openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap()).unwrap()
    }

    fn builder(
        subject: &openssl::x509::X509NameRef,
        issuer: &openssl::x509::X509NameRef,
        key: &openssl::pkey::PKey<openssl::pkey::Private>,
    ) -> openssl::x509::X509Builder {
        let mut b = openssl::x509::X509Builder::new().unwrap();
        b.set_version(2).unwrap();
        let serial = openssl::bn::BigNum::from_u32(rand_serial())
            .unwrap()
            .to_asn1_integer()
            .unwrap();
        b.set_serial_number(&serial).unwrap();
        b.set_subject_name(subject).unwrap();
        b.set_issuer_name(issuer).unwrap();
        b.set_pubkey(key).unwrap();
        b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(365).unwrap())
            .unwrap();
        b
    }

    fn new() -> AttestationVendor {
        let ca_key = Self::key();
        let mut name = openssl::x509::X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "Test Vendor Root").unwrap();
        let name = name.build();
        let mut b = Self::builder(&name, &name, &ca_key);
        b.append_extension(
            openssl::x509::extension::BasicConstraints::new()
                .critical()
                .ca()
                .build()
                .unwrap(),
        )
        .unwrap();
        b.append_extension(
            openssl::x509::extension::KeyUsage::new()
                .key_cert_sign()
                .crl_sign()
                .build()
                .unwrap(),
        )
        .unwrap();
        b.sign(&ca_key, openssl::hash::MessageDigest::sha256())
            .unwrap();
        let ca_cert = b.build();
        let ca_pem = String::from_utf8(ca_cert.to_pem().unwrap()).unwrap();
        AttestationVendor {
            ca_key,
            ca_cert,
            ca_pem,
        }
    }

    fn attestation_certificate(&self) -> (Vec<u8>, openssl::pkey::PKey<openssl::pkey::Private>) {
        let key = Self::key();
        let mut name = openssl::x509::X509NameBuilder::new().unwrap();
        name.append_entry_by_text("C", "SE").unwrap();
        name.append_entry_by_text("O", "Test Vendor").unwrap();
        name.append_entry_by_text("OU", "Authenticator Attestation")
            .unwrap();
        name.append_entry_by_text("CN", "Test Vendor Key Series 1")
            .unwrap();
        let name = name.build();
        let mut b = Self::builder(&name, self.ca_cert.subject_name(), &key);
        b.append_extension(
            openssl::x509::extension::BasicConstraints::new()
                .build()
                .unwrap(),
        )
        .unwrap();
        b.sign(&self.ca_key, openssl::hash::MessageDigest::sha256())
            .unwrap();
        (b.build().to_der().unwrap(), key)
    }
}

fn rand_serial() -> u32 {
    let mut b = [0u8; 4];
    openssl::rand::rand_bytes(&mut b).unwrap();
    u32::from_be_bytes(b) >> 1
}

backend_test! {
    /// S5 first run: `serve` on an empty database makes tenant `default` and a setup link that
    /// enrolls the first owner with a passkey; the link then stops working and no new one is
    /// printed.
    async fn the_first_run_setup_link_enrolls_the_first_owner(backend) {
        let app = TestApp::spawn(backend).await;
        let base = app.address.clone();
        let now = app.clock.now();
        let link = app.state.store.write(move |conn| passgate::enrollment::ensure_setup_link(conn, &base, now)).await.unwrap().expect("a setup link");
        let path = link.url.strip_prefix(&app.address).unwrap().to_string();
        assert!(path.starts_with("/t/default/setup?token="));
        let token = path.split("token=").nth(1).unwrap().to_string();
        let browser = Browser::new(&app);
        let csrf = browser.csrf(&path).await;
        let start = browser.post_json("/t/default/api/setup/start", &csrf, &json!({ "token": token, "email": "Founder@Example.com", "name": "Fay" })).await;
        assert_eq!(start.status(), 200);
        let start: Value = start.json().await.unwrap();
        let mut key = Crafted::new(&app.address);
        let credential = key.register(&start["publicKey"]);
        let res = browser.post_json("/t/default/api/passkeys/finish", &csrf, &json!({ "ceremony_id": start["ceremony_id"], "credential": credential })).await;
        assert_eq!(res.status(), 200, "{:?}", res.text().await);
        let account = browser.page("/t/default/account").await;
        assert!(account.contains("Fay") && account.contains("founder@example.com"));
        assert_eq!(browser.get(&path).await.status(), 404, "used once");
        let base = app.address.clone();
        let again = app.state.store.write(move |conn| passgate::enrollment::ensure_setup_link(conn, &base, now)).await.unwrap();
        assert!(again.is_none(), "an owner exists: no more setup links");
    }
}

backend_test! {
    /// C6: with `require_two_passkeys`, the first enrollment asks for a second passkey right
    /// away; once it is added the account has two and nothing more is asked. Without the
    /// policy the first enrollment does not ask.
    async fn a_tenant_can_require_a_second_passkey_right_after_the_first(backend) {
        let app = TestApp::spawn(backend).await;
        let tenant = app.create_tenant("acme").await;
        let token = app.invite(&tenant, "bob@example.com", Role::Member).await;
        let res = Browser::new(&app).enroll("acme", &token, &mut Crafted::new(&app.address)).await;
        assert_eq!(res.json::<Value>().await.unwrap()["second_passkey"], false);

        let policy = passgate::policy::TenantPolicy { require_two_passkeys: true, ..Default::default() };
        let (tenant_id, now) = (tenant.id.clone(), app.clock.now());
        app.state.store.write(move |conn| passgate::policy::save(conn, &tenant_id, &policy, None, now)).await.unwrap();
        let token = app.invite(&tenant, "alice@example.com", Role::Member).await;
        let browser = Browser::new(&app);
        let res = browser.enroll("acme", &token, &mut Crafted::new(&app.address)).await;
        assert_eq!(res.json::<Value>().await.unwrap()["second_passkey"], true);
        let mut second = Crafted::new(&app.address);
        let res = add_passkey(&browser, "acme", &mut second).await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.json::<Value>().await.unwrap()["second_passkey"], false);
        assert!(!browser.page("/t/acme/account").await.contains("id=\"nudge\""));
    }
}
