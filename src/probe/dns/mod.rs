//! DNS probe: exactly one query per probe, no cache, no retry, over UDP (a
//! connected socket, so an ICMP port unreachable is seen at once), TCP, DoT or
//! DoH (RFC 8484 POST over the HTTP probe's connection code).
//!
//! The probe duration is the query round trip: send → reply for UDP; for TCP,
//! DoT and DoH the exchange after the connection (and TLS) is up, which are
//! reported as the `connect` and `tls` phases. A timeout while waiting for the
//! reply has no phase (`Timeout { phase: None }`).
//!
//! A target with `compare_with` also compares its answer with the compared
//! target's latest one ([`compare`]): `dns_inconsistent` or `dns_bogon`.

pub mod compare;

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hickory_proto::op::{Edns, Message, MessageType, Query};
use http::{HeaderValue, Method};
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;
use tokio::time::Instant;
use url::Url;

use super::http::{self as http_probe, Acc};
use super::net::stream::{self, add_phase};
use super::net::tls::{self, TlsConfigs, TlsSetupError};
use super::net::{connect, resolve};
use super::seam::{self, Completion, Probe};
use super::{Info, Observation, Outcome, Phase, Phases, Reason};
use crate::config::{
    Cidr, Config, DnsServer, DnsSpec, DnsTransport, Host, IpVersion, Nameserver, Target, TargetSpec,
};
use crate::interference::Extra;
use compare::{Answer, Asked, Plan, Store, Verdict};

/// Where the system resolver is configured.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";

/// EDNS UDP payload size offered (the DNS flag day 2020 value).
const EDNS_PAYLOAD: u16 = 1232;

/// Largest DoH response body read.
const DOH_MAX_BODY: u64 = 65_535;

/// The DNS prober could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum DnsSetupError {
    #[error("failed to set up TLS for target {target}")]
    Tls {
        target: String,
        #[source]
        source: TlsSetupError,
    },
    #[error("target {target}: failed to encode the query: {detail}")]
    Query { target: String, detail: String },
}

/// Probes DNS targets with their questions and TLS configs (DoT, DoH) built once at start.
pub struct DnsProber {
    dot: TlsConfigs,
    doh: TlsConfigs,
    /// The question of each DNS target, by index in `Config::targets`.
    /// Per target; boxed, as most targets of a large config are not DNS
    /// ones (8 bytes each instead of a whole `Question`).
    questions: Vec<Option<Box<Question>>>,
    /// The latest answer of every target some `compare_with` names.
    latest: Store,
    /// `[interference] bogon_exempt`.
    bogon_exempt: Vec<Cidr>,
}

/// A DNS target's query, built once: the message (to check replies against)
/// and its wire form, into which each probe writes a fresh id.
pub struct Question {
    target: String,
    message: Message,
    wire: Vec<u8>,
    /// The name checked in a DoT server's certificate (`tls_name`, else the host).
    sni: Option<Result<ServerName<'static>, Outcome>>,
    /// `compare_with`, resolved against the prober's config.
    compare: Option<Plan>,
}

impl Question {
    /// The question for `spec`: RD set, EDNS with a 1232-byte payload, the
    /// name asked for as fully qualified (the probe does not search).
    pub fn new(target: &str, spec: &DnsSpec) -> Result<Self, String> {
        let mut name = spec.query.clone();
        name.set_fqdn(true);
        let mut message = Message::query();
        message.metadata.recursion_desired = true;
        message.add_query(Query::query(name, spec.record));
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_PAYLOAD);
        message.set_edns(edns);
        let wire = message.to_vec().map_err(|e| e.to_string())?;
        let sni = match &spec.server {
            DnsServer::Tls { host, tls_name, .. } => Some(match tls_name {
                Some(name) => tls::server_name(name),
                None => tls::server_name(&host.to_string()),
            }),
            _ => None,
        };
        Ok(Self {
            target: target.to_owned(),
            message,
            wire,
            sni,
            compare: None,
        })
    }

    /// The message as asked.
    pub fn message(&self) -> &Message {
        &self.message
    }

    /// The wire form with a fresh random id, and that id.
    fn with_fresh_id(&self) -> (Vec<u8>, u16) {
        let id: u16 = rand::random();
        let mut wire = self.wire.clone();
        if let Some(header) = wire.get_mut(..2) {
            header.copy_from_slice(&id.to_be_bytes());
        }
        (wire, id)
    }
}

