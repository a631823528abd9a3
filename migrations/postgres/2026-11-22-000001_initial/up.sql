-- passgate: the whole MISSION's schema (O*, P*, C*, S*, M*, F*, A*, X*, D*).
-- Conventions: ids are TEXT (UUIDv7 unless the protocol names them); timestamps are UTC
-- `TIMESTAMP`; JSON is TEXT; secrets are stored only as SHA-256 hex digests (random tokens),
-- argon2id PHC strings (passwords) or JWE under the master key (private keys, upstream secrets).
-- Every tenant-owned row carries tenant_id; child rows reference their parent together with
-- the tenant id, so the database itself refuses a row that crosses tenants.

CREATE TABLE installation (
    id TEXT PRIMARY KEY,
    master_key_check TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    mail_from TEXT,
    is_disabled BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- Tenant policy as one versioned JSON document (user verification, attestation rules,
-- counter policy, email recovery, rollout dates, kiosk groups, SSO requirement, token algs):
-- new policy knobs must not need a schema change.
CREATE TABLE tenant_policies (
    tenant_id TEXT PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    document TEXT NOT NULL,
    version BIGINT NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    updated_by TEXT
);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    email_verified BOOLEAN NOT NULL,
    display_name TEXT,
    role TEXT NOT NULL,
    status TEXT NOT NULL,
    is_password_disabled BOOLEAN NOT NULL DEFAULT FALSE,
    enrollment_dismissals INTEGER NOT NULL DEFAULT 0,
    enrollment_opt_out_reason TEXT,
    enrollment_opt_out_at TIMESTAMP,
    restricted_since TIMESTAMP,
    restricted_until TIMESTAMP,
    deadline_notice_sent_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    last_login_at TIMESTAMP,
    UNIQUE (tenant_id, email),
    UNIQUE (tenant_id, id)
);

-- Named groups: sensitive-role policies (P8), kiosk carve-outs (S4), rollout segments (M4, X5).
CREATE TABLE groups (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (tenant_id, name),
    UNIQUE (tenant_id, id)
);

