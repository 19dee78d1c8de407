//! The Panther target's globs and regexes decide in linear time and as the canonical
//! evaluator does (issue 10 §1).
//! - The two measured ReDoS cases (`^(a+)+$` on 31 characters: 95 s; glob
//!   `*a*a*a*a*a*a*a*a*a*b` on 120 characters: still running after 300 s) and longer ones are
//!   decided by the generated Python, run by real `python3` under a watchdog (the speed figures
//!   are `scripts/bench-redos`'s, not this test's).
//! - Property tests: random globs (hostile ones with many stars included) and random regexes
//!   (nested quantifiers, alternations, classes, anchors, word boundaries, case-insensitive) on
//!   random values: the generated Python decides exactly like the canonical evaluator.
//! - A regex the linear matcher cannot take is refused for Panther with a located E402.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use rulecast::targets::render::yaml_double;
use rulecast::{Target, Unsupported};
use serde_json::{Value, json};

fn rule_yaml(i: usize, detection: &str) -> String {
    format!(
        "id: linear.case.{i}\nname: Linear case {i}\ndescription: d\nseverity: low\nauthors: [rulecast]\ncreated: 2026-11-22\nlogsource: aws.cloudtrail\ndetection: {detection}\n"
    )
}

fn load(i: usize, detection: &str) -> rulecast::Rule {
    let text = rule_yaml(i, detection);
    rulecast::rule_from_str(&format!("case{i}.yaml"), &format!("case_{i}"), &text).unwrap_or_else(|d| panic!("case {i} does not load:\n{d}\n{text}"))
}

fn panther_python(rule: &rulecast::Rule) -> String {
    let out = rulecast::compile(rule, Target::Panther, Unsupported::Warn).unwrap_or_else(|d| panic!("{}: {d}", rule.file));
    out.files.into_iter().find(|(p, _)| p.ends_with(".py")).map(|(_, t)| t).expect("a .py")
}

const RUNNER: &str = r#"
import importlib.util, json, sys
folder = sys.argv[1]
modules = {}
for line in sys.stdin:
    job = json.loads(line)
    name = job["module"]
    if name not in modules:
        spec = importlib.util.spec_from_file_location(name, f"{folder}/{name}.py")
        modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(modules[name])
    print(json.dumps(bool(modules[name].rule(job["event"]))), flush=True)
"#;

/// Run the generated modules on (module, event) jobs in one `python3`, killed after `limit`:
/// the verdicts, or a panic naming the bound.
fn run_python(modules: &[(String, String)], jobs: &[(String, Value)], limit: Duration) -> Vec<bool> {
    let dir = tempfile::tempdir().expect("tmp");
    for (name, text) in modules {
        std::fs::write(dir.path().join(format!("{name}.py")), text).expect("write");
    }
    // the global helper module the generated rules import (next to them, as a build writes it)
    std::fs::write(dir.path().join("rulecast_helpers.py"), rulecast::vendors::panther::target::python::module()).expect("write");
    let runner = dir.path().join("runner.py");
    std::fs::write(&runner, RUNNER).expect("write");
    let mut child = Command::new("python3").arg(&runner).arg(dir.path()).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("python3");
    let mut input = String::new();
    for (m, e) in jobs {
        input.push_str(&json!({"module": m, "event": e}).to_string());
        input.push('\n');
    }
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let pid = child.id();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = done.clone();
    let watchdog = std::thread::spawn(move || {
        let start = Instant::now();
        while !flag.load(std::sync::atomic::Ordering::SeqCst) {
            if start.elapsed() > limit {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    });
    let out = child.wait_with_output().expect("output");
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = writer.join();
    assert!(!watchdog.join().expect("watchdog"), "the generated Python did not decide {} event(s) within {limit:?}", jobs.len());
    assert!(out.status.success(), "python3 failed");
    String::from_utf8_lossy(&out.stdout).lines().map(|l| l == "true").collect()
}

fn canonical(rule: &rulecast::Rule, event: &Value) -> bool {
    rulecast::eval::evaluate(rule, event, &Default::default()).matched.expect("decided")
}

/// The two measured cases, and the same patterns on much longer values, are decided (and
/// decided right) by the generated Python well within a generous bound.
#[test]
fn the_measured_redos_cases_are_decided_quickly() {
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("{field: userAgent, op: regex, value: '^(a+)+$'}", vec![format!("{}!", "a".repeat(31)), format!("{}!", "a".repeat(50_000)), "a".repeat(50_000)]),
        ("{field: userAgent, op: glob, value: '*a*a*a*a*a*a*a*a*a*b'}", vec!["a".repeat(120), "a".repeat(50_000), format!("{}b", "a".repeat(50_000))]),
        ("{field: userAgent, op: glob, case: insensitive, value: '*A*a*A*a*A*a*A*a*A*B'}", vec!["a".repeat(120), format!("{}B", "a".repeat(50_000))]),
        ("{field: userAgent, op: regex, case: insensitive, value: 'linux/[^ ]*(kali|parrot|pentoo)'}", vec!["linux/".repeat(10_000), format!("{}KALI", "linux/".repeat(10_000))]),
        ("{field: userAgent, op: regex, value: '(a|aa)*c'}", vec!["a".repeat(50_000)]),
        ("{field: userAgent, op: regex, value: '(x+x+)+y'}", vec!["x".repeat(50_000)]),
    ];
    let mut modules = vec![];
    let mut jobs = vec![];
    let mut want = vec![];
    for (i, (detection, values)) in cases.iter().enumerate() {
        let rule = load(i, detection);
        modules.push((format!("case_{i}"), panther_python(&rule)));
        for v in values {
            let ev = json!({"eventName": "X", "userAgent": v});
            want.push(canonical(&rule, &ev));
            jobs.push((format!("case_{i}"), ev));
        }
    }
    let got = run_python(&modules, &jobs, Duration::from_secs(5 + jobs.len() as u64));
    assert_eq!(got, want);
    assert!(want.iter().any(|b| *b) && want.iter().any(|b| !*b), "both verdicts are exercised");
}

fn random<T: std::fmt::Debug>(strategy: impl Strategy<Value = T>, n: usize, seed: u8) -> Vec<T> {
    let mut rng = [0u8; 32];
    rng[0] = seed;
    let mut runner = TestRunner::new_with_rng(Config::default(), TestRng::from_seed(RngAlgorithm::ChaCha, &rng));
    (0..n).map(|_| strategy.new_tree(&mut runner).expect("value").current()).collect()
}

/// Values over a small alphabet (so that patterns match often), with case and non-ASCII
/// letters, new lines, and long runs.
fn values() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        6 => proptest::sample::select(vec!["a", "b", "A", "B", "ab", "é", "É", "\n", " ", "x", "-", "k", "K", "ſ", "s"]).prop_map(str::to_string),
        1 => (1usize..60).prop_map(|n| "a".repeat(n)),
    ];
    proptest::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

