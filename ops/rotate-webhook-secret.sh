#!/usr/bin/env bash
# Rotate the GitHub webhook secret without refusing a delivery (see ops/runbook.md, "Rotate secrets").
#   ops/rotate-webhook-secret.sh new
#       prints a new random secret (32 bytes, hex)
#   ops/rotate-webhook-secret.sh check --url URL --secret S [--secret S2 …] [--refused OLD …]
#       a signed ping with each --secret must be accepted and with each --refused refused (401)
# Steps: `new` → deploy GITHUB_WEBHOOK_SECRET="NEW,OLD" → `check --secret NEW --secret OLD` → set NEW
# in the GitHub App's settings → deploy GITHUB_WEBHOOK_SECRET="NEW" → `check --secret NEW --refused OLD`.
# Exit: 0 all as expected, 1 a check failed, 2 usage. Needs curl and openssl. Secrets are never printed by check.
set -euo pipefail

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }
die_usage() { echo "rotate-webhook-secret.sh: $*" >&2; exit 2; }
for tool in curl openssl; do command -v "$tool" >/dev/null || die_usage "$tool is required"; done

cmd="${1:-}"; [ $# -gt 0 ] && shift
case "$cmd" in
  -h|--help) usage; exit 0 ;;
  new) openssl rand -hex 32; exit 0 ;;
  check) ;;
  "") usage >&2; exit 2 ;;
  *) die_usage "unknown command $cmd (new | check; see --help)" ;;
esac

url=""; accepted=(); refused=()
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --url) url="${2:?--url needs a value}"; shift 2 ;;
    --secret) accepted+=("${2:?--secret needs a value}"); shift 2 ;;
    --refused) refused+=("${2:?--refused needs a value}"); shift 2 ;;
    *) die_usage "unknown argument $1 (see --help)" ;;
  esac
done
[ -n "$url" ] || die_usage "give --url"
[ ${#accepted[@]} -gt 0 ] || [ ${#refused[@]} -gt 0 ] || die_usage "give at least one --secret or --refused"
url="${url%/}"

# Posts a ping signed with $1; prints the HTTP status.
ping_with() {
  local body sig
  body="{\"zen\":\"Secret rotation check.\",\"hook_id\":$RANDOM}"
  sig="sha256=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$1" -hex | sed 's/^.* //')"
  curl -s -o /dev/null -w '%{http_code}' -X POST "$url/github/webhook" -H 'Content-Type: application/json' \
    -H 'X-GitHub-Event: ping' -H "X-GitHub-Delivery: rotation-$(date +%s%N)-$RANDOM" \
    -H "X-Hub-Signature-256: $sig" --data "$body" || true
}

failed=0
n=0
for s in "${accepted[@]+"${accepted[@]}"}"; do
  n=$((n + 1)); code=$(ping_with "$s")
  if [ "$code" = 202 ] || [ "$code" = 200 ]; then echo "ok    secret #$n accepted"; else echo "FAIL  secret #$n answered $code, not 202" >&2; failed=1; fi
done
n=0
for s in "${refused[@]+"${refused[@]}"}"; do
  n=$((n + 1)); code=$(ping_with "$s")
  if [ "$code" = 401 ]; then echo "ok    refused secret #$n refused"; else echo "FAIL  refused secret #$n answered $code, not 401" >&2; failed=1; fi
done
exit "$failed"
