//! One trace run: TTL after TTL within the window past the farthest answer,
//! the answers recorded as they come, the re-probes of the hop after the
//! last answer, and the result (see the module doc of `trace` for the rules).

use std::net::IpAddr;
use std::time::Duration;

use tokio::io::Interest;
use tokio::time::Instant;
use tracing::debug;

use super::model::{
    GIVE_UP_SILENT, Hop, PAYLOAD, POLL_EVERY, Quiet, REPROBE_QUIET, REPROBE_ROOM, REPROBE_SPACING,
    REPROBES, Reprobe, SPACING, Trace, TraceError, TraceOptions,
};
use super::socket::{Reply, TraceSocket};
use crate::config::TraceProtocol;
use crate::probe::icmp::socket::{rtt, wall_now};
use crate::probe::icmp::wire::{classify_icmp, payload};

/// One trace in progress: its socket, what was sent, what answered.
pub(super) struct Run<'a> {
    sock: TraceSocket,
    dest: IpAddr,
    options: &'a TraceOptions,
    started: Instant,
    /// The bound: what is unanswered then makes the trace `partial`.
    deadline: Instant,
    max_hops: u8,
    per_hop: u8,
    payload: Vec<u8>,
    /// ICMP: a random first sequence; UDP: the first destination port. A
    /// request's sequence (port) is `base` plus its index in `requests`.
    base: u16,
    /// TTL 1 up to `max_hops`, cut to what matters at the end.
    hops: Vec<Hop>,
    requests: Vec<Request>,
    next_ttl: u8,
    next_send: Instant,
    ends: Ends,
    /// Why the trace stopped early for a local reason.
    error: Option<String>,
    partial: bool,
    buf: Vec<u8>,
    replies: Vec<Reply>,
}

impl<'a> Run<'a> {
    /// Opens the socket; nothing is sent yet.
    pub(super) fn start(dest: IpAddr, options: &'a TraceOptions) -> Result<Self, TraceError> {
        let udp = options.protocol == TraceProtocol::Udp;
        let sock = TraceSocket::open(dest.is_ipv6(), options.protocol)?;
        let started = Instant::now();
        let max_hops = options.max_hops.max(1);
        Ok(Self {
            sock,
            dest,
            options,
            started,
            deadline: started + options.bound,
            max_hops,
            per_hop: options.probes_per_hop.max(1),
            payload: payload(PAYLOAD),
            base: if udp {
                super::model::UDP_BASE_PORT
            } else {
                rand::random()
            },
            hops: (1..=max_hops)
                .map(|ttl| Hop {
                    ttl,
                    addr: None,
                    also: Vec::new(),
                    sent: 0,
                    received: 0,
                    rtt_ms: Vec::new(),
                    unreachable: None,
                })
                .collect(),
            requests: Vec::new(),
            next_ttl: 1,
            next_send: started,
            ends: Ends::default(),
            error: None,
            partial: false,
            buf: vec![0u8; 65_536],
            replies: Vec::new(),
        })
    }

    /// TTL after TTL, [`SPACING`] apart and never more than
    /// [`GIVE_UP_SILENT`] past the farthest answer, until every request up
    /// to the last useful TTL is answered or lost, or the bound.
    pub(super) async fn sweep(&mut self) {
        loop {
            let now = Instant::now();
            self.expire_lost(now);
            let sending = self.sending();
            if !sending && !self.waiting() {
                break;
            }
            if now >= self.deadline {
                self.partial = true;
                break;
            }
            let in_window = self.next_ttl <= self.farthest_answer().saturating_add(GIVE_UP_SILENT);
            if sending && now >= self.next_send && in_window {
                self.send_next_ttl();
                continue;
            }
            self.wait(now, sending).await;
            self.record_replies(usize::MAX);
        }
    }

    /// Requests unanswered for [`TraceOptions::probe_timeout`] are lost.
    fn expire_lost(&mut self, now: Instant) {
        for r in self.requests.iter_mut().filter(|r| !r.done) {
            if now.saturating_duration_since(r.sent) >= self.options.probe_timeout {
                r.done = true;
            }
        }
    }

    /// The TTL of the farthest hop that answered (0: none).
    fn farthest_answer(&self) -> u8 {
        self.hops
            .iter()
            .rev()
            .find(|h| h.received > 0)
            .map_or(0, |h| h.ttl)
    }

