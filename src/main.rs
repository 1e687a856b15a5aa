//! The `linkwatch` binary: all behaviour lives in the library.

fn main() -> std::process::ExitCode {
    linkwatch::cli::main()
}
