//! The generic walker over toml's spanned document tree: typed getters that
//! record a problem (with its span and dotted key) and go on, unknown-key
//! detection, and the mapping from byte offsets to line and column.
//!
//! The tree is walked by hand instead of through serde so that one bad value
//! does not hide the next: each rule records its problem and the walk goes on.

use std::ops::Range;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::error::shown;
use super::validate;

pub(super) type Span = Range<usize>;
pub(super) type Value<'i> = Spanned<DeValue<'i>>;

/// One recorded problem, before it is given a line and column.
pub(super) struct Problem {
    pub span: Span,
    pub key: String,
    pub message: String,
}

/// Marker that a problem has been recorded; the value it stands for is unusable.
#[derive(Debug, Clone, Copy)]
pub(super) struct Reported;

/// A value with the span of the text it came from.
#[derive(Debug, Clone)]
pub(super) struct At<T> {
    pub value: T,
    pub span: Span,
}

/// An optional key: absent, present and valid, or reported.
pub(super) type Got<T> = Result<Option<At<T>>, Reported>;
/// A required key, or a value with a default: valid, or reported.
pub(super) type Need<T> = Result<At<T>, Reported>;

/// A TOML table with its span and dotted path (empty for the document root).
pub(super) struct Tbl<'a, 'i> {
    pub map: &'a DeTable<'i>,
    pub span: Span,
    pub path: String,
}

impl<'a, 'i> Tbl<'a, 'i> {
    /// The dotted path of `key` in this table, for messages.
    pub fn key(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub fn get(&self, key: &str) -> Option<&'a Value<'i>> {
        self.map.get(key)
    }
}

/// Collects problems while typed getters read the tree.
pub(super) struct Walker<'t> {
    text: &'t str,
    index: &'t LineIndex<'t>,
    pub problems: Vec<Problem>,
    /// Reading mode ([`super::load_for_reading`]): files the daemon needs
    /// (secrets, keys, CA bundles) are neither opened nor checked, so a
    /// reader without the daemon's rights can still load the file.
    pub reading_only: bool,
}

impl<'t> Walker<'t> {
    pub fn new(text: &'t str, index: &'t LineIndex<'t>) -> Self {
        Self {
            text,
            index,
            problems: Vec::new(),
            reading_only: false,
        }
    }

    pub fn report(&mut self, span: Span, key: String, message: String) -> Reported {
        self.problems.push(Problem { span, key, message });
        Reported
    }

    /// The source text of a value, on one line and shortened, for messages.
    pub fn snippet(&self, span: &Span) -> String {
        let raw = self.text.get(span.clone()).unwrap_or("");
        let line = raw.lines().next().unwrap_or("");
        if line.chars().count() > 40 || line.len() < raw.trim_end().len() {
            let short: String = line.chars().take(40).collect();
            format!("{short}…")
        } else {
            line.to_owned()
        }
    }

    pub fn line_of(&self, span: &Span) -> usize {
        self.index.position(span.start).0
    }

    pub fn wrong_type(&mut self, key: String, v: &Value<'_>, expected: &str) -> Reported {
        let found = v.get_ref().type_str();
        let message = format!(
            "expected {expected}, found {found} `{}`",
            self.snippet(&v.span())
        );
        self.report(v.span(), key, message)
    }

    /// Turns an absent required key into a problem at its table.
    pub fn missing<T>(&mut self, t: &Tbl<'_, '_>, key: &str, got: Got<T>) -> Need<T> {
        match got {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(self.report(
                t.span.clone(),
                t.key(key),
                format!("missing required key `{key}`"),
            )),
            Err(r) => Err(r),
        }
    }

    /// Reports every key of `t` that is not in `allowed`.
    pub fn check_keys(&mut self, t: &Tbl<'_, '_>, allowed: &[&str]) {
        for (k, _) in t.map.iter() {
            let key: &str = k.get_ref();
            if !allowed.contains(&key) {
                let message = format!(
                    "unknown key `{}`; valid keys: {}",
                    shown(k.get_ref()),
                    allowed.join(", ")
                );
                self.report(k.span(), t.key(k.get_ref()), message);
            }
        }
    }

