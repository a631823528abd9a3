//! What the provider refuses, each case on its own: the answer is a clear 4xx (an error page,
//! or an error at the registered redirect URI), and nothing is issued.

use serde_json::Value;

use crate::backend_test;
use crate::harness::TestApp;
use crate::oidc_support::*;

/// An authorization request whose redirect URI is `uri` is refused on a passgate page.
async fn assert_redirect_refused(app: &TestApp, rp: &Rp, uri: &str) {
    let (_, challenge) = pkce();
    let res = authorize(
        app,
        rp,
        &authorize_query(rp, &challenge, &[("redirect_uri", uri)]),
    )
    .await;
    assert_eq!(res.status(), 400, "{uri}");
    assert!(
        res.headers().get("location").is_none(),
        "{uri} was redirected to"
    );
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
}

backend_test! {
    async fn redirect_uri_near_misses_are_refused_on_a_page(backend) {
        let app = TestApp::spawn(backend).await;
        let rp = setup(&app, "acme").await;
        sign_in(&app, &rp).await;
        for uri in [
            "https://app.example.com/callback/",
            "https://APP.example.com/callback",
            "https://app.example.com/Callback",
            "https://app.example.com/callback?next=1",
            "https://app.example.com@evil.example/callback",
            "https://evil.example/@app.example.com/callback",
            "https://app.example.com:8443/callback",
            "http://app.example.com/callback",
            "https://app.example.com/callback#x",
            "javascript:alert(1)",
        ] {
            assert_redirect_refused(&app, &rp, uri).await;
        }
        // Loopback (RFC 8252 §7.3): any port, but only that exact path and scheme.
        let (_, challenge) = pkce();
        let res = authorize(&app, &rp, &authorize_query(&rp, &challenge, &[("redirect_uri", "http://127.0.0.1:49152/callback")])).await;
        assert!(param(&location_params(&res), "code").is_some());
        assert_redirect_refused(&app, &rp, "http://127.0.0.1:49152/callback/").await;
        assert_redirect_refused(&app, &rp, "https://127.0.0.1/callback").await;
    }
}

backend_test! {
    async fn an_unknown_client_is_an_error_page(backend) {
        let app = TestApp::spawn(backend).await;
        let rp = setup(&app, "acme").await;
        let (_, challenge) = pkce();
        let res = authorize(&app, &rp, &authorize_query(&rp, &challenge, &[("client_id", "nobody")])).await;
        assert_eq!(res.status(), 400);
        assert!(res.headers().get("location").is_none());
    }
}

backend_test! {
    async fn a_missing_pkce_challenge_is_refused(backend) {
        let app = TestApp::spawn(backend).await;
        let rp = setup(&app, "acme").await;
        sign_in(&app, &rp).await;
        let res = authorize(&app, &rp, &authorize_query(&rp, "", &[("code_challenge_method", "")])).await;
        let params = location_params(&res);
        assert_eq!(param(&params, "error"), Some("invalid_request"));
        assert!(param(&params, "code").is_none());
        assert_eq!(param(&params, "iss"), Some(rp.issuer(&app).as_str()));
    }
}

backend_test! {
    async fn a_plain_pkce_challenge_is_refused(backend) {
        let app = TestApp::spawn(backend).await;
        let rp = setup(&app, "acme").await;
        sign_in(&app, &rp).await;
        let (verifier, _) = pkce();
        let res = authorize(&app, &rp, &authorize_query(&rp, &verifier, &[("code_challenge_method", "plain")])).await;
        assert_eq!(param(&location_params(&res), "error"), Some("invalid_request"));
    }
}

backend_test! {
    async fn a_wrong_verifier_fails_and_burns_the_code(backend) {
        let app = TestApp::spawn(backend).await;
        let rp = setup(&app, "acme").await;
        sign_in(&app, &rp).await;
        let (code, verifier) = authorize_code(&app, &rp, &[]).await;
        let (wrong, _) = pkce();
        let (status, body) = redeem(&app, &rp, &code, &wrong).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
        let (status, body) = redeem(&app, &rp, &code, &verifier).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "the code is burnt");
    }
}

backend_test! {
    async fn a_missing_verifier_fails(backend) {
        let app = TestApp::spawn(backend).await;
        let rp = setup(&app, "acme").await;
        sign_in(&app, &rp).await;
        let (code, _) = authorize_code(&app, &rp, &[]).await;
        let (status, body) = token(&app, &rp, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT_URI)]).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    }
}

