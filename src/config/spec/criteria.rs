//! `[plan] criteria`: `"bnetza"` (the published thresholds, the default)
//! or a `[plan.criteria]` table of explicit ones ("custom"):
//!
//! ```toml
//! [plan.criteria]
//! max_share = 0.9            # (a) share of the maximum to reach on a day
//! normal_share_below = 0.1   # (b) share of tests allowed below normal
//! days_needed = 2            # (a), (c): breached on 2 …
//! of_days = 3                # … of 3 measuring days
//! min_tests = 30             # tests of a campaign (10 a day)
//! ```
//!
//! Keys left out keep the BNetzA value.

use toml::de::DeValue;

use super::super::error::shown;
use super::super::throughput::{Criteria, CriteriaSet};
use super::super::walk::{At, Got, Reported, Tbl, Walker};

const KEYS: &[&str] = &[
    "max_share",
    "normal_share_below",
    "days_needed",
    "of_days",
    "min_tests",
];

/// `criteria` of `[plan]` (`t`), as a string or a table.
pub(super) fn criteria(w: &mut Walker<'_>, t: &Tbl<'_, '_>) -> Got<Criteria> {
    let Some(v) = t.get("criteria") else {
        return Ok(None);
    };
    let at = |value| {
        Ok(Some(At {
            value,
            span: v.span(),
        }))
    };
    match v.get_ref() {
        DeValue::String(s) if s.as_ref() == "bnetza" => at(Criteria::Bnetza),
        DeValue::String(s) => {
            let hint = if s.as_ref() == "custom" {
                "; custom criteria are a table: write [plan.criteria] with \
                 max_share, normal_share_below, days_needed, of_days, min_tests"
            } else {
                ", or a [plan.criteria] table of explicit thresholds"
            };
            let message = format!("`criteria` ({}) must be \"bnetza\"{hint}", shown(s));
            Err(w.report(v.span(), t.key("criteria"), message))
        }
        DeValue::Table(_) => {
            let Some(c) = w.table(t, "criteria")? else {
                return Ok(None);
            };
            custom(w, &c).map(|set| {
                Some(At {
                    value: Criteria::Custom(set),
                    span: v.span(),
                })
            })
        }
        _ => Err(w.wrong_type(
            t.key("criteria"),
            v,
            "\"bnetza\" or a table ([plan.criteria])",
        )),
    }
}

/// The `[plan.criteria]` table.
fn custom(w: &mut Walker<'_>, c: &Tbl<'_, '_>) -> Result<CriteriaSet, Reported> {
    w.check_keys(c, KEYS);
    let b = CriteriaSet::BNETZA;
    let max_share = share(w, c, "max_share", false);
    let normal = share(w, c, "normal_share_below", true);
    let max_days = i64::from(CriteriaSet::MAX_DAYS);
    let of_days = w.integer(c, "of_days", 1, max_days);
    let days_needed = w.integer(c, "days_needed", 1, max_days);
    let min_tests = w.integer(c, "min_tests", 1, i64::from(CriteriaSet::MAX_TESTS));
    let (max_share, normal) = (max_share?, normal?);
    let (of_days, days_needed, min_tests) = (of_days?, days_needed?, min_tests?);
    let n = |x: Option<At<i64>>, d: u32| x.map_or(d, |a| u32::try_from(a.value).unwrap_or(d));
    let set = CriteriaSet {
        max_share: max_share.map_or(b.max_share, |a| a.value),
        normal_share_below: normal.map_or(b.normal_share_below, |a| a.value),
        days_needed: n(days_needed.clone(), b.days_needed),
        of_days: n(of_days.clone(), b.of_days),
        min_tests: n(min_tests.clone(), b.min_tests),
    };
    if set.days_needed > set.of_days {
        let span = days_needed.or(of_days).map_or(c.span.clone(), |a| a.span);
        let message = format!(
            "`days_needed` ({}) must not exceed `of_days` ({})",
            set.days_needed, set.of_days
        );
        return Err(w.report(span, c.key("days_needed"), message));
    }
    if set.min_tests < set.of_days {
        let span = min_tests.or(of_days).map_or(c.span.clone(), |a| a.span);
        let message = format!(
            "`min_tests` ({}) must be at least `of_days` ({}): one test on each measuring day",
            set.min_tests, set.of_days
        );
        return Err(w.report(span, c.key("min_tests"), message));
    }
    Ok(set)
}

