//! Clients (O6): registration with strict redirect-URI rules, secrets shown once and stored
//! as SHA-256 digests (a 256-bit random secret gains nothing from a slow hash, which would
//! cost a password hash's time per token request), and client authentication at the token
//! endpoint.

use url::Url;

use super::jwt::Alg;
use super::scopes::{self, Scopes};
use super::{Error, Result};
use crate::clock::UtcTime;
use crate::crypto::{constant_time_eq, new_id, random_token, sha256_hex};
use std::collections::HashSet;
use std::sync::Arc;

use super::OidcCache;
use crate::store::clients::{self as repo, OidcClient};
use crate::store::{DbConn, Store, StoreError};

pub const GRANT_AUTHORIZATION_CODE: &str = "authorization_code";
pub const GRANT_REFRESH_TOKEN: &str = "refresh_token";
pub const GRANT_CLIENT_CREDENTIALS: &str = "client_credentials";

/// How a client proves itself at the token endpoint (RFC 6749 §2.3, OIDC Core §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    /// Public clients (SPAs, native apps): PKCE is what binds their codes.
    None,
}

impl AuthMethod {
    pub fn name(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::None => "none",
        }
    }

    pub fn parse(raw: &str) -> Option<AuthMethod> {
        match raw {
            "client_secret_basic" => Some(AuthMethod::ClientSecretBasic),
            "client_secret_post" => Some(AuthMethod::ClientSecretPost),
            "none" => Some(AuthMethod::None),
            _ => None,
        }
    }
}

/// A registered client, with its lists parsed.
#[derive(Debug, Clone)]
pub struct Client {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    secret_hash: Option<String>,
    pub is_public: bool,
    pub is_first_party: bool,
    pub auth_method: AuthMethod,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    /// Every scope the client may receive (OIDC scopes plus registered API scopes).
    pub scopes: Scopes,
    pub id_token_alg: Alg,
    pub is_refresh_always_issued: bool,
}

fn json_list(raw: &str) -> Vec<String> {
    serde_json::from_str(raw).unwrap_or_default()
}

impl From<OidcClient> for Client {
    fn from(row: OidcClient) -> Client {
        let scopes = json_list(&row.scopes);
        Client {
            auth_method: AuthMethod::parse(&row.token_endpoint_auth_method)
                .unwrap_or(AuthMethod::ClientSecretBasic),
            redirect_uris: json_list(&row.redirect_uris),
            post_logout_redirect_uris: json_list(&row.post_logout_redirect_uris),
            grant_types: json_list(&row.grant_types),
            scopes: Scopes::of(scopes.iter().map(String::as_str)),
            id_token_alg: Alg::parse(&row.id_token_signed_response_alg).unwrap_or(Alg::Rs256),
            id: row.id,
            tenant_id: row.tenant_id,
            name: row.name,
            secret_hash: row.secret_hash,
            is_public: row.is_public,
            is_first_party: row.is_first_party,
            is_refresh_always_issued: row.is_refresh_always_issued,
        }
    }
}

impl Client {
    pub fn allows_grant(&self, grant: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant)
    }

    /// RFC 6749 §3.1.2.3 exact matching, with the one exception RFC 8252 §7.3 requires:
    /// for a loopback IP redirect URI, any port is accepted (native apps get an ephemeral one).
    pub fn is_redirect_uri_registered(&self, uri: &str) -> bool {
        matches_registered(&self.redirect_uris, uri)
    }

    pub fn is_post_logout_redirect_uri_registered(&self, uri: &str) -> bool {
        matches_registered(&self.post_logout_redirect_uris, uri)
    }
}

fn matches_registered(registered: &[String], uri: &str) -> bool {
    registered.iter().any(|r| r == uri)
        || registered
            .iter()
            .filter_map(|r| without_loopback_port(r))
            .any(|r| Some(r) == without_loopback_port(uri))
}

/// `uri` without its port, when it is an http URI on a loopback IP literal.
fn without_loopback_port(uri: &str) -> Option<String> {
    let mut url = Url::parse(uri).ok()?;
    if url.as_str() != uri || url.scheme() != "http" || !is_loopback_ip(&url) {
        return None;
    }
    url.set_port(None).ok()?;
    Some(url.to_string())
}

