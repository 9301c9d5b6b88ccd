#!/usr/bin/env bash
# Pipeline stage "test image": start the image as production runs it (read-only root filesystem,
# no capabilities, no privilege escalation, its own user) with the demo data, and walk the demo
# journey through it: ready, sign in, hold, pay in the sandbox, tickets. Also checks the health
# check turns healthy, /metrics (404 on the published service port; served on the published
# METRICS_LISTEN port, as Prometheus scrapes it in Kubernetes), the user and the SBOM, and prints the size.
#
#   scripts/ci/test-image.sh [TAG]       # default tag: the short git revision
set -euo pipefail
cd "$(dirname "$0")/../.."

tag=${1:-$(git rev-parse --short HEAD)}
image=${IMAGE:-ticketgw}:$tag
name=tg-image-test-$$
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
metrics_port=$(free_port)
secret=whsec_image_test_$(head -c8 /dev/urandom | od -An -tx1 | tr -d ' \n')

cleanup() {
  local rc=$?
  [[ $rc -ne 0 ]] && { echo "--- container log"; docker logs --tail 80 "$name" 2>&1 || true; }
  docker rm -f "$name" >/dev/null 2>&1 || true
  exit $rc
}
trap cleanup EXIT

docker run -d --name "$name" \
  --read-only --cap-drop ALL --security-opt no-new-privileges \
  --tmpfs /data:uid=65532,gid=65532,mode=0700 --tmpfs /tmp \
  -p "127.0.0.1:$port:8080" -p "127.0.0.1:$metrics_port:9090" -e METRICS_LISTEN=0.0.0.0:9090 \
  -e PUBLIC_URL="http://127.0.0.1:$port" -e SANDBOX_WEBHOOK_SECRET="$secret" -e LOG_FORMAT=json \
  "$image" serve --demo >/dev/null

python3 tests/deploy/smoke_journey.py "http://127.0.0.1:$port" --sandbox-secret "$secret" --event tech-conference-2025 --ticket-type standard

# /metrics: through Docker's port mapping a caller is not on the container's loopback, and with
# METRICS_LISTEN set the service port serves no metrics at all: 404 there; the metrics port serves them.
got=$(curl -s -o /dev/null --max-time 5 -w '%{http_code}' "http://127.0.0.1:$port/metrics" || true)
[[ $got == 404 ]] || { echo "/metrics on the service port answered $got, not 404"; exit 1; }
page=$(curl -fsS --max-time 5 "http://127.0.0.1:$metrics_port/metrics") || { echo "no metrics on the METRICS_LISTEN port"; exit 1; }
for family in ticketgw_build_info http_requests_total ticketgw_holds_total; do
  grep -q "^$family{" <<<"$page" || { echo "/metrics on the METRICS_LISTEN port has no $family"; exit 1; }
done
echo "metrics: 404 on the service port, served on the METRICS_LISTEN port"

# The image's own health check (ticketgw probe, no shell) reports healthy.
for _ in $(seq 1 40); do
  health=$(docker inspect "$name" --format '{{.State.Health.Status}}')
  [[ $health == healthy ]] && break
  sleep 1
done
[[ $health == healthy ]] || { echo "health check: $health"; exit 1; }
echo "health check: healthy"

user=$(docker inspect "$image" --format '{{.Config.User}}')
[[ $user == 65532:65532 ]] || { echo "runs as $user, not 65532:65532"; exit 1; }
# Nothing to run but the binary: no shell in the image.
if docker exec "$name" /bin/sh -c true >/dev/null 2>&1; then echo "the image has a shell"; exit 1; fi
# The SBOM alongside the binary names what it was built from.
docker cp "$name:/sbom.cdx.json" - | tar -xO >"${TMPDIR:-/tmp}/sbom-$$.json"
python3 - "${TMPDIR:-/tmp}/sbom-$$.json" <<'PY'
import json, sys
bom = json.load(open(sys.argv[1]))
assert bom["bomFormat"] == "CycloneDX", bom.get("bomFormat")
names = {c["name"] for c in bom["components"]}
for crate in ("tokio", "axum", "sqlx-core", "rustls"):
    assert crate in names, f"{crate} missing from the SBOM"
print(f"SBOM: CycloneDX {bom['specVersion']}, {len(bom['components'])} components")
PY
rm -f "${TMPDIR:-/tmp}/sbom-$$.json"
size=$(docker image inspect "$image" --format '{{.Size}}')
echo "image $image: $((size / 1024 / 1024)) MiB; passed"
