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
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use crate::targets::Unsupported;
use crate::vendors::{Decision, Job, Target};

/// The Python driver, embedded.
const DRIVER: &str = include_str!("driver.py");

/// How long the rule's Python may take on one event (loading its module included): the driver
/// stops it then (SIGALRM) and reports the event as an error naming the rule; the other events
/// still run.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(5);

/// How much longer rulecast waits for an answer before it kills the driver (a rule stuck where
/// Python does not handle signals), reports the event and starts a new driver for the rest.
const BACKSTOP: Duration = Duration::from_secs(10);

/// The Python interpreter's own path (`python3` on PATH may be a shim that needs the user's
/// environment, which the rules' process does not get).
fn interpreter() -> Result<std::path::PathBuf, String> {
    let out = Command::new("python3")
        .args(["-I", "-c", "import sys; print(sys.executable)"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot start python3 (needed for the Panther verdicts): {e}"))?;
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || path.is_empty() {
        return Err("python3 does not say where its interpreter is (sys.executable)".into());
    }
    Ok(path.into())
}

/// One driver process.
struct Run<'a> {
    python: &'a Path,
    dir: &'a Path,
    home: &'a Path,
    driver: &'a Path,
}

impl Run<'_> {
    /// Start the driver isolated: `-I` (no PYTHON* variables, no user site-packages, the
    /// script's folder not on sys.path), an environment of PATH and a temporary HOME only, the
    /// temporary folder as working directory. (`-I` also ignores PYTHONHASHSEED, so string hashes
    /// stay randomised; a verdict does not depend on them.)
    fn spawn(&self) -> Result<std::process::Child, String> {
        let mut cmd = Command::new(self.python);
        cmd.arg("-I").arg(self.driver).arg(self.dir).arg(EVENT_TIMEOUT.as_secs().to_string());
        cmd.env_clear().env("HOME", self.home).env("LC_ALL", "C.UTF-8");
        if let Some(path) = std::env::var_os("PATH") {
            cmd.env("PATH", path);
        }
        cmd.current_dir(self.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start python3 (needed for the Panther verdicts): {e}"))
    }

    /// Decide `pending` in one driver. `None`: all answered; `Some((i, died))`: the driver hung
    /// (`died` false) or ended on `pending[i]`; the answers before it are in `results`.
    fn decide(
        &self,
        pending: &[(usize, String)],
        results: &mut HashMap<usize, (Decision, Option<Value>)>,
        panther_event: &mut bool,
    ) -> Result<Option<(usize, bool)>, String> {
        let io = |e: std::io::Error| format!("cannot run the Panther rules: {e}");
        let mut child = self.spawn()?;
        let mut stdin = child.stdin.take().ok_or("python3 stdin")?;
        let lines: Vec<String> = pending.iter().map(|(_, l)| l.clone()).collect();
        // a killed driver makes these writes fail: that is expected, not reported
        let writer = std::thread::spawn(move || {
            for l in lines {
                if writeln!(stdin, "{l}").is_err() {
                    break;
                }
            }
        });
        let stdout = child.stdout.take().ok_or("python3 stdout")?;
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut answered = 0usize;
        let mut first = true;
        let outcome = loop {
            if answered == pending.len() {
                break None;
            }
            match rx.recv_timeout(EVENT_TIMEOUT + BACKSTOP) {
                Ok(line) => {
                    let v: Value = serde_json::from_str(&line.map_err(io)?)
                        .map_err(|_| "the Panther driver printed something that is not JSON".to_string())?;
                    if first {
                        first = false;
                        *panther_event = v["panther_event"].as_bool().unwrap_or(false);
                        continue;
                    }
                    let id = v["id"].as_u64().unwrap_or(u64::MAX) as usize;
                    let decision = match (v.get("matched").and_then(Value::as_bool), v.get("error").and_then(Value::as_str)) {
                        (Some(b), _) => Decision::of(b),
                        (None, Some(e)) => Decision::Error(format!("python: {e}")),
                        _ if v.get("timeout").is_some() => Decision::Error(format!(
                            "python: the rule did not decide this event within {} s and was stopped (a runaway rule)",
                            EVENT_TIMEOUT.as_secs()
                        )),
                        _ => Decision::Error("python: no verdict".into()),
                    };
                    results.insert(id, (decision, v.get("key").cloned()));
                    answered += 1;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => break Some((answered, false)),
                Err(mpsc::RecvTimeoutError::Disconnected) => break Some((answered, true)),
            }
        };
        if outcome.is_some() {
            let _ = child.kill();
        }
        let status = child.wait().map_err(io)?;
        drop(rx);
        let _ = writer.join();
        let _ = reader.join();
        if outcome.is_none() && !status.success() {
            return Err("the Panther driver (python3) failed".into());
        }
        Ok(outcome)
    }
}

/// The largest distinct-count minimum of a rule's aggregate, when it has one (the Panther rule
/// then counts over its cache).
fn distinct_min(rule: &crate::load::Rule) -> Option<u32> {
    rule.doc.alert.aggregate.as_ref().and_then(|a| a.min_distinct.values().map(|m| m.value).max()).filter(|_| rule.correlation.is_none())
}

/// What a rule was built into, for the driver.
enum Built {
    /// One module deciding each event.
    One(String),
    /// A correlation: each step's signal module, in step order.
    Steps(Vec<String>),
}

/// Decide every job in one Python process. The flag says whether events were wrapped in
/// `PantherEvent` (case-insensitive keys).
///
/// A correlation rule's job (a list of events) runs each step's signal rule on every event in
/// the real Python, taking the key from its `alert_context`; whether the signals make the
/// sequence is then decided as the correlation rule written reads ([`sequence`]): Panther's
/// correlation engine itself runs only on a Panther backend.
pub fn decide(jobs: &[Job]) -> Result<(Vec<Decision>, bool), String> {
    let io = |e: std::io::Error| format!("cannot run the Panther rules: {e}");
    let dir = tempfile::tempdir().map_err(io)?;
    let mut built: HashMap<String, Result<Built, Decision>> = HashMap::new();
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
                let mut stems = vec![];
                for (path, text) in &out.files {
                    if path.ends_with(".py") {
                        let stem = Path::new(path).file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
                        std::fs::write(dir.path().join(format!("{stem}.py")), text).map_err(io)?;
                        stems.push(stem);
                    }
                }
                let b = match (r.correlation.is_some(), stems.pop()) {
                    (true, last) => Ok(Built::Steps(stems.into_iter().chain(last).collect())),
                    (false, Some(stem)) => Ok(Built::One(stem)),
                    (false, None) => Err(Decision::Error("no Python module was written for the rule".into())),
                };
                built.insert(r.file.clone(), b);
            }
            Err(d) => {
                built.insert(r.file.clone(), Err(Decision::Error(d.to_string())));
            }
        }
    }
    // a vendor's own module (kept as the rule's layout) may import panther-analysis' global
    // helpers: rulecast's equivalents stand in for them
    let modules = std::fs::read_dir(dir.path()).map_err(io)?.filter_map(|e| e.ok()).map(|e| e.path());
    let texts: Vec<String> = modules.filter(|p| p.extension().is_some_and(|e| e == "py")).filter_map(|p| std::fs::read_to_string(p).ok()).collect();
    let stand_ins = super::import::helpers::imported_helper_modules(texts.iter().map(String::as_str));
    for m in stand_ins {
        let file = dir.path().join(format!("{m}.py"));
        if !file.exists() {
            std::fs::write(file, super::import::helpers::stand_in_module()).map_err(io)?;
        }
    }
    // the global helper module the generated rules import
    for (path, text) in crate::vendors::backend(Target::Panther).shared_files() {
        let file = dir.path().join(path.trim_start_matches("panther/"));
        std::fs::create_dir_all(file.parent().unwrap_or(dir.path())).map_err(io)?;
        std::fs::write(file, text).map_err(io)?;
    }
    let driver = dir.path().join("rulecast_driver.py");
    std::fs::write(&driver, DRIVER).map_err(io)?;
    let home = dir.path().join("home");
    std::fs::create_dir(&home).map_err(io)?;
    let python = interpreter()?;
    // driver ids: a job's own index, or (for a correlation's signals) one past the jobs for
    // each (job, event, step)
    let mut pending: Vec<(usize, String)> = vec![];
    let mut signals: HashMap<usize, (usize, usize, usize)> = HashMap::new();
    for (i, j) in jobs.iter().enumerate() {
        match built.get(&j.rule.file) {
            // new terms (or a distinct count given a sequence): the events oldest first, decided
            // in turn against one cache
            Some(Ok(Built::One(stem))) if j.rule.new_terms.is_some() || (distinct_min(j.rule).is_some() && j.event.is_array()) => {
                let events = j.event.as_array().cloned().unwrap_or_else(|| vec![j.event.clone()]);
                pending.push((i, serde_json::json!({"id": i, "module": stem, "events": events, "allowlists": j.allowlists}).to_string()))
            }
            // a distinct count on one event decides the filter: the group has reached its
            // minimum (the rule's unit tests mock its count so too)
            Some(Ok(Built::One(stem))) if distinct_min(j.rule).is_some() => {
                let mocks = serde_json::json!({ super::target::DISTINCT_COUNT: distinct_min(j.rule).unwrap_or(0).to_string() });
                pending.push((i, serde_json::json!({"id": i, "module": stem, "event": j.event, "allowlists": j.allowlists, "mocks": mocks}).to_string()))
            }
            Some(Ok(Built::One(stem))) => {
                pending.push((i, serde_json::json!({"id": i, "module": stem, "event": j.event, "allowlists": j.allowlists}).to_string()))
            }
            Some(Ok(Built::Steps(stems))) => {
                let events = j.event.as_array().map(|a| a.iter().collect::<Vec<_>>()).unwrap_or_else(|| vec![j.event]);
                for (e, event) in events.into_iter().enumerate() {
                    for (s, stem) in stems.iter().enumerate() {
                        let id = jobs.len() + signals.len();
                        signals.insert(id, (i, e, s));
                        let key = super::target::correlation::KEY;
                        pending.push((id, serde_json::json!({"id": id, "module": stem, "event": event, "allowlists": j.allowlists, "key": key}).to_string()));
                    }
                }
            }
            _ => {}
        }
    }
    let mut results: HashMap<usize, (Decision, Option<Value>)> = HashMap::new();
    let mut panther_event = false;
    // one driver for the whole run; one that hangs past the backstop or dies is replaced, the
    // event it was deciding reported as an error, and the other events still run
    while !pending.is_empty() {
        let run = Run { python: &python, dir: dir.path(), home: &home, driver: &driver };
        match run.decide(&pending, &mut results, &mut panther_event)? {
            None => break,
            Some((stuck, died)) => {
                let (id, _) = pending[stuck];
                let job = signals.get(&id).map_or(id, |(i, _, _)| *i);
                let file = jobs[job].rule.file.as_str();
                let why = if died {
                    format!("python: {file}: the Python process ended while deciding this event")
                } else {
                    format!("python: {file}: the rule did not decide this event within {} s and was stopped", EVENT_TIMEOUT.as_secs() + BACKSTOP.as_secs())
                };
                results.insert(id, (Decision::Error(why), None));
                pending.drain(..=stuck);
            }
        }
    }
    // a correlation's signals: per job, per event, per step: the decision and the key
    let mut by_job: HashMap<usize, Vec<(usize, usize, Decision, Option<Value>)>> = HashMap::new();
    for (id, (i, e, s)) in &signals {
        let (d, key) = results.remove(id).unwrap_or((Decision::Error("python: no verdict".into()), None));
        by_job.entry(*i).or_default().push((*e, *s, d, key));
    }
    let out = jobs
        .iter()
        .enumerate()
        .map(|(i, j)| match built.get(&j.rule.file) {
            Some(Err(d)) => d.clone(),
            Some(Ok(Built::Steps(stems))) => {
                let Some(seq) = &j.rule.correlation else { return Decision::Error("not a correlation".into()) };
                let events = j.event.as_array().map(|a| a.iter().collect::<Vec<_>>()).unwrap_or_else(|| vec![j.event]);
                let mut fired: Vec<Vec<Option<String>>> = vec![vec![None; stems.len()]; events.len()];
                for (e, s, d, key) in by_job.remove(&i).unwrap_or_default() {
                    match d {
                        Decision::Match => fired[e][s] = Some(key.as_ref().and_then(Value::as_str).unwrap_or_default().to_string()),
                        Decision::NoMatch => {}
                        other => return other,
                    }
                }
                let times: Vec<Option<i64>> = events.iter().map(|e| crate::eval::event_ticks(e)).collect();
                Decision::of(sequence(&fired, &times, seq.within_secs / 60))
            }
            _ => results.remove(&i).map(|(d, _)| d).unwrap_or(Decision::Error("python: no verdict".into())),
        })
        .collect();
    Ok((out, panther_event))
}

