//! Placeholder replaced by the config work (see issue 2, item 2).
use super::Config;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub key: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

pub fn parse(_text: &str, _source: &str) -> Result<Config, ConfigErrors> {
    Err(ConfigErrors(Vec::new()))
}

pub fn load(_path: &std::path::Path) -> Result<Config, ConfigErrors> {
    Err(ConfigErrors(Vec::new()))
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: key `{}`: {}",
            self.file, self.line, self.column, self.key, self.message
        )
    }
}