/// A share: a number in (0, 1] (`zero_ok`: [0, 1)).
fn share(w: &mut Walker<'_>, c: &Tbl<'_, '_>, key: &str, zero_ok: bool) -> Got<f64> {
    let Some(v) = c.get(key) else {
        return Ok(None);
    };
    let value = match v.get_ref() {
        DeValue::Float(f) => f.as_str().replace('_', "").parse::<f64>().ok(),
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
            .ok()
            .map(|n| n as f64),
        _ => return Err(w.wrong_type(c.key(key), v, "a number such as 0.9")),
    };
    let range = if zero_ok {
        "0 ≤ x < 1"
    } else {
        "0 < x ≤ 1"
    };
    match value {
        Some(x) if (zero_ok && (0.0..1.0).contains(&x)) || (!zero_ok && x > 0.0 && x <= 1.0) => {
            Ok(Some(At {
                value: x,
                span: v.span(),
            }))
        }
        _ => {
            let message = format!(
                "`{key}` ({}) must be a share {range}, e.g. 0.9 for 90 %",
                w.snippet(&v.span())
            );
            Err(w.report(v.span(), c.key(key), message))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::parse;

    fn config(criteria: &str) -> String {
        format!(
            "[plan]\ndownload = \"100 Mbit/s\"\n{criteria}\n\n[[group]]\nname = \"g\"\n\
             [[target]]\nname = \"a\"\ngroup = \"g\"\nkind = \"icmp\"\nhost = \"192.0.2.1\"\n"
        )
    }

    fn criteria_of(text: &str) -> Criteria {
        parse(&config(text), "t").unwrap().plan.unwrap().criteria
    }

    fn error_of(text: &str) -> String {
        parse(&config(text), "t").unwrap_err().to_string()
    }

    #[test]
    fn bnetza_is_the_default_and_a_table_is_custom_with_bnetza_for_the_rest() {
        assert_eq!(criteria_of(""), Criteria::Bnetza);
        assert_eq!(criteria_of("criteria = \"bnetza\""), Criteria::Bnetza);
        assert_eq!(Criteria::Bnetza.set(), CriteriaSet::BNETZA);
        let c = criteria_of(
            "[plan.criteria]\nmax_share = 0.8\nnormal_share_below = 0.25\n\
             days_needed = 3\nof_days = 4\nmin_tests = 20",
        );
        assert_eq!(
            c,
            Criteria::Custom(CriteriaSet {
                max_share: 0.8,
                normal_share_below: 0.25,
                days_needed: 3,
                of_days: 4,
                min_tests: 20,
            })
        );
        assert_eq!((c.name(), c.set().tests_per_day()), ("custom", 5));
        let c = criteria_of("criteria = { max_share = 1 }");
        assert_eq!(
            c.set(),
            CriteriaSet {
                max_share: 1.0,
                ..CriteriaSet::BNETZA
            }
        );
    }

    #[test]
    fn bad_criteria_are_reported_at_their_line_and_column() {
        let e = error_of("criteria = \"custom\"");
        assert!(
            e.contains("t:3:12: key `plan.criteria`: `criteria` (custom) must be \"bnetza\"; custom criteria are a table: write [plan.criteria]"),
            "{e}"
        );
        let e = error_of("criteria = \"fcc\"");
        assert!(e.contains("t:3:12: key `plan.criteria`: `criteria` (fcc) must be \"bnetza\", or a [plan.criteria] table"), "{e}");
        let e = error_of("criteria = 3");
        assert!(
            e.contains("t:3:12: key `plan.criteria`: expected \"bnetza\" or a table"),
            "{e}"
        );
        let e = error_of("[plan.criteria]\nmax_share = 1.5");
        assert!(
            e.contains("t:4:13: key `plan.criteria.max_share`: `max_share` (1.5) must be a share 0 < x ≤ 1, e.g. 0.9 for 90 %"),
            "{e}"
        );
        let e = error_of("[plan.criteria]\nnormal_share_below = \"10%\"");
        assert!(
            e.contains(
                "t:4:22: key `plan.criteria.normal_share_below`: expected a number such as 0.9"
            ),
            "{e}"
        );
        let e = error_of("[plan.criteria]\ndays_needed = 3\nof_days = 2");
        assert!(
            e.contains("t:4:15: key `plan.criteria.days_needed`: `days_needed` (3) must not exceed `of_days` (2)"),
            "{e}"
        );
        let e = error_of("[plan.criteria]\nof_days = 8");
        assert!(
            e.contains(
                "t:4:11: key `plan.criteria.of_days`: `of_days` (8) must be in the range 1..=7"
            ),
            "{e}"
        );
        let e = error_of("[plan.criteria]\nof_days = 5\nmin_tests = 4");
        assert!(e.contains("t:5:13: key `plan.criteria.min_tests`: `min_tests` (4) must be at least `of_days` (5)"), "{e}");
        let e = error_of("[plan.criteria]\nmax_shares = 0.9");
        assert!(e.contains("t:4:1: key `plan.criteria.max_shares`: unknown key `max_shares`; valid keys: max_share,"), "{e}");
    }
}