/// Does a correlation rule as rulecast writes it for Panther fire on these signals? `fired[e][s]`:
/// the key step `s`'s signal rule gave event `e`, if it fired; `times[e]`: the event's time
/// (100 ns ticks). The sequence: a signal of each step in order, with one key, each strictly
/// later than the one before (Panther does not document ties: rulecast's reading, declared in
/// a note) and at most `within_minutes` after it (`WithinTimeFrameMinutes` bounds each
/// transition). An event without a time takes no part.
pub fn sequence(fired: &[Vec<Option<String>>], times: &[Option<i64>], within_minutes: u64) -> bool {
    let span = within_minutes as i64 * 60 * 10_000_000;
    let steps = fired.first().map_or(0, Vec::len);
    fn next(fired: &[Vec<Option<String>>], times: &[Option<i64>], step: usize, steps: usize, last: i64, key: &str, span: i64) -> bool {
        if step == steps {
            return true;
        }
        (0..fired.len()).any(|e| match (&fired[e][step], times[e]) {
            (Some(k), Some(t)) => k == key && t > last && t - last <= span && next(fired, times, step + 1, steps, t, key, span),
            _ => false,
        })
    }
    steps > 0
        && (0..fired.len()).any(|e| match (&fired[e][0], times[e]) {
            (Some(k), Some(t)) => next(fired, times, 1, steps, t, k, span),
            _ => false,
        })
}
