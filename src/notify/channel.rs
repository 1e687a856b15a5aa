//! Sending one notification through one channel: webhook (JSON, or an
//! Alertmanager-compatible body), ntfy, Telegram's Bot API, e-mail (SMTP with
//! STARTTLS or TLS through lettre and rustls).
//!
//! The answer is sorted for the delivery loop: a refusal that retrying does
//! not cure (HTTP 4xx but 408/429, SMTP 5xx: a bad token, a wrong chat) is
//! [`SendError::Rejected`] and pauses the channel; anything else (5xx,
//! timeouts, DNS and connection failures) is [`SendError::Failed`] and backs
//! off. Messages never contain a secret: URLs with a token in them are not
//! echoed.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use serde_json::json;
use url::Url;

use super::message::Notification;
use crate::config::notify::{ChannelKind, NotifyChannel, Secret, SmtpSecurity};
use crate::journal::ts_ms;

#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    /// Refused for good (until the configuration changes).
    #[error("rejected: {0}")]
    Rejected(String),
    /// Worth retrying later.
    #[error("failed: {0}")]
    Failed(String),
}

/// What the channel answered when it took the message.
pub type Answer = String;

/// A channel ready to send.
pub struct Sender {
    channel: NotifyChannel,
    tls: Arc<ClientConfig>,
}

impl Sender {
    pub fn new(channel: NotifyChannel) -> Result<Self, String> {
        let tls = crate::probe::net::tls::client_config(
            None,
            true,
            &[crate::probe::net::tls::ALPN_HTTP1],
        )
        .map_err(|e| e.to_string())?;
        Ok(Self {
            channel,
            tls: Arc::new(tls),
        })
    }

    pub fn channel(&self) -> &NotifyChannel {
        &self.channel
    }

    /// Sends `n`, within the channel's timeout.
    pub async fn send(&self, n: &Notification) -> Result<Answer, SendError> {
        let timeout = self.channel.timeout;
        match tokio::time::timeout(timeout, self.send_inner(n)).await {
            Ok(r) => r,
            Err(_) => Err(SendError::Failed(format!(
                "no answer within {}",
                humantime::format_duration(timeout)
            ))),
        }
    }

    async fn send_inner(&self, n: &Notification) -> Result<Answer, SendError> {
        match &self.channel.kind {
            ChannelKind::Webhook {
                url,
                alertmanager,
                token,
            } => {
                self.send_webhook(n, url, *alertmanager, token.as_ref())
                    .await
            }
            ChannelKind::Ntfy { url, token } => self.send_ntfy(n, url, token.as_ref()).await,
            ChannelKind::Telegram {
                api_url,
                chat_id,
                token,
            } => self.send_telegram(n, api_url, chat_id, token).await,
            ChannelKind::Email {
                smtp_host,
                smtp_port,
                security,
                from,
                to,
                username,
                password,
                ca_file,
            } => {
                send_mail(
                    n,
                    MailSettings {
                        host: smtp_host,
                        port: *smtp_port,
                        security: *security,
                        from,
                        to,
                        username: username.as_deref(),
                        password: password.as_ref().map(|p| p.expose()),
                        ca_file: ca_file.as_deref(),
                        timeout: self.channel.timeout,
                    },
                )
                .await
            }
        }
    }

    /// A JSON (or Alertmanager-compatible) POST to the webhook's URL.
    async fn send_webhook(
        &self,
        n: &Notification,
        url: &Url,
        alertmanager: bool,
        token: Option<&Secret>,
    ) -> Result<Answer, SendError> {
        let body = if alertmanager {
            alertmanager_body(&self.channel.name, n)
        } else {
            webhook_body(n)
        };
        let mut headers = vec![(header::CONTENT_TYPE, hv("application/json"))];
        if let Some(t) = token {
            headers.push((header::AUTHORIZATION, bearer(t.expose())?));
        }
        let (status, text) = self
            .post(url, headers, body.to_string().into(), true)
            .await?;
        http_answer(status, &text, true)
    }

