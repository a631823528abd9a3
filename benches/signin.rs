//! Sign-in benchmark (issue 3): complete passkey logins (email step + assertion from a
//! software authenticator + session) and password logins against a release `passgate serve`,
//! on SQLite and on PostgreSQL with durable commits. Loopback only, bounded runs.
//!
//!     cargo bench --bench signin            # BENCH_SECONDS=10 by default
//!
//! `BENCH_ONLY` narrows a run to some of `sqlite`, `postgres`, `passkey`, `password`
//! (comma-separated; a backend and/or a kind), for iterating on one figure.
//! `BENCH_PG_SOCKET=1` connects the server to PostgreSQL over its Unix socket instead of
//! TCP on loopback.
//!
//! Benchmark configuration: every request comes from 127.0.0.1, so the per-IP and
//! per-identifier rate limits are raised (PASSGATE_RATE_LIMIT__PER_IP / __PER_IDENTIFIER);
//! everything else is the default configuration.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/it/authenticator.rs"]
#[allow(dead_code)]
mod authenticator;
mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use webauthn_rs_core::WebauthnCore;
use webauthn_rs_core::proto::{
    AuthenticationState, PublicKeyCredential, RegisterPublicKeyCredential, RegistrationState,
};

use authenticator::Crafted;
use support::{
    Postgres, Server, Stats, analyze, counts_statements, cpu_seconds, header, postgres_cpu_seconds,
    reset_statement_counts, rss_kib, take_statement_report,
};

const USERS: usize = 64;
const LIMITS: &[(&str, &str)] = &[
    ("PASSGATE_RATE_LIMIT__PER_IP", "1000000000"),
    ("PASSGATE_RATE_LIMIT__PER_IDENTIFIER", "1000000000"),
];

fn attribute(html: &str, attr: &str) -> String {
    let start = html.find(&format!("{attr}=\"")).unwrap() + attr.len() + 2;
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].to_string()
}

struct Client {
    http: reqwest::Client,
    csrf: String,
    email: String,
    key: Option<Crafted>,
}

async fn new_client(base: &str, email: String) -> Client {
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let page = http
        .get(format!("{base}/t/bench/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    Client {
        csrf: attribute(&page, "data-csrf"),
        http,
        email,
        key: None,
    }
}

async fn post(c: &Client, base: &str, path: &str, body: &Value) -> reqwest::Response {
    c.http
        .post(format!("{base}/t/bench{path}"))
        .header("X-CSRF-Token", &c.csrf)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Invites and enrolls USERS people with crafted passkeys.
async fn enroll_users(server: &Server) -> Vec<Client> {
    let mut clients = Vec::new();
    for i in 0..USERS {
        let email = format!("user{i}@bench.example");
        let invite = server.cli(
            &["user", "invite", "--tenant", "bench", "--email", &email],
            None,
        );
        let url = invite["enrollment_url"].as_str().unwrap().to_string();
        let token = url.split("token=").nth(1).unwrap().to_string();
        let mut client = new_client(&server.base, email).await;
        let mut key = Crafted::new(&server.base);
        let start: Value = post(
            &client,
            &server.base,
            "/api/links/start",
            &json!({ "token": token, "kind": "invite" }),
        )
        .await
        .json()
        .await
        .unwrap();
        let credential = key.register(&start["publicKey"]);
        let done = post(
            &client,
            &server.base,
            "/api/passkeys/finish",
            &json!({ "ceremony_id": start["ceremony_id"], "credential": credential }),
        )
        .await;
        assert_eq!(done.status(), 200);
        client.key = Some(key);
        clients.push(client);
    }
    clients
}

async fn passkey_login(c: &mut Client, base: &str) -> bool {
    let answer: Value = post(c, base, "/api/login/identify", &json!({ "email": c.email }))
        .await
        .json()
        .await
        .unwrap();
    let credential = c.key.as_mut().unwrap().sign(&answer["publicKey"]);
    post(
        c,
        base,
        "/api/login/passkey",
        &json!({ "ceremony_id": answer["ceremony_id"], "credential": credential }),
    )
    .await
    .status()
        == 200
}

async fn password_login(c: &Client, base: &str) -> Result<bool, ()> {
    let res = post(
        c,
        base,
        "/api/login/password",
        &json!({ "email": c.email, "password": "correct horse battery" }),
    )
    .await;
    match res.status().as_u16() {
        200 => Ok(true),
        429 | 503 => Err(()),
        _ => Ok(false),
    }
}

/// P3: the email step and a refused password take as long for an account as for an email
/// nobody has. Measured here, in interleaved pairs (the tests assert the same work instead).
async fn print_enumeration_timing(
    c: &Client,
    base: &str,
    path: &str,
    (known, unknown): (Value, Value),
    rounds: usize,
    what: &str,
) {
    async fn timed(c: &Client, base: &str, path: &str, body: &Value) -> Duration {
        let began = Instant::now();
        post(c, base, path, body).await;
        began.elapsed()
    }
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64() * 1e6
    };
    let (mut for_known, mut for_unknown) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        for_known.push(timed(c, base, path, &known).await);
        for_unknown.push(timed(c, base, path, &unknown).await);
    }
    println!(
        "
{what}: median {:.0} µs for an account, {:.0} µs for nobody ({rounds} interleaved pairs)",
        median(for_known),
        median(for_unknown)
    );
}

