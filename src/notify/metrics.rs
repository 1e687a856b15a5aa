//! `linkwatch_notifications_total{channel,result}`,
//! `linkwatch_notify_queue{channel}`, `linkwatch_notify_oldest_seconds{channel}`
//! and `linkwatch_notify_paused{channel}`, registered on the exporter's
//! registry by the notifier itself.

use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec, Opts, Registry};

/// Results counted per channel.
pub const RESULTS: &[&str] = &["sent", "failed", "rejected", "folded"];

#[derive(Clone)]
pub struct NotifyMetrics {
    total: IntCounterVec,
    queue: IntGaugeVec,
    oldest: GaugeVec,
    paused: IntGaugeVec,
}

impl NotifyMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let total = IntCounterVec::new(
            Opts::new(
                "linkwatch_notifications_total",
                "Notification attempts per channel and result (sent, failed: retried, rejected: channel paused, folded: into a summary).",
            ),
            &["channel", "result"],
        )?;
        let queue = IntGaugeVec::new(
            Opts::new(
                "linkwatch_notify_queue",
                "Notifications in the channel's outbox not yet delivered (queued and held back by the rate limit).",
            ),
            &["channel"],
        )?;
        let oldest = GaugeVec::new(
            Opts::new(
                "linkwatch_notify_oldest_seconds",
                "Age of the oldest undelivered notification of the channel (0 when none).",
            ),
            &["channel"],
        )?;
        let paused = IntGaugeVec::new(
            Opts::new(
                "linkwatch_notify_paused",
                "1 while the channel is paused after a rejection (until reload).",
            ),
            &["channel"],
        )?;
        registry.register(Box::new(total.clone()))?;
        registry.register(Box::new(queue.clone()))?;
        registry.register(Box::new(oldest.clone()))?;
        registry.register(Box::new(paused.clone()))?;
        Ok(Self {
            total,
            queue,
            oldest,
            paused,
        })
    }

    /// Unregistered metrics (for `notify test` and tests).
    pub fn detached() -> Self {
        Self::register(&Registry::new()).unwrap_or_else(|_| unreachable!("a fresh registry"))
    }

    /// Creates every series of `channel` at 0.
    pub fn channel(&self, channel: &str) {
        for r in RESULTS {
            self.total.with_label_values(&[channel, r]);
        }
        self.queue.with_label_values(&[channel]).set(0);
        self.oldest.with_label_values(&[channel]).set(0.0);
        self.paused.with_label_values(&[channel]).set(0);
    }

    pub fn count(&self, channel: &str, result: &str, n: u64) {
        self.total.with_label_values(&[channel, result]).inc_by(n);
    }

    pub fn set_queue(&self, channel: &str, queued: usize, oldest_seconds: f64) {
        self.queue
            .with_label_values(&[channel])
            .set(i64::try_from(queued).unwrap_or(i64::MAX));
        self.oldest
            .with_label_values(&[channel])
            .set(oldest_seconds);
    }

    pub fn set_paused(&self, channel: &str, paused: bool) {
        self.paused
            .with_label_values(&[channel])
            .set(i64::from(paused));
    }
}