backend_test! {
    async fn a_replayed_code_revokes_the_first_tokens(backend) {
        let app = TestApp::spawn(backend).await;
        let rp = setup(&app, "acme").await;
        sign_in(&app, &rp).await;
        let (code, verifier) = authorize_code(&app, &rp, &[]).await;
        let (status, first) = redeem(&app, &rp, &code, &verifier).await;
        assert_eq!(status, 200);
        assert_eq!(userinfo(&app, &rp, first["access_token"].as_str().unwrap()).await.status(), 200);
        let (status, body) = redeem(&app, &rp, &code, &verifier).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
        let res = userinfo(&app, &rp, first["access_token"].as_str().unwrap()).await;
        assert_eq!(res.status(), 401);
        assert!(res.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
        let refresh = first["refresh_token"].as_str().unwrap();
        let (status, body) = token(&app, &rp, &[("grant_type", "refresh_token"), ("refresh_token", refresh)]).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    }
}

backend_test! {
    /// Two redemptions of one code at once: one gets tokens, the other is refused, and the
    /// winner's tokens end up revoked whichever order the database put them in.
    async fn racing_redemptions_of_one_code_issue_once_and_revoke(backend) {
        let app = TestApp::spawn(backend).await;
        let rp = setup(&app, "acme").await;
        sign_in(&app, &rp).await;
        let (code, verifier) = authorize_code(&app, &rp, &[]).await;
        let (a, b) = tokio::join!(
            redeem(&app, &rp, &code, &verifier),
            redeem(&app, &rp, &code, &verifier)
        );
        let mut statuses = [a.0, b.0];
        statuses.sort();
        assert_eq!(statuses, [200, 400]);
        let winner = if a.0 == 200 { a.1 } else { b.1 };
        let access = winner["access_token"].as_str().unwrap();
        assert_eq!(userinfo(&app, &rp, access).await.status(), 401);
        let refresh = winner["refresh_token"].as_str().unwrap();
        let (status, body) = token(&app, &rp, &[("grant_type", "refresh_token"), ("refresh_token", refresh)]).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    }
}

backend_test! {
    async fn a_reused_refresh_token_revokes_the_family(backend) {
        let app = TestApp::spawn(backend).await;
        let rp = setup(&app, "acme").await;
        let first = tokens(&app, &rp).await;
        let old = first["refresh_token"].as_str().unwrap();
        let (status, second) = token(&app, &rp, &[("grant_type", "refresh_token"), ("refresh_token", old)]).await;
        assert_eq!(status, 200);
        // Past the reuse grace (oidc.refresh_reuse_grace, 5 s), a rotated token is reuse.
        app.clock.advance(time::Duration::seconds(6));
        let (status, body) = token(&app, &rp, &[("grant_type", "refresh_token"), ("refresh_token", old)]).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
        // The whole family is gone: the newest refresh token and its access token too.
        let newest = second["refresh_token"].as_str().unwrap();
        let (status, _) = token(&app, &rp, &[("grant_type", "refresh_token"), ("refresh_token", newest)]).await;
        assert_eq!(status, 400);
        assert_eq!(userinfo(&app, &rp, second["access_token"].as_str().unwrap()).await.status(), 401);
    }
}

backend_test! {
    /// Issue 20 #2: several refreshes with one token at once (two tabs, an app's parallel
    /// calls): one rotation wins, the others get a clean invalid_grant within the reuse
    /// grace, and the family lives — the winner's successor works, nothing was forked.
    async fn racing_refreshes_of_one_token_rotate_once_and_the_family_lives(backend) {
        let app = TestApp::spawn(backend).await;
        let rp = setup(&app, "acme").await;
        let first = tokens(&app, &rp).await;
        let old = first["refresh_token"].as_str().unwrap();
        let form = [("grant_type", "refresh_token"), ("refresh_token", old)];
        let answers = futures_util::future::join_all((0..6).map(|_| token(&app, &rp, &form))).await;
        let winners: Vec<&Value> = answers.iter().filter(|(s, _)| *s == 200).map(|(_, b)| b).collect();
        assert_eq!(winners.len(), 1, "{answers:?}");
        for (status, body) in answers.iter().filter(|(s, _)| *s != 200) {
            assert_eq!((*status, body["error"].as_str()), (400, Some("invalid_grant")));
        }
        let access = winners[0]["access_token"].as_str().unwrap();
        assert_eq!(userinfo(&app, &rp, access).await.status(), 200, "the family lives");
        let newest = winners[0]["refresh_token"].as_str().unwrap();
        let (status, body) = token(&app, &rp, &[("grant_type", "refresh_token"), ("refresh_token", newest)]).await;
        assert_eq!(status, 200, "the winner's successor works: {body}");
        let families = {
            let tenant_id = rp.tenant.id.clone();
            app.db(move |conn| {
                use diesel::prelude::*;
                use passgate::store::schema::refresh_token_families as f;
                Ok(f::table.filter(f::tenant_id.eq(&tenant_id)).count().get_result::<i64>(conn)?)
            })
        };
        assert_eq!(families, 1, "no second family was forked");
    }
}

backend_test! {
    /// A refused refresh spends nothing: the rotation checks the user in the same write that
    /// would spend the token, so once the user is active again the same token still works.
    async fn a_refresh_for_a_disabled_user_is_refused_and_spends_nothing(backend) {
        let app = TestApp::spawn(backend).await;
        let rp = setup(&app, "acme").await;
        let first = tokens(&app, &rp).await;
        let form = [("grant_type", "refresh_token"), ("refresh_token", first["refresh_token"].as_str().unwrap())];
        set_user_status(&app, &rp, passgate::users::UserStatus::Disabled);
        let (status, body) = token(&app, &rp, &form).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
        set_user_status(&app, &rp, passgate::users::UserStatus::Active);
        let (status, body) = token(&app, &rp, &form).await;
        assert_eq!(status, 200, "{body}");
    }
}

backend_test! {
    async fn a_refresh_token_is_refused_to_another_client_and_stays_usable(backend) {
        let app = TestApp::spawn(backend).await;
        let rp = setup(&app, "acme").await;
        let other = register(&app, &rp.tenant, first_party_client()).await;
        let first = tokens(&app, &rp).await;
        let form = [("grant_type", "refresh_token"), ("refresh_token", first["refresh_token"].as_str().unwrap())];
        let res = app.client.post(app.url(&rp.path("/oauth2/token")))
            .basic_auth(&other.client_id, other.client_secret.as_deref())
            .form(&form)
            .send().await.unwrap();
        assert_eq!(res.status(), 400);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "invalid_grant");
        let (status, body) = token(&app, &rp, &form).await;
        assert_eq!(status, 200, "{body}");
    }
}

