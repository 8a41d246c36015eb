//! The `ferrobase` binary: parse the command line, start tracing, hand over.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = ferrobase::cli::Cli::parse();
    match ferrobase::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
