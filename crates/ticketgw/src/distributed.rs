//! A microservice process: the targets of `--target LIST` (anything but `all`). Each service here
//! is built with in-process ports to the services also here and HTTP clients (`remote.rs`) for the
//! rest; only its routes, migrations, workers and consumers run. Domain events travel through
//! RabbitMQ; tokens are checked against the users service's keys (`RemoteVerifier`).
//!
//! The `admin` target serves the services' admin routes (users and roles, organizer applications,
//! moderation, audit and delivery logs, dead letters). It runs those slices of the users, events and
//! notifications services against their own databases: the tables still belong to, and are only
//! touched by, the code of the service that owns them.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{middleware, Router};
use tg_bookings::{read_model::EventsReadModel, BookingsService};
use tg_events::{
    ports::{BookingsView, OrganizerDirectory},
    EventsConfig, EventsService,
};
use tg_gateway::{GatewayConfig, Proxy, Service};
use tg_messaging::{Consumer, Messaging};
use tg_notifications::NotificationsService;
use tg_payments::PaymentsService;
use tg_platform::{
    auth::{authenticate, TokenVerifier},
    bus::Bus,
    db::{Db, ServiceMigrations},
    http::{finish_router, ReadinessCheck},
    metrics::Metrics,
};
use tg_users::{remote::RemoteVerifier, UsersService};
use tokio::task::JoinHandle;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::{
    app::ApiDoc,
    config::Settings,
    docs,
    remote::{RemoteBookings, RemoteDirectory, RemoteEvents, RemoteUsers, ServiceClient, ServiceTokens},
    targets::{Target, Targets},
    topology::Topology,
    wiring::{BookingsForPayments, EventsCatalog, LateBookings, NotificationsDirectory, UsersContacts, UsersDirectory},
};

/// A running microservice process: its router and its background work (stopped when dropped).
pub struct Process {
    pub router: Router,
    /// The process's metrics (for the `METRICS_LISTEN` listener).
    pub metrics: Metrics,
    background: Vec<JoinHandle<()>>,
}

impl Drop for Process {
    fn drop(&mut self) {
        for task in &self.background {
            task.abort();
        }
    }
}

/// The databases of this process: one pool per distinct URL, each migrated with the migrations
/// of the services using it here, each with its bus, relay and consumers.
struct Stores<'a> {
    settings: &'a Settings,
    topology: &'a Topology,
    open: Vec<Store>,
}

struct Store {
    /// The service that opened it first: the `database` label of its pool's metrics.
    name: &'static str,
    url: Option<String>,
    db: Db,
    bus: Bus,
    consumers: Vec<Arc<dyn Consumer>>,
}

impl Stores<'_> {
    /// The database of `target`'s service, migrated with `migrations` (and messaging's: every
    /// service writes domain events through its outbox).
    async fn open(&mut self, target: Target, migrations: ServiceMigrations) -> anyhow::Result<(Db, Bus)> {
        let url = self.topology.database_url(target, self.settings);
        let index = match self.open.iter().position(|s| s.url == url) {
            Some(i) => i,
            None => {
                let db =
                    Db::connect(url.as_deref(), &self.settings.data_dir(), self.settings.max_connections()).await?;
                db.migrate(vec![tg_messaging::migrations()]).await?;
                self.open.push(Store { name: target.as_str(), url, db, bus: Bus::new(), consumers: Vec::new() });
                self.open.len() - 1
            }
        };
        let store = &self.open[index];
        store.db.migrate(vec![migrations]).await?;
        Ok((store.db.clone(), store.bus.clone()))
    }

    fn consume(&mut self, target: Target, consumer: Arc<dyn Consumer>) {
        let url = self.topology.database_url(target, self.settings);
        if let Some(store) = self.open.iter_mut().find(|s| s.url == url) {
            store.consumers.push(consumer);
        }
    }
}

