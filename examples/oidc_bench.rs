//! Load driver for `bench/oidc.sh` (not part of the test suite): sets up a tenant, a user,
//! clients and a browser session with the passgate library, then drives the flows `oha`
//! cannot (each request needs a fresh code or the latest refresh token) and reports
//! requests/s, latency percentiles and the server's CPU time per request from
//! `/proc/<pid>/stat`.
//!
//!   oidc_bench setup                                   (PASSGATE_* environment) -> JSON
//!   oidc_bench exchange <base> <setup.json> <pid> <concurrency> <count>
//!   oidc_bench refresh  <base> <setup.json> <pid> <concurrency> <seconds>
//!   oidc_bench floor     (ES256 JWT signing with josekit, in-process, on this core)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use passgate::auth_events::AuthMethod;
use passgate::oidc::clients::{NewClient, create_client};
use passgate::signin::{LoginContext, LoginResult, establish_session};
use passgate::tenants::{Slug, create_tenant};
use passgate::users::{Email, NewAccount, Role, UserStatus, create_user};
use passgate::{AppState, Clock, Settings};

#[path = "../benches/support/postgres_stats.rs"]
mod postgres_stats;
use postgres_stats::{
    analyze, counts_statements, postgres_cpu_ticks, reset_statement_counts, take_statement_report,
};

const REDIRECT_URI: &str = "https://app.example.com/callback";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("setup") => setup(),
        Some("floor") => signing_floor(),
        Some(mode @ ("exchange" | "refresh")) => {
            let base = args[2].clone();
            let setup: Value =
                serde_json::from_str(&std::fs::read_to_string(&args[3]).unwrap()).unwrap();
            let pid: u32 = args[4].parse().unwrap();
            let concurrency: usize = args[5].parse().unwrap();
            let amount: usize = args[6].parse().unwrap();
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let bench = Bench::new(base, setup);
                if mode == "exchange" {
                    bench.exchange(pid, concurrency, amount).await
                } else {
                    bench
                        .refresh(pid, concurrency, Duration::from_secs(amount as u64))
                        .await
                }
            });
        }
        _ => eprintln!(
            "usage: oidc_bench setup | exchange|refresh <base> <setup.json> <pid> <concurrency> <count|seconds>"
        ),
    }
}

/// This machine's floor for the goals, measured now: one ES256 JWT signature (the peer's
/// README quotes 29 µs on the day its figures were taken; the machine's speed varies).
fn signing_floor() {
    use josekit::jws::{ES256, JwsHeader};
    use josekit::jwt::{self, JwtPayload};
    let key = ES256.generate_key_pair().unwrap();
    let signer = ES256.signer_from_der(key.to_der_private_key()).unwrap();
    let mut payload = JwtPayload::new();
    payload.set_issuer("http://127.0.0.1:18080/t/bench");
    payload.set_subject("0196d3c2-5a4e-7b61-9c1f-3f2d8e0a4b51");
    payload.set_audience(vec!["bench-api"]);
    payload.set_jwt_id("0196d3c2-5a4e-7b61-9c1f-3f2d8e0a4b52");
    payload.set_claim("scope", Some(json!("api:read"))).unwrap();
    let mut header = JwsHeader::new();
    header.set_token_type("at+jwt");
    header.set_key_id("bench");
    let rounds = 4000;
    let start = Instant::now();
    for _ in 0..rounds {
        jwt::encode_with_signer(&payload, &header, &signer).unwrap();
    }
    let us = start.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);
    println!(
        "{}",
        json!({ "label": "floor: ES256 JWT signing (josekit, in-process)", "floor_us": us })
    );
}