    /// Are more TTLs to be sent: no local error, not given up after a
    /// silent run, below `max_hops` and not past where the path ends?
    fn sending(&self) -> bool {
        let gave_up = silent_run(&self.hops, &self.requests) >= GIVE_UP_SILENT;
        self.error.is_none()
            && !gave_up
            && self.next_ttl <= self.max_hops
            && self.ends.end_ttl.is_none_or(|e| self.next_ttl <= e)
    }

    /// Does a request up to the last useful TTL still wait for its answer?
    fn waiting(&self) -> bool {
        let limit = self.ends.end_ttl.unwrap_or(self.next_ttl.saturating_sub(1));
        self.requests.iter().any(|r| !r.done && r.ttl <= limit)
    }

    /// Sends the next TTL's requests (a local failure ends the sending).
    fn send_next_ttl(&mut self) {
        let ttl = self.next_ttl;
        if let Err(e) = self.sock.set_ttl(ttl) {
            self.error = Some(format!("failed to set TTL {ttl}: {e}"));
            return;
        }
        for _ in 0..self.per_hop {
            if self.send_request(ttl).is_none() {
                break;
            }
        }
        self.next_ttl += 1;
        self.next_send = Instant::now() + SPACING;
    }

    /// Sends one request at the socket's TTL `ttl` and counts it; its send
    /// instant, or `None` when no more can be sent (the sequence space is
    /// used up, or the send failed: then `error` says why).
    fn send_request(&mut self, ttl: u8) -> Option<Instant> {
        let index = u16::try_from(self.requests.len()).ok()?;
        let sent_wall = wall_now();
        let sent = Instant::now();
        if let Err(e) = self
            .sock
            .send(self.dest, self.base.wrapping_add(index), &self.payload)
        {
            let dest = self.dest;
            self.error = Some(format!("failed to send to {dest} with TTL {ttl}: {e}"));
            return None;
        }
        self.requests.push(Request {
            ttl,
            sent,
            sent_wall,
            done: false,
        });
        if let Some(h) = self.hops.get_mut(usize::from(ttl) - 1) {
            h.sent += 1;
        }
        Some(sent)
    }

    /// Sleeps until the next send, the next request timeout or the bound,
    /// unless an answer arrives first; reads what came.
    async fn wait(&mut self, now: Instant, sending: bool) {
        let mut wake = self.deadline;
        if sending {
            wake = wake.min(self.next_send.max(now + Duration::from_millis(1)));
        }
        if let Some(first) = self
            .requests
            .iter()
            .filter(|r| !r.done)
            .map(|r| r.sent)
            .min()
        {
            wake = wake
                .min(first + self.options.probe_timeout)
                .min(now + POLL_EVERY);
        }
        let (sock, dest) = (&self.sock, self.dest);
        tokio::select! {
            ready = sock.fd.ready(Interest::READABLE | Interest::ERROR) => match ready {
                Ok(mut guard) => {
                    sock.drain(dest, &mut self.buf, &mut self.replies);
                    guard.clear_ready();
                }
                Err(e) => {
                    self.error = Some(format!("trace socket failed: {e}"));
                }
            },
            // A safety net: were a readiness notification for the error
            // queue ever missed, its answer would otherwise wait there until
            // its request timed out. Reading costs one syscall per queue.
            () = tokio::time::sleep_until(wake) => sock.drain(dest, &mut self.buf, &mut self.replies),
        }
    }

    /// Records the answers read; returns how many answered a request from
    /// index `first` on (a re-probe).
    fn record_replies(&mut self, first: usize) -> u32 {
        let mut n = 0;
        for reply in self.replies.drain(..) {
            let index = record(
                reply,
                self.base,
                &self.sock,
                &mut self.requests,
                &mut self.hops,
                &mut self.ends,
            );
            if index.is_some_and(|i| i >= first) {
                n += 1;
            }
        }
        n
    }

    /// The hop after the last answer, when it is to be probed again: the
    /// sweep ended whole, the destination was not reached, the path did not
    /// end in an unreachable, the hop was sent to and the baseline had a
    /// router there.
    fn reprobe_ttl(&self) -> Option<u8> {
        if self.partial || self.error.is_some() || self.ends.reached || self.ends.end_ttl.is_some()
        {
            return None;
        }
        let ttl = self.farthest_answer().saturating_add(1);
        let was_sent = self
            .hops
            .get(usize::from(ttl).saturating_sub(1))
            .is_some_and(|h| h.ttl == ttl && h.sent > 0);
        (was_sent && self.options.baseline_had(ttl)).then_some(ttl)
    }