/// Build the process for `targets` (not `All`).
pub async fn build(settings: &Settings, listen: SocketAddr, targets: &Targets) -> anyhow::Result<Process> {
    let topology = Topology::from_env(targets)?;
    topology.check(targets, settings)?;
    // Behind the gateway: the client's address is what the gateway (or the web process) saw.
    tg_platform::http::trust_forwarded_for(topology.trusted_proxies.clone());
    let runs = |t| targets.runs(t);
    let metrics = Metrics::new().with_build_info(&targets.to_string()).with_access(settings.metrics_access());
    let public_url = settings.public_url.clone().unwrap_or_default();

    if runs(Target::Gateway) {
        anyhow::ensure!(targets == &Targets::parse("gateway")?, "the gateway runs alone in its process");
        let verifier =
            Arc::new(RemoteVerifier::new(&public_url, topology.url(Service::Users), settings.oidc_issuer.as_deref()));
        let router = tg_gateway::app(gateway_config(settings, &topology, verifier), metrics.clone());
        return Ok(Process { router, metrics, background: Vec::new() });
    }

    let mut stores = Stores { settings, topology: &topology, open: Vec::new() };
    let mut background = Vec::new();

    // The users service: here when it is a target, or for the admin routes.
    let users = if runs(Target::Users) || runs(Target::Admin) {
        let (db, bus) = stores.open(Target::Users, tg_users::migrations()).await?;
        let mut config = settings.users(listen);
        config.service_clients = topology.service_clients.clone();
        Some(UsersService::start(db, bus, config).await?)
    } else {
        None
    };
    let verifier: Arc<dyn TokenVerifier> = match &users {
        Some(u) => u.clone(),
        None => {
            Arc::new(RemoteVerifier::new(&public_url, topology.url(Service::Users), settings.oidc_issuer.as_deref()))
        }
    };
    let tokens = match &users {
        Some(u) => ServiceTokens::local(u.clone(), topology.client_id.clone()),
        None => ServiceTokens::grant(
            topology.url(Service::Users),
            topology.client_id.clone(),
            topology.client_secret.clone().unwrap_or_default(),
        ),
    };
    let client = |s: Service| ServiceClient::new(s.as_str(), topology.url(s), tokens.clone());

    // Events and bookings each need the other; when both are here they are bound in process.
    let late_bookings = Arc::new(LateBookings::default());
    let events = if runs(Target::Events) || runs(Target::Admin) {
        let (db, bus) = stores.open(Target::Events, tg_events::migrations()).await?;
        let organizers: Arc<dyn OrganizerDirectory> = match &users {
            Some(u) => Arc::new(UsersDirectory(u.clone())),
            None => Arc::new(RemoteUsers(client(Service::Users))),
        };
        let bookings_view: Arc<dyn BookingsView> = if runs(Target::Bookings) {
            late_bookings.clone()
        } else {
            Arc::new(RemoteBookings(client(Service::Bookings)))
        };
        let config = EventsConfig {
            public_url: public_url.clone(),
            uploads_dir: settings.data_dir().join("uploads"),
            max_banner_bytes: settings.max_banner_bytes(),
        };
        Some(EventsService::new(db, bus, organizers, bookings_view, config))
    } else {
        None
    };

    let bookings = if runs(Target::Bookings) {
        let (db, bus) = stores.open(Target::Bookings, tg_bookings::migrations()).await?;
        let catalog: Arc<dyn tg_bookings::ports::EventCatalog> = match &events {
            Some(e) => Arc::new(EventsCatalog(e.clone())),
            None => {
                let read_model = EventsReadModel::new(db.clone(), Arc::new(RemoteEvents(client(Service::Events))));
                stores.consume(Target::Bookings, read_model.consumer());
                read_model
            }
        };
        let contacts: Arc<dyn tg_bookings::ports::UserDirectory> = match &users {
            Some(u) => Arc::new(UsersContacts(u.clone())),
            None => Arc::new(RemoteUsers(client(Service::Users))),
        };
        let b = BookingsService::new(db, bus, catalog, contacts, settings.bookings());
        let _ = late_bookings.0.set(Arc::downgrade(&b));
        Some(b)
    } else {
        None
    };

    let payments = if runs(Target::Payments) {
        let (db, bus) = stores.open(Target::Payments, tg_payments::migrations()).await?;
        let port: Arc<dyn tg_payments::ports::Bookings> = match &bookings {
            Some(b) => Arc::new(BookingsForPayments(b.clone())),
            None => Arc::new(RemoteBookings(client(Service::Bookings))),
        };
        let p = PaymentsService::new(db, bus, port, settings.payments(listen)?);
        stores.consume(Target::Payments, p.consumer());
        Some(p)
    } else {
        None
    };

    let notifications = if runs(Target::Notifications) || runs(Target::Admin) {
        let (db, _) = stores.open(Target::Notifications, tg_notifications::migrations()).await?;
        let directory: Arc<dyn tg_notifications::Directory> = match (&users, &events, &bookings) {
            (Some(u), Some(e), Some(b)) => {
                Arc::new(NotificationsDirectory { users: u.clone(), events: e.clone(), bookings: b.clone() })
            }
            _ => Arc::new(RemoteDirectory {
                users: client(Service::Users),
                events: client(Service::Events),
                bookings: client(Service::Bookings),
            }),
        };
        let n = NotificationsService::new(db, directory, settings.notifications(listen))?;
        if runs(Target::Notifications) {
            stores.consume(Target::Notifications, n.consumer());
        }
        Some(n)
    } else {
        None
    };

    // Routes of the targets, with the OpenAPI document the gateway merges.
    let mut api = OpenApiRouter::with_openapi(ApiDoc::openapi());
    let mut internal = Router::new();
    let mut pages = Router::new();
    if let Some(u) = &users {
        // Also in the admin process: it signs its own service tokens, so it must follow key rotation.
        background.push(tokio::spawn(u.clone().run_maintenance()));
    }
    if let (true, Some(u)) = (runs(Target::Users), &users) {
        api = api.merge(tg_users::api::router(u.clone()));
        internal = internal.merge(tg_users::internal::router(u.clone()));
    }
    if let (true, Some(e)) = (runs(Target::Events), &events) {
        api = api.merge(tg_events::api::router(e.clone()));
        internal = internal.merge(tg_events::internal::router(e.clone()));
        background.push(tokio::spawn(e.clone().run_maintenance()));
    }
    if let Some(b) = &bookings {
        api = api.merge(tg_bookings::api::router(b.clone()));
        internal = internal.merge(tg_bookings::internal::router(b.clone()));
        background.push(tokio::spawn(b.clone().run_sweeper()));
    }
    if let Some(p) = &payments {
        api = api.merge(tg_payments::api::router(p.clone()));
        pages = pages.merge(tg_payments::api::pages(p.clone()));
        background.push(tokio::spawn(p.clone().run_maintenance()));
    }
    if let (true, Some(n)) = (runs(Target::Notifications), &notifications) {
        api = api.merge(tg_notifications::api::router(n.clone()));
        background.push(tokio::spawn(n.clone().run_dispatcher()));
    }
    if runs(Target::Admin) {
        let (admin_db, _) = stores.open(Target::Admin, tg_messaging::migrations()).await?;
        if let Some(u) = &users {
            api = api.merge(tg_users::api::admin_router(u.clone()));
        }
        if let Some(e) = &events {
            api = api.merge(tg_events::api::admin_router(e.clone()));
        }
        if let Some(n) = &notifications {
            api = api.merge(tg_notifications::api::admin_router(n.clone()));
        }
        api = api.merge(tg_messaging::api::router(admin_db));
    }
    let (routes, openapi) = api.split_for_parts();
    let mut routes = routes.merge(internal).merge(pages).merge(docs::router(openapi));
    if runs(Target::Web) {
        // The pages call the API services directly (not through the gateway), as their user.
        let proxy = Arc::new(Proxy::new(Duration::from_secs(30)));
        let api = tg_gateway::api_router(Arc::new(topology.upstreams.clone()), proxy);
        routes = routes.merge(tg_web::router(api, settings.web(listen, provider_names(settings, listen)?)));
    }
    let routes = routes.layer(middleware::from_fn_with_state(verifier, authenticate));

    // One relay per database, with the consumers of the services using it. Only the first
    // database's relay reports to /metrics (the gauges have one name per process).
    let mut checks: Vec<Arc<dyn ReadinessCheck>> = Vec::new();
    let mut messaging_config = settings.messaging();
    // Payments and notifications must get every message, even before they first start. Bookings'
    // read model declares its own queue: it fills itself on first use, and is not always running.
    messaging_config.subscriptions = vec![tg_payments::SUBSCRIPTION, tg_notifications::SUBSCRIPTION];
    // Dead letters are archived where the admin API reads them, and nowhere else.
    let archive = runs(Target::Admin).then(|| topology.database_url(Target::Admin, settings));
    for (i, store) in stores.open.into_iter().enumerate() {
        messaging_config.archive_dead_letters = archive.as_ref() == Some(&store.url);
        let extra_registry = prometheus::Registry::new();
        let registry = if i == 0 { metrics.registry() } else { &extra_registry };
        let messaging =
            Messaging::start(store.db.clone(), store.bus, store.consumers, messaging_config.clone(), registry)?;
        background.extend(messaging.tasks);
        metrics.watch_pool(store.name, &store.db);
        checks.push(Arc::new(store.db));
    }
    let router = finish_router(routes, checks, metrics.clone(), public_url.starts_with("https://"));
    Ok(Process { router, metrics, background })
}

