#!/usr/bin/env bash
# Pipeline stage "test monitoring": the committed dashboards match their generator, and every dashboard
# query and alert rule works against a real Prometheus scraping the real release binary under load; one
# alert goes all the way through a real Alertmanager to a webhook (tests/monitoring/live_check.py).
#
#   scripts/ci/test-monitoring.sh            # TICKETGW_BIN (default ${CARGO_TARGET_DIR:-target}/release/ticketgw)
#
# Builds nothing. Installs Debian's prometheus and prometheus-alertmanager when missing, and grafanalib
# (pinned in deploy/monitoring/dashboards/requirements.txt) into a venv under $CI_CACHE_DIR (default
# ~/.cache/ticketgw-ci), made once. Everything runs on 127.0.0.1, on free ports, in a temporary directory;
# at most MONITORING_TIMEOUT seconds (default 170).
set -euo pipefail
cd "$(dirname "$0")/../.."
binary=${TICKETGW_BIN:-${CARGO_TARGET_DIR:-target}/release/ticketgw}
[ -x "$binary" ] || { echo "test-monitoring: no binary at $binary (scripts/ci/build-image.sh builds it)" >&2; exit 1; }

cache=${CI_CACHE_DIR:-$HOME/.cache/ticketgw-ci}
req=deploy/monitoring/dashboards/requirements.txt
venv="$cache/dashboards-$(sha256sum "$req" | cut -c1-12)"
if [ ! -f "$venv/.complete" ]; then
  echo "test-monitoring: installing grafanalib into $venv (once)"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  touch "$venv/.complete"
fi
"$venv/bin/python" deploy/monitoring/dashboards/generate.py --check

missing=()
command -v prometheus >/dev/null || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null || missing+=(prometheus-alertmanager)
if ((${#missing[@]})); then
  # Where systemd runs, the packages start their own services on the default ports; this test uses others.
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
prometheus --version 2>&1 | head -1
prometheus-alertmanager --version 2>&1 | head -1

work=$(mktemp -d)
check_pid=
cleanup() {
  local rc=$?
  # The check stops what it started. Killed on the spot, it leaves processes (Prometheus, Alertmanager,
  # the platform, socat and its forks) that carry TG_MONITORING_RUN=$work in their environment: only those.
  if [ -n "$check_pid" ]; then kill "$check_pid" 2>/dev/null || true; wait "$check_pid" 2>/dev/null || true; fi
  for env in /proc/[0-9]*/environ; do
    if tr '\0' '\n' 2>/dev/null <"$env" | grep -qxF "TG_MONITORING_RUN=$work"; then
      pid=${env#/proc/}
      kill -9 "${pid%/environ}" 2>/dev/null || true
    fi
  done
  if [ -f "$work/broker-phase.name" ]; then # the throwaway database and virtual host, if still there
    name=$(cat "$work/broker-phase.name")
    dropdb -h 127.0.0.1 -U postgres --if-exists --force "$name" 2>/dev/null || true
    rabbitmqctl -q list_vhosts 2>/dev/null | grep -qxF "$name" && rabbitmqctl -q delete_vhost "$name" >/dev/null 2>&1 || true
  fi
  if [ "$rc" -ne 0 ]; then
    for f in "$work"/ticketgw*.log; do [ -f "$f" ] && { echo "--- $(basename "$f") (last 20 lines)"; tail -20 "$f"; }; done
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' INT TERM

timeout --signal=TERM --kill-after=10 "${MONITORING_TIMEOUT:-170}" \
  python3 tests/monitoring/live_check.py --binary "$binary" --workdir "$work" &
check_pid=$!
wait "$check_pid"
