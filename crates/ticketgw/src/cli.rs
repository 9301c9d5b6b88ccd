//! Command line: `serve`, `migrate`, `demo`, `user create`.

use std::{process::ExitCode, time::Instant};

use clap::{Parser, Subcommand};
use tg_platform::{auth::Role, db::Db, telemetry};
use tokio::net::TcpListener;

use crate::{app, config::Settings, distributed, targets::Targets};

#[derive(Parser)]
#[command(name = "ticketgw", version, about = "Ticket Gateway: event ticketing platform")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the platform: every service (`--target all`), or the listed targets as microservices.
    Serve(Settings),
    /// Apply database migrations and exit.
    Migrate(Settings),
    /// Load demo data (accounts and the demo organizer) and exit.
    Demo(Settings),
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Check the platform's invariants against the database (seats, money, notices); exit code 1
    /// when one is broken.
    Check {
        /// Also what holds once background work caught up (no unsettled payment, no pending refund).
        #[arg(long)]
        settled: bool,
        #[command(flatten)]
        settings: Settings,
    },
    /// Ask this process's own server whether it is ready (`/readyz` on the listen port, over HTTPS when
    /// it serves TLS): the container health check, since the image has no shell or curl. Exit code 1
    /// when it is not.
    Probe {
        /// Path to ask.
        #[arg(long, default_value = "/readyz")]
        path: String,
        #[command(flatten)]
        settings: Settings,
    },
    /// Domain messages: list and replay dead letters.
    Messages {
        #[command(subcommand)]
        command: MessagesCommand,
    },
}

#[derive(Subcommand)]
enum MessagesCommand {
    /// List dead letters (messages a consumer could never handle), newest first, as JSON lines.
    DeadLetters {
        /// Only this consumer's (payments, notifications, …).
        #[arg(long)]
        consumer: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[command(flatten)]
        settings: Settings,
    },
    /// Give dead letters back to their consumer (once the cause is fixed): one by message id, or all.
    Replay {
        /// The message id (as listed); with --all, every dead letter instead.
        id: Option<String>,
        /// The consumer whose dead letter it is; required with an id when several consumers have one.
        #[arg(long)]
        consumer: Option<String>,
        #[arg(long, conflicts_with = "id")]
        all: bool,
        #[command(flatten)]
        settings: Settings,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a local account.
    Create {
        #[arg(long)]
        email: String,
        /// Password (or set TICKETGW_USER_PASSWORD to keep it out of the shell history, or give
        /// --password-stdin).
        #[arg(
            long,
            env = "TICKETGW_USER_PASSWORD",
            hide_env_values = true,
            required_unless_present = "password_stdin"
        )]
        password: Option<String>,
        /// Read the password from standard input (`… | kubectl exec -i deploy/users -- /ticketgw user create …`).
        #[arg(long, conflicts_with = "password")]
        password_stdin: bool,
        #[arg(long)]
        display_name: String,
        /// Extra roles: organizer, admin (repeatable).
        #[arg(long = "role")]
        roles: Vec<String>,
        #[command(flatten)]
        settings: Settings,
    },
}

