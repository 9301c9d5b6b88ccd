#!/usr/bin/env bash
# Proves the alerting and monitoring configuration, offline, in seconds (no build, no cluster):
#  1. the alert rules load and their unit tests pass (promtool check/test rules);
#  2. every alert has a severity, its annotations, a runbook section and unit tests in which it
#     fires and in which it must not (tests/deploy/check_monitoring.py, with a self-test);
#  3. alertmanager.yml loads (amtool check-config), routes each severity to its receivers
#     (amtool config routes test), keeps secrets in files, and its inhibit rules mute what they
#     should in a real Alertmanager on 127.0.0.1 (receivers emptied: nothing is sent);
#  4. the PrometheusRule and AlertmanagerConfig of deploy/components/monitoring are what
#     generate.py makes from those two files;
#  5. each dashboard in deploy/monitoring/dashboards is valid JSON.
# Rendering and validating the component itself is scripts/ci/validate-manifests.sh's job (the
# staging and prod overlays include it). Installs Debian's prometheus (promtool) and
# prometheus-alertmanager (amtool) when missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
MON=deploy/monitoring
passed=0; failed=0
step() { # name command...
  local name=$1; shift
  if "$@"; then passed=$((passed + 1)); echo "ok   $name"; else failed=$((failed + 1)); echo "FAIL $name"; fi
}

missing=()
command -v promtool >/dev/null || missing+=(prometheus)
command -v amtool >/dev/null || missing+=(prometheus-alertmanager)
if ((${#missing[@]})); then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# PyYAML: the machine's python3 has it; else the venv validate-manifests.sh makes.
PY=python3
$PY -c 'import yaml' 2>/dev/null || PY=tests/deploy/.venv/bin/python
$PY -c 'import yaml' 2>/dev/null || {
  python3 -m venv tests/deploy/.venv && tests/deploy/.venv/bin/pip install -q --disable-pip-version-check \
    "$(grep -i '^PyYAML==' tests/deploy/requirements.txt)"
}

OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

# 1 and 2. Alert rules.
step "promtool check rules" promtool check rules $MON/rules/ticketgw.rules.yml
step "promtool test rules (unit tests)" promtool test rules $MON/rules/ticketgw.rules.test.yml
step "every alert: labels, annotations, runbook, tests that fire and that must not" \
  $PY tests/deploy/check_monitoring.py alerts
step "that check's self-test (an untested alert fails, …)" $PY tests/deploy/check_monitoring.py alerts --self-test

# 3. Alertmanager. Debian 12's amtool is 0.25: it knows telegram_configs (≥ 0.24) but not their
# bot_token_file (≥ 0.26), so it reads a copy where that field is a dummy bot_token.
$PY tests/deploy/check_monitoring.py amtool-config "$OUT/alertmanager.yml"
step "amtool check-config ($(amtool --version 2>&1 | head -1 | cut -d' ' -f3))" amtool check-config "$OUT/alertmanager.yml"
routes() { # expected-receivers label=value...
  local want=$1 got; shift
  got=$(amtool config routes test --config.file="$OUT/alertmanager.yml" "$@" 2>/dev/null)
  [[ $got == "$want" ]] || { echo "$* → $got, expected $want"; return 1; }
}
step "route: severity=page → pager (Telegram, e-mail, Slack)" \
  routes pager alertname=TicketgwServiceDown severity=page namespace=prod job=bookings
step "route: severity=ticket → ticket (e-mail, Slack)" \
  routes ticket alertname=TicketgwDeadLetters severity=ticket namespace=prod job=notifications
step "route: no severity → ticket" routes ticket alertname=SomethingElse namespace=prod
step "receivers: pager = Telegram + e-mail + Slack, ticket = e-mail + Slack" \
  $PY tests/deploy/check_monitoring.py receivers
step "secrets only as *_file" $PY tests/deploy/check_monitoring.py no-inline-secrets
step "inhibit rules, in a real Alertmanager" $PY tests/deploy/check_monitoring.py inhibitions

# 4. The component's generated custom resources.
step "PrometheusRule and AlertmanagerConfig in sync (generate.py --check)" \
  $PY deploy/components/monitoring/generate.py --check

# 5. Dashboards.
dashboards_valid() {
  local f n=0
  for f in $MON/dashboards/*.json; do
    [[ -e $f ]] || continue
    $PY -m json.tool "$f" >/dev/null || { echo "invalid JSON: $f"; return 1; }
    n=$((n + 1))
  done
  echo "$n dashboards"
}
step "dashboards are valid JSON" dashboards_valid

echo "check-monitoring: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
