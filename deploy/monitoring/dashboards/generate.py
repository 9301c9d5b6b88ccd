#!/usr/bin/env python3
"""Ticket Gateway's Grafana dashboards as code (grafanalib, pinned in requirements.txt beside this file).

    generate.py            # (re)write overview.json, flash-sale.json, … beside this file
    generate.py --check    # exit 1, with a diff, when a committed JSON differs from what this file makes

Metric names and labels: deploy/monitoring/METRICS.md. Every dashboard has the variables
`datasource` (Prometheus), `loki` (Loki), `namespace` and `job` (the service: gateway, users, …;
`ticketgw` for the monolith). Queries select with SEL below, so a scraped monolith, one service or a
whole namespace all work with the same dashboards.
"""

import argparse
import difflib
import json
import pathlib
import sys

from grafanalib._gen import DashboardEncoder
from grafanalib.core import (
    Dashboard,
    DashboardLink,
    GridPos,
    Logs,
    RowPanel,
    Stat,
    Table,
    Target,
    Template,
    Templating,
    Time,
    TimeSeries,
)

HERE = pathlib.Path(__file__).resolve().parent

PROM = {"type": "prometheus", "uid": "${datasource}"}
LOKI = {"type": "loki", "uid": "${loki}"}
RATE = "$__rate_interval"
SEL = 'namespace=~"$namespace", job=~"$job"'
# Log streams carry the labels namespace, job (the component, as in the metrics) and level (of the JSON
# line; none on a line that is not JSON, such as a panic): deploy/components/monitoring/config.alloy.
LOG_SEL = SEL
# cAdvisor and kube-state-metrics series of the platform's pods: every Deployment and HPA is named after
# its job, its pods `<job>-<hash>-<id>`, the container `ticketgw`.
POD_SEL = 'namespace=~"$namespace", container="ticketgw", pod=~"$job-.*"'
K8S_SEL = 'namespace=~"$namespace"'


# ---------------------------------------------------------------------------------------------------------
# PromQL helpers: every query the dashboards send is built here, so the selector and the rate window are
# the same everywhere.

def sel(extra="", base=SEL):
    return "{" + ", ".join(part for part in (base, extra) if part) + "}"


def rate(metric, extra="", by=""):
    """Per-second rate summed over instances (and by the given labels)."""
    return f"sum{f' by ({by})' if by else ''} (rate({metric}{sel(extra)}[{RATE}]))"


def ratio(metric, part, by, whole=""):
    """Share of `part` in the rate of `metric`, by labels; 0 rather than no data while `part` never happened
    (a 5xx-free service shows 0 %, not an empty panel)."""
    num, den = rate(metric, part, by), rate(metric, whole, by)
    return f"({num} or {den} * 0) / {den}"


def increase(metric, extra="", by="", window="$__range"):
    """How many over the dashboard's time range (by the given labels)."""
    return f"sum{f' by ({by})' if by else ''} (increase({metric}{sel(extra)}[{window}]))"


def quantile(q, histogram, extra="", by=""):
    """q-quantile of a histogram over instances (and by the given labels)."""
    by_le = ", ".join(label for label in (by, "le") if label)
    return f"histogram_quantile({q}, sum by ({by_le}) (rate({histogram}_bucket{sel(extra)}[{RATE}])))"


def gauge(metric, extra="", by="job", agg="max"):
    """A gauge every instance of a service reports alike (they share a database): `max`, never a sum."""
    return f"{agg} by ({by}) ({metric}{sel(extra)})"


def per_instance(metric, extra=""):
    return f"max by (job, instance) ({metric}{sel(extra)})"


# ---------------------------------------------------------------------------------------------------------
# Panel helpers: a target is (expr, legend); panels take a list of them.

def targets(queries, datasource=PROM, **kwargs):
    return [Target(expr=expr, legendFormat=legend, refId=chr(ord("A") + i), datasource=datasource, **kwargs)
            for i, (expr, legend) in enumerate(queries)]


def timeseries(title, queries, unit="short", description="", stacked=False, **kwargs):
    return TimeSeries(
        title=title, description=description, dataSource=PROM, targets=targets(queries), unit=unit,
        fillOpacity=30 if stacked else 10, stacking={"mode": "normal", "group": "A"} if stacked else {},
        legendDisplayMode="table", legendCalcs=["lastNotNull", "max"], tooltipMode="multi", **kwargs)


