//! The `multi-casskop` binary: everything is in the library (`multi_casskop::cli::main`).

use std::process::ExitCode;

fn main() -> ExitCode {
    multi_casskop::cli::main(std::env::args_os())
}
