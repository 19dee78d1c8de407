//! The CLI as an attacker or a careless user meets it: inputs that are not rule files, outputs
//! replaced as one step (kill -9 at random points, concurrent builds), diagnostics in
//! rulecast's own words, escaped and cut.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::root;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rulecast"))
}

/// Run with a deadline: a hang is a failure, not a stuck test run.
fn run(args: &[&str], cwd: &Path) -> Output {
    let child = bin().args(args).current_dir(cwd).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("runs");
    let pid = child.id();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = done.clone();
    let watchdog = std::thread::spawn(move || {
        let start = Instant::now();
        while !flag.load(std::sync::atomic::Ordering::SeqCst) {
            if start.elapsed() > Duration::from_secs(120) {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    });
    let out = child.wait_with_output().expect("output");
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(!watchdog.join().expect("watchdog"), "rulecast {args:?} hung");
    out
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8")
}

fn one_rule(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).expect("mkdir");
    let f = dir.join("aws_root_access_key_created.yaml");
    std::fs::copy(root().join("canonical-rules/aws_root_access_key_created.yaml"), &f).expect("copy");
    f
}

#[test]
fn files_that_are_not_rules_are_refused_unread() {
    let tmp = tempfile::tempdir().expect("tmp");
    let rules = tmp.path().join("rules");
    one_rule(&rules);
    std::os::unix::fs::symlink("/proc/self/environ", rules.join("env.yaml")).expect("link");
    let secret = tmp.path().join("credentials");
    std::fs::write(&secret, "[default]\naws_secret_access_key = SECRETSECRET\n").expect("write");
    std::os::unix::fs::symlink(&secret, rules.join("creds.yaml")).expect("link");
    let o = run(&["validate", "--rules", s(&rules)], tmp.path());
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("env.yaml") && t.contains("creds.yaml") && t.contains("symbolic link"), "{t}");
    assert!(!t.contains("SECRETSECRET") && !t.contains("PATH="), "a diagnostic quoted a file that is not a rule:\n{t}");
    // following links still refuses the pseudo-file; a link to a regular file is read
    let o = run(&["validate", "--rules", s(&rules), "--follow-symlinks"], tmp.path());
    let t = text(&o);
    assert!(t.contains("pseudo-file") && !t.contains("PATH="), "{t}");
    // devices and FIFOs are refused without reading (no hang, no memory growth)
    let o = run(&["validate", "--rules", "/dev/zero"], tmp.path());
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    let fifo_dir = tmp.path().join("fifo");
    one_rule(&fifo_dir);
    assert!(Command::new("mkfifo").arg(fifo_dir.join("pipe.yaml")).status().expect("mkfifo").success());
    let o = run(&["validate", "--rules", s(&fifo_dir)], tmp.path());
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("pipe.yaml") && t.contains("FIFO"), "{t}");
    // folder link loops end
    let loops = tmp.path().join("loops");
    one_rule(&loops.join("a"));
    std::os::unix::fs::symlink(&loops, loops.join("a/up")).expect("link");
    std::os::unix::fs::symlink(loops.join("a"), loops.join("a/self")).expect("link");
    let o = run(&["validate", "--rules", s(&loops), "--follow-symlinks"], tmp.path());
    assert!(text(&o).contains("link loop"), "{}", text(&o));
    // a size limit
    let big = tmp.path().join("big");
    let f = one_rule(&big);
    let o = run(&["validate", "--rules", s(&big), "--max-file-size", "100"], tmp.path());
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("more than the limit of 100 bytes"), "{}", text(&o));
    // a single rule file is accepted wherever a folder is
    let o = run(&["validate", "--rules", s(&f)], tmp.path());
    assert!(o.status.success(), "{}", text(&o));
    let o = run(&["test", "--rules", s(&f)], tmp.path());
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn symlinked_panther_python_is_not_read_on_import() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("p");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("r.yml"), "AnalysisType: rule\nFilename: r.py\nRuleID: X.Y\nEnabled: true\nLogTypes: [AWS.CloudTrail]\nSeverity: Low\n").expect("write");
    let secret = tmp.path().join("secret.py");
    std::fs::write(&secret, "SECRETSECRET = 1 +\n").expect("write");
    std::os::unix::fs::symlink(&secret, dir.join("r.py")).expect("link");
    let o = run(&["import", "--from", "panther", s(&dir), "--out", s(&tmp.path().join("imported"))], tmp.path());
    let t = text(&o);
    assert!(t.contains("symbolic link") && !t.contains("SECRETSECRET"), "{t}");
}

