//! `kind = "http"`: a GET or HEAD of `url`, with header, status and body checks.

use std::net::IpAddr;
use std::path::PathBuf;

use http::{HeaderName, HeaderValue};
use toml::de::DeValue;
use url::Url;

use super::super::error::shown;
use super::super::model::{BodyMatch, HttpMethod, HttpSpec, IpVersion};
use super::super::validate;
use super::super::walk::{Reported, Tbl, Walker, all_or_reported};

pub(super) const KEYS: &[&str] = &[
    "url",
    "method",
    "headers",
    "expect_status",
    "body_contains",
    "body_regex",
    "follow_redirects",
    "ip_version",
    "max_body",
    "ca_file",
    "tls_verify",
    "pin_spki",
    "expect_issuer",
    "sni_control",
    "blockpage",
];

/// Redirects a target may follow at most.
const MAX_REDIRECTS: i64 = 10;

pub(super) fn parse(w: &mut Walker<'_>, t: &Tbl<'_, '_>) -> Option<HttpSpec> {
    let url = w.string(t, "url");
    let url = w.check(t, "url", url, |s| url_value(s));
    let url = w.missing(t, "url", url);
    let method = w.string(t, "method");
    let method = w.check(t, "method", method, |s| {
        match s.to_ascii_uppercase().as_str() {
            "GET" => Ok(HttpMethod::Get),
            "HEAD" => Ok(HttpMethod::Head),
            _ => Err(format!(
                "`method` ({s}) must be \"GET\" or \"HEAD\"",
                s = shown(s)
            )),
        }
    });
    let headers = headers(w, t);
    let expect_status = expect_status(w, t);
    let body_contains = w.string(t, "body_contains");
    let body_contains = w.check(t, "body_contains", body_contains, |s| {
        if s.is_empty() {
            Err("`body_contains` must not be empty".to_owned())
        } else {
            Ok(BodyMatch::Substring(s.clone()))
        }
    });
    let body_regex = w.string(t, "body_regex");
    let mut body_regex = w.check(t, "body_regex", body_regex, |s| {
        regex::Regex::new(s).map(BodyMatch::Regex).map_err(|e| {
            format!(
                "`body_regex` ({s}) is not a valid regex: {}",
                regex_reason(&e),
                s = shown(s)
            )
        })
    });
    if let (Ok(Some(_)), Ok(Some(re))) = (&body_contains, &body_regex) {
        let r = w.report(
            re.span.clone(),
            t.key("body_regex"),
            "`body_contains` and `body_regex` cannot both be set; keep one".into(),
        );
        body_regex = Err(r);
    }
    let follow_redirects = w.integer(t, "follow_redirects", 0, MAX_REDIRECTS);
    let ip_version = super::ip_version(w, t);
    let max_body = w.integer(t, "max_body", 1, HttpSpec::MAX_BODY_LIMIT as i64);
    let ca_file = w.nonempty(t, "ca_file");
    let tls_verify = w.boolean(t, "tls_verify");
    let pin_spki = pin_spki(w, t);
    let expect_issuer = w.nonempty(t, "expect_issuer");
    let sni_control = w.nonempty(t, "sni_control");
    let sni_control = w.check(t, "sni_control", sni_control, |s| sni_name(s));
    let blockpage = super::super::interference::blockpage_rules(w, t, "blockpage");
    if let Ok(u) = &url
        && u.value.scheme() != "https"
    {
        // Keys that only mean something over TLS can never apply to http://.
        for key in ["pin_spki", "expect_issuer", "sni_control"] {
            if let Some(v) = t.get(key) {
                let message = format!(
                    "`{key}` needs an https URL, but `url` ({}) is {}://; remove it or use https",
                    shown(u.value.as_str()),
                    u.value.scheme()
                );
                w.report(v.span(), t.key(key), message);
            }
        }
    }
    let ip = match &url {
        Ok(u) => match u.value.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        },
        Err(_) => None,
    };
    super::check_family(w, t, ip, "url", &ip_version);
    let body_match = match (body_contains.ok()?, body_regex.ok()?) {
        (Some(m), _) | (None, Some(m)) => Some(m.value),
        (None, None) => None,
    };
    Some(HttpSpec {
        url: url.ok()?.value,
        method: method.ok()?.map_or(HttpMethod::Get, |v| v.value),
        headers: headers.ok()?,
        expect_status: expect_status.ok()?,
        body_match,
        follow_redirects: follow_redirects.ok()?.map_or(0, |v| v.value) as u8,
        ip_version: ip_version.ok()?.map_or(IpVersion::Any, |v| v.value),
        max_body: max_body
            .ok()?
            .map_or(HttpSpec::DEFAULT_MAX_BODY, |v| v.value as u64),
        ca_file: ca_file.ok()?.map(|v| PathBuf::from(v.value)),
        tls_verify: tls_verify.ok()?.is_none_or(|v| v.value),
        pin_spki: pin_spki.ok()?,
        expect_issuer: expect_issuer.ok()?.map(|v| v.value.trim().to_owned()),
        sni_control: sni_control.ok()?.map(|v| v.value),
        blockpage: blockpage.ok()?,
    })
}

