#!/usr/bin/env python3
"""Checks of deploy/monitoring that promtool and amtool do not do (scripts/ci/check-monitoring.sh):

    check_monitoring.py alerts [--self-test]   every alert has severity page|ticket, the annotations
                                               summary, description and runbook_url (a section of
                                               RUNBOOKS.md that exists), and unit tests in which it
                                               fires and in which it must not (exp_alerts: [])
    check_monitoring.py amtool-config OUT      writes the copy of alertmanager.yml that Debian 12's
                                               amtool 0.25 reads (bot_token_file, Alertmanager ≥ 0.26,
                                               becomes a dummy bot_token)
    check_monitoring.py receivers              pager: Telegram, e-mail, Slack; ticket: e-mail, Slack
    check_monitoring.py no-inline-secrets      alertmanager.yml names secrets only as *_file
    check_monitoring.py inhibitions            a real Alertmanager (receivers emptied: nothing is
                                               sent anywhere) on 127.0.0.1 mutes what the inhibit
                                               rules say, and nothing else
"""
import copy
import json
import pathlib
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
MON = ROOT / "deploy/monitoring"
RULES = MON / "rules/ticketgw.rules.yml"
TESTS = MON / "rules/ticketgw.rules.test.yml"
RUNBOOKS = MON / "RUNBOOKS.md"
ALERTMANAGER = MON / "alertmanager/alertmanager.yml"
RUNBOOK_URL = "https://github.com/ticket-gateway/ticketgw/blob/main/deploy/monitoring/RUNBOOKS.md#"
SEVERITIES = {"page", "ticket"}
ANNOTATIONS = {"summary", "description", "runbook_url"}
# Settings that hold a secret inline; each has a *_file twin that must be used instead.
INLINE_SECRETS = {"smtp_auth_password", "auth_password", "auth_secret", "bot_token", "api_url",
                  "slack_api_url", "url", "password", "bearer_token", "credentials", "api_key",
                  "routing_key", "service_key", "token", "user_key"}


def anchors(markdown):
    """GitHub's anchors of the ## headings: lower case, punctuation dropped, spaces as dashes."""
    return {re.sub(r"[^a-z0-9 _-]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^##\s+(.+)$", markdown, re.M)}


def alert_problems(rules, tests, runbooks):
    problems, alerts = [], []
    for group in rules.get("groups", []):
        for rule in group.get("rules", []):
            if "alert" not in rule:
                continue
            name = rule["alert"]
            alerts.append(name)
            severity = rule.get("labels", {}).get("severity")
            if severity not in SEVERITIES:
                problems.append(f"{name}: severity {severity!r}, not one of {sorted(SEVERITIES)}")
            missing = ANNOTATIONS - set(rule.get("annotations", {}))
            if missing:
                problems.append(f"{name}: annotations {sorted(missing)} missing")
            url = rule.get("annotations", {}).get("runbook_url", "")
            if not url.startswith(RUNBOOK_URL):
                problems.append(f"{name}: runbook_url {url!r} is not a section of RUNBOOKS.md ({RUNBOOK_URL}…)")
            elif url[len(RUNBOOK_URL):] not in runbooks:
                problems.append(f"{name}: RUNBOOKS.md has no section #{url[len(RUNBOOK_URL):]} (## {name})")
    duplicates = {a for a in alerts if alerts.count(a) > 1}
    if duplicates:
        problems.append(f"alerts defined twice: {sorted(duplicates)}")
    fires, silent = set(), set()
    for test in tests.get("tests", []):
        for case in test.get("alert_rule_test", []) or []:
            (fires if case.get("exp_alerts") else silent).add(case.get("alertname"))
    for name in alerts:
        if name not in fires:
            problems.append(f"{name}: no unit test in which it fires")
        if name not in silent:
            problems.append(f"{name}: no unit test in which it must not fire (exp_alerts: [])")
    for name in sorted((fires | silent) - set(alerts)):
        problems.append(f"{name}: tested, but no such alert in the rule file")
    return problems, alerts