/// What a run's logins came to: accepted ones' latencies, failures, refusals (429/503).
#[derive(Default)]
struct Outcomes(Mutex<(Vec<u64>, usize, usize)>);

impl Outcomes {
    fn record(&self, outcome: Result<bool, ()>, took: Duration) {
        let mut r = self.0.lock().unwrap();
        match outcome {
            Ok(true) => r.0.push(took.as_micros() as u64),
            Ok(false) => r.1 += 1,
            Err(()) => r.2 += 1,
        }
    }
}

/// Waits for a run's logins, then returns its figures (from `started`, the server's CPU since
/// `cpu_before`) and its refusals.
async fn gather(
    tasks: Vec<tokio::task::JoinHandle<()>>,
    results: Arc<Outcomes>,
    started: Instant,
    pid: u32,
    cpu_before: f64,
) -> (Stats, usize) {
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed();
    let cpu_seconds = cpu_seconds(pid) - cpu_before;
    let outcomes = Arc::try_unwrap(results).ok().unwrap();
    let (latencies, errors, refused) = outcomes.0.into_inner().unwrap();
    (
        Stats {
            count: latencies.len(),
            errors,
            elapsed,
            cpu_seconds,
            latencies_us: latencies,
        },
        refused,
    )
}

enum Kind {
    Passkey,
    Password,
}

/// `concurrency` clients log in back to back for `seconds`; returns accepted logins, their
/// latencies, refusals (429/503) and server CPU.
async fn run(
    server: &Server,
    clients: &[Client],
    kind: &Kind,
    concurrency: usize,
    seconds: u64,
) -> (Stats, usize) {
    let base = server.base.clone();
    let results = Arc::new(Outcomes::default());
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let cpu_before = cpu_seconds(server.pid());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..concurrency {
        let template = &clients[i % clients.len()];
        let mut client = new_client(&base, template.email.clone()).await;
        client.key = template.key.as_ref().map(|k| k.clone_for_load());
        let (base, results) = (base.clone(), results.clone());
        let passkey = matches!(kind, Kind::Passkey);
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let t = Instant::now();
                let outcome = if passkey {
                    Ok(passkey_login(&mut client, &base).await)
                } else {
                    password_login(&client, &base).await
                };
                results.record(outcome, t.elapsed());
            }
        }));
    }
    gather(tasks, results, started, server.pid(), cpu_before).await
}

/// Password logins arriving `rate` times a second for `seconds`, whatever the server's pace
/// (an open loop: a closed loop slows its arrivals down to the server's). The issue's
/// overload test: at twice the sustainable rate the excess must be refused at once and the
/// accepted logins must stay fast. Returns accepted logins, their latencies and refusals.
async fn run_open_loop(
    server: &Server,
    clients: &[Client],
    rate: f64,
    seconds: u64,
) -> (Stats, usize) {
    let base = server.base.clone();
    let mut pool = Vec::new();
    for template in clients {
        pool.push(Arc::new(new_client(&base, template.email.clone()).await));
    }
    let results = Arc::new(Outcomes::default());
    let mut arrivals = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    let cpu_before = cpu_seconds(server.pid());
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for client in pool.iter().cycle() {
        arrivals.tick().await;
        if Instant::now() >= deadline {
            break;
        }
        let (client, base, results) = (client.clone(), base.clone(), results.clone());
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let outcome = password_login(&client, &base).await;
            results.record(outcome, t.elapsed());
        }));
    }
    gather(tasks, results, started, server.pid(), cpu_before).await
}

/// Whether `BENCH_ONLY` (if set) names `part`, or names nothing of its group.
fn wanted(part: &str, group: &[&str]) -> bool {
    let Ok(only) = std::env::var("BENCH_ONLY") else {
        return true;
    };
    let named: Vec<&str> = only.split(',').map(str::trim).collect();
    named.contains(&part) || !group.iter().any(|g| named.contains(g))
}

/// Sign-ins before the measured runs on PostgreSQL, then `ANALYZE` (see `bench_backend`).
const WARM_UP_SECONDS: u64 = 2;