def stat(title, queries, unit="none", description="", thresholds=None, mappings=None):
    return Stat(
        title=title, description=description, dataSource=PROM, targets=targets(queries, instant=True),
        format=unit, reduceCalc="lastNotNull", graphMode="none", textMode="value_and_name",
        thresholds=thresholds or steps(("green", None)), mappings=mappings or [])


def table(title, query, description=""):
    """Label sets of an instant query as rows (build info, stock per event)."""
    return Table(
        title=title, description=description, dataSource=PROM,
        targets=targets([(query, "")], instant=True, format="table"),
        transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True}}}])


def logs(title, logql, description=""):
    return Logs(title=title, description=description, dataSource=LOKI, targets=targets([(logql, "")], LOKI),
                showTime=True, wrapLogMessages=True, enableLogDetails=True, prettifyLogMessage=False)


def log_stream(extra=""):
    return sel(extra, base=LOG_SEL)


def log_volume(title, logql):
    return TimeSeries(title=title, dataSource=LOKI, targets=targets([(logql, "{{level}}")], LOKI),
                      drawStyle="bars", fillOpacity=60, stacking={"mode": "normal", "group": "A"},
                      legendDisplayMode="list")


ERRORS = "Errors (and panics)"
ERROR_LINES = log_stream('level=~"ERROR|"')  # ERROR, or no level: a panic's lines are not JSON


UP_DOWN = [{"type": "value", "options": {"0": {"text": "DOWN", "color": "red"}, "1": {"text": "UP", "color": "green"}}}]
READY = [{"type": "value", "options": {"0": {"text": "not ready", "color": "red"},
                                       "1": {"text": "ready", "color": "green"}}}]


def steps(*colors_from):
    """Threshold steps as Grafana stores them: the first colour from -inf (null), each next from its value."""
    return [{"color": color, "value": start} for color, start in colors_from]


# ---------------------------------------------------------------------------------------------------------
# Dashboard skeleton: variables, links between the dashboards, rows laid out on Grafana's 24-column grid.

class Row:
    def __init__(self, title, *panels, per_line=3, height=8):
        self.title, self.panels, self.per_line, self.height = title, list(panels), per_line, height


