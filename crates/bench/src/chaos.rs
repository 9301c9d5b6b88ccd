//! `tg-bench chaos`: an operator's worst day, bounded. A sale of a few hundred seats to N buyers
//! against the release binary on PostgreSQL and RabbitMQ, while the server is killed with SIGKILL
//! at random moments, PostgreSQL refuses connections (and terminates every session) for a while,
//! and the broker is stopped for a while. Buyers behave like real clients: they retry with the same
//! Idempotency-Key until they get an answer, pay on the sandbox's page or walk away. Afterwards the
//! platform's invariants are checked against the database (`ticketgw::invariants`) and the API:
//! every 201 exists, every paid booking has its tickets or its money back, counters equal rows,
//! one confirmation notice per booking, nothing dead-lettered, the outbox drained.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    process::Stdio,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context;
use clap::Parser;
use rand::{rngs::StdRng, Rng, SeedableRng};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use tg_platform::db::Db;
use tokio::process::{Child, Command};

#[derive(Parser, Clone)]
pub struct ChaosArgs {
    /// PostgreSQL server (a `tg_chaos_*` database is created on it and dropped after).
    #[arg(long, env = "BENCH_DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// RabbitMQ the server relays to; `rabbitmqctl` on this machine stops and starts it.
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    pub amqp_url: String,
    /// The `ticketgw` binary [default: next to this one].
    #[arg(long)]
    pub binary: Option<PathBuf>,
    #[arg(long, default_value_t = 400)]
    pub buyers: usize,
    /// Length of the sale.
    #[arg(long, default_value_t = 120)]
    pub seconds: u64,
    /// Seats of the one ticket type on sale (fewer than the buyers want).
    #[arg(long, default_value_t = 300)]
    pub seats: i64,
    /// `kill -9`s of the server at random moments of the sale (restarted at once).
    #[arg(long, default_value_t = 3)]
    pub kills: usize,
    /// Seconds PostgreSQL refuses connections (0: no database outage).
    #[arg(long, default_value_t = 10)]
    pub db_outage_secs: u64,
    /// Seconds the broker is stopped (0: no broker outage).
    #[arg(long, default_value_t = 20)]
    pub broker_outage_secs: u64,
    /// How long a hold waits for payment: short, so that holds expire and late payments happen.
    #[arg(long, default_value_t = 45)]
    pub hold_secs: u64,
    /// Seed of the random schedule and of the buyers' choices.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Keep the database (its name is printed).
    #[arg(long)]
    pub keep: bool,
}

const SANDBOX_SECRET: &str = "whsec_chaos";

/// What the buyers saw.
#[derive(Default)]
struct Tally {
    /// Booking id → buyer index, for every 201.
    created: BTreeMap<String, usize>,
    /// Bookings whose payer pressed "Pay" on the sandbox page (answered or not).
    pressed_pay: Vec<(String, usize)>,
    answers: BTreeMap<String, u64>,
}

impl Tally {
    fn answer(&mut self, what: impl Into<String>) {
        *self.answers.entry(what.into()).or_default() += 1;
    }
}

/// The server under test, restarted as often as the chaos asks.
struct Server {
    binary: PathBuf,
    env: Vec<(String, String)>,
    base: String,
    log: PathBuf,
    child: Option<Child>,
    http: Client,
}

impl Server {
    async fn start(&mut self) -> anyhow::Result<()> {
        self.spawn()?;
        self.wait_ready().await
    }

    /// Start the process without waiting for it to be ready.
    fn spawn(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        let mut cmd = Command::new(&self.binary);
        cmd.arg("serve")
            .envs(self.env.iter().cloned())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        self.child = Some(cmd.spawn().context("starting ticketgw")?);
        Ok(())
    }

