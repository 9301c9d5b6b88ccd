//! `tg-bench flash-sale`: N buyers with real tokens against one hot ticket type, over real HTTP.
//!
//! Phase 1 (throughput): a large stock and a high per-user limit, so every request can succeed; prints
//! successful holds per second and latency. Phase 2 (scarcity): a small stock and the usual per-user
//! limit; everyone races for it. Both end with the oversell check against the database: sold + held
//! never above the stock, counters equal to the booking rows, nobody above the per-user limit.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use clap::Parser;
use hdrhistogram::Histogram;
use reqwest::Client;
use serde_json::{json, Value};
use tg_platform::auth::{Principal, Role};
use ticketgw::{app::App, config::Settings};

#[derive(Parser, Clone)]
pub struct FlashArgs {
    /// PostgreSQL server (used to create and drop a `tg_flash_*` database); unset = SQLite in a temp dir.
    #[arg(long, env = "BENCH_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Concurrent buyers, each a user with their own token and one request in flight.
    #[arg(long, default_value_t = 256)]
    pub buyers: usize,
    /// Measured seconds of the throughput phase.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Tickets per hold.
    #[arg(long, default_value_t = 1)]
    pub quantity: i64,
    /// Stock of the hot ticket type in the scarcity phase.
    #[arg(long, default_value_t = 1000)]
    pub scarce_stock: i64,
    /// The application's database pool size.
    #[arg(long, default_value_t = 32)]
    pub pool: u32,
    /// Run the buyers against this running server (the gateway of a microservices topology, see
    /// scripts/microservices.sh with SHARED_DATABASE, or a monolith's address) instead of an
    /// application inside the benchmark; `--database-url` is then that server's database, used as
    /// it is, for setup and checks.
    #[arg(long)]
    pub gateway: Option<String>,
}

fn iso(offset_days: i64) -> String {
    (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * offset_days))
        .strftime("%Y-%m-%dT%H:%M:%S+00:00")
        .to_string()
}

/// An event on sale now with one hot ticket type.
pub(crate) fn hot_event(id: &str, stock: i64, max_per_user: i64) -> Value {
    let mut d = ticketgw::demo::fixture_shifted(2);
    d["id"] = json!(id);
    d["slug"] = json!(id);
    d.as_object_mut().expect("object").remove("organizer");
    d["datetime"]["booking_start"] = json!(iso(-1));
    d["datetime"]["booking_end"] = json!(iso(30));
    d["datetime"]["start"] = json!(iso(40));
    d["datetime"]["end"] = json!(iso(41));
    d["ticketing"]["max_tickets_per_user"] = json!(max_per_user);
    d["ticketing"]["total_capacity"] = json!(stock);
    d["ticketing"]["types"] = json!([{
        "id": "hot", "name": "Flash sale", "price": 5.0, "currency": "USD", "quantity": stock,
        "benefits": [], "refundable": false, "available_from": null, "available_until": null
    }]);
    d
}

struct PhaseResult {
    created: u64,
    by_status: BTreeMap<String, u64>,
    elapsed: Duration,
    latency: Histogram<u64>,
}

