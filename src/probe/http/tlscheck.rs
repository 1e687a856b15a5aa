//! The interference checks of HTTP targets (see [`crate::interference`]):
//! judging a TLS leaf against `pin_spki`, `expect_issuer` and the issuers
//! learned for the target (`tls_intercepted`), the `sni_control` verdict
//! (`sni_blocked`) and block pages (`blockpage`). Each check only measures.
//!
//! Learned issuers live in `<data_dir>/tls_issuers.json` so that they survive
//! restarts: an issuer is learned from a chain that validated (a CA rotation
//! is learned and logged, never a failure), and a chain that fails
//! validation with an issuer never seen for the target, while a usual one is
//! known, is the sign of an interception proxy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::config::interference::BlockpageRule;
use crate::interference::{Check, Evidence};
use crate::probe::net::x509::LeafFacts;

/// File name of the learned issuers in `data_dir`.
pub const ISSUERS_FILE: &str = "tls_issuers.json";

/// Issuers kept per target at most (the oldest go first): a target behind a
/// CDN that rotates among many CAs must not grow the file without bound.
const MAX_ISSUERS: usize = 16;

/// The file's content.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Learned {
    /// Target name → issuers learned from validated chains, oldest first.
    targets: BTreeMap<String, Vec<LearnedIssuer>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LearnedIssuer {
    issuer: String,
    first_seen: jiff::Timestamp,
}

/// The usual issuers of every HTTPS target, loaded on first use.
pub struct IssuerBook {
    path: Option<PathBuf>,
    state: Mutex<Option<Learned>>,
    /// Serializes writers: each writes the state as it is when it gets the
    /// lock, so the last rename carries every issuer learned before it.
    writing: Mutex<()>,
}

impl IssuerBook {
    /// A book kept in `<data_dir>/tls_issuers.json`; `None` keeps it in memory only.
    pub fn new(data_dir: Option<&Path>) -> Self {
        Self {
            path: data_dir.map(|d| d.join(ISSUERS_FILE)),
            state: Mutex::new(None),
            writing: Mutex::new(()),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Learned) -> T) -> T {
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let learned = guard.get_or_insert_with(|| self.load());
        f(learned)
    }

    /// Reads the file; a missing file is an empty book, a corrupt one is
    /// logged and ignored (it is replaced at the next issuer learned).
    fn load(&self) -> Learned {
        let Some(path) = &self.path else {
            return Learned::default();
        };
        match std::fs::read(path) {
            Ok(bytes) => match serde_json::from_slice::<Learned>(&bytes) {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "the learned TLS issuers file is not valid; ignoring it (issuers are learned again from validated chains)");
                    Learned::default()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Learned::default(),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "failed to read the learned TLS issuers file; ignoring it");
                Learned::default()
            }
        }
    }

    /// The issuers learned for `target`.
    pub fn usual(&self, target: &str) -> Vec<String> {
        self.with(|l| {
            l.targets
                .get(target)
                .map(|v| v.iter().map(|i| i.issuer.clone()).collect())
                .unwrap_or_default()
        })
    }

    /// Learns `issuer` for `target` from a validated chain; true when it is
    /// new (then logged and written to the file).
    pub async fn learn(self: &Arc<Self>, target: &str, issuer: &str) -> bool {
        let before = self.with(|l| {
            let list = l.targets.entry(target.to_string()).or_default();
            if list.iter().any(|i| i.issuer == issuer) {
                return None;
            }
            let before: Vec<String> = list.iter().map(|i| i.issuer.clone()).collect();
            list.push(LearnedIssuer {
                issuer: issuer.to_string(),
                first_seen: jiff::Timestamp::now(),
            });
            if list.len() > MAX_ISSUERS {
                list.remove(0);
            }
            Some(before)
        });
        let Some(before) = before else {
            return false;
        };
        if before.is_empty() {
            tracing::info!(target_name = %target, issuer = %issuer, "learned the TLS issuer of this target");
        } else {
            tracing::info!(target_name = %target, issuer = %issuer, usual = %before.join("; "), "learned a new TLS issuer from a validated chain (a CA rotation, not a failure)");
        }
        let me = Arc::clone(self);
        match tokio::task::spawn_blocking(move || me.save()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "failed to write the learned TLS issuers; they are kept in memory until the next restart");
            }
            Err(e) => tracing::warn!(error = %e, "the task writing the learned TLS issuers failed"),
        }
        true
    }

    /// Writes the book atomically (temporary file, fsync, rename, fsync dir).
    fn save(&self) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let _writing = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        let snapshot = self.with(|l| l.clone());
        let bytes = serde_json::to_vec_pretty(&snapshot).map_err(std::io::Error::other)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let tmp = dir.join(format!(".{ISSUERS_FILE}.{}.tmp", std::process::id()));
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let _ = std::fs::remove_file(&tmp);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)?;
            std::fs::File::open(dir)?.sync_all()
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))
        })
    }
}

