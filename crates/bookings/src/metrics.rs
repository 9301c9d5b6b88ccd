//! The bookings service's metric families (see `deploy/monitoring/METRICS.md`).

use std::{
    collections::HashMap,
    sync::{LazyLock, Mutex},
    time::{Duration, Instant},
};

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGaugeVec, Opts};
use tg_platform::metrics::register;

use crate::hold::HoldError;

const SCAN_RESULTS: [&str; 6] = ["valid", "already_checked_in", "cancelled", "forged", "unknown_code", "wrong_event"];

pub(crate) struct BookingMetrics {
    holds: IntCounterVec,
    pub(crate) batch_requests: Histogram,
    pub(crate) batch_seconds: Histogram,
    bookings: IntCounterVec,
    pub(crate) tickets_sold: IntCounter,
    pub(crate) tickets_refunded: IntCounter,
    checkins: IntCounterVec,
    event_tickets: IntGaugeVec,
}

pub(crate) static METRICS: LazyLock<BookingMetrics> = LazyLock::new(|| {
    let m = BookingMetrics {
        holds: register(
            IntCounterVec::new(Opts::new("ticketgw_holds_total", "Hold requests decided, by outcome"), &["outcome"])
                .expect("valid"),
        ),
        batch_requests: register(
            Histogram::with_opts(
                HistogramOpts::new("ticketgw_hold_batch_requests", "Hold requests decided in one transaction")
                    .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0]),
            )
            .expect("valid"),
        ),
        batch_seconds: register(
            Histogram::with_opts(
                HistogramOpts::new("ticketgw_hold_batch_duration_seconds", "Time to decide and store one hold batch")
                    .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]),
            )
            .expect("valid"),
        ),
        bookings: register(
            IntCounterVec::new(
                Opts::new("ticketgw_bookings_total", "Bookings leaving the held state, by outcome"),
                &["outcome"],
            )
            .expect("valid"),
        ),
        tickets_sold: register(
            IntCounter::new("ticketgw_tickets_sold_total", "Tickets in confirmed bookings").expect("valid"),
        ),
        tickets_refunded: register(
            IntCounter::new("ticketgw_tickets_refunded_total", "Tickets cancelled for a refund").expect("valid"),
        ),
        checkins: register(
            IntCounterVec::new(Opts::new("ticketgw_checkins_total", "Door scans by result"), &["result"])
                .expect("valid"),
        ),
        event_tickets: register(
            IntGaugeVec::new(
                Opts::new("ticketgw_event_tickets", "Stock of the events on sale with the latest holds"),
                &["event", "state"],
            )
            .expect("valid"),
        ),
    };
    // Every outcome is a series from the start, so rates and ratios exist before the first one.
    for o in ["held", "replayed", "sold_out", "capacity_exceeded", "limit_exceeded", "key_reused", "error"] {
        m.holds.with_label_values(&[o]);
    }
    for o in ["confirmed", "expired", "cancelled"] {
        m.bookings.with_label_values(&[o]);
    }
    for r in SCAN_RESULTS {
        m.checkins.with_label_values(&[r]);
    }
    m
});

impl BookingMetrics {
    pub(crate) fn hold(&self, outcome: Result<bool, &HoldError>) {
        let label = match outcome {
            Ok(false) => "held",
            Ok(true) => "replayed",
            Err(HoldError::SoldOut(_)) => "sold_out",
            Err(HoldError::CapacityExceeded) => "capacity_exceeded",
            Err(HoldError::LimitExceeded { .. }) => "limit_exceeded",
            Err(HoldError::KeyReused) => "key_reused",
            Err(HoldError::Internal(_)) => "error",
        };
        self.holds.with_label_values(&[label]).inc();
    }

    /// A booking left the held state: `confirmed`, `expired` or `cancelled`.
    pub(crate) fn booking(&self, outcome: &'static str) {
        self.bookings.with_label_values(&[outcome]).inc();
    }

    pub(crate) fn checkin(&self, result: &str) {
        // Label values stay a fixed set: an unknown result would be a new series by mistake.
        if SCAN_RESULTS.contains(&result) {
            self.checkins.with_label_values(&[result]).inc();
        }
    }
}

/// Events on sale that `ticketgw_event_tickets` reports: those with the latest holds here.
#[derive(Default)]
pub(crate) struct OnSale {
    last_hold: Mutex<HashMap<String, Instant>>,
}

/// How many events the stock gauge covers: a bounded label set.
pub(crate) const EVENTS_REPORTED: usize = 20;
/// An event without holds for this long drops out of the gauge.
const QUIET: Duration = Duration::from_secs(3600);

impl OnSale {
    pub(crate) fn saw_hold(&self, event_id: &str) {
        let mut map = self.last_hold.lock().unwrap_or_else(|e| e.into_inner());
        map.insert(event_id.to_owned(), Instant::now());
        if map.len() > EVENTS_REPORTED * 4 {
            Self::keep_latest(&mut map, EVENTS_REPORTED);
        }
    }

    /// The events to report, latest hold first.
    pub(crate) fn events(&self) -> Vec<String> {
        let mut map = self.last_hold.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, at| at.elapsed() < QUIET);
        Self::keep_latest(&mut map, EVENTS_REPORTED);
        let mut events: Vec<(&String, &Instant)> = map.iter().collect();
        events.sort_by(|a, b| b.1.cmp(a.1));
        events.into_iter().map(|(id, _)| id.clone()).collect()
    }

    fn keep_latest(map: &mut HashMap<String, Instant>, n: usize) {
        if map.len() > n {
            let mut times: Vec<Instant> = map.values().copied().collect();
            times.sort_unstable_by(|a, b| b.cmp(a));
            let cutoff = times[n - 1];
            map.retain(|_, at| *at >= cutoff);
        }
    }

    /// Replace the gauge's series with `stock`: (event, capacity, sold, held).
    pub(crate) fn report(&self, stock: &[(String, i64, i64, i64)]) {
        let gauge = &METRICS.event_tickets;
        gauge.reset();
        for (event, capacity, sold, held) in stock {
            gauge.with_label_values(&[event, "sold"]).set(*sold);
            gauge.with_label_values(&[event, "held"]).set(*held);
            gauge.with_label_values(&[event, "available"]).set((capacity - sold - held).max(0));
        }
    }
}