fn setup() {
    let settings = Settings::load(None).unwrap();
    let (state, _) = AppState::open(settings, Clock::System).unwrap();
    let now = state.clock.now();
    let cookie_name =
        |slug: &str| passgate::web::cookies::session_cookie_name(&state.settings, slug);
    let out = state
        .store
        .write_blocking(|conn| -> Result<Value, Box<dyn std::error::Error>> {
            let tenant = create_tenant(conn, &Slug::parse("bench")?, None, now)?;
            let email = Email::parse("bench@example.com")?;
            let user = create_user(
                conn,
                &tenant.id,
                NewAccount {
                    email: &email,
                    role: Role::Member,
                    display_name: None,
                    status: UserStatus::Active,
                    password_hash: None,
                },
                now,
            )?;
            let cc = create_client(
                conn,
                &tenant.id,
                &NewClient {
                    name: "bench cc".into(),
                    grant_types: vec!["client_credentials".into()],
                    extra_scopes: vec!["api:read".into()],
                    ..Default::default()
                },
                now,
            )?;
            let code = |alg: &str| NewClient {
                name: format!("bench web {alg}"),
                redirect_uris: vec![REDIRECT_URI.into()],
                is_first_party: true,
                id_token_alg: Some(alg.into()),
                ..Default::default()
            };
            let es = create_client(conn, &tenant.id, &code("ES256"), now)?;
            let rs = create_client(conn, &tenant.id, &code("RS256"), now)?;
            let login = LoginResult {
                user: user.clone(),
                method: AuthMethod::Passkey,
                amr: vec!["hwk".into(), "user".into()],
                acr: Some("phr".into()),
                auth_time: now,
                authenticator: None,
            };
            let session = establish_session(
                conn,
                login,
                &LoginContext::default(),
                &state.settings.session,
                now,
            )?
            .started;
            Ok(json!({
                "tenant": tenant.slug,
                "cc": { "id": cc.client_id, "secret": cc.client_secret },
                "es256": { "id": es.client_id, "secret": es.client_secret },
                "rs256": { "id": rs.client_id, "secret": rs.client_secret },
                "cookie": format!("{}={}", cookie_name(&tenant.slug), session.token),
            }))
        })
        .map_err(|e: Box<dyn std::error::Error>| e.to_string())
        .unwrap();
    println!("{out}");
}

struct Bench {
    base: String,
    setup: Value,
    http: reqwest::Client,
}

/// CPU time (user + system) the process has used, in clock ticks of 10 ms.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// The PostgreSQL database of a run (`PASSGATE_DATABASE_URL`), if it is one: its statistics
/// are brought up to date before a measured run (as autovacuum would have them in a running
/// system; tables filled from empty in seconds get plans made for empty tables), and its
/// processes' CPU is reported beside the server's. With `BENCH_PG_STATEMENTS=1` (and
/// pg_stat_statements preloaded) the statements per request go to stderr.
struct Database {
    url: Option<String>,
}

impl Database {
    fn from_env() -> Database {
        Database {
            url: std::env::var("PASSGATE_DATABASE_URL")
                .ok()
                .filter(|u| u.starts_with("postgres")),
        }
    }

    /// Analyzes, starts counting statements again; returns PostgreSQL's CPU ticks so far.
    fn before_run(&self) -> u64 {
        let Some(url) = &self.url else {
            return 0;
        };
        analyze(url);
        if counts_statements() {
            reset_statement_counts(url);
        }
        postgres_cpu_ticks()
    }

    /// PostgreSQL's CPU ticks since `before`; prints the statements per request.
    fn after_run(&self, before: u64, requests: usize) -> Option<u64> {
        let url = self.url.as_ref()?;
        let ticks = postgres_cpu_ticks() - before;
        if counts_statements() {
            for line in take_statement_report(url, requests) {
                eprintln!("{line}");
            }
        }
        Some(ticks)
    }
}

