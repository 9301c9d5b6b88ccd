//! `tg-bench`: benchmarks of Ticket Gateway over real HTTP against the real application.
//!
//! `tg-bench flash-sale` runs a flash sale against one hot ticket type (see `flash.rs`).
//! `tg-bench accounts` registers and logs in against a running server (see `accounts.rs`).
//! `tg-bench catalog` measures the event catalog: for each size N it creates a PostgreSQL database, builds
//! the application on 127.0.0.1 (`ticketgw::app::build`, as the integration tests do), seeds N published
//! public events through the events store, and hammers `GET /api/v1/events` with each query kind in turn,
//! then with all of them mixed. It prints a Markdown table per size and a table of p99 growth across sizes.

mod accounts;
mod chaos;
mod flash;
mod load;
mod queries;
mod scratch_db;
mod seed;

use std::{
    net::SocketAddr,
    process::ExitCode,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use rand::Rng;
use reqwest::{Client, Url};
use sqlx::{Connection, PgConnection, Row};
use tg_events::store::Store;
use ticketgw::config::Settings;
use tokio::net::TcpListener;

use crate::{load::Outcome, queries::Kind, seed::Generator};

#[derive(Parser)]
#[command(name = "tg-bench", about = "Benchmarks of Ticket Gateway over real HTTP")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Listing and search throughput and latency with N events in PostgreSQL, for each N.
    Catalog(CatalogArgs),
    /// A flash sale: many buyers with real tokens holding tickets of one hot ticket type.
    FlashSale(flash::FlashArgs),
    /// An operator's worst day, bounded: a sale with kill -9s, a database refusal and a broker outage,
    /// then every invariant checked.
    Chaos(chaos::ChaosArgs),
    /// Registrations and logins (argon2 hashing) against a running server, with its memory before and after.
    Accounts(accounts::AccountsArgs),
}

#[derive(Parser, Clone)]
struct CatalogArgs {
    /// PostgreSQL server to use (its database is used only to create and drop `tg_bench_*` databases).
    #[arg(long, env = "BENCH_DATABASE_URL", hide_env_values = true)]
    database_url: String,
    /// Numbers of events, one fresh database each.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000")]
    sizes: Vec<usize>,
    /// Measured seconds per query kind (and again for the mix).
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Unmeasured seconds before each query kind (connections, prepared statements, caches).
    #[arg(long, default_value_t = 1.0)]
    warmup_seconds: f64,
    /// Concurrent client tasks, each with one request in flight; with several (`1,32`), every query kind is
    /// measured with each. One client shows the latency of a lone request, more show throughput and queueing.
    #[arg(long, value_delimiter = ',', default_value = "1,32")]
    concurrency: Vec<usize>,
    /// Upper bound on requests per query kind.
    #[arg(long, default_value_t = 2_000_000)]
    max_requests: u64,
    /// The application's database pool size.
    #[arg(long, default_value_t = 32)]
    pool: u32,
    /// Concurrent inserts while seeding.
    #[arg(long, default_value_t = 16)]
    seed_parallel: usize,
    /// Seed of the generated catalog (same seed, same events).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Keep the databases (their names are printed) instead of dropping them.
    #[arg(long)]
    keep: bool,
    /// When to print `EXPLAIN (ANALYZE, BUFFERS)` of a query kind's SQL: when its p99 is over --slow-ms,
    /// always, or never.
    #[arg(long, value_enum, default_value_t = Explain::Slow)]
    explain: Explain,
    /// p99 above which a query kind counts as slow (the target for search is 20 ms at 100,000 events).
    #[arg(long, default_value_t = 20.0)]
    slow_ms: f64,
    /// Execution time of a query kind's SQL alone above which its plans are printed.
    #[arg(long, default_value_t = 5.0)]
    slow_sql_ms: f64,
}

#[derive(ValueEnum, Clone, Copy, PartialEq, Eq)]
enum Explain {
    Slow,
    Always,
    Never,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}

/// The results of one size.
struct SizeResult {
    n: usize,
    runs: Vec<Run>,
}

