#!/usr/bin/env bash
# DAST: schemathesis generates requests from the running release binary's own OpenAPI document
# (/api/v1/openapi.json) as an anonymous caller, as the demo attendee and as the demo admin, and fails
# on any 5xx answer and on any answer the document does not describe. Bounded: DAST_MAX_TIME seconds
# of generation in all (default 90, a third for each caller).
#
#   scripts/ci/dast.sh [binary]        (default target/release/ticketgw)
#
# DAST_CHECKS chooses schemathesis's checks (comma-separated; default: not_a_server_error,
# status_code_conformance, content_type_conformance, response_headers_conformance,
# response_schema_conformance). DAST_CHECKS=not_a_server_error fails on 5xx answers alone.
# The binary serves the demo on SQLite in a temporary folder on a free local port (the shared
# scripts/ci/lib/serve-demo.sh, as wapiti.sh does); nothing outside is called. schemathesis (pinned
# in scripts/ci/requirements-dast.txt) lives in a venv under $CI_CACHE_DIR (default
# ~/.cache/ticketgw-ci), made once. Reports: target/ci/dast/ (JUnit per caller, server log, and
# summary.txt: every distinct failure once, with the callers that met it).
# DAST_SEED fixes the generator's seed (default 1: the same run every time; set another to explore).
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
binary=${1:-${CARGO_TARGET_DIR:-$repo/target}/release/ticketgw}
[ -x "$binary" ] || { echo "dast: no binary at $binary (scripts/ci/build-image.sh or scan.sh builds it)" >&2; exit 1; }
out=$repo/target/ci/dast
rm -rf "$out"
mkdir -p "$out"

cache=${CI_CACHE_DIR:-$HOME/.cache/ticketgw-ci}
req=scripts/ci/requirements-dast.txt
venv="$cache/dast-$(sha256sum "$req" | cut -c1-12)"
if [ ! -f "$venv/.complete" ]; then
  echo "dast: installing schemathesis into $venv (once)"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  touch "$venv/.complete"
fi
"$venv/bin/schemathesis" --version

# shellcheck source=scripts/ci/lib/serve-demo.sh
. scripts/ci/lib/serve-demo.sh
serve_demo "$binary" "$out/server.log" dast || exit 1
base=$DEMO_BASE
operations=$(curl -fsS "$base/api/v1/openapi.json" | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(sum(1 for p in d["paths"].values() for m in p if m in ("get","post","put","patch","delete")))')
echo "dast: $binary serves $operations operations at $base/api/v1/openapi.json"
# Tokens first: the anonymous run may spend the login rate limit.
attendee_token=$(demo_token attendee@example.com ticketgw-demo-attendee)
admin_token=$(demo_token admin@example.com ticketgw-demo-admin)

max_time=${DAST_MAX_TIME:-90}
seed=${DAST_SEED:-1}
checks=${DAST_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance}
echo "dast: checks $checks"
st() { # name, extra args...
  local name=$1
  shift
  echo "dast: $name: up to $max_time s, seed $seed"
  "$venv/bin/schemathesis" run "$base/api/v1/openapi.json" \
    --checks "$checks" --max-time "$max_time" --max-examples "${DAST_MAX_EXAMPLES:-25}" \
    --seed "$seed" --workers 1 --request-timeout 10 --no-shrink --warnings off \
    --report junit --report-junit-path "$out/$name.xml" "$@"
}
started=$(date +%s)
rc=0
# A third of the budget each: anonymous (what anyone on the internet can send), then signed in as
# the demo attendee and as the demo admin (last: its calls may change other accounts).
max_time=$(((max_time + 2) / 3))
st anonymous || rc=$?
st attendee --header "Authorization: Bearer $attendee_token" || rc=$?
st admin --header "Authorization: Bearer $admin_token" || rc=$?
demo_alive || { echo "dast: the server died during the run" >&2; rc=1; }
if grep -q '"level":"ERROR"' "$out/server.log"; then
  echo "dast: the server logged errors:" >&2
  grep '"level":"ERROR"' "$out/server.log" | head -5 >&2
fi
# Every distinct failure of the three runs, once: check, operation, what.
python3 scripts/ci/lib/dast-summary.py "$out"/anonymous.xml "$out"/attendee.xml "$out"/admin.xml |
  tee "$out/summary.txt" || true
echo "dast: done in $(($(date +%s) - started)) s, exit $rc (reports in $out)"
exit "$rc"
