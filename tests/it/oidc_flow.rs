//! The provider as relying parties see it: a real RP (the `openidconnect` crate) through
//! discovery, authorization with PKCE, ID token verification against the JWKS, userinfo,
//! refresh, revocation and introspection; plus the sign-in, consent and logout hand-offs.

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IntrospectionUrl,
    IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope,
    TokenIntrospectionResponse, TokenResponse,
};
use serde_json::Value;

use crate::backend_test;
use crate::harness::TestApp;
use crate::oidc_support::*;

fn rp_http_client() -> reqwest::Client {
    // A relying party must not follow redirects from the provider (SSRF).
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

backend_test! {
    async fn a_real_relying_party_signs_in_refreshes_and_revokes(backend) {
        let app = TestApp::spawn(backend).await;
        let rp = setup(&app, "acme").await;
        let http = rp_http_client();
        let issuer = IssuerUrl::new(rp.issuer(&app)).unwrap();
        // Discovery refuses a document whose issuer differs by one byte.
        let metadata = CoreProviderMetadata::discover_async(issuer, &http).await.unwrap();
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(rp.client_id.clone()),
            Some(ClientSecret::new(rp.client_secret.clone())),
        )
        .set_redirect_uri(RedirectUrl::new(REDIRECT_URI.into()).unwrap())
        .set_introspection_url(IntrospectionUrl::new(app.url(&rp.path("/oauth2/introspect"))).unwrap());

        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (auth_url, csrf, nonce) = client
            .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
            .add_scope(Scope::new("email".into()))
            .add_scope(Scope::new("profile".into()))
            .add_scope(Scope::new("offline_access".into()))
            .set_pkce_challenge(challenge)
            .url();

        // The browser: not signed in, so it is sent to the login page, which returns to the
        // same authorization request.
        let res = app.client.get(auth_url.as_str()).send().await.unwrap();
        assert_eq!(res.status(), 302);
        let login = res.headers()["location"].to_str().unwrap().to_string();
        assert!(login.starts_with("/t/acme/login?return_to=%2Ft%2Facme%2Foauth2%2Fauthorize%3F"), "{login}");
        let return_to = url::Url::parse(&app.url(&login)).unwrap().query_pairs()
            .find(|(k, _)| k == "return_to").unwrap().1.into_owned();
        // The real login page carries the way back; a passkey sign-in there sets the session.
        let page = app.get(&login).await.text().await.unwrap();
        assert_eq!(crate::browser::attribute(&page, "data-return-to").as_deref(), Some(return_to.as_str()));
        sign_in(&app, &rp).await;
        let res = app.get(&return_to).await;
        assert_eq!(res.status(), 302);
        let params = location_params(&res);
        assert_eq!(param(&params, "state"), Some(csrf.secret().as_str()));
        assert_eq!(param(&params, "iss"), Some(rp.issuer(&app).as_str()));
        let code = param(&params, "code").unwrap().to_string();

        let tokens = client
            .exchange_code(AuthorizationCode::new(code)).unwrap()
            .set_pkce_verifier(verifier)
            .request_async(&http)
            .await
            .unwrap();
        let id_token = tokens.id_token().expect("an ID token");
        // The provider runs on a fixed clock; so does the relying party's check.
        let at = chrono::DateTime::from_timestamp(passgate::clock::unix_seconds(app.clock.now()), 0).unwrap();
        let verifier = client.id_token_verifier().set_time_fn(move || at);
        let claims = id_token.claims(&verifier, &nonce).expect("ID token verifies against the JWKS");
        assert_eq!(claims.subject().as_str(), rp.user.id);
        assert_eq!(claims.issuer().as_str(), rp.issuer(&app));
        let at_hash = AccessTokenHash::from_token(tokens.access_token(), id_token.signing_alg().unwrap(), id_token.signing_key(&verifier).unwrap()).unwrap();
        assert_eq!(claims.access_token_hash(), Some(&at_hash));
        let raw: Value = decode_payload(&id_token.to_string());
        assert_eq!(raw["amr"], serde_json::json!(["hwk", "user", "mfa"]), "a device-bound passkey with user verification");
        assert_eq!(raw["acr"], "phr");
        assert_eq!(raw["azp"], rp.client_id);
        assert!(raw["sid"].is_string() && raw["auth_time"].is_i64());

        let info: CoreUserInfoClaims = client
            .user_info(tokens.access_token().clone(), Some(claims.subject().clone())).unwrap()
            .request_async(&http)
            .await
            .unwrap();
        assert_eq!(info.email().map(|e| e.as_str()), Some("alice@acme.example"));

        let refreshed = client
            .exchange_refresh_token(tokens.refresh_token().expect("offline_access gives a refresh token")).unwrap()
            .request_async(&http)
            .await
            .unwrap();
        let rotated = refreshed.refresh_token().expect("a rotated refresh token");
        assert_ne!(rotated.secret(), tokens.refresh_token().unwrap().secret());

        // RFC 7009 revocation (the library only revokes over https, so it is a plain POST).
        let res = http
            .post(app.url(&rp.path("/oauth2/revoke")))
            .basic_auth(&rp.client_id, Some(&rp.client_secret))
            .form(&[("token", rotated.secret().as_str()), ("token_type_hint", "refresh_token")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let introspected = client.introspect(refreshed.access_token())
            .set_token_type_hint("access_token")
            .request_async(&http)
            .await
            .unwrap();
        assert!(!introspected.active(), "revoking the refresh token revokes its access tokens");
        let res = userinfo(&app, &rp, refreshed.access_token().secret()).await;
        assert_eq!(res.status(), 401);
    }
}

pub fn decode_payload(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

backend_test! {
    async fn discovery_and_jwks_list_exactly_what_is_supported(backend) {
        let app = TestApp::spawn(backend).await;
        let rp = setup(&app, "acme").await;
        let res = app.get(&rp.path("/.well-known/openid-configuration")).await;
        assert_eq!(res.status(), 200);
        assert!(res.headers()["cache-control"].to_str().unwrap().contains("max-age"));
        let doc: Value = res.json().await.unwrap();
        assert_eq!(doc["issuer"], rp.issuer(&app));
        assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
        assert_eq!(doc["code_challenge_methods_supported"], serde_json::json!(["S256"]));
        assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
        assert_eq!(doc["id_token_signing_alg_values_supported"], serde_json::json!(["RS256", "ES256"]));
        assert_eq!(doc["end_session_endpoint"], format!("{}/oauth2/logout", rp.issuer(&app)));
        // Only pages mint the CSRF cookie: protocol endpoints answer a cookie-less client without one.
        for path in [rp.path("/.well-known/openid-configuration"), rp.path("/jwks.json")] {
            let fresh = reqwest::get(app.url(&path)).await.unwrap();
            assert!(fresh.headers().get("set-cookie").is_none(), "{path} set a cookie");
        }
        let page = reqwest::get(app.url("/t/acme/login")).await.unwrap();
        assert!(page.headers().get("set-cookie").is_some(), "the login page mints the CSRF cookie");
        let rfc8414: Value = app.get("/.well-known/oauth-authorization-server/t/acme").await.json().await.unwrap();
        assert_eq!(rfc8414, doc);

        let jwks: Value = app.get(&rp.path("/jwks.json")).await.json().await.unwrap();
        let keys = jwks["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 2);
        for key in keys {
            assert_eq!(key["use"], "sig");
            for private in ["d", "p", "q", "dp", "dq", "qi"] {
                assert!(key.get(private).is_none(), "private member {private} in {key}");
            }
        }
        let algs: Vec<&str> = keys.iter().map(|k| k["alg"].as_str().unwrap()).collect();
        assert!(algs.contains(&"RS256") && algs.contains(&"ES256"), "{algs:?}");
        assert_ne!(keys[0]["kid"], keys[1]["kid"]);

        let other = app.create_tenant("globex").await;
        let theirs: Value = app.get(&format!("/t/{}/jwks.json", other.slug)).await.json().await.unwrap();
        let kids = |v: &Value| v["keys"].as_array().unwrap().iter().map(|k| k["kid"].to_string()).collect::<Vec<_>>();
        assert!(kids(&theirs).iter().all(|k| !kids(&jwks).contains(k)), "keys differ per tenant");
    }
}

backend_test! {
    async fn prompt_none_without_a_session_answers_login_required_with_iss(backend) {
        let app = TestApp::spawn(backend).await;
        let rp = setup(&app, "acme").await;
        let (_, challenge) = pkce();
        let res = authorize(&app, &rp, &authorize_query(&rp, &challenge, &[("prompt", "none")])).await;
        assert_eq!(res.status(), 302);
        assert!(res.headers()["location"].to_str().unwrap().starts_with(REDIRECT_URI));
        let params = location_params(&res);
        assert_eq!(param(&params, "error"), Some("login_required"));
        assert_eq!(param(&params, "state"), Some("st-123"));
        assert_eq!(param(&params, "iss"), Some(rp.issuer(&app).as_str()));
    }
}

backend_test! {
    async fn prompt_login_and_max_age_send_a_signed_in_user_back_to_login_once(backend) {
        let app = TestApp::spawn(backend).await;
        let rp = setup(&app, "acme").await;
        sign_in(&app, &rp).await;
        let (_, challenge) = pkce();
        app.clock.advance(time::Duration::minutes(10));
        for extra in [[("prompt", "login")], [("max_age", "60")]] {
            let res = authorize(&app, &rp, &authorize_query(&rp, &challenge, &extra)).await;
            assert_eq!(res.status(), 302);
            let location = res.headers()["location"].to_str().unwrap().to_string();
            assert!(location.starts_with("/t/acme/login?"), "{location}");
            assert!(location.contains("prompt=login"), "{location}");
            let return_to = url::Url::parse(&app.url(&location)).unwrap().query_pairs()
                .find(|(k, _)| k == "return_to").unwrap().1.into_owned();
            // A fresh sign-in satisfies the request: no loop back to the login page.
            sign_in(&app, &rp).await;
            let res = app.get(&return_to).await;
            assert!(param(&location_params(&res), "code").is_some());
            app.clock.advance(time::Duration::minutes(10));
        }
    }
}

backend_test! {
    async fn acr_values_phr_demands_a_passkey_sign_in(backend) {
        let app = TestApp::spawn(backend).await;
        let rp = setup(&app, "acme").await;
        app.establish_session(&rp.tenant, &rp.user, &["pwd"]).await;
        let (_, challenge) = pkce();
        let res = authorize(&app, &rp, &authorize_query(&rp, &challenge, &[("acr_values", "phr"), ("login_hint", "alice@acme.example")])).await;
        let location = res.headers()["location"].to_str().unwrap().to_string();
        assert!(location.starts_with("/t/acme/login?"), "{location}");
        assert!(location.contains("require=passkey") && location.contains("login_hint=alice%40acme.example"), "{location}");
        sign_in(&app, &rp).await;
        let res = authorize(&app, &rp, &authorize_query(&rp, &challenge, &[("acr_values", "phr")])).await;
        assert!(param(&location_params(&res), "code").is_some());
    }
}

backend_test! {
    async fn third_party_clients_ask_for_consent_once(backend) {
        let app = TestApp::spawn(backend).await;
        let mut new = first_party_client();
        new.is_first_party = false;
        new.name = "Partner App".into();
        let rp = setup_with(&app, "acme", new).await;
        sign_in(&app, &rp).await;
        let (_, challenge) = pkce();
        let query = authorize_query(&rp, &challenge, &[("scope", "openid email")]);
        let res = authorize(&app, &rp, &query).await;
        assert_eq!(res.status(), 200);
        let page = res.text().await.unwrap();
        assert!(page.contains("Allow Partner App?") && page.contains("See your email address"), "{page}");
        let field = |name: &str| {
            let start = page.find(&format!("name=\"{name}\" value=\"")).unwrap() + name.len() + 15;
            html_unescape(&page[start..start + page[start..].find('"').unwrap()])
        };
        let form = [
            ("authorization_request", field("authorization_request")),
            ("csrf_token", field("csrf_token")),
            ("decision", "allow".to_string()),
        ];
        let res = app.client.post(app.url(&rp.path("/consent"))).form(&form).send().await.unwrap();
        assert_eq!(res.status(), 302, "{form:?}");
        assert!(param(&location_params(&res), "code").is_some());
        // Remembered: the same request goes straight through; prompt=none works too.
        let res = authorize(&app, &rp, &authorize_query(&rp, &challenge, &[("scope", "openid email"), ("prompt", "none")])).await;
        assert!(param(&location_params(&res), "code").is_some());
        // More scopes than granted: asked again, and prompt=none cannot ask.
        let res = authorize(&app, &rp, &authorize_query(&rp, &challenge, &[("prompt", "none")])).await;
        assert_eq!(param(&location_params(&res), "error"), Some("consent_required"));
    }
}

/// Undoes askama's HTML escaping of an attribute value (numeric entities and `&amp;`).
fn html_unescape(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let end = rest[i..].find(';').unwrap() + i;
        let entity = &rest[i + 1..end];
        let ch = match entity.strip_prefix('#') {
            Some(num) => char::from_u32(num.parse().unwrap()).unwrap(),
            None if entity == "amp" => '&',
            None if entity == "quot" => '"',
            None => panic!("entity {entity}"),
        };
        out.push(ch);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

backend_test! {
    async fn logout_with_a_valid_hint_ends_the_session_and_redirects(backend) {
        let app = TestApp::spawn(backend).await;
        let rp = setup(&app, "acme").await;
        let tokens = tokens(&app, &rp).await;
        let id_token = tokens["id_token"].as_str().unwrap();
        let query = format!(
            "id_token_hint={id_token}&post_logout_redirect_uri={}&state=bye",
            "https%3A%2F%2Fapp.example.com%2Fsigned-out"
        );
        let res = app.get(&format!("{}?{query}", rp.path("/oauth2/logout"))).await;
        assert_eq!(res.status(), 302);
        assert_eq!(res.headers()["location"], "https://app.example.com/signed-out?state=bye");
        let cleared = res.headers().get_all("set-cookie").iter().any(|c| {
            let c = c.to_str().unwrap();
            c.starts_with("pg-session-acme=;") && c.contains("Max-Age=0")
        });
        assert!(cleared, "the session cookie is removed");
        // The session is over: prompt=none now needs a login.
        let (_, challenge) = pkce();
        let res = authorize(&app, &rp, &authorize_query(&rp, &challenge, &[("prompt", "none")])).await;
        assert_eq!(param(&location_params(&res), "error"), Some("login_required"));
    }
}

backend_test! {
    async fn logout_without_a_hint_asks_for_confirmation(backend) {
        let app = TestApp::spawn(backend).await;
        let rp = setup(&app, "acme").await;
        sign_in(&app, &rp).await;
        let res = app.get(&format!("{}?client_id={}", rp.path("/oauth2/logout"), rp.client_id)).await;
        assert_eq!(res.status(), 200);
        let page = res.text().await.unwrap();
        assert!(page.contains("Sign out of acme?"), "{page}");
        // Still signed in: the page alone signed nobody out.
        let (_, challenge) = pkce();
        let res = authorize(&app, &rp, &authorize_query(&rp, &challenge, &[("prompt", "none")])).await;
        assert!(param(&location_params(&res), "code").is_some());
        // An unregistered post-logout URI is an error page, never a redirect.
        let res = app.get(&format!("{}?client_id={}&post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F", rp.path("/oauth2/logout"), rp.client_id)).await;
        assert_eq!(res.status(), 400);
        assert!(res.headers().get("location").is_none());
    }
}

backend_test! {
    /// Issue 20 #23: the signed-out page is no dead end: it links back to the sign-in.
    async fn the_signed_out_page_links_back_to_sign_in(backend) {
        let app = TestApp::spawn(backend).await;
        let rp = setup(&app, "acme").await;
        let id_token = tokens(&app, &rp).await["id_token"].as_str().unwrap().to_string();
        let res = app.get(&format!("{}?id_token_hint={id_token}", rp.path("/oauth2/logout"))).await;
        assert_eq!(res.status(), 200);
        let page = res.text().await.unwrap();
        assert!(page.contains("You are signed out"), "{page}");
        assert!(page.contains("href=\"/t/acme/login\""), "{page}");
    }
}
