//! Every Panther rule YAML rulecast writes reads back, with real PyYAML (what
//! `panther_analysis_tool` reads it with), as the values the canonical rule says: hostile display
//! names, descriptions, tags, runbooks, references, report entries, summary attributes and test
//! names (new lines, `: `, `#`, a leading `-`, `>`, `|`, `*`, `&`, `!`, `%`, `@` or backtick,
//! quotes, Unicode, control characters, very long text), written in the canonical rule as
//! double-quoted strings and as folded (`>`) and literal (`|`) block scalars.
//!
//! Needs `python3` with PyYAML (`bash tests/oracles/install.sh`); outside CI,
//! `RULECAST_SKIP_ORACLES=1` lets it pass without.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use rulecast::targets::render::yaml_double;
use rulecast::{Target, Unsupported};
use serde_json::{Value, json};

/// Fixed hostile values: every case the issue names, and a few more.
const FIXED: &[&str] = &[
    "folded test name\n",
    "\n- x",
    "- x",
    "-x",
    "> folded",
    ">",
    "| literal",
    "|",
    "*alias",
    "&anchor",
    "!tag",
    "!!str",
    "%YAML 1.2",
    "@at",
    "`tick`",
    "key: value",
    "ends with colon:",
    "a # comment",
    "#hash",
    "'single'",
    "\"double\"",
    "it's",
    "two\nlines",
    "two\nlines\n",
    "two\nlines\n\n",
    "\n  indented second line",
    "\nx",
    " leading space",
    "trailing space ",
    "a\n b\n  c",
    "line\n- dash line\n# hash line\n---\n...",
    "---",
    "...",
    "tab\there",
    "cr\rhere",
    "nul\u{0}here",
    "esc\u{1b}[31m",
    "del\u{7f}",
    "nel\u{85}here",
    "ls\u{2028}ps\u{2029}",
    "bom\u{feff}",
    "é漢字🙂",
    "true",
    "yes",
    "No",
    "null",
    "~",
    "1.0",
    "0x1F",
    "1e3",
    ".inf",
    "? question",
    "[flow]",
    "{flow: map}",
    ",comma",
    "\\ backslash \\n",
    "{{ x }} {% y %}",
];

fn hostile() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => proptest::sample::select(vec![
            "\"", "'", "\\", "\n", "\n\n", "\t", "\r", ": ", " #", "#", "- ", "-", ">", "|", "*", "&", "!", "%", "@", "`", "?", ",",
            "[", "]", "{", "}", "~", " ", "  ", "---", "...", "é", "漢字", "🙂", "\u{2028}", "\u{85}", "\u{7f}", "\u{0}", "\u{1b}",
            "\u{feff}", "true", "null", "1.5",
        ]).prop_map(str::to_string),
        3 => "[a-zA-Z0-9._-]{1,8}",
        1 => any::<char>().prop_map(|c| c.to_string()),
    ];
    proptest::collection::vec(piece, 1..8).prop_map(|v| v.concat())
}

