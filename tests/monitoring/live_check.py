#!/usr/bin/env python3
"""Live test of the monitoring: the dashboards' queries and the alert rules against a real Prometheus
scraping a real Ticket Gateway, and alerts sent for real through Alertmanager to a webhook.

    live_check.py --binary target/release/ticketgw --workdir DIR [--rules FILE] [--dashboards DIR]

Prometheus (every target scraped each second, job `ticketgw` as the monolith in Kubernetes, a copy of
the rule file evaluated each second) and Alertmanager (everything routed to a webhook receiver inside
this script) run first; then two platforms, one after the other. Prometheus scrapes a platform's own
port over 127.0.0.1: without METRICS_LISTEN or METRICS_TOKEN, /metrics answers loopback callers only.

1. `ticketgw serve --demo` on its embedded defaults (SQLite, in-process bus), e-mail going to an SMTP
   sink here that defers the first message and bounces bounce-* recipients. Load: smoke_journey.py
   three times, event listings, 404s, a forged webhook, a buyer whose e-mail bounces, door scans, a
   partial refund, a hold over the per-buyer limit. Then every Prometheus target of every dashboard
   (variables replaced by their All values) must parse and return at least one series, except
   queries on metrics from outside the platform (OUTSIDE), which must only parse; every rule must
   parse and evaluate. Then the platform is killed: TicketgwTargetDown must reach the webhook.
2. The platform on PostgreSQL (a throwaway database) and RabbitMQ (a throwaway virtual host), the
   broker reached through socat: one journey, then socat is killed and a hold made: the outbox lags
   and TicketgwRelayErrors must reach the webhook. Skipped with a notice when PostgreSQL (127.0.0.1:5432)
   or RabbitMQ (127.0.0.1:5672) is not there, unless CI or TG_REQUIRE_RABBITMQ is set. The machine's
   own services are used, never stopped.

Every process started is stopped on exit and carries TG_MONITORING_RUN=DIR in its environment, by
which the calling script finds what is left if this script itself is killed. Prints a table, then
PASS or FAIL; exits 1 on FAIL.
"""

import argparse
import asyncio
import http.server
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests/deploy"))
from smoke_journey import Platform, sandbox_pays  # noqa: E402

DASHBOARDS = ROOT / "deploy/monitoring/dashboards"
RULES = ROOT / "deploy/monitoring/rules/ticketgw.rules.yml"
EVENT, TICKET_TYPE = "tech-conference-2025", "standard"
REFUNDABLE = "vip"  # the demo event's standard tickets are not refundable
ORGANIZER = ("organizer@example.com", "ticketgw-demo-organizer")
JOB = "ticketgw"  # the monolith's job, as in Kubernetes (METRICS.md)
TARGET_DOWN, RELAY_ERRORS = "TicketgwTargetDown", "TicketgwRelayErrors"
POSTGRES, RABBITMQ = ("127.0.0.1", 5432), ("127.0.0.1", 5672)

# Metrics of other exporters (kube-state-metrics, cAdvisor, cert-manager): no series here, so a query
# using only these must parse, nothing more.
OUTSIDE = ("kube_", "container_", "certmanager_")
# Grafana's built-in variables, as Grafana would set them for a short range.
BUILTINS = {"__rate_interval": "1m", "__range": "5m", "__interval": "15s", "__auto": "15s"}
SHORT_FOR = "1s"


def log(*args):
    print(*args, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Failed(Exception):
    pass


# ---------------------------------------------------------------------------------------------------------
# Processes: each in its own session (a process group), marked with the run, stopped in reverse order.

class Processes:
    def __init__(self, workdir):
        self.workdir, self.running = workdir, {}

    def start(self, name, argv, env=None):
        out = open(self.workdir / f"{name}.log", "w")
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, **(env or {}), "TG_MONITORING_RUN": str(self.workdir)},
                                start_new_session=True)
        self.running[name] = proc
        return proc

    def alive(self, name):
        if self.running[name].poll() is not None:
            raise Failed(f"{name} exited with {self.running[name].returncode}:\n{self.tail(name)}")

    def tail(self, name, lines=25):
        text = (self.workdir / f"{name}.log").read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self, name, sig=signal.SIGTERM):
        """Stops the process and its children (its own process group: socat forks one per connection)."""
        proc = self.running.pop(name, None)
        if proc and proc.poll() is None:
            os.killpg(proc.pid, sig)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop_all(self):
        for name in reversed(list(self.running)):
            self.stop(name)


