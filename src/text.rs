//! Text for people, shared by every rendering (status page, report, CLI
//! listings): HTML escaping and durations in words. It knows nothing of the
//! rest of the crate, so any room may use it.

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// How [`duration`] writes a length of time. Each rendering has kept its
/// own look since it was first released, and their outputs are compared
/// byte for byte, so the styles stay distinct.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationStyle {
    /// A rough length for sentences (status page): `38 s`, `38 min`,
    /// `2 h 5 min`, `6 days`.
    Sentence,
    /// Hours, minutes and seconds with spaces, tenths under a minute
    /// (report): `3.2s`, `1m 01s`, `1h 02m 03s`.
    Spaced,
    /// Hours, minutes and seconds without spaces, milliseconds under a
    /// minute (table listings): `3.250s`, `1m01s`, `1h02m03s`.
    Compact,
}

/// `secs` seconds as text in `style`.
pub fn duration(secs: f64, style: DurationStyle) -> String {
    match style {
        DurationStyle::Sentence => sentence(secs),
        DurationStyle::Spaced => {
            let (h, m, s) = hms(secs.round() as u64);
            if h > 0 {
                format!("{h}h {m:02}m {s:02}s")
            } else if m > 0 {
                format!("{m}m {s:02}s")
            } else {
                format!("{secs:.1}s")
            }
        }
        DurationStyle::Compact => {
            // Round to milliseconds first, so that 19.99994 s carries into 20.000 s.
            let total_ms = (secs.max(0.0) * 1000.0).round() as u64;
            let (h, m, s) = hms(total_ms / 1000);
            if h > 0 {
                format!("{h}h{m:02}m{s:02}s")
            } else if m > 0 {
                format!("{m}m{s:02}s")
            } else {
                format!("{s}.{:03}s", total_ms % 1000)
            }
        }
    }
}

/// Whole seconds as hours, minutes (< 60) and seconds (< 60).
fn hms(total: u64) -> (u64, u64, u64) {
    (total / 3600, total % 3600 / 60, total % 60)
}

fn sentence(secs: f64) -> String {
    let s = secs.max(0.0).round() as i64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => {
            let m = (s % 3600) / 60;
            if m == 0 {
                format!("{} h", s / 3600)
            } else {
                format!("{} h {m} min", s / 3600)
            }
        }
        _ => {
            let d = s / 86_400;
            format!("{d} day{}", if d == 1 { "" } else { "s" })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::DurationStyle::{Compact, Sentence, Spaced};
    use super::*;

    #[test]
    fn html_special_characters_are_escaped() {
        assert_eq!(
            esc(r#"<a href="x">&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(esc("plain ü"), "plain ü");
    }

    #[test]
    fn the_three_duration_styles() {
        for (secs, sentence, spaced, compact) in [
            (3.25, "3 s", "3.2s", "3.250s"),
            (61.0, "1 min", "1m 01s", "1m01s"),
            (3723.0, "1 h 2 min", "1h 02m 03s", "1h02m03s"),
            (7200.0, "2 h", "2h 00m 00s", "2h00m00s"),
            (86_400.0 * 6.0, "6 days", "144h 00m 00s", "144h00m00s"),
            (86_400.0, "1 day", "24h 00m 00s", "24h00m00s"),
            (-1.0, "0 s", "-1.0s", "0.000s"),
        ] {
            assert_eq!(duration(secs, Sentence), sentence, "{secs}");
            assert_eq!(duration(secs, Spaced), spaced, "{secs}");
            assert_eq!(duration(secs, Compact), compact, "{secs}");
        }
    }
}
