//! A probe's connection: TCP connect and optional TLS handshake, each timed as
//! its own phase, and a stream wrapper that records when the first byte came.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::{connect, tls};
use crate::probe::{Outcome, Phase, Phases};

/// A plain or TLS client connection.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// Adds `d` to `phase` (phases of several hops or exchanges add up).
pub fn add_phase(phases: &mut Phases, phase: Phase, d: Duration) {
    let sum = phases.get(phase).unwrap_or_default() + d;
    phases.set(phase, sum);
}

/// What opening a connection learned besides the stream.
#[derive(Debug, Default, Clone, Copy)]
pub struct Opened {
    /// Earliest `notAfter` of the peer's chain (TLS only).
    pub cert_not_after: Option<i64>,
}

/// Connects to `addr` (phase `connect`) and, with `tls`, runs the handshake
/// (phase `tls`), both bounded by `deadline`.
pub async fn open(
    addr: SocketAddr,
    tls: Option<(&Arc<ClientConfig>, ServerName<'static>)>,
    deadline: Instant,
    phases: &mut Phases,
) -> Result<(Stream, Opened), Outcome> {
    open_reserving(addr, tls, deadline, false, phases).await
}

/// [`open`], where with `reserve_half` the handshake gets only half the time
/// left after the connect (a timeout then is still `Timeout { Tls }`), so that
/// a check can try the same address once more within the probe's deadline.
pub async fn open_reserving(
    addr: SocketAddr,
    tls: Option<(&Arc<ClientConfig>, ServerName<'static>)>,
    deadline: Instant,
    reserve_half: bool,
    phases: &mut Phases,
) -> Result<(Stream, Opened), Outcome> {
    let (connected, tcp) = connect::connect(addr, deadline).await;
    let connect_time = connected?;
    add_phase(phases, Phase::Connect, connect_time);
    let Some(tcp) = tcp else {
        return Err(Outcome::error(
            crate::probe::Reason::Io,
            format!("failed to connect to {addr}: no stream"),
        ));
    };
    let Some((config, name)) = tls else {
        return Ok((Stream::Plain(tcp), Opened::default()));
    };
    let start = Instant::now();
    let handshake_deadline = if reserve_half {
        start + deadline.saturating_duration_since(start) / 2
    } else {
        deadline
    };
    let handshake = TlsConnector::from(Arc::clone(config)).connect(name, tcp);
    let stream = match tokio::time::timeout_at(handshake_deadline, handshake).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(tls::classify_error(&e, &addr.to_string())),
        Err(_) => {
            return Err(Outcome::Timeout {
                phase: Some(Phase::Tls),
            });
        }
    };
    add_phase(phases, Phase::Tls, start.elapsed());
    let cert_not_after = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(tls::earliest_not_after);
    Ok((Stream::Tls(Box::new(stream)), Opened { cert_not_after }))
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A stream that records the instant the first byte was read from it.
pub struct Timed<S> {
    inner: S,
    first_byte: Arc<OnceLock<Instant>>,
}

impl<S> Timed<S> {
    /// Wraps `inner`; the returned cell is set on the first non-empty read.
    pub fn new(inner: S) -> (Self, Arc<OnceLock<Instant>>) {
        let first_byte = Arc::new(OnceLock::new());
        (
            Self {
                inner,
                first_byte: Arc::clone(&first_byte),
            },
            first_byte,
        )
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Timed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            let _ = this.first_byte.get_or_init(Instant::now);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Timed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