CREATE TABLE group_members (
    tenant_id TEXT NOT NULL,
    group_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    added_at TIMESTAMP NOT NULL,
    PRIMARY KEY (group_id, user_id),
    FOREIGN KEY (tenant_id, group_id) REFERENCES groups (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX group_members_user ON group_members (tenant_id, user_id);

-- Absence of a row means the account has no password (M1, C7).
CREATE TABLE password_credentials (
    user_id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    phc_hash TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

-- P1: every field of a passkey. credential_id is unique across every user and tenant.
CREATE TABLE passkeys (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    credential_id TEXT NOT NULL UNIQUE,
    public_key BYTEA NOT NULL,
    sign_count BIGINT NOT NULL,
    aaguid TEXT NOT NULL,
    transports TEXT NOT NULL,
    backup_eligible BOOLEAN NOT NULL,
    backup_state BOOLEAN NOT NULL,
    user_verified BOOLEAN NOT NULL,
    attestation_format TEXT NOT NULL,
    label TEXT NOT NULL,
    credential TEXT NOT NULL,
    enrolled_via TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP,
    counter_flagged_at TIMESTAMP,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX passkeys_user ON passkeys (tenant_id, user_id);

CREATE TABLE browser_sessions (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    tenant_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    amr TEXT NOT NULL,
    acr TEXT,
    auth_time TIMESTAMP NOT NULL,
    csrf_secret TEXT NOT NULL,
    ip TEXT,
    browser_family TEXT,
    os_family TEXT,
    created_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL,
    idle_expires_at TIMESTAMP NOT NULL,
    absolute_expires_at TIMESTAMP NOT NULL,
    ended_at TIMESTAMP,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX browser_sessions_user ON browser_sessions (tenant_id, user_id);

-- WebAuthn ceremony state: server-side, single use (deleted when consumed), expiring.
CREATE TABLE webauthn_ceremonies (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id TEXT,
    kind TEXT NOT NULL,
    purpose TEXT NOT NULL,
    state TEXT NOT NULL,
    context TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX webauthn_ceremonies_expiry ON webauthn_ceremonies (expires_at);

-- Single-use links: invitations, first-run setup, trusted-device, email and admin recovery.
CREATE TABLE link_tokens (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id TEXT,
    purpose TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_by TEXT,
    details TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX link_tokens_user ON link_tokens (tenant_id, user_id);

CREATE TABLE recovery_codes (
    user_id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    locked_until TIMESTAMP,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE oidc_clients (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    secret_hash TEXT,
    is_public BOOLEAN NOT NULL,
    is_first_party BOOLEAN NOT NULL,
    token_endpoint_auth_method TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,
    post_logout_redirect_uris TEXT NOT NULL,
    grant_types TEXT NOT NULL,
    scopes TEXT NOT NULL,
    id_token_signed_response_alg TEXT NOT NULL,
    is_refresh_always_issued BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    secret_rotated_at TIMESTAMP,
    UNIQUE (tenant_id, id)
);

CREATE TABLE consents (
    tenant_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    scopes TEXT NOT NULL,
    granted_at TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, user_id, client_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, client_id) REFERENCES oidc_clients (tenant_id, id) ON DELETE CASCADE
);

-- RFC 6749 §4.1.2: a code is single use; what its redemption issued is kept so a replay can
-- revoke it.
CREATE TABLE authorization_codes (
    code_hash TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    session_id TEXT,
    redirect_uri TEXT NOT NULL,
    scope TEXT NOT NULL,
    nonce TEXT,
    code_challenge TEXT NOT NULL,
    auth_time TIMESTAMP NOT NULL,
    amr TEXT NOT NULL,
    acr TEXT,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    redeemed_at TIMESTAMP,
    issued_family_id TEXT,
    issued_access_jti TEXT,
    issued_access_expires_at TIMESTAMP,
    FOREIGN KEY (tenant_id, client_id) REFERENCES oidc_clients (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX authorization_codes_expiry ON authorization_codes (expires_at);

CREATE TABLE refresh_token_families (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    session_id TEXT,
    scope TEXT NOT NULL,
    auth_time TIMESTAMP NOT NULL,
    amr TEXT NOT NULL,
    acr TEXT,
    created_at TIMESTAMP NOT NULL,
    absolute_expires_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP,
    revoked_reason TEXT,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, client_id) REFERENCES oidc_clients (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX refresh_token_families_user ON refresh_token_families (tenant_id, user_id);

-- Rotation: every use sets rotated_at and issues a successor; a second use of a rotated
-- token is reuse and revokes the family (OAuth 2.0 Security BCP §4.14.2).
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    family_id TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    idle_expires_at TIMESTAMP NOT NULL,
    rotated_at TIMESTAMP,
    access_jti TEXT NOT NULL,
    access_expires_at TIMESTAMP NOT NULL,
    FOREIGN KEY (tenant_id, family_id) REFERENCES refresh_token_families (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

-- Access tokens are self-contained JWTs; a revoked one is remembered until it expires.
CREATE TABLE revoked_access_tokens (
    jti TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    expires_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP NOT NULL
);
CREATE INDEX revoked_access_tokens_expiry ON revoked_access_tokens (expires_at);

-- O7: published before it signs (publish_at <= sign_from), kept in the JWKS after it retires
-- until everything it signed has expired (remove_at).
CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    alg TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    private_jwk_encrypted TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    publish_at TIMESTAMP NOT NULL,
    sign_from TIMESTAMP NOT NULL,
    retired_at TIMESTAMP,
    remove_at TIMESTAMP
);
CREATE INDEX signing_keys_tenant ON signing_keys (tenant_id, alg);

CREATE TABLE upstream_idps (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    slug TEXT NOT NULL,
    display_name TEXT NOT NULL,
    issuer_url TEXT NOT NULL,
    client_id TEXT NOT NULL,
    client_secret_encrypted TEXT,
    scopes TEXT NOT NULL,
    claim_mapping TEXT NOT NULL,
    is_sso_required BOOLEAN NOT NULL,
    is_jit_provisioning BOOLEAN NOT NULL,
    link_policy TEXT NOT NULL,
    is_enabled BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (tenant_id, slug),
    UNIQUE (tenant_id, id)
);

-- F2 home-realm discovery: an email domain routes to one IdP within a tenant.
CREATE TABLE upstream_idp_domains (
    tenant_id TEXT NOT NULL,
    domain TEXT NOT NULL,
    idp_id TEXT NOT NULL,
    PRIMARY KEY (tenant_id, domain),
    FOREIGN KEY (tenant_id, idp_id) REFERENCES upstream_idps (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE federated_identities (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    idp_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    user_id TEXT NOT NULL,
    email TEXT,
    created_at TIMESTAMP NOT NULL,
    last_login_at TIMESTAMP,
    UNIQUE (idp_id, subject),
    FOREIGN KEY (tenant_id, idp_id) REFERENCES upstream_idps (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX federated_identities_user ON federated_identities (tenant_id, user_id);

-- Upstream authorization requests in flight (state, nonce, PKCE verifier), so any node can
-- take the callback.
CREATE TABLE upstream_auth_requests (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    idp_id TEXT NOT NULL,
    state_hash TEXT NOT NULL UNIQUE,
    nonce TEXT NOT NULL,
    pkce_verifier_encrypted TEXT NOT NULL,
    return_to TEXT,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    FOREIGN KEY (tenant_id, idp_id) REFERENCES upstream_idps (tenant_id, id) ON DELETE CASCADE
);

-- Append-only security log. No foreign keys: the record outlives the user it names.
CREATE TABLE audit_events (
    id TEXT PRIMARY KEY,
    tenant_id TEXT,
    occurred_at TIMESTAMP NOT NULL,
    event_type TEXT NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_id TEXT,
    subject_user_id TEXT,
    ip TEXT,
    browser_family TEXT,
    os_family TEXT,
    details TEXT NOT NULL,
    needs_review BOOLEAN NOT NULL
);
CREATE INDEX audit_events_tenant_time ON audit_events (tenant_id, occurred_at);
CREATE INDEX audit_events_review ON audit_events (tenant_id, needs_review);

-- Reviews live beside the events so the events themselves are never updated.
CREATE TABLE audit_reviews (
    event_id TEXT PRIMARY KEY REFERENCES audit_events (id),
    tenant_id TEXT,
    reviewed_by TEXT NOT NULL,
    reviewed_at TIMESTAMP NOT NULL,
    note TEXT
);

-- Every authentication attempt, for the migration metrics X1-X5.
CREATE TABLE auth_events (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id TEXT,
    occurred_at TIMESTAMP NOT NULL,
    method TEXT NOT NULL,
    outcome TEXT NOT NULL,
    failure_reason TEXT,
    authenticator TEXT,
    browser_family TEXT,
    os_family TEXT,
    duration_ms BIGINT
);
CREATE INDEX auth_events_tenant_time ON auth_events (tenant_id, occurred_at);

-- D4: mail is written in the transaction that causes it and delivered by a worker that
-- claims rows with a lease, so a message is neither lost nor sent twice across nodes.
CREATE TABLE mail_outbox (
    id TEXT PRIMARY KEY,
    tenant_id TEXT,
    template TEXT NOT NULL,
    recipient TEXT NOT NULL,
    sender TEXT NOT NULL,
    subject TEXT NOT NULL,
    body_text TEXT NOT NULL,
    body_html TEXT,
    created_at TIMESTAMP NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    claimed_by TEXT,
    claimed_until TIMESTAMP,
    sent_at TIMESTAMP,
    last_error TEXT
);
CREATE INDEX mail_outbox_due ON mail_outbox (sent_at, next_attempt_at);

-- P7 fixed windows shared by every node (PostgreSQL); buckets name the endpoint and key.
CREATE TABLE rate_limit_windows (
    bucket TEXT NOT NULL,
    window_start TIMESTAMP NOT NULL,
    hits BIGINT NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    PRIMARY KEY (bucket, window_start)
);
CREATE INDEX rate_limit_windows_expiry ON rate_limit_windows (expires_at);
