//! Panther's evaluator glue: the generated Python is run by real Python, one process for a
//! whole run (`driver.py`), on each event wrapped as Panther wraps it (`PantherEvent`, when
//! panther_core is installed).
//!
//! Input: jobs (rule × raw event × allow-list entries). Output: per-job decisions. This is the
//! one place outside `load`, `import` and `cli` that touches the file system: the rules' Python
//! is written into a temporary folder for the interpreter to import.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::targets::Unsupported;
use crate::vendors::{Decision, Job, Target};

/// The Python driver, embedded.
const DRIVER: &str = include_str!("driver.py");

/// Decide every job in one Python process. The flag says whether events were wrapped in
/// `PantherEvent` (case-insensitive keys).
pub fn decide(jobs: &[Job]) -> Result<(Vec<Decision>, bool), String> {
    let io = |e: std::io::Error| format!("cannot run the Panther rules: {e}");
    let dir = tempfile::tempdir().map_err(io)?;
    let mut built: HashMap<String, Result<String, Decision>> = HashMap::new();
    for j in jobs {
        let r = j.rule;
        if built.contains_key(&r.file) {
            continue;
        }
        if let Some(why) = crate::skip_reason(r, Target::Panther) {
            built.insert(r.file.clone(), Err(Decision::Skipped(why)));
            continue;
        }
        match crate::compile(r, Target::Panther, Unsupported::Warn) {
            Ok(out) => {
                for (path, text) in &out.files {
                    if path.ends_with(".py") {
                        let stem = Path::new(path).file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
                        std::fs::write(dir.path().join(format!("{stem}.py")), text).map_err(io)?;
                        built.insert(r.file.clone(), Ok(stem));
                    }
                }
            }
            Err(d) => {
                built.insert(r.file.clone(), Err(Decision::Error(d.to_string())));
            }
        }
    }
    let driver = dir.path().join("rulecast_driver.py");
    std::fs::write(&driver, DRIVER).map_err(io)?;
    let mut child = Command::new("python3")
        .arg(&driver)
        .arg(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start python3 (needed for the Panther verdicts): {e}"))?;
    let mut stdin = child.stdin.take().ok_or("python3 stdin")?;
    let lines: Vec<String> = jobs
        .iter()
        .enumerate()
        .filter_map(|(i, j)| match built.get(&j.rule.file) {
            Some(Ok(stem)) => Some(serde_json::json!({"id": i, "module": stem, "event": j.event, "allowlists": j.allowlists}).to_string()),
            _ => None,
        })
        .collect();
    let writer = std::thread::spawn(move || -> std::io::Result<()> {
        for l in lines {
            writeln!(stdin, "{l}")?;
        }
        Ok(())
    });
    let mut results: HashMap<usize, Decision> = HashMap::new();
    let mut panther_event = false;
    let stdout = child.stdout.take().ok_or("python3 stdout")?;
    for (n, line) in BufReader::new(stdout).lines().enumerate() {
        let v: Value = serde_json::from_str(&line.map_err(io)?).map_err(|_| "the Panther driver printed something that is not JSON".to_string())?;
        if n == 0 {
            panther_event = v["panther_event"].as_bool().unwrap_or(false);
            continue;
        }
        let id = v["id"].as_u64().unwrap_or(u64::MAX) as usize;
        let decision = match (v.get("matched").and_then(Value::as_bool), v.get("error").and_then(Value::as_str)) {
            (Some(b), _) => Decision::of(b),
            (None, Some(e)) => Decision::Error(format!("python: {e}")),
            _ => Decision::Error("python: no verdict".into()),
        };
        results.insert(id, decision);
    }
    writer.join().map_err(|_| "the writer thread failed".to_string())?.map_err(io)?;
    let status = child.wait().map_err(io)?;
    if !status.success() {
        return Err("the Panther driver (python3) failed".into());
    }
    let out = jobs
        .iter()
        .enumerate()
        .map(|(i, j)| match built.get(&j.rule.file) {
            Some(Err(d)) => d.clone(),
            _ => results.remove(&i).unwrap_or(Decision::Error("python: no verdict".into())),
        })
        .collect();
    Ok((out, panther_event))
}
