//! The journal's metrics that only the writer's queue knows: the unwritten
//! backlog and the chain head, read at scrape time (the writer may be stuck in
//! `fsync` and could not push them).

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Gauge, GaugeVec, IntCounter, IntGauge, Opts, Registry};

use super::queue::JournalHealth;

pub const JOURNAL_BACKLOG_EVENTS: &str = "linkwatch_journal_backlog_events";
pub const JOURNAL_BACKLOG_OLDEST_SECONDS: &str = "linkwatch_journal_backlog_oldest_seconds";
pub const JOURNAL_EVENTS_TOTAL: &str = "linkwatch_journal_events_total";
pub const JOURNAL_HEAD_INFO: &str = "linkwatch_journal_head_info";

/// The journal's backlog and chain head, read from the writer's queue at
/// scrape time (the writer may be stuck in `fsync` and cannot push them).
pub struct JournalCollector {
    health: JournalHealth,
    backlog: IntGauge,
    oldest: Gauge,
    events_total: IntCounter,
    head: GaugeVec,
}

impl JournalCollector {
    /// Registers the collector for `health` in `registry`.
    pub fn register(registry: &Registry, health: JournalHealth) -> Result<(), prometheus::Error> {
        let c = Self {
            health,
            backlog: IntGauge::new(
                JOURNAL_BACKLOG_EVENTS,
                "Journal events queued and not yet written and fsynced",
            )?,
            oldest: Gauge::new(
                JOURNAL_BACKLOG_OLDEST_SECONDS,
                "Age of the oldest unwritten journal event or of the write in progress (0 when none)",
            )?,
            events_total: IntCounter::new(
                JOURNAL_EVENTS_TOTAL,
                "Lines in the journal's hash chain (the head's seq + 1); a witness of its growth",
            )?,
            head: GaugeVec::new(
                Opts::new(
                    JOURNAL_HEAD_INFO,
                    "Always 1; `hash` is the first 16 hex digits of the last journal line's SHA-256",
                ),
                &["hash"],
            )?,
        };
        registry.register(Box::new(c))
    }
}

impl Collector for JournalCollector {
    fn desc(&self) -> Vec<&Desc> {
        [
            self.backlog.desc(),
            self.oldest.desc(),
            self.events_total.desc(),
            self.head.desc(),
        ]
        .concat()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.backlog.set(self.health.backlog() as i64);
        self.oldest
            .set(self.health.oldest().map_or(0.0, |d| d.as_secs_f64()));
        let (head, total) = self.health.head();
        // The chain only grows; a counter fed the difference stays exact.
        self.events_total
            .inc_by(total.saturating_sub(self.events_total.get()));
        self.head.reset();
        if let Some(h) = &head {
            self.head.with_label_values(&[h.hash_prefix()]).set(1.0);
        }
        [
            self.backlog.collect(),
            self.oldest.collect(),
            self.events_total.collect(),
            self.head.collect(),
        ]
        .concat()
    }
}
