//! `[[peer]]`: other linkwatch sites this one exchanges evidence with (issue
//! 20). One table serves both directions: a peer with a `url` is called (its
//! observations, our journal head sent as a witness); every peer's token is
//! accepted from callers, and the peer whose token matches is the caller.
//!
//! Read like `[[notify]]`: each problem is recorded with its span and the
//! walk goes on. The token is read from `token_file` with the same rules as
//! a channel's secret (missing, empty or world-readable is an error at the
//! key) and is never part of a message, a log line or `Debug` output.
//!
//! `[daemon]`'s `tls_cert`, `tls_key` and `witness_every` are read here too
//! ([`daemon_keys`]), as they exist for peers.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use url::Url;

use super::error::shown;
use super::notify::{Secret, read_secret};
use super::walk::{At, Got, Reported, Tbl, Walker};

/// One `[[peer]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerSpec {
    pub name: String,
    /// Where to call it (http or https); `None`: it only calls us.
    pub url: Option<Url>,
    pub token_file: PathBuf,
    /// The token: `token_file`'s contents, trimmed.
    pub token: Secret,
    /// The CA certificate (PEM) an https `url` is verified against, instead
    /// of the web PKI roots (a self-signed peer).
    pub ca_file: Option<PathBuf>,
    /// Our target name -> the peer's target name; a target not listed is
    /// compared under its own name.
    pub compare: BTreeMap<String, String>,
}

impl PeerSpec {
    /// The peer's name for our target `ours` (`compare`, else the same name).
    pub fn their_target<'a>(&'a self, ours: &'a str) -> &'a str {
        self.compare.get(ours).map_or(ours, String::as_str)
    }
}

/// The `[daemon]` keys that exist for peers, defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerDaemonKeys {
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub witness_every: Duration,
}

/// `witness_every` when not given.
pub const DEFAULT_WITNESS_EVERY: Duration = Duration::from_secs(600);
/// The shortest `witness_every`.
pub const MIN_WITNESS_EVERY: Duration = Duration::from_secs(10);
/// The longest `witness_every`.
pub const MAX_WITNESS_EVERY: Duration = Duration::from_secs(86_400);

const KEYS: &[&str] = &["name", "url", "token_file", "ca_file", "compare"];

/// Reads every `[[peer]]` table; `None` when any of them has a problem
/// (recorded in `w`). `targets` are our configured target names.
pub(super) fn tables(
    w: &mut Walker<'_>,
    root: &Tbl<'_, '_>,
    targets: &[String],
) -> Option<Vec<PeerSpec>> {
    let mut out: Vec<PeerSpec> = Vec::new();
    let mut failed = false;
    for t in w.array_of_tables(root, "peer") {
        let Ok(t) = t else {
            failed = true;
            continue;
        };
        let Some(p) = peer(w, &t, targets) else {
            failed = true;
            continue;
        };
        if out.iter().any(|o| o.name == p.name) {
            let span = t.get("name").map_or(t.span.clone(), |v| v.span());
            let message = format!(
                "`name` ({}) is used by another [[peer]]; names must be unique",
                shown(&p.name)
            );
            w.report(span, t.key("name"), message);
            failed = true;
            continue;
        }
        if let Some(other) = out.iter().find(|o| o.token == p.token) {
            let span = t.get("token_file").map_or(t.span.clone(), |v| v.span());
            let message = format!(
                "the token in {} is also [[peer]] {}'s token; each peer needs a token of its own \
                 (the token names the caller)",
                p.token_file.display(),
                shown(&other.name)
            );
            w.report(span, t.key("token_file"), message);
            failed = true;
            continue;
        }
        out.push(p);
    }
    (!failed).then_some(out)
}

