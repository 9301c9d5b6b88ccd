//! Closed-loop load: a fixed number of client tasks, each sending its next request as soon as the last one
//! has been answered (body read), for a fixed time or a fixed number of requests, whichever comes first.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use reqwest::{Client, Url};

pub struct Outcome {
    pub requests: u64,
    pub errors: u64,
    pub elapsed: Duration,
    /// Latencies in microseconds, failures included.
    pub latency: Histogram<u64>,
    /// The first few failures, for the report.
    pub failures: Vec<String>,
}

impl Outcome {
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
    /// Latency at `q` (0–1) in milliseconds.
    pub fn ms(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }
    pub fn max_ms(&self) -> f64 {
        self.latency.max() as f64 / 1000.0
    }
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 5 minutes, 3 significant digits.
    Histogram::new_with_bounds(1, 300_000_000, 3).expect("valid histogram bounds")
}

/// Send requests to `urls` (round robin across all tasks) from `concurrency` tasks for `duration`,
/// stopping early after `max_requests`.
pub async fn run(client: &Client, urls: &[Url], concurrency: usize, duration: Duration, max_requests: u64) -> Outcome {
    let urls: Arc<Vec<Url>> = Arc::new(urls.to_vec());
    let issued = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (client, urls, issued, failures) = (client.clone(), urls.clone(), issued.clone(), failures.clone());
        tasks.spawn(async move {
            let mut hist = histogram();
            let mut errors = 0u64;
            while Instant::now() < deadline {
                let n = issued.fetch_add(1, Ordering::Relaxed);
                if n >= max_requests {
                    break;
                }
                let url = &urls[(n % urls.len() as u64) as usize];
                let t0 = Instant::now();
                let failure = match client.get(url.clone()).send().await {
                    Ok(res) => {
                        let status = res.status();
                        match res.bytes().await {
                            Ok(_) if status.is_success() => None,
                            Ok(body) => Some(format!("{status} from {url}: {}", String::from_utf8_lossy(&body))),
                            Err(e) => Some(format!("reading the body from {url}: {e}")),
                        }
                    }
                    Err(e) => Some(format!("{url}: {e}")),
                };
                let us = t0.elapsed().as_micros().max(1) as u64;
                hist.saturating_record(us);
                if let Some(f) = failure {
                    errors += 1;
                    let mut list = failures.lock().expect("failure list");
                    if list.len() < 5 {
                        list.push(f);
                    }
                }
            }
            (hist, errors)
        });
    }
    let mut latency = histogram();
    let mut errors = 0;
    while let Some(res) = tasks.join_next().await {
        match res {
            Ok((h, e)) => {
                latency.add(&h).expect("same histogram bounds");
                errors += e;
            }
            Err(e) => {
                errors += 1;
                failures.lock().expect("failure list").push(format!("client task failed: {e}"));
            }
        }
    }
    let elapsed = started.elapsed();
    let failures = std::mem::take(&mut *failures.lock().expect("failure list"));
    Outcome { requests: latency.len(), errors, elapsed, latency, failures }
}