backend_test! {
    /// A refresh may narrow the granted scope (RFC 6749 §6), never widen it; a refused
    /// widening spends nothing.
    async fn a_refresh_narrows_the_scope_but_never_widens_it(backend) {
        let app = TestApp::spawn(backend).await;
        let rp = setup(&app, "acme").await;
        let first = tokens(&app, &rp).await;
        let refresh = first["refresh_token"].as_str().unwrap();
        let (status, body) = token(&app, &rp, &[("grant_type", "refresh_token"), ("refresh_token", refresh), ("scope", "openid email phone")]).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_scope")), "{body}");
        let (status, body) = token(&app, &rp, &[("grant_type", "refresh_token"), ("refresh_token", refresh), ("scope", "openid")]).await;
        assert_eq!((status, body["scope"].as_str()), (200, Some("openid")), "{body}");
        let narrowed = body["refresh_token"].as_str().unwrap();
        let (status, body) = token(&app, &rp, &[("grant_type", "refresh_token"), ("refresh_token", narrowed)]).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["scope"], first["scope"], "the family keeps the scope it was granted");
    }
}

backend_test! {
    async fn a_refresh_token_expires_when_idle(backend) {
        let app = TestApp::builder(backend)
            .settings(|s| s.oidc.refresh_idle_lifetime = std::time::Duration::from_secs(3600))
            .spawn()
            .await;
        let rp = setup(&app, "acme").await;
        let first = tokens(&app, &rp).await;
        app.clock.advance(time::Duration::seconds(3601));
        let (status, body) = token(&app, &rp, &[("grant_type", "refresh_token"), ("refresh_token", first["refresh_token"].as_str().unwrap())]).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    }
}