fn is_loopback_ip(url: &Url) -> bool {
    matches!(url.host_str(), Some("127.0.0.1") | Some("[::1]"))
}

/// The registration rules: an absolute URI written in normal form (so exact matching is
/// unambiguous), https — or http on a loopback IP (RFC 8252 §7.3), or on `localhost` for
/// development servers (Auth.js/Next.js default to it; matched exactly, port included) —
/// with no fragment (RFC 6749 §3.1.2), no wildcard and no user-info (which makes
/// `https://good@evil/` tricks).
pub fn validate_redirect_uri(raw: &str) -> std::result::Result<(), String> {
    if raw.contains('#') {
        return Err(format!("redirect URI {raw} has a fragment"));
    }
    if raw.contains('*') {
        return Err(format!(
            "redirect URI {raw} has a wildcard; register exact URIs"
        ));
    }
    let url =
        Url::parse(raw).map_err(|e| format!("redirect URI {raw} is not an absolute URI: {e}"))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback_ip(&url) || url.host_str() == Some("localhost") => {}
        "http" => {
            return Err(format!(
                "redirect URI {raw} uses http; use https, or http on 127.0.0.1, [::1] or localhost for native apps and development"
            ));
        }
        other => {
            return Err(format!(
                "redirect URI scheme '{other}' is not allowed; use https"
            ));
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("redirect URI {raw} has user information"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("redirect URI {raw} has no host"));
    }
    if url.as_str() != raw {
        return Err(format!("redirect URI {raw} must be written as {url}"));
    }
    Ok(())
}

/// What an operator registers.
#[derive(Debug, Clone, Default)]
pub struct NewClient {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub is_public: bool,
    pub is_first_party: bool,
    /// Empty: authorization_code (+ refresh_token).
    pub grant_types: Vec<String>,
    pub auth_method: Option<String>,
    /// API scopes beyond the OIDC ones, e.g. `passgate:admin`.
    pub extra_scopes: Vec<String>,
    pub id_token_alg: Option<String>,
    pub is_refresh_always_issued: bool,
}

/// A client just registered or given a new secret: the secret is shown once, never stored.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IssuedClient {
    pub client_id: String,
    pub client_secret: Option<String>,
}

fn invalid(message: impl Into<String>) -> Error {
    Error::InvalidRequest(message.into())
}

