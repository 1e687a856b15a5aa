//! Period ids (outages and degradations): `<start ms>-<group>[-degraded]`,
//! with `-2`, `-3`, … when that is taken (ids already in the journal, or
//! two periods starting in the same millisecond).

use std::collections::HashSet;

/// The ids taken so far.
#[derive(Debug, Default)]
pub struct Ids(HashSet<String>);

impl Ids {
    /// Marks ids as taken (ids already in the journal).
    pub fn reserve<I: IntoIterator<Item = String>>(&mut self, ids: I) {
        self.0.extend(ids);
    }

    /// Marks one id as taken (a period adopted from a previous run).
    pub fn take(&mut self, id: &str) {
        self.0.insert(id.to_string());
    }

    /// A new id: `base`, or `base-2`, `base-3`, … if taken; marked as taken.
    pub fn mint(&mut self, base: String) -> String {
        let mut id = base.clone();
        let mut n = 2;
        while self.0.contains(&id) {
            id = format!("{base}-{n}");
            n += 1;
        }
        self.0.insert(id.clone());
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taken_ids_get_a_suffix() {
        let mut ids = Ids::default();
        ids.reserve(["5-isp".to_string()]);
        assert_eq!(ids.mint("5-isp".into()), "5-isp-2");
        assert_eq!(ids.mint("5-isp".into()), "5-isp-3");
        ids.take("6-lan");
        assert_eq!(ids.mint("6-lan".into()), "6-lan-2");
        assert_eq!(ids.mint("7-lan".into()), "7-lan");
    }
}