    /// Applies `check` to a present value and reports its error at the value.
    pub fn check<T, U>(
        &mut self,
        t: &Tbl<'_, '_>,
        key: &str,
        got: Got<T>,
        check: impl FnOnce(&T) -> Result<U, String>,
    ) -> Got<U> {
        match got? {
            None => Ok(None),
            Some(At { value, span }) => match check(&value) {
                Ok(value) => Ok(Some(At { value, span })),
                Err(message) => Err(self.report(span, t.key(key), message)),
            },
        }
    }

    pub fn string_as(&mut self, t: &Tbl<'_, '_>, key: &str, expected: &str) -> Got<String> {
        let Some(v) = t.get(key) else {
            return Ok(None);
        };
        match v.get_ref() {
            DeValue::String(s) => Ok(Some(At {
                value: s.to_string(),
                span: v.span(),
            })),
            _ => Err(self.wrong_type(t.key(key), v, expected)),
        }
    }

    pub fn string(&mut self, t: &Tbl<'_, '_>, key: &str) -> Got<String> {
        self.string_as(t, key, "a string")
    }

    /// A string that is not empty or only whitespace.
    pub fn nonempty(&mut self, t: &Tbl<'_, '_>, key: &str) -> Got<String> {
        let got = self.string(t, key);
        self.check(t, key, got, |s| {
            if s.trim().is_empty() {
                Err(format!("`{key}` must not be empty"))
            } else {
                Ok(s.clone())
            }
        })
    }

    /// An integer in `min..=max`; `key` is the full dotted path.
    pub fn integer_value(&mut self, key: String, v: &Value<'_>, min: i64, max: i64) -> Need<i64> {
        let DeValue::Integer(i) = v.get_ref() else {
            return Err(self.wrong_type(key, v, "an integer"));
        };
        match i64::from_str_radix(i.as_str(), i.radix()) {
            Ok(n) if (min..=max).contains(&n) => Ok(At {
                value: n,
                span: v.span(),
            }),
            _ => {
                let leaf = key.rsplit('.').next().unwrap_or(&key).to_owned();
                let message = format!(
                    "`{leaf}` ({}) must be in the range {min}..={max}",
                    self.snippet(&v.span())
                );
                Err(self.report(v.span(), key, message))
            }
        }
    }

    pub fn integer(&mut self, t: &Tbl<'_, '_>, key: &str, min: i64, max: i64) -> Got<i64> {
        match t.get(key) {
            None => Ok(None),
            Some(v) => self.integer_value(t.key(key), v, min, max).map(Some),
        }
    }

    pub fn boolean(&mut self, t: &Tbl<'_, '_>, key: &str) -> Got<bool> {
        let Some(v) = t.get(key) else {
            return Ok(None);
        };
        match v.get_ref() {
            DeValue::Boolean(b) => Ok(Some(At {
                value: *b,
                span: v.span(),
            })),
            _ => Err(self.wrong_type(t.key(key), v, "a boolean (true or false)")),
        }
    }

    /// A duration key; `bounds` gets the value and the text as written.
    pub fn duration_with(
        &mut self,
        t: &Tbl<'_, '_>,
        key: &str,
        bounds: impl FnOnce(Duration, &str) -> Result<(), String>,
    ) -> Got<Duration> {
        let got = self.string_as(t, key, "a duration string such as \"5s\"");
        self.check(t, key, got, |s| {
            let written = shown(s);
            let d = validate::duration(s).map_err(|reason| {
                format!(
                    "`{key}` ({written}) is not a valid duration ({reason}); \
                     write e.g. \"500ms\", \"5s\", \"1m30s\""
                )
            })?;
            bounds(d, &written).map(|()| d)
        })
    }

