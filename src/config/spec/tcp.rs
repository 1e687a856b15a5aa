//! `kind = "tcp"`: a connection to `host:port`.

use super::super::model::{IpVersion, TcpSpec};
use super::super::walk::{Tbl, Walker};

pub(super) const KEYS: &[&str] = &["host", "port", "ip_version"];

pub(super) fn parse(w: &mut Walker<'_>, t: &Tbl<'_, '_>) -> Option<TcpSpec> {
    let host = super::host(w, t);
    let port = w.integer(t, "port", 1, 65535);
    let port = w.missing(t, "port", port);
    let ip_version = super::ip_version(w, t);
    super::check_family(w, t, super::literal_ip(&host), "host", &ip_version);
    Some(TcpSpec {
        host: host.ok()?.value,
        port: u16::try_from(port.ok()?.value).ok()?,
        ip_version: ip_version.ok()?.map_or(IpVersion::Any, |v| v.value),
    })
}
