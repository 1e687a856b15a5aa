//! What can go wrong opening or writing the history store (below the files
//! that report it).

use std::path::PathBuf;

/// Why the history store could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(
        "failed to create the history directory {path}: {source}; give linkwatch's user write access to daemon.data_dir"
    )]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to set up the history metric: {0}")]
    Metric(String),
    #[error("failed to write history file {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