pub fn create_client(
    conn: &mut DbConn,
    tenant_id: &str,
    new: &NewClient,
    now: UtcTime,
) -> Result<IssuedClient> {
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(invalid("client name must be 1-200 characters"));
    }
    let mut grants: Vec<String> = if new.grant_types.is_empty() {
        vec![GRANT_AUTHORIZATION_CODE.into(), GRANT_REFRESH_TOKEN.into()]
    } else {
        new.grant_types.clone()
    };
    for grant in &grants {
        if ![
            GRANT_AUTHORIZATION_CODE,
            GRANT_REFRESH_TOKEN,
            GRANT_CLIENT_CREDENTIALS,
        ]
        .contains(&grant.as_str())
        {
            return Err(invalid(format!(
                "unknown grant '{grant}'; use authorization_code, refresh_token or client_credentials"
            )));
        }
    }
    if grants.iter().any(|g| g == GRANT_AUTHORIZATION_CODE)
        && !grants.iter().any(|g| g == GRANT_REFRESH_TOKEN)
    {
        grants.push(GRANT_REFRESH_TOKEN.into());
    }
    grants.sort();
    grants.dedup();
    let uses_code = grants.iter().any(|g| g == GRANT_AUTHORIZATION_CODE);
    if new.is_public && grants.iter().any(|g| g == GRANT_CLIENT_CREDENTIALS) {
        return Err(invalid(
            "a public client cannot use client_credentials: it has no secret",
        ));
    }
    if uses_code && new.redirect_uris.is_empty() {
        return Err(invalid(
            "an authorization_code client needs at least one --redirect-uri",
        ));
    }
    for uri in new
        .redirect_uris
        .iter()
        .chain(&new.post_logout_redirect_uris)
    {
        validate_redirect_uri(uri).map_err(invalid)?;
    }
    let auth_method = match (new.is_public, new.auth_method.as_deref()) {
        (true, None | Some("none")) => AuthMethod::None,
        (true, Some(other)) => {
            return Err(invalid(format!(
                "a public client authenticates with 'none', not '{other}'"
            )));
        }
        (false, None) => AuthMethod::ClientSecretBasic,
        (false, Some(raw)) => match AuthMethod::parse(raw) {
            Some(AuthMethod::None) | None => {
                return Err(invalid(format!(
                    "token auth method '{raw}': use client_secret_basic or client_secret_post"
                )));
            }
            Some(m) => m,
        },
    };
    let mut allowed: Vec<String> = scopes::OIDC_SCOPES.iter().map(|s| s.to_string()).collect();
    for extra in &new.extra_scopes {
        if Scopes::parse(extra).is_none_or(|s| s.iter().count() != 1) {
            return Err(invalid(format!("'{extra}' is not a valid scope")));
        }
        allowed.push(extra.clone());
    }
    allowed.sort();
    allowed.dedup();
    let id_token_alg = match new.id_token_alg.as_deref() {
        None => Alg::Rs256,
        Some(raw) => Alg::parse(raw)
            .ok_or_else(|| invalid("id_token_signed_response_alg must be RS256 or ES256"))?,
    };
    let secret = (!new.is_public).then(|| random_token(32));
    let json = |v: &Vec<String>| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
    let row = OidcClient {
        id: new_id(),
        tenant_id: tenant_id.to_string(),
        name: name.to_string(),
        secret_hash: secret.as_deref().map(sha256_hex),
        is_public: new.is_public,
        is_first_party: new.is_first_party,
        token_endpoint_auth_method: auth_method.name().to_string(),
        redirect_uris: json(&new.redirect_uris),
        post_logout_redirect_uris: json(&new.post_logout_redirect_uris),
        grant_types: json(&grants),
        scopes: json(&allowed),
        id_token_signed_response_alg: id_token_alg.name().to_string(),
        is_refresh_always_issued: new.is_refresh_always_issued,
        created_at: now,
        updated_at: now,
        secret_rotated_at: None,
    };
    repo::insert_client(conn, &row)?;
    Ok(IssuedClient {
        client_id: row.id,
        client_secret: secret,
    })
}

pub fn find_client(conn: &mut DbConn, tenant_id: &str, client_id: &str) -> Result<Option<Client>> {
    Ok(repo::find_client(conn, tenant_id, client_id)?.map(Client::from))
}

pub fn list_clients(conn: &mut DbConn, tenant_id: &str) -> Result<Vec<OidcClient>> {
    Ok(repo::list_clients(conn, tenant_id)?)
}

/// Deletes a client; its codes, consents and refresh tokens go with it (foreign keys).
pub fn delete_client(conn: &mut DbConn, tenant_id: &str, client_id: &str) -> Result<bool> {
    Ok(repo::delete_client(conn, tenant_id, client_id)? == 1)
}

/// Replaces a confidential client's secret; the old one stops working at once on this node
/// and within the client cache's lifetime on others.
pub fn rotate_secret(
    conn: &mut DbConn,
    tenant_id: &str,
    client_id: &str,
    now: UtcTime,
) -> Result<IssuedClient> {
    let client = find_client(conn, tenant_id, client_id)?
        .ok_or_else(|| invalid(format!("no client '{client_id}' in this tenant")))?;
    if client.is_public {
        return Err(invalid("a public client has no secret"));
    }
    let secret = random_token(32);
    repo::update_client_secret(conn, tenant_id, client_id, &sha256_hex(&secret), now)?;
    Ok(IssuedClient {
        client_id: client.id,
        client_secret: Some(secret),
    })
}

/// What a token-endpoint request presented (RFC 6749 §2.3.1).
#[derive(Debug, Clone)]
pub enum Credentials {
    Basic { client_id: String, secret: String },
    Post { client_id: String, secret: String },
    None { client_id: String },
}

impl Credentials {
    pub fn client_id(&self) -> &str {
        match self {
            Credentials::Basic { client_id, .. }
            | Credentials::Post { client_id, .. }
            | Credentials::None { client_id } => client_id,
        }
    }

