//! `linkwatch outages --verify --peer NAME`: the journal held against what a
//! peer witnessed of it.
//!
//! The hash chain alone shows that a journal is consistent, not that it is
//! the one that was written: whoever holds the file can recompute the chain
//! from scratch. A peer keeps the heads this site sent it (`witness` lines
//! in its own journal); each witnessed `(seq, hash)` must still be a line of
//! the local chain. A rewritten line changes the hash of every line after
//! it, so the first witnessed seq at or after the rewrite no longer matches;
//! a truncated journal no longer has the witnessed seq at all. Either fails,
//! naming that seq.

use std::collections::BTreeMap;
use std::path::Path;

use jiff::Timestamp;

use super::client::{Calls, PeerClient};
use crate::config::Config;
use crate::peer::wire::{ENDPOINT_WITNESSES, PATH_WITNESSES, WitnessRecord};

/// The first witnessed head that is not on the local chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub seq: u64,
    /// The hash the peer holds.
    pub witnessed: String,
    /// The local line's hash; `None`: no line with that seq.
    pub local: Option<String>,
    pub received: Timestamp,
}

/// The outcome of checking a peer's witnesses against the local chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessCheck {
    pub peer: String,
    pub site: String,
    /// Witnessed heads checked.
    pub checked: usize,
    /// The lowest and highest witnessed seq, with when the peer received them.
    pub first: Option<(u64, Timestamp)>,
    pub last: Option<(u64, Timestamp)>,
    /// The last seq of the local chain.
    pub local_last: Option<u64>,
    pub mismatch: Option<Mismatch>,
}

impl WitnessCheck {
    /// Every witnessed head is on the local chain, and there was one at least.
    pub fn ok(&self) -> bool {
        self.mismatch.is_none() && self.checked > 0
    }

    pub fn render(&self) -> String {
        let span = match (&self.first, &self.last) {
            (Some((s0, t0)), Some((s1, t1))) => format!(
                "seq {s0}..{s1}, received {} .. {}",
                crate::journal::ts_ms::format(t0),
                crate::journal::ts_ms::format(t1)
            ),
            _ => String::new(),
        };
        match &self.mismatch {
            None if self.checked == 0 => format!(
                "witnesses NOT checked: {} holds no witnessed head of site {:?}; nothing to hold the journal against\n",
                self.peer, self.site
            ),
            None => format!(
                "witnesses ok: {} heads witnessed by {} are on the local chain ({span})\n",
                self.checked, self.peer
            ),
            Some(m) => {
                let what = match &m.local {
                    Some(local) => format!(
                        "{} holds hash {}, the local line has {local}: the journal was rewritten at or before seq {}",
                        self.peer, m.witnessed, m.seq
                    ),
                    None => format!(
                        "the local journal has no line with that seq (it ends at {}): it was truncated or replaced",
                        self.local_last
                            .map_or_else(|| "no line".to_string(), |s| format!("seq {s}"))
                    ),
                };
                format!(
                    "witnesses NOT ok: witnessed seq {} (received by {} at {}) does not match the local chain: {what}\n  {} heads checked ({span})\n",
                    m.seq,
                    self.peer,
                    crate::journal::ts_ms::format(&m.received),
                    self.checked
                )
            }
        }
    }
}

/// Checks `witnessed` against the local chain (`seq` -> line hash).
pub fn check(
    peer: &str,
    site: &str,
    local: &BTreeMap<u64, String>,
    witnessed: &[WitnessRecord],
) -> WitnessCheck {
    let mut sorted: Vec<&WitnessRecord> = witnessed.iter().collect();
    sorted.sort_by_key(|w| (w.seq, w.received));
    let mismatch = sorted.iter().find_map(|w| match local.get(&w.seq) {
        Some(h) if *h == w.hash => None,
        other => Some(Mismatch {
            seq: w.seq,
            witnessed: w.hash.clone(),
            local: other.cloned(),
            received: w.received,
        }),
    });
    WitnessCheck {
        peer: peer.to_owned(),
        site: site.to_owned(),
        checked: sorted.len(),
        first: sorted.first().map(|w| (w.seq, w.received)),
        last: sorted.last().map(|w| (w.seq, w.received)),
        local_last: local.keys().next_back().copied(),
        mismatch,
    }
}

