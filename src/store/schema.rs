// The diesel schema for both backends: portable types only (STYLE lesson 6).
// Kept by hand in step with migrations/{sqlite,postgres}; the store tests exercise every table.

diesel::table! {
    installation (id) {
        id -> Text,
        master_key_check -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    tenants (id) {
        id -> Text,
        slug -> Text,
        name -> Text,
        mail_from -> Nullable<Text>,
        is_disabled -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    tenant_policies (tenant_id) {
        tenant_id -> Text,
        document -> Text,
        version -> BigInt,
        updated_at -> Timestamp,
        updated_by -> Nullable<Text>,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        tenant_id -> Text,
        email -> Text,
        email_verified -> Bool,
        display_name -> Nullable<Text>,
        role -> Text,
        status -> Text,
        is_password_disabled -> Bool,
        enrollment_dismissals -> Integer,
        enrollment_opt_out_reason -> Nullable<Text>,
        enrollment_opt_out_at -> Nullable<Timestamp>,
        restricted_since -> Nullable<Timestamp>,
        restricted_until -> Nullable<Timestamp>,
        deadline_notice_sent_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        last_login_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    groups (id) {
        id -> Text,
        tenant_id -> Text,
        name -> Text,
        description -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    group_members (group_id, user_id) {
        tenant_id -> Text,
        group_id -> Text,
        user_id -> Text,
        added_at -> Timestamp,
    }
}

diesel::table! {
    password_credentials (user_id) {
        user_id -> Text,
        tenant_id -> Text,
        phc_hash -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    passkeys (id) {
        id -> Text,
        tenant_id -> Text,
        user_id -> Text,
        credential_id -> Text,
        public_key -> Binary,
        sign_count -> BigInt,
        aaguid -> Text,
        transports -> Text,
        backup_eligible -> Bool,
        backup_state -> Bool,
        user_verified -> Bool,
        attestation_format -> Text,
        label -> Text,
        credential -> Text,
        enrolled_via -> Text,
        created_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
        counter_flagged_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    browser_sessions (id) {
        id -> Text,
        token_hash -> Text,
        tenant_id -> Text,
        user_id -> Text,
        amr -> Text,
        acr -> Nullable<Text>,
        auth_time -> Timestamp,
        csrf_secret -> Text,
        ip -> Nullable<Text>,
        browser_family -> Nullable<Text>,
        os_family -> Nullable<Text>,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
        idle_expires_at -> Timestamp,
        absolute_expires_at -> Timestamp,
        ended_at -> Nullable<Timestamp>,
        passkey_id -> Nullable<Text>,
    }
}

diesel::table! {
    webauthn_ceremonies (id) {
        id -> Text,
        tenant_id -> Text,
        user_id -> Nullable<Text>,
        kind -> Text,
        purpose -> Text,
        state -> Text,
        context -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    link_tokens (id) {
        id -> Text,
        tenant_id -> Text,
        user_id -> Nullable<Text>,
        purpose -> Text,
        token_hash -> Text,
        created_by -> Nullable<Text>,
        details -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    recovery_codes (user_id) {
        user_id -> Text,
        tenant_id -> Text,
        code_hash -> Text,
        created_at -> Timestamp,
        failed_attempts -> Integer,
        locked_until -> Nullable<Timestamp>,
    }
}

diesel::table! {
    oidc_clients (id) {
        id -> Text,
        tenant_id -> Text,
        name -> Text,
        secret_hash -> Nullable<Text>,
        is_public -> Bool,
        is_first_party -> Bool,
        token_endpoint_auth_method -> Text,
        redirect_uris -> Text,
        post_logout_redirect_uris -> Text,
        grant_types -> Text,
        scopes -> Text,
        id_token_signed_response_alg -> Text,
        is_refresh_always_issued -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        secret_rotated_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    consents (tenant_id, user_id, client_id) {
        tenant_id -> Text,
        user_id -> Text,
        client_id -> Text,
        scopes -> Text,
        granted_at -> Timestamp,
    }
}

diesel::table! {
    authorization_codes (code_hash) {
        code_hash -> Text,
        tenant_id -> Text,
        client_id -> Text,
        user_id -> Text,
        session_id -> Nullable<Text>,
        redirect_uri -> Text,
        scope -> Text,
        nonce -> Nullable<Text>,
        code_challenge -> Text,
        auth_time -> Timestamp,
        amr -> Text,
        acr -> Nullable<Text>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        redeemed_at -> Nullable<Timestamp>,
        issued_family_id -> Nullable<Text>,
        issued_access_jti -> Nullable<Text>,
        issued_access_expires_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    refresh_token_families (id) {
        id -> Text,
        tenant_id -> Text,
        client_id -> Text,
        user_id -> Text,
        session_id -> Nullable<Text>,
        scope -> Text,
        auth_time -> Timestamp,
        amr -> Text,
        acr -> Nullable<Text>,
        created_at -> Timestamp,
        absolute_expires_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
        revoked_reason -> Nullable<Text>,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Text,
        tenant_id -> Text,
        family_id -> Text,
        created_at -> Timestamp,
        idle_expires_at -> Timestamp,
        rotated_at -> Nullable<Timestamp>,
        access_jti -> Text,
        access_expires_at -> Timestamp,
    }
}

diesel::table! {
    revoked_access_tokens (jti) {
        jti -> Text,
        tenant_id -> Text,
        expires_at -> Timestamp,
        revoked_at -> Timestamp,
    }
}

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        tenant_id -> Text,
        alg -> Text,
        public_jwk -> Text,
        private_jwk_encrypted -> Text,
        created_at -> Timestamp,
        publish_at -> Timestamp,
        sign_from -> Timestamp,
        retired_at -> Nullable<Timestamp>,
        remove_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    upstream_idps (id) {
        id -> Text,
        tenant_id -> Text,
        slug -> Text,
        display_name -> Text,
        issuer_url -> Text,
        client_id -> Text,
        client_secret_encrypted -> Nullable<Text>,
        scopes -> Text,
        claim_mapping -> Text,
        is_sso_required -> Bool,
        is_jit_provisioning -> Bool,
        link_policy -> Text,
        is_enabled -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    upstream_idp_domains (tenant_id, domain) {
        tenant_id -> Text,
        domain -> Text,
        idp_id -> Text,
    }
}

diesel::table! {
    federated_identities (id) {
        id -> Text,
        tenant_id -> Text,
        idp_id -> Text,
        subject -> Text,
        user_id -> Text,
        email -> Nullable<Text>,
        created_at -> Timestamp,
        last_login_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    upstream_auth_requests (id) {
        id -> Text,
        tenant_id -> Text,
        idp_id -> Text,
        state_hash -> Text,
        nonce -> Text,
        pkce_verifier_encrypted -> Text,
        return_to -> Nullable<Text>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    audit_events (id) {
        id -> Text,
        tenant_id -> Nullable<Text>,
        occurred_at -> Timestamp,
        event_type -> Text,
        actor_kind -> Text,
        actor_id -> Nullable<Text>,
        subject_user_id -> Nullable<Text>,
        ip -> Nullable<Text>,
        browser_family -> Nullable<Text>,
        os_family -> Nullable<Text>,
        details -> Text,
        needs_review -> Bool,
    }
}

diesel::table! {
    audit_reviews (event_id) {
        event_id -> Text,
        tenant_id -> Nullable<Text>,
        reviewed_by -> Text,
        reviewed_at -> Timestamp,
        note -> Nullable<Text>,
    }
}

diesel::table! {
    auth_events (id) {
        id -> Text,
        tenant_id -> Text,
        user_id -> Nullable<Text>,
        occurred_at -> Timestamp,
        method -> Text,
        outcome -> Text,
        failure_reason -> Nullable<Text>,
        authenticator -> Nullable<Text>,
        browser_family -> Nullable<Text>,
        os_family -> Nullable<Text>,
        duration_ms -> Nullable<BigInt>,
    }
}

diesel::table! {
    mail_outbox (id) {
        id -> Text,
        tenant_id -> Nullable<Text>,
        template -> Text,
        recipient -> Text,
        sender -> Text,
        subject -> Text,
        body_text -> Text,
        body_html -> Nullable<Text>,
        created_at -> Timestamp,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        claimed_by -> Nullable<Text>,
        claimed_until -> Nullable<Timestamp>,
        sent_at -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    rate_limit_windows (bucket, window_start) {
        bucket -> Text,
        window_start -> Timestamp,
        hits -> BigInt,
        expires_at -> Timestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    installation,
    tenants,
    tenant_policies,
    users,
    groups,
    group_members,
    password_credentials,
    passkeys,
    browser_sessions,
    webauthn_ceremonies,
    link_tokens,
    recovery_codes,
    oidc_clients,
    consents,
    authorization_codes,
    refresh_token_families,
    refresh_tokens,
    revoked_access_tokens,
    signing_keys,
    upstream_idps,
    upstream_idp_domains,
    federated_identities,
    upstream_auth_requests,
    audit_events,
    audit_reviews,
    auth_events,
    mail_outbox,
    rate_limit_windows,
);