/// `pin_spki = ["base64…", …]`: each a base64 SHA-256 fingerprint (32 bytes,
/// curl's `sha256//` prefix allowed). A pin that can never match is an error.
fn pin_spki(w: &mut Walker<'_>, t: &Tbl<'_, '_>) -> Result<Vec<String>, Reported> {
    const EXPECTED: &str = "an array of base64 SHA-256 fingerprints";
    let items = w.array(t, "pin_spki", EXPECTED)?;
    if let Some(v) = t.get("pin_spki")
        && items.is_empty()
    {
        let message =
            "`pin_spki` is empty: it would reject every key; remove it or add a pin".to_owned();
        return Err(w.report(v.span(), t.key("pin_spki"), message));
    }
    let pins = items
        .into_iter()
        .map(|(key, item)| {
            let DeValue::String(s) = item.get_ref() else {
                return Err(w.wrong_type(key, item, "a base64 SHA-256 fingerprint string"));
            };
            pin_value(s.trim()).map_err(|reason| {
                let message = format!("`pin_spki` entry ({}) can never match: {reason}", shown(s));
                w.report(item.span(), key, message)
            })
        })
        .collect();
    all_or_reported(pins)
}

/// A `pin_spki` entry as written (optionally with curl's `sha256//` prefix)
/// to its canonical form (standard base64, padded), or why it can never match.
pub(crate) fn pin_value(text: &str) -> Result<String, String> {
    let bare = text.strip_prefix("sha256//").unwrap_or(text);
    let bytes = base64_decode(bare).ok_or_else(|| "it is not valid base64".to_string())?;
    if bytes.len() != 32 {
        return Err(format!(
            "it decodes to {} bytes, not the 32 of a SHA-256 fingerprint",
            bytes.len()
        ));
    }
    // Strict decoding (zero trailing bits) makes the padded text canonical.
    let unpadded = bare.trim_end_matches('=');
    Ok(format!("{unpadded}="))
}

