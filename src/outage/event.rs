//! The log line and the metrics of each journaled outage record (the records
//! themselves live in [`crate::journal::record`]): each `emit` writes the log
//! line and updates the metrics, so a journal record, a log line and a metric
//! cannot disagree.

use super::metrics::OutageMetrics;
use crate::journal::ts_ms;
use crate::journal::{
    ConfigReload, DaemonStart, EndReason, OutageEnded, OutageResumed, OutageStarted, Stalled,
};

impl Stalled {
    pub fn emit(&self, metrics: &OutageMetrics) {
        tracing::warn!(
            from = %ts_ms::format(&self.from),
            to = %ts_ms::format(&self.to),
            cause = self.cause.as_str(),
            seconds = self.seconds,
            "the daemon observed nothing for a while (stall); recorded as a gap"
        );
        metrics
            .stalls_total
            .with_label_values(&[self.cause.as_str()])
            .inc();
        metrics.stalled_seconds_total.inc_by(self.seconds.max(0.0));
    }
}

impl DaemonStart {
    pub fn emit(&self) {
        tracing::info!(
            version = %self.version,
            site = self.site.as_deref().unwrap_or(""),
            config_digest = %self.config_digest,
            clock_synchronized = ?self.clock_synchronized,
            clock_check = %self.clock_check,
            previous_run_alive_until = ?self.previous_run_alive_until.map(|t| ts_ms::format(&t)),
            previous_run_clean = ?self.previous_run_clean,
            "outage journal opened"
        );
    }
}

impl OutageStarted {
    pub fn emit(&self, metrics: &OutageMetrics) {
        tracing::warn!(
            id = %self.id,
            group = %self.group,
            cause = %self.cause,
            start = %ts_ms::format(&self.start),
            start_observed = self.start_observed,
            end = "open",
            duration_seconds = 0.0,
            targets = %self.targets.join(","),
            "outage started"
        );
        let labels = [self.group.as_str(), self.cause.as_str()];
        metrics.outages_total.with_label_values(&labels).inc();
        metrics.outage_active.with_label_values(&labels).set(1.0);
    }
}

impl OutageResumed {
    pub fn emit(&self, metrics: &OutageMetrics) {
        tracing::warn!(
            id = %self.id,
            group = %self.group,
            cause = %self.cause,
            start = %ts_ms::format(&self.start),
            gap_from = %ts_ms::format(&self.gap.from),
            gap_to = %ts_ms::format(&self.gap.to),
            targets = %self.targets.join(","),
            "outage continues after a restart"
        );
        metrics
            .outage_active
            .with_label_values(&[self.group.as_str(), self.cause.as_str()])
            .set(1.0);
    }
}

impl ConfigReload {
    pub fn emit(&self) {
        tracing::info!(
            config_digest = %self.config_digest,
            previous_digest = %self.previous_digest,
            config_source = %self.config_source,
            added = %self.added.join(","),
            removed = %self.removed.join(","),
            changed = %self.changed.join(","),
            added_groups = %self.added_groups.join(","),
            removed_groups = %self.removed_groups.join(","),
            "configuration reloaded"
        );
    }
}

impl OutageEnded {
    pub fn emit(&self, metrics: &OutageMetrics) {
        tracing::info!(
            id = %self.id,
            group = %self.group,
            cause = %self.cause,
            start = %ts_ms::format(&self.start),
            end = %ts_ms::format(&self.end),
            duration_seconds = self.duration_seconds,
            start_observed = self.start_observed,
            end_observed = self.end_observed,
            gaps = self.gaps.len(),
            targets = %self.targets.join(","),
            end_reason = self.end_reason.map_or("recovered", EndReason::as_str),
            "outage ended"
        );
        metrics
            .outage_active
            .with_label_values(&[self.group.as_str(), self.cause.as_str()])
            .set(0.0);
    }
}
