#!/usr/bin/env bash
# Smoke test after a deploy: the API answers, a signed webhook is accepted, a job runs to the
# end, and /ready and /metrics are healthy. Exits non-zero on the first failure.
#   ops/smoke.sh --url https://autodevops.example.com [--api-key KEY] [--webhook-secret S] [--path /abs/checkout]
# Env instead of flags: AUTODEVOPS_URL, AUTODEVOPS_API_KEY, GITHUB_WEBHOOK_SECRET, SMOKE_PATH.
# --path names a checkout the workers can read (embedded mode, or ALLOW_LOCAL_PATHS=true);
# without it the job step is skipped and said so. Needs curl, jq and openssl.
set -euo pipefail

usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; }
url="${AUTODEVOPS_URL:-}"; key="${AUTODEVOPS_API_KEY:-}"; secret="${GITHUB_WEBHOOK_SECRET:-}"; path="${SMOKE_PATH:-}"
timeout_s=120
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --url) url="${2:?--url needs a value}"; shift 2 ;;
    --api-key) key="${2:?--api-key needs a value}"; shift 2 ;;
    --webhook-secret) secret="${2:?--webhook-secret needs a value}"; shift 2 ;;
    --path) path="${2:?--path needs a value}"; shift 2 ;;
    --timeout) timeout_s="${2:?--timeout needs a value}"; shift 2 ;;
    *) echo "smoke.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$url" ] || { echo "smoke.sh: give --url (or AUTODEVOPS_URL)" >&2; exit 2; }
for tool in curl jq openssl; do command -v "$tool" >/dev/null || { echo "smoke.sh: $tool is required" >&2; exit 2; }; done
url="${url%/}"
auth=(); [ -z "$key" ] || auth=(-H "Authorization: Bearer $key")
pass() { echo "ok    $*"; }
fail() { echo "FAIL  $*" >&2; exit 1; }

code=$(curl -s -o /dev/null -w '%{http_code}' "$url/health") || true
[ "$code" = 200 ] && pass "/health" || fail "/health answered $code"
ready=$(curl -s "$url/ready") || true
case "$(jq -r .status <<<"$ready" 2>/dev/null)" in
  ready) pass "/ready" ;;
  degraded) echo "warn  /ready degraded (serving; see checks): $(jq -c .checks <<<"$ready")" ;;
  *) fail "/ready: $ready" ;;
esac

if [ -n "$secret" ]; then
  body='{"zen":"Smoke test.","hook_id":1}'
  sig="sha256=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "${secret%%,*}" -hex | sed 's/^.* //')"
  delivery="smoke-$(date +%s)-$$"
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$url/github/webhook" -H 'Content-Type: application/json' \
    -H 'X-GitHub-Event: ping' -H "X-GitHub-Delivery: $delivery" -H "X-Hub-Signature-256: $sig" --data "$body") || true
  [ "$code" = 202 ] && pass "signed ping webhook accepted" || fail "signed ping webhook answered $code"
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$url/github/webhook" -H 'Content-Type: application/json' \
    -H 'X-GitHub-Event: ping' -H "X-GitHub-Delivery: $delivery-bad" -H "X-Hub-Signature-256: sha256=00" --data "$body") || true
  [ "$code" = 401 ] && pass "unsigned webhook refused" || fail "a bad signature answered $code, not 401"
else
  echo "skip  webhook (no --webhook-secret)"
fi

if [ -n "$path" ]; then
  job=$(curl -s "${auth[@]}" -X POST "$url/v1/jobs" -H 'Content-Type: application/json' \
    --data "$(jq -nc --arg p "$path" '{kind:"analysis",path:$p}')")
  id=$(jq -r '.id // empty' <<<"$job"); [ -n "$id" ] || fail "job not accepted: $job"
  deadline=$((SECONDS + timeout_s))
  while :; do
    status=$(curl -s "${auth[@]}" "$url/v1/jobs/$id" | jq -r .status)
    case "$status" in
      succeeded) pass "analysis job $id succeeded"; break ;;
      dead|cancelled) fail "analysis job $id ended $status" ;;
    esac
    [ $SECONDS -lt $deadline ] || fail "analysis job $id still $status after ${timeout_s}s"
    sleep 1
  done
else
  echo "skip  job (no --path)"
fi

metrics=$(curl -s "$url/metrics")
grep -q '^autodevops_ready 1' <<<"$metrics" && pass "/metrics (autodevops_ready 1)" || fail "/metrics lacks autodevops_ready 1"
echo "smoke: passed"
