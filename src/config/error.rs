//! The problems a configuration can have, reported with file, line, column and key.

use std::fmt;

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file path, or the source name given to [`super::parse`].
    pub file: String,
    /// 1-based line (1 for a file that could not be read at all).
    pub line: usize,
    /// 1-based column in characters.
    pub column: usize,
    /// Dotted path of the offending key (`target[2].port`); empty for syntax errors.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    /// `file:line:column: key `k`: message`, always on one line: characters
    /// that could end or fake a line (and other invisible ones) in the file
    /// name, the key or an echoed value are shown escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}:", escaped(&self.file), self.line, self.column)?;
        if !self.key.is_empty() {
            write!(f, " key `{}`:", escaped(&self.key))?;
        }
        write!(f, " {}", escaped(&self.message))
    }
}

/// True for characters that must not reach a terminal or a log line as they
/// are: controls (C0, DEL, C1 with U+0085), the line and paragraph separators
/// U+2028/U+2029, and invisible format characters (zero-width, bidi controls,
/// the byte order mark), which can hide or reorder text.
pub(crate) fn is_unprintable(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{061C}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
        )
}

/// `text` with every [`is_unprintable`] character written as a Rust escape
/// (`\n`, `\u{2028}`); everything else, quotes and backslashes included, as is.
pub fn escaped(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(is_unprintable) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unprintable(c) {
            out.extend(c.escape_debug());
            if c.escape_debug().len() == 1 {
                // escape_debug leaves some format characters alone; never these.
                out.pop();
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Longest value, in characters, a message echoes in full.
pub const MAX_SHOWN: usize = 200;

/// `text` as a message echoes it: whole up to [`MAX_SHOWN`] characters,
/// else its first [`MAX_SHOWN`] followed by `…`, so that a runaway value (a
/// 2 MB string) cannot turn one problem into megabytes of output.
pub fn shown(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(MAX_SHOWN) {
        None => std::borrow::Cow::Borrowed(text),
        Some((cut, _)) => std::borrow::Cow::Owned(format!("{}…", &text[..cut])),
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in a configuration, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// The problems, in file order.
    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.0.iter()
    }

    /// How many problems were found.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when no problem was recorded (never the case for a returned error).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// One problem per line followed by a count, ready for stderr.
    pub fn render(&self) -> String {
        let n = self.0.len();
        format!(
            "{self}\n{n} problem{} found\n",
            if n == 1 { "" } else { "s" }
        )
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoed_values_are_cut_after_200_characters() {
        let exact = "é".repeat(MAX_SHOWN);
        assert_eq!(shown(&exact), exact.as_str());
        let long = format!("{exact}xyz");
        assert_eq!(shown(&long), format!("{exact}…"));
        assert_eq!(shown(&"x".repeat(2_000_000)).chars().count(), MAX_SHOWN + 1);
        assert_eq!(shown(""), "");
    }

    #[test]
    fn escaping_keeps_one_problem_on_one_line() {
        assert_eq!(
            escaped("plain \"quoted\" \\d+ é"),
            "plain \"quoted\" \\d+ é"
        );
        assert_eq!(escaped("a\nb\rc\td"), "a\\nb\\rc\\td");
        assert_eq!(
            escaped("x\u{2028}y\u{2029}z\u{85}"),
            "x\\u{2028}y\\u{2029}z\\u{85}"
        );
        assert_eq!(
            escaped("\u{202e}evil\u{feff}\u{200b}\0"),
            "\\u{202e}evil\\u{feff}\\u{200b}\\0"
        );
        let e = ConfigError {
            file: "a\nb.toml".into(),
            line: 3,
            column: 7,
            key: "target[0].headers.x\u{2028}y".into(),
            message: "`name` (p\u{85}q) is bad".into(),
        };
        let shown = e.to_string();
        assert_eq!(
            shown,
            "a\\nb.toml:3:7: key `target[0].headers.x\\u{2028}y`: `name` (p\\u{85}q) is bad"
        );
        assert!(!shown.chars().any(is_unprintable));
    }
}
