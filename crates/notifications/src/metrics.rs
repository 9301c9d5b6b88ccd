//! The notifications service's metric families (see `deploy/monitoring/METRICS.md`).

use std::sync::LazyLock;

use prometheus::{IntCounterVec, Opts};
use tg_platform::metrics::register;

const CHANNELS: [&str; 3] = ["email", "telegram", "sms"];

pub(crate) struct NoticeMetrics {
    notices: IntCounterVec,
}

pub(crate) static METRICS: LazyLock<NoticeMetrics> = LazyLock::new(|| {
    let notices = register(
        IntCounterVec::new(
            Opts::new("ticketgw_notices_total", "Notice delivery attempts by channel and result"),
            &["channel", "result"],
        )
        .expect("valid metric"),
    );
    for channel in CHANNELS {
        for result in ["sent", "retried", "failed"] {
            notices.with_label_values(&[channel, result]);
        }
    }
    NoticeMetrics { notices }
});

impl NoticeMetrics {
    /// `status` is the delivery's status after the attempt (`sent`, `pending`, `failed`).
    pub(crate) fn attempt(&self, channel: &str, status: &str) {
        let result = if status == "pending" { "retried" } else { status };
        // Label values stay a fixed set: an unknown channel would be a new series by mistake.
        if CHANNELS.contains(&channel) {
            self.notices.with_label_values(&[channel, result]).inc();
        }
    }
}
