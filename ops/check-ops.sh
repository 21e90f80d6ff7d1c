#!/usr/bin/env bash
# Static checks of the deployment and observability files: ops/k8s, ops/prometheus, ops/grafana.
# Run from anywhere: ops/check-ops.sh   (--help for details)
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: ops/check-ops.sh [--help]

Checks the Kubernetes manifests, the Prometheus rules and the Grafana dashboard:
  - every YAML file under ops/k8s and ops/prometheus parses (all documents of each file);
  - every Kubernetes object has apiVersion, kind and metadata.name;
  - kustomization.yaml lists files that exist, and every manifest except the documented
    exceptions (secret.example.yaml, the alternative KEDA ScaledObject);
  - the pod specs keep their security settings (non-root uid 10001, read-only root filesystem,
    no privilege escalation, all capabilities dropped, /tmp emptyDir), take secrets from the
    Secret `autodevops` only, and the worker's terminationGracePeriodSeconds exceeds its
    SHUTDOWN_GRACE_SECS;
  - `kubectl kustomize ops/k8s` builds (only when kubectl is installed; says so otherwise);
  - every alert has a severity label and summary, description and runbook_url annotations;
  - every autodevops_* metric used by the alerts and the dashboard is one of the contract names;
  - the dashboard is valid JSON with panels, each querying the ${DS_PROMETHEUS} datasource;
  - promtool check rules ops/prometheus/alerts.yml;
  - promtool test rules ops/prometheus/alerts_test.yml;
  - every dashboard query parses as PromQL (Grafana variables replaced; promtool check rules).

promtool: taken from PATH (or $PROMTOOL). When missing, Debian's `prometheus` package is
installed with apt-get (via sudo when not root); if that fails the script fails and says how to
install promtool by hand. Needs python3 with PyYAML.

Prints one line per check and ends with "ops checks: N passed, M failed"; exits 1 if any failed.
EOF
}

case "${1:-}" in
    -h | --help) usage; exit 0 ;;
    "") ;;
    *) echo "check-ops.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
esac

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

passed=0
failed=0

# check NAME COMMAND…: runs COMMAND, prints "ok" or "FAIL" with the command's output indented.
check() {
    local name=$1 out
    shift
    if out=$("$@" 2>&1); then
        printf 'ok    %s\n' "$name"
        passed=$((passed + 1))
    else
        printf 'FAIL  %s\n' "$name"
        [[ -n "$out" ]] && printf '%s\n' "$out" | sed 's/^/        /'
        failed=$((failed + 1))
    fi
}