/// The values: the fixed ones, a very long one, and generated ones (fixed seed).
fn values() -> Vec<String> {
    let mut v: Vec<String> = FIXED.iter().map(|s| s.to_string()).collect();
    v.push(format!("{} end", "long words: with # and - ".repeat(200)));
    v.push("x".repeat(5000));
    v.push(format!("{}\n", "folded very long line ".repeat(100)));
    let mut runner = TestRunner::new_with_rng(Config::default(), TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let strat = hostile();
    v.extend((0..400).map(|_| strat.new_tree(&mut runner).expect("value").current()));
    v
}

/// A value as a canonical YAML scalar for a key at `indent` spaces: a block scalar (folded or
/// literal) when the text allows it, to exercise the loader's reading of them, else
/// double-quoted.
fn canonical_scalar(v: &str, indent: usize, style: usize) -> String {
    let pad = " ".repeat(indent + 2);
    let block_ok = v.ends_with('\n')
        && !v.ends_with("\n\n")
        && !v.starts_with(['\n', ' '])
        && v.chars().all(|c| c == '\n' || (!c.is_control() && !matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{feff}')))
        && v.split('\n').all(|l| !l.starts_with(' ') && !l.ends_with(' '));
    if block_ok && style % 3 != 2 {
        let lines: Vec<&str> = v.strip_suffix('\n').unwrap_or(v).split('\n').collect();
        // `>` folds single line breaks into spaces: only for one-line text
        let head = if lines.len() == 1 && style % 3 == 0 { ">" } else { "|" };
        let mut out = head.to_string();
        for l in lines {
            out.push('\n');
            if !l.is_empty() {
                out.push_str(&pad);
                out.push_str(l);
            }
        }
        out
    } else {
        yaml_double(v)
    }
}

/// A report's name: a mapping key, so one line and (YAML's limit on implicit keys) short.
fn report_name(v: &str) -> String {
    v.replace('\n', " ").chars().take(200).collect()
}

/// Panther's RuleID and DisplayName may not contain these (rulecast refuses them).
fn display_safe(v: &str) -> String {
    v.chars().filter(|c| !matches!(c, '<' | '>' | '&' | '"' | '%')).collect::<String>()
}

fn rule_yaml(i: usize, v: &str) -> String {
    let name = display_safe(v);
    let name = if name.is_empty() { "x".to_string() } else { name };
    [
        format!("id: hostile.yaml.{i}"),
        format!("name: {}", canonical_scalar(&name, 0, i)),
        format!("description: {}", canonical_scalar(v, 0, i + 1)),
        "severity: low".into(),
        "authors: [rulecast]".into(),
        "created: 2026-11-22".into(),
        format!("references:\n  - {}\n  - https://example.com/second", canonical_scalar(v, 2, i)),
        format!("tags:\n  - {}\n  - plain\n  - {}", canonical_scalar(v, 2, i + 2), yaml_double(&format!("{v}{v}"))),
        "logsource: aws.cloudtrail".into(),
        "detection: {field: eventName, op: eq, value: X}".into(),
        "tests:".into(),
        format!("  - name: {}", canonical_scalar(v, 4, i)),
        "    expect: true".into(),
        "    event: {\"eventName\": \"X\"}".into(),
        "  - name: second".into(),
        "    expect: false".into(),
        format!("    event: {{\"eventName\": {}}}", yaml_double(v)),
        "targets:".into(),
        "  panther:".into(),
        format!("    runbook: {}", canonical_scalar(v, 4, i + 1)),
        format!("    summary_attributes:\n      - {}", canonical_scalar(v, 6, i)),
        format!("    reports:\n      {}:\n        - {}\n        - plain", yaml_double(&report_name(v)), canonical_scalar(v, 8, i + 2)),
    ]
    .join("\n")
        + "\n"
}

/// What the rule YAML must say, from the canonical rule.
fn expected(rule: &rulecast::Rule) -> Value {
    let d = &rule.doc;
    let s = &d.targets.panther;
    let tests: Vec<Value> = d.tests.iter().map(|t| json!({"Name": t.value.name, "Log": t.value.event})).collect();
    json!({
        "DisplayName": d.name,
        "Description": d.description,
        "Tags": d.tags,
        "Reference": d.references.first(),
        "Runbook": s.runbook,
        "SummaryAttributes": s.summary_attributes,
        "Reports": s.reports,
        "Tests": tests,
    })
}

const READER: &str = r#"
import json, sys, yaml
out = []
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        v = yaml.safe_load(text)
        out.append({
            "DisplayName": v.get("DisplayName"),
            "Description": v.get("Description"),
            "Tags": v.get("Tags"),
            "Reference": v.get("Reference"),
            "Runbook": v.get("Runbook"),
            "SummaryAttributes": v.get("SummaryAttributes"),
            "Reports": v.get("Reports"),
            "Tests": [{"Name": t.get("Name"), "Log": t.get("Log")} for t in v.get("Tests") or []],
        })
    except Exception as e:
        out.append({"error": str(e)})
json.dump(out, sys.stdout)
"#;

#[test]
fn every_panther_yaml_reads_back_with_pyyaml() {
    let values = values();
    let dir = tempfile::tempdir().expect("tmp");
    let mut paths = vec![];
    let mut want = vec![];
    for (i, v) in values.iter().enumerate() {
        let text = rule_yaml(i, v);
        let rule = rulecast::rule_from_str(&format!("case{i}.yaml"), &format!("case_{i}"), &text)
            .unwrap_or_else(|d| panic!("case {i} {v:?} does not load:\n{d}\n{text}"));
        // the canonical loader read the values as written
        assert_eq!(rule.doc.description, *v, "case {i}: canonical description\n{text}");
        assert_eq!(rule.doc.tests[0].value.name, *v, "case {i}: canonical test name\n{text}");
        let out = rulecast::compile(&rule, Target::Panther, Unsupported::Warn).unwrap_or_else(|d| panic!("case {i} {v:?}: {d}"));
        let (_, yml) = out.files.iter().find(|(p, _)| p.ends_with(".yml")).expect("a rule YAML");
        let p = dir.path().join(format!("case_{i}.yml"));
        std::fs::write(&p, yml).expect("write");
        paths.push(p);
        want.push(expected(&rule));
    }
    let child = Command::new("python3")
        .arg("-c")
        .arg(READER)
        .args(&paths)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(child) = child else { return missing("python3") };
    let run = child.wait_with_output().expect("python3 runs");
    let stderr = String::from_utf8_lossy(&run.stderr);
    if stderr.contains("No module named 'yaml'") {
        return missing("PyYAML");
    }
    assert!(run.status.success(), "the PyYAML reader failed:\n{stderr}");
    let got: Vec<Value> = serde_json::from_slice(&run.stdout).expect("JSON from the reader");
    assert_eq!(got.len(), values.len());
    let mut failures = vec![];
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        if g != w {
            let text = std::fs::read_to_string(&paths[i]).unwrap_or_default();
            let short = |s: String| s.chars().take(3000).collect::<String>();
            failures.push(short(format!("case {i} {:?}:\n  PyYAML: {g}\n  wanted: {w}\n{text}", values[i])));
        }
    }
    let _ = std::io::stderr().write_all(format!("{} Panther YAMLs read back by PyYAML\n", values.len()).as_bytes());
    assert!(failures.is_empty(), "{} of {} Panther YAMLs do not read back:\n{}", failures.len(), values.len(), failures.join("\n"));
}

fn missing(what: &str) {
    if common::oracles_optional() {
        eprintln!("skipping: {what} is not installed (RULECAST_SKIP_ORACLES=1)");
    } else {
        panic!("{what} is not installed: run `bash tests/oracles/install.sh` (or set RULECAST_SKIP_ORACLES=1 outside CI)");
    }
}
