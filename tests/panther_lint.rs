//! The generated Panther Python under panther-analysis' own checks (its Makefile,
//! `pyproject.toml` and `.pylintrc`: black and isort with the black profile at line length 100,
//! pylint with its disabled messages and `max-line-length=100`).
//!
//! Passing today: isort; pylint except `line-too-long`, `superfluous-parens` and
//! `too-many-return-statements`, which the generated code still has (long expressions on one line,
//! `not (x in (...))`, one `return False` per conjunct). black is not passed yet: it would reflow
//! the long lines. Those are left for the shared helper module and a line-breaking printer
//! (issue 9 §3 item 4).
//!
//! Needs the tools (`bash tests/oracles/install.sh`); outside CI, `RULECAST_SKIP_ORACLES=1` lets
//! the test pass without them.

mod common;

use std::process::Command;

use common::*;

/// panther-analysis' `.pylintrc`.
const PYLINTRC: &str = "[MAIN]
disable=
    missing-docstring,
    duplicate-code,
    import-error,
    fixme,
    consider-iterating-dictionary,
    global-variable-not-assigned,
    broad-exception-raised

load-plugins=
    pylint.extensions.mccabe,

max-line-length=100
";

/// What the generated code does not pass yet (see the module docs).
const NOT_YET: &str = "line-too-long,superfluous-parens,too-many-return-statements";

fn available(module: &str) -> bool {
    Command::new("python3").args(["-m", module, "--version"]).output().is_ok_and(|o| o.status.success())
}

#[test]
fn generated_python_passes_isort_and_pylint() {
    for m in ["isort", "pylint"] {
        if !available(m) {
            if oracles_optional() {
                eprintln!("skipping: {m} is not installed (RULECAST_SKIP_ORACLES=1)");
                return;
            }
            panic!("{m} is not installed: run `bash tests/oracles/install.sh` (or set RULECAST_SKIP_ORACLES=1 outside CI)");
        }
    }
    let out = build_all(&bundled_rules());
    let dir = out.path().join("panther");
    let files = files_with(&dir, "py");
    assert!(!files.is_empty());
    let isort = Command::new("python3")
        .args(["-m", "isort", "--profile", "black", "--line-length", "100", "--check-only", "--diff"])
        .args(&files)
        .output()
        .expect("isort runs");
    assert!(isort.status.success(), "isort:\n{}{}", String::from_utf8_lossy(&isort.stdout), String::from_utf8_lossy(&isort.stderr));
    let rc = out.path().join("pylintrc");
    std::fs::write(&rc, PYLINTRC).expect("write");
    let pylint = Command::new("python3")
        .args(["-m", "pylint", "--score=n", "--disable", NOT_YET])
        .arg(format!("--rcfile={}", rc.display()))
        .args(&files)
        .output()
        .expect("pylint runs");
    assert!(pylint.status.success(), "pylint:\n{}{}", String::from_utf8_lossy(&pylint.stdout), String::from_utf8_lossy(&pylint.stderr));
}