    pub fn is_basic(&self) -> bool {
        matches!(self, Credentials::Basic { .. })
    }
}

/// Checks the presented credentials against the client's registered method: a client may
/// only authenticate the way it was registered (a confidential client cannot drop its
/// secret, a public one cannot present one).
pub fn authenticate(client: Option<&Client>, credentials: &Credentials) -> Result<()> {
    let basic = credentials.is_basic();
    let fail = || Error::invalid_client("client authentication failed", basic);
    let client = client.ok_or_else(fail)?;
    let secret = match (client.auth_method, credentials) {
        (AuthMethod::ClientSecretBasic, Credentials::Basic { secret, .. })
        | (AuthMethod::ClientSecretPost, Credentials::Post { secret, .. }) => secret,
        (AuthMethod::None, Credentials::None { .. }) => return Ok(()),
        (registered, _) => {
            return Err(Error::invalid_client(
                format!("this client must authenticate with {}", registered.name()),
                basic,
            ));
        }
    };
    let expected = client.secret_hash.as_deref().ok_or_else(fail)?;
    if constant_time_eq(sha256_hex(secret).as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(fail())
    }
}

/// The origins a browser may call the token, userinfo and revocation endpoints from (CORS):
/// those of the tenant's public clients' redirect URIs, cached per node.
pub async fn allowed_origins(
    store: &Store,
    cache: &OidcCache,
    tenant_id: &str,
) -> Result<Arc<HashSet<String>>, StoreError> {
    if let Some(origins) = cache.origins(tenant_id) {
        return Ok(origins);
    }
    let id = tenant_id.to_string();
    let lists = store
        .read(move |conn| crate::store::clients::find_public_redirect_uris(conn, &id))
        .await?;
    let origins: HashSet<String> = lists
        .iter()
        .flat_map(|list| serde_json::from_str::<Vec<String>>(list).unwrap_or_default())
        .filter_map(|uri| url::Url::parse(&uri).ok())
        .map(|url| url.origin().ascii_serialization())
        .filter(|origin| origin != "null")
        .collect();
    let origins = Arc::new(origins);
    cache.put_origins(tenant_id, origins.clone());
    Ok(origins)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_follow_the_registration_rules() {
        for good in [
            "https://app.example.com/callback",
            "https://app.example.com:8443/cb?tenant=1",
            "http://127.0.0.1/callback",
            "http://[::1]:8080/cb",
            "http://localhost/cb",
            "http://localhost:3000/api/auth/callback/passgate",
        ] {
            assert!(validate_redirect_uri(good).is_ok(), "{good}");
        }
        for bad in [
            "http://app.example.com/cb",
            "http://localhost.example.com/cb",
            "http://user@localhost:3000/cb",
            "https://app.example.com/cb#frag",
            "https://*.example.com/cb",
            "javascript:alert(1)",
            "data:text/html,hi",
            "https://user@app.example.com/cb",
            "https://app.example.com",
            "HTTPS://app.example.com/cb",
            "/relative",
        ] {
            assert!(validate_redirect_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn loopback_uris_match_on_any_port_and_others_exactly() {
        let registered = vec![
            "http://127.0.0.1/cb".to_string(),
            "https://app.example.com/cb".to_string(),
        ];
        assert!(matches_registered(&registered, "http://127.0.0.1:51234/cb"));
        assert!(matches_registered(&registered, "http://127.0.0.1/cb"));
        assert!(!matches_registered(&registered, "http://127.0.0.1:5/cb/"));
        assert!(!matches_registered(
            &registered,
            "https://app.example.com:444/cb"
        ));
        assert!(!matches_registered(
            &registered,
            "https://app.example.com/cb/"
        ));
        // localhost is a name, not a loopback literal: matched exactly, port included.
        let dev = vec!["http://localhost:3000/api/auth/callback/passgate".to_string()];
        assert!(matches_registered(
            &dev,
            "http://localhost:3000/api/auth/callback/passgate"
        ));
        assert!(!matches_registered(
            &dev,
            "http://localhost:3001/api/auth/callback/passgate"
        ));
    }
}
