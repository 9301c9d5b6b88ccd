//! The payments service's metric families (see `deploy/monitoring/METRICS.md`).

use std::sync::LazyLock;

use prometheus::{IntCounterVec, Opts};
use tg_platform::metrics::register;

pub(crate) struct PaymentMetrics {
    payments: IntCounterVec,
    webhooks: IntCounterVec,
    refunds: IntCounterVec,
}

pub(crate) static METRICS: LazyLock<PaymentMetrics> = LazyLock::new(|| {
    let family = |name: &str, help: &str, labels: &[&str]| {
        register(IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"))
    };
    PaymentMetrics {
        payments: family(
            "ticketgw_payments_total",
            "Payments reaching a final state, by provider and status",
            &["provider", "status"],
        ),
        webhooks: family(
            "ticketgw_payment_webhooks_total",
            "Webhook calls by provider and result",
            &["provider", "result"],
        ),
        refunds: family("ticketgw_refunds_total", "Refund attempts at a provider, by result", &["provider", "result"]),
    }
});

impl PaymentMetrics {
    /// Series at zero for the providers configured here, so ratios exist before the first payment.
    pub(crate) fn describe(&self, providers: &[&str]) {
        for p in providers {
            for s in ["succeeded", "failed", "abandoned"] {
                self.payments.with_label_values(&[p, s]);
            }
            for r in ["accepted", "rejected"] {
                self.webhooks.with_label_values(&[p, r]);
            }
            for r in ["succeeded", "manual", "retried"] {
                self.refunds.with_label_values(&[p, r]);
            }
        }
    }

    /// `status` is `succeeded`, `failed` or `abandoned`.
    pub(crate) fn payment(&self, provider: &str, status: &str) {
        self.payments.with_label_values(&[provider, status]).inc();
    }

    pub(crate) fn webhook(&self, provider: &str, accepted: bool) {
        self.webhooks.with_label_values(&[provider, if accepted { "accepted" } else { "rejected" }]).inc();
    }

    /// `result` is `succeeded`, `manual` (refused; an operator pays it) or `retried`.
    pub(crate) fn refund(&self, provider: &str, result: &str) {
        self.refunds.with_label_values(&[provider, result]).inc();
    }
}