    /// Probes the hop after the last answer again (see the module doc):
    /// one request at a time, each after its wait, until one is answered;
    /// then the last ones' answers, until they are lost or the bound.
    /// `None` when it was not, or no request fitted before the bound.
    pub(super) async fn reprobe(&mut self, quiet: Option<&Quiet<'_>>) -> Option<Reprobe> {
        let ttl = self.reprobe_ttl()?;
        let first = self.requests.len();
        let mut r = Reprobe {
            ttl,
            sent: 0,
            received: 0,
        };
        let mut last = self
            .requests
            .iter()
            .filter(|q| q.ttl == ttl)
            .map(|q| q.sent)
            .max();
        while r.sent < u32::from(REPROBES) && r.received == 0 && self.error.is_none() {
            let Some(at) = self.reprobe_at(last, quiet) else {
                break;
            };
            let dest = self.dest;
            debug!(%dest, ttl, at = ?at.saturating_duration_since(self.started), "re-probing the hop after the last answer");
            self.listen_until(at, first, &mut r).await;
            if r.received > 0 || self.error.is_some() {
                break;
            }
            if let Err(e) = self.sock.set_ttl(ttl) {
                self.error = Some(format!("failed to set TTL {ttl}: {e}"));
                break;
            }
            let Some(sent) = self.send_request(ttl) else {
                break;
            };
            r.sent += 1;
            last = Some(sent);
        }
        if let Some(l) = last.filter(|_| r.sent > 0) {
            let until = (l + self.options.probe_timeout).min(self.deadline);
            self.listen_until(until, first, &mut r).await;
        }
        for q in self.requests.iter_mut().skip(first) {
            q.done = true;
        }
        // None sent (no room before the bound): nothing to report.
        (r.sent > 0).then_some(r)
    }

    /// When the next re-probe may go: [`REPROBE_SPACING`] after the last
    /// request to the hop and, for a caller that holds its traffic,
    /// [`REPROBE_QUIET`] from now, as late as `quiet` says; `None` when an
    /// answer would no longer fit before the bound (no hold is asked then).
    fn reprobe_at(&self, last: Option<Instant>, quiet: Option<&Quiet<'_>>) -> Option<Instant> {
        let now = Instant::now();
        let mut at = last.map_or(now, |l| l + REPROBE_SPACING).max(now);
        if let Some(q) = quiet {
            at = at.max(now + REPROBE_QUIET);
            // No hold asked for a re-probe that cannot be sent.
            if at + REPROBE_ROOM > self.deadline {
                return None;
            }
            at = q(at);
        }
        (at + REPROBE_ROOM <= self.deadline).then_some(at)
    }

    /// Reads answers until `until`, a re-probe answered or a socket failure.
    async fn listen_until(&mut self, until: Instant, first: usize, r: &mut Reprobe) {
        while Instant::now() < until && r.received == 0 && self.error.is_none() {
            if let Err(e) = listen(
                &self.sock,
                self.dest,
                until,
                &mut self.buf,
                &mut self.replies,
            )
            .await
            {
                self.error = Some(e);
                break;
            }
            r.received += self.record_replies(first);
        }
    }

    /// The result: hops up to where the path ends (or the last TTL sent).
    pub(super) fn finish(self, reprobe: Option<Reprobe>) -> Trace {
        let Ends { reached, end_ttl } = self.ends;
        let probed = self.next_ttl.saturating_sub(1);
        let keep = end_ttl.map_or(probed, |e| e.min(probed));
        let mut hops = self.hops;
        hops.truncate(usize::from(keep));
        // Requests sent past the end (before it was known) are not part of the path.
        let packets = self.requests.len() as u32;
        Trace {
            dest: self.dest,
            mode: self.sock.mode.as_str().to_string(),
            protocol: self.options.protocol,
            reached,
            partial: self.partial,
            duration_ms: micros_as_ms(self.started.elapsed()),
            packets,
            hops,
            error: self.error,
            reprobe,
        }
    }
}

