//! The witness sender: this site's journal head, given to every peer that
//! has a `url`, every `[daemon] witness_every` and at each outage or
//! slow-period edge (its start, resumption or end). The peer journals it
//! (`witness`) and answers with a receipt, its own head; this side journals
//! that (`witnessed`). A rewritten journal then disagrees with what a peer
//! holds (`linkwatch outages --verify --peer`).
//!
//! Only the latest head is ever pending: it commits to every line before
//! it. While a peer cannot be reached the sender retries with a doubling
//! wait (1 s up to [`MAX_RETRY`]) and sends whatever the head is then; an
//! edge (an outage's end: the link is probably back) tries at once.

use std::time::Duration;

use jiff::Timestamp;

use super::client::PeerClient;
use crate::config::Config;
use crate::journal::{ChainHead, Entry, Receipt, Witnessed};
use crate::peer::wire::{ENDPOINT_WITNESS, PATH_WITNESS, WitnessRequest};

/// Longest wait between two tries to an unreachable peer.
pub const MAX_RETRY: Duration = Duration::from_secs(60);
/// The witness endpoint's label in `linkwatch_peer_calls_total`.
pub const ENDPOINT: &str = ENDPOINT_WITNESS;

/// A position in this site's chain, as read from the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub seq: u64,
    pub hash: String,
    /// The head line's own time.
    pub at: Timestamp,
}

/// Whether a journal line is an edge a witness is sent at.
pub fn is_edge(entry: &Entry) -> bool {
    matches!(
        entry,
        Entry::OutageStart(_)
            | Entry::OutageResume(_)
            | Entry::OutageEnd(_)
            | Entry::DegradedStart(_)
            | Entry::DegradedResume(_)
            | Entry::DegradedEnd(_)
    )
}

/// A receipt worth journaling: a peer's chain position (a `seq` and a
/// 64-digit hex hash) and a site name.
pub fn receipt_ok(r: &Receipt) -> Result<(), &'static str> {
    if r.hash.len() != 64 || !r.hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("the receipt's hash is not 64 hex digits");
    }
    if r.site.is_empty() || r.site.len() > 256 {
        return Err("the receipt names no site (or one longer than 256 bytes)");
    }
    Ok(())
}

/// One witness call: `head` sent to the peer as this `site`'s; the
/// `witnessed` record of its receipt. `Err`: the call's result label and
/// why (for the log).
pub async fn send(
    client: &PeerClient,
    site: &str,
    head: &Head,
) -> Result<Witnessed, (&'static str, String)> {
    let req = WitnessRequest {
        site: site.to_owned(),
        seq: head.seq,
        hash: head.hash.clone(),
        at: head.at,
    };
    let receipt: Receipt = client
        .post(ENDPOINT, PATH_WITNESS, &req)
        .await
        .map_err(|e| (e.result(), e.to_string()))?;
    if let Err(why) = receipt_ok(&receipt) {
        client.count(ENDPOINT, "bad_answer");
        return Err(("bad_answer", format!("{}: {why}", client.shown())));
    }
    client.count(ENDPOINT, "ok");
    tracing::debug!(
        peer = client.name(),
        seq = head.seq,
        their_seq = receipt.seq,
        "head witnessed"
    );
    Ok(Witnessed {
        peer: client.name().to_owned(),
        head: ChainHead {
            seq: head.seq,
            hash: head.hash.clone(),
        },
        at: head.at,
        receipt,
    })
}

/// `[daemon] site`, else `linkwatch` (as notifications name it): this
/// site's name as its peers know it.
pub fn site_of(config: &Config) -> String {
    config
        .daemon
        .site
        .clone()
        .unwrap_or_else(|| "linkwatch".into())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn receipts_must_name_a_chain_position() {
        let good = Receipt {
            site: "vps".into(),
            seq: 4,
            hash: "ab".repeat(32),
        };
        assert!(receipt_ok(&good).is_ok());
        let short = Receipt {
            hash: "abc".into(),
            ..good.clone()
        };
        assert!(receipt_ok(&short).is_err());
        let not_hex = Receipt {
            hash: "zz".repeat(32),
            ..good.clone()
        };
        assert!(receipt_ok(&not_hex).is_err());
        let no_site = Receipt {
            site: String::new(),
            ..good
        };
        assert!(receipt_ok(&no_site).is_err());
    }
}