fn globs() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        3 => proptest::sample::select(vec!["*", "?", "a", "b", "A", "é", "\n", " ", "x", "k", "s"]).prop_map(str::to_string),
        1 => Just("*a".repeat(6) + "*b"),
    ];
    proptest::collection::vec(piece, 1..9).prop_map(|v| v.concat())
}

fn regexes() -> impl Strategy<Value = String> {
    let atom = proptest::sample::select(vec![
        "a", "b", "A", "é", ".", "[ab]", "[^a]", r"\w", r"\d", r"\s", "x", "k", "s", "(?s:.)", "[a-z]", r"\n",
    ])
    .prop_map(str::to_string);
    let leaf = prop_oneof![4 => atom, 1 => proptest::sample::select(vec!["^", "$", r"\b", r"\B", "(?m:^)", "(?m:$)", ""]).prop_map(str::to_string)];
    leaf.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 1..4).prop_map(|v| v.concat()),
            proptest::collection::vec(inner.clone(), 2..4).prop_map(|v| format!("({})", v.join("|"))),
            (inner.clone(), proptest::sample::select(vec!["*", "+", "?", "{1,3}", "{2}", "*?", "{0,2}"])).prop_map(|(r, q)| format!("(?:{r}){q}")),
        ]
    })
}

/// Globs and regexes, case-sensitive and not, on random values: the Python decides as the
/// canonical evaluator does (Python's `re.I` folds `İ` to `i`, Rust does not: not in the
/// alphabet; globs keep Python's `re.I` case folding, regexes fold as Rust does).
#[test]
fn generated_matchers_agree_with_the_canonical_evaluator() {
    let pats = random(globs(), 100, 1);
    let res = random(regexes(), 160, 2);
    let vals = random(values(), 30, 3);
    let mut modules = vec![];
    let mut jobs = vec![];
    let mut want = vec![];
    let mut describe = vec![];
    let mut n = 0;
    for (op, list) in [("glob", &pats), ("regex", &res)] {
        for p in list {
            for case in ["sensitive", "insensitive"] {
                let detection = format!("{{field: userAgent, op: {op}, case: {case}, value: {}}}", yaml_double(p));
                let Ok(rule) = rulecast::rule_from_str("c.yaml", &format!("case_{n}"), &rule_yaml(n, &detection)) else {
                    continue; // a regex Rust itself refuses (the loader says why)
                };
                let name = format!("case_{n}");
                n += 1;
                modules.push((name.clone(), panther_python(&rule)));
                for v in &vals {
                    let ev = json!({"eventName": "X", "userAgent": v});
                    want.push(canonical(&rule, &ev));
                    describe.push(format!("{op} {case} {p:?} on {v:?}"));
                    jobs.push((name.clone(), ev));
                }
            }
        }
    }
    // both renderings of each operator are exercised
    for needle in ["re.fullmatch(", "glob_match(", "re.search(", "regex_search("] {
        let n = modules.iter().filter(|(_, py)| py.contains(needle)).count();
        assert!(n >= 10, "only {n} generated modules use {needle}");
    }
    let got = run_python(&modules, &jobs, Duration::from_secs(120));
    let wrong: Vec<String> =
        got.iter().zip(&want).zip(&describe).filter(|((g, w), _)| g != w).map(|((g, w), d)| format!("{d}: python {g}, canonical {w}")).collect();
    assert!(wrong.is_empty(), "{} of {} verdicts differ:\n{}", wrong.len(), want.len(), wrong.iter().take(20).cloned().collect::<Vec<_>>().join("\n"));
    let matched = want.iter().filter(|b| **b).count();
    assert!(matched > want.len() / 20 && matched < want.len(), "{matched} of {} match: the values exercise both verdicts", want.len());
    println!("linear matchers: {n} rules × {} values = {} verdicts agree ({matched} matches)", vals.len(), want.len());
}

/// A regex the linear matcher cannot take (too many states once bounded repetitions are
/// unrolled) is refused for Panther with a located E402, and the other targets still build.
#[test]
fn a_regex_too_large_for_the_linear_matcher_is_refused_located() {
    let rule = load(0, "{field: userAgent, op: regex, value: '(a{1,100}){1,100}'}");
    let err = rulecast::compile(&rule, Target::Panther, Unsupported::Warn).expect_err("refused");
    let text = err.to_string();
    assert!(text.contains("E402") && text.contains("linear time") && text.contains("case0.yaml:8:"), "{text}");
    rulecast::compile(&rule, Target::Sentinel, Unsupported::Warn).unwrap_or_else(|d| panic!("{d}"));
}