/// One request.
pub(super) struct Request {
    pub(super) ttl: u8,
    pub(super) sent: Instant,
    pub(super) sent_wall: Option<Duration>,
    pub(super) done: bool,
}

/// Is this ICMP error a router saying the TTL ran out (not an unreachable)?
fn is_time_exceeded(v6: bool, ty: u8) -> bool {
    if v6 { ty == 3 } else { ty == 11 }
}

/// Is this ICMP error the destination saying nobody listens on the port
/// (the end of a UDP trace)?
pub(super) fn is_port_unreachable(v6: bool, ty: u8, code: u8) -> bool {
    if v6 {
        ty == 1 && code == 4
    } else {
        ty == 3 && code == 3
    }
}

/// Waits for answers until `until` (at most [`POLL_EVERY`]) and reads them into `out`.
async fn listen(
    sock: &TraceSocket,
    dest: IpAddr,
    until: Instant,
    buf: &mut [u8],
    out: &mut Vec<Reply>,
) -> Result<(), String> {
    let wake = until.min(Instant::now() + POLL_EVERY);
    tokio::select! {
        ready = sock.fd.ready(Interest::READABLE | Interest::ERROR) => match ready {
            Ok(mut guard) => {
                sock.drain(dest, buf, out);
                guard.clear_ready();
            }
            Err(e) => return Err(format!("trace socket failed: {e}")),
        },
        () = tokio::time::sleep_until(wake) => sock.drain(dest, buf, out),
    }
    Ok(())
}

/// Where the path ends, as far as the answers say.
#[derive(Default)]
struct Ends {
    /// The destination answered.
    reached: bool,
    /// The TTL at which the path ends (destination reached or unreachable).
    end_ttl: Option<u8>,
}

/// Applies one answer to its request and hop; returns the request's index,
/// or `None` when it matches no request still waiting.
fn record(
    reply: Reply,
    base: u16,
    sock: &TraceSocket,
    requests: &mut [Request],
    hops: &mut [Hop],
    ends: &mut Ends,
) -> Option<usize> {
    let (v6, udp) = (sock.v6, sock.udp);
    let index = usize::from(reply.seq.wrapping_sub(base));
    let req = requests.get_mut(index)?;
    if req.done {
        return None;
    }
    req.done = true;
    let ttl = req.ttl;
    let rtt = rtt(req.sent, req.sent_wall, reply.now, reply.wall);
    let hop = hops.get_mut(usize::from(ttl) - 1)?;
    hop.received += 1;
    hop.rtt_ms.push(micros_as_ms(rtt));
    match hop.addr {
        None => hop.addr = Some(reply.from),
        Some(a) if a != reply.from && !hop.also.contains(&reply.from) => hop.also.push(reply.from),
        Some(_) => {}
    }
    let end = |ends: &mut Ends| {
        ends.end_ttl = Some(ends.end_ttl.map_or(ttl, |e| e.min(ttl)));
    };
    match reply.error {
        None => {
            ends.reached = true;
            end(ends);
        }
        Some((ty, _)) if is_time_exceeded(v6, ty) => {}
        Some((ty, code)) if udp && is_port_unreachable(v6, ty, code) => {
            ends.reached = true;
            end(ends);
        }
        Some((ty, code)) => {
            let what = classify_icmp(v6, ty, code)
                .err()
                .unwrap_or("destination unreachable");
            hop.unreachable = Some(format!("{what} (type {ty}, code {code})"));
            end(ends);
        }
    }
    Some(index)
}

/// Milliseconds to the microsecond (what the clocks here resolve honestly).
fn micros_as_ms(d: Duration) -> f64 {
    d.as_micros() as f64 / 1e3
}

/// Silent TTLs in a row at the top of what was sent, all of whose requests
/// are settled: counted down from the highest TTL sent, stopping at the
/// first hop that answered or still waits.
pub(super) fn silent_run(hops: &[Hop], requests: &[Request]) -> u8 {
    let settled = |ttl: u8| {
        requests.iter().any(|r| r.ttl == ttl) && requests.iter().all(|r| r.ttl != ttl || r.done)
    };
    let mut run = 0u8;
    for h in hops.iter().rev() {
        if h.sent == 0 {
            continue;
        }
        if h.received > 0 {
            break;
        }
        if !settled(h.ttl) {
            break;
        }
        run = run.saturating_add(1);
    }
    run
}