/// Standard base64, padding optional but correct when present; `None` for
/// any other character, a bad length or non-zero trailing bits.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let body = text.trim_end_matches('=');
    let pad = text.len() - body.len();
    if pad > 2 || (pad > 0 && !text.len().is_multiple_of(4)) || body.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in body.bytes() {
        let v = ALPHABET.iter().position(|&a| a == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if acc != 0 {
        return None;
    }
    Some(out)
}

/// `sni_control`: a DNS name to send as the TLS server name.
fn sni_name(s: &str) -> Result<String, String> {
    let name = s.trim().trim_end_matches('.');
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.parse::<IpAddr>().is_err()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if valid {
        Ok(name.to_ascii_lowercase())
    } else {
        Err(format!(
            "`sni_control` ({}) must be a DNS name (the TLS server name tried on the same address)",
            shown(s)
        ))
    }
}

/// An http or https URL with a host.
pub(super) fn url_value(s: &str) -> Result<Url, String> {
    validate::url_text(s)
        .map_err(|reason| format!("`url` ({}) is not a valid URL: {reason}", shown(s)))?;
    let url =
        Url::parse(s).map_err(|e| format!("`url` ({s}) is not a valid URL: {e}", s = shown(s)))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "`url` ({s}) has scheme `{}`; only http and https are supported",
            url.scheme(),
            s = shown(s)
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("`url` ({s}) has no host", s = shown(s)));
    }
    validate::http_url(&url)
        .map_err(|reason| format!("`url` ({s}) is not usable: {reason}", s = shown(s)))?;
    Ok(url)
}

/// `[target.headers]`: names and values parsed into their HTTP types here, once.
pub(super) fn headers(
    w: &mut Walker<'_>,
    t: &Tbl<'_, '_>,
) -> Result<Vec<(HeaderName, HeaderValue)>, Reported> {
    let Some(h) = w.table(t, "headers")? else {
        return Ok(Vec::new());
    };
    let mut headers = Vec::new();
    for (k, v) in h.map.iter() {
        let name: &str = k.get_ref();
        let key = h.key(name);
        let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
            let message = format!(
                "header name `{name}` is not a valid HTTP header name",
                name = shown(name)
            );
            headers.push(Err(w.report(k.span(), key, message)));
            continue;
        };
        let DeValue::String(value) = v.get_ref() else {
            headers.push(Err(w.wrong_type(key, v, "a string")));
            continue;
        };
        if name == http::header::CONTENT_LENGTH && value.trim() != "0" {
            // The request has no body: the server would wait for it until the timeout.
            let message = format!(
                "header `{}` ({value}) announces a body the probe never sends, \
                 so every request would wait for it until the timeout; remove it",
                k.get_ref(),
                value = shown(value)
            );
            headers.push(Err(w.report(v.span(), key, message)));
            continue;
        }
        let Ok(value) = HeaderValue::from_str(value) else {
            let message = format!(
                "header value `{}` contains characters not allowed in HTTP headers",
                shown(value).escape_debug()
            );
            headers.push(Err(w.report(v.span(), key, message)));
            continue;
        };
        headers.push(Ok((name, value)));
    }
    all_or_reported(headers)
}

fn expect_status(w: &mut Walker<'_>, t: &Tbl<'_, '_>) -> Result<Vec<u16>, Reported> {
    let items = w.array(t, "expect_status", "an array of status codes")?;
    let codes = items
        .into_iter()
        .map(|(key, item)| w.integer_value(key, item, 100, 599).map(|c| c.value as u16))
        .collect();
    all_or_reported(codes)
}

