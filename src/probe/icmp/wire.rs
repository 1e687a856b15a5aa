//! ICMP on the wire: echo requests written, echo replies and the errors
//! that quote our requests decoded, the checksum, and what an ICMP type
//! and code mean. No sockets, no clocks: bytes in, bytes out.

use std::net::IpAddr;

/// What a received packet answers.
#[derive(Debug, PartialEq, Eq)]
pub(in crate::probe) struct Answer {
    /// The destination of the request answered.
    pub(in crate::probe) dest: IpAddr,
    pub(in crate::probe) ident: u16,
    pub(in crate::probe) seq: u16,
    /// ICMP type and code when the answer is an error, not an echo reply.
    pub(in crate::probe) error: Option<(u8, u8)>,
}

/// Decodes an echo reply, or an ICMP error quoting one of our echo requests.
/// `from` is the sender; `ip_header` is set for raw IPv4 sockets, which
/// deliver the IP header too. Anything else (our own requests seen on a raw
/// socket, neighbour discovery, …) is `None`.
pub(in crate::probe) fn decode(packet: &[u8], from: IpAddr, ip_header: bool) -> Option<Answer> {
    let v6 = from.is_ipv6();
    let icmp = if ip_header {
        packet.get(usize::from(packet.first()? & 0x0f) * 4..)?
    } else {
        packet
    };
    let (ty, code) = (*icmp.first()?, *icmp.get(1)?);
    let ident_seq = |h: &[u8]| -> Option<(u16, u16)> {
        Some((
            u16::from_be_bytes([*h.get(4)?, *h.get(5)?]),
            u16::from_be_bytes([*h.get(6)?, *h.get(7)?]),
        ))
    };
    if (!v6 && ty == 0) || (v6 && ty == 129) {
        let (ident, seq) = ident_seq(icmp)?;
        return Some(Answer {
            dest: from,
            ident,
            seq,
            error: None,
        });
    }
    let is_error = if v6 {
        (1..=4).contains(&ty)
    } else {
        matches!(ty, 3 | 4 | 5 | 11 | 12)
    };
    if !is_error {
        return None;
    }
    let quoted = icmp.get(8..)?;
    let (dest, request, echo_request) = if v6 {
        // Next header must be ICMPv6 (extension headers are not followed).
        if *quoted.get(6)? != 58 {
            return None;
        }
        let d: [u8; 16] = quoted.get(24..40)?.try_into().ok()?;
        (IpAddr::V6(d.into()), quoted.get(40..)?, 128)
    } else {
        if *quoted.get(9)? != 1 {
            return None;
        }
        let d: [u8; 4] = quoted.get(16..20)?.try_into().ok()?;
        let ihl = usize::from(quoted.first()? & 0x0f) * 4;
        (IpAddr::V4(d.into()), quoted.get(ihl..)?, 8)
    };
    if *request.first()? != echo_request {
        return None;
    }
    let (ident, seq) = ident_seq(request)?;
    Some(Answer {
        dest,
        ident,
        seq,
        error: Some((ty, code)),
    })
}

/// Writes an echo request; `packet` is 8 bytes longer than `payload`. The
/// kernel computes ICMPv6 checksums itself.
pub(in crate::probe) fn write_echo(
    packet: &mut [u8],
    v6: bool,
    ident: u16,
    seq: u16,
    payload: &[u8],
) {
    packet[0] = if v6 { 128 } else { 8 };
    packet[1..4].fill(0);
    packet[4..6].copy_from_slice(&ident.to_be_bytes());
    packet[6..8].copy_from_slice(&seq.to_be_bytes());
    packet[8..].copy_from_slice(payload);
    if !v6 {
        let sum = checksum(packet);
        packet[2..4].copy_from_slice(&sum.to_be_bytes());
    }
}

/// The Internet checksum (RFC 1071).
pub(super) fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A payload of `len` bytes in ping(8)'s pattern (0x00, 0x01, …).
pub(in crate::probe) fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| i as u8).collect()
}

/// `Ok` for an echo reply (type 0 in ICMPv4, 129 in ICMPv6), else a description.
pub(in crate::probe) fn classify_icmp(v6: bool, ty: u8, code: u8) -> Result<(), &'static str> {
    let what = if !v6 {
        match (ty, code) {
            (0, _) => return Ok(()),
            (3, 0) => "network unreachable",
            (3, 1) => "host unreachable",
            (3, 2) => "protocol unreachable",
            (3, 3) => "port unreachable",
            (3, 4) => "fragmentation needed",
            (3, 9 | 10 | 13) => "administratively prohibited",
            (3, _) => "destination unreachable",
            (5, _) => "redirect",
            (11, _) => "time exceeded",
            (12, _) => "parameter problem",
            _ => "unexpected ICMP message",
        }
    } else {
        match (ty, code) {
            (129, _) => return Ok(()),
            (1, 0) => "no route to destination",
            (1, 1) => "administratively prohibited",
            (1, 3) => "address unreachable",
            (1, 4) => "port unreachable",
            (1, 5 | 6) => "rejected by policy",
            (1, _) => "destination unreachable",
            (2, _) => "packet too big",
            (3, _) => "time exceeded",
            (4, _) => "parameter problem",
            _ => "unexpected ICMPv6 message",
        }
    };
    Err(what)
}