    /// A plain-text POST to the ntfy topic, title, tags and priority in headers.
    async fn send_ntfy(
        &self,
        n: &Notification,
        url: &Url,
        token: Option<&Secret>,
    ) -> Result<Answer, SendError> {
        let mut headers = vec![
            (header::CONTENT_TYPE, hv("text/plain; charset=utf-8")),
            (
                http::HeaderName::from_static("title"),
                HeaderValue::from_str(&ascii(&n.title)).unwrap_or(hv("linkwatch")),
            ),
            (
                http::HeaderName::from_static("tags"),
                hv(match n.severity() {
                    "critical" => "rotating_light",
                    "warning" => "warning",
                    _ => "white_check_mark",
                }),
            ),
            (
                http::HeaderName::from_static("priority"),
                hv(if n.severity() == "critical" {
                    "high"
                } else {
                    "default"
                }),
            ),
            (
                http::HeaderName::from_static("x-linkwatch-id"),
                HeaderValue::from_str(&ascii(&n.id)).unwrap_or(hv("")),
            ),
        ];
        if let Some(t) = token {
            headers.push((header::AUTHORIZATION, bearer(t.expose())?));
        }
        let body = format!("{}\n[{} seq {}]", n.text, n.id, n.seq);
        let (status, text) = self.post(url, headers, body.into(), true).await?;
        http_answer(status, &text, true)
    }

    /// The Bot API's `sendMessage`; the token is part of the URL.
    async fn send_telegram(
        &self,
        n: &Notification,
        api_url: &Url,
        chat_id: &str,
        token: &Secret,
    ) -> Result<Answer, SendError> {
        let base = api_url.as_str().trim_end_matches('/');
        let url = Url::parse(&format!("{base}/bot{}/sendMessage", token.expose()))
            .map_err(|_| SendError::Rejected("the bot token does not fit in a URL".into()))?;
        let body = json!({
            "chat_id": chat_id,
            "text": format!("{}\n[{}]", n.text, n.id),
            "disable_web_page_preview": true,
        });
        // The URL holds the token: no error may echo it.
        let (status, text) = self
            .post(
                &url,
                vec![(header::CONTENT_TYPE, hv("application/json"))],
                body.to_string().into(),
                false,
            )
            .await?;
        telegram_answer(status, &text)
    }

    /// POSTs `body` to `url`; `show_url` false keeps the URL out of errors.
    async fn post(
        &self,
        url: &Url,
        headers: Vec<(http::HeaderName, HeaderValue)>,
        body: Bytes,
        show_url: bool,
    ) -> Result<(u16, String), SendError> {
        let shown = if show_url {
            redacted(url)
        } else {
            format!(
                "{}://{}{}",
                url.scheme(),
                url.host_str().unwrap_or(""),
                url.port().map(|p| format!(":{p}")).unwrap_or_default()
            )
        };
        let host = url
            .host_str()
            .ok_or_else(|| SendError::Rejected(format!("{shown}: no host")))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = url.port_or_known_default().unwrap_or(80);
        let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| SendError::Failed(format!("{shown}: cannot resolve {host}: {e}")))?
            .collect();
        let mut last = None;
        let mut stream = None;
        for a in addrs {
            match tokio::net::TcpStream::connect(a).await {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = Some(format!("{a}: {e}")),
            }
        }
        let Some(stream) = stream else {
            return Err(SendError::Failed(format!(
                "{shown}: cannot connect: {}",
                last.unwrap_or_else(|| "no address".into())
            )));
        };
        let _ = stream.set_nodelay(true);
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        let authority = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::HOST, authority)
            .header(
                header::USER_AGENT,
                concat!("linkwatch/", env!("CARGO_PKG_VERSION")),
            );
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| SendError::Rejected(format!("{shown}: cannot build the request: {e}")))?;
        let fail = |e: hyper::Error| SendError::Failed(format!("{shown}: {e}"));
        let (status, bytes) = if url.scheme() == "https" {
            let name = crate::probe::net::tls::server_name(&host)
                .map_err(|_| SendError::Rejected(format!("{shown}: bad TLS server name")))?;
            let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
                .connect(name, stream)
                .await
                .map_err(|e| SendError::Failed(format!("{shown}: TLS: {e}")))?;
            exchange(TokioIo::new(tls), req).await.map_err(fail)?
        } else {
            exchange(TokioIo::new(stream), req).await.map_err(fail)?
        };
        let mut text = String::from_utf8_lossy(&bytes).into_owned();
        if text.len() > 400 {
            let mut cut = 400;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push('…');
        }
        Ok((status, text))
    }
}

