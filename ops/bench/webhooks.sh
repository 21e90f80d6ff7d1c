#!/usr/bin/env bash
# Webhook intake benchmark: signed push deliveries into `autodevops api` (Redis + Postgres, every
# delivery recorded and its job enqueued) and into a Probot 13 no-op app, same payloads, same
# secret, one after the other in one run, with wrk over loopback.   (--help for details)
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: ops/bench/webhooks.sh [options]

  --duration SECS     measured wrk run per server (default 20)
  --warmup SECS       unmeasured wrk run before it, other deliveries (default 3)
  --connections N     wrk connections (default 32)
  --threads N         wrk threads (default 2)
  --max-rate N        deliveries/s the pre-signed bodies must cover (default 12000); a wrk
                      thread that runs out stops early and the summary says so
  --repos N           repositories the pushes are spread over (default 0: one per delivery,
                      so no push supersedes another and every job stays active and queued)
  --only WHICH        autodevops | probot (default: both, Probot first)
  --bin PATH          the autodevops binary (default: $CARGO_TARGET_DIR/release/autodevops,
                      else target/release/autodevops); build it with `cargo build --release`
  --keep              keep the benchmark database, Redis keys and the work dir with the
                      servers' logs (default: all removed at the end)

Each delivery is GitHub's published push example (tests/fixtures/webhooks/push/) pointed at
installation 4242, a push to the repository's default branch with its own head SHA and its
own X-GitHub-Delivery, HMAC-SHA256 signed (ops/bench/gen_pushes.py). No delivery is sent twice.

autodevops: a fresh Postgres database on 127.0.0.1:5432 (user postgres, trust auth), Redis on
127.0.0.1:6379 with a unique QUEUE_PREFIX, `autodevops migrate` then `autodevops api` with a
throwaway GitHub App key (the API never calls GitHub), LOG_FORMAT=json RUST_LOG=info to a
file. No workers: the jobs wait in the queue, and are counted afterwards (deliveries rows,
jobs rows, Redis queue entries) to show every accepted delivery was recorded and enqueued.

Probot: ops/bench/probot/app.mjs (`npm ci` there when node_modules is missing), Probot's
webhook middleware verifying the signature and dispatching to a no-op `push` handler.

Env: PGHOST_URL (default postgres://postgres@127.0.0.1:5432), REDIS_URL (default
redis://127.0.0.1:6379), API_PORT (18080), PROBOT_PORT (13000).
Needs wrk, node + npm, python3, openssl, psql, redis-cli, curl. Prints a summary table.
EOF
}

duration=20 warmup=3 connections=32 threads=2 max_rate=12000 repos=0 only=both keep=0 bin=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        -h | --help) usage; exit 0 ;;
        --duration) duration=${2:?}; shift 2 ;;
        --warmup) warmup=${2:?}; shift 2 ;;
        --connections) connections=${2:?}; shift 2 ;;
        --threads) threads=${2:?}; shift 2 ;;
        --max-rate) max_rate=${2:?}; shift 2 ;;
        --repos) repos=${2:?}; shift 2 ;;
        --only) only=${2:?}; shift 2 ;;
        --bin) bin=${2:?}; shift 2 ;;
        --keep) keep=1; shift ;;
        *) echo "webhooks.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$only" in both | autodevops | probot) ;; *) echo "webhooks.sh: --only autodevops|probot" >&2; exit 2 ;; esac

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/ops/bench"
PG="${PGHOST_URL:-postgres://postgres@127.0.0.1:5432}"
REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
API_PORT="${API_PORT:-18080}"
PROBOT_PORT="${PROBOT_PORT:-13000}"

missing=()
for tool in wrk node npm python3 openssl psql redis-cli curl; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    echo "webhooks.sh: missing tools: ${missing[*]} (Debian: apt-get install wrk nodejs npm python3 openssl postgresql-client redis-tools curl)" >&2
    exit 2