backend_test! {
    /// However often it is refreshed, no token of a sign-in outlives the family's absolute
    /// lifetime (the idle lifetime restarts at each use, the absolute one does not).
    async fn a_refresh_token_expires_at_the_absolute_lifetime_though_used_in_time(backend) {
        let app = TestApp::builder(backend)
            .settings(|s| {
                s.oidc.refresh_idle_lifetime = std::time::Duration::from_secs(3600);
                s.oidc.refresh_absolute_lifetime = std::time::Duration::from_secs(5400);
            })
            .spawn()
            .await;
        let rp = setup(&app, "acme").await;
        let first = tokens(&app, &rp).await;
        app.clock.advance(time::Duration::seconds(3000));
        let (status, second) = token(&app, &rp, &[("grant_type", "refresh_token"), ("refresh_token", first["refresh_token"].as_str().unwrap())]).await;
        assert_eq!(status, 200, "{second}");
        app.clock.advance(time::Duration::seconds(3000));
        let (status, body) = token(&app, &rp, &[("grant_type", "refresh_token"), ("refresh_token", second["refresh_token"].as_str().unwrap())]).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    }
}

backend_test! {
    async fn no_refresh_token_without_offline_access(backend) {
        let app = TestApp::spawn(backend).await;
        let rp = setup(&app, "acme").await;
        sign_in(&app, &rp).await;
        let (code, verifier) = authorize_code(&app, &rp, &[("scope", "openid email")]).await;
        let (status, body) = redeem(&app, &rp, &code, &verifier).await;
        assert_eq!(status, 200);
        assert!(body.get("refresh_token").is_none(), "{body}");
    }
}