    /// Ready, or started again if it exited (it cannot start while the database refuses).
    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Some(child) = &mut self.child {
                if child.try_wait()?.is_some() {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    return Box::pin(self.start()).await;
                }
            }
            let ready = self.http.get(format!("{}/readyz", self.base)).send().await;
            if ready.is_ok_and(|r| r.status() == StatusCode::OK) {
                return Ok(());
            }
            anyhow::ensure!(Instant::now() < deadline, "the server did not become ready; see {}", self.log.display());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }
}

fn rabbitmqctl(args: &[&str]) -> anyhow::Result<()> {
    let out = std::process::Command::new("rabbitmqctl").args(args).output().context("running rabbitmqctl")?;
    anyhow::ensure!(out.status.success(), "rabbitmqctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}

async fn admin_sql(admin_url: &str, sql: &str) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect(admin_url).await?;
    sqlx::raw_sql(sql).execute(&mut conn).await.with_context(|| sql.to_owned())?;
    Ok(())
}

pub async fn chaos(args: ChaosArgs) -> anyhow::Result<bool> {
    let seed = args.seed.unwrap_or_else(|| rand::thread_rng().gen());
    let mut rng = StdRng::seed_from_u64(seed);
    let binary = match &args.binary {
        Some(b) => b.clone(),
        None => std::env::current_exe()?.with_file_name("ticketgw"),
    };
    anyhow::ensure!(binary.exists(), "no ticketgw binary at {} (build it, or pass --binary)", binary.display());
    let name = format!("tg_chaos_{:08x}", rand::thread_rng().gen::<u32>());
    // A copy of its own: a rebuild during the soak must not swap the binary between restarts.
    let copy = std::env::temp_dir().join(format!("{name}-ticketgw"));
    std::fs::copy(&binary, &copy).context("copying the ticketgw binary")?;
    let binary = copy;
    admin_sql(&args.database_url, &format!("CREATE DATABASE {name}")).await?;
    let base_url = args.database_url.rsplit_once('/').map(|(b, _)| b).unwrap_or(&args.database_url);
    let db_url = format!("{base_url}/{name}");
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let base = format!("http://127.0.0.1:{port}");
    let log = std::env::temp_dir().join(format!("{name}.log"));
    let env: Vec<(String, String)> = [
        ("DATABASE_URL", db_url.as_str()),
        ("DATABASE_MAX_CONNECTIONS", "32"),
        ("TICKETGW_LISTEN", &format!("127.0.0.1:{port}")),
        ("PUBLIC_URL", &base),
        ("AMQP_URL", &args.amqp_url),
        ("AMQP_PREFIX", &name),
        ("SANDBOX_WEBHOOK_SECRET", SANDBOX_SECRET),
        ("PAYMENTS_SANDBOX", "true"),
        ("PAYMENTS_RECONCILE_AFTER_SECS", "5"),
        ("HOLD_TTL_SECS", &args.hold_secs.to_string()),
        ("REGISTER_IP_BURST", "100000"),
        ("LOGIN_IP_BURST", "100000"),
        ("LOGIN_ACCOUNT_BURST", "100"),
        ("RUST_LOG", "warn"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let http = Client::builder().timeout(Duration::from_secs(30)).pool_max_idle_per_host(args.buyers).build()?;
    let mut server = Server {
        binary: binary.clone(),
        env: env.clone(),
        base: base.clone(),
        log: log.clone(),
        child: None,
        http: http.clone(),
    };

    println!("# Chaos soak\n");
    println!(
        "Seed {seed}; {} buyers, {} seats, {} s sale, {} kill -9, {} s database refusal, {} s broker outage, \
         holds of {} s; server log {}.\n",
        args.buyers,
        args.seats,
        args.seconds,
        args.kills,
        args.db_outage_secs,
        args.broker_outage_secs,
        args.hold_secs,
        log.display()
    );
    let demo = Command::new(&binary).arg("demo").envs(env.iter().cloned()).output().await?;
    anyhow::ensure!(demo.status.success(), "ticketgw demo: {}", String::from_utf8_lossy(&demo.stderr));
    server.start().await?;
    let result = run(&args, &mut rng, &mut server, &http, &base, &name).await;
    server.kill9().await;
    let _ = rabbitmqctl(&["start_app"]);
    let _ = admin_sql(&args.database_url, &format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true")).await;
    for q in ["payments", "notifications", "dead-letter"] {
        let mut queues = vec![format!("{name}.{q}")];
        queues.extend(tg_messaging::RETRY_DELAYS.iter().map(|d| format!("{name}.{q}.retry-{}s", d.as_secs())));
        for queue in queues {
            let _ = std::process::Command::new("rabbitmqctl").args(["delete_queue", &queue]).output();
        }
    }
    let _ = std::fs::remove_file(&binary);
    if args.keep {
        eprintln!("kept database {name}");
    } else {
        let _ = admin_sql(&args.database_url, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
    }
    result
}

async fn login(http: &Client, base: &str, email: &str, password: &str) -> anyhow::Result<String> {
    let res = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await?;
    anyhow::ensure!(res.status() == StatusCode::OK, "login of {email}: {}", res.status());
    Ok(res.json::<Value>().await?["access_token"].as_str().unwrap_or_default().to_owned())
}

/// POST with an Idempotency-Key until a definitive answer (not a transport error, 502/503/504).
async fn post_until_answered(
    http: &Client,
    url: &str,
    token: &str,
    key: &str,
    body: &Value,
    tally: &Mutex<Tally>,
    give_up: Instant,
) -> Option<(StatusCode, Value)> {
    let mut delay = Duration::from_millis(200);
    while Instant::now() < give_up {
        match http.post(url).bearer_auth(token).header("idempotency-key", key).json(body).send().await {
            Ok(res) if matches!(res.status().as_u16(), 502..=504) => {
                tally.lock().unwrap().answer(format!("{} (retried)", res.status().as_u16()))
            }
            Ok(res) => {
                let status = res.status();
                return Some((status, res.json().await.unwrap_or_default()));
            }
            Err(_) => tally.lock().unwrap().answer("transport error (retried)"),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
    None
}

/// The sandbox's signed success webhook for `payment`, sent until answered (as a provider
/// retries): the answer's status.
async fn late_webhook(http: &Client, base: &str, payment_id: &str, payment: &Value, give_up: Instant) -> u16 {
    let cents = (payment["amount"].as_f64().unwrap_or_default() * 100.0).round() as i64;
    let body = json!({"id": format!("sbx_evt_late_{payment_id}"), "type": "payment.succeeded", "payment_id": payment_id,
                      "amount_cents": cents, "currency": payment["currency"]});
    let body = serde_json::to_vec(&body).unwrap_or_default();
    let mut delay = Duration::from_millis(200);
    while Instant::now() < give_up {
        let signature =
            tg_payments::providers::signature::sign(SANDBOX_SECRET, jiff::Timestamp::now().as_second(), &body);
        let res = http
            .post(format!("{base}/api/v1/payments/webhooks/sandbox"))
            .header("sandbox-signature", signature)
            .body(body.clone())
            .send()
            .await;
        match res {
            Ok(r) if r.status().is_success() || r.status().is_client_error() => return r.status().as_u16(),
            _ => {}
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
    0
}

async fn run(
    args: &ChaosArgs,
    rng: &mut StdRng,
    server: &mut Server,
    http: &Client,
    base: &str,
    name: &str,
) -> anyhow::Result<bool> {
    // The event, and the buyers with their tokens.
    let organizer = login(http, base, "organizer@example.com", "ticketgw-demo-organizer").await?;
    let event_id = name.replace('_', "-");
    let event = crate::flash::hot_event(&event_id, args.seats, 2);
    let res = http.post(format!("{base}/api/v1/events")).bearer_auth(&organizer).json(&event).send().await?;
    anyhow::ensure!(res.status() == StatusCode::CREATED, "creating the event: {}", res.text().await?);
    let setup = Instant::now();
    let mut tokens = Vec::with_capacity(args.buyers);
    let mut registering = tokio::task::JoinSet::new();
    for chunk in (0..args.buyers).collect::<Vec<_>>().chunks(args.buyers.div_ceil(16).max(1)) {
        let (http, base, chunk) = (http.clone(), base.to_owned(), chunk.to_vec());
        registering.spawn(async move {
            let mut out = Vec::new();
            for b in chunk {
                let email = format!("chaos-{b}@example.com");
                let body = json!({"email": email, "password": "a long password", "display_name": format!("Buyer {b}")});
                let res = http.post(format!("{base}/api/v1/auth/register")).json(&body).send().await?;
                anyhow::ensure!(res.status() == StatusCode::ACCEPTED, "register: {}", res.status());
                out.push((b, login(&http, &base, &email, "a long password").await?));
            }
            Ok::<_, anyhow::Error>(out)
        });
    }
    while let Some(r) = registering.join_next().await {
        tokens.extend(r??);
    }
    tokens.sort();
    println!("{} buyers registered in {:.1} s.\n", tokens.len(), setup.elapsed().as_secs_f64());

    // The chaos schedule, in seconds from the start of the sale.
    let secs = args.seconds.max(30) as f64;
    let mut kills: Vec<f64> = (0..args.kills).map(|_| rng.gen_range(0.1..0.9) * secs).collect();
    kills.sort_by(f64::total_cmp);
    let db_outage = rng.gen_range(0.15..0.5) * secs;
    let broker_outage = rng.gen_range(0.3..0.6) * secs;
    println!(
        "Schedule: kill -9 at {} s; database refusal at {:.0} s; broker stopped at {:.0} s.\n",
        kills.iter().map(|k| format!("{k:.0}")).collect::<Vec<_>>().join(", "),
        db_outage,
        broker_outage
    );

    let tally = Arc::new(Mutex::new(Tally::default()));
    let start = Instant::now();
    let sale_end = start + Duration::from_secs(args.seconds);
    let give_up = sale_end + Duration::from_secs(60);
    let mut buyers = tokio::task::JoinSet::new();
    for (b, token) in tokens.clone() {
        let (http, base, tally) = (http.clone(), base.to_owned(), tally.clone());
        let mut rng = StdRng::seed_from_u64(rng.gen());
        let event_id = event_id.clone();
        buyers.spawn(async move {
            // Spread the buyers over the first half of the sale, then each books at most twice.
            tokio::time::sleep(Duration::from_secs_f64(rng.gen_range(0.0..0.5) * secs)).await;
            for attempt in 0..2 {
                if Instant::now() > sale_end {
                    break;
                }
                let body = json!({"event_id": event_id, "items": [{"ticket_type_id": "hot", "quantity": 1}]});
                let key = format!("hold-{b}-{attempt}");
                let url = format!("{base}/api/v1/bookings");
                let Some((status, booking)) =
                    post_until_answered(&http, &url, &token, &key, &body, &tally, give_up).await
                else {
                    break;
                };
                tally.lock().unwrap().answer(format!("hold {}", status.as_u16()));
                if !status.is_success() {
                    break;
                }
                let booking_id = booking["id"].as_str().unwrap_or_default().to_owned();
                tally.lock().unwrap().created.insert(booking_id.clone(), b);
                // Most pay on the sandbox's page, some walk away; for a few the provider's news of
                // their payment comes late (a webhook 20-70 s later, often after the hold ended:
                // confirmed if the seats are still free, else refunded).
                let choice = rng.gen_range(0..10);
                if choice == 0 {
                    continue;
                }
                let body = json!({"booking_id": booking_id, "provider": "sandbox"});
                let url = format!("{base}/api/v1/payments");
                let pay_key = format!("pay-{b}-{attempt}");
                let Some((status, payment)) =
                    post_until_answered(&http, &url, &token, &pay_key, &body, &tally, give_up).await
                else {
                    break;
                };
                tally.lock().unwrap().answer(format!("payment {}", status.as_u16()));
                let Some(page) = payment["next_action"]["url"].as_str().map(str::to_owned) else { continue };
                if choice == 1 {
                    tokio::time::sleep(Duration::from_secs(rng.gen_range(20..70))).await;
                    let payment_id = payment["id"].as_str().unwrap_or_default();
                    tally.lock().unwrap().pressed_pay.push((booking_id.clone(), b));
                    let answered = late_webhook(&http, &base, payment_id, &payment, give_up).await;
                    tally.lock().unwrap().answer(format!("late webhook {answered}"));
                    continue;
                }
                // The pay page: read the form, press "Pay successfully" (a real payer does not
                // press twice: an unanswered press is left to the platform).
                let Ok(res) = http.get(&page).send().await else {
                    tally.lock().unwrap().answer("pay page unreachable");
                    continue;
                };
                let html = res.text().await.unwrap_or_default();
                let Some(csrf) = html.split("name=\"csrf\" value=\"").nth(1).and_then(|s| s.split('"').next()) else {
                    continue;
                };
                tally.lock().unwrap().pressed_pay.push((booking_id.clone(), b));
                let res = http.post(&page).form(&[("action", "succeed"), ("csrf", csrf)]).send().await;
                let what = match res {
                    Ok(r) => format!("pay page {}", r.status().as_u16()),
                    Err(_) => "pay page: no answer".to_owned(),
                };
                tally.lock().unwrap().answer(what);
            }
        });
    }

    // The chaos itself, while the buyers buy.
    let mut events: Vec<(f64, &str)> = kills.iter().map(|&k| (k, "kill")).collect();
    if args.db_outage_secs > 0 {
        events.push((db_outage, "db down"));
        events.push((db_outage + args.db_outage_secs as f64, "db up"));
    }
    if args.broker_outage_secs > 0 {
        events.push((broker_outage, "broker down"));
        events.push((broker_outage + args.broker_outage_secs as f64, "broker up"));
    }
    events.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut db_down = false;
    for (at, what) in events {
        let when = start + Duration::from_secs_f64(at);
        tokio::time::sleep_until(when.into()).await;
        let t = start.elapsed().as_secs_f64();
        match what {
            "kill" if db_down => {
                // It cannot start before the database is back: "db up" waits for it (and restarts
                // it as often as it exits meanwhile).
                server.kill9().await;
                server.spawn()?;
                println!("- {t:.1} s: kill -9; restarted, ready once the database is back");
            }
            "kill" => {
                server.kill9().await;
                println!("- {t:.1} s: kill -9; restarting");
                server.start().await?;
                println!("- {:.1} s: ready again", start.elapsed().as_secs_f64());
            }
            "db down" => {
                db_down = true;
                println!("- {t:.1} s: PostgreSQL refuses connections and terminates every session");
                admin_sql(&args.database_url, &format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false")).await?;
                admin_sql(
                    &args.database_url,
                    &format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"),
                )
                .await?;
            }
            "db up" => {
                db_down = false;
                admin_sql(&args.database_url, &format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true")).await?;
                println!("- {t:.1} s: PostgreSQL accepts connections again");
                server.wait_ready().await?;
            }
            "broker down" => {
                println!("- {t:.1} s: RabbitMQ stopped");
                rabbitmqctl(&["stop_app"])?;
            }
            _ => {
                rabbitmqctl(&["start_app"])?;
                println!("- {t:.1} s: RabbitMQ started");
            }
        }
    }
    while let Some(r) = buyers.join_next().await {
        r?;
    }
    println!("\nSale over at {:.1} s.\n", start.elapsed().as_secs_f64());

    // Let the platform settle: holds expire, reconciliation and the relay catch up.
    let db = Db::connect(
        Some(&server.env.iter().find(|(k, _)| k == "DATABASE_URL").expect("set").1),
        &std::env::temp_dir(),
        2,
    )
    .await?;
    let settle = Instant::now();
    let deadline = settle + Duration::from_secs(args.hold_secs + 120);
    let violations = loop {
        let violations = ticketgw::invariants::check(&db, true).await?;
        let outbox: i64 = tg_platform::with_db!(&db, pool => sqlx::query_scalar("SELECT COUNT(*) FROM messaging_outbox").fetch_one(pool).await)?;
        let open_holds: i64 = tg_platform::with_db!(&db, pool => sqlx::query_scalar(
            "SELECT COUNT(*) FROM payments_payments WHERE status = 'pending'").fetch_one(pool).await)?;
        if (violations.is_empty() && outbox == 0 && open_holds == 0) || Instant::now() > deadline {
            break violations;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    println!("Settled in {:.1} s.\n", settle.elapsed().as_secs_f64());

    // The API's side: every 201 exists for its buyer; every press of "Pay" ended in tickets, a
    // refund, or no money taken.
    let tally = std::mem::take(&mut *tally.lock().unwrap());
    let token_of: BTreeMap<usize, String> = tokens.into_iter().collect();
    let mut api_violations = Vec::new();
    // A crash or an outage is answered with 503 and Retry-After, never with 500.
    for (answer, n) in &tally.answers {
        if answer.ends_with(" 500") {
            api_violations.push(format!("{n} answers \"{answer}\""));
        }
    }
    for (booking, b) in &tally.created {
        let res = http.get(format!("{base}/api/v1/bookings/{booking}")).bearer_auth(&token_of[b]).send().await?;
        if res.status() != StatusCode::OK {
            api_violations.push(format!("201 booking {booking} answers {}", res.status()));
        }
    }
    let mut paid_confirmed = 0;
    let mut paid_refunded = 0;
    let mut not_charged = 0;
    for (booking, b) in &tally.pressed_pay {
        let token = &token_of[b];
        let status: Value =
            http.get(format!("{base}/api/v1/bookings/{booking}")).bearer_auth(token).send().await?.json().await?;
        let payments: Value = http
            .get(format!("{base}/api/v1/payments?booking_id={booking}"))
            .bearer_auth(token)
            .send()
            .await?
            .json()
            .await?;
        let items = payments["items"].as_array().cloned().unwrap_or_default();
        let taken =
            items.iter().any(|p| matches!(p["status"].as_str(), Some("succeeded" | "partially_refunded" | "refunded")));
        let refunded = items.iter().any(|p| p["status"] == "refunded" && p["refunded_amount"] == p["amount"]);
        match (status["status"].as_str(), taken, refunded) {
            (Some("confirmed"), true, false) => paid_confirmed += 1,
            (_, true, true) => paid_refunded += 1,
            (_, false, _) => not_charged += 1,
            (other, ..) => {
                api_violations.push(format!("booking {booking} is {other:?}: charged, no tickets, no refund"))
            }
        }
    }
    let dead_letters = tg_messaging::dead_letters::list(&db, None, 20).await?;
    let sold: i64 = tg_platform::with_db!(&db, pool => sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(sold), 0) AS BIGINT) FROM bookings_inventory").fetch_one(pool).await)?;
    db.close().await;
    println!("| buyers | holds (201) | pressed Pay | confirmed | refunded | not charged | seats sold | dead letters | violations |");
    println!("|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    let total = violations.len() + api_violations.len() + dead_letters.len();
    println!(
        "| {} | {} | {} | {paid_confirmed} | {paid_refunded} | {not_charged} | {sold} of {} | {} | {total} |\n",
        args.buyers,
        tally.created.len(),
        tally.pressed_pay.len(),
        args.seats,
        dead_letters.len()
    );
    println!(
        "Answers seen by buyers: {}\n",
        tally.answers.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", ")
    );
    for d in &dead_letters {
        println!("DEAD LETTER: {} of {} ({}): {}", d.routing_key, d.consumer, d.id, d.error);
    }
    for v in violations.iter().chain(&api_violations) {
        println!("VIOLATION: {v}");
    }
    println!("{}", if total == 0 { "Zero violations." } else { "VIOLATIONS FOUND." });
    Ok(total == 0)
}
