//! PostgreSQL's share of the machine during a benchmark run, from /proc. Shared by the
//! sign-in benchmark and the OIDC load driver (`examples/oidc_bench.rs`).

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