async fn exchange<I>(io: I, req: Request<Full<Bytes>>) -> Result<(u16, Bytes), hyper::Error>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut send, conn) = hyper::client::conn::http1::handshake::<_, Full<Bytes>>(io).await?;
    let conn = tokio::spawn(conn);
    let resp = send.send_request(req).await?;
    let status = resp.status().as_u16();
    // Answers are short; a long one is cut by the caller.
    let body = resp.into_body().collect().await?.to_bytes();
    conn.abort();
    Ok((status, body))
}

fn hv(s: &'static str) -> HeaderValue {
    HeaderValue::from_static(s)
}

fn bearer(token: &str) -> Result<HeaderValue, SendError> {
    let mut v = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| SendError::Rejected("the token holds characters a header cannot".into()))?;
    v.set_sensitive(true);
    Ok(v)
}

/// Header values are ASCII: other characters become `?`.
fn ascii(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// The URL without user info or query (which may carry a secret).
fn redacted(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.to_string()
}

fn http_answer(status: u16, body: &str, _show: bool) -> Result<Answer, SendError> {
    let said = if body.trim().is_empty() {
        String::new()
    } else {
        format!(": {}", body.trim())
    };
    match status {
        200..=299 => Ok(format!("HTTP {status}{said}")),
        408 | 425 | 429 => Err(SendError::Failed(format!("HTTP {status}{said}"))),
        400..=499 => Err(SendError::Rejected(format!("HTTP {status}{said}"))),
        _ => Err(SendError::Failed(format!("HTTP {status}{said}"))),
    }
}

/// Telegram answers `{"ok":false,"error_code":401,"description":"Unauthorized"}`.
fn telegram_answer(status: u16, body: &str) -> Result<Answer, SendError> {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or(serde_json::Value::Null);
    let description = v
        .get("description")
        .and_then(|d| d.as_str())
        .unwrap_or(body)
        .to_owned();
    if (200..300).contains(&status) && v.get("ok").and_then(|o| o.as_bool()) == Some(true) {
        let id = v
            .pointer("/result/message_id")
            .map(|m| format!(" (message_id {m})"))
            .unwrap_or_default();
        return Ok(format!("Telegram accepted the message{id}"));
    }
    match status {
        401 | 404 => Err(SendError::Rejected(format!(
            "Telegram answered HTTP {status} ({description}): the bot token is wrong or revoked"
        ))),
        400 | 403 => Err(SendError::Rejected(format!(
            "Telegram answered HTTP {status} ({description}): check chat_id and that the bot may write to it"
        ))),
        429 => Err(SendError::Failed(format!(
            "Telegram answered HTTP 429 ({description})"
        ))),
        _ => Err(SendError::Failed(format!(
            "Telegram answered HTTP {status} ({description})"
        ))),
    }
}

fn webhook_body(n: &Notification) -> serde_json::Value {
    let mut v = serde_json::to_value(n).unwrap_or(serde_json::Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.insert("version".into(), json!(1));
        o.insert("severity".into(), json!(n.severity()));
    }
    v
}

/// The body Alertmanager sends to its webhook receivers (version 4), so
/// that tools written for it take linkwatch's messages as they are.
fn alertmanager_body(channel: &str, n: &Notification) -> serde_json::Value {
    let status = if n.resolved() { "resolved" } else { "firing" };
    let alertname = match n.event.as_str() {
        "outage_start" | "outage_end" => "LinkwatchOutage",
        "slow_start" | "slow_end" => "LinkwatchSlow",
        "daemon_start" => "LinkwatchRestartedAfterCrash",
        "journal_damage" => "LinkwatchJournalDamage",
        "site_silent" => "LinkwatchSiteSilent",
        _ => "LinkwatchNotice",
    };
    let mut labels = serde_json::Map::new();
    labels.insert("alertname".into(), json!(alertname));
    labels.insert("site".into(), json!(n.site));
    labels.insert("severity".into(), json!(n.severity()));
    if let Some(g) = &n.group {
        labels.insert("group".into(), json!(g));
    }
    if let Some(c) = &n.cause {
        labels.insert("cause".into(), json!(c));
    }
    let starts = n.start.unwrap_or(n.at);
    let ends = if n.resolved() {
        n.end.map(|e| ts_ms::format(&e))
    } else {
        None
    }
    .unwrap_or_else(|| "0001-01-01T00:00:00Z".into());
    let fingerprint = n.period_id.clone().unwrap_or_else(|| n.id.clone());
    json!({
        "version": "4",
        "groupKey": format!("linkwatch:{}:{}", n.site, fingerprint),
        "status": status,
        "receiver": channel,
        "groupLabels": {"alertname": alertname},
        "commonLabels": labels.clone(),
        "commonAnnotations": {"summary": n.title, "description": n.text},
        "externalURL": "",
        "truncatedAlerts": 0,
        "alerts": [{
            "status": status,
            "labels": labels,
            "annotations": {
                "summary": n.title,
                "description": n.text,
                "linkwatch_id": n.id,
                "journal_seq": n.seq.to_string(),
            },
            "startsAt": ts_ms::format(&starts),
            "endsAt": ends,
            "generatorURL": "",
            "fingerprint": fingerprint,
        }],
    })
}

struct MailSettings<'a> {
    host: &'a str,
    port: u16,
    security: SmtpSecurity,
    from: &'a str,
    to: &'a [String],
    username: Option<&'a str>,
    password: Option<&'a str>,
    ca_file: Option<&'a std::path::Path>,
    timeout: Duration,
}

