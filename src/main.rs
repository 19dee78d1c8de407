//! The `rulecast` command: parse arguments, run, turn the result into an exit code.

use std::process::ExitCode;

/// The stack the command runs on. The loader and the importers recurse over nested conditions
/// (bounded by their nesting limits); the deepest rule the loader reads needs a few MiB in a
/// debug build. A fixed size keeps that true whatever the platform gives the main thread.
const STACK: usize = 16 << 20;

fn main() -> ExitCode {
    match std::thread::Builder::new().stack_size(STACK).spawn(rulecast_cli::main) {
        Ok(t) => t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
        Err(_) => rulecast_cli::main(),
    }
}

#[path = "cli/mod.rs"]
mod rulecast_cli;
