//! Prometheus metrics. `deploy/monitoring/METRICS.md` lists every family and its labels.
//!
//! Two registries make up `/metrics`: the process's own ([`Metrics`]: HTTP, readiness, build,
//! resources, messaging), and the process-wide default registry, where each service registers
//! its business families ([`register`]) the first time it is built. A service's families are
//! therefore exposed only by the processes that run it.

use std::{
    sync::{Arc, Mutex},
    time::Instant,
};

use axum::{
    extract::{MatchedPath, Request, State},
    middleware::Next,
    response::Response,
};
use prometheus::{
    core::{Collector, Desc},
    proto::MetricFamily,
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::db::Db;

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    ready: IntGauge,
    pools: Arc<PoolCollector>,
    access: MetricsAccess,
}

/// Who may read `/metrics` on the service's own port. It tells a lot about the business (sales,
/// payments by provider), so it is not for anyone on the internet.
#[derive(Clone, Default)]
pub enum MetricsAccess {
    /// Callers on this machine only (loopback): the default.
    #[default]
    Local,
    /// Callers presenting `Authorization: Bearer <METRICS_TOKEN>`, from anywhere.
    Token(Arc<str>),
    /// Nobody here: a listener of its own serves it (`METRICS_LISTEN`), reachable where operators put it.
    Elsewhere,
}

impl MetricsAccess {
    /// From the settings: a separate listener wins over a token; neither means this machine only.
    pub fn from_settings(separate_listener: bool, token: Option<&str>) -> MetricsAccess {
        match (separate_listener, token.filter(|t| !t.is_empty())) {
            (true, _) => MetricsAccess::Elsewhere,
            (false, Some(t)) => MetricsAccess::Token(t.into()),
            (false, None) => MetricsAccess::Local,
        }
    }

    /// Whether a request from `peer` with `authorization` (the header's value) may read the metrics
    /// on the service port; `proxied`: it carries a forwarding header (a reverse proxy on this
    /// machine relays the internet from loopback, so loopback alone proves nothing then).
    pub fn allows(&self, peer: Option<std::net::IpAddr>, authorization: Option<&[u8]>, proxied: bool) -> bool {
        use subtle::ConstantTimeEq;
        match self {
            MetricsAccess::Local => !proxied && peer.is_some_and(|ip| ip.is_loopback()),
            MetricsAccess::Token(token) => authorization
                .and_then(|v| v.strip_prefix(b"Bearer "))
                .is_some_and(|given| bool::from(given.ct_eq(token.as_bytes()))),
            MetricsAccess::Elsewhere => false,
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by route template, method and status"),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency by route template")
                .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let ready = IntGauge::new("ticketgw_ready", "1 when the last /readyz answered ready, else 0").expect("valid");
        let pools = Arc::new(PoolCollector::new());
        registry.register(Box::new(requests.clone())).expect("unique metric");
        registry.register(Box::new(latency.clone())).expect("unique metric");
        registry.register(Box::new(ready.clone())).expect("unique metric");
        registry.register(Box::new(RuntimeCollector::new())).expect("unique metric");
        registry.register(Box::new(SharedCollector(pools.clone()))).expect("unique metric");
        #[cfg(target_os = "linux")]
        registry.register(Box::new(prometheus::process_collector::ProcessCollector::for_self())).expect("unique");
        Metrics { registry, requests, latency, ready, pools, access: MetricsAccess::default() }
    }

    /// Who may read `/metrics` on the service port (default: this machine only).
    pub fn with_access(mut self, access: MetricsAccess) -> Self {
        self.access = access;
        self
    }

    pub fn access(&self) -> &MetricsAccess {
        &self.access
    }

    /// Says what this process runs: `ticketgw_build_info{version, targets} 1`.
    pub fn with_build_info(self, targets: &str) -> Self {
        let info = IntGaugeVec::new(
            Opts::new("ticketgw_build_info", "The version and targets this process runs"),
            &["version", "targets"],
        )
        .expect("valid metric");
        info.with_label_values(&[env!("CARGO_PKG_VERSION"), targets]).set(1);
        let _ = self.registry.register(Box::new(info));
        self
    }