def check_alerts():
    rules, tests = yaml.safe_load(RULES.read_text()), yaml.safe_load(TESTS.read_text())
    problems, alerts = alert_problems(rules, tests, anchors(RUNBOOKS.read_text()))
    for p in problems:
        print("FAIL", p)
    print(f"alerts: {len(alerts)} in {RULES.relative_to(ROOT)}, {len(problems)} problem(s)")
    return 1 if problems else 0


def self_test():
    """Each problem the check looks for must be caught."""
    rules, tests = yaml.safe_load(RULES.read_text()), yaml.safe_load(TESTS.read_text())
    runbooks = anchors(RUNBOOKS.read_text())
    first = rules["groups"][0]["rules"][0]

    def untested(r, t, b):
        extra = copy.deepcopy(first)
        extra["alert"] = "TicketgwUntested"
        extra["annotations"]["runbook_url"] = RUNBOOK_URL + "ticketgwuntested"
        r["groups"][0]["rules"].append(extra)
        b.add("ticketgwuntested")

    def only_fires(r, t, b):
        for test in t["tests"]:
            test["alert_rule_test"] = [c for c in test["alert_rule_test"]
                                       if c["alertname"] != first["alert"] or c.get("exp_alerts")]

    breaks = {
        "an alert without tests": untested,
        "an alert without a case where it must not fire": only_fires,
        "a severity outside page|ticket": lambda r, t, b: first["labels"].update(severity="critical"),
        "a missing annotation": lambda r, t, b: first["annotations"].pop("description"),
        "a runbook section that does not exist": lambda r, t, b: b.discard(first["alert"].lower()),
    }
    failed = 0
    if alert_problems(rules, tests, runbooks)[0]:
        print("self-test: the committed files have problems")
        failed += 1
    for what, breaker in breaks.items():
        r, t, b = copy.deepcopy(rules), copy.deepcopy(tests), set(runbooks)
        first = r["groups"][0]["rules"][0]
        breaker(r, t, b)
        if not alert_problems(r, t, b)[0]:
            print(f"self-test: {what} went unnoticed")
            failed += 1
    print(f"alerts self-test: {len(breaks) + 1 - failed} passed, {failed} failed")
    return 1 if failed else 0


def amtool_config():
    """alertmanager.yml for amtool 0.25, which predates bot_token_file."""
    config = yaml.safe_load(ALERTMANAGER.read_text())
    for receiver in config.get("receivers", []):
        for telegram in receiver.get("telegram_configs", []):
            if telegram.pop("bot_token_file", None):
                telegram["bot_token"] = "dummy-for-amtool-0.25"
    return yaml.safe_dump(config, sort_keys=False)


# What each receiver must reach (alertmanager.yml's header): pages wake someone, tickets don't.
RECEIVERS = {"pager": {"telegram_configs", "email_configs", "slack_configs"},
             "ticket": {"email_configs", "slack_configs"}}


def receivers():
    have = {r["name"]: {k for k in r if k.endswith("_configs")}
            for r in yaml.safe_load(ALERTMANAGER.read_text())["receivers"]}
    wrong = {name: have.get(name) for name, want in RECEIVERS.items() if have.get(name) != want}
    for name, got in wrong.items():
        print(f"FAIL receiver {name}: {sorted(got) if got is not None else 'missing'}, "
              f"expected {sorted(RECEIVERS[name])}")
    return 1 if wrong else 0


