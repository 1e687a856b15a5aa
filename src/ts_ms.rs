//! Serde helpers: timestamps as UTC RFC 3339 with exactly three fractional digits
//! (the journal's, the API's and the CLI's one format).

use jiff::{Timestamp, Unit};
use serde::{Deserialize, Deserializer, Serializer};

/// Formats `ts` truncated to milliseconds, e.g. `2026-11-01T10:02:13.000Z`.
pub fn format(ts: &Timestamp) -> String {
    let t = ts
        .round(
            jiff::TimestampRound::new()
                .smallest(Unit::Millisecond)
                .mode(jiff::RoundMode::Trunc),
        )
        .unwrap_or(*ts);
    format!("{t:.3}")
}

pub fn serialize<S: Serializer>(ts: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(ts))
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map_err(serde::de::Error::custom)
}

/// The same for `Option<Timestamp>` (`null` when absent).
pub mod option {
    use jiff::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(ts: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        match ts {
            Some(t) => s.serialize_str(&super::format(t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        s.map(|s| s.parse().map_err(serde::de::Error::custom))
            .transpose()
    }
}