    /// Each item of an array key, with its dotted path (`key[i]`); `Err` when
    /// the key is not an array (reported).
    pub fn array<'a, 'i>(
        &mut self,
        t: &Tbl<'a, 'i>,
        key: &str,
        expected: &str,
    ) -> Result<Vec<(String, &'a Value<'i>)>, Reported> {
        let Some(v) = t.get(key) else {
            return Ok(Vec::new());
        };
        let DeValue::Array(items) = v.get_ref() else {
            return Err(self.wrong_type(t.key(key), v, expected));
        };
        Ok(items
            .iter()
            .enumerate()
            .map(|(i, item)| (format!("{}[{i}]", t.key(key)), item))
            .collect())
    }

    pub fn table<'a, 'i>(
        &mut self,
        t: &Tbl<'a, 'i>,
        key: &str,
    ) -> Result<Option<Tbl<'a, 'i>>, Reported> {
        let Some(v) = t.get(key) else {
            return Ok(None);
        };
        match v.get_ref() {
            DeValue::Table(map) => Ok(Some(Tbl {
                map,
                span: v.span(),
                path: t.key(key),
            })),
            _ => Err(self.wrong_type(t.key(key), v, &format!("a table ([{key}])"))),
        }
    }

    pub fn array_of_tables<'a, 'i>(
        &mut self,
        t: &Tbl<'a, 'i>,
        key: &str,
    ) -> Vec<Result<Tbl<'a, 'i>, Reported>> {
        let Some(v) = t.get(key) else {
            return Vec::new();
        };
        let DeValue::Array(items) = v.get_ref() else {
            let expected = format!("an array of tables ([[{key}]])");
            return vec![Err(self.wrong_type(t.key(key), v, &expected))];
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let path = format!("{}[{i}]", t.key(key));
                match item.get_ref() {
                    DeValue::Table(map) => Ok(Tbl {
                        map,
                        span: item.span(),
                        path,
                    }),
                    _ => Err(self.wrong_type(path, item, &format!("a table ([[{key}]])"))),
                }
            })
            .collect()
    }
}

/// Collects the values of several items, or the last item's report.
pub(super) fn all_or_reported<T>(items: Vec<Result<T, Reported>>) -> Result<Vec<T>, Reported> {
    let mut values = Vec::with_capacity(items.len());
    let mut failed = None;
    for item in items {
        match item {
            Ok(v) => values.push(v),
            Err(r) => failed = Some(r),
        }
    }
    match failed {
        Some(r) => Err(r),
        None => Ok(values),
    }
}

/// Maps byte offsets to 1-based line and column (columns count characters).
pub(crate) struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex { text, starts }
    }

    /// 1-based (line, column) of a byte offset.
    pub(crate) fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = match self.starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.starts[line];
        let column = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (line + 1, column + 1)
    }
}

/// An array of address blocks at `key` (`trusted_peers`, `bogon_exempt`),
/// each reported at its own item; empty when absent.
pub(super) fn cidr_list(
    w: &mut Walker<'_>,
    t: &Tbl<'_, '_>,
    key: &str,
    expected: &str,
) -> Result<Vec<super::net::Cidr>, Reported> {
    let items = w.array(t, key, expected)?;
    let blocks = items
        .into_iter()
        .map(|(path, item)| {
            let DeValue::String(s) = item.get_ref() else {
                return Err(w.wrong_type(
                    path,
                    item,
                    "an address block string such as \"10.0.0.0/8\"",
                ));
            };
            validate::cidr(s).map_err(|reason| {
                let message = format!("`{key}` entry ({s}) is not an address block: {reason}");
                w.report(item.span(), path, message)
            })
        })
        .collect();
    all_or_reported(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_index() {
        let text = "ab\ncé d\n\nx";
        let idx = LineIndex::new(text);
        assert_eq!(idx.position(0), (1, 1));
        assert_eq!(idx.position(1), (1, 2));
        assert_eq!(idx.position(3), (2, 1));
        // 'é' is two bytes: ' ' at byte 6 is the third character.
        assert_eq!(idx.position(6), (2, 3));
        assert_eq!(idx.position(9), (3, 1));
        assert_eq!(idx.position(10), (4, 1));
        assert_eq!(idx.position(99), (4, 2));
    }
}
