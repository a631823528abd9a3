//! Redeeming codes (RFC 6749 §4.1.3, O3): the write that spends a code checks everything the
//! redemption must match, so a refused redemption issues nothing and still burns the code.

use crate::backend_test;
use crate::harness::TestApp;
use crate::oidc_support::*;

/// The stored code, as the database holds it now.
fn stored_code(app: &TestApp, rp: &Rp, code: &str) -> passgate::store::codes::AuthorizationCode {
    let (tenant_id, hash) = (rp.tenant.id.clone(), passgate::crypto::sha256_hex(code));
    app.db(move |conn| passgate::store::codes::find_code(conn, &tenant_id, &hash))
        .unwrap()
}

backend_test! {
    async fn a_redemption_at_another_redirect_uri_issues_nothing_and_burns_the_code(backend) {
        let app = TestApp::spawn(backend).await;
        let rp = setup(&app, "acme").await;
        sign_in(&app, &rp).await;
        let (code, verifier) = authorize_code(&app, &rp, &[]).await;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", "http://127.0.0.1/callback"),
            ("code_verifier", verifier.as_str()),
        ];
        let (status, body) = token(&app, &rp, &form).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
        let burnt = stored_code(&app, &rp, &code);
        assert!(burnt.redeemed_at.is_some(), "the code is spent");
        assert_eq!((burnt.issued_family_id, burnt.issued_access_jti), (None, None), "nothing issued");
        let (status, _) = redeem(&app, &rp, &code, &verifier).await;
        assert_eq!(status, 400, "not even at the right redirect URI afterwards");
    }
}

backend_test! {
    async fn a_code_of_a_user_disabled_since_is_refused_and_burnt(backend) {
        let app = TestApp::spawn(backend).await;
        let rp = setup(&app, "acme").await;
        sign_in(&app, &rp).await;
        let (code, verifier) = authorize_code(&app, &rp, &[]).await;
        set_user_status(&app, &rp, passgate::users::UserStatus::Disabled);
        let (status, body) = redeem(&app, &rp, &code, &verifier).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
        assert!(body["error_description"].as_str().unwrap().contains("can no longer sign in"), "{body}");
        set_user_status(&app, &rp, passgate::users::UserStatus::Active);
        let (status, _) = redeem(&app, &rp, &code, &verifier).await;
        assert_eq!(status, 400, "the code stays burnt");
    }
}

backend_test! {
    /// A client registered with `--always-refresh` gets a refresh token without asking for
    /// `offline_access`, and a replay of its code revokes that family too.
    async fn a_client_that_always_refreshes_gets_a_family_that_a_replay_revokes(backend) {
        let app = TestApp::spawn(backend).await;
        let rp = setup_with(&app, "acme", passgate::oidc::clients::NewClient {
            is_refresh_always_issued: true,
            ..first_party_client()
        }).await;
        sign_in(&app, &rp).await;
        let (code, verifier) = authorize_code(&app, &rp, &[("scope", "openid email")]).await;
        let (status, first) = redeem(&app, &rp, &code, &verifier).await;
        assert_eq!(status, 200, "{first}");
        let refresh = first["refresh_token"].as_str().expect("a refresh token");
        assert!(!first["scope"].as_str().unwrap().contains("offline_access"), "{first}");
        let (status, rotated) = token(&app, &rp, &[("grant_type", "refresh_token"), ("refresh_token", refresh)]).await;
        assert_eq!(status, 200, "the refresh token works: {rotated}");
        let newest = rotated["refresh_token"].as_str().unwrap();
        assert!(stored_code(&app, &rp, &code).issued_family_id.is_some());
        let (status, _) = redeem(&app, &rp, &code, &verifier).await;
        assert_eq!(status, 400);
        let (status, body) = token(&app, &rp, &[("grant_type", "refresh_token"), ("refresh_token", newest)]).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    }
}
