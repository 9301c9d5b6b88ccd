//! Assembles the services selected by `--target` into one HTTP application.

use std::{net::SocketAddr, sync::Arc};

use axum::{middleware, Router};
use tg_bookings::BookingsService;
use tg_events::{EventsConfig, EventsService};
use tg_messaging::{Consumer, Messaging};
use tg_notifications::NotificationsService;
use tg_payments::PaymentsService;
use tg_platform::{
    auth::{authenticate, TokenVerifier},
    bus::Bus,
    db::Db,
    http::{finish_router, ReadinessCheck},
    metrics::Metrics,
    server::ServerLimits,
};
use tg_users::UsersService;
use tokio::{net::TcpListener, task::JoinHandle};
use utoipa::{
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    Modify, OpenApi,
};
use utoipa_axum::router::OpenApiRouter;

use crate::{
    config::Settings,
    docs,
    targets::Targets,
    wiring::{BookingsForPayments, EventsCatalog, LateBookings, NotificationsDirectory, UsersContacts, UsersDirectory},
};

#[derive(OpenApi)]
#[openapi(
    info(title = "Ticket Gateway API", description = "Event ticketing: identity, events, bookings, payments."),
    modifiers(&BearerAuth)
)]
pub(crate) struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
}

/// A running application: its router plus handles to its parts (used by tests and the CLI).
pub struct App {
    pub router: Router,
    /// The process's metrics (for the `METRICS_LISTEN` listener).
    pub metrics: Metrics,
    pub db: Db,
    pub users: Arc<UsersService>,
    pub events: Arc<EventsService>,
    pub bookings: Arc<BookingsService>,
    pub payments: Arc<PaymentsService>,
    pub bus: Bus,
    background: Vec<JoinHandle<()>>,
}

impl Drop for App {
    fn drop(&mut self) {
        for task in &self.background {
            task.abort();
        }
    }
}

/// Connect and migrate the database for `settings`.
pub async fn open_db(settings: &Settings) -> anyhow::Result<Db> {
    let db = Db::connect(settings.database_url.as_deref(), &settings.data_dir(), settings.max_connections()).await?;
    db.migrate(vec![
        tg_messaging::migrations(),
        tg_users::migrations(),
        tg_events::migrations(),
        tg_bookings::migrations(),
        tg_payments::migrations(),
        tg_notifications::migrations(),
    ])
    .await?;
    Ok(db)
}

/// Build the application. `listen` is the bound address (for the default public URL).
pub async fn build(settings: &Settings, listen: SocketAddr) -> anyhow::Result<App> {
    build_with(settings, listen, Vec::new()).await
}

/// [`build`], with `extra_consumers` of domain events next to the platform's own.
pub async fn build_with(
    settings: &Settings,
    listen: SocketAddr,
    extra_consumers: Vec<Arc<dyn Consumer>>,
) -> anyhow::Result<App> {
    let targets = settings.targets()?;
    anyhow::ensure!(targets == Targets::All, "app::build runs every service; {targets} is built by distributed::build");
    tracing::info!("starting every service");
    let db = open_db(settings).await?;
    let bus = Bus::new();
    let users = UsersService::start(db.clone(), bus.clone(), settings.users(listen)).await?;
    let late_bookings = Arc::new(LateBookings::default());
    let events = EventsService::new(
        db.clone(),
        bus.clone(),
        Arc::new(UsersDirectory(users.clone())),
        late_bookings.clone(),
        EventsConfig {
            public_url: settings.users(listen).public_url,
            uploads_dir: settings.data_dir().join("uploads"),
            max_banner_bytes: settings.max_banner_bytes(),
        },
    );
    let bookings = BookingsService::new(
        db.clone(),
        bus.clone(),
        Arc::new(EventsCatalog(events.clone())),
        Arc::new(UsersContacts(users.clone())),
        settings.bookings(),
    );
    let _ = late_bookings.0.set(Arc::downgrade(&bookings));
    let payments = PaymentsService::new(
        db.clone(),
        bus.clone(),
        Arc::new(BookingsForPayments(bookings.clone())),
        settings.payments(listen)?,
    );
    let notifications = NotificationsService::new(
        db.clone(),
        Arc::new(NotificationsDirectory { users: users.clone(), events: events.clone(), bookings: bookings.clone() }),
        settings.notifications(listen),
    )?;
    let verifier: Arc<dyn TokenVerifier> = users.clone();

    let api = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(tg_users::api::router(users.clone()))
        .merge(tg_users::api::admin_router(users.clone()))
        .merge(tg_events::api::router(events.clone()))
        .merge(tg_events::api::admin_router(events.clone()))
        .merge(tg_bookings::api::router(bookings.clone()))
        .merge(tg_payments::api::router(payments.clone()))
        .merge(tg_notifications::api::router(notifications.clone()))
        .merge(tg_notifications::api::admin_router(notifications.clone()))
        .merge(tg_messaging::api::router(db.clone()));
    let (routes, openapi) = api.split_for_parts();
    let routes = routes
        .merge(tg_payments::api::pages(payments.clone()))
        .merge(docs::router(openapi))
        .layer(middleware::from_fn_with_state(verifier, authenticate));
    // The web UI calls the API routes above in process, as its signed-in user.
    let ui = tg_web::router(routes.clone(), settings.web(listen, payments.provider_names()));
    let routes = routes.merge(ui);

    let metrics = Metrics::new().with_build_info("all").with_access(settings.metrics_access());
    metrics.watch_pool("main", &db);
    let mut consumers = vec![payments.consumer(), notifications.consumer()];
    consumers.extend(extra_consumers);
    let messaging = Messaging::start(db.clone(), bus.clone(), consumers, settings.messaging(), metrics.registry())?;
    let checks: Vec<Arc<dyn ReadinessCheck>> = vec![Arc::new(db.clone())];
    let https = settings.users(listen).public_url.starts_with("https://");
    let router = finish_router(routes, checks, metrics.clone(), https);
    let mut background = vec![
        tokio::spawn(users.clone().run_maintenance()),
        tokio::spawn(events.clone().run_maintenance()),
        tokio::spawn(bookings.clone().run_sweeper()),
        tokio::spawn(payments.clone().run_maintenance()),
        tokio::spawn(notifications.clone().run_dispatcher()),
    ];
    background.extend(messaging.tasks);
    let app = App { router, metrics, db, users, events, bookings, payments, bus, background };
    if settings.demo.unwrap_or(false) {
        crate::demo::seed(&app).await?;
        tracing::info!("demo data loaded");
    }
    Ok(app)
}

/// Serve `router` on `listener` (with the peer address, for per-IP limits) until `shutdown`
/// resolves: over HTTPS with the certificate `tls` keeps current, else plain HTTP; with the
/// listener limits of [`ServerLimits`] either way.
pub async fn serve_router(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<tg_platform::tls::CertReloader>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let tls = tls.map(|t| t.server_config());
    tg_platform::server::serve(listener, router, tls, ServerLimits::default(), shutdown).await
}