const BACKENDS: &[&str] = &["sqlite", "postgres"];
const KINDS: &[&str] = &["passkey", "password"];

/// The database a run uses: SQLite (the server's default) or a database in a PostgreSQL
/// cluster, whose own CPU time is then reported too.
struct Database<'a> {
    postgres: Option<(&'a Postgres, String)>,
}

impl Database<'_> {
    fn url(&self) -> Option<&str> {
        self.postgres.as_ref().map(|(_, url)| url.as_str())
    }

    /// Starts counting a run: PostgreSQL's CPU so far (statement counts start again).
    fn begin(&self) -> f64 {
        match &self.postgres {
            Some((postgres, _)) => {
                if counts_statements() {
                    reset_statement_counts(&postgres.url);
                }
                postgres_cpu_seconds()
            }
            None => 0.0,
        }
    }

    /// PostgreSQL's CPU per accepted request, and with `BENCH_PG_STATEMENTS=1` the statements
    /// each one ran, as lines to print under the table.
    fn notes(&self, run: &str, stats: &Stats, began: f64) -> Vec<String> {
        let Some((postgres, _)) = &self.postgres else {
            return Vec::new();
        };
        let cpu_seconds = postgres_cpu_seconds() - began;
        let per = |x: f64| x / stats.count.max(1) as f64;
        let mut notes = vec![format!(
            "{run}: PostgreSQL's processes {:.0} µs CPU per request",
            per(cpu_seconds) * 1e6
        )];
        if counts_statements() {
            let mut report = take_statement_report(&postgres.url, stats.count).into_iter();
            notes.extend(report.next().map(|first| format!("{run}: {first}")));
            notes.extend(report);
        }
        notes
    }
}

async fn bench_backend(label: &str, database: Database<'_>, seconds: u64) {
    let server = Server::start(database.url(), LIMITS, None);
    println!("\nserver pid {}", server.pid());
    server.cli(&["tenant", "create", "bench"], None);
    let mut clients = enroll_users(&server).await;
    if let Some(url) = database.url() {
        // Steady state: sign-ins leave spent ceremonies and sessions behind, and autovacuum
        // analyzes the tables they changed within a minute. Plans made for the tables of
        // just after enrollment seq-scanned the ceremonies (52 pages per sign-in and
        // growing) until then; a run of seconds would measure only that transient.
        run(&server, &clients, &Kind::Passkey, 16, WARM_UP_SECONDS).await;
        analyze(url);
    }
    if wanted("passkey", KINDS) {
        println!(
            "\n### {label}: passkey logins (email step + assertion + session), {USERS} users\n\n{}",
            header(&[])
        );
        let mut notes = Vec::new();
        for concurrency in [16, 64] {
            let began = database.begin();
            let (stats, _) = run(&server, &clients, &Kind::Passkey, concurrency, seconds).await;
            let run_label = format!("passkey, {concurrency} clients");
            println!("{}", stats.row(&run_label));
            notes.extend(database.notes(&run_label, &stats, began));
        }
        print_notes(&notes);
        let known = json!({ "email": clients[0].email });
        let unknown = json!({ "email": "nobody@bench.example" });
        let path = "/api/login/identify";
        print_enumeration_timing(
            &clients[0],
            &server.base,
            path,
            (known, unknown),
            200,
            "email step",
        )
        .await;
    }
    if !wanted("password", KINDS) {
        return;
    }
    for c in clients.iter_mut().take(16) {
        server.cli(
            &[
                "user",
                "create",
                "--tenant",
                "bench",
                "--email",
                &format!("pw-{}", c.email),
                "--password-stdin",
            ],
            Some("correct horse battery"),
        );
        c.email = format!("pw-{}", c.email);
    }
    let password_clients: Vec<Client> = clients.into_iter().take(16).collect();
    println!(
        "\n### {label}: password logins (argon2id m=19 MiB t=2 p=1), 16 users\n\n{}",
        header(&["refused (429/503)"])
    );
    let mut notes = Vec::new();
    let mut sustainable: f64 = 0.0;
    for concurrency in [2, 4, 16] {
        let began = database.begin();
        let (stats, refused) = run(
            &server,
            &password_clients,
            &Kind::Password,
            concurrency,
            seconds,
        )
        .await;
        let run_label = format!("password, {concurrency} clients");
        println!("{} {refused} |", stats.row(&run_label));
        notes.extend(database.notes(&run_label, &stats, began));
        sustainable = sustainable.max(stats.count as f64 / stats.elapsed.as_secs_f64());
    }
    let began = database.begin();
    let rate = 2.0 * sustainable;
    let (stats, refused) = run_open_loop(&server, &password_clients, rate, seconds).await;
    let run_label = format!("password, arriving at {rate:.0}/s (2× the best above)");
    println!("{} {refused} |", stats.row(&run_label));
    notes.extend(database.notes(&run_label, &stats, began));
    print_notes(&notes);
    let wrong = |email: &str| json!({ "email": email, "password": "not the password" });
    let pair = (
        wrong(&password_clients[0].email),
        wrong("nobody@bench.example"),
    );
    let path = "/api/login/password";
    print_enumeration_timing(
        &password_clients[0],
        &server.base,
        path,
        pair,
        20,
        "refused password",
    )
    .await;
    println!(
        "\nserver RSS after the runs: {} MiB",
        rss_kib(server.pid()) / 1024
    );
}