/// The local chain: every valid line's seq and hash, the lines that
/// fallback files continue it with included.
pub fn local_chain(data_dir: &Path) -> std::io::Result<BTreeMap<u64, String>> {
    let contents = crate::journal::read(data_dir)?;
    let mut chain: BTreeMap<u64, String> = contents
        .lines
        .iter()
        .map(|l| (l.line.seq, l.hash.clone()))
        .collect();
    for raw in &contents.continuation.lines {
        let h = raw.head();
        chain.insert(h.seq, h.hash);
    }
    Ok(chain)
}

/// Asks the peer `name` of `config` for the witnesses it holds of this
/// site (`GET /api/v1/peer/witnesses?site=`), then checks them against the
/// journal in `data_dir`.
pub async fn verify_with_peer(
    config: &Config,
    name: &str,
    data_dir: &Path,
) -> Result<WitnessCheck, String> {
    let Some(spec) = config.peers.iter().find(|p| p.name == name) else {
        let names: Vec<&str> = config.peers.iter().map(|p| p.name.as_str()).collect();
        return Err(format!(
            "no [[peer]] named {name:?} in {}; configured: {}",
            config.source,
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        ));
    };
    let Some(url) = &spec.url else {
        return Err(format!(
            "peer {name:?} has no url: this site cannot call it to fetch its witnesses"
        ));
    };
    let client = PeerClient::new(
        &spec.name,
        url,
        spec.token.clone(),
        spec.ca_file.as_deref(),
        Calls::default(),
    )
    .map_err(|e| e.to_string())?;
    let site = super::witness::site_of(config);
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("site", &site)
        .finish();
    let witnessed: Vec<WitnessRecord> = client
        .get(ENDPOINT_WITNESSES, PATH_WITNESSES, &query)
        .await
        .map_err(|e| format!("cannot fetch the witnesses from peer {name}: {e}"))?;
    let local = local_chain(data_dir)
        .map_err(|e| format!("cannot read the journal in {}: {e}", data_dir.display()))?;
    Ok(check(name, &site, &local, &witnessed))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rec(seq: u64, hash: &str, received: &str) -> WitnessRecord {
        WitnessRecord {
            seq,
            hash: hash.into(),
            at: received.parse().unwrap(),
            received: received.parse().unwrap(),
        }
    }

    fn chain(n: u64, tag: &str) -> BTreeMap<u64, String> {
        (0..n).map(|s| (s, format!("{tag}{s}"))).collect()
    }

    #[test]
    fn intact_rewritten_and_truncated_chains() {
        let held = [
            rec(9, "a9", "2026-12-06T10:10:00Z"),
            rec(3, "a3", "2026-12-06T10:00:00Z"),
            rec(6, "a6", "2026-12-06T10:05:00Z"),
        ];
        let ok = check("abroad", "home", &chain(12, "a"), &held);
        assert!(ok.ok(), "{ok:?}");
        assert_eq!(ok.checked, 3);
        assert_eq!(ok.first.unwrap().0, 3);
        assert_eq!(ok.last.unwrap().0, 9);
        assert!(
            ok.render()
                .starts_with("witnesses ok: 3 heads witnessed by abroad"),
            "{}",
            ok.render()
        );

        // Rewritten from seq 5 on: seq 6 is the first witnessed seq that differs.
        let mut rewritten = chain(12, "a");
        for s in 5..12 {
            rewritten.insert(s, format!("b{s}"));
        }
        let bad = check("abroad", "home", &rewritten, &held);
        assert!(!bad.ok());
        let m = bad.mismatch.clone().unwrap();
        assert_eq!((m.seq, m.local.as_deref()), (6, Some("b6")));
        assert!(
            bad.render().contains("witnessed seq 6 "),
            "{}",
            bad.render()
        );

        // Truncated before seq 9: named as missing.
        let bad = check("abroad", "home", &chain(8, "a"), &held);
        let m = bad.mismatch.clone().unwrap();
        assert_eq!((m.seq, m.local), (9, None));
        assert!(bad.render().contains("ends at seq 7"), "{}", bad.render());

        // Nothing witnessed: not a pass.
        let none = check("abroad", "home", &chain(8, "a"), &[]);
        assert!(!none.ok());
        assert!(none.render().contains("NOT checked"));
    }
}