/// The seam's entry point; the work is [`DnsProber::probe`], in a task of its own.
impl Probe for DnsProber {
    fn start(self: &Arc<Self>, req: seam::Request, done: Completion) {
        let me = self.clone();
        seam::spawn(req.deadline(), done, async move {
            match req.spec::<DnsSpec>() {
                Ok(spec) => {
                    me.probe(req.index(), req.target(), spec, req.deadline())
                        .await
                }
                Err(o) => Observation::new(o),
            }
        });
    }
}

impl DnsProber {
    /// Builds every DNS target's question and TLS config.
    pub fn new(config: &Config) -> Result<Self, DnsSetupError> {
        let mut dot = TlsConfigs::new(&[]);
        let mut doh = TlsConfigs::new(&[tls::ALPN_HTTP1]);
        let mut tie_break = TlsConfigs::new(&[]);
        let mut questions = Vec::with_capacity(config.targets.len());
        for target in &config.targets {
            let TargetSpec::Dns(spec) = &target.spec else {
                questions.push(None);
                continue;
            };
            let mut question =
                Question::new(&target.name, spec).map_err(|detail| DnsSetupError::Query {
                    target: target.name.clone(),
                    detail,
                })?;
            if let Some(c) = &spec.compare {
                let tls = match &c.tls {
                    Some(t) => {
                        let ca_file = t.ca_file.as_deref();
                        tie_break
                            .prepare(ca_file, true)
                            .map_err(|source| DnsSetupError::Tls {
                                target: target.name.clone(),
                                source,
                            })?;
                        tie_break.get(ca_file, true).cloned()
                    }
                    None => None,
                };
                // Absent from a loaded config only when the caller kept some
                // targets (`linkwatch probe -t`): then there is nothing to compare.
                question.compare = Plan::new(config, c, tls);
                if question.compare.is_none() {
                    tracing::debug!(
                        target_name = %target.name,
                        compare_with = %c.with,
                        "the compared target is not probed here: no DNS consistency check"
                    );
                }
            }
            questions.push(Some(Box::new(question)));
            let (configs, ca_file) = match &spec.server {
                DnsServer::Tls { ca_file, .. } => (&mut dot, ca_file),
                DnsServer::Https { ca_file, .. } => (&mut doh, ca_file),
                DnsServer::Udp(_) | DnsServer::Tcp(_) => continue,
            };
            configs
                .prepare(ca_file.as_deref(), true)
                .map_err(|source| DnsSetupError::Tls {
                    target: target.name.clone(),
                    source,
                })?;
        }
        let compared = questions
            .iter()
            .filter_map(|q| Some(q.as_ref()?.compare.as_ref()?.with));
        let latest = Store::new(compared);
        Ok(Self {
            dot,
            doh,
            questions,
            latest,
            bogon_exempt: config.interference.bogon_exempt.clone(),
        })
    }

    /// Sends one query for `spec` (target `index` of the config the prober
    /// was built from) and checks the reply.
    pub async fn probe(
        &self,
        index: usize,
        target: &Target,
        spec: &DnsSpec,
        deadline: Instant,
    ) -> Observation {
        let mut info = Info::default();
        let mut phases = Phases::default();
        let built;
        let own = match self.questions.get(index) {
            Some(Some(q)) if q.target == target.name => Some(&**q),
            _ => None,
        };
        let question = match own {
            Some(q) => Ok(q),
            // A target the prober was not built for: ask its question anyway.
            None => match Question::new(&target.name, spec) {
                Ok(q) => {
                    built = q;
                    Ok(&built)
                }
                Err(e) => Err(Outcome::error(
                    Reason::Io,
                    format!("failed to encode the query: {e}"),
                )),
            },
        };
        let mut answer = None;
        let mut outcome = match question {
            Ok(question) => match self
                .run(
                    spec,
                    question,
                    deadline,
                    &mut phases,
                    &mut info,
                    &mut answer,
                )
                .await
            {
                Ok(rtt) => Outcome::Success {
                    duration: rtt,
                    phases,
                },
                Err(outcome) => outcome,
            },
            Err(outcome) => outcome,
        };
        if let Some(q) = own {
            self.latest
                .record(index, answer.clone().filter(|_| outcome.is_success()));
            if let (Some(plan), Some(answer)) = (&q.compare, &answer) {
                outcome = self
                    .consistency(plan, target, spec, answer, outcome, deadline, &mut info)
                    .await;
            }
        }
        Observation::with_info(outcome, info)
    }