/// What the leaf says about interception, given the target's keys and the
/// usual issuers; `validation` is the verifier's error when the chain failed.
pub fn judge(
    facts: &LeafFacts,
    pins: &[String],
    expect_issuer: Option<&str>,
    usual: &[String],
    validation: Option<&str>,
    name: &str,
    peer: &str,
) -> Option<Evidence> {
    let issuer = facts.issuer.to_string();
    let failed = validation
        .map(|v| format!("; the chain fails validation ({v})"))
        .unwrap_or_default();
    let detail = if !pins.is_empty() && !pins.contains(&facts.spki) {
        format!(
            "the TLS leaf key of {name} at {peer} is not among the {} pinned key(s) (pin_spki); issuer {issuer}{failed}",
            pins.len()
        )
    } else if let Some(expected) = expect_issuer
        && !facts.issuer.matches(expected)
    {
        format!(
            "the TLS chain of {name} at {peer} comes from issuer {issuer}, not the expected {expected:?} (expect_issuer){failed}"
        )
    } else if let Some(v) = validation
        && !usual.is_empty()
        && !usual.contains(&issuer)
    {
        format!(
            "the TLS chain of {name} at {peer} comes from issuer {issuer}, never seen for this target (usual: {}), and fails validation ({v})",
            usual.join("; ")
        )
    } else {
        return None;
    };
    Some(
        Evidence::new(Check::TlsIntercepted, name, detail).with_raw(vec![
            format!("issuer: {issuer}"),
            format!("spki: sha256/{}", facts.spki),
        ]),
    )
}

/// The first rule that `status` and `body` match: the target's own rules
/// first, then `[interference] blockpage`; with where the rule came from.
pub fn blockpage<'a>(
    own: &'a [BlockpageRule],
    shared: &'a [BlockpageRule],
    status: u16,
    body: &[u8],
) -> Option<(&'a BlockpageRule, &'static str)> {
    own.iter()
        .map(|r| (r, "the target's blockpage"))
        .chain(shared.iter().map(|r| (r, "[interference] blockpage")))
        .find(|(r, _)| r.matches(status, body))
}