fn report(
    label: &str,
    mut latencies: Vec<Duration>,
    elapsed: Duration,
    ticks: u64,
    db_ticks: Option<u64>,
    errors: usize,
) {
    latencies.sort();
    let n = latencies.len().max(1);
    let pct = |p: f64| {
        latencies
            .get(((n as f64 * p) as usize).min(n - 1))
            .copied()
            .unwrap_or_default()
    };
    let cpu_us = ticks as f64 * 10_000.0 / n as f64;
    let mut line = json!({
        "label": label, "requests": latencies.len(), "errors": errors,
        "rps": latencies.len() as f64 / elapsed.as_secs_f64(),
        "p50_ms": pct(0.50).as_secs_f64() * 1e3, "p99_ms": pct(0.99).as_secs_f64() * 1e3,
        "cpu_us_per_request": cpu_us,
    });
    if let Some(db_ticks) = db_ticks {
        line["db_cpu_us_per_request"] = json!(db_ticks as f64 * 10_000.0 / n as f64);
    }
    println!("{line}");
}

impl Bench {
    fn new(base: String, setup: Value) -> Bench {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(512)
            .build()
            .unwrap();
        Bench { base, setup, http }
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}/t/{}{path}",
            self.base,
            self.setup["tenant"].as_str().unwrap()
        )
    }

    /// One authorization request with the bench session: `(code, verifier)`.
    async fn code(&self, client: &str, scope: &str) -> (String, String) {
        let verifier = passgate::crypto::random_token(32);
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let res = self
            .http
            .get(self.url("/oauth2/authorize"))
            .query(&[
                ("response_type", "code"),
                ("client_id", client),
                ("redirect_uri", REDIRECT_URI),
                ("scope", scope),
                ("state", "s"),
                ("nonce", "n"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ])
            .header("cookie", self.setup["cookie"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        let location = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
        let code = location
            .query_pairs()
            .find(|(k, _)| k == "code")
            .expect("a code")
            .1
            .into_owned();
        (code, verifier)
    }

    async fn token(&self, client: &Value, form: &[(&str, &str)]) -> Result<Value, String> {
        let res = self
            .http
            .post(self.url("/oauth2/token"))
            .basic_auth(client["id"].as_str().unwrap(), client["secret"].as_str())
            .form(form)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !res.status().is_success() {
            return Err(res.status().to_string());
        }
        res.json().await.map_err(|e| e.to_string())
    }

    /// Authorization-code exchanges (ID token + access token), for ES256 and RS256 ID tokens.
    async fn exchange(self, pid: u32, concurrency: usize, count: usize) {
        let bench = Arc::new(self);
        // ALGS=es256 (or rs256) runs one of the two, e.g. to profile it alone.
        let algs = std::env::var("ALGS").unwrap_or_else(|_| "es256,rs256".into());
        for alg in ["es256", "rs256"].into_iter().filter(|a| algs.contains(a)) {
            let client = bench.setup[alg].clone();
            let id = client["id"].as_str().unwrap().to_string();
            // Codes are made first (not measured), then redeemed under measurement.
            let codes = Arc::new(std::sync::Mutex::new(Vec::with_capacity(count)));
            let made = Arc::new(AtomicUsize::new(0));
            let mut tasks = Vec::new();
            for _ in 0..concurrency {
                let (bench, codes, made, id) =
                    (bench.clone(), codes.clone(), made.clone(), id.clone());
                tasks.push(tokio::spawn(async move {
                    while made.fetch_add(1, Ordering::Relaxed) < count {
                        let pair = bench.code(&id, "openid email").await;
                        codes.lock().unwrap().push(pair);
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            let codes = Arc::new(std::sync::Mutex::new(std::mem::take(
                &mut *codes.lock().unwrap(),
            )));
            let database = Database::from_env();
            let db_ticks = database.before_run();
            let (start, ticks) = (Instant::now(), cpu_ticks(pid));
            let mut tasks = Vec::new();
            for _ in 0..concurrency {
                let (bench, codes, client) = (bench.clone(), codes.clone(), client.clone());
                tasks.push(tokio::spawn(async move {
                    let (mut latencies, mut errors) = (Vec::new(), 0);
                    loop {
                        let Some((code, verifier)) = codes.lock().unwrap().pop() else {
                            break;
                        };
                        let t = Instant::now();
                        let form = [
                            ("grant_type", "authorization_code"),
                            ("code", &code),
                            ("redirect_uri", REDIRECT_URI),
                            ("code_verifier", &verifier),
                        ];
                        match bench.token(&client, &form).await {
                            Ok(body) if body["id_token"].is_string() => latencies.push(t.elapsed()),
                            _ => errors += 1,
                        }
                    }
                    (latencies, errors)
                }));
            }
            let (mut all, mut errors) = (Vec::new(), 0);
            for t in tasks {
                let (l, e) = t.await.unwrap();
                all.extend(l);
                errors += e;
            }
            let (elapsed, ticks) = (start.elapsed(), cpu_ticks(pid) - ticks);
            let db_ticks = database.after_run(db_ticks, all.len());
            report(
                &format!("code exchange, {} ID token", alg.to_uppercase()),
                all,
                elapsed,
                ticks,
                db_ticks,
                errors,
            );
        }
    }

    /// Every chain refreshed back to back until `deadline`: the chains' latest tokens, the
    /// latencies and the errors (a chain that fails stops).
    async fn follow_chains(
        self: Arc<Self>,
        client: &Value,
        chains: Vec<String>,
        deadline: Instant,
    ) -> (Vec<String>, Vec<Duration>, usize) {
        let mut tasks = Vec::new();
        for mut token in chains {
            let (bench, client) = (self.clone(), client.clone());
            tasks.push(tokio::spawn(async move {
                let (mut latencies, mut errors) = (Vec::new(), 0);
                while Instant::now() < deadline {
                    let t = Instant::now();
                    match bench
                        .token(
                            &client,
                            &[("grant_type", "refresh_token"), ("refresh_token", &token)],
                        )
                        .await
                    {
                        Ok(body) => {
                            token = body["refresh_token"].as_str().unwrap().to_string();
                            latencies.push(t.elapsed());
                        }
                        Err(_) => {
                            errors += 1;
                            break;
                        }
                    }
                }
                (token, latencies, errors)
            }));
        }
        let (mut chains, mut all, mut errors) = (Vec::new(), Vec::new(), 0);
        for t in tasks {
            let (token, l, e) = t.await.unwrap();
            chains.push(token);
            all.extend(l);
            errors += e;
        }
        (chains, all, errors)
    }

    /// Refresh with rotation: every worker follows its own token chain.
    async fn refresh(self, pid: u32, concurrency: usize, duration: Duration) {
        let bench = Arc::new(self);
        let client = bench.setup["es256"].clone();
        let id = client["id"].as_str().unwrap().to_string();
        let mut chains = Vec::new();
        for _ in 0..concurrency {
            let (code, verifier) = bench.code(&id, "openid offline_access").await;
            let form = [
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", verifier.as_str()),
            ];
            let body = bench.token(&client, &form).await.unwrap();
            chains.push(body["refresh_token"].as_str().unwrap().to_string());
        }
        // Unmeasured warm-up, so that the measured run finds tables of some size (and, on
        // PostgreSQL, statistics made from them), as in a system that has been running.
        let warm_up = (duration / 4).min(Duration::from_secs(2));
        let (chains, _, _) = bench
            .clone()
            .follow_chains(&client, chains, Instant::now() + warm_up)
            .await;
        let database = Database::from_env();
        let db_ticks = database.before_run();
        let (start, ticks) = (Instant::now(), cpu_ticks(pid));
        let (_, all, errors) = bench
            .clone()
            .follow_chains(&client, chains, start + duration)
            .await;
        let (elapsed, ticks) = (start.elapsed(), cpu_ticks(pid) - ticks);
        let db_ticks = database.after_run(db_ticks, all.len());
        report(
            "refresh with rotation",
            all,
            elapsed,
            ticks,
            db_ticks,
            errors,
        );
    }
}