#[test]
fn a_build_never_empties_or_mixes_its_output() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let all = root().join("canonical-rules");
    let o = run(&["build", "--rules", s(&all), "--out", s(&out)], tmp.path());
    assert!(o.status.success(), "{}", text(&o));
    let before = tree(&out);
    // an empty or missing rules folder writes nothing
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).expect("mkdir");
    for rules in [empty.clone(), tmp.path().join("missing")] {
        let o = run(&["build", "--rules", s(&rules), "--out", s(&out)], tmp.path());
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert_eq!(tree(&out), before, "the output changed");
    }
    // --out inside --rules is refused
    let o = run(&["build", "--rules", s(&all), "--out", s(&all.join("out"))], tmp.path());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(!all.join("out").exists());
    // a target named twice builds once
    let o = run(&["build", "--rules", s(&all), "--out", s(&out), "--target", "sentinel", "--target", "sentinel"], tmp.path());
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(tree(&out), before);
    // an output entry that is a file where a target folder goes is replaced; the rest kept
    std::fs::remove_dir_all(out.join("elastic")).expect("rm");
    std::fs::write(out.join("elastic"), "not a folder").expect("write");
    std::fs::write(out.join("README.txt"), "mine").expect("write");
    let o = run(&["build", "--rules", s(&all), "--out", s(&out)], tmp.path());
    assert!(o.status.success(), "{}", text(&o));
    assert!(out.join("elastic").is_dir());
    assert_eq!(std::fs::read_to_string(out.join("README.txt")).expect("kept"), "mine");
    // an output that is a file is refused
    let file_out = tmp.path().join("file_out");
    std::fs::write(&file_out, "x").expect("write");
    let o = run(&["build", "--rules", s(&all), "--out", s(&file_out)], tmp.path());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("not a folder"), "{}", text(&o));
}

fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.strip_prefix(dir).expect("inside").display().to_string(), std::fs::read(&p).expect("file")));
            }
        }
    }
    out.sort();
    out
}

/// Many copies of the bundled rules, each name marked with `mark`.
fn many_rules(dir: &Path, copies: usize, mark: &str) {
    std::fs::create_dir_all(dir).expect("mkdir");
    for f in std::fs::read_dir(root().join("canonical-rules")).expect("rules") {
        let f = f.expect("entry").path();
        if f.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&f).expect("read");
        let stem = f.file_stem().expect("stem").to_string_lossy().to_string();
        for i in 0..copies {
            let id_line = text.lines().find(|l| l.starts_with("id: ")).expect("id");
            let t = text.replacen(id_line, &format!("id: copy{i}.{stem}"), 1).replacen("\nname: ", &format!("\nname: MARK-{mark} "), 1);
            let t = strip_target_names(&t);
            std::fs::write(dir.join(format!("{stem}_{i}.yaml")), t).expect("write");
        }
    }
}

/// Copies must not share output names: drop the per-target file names (and ids) a rule gives.
fn strip_target_names(t: &str) -> String {
    t.lines().filter(|l| !(l.starts_with("    file: ") || l.starts_with("    id: "))).map(|l| format!("{l}\n")).collect()
}

/// Which marks the output's files carry, per target folder.
fn marks(out: &Path) -> Vec<(String, std::collections::BTreeSet<String>)> {
    let mut v = vec![];
    for t in ["sentinel", "elastic", "panther"] {
        let mut m = std::collections::BTreeSet::new();
        for e in std::fs::read_dir(out.join(t)).expect("target folder") {
            let p = e.expect("e").path();
            if p.extension().is_some_and(|x| x == "py") {
                continue;
            }
            let text = std::fs::read_to_string(&p).expect("read");
            for mark in ["MARK-A", "MARK-B"] {
                if text.contains(mark) {
                    m.insert(mark.to_string());
                }
            }
        }
        v.push((t.to_string(), m));
    }
    v
}