# py SUBCOMMAND ARGS…: the Python half of the checks (YAML and JSON need a real parser).
py() {
    python3 - "$@" <<'PY'
import json, pathlib, re, sys
import yaml

cmd, args = sys.argv[1], sys.argv[2:]

# The metric names are a contract (shared/DESIGN.md, the ops brief): alerts and dashboards may
# use only these (plus _sum/_count/_bucket of the histograms).
CONTRACT = {
    "autodevops_http_requests_total", "autodevops_webhooks_received_total",
    "autodevops_jobs_total", "autodevops_job_duration_seconds", "autodevops_queue_depth",
    "autodevops_queue_oldest_pending_age_seconds", "autodevops_model_calls_total",
    "autodevops_model_call_duration_seconds", "autodevops_model_tokens_total",
    "autodevops_breaker_open", "autodevops_tenant_budget_used_ratio",
    "autodevops_github_rate_limit_remaining", "autodevops_ready",
}
HISTOGRAMS = {"autodevops_job_duration_seconds", "autodevops_model_call_duration_seconds"}
SECRET_NAMES = re.compile(r"(KEY|SECRET|TOKEN|PASSWORD|DSN|DATABASE_URL|REDIS_URL|API_KEYS)$")

def docs(path):
    try:
        with open(path) as f:
            return [d for d in yaml.safe_load_all(f) if d is not None]
    except yaml.YAMLError as e:
        print(f"{path}: {e}")
        sys.exit(1)

def k8s_files():
    return sorted(pathlib.Path("ops/k8s").glob("*.y*ml"))

def fail(msgs):
    for m in msgs:
        print(m)
    sys.exit(1 if msgs else 0)

if cmd == "yaml":
    n = len(docs(args[0]))
    if n == 0:
        fail([f"{args[0]}: no YAML document"])
    print(f"{n} document(s)")

elif cmd == "k8s-objects":
    errs, count = [], 0
    for p in k8s_files():
        if p.name == "kustomization.yaml":   # kustomize's own config, never sent to the cluster
            continue
        for i, d in enumerate(docs(p)):
            count += 1
            where = f"{p} document {i + 1}"
            if not isinstance(d, dict):
                errs.append(f"{where}: not a mapping"); continue
            for k in ("apiVersion", "kind"):
                if not isinstance(d.get(k), str) or not d[k]:
                    errs.append(f"{where}: missing {k}")
            if not isinstance(d.get("metadata"), dict) or not d["metadata"].get("name"):
                errs.append(f"{where}: missing metadata.name")
    print(f"{count} objects")
    fail(errs)

elif cmd == "kustomization":
    k = docs("ops/k8s/kustomization.yaml")[0]
    listed = set(k.get("resources", []))
    errs = [f"listed but missing: {r}" for r in sorted(listed) if not (pathlib.Path("ops/k8s") / r).exists()]
    # Deliberately not applied: the Secret's shape, and the alternative ScaledObject (one or the other).
    exempt = {"kustomization.yaml", "secret.example.yaml", "keda-scaledobject-metrics-api.yaml"}
    for p in k8s_files():
        if p.name not in listed and p.name not in exempt:
            errs.append(f"not listed in kustomization.yaml: {p.name}")
    if k.get("namespace") != "autodevops":
        errs.append("kustomization namespace is not autodevops")
    fail(errs)

elif cmd == "pod-security":
    errs, pods = [], 0
    for p in k8s_files():
        for d in docs(p):
            kind = d.get("kind")
            if kind not in ("Deployment", "Job", "StatefulSet", "DaemonSet"):
                continue
            pods += 1
            name = f"{kind}/{d['metadata']['name']}"
            spec = d["spec"]["template"]["spec"]
            psc = spec.get("securityContext", {})
            if psc.get("runAsNonRoot") is not True: errs.append(f"{name}: pod runAsNonRoot is not true")
            if psc.get("runAsUser") != 10001: errs.append(f"{name}: pod runAsUser is not 10001")
            tmp_volumes = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
            for c in spec.get("containers", []) + spec.get("initContainers", []):
                cn = f"{name} container {c['name']}"
                sc = c.get("securityContext", {})
                if sc.get("readOnlyRootFilesystem") is not True: errs.append(f"{cn}: readOnlyRootFilesystem is not true")
                if sc.get("allowPrivilegeEscalation") is not False: errs.append(f"{cn}: allowPrivilegeEscalation is not false")
                if "ALL" not in sc.get("capabilities", {}).get("drop", []): errs.append(f"{cn}: capabilities do not drop ALL")
                if sc.get("runAsUser", 10001) != 10001: errs.append(f"{cn}: runAsUser is not 10001")
                if not any(m["mountPath"] == "/tmp" and m["name"] in tmp_volumes for m in c.get("volumeMounts", [])):
                    errs.append(f"{cn}: no emptyDir mounted at /tmp")
                refs = [e.get("secretRef", {}).get("name") for e in c.get("envFrom", [])]
                if "autodevops" not in refs: errs.append(f"{cn}: no envFrom secretRef autodevops")
                env = {e["name"]: e for e in c.get("env", [])}
                for n, e in env.items():
                    if SECRET_NAMES.search(n) and "value" in e:
                        errs.append(f"{cn}: {n} has an inline value; take it from the Secret")
                if c.get("args", [None])[0] == "worker":
                    grace = int(env.get("SHUTDOWN_GRACE_SECS", {}).get("value", 30))
                    tgp = spec.get("terminationGracePeriodSeconds", 30)
                    if tgp <= grace:
                        errs.append(f"{cn}: terminationGracePeriodSeconds {tgp} must exceed SHUTDOWN_GRACE_SECS {grace}")
                if c.get("args", [None])[0] == "api":
                    probes = {k: c.get(k, {}).get("httpGet", {}).get("path") for k in ("livenessProbe", "readinessProbe")}
                    if probes != {"livenessProbe": "/health", "readinessProbe": "/ready"}:
                        errs.append(f"{cn}: expected liveness /health and readiness /ready, got {probes}")
    if pods == 0:
        errs.append("no pod templates found")
    print(f"{pods} pod templates")
    fail(errs)

elif cmd == "alert-annotations":
    errs, n = [], 0
    for g in docs(args[0])[0]["groups"]:
        for r in g["rules"]:
            if "alert" not in r:
                continue
            n += 1
            a, ann = r["alert"], r.get("annotations", {})
            if not r.get("labels", {}).get("severity"): errs.append(f"{a}: no severity label")
            for k in ("summary", "description", "runbook_url"):
                if not ann.get(k): errs.append(f"{a}: no {k} annotation")
            if not re.fullmatch(r"ops/runbook\.md#[a-z0-9-]+", ann.get("runbook_url", "")):
                errs.append(f"{a}: runbook_url is not ops/runbook.md#<anchor>")
    print(f"{n} alerts")
    fail(errs)

elif cmd == "runbook-anchors":
    # Informational: which runbook_url anchors ops/runbook.md does not have (yet).
    rb = pathlib.Path("ops/runbook.md").read_text() if pathlib.Path("ops/runbook.md").exists() else ""
    have = set()
    for line in rb.splitlines():
        m = re.match(r"#+\s+(.*)", line)
        if m:
            have.add(re.sub(r"[^a-z0-9 _-]", "", m.group(1).strip().lower()).replace(" ", "-"))
    want = set()
    for g in docs(args[0])[0]["groups"]:
        for r in g["rules"]:
            u = r.get("annotations", {}).get("runbook_url", "")
            if "#" in u:
                want.add(u.split("#", 1)[1])
    print(" ".join(sorted(want - have)))

elif cmd == "metric-names":
    errs, used = [], set()
    texts = {args[0]: pathlib.Path(args[0]).read_text()}
    dash = json.loads(pathlib.Path(args[1]).read_text())
    def exprs(panels):
        for p in panels:
            yield from (t.get("expr", "") for t in p.get("targets", []))
            yield from exprs(p.get("panels", []))
    texts[args[1]] = "\n".join(exprs(dash.get("panels", [])))
    for path, text in texts.items():
        for name in set(re.findall(r"\bautodevops_[a-z0-9_]+", text)):
            base = re.sub(r"_(sum|count|bucket)$", "", name)
            ok = name in CONTRACT or (base in HISTOGRAMS and base != name)
            if not ok:
                errs.append(f"{path}: {name} is not a contract metric name")
            used.add(base)
    print(f"{len(used)} metric names used")
    fail(errs)

elif cmd == "dashboard":
    d = json.loads(pathlib.Path(args[0]).read_text())
    errs = []
    panels = d.get("panels")
    if not isinstance(panels, list) or not panels:
        fail([f"{args[0]}: no panels"])
    if not any(v.get("name") == "DS_PROMETHEUS" and v.get("type") == "datasource"
               for v in d.get("templating", {}).get("list", [])):
        errs.append("no datasource variable DS_PROMETHEUS")
    ids = [p.get("id") for p in panels]
    if len(ids) != len(set(ids)):
        errs.append("duplicate panel ids")
    graphs = 0
    for p in panels:
        if p.get("type") == "row":
            continue
        graphs += 1
        t = p.get("title", f"panel {p.get('id')}")
        if p.get("datasource", {}).get("uid") != "${DS_PROMETHEUS}":
            errs.append(f"{t}: datasource is not ${{DS_PROMETHEUS}}")
        if not p.get("targets") or not all(x.get("expr") for x in p["targets"]):
            errs.append(f"{t}: no query")
        if not p.get("gridPos"):
            errs.append(f"{t}: no gridPos")
    print(f"{graphs} panels, schemaVersion {d.get('schemaVersion')}")
    fail(errs)

elif cmd == "dashboard-rules":
    # The dashboard's queries as a rule file, Grafana variables replaced, so that promtool can
    # parse them: prints the file's YAML.
    d = json.loads(pathlib.Path(args[0]).read_text())
    rules = []
    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                expr = (t.get("expr", "").replace("$__rate_interval", "5m")
                        .replace("$__interval", "1m").replace("$queue", ".*"))
                rules.append({"record": f"dashboard:panel_{p.get('id')}_{t.get('refId', 'A')}", "expr": expr})
            walk(p.get("panels", []))
    walk(d.get("panels", []))
    print(yaml.safe_dump({"groups": [{"name": "dashboard-queries", "rules": rules}]}, sort_keys=False))

else:
    fail([f"unknown subcommand {cmd}"])
PY
}