/// One pass over every query kind with `concurrency` clients: (query, is a search, outcome).
struct Run {
    concurrency: usize,
    rows: Vec<(String, bool, Outcome)>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let res = match Cli::parse().command {
        Command::Catalog(args) => catalog(args).await,
        Command::FlashSale(args) => flash::flash_sale(args).await,
        Command::Accounts(args) => accounts::accounts(args).await,
        Command::Chaos(args) => chaos::chaos(args).await,
    };
    match res {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("some requests failed (see above)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Run every size; true when no request failed.
async fn catalog(args: CatalogArgs) -> anyhow::Result<bool> {
    anyhow::ensure!(!args.sizes.is_empty(), "--sizes is empty");
    anyhow::ensure!(args.seconds > 0.0, "--seconds must be positive");
    anyhow::ensure!(
        !args.concurrency.is_empty() && args.concurrency.iter().all(|&c| c > 0),
        "--concurrency must be positive numbers"
    );
    let admin_url = Url::parse(&args.database_url).context("--database-url is not a URL")?;
    anyhow::ensure!(matches!(admin_url.scheme(), "postgres" | "postgresql"), "--database-url must be postgres://…");
    println!("# Catalog benchmark\n");
    println!(
        "{} s per query kind after {} s warm-up, with {} concurrent clients; pool of {} connections, {} CPUs; \
         client, application and PostgreSQL share this machine.\n",
        args.seconds,
        args.warmup_seconds,
        args.concurrency.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(" and "),
        args.pool,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    let mut results = Vec::new();
    let mut ok = true;
    for &n in &args.sizes {
        let name = format!("tg_bench_{n}_{:08x}", rand::thread_rng().gen::<u32>());
        let mut admin = PgConnection::connect(admin_url.as_str()).await.context("connecting to --database-url")?;
        sqlx::raw_sql(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.context("CREATE DATABASE")?;
        // Seeding commits 100,000 small transactions: do not wait for each WAL flush (reads are unaffected).
        sqlx::raw_sql(&format!("ALTER DATABASE {name} SET synchronous_commit = off")).execute(&mut admin).await?;
        let mut url = admin_url.clone();
        url.set_path(&format!("/{name}"));
        let data_dir = std::env::temp_dir().join(&name);
        let res = run_size(&args, n, url.as_str(), &data_dir).await;
        let _ = std::fs::remove_dir_all(&data_dir);
        if args.keep {
            eprintln!("kept database {name}");
        } else if let Err(e) =
            sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin).await
        {
            eprintln!("could not drop database {name}: {e}");
        }
        let res = res.with_context(|| format!("size {n}"))?;
        ok &= res.runs.iter().flat_map(|r| &r.rows).all(|(_, _, o)| o.errors == 0);
        results.push(res);
    }
    print_growth(&results, args.slow_ms);
    Ok(ok)
}

async fn run_size(
    args: &CatalogArgs,
    n: usize,
    db_url: &str,
    data_dir: &std::path::Path,
) -> anyhow::Result<SizeResult> {
    println!("## {n} events\n");
    let settings = Settings {
        database_url: Some(db_url.to_owned()),
        database_max_connections: Some(args.pool),
        data_dir: Some(data_dir.to_owned()),
        ..Default::default()
    };
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr: SocketAddr = listener.local_addr()?;
    let app = ticketgw::app::build(&settings, addr).await.context("building the application")?;
    let service = app.router.clone().into_make_service_with_connect_info::<SocketAddr>();
    let server = tokio::spawn(async move { axum::serve(listener, service).await });
    let res = measure_size(args, n, db_url, addr, Store { db: app.db.clone() }).await;
    server.abort();
    drop(app);
    res
}

async fn measure_size(
    args: &CatalogArgs,
    n: usize,
    db_url: &str,
    addr: SocketAddr,
    store: Store,
) -> anyhow::Result<SizeResult> {
    let now = now_ms();
    let gen = Arc::new(Generator::new(now, args.seed)?);
    eprintln!("seeding {n} events into {}…", db_url.rsplit('/').next().unwrap_or_default());
    let took = seed::seed(store, db_url, gen, n, args.seed_parallel).await?;
    println!("Seeded {n} events in {:.1} s ({:.0} events/s).", took.as_secs_f64(), n as f64 / took.as_secs_f64());
    let mut db = PgConnection::connect(db_url).await?;
    let t0 = std::time::Instant::now();
    // ANALYZE for the planner's statistics; VACUUM sets the visibility map and hint bits, as autovacuum would.
    for table in ["events_events", "events_tags"] {
        sqlx::raw_sql(&format!("VACUUM (ANALYZE) {table}")).execute(&mut db).await?;
    }
    let sizes = sqlx::query(
        "SELECT pg_size_pretty(pg_table_size('events_events')), pg_size_pretty(pg_indexes_size('events_events'))",
    )
    .fetch_one(&mut db)
    .await?;
    println!(
        "VACUUM ANALYZE in {:.1} s; events_events: {} of table, {} of indexes.\n",
        t0.elapsed().as_secs_f64(),
        sizes.get::<String, _>(0),
        sizes.get::<String, _>(1)
    );

    println!("Load average before measuring: {}.\n", load_average());
    let client = Client::builder().no_proxy().timeout(Duration::from_secs(30)).build()?;
    let base = Url::parse(&format!("http://{addr}/api/v1/events"))?;
    let first: serde_json::Value =
        client.get(with_params(&base, &[("limit", "20".into())])).send().await?.error_for_status()?.json().await?;
    let cursor = first["next_cursor"].as_str().unwrap_or_default().to_owned();
    let kinds = queries::kinds(now_ms(), &cursor);

    let seconds = Duration::from_secs_f64(args.seconds);
    let warmup = Duration::from_secs_f64(args.warmup_seconds);
    let mut runs = Vec::new();
    for &c in &args.concurrency {
        let mut rows = Vec::new();
        let mut jobs: Vec<(String, bool, Vec<Url>)> =
            kinds.iter().map(|k| (k.name.to_owned(), k.search, vec![with_params(&base, &k.params)])).collect();
        jobs.push(("mix of all above".into(), false, jobs.iter().flat_map(|(_, _, u)| u.clone()).collect()));
        for (name, search, urls) in jobs {
            eprintln!("  {c} clients: {name} …");
            if !warmup.is_zero() {
                load::run(&client, &urls, c, warmup, args.max_requests).await;
            }
            let out = load::run(&client, &urls, c, seconds, args.max_requests).await;
            rows.push((name, search, out));
        }
        runs.push(Run { concurrency: c, rows });
    }

    // The database's side, after the load (caches as warm as the application had them).
    let mut sql = Vec::new();
    for kind in &kinds {
        sql.push(sql_profile(&mut db, kind).await?);
    }

    println!("### Database: the SQL of each query kind, alone\n");
    println!("Execution time of the equivalent prepared statement (EXPLAIN ANALYZE, best of 3) with the plan for");
    println!("the actual values (custom) and the parameter-independent plan PostgreSQL may switch to after five");
    println!("executions on a connection (generic).\n");
    println!("| query | matching events | custom plan ms | generic plan ms | custom plan scans | generic plan scans |");
    println!("|---|--:|--:|--:|---|---|");
    for (kind, p) in kinds.iter().zip(&sql) {
        println!(
            "| {} | {} | {:.2} | {:.2} | {} | {} |",
            kind.name, p.matches, p.custom_ms, p.generic_ms, p.custom_scans, p.generic_scans
        );
    }
    println!();
    for run in &runs {
        println!("### HTTP, {} concurrent clients\n", run.concurrency);
        println!("| query | requests | req/s | p50 ms | p90 ms | p99 ms | max ms | errors |");
        println!("|---|--:|--:|--:|--:|--:|--:|--:|");
        for (name, _, o) in &run.rows {
            println!(
                "| {name} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
                o.requests,
                o.per_second(),
                o.ms(0.5),
                o.ms(0.9),
                o.ms(0.99),
                o.max_ms(),
                o.errors
            );
        }
        println!();
        for (name, _, o) in &run.rows {
            for f in &o.failures {
                println!("- failure in {name}: {f}");
            }
        }
    }

    // Slow: over the p99 target even with the fewest clients, or slow in the database alone.
    let fewest = runs.iter().min_by_key(|r| r.concurrency);
    for (i, (kind, p)) in kinds.iter().zip(&sql).enumerate() {
        let p99 = fewest.and_then(|r| r.rows.get(i)).map(|(_, _, o)| o.ms(0.99)).unwrap_or_default();
        let db_ms = p.custom_ms.max(p.generic_ms);
        let why = if p99 > args.slow_ms {
            Some(format!("p99 {p99:.2} ms > {} ms with {} clients", args.slow_ms, fewest.map_or(0, |r| r.concurrency)))
        } else if db_ms > args.slow_sql_ms {
            Some(format!("SQL {db_ms:.2} ms > {} ms", args.slow_sql_ms))
        } else {
            (args.explain == Explain::Always).then(|| "requested".to_owned())
        };
        if let Some(why) = why.filter(|_| args.explain != Explain::Never) {
            println!("### EXPLAIN: {} ({why})\n", kind.name);
            println!("```sql\n{}\n-- {}\n```\n", p.sql, p.values);
            for (mode, plan) in [("custom plan", &p.custom_plan), ("generic plan", &p.generic_plan)] {
                println!("{mode}:\n\n```\n{plan}\n```\n");
            }
        }
    }
    Ok(SizeResult { n, runs })
}

/// `/proc/loadavg`'s first three numbers, where there is one: other work on the machine skews the figures.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn with_params(base: &Url, params: &[(&str, String)]) -> Url {
    let mut url = base.clone();
    url.query_pairs_mut().extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())));
    url
}

