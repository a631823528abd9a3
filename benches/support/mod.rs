//! What the benchmarks share: a release passgate process on a free port, a throwaway durable
//! PostgreSQL, server CPU time from /proc, latency percentiles.

#![allow(dead_code)]

mod postgres_stats;

pub use postgres_stats::{
    analyze, counts_statements, reset_statement_counts, take_statement_report,
};

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn clock_ticks_per_second() -> f64 {
    let out = Command::new("getconf").arg("CLK_TCK").output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(100.0)
}

/// utime + stime of a process, in seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / clock_ticks_per_second()
}

/// PostgreSQL's processes' CPU time so far, in seconds.
pub fn postgres_cpu_seconds() -> f64 {
    postgres_stats::postgres_cpu_ticks() as f64 / clock_ticks_per_second()
}

pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The server binary: this build's, or `PASSGATE_BENCH_BIN` (e.g. a `--profile profiling`
/// build, to record call graphs with perf during a run).
fn passgate_bin() -> String {
    std::env::var("PASSGATE_BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_passgate").into())
}

pub struct Server {
    pub child: Child,
    pub base: String,
    pub envs: Vec<(String, String)>,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts `passgate serve` with `extra` settings, pinned to `cpus` (taskset) when given.
    pub fn start(database_url: Option<&str>, extra: &[(&str, &str)], cpus: Option<&str>) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let base = format!("http://localhost:{port}");
        let mut envs: Vec<(String, String)> = vec![
            ("PASSGATE_DATA_DIR".into(), dir.path().display().to_string()),
            ("PASSGATE_BIND".into(), format!("127.0.0.1:{port}")),
            ("PASSGATE_PUBLIC_URL".into(), base.clone()),
            ("PASSGATE_LOG_LEVEL".into(), "warn".into()),
        ];
        if let Some(url) = database_url {
            envs.push(("PASSGATE_DATABASE_URL".into(), url.into()));
        }
        envs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        // Settings given to the benchmark itself (e.g. PASSGATE_DATABASE_POOL_SIZE) reach the
        // server too, to compare configurations.
        let given: Vec<(String, String)> = std::env::vars()
            .filter(|(k, _)| {
                k.starts_with("PASSGATE_")
                    && k != "PASSGATE_BENCH_BIN"
                    && !envs.iter().any(|(e, _)| e == k)
            })
            .collect();
        envs.extend(given);
        let mut cmd = match cpus {
            Some(cpus) => {
                let mut c = Command::new("taskset");
                c.args(["-c", cpus, &passgate_bin()]);
                c
            }
            None => Command::new(passgate_bin()),
        };
        let mut child = cmd
            .env_clear()
            .envs(envs.iter().cloned())
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        assert!(first.contains("listening"), "{first}");
        std::thread::spawn(move || lines.for_each(drop));
        Server {
            child,
            base,
            envs,
            _dir: dir,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Runs a CLI command against the same database and settings.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> serde_json::Value {
        use std::io::Write;
        let mut child = Command::new(passgate_bin())
            .env_clear()
            .envs(self.envs.iter().cloned())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        drop(child.stdin.take());
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A PostgreSQL cluster with durable commits (fsync, synchronous_commit on), made with the
/// local initdb and run as the `postgres` user; removed at the end.
pub struct Postgres {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    pub url: String,
}

fn as_postgres(bin: &Path, tool: &str) -> Command {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(tool));
        c
    } else {
        Command::new(bin.join(tool))
    }
}

impl Postgres {
    pub fn start() -> Option<Postgres> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("bin"))
            .filter(|b| b.join("initdb").exists())
            .max()?;
        let dir = std::env::temp_dir().join(format!("passgate-bench-pg-{}", std::process::id()));
        let ok = as_postgres(&bin, "initdb")
            .args(["-D"])
            .arg(&dir)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"])
            .stdout(Stdio::null())
            .status()
            .ok()?
            .success();
        if !ok {
            return None;
        }
        let port = free_port();
        let mut opts = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -k {} -c max_connections=200 -c shared_buffers=256MB",
            dir.display()
        );
        if counts_statements() {
            opts.push_str(" -c shared_preload_libraries=pg_stat_statements");
        }
        let ok = as_postgres(&bin, "pg_ctl")
            .args(["start", "-w", "-D"])
            .arg(&dir)
            .arg("-l")
            .arg(dir.join("log"))
            .args(["-o", &opts])
            .stdout(Stdio::null())
            .status()
            .ok()?
            .success();
        if !ok {
            return None;
        }
        Some(Postgres {
            dir,
            bin,
            port,
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        })
    }

    /// A fresh database in the cluster.
    pub fn database(&self, name: &str) -> String {
        use diesel::Connection;
        use diesel::connection::SimpleConnection;
        let mut admin = diesel::PgConnection::establish(&self.url).unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        // The last path segment is the database ("postgres://postgres@…/postgres").
        let base = self
            .url
            .rsplit_once('/')
            .map(|(b, _)| b)
            .unwrap_or(&self.url);
        format!("{base}/{name}")
    }

    /// The same database reached over the cluster's Unix socket (libpq's `host=<dir>`), as
    /// a PostgreSQL on the server's own host would be.
    pub fn socket_url(&self, name: &str) -> String {
        format!(
            "postgres:///{name}?host={}&port={}&user=postgres",
            self.dir.display(),
            self.port
        )
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = as_postgres(&self.bin, "pg_ctl")
            .args(["stop", "-m", "fast", "-D"])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub struct Stats {
    pub count: usize,
    pub errors: usize,
    pub elapsed: Duration,
    pub cpu_seconds: f64,
    pub latencies_us: Vec<u64>,
}

impl Stats {
    pub fn percentile(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let mut v = self.latencies_us.clone();
        v.sort_unstable();
        let i = ((v.len() as f64 - 1.0) * p).round() as usize;
        v[i] as f64 / 1000.0
    }

    pub fn row(&self, label: &str) -> String {
        let rps = self.count as f64 / self.elapsed.as_secs_f64();
        let cpu_us = if self.count > 0 {
            self.cpu_seconds * 1e6 / self.count as f64
        } else {
            0.0
        };
        format!(
            "| {label} | {rps:.0} | {:.1} | {:.1} | {:.1} | {cpu_us:.0} µs | {:.0}/s | {} |",
            self.percentile(0.50),
            self.percentile(0.95),
            self.percentile(0.99),
            if cpu_us > 0.0 { 2e6 / cpu_us } else { 0.0 },
            self.errors,
        )
    }
}

/// The results table's Markdown header, with `extra` columns after the common ones.
pub fn header(extra: &[&str]) -> String {
    let mut names = vec![
        "run",
        "req/s",
        "P50 ms",
        "P95 ms",
        "P99 ms",
        "server CPU / req",
        "2-core capacity",
        "errors",
    ];
    names.extend_from_slice(extra);
    format!(
        "| {} |\n|{}",
        names.join(" | "),
        " --- |".repeat(names.len())
    )
}
