#!/usr/bin/env bash
# DAST: schemathesis generates requests from the running release binary's own OpenAPI document
# (/api/v1/openapi.json) and fails on any 5xx answer (check not_a_server_error), as an anonymous
# caller and as the demo attendee. Bounded: DAST_MAX_TIME seconds of generation (default 60).
#
#   scripts/ci/dast.sh [binary]        (default target/release/ticketgw)
#
# The binary serves the demo on SQLite in a temporary folder on a free local port; nothing outside is
# called. schemathesis (pinned in scripts/ci/requirements-dast.txt) lives in a venv under
# $CI_CACHE_DIR (default ~/.cache/ticketgw-ci), made once. Reports: target/ci/dast/ (JUnit, server log).
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

data=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$data"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
TICKETGW_LISTEN=127.0.0.1:$port TICKETGW_DATA_DIR=$data PUBLIC_URL=$base LOG_FORMAT=json \
  "$binary" serve --demo >"$out/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 120); do
  curl -fsS "$base/readyz" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || { tail -20 "$out/server.log" >&2; echo "dast: the server died" >&2; exit 1; }
  sleep 0.5
done
curl -fsS "$base/readyz" >/dev/null || { echo "dast: the server is not ready" >&2; exit 1; }
operations=$(curl -fsS "$base/api/v1/openapi.json" | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(sum(1 for p in d["paths"].values() for m in p if m in ("get","post","put","patch","delete")))')
echo "dast: $binary serves $operations operations at $base/api/v1/openapi.json"
token=$(curl -fsS -X POST "$base/api/v1/auth/login" -H 'content-type: application/json' \
  -d '{"email":"attendee@example.com","password":"ticketgw-demo-attendee"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

max_time=${DAST_MAX_TIME:-60}
seed=${DAST_SEED:-1}
st() { # name, extra args...
  local name=$1
  shift
  echo "dast: $name: up to $max_time s, seed $seed"
  "$venv/bin/schemathesis" run "$base/api/v1/openapi.json" \
    --checks not_a_server_error --max-time "$max_time" --max-examples "${DAST_MAX_EXAMPLES:-25}" \
    --seed "$seed" --workers 1 --request-timeout 10 --no-shrink --warnings off \
    --report junit --report-junit-path "$out/$name.xml" "$@"
}
started=$(date +%s)
rc=0
# Half the budget each: anonymous (what anyone on the internet can send), then signed in.
max_time=$(((max_time + 1) / 2))
st anonymous || rc=$?
st attendee --header "Authorization: Bearer $token" || rc=$?
kill -0 "$server_pid" 2>/dev/null || { echo "dast: the server died during the run" >&2; rc=1; }
if grep -q '"level":"ERROR"' "$out/server.log"; then
  echo "dast: the server logged errors:" >&2
  grep '"level":"ERROR"' "$out/server.log" | head -5 >&2
fi
echo "dast: done in $(($(date +%s) - started)) s, exit $rc (reports in $out)"
exit "$rc"