    /// Report the connections of `db`'s pool, labelled `database="<name>"`.
    pub fn watch_pool(&self, name: &str, db: &Db) {
        self.pools.pools.lock().unwrap_or_else(|e| e.into_inner()).push((name.to_owned(), db.clone()));
    }

    /// Registry for services that add metrics of their own.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub(crate) fn set_ready(&self, ready: bool) {
        self.ready.set(ready.into());
    }

    pub fn render(&self) -> String {
        let mut families = self.registry.gather();
        families.extend(prometheus::default_registry().gather());
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metric families.
        let _ = TextEncoder::new().encode(&families, &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// Register a service's metric family in the process-wide registry that `/metrics` reports.
/// Families are built once per process (in a `LazyLock`), so a second registration cannot happen.
pub fn register<M: Collector + Clone + 'static>(metric: M) -> M {
    if let Err(e) = prometheus::default_registry().register(Box::new(metric.clone())) {
        tracing::warn!(error = %e, "metric family not registered");
    }
    metric
}

/// The Tokio runtime's figures, read at each scrape.
struct RuntimeCollector {
    tasks: IntGauge,
    workers: IntGauge,
}

impl RuntimeCollector {
    fn new() -> Self {
        RuntimeCollector {
            tasks: IntGauge::new("ticketgw_tokio_tasks_alive", "Tokio tasks alive").expect("valid"),
            workers: IntGauge::new("ticketgw_tokio_workers", "Tokio worker threads").expect("valid"),
        }
    }
}

impl Collector for RuntimeCollector {
    fn desc(&self) -> Vec<&Desc> {
        [self.tasks.desc(), self.workers.desc()].concat()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let m = handle.metrics();
            self.tasks.set(m.num_alive_tasks() as i64);
            self.workers.set(m.num_workers() as i64);
        }
        [self.tasks.collect(), self.workers.collect()].concat()
    }
}

/// Connection pools' use, read at each scrape.
struct PoolCollector {
    pools: Mutex<Vec<(String, Db)>>,
    connections: IntGaugeVec,
    max: IntGaugeVec,
}

impl PoolCollector {
    fn new() -> Self {
        PoolCollector {
            pools: Mutex::default(),
            connections: IntGaugeVec::new(
                Opts::new("ticketgw_db_pool_connections", "Database pool connections by state"),
                &["database", "state"],
            )
            .expect("valid"),
            max: IntGaugeVec::new(
                Opts::new("ticketgw_db_pool_max_connections", "Database pool size limit"),
                &["database"],
            )
            .expect("valid"),
        }
    }
}

/// Registers an `Arc`ed collector, which the registry needs boxed and owned.
struct SharedCollector<C>(Arc<C>);

impl Collector for SharedCollector<PoolCollector> {
    fn desc(&self) -> Vec<&Desc> {
        [self.0.connections.desc(), self.0.max.desc()].concat()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let c = &self.0;
        for (name, db) in c.pools.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let (size, idle, max) = db.pool_stats();
            c.connections.with_label_values(&[name, "in_use"]).set((size as usize).saturating_sub(idle) as i64);
            c.connections.with_label_values(&[name, "idle"]).set(idle as i64);
            c.max.with_label_values(&[name]).set(max as i64);
        }
        [c.connections.collect(), c.max.collect()].concat()
    }
}

/// Middleware recording every request. Unmatched paths share one label so scanners cannot blow up cardinality.
pub async fn track(State(m): State<Metrics>, req: Request, next: Next) -> Response {
    let route =
        req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "unmatched".into());
    let method = req.method().as_str().to_owned();
    let started = Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    m.requests.with_label_values(&[&method, &route, &status]).inc();
    m.latency.with_label_values(&[&method, &route, &status]).observe(started.elapsed().as_secs_f64());
    res
}