/// Closed loop: every buyer posts holds one after another until `deadline` or `stop` says so.
async fn hammer(
    base: &str,
    tokens: &[String],
    event_id: &str,
    quantity: i64,
    deadline: Instant,
    stop_after: Option<u64>,
) -> PhaseResult {
    let client = Client::builder().pool_max_idle_per_host(tokens.len()).build().expect("client");
    let created = Arc::new(AtomicU64::new(0));
    let attempts = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (b, token) in tokens.iter().enumerate() {
        let (client, token, created, attempts) = (client.clone(), token.clone(), created.clone(), attempts.clone());
        let url = format!("{base}/api/v1/bookings");
        let event_id = event_id.to_owned();
        let body = json!({"event_id": event_id, "items": [{"ticket_type_id": "hot", "quantity": quantity}]});
        tasks.spawn(async move {
            let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
            let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
            let mut i = 0u64;
            while Instant::now() < deadline {
                if stop_after.is_some_and(|n| attempts.fetch_add(1, Ordering::Relaxed) >= n) {
                    break;
                }
                i += 1;
                let t0 = Instant::now();
                let res = client
                    .post(&url)
                    .bearer_auth(&token)
                    .header("idempotency-key", format!("{event_id}-b{b}-{i}"))
                    .json(&body)
                    .send()
                    .await;
                let key = match res {
                    Ok(r) => {
                        let status = r.status();
                        let code = if status.as_u16() == 201 {
                            created.fetch_add(1, Ordering::Relaxed);
                            "201".to_owned()
                        } else {
                            let v: Value = r.json().await.unwrap_or_default();
                            format!("{} {}", status.as_u16(), v["code"].as_str().unwrap_or(""))
                        };
                        code
                    }
                    Err(e) => format!("transport error: {e}"),
                };
                hist.saturating_record(t0.elapsed().as_micros().max(1) as u64);
                *statuses.entry(key).or_default() += 1;
            }
            (hist, statuses)
        });
    }
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
    let mut by_status = BTreeMap::new();
    while let Some(r) = tasks.join_next().await {
        let (h, s) = r.expect("buyer task");
        latency.add(&h).expect("same bounds");
        for (k, v) in s {
            *by_status.entry(k).or_default() += v;
        }
    }
    PhaseResult { created: created.load(Ordering::Relaxed), by_status, elapsed: started.elapsed(), latency }
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

fn report(title: &str, r: &PhaseResult) {
    let total: u64 = r.by_status.values().sum();
    println!("### {title}\n");
    println!("| requests | successful holds | holds/s | requests/s | p50 ms | p90 ms | p99 ms | max ms |");
    println!("|--:|--:|--:|--:|--:|--:|--:|--:|");
    let secs = r.elapsed.as_secs_f64();
    println!(
        "| {total} | {} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} |\n",
        r.created,
        r.created as f64 / secs,
        total as f64 / secs,
        ms(&r.latency, 0.5),
        ms(&r.latency, 0.9),
        ms(&r.latency, 0.99),
        r.latency.max() as f64 / 1000.0
    );
    println!("Answers: {}\n", r.by_status.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", "));
}

/// The oversell check; true when every invariant holds.
async fn check(app: &App, event_id: &str, stock: i64, max_per_user: i64) -> anyhow::Result<bool> {
    let c = app.bookings.audit_counts(event_id).await?;
    let (_, quantity, sold, held, rows_sold, rows_held) = c.types.first().cloned().context("no inventory row")?;
    let ok = sold + held <= quantity
        && quantity == stock
        && (sold, held) == (rows_sold, rows_held)
        && c.totals.1 + c.totals.2 <= c.totals.0
        && c.user_count_mismatches == 0
        && c.max_per_user <= max_per_user;
    println!(
        "Oversell check: stock {stock}, sold {sold}, held {held} (rows: {rows_sold} confirmed, {rows_held} pending), \
         users with wrong counters {}, most tickets of one buyer {} (limit {max_per_user}): {}\n",
        c.user_count_mismatches,
        c.max_per_user,
        if ok { "OK, no oversell" } else { "FAILED" }
    );
    Ok(ok)
}