    /// The probe's outcome after comparing its `answer` with the compared
    /// target's latest: unchanged unless the answers are inconsistent. Only
    /// a reply the probe itself accepted, or rejected for its rcode or its
    /// answers (a forged NXDOMAIN), is compared.
    #[allow(clippy::too_many_arguments)]
    async fn consistency(
        &self,
        plan: &Plan,
        target: &Target,
        spec: &DnsSpec,
        answer: &Answer,
        outcome: Outcome,
        deadline: Instant,
        info: &mut Info,
    ) -> Outcome {
        let judged = match &outcome {
            Outcome::Success { .. } => true,
            Outcome::Error(e) => matches!(e.reason, Reason::Rcode | Reason::AnswerMismatch),
            Outcome::Timeout { .. } => false,
        };
        if !judged {
            return outcome;
        }
        let name = spec.query.to_ascii();
        let record = spec.record.to_string();
        let asked = Asked {
            target: &target.name,
            name: name.trim_end_matches('.'),
            record: &record,
            timeout: target.timeout,
        };
        let verdict = compare::judge(
            plan,
            &self.latest,
            &asked,
            answer,
            &self.bogon_exempt,
            deadline,
        )
        .await;
        match verdict {
            Verdict::NoData(why) => {
                tracing::debug!(
                    target_name = %target.name,
                    compare_with = %plan.with_name,
                    why = %why,
                    "DNS consistency: no data"
                );
                outcome
            }
            Verdict::Undecided(line) => {
                info.extra = Some(Extra::TlsTieBreak);
                tracing::debug!(
                    target_name = %target.name,
                    compare_with = %plan.with_name,
                    tie_break = %line,
                    "DNS consistency: no data (the query left the tie-break too little time)"
                );
                outcome
            }
            Verdict::Consistent { tie_break } => {
                if let Some(line) = tie_break {
                    info.extra = Some(Extra::TlsTieBreak);
                    tracing::debug!(
                        target_name = %target.name,
                        compare_with = %plan.with_name,
                        tie_break = %line,
                        "DNS answers differ; the TLS tie-breaker vouched for the address"
                    );
                }
                outcome
            }
            Verdict::Failed {
                outcome,
                evidence,
                tie_break,
            } => {
                if tie_break {
                    info.extra = Some(Extra::TlsTieBreak);
                }
                info.evidence = Some(Box::new(evidence));
                outcome
            }
        }
    }

    async fn run(
        &self,
        spec: &DnsSpec,
        question: &Question,
        deadline: Instant,
        phases: &mut Phases,
        info: &mut Info,
        answer: &mut Option<Answer>,
    ) -> Result<Duration, Outcome> {
        let (wire, id) = question.with_fresh_id();
        let (reply, rtt, server) = match &spec.server {
            DnsServer::Https { url, ca_file } => {
                let config = self.doh.for_probe(ca_file.as_deref(), true)?;
                let (reply, rtt) = doh(url, config, wire, deadline, phases, info).await?;
                (reply, rtt, url.to_string())
            }
            DnsServer::Udp(ns) => {
                let (host, port) = nameserver(ns)?;
                let addr = server_addr(&host, port, deadline, phases).await?;
                info.peer = Some(addr.ip());
                let (reply, rtt) = udp(addr, &wire, deadline).await?;
                (reply, rtt, addr.to_string())
            }
            DnsServer::Tcp(ns) => {
                let (host, port) = nameserver(ns)?;
                let addr = server_addr(&host, port, deadline, phases).await?;
                info.peer = Some(addr.ip());
                let (reply, rtt) = stream_query(addr, None, &wire, deadline, phases).await?;
                (reply, rtt, addr.to_string())
            }
            DnsServer::Tls {
                host,
                port,
                ca_file,
                ..
            } => {
                let addr = server_addr(host, *port, deadline, phases).await?;
                info.peer = Some(addr.ip());
                let config = self.dot.for_probe(ca_file.as_deref(), true)?;
                let sni = match &question.sni {
                    Some(sni) => sni.clone()?,
                    None => tls::server_name(&host.to_string())?,
                };
                let (reply, rtt, not_after) =
                    stream_query_tls(addr, config, sni, &wire, deadline, phases).await?;
                info.cert_not_after = not_after;
                (reply, rtt, addr.to_string())
            }
        };
        let reply = decode_reply(id, &question.message, &reply, &server)?;
        *answer = Some(Answer::from_reply(&reply));
        check_reply(spec, &reply, info)?;
        Ok(rtt)
    }
}