fn print_notes(notes: &[String]) {
    if !notes.is_empty() {
        println!("\n{}", notes.join("\n"));
    }
}

/// The floors of this machine, measured now, in-process, on one core: the goals are stated as
/// fractions of them, and the machine's speed varies between days (the peer's own figures
/// moved by 2x). Returns (webauthn-rs assertion verification, argon2id hash) in microseconds.
fn floors(origin: &str) -> (f64, f64) {
    let url = url::Url::parse(origin).unwrap();
    let core = WebauthnCore::new_unsafe_experts_only(
        "floor",
        url.host_str().unwrap(),
        vec![url.clone()],
        Duration::from_secs(300),
        Some(false),
        Some(false),
    );
    let mut key = Crafted::new(origin);
    let builder = core
        .new_challenge_register_builder(b"floor-user", "floor", "floor")
        .unwrap()
        .require_resident_key(true);
    let (ccr, state): (_, RegistrationState) = core.generate_challenge_register(builder).unwrap();
    let options = serde_json::to_value(&ccr).unwrap();
    let response: RegisterPublicKeyCredential =
        serde_json::from_value(key.register(&options["publicKey"])).unwrap();
    let credential = core.register_credential(&response, &state, None).unwrap();
    let rounds = 400;
    let mut verifying = Duration::ZERO;
    for _ in 0..rounds {
        let builder = core
            .new_challenge_authenticate_builder(vec![credential.clone()], None)
            .unwrap();
        let (rcr, state): (_, AuthenticationState) =
            core.generate_challenge_authenticate(builder).unwrap();
        let options = serde_json::to_value(&rcr).unwrap();
        let assertion: PublicKeyCredential =
            serde_json::from_value(key.sign(&options["publicKey"])).unwrap();
        let t = Instant::now();
        core.authenticate_single_credential(&assertion, &state, &credential)
            .unwrap();
        verifying += t.elapsed();
    }
    let hashes = 8;
    let phc = passgate::passwords::hash_password_blocking("correct horse battery").unwrap();
    let t = Instant::now();
    for _ in 0..hashes {
        assert!(passgate::passwords::verify_blocking("correct horse battery", &phc).is_valid);
    }
    (
        verifying.as_secs_f64() * 1e6 / f64::from(rounds),
        t.elapsed().as_secs_f64() * 1e6 / f64::from(hashes),
    )
}

fn print_floors(when: &str) {
    let (verify_us, argon2_us) = floors("http://localhost:8080");
    println!(
        "\nfloors {when} (one core, in-process): webauthn-rs assertion verification {verify_us:.0} µs \
         (ceiling {:.0}/s on 2 cores), argon2id m=19 MiB t=2 verification {:.1} ms (ceiling {:.0}/s on 2 cores)",
        2e6 / verify_us,
        argon2_us / 1e3,
        2e6 / argon2_us
    );
}

fn main() {
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        println!("passgate sign-in benchmark: {seconds} s per run, server and load generator sharing this machine's cores");
        print_floors("at the start");
        if wanted("sqlite", BACKENDS) {
            bench_backend("SQLite", Database { postgres: None }, seconds).await;
        }
        if wanted("postgres", BACKENDS) {
            match Postgres::start() {
                Some(pg) => {
                    let tcp_url = pg.database("bench");
                    let over_socket = std::env::var("BENCH_PG_SOCKET").is_ok_and(|v| v == "1");
                    let (url, label) = if over_socket {
                        (pg.socket_url("bench"), "PostgreSQL (durable commits, Unix socket)")
                    } else {
                        (tcp_url, "PostgreSQL (durable commits, TCP)")
                    };
                    let database = Database {
                        postgres: Some((&pg, url)),
                    };
                    bench_backend(label, database, seconds).await;
                }
                None => println!("\n(PostgreSQL not available here: skipped)"),
            }
        }
        // Again at the end: the machine's speed drifts during a run.
        print_floors("at the end");
    });
}