backend_test! {
    async fn a_client_must_authenticate_the_way_it_registered(backend) {
        let app = TestApp::spawn(backend).await;
        let rp = setup(&app, "acme").await;
        // Registered for client_secret_basic; the secret in the body is refused.
        let res = app.client.post(app.url(&rp.path("/oauth2/token")))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", "x"), ("client_id", &rp.client_id), ("client_secret", &rp.client_secret)])
            .send().await.unwrap();
        assert_eq!(res.status(), 401);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client");
        // A wrong secret over Basic: 401 with a Basic challenge.
        let res = app.client.post(app.url(&rp.path("/oauth2/token")))
            .basic_auth(&rp.client_id, Some("wrong"))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
            .send().await.unwrap();
        assert_eq!(res.status(), 401);
        assert!(res.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic"));
        // No credentials at all.
        let res = app.client.post(app.url(&rp.path("/oauth2/token")))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", "x"), ("client_id", &rp.client_id)])
            .send().await.unwrap();
        assert_eq!(res.status(), 401);
    }
}

backend_test! {
    async fn a_code_expires_after_sixty_seconds(backend) {
        let app = TestApp::spawn(backend).await;
        let rp = setup(&app, "acme").await;
        sign_in(&app, &rp).await;
        let (code, verifier) = authorize_code(&app, &rp, &[]).await;
        app.clock.advance(time::Duration::seconds(61));
        let (status, body) = redeem(&app, &rp, &code, &verifier).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    }
}

backend_test! {
    async fn a_token_of_one_tenant_is_worthless_at_another(backend) {
        let app = TestApp::spawn(backend).await;
        let acme = setup(&app, "acme").await;
        let globex = setup(&app, "globex").await;
        let tokens = tokens(&app, &acme).await;
        let access = tokens["access_token"].as_str().unwrap();
        assert_eq!(userinfo(&app, &acme, access).await.status(), 200);
        assert_eq!(userinfo(&app, &globex, access).await.status(), 401);
        // Acme's client and refresh token mean nothing at globex either.
        let res = app.client.post(app.url(&globex.path("/oauth2/token")))
            .basic_auth(&acme.client_id, Some(&acme.client_secret))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap())])
            .send().await.unwrap();
        assert_eq!(res.status(), 401);
        let (status, body) = token(&app, &globex, &[("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap())]).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    }
}

backend_test! {
    async fn userinfo_refuses_a_token_in_the_query_or_none_at_all(backend) {
        let app = TestApp::spawn(backend).await;
        let rp = setup(&app, "acme").await;
        let tokens = tokens(&app, &rp).await;
        let access = tokens["access_token"].as_str().unwrap();
        let res = app.get(&format!("{}?access_token={access}", rp.path("/oauth2/userinfo"))).await;
        assert_eq!(res.status(), 400);
        let res = app.get(&rp.path("/oauth2/userinfo")).await;
        assert_eq!(res.status(), 401);
        assert!(res.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer realm="));
        // The access token expires with the clock.
        app.clock.advance(time::Duration::seconds(601));
        assert_eq!(userinfo(&app, &rp, access).await.status(), 401);
    }
}

backend_test! {
    async fn malformed_input_is_always_a_4xx(backend) {
        let app = TestApp::spawn(backend).await;
        let rp = setup(&app, "acme").await;
        sign_in(&app, &rp).await;
        let token_path = app.url(&rp.path("/oauth2/token"));
        let post = |body: &'static str, ct: &'static str| {
            app.client.post(token_path.clone()).basic_auth(&rp.client_id, Some(&rp.client_secret))
                .header("content-type", ct).body(body).send()
        };
        for (body, ct) in [
            ("grant_type=authorization_code", "application/x-www-form-urlencoded"),
            ("grant_type=password&username=a", "application/x-www-form-urlencoded"),
            ("grant_type=authorization_code&code=%ZZ", "application/x-www-form-urlencoded"),
            ("grant_type=a&grant_type=b", "application/x-www-form-urlencoded"),
            ("{\"grant_type\":\"client_credentials\"}", "application/json"),
            ("grant_type=refresh_token&refresh_token=", "application/x-www-form-urlencoded"),
        ] {
            let status = post(body, ct).await.unwrap().status().as_u16();
            assert!((400..500).contains(&status), "{body}: {status}");
        }
        let res = app.client.post(token_path.clone()).header("authorization", "Basic !!!")
            .form(&[("grant_type", "client_credentials")]).send().await.unwrap();
        assert_eq!(res.status(), 401);
        for query in ["response_type=code", "client_id=%FF%FE", "prompt=none&prompt=login", "max_age=-1&client_id=x"] {
            let status = authorize(&app, &rp, query).await.status().as_u16();
            assert!((400..500).contains(&status), "{query}: {status}");
        }
        let (_, challenge) = pkce();
        for extra in [[("max_age", "soon")], [("prompt", "none login")], [("response_type", "token")], [("scope", "email")], [("code_challenge", "short")]] {
            let res = authorize(&app, &rp, &authorize_query(&rp, &challenge, &extra)).await;
            assert!(param(&location_params(&res), "error").is_some(), "{extra:?}");
        }
        for garbage in ["x.y.z", "a.b", "", "eyJhbGciOiJub25lIn0.e30."] {
            assert_eq!(userinfo(&app, &rp, garbage).await.status(), 401, "{garbage}");
        }
    }
}

backend_test! {
    async fn client_credentials_are_for_confidential_clients_with_that_grant(backend) {
        let app = TestApp::spawn(backend).await;
        let rp = setup(&app, "acme").await;
        let (status, body) = token(&app, &rp, &[("grant_type", "client_credentials")]).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("unauthorized_client")));
        let service = register(&app, &rp.tenant, passgate::oidc::clients::NewClient {
            name: "Provisioning".into(),
            grant_types: vec!["client_credentials".into()],
            extra_scopes: vec!["passgate:admin".into()],
            ..Default::default()
        }).await;
        let service = Rp { client_id: service.client_id, client_secret: service.client_secret.unwrap(), ..rp };
        let (status, body) = token(&app, &service, &[("grant_type", "client_credentials"), ("scope", "passgate:admin")]).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("id_token").is_none() && body.get("refresh_token").is_none());
        let claims = crate::oidc_flow::decode_payload(body["access_token"].as_str().unwrap());
        assert_eq!(claims["client_id"], service.client_id);
        assert_eq!(claims["scope"], "passgate:admin");
        let (status, body) = token(&app, &service, &[("grant_type", "client_credentials"), ("scope", "openid")]).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_scope")));
        // The domain check the admin API will use.
        let verified = passgate::web::oidc::verify_bearer(&app.state, &service.tenant, crate::oidc_negative::cc_token(&app, &service).await).await.unwrap();
        assert_eq!(verified.sub, service.client_id);
        assert!(verified.scopes().contains("passgate:admin"));
    }
}

pub async fn cc_token(app: &TestApp, rp: &Rp) -> String {
    let (_, body) = token(app, rp, &[("grant_type", "client_credentials")]).await;
    body["access_token"].as_str().unwrap().to_string()
}
