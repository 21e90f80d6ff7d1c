#!/usr/bin/env bash
# Sizes the worker pool on queue depth: a thin wrapper around `autodevops autoscale` for cron
# or a sidecar. Every flag is passed through; see `ops/autoscale.sh --help`.
#   ops/autoscale.sh --once --state-file /var/lib/autodevops/autoscale.json \
#     --command 'kubectl -n autodevops scale deployment/autodevops-worker --replicas={replicas}'
# Needs DATABASE_URL (the jobs table is where depth is read) and the binary on PATH
# (AUTODEVOPS_BIN overrides).
set -euo pipefail
exec "${AUTODEVOPS_BIN:-autodevops}" autoscale "$@"
