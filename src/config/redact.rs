//! Secrets in configuration values (URL credentials, secret-looking query
//! values), redacted wherever a value is shown: the status page and API, the
//! `probe` table, and the log.

/// What replaces a secret wherever linkwatch shows configuration.
pub const REDACTED: &str = "***";

/// Query parameters whose values are taken for secrets.
const SECRET_PARAMS: &[&str] = &[
    "token",
    "access_token",
    "auth",
    "key",
    "apikey",
    "api_key",
    "secret",
    "password",
    "pass",
    "sig",
    "signature",
    "session",
];

/// Whether a query parameter's value is taken for a secret (`token`, `…_key`, …).
pub fn secret_param(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    SECRET_PARAMS
        .iter()
        .any(|p| n == *p || n.ends_with(&format!("_{p}")))
}

/// `url` without its user name and password (`https://***@host/…`) and with
/// the values of secret-looking query parameters replaced.
pub fn redact_url(url: &url::Url) -> String {
    let mut u = url.clone();
    if !u.username().is_empty() || u.password().is_some() {
        let _ = u.set_password(None);
        let _ = u.set_username(REDACTED);
    }
    if u.query().is_some() {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let v = if secret_param(&k) {
                    REDACTED.to_string()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.to_string()
}
