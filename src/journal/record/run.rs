//! A run's own lines: `daemon_start`, `daemon_stop`, `config_reload` and
//! `journal_reopened`, with the plan and throughput targets they record.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::config::{Config, TargetSpec};
use crate::journal::chain::ChainHead;
use crate::journal::ts_ms;

/// `daemon_start`: a run begins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DaemonStart {
    pub version: String,
    pub config_digest: String,
    pub config_source: String,
    pub pid: u32,
    /// `true`/`false` from the kernel's NTP state; `null` when it could not be read.
    pub clock_synchronized: Option<bool>,
    /// How `clock_synchronized` was determined, or why it is unknown.
    pub clock_check: String,
    /// Last moment the previous run was known alive (heartbeat or last line).
    #[serde(with = "ts_ms::option", default)]
    pub previous_run_alive_until: Option<Timestamp>,
    /// Whether the previous run wrote `daemon_stop` (`null` for the first run).
    #[serde(default)]
    pub previous_run_clean: Option<bool>,
    /// A torn last line left by the previous run, skipped (1-based line number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub torn_line: Option<u64>,
    /// The chain head named by the previous run's last heartbeat: `--verify`
    /// checks that the journal still holds that line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_head: Option<ChainHead>,
    /// `[daemon] site`, when set (absent in older journals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// `[plan]`, when configured (absent in older journals): `linkwatch
    /// report` has no configuration and judges throughput tests against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanRecord>,
    /// The run's `kind = "throughput"` targets, so that the report knows
    /// which tests of the history store are speed tests and which way.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub throughput_targets: Vec<ThroughputTarget>,
}

/// `[plan]` as configured, in bits per second.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct PlanRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_bps: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_bps: Option<f64>,
    /// `[plan]`'s minimum and normal rates (absent in journals of earlier releases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_min_bps: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_min_bps: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_normal_bps: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_normal_bps: Option<f64>,
    /// `[plan.criteria]`'s explicit thresholds; absent: BNetzA's (and in
    /// journals of earlier releases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub criteria: Option<crate::config::CriteriaSet>,
}

impl PlanRecord {
    /// The configuration's `[plan]`, if it has one.
    pub fn of(config: &Config) -> Option<Self> {
        config.plan.map(|p| Self {
            download_bps: p.download_bps,
            upload_bps: p.upload_bps,
            download_min_bps: p.download_min_bps,
            upload_min_bps: p.upload_min_bps,
            download_normal_bps: p.download_normal_bps,
            upload_normal_bps: p.upload_normal_bps,
            criteria: match p.criteria {
                crate::config::Criteria::Bnetza => None,
                crate::config::Criteria::Custom(c) => Some(c),
            },
        })
    }

    /// The promised rate for `direction` (`"download"`/`"upload"`).
    pub fn rate(&self, direction: &str) -> Option<f64> {
        match direction {
            "download" => self.download_bps,
            "upload" => self.upload_bps,
            _ => None,
        }
    }
}

/// One throughput target of a run: its name, group and direction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThroughputTarget {
    pub target: String,
    pub group: String,
    /// `download` or `upload`.
    pub direction: String,
}

impl ThroughputTarget {
    /// The configuration's throughput targets, in config order.
    pub fn of(config: &Config) -> Vec<Self> {
        config
            .targets
            .iter()
            .filter_map(|t| match &t.spec {
                TargetSpec::Throughput(s) => Some(Self {
                    target: t.name.clone(),
                    group: t.group.clone(),
                    direction: s.direction.as_str().to_string(),
                }),
                _ => None,
            })
            .collect()
    }
}

/// `daemon_stop`: a clean stop. Outages and slow periods still open stay
/// open (the next start continues or closes them); a reader with no daemon
/// running ends them, for reading, at the run's last sign of life.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DaemonStop {
    pub open_outages: Vec<String>,
    /// Slow periods (`degraded_*` ids) open at the stop. Absent in older journals.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub open_degradations: Vec<String>,
}

/// `config_reload`: the configuration file was re-read and applied (a file
/// that did not validate changes nothing and writes no line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigReload {
    /// SHA-256 of the new configuration text (as in `daemon_start`).
    pub config_digest: String,
    pub config_source: String,
    /// The digest that was running before.
    pub previous_digest: String,
    /// Target names added, removed, and changed (a changed target restarts as a new one).
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    /// Groups added and removed (an open outage of a removed group ends
    /// with `end_reason: "removed"`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub added_groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed_groups: Vec<String>,
    /// Changed keys that only a restart applies (their running values stay).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restart_only: Vec<String>,
    /// The new `[plan]` and throughput targets, as `daemon_start` records
    /// them: the report judges tests after the reload against these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanRecord>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub throughput_targets: Vec<ThroughputTarget>,
}

/// `journal_reopened`: the journal path no longer named the file being written
/// (renamed, removed or replaced); the path was reopened and the chain goes on
/// in it from the last line written to the previous file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalReopened {
    /// What was found at the path.
    pub reason: String,
    /// Device and inode of the file written until now.
    pub previous_device: u64,
    pub previous_inode: u64,
    /// Bytes in that file when it was left.
    pub previous_bytes: u64,
}