fi
if [[ "$only" != probot ]]; then
    if [[ -z "$bin" ]]; then
        bin="${CARGO_TARGET_DIR:-$ROOT/target}/release/autodevops"
    fi
    [[ -x "$bin" ]] || { echo "webhooks.sh: no autodevops binary at $bin: run cargo build --release (or pass --bin)" >&2; exit 2; }
    psql "$PG/postgres" -Atqc 'select 1' >/dev/null 2>&1 ||
        { echo "webhooks.sh: Postgres is not answering at $PG (start it: service postgresql start)" >&2; exit 2; }
    redis-cli -u "$REDIS_URL" ping >/dev/null 2>&1 ||
        { echo "webhooks.sh: Redis is not answering at $REDIS_URL (start it: service redis-server start)" >&2; exit 2; }
fi

work=$(mktemp -d /tmp/adv-webhook-bench.XXXXXX)
run_id="whb$(date +%s)$$"
db="adv_$run_id"
prefix="$run_id:"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
    if [[ $keep == 0 && "$only" != probot ]]; then
        psql "$PG/postgres" -Atqc "drop database if exists $db with (force)" >/dev/null 2>&1 || true
        redis-cli -u "$REDIS_URL" --scan --pattern "${prefix}*" 2>/dev/null |
            xargs -r -n 500 redis-cli -u "$REDIS_URL" del >/dev/null 2>&1 || true
    fi
    if [[ $keep == 0 ]]; then rm -rf "$work"; else echo "webhooks.sh: kept $work"; fi
}
trap cleanup EXIT

secret=$(openssl rand -hex 20)
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/app.pem" 2>/dev/null
fixture="$ROOT/tests/fixtures/webhooks/push/05-branch-created.json"
per_thread=$(((max_rate * duration + threads - 1) / threads))
warm_per_thread=$(((max_rate * warmup + threads - 1) / threads))
echo "== signing $((per_thread * threads)) + $((warm_per_thread * threads)) push deliveries (repositories: ${repos/#0/one per delivery})"
python3 "$HERE/gen_pushes.py" "$fixture" "$secret" "$work/bodies" "$threads" "$per_thread" "$repos"
python3 "$HERE/gen_pushes.py" "$fixture" "$secret" "$work/warm" "$threads" "$warm_per_thread" "$repos"

wait_http() { # URL WHAT: waits up to 30 s for any HTTP answer
    for _ in $(seq 1 300); do
        curl -s -o /dev/null "$1" && return 0
        sleep 0.1
    done
    echo "webhooks.sh: $2 did not come up; its log:" >&2
    tail -n 30 "$3" >&2
    exit 1
}

# load NAME URL: warm-up run, then the measured run; keeps the RESULT line in $work/NAME.result.
load() {
    local name=$1 url=$2
    if [[ $warmup -gt 0 ]]; then
        BENCH_BODIES="$work/warm" wrk -t"$threads" -c"$connections" -d"${warmup}s" -s "$HERE/signed_push.lua" "$url" >"$work/$name.warm" 2>&1
    fi
    echo "== $name: wrk -t$threads -c$connections -d${duration}s --latency -s ops/bench/signed_push.lua $url"
    BENCH_BODIES="$work/bodies" wrk -t"$threads" -c"$connections" -d"${duration}s" --latency -s "$HERE/signed_push.lua" "$url" |
        tee "$work/$name.out"
    grep '^RESULT ' "$work/$name.out" >"$work/$name.result"
}
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" "$work/$1.result"; }
warm_requests() { sed -n 's/^RESULT requests=\([0-9]*\).*/\1/p' "$work/$1.warm" 2>/dev/null || echo 0; }

stop_last() {
    local p=${pids[-1]}
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
    unset 'pids[-1]'
}