/// The reason in a regex error, without the pattern and caret lines above it.
fn regex_reason(e: &regex::Error) -> String {
    let text = e.to_string();
    let last = text.lines().last().unwrap_or("").trim();
    last.strip_prefix("error: ").unwrap_or(last).to_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::config::{TargetSpec, parse};

    const BASE: &str =
        "[[group]]\nname = \"g\"\n[[target]]\nname = \"t\"\ngroup = \"g\"\nkind = \"http\"\n";

    fn spec(tail: &str) -> crate::config::HttpSpec {
        let c = parse(&format!("{BASE}{tail}"), "t.toml").unwrap();
        match &c.targets[0].spec {
            TargetSpec::Http(s) => (**s).clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn interference_keys_parse() {
        let pin = "CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=".to_string(); // [9; 32]
        let s = spec(&format!(
            "url = \"https://example.org/\"\npin_spki = [\"{pin}\", \"sha256//{pin}\"]\nexpect_issuer = \" Let's Encrypt \"\nsni_control = \"Other.Example\"\nblockpage = [{{ status = 451, body_regex = \"Blocked\" }}]\n"
        ));
        assert_eq!(s.pin_spki, [pin.clone(), pin]);
        assert_eq!(s.expect_issuer.as_deref(), Some("Let's Encrypt"));
        assert_eq!(s.sni_control.as_deref(), Some("other.example"));
        assert_eq!(s.blockpage.len(), 1);
        assert!(s.blockpage[0].matches(451, b"Blocked here"));
        // Defaults.
        let s = spec("url = \"http://example.org/\"\nblockpage = [{ body_regex = \"x\" }]\n");
        assert!(s.pin_spki.is_empty() && s.expect_issuer.is_none() && s.sni_control.is_none());
        assert_eq!(s.blockpage.len(), 1, "blockpage also applies to http://");
    }

    #[test]
    fn pins_must_be_32_bytes_of_strict_base64() {
        use super::{base64_decode, pin_value};
        for (raw, text) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_decode(text).unwrap(), raw);
        }
        assert_eq!(base64_decode("Zm8").unwrap(), b"fo");
        for bad in ["Zm8==", "Z", "Zm9v!", "Zh==", "Zm8=Zm8=", "Zg==="] {
            assert_eq!(base64_decode(bad), None, "{bad}");
        }
        let good = "CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=";
        assert_eq!(pin_value(good).unwrap(), good);
        assert_eq!(pin_value(&format!("sha256//{good}")).unwrap(), good);
        assert_eq!(pin_value(good.trim_end_matches('=')).unwrap(), good);
        assert!(pin_value("not base64!").unwrap_err().contains("base64"));
        assert!(
            pin_value("CQkJCQkJCQkJCQkJCQkJCQkJCQk=")
                .unwrap_err()
                .contains("20 bytes")
        );
    }

    #[test]
    fn bad_interference_keys_name_file_line_column() {
        let short = "CQkJCQkJCQkJCQkJCQkJCQkJCQk="; // [9; 20]
        for (tail, key, words) in [
            (
                "url = \"https://e.org/\"\npin_spki = [\"not base64!\"]".to_string(),
                "target[0].pin_spki[0]",
                "not valid base64",
            ),
            (
                format!("url = \"https://e.org/\"\npin_spki = [\"{short}\"]"),
                "target[0].pin_spki[0]",
                "20 bytes",
            ),
            (
                "url = \"https://e.org/\"\npin_spki = []".to_string(),
                "target[0].pin_spki",
                "empty",
            ),
            (
                "url = \"https://e.org/\"\npin_spki = [3]".to_string(),
                "target[0].pin_spki[0]",
                "expected a base64",
            ),
            (
                "url = \"https://e.org/\"\nsni_control = \"not a name\"".to_string(),
                "target[0].sni_control",
                "must be a DNS name",
            ),
            (
                "url = \"https://e.org/\"\nsni_control = \"192.0.2.1\"".to_string(),
                "target[0].sni_control",
                "must be a DNS name",
            ),
            (
                "url = \"http://e.org/\"\nsni_control = \"other.example\"".to_string(),
                "target[0].sni_control",
                "needs an https URL",
            ),
            (
                "url = \"http://e.org/\"\nexpect_issuer = \"X\"".to_string(),
                "target[0].expect_issuer",
                "needs an https URL",
            ),
            (
                "url = \"https://e.org/\"\nexpect_issuer = \"\"".to_string(),
                "target[0].expect_issuer",
                "must not be empty",
            ),
            (
                "url = \"https://e.org/\"\nblockpage = [{ status = 451 }]".to_string(),
                "target[0].blockpage[0].body_regex",
                "missing required key",
            ),
        ] {
            let err = parse(&format!("{BASE}{tail}\n"), "t.toml")
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("t.toml:8:") || err.contains("t.toml:7:"),
                "{err}"
            );
            assert!(err.contains(key), "{key}: {err}");
            assert!(err.contains(words), "{words}: {err}");
        }
    }
}
