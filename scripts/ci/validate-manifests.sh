#!/usr/bin/env bash
# Proves the Kubernetes manifests under deploy/ (see deploy/README.md), offline:
#  1. every kustomization renders (`kubectl kustomize`): the overlays, deploy/cluster, deploy/argocd;
#  2. core objects validate strictly against the Kubernetes 1.30 schemas (kubernetes-validate);
#  3. custom resources against their schemas (@kubernetes-models/* validate(); CloudNativePG and
#     RabbitMQ against deploy/crds, unknown fields rejected); a kind without a schema fails;
#  4. policy tests (tests/deploy/policy.py), after a self-test showing each rule can fail;
#  5. checkov, with deploy/checkov.yaml's justified skips;
#  6. the Prometheus queries of the rollout analyses parse (promtool);
#  7. hadolint on the image's Dockerfile;
# and that the validators themselves fail on the broken manifests in tests/deploy/broken.
# Installs what it needs into tests/deploy/.venv and tests/deploy/node_modules (lock files there).
set -euo pipefail
cd "$(dirname "$0")/../.."
T=tests/deploy
K8S_VERSION=${K8S_VERSION:-1.30.0}
passed=0; failed=0
step() { # name command...
  local name=$1; shift
  if "$@"; then passed=$((passed + 1)); echo "ok   $name"; else failed=$((failed + 1)); echo "FAIL $name"; fi
}

# Tools, installed once per lock file.
stamp() { sha256sum "$@" | sha256sum | cut -c1-16; }
if [[ ! -x $T/.venv/bin/python || "$(cat $T/.venv/.stamp 2>/dev/null)" != "$(stamp $T/requirements.txt)" ]]; then
  python3 -m venv "$T/.venv"
  "$T/.venv/bin/pip" install -q --disable-pip-version-check -r "$T/requirements.txt"
  stamp $T/requirements.txt > "$T/.venv/.stamp"
fi
if [[ "$(cat $T/node_modules/.stamp 2>/dev/null)" != "$(stamp $T/package-lock.json)" ]]; then
  (cd "$T" && npm ci --no-audit --no-fund --loglevel=error)
  stamp $T/package-lock.json > "$T/node_modules/.stamp"
fi
PY=$T/.venv/bin/python

OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

# 1. Render.
kustomizations=(deploy/overlays/* deploy/cluster deploy/argocd)
for k in "${kustomizations[@]}"; do
  name=$(basename "$k")
  step "render $k" sh -c "kubectl kustomize '$k' > '$OUT/$name.yaml'"
done
rendered=("$OUT"/*.yaml)

# 2 and 3. Schemas.
step "core objects, strict against Kubernetes $K8S_VERSION" \
  "$PY" $T/validate_core.py --k8s "$K8S_VERSION" --crs-out "$OUT/crs.jsonl" "${rendered[@]}"
step "custom resources against their schemas" node $T/validate-crs.mjs "$OUT/crs.jsonl" deploy/crds

# The validators must refuse what is broken.
mkdir -p "$OUT/broken"
for f in $T/broken/*.yaml; do
  expect_failure() { # fails, and for the reason its "# expect:" line names
    local want rc=0
    want=$(sed -n 's/^# expect: //p' "$1")
    "$PY" $T/validate_core.py --k8s "$K8S_VERSION" --crs-out "$OUT/broken/crs.jsonl" "$1" >"$OUT/broken/log" 2>&1 || rc=1
    node $T/validate-crs.mjs "$OUT/broken/crs.jsonl" deploy/crds >>"$OUT/broken/log" 2>&1 || rc=1
    [[ $rc -eq 1 ]] && grep -qF -- "$want" "$OUT/broken/log" && return 0
    cat "$OUT/broken/log"; return 1
  }
  step "validators refuse $(basename "$f")" expect_failure "$f"
done

# 4. Policies.
step "policy self-test (every rule can fail)" "$PY" $T/policy.py --self-test
step "policies" "$PY" $T/policy.py "${rendered[@]}"

# 5. checkov.
# --skip-download: offline, no guideline lookups at Prisma Cloud.
step "checkov" env BC_SKIP_MAPPING=TRUE $T/.venv/bin/checkov --skip-download --config-file deploy/checkov.yaml -d "$OUT" --skip-path broken

# 6. The analyses' PromQL parses (promtool; a broken query must not).
step "analysis queries parse (promtool), self-test" "$PY" $T/check_promql.py --self-test
step "analysis queries parse (promtool)" "$PY" $T/check_promql.py "${rendered[@]}"

# 7. The image's Dockerfile (deploy/image/.hadolint.yaml holds its justified exceptions).
step "hadolint deploy/image/Dockerfile" $T/.venv/bin/hadolint --config deploy/image/.hadolint.yaml deploy/image/Dockerfile

echo "validate-manifests: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