async fn send_mail(n: &Notification, s: MailSettings<'_>) -> Result<Answer, SendError> {
    use lettre::message::header::ContentType;
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

    let bad = |what: &str, e: &dyn std::fmt::Display| SendError::Rejected(format!("{what}: {e}"));
    let mut m = Message::builder()
        .from(s.from.parse().map_err(|e| bad("from", &e))?)
        .subject(format!("[linkwatch {}] {}", n.site, n.title))
        .message_id(Some(format!(
            "<{}@linkwatch>",
            n.id.replace([':', ' '], ".")
        )))
        .header(ContentType::TEXT_PLAIN);
    for to in s.to {
        m = m.to(to.parse().map_err(|e| bad("to", &e))?);
    }
    let mut body = format!("{}\n\n", n.text);
    if let Some(start) = n.start {
        body.push_str(&format!("start: {}\n", ts_ms::format(&start)));
    }
    if let Some(end) = n.end {
        body.push_str(&format!("end: {}\n", ts_ms::format(&end)));
    }
    if let Some(c) = &n.cause {
        body.push_str(&format!("cause: {c}\n"));
    }
    body.push_str(&format!("journal seq: {}\nid: {}\n", n.seq, n.id));
    let message = m.body(body).map_err(|e| bad("message", &e))?;

    let tls = |host: &str| -> Result<TlsParameters, SendError> {
        let mut b = TlsParameters::builder(host.to_owned());
        if let Some(path) = s.ca_file {
            let pem =
                std::fs::read(path).map_err(|e| bad(&format!("ca_file {}", path.display()), &e))?;
            let cert = Certificate::from_pem(&pem)
                .map_err(|e| bad(&format!("ca_file {}", path.display()), &e))?;
            b = b.add_root_certificate(cert);
        }
        b.build_rustls().map_err(|e| bad("TLS", &e))
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(s.host)
        .port(s.port)
        .timeout(Some(s.timeout));
    builder = match s.security {
        SmtpSecurity::Starttls => builder.tls(Tls::Required(tls(s.host)?)),
        SmtpSecurity::Tls => builder.tls(Tls::Wrapper(tls(s.host)?)),
        SmtpSecurity::None => builder.tls(Tls::None),
    };
    if let (Some(u), Some(p)) = (s.username, s.password) {
        builder = builder.credentials(Credentials::new(u.to_owned(), p.to_owned()));
    }
    let transport = builder.build();
    match transport.send(message).await {
        Ok(r) => Ok(format!(
            "SMTP {}: {}",
            r.code(),
            r.message().collect::<Vec<_>>().join(" ")
        )),
        Err(e) if e.is_permanent() => Err(SendError::Rejected(format!(
            "{}:{}: SMTP refused: {e}",
            s.host, s.port
        ))),
        Err(e) => Err(SendError::Failed(format!("{}:{}: {e}", s.host, s.port))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_sort_into_rejected_and_failed() {
        assert!(http_answer(200, "ok", true).is_ok());
        assert!(matches!(
            http_answer(401, "", true),
            Err(SendError::Rejected(_))
        ));
        assert!(matches!(
            http_answer(429, "", true),
            Err(SendError::Failed(_))
        ));
        assert!(matches!(
            http_answer(503, "", true),
            Err(SendError::Failed(_))
        ));
        let bad = r#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#;
        match telegram_answer(401, bad) {
            Err(SendError::Rejected(m)) => assert!(m.contains("Unauthorized"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(telegram_answer(200, r#"{"ok":true,"result":{"message_id":7}}"#).is_ok());
    }
}
