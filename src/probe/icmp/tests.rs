//! Wire decoding, the RTT's clocks, send errors, setup advice, sequences.
#![allow(clippy::unwrap_used)]

use std::io;
use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use tokio::time::Instant;

use super::family::send_error;
use super::prober::{is_link_local, spaced_starts};
use super::socket::{FIX_SYSCTL, IcmpSetupError, rtt};
use super::wire::{Answer, checksum, classify_icmp, decode, payload, write_echo};
use crate::probe::{Outcome, Reason};

#[test]
fn echo_replies_pass_and_errors_are_described() {
    assert_eq!(classify_icmp(false, 0, 0), Ok(()));
    assert_eq!(classify_icmp(true, 129, 0), Ok(()));
    assert_eq!(classify_icmp(false, 3, 1), Err("host unreachable"));
    assert_eq!(
        classify_icmp(false, 3, 13),
        Err("administratively prohibited")
    );
    assert_eq!(classify_icmp(false, 11, 0), Err("time exceeded"));
    assert_eq!(classify_icmp(true, 1, 3), Err("address unreachable"));
    assert_eq!(classify_icmp(true, 3, 0), Err("time exceeded"));
    // Type numbers differ per family: 0 is no reply in ICMPv6, 129 none in ICMPv4.
    assert!(classify_icmp(true, 0, 0).is_err());
    assert!(classify_icmp(false, 129, 0).is_err());
}

/// A destination unreachable as a raw IPv4 socket delivers it: IP header,
/// ICMP type 3 code 1, then the quoted IP header and echo header.
fn v4_unreachable() -> Vec<u8> {
    let mut p = vec![
        0x45, 0, 0, 56, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, // outer IPv4
        3, 1, 0, 0, 0, 0, 0, 0, // ICMP dest unreachable, host unreachable
        0x45, 0, 0, 28, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 0, 2, 10, 9, 9, 9, // quoted IPv4
        8, 0, 0, 0, 0x12, 0x34, 0x00, 0x07, // quoted echo request ident 0x1234 seq 7
    ];
    p.truncate(56);
    p
}

#[test]
fn raw_v4_unreachable_is_matched_through_the_quoted_request() {
    let from: IpAddr = "10.0.0.1".parse().unwrap();
    let a = decode(&v4_unreachable(), from, true).unwrap();
    assert_eq!(
        a,
        Answer {
            dest: "10.9.9.9".parse().unwrap(),
            ident: 0x1234,
            seq: 7,
            error: Some((3, 1)),
        }
    );
    assert_eq!(classify_icmp(false, 3, 1), Err("host unreachable"));
}

#[test]
fn echo_replies_decode_with_and_without_ip_header() {
    let reply = [0, 0, 0, 0, 0x12, 0x34, 0, 9, 1, 2, 3, 4];
    let from: IpAddr = "127.0.0.5".parse().unwrap();
    let want = Answer {
        dest: from,
        ident: 0x1234,
        seq: 9,
        error: None,
    };
    assert_eq!(decode(&reply, from, false), Some(want));
    let mut with_header = vec![0x45u8; 1];
    with_header.extend([0u8; 19]);
    with_header.extend(reply);
    assert_eq!(decode(&with_header, from, true).map(|a| a.seq), Some(9));
    // Our own request, seen by a raw socket on loopback, is ignored.
    let request = [8, 0, 0, 0, 0x12, 0x34, 0, 9];
    assert_eq!(decode(&request, from, false), None);
    // Truncated packets are ignored, not a panic.
    assert_eq!(decode(&reply[..5], from, false), None);
    assert_eq!(decode(&[], from, false), None);
}

#[test]
fn v6_echo_reply_and_error_decode() {
    let host: IpAddr = "fd00::2".parse().unwrap();
    let reply = [129, 0, 0, 0, 0x12, 0x34, 0, 9, 1, 2, 3, 4];
    assert_eq!(decode(&reply, host, false).unwrap().error, None);
    // Address unreachable quoting an echo request to fd00:232::5.
    let mut err = vec![1u8, 3, 0, 0, 0, 0, 0, 0];
    let mut ip6 = vec![0x60u8, 0, 0, 0, 0, 16, 58, 64];
    ip6.extend("fd00::1".parse::<Ipv6Addr>().unwrap().octets());
    ip6.extend("fd00:232::5".parse::<Ipv6Addr>().unwrap().octets());
    err.extend(ip6);
    err.extend([128, 0, 0, 0, 0xab, 0xcd, 0x01, 0x02]);
    let a = decode(&err, "fd00::9".parse().unwrap(), false).unwrap();
    assert_eq!(a.dest, "fd00:232::5".parse::<IpAddr>().unwrap());
    assert_eq!((a.ident, a.seq, a.error), (0xabcd, 0x0102, Some((1, 3))));
    // Neighbour solicitation (135) is not ours.
    assert_eq!(decode(&[135, 0, 0, 0, 0, 0, 0, 0], host, false), None);
}