#[test]
fn kill_9_and_concurrent_builds_leave_one_whole_output() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    many_rules(&a, 10, "A");
    many_rules(&b, 10, "B");
    let out = tmp.path().join("out");
    let o = run(&["build", "--rules", s(&a), "--out", s(&out)], tmp.path());
    assert!(o.status.success(), "{}", text(&o));
    let whole_a = tree(&out);
    let start = Instant::now();
    let o = run(&["build", "--rules", s(&b), "--out", s(&out)], tmp.path());
    let build_time = start.elapsed();
    assert!(o.status.success(), "{}", text(&o));
    let whole_b = tree(&out);
    // kill -9 at spread points of a build that flips the output between A and B
    for trial in 0..8u32 {
        let rules = if trial % 2 == 0 { &a } else { &b };
        let mut child = bin().args(["build", "--rules", s(rules), "--out", s(&out)]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn");
        std::thread::sleep(build_time.mul_f64(f64::from(trial) / 7.0));
        let _ = child.kill();
        let _ = child.wait();
        let now = tree(&out);
        assert!(now == whole_a || now == whole_b, "trial {trial}: the output is neither the whole old nor the whole new build: {:?}", marks(&out));
    }
    // the next build cleans what the killed ones left
    let o = run(&["build", "--rules", s(&a), "--out", s(&out)], tmp.path());
    assert!(o.status.success(), "{}", text(&o));
    let leftovers: Vec<String> = std::fs::read_dir(tmp.path()).expect("tmp").filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().to_string()).filter(|n| n.contains("rulecast-stage") || n.contains("rulecast-old")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(tree(&out), whole_a);
    // two builds at once into one output: both succeed, one after the other
    let c1 = bin().args(["build", "--rules", s(&a), "--out", s(&out)]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let c2 = bin().args(["build", "--rules", s(&b), "--out", s(&out)]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let (o1, o2) = (c1.wait_with_output().expect("1"), c2.wait_with_output().expect("2"));
    assert!(o1.status.success() && o2.status.success(), "{}\n{}", text(&o1), text(&o2));
    let now = tree(&out);
    assert!(now == whole_a || now == whole_b, "{:?}", marks(&out));
}

#[test]
fn diagnostics_are_in_rulecasts_words_escaped_and_cut() {
    let tmp = tempfile::tempdir().expect("tmp");
    let base = std::fs::read_to_string(root().join("canonical-rules/aws_root_access_key_created.yaml")).expect("read");
    let cases: Vec<(&str, String, &[&str], &[&str])> = vec![
        ("dup", base.replacen("\nname: ", "\nname: x\nname: ", 1), &["duplicate key `name`"], &["DuplicateKeyPolicy", "Options"]),
        ("null", base.replacen("\nname: AWS Root Account Access Key Created", "\nname: null", 1), &["a value is missing"], &["Option<"]),
        ("big", format!("{base}\nlists:\n  a: [{}]\n", vec!["1"; 260_000].join(",")), &["too large"], &["budget", "Nodes {"]),
        ("escape", base.replacen("\nname: ", "\n\u{1b}[31mname\u{1b}[0m: x\nname: ", 1), &["\\u{1b}"], &["\u{1b}"]),
        ("longkey", base.replacen("\nname: ", &format!("\n{}: 1\nname: ", "k".repeat(1_000_000)), 1), &["…"], &[]),
        ("date", base.replacen("created: 2026-11-22", "created: 2026-02-31", 1), &["`2026-02-31` is not a date"], &[]),
    ];
    for (name, rule, want, never) in cases {
        let dir = tmp.path().join(name);
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("r.yaml"), rule).expect("write");
        let o = run(&["validate", "--rules", s(&dir), "--max-file-size", "10000000"], tmp.path());
        let t = text(&o);
        assert_eq!(o.status.code(), Some(1), "{name}: {t}");
        for w in want {
            assert!(t.contains(w), "{name}: wants {w:?} in:\n{}", &t[..t.len().min(2000)]);
        }
        for n in never {
            assert!(!t.contains(n), "{name}: must not say {n:?}:\n{}", &t[..t.len().min(2000)]);
        }
        assert!(t.len() < 20_000, "{name}: {} bytes of diagnostics", t.len());
        assert!(t.lines().next().is_some_and(|l| l.contains("r.yaml:")), "{name}: not located: {}", &t[..t.len().min(500)]);
    }
}