def layout(rows):
    panels, y = [], 0
    for row in rows:
        panels.append(RowPanel(title=row.title, gridPos=GridPos(h=1, w=24, x=0, y=y)))
        y += 1
        width = 24 // row.per_line
        for i, panel in enumerate(row.panels):
            x = (i % row.per_line) * width
            panel.gridPos = GridPos(h=row.height, w=width, x=x, y=y + (i // row.per_line) * row.height)
            panels.append(panel)
        y += -(-len(row.panels) // row.per_line) * row.height
    return panels


def variables():
    def all_selected(template):
        # grafanalib writes `default` as both text and value; "All" must read "All" and mean $__all.
        template._current = {"selected": True, "text": ["All"], "value": ["$__all"]}
        return template

    return Templating(list=[
        Template(name="datasource", label="Prometheus", type="datasource", query="prometheus"),
        Template(name="loki", label="Loki", type="datasource", query="loki"),
        all_selected(Template(
            name="namespace", label="Namespace", dataSource=PROM, query="label_values(ticketgw_build_info, namespace)",
            includeAll=True, multi=True, allValue=".*")),  # .*: a scrape outside Kubernetes has no namespace
        all_selected(Template(
            name="job", label="Service", dataSource=PROM,
            query='label_values(ticketgw_build_info{namespace=~"$namespace"}, job)',
            includeAll=True, multi=True, allValue=".+")),  # .+: Loki needs one matcher that is never empty
    ])


def dashboard(uid, title, description, rows):
    return Dashboard(
        uid=f"ticketgw-{uid}", title=f"Ticket Gateway / {title}", description=description,
        tags=["ticketgw"], timezone="browser", refresh="30s", time=Time("now-3h", "now"),
        graphTooltip=1,  # shared crosshair
        links=[DashboardLink(title="Ticket Gateway", tags=["ticketgw"], asDropdown=True, includeVars=True,
                             keepTime=True)],
        templating=variables(), panels=layout(rows),
    ).auto_panel_ids()


# ---------------------------------------------------------------------------------------------------------
# The dashboards.

def overview():
    latency = [timeseries(f"p{q} latency per service", [(quantile(f"0.{q}", "http_request_duration_seconds", by="job"),
                                                         "{{job}}")], unit="s")
               for q in (50, 95, 99)]
    return dashboard("overview", "Overview", "Traffic, errors, latency and health of every service.", [
        Row("Traffic",
            timeseries("Requests per service", [(rate("http_requests_total", by="job"), "{{job}}")], unit="reqps"),
            timeseries("5xx ratio per service", [(ratio("http_requests_total", 'status=~"5.."', "job"), "{{job}}")],
                       unit="percentunit", description="Share of answers that were 5xx."),
            timeseries("Answers by status", [(rate("http_requests_total", by="status"), "{{status}}")], unit="reqps",
                       stacked=True)),
        Row("Latency", *latency),
        Row("Health",
            stat("Scraped", [(gauge("up", by="job", agg="min"), "{{job}}")], mappings=UP_DOWN,
                 description="Every instance of the service answered the last scrape."),
            stat("Ready", [(gauge("ticketgw_ready", by="job", agg="min"), "{{job}}")], mappings=READY,
                 description="Every instance's last /readyz answered ready."),
            table("Build info", "count by (job, version, targets) (ticketgw_build_info{" + SEL + "})",
                  description="Versions running now, with the number of instances of each.")),
        Row("Logs",
            log_volume("Log lines by level", f"sum by (level) (count_over_time({log_stream()}[$__interval]))"),
            logs(ERRORS, ERROR_LINES),
            per_line=2, height=10),
    ])


def flash_sale():
    hold_route = 'method="POST", route="/api/v1/bookings"'
    return dashboard("flash-sale", "Flash sale", "Holds, hold batches, tickets sold and stock of the events on sale.", [
        Row("Holds",
            timeseries("Holds by outcome", [(rate("ticketgw_holds_total", by="outcome"), "{{outcome}}")], unit="reqps",
                       stacked=True),
            timeseries("Hold outcomes share",
                       [(f"{rate('ticketgw_holds_total', by='outcome')} / ignoring (outcome) group_left "
                         f"{rate('ticketgw_holds_total')}", "{{outcome}}")],
                       unit="percentunit", stacked=True),
            timeseries("Hold route (POST /api/v1/bookings) latency",
                       [(quantile(q, "http_request_duration_seconds", hold_route), f"p{q[2:]}") for q in ("0.5", "0.99")],
                       unit="s")),
        Row("Hold batches",
            timeseries("Hold batch size",
                       [(quantile("0.99", "ticketgw_hold_batch_requests"), "p99"),
                        (f"{rate('ticketgw_hold_batch_requests_sum')} / {rate('ticketgw_hold_batch_requests_count')}",
                         "mean")],
                       description="Hold requests decided in one transaction."),
            timeseries("Hold batch latency",
                       [(quantile(q, "ticketgw_hold_batch_duration_seconds"), f"p{q[2:]}") for q in ("0.5", "0.99")],
                       unit="s", description="Time to decide one batch, its transaction included."),
            timeseries("Hold route answers by status", [(rate("http_requests_total", hold_route, "status"), "{{status}}")],
                       unit="reqps", stacked=True)),
        Row("Sales",
            timeseries("Tickets sold and refunded", [(rate("ticketgw_tickets_sold_total"), "sold"),
                                                     (rate("ticketgw_tickets_refunded_total"), "refunded")],
                       unit="short", description="Tickets per second."),
            timeseries("Bookings leaving the held state", [(rate("ticketgw_bookings_total", by="outcome"), "{{outcome}}")],
                       unit="reqps", stacked=True),
            timeseries("Door scans by result", [(rate("ticketgw_checkins_total", by="result"), "{{result}}")],
                       unit="reqps", stacked=True)),
        Row("Stock of the events on sale",
            # Every bookings instance reports the same stock (one database): max, not sum.
            timeseries("Tickets available per event",
                       [(gauge("ticketgw_event_tickets", 'state="available"', by="event"), "{{event}}")],
                       description="The at most 20 events on sale with the most recent sales, refreshed every 5 s."),
            table("Stock per event (sold, held, available)",
                  gauge("ticketgw_event_tickets", by="event, state")),
            per_line=2),
    ])


def payments():
    payment_routes = 'route=~"/api/v1/payments.*"'
    return dashboard("payments", "Payments", "Payments by provider, webhooks and refunds.", [
        Row("Payments",
            timeseries("Payments by provider and status",
                       [(rate("ticketgw_payments_total", by="provider, status"), "{{provider}} {{status}}")],
                       unit="reqps", stacked=True, description="Payments reaching a final state."),
            timeseries("Success ratio per provider",
                       [(ratio("ticketgw_payments_total", 'status="succeeded"', "provider"), "{{provider}}")],
                       unit="percentunit"),
            stat("Payments succeeded in range",
                 [(increase("ticketgw_payments_total", 'status="succeeded"', "provider"), "{{provider}}")])),
        Row("Webhooks",
            timeseries("Webhooks by provider and result",
                       [(rate("ticketgw_payment_webhooks_total", by="provider, result"), "{{provider}} {{result}}")],
                       unit="reqps", stacked=True),
            timeseries("Rejected webhooks ratio",
                       [(ratio("ticketgw_payment_webhooks_total", 'result="rejected"', "provider"), "{{provider}}")],
                       unit="percentunit", description="Bad signature or body: a misconfigured secret, or someone probing."),
            timeseries("Payment routes p99 latency",
                       [(quantile("0.99", "http_request_duration_seconds", payment_routes, "method, route"),
                         "{{method}} {{route}}")], unit="s")),
        Row("Refunds",
            timeseries("Refunds by provider and result",
                       [(rate("ticketgw_refunds_total", by="provider, result"), "{{provider}} {{result}}")],
                       unit="reqps", stacked=True),
            timeseries("Tickets refunded", [(rate("ticketgw_tickets_refunded_total"), "refunded")]),
            per_line=2),
    ])


def messaging():
    return dashboard("messaging", "Messaging", "Transactional outbox, relay to the broker, consumers' retries and dead letters.", [
        Row("Outbox",
            timeseries("Outbox pending", [(gauge("messaging_outbox_pending"), "{{job}}")],
                       description="Rows not yet relayed to the broker."),
            timeseries("Outbox lag", [(gauge("messaging_outbox_lag_seconds"), "{{job}}")], unit="s",
                       description="Age of the oldest row waiting: grows while the broker is away."),
            timeseries("Relayed", [(rate("messaging_relayed_total", by="job"), "{{job}}")], unit="reqps",
                       description="Messages relayed per second.")),
        Row("Relay and broker errors",
            timeseries("Relay errors", [(rate("messaging_relay_errors_total", by="job"), "{{job}}")], unit="reqps",
                       description="Relay attempts that failed (broker unreachable)."),
            timeseries("Unroutable", [(rate("messaging_unroutable_total", by="job"), "{{job}}")], unit="reqps",
                       description="Messages the broker returned."),
            timeseries("Messages waiting for another attempt", [(gauge("messaging_retries_waiting"), "{{job}}")])),
        Row("Consumers",
            timeseries("Consumer retries (redeliveries)",
                       [(rate("messaging_consumer_retries_total", by="consumer"), "{{consumer}}")], unit="reqps",
                       description="Failed deliveries that will be retried, by consumer."),
            timeseries("Dead-lettered", [(rate("messaging_dead_lettered_total", by="consumer"), "{{consumer}}")],
                       unit="reqps", description="Poison messages a consumer gave up on."),
            stat("Dead letters", [(gauge("messaging_dead_letters"), "{{job}}")], thresholds=steps(("green", None), ("red", 1)),
                 description="In the dead-letter queue or table: replay them from the admin page Dead letters.")),
        Row("Logs",
            logs("Messaging warnings and errors",
                 log_stream('level=~"ERROR|WARN"') + ' | json | target=~"tg_messaging.*"'),
            logs(ERRORS, ERROR_LINES),
            per_line=2, height=10),
    ])


def notifications():
    by_result = [timeseries(f"Notices {result}", [(rate("ticketgw_notices_total", f'result="{result}"', "channel"),
                                                  "{{channel}}")], unit="reqps")
                 for result in ("sent", "retried", "failed")]
    return dashboard("notifications", "Notifications", "Notices by channel (e-mail, Telegram, SMS): sent, retried, failed.", [
        Row("Delivery attempts by channel", *by_result),
        Row("Failures",
            timeseries("Failure ratio per channel",
                       [(ratio("ticketgw_notices_total", 'result="failed"', "channel"), "{{channel}}")],
                       unit="percentunit", description="Attempts that failed for good, of all attempts."),
            stat("Notices in range by channel and result",
                 [(increase("ticketgw_notices_total", by="channel, result"), "{{channel}} {{result}}")]),
            per_line=2),
    ])


def resources():
    in_use = "ticketgw_db_pool_connections" + sel('state="in_use"')
    return dashboard("resources", "Resources", "Processes (CPU, memory, FDs, Tokio, database pools) and their pods.", [
        Row("Processes",
            timeseries("CPU", [(f"sum by (job, instance) (rate(process_cpu_seconds_total{sel()}[{RATE}]))",
                                "{{job}} {{instance}}")], unit="percentunit", description="Cores in use."),
            timeseries("Resident memory", [(per_instance("process_resident_memory_bytes"), "{{job}} {{instance}}")],
                       unit="bytes"),
            timeseries("Open file descriptors", [(per_instance("process_open_fds"), "{{job}} {{instance}}")],
                       description="Sockets included: climbs with connections."),
            timeseries("File descriptors used of the limit",
                       [(f"{per_instance('process_open_fds')} / {per_instance('process_max_fds')}",
                         "{{job}} {{instance}}")], unit="percentunit"),
            timeseries("Tokio tasks alive", [(per_instance("ticketgw_tokio_tasks_alive"), "{{job}} {{instance}}")]),
            timeseries("Threads and Tokio workers",
                       [(per_instance("process_threads"), "threads {{job}} {{instance}}"),
                        (per_instance("ticketgw_tokio_workers"), "workers {{job}} {{instance}}")])),
        Row("Database pools",
            timeseries("Pool connections in use vs max",
                       [(f"sum by (job, database) ({in_use})",
                         "in use {{job}} {{database}}"),
                        (gauge("ticketgw_db_pool_max_connections", by="job, database", agg="sum"),
                         "max {{job}} {{database}}")]),
            timeseries("Pool use of the limit (busiest instance)",
                       [(f"max by (job, database) (sum by (job, instance, database) ({in_use}) "
                         f'/ sum by (job, instance, database) (ticketgw_db_pool_max_connections{sel()}))',
                         "{{job}} {{database}}")], unit="percentunit",
                       description="Near 100 %: requests wait for a connection."),
            per_line=2),
        Row("Kubernetes",
            timeseries("Pod CPU", [(f"sum by (pod) (rate(container_cpu_usage_seconds_total{sel(base=POD_SEL)}[{RATE}]))",
                                    "{{pod}}")], unit="percentunit"),
            timeseries("Pod memory (working set)",
                       [(f"sum by (pod) (container_memory_working_set_bytes{sel(base=POD_SEL)})", "{{pod}}")],
                       unit="bytes"),
            timeseries("Pod restarts (1 h)",
                       [(f"sum by (pod) (increase(kube_pod_container_status_restarts_total{sel(base=POD_SEL)}[1h]))",
                         "{{pod}}")]),
            timeseries("Replicas available",
                       [(f'sum by (deployment) (kube_deployment_status_replicas_available{{{K8S_SEL}, deployment=~"$job"}})',
                         "{{deployment}}")]),
            timeseries("Autoscaler: current vs desired replicas",
                       [(f'sum by (horizontalpodautoscaler) (kube_horizontalpodautoscaler_status_{kind}_replicas'
                         f'{{{K8S_SEL}, horizontalpodautoscaler=~"$job"}})', f"{kind} {{{{horizontalpodautoscaler}}}}")
                        for kind in ("current", "desired")]),
            stat("TLS certificates: days left",
                 [(f"min by (name) ((certmanager_certificate_expiration_timestamp_seconds{{{K8S_SEL}}} - time()) / 86400)",
                   "{{name}}")], thresholds=steps(("red", None), ("orange", 7), ("green", 21)))),
    ])


DASHBOARDS = {
    "overview": overview,
    "flash-sale": flash_sale,
    "payments": payments,
    "messaging": messaging,
    "notifications": notifications,
    "resources": resources,
}


def render(build):
    return json.dumps(build().to_json_data(), sort_keys=True, indent=2, cls=DashboardEncoder) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare with the committed JSON instead of writing")
    args = parser.parse_args()
    stale = 0
    rendered = {name: render(build) for name, build in DASHBOARDS.items()}  # all or nothing written
    for name, text in rendered.items():
        path = HERE / f"{name}.json"
        if not args.check:
            path.write_text(text)
            print(f"wrote {path.relative_to(HERE.parents[2])}")
            continue
        committed = path.read_text() if path.exists() else ""
        if committed != text:
            stale += 1
            sys.stdout.writelines(difflib.unified_diff(committed.splitlines(True), text.splitlines(True),
                                                       f"{name}.json (committed)", f"{name}.json (generated)", n=2))
    if args.check:
        if stale:
            print(f"{stale} dashboard(s) differ from generate.py: run deploy/monitoring/dashboards/generate.py",
                  file=sys.stderr)
            return 1
        print(f"{len(DASHBOARDS)} dashboards match generate.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