/// The host and port of a udp or tcp resolver (the system's is read per probe).
fn nameserver(ns: &Nameserver) -> Result<(Host, u16), Outcome> {
    match ns {
        Nameserver::System => Ok((
            Host::Ip(system_nameserver(Path::new(RESOLV_CONF))?),
            DnsTransport::Udp.default_port(),
        )),
        Nameserver::Addr { host, port } => Ok((host.clone(), *port)),
    }
}

/// Resolves the server to an address (phase `resolve`).
async fn server_addr(
    host: &Host,
    port: u16,
    deadline: Instant,
    phases: &mut Phases,
) -> Result<SocketAddr, Outcome> {
    let (ip, took) = resolve::resolve_by(host, IpVersion::Any, deadline).await?;
    add_phase(phases, Phase::Resolve, took);
    Ok(SocketAddr::new(ip, port))
}

/// The first `nameserver` of a resolv.conf file.
pub fn system_nameserver(path: &Path) -> Result<IpAddr, Outcome> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Outcome::error(
            Reason::Resolve,
            format!("failed to read {}: {e}", path.display()),
        )
    })?;
    parse_resolv_conf(&text).ok_or_else(|| {
        Outcome::error(
            Reason::Resolve,
            format!("no usable nameserver line in {}", path.display()),
        )
    })
}

/// The first parsable `nameserver` address of resolv.conf text (a `%zone` suffix is dropped).
pub fn parse_resolv_conf(text: &str) -> Option<IpAddr> {
    text.lines().find_map(|line| {
        let line = line.split(['#', ';']).next().unwrap_or_default();
        let mut words = line.split_whitespace();
        if words.next() != Some("nameserver") {
            return None;
        }
        let addr = words.next()?;
        addr.split('%').next().unwrap_or(addr).parse().ok()
    })
}

/// One datagram on a connected socket; the reply's round trip.
async fn udp(
    addr: SocketAddr,
    wire: &[u8],
    deadline: Instant,
) -> Result<(Vec<u8>, Duration), Outcome> {
    let local: SocketAddr = if addr.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local)
        .await
        .map_err(|e| Outcome::error(Reason::Io, format!("failed to open a UDP socket: {e}")))?;
    socket
        .connect(addr)
        .await
        .map_err(|e| connect::classify(&e, addr))?;
    let sent = Instant::now();
    socket
        .send(wire)
        .await
        .map_err(|e| udp_error(&e, addr, "send the query to"))?;
    let mut buf = vec![0u8; 4096];
    let len = match tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
        Ok(Ok(len)) => len,
        Ok(Err(e)) => return Err(udp_error(&e, addr, "receive the reply from")),
        Err(_) => return Err(Outcome::Timeout { phase: None }),
    };
    let rtt = sent.elapsed();
    buf.truncate(len);
    Ok((buf, rtt))
}

fn udp_error(e: &std::io::Error, addr: SocketAddr, what: &str) -> Outcome {
    if e.kind() == std::io::ErrorKind::ConnectionRefused {
        return Outcome::error(
            Reason::ConnectRefused,
            format!("failed to {what} {addr}: port unreachable ({e})"),
        );
    }
    let mut outcome = connect::classify(e, addr);
    if let Outcome::Error(err) = &mut outcome {
        err.detail = format!("failed to {what} {addr}: {e}");
    }
    outcome
}