#[test]
fn echo_request_has_a_valid_checksum() {
    let payload: Vec<u8> = payload(56);
    let mut p = vec![0u8; 64];
    write_echo(&mut p, false, 0xbeef, 42, &payload);
    assert_eq!(&p[..2], &[8, 0]);
    assert_eq!(&p[4..8], &[0xbe, 0xef, 0, 42]);
    // A packet including its checksum sums to zero.
    assert_eq!(checksum(&p), 0);
    let mut odd = vec![0u8; 8 + 3];
    write_echo(&mut odd, false, 1, 2, &[1, 2, 3]);
    assert_eq!(checksum(&odd), 0);
    let mut v6 = vec![0u8; 8];
    write_echo(&mut v6, true, 1, 2, &[]);
    assert_eq!(v6, [128, 0, 0, 0, 0, 1, 0, 2]);
}

#[test]
fn rtt_prefers_the_kernel_stamp_unless_the_wall_clock_stepped() {
    let t0 = Instant::now();
    let now = t0 + Duration::from_micros(500);
    let wall = Duration::from_secs(1_700_000_000);
    // Kernel says 40 µs; the task ran later.
    let rx = Some(wall + Duration::from_micros(40));
    assert_eq!(rtt(t0, Some(wall), now, rx), Duration::from_micros(40));
    // Wall clock stepped forward by a second: monotonic reading.
    let rx = Some(wall + Duration::from_secs(1));
    assert_eq!(rtt(t0, Some(wall), now, rx), Duration::from_micros(500));
    // Stepped backwards, or no stamp: monotonic reading.
    let rx = Some(wall - Duration::from_secs(1));
    assert_eq!(rtt(t0, Some(wall), now, rx), Duration::from_micros(500));
    assert_eq!(rtt(t0, Some(wall), now, None), Duration::from_micros(500));
}

#[test]
fn send_errors_map_to_reasons() {
    let ip: IpAddr = "127.0.0.1".parse().unwrap();
    let reason = |e: io::Error| match send_error(&e, ip) {
        Outcome::Error(e) => e.reason,
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(reason(io::Error::from_raw_os_error(1)), Reason::Blocked);
    assert_eq!(
        reason(io::Error::from_raw_os_error(101)),
        Reason::Unreachable
    );
    assert_eq!(
        reason(io::Error::from_raw_os_error(113)),
        Reason::Unreachable
    );
    assert_eq!(
        reason(io::Error::from_raw_os_error(99)),
        Reason::Unreachable
    );
    assert_eq!(reason(io::Error::from_raw_os_error(90)), Reason::Io);
    assert_eq!(
        send_error(&io::Error::from_raw_os_error(105), ip),
        Outcome::Timeout { phase: None }
    );
    match send_error(&io::Error::from_raw_os_error(1), ip) {
        Outcome::Error(e) => assert!(e.detail.contains("firewall"), "{}", e.detail),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn same_host_targets_get_disjoint_sequence_spaces() {
    assert_eq!(spaced_starts(10, 1), vec![10]);
    assert_eq!(spaced_starts(10, 2), vec![10, 10 + 32768]);
    assert_eq!(spaced_starts(65535, 4), vec![65535, 16383, 32767, 49151]);
    let many = spaced_starts(0, 70_000);
    assert_eq!(many.len(), 70_000);
}

#[test]
fn setup_error_names_both_fixes_and_both_causes() {
    let e = IcmpSetupError {
        dgram: io::Error::from_raw_os_error(13),
        raw: io::Error::from_raw_os_error(1),
        exe: "/usr/bin/linkwatch".into(),
    };
    let msg = e.to_string();
    assert!(msg.contains(FIX_SYSCTL), "{msg}");
    assert!(
        msg.contains("sudo setcap cap_net_raw+ep /usr/bin/linkwatch"),
        "{msg}"
    );
    assert!(msg.contains("Permission denied"), "{msg}");
    assert!(msg.contains("Operation not permitted"), "{msg}");
    assert!(!msg.contains("ipv6.ping_group_range"), "{msg}");
}

#[test]
fn link_local_is_fe80_slash_10() {
    assert!(is_link_local("fe80::1".parse().unwrap()));
    assert!(is_link_local("febf::1".parse().unwrap()));
    assert!(!is_link_local("fd00::1".parse().unwrap()));
}
