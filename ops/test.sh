#!/usr/bin/env bash
# The project's test command (README: "Test"). Makes sure PostgreSQL and Redis answer on
# 127.0.0.1 — starting them, or installing them from Debian's packages on a fresh machine —
# then runs the whole suite. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/autodevops-target}"
export TEST_DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export TEST_REDIS_URL="${TEST_REDIS_URL:-redis://127.0.0.1:6379}"

log() { echo "ops/test.sh: $*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi; }

postgres_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_up() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; }

ensure_postgres() {
  [[ "$TEST_DATABASE_URL" == *"@127.0.0.1:5432/"* ]] || return 0  # an external server: the tests report if it is down
  postgres_up && return 0
  if ! command -v pg_ctlcluster >/dev/null; then
    log "installing PostgreSQL (apt-get)"
    as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  local version; version=$(ls /etc/postgresql | sort -V | tail -n1)
  # Trust local TCP connections for the test user, as the rust-svc machines do.
  local hba="/etc/postgresql/$version/main/pg_hba.conf"
  if ! as_root grep -q "^host all all 127.0.0.1/32 trust" "$hba"; then
    as_root sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
  fi
  log "starting PostgreSQL $version"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || as_root pg_ctlcluster --skip-systemctl-redirect "$version" main restart
  for _ in $(seq 1 30); do postgres_up && return 0; sleep 1; done
  log "PostgreSQL did not come up on 127.0.0.1:5432"; exit 1
}

ensure_redis() {
  [[ "$TEST_REDIS_URL" == "redis://127.0.0.1:6379"* ]] || return 0
  redis_up && return 0
  if ! command -v redis-server >/dev/null; then
    log "installing Redis (apt-get)"
    as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  fi
  log "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  for _ in $(seq 1 30); do redis_up && return 0; sleep 1; done
  log "Redis did not come up on 127.0.0.1:6379"; exit 1
}

command -v pg_isready >/dev/null || { as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-client >/dev/null; }
command -v redis-cli >/dev/null || { as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-tools >/dev/null; }
for tool in jq openssl sqlite3; do  # used by ops/smoke.sh and ops/backup.sh, which the suite runs
  command -v "$tool" >/dev/null || { as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool" >/dev/null; }
done
ensure_postgres
ensure_redis

# The suite's own closing line: totals over every test binary (cargo prints one line each).
log_file=$(mktemp)
trap 'rm -f "$log_file"' EXIT
status=0
cargo test --workspace --locked --no-fail-fast "$@" 2>&1 | tee "$log_file" || status=$?
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "\nsuite: %d passed, %d failed\n", p, f }' "$log_file"
exit "$status"