/// A query over a new TCP connection (2-byte length prefix).
async fn stream_query(
    addr: SocketAddr,
    tls: Option<(&Arc<ClientConfig>, rustls_pki_types::ServerName<'static>)>,
    wire: &[u8],
    deadline: Instant,
    phases: &mut Phases,
) -> Result<(Vec<u8>, Duration), Outcome> {
    let (mut stream, _) = stream::open(addr, tls, deadline, phases).await?;
    framed_exchange(&mut stream, addr, wire, deadline).await
}

/// DoT: [`stream_query`] with TLS; also returns the certificate expiry.
async fn stream_query_tls(
    addr: SocketAddr,
    config: &Arc<ClientConfig>,
    sni: rustls_pki_types::ServerName<'static>,
    wire: &[u8],
    deadline: Instant,
    phases: &mut Phases,
) -> Result<(Vec<u8>, Duration, Option<i64>), Outcome> {
    let (mut stream, opened) = stream::open(addr, Some((config, sni)), deadline, phases).await?;
    let (reply, rtt) = framed_exchange(&mut stream, addr, wire, deadline).await?;
    Ok((reply, rtt, opened.cert_not_after))
}

async fn framed_exchange(
    stream: &mut stream::Stream,
    addr: SocketAddr,
    wire: &[u8],
    deadline: Instant,
) -> Result<(Vec<u8>, Duration), Outcome> {
    let len = u16::try_from(wire.len())
        .map_err(|_| Outcome::error(Reason::Io, "the query is longer than 65535 bytes"))?;
    let mut framed = Vec::with_capacity(wire.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(wire);
    let sent = Instant::now();
    let exchange = async {
        stream.write_all(&framed).await?;
        stream.flush().await?;
        let len = stream.read_u16().await?;
        let mut reply = vec![0u8; usize::from(len)];
        stream.read_exact(&mut reply).await?;
        Ok::<_, std::io::Error>(reply)
    };
    match tokio::time::timeout_at(deadline, exchange).await {
        Ok(Ok(reply)) => Ok((reply, sent.elapsed())),
        Ok(Err(e)) => Err(stream_error(&e, addr)),
        Err(_) => Err(Outcome::Timeout { phase: None }),
    }
}

fn stream_error(e: &std::io::Error, addr: SocketAddr) -> Outcome {
    if e.get_ref()
        .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
    {
        return tls::classify_error(e, &addr.to_string());
    }
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => Outcome::error(
            Reason::ConnectionReset,
            format!("{addr} closed the connection before a complete reply"),
        ),
        std::io::ErrorKind::ConnectionReset
        | std::io::ErrorKind::ConnectionAborted
        | std::io::ErrorKind::BrokenPipe => Outcome::error(
            Reason::ConnectionReset,
            format!("{addr} reset the connection: {e}"),
        ),
        _ => Outcome::error(Reason::Io, format!("query to {addr} failed: {e}")),
    }
}

/// DoH (RFC 8484): POST `application/dns-message` on a new HTTP/1.1 connection.
async fn doh(
    url: &Url,
    config: &Arc<ClientConfig>,
    wire: Vec<u8>,
    deadline: Instant,
    phases: &mut Phases,
    info: &mut Info,
) -> Result<(Vec<u8>, Duration), Outcome> {
    const MEDIA_TYPE: &str = "application/dns-message";
    let headers = [
        (
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(MEDIA_TYPE),
        ),
        (http::header::ACCEPT, HeaderValue::from_static(MEDIA_TYPE)),
    ];
    let request = http_probe::Request {
        url,
        method: Method::POST,
        headers: &headers,
        body: Bytes::from(wire),
        ip_version: IpVersion::Any,
        max_body: DOH_MAX_BODY,
        keep_body: true,
    };
    let mut acc = Acc::default();
    let result = http_probe::exchange(&request, config, deadline, &mut acc, &|status, _| {
        status == http::StatusCode::OK
    })
    .await;
    // DNS reports only the phases its metric labels know.
    for phase in [Phase::Resolve, Phase::Connect, Phase::Tls] {
        if let Some(d) = acc.phases.get(phase) {
            phases.set(phase, d);
        }
    }
    info.peer = acc.info.peer;
    info.cert_not_after = acc.info.cert_not_after;
    let response = match result {
        Ok(r) => r,
        // The HTTP phases first_byte/transfer are the DNS exchange itself.
        Err(Outcome::Timeout {
            phase: Some(Phase::FirstByte | Phase::Transfer),
        }) => return Err(Outcome::Timeout { phase: None }),
        Err(other) => return Err(other),
    };
    if response.status != http::StatusCode::OK {
        return Err(Outcome::error(
            Reason::StatusMismatch,
            format!(
                "DoH server {url} answered HTTP {}, expected 200",
                response.status.as_u16()
            ),
        ));
    }
    Ok((response.body, response.exchange))
}

/// Decodes a reply and checks it answers `query`, sent with `id` (id, response flag, question).
fn decode_reply(id: u16, query: &Message, bytes: &[u8], server: &str) -> Result<Message, Outcome> {
    let reply = Message::from_vec(bytes).map_err(|e| {
        Outcome::error(
            Reason::Malformed,
            format!(
                "failed to decode the reply from {server} ({} bytes): {e}",
                bytes.len()
            ),
        )
    })?;
    if reply.metadata.id != id {
        return Err(Outcome::error(
            Reason::Malformed,
            format!(
                "reply from {server} has id {}, the query had id {id}",
                reply.metadata.id
            ),
        ));
    }
    if reply.metadata.message_type != MessageType::Response {
        return Err(Outcome::error(
            Reason::Malformed,
            format!("{server} sent a query, not a response"),
        ));
    }
    let asked = &query.queries[..];
    // Error replies (FORMERR, REFUSED, …) may come without the question.
    let question_ok = reply.queries[..] == *asked
        || (reply.queries.is_empty() && u16::from(reply.metadata.response_code) != 0);
    if !question_ok {
        let got: Vec<String> = reply.queries.iter().map(ToString::to_string).collect();
        return Err(Outcome::error(
            Reason::Malformed,
            format!("reply from {server} answers a different question: {got:?}"),
        ));
    }
    Ok(reply)
}

/// Applies `expect_rcode`, `min_answers` and `expect`, filling `info`.
fn check_reply(spec: &DnsSpec, reply: &Message, info: &mut Info) -> Result<(), Outcome> {
    let code = u16::from(reply.metadata.response_code);
    let rcode = rcode_name(code);
    info.rcode = Some(rcode.clone());
    info.answers = reply
        .answers
        .iter()
        .filter_map(|record| {
            let mut text = String::new();
            write!(text, "{}", record.data).ok().map(|()| text)
        })
        .collect();
    let expected = u16::from(spec.expect_rcode);
    if code != expected {
        return Err(Outcome::error(
            Reason::Rcode,
            format!(
                "{} {} answered {rcode}, expected {}",
                spec.query,
                spec.record,
                rcode_name(expected)
            ),
        ));
    }
    if (info.answers.len() as u64) < u64::from(spec.min_answers) {
        return Err(Outcome::error(
            Reason::AnswerMismatch,
            format!(
                "{} {} has {} answers, expected at least {}",
                spec.query,
                spec.record,
                info.answers.len(),
                spec.min_answers
            ),
        ));
    }
    let have: Vec<String> = info.answers.iter().map(|a| normalize(a)).collect();
    let missing: Vec<&str> = spec
        .expect
        .iter()
        .filter(|e| !have.contains(&normalize(e)))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(Outcome::error(
            Reason::AnswerMismatch,
            format!(
                "{} {} answers {:?}, missing {:?}",
                spec.query, spec.record, info.answers, missing
            ),
        ));
    }
    Ok(())
}