if [[ "$only" != autodevops ]]; then
    if [[ ! -d "$HERE/probot/node_modules" ]]; then
        echo "== npm ci (ops/bench/probot)"
        (cd "$HERE/probot" && npm ci --no-audit --no-fund >/dev/null)
    fi
    echo "== Probot $(node -p "require('$HERE/probot/node_modules/probot/package.json').version") on 127.0.0.1:$PROBOT_PORT"
    (cd "$HERE/probot" && PORT=$PROBOT_PORT WEBHOOK_SECRET=$secret PRIVATE_KEY_PATH="$work/app.pem" \
        exec node app.mjs >"$work/probot.log" 2>&1) &
    pids+=($!)
    wait_http "http://127.0.0.1:$PROBOT_PORT/" Probot "$work/probot.log"
    load probot "http://127.0.0.1:$PROBOT_PORT/github/webhook"
    stop_last
fi

if [[ "$only" != probot ]]; then
    psql "$PG/postgres" -Atqc "create database $db" >/dev/null
    export DATABASE_URL="$PG/$db" REDIS_URL QUEUE_PREFIX="$prefix"
    export API_KEYS="bench:$(openssl rand -hex 24)" GITHUB_WEBHOOK_SECRET="$secret"
    export GITHUB_APP_ID=4242 GITHUB_APP_PRIVATE_KEY="$(cat "$work/app.pem")"
    export GITHUB_API_URL="http://127.0.0.1:9" BIND_ADDR="127.0.0.1:$API_PORT"
    export LOG_FORMAT=json RUST_LOG="${RUST_LOG:-info}"
    "$bin" migrate >"$work/migrate.log" 2>&1 || { cat "$work/migrate.log" >&2; exit 1; }
    echo "== autodevops api on 127.0.0.1:$API_PORT (database $db, queue prefix $prefix)"
    "$bin" api >"$work/api.log" 2>&1 &
    pids+=($!)
    wait_http "http://127.0.0.1:$API_PORT/health" "autodevops api" "$work/api.log"
    load autodevops "http://127.0.0.1:$API_PORT/github/webhook"
    sleep 1 # requests still in flight when wrk stopped
    stop_last
    sql() { psql "$DATABASE_URL" -Atqc "$1"; }
    deliveries=$(sql "select count(*) from github_deliveries")
    jobs=$(sql "select count(*) from autodevops_jobs")
    enqueued=$(sql "select count(*) from autodevops_jobs where enqueued_at is not null")
    # A push superseded by a newer one to the same branch before its own push is not queued.
    superseded=$(sql "select count(*) from autodevops_jobs where status = 'cancelled' and enqueued_at is null")
    queued=$(redis-cli -u "$REDIS_URL" hlen "${prefix}analysis:data")
    answered=$(($(field autodevops requests) - $(field autodevops non2xx) + $(warm_requests autodevops)))
fi

echo
echo "== summary (${duration}s, $connections connections, $threads wrk threads, loopback)"
printf '%-11s %14s %9s %9s %9s %7s %14s\n' server deliveries/s p50_ms p99_ms max_ms non2xx socket_errors
for name in probot autodevops; do
    [[ -f "$work/$name.result" ]] || continue
    printf '%-11s %14s %9s %9s %9s %7s %14s\n' "$name" "$(field $name rps)" "$(field $name p50_ms)" \
        "$(field $name p99_ms)" "$(field $name max_ms)" "$(field $name non2xx)" "$(field $name socket_errors)"
    out=$(field $name threads_out_of_bodies)
    [[ "$out" == 0 ]] || echo "  warning: $out wrk thread(s) ran out of deliveries: raise --max-rate"
done
if [[ "$only" != probot ]]; then
    echo "autodevops: 2xx answers $answered (incl. warm-up); deliveries recorded $deliveries; jobs $jobs;" \
        "jobs marked enqueued $enqueued; superseded before their push $superseded; Redis queue entries $queued"
    if [[ "$deliveries" -ge "$answered" && "$jobs" == "$deliveries" && $((enqueued + superseded)) == "$jobs" &&
        "$queued" == "$enqueued" ]]; then
        echo "autodevops: every accepted delivery was recorded, got its job, and the job is on the Redis queue" \
            "(or was superseded first)"
    else
        echo "autodevops: MISMATCH between answers, rows and queue entries (see above)" >&2
        exit 1
    fi
fi
