//! The `rulecast` command: parse arguments, run, turn the result into an exit code.

use std::process::ExitCode;

fn main() -> ExitCode {
    rulecast_cli::main()
}

#[path = "cli/mod.rs"]
mod rulecast_cli;