pub async fn flash_sale(args: FlashArgs) -> anyhow::Result<bool> {
    if let Some(gateway) = args.gateway.clone() {
        return through_gateway(args, &gateway).await;
    }
    let (settings, cleanup) = crate::scratch_db::fresh_database(args.database_url.as_deref(), "tg_flash").await?;
    let settings = Settings {
        database_max_connections: Some(args.pool),
        login_ip_burst: Some(100_000),
        login_account_burst: Some(100),
        hold_ttl_secs: Some(3600),
        ..settings
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr: SocketAddr = listener.local_addr()?;
    let app = ticketgw::app::build(&settings, addr).await.context("building the application")?;
    let service = app.router.clone().into_make_service_with_connect_info::<SocketAddr>();
    let server = tokio::spawn(async move { axum::serve(listener, service).await });
    let base = format!("http://{addr}");
    let res = run(&args, &app, &base).await;
    server.abort();
    app.db.close().await;
    cleanup.await;
    res
}

/// The sale against a running microservices topology: the buyers talk to its gateway; this process
/// only sets up (accounts, events) and checks, on the topology's database.
async fn through_gateway(args: FlashArgs, gateway: &str) -> anyhow::Result<bool> {
    let url = args.database_url.clone().context("--gateway needs --database-url: the topology's database")?;
    // With the topology's broker, so what this process's relay sends reaches the topology's consumers.
    let amqp_url = std::env::var("AMQP_URL").ok().filter(|u| !u.is_empty());
    let settings =
        Settings { database_url: Some(url), database_max_connections: Some(4), amqp_url, ..Settings::default() };
    let app =
        ticketgw::app::build(&settings, "127.0.0.1:0".parse()?).await.context("opening the topology's database")?;
    println!("Against the running server at {gateway}.\n");
    let res = run(&args, &app, gateway.trim_end_matches('/')).await;
    app.db.close().await;
    res
}

async fn run(args: &FlashArgs, app: &App, base: &str) -> anyhow::Result<bool> {
    let backend = if args.database_url.is_some() { "PostgreSQL" } else { "SQLite" };
    println!("# Flash sale\n");
    println!(
        "{} buyers with real tokens, {} ticket(s) per hold, {backend}, pool of {}, {} CPUs; buyers, application and \
         database share this machine.\n",
        args.buyers,
        args.quantity,
        args.pool,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    let organizer_user = app.users.seed_demo().await?;
    let organizer = Principal::user(organizer_user, vec![Role::User, Role::Organizer]);
    let t0 = Instant::now();
    let client = Client::new();
    let mut tokens = Vec::with_capacity(args.buyers);
    for i in 0..args.buyers {
        let email = format!("buyer{i}@example.com");
        app.users.create_user(&email, "flash sale password", &format!("Buyer {i}"), &[]).await?;
        let res: Value = client
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"email": email, "password": "flash sale password"}))
            .send()
            .await?
            .json()
            .await?;
        tokens.push(res["access_token"].as_str().context("login answered no token")?.to_owned());
    }
    println!("Registered and logged in {} buyers in {:.1} s.\n", args.buyers, t0.elapsed().as_secs_f64());

    // Phase 1: throughput on one hot ticket type that does not run out.
    let big = 10_000_000;
    let doc = serde_json::from_value(hot_event("flash-open", big, big))?;
    app.events.create(&organizer, doc).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let warm = hammer(base, &tokens, "flash-open", args.quantity, Instant::now() + Duration::from_secs(1), None).await;
    drop(warm);
    let r = hammer(
        base,
        &tokens,
        "flash-open",
        args.quantity,
        Instant::now() + Duration::from_secs_f64(args.seconds),
        None,
    )
    .await;
    report(&format!("Throughput: {} s on one hot ticket type", args.seconds), &r);
    let mut ok = check(app, "flash-open", big, big).await?;

    // Phase 2: everyone races for a small stock; exactly the stock is held, never more.
    let doc = serde_json::from_value(hot_event("flash-scarce", args.scarce_stock, 4))?;
    app.events.create(&organizer, doc).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let attempts = (args.scarce_stock as u64 / args.quantity.max(1) as u64) * 3 + args.buyers as u64;
    let r =
        hammer(base, &tokens, "flash-scarce", args.quantity, Instant::now() + Duration::from_secs(60), Some(attempts))
            .await;
    report(&format!("Scarcity: {} tickets, limit 4 per buyer, {attempts} attempts", args.scarce_stock), &r);
    let counts = app.bookings.audit_counts("flash-scarce").await?;
    let taken = counts.types.first().map(|t| t.2 + t.3).unwrap_or(0);
    let all_sold = taken == args.scarce_stock || (args.buyers as i64 * 4) < args.scarce_stock;
    if !all_sold {
        println!("Only {taken} of {} tickets were taken although buyers wanted more.\n", args.scarce_stock);
    }
    ok &= check(app, "flash-scarce", args.scarce_stock, 4).await? && all_sold;
    Ok(ok)
}