/// Case- and trailing-dot-insensitive form of presentation-format RDATA.
fn normalize(value: &str) -> String {
    value.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// The mnemonic of an rcode (`RCODE<n>` when it has none).
pub fn rcode_name(code: u16) -> String {
    const NAMES: [&str; 11] = [
        "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
        "NXRRSET", "NOTAUTH", "NOTZONE",
    ];
    match code {
        16 => "BADVERS".to_string(),
        23 => "BADCOOKIE".to_string(),
        n => NAMES
            .get(usize::from(n))
            .map_or_else(|| format!("RCODE{n}"), |s| s.to_string()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use hickory_proto::rr::{Name, RecordType};

    #[test]
    fn resolv_conf_first_nameserver() {
        let text = "# generated\nsearch example.test\n; nameserver 10.9.9.9\nnameserver   192.0.2.53 # primary\nnameserver 192.0.2.54\n";
        assert_eq!(parse_resolv_conf(text), Some("192.0.2.53".parse().unwrap()));
        assert_eq!(
            parse_resolv_conf("nameserver fe80::1%eth0\n"),
            Some("fe80::1".parse().unwrap())
        );
        assert_eq!(
            parse_resolv_conf("nameserver bogus\nnameserver ::1\n"),
            Some("::1".parse().unwrap())
        );
    }

    #[test]
    fn resolv_conf_without_nameserver() {
        assert_eq!(parse_resolv_conf(""), None);
        assert_eq!(
            parse_resolv_conf("search a.test\noptions ndots:2\nnameserver\n"),
            None
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resolv.conf");
        std::fs::write(&path, "search a.test\n").unwrap();
        match system_nameserver(&path).unwrap_err() {
            Outcome::Error(e) => {
                assert_eq!(e.reason, Reason::Resolve);
                assert!(e.detail.contains("no usable nameserver"), "{}", e.detail);
            }
            other => panic!("unexpected {other:?}"),
        }
        match system_nameserver(&dir.path().join("missing")).unwrap_err() {
            Outcome::Error(e) => assert_eq!(e.reason, Reason::Resolve),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn rcode_names() {
        assert_eq!(rcode_name(0), "NOERROR");
        assert_eq!(rcode_name(3), "NXDOMAIN");
        assert_eq!(rcode_name(10), "NOTZONE");
        assert_eq!(rcode_name(16), "BADVERS");
        assert_eq!(rcode_name(12), "RCODE12");
    }

    #[test]
    fn answers_compare_loosely() {
        assert_eq!(
            normalize("WWW.Example.TEST."),
            normalize("www.example.test")
        );
    }

    #[test]
    fn dot_server_names_are_usable_tls_names() {
        for host in ["dns.quad9.net", "dns.quad9.net.", "2620:fe::fe", "9.9.9.9"] {
            let host = crate::config::Host::Name(host.to_owned());
            let spec = DnsSpec::new(
                DnsServer::Tls {
                    host,
                    port: 853,
                    tls_name: None,
                    ca_file: None,
                },
                Name::from_ascii("example.test").unwrap(),
            );
            let q = Question::new("t", &spec).unwrap();
            assert!(matches!(q.sni, Some(Ok(_))), "{:?}", q.sni);
        }
    }

    #[test]
    fn question_is_fully_qualified_with_rd_and_edns_and_a_fresh_id() {
        let mut spec = DnsSpec::new(
            DnsServer::Udp(Nameserver::System),
            Name::from_ascii("example.test").unwrap(),
        );
        spec.record = RecordType::AAAA;
        let q = Question::new("t", &spec).unwrap();
        let m = q.message();
        assert!(m.metadata.recursion_desired);
        assert_eq!(m.queries.len(), 1);
        assert!(m.queries[0].name().is_fqdn());
        assert_eq!(m.queries[0].query_type(), RecordType::AAAA);
        assert_eq!(m.edns.as_ref().map(Edns::max_payload), Some(EDNS_PAYLOAD));
        // Each probe's wire form carries its own id and otherwise the same question.
        let ids: Vec<u16> = (0..8)
            .map(|_| {
                let (wire, id) = q.with_fresh_id();
                let parsed = Message::from_vec(&wire).unwrap();
                assert_eq!(parsed.metadata.id, id);
                assert_eq!(parsed.queries, m.queries);
                id
            })
            .collect();
        assert!(ids.iter().any(|&id| id != ids[0]), "{ids:?}");
    }
}