# ensure_promtool: sets PROMTOOL, installing Debian's prometheus package when promtool is missing.
ensure_promtool() {
    PROMTOOL=${PROMTOOL:-promtool}
    command -v "$PROMTOOL" >/dev/null 2>&1 && return 0
    if [[ -x /usr/bin/promtool ]]; then PROMTOOL=/usr/bin/promtool; return 0; fi

    echo "....  promtool not found: installing Debian's prometheus package (about a minute)"
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 && sudo=(sudo) || echo "      not root and no sudo: apt-get will fail"
    fi
    # The package's postinst may try to start the prometheus service and fail where there is no
    # init system; that is harmless as long as promtool itself got installed, so apt-get's exit
    # status is logged, not trusted, and promtool is looked for afterwards.
    local log
    log=$(mktemp)
    if ! { "${sudo[@]}" apt-get update -qq &&
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq --no-install-recommends prometheus; } >"$log" 2>&1; then
        echo "      apt-get reported a failure (last lines below); checking for promtool anyway"
        tail -n 5 "$log" | sed 's/^/        /'
    fi
    rm -f "$log"
    hash -r
    if command -v promtool >/dev/null 2>&1; then PROMTOOL=promtool; return 0; fi
    if [[ -x /usr/bin/promtool ]]; then PROMTOOL=/usr/bin/promtool; return 0; fi
    return 1
}