fn bind_all<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    args: &'q [queries::Arg],
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    for a in args {
        q = match a {
            queries::Arg::Int(v) => q.bind(*v),
            queries::Arg::Float(v) => q.bind(*v),
            queries::Arg::Text(v) => q.bind(v.as_str()),
        };
    }
    q
}

/// How many events the query kind's filter matches.
async fn count(db: &mut PgConnection, sql: &queries::Sql) -> anyhow::Result<i64> {
    let text = format!("SELECT COUNT(*) FROM events_events WHERE {}", sql.filter);
    let row = bind_all(sqlx::query(&text), &sql.args[..sql.filter_args]).fetch_one(&mut *db).await?;
    Ok(row.get(0))
}

/// A query kind's SQL on its own: match count, execution times and plans.
struct SqlProfile {
    sql: String,
    values: String,
    matches: i64,
    custom_ms: f64,
    generic_ms: f64,
    custom_plan: String,
    generic_plan: String,
    custom_scans: String,
    generic_scans: String,
}

/// Run `EXPLAIN (ANALYZE, BUFFERS)` of the kind's SQL as a prepared statement (the application runs it as
/// one), with the plan for the actual values (custom) and the one PostgreSQL may switch to after five
/// executions on a connection (generic); each three times, keeping the fastest.
async fn sql_profile(db: &mut PgConnection, kind: &Kind) -> anyhow::Result<SqlProfile> {
    let sql = queries::equivalent_sql(&kind.params, now_ms())?;
    let matches = count(db, &sql).await?;
    let types: Vec<&str> = sql.args.iter().map(queries::sql_type).collect();
    let values: Vec<String> = sql.args.iter().map(queries::literal).collect();
    sqlx::raw_sql(&format!("PREPARE bench_q({}) AS {}", types.join(", "), sql.full)).execute(&mut *db).await?;
    let mut plans = Vec::new();
    for mode in ["force_custom_plan", "force_generic_plan"] {
        sqlx::raw_sql(&format!("SET plan_cache_mode = {mode}")).execute(&mut *db).await?;
        let mut best: Option<(f64, String)> = None;
        for _ in 0..3 {
            let rows = sqlx::raw_sql(&format!("EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_q({})", values.join(", ")))
                .fetch_all(&mut *db)
                .await?;
            let lines: Vec<String> = rows.iter().map(|r| r.get::<String, _>(0)).collect();
            let ms = lines
                .iter()
                .find_map(|l| l.strip_prefix("Execution Time: ")?.strip_suffix(" ms")?.parse::<f64>().ok())
                .unwrap_or(f64::NAN);
            if best.as_ref().is_none_or(|(b, _)| ms < *b) {
                best = Some((ms, lines.join("\n")));
            }
        }
        plans.push(best.unwrap_or_default());
    }
    sqlx::raw_sql("RESET plan_cache_mode; DEALLOCATE bench_q").execute(&mut *db).await?;
    let [(custom_ms, custom_plan), (generic_ms, generic_plan)]: [(f64, String); 2] =
        plans.try_into().map_err(|_| anyhow::anyhow!("two plans"))?;
    Ok(SqlProfile {
        sql: sql.full,
        values: values.join(", "),
        matches,
        custom_ms,
        generic_ms,
        custom_scans: scans(&custom_plan),
        generic_scans: scans(&generic_plan),
        custom_plan,
        generic_plan,
    })
}

