//! The hash chain's primitives, shared by the journal and the events that
//! name a position in it.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// `prev` of the first line.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Hex SHA-256 of one line's bytes (without the newline).
pub fn line_hash(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// A position in the chain: the last line written (its `seq` and hash). The
/// heartbeat and the next `daemon_start` carry it, so that lines removed from
/// the end of the journal are noticed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    pub seq: u64,
    pub hash: String,
}

impl ChainHead {
    /// The first 16 hex digits of the hash, as the metrics export it.
    pub fn hash_prefix(&self) -> &str {
        self.hash.get(..16).unwrap_or(&self.hash)
    }
}
