//! What PostgreSQL did during a benchmark run: its processes' CPU (from /proc) and, with
//! `BENCH_PG_STATEMENTS=1`, the statements it ran (pg_stat_statements). Shared by the sign-in
//! benchmark and the OIDC load driver (`examples/oidc_bench.rs`).

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, RunQueryDsl};

/// utime + stime of every `postgres` process, plus what the postmaster has collected from
/// backends that exited, in clock ticks.
pub fn postgres_cpu_ticks() -> u64 {
    let mut ticks = 0;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if &stat[open + 1..close] != "postgres" {
            continue;
        }
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        ticks += fields[11..15]
            .iter()
            .map(|f| f.parse::<u64>().unwrap_or(0))
            .sum::<u64>();
    }
    ticks
}

/// `BENCH_PG_STATEMENTS=1`: the cluster preloads pg_stat_statements and runs report the
/// statements per request.
pub fn counts_statements() -> bool {
    std::env::var("BENCH_PG_STATEMENTS").is_ok_and(|v| v == "1")
}

/// Brings the planner's statistics up to date, as autovacuum does about a minute after a
/// table has grown: a benchmark fills tables from empty within seconds, and plans made for
/// "empty" can pick an index that scans a whole tenant (the session lookup by token did).
pub fn analyze(url: &str) {
    execute(url, "ANALYZE");
}

/// Counting statements starts (again) from zero.
pub fn reset_statement_counts(url: &str) {
    execute(
        url,
        "CREATE EXTENSION IF NOT EXISTS pg_stat_statements; SELECT pg_stat_statements_reset()",
    );
}

#[derive(diesel::QueryableByName)]
struct StatementCalls {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    calls: i64,
    /// Time spent executing, in the server (planning excluded), over all calls.
    #[diesel(sql_type = diesel::sql_types::Double)]
    total_ms: f64,
    /// Buffer pages touched, over all calls: a plan gone wrong reads many.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    blocks: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    query: String,
}

/// The statements run since the last reset, per request and costliest first, as lines to
/// print; counting then starts again.
pub fn take_statement_report(url: &str, requests: usize) -> Vec<String> {
    let mut conn = PgConnection::establish(url).unwrap();
    let calls: Vec<StatementCalls> = diesel::sql_query(
        "SELECT calls, total_exec_time AS total_ms, shared_blks_hit + shared_blks_read AS blocks, \
         query FROM pg_stat_statements \
         WHERE query NOT LIKE '%pg_stat_statements%' ORDER BY total_exec_time DESC",
    )
    .load(&mut conn)
    .unwrap();
    conn.batch_execute("SELECT pg_stat_statements_reset()")
        .unwrap();
    let per = |x: f64| x / requests.max(1) as f64;
    let total: i64 = calls.iter().map(|c| c.calls).sum();
    let mut lines = vec![format!(
        "{:.1} statements per request: calls, µs executing (planning excluded), pages, statement",
        per(total as f64)
    )];
    lines.extend(calls.iter().take(25).map(|c| {
        let query = c.query.split_whitespace().collect::<Vec<_>>().join(" ");
        format!(
            "    {:5.2} {:6.1} {:6.1}  {:.120}",
            per(c.calls as f64),
            per(c.total_ms * 1e3),
            per(c.blocks as f64),
            query
        )
    }));
    lines
}

fn execute(url: &str, sql: &str) {
    PgConnection::establish(url)
        .unwrap()
        .batch_execute(sql)
        .unwrap();
}