/// The payment providers this deployment offers (the web UI's choice), from the settings alone.
fn provider_names(settings: &Settings, listen: SocketAddr) -> anyhow::Result<Vec<&'static str>> {
    let config = settings.payments(listen)?;
    let mut names = Vec::new();
    if config.sandbox {
        names.push("sandbox");
    }
    if config.khqr.is_some() {
        names.push("khqr");
    }
    if config.stripe.is_some() {
        names.push("stripe");
    }
    Ok(names)
}

fn gateway_config(settings: &Settings, topology: &Topology, verifier: Arc<dyn TokenVerifier>) -> GatewayConfig {
    let env_u32 = |key: &str, default: u32| std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    GatewayConfig {
        upstreams: topology.upstreams.clone(),
        verifier,
        timeout: Duration::from_secs(env_u32("GATEWAY_TIMEOUT_SECS", 20).into()),
        // A banner upload is the largest body the API takes.
        body_limit: settings.max_banner_bytes() + 64 * 1024,
        ip_burst: env_u32("GATEWAY_IP_BURST", 400),
        ip_per_second: env_u32("GATEWAY_IP_PER_SECOND", 200),
        login_ip_burst: settings.login_ip_burst.unwrap_or(30),
        login_ip_period: Duration::from_secs(settings.login_ip_period_secs.unwrap_or(2)),
        hsts: settings.public_url.as_deref().is_some_and(|u| u.starts_with("https://")),
    }
}
