//! The `ferrobase` binary: parse the command line, start tracing, hand over.

use clap::Parser;
use std::process::ExitCode;

/// How often freed heap memory is handed back to the kernel.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

/// glibc's malloc keeps memory that a thread freed in that thread's arena
/// for reuse, so after a burst (seeding, a backlog of request logs) a server
/// would sit at its peak RSS for good. A background thread asks glibc to
/// return free pages every [`TRIM_INTERVAL`], as Go's scavenger does for
/// PocketBase. This is the only `unsafe` in Ferrobase (the library forbids it).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn return_freed_memory_periodically() {
    unsafe extern "C" {
        fn malloc_trim(pad: usize) -> std::ffi::c_int;
    }
    let spawned = std::thread::Builder::new()
        .name("ferrobase-trim".to_owned())
        .spawn(|| {
            loop {
                std::thread::sleep(TRIM_INTERVAL);
                // SAFETY: malloc_trim takes no pointers and locks each arena
                // itself; it is safe to call from any thread at any time.
                unsafe {
                    malloc_trim(0);
                }
            }
        });
    if let Err(e) = spawned {
        eprintln!("warning: cannot start the memory trim thread: {e}");
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn return_freed_memory_periodically() {}

fn main() -> ExitCode {
    let cli = ferrobase::cli::Cli::parse();
    if matches!(cli.command, ferrobase::cli::Command::Serve { .. }) {
        return_freed_memory_periodically();
    }
    match ferrobase::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