pub fn main() -> ExitCode {
    let started = Instant::now();
    // Crash points named in FAILPOINTS (test builds only; nothing in a release build).
    let _failpoints = tg_platform::failpoint::setup();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli, started)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn probe(s: &Settings, path: &str) -> anyhow::Result<()> {
    let listen = s.listen();
    let host = match listen.ip() {
        ip if ip.is_unspecified() && ip.is_ipv6() => "[::1]".to_owned(),
        ip if ip.is_unspecified() => "127.0.0.1".to_owned(),
        ip if ip.is_ipv6() => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    let scheme = if s.tls.serves_https() { "https" } else { "http" };
    let url = format!("{scheme}://{host}:{}{path}", listen.port());
    // The certificate names the service, not the loopback address this asks: a local check trusts it.
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .no_proxy()
        .timeout(std::time::Duration::from_secs(4))
        .build()?;
    let status = client.get(&url).send().await?.status();
    anyhow::ensure!(status.is_success(), "{url} answered {status}");
    println!("{url}: {status}");
    Ok(())
}

async fn run(cli: Cli, started: Instant) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(s) => {
            let s = s.with_file()?;
            let telemetry_settings = s.telemetry(true);
            let service = telemetry_settings.service.clone();
            let _telemetry = telemetry::init(telemetry_settings);
            let _errors = tg_platform::error_reports::init(&service);
            let targets = s.targets()?;
            let tls = s.tls.apply()?;
            let https = tls.is_some();
            let listener = TcpListener::bind(s.listen()).await?;
            let addr = listener.local_addr()?;
            let metrics_listener = match s.metrics_listen {
                Some(at) => Some(TcpListener::bind(at).await?),
                None => None,
            };
            // The metrics listener: plain HTTP (Prometheus inside the cluster), until shutdown.
            let serve_metrics = |listener: Option<TcpListener>, metrics: tg_platform::metrics::Metrics| {
                if let Some(listener) = listener {
                    tracing::info!(addr = ?listener.local_addr().ok(), "metrics listening");
                    let router = tg_platform::http::metrics_router(metrics);
                    tokio::spawn(app::serve_router(listener, router, None, shutdown_signal()));
                }
            };
            if targets != Targets::All {
                let process = distributed::build(&s, addr, &targets).await?;
                serve_metrics(metrics_listener, process.metrics.clone());
                tracing::info!(%addr, %targets, https, startup_ms = started.elapsed().as_millis() as u64, "listening");
                app::serve_router(listener, process.router.clone(), tls, shutdown_signal()).await?;
                return Ok(());
            }
            let app = app::build(&s, addr).await?;
            serve_metrics(metrics_listener, app.metrics.clone());
            tracing::info!(%addr, https, startup_ms = started.elapsed().as_millis() as u64, "listening");
            app::serve_router(listener, app.router.clone(), tls, shutdown_signal()).await?;
            app.db.close().await;
            Ok(())
        }
        Command::Probe { path, settings } => probe(&settings.with_file()?, &path).await,
        Command::Migrate(s) => {
            let s = s.with_file()?;
            let _telemetry = telemetry::init(s.telemetry(false));
            app::open_db(&s).await?.close().await;
            println!("migrations applied");
            Ok(())
        }
        Command::Demo(s) => {
            let mut s = s.with_file()?;
            let _telemetry = telemetry::init(s.telemetry(false));
            s.demo = Some(true);
            let app = app::build(&s, s.listen()).await?;
            println!("demo data loaded; accounts:");
            for (email, password, role) in tg_users::DEMO_ACCOUNTS {
                println!("  {role:<9} {email}  password: {password}");
            }
            app.db.close().await;
            Ok(())
        }
        Command::Check { settled, settings } => {
            let s = settings.with_file()?;
            let _telemetry = telemetry::init(s.telemetry(false));
            let db = app::open_db(&s).await?;
            let violations = crate::invariants::check(&db, settled).await?;
            db.close().await;
            for v in &violations {
                println!("violated: {v}");
            }
            anyhow::ensure!(violations.is_empty(), "{} invariant violation(s)", violations.len());
            println!("all invariants hold");
            Ok(())
        }
        Command::Messages { command: MessagesCommand::DeadLetters { consumer, limit, settings } } => {
            let s = settings.with_file()?;
            let _telemetry = telemetry::init(s.telemetry(false));
            let db = app::open_db(&s).await?;
            let items = tg_messaging::dead_letters::list(&db, consumer.as_deref(), limit.clamp(1, 10_000)).await?;
            for d in &items {
                println!("{}", serde_json::to_string(d)?);
            }
            eprintln!("{} dead letter(s) in all", tg_messaging::dead_letters::count(&db).await?);
            db.close().await;
            Ok(())
        }
        Command::Messages { command: MessagesCommand::Replay { id, consumer, all, settings } } => {
            let s = settings.with_file()?;
            let _telemetry = telemetry::init(s.telemetry(false));
            let db = app::open_db(&s).await?;
            let replayed = match (id, all) {
                (None, true) => tg_messaging::dead_letters::replay_all(&db, "cli", consumer.as_deref()).await?,
                (Some(id), false) => {
                    let all = tg_messaging::dead_letters::list(&db, consumer.as_deref(), 10_000).await?;
                    let of_id: Vec<_> = all.iter().filter(|d| d.id == id).collect();
                    anyhow::ensure!(!of_id.is_empty(), "no dead letter {id:?}");
                    anyhow::ensure!(
                        of_id.len() == 1,
                        "{id:?} is a dead letter of several consumers: name one with --consumer"
                    );
                    u64::from(tg_messaging::dead_letters::replay(&db, "cli", &of_id[0].consumer, &id).await?)
                }
                _ => anyhow::bail!("name a message id, or --all"),
            };
            println!("{replayed} dead letter(s) replayed; a running server delivers them within seconds");
            db.close().await;
            Ok(())
        }
        Command::User {
            command: UserCommand::Create { email, password, password_stdin, display_name, roles, settings },
        } => {
            let s = settings.with_file()?;
            let _telemetry = telemetry::init(s.telemetry(false));
            let roles = roles
                .iter()
                .map(|r| r.parse::<Role>().map_err(|_| anyhow::anyhow!("unknown role {r:?}")))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let password = match password {
                Some(password) => password,
                None if password_stdin => {
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line.trim_end_matches(['\r', '\n']).to_owned()
                }
                None => anyhow::bail!("give --password, TICKETGW_USER_PASSWORD or --password-stdin"),
            };
            // The users service's own database: in a users pod of the microservices mode that is
            // USERS_DATABASE_URL, so `kubectl exec deploy/users -- /ticketgw user create …` works.
            let url = std::env::var("USERS_DATABASE_URL").ok().filter(|u| !u.is_empty()).or(s.database_url.clone());
            let db = Db::connect(url.as_deref(), &s.data_dir(), 2).await?;
            db.migrate(vec![tg_messaging::migrations(), tg_users::migrations()]).await?;
            let users =
                tg_users::UsersService::start(db.clone(), tg_platform::bus::Bus::new(), s.users(s.listen())).await?;
            let user = users.create_user(&email, &password, &display_name, &roles).await?;
            println!("created user {} ({}) with roles {:?}", user.id, email.trim().to_lowercase(), user.roles);
            db.close().await;
            Ok(())
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