def no_inline_secrets():
    found = []

    def walk(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                if k in INLINE_SECRETS:
                    found.append(f"{path}.{k}")
                walk(v, f"{path}.{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{path}[{i}]")
    walk(yaml.safe_load(ALERTMANAGER.read_text()), "")
    for f in found:
        print(f"FAIL {ALERTMANAGER.relative_to(ROOT)}: {f} holds a secret inline: use its *_file form")
    print(f"secrets in {ALERTMANAGER.relative_to(ROOT)}: {f'{len(found)} inline' if found else 'only as files'}")
    return 1 if found else 0


# Alerts posted to the real Alertmanager, and which of them must end up muted.
INHIBITION_CASES = [
    ({"alertname": "TicketgwServiceDown", "severity": "page", "namespace": "prod", "job": "bookings"}, False),
    ({"alertname": "TicketgwHighErrorRatio", "severity": "page", "namespace": "prod", "job": "bookings"}, True),
    ({"alertname": "TicketgwPodNotReady", "severity": "ticket", "namespace": "prod", "job": "bookings", "pod": "bookings-a"}, True),
    ({"alertname": "TicketgwHighErrorRatio", "severity": "page", "namespace": "prod", "job": "events"}, False),
    ({"alertname": "TicketgwHighErrorRatio", "severity": "page", "namespace": "staging", "job": "bookings"}, False),
    ({"alertname": "TicketgwBrokerUnreachable", "severity": "page", "namespace": "prod", "job": "payments"}, False),
    ({"alertname": "TicketgwRelayErrors", "severity": "ticket", "namespace": "prod", "job": "payments"}, True),
    ({"alertname": "TicketgwOutboxLagHigh", "severity": "page", "namespace": "prod", "job": "payments"}, False),
    ({"alertname": "TicketgwRelayErrors", "severity": "ticket", "namespace": "staging", "job": "payments"}, False),
    ({"alertname": "TicketgwCertificateExpiryCritical", "severity": "page", "namespace": "prod", "name": "gateway-tls"}, False),
    ({"alertname": "TicketgwCertificateExpiringSoon", "severity": "ticket", "namespace": "prod", "name": "gateway-tls"}, True),
    ({"alertname": "TicketgwCertificateExpiringSoon", "severity": "ticket", "namespace": "prod", "name": "users-tls"}, False),
]


def inhibitions():
    config = yaml.safe_load(amtool_config())
    config["receivers"] = [{"name": r["name"]} for r in config["receivers"]]  # send nothing
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}/api/v2"
    with tempfile.TemporaryDirectory() as tmp:
        (pathlib.Path(tmp) / "am.yml").write_text(yaml.safe_dump(config))
        proc = subprocess.Popen(
            ["prometheus-alertmanager", f"--config.file={tmp}/am.yml", f"--storage.path={tmp}/data",
             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.time() + 15
            while True:
                try:
                    urllib.request.urlopen(f"{base}/status", timeout=1).close()
                    break
                except OSError:
                    if proc.poll() is not None or time.time() > deadline:
                        print("FAIL alertmanager did not start:", proc.stderr.read() if proc.poll() is not None else "timeout")
                        return 1
                    time.sleep(0.2)
            body = json.dumps([{"labels": labels, "annotations": {"summary": "inhibition test"}}
                               for labels, _ in INHIBITION_CASES]).encode()
            urllib.request.urlopen(urllib.request.Request(f"{base}/alerts", body, {"Content-Type": "application/json"}),
                                   timeout=5).close()
            wrong = []
            deadline = time.time() + 10
            while time.time() < deadline:  # the inhibitor sees new source alerts asynchronously
                with urllib.request.urlopen(f"{base}/alerts", timeout=5) as res:
                    got = {json.dumps(a["labels"], sort_keys=True): bool(a["status"]["inhibitedBy"])
                           for a in json.load(res)}
                wrong = [(labels, muted, got.get(json.dumps(labels, sort_keys=True))) for labels, muted in INHIBITION_CASES
                         if got.get(json.dumps(labels, sort_keys=True)) != muted]
                if not wrong:
                    break
                time.sleep(0.3)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    for labels, muted, got in wrong:
        print(f"FAIL {labels}: expected {'muted' if muted else 'not muted'}, got {got}")
    print(f"inhibitions: {len(INHIBITION_CASES) - len(wrong)} of {len(INHIBITION_CASES)} alerts as expected")
    return 1 if wrong else 0


def main(argv):
    if argv[1:] == ["alerts"]:
        return check_alerts()
    if argv[1:] == ["alerts", "--self-test"]:
        return self_test()
    if len(argv) == 3 and argv[1] == "amtool-config":
        pathlib.Path(argv[2]).write_text(amtool_config())
        return 0
    if argv[1:] == ["receivers"]:
        return receivers()
    if argv[1:] == ["no-inline-secrets"]:
        return no_inline_secrets()
    if argv[1:] == ["inhibitions"]:
        return inhibitions()
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
