//! `[interference]`: settings the interference checks share (see
//! [`crate::interference`]): block-page patterns that apply to every HTTP
//! target, and address blocks never counted as bogons in DNS answers.
//! Per-target keys (`compare_with`, `pin_spki`, `expect_issuer`,
//! `sni_control`, `blockpage`, `control_url`) live with their kinds in
//! `spec/`; [`blockpage_rules`] reads the per-target `blockpage` the same way.

use super::error::shown;
use super::net::Cidr;
use super::walk::{Reported, Tbl, Walker, all_or_reported};

/// `[interference]`, with its defaults when absent.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InterferenceConfig {
    /// Block-page patterns tried on every HTTP target's answer (a target's
    /// own `blockpage` rules are tried first).
    pub blockpage: Vec<BlockpageRule>,
    /// Blocks whose addresses are never `dns_bogon` (split-horizon names a
    /// local resolver legitimately maps to private addresses). An address
    /// both resolvers return is never suspect anyway.
    pub bogon_exempt: Vec<Cidr>,
}

/// One block-page pattern: an answer is a block page when its status is
/// `status` (any status when absent) and its body (the first `max_body`
/// bytes read) matches `body_regex`.
#[derive(Debug, Clone)]
pub struct BlockpageRule {
    pub status: Option<u16>,
    pub body_regex: regex::Regex,
}

impl PartialEq for BlockpageRule {
    fn eq(&self, other: &Self) -> bool {
        self.status == other.status && self.body_regex.as_str() == other.body_regex.as_str()
    }
}

impl BlockpageRule {
    /// Whether an answer with `status` and `body` is this block page.
    pub fn matches(&self, status: u16, body: &[u8]) -> bool {
        self.status.is_none_or(|s| s == status)
            && self.body_regex.is_match(&String::from_utf8_lossy(body))
    }

    /// The rule as people read it: `status 451, body ~ /Blocked by/`.
    pub fn describe(&self) -> String {
        match self.status {
            Some(s) => format!("status {s}, body ~ /{}/", self.body_regex.as_str()),
            None => format!("body ~ /{}/", self.body_regex.as_str()),
        }
    }
}

pub(super) const KEYS: &[&str] = &["blockpage", "bogon_exempt"];

/// `[interference]`; `None` when a problem was reported.
pub(super) fn section(w: &mut Walker<'_>, root: &Tbl<'_, '_>) -> Option<InterferenceConfig> {
    let t = match w.table(root, "interference") {
        Ok(Some(t)) => t,
        Ok(None) => return Some(InterferenceConfig::default()),
        Err(_) => return None,
    };
    w.check_keys(&t, KEYS);
    let blockpage = blockpage_rules(w, &t, "blockpage");
    let bogon_exempt = bogon_exempt(w, &t);
    Some(InterferenceConfig {
        blockpage: blockpage.ok()?,
        bogon_exempt: bogon_exempt.ok()?,
    })
}

/// `key = [{ status = 451, body_regex = "..." }, …]` in table `t`: each rule
/// needs `body_regex` (a valid regex); `status` is optional (100..=599).
/// Problems are reported at the rule's key with file:line:col.
pub(super) fn blockpage_rules(
    w: &mut Walker<'_>,
    t: &Tbl<'_, '_>,
    key: &str,
) -> Result<Vec<BlockpageRule>, Reported> {
    let rules = w.array_of_tables(t, key);
    let rules = rules
        .into_iter()
        .map(|rule| {
            let rule = rule?;
            w.check_keys(&rule, &["status", "body_regex"]);
            let status = w.integer(&rule, "status", 100, 599);
            let re = w.string(&rule, "body_regex");
            let re = w.check(&rule, "body_regex", re, |s| {
                if s.is_empty() {
                    return Err(
                        "`body_regex` must not be empty: it would match every answer".into(),
                    );
                }
                regex::Regex::new(s).map_err(|e| {
                    let text = e.to_string();
                    let last = text.lines().last().unwrap_or("").trim();
                    format!(
                        "`body_regex` ({s}) is not a valid regex: {}",
                        last.strip_prefix("error: ").unwrap_or(last),
                        s = shown(s)
                    )
                })
            });
            let re = w.missing(&rule, "body_regex", re);
            Ok(BlockpageRule {
                status: status?.map(|v| v.value as u16),
                body_regex: re?.value,
            })
        })
        .collect();
    all_or_reported(rules)
}

fn bogon_exempt(w: &mut Walker<'_>, t: &Tbl<'_, '_>) -> Result<Vec<Cidr>, Reported> {
    super::walk::cidr_list(
        w,
        t,
        "bogon_exempt",
        "an array of address blocks such as [\"10.0.0.0/8\"]",
    )
}

#[cfg(test)]
mod tests {
    use crate::config::parse;

    const BASE: &str = "[[group]]\nname = \"g\"\n[[target]]\nname = \"t\"\ngroup = \"g\"\nkind = \"icmp\"\nhost = \"127.0.0.1\"\n";

    #[test]
    fn the_section_parses_and_defaults_to_empty() {
        let c = parse(BASE, "t.toml").unwrap();
        assert!(c.interference.blockpage.is_empty());
        assert!(c.interference.bogon_exempt.is_empty());
        let text = format!(
            "{BASE}[interference]\nbogon_exempt = [\"10.231.100.0/24\"]\nblockpage = [{{ status = 451, body_regex = \"Blocked by order\" }}, {{ body_regex = \"(?i)access denied\" }}]\n"
        );
        let c = parse(&text, "t.toml").unwrap();
        let i = &c.interference;
        assert_eq!(i.bogon_exempt[0].to_string(), "10.231.100.0/24");
        assert_eq!(i.blockpage.len(), 2);
        assert!(i.blockpage[0].matches(451, b"<h1>Blocked by order 17</h1>"));
        assert!(!i.blockpage[0].matches(200, b"<h1>Blocked by order 17</h1>"));
        assert!(i.blockpage[1].matches(200, b"ACCESS DENIED"));
        assert_eq!(
            i.blockpage[0].describe(),
            "status 451, body ~ /Blocked by order/"
        );
    }

    #[test]
    fn bad_rules_name_file_line_column_and_key() {
        for (tail, key, words) in [
            (
                "blockpage = [{ status = 451, body_regex = \"(\" }]",
                "interference.blockpage[0].body_regex",
                "not a valid regex",
            ),
            (
                "blockpage = [{ status = 451 }]",
                "interference.blockpage[0].body_regex",
                "missing required key",
            ),
            (
                "blockpage = [{ status = 7, body_regex = \"x\" }]",
                "interference.blockpage[0].status",
                "range",
            ),
            (
                "bogon_exempt = [\"10.0.0.1/99\"]",
                "interference.bogon_exempt[0]",
                "not an address block",
            ),
            ("typo = 1", "interference.typo", "unknown key"),
        ] {
            let text = format!("{BASE}[interference]\n{tail}\n");
            let err = parse(&text, "t.toml").unwrap_err().to_string();
            assert!(err.contains("t.toml:9:"), "{err}");
            assert!(err.contains(key), "{key}: {err}");
            assert!(err.contains(words), "{words}: {err}");
        }
    }
}
