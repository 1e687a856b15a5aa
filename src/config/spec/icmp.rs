//! `kind = "icmp"`: echo requests to `host`.

use super::super::model::{IcmpSpec, IpVersion};
use super::super::walk::{Tbl, Walker};

pub(super) const KEYS: &[&str] = &["host", "ip_version", "payload_size"];

pub(super) fn parse(w: &mut Walker<'_>, t: &Tbl<'_, '_>) -> Option<IcmpSpec> {
    let host = super::host(w, t);
    let ip_version = super::ip_version(w, t);
    let payload_size = w.integer(t, "payload_size", 0, IcmpSpec::MAX_PAYLOAD_SIZE as i64);
    super::check_family(w, t, super::literal_ip(&host), "host", &ip_version);
    Some(IcmpSpec {
        host: host.ok()?.value,
        ip_version: ip_version.ok()?.map_or(IpVersion::Any, |v| v.value),
        payload_size: payload_size
            .ok()?
            .map_or(IcmpSpec::DEFAULT_PAYLOAD_SIZE, |v| v.value as usize),
    })
}
