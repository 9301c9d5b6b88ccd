//! `tg-bench accounts`: registrations, then logins, over HTTP against an already running server; each
//! hashes or verifies an argon2id password (19 MiB, tens of milliseconds of CPU). With `--server-pid` it
//! also reads the server's resident memory before, right after and after `--idle-secs` of idleness, and
//! its peak, to show whether the hashes' memory is bounded and given back.
//!
//! Registration and login are throttled per client IP, and every request here comes from one address, so
//! the server must be started with the limits raised:
//! `ticketgw serve --register-ip-burst 1000000 --login-ip-burst 1000000`.

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use clap::Parser;
use hdrhistogram::Histogram;
use reqwest::Client;
use serde_json::json;

#[derive(Parser, Clone)]
pub struct AccountsArgs {
    /// The running server, e.g. http://127.0.0.1:8080.
    #[arg(long)]
    pub base_url: String,
    /// Accounts to register (new e-mail addresses each run).
    #[arg(long, default_value_t = 1000)]
    pub registrations: usize,
    /// Logins after the registrations, spread over the new accounts in turn.
    #[arg(long, default_value_t = 1000)]
    pub logins: usize,
    /// Concurrent clients, each with one request in flight.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Process id of the server, to report its resident memory (VmRSS) from /proc.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Seconds to wait idle before the last memory reading (with --server-pid).
    #[arg(long, default_value_t = 20)]
    pub idle_secs: u64,
}

struct Phase {
    elapsed: Duration,
    latency: Histogram<u64>,
    by_status: BTreeMap<String, u64>,
    ok: u64,
}

/// Send `total` requests from `concurrency` tasks; request `i` is `post(i)`, expected to answer `expect`.
async fn phase(
    client: &Client,
    url: &str,
    total: usize,
    concurrency: usize,
    expect: u16,
    body: impl Fn(usize) -> serde_json::Value + Send + Sync + 'static,
) -> Phase {
    let next = Arc::new(AtomicUsize::new(0));
    let body = Arc::new(body);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (client, url, next, body) = (client.clone(), url.to_owned(), next.clone(), body.clone());
        tasks.spawn(async move {
            let mut hist = Histogram::<u64>::new_with_bounds(1, 300_000_000, 3).expect("bounds");
            let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let t0 = Instant::now();
                let key = match client.post(&url).json(&body(i)).send().await {
                    Ok(r) if r.status().as_u16() == expect => {
                        let _ = r.bytes().await;
                        expect.to_string()
                    }
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let v: serde_json::Value = r.json().await.unwrap_or_default();
                        format!("{status} {}", v["code"].as_str().unwrap_or(""))
                    }
                    Err(e) => format!("transport error: {e}"),
                };
                hist.saturating_record(t0.elapsed().as_micros().max(1) as u64);
                *statuses.entry(key).or_default() += 1;
            }
            (hist, statuses)
        });
    }
    let mut latency = Histogram::<u64>::new_with_bounds(1, 300_000_000, 3).expect("bounds");
    let mut by_status = BTreeMap::new();
    while let Some(r) = tasks.join_next().await {
        let (h, s) = r.expect("client task");
        latency.add(&h).expect("same bounds");
        for (k, v) in s {
            *by_status.entry(k).or_default() += v;
        }
    }
    let ok = by_status.get(&expect.to_string()).copied().unwrap_or(0);
    Phase { elapsed: started.elapsed(), latency, by_status, ok }
}

fn row(name: &str, p: &Phase) {
    let ms = |q: f64| p.latency.value_at_quantile(q) as f64 / 1000.0;
    let total: u64 = p.by_status.values().sum();
    println!(
        "| {name} | {total} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
        p.ok,
        total as f64 / p.elapsed.as_secs_f64().max(1e-9),
        ms(0.5),
        ms(0.9),
        ms(0.99),
        p.latency.max() as f64 / 1000.0
    );
}

/// A memory figure of the server in MiB from /proc/PID/status: `VmRSS` (resident now) or `VmHWM` (peak).
fn memory_mib(pid: u32, field: &str) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).context("reading the server's status")?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/PID/status"))?;
    Ok(kb / 1024.0)
}

pub async fn accounts(args: AccountsArgs) -> anyhow::Result<bool> {
    anyhow::ensure!(args.concurrency > 0, "--concurrency must be positive");
    anyhow::ensure!(args.logins == 0 || args.registrations > 0, "--logins needs accounts: --registrations > 0");
    let base = args.base_url.trim_end_matches('/').to_owned();
    let client = Client::builder().no_proxy().timeout(Duration::from_secs(120)).build()?;
    client.get(format!("{base}/healthz")).send().await?.error_for_status().context("the server is not healthy")?;
    let before = args.server_pid.map(|pid| memory_mib(pid, "VmRSS")).transpose()?;

    // Addresses unique to this run, so runs against the same database do not collide.
    let run = format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis());
    let email = move |i: usize| format!("bench-{run}-{i}@example.com");
    let password = "bench password 1234";
    println!("# Accounts\n");
    println!(
        "{} registrations, then {} logins, {} concurrent clients, against {base}; {} CPUs on this machine.\n",
        args.registrations,
        args.logins,
        args.concurrency,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    let reg_email = email.clone();
    let reg = phase(&client, &format!("{base}/api/v1/auth/register"), args.registrations, args.concurrency, 202, {
        move |i| json!({"email": reg_email(i), "password": password, "display_name": format!("Bench {i}")})
    })
    .await;
    let n = args.registrations.max(1);
    let login = phase(
        &client,
        &format!("{base}/api/v1/auth/login"),
        args.logins,
        args.concurrency,
        200,
        move |i| json!({"email": email(i % n), "password": password}),
    )
    .await;
    println!("| phase | requests | succeeded | req/s | p50 ms | p90 ms | p99 ms | max ms |");
    println!("|---|--:|--:|--:|--:|--:|--:|--:|");
    row("register", &reg);
    row("login", &login);
    println!();
    for (name, p) in [("register", &reg), ("login", &login)] {
        let answers: Vec<String> = p.by_status.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        println!("Answers to {name}: {}.", if answers.is_empty() { "none".into() } else { answers.join(", ") });
    }
    if let (Some(pid), Some(before)) = (args.server_pid, before) {
        let (after, peak) = (memory_mib(pid, "VmRSS")?, memory_mib(pid, "VmHWM")?);
        tokio::time::sleep(Duration::from_secs(args.idle_secs)).await;
        let idle = memory_mib(pid, "VmRSS")?;
        println!(
            "\nServer resident memory (VmRSS): {before:.0} MiB before, {after:.0} MiB right after, {idle:.0} MiB \
             after {} s idle; peak (VmHWM) {peak:.0} MiB.",
            args.idle_secs
        );
    }
    Ok(reg.ok == args.registrations as u64 && login.ok == args.logins as u64)
}