/// The evidence of a block page: raw = the status and the body's first 200 characters.
pub fn blockpage_evidence(
    rule: &BlockpageRule,
    from: &str,
    url: &url::Url,
    status: u16,
    body: &[u8],
) -> Evidence {
    let text = String::from_utf8_lossy(body);
    let start: String = text.chars().take(200).collect();
    Evidence::new(
        Check::Blockpage,
        url.host_str().unwrap_or_default(),
        format!(
            "{url} answered HTTP {status} with a body matching the block page rule {} ({from})",
            rule.describe()
        ),
    )
    .with_raw(vec![
        format!("status {status}"),
        format!("body starts {start:?}"),
    ])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::probe::net::x509::Dn;

    fn facts(issuer: &[(&str, &str)], spki: &str) -> LeafFacts {
        LeafFacts {
            issuer: Dn {
                rdns: issuer
                    .iter()
                    .rev()
                    .map(|(t, v)| vec![(t.to_string(), v.to_string())])
                    .collect(),
            },
            spki: spki.into(),
        }
    }

    #[test]
    fn judge_fires_on_pins_issuer_and_unseen_issuer_only() {
        let le = facts(&[("CN", "R11"), ("O", "Let's Encrypt")], "AAA=");
        let mitm = facts(&[("CN", "Interceptor CA")], "BBB=");
        let usual = vec!["CN=R11, O=Let's Encrypt".to_string()];
        let j = |f: &LeafFacts, pins: &[&str], expect: Option<&str>, usual: &[String], v| {
            let pins: Vec<String> = pins.iter().map(|s| s.to_string()).collect();
            judge(f, &pins, expect, usual, v, "example.org", "192.0.2.1:443")
        };
        // Nothing configured, nothing learned, valid: no evidence.
        assert_eq!(j(&le, &[], None, &[], None), None);
        // Pins.
        assert_eq!(j(&le, &["AAA="], None, &[], None), None);
        let e = j(&mitm, &["AAA="], None, &[], None).unwrap();
        assert_eq!(e.check, Check::TlsIntercepted);
        assert!(e.detail.contains("not among the 1 pinned"), "{}", e.detail);
        assert_eq!(e.raw, ["issuer: CN=Interceptor CA", "spki: sha256/BBB="]);
        assert_eq!(e.name, "example.org");
        // expect_issuer: one RDN value or the whole DN.
        assert_eq!(j(&le, &[], Some("Let's Encrypt"), &[], None), None);
        assert!(j(&mitm, &[], Some("Let's Encrypt"), &[], None).is_some());
        // Learned: only a failed validation from an unseen issuer counts.
        assert_eq!(j(&mitm, &[], None, &usual, None), None, "valid: a rotation");
        let e = j(
            &mitm,
            &[],
            None,
            &usual,
            Some("invalid certificate: unknown issuer"),
        )
        .unwrap();
        assert!(e.detail.contains("never seen"), "{}", e.detail);
        assert!(e.detail.contains("Interceptor CA"), "{}", e.detail);
        assert_eq!(j(&le, &[], None, &usual, Some("expired")), None);
        assert_eq!(j(&mitm, &[], None, &[], Some("unknown issuer")), None);
    }

    #[tokio::test]
    async fn the_book_survives_a_restart_and_ignores_a_corrupt_file() {
        let dir = tempfile::tempdir().unwrap();
        let book = Arc::new(IssuerBook::new(Some(dir.path())));
        assert!(book.usual("web").is_empty());
        assert!(book.learn("web", "CN=A").await);
        assert!(!book.learn("web", "CN=A").await);
        assert!(book.learn("web", "CN=B").await);
        let again = IssuerBook::new(Some(dir.path()));
        assert_eq!(again.usual("web"), ["CN=A", "CN=B"]);
        assert!(again.usual("other").is_empty());

        std::fs::write(dir.path().join(ISSUERS_FILE), b"{not json").unwrap();
        let corrupt = Arc::new(IssuerBook::new(Some(dir.path())));
        assert!(corrupt.usual("web").is_empty());
        assert!(corrupt.learn("web", "CN=C").await);
        assert_eq!(IssuerBook::new(Some(dir.path())).usual("web"), ["CN=C"]);
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [ISSUERS_FILE]);
    }

    #[tokio::test]
    async fn the_book_is_bounded_per_target() {
        let book = Arc::new(IssuerBook::new(None));
        for i in 0..(MAX_ISSUERS + 3) {
            book.learn("web", &format!("CN={i}")).await;
        }
        let usual = book.usual("web");
        assert_eq!(usual.len(), MAX_ISSUERS);
        assert_eq!(usual[0], "CN=3");
    }

    #[test]
    fn blockpage_prefers_the_targets_rules_and_keeps_200_chars() {
        let rule = |status, re: &str| BlockpageRule {
            status,
            body_regex: regex::Regex::new(re).unwrap(),
        };
        let own = [rule(Some(451), "Blocked")];
        let shared = [rule(None, "(?i)blocked")];
        let (r, from) = blockpage(&own, &shared, 451, b"Blocked by order").unwrap();
        assert_eq!(r.status, Some(451));
        assert_eq!(from, "the target's blockpage");
        let (_, from) = blockpage(&own, &shared, 200, b"blocked").unwrap();
        assert_eq!(from, "[interference] blockpage");
        assert!(blockpage(&own, &shared, 200, b"fine").is_none());
        let body = "x".repeat(500);
        let url = url::Url::parse("http://example.org/").unwrap();
        let e = blockpage_evidence(&own[0], "t", &url, 451, body.as_bytes());
        assert_eq!(e.raw[0], "status 451");
        assert_eq!(e.raw[1], format!("body starts {:?}", "x".repeat(200)));
        assert_eq!(e.name, "example.org");
    }
}