fn peer(w: &mut Walker<'_>, t: &Tbl<'_, '_>, targets: &[String]) -> Option<PeerSpec> {
    w.check_keys(t, KEYS);
    let name = w.nonempty(t, "name");
    let name = w.check(t, "name", name, |s| {
        super::validate::site(s)
            .map(|()| s.clone())
            .map_err(|reason| format!("`name` ({}) {reason}", shown(s)))
    });
    let name = w.missing(t, "name", name);
    let url = peer_url(w, t);
    let token_file = w.nonempty(t, "token_file");
    let reading_only = w.reading_only;
    let token = w.check(t, "token_file", token_file, |s| {
        if reading_only {
            return Ok((PathBuf::from(s), Secret::unread(Path::new(s))));
        }
        read_secret(Path::new(s)).map(|secret| (PathBuf::from(s), secret))
    });
    let token = w.missing(t, "token_file", token);
    let ca_file = w.nonempty(t, "ca_file");
    let ca_file = w.check(t, "ca_file", ca_file, |s| {
        let path = PathBuf::from(s);
        if reading_only {
            return Ok(path);
        }
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => Ok(path),
            Ok(_) => Err(format!("`ca_file` ({}) is not a file", shown(s))),
            Err(e) => Err(format!("`ca_file` ({}) cannot be read: {e}", shown(s))),
        }
    });
    // `ca_file` is for verifying an https peer: refused anywhere else.
    let ca_file = match (&url, ca_file) {
        (Ok(u), Ok(Some(ca))) if u.as_ref().is_none_or(|u| u.value.scheme() != "https") => {
            let message = if u.is_some() {
                "`ca_file` applies only to an https:// `url`; this peer's url is http://"
            } else {
                "`ca_file` applies only to an https:// `url`; this peer has no `url`"
            };
            Err(w.report(ca.span, t.key("ca_file"), message.into()))
        }
        (_, c) => c,
    };
    let compare = compare(w, t, targets);
    let (token_file, token) = token.ok()?.value;
    Some(PeerSpec {
        name: name.ok()?.value,
        url: url.ok()?.map(|u| u.value),
        token_file,
        token,
        ca_file: ca_file.ok()?.map(|c| c.value),
        compare: compare.ok()?,
    })
}

fn peer_url(w: &mut Walker<'_>, t: &Tbl<'_, '_>) -> Got<Url> {
    let got = w.string(t, "url");
    w.check(t, "url", got, |s| {
        let u = Url::parse(s).map_err(|e| format!("`url` ({}) is not a valid URL: {e}", shown(s)))?;
        if u.scheme() != "http" && u.scheme() != "https" {
            return Err(format!(
                "`url` ({}) must be an http:// or https:// URL",
                shown(s)
            ));
        }
        if u.host_str().is_none() {
            return Err(format!("`url` ({}) has no host", shown(s)));
        }
        if u.query().is_some() || u.fragment().is_some() {
            return Err(format!(
                "`url` ({}) must not carry a query or fragment: write the peer's base URL, e.g. \"https://vps.example:9898\"",
                shown(s)
            ));
        }
        Ok(u)
    })
}

/// `compare = { "ours" = "theirs" }`: every key one of our targets, every
/// value a non-empty name.
fn compare(
    w: &mut Walker<'_>,
    t: &Tbl<'_, '_>,
    targets: &[String],
) -> Result<BTreeMap<String, String>, Reported> {
    let Some(table) = w.table(t, "compare")? else {
        return Ok(BTreeMap::new());
    };
    let mut out = BTreeMap::new();
    let mut failed = None;
    for (k, v) in table.map.iter() {
        let ours: &str = k.get_ref();
        let key = table.key(ours);
        if !targets.iter().any(|n| n == ours) {
            let message = format!(
                "`compare` key ({}) is not one of our targets; a key names our [[target]], its value the peer's",
                shown(ours)
            );
            failed = Some(w.report(k.span(), key, message));
            continue;
        }
        match v.get_ref() {
            toml::de::DeValue::String(s) if !s.trim().is_empty() => {
                out.insert(ours.to_owned(), s.to_string());
            }
            toml::de::DeValue::String(_) => {
                let message = format!("`compare` value for ({}) must not be empty", shown(ours));
                failed = Some(w.report(v.span(), key, message));
            }
            _ => failed = Some(w.wrong_type(key, v, "a string (the peer's target name)")),
        }
    }
    match failed {
        Some(r) => Err(r),
        None => Ok(out),
    }
}