/// The scan nodes of a plan, e.g. `Bitmap Index Scan on events_search_trgm`.
fn scans(plan: &str) -> String {
    let nodes: Vec<&str> = plan
        .lines()
        .map(|l| l.trim_start().trim_start_matches("->").trim())
        .filter(|l| l.contains(" Scan") && !l.starts_with("Planning") && !l.starts_with("Heap"))
        .map(|l| l.split("  (").next().unwrap_or(l))
        .collect();
    nodes.join(" + ")
}

fn print_growth(results: &[SizeResult], slow_ms: f64) {
    let Some(first) = results.first() else { return };
    println!("## p99 latency (ms) by number of events\n");
    let mut head = Vec::new();
    for r in results {
        for run in &r.runs {
            head.push(format!("{} events, {} clients", r.n, run.concurrency));
        }
    }
    println!("| query | {} |", head.join(" | "));
    println!("|---|{}", "--:|".repeat(head.len()));
    let Some(names) = first.runs.first().map(|r| &r.rows) else { return };
    for (i, (name, search, _)) in names.iter().enumerate() {
        let cells: Vec<String> = results
            .iter()
            .flat_map(|r| &r.runs)
            .map(|run| run.rows.get(i).map(|(_, _, o)| format!("{:.2}", o.ms(0.99))).unwrap_or_default())
            .collect();
        let name = if *search { format!("**{name}**") } else { name.clone() };
        println!("| {name} | {} |", cells.join(" | "));
    }
    println!("\nTarget: a search (bold) answered in under {slow_ms} ms p99 at 100,000 events.");
    let last = results.last().expect("one size at least");
    for run in &last.runs {
        let worst = run.rows.iter().filter(|(_, s, _)| *s).map(|(_, _, o)| o.ms(0.99)).fold(0.0, f64::max);
        println!(
            "- {} events, {} clients: worst search p99 {worst:.2} ms ({}).",
            last.n,
            run.concurrency,
            if worst < slow_ms { "met" } else { "not met" }
        );
    }
}
