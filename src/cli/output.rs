//! Writing what a command prints. `print!` and `eprintln!` panic when the
//! stream fails, and a stdout whose reader went away (`linkwatch outages |
//! head -1`, a pager closed early) fails every write with EPIPE: the command
//! died with "failed printing to stdout: Broken pipe" and exit 101. Here a
//! closed reader is a normal end: nothing more is written and the command
//! exits with the code it would have had. Any other write failure (a full
//! disk behind `>`) is reported and exits 1; a line that cannot reach stderr
//! is lost, never a panic.

use std::fmt;
use std::io::{self, Write};
use std::process::ExitCode;

/// Writes `text` to `w` and flushes it. A reader that went away
/// ([`io::ErrorKind::BrokenPipe`]) is a normal end and gives `Ok`.
pub(super) fn write_text(w: &mut impl Write, text: &str) -> io::Result<()> {
    match w.write_all(text.as_bytes()).and_then(|()| w.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Writes `text` to stdout as it is. `Err` carries the exit code (1) after
/// the failure was reported on stderr; a closed stdout is `Ok`.
pub(super) fn out(text: &str) -> Result<(), ExitCode> {
    write_text(&mut io::stdout().lock(), text).map_err(|e| {
        err_line(format_args!("linkwatch: cannot write the output: {e}"));
        ExitCode::from(1)
    })
}

/// [`out`] followed by a newline.
pub(super) fn out_line(text: &str) -> Result<(), ExitCode> {
    let mut line = String::with_capacity(text.len() + 1);
    line.push_str(text);
    line.push('\n');
    out(&line)
}

/// One line to stderr, for [`errln!`]: a stderr that cannot be written
/// (closed, a broken pipe) loses the line instead of panicking.
pub(super) fn err_line(args: fmt::Arguments<'_>) {
    let mut err = io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|()| err.write_all(b"\n"));
}

/// `eprintln!` that never panics (see [`err_line`]).
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::cli::output::err_line(format_args!($($arg)*))
    };
}
pub(super) use errln;

/// The exit code a command ends with: `code`, unless printing failed.
pub(super) fn then(printed: Result<(), ExitCode>, code: ExitCode) -> ExitCode {
    match printed {
        Ok(()) => code,
        Err(failed) => failed,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A writer that fails every write with one error kind.
    struct Failing(io::ErrorKind);

    impl Write for Failing {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from(self.0))
        }
        fn flush(&mut self) -> io::Result<()> {
            Err(io::Error::from(self.0))
        }
    }

    #[test]
    fn a_closed_reader_is_a_normal_end() {
        assert!(write_text(&mut Failing(io::ErrorKind::BrokenPipe), "x\n").is_ok());
    }

    #[test]
    fn other_write_failures_are_errors() {
        let e = write_text(&mut Failing(io::ErrorKind::StorageFull), "x\n").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
    }

    #[test]
    fn text_is_written_whole() {
        let mut buf = Vec::new();
        write_text(&mut buf, "a\nb\n").unwrap();
        assert_eq!(buf, b"a\nb\n");
    }
}