/// `[daemon]`'s `tls_cert`, `tls_key` (both or neither; each a readable PEM
/// file, the key not readable by every user) and `witness_every`.
pub(super) fn daemon_keys(w: &mut Walker<'_>, t: &Tbl<'_, '_>) -> Option<PeerDaemonKeys> {
    let reading_only = w.reading_only;
    let cert = w.nonempty(t, "tls_cert");
    let cert = w.check(t, "tls_cert", cert, |s| {
        if reading_only {
            return Ok(PathBuf::from(s));
        }
        read_cert_chain(Path::new(s)).map(|_| PathBuf::from(s))
    });
    let key = w.nonempty(t, "tls_key");
    let key = w.check(t, "tls_key", key, |s| {
        if reading_only {
            return Ok(PathBuf::from(s));
        }
        read_private_key(Path::new(s)).map(|_| PathBuf::from(s))
    });
    let witness_every = w.duration_with(t, "witness_every", |d, s| {
        if (MIN_WITNESS_EVERY..=MAX_WITNESS_EVERY).contains(&d) {
            Ok(())
        } else {
            Err(format!(
                "`witness_every` ({s}) must be in the range 10s..=24h"
            ))
        }
    });
    let pair = match (cert, key) {
        (Ok(Some(c)), Ok(None)) => Err(w.report(
            c.span,
            t.key("tls_cert"),
            "`tls_cert` needs `tls_key` (the certificate's private key) as well".into(),
        )),
        (Ok(None), Ok(Some(k))) => Err(w.report(
            k.span,
            t.key("tls_key"),
            "`tls_key` needs `tls_cert` (the certificate chain) as well".into(),
        )),
        (Ok(c), Ok(k)) => Ok((c.map(|c| c.value), k.map(|k| k.value))),
        _ => Err(Reported),
    };
    let (tls_cert, tls_key) = pair.ok()?;
    Some(PeerDaemonKeys {
        tls_cert,
        tls_key,
        witness_every: witness_every
            .ok()?
            .map_or(DEFAULT_WITNESS_EVERY, |At { value, .. }| value),
    })
}

/// A site or peer name: 1-63 characters, A-Z a-z 0-9 . _ -, starting with
/// a letter or digit (the rule of `[daemon] site`).
pub fn valid_site(s: &str) -> Result<(), String> {
    super::validate::site(s)
}

/// The certificates of a PEM file (at least one), for serving TLS.
pub fn read_cert_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let text = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{} is not a PEM certificate file: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{} holds no certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certs)
}