ALERTS=ops/prometheus/alerts.yml
ALERTS_TEST=ops/prometheus/alerts_test.yml
DASHBOARD=ops/grafana/autodevops.json

command -v python3 >/dev/null 2>&1 || { echo "check-ops.sh: python3 is required" >&2; exit 1; }
python3 -c 'import yaml' 2>/dev/null || {
    echo "check-ops.sh: PyYAML is required (Debian: apt-get install python3-yaml; or pip install pyyaml)" >&2
    exit 1
}

# 1. YAML syntax, one check per file.
while IFS= read -r f; do
    check "yaml parses: $f" py yaml "$f"
done < <(find ops/k8s ops/prometheus -type f \( -name '*.yaml' -o -name '*.yml' \) | sort)

# 2. Kubernetes manifests.
check "k8s objects have apiVersion, kind, metadata.name" py k8s-objects
check "kustomization.yaml lists every manifest" py kustomization
check "pod specs: security context, /tmp, secrets, grace periods, probes" py pod-security
if command -v kubectl >/dev/null 2>&1; then
    check "kubectl kustomize ops/k8s builds" kubectl kustomize ops/k8s
else
    echo "skip  kubectl kustomize ops/k8s (kubectl not installed; not counted)"
fi

# 3. Alerts and dashboard, statically.
check "alerts have severity, summary, description, runbook_url" py alert-annotations "$ALERTS"
check "metric names in alerts and dashboard are contract names" py metric-names "$ALERTS" "$DASHBOARD"
check "dashboard is valid JSON with panels" py dashboard "$DASHBOARD"
missing=$(py runbook-anchors "$ALERTS")
[[ -n "$missing" ]] && echo "note  runbook anchors not yet in ops/runbook.md (not counted): $missing"

# 4. promtool.
if ensure_promtool; then
    check "promtool check rules $ALERTS" "$PROMTOOL" check rules "$ALERTS"
    check "promtool test rules $ALERTS_TEST" "$PROMTOOL" test rules "$ALERTS_TEST"
    dash_rules=$(mktemp --suffix=.yml)
    py dashboard-rules "$DASHBOARD" >"$dash_rules"
    check "dashboard queries parse (promtool check rules)" "$PROMTOOL" check rules "$dash_rules"
    rm -f "$dash_rules"
else
    echo "FAIL  promtool is not installed and could not be installed automatically."
    echo "        Install it, then run this script again:"
    echo "          Debian/Ubuntu: sudo apt-get install prometheus   (provides /usr/bin/promtool)"
    echo "          elsewhere: the prometheus-<version>.<os>-<arch>.tar.gz release from"
    echo "          https://github.com/prometheus/prometheus/releases contains promtool;"
    echo "          put it on PATH or set PROMTOOL=/path/to/promtool"
    failed=$((failed + 3))
fi

echo "ops checks: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
