//! `id_token_hint` on the authorization endpoint (issue 20 #1, OIDC Core §3.1.2.1 and
//! §3.1.2.6): a hint must be this tenant's ID token for the requesting client; a hint for
//! someone other than the signed-in user never yields a silent code for the wrong account.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::authenticator::Crafted;
use crate::backend_test;
use crate::browser::Browser;
use crate::harness::TestApp;
use crate::oidc_support::*;
use passgate::users::Role;

/// Bob, a second member of the RP's tenant, enrolled with his own passkey; an Rp for him
/// on the same client.
async fn second_user(app: &TestApp, rp: &Rp) -> Rp {
    let email = format!("bob@{}.example", rp.tenant.slug);
    let token = app.invite(&rp.tenant, &email, Role::Member).await;
    let mut passkey = Crafted::new(&app.address);
    assert_eq!(
        Browser::new(app)
            .enroll(&rp.tenant.slug, &token, &mut passkey)
            .await
            .status(),
        200
    );
    let tenant_id = rp.tenant.id.clone();
    let user = app.db(move |conn| {
        Ok(passgate::store::users::find_user_by_email(conn, &tenant_id, &email)?.unwrap())
    });
    Rp {
        tenant: rp.tenant.clone(),
        user,
        client_id: rp.client_id.clone(),
        client_secret: rp.client_secret.clone(),
        passkey: tokio::sync::Mutex::new(passkey),
    }
}

fn id_token(tokens: &serde_json::Value) -> String {
    tokens["id_token"].as_str().unwrap().to_string()
}

/// The authorization answer for `hint` (and `extra`): the error, or `None` with a code.
async fn answer(
    app: &TestApp,
    rp: &Rp,
    hint: &str,
    extra: &[(&str, &str)],
) -> (u16, Option<String>, Vec<(String, String)>) {
    let (_, challenge) = pkce();
    let mut pairs = vec![("id_token_hint", hint)];
    pairs.extend_from_slice(extra);
    let res = authorize(app, rp, &authorize_query(rp, &challenge, &pairs)).await;
    let status = res.status().as_u16();
    let params = location_params(&res);
    (status, param(&params, "error").map(str::to_string), params)
}

backend_test! {
    async fn a_hint_for_another_user_with_prompt_none_is_login_required_never_a_code(backend) {
        let app = TestApp::spawn(backend).await;
        let alice = setup(&app, "acme").await;
        let bob = second_user(&app, &alice).await;
        let bobs_hint = id_token(&tokens(&app, &bob).await);
        let alices_hint = id_token(&tokens(&app, &alice).await);

        let (status, error, params) = answer(&app, &alice, &bobs_hint, &[("prompt", "none")]).await;
        assert_eq!((status, error.as_deref()), (302, Some("login_required")));
        assert!(param(&params, "code").is_none());

        let (_, error, params) = answer(&app, &alice, &alices_hint, &[("prompt", "none")]).await;
        assert_eq!(error, None, "the signed-in user's own hint");
        assert!(param(&params, "code").is_some());

        // An expired hint is still a hint (§3.1.2.1).
        app.clock.advance(time::Duration::hours(2));
        let (_, error, params) = answer(&app, &alice, &alices_hint, &[("prompt", "none")]).await;
        assert_eq!(error, None);
        assert!(param(&params, "code").is_some());
    }
}

backend_test! {
    async fn a_hint_for_another_user_sends_an_interactive_request_to_sign_in_again(backend) {
        let app = TestApp::spawn(backend).await;
        let alice = setup(&app, "acme").await;
        let bob = second_user(&app, &alice).await;
        let bobs_hint = id_token(&tokens(&app, &bob).await);
        sign_in(&app, &alice).await;
        let (_, challenge) = pkce();
        let res = authorize(&app, &alice, &authorize_query(&alice, &challenge, &[("id_token_hint", &bobs_hint)])).await;
        assert_eq!(res.status(), 302);
        let location = res.headers()["location"].to_str().unwrap().to_string();
        assert!(location.starts_with("/t/acme/login?"), "{location}");
        assert!(location.contains("prompt=login"), "the login page must not bounce the signed-in user back: {location}");
    }
}

backend_test! {
    async fn forged_foreign_and_misaddressed_hints_are_invalid_requests(backend) {
        let app = TestApp::spawn(backend).await;
        let alice = setup(&app, "acme").await;
        let hint = id_token(&tokens(&app, &alice).await);
        let (header, rest) = hint.split_once('.').unwrap();
        let (payload, signature) = rest.split_once('.').unwrap();

        let mut tampered = signature.as_bytes().to_vec();
        tampered[0] = if tampered[0] == b'A' { b'B' } else { b'A' };
        let bad_signature = format!("{header}.{payload}.{}", String::from_utf8(tampered).unwrap());
        let mut claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        claims["sub"] = "someone-else".into();
        let other_claims = format!("{header}.{}.{signature}", URL_SAFE_NO_PAD.encode(claims.to_string()));
        let mut alg_none: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
        alg_none["alg"] = "none".into();
        let unsigned = format!("{}.{payload}.", URL_SAFE_NO_PAD.encode(alg_none.to_string()));

        let globex = setup(&app, "globex").await;
        let foreign = id_token(&tokens(&app, &globex).await);
        let other_client = register(&app, &alice.tenant, first_party_client()).await;
        let misaddressed_rp = Rp {
            tenant: alice.tenant.clone(),
            user: alice.user.clone(),
            client_id: other_client.client_id,
            client_secret: other_client.client_secret.unwrap_or_default(),
            passkey: tokio::sync::Mutex::new(Crafted::new(&app.address)),
        };

        sign_in(&app, &alice).await;
        for (case, hint) in [
            ("a bad signature", bad_signature.as_str()),
            ("claims the signature does not cover", other_claims.as_str()),
            ("alg none", unsigned.as_str()),
            ("another tenant's ID token", foreign.as_str()),
            ("not a JWT", "not-a-jwt"),
        ] {
            let (status, error, params) = answer(&app, &alice, hint, &[("prompt", "none")]).await;
            assert_eq!((status, error.as_deref()), (302, Some("invalid_request")), "{case}");
            assert!(param(&params, "code").is_none(), "{case}");
        }
        let (_, error, params) = answer(&app, &misaddressed_rp, &hint, &[("prompt", "none")]).await;
        assert_eq!(error.as_deref(), Some("invalid_request"), "a hint issued to another client");
        assert!(param(&params, "code").is_none());
    }
}