/// The private key of a PEM file, for serving TLS: refused when readable by
/// every user.
pub fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if meta.permissions().mode() & 0o004 != 0 {
        return Err(format!(
            "{} is readable by every user (mode {:o}); a private key must not be: chmod 600 it",
            path.display(),
            meta.permissions().mode() & 0o777
        ));
    }
    let text = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    PrivateKeyDer::from_pem_slice(&text)
        .map_err(|e| format!("{} holds no PEM private key: {e}", path.display()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use crate::config::parse;

    const BASE: &str = "[[group]]\nname = \"intl\"\n[[target]]\nname = \"intl-web\"\ngroup = \"intl\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = 9\n\n";

    fn secret(dir: &std::path::Path, name: &str, text: &str) -> String {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p.display().to_string()
    }

    /// The error text for `body` appended to [`BASE`] (whose 9 lines come first).
    fn errors(body: &str) -> String {
        parse(&format!("{BASE}{body}"), "p.toml")
            .unwrap_err()
            .to_string()
    }

    /// `report` run by an operator who may read the journal but not the
    /// service's credentials (`/run/credentials/...`, root-only): the
    /// configuration still loads for reading, with its peers and channels,
    /// while the daemon's own load refuses it.
    #[test]
    fn a_reader_loads_a_config_whose_secrets_it_cannot_open() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("credentials");
        let text = format!(
            "[daemon]\ntls_cert = \"{g}/tls.crt\"\ntls_key = \"{g}/tls.key\"\n{BASE}[[peer]]\nname = \"abroad\"\nurl = \"https://vps.example:9898\"\ntoken_file = \"{g}/abroad.token\"\nca_file = \"{g}/ca.pem\"\n[[peer]]\nname = \"office\"\ntoken_file = \"{g}/office.token\"\n[[notify]]\nname = \"phone\"\nkind = \"ntfy\"\nurl = \"https://ntfy.example/lw\"\ntoken_file = \"{g}/ntfy.token\"\n",
            g = gone.display()
        );
        let path = dir.path().join("linkwatch.toml");
        std::fs::write(&path, &text).unwrap();
        let refused = crate::config::load(&path).unwrap_err().to_string();
        for key in [
            "daemon.tls_cert",
            "daemon.tls_key",
            "peer[0].token_file",
            "peer[0].ca_file",
            "peer[1].token_file",
            "notify[0].token_file",
        ] {
            assert!(refused.contains(key), "{key}: {refused}");
        }
        let read = crate::config::load_for_reading(&path).unwrap();
        let names: Vec<&str> = read.peers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["abroad", "office"]);
        assert_eq!(read.notify.len(), 1);
        assert_ne!(
            read.peers[0].token, read.peers[1].token,
            "distinct files, distinct placeholders"
        );
        // Everything else is still checked.
        std::fs::write(
            &path,
            text.replace("name = \"office\"", "name = \"abroad\""),
        )
        .unwrap();
        let e = crate::config::load_for_reading(&path)
            .unwrap_err()
            .to_string();
        assert!(e.contains("peer[1].name"), "{e}");
    }

    #[test]
    fn a_valid_peer_is_read_with_its_token_and_compare_map() {
        let dir = tempfile::tempdir().unwrap();
        let tok = secret(dir.path(), "t", "s3cret-token\n");
        let ca = secret(dir.path(), "ca.pem", "x");
        let cfg = parse(
            &format!(
                "{BASE}[[peer]]\nname = \"abroad\"\nurl = \"https://vps.example:9898\"\ntoken_file = \"{tok}\"\nca_file = \"{ca}\"\ncompare = {{ \"intl-web\" = \"web\" }}\n"
            ),
            "p.toml",
        )
        .unwrap();
        let p = &cfg.peers[0];
        assert_eq!(p.name, "abroad");
        assert_eq!(p.token.expose(), "s3cret-token");
        assert_eq!(p.their_target("intl-web"), "web");
        assert_eq!(p.their_target("other"), "other");
        assert!(!format!("{cfg:?}").contains("s3cret"));
        assert_eq!(cfg.daemon.witness_every, super::DEFAULT_WITNESS_EVERY);
        assert_eq!(cfg.daemon.tls_cert, None);
    }

    #[test]
    fn empty_and_world_readable_token_files_are_errors_at_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let empty = secret(dir.path(), "empty", "  \n");
        let open = secret(dir.path(), "open", "tok-open");
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = errors(&format!(
            "[[peer]]\nname = \"a\"\ntoken_file = \"{empty}\"\n[[peer]]\nname = \"b\"\ntoken_file = \"{open}\"\n"
        ));
        assert!(e.contains("p.toml:12:14: key `peer[0].token_file`"), "{e}");
        assert!(e.contains("is empty"), "{e}");
        assert!(e.contains("p.toml:15:14: key `peer[1].token_file`"), "{e}");
        assert!(e.contains("readable by every user"), "{e}");
        assert!(!e.contains("tok-open"), "{e}");
    }

    #[test]
    fn two_peers_with_one_token_are_refused_without_showing_it() {
        let dir = tempfile::tempdir().unwrap();
        let a = secret(dir.path(), "a", "same-token");
        let b = secret(dir.path(), "b", "same-token\n");
        let e = errors(&format!(
            "[[peer]]\nname = \"a\"\ntoken_file = \"{a}\"\n[[peer]]\nname = \"b\"\ntoken_file = \"{b}\"\n"
        ));
        assert!(e.contains("p.toml:15:14: key `peer[1].token_file`"), "{e}");
        assert!(e.contains("also [[peer]] a's token"), "{e}");
        assert!(!e.contains("same-token"), "{e}");
        let e = errors(&format!(
            "[[peer]]\nname = \"a\"\ntoken_file = \"{a}\"\n[[peer]]\nname = \"a\"\ntoken_file = \"{}\"\n",
            secret(dir.path(), "c", "other")
        ));
        assert!(e.contains("p.toml:14:8: key `peer[1].name`"), "{e}");
        assert!(e.contains("names must be unique"), "{e}");
    }

    #[test]
    fn ca_file_only_with_an_https_url() {
        let dir = tempfile::tempdir().unwrap();
        let tok = secret(dir.path(), "t", "tok");
        let ca = secret(dir.path(), "ca.pem", "x");
        let e = errors(&format!(
            "[[peer]]\nname = \"a\"\nurl = \"http://vps.example:9898\"\ntoken_file = \"{tok}\"\nca_file = \"{ca}\"\n"
        ));
        assert!(e.contains("p.toml:14:11: key `peer[0].ca_file`"), "{e}");
        assert!(e.contains("only to an https:// `url`"), "{e}");
        let e = errors(&format!(
            "[[peer]]\nname = \"a\"\ntoken_file = \"{tok}\"\nca_file = \"{ca}\"\n"
        ));
        assert!(e.contains("p.toml:13:11: key `peer[0].ca_file`"), "{e}");
        assert!(e.contains("has no `url`"), "{e}");
        let e = errors(&format!(
            "[[peer]]\nname = \"a\"\nurl = \"https://vps.example\"\ntoken_file = \"{tok}\"\nca_file = \"/nonexistent/ca.pem\"\n"
        ));
        assert!(
            e.contains("key `peer[0].ca_file`: `ca_file` (/nonexistent/ca.pem) cannot be read"),
            "{e}"
        );
        let e = errors(&format!(
            "[[peer]]\nname = \"a\"\nurl = \"ftp://vps.example\"\ntoken_file = \"{tok}\"\n"
        ));
        assert!(e.contains("p.toml:12:7: key `peer[0].url`"), "{e}");
    }

    #[test]
    fn compare_keys_must_be_our_targets() {
        let dir = tempfile::tempdir().unwrap();
        let tok = secret(dir.path(), "t", "tok");
        let e = errors(&format!(
            "[[peer]]\nname = \"a\"\ntoken_file = \"{tok}\"\ncompare = {{ \"intl-web\" = \"w\", \"nope\" = \"x\" }}\n"
        ));
        assert!(
            e.contains("p.toml:13:31: key `peer[0].compare.nope`"),
            "{e}"
        );
        assert!(e.contains("is not one of our targets"), "{e}");
        assert!(!e.contains("compare.intl-web"), "{e}");
        let e = errors(&format!(
            "[[peer]]\nname = \"a\"\ntoken_file = \"{tok}\"\ncompare = {{ \"intl-web\" = 3 }}\n"
        ));
        assert!(
            e.contains("key `peer[0].compare.intl-web`: expected a string"),
            "{e}"
        );
        let e = errors(&format!(
            "[[peer]]\nname = \"a\"\ntoken_file = \"{tok}\"\nsecret = \"x\"\n"
        ));
        assert!(
            e.contains("p.toml:13:1: key `peer[0].secret`: unknown key"),
            "{e}"
        );
    }

    #[test]
    fn tls_cert_and_key_come_together_and_must_be_pem() {
        let dir = tempfile::tempdir().unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert_pem = secret(dir.path(), "cert.pem", &cert.cert.pem());
        let key_pem = secret(dir.path(), "key.pem", &cert.signing_key.serialize_pem());
        let e = errors(&format!("[daemon]\ntls_cert = \"{cert_pem}\"\n"));
        assert!(e.contains("p.toml:11:12: key `daemon.tls_cert`"), "{e}");
        assert!(e.contains("needs `tls_key`"), "{e}");
        let e = errors(&format!("[daemon]\ntls_key = \"{key_pem}\"\n"));
        assert!(e.contains("p.toml:11:11: key `daemon.tls_key`"), "{e}");
        assert!(e.contains("needs `tls_cert`"), "{e}");
        // The certificate where the key belongs, and the reverse.
        let e = errors(&format!(
            "[daemon]\ntls_cert = \"{key_pem}\"\ntls_key = \"{cert_pem}\"\n"
        ));
        assert!(e.contains("key `daemon.tls_cert`"), "{e}");
        assert!(e.contains("holds no certificate"), "{e}");
        assert!(e.contains("key `daemon.tls_key`"), "{e}");
        assert!(e.contains("holds no PEM private key"), "{e}");
        std::fs::set_permissions(&key_pem, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = errors(&format!(
            "[daemon]\ntls_cert = \"{cert_pem}\"\ntls_key = \"{key_pem}\"\n"
        ));
        assert!(e.contains("key `daemon.tls_key`"), "{e}");
        assert!(e.contains("readable by every user"), "{e}");
        std::fs::set_permissions(&key_pem, std::fs::Permissions::from_mode(0o600)).unwrap();
        let cfg = parse(
            &format!("[daemon]\ntls_cert = \"{cert_pem}\"\ntls_key = \"{key_pem}\"\nwitness_every = \"30s\"\n{BASE}"),
            "p.toml",
        )
        .unwrap();
        assert_eq!(
            cfg.daemon.tls_cert.as_deref(),
            Some(std::path::Path::new(&cert_pem))
        );
        assert_eq!(cfg.daemon.witness_every, std::time::Duration::from_secs(30));
        let e = errors("[daemon]\nwitness_every = \"5s\"\n");
        assert!(
            e.contains("p.toml:11:17: key `daemon.witness_every`"),
            "{e}"
        );
        assert!(e.contains("10s..=24h"), "{e}");
    }
}