def wait_http(procs, name, url, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        procs.alive(name)
        try:
            with urllib.request.urlopen(url, timeout=2) as res:
                if res.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise Failed(f"{name} not ready at {url} within {seconds} s:\n{procs.tail(name)}")


# ---------------------------------------------------------------------------------------------------------
# The webhook receiver (Alertmanager's notifications) and the SMTP sink (the platform's e-mail).

class Webhook(http.server.ThreadingHTTPServer):
    def __init__(self):
        self.received = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(handler):
                body = handler.rfile.read(int(handler.headers.get("content-length", 0)))
                self.received.append(json.loads(body))
                handler.send_response(200)
                handler.end_headers()

            def log_message(handler, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def alerts(self):
        return [(notice["status"], alert["labels"].get("alertname"), alert["status"])
                for notice in self.received for alert in notice.get("alerts", [])]


class SmtpSink:
    """Just enough SMTP for lettre: the first message is deferred (451: the notice is retried), bounce-*
    recipients are refused (550: it fails for good), every other message is accepted."""

    def __init__(self):
        self.accepted, self.deferred, self.refused = 0, 0, 0
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait(5)

    def _run(self, ready):
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(asyncio.start_server(self._session, "127.0.0.1", 0))
        self.port = self.server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()

    async def _session(self, reader, writer):
        def say(line):
            writer.write(line.encode() + b"\r\n")

        say("220 sink ESMTP")
        try:
            while line := (await reader.readline()).decode(errors="replace").strip():
                verb = line.split(" ", 1)[0].upper()
                if verb in ("EHLO", "HELO"):
                    say("250 sink")
                elif verb == "RCPT" and "<bounce-" in line.lower():
                    self.refused += 1
                    say("550 5.1.1 no such mailbox")
                elif verb == "DATA":
                    say("354 go on")
                    while (await reader.readline()).rstrip(b"\r\n") != b".":
                        pass
                    if self.deferred == 0:
                        self.deferred += 1
                        say("451 4.3.0 try again later")
                    else:
                        self.accepted += 1
                        say("250 2.0.0 accepted")
                elif verb == "QUIT":
                    say("221 bye")
                    break
                else:  # MAIL, RCPT, RSET, NOOP
                    say("250 ok")
                await writer.drain()
        finally:
            writer.close()


# ---------------------------------------------------------------------------------------------------------
# Prometheus and Alertmanager.

def prometheus_api(base, path, **params):
    url = f"{base}/api/v1/{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
    try:
        with urllib.request.urlopen(url, timeout=10) as res:
            return json.loads(res.read())
    except urllib.error.HTTPError as e:  # 400 for a query that does not parse, with the reason
        return json.loads(e.read())


def short_rules(source, dest):
    """A copy of the rule file whose `for:` (and group `interval:`) are SHORT_FOR: the real durations are
    minutes, too long for a test. Expressions, labels and annotations stay as they are."""
    text = source.read_text()
    text = re.sub(r"(?m)^(\s*)(for|interval):\s*\S+\s*$", rf"\g<1>\g<2>: {SHORT_FOR}", text)
    dest.write_text(text)


def start_monitoring(procs, workdir, rules, hook):
    """Alertmanager, then Prometheus scraping the targets listed in DIR/targets.json (see add_target)."""
    am_port, prom_port = free_port(), free_port()
    (workdir / "alertmanager.yml").write_text(json.dumps({  # YAML is a superset of JSON
        "route": {"receiver": "test", "group_by": ["alertname", "instance"], "group_wait": "1s",
                  "group_interval": "1s", "repeat_interval": "1h"},
        "receivers": [{"name": "test", "webhook_configs": [
            {"url": f"http://127.0.0.1:{hook.server_address[1]}/alerts", "send_resolved": True}]}],
    }))
    procs.start("alertmanager", [
        "prometheus-alertmanager", f"--config.file={workdir / 'alertmanager.yml'}",
        f"--storage.path={workdir / 'alertmanager-data'}", f"--web.listen-address=127.0.0.1:{am_port}",
        "--cluster.listen-address=", "--log.level=warn"])
    rule_files = []
    if rules:
        short_rules(rules, workdir / "rules.yml")
        rule_files = [str(workdir / "rules.yml")]
    (workdir / "targets.json").write_text("[]")
    (workdir / "prometheus.yml").write_text(json.dumps({
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": rule_files,
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
        "scrape_configs": [{"job_name": JOB, "file_sd_configs": [
            {"files": [str(workdir / "targets.json")], "refresh_interval": "1s"}]}],
    }))
    procs.start("prometheus", [
        "prometheus", f"--config.file={workdir / 'prometheus.yml'}", f"--storage.tsdb.path={workdir / 'prometheus-data'}",
        f"--web.listen-address=127.0.0.1:{prom_port}", "--storage.tsdb.retention.time=1h", "--log.level=warn"])
    wait_http(procs, "alertmanager", f"http://127.0.0.1:{am_port}/-/ready")
    wait_http(procs, "prometheus", f"http://127.0.0.1:{prom_port}/-/ready")
    return f"http://127.0.0.1:{prom_port}"


def add_target(workdir, instance, namespace):
    """Prometheus scrapes one more platform from now on; `namespace` tells the two platforms apart, as
    environments are told apart in Kubernetes."""
    path = workdir / "targets.json"
    listed = json.loads(path.read_text()) + [{"targets": [instance], "labels": {"namespace": namespace}}]
    (workdir / "targets.json.new").write_text(json.dumps(listed))
    os.replace(workdir / "targets.json.new", path)  # Prometheus never reads half a file


# ---------------------------------------------------------------------------------------------------------
# The platform and its load.

def start_platform(procs, workdir, name, env):
    port, secret = free_port(), "whsec_monitoring_" + uuid.uuid4().hex[:16]
    base = f"http://127.0.0.1:{port}"
    (workdir / f"{name}-data").mkdir()
    procs.start(name, [str(ARGS.binary), "serve", "--demo"], env={
        "TICKETGW_LISTEN": f"127.0.0.1:{port}", "TICKETGW_DATA_DIR": str(workdir / f"{name}-data"), "PUBLIC_URL": base,
        "SANDBOX_WEBHOOK_SECRET": secret, "LOG_FORMAT": "json", **env})
    wait_http(procs, name, f"{base}/readyz", 90)
    return base, f"127.0.0.1:{port}", secret


def journey(base, secret, i=1):
    result = subprocess.run([sys.executable, str(ROOT / "tests/deploy/smoke_journey.py"), base,
                             "--sandbox-secret", secret, "--event", EVENT, "--ticket-type", TICKET_TYPE],
                            capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise Failed(f"smoke journey {i} against {base} failed:\n{result.stdout}{result.stderr}")


def load(base, secret):
    for i in range(3):
        journey(base, secret, i + 1)
    log("load: 3 smoke journeys passed")
    p = Platform(base)
    for _ in range(10):
        p.call("GET", "/api/v1/events")
    for _ in range(3):
        p.call("GET", f"/api/v1/no-such-route-{uuid.uuid4().hex[:6]}", expect=(404,))
    # A forged webhook: rejected.
    p.call("POST", "/api/v1/payments/webhooks/sandbox", raw=b'{"id":"forged"}',
           headers={"sandbox-signature": f"t={int(time.time())},v1={'0' * 64}"}, expect=(400, 401))
    # A buyer whose e-mail bounces buys two tickets: one scanned twice at the door, one refunded.
    buyer = p.register(f"bounce-{uuid.uuid4().hex[:10]}@example.com")
    booking = p.call("POST", "/api/v1/bookings", buyer,
                     {"event_id": EVENT, "items": [{"ticket_type_id": REFUNDABLE, "quantity": 2}]},
                     key=uuid.uuid4().hex, expect=(201,))
    payment = p.call("POST", "/api/v1/payments", buyer, {"booking_id": booking["id"], "provider": "sandbox"},
                     key=uuid.uuid4().hex, expect=(201,))
    sandbox_pays(p, secret, payment["id"], round(payment["amount"] * 100), payment["currency"])
    p.until("the booking is confirmed",
            lambda: p.call("GET", f"/api/v1/bookings/{booking['id']}", buyer)["status"] == "confirmed")
    first, second = [t for t in p.call("GET", "/api/v1/me/tickets", buyer)["items"] if t["booking_id"] == booking["id"]]
    organizer = p.login(*ORGANIZER)
    event_id = p.call("GET", f"/api/v1/events/{EVENT}")["id"]
    for _ in range(2):  # valid, then already checked in
        p.call("POST", f"/api/v1/events/{event_id}/checkins", organizer, {"code": first["code"], "nonce": uuid.uuid4().hex})
    p.call("POST", f"/api/v1/payments/{payment['id']}/refund", buyer, {"tickets": [second["id"]]}, expect=(202,))
    # Over the per-buyer limit: refused, counted as an outcome.
    p.call("POST", "/api/v1/bookings", buyer, {"event_id": EVENT, "items": [{"ticket_type_id": TICKET_TYPE, "quantity": 60}]},
           key=uuid.uuid4().hex, expect=(409, 422))
    log("load: listings, 404s, a forged webhook, a bounced buyer, 2 door scans, a refund, a hold over the limit")


# ---------------------------------------------------------------------------------------------------------
# The checks.

def substitute(expr, variables):
    """The query Grafana sends with every variable on All; a KeyError names a variable no one defines."""
    def value(match):
        name = match.group(1) or match.group(2)
        return BUILTINS[name] if name in BUILTINS else variables[name]
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", value, expr)


def metric_names(expr):
    """Metric names of a query: every selector is written name{…} or name[…] in these files."""
    return set(re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*[{\[]", expr)) - {"by", "without", "on", "ignoring"}


def dashboard_targets():
    for path in sorted(ARGS.dashboards.glob("*.json")):
        board = json.loads(path.read_text())
        # The "All" value of each variable, as Grafana sends it when All is selected.
        variables = {v["name"]: v.get("allValue") or ".*" for v in board["templating"]["list"]}
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                kind = (target.get("datasource") or panel.get("datasource") or {}).get("type")
                try:
                    expr = substitute(target["expr"], variables)
                except KeyError as e:
                    kind, expr = "undefined variable", f"${e.args[0]} in {target['expr']}"
                yield path.stem, panel["title"], target["refId"], kind, expr


def series(prom, expr):
    answer = prometheus_api(prom, "query", query=expr)
    if answer.get("status") != "success":
        return None, answer.get("error", answer)
    return len(answer["data"]["result"]), None


def wait_scrapes(prom, instance, since, count=3, seconds=20):
    """Until Prometheus has scraped `instance` `count` times since `since` (a time.time())."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        window = max(1, int(time.time() - since))
        answer = prometheus_api(prom, "query", query=f'count_over_time(up{{instance="{instance}"}}[{window}s])')
        if answer["data"]["result"] and float(answer["data"]["result"][0]["value"][1]) >= count:
            return
        time.sleep(0.5)
    raise Failed(f"Prometheus did not scrape {instance} {count} times within {seconds} s")


def check_dashboards(prom, grace=15):
    rows, problems, pending = [], [], []
    for board, title, ref, kind, expr in dashboard_targets():
        if kind == "undefined variable":
            rows.append((board, title, ref, "-", "FAIL: undefined variable"))
            problems.append(f"{board} / {title} [{ref}]: undefined variable {expr}")
            continue
        if kind != "prometheus":
            rows.append((board, title, ref, "-", f"{kind}: not queried here"))
            continue
        pending.append((board, title, ref, expr))
    # Gauges refreshed every few seconds and rates need two samples: empty answers get a few more tries.
    deadline = time.time() + grace
    while pending:
        retry = []
        for board, title, ref, expr in pending:
            count, error = series(prom, expr)
            names = metric_names(expr)
            outside = bool(names) and all(n.startswith(OUTSIDE) for n in names)
            if error is not None:
                rows.append((board, title, ref, "-", "FAIL: does not parse"))
                problems.append(f"{board} / {title} [{ref}]: {error}\n    {expr}")
            elif count or outside:
                rows.append((board, title, ref, count, "ok" if count else "ok (outside metrics: parses)"))
            elif time.time() < deadline:
                retry.append((board, title, ref, expr))
            else:
                rows.append((board, title, ref, 0, "FAIL: no series"))
                problems.append(f"{board} / {title} [{ref}]: no series\n    {expr}")
        pending = retry
        if pending:
            time.sleep(2)
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    widths = [max(len(str(r[i])) for r in rows + [("dashboard", "panel", "ref", "series", "")]) for i in range(4)]
    log("\n" + "  ".join(h.ljust(w) for h, w in zip(("dashboard", "panel", "ref", "series"), widths)) + "  result")
    for r in rows:
        log("  ".join(str(c).ljust(w) for c, w in zip(r, widths)) + f"  {r[4]}")
    verdicts = [r[4].split(" ")[0] for r in rows if r[3] != "-" or r[4].startswith("FAIL")]
    log(f"\ndashboards: {len(verdicts)} Prometheus queries: {sum(1 for r in rows if r[3] not in ('-', 0))} with series, "
        f"{sum(1 for r in rows if 'outside' in r[4])} on outside metrics (parse only), "
        f"{sum(1 for r in rows if 'empty:' in r[4])} empty as expected, {verdicts.count('FAIL:')} failed")
    return problems


def check_rules(prom, rules):
    problems, alerts = [], 0
    check = subprocess.run(["promtool", "check", "rules", str(rules)], capture_output=True, text=True)
    if check.returncode != 0:
        problems.append(f"promtool check rules {rules}:\n{check.stdout}{check.stderr}")
    groups = prometheus_api(prom, "rules")["data"]["groups"]
    for group in groups:
        for rule in group["rules"]:
            name = rule["name"]
            _, error = series(prom, rule["query"])
            if error is not None:
                problems.append(f"rule {name}: does not parse: {error}")
            elif rule.get("health") == "err":
                problems.append(f"rule {name}: evaluation failed: {rule.get('lastError')}")
            alerts += rule["type"] == "alerting"
    log(f"rules: {sum(len(g['rules']) for g in groups)} rules in {len(groups)} groups ({alerts} alerts) "
        f"parse and evaluate{'' if not problems else ' except:'}")
    if not alerts:
        problems.append(f"Prometheus loaded no alert from {rules}")
    return problems


def await_alert(procs, hook, alertname, seconds=45, **labels):
    """Until Alertmanager has delivered `alertname` firing, with these labels, to the webhook."""
    started, deadline = time.time(), time.time() + seconds
    while time.time() < deadline:
        procs.alive("prometheus")
        procs.alive("alertmanager")
        for notice in hook.received:
            for alert in notice.get("alerts", []):
                got = alert["labels"]
                if (alert["status"] == "firing" and got.get("alertname") == alertname
                        and all(got.get(k) == v for k, v in labels.items())):
                    log(f"alert: {alertname} arrived at the webhook, firing, {time.time() - started:.1f} s later: "
                        f"{json.dumps(got, sort_keys=True)}, summary: {alert['annotations'].get('summary')!r}")
                    return []
        time.sleep(0.5)
    return [f"{alertname} with {labels} did not reach the webhook within {seconds} s; it received: {hook.alerts()}\n"
            f"alertmanager log:\n{procs.tail('alertmanager')}\nprometheus log:\n{procs.tail('prometheus')}"]


def reachable(address):
    try:
        socket.create_connection(address, timeout=2).close()
        return True
    except OSError:
        return False


def broker_phase(procs, workdir, prom, hook):
    """The platform on PostgreSQL and RabbitMQ through a relay; the relay dies, the outbox lags, the relay
    errors alert arrives. The machine's PostgreSQL and RabbitMQ are only used, never stopped."""
    missing = [f"{what} on {host}:{port}" for what, (host, port) in (("PostgreSQL", POSTGRES), ("RabbitMQ", RABBITMQ))
               if not reachable((host, port))]
    if missing:
        if os.environ.get("CI") or os.environ.get("TG_REQUIRE_RABBITMQ"):
            return [f"needs {' and '.join(missing)} (.ci/run starts them)"]
        log(f"broker phase: SKIPPED, no {' and '.join(missing)}")
        return []
    name = f"tg_mon_{uuid.uuid4().hex[:8]}"  # the database and the RabbitMQ virtual host of this run
    relay_port = free_port()
    psql = ["-h", POSTGRES[0], "-p", str(POSTGRES[1]), "-U", "postgres"]
    (workdir / "broker-phase.name").write_text(name)  # for the calling script, should this one be killed
    subprocess.run(["createdb", *psql, name], check=True)
    for command in (["add_vhost", name], ["set_permissions", "-p", name, "guest", ".*", ".*", ".*"]):
        subprocess.run(["rabbitmqctl", "-q", *command], check=True, capture_output=True)
    try:
        procs.start("amqp-proxy", ["socat", f"TCP-LISTEN:{relay_port},bind=127.0.0.1,fork,reuseaddr",
                              f"TCP:{RABBITMQ[0]}:{RABBITMQ[1]}"])
        base, instance, secret = start_platform(procs, workdir, "ticketgw-broker", {
            "DATABASE_URL": f"postgres://postgres@{POSTGRES[0]}:{POSTGRES[1]}/{name}",
            "AMQP_URL": f"amqp://guest:guest@127.0.0.1:{relay_port}/{name}"})
        add_target(workdir, instance, "monitoring-test-broker")  # its alerts are told apart by namespace
        journey(base, secret)
        wait_scrapes(prom, instance, time.time(), count=2)
        log(f"broker phase: platform on PostgreSQL (database {name}) and RabbitMQ (vhost {name}) through socat "
            f":{relay_port}; journey passed")
        procs.stop("amqp-proxy", signal.SIGKILL)  # socat and its open connections: the broker is gone
        p = Platform(base)
        buyer = p.register(f"late-{uuid.uuid4().hex[:10]}@example.com")
        p.call("POST", "/api/v1/bookings", buyer, {"event_id": EVENT, "items": [{"ticket_type_id": TICKET_TYPE, "quantity": 1}]},
               key=uuid.uuid4().hex, expect=(201,))
        log(f"broker phase: socat killed (the broker is unreachable), a hold made; waiting for {RELAY_ERRORS}")
        problems = await_alert(procs, hook, RELAY_ERRORS, namespace="monitoring-test-broker", job=JOB)
        lag = prometheus_api(prom, "query", query=f'max(messaging_outbox_lag_seconds{{instance="{instance}"}})')["data"]["result"]
        pending = prometheus_api(prom, "query", query=f'max(messaging_outbox_pending{{instance="{instance}"}})')["data"]["result"]
        log(f"broker phase: outbox pending {pending[0]['value'][1] if pending else '-'}, "
            f"lag {lag[0]['value'][1] if lag else '-'} s")
        if not pending or float(pending[0]["value"][1]) < 1:
            problems.append("the outbox did not hold the hold's message while the broker was away")
        return problems
    finally:
        procs.stop("ticketgw-broker")
        procs.stop("amqp-proxy")
        subprocess.run(["dropdb", *psql, "--if-exists", "--force", name], check=False)
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", name], capture_output=True)  # its queues and exchanges


def main():
    started = time.time()
    workdir = ARGS.workdir.resolve()
    procs, problems = Processes(workdir), []

    def terminated(signum, _frame):
        raise Failed(f"stopped by signal {signum}")
    signal.signal(signal.SIGTERM, terminated)
    try:
        hook, smtp = Webhook(), SmtpSink()
        rules = ARGS.rules if ARGS.rules.exists() else None
        if rules is None:
            problems.append(f"no rule file at {ARGS.rules}: rules not checked, no alert fired")
        prom = start_monitoring(procs, workdir, rules, hook)
        base, instance, secret = start_platform(procs, workdir, "ticketgw", {"SMTP_URL": f"smtp://127.0.0.1:{smtp.port}"})
        add_target(workdir, instance, "monitoring-test")
        log(f"platform {base}, Prometheus {prom}, webhook :{hook.server_address[1]}, SMTP sink :{smtp.port}")
        wait_scrapes(prom, instance, time.time(), count=1)  # scraped before the load: rates show it
        load(base, secret)
        log(f"smtp sink: {smtp.accepted} accepted, {smtp.deferred} deferred, {smtp.refused} refused")
        wait_scrapes(prom, instance, time.time())
        problems += check_dashboards(prom)
        if rules is not None:
            problems += check_rules(prom, rules)
            log(f"alert: killing the platform; waiting for {TARGET_DOWN} (for: shortened to {SHORT_FOR})")
            procs.stop("ticketgw", signal.SIGKILL)
            problems += await_alert(procs, hook, TARGET_DOWN, namespace="monitoring-test", instance=instance)
            problems += broker_phase(procs, workdir, prom, hook)
    except Failed as e:
        problems.append(str(e))
    except SystemExit as e:  # smoke_journey's Platform.call exits on an unexpected answer
        problems.append(f"load: {e}")
    finally:
        procs.stop_all()
    took = time.time() - started
    if problems:
        log("\n" + "\n".join(f"- {p}" for p in problems))
        log(f"\nmonitoring live test: FAIL ({len(problems)} problem(s), {took:.0f} s)")
        return 1
    log(f"\nmonitoring live test: PASS ({took:.0f} s)")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", type=pathlib.Path, required=True)
    parser.add_argument("--workdir", type=pathlib.Path, required=True)
    parser.add_argument("--rules", type=pathlib.Path, default=RULES)
    parser.add_argument("--dashboards", type=pathlib.Path, default=DASHBOARDS, help="folder of dashboard JSON files")
    ARGS = parser.parse_args()
    sys.exit(main())
