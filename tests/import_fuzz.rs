//! Property test: importing never crashes, and neither does loading a canonical rule. Real vendor files (`tests/fixtures/vendor/*`, and
//! `../shared/corpus/*` when present) are mutated (truncated at a character boundary, a span
//! deleted, duplicated or swapped with another, hostile text inserted: quotes of every kind,
//! backslashes, brackets, `|`, `:`, NUL, Unicode, very long lines, 500 `(` / `[` / `{`, long
//! `and` chains, block-scalar and string-kind switches) and given to each importer's parse
//! function. For every case:
//! - the importer and everything `rulecast import` does with its result (load the rule back,
//!   compile it for each target) does not panic (each call runs under `catch_unwind`; the input
//!   that panicked is reported, shrunk by proptest);
//! - a refused import carries a span naming the vendor file (or, for Panther, the Python
//!   module next to it) whose line and column lie inside that file's text;
//! - an import that is not refused writes YAML that `rulecast::rule_from_str` loads.
//!
//! The canonical loader gets the same treatment, seeded with the bundled `canonical-rules/`: a
//! mutated rule either loads (and compiles for every target without a panic) or is refused with
//! diagnostics whose spans lie inside the text.
//!
//! Deterministic: a fixed seed (set `RULECAST_FUZZ_SEED` to another number, and
//! `RULECAST_FUZZ_CASES` to the cases per importer, for a longer local run). A second test feeds
//! 10,000 nested parentheses (and `not`s, and long `and` chains) to every query language an
//! importer reads, on a thread with a 2 MiB stack: each must be an error, not a stack overflow.

mod common;

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Once;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use rulecast::import::{self, Imported, Outcome};
use strum::IntoEnumIterator;

/// Mutated cases per importer and run (four importers: 2,400 in all), on top of every seed
/// imported unchanged once.
const CASES: u32 = 600;

// ---------------------------------------------------------------------------------------------
// Seeds

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Vendor {
    Sentinel,
    Elastic,
    Sigma,
    Panther,
    /// Not a vendor: rulecast's own canonical rules, read by the loader.
    Canonical,
}

impl Vendor {
    fn dir(self) -> &'static str {
        match self {
            Vendor::Sentinel => "sentinel",
            Vendor::Elastic => "elastic",
            Vendor::Sigma => "sigma",
            Vendor::Panther => "panther",
            Vendor::Canonical => "canonical",
        }
    }

    fn exts(self) -> &'static [&'static str] {
        match self {
            Vendor::Elastic => &["toml"],
            _ => &["yml", "yaml"],
        }
    }
}

/// A seed file: its name (as the importer is given it) and its text.
#[derive(Debug)]
struct Seed {
    name: String,
    text: String,
}

fn walk(dir: &Path, exts: &[&str], out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, exts, out);
        } else if p.extension().and_then(|e| e.to_str()).is_some_and(|e| exts.contains(&e)) {
            out.push(p);
        }
    }
}

/// Every file of a vendor with one of `exts`: the fixtures (always there), then the shared corpus.
fn seed_files(vendor: Vendor, exts: &[&str]) -> Vec<Seed> {
    let root = common::root();
    let mut paths = vec![];
    if vendor == Vendor::Canonical {
        walk(&root.join("canonical-rules"), exts, &mut paths);
    } else {
        walk(&root.join("tests/fixtures/vendor").join(vendor.dir()), exts, &mut paths);
        walk(&root.join("../shared/corpus").join(vendor.dir()), exts, &mut paths);
    }
    paths
        .iter()
        .filter_map(|p| {
            let text = std::fs::read_to_string(p).ok()?;
            let name = p.file_name()?.to_str()?.to_string();
            Some(Seed { name, text })
        })
        .collect()
}

struct Seeds {
    vendor: Vendor,
    /// The rule files (Panther: the rule YAMLs).
    files: Vec<Seed>,
    /// Panther only: the Python modules (any YAML is paired with any module).
    python: Vec<Seed>,
}

fn seeds(vendor: Vendor) -> Seeds {
    let files = seed_files(vendor, vendor.exts());
    let python = if vendor == Vendor::Panther { seed_files(vendor, &["py"]) } else { vec![] };
    assert!(files.len() >= 5, "{vendor:?}: too few seed files ({})", files.len());
    assert!(vendor != Vendor::Panther || python.len() >= 5, "too few Python seeds");
    Seeds { vendor, files, python }
}

// ---------------------------------------------------------------------------------------------
// Mutations

/// A position or length as a fraction of the text (`0..=u16::MAX`), so that a mutation applies
/// to any seed and shrinks toward the start.
type Frac = u16;

#[derive(Debug, Clone)]
enum Op {
    /// Cut the text at a character boundary.
    Truncate(Frac),
    /// Remove `len` characters at a position.
    Delete(Frac, usize),
    /// Repeat `len` characters at a position right after themselves.
    Duplicate(Frac, usize),
    /// Exchange two non-overlapping spans of `len` characters.
    Swap(Frac, Frac, usize),
    /// Insert a piece of hostile text.
    Insert(Frac, String),
    /// A structural switch from [`REPLACEMENTS`] (first occurrence, or every one).
    Replace(usize, bool),
}

/// Structural switches: block scalar styles, string kinds, line endings, indentation.
const REPLACEMENTS: &[(&str, &str)] = &[
    (": |", ": >"),
    (": |", ": >-"),
    (": |", ": |-"),
    (": |", ": |2"),
    (": |", ": |\n"),
    (": |\n", ": \""),
    (": ", ":\t"),
    ("'''", "\"\"\""),
    ("\"\"\"", "'''"),
    ("'", "\""),
    ("\"", "'"),
    ("\n", "\r\n"),
    ("\n", "\r"),
    ("\n  ", "\n\t"),
    ("\n    ", "\n  "),
    ("    ", "        "),
    ("query", "query:"),
    ("[rule]", "[[rule]]"),
    ("condition:", "condition: ["),
    ("def rule(event):", "def rule(event, x):"),
    ("return ", "return not "),
    ("|", "||"),
    (" and ", " and ("),
    (" or ", " | "),
    ("==", "=~~"),
    ("(", ")"),
    (")", "("),
];

fn hostile_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => proptest::sample::select(vec![
            "\"", "'", "`", "'''", "\"\"\"", "\u{201c}", "\u{201d}", "\u{2018}", "\u{2019}", "\u{ab}", "\\", "\\\\", "\\u",
            "\\x", "\\U0001", "(", ")", "[", "]", "{", "}", "|", "||", ":", "::", ": ", "- ", "? ", "\0", "\u{feff}", "\u{2028}",
            "\u{85}", "\u{202e}", "\u{301}", "é", "漢字", "🙂", "\u{10ffff}", "\r", "\r\n", "\n", "\t", "\n\t", "\n  ", " ", "#",
            "//", "/*", "--", "&a ", "*a", "!!str ", "!!binary ", "---\n", "...\n", "%YAML 1.2\n", "<<: ", "[[", "]]", "=",
            "==", "=~", "!", "!=", " and ", " or ", " not ", "not ", "| where ", "| summarize count() by ", "| extend x = ",
            "let x = ", ";", ",", ".", "..", "*", "?", "@", "$", "${x}", "{{x}}", "%", "&", "~", "^", "def ", "lambda: ",
            "return ", "\n    ", "\n        ", "if ", "else:", "**", "0x", "1e999", "-", "+", "99999999999999999999", "true",
            "null", "~", "nan", ".inf", "2024-13-45", "1 of ", "all of them", "them", "|contains", "|re", "|fieldref", "|all",
        ]).prop_map(str::to_string),
        2 => proptest::sample::select(vec!["(", "[", "{", "not ", "- ", "[\n", "{\"a\":", "x and ", "a.", "-", "f("])
            .prop_flat_map(|p| (Just(p), 1usize..600))
            .prop_map(|(p, n)| p.repeat(n)),
        1 => (1usize..20_000).prop_map(|n| "a".repeat(n)),
        2 => any::<char>().prop_map(|c| c.to_string()),
        2 => "[a-zA-Z0-9._:|()\\[\\]{}'\" -]{1,12}",
    ]
}

fn span_len() -> impl Strategy<Value = usize> {
    prop_oneof![4 => 1usize..8, 3 => 1usize..80, 1 => 1usize..2000]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => any::<Frac>().prop_map(Op::Truncate),
        3 => (any::<Frac>(), span_len()).prop_map(|(a, n)| Op::Delete(a, n)),
        2 => (any::<Frac>(), span_len()).prop_map(|(a, n)| Op::Duplicate(a, n)),
        2 => (any::<Frac>(), any::<Frac>(), span_len()).prop_map(|(a, b, n)| Op::Swap(a, b, n)),
        6 => (any::<Frac>(), hostile_piece()).prop_map(|(a, s)| Op::Insert(a, s)),
        2 => (0..REPLACEMENTS.len(), any::<bool>()).prop_map(|(i, every)| Op::Replace(i, every)),
    ]
}

/// The byte offset of character `frac` of the way through `text`.
fn at(text: &str, frac: Frac) -> usize {
    let n = text.chars().count();
    let i = (frac as usize * (n + 1)) >> 16;
    text.char_indices().nth(i).map_or(text.len(), |(b, _)| b)
}

/// The byte offset `len` characters after `from` (or the end).
fn after(text: &str, from: usize, len: usize) -> usize {
    text[from..].char_indices().nth(len).map_or(text.len(), |(b, _)| from + b)
}

fn apply(text: &str, op: &Op) -> String {
    match op {
        Op::Truncate(p) => text[..at(text, *p)].to_string(),
        Op::Delete(p, n) => {
            let a = at(text, *p);
            let b = after(text, a, *n);
            format!("{}{}", &text[..a], &text[b..])
        }
        Op::Duplicate(p, n) => {
            let a = at(text, *p);
            let b = after(text, a, *n);
            format!("{}{}", &text[..b], &text[a..])
        }
        Op::Swap(p, q, n) => {
            let (x, y) = (at(text, *p), at(text, *q));
            let (a, c) = (x.min(y), x.max(y));
            let b = after(text, a, *n).min(c);
            let d = after(text, c, *n);
            format!("{}{}{}{}{}", &text[..a], &text[c..d], &text[b..c], &text[a..b], &text[d..])
        }
        Op::Insert(p, s) => {
            let a = at(text, *p);
            format!("{}{s}{}", &text[..a], &text[a..])
        }
        Op::Replace(i, every) => {
            let (from, to) = REPLACEMENTS[*i];
            if *every { text.replace(from, to) } else { text.replacen(from, to, 1) }
        }
    }
}

/// One case: a seed (Panther: a YAML and a Python module), mutations of each.
#[derive(Clone)]
struct Case {
    file: usize,
    ops: Vec<Op>,
    py: usize,
    py_ops: Vec<Op>,
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "file #{} ops {:?}; python #{} ops {:?}", self.file, self.ops, self.py, self.py_ops)
    }
}

fn case(s: &Seeds) -> impl Strategy<Value = Case> {
    let n = s.files.len();
    let np = s.python.len().max(1);
    let panther = s.vendor == Vendor::Panther;
    let ops = proptest::collection::vec(op(), 1..4);
    let py_ops = proptest::collection::vec(op(), if panther { 0..4 } else { 0..1 });
    (0..n, ops, 0..np, py_ops).prop_map(|(file, ops, py, py_ops)| Case { file, ops, py, py_ops })
}

// ---------------------------------------------------------------------------------------------
// Running one input

thread_local! {
    /// While set, a panic is recorded here instead of printed.
    static CAPTURING: Cell<bool> = const { Cell::new(false) };
    static PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Record panics of capturing threads (message and location) instead of printing them.
fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if CAPTURING.with(Cell::get) {
                PANIC.with(|p| *p.borrow_mut() = Some(info.to_string()));
            } else {
                default(info);
            }
        }));
    });
}

/// The input as shown in a failure: escaped, and in a file when it is long.
fn show(vendor: Vendor, name: &str, text: &str) -> String {
    if text.len() <= 3000 {
        return format!("{name}: {text:?}");
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("import_fuzz");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("{vendor:?}-{name}"));
    let _ = std::fs::write(&path, text);
    format!("{name}: {} bytes, written to {}; starts {:?}", text.len(), path.display(), &text[..at(text, 2000)])
}

/// Is (line, col) a position in `text` (the end of a line or of the input counts)? Lines end at
/// `\n`, or (YAML's line breaks, which serde-saphyr counts) at `\r\n`, `\r` or `\n`.
fn inside(text: &str, line: usize, col: usize) -> bool {
    let within = |lines: Vec<&str>| {
        line >= 1 && line <= lines.len() && col >= 1 && col <= lines[line - 1].chars().count() + 1
    };
    let lf: Vec<&str> = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).collect();
    let yaml: Vec<&str> = text.split("\r\n").flat_map(|l| l.split(['\r', '\n'])).collect();
    within(lf) || within(yaml)
}

/// Import one input as `rulecast import` does (import, load every rule back, compile it for
/// every target); Err says what went wrong.
fn check(vendor: Vendor, name: &str, text: &str, py: Option<(&str, &str)>) -> Result<(), String> {
    install_hook();
    let input = || {
        let mut s = show(vendor, name, text);
        if let Some((n, t)) = py {
            s.push_str(&format!("\n  with {}", show(vendor, n, t)));
        }
        s
    };
    CAPTURING.with(|c| c.set(true));
    let run = panic::catch_unwind(AssertUnwindSafe(|| -> Result<(), String> {
        if vendor == Vendor::Canonical {
            return load_canonical(name, text);
        }
        let out: Vec<Imported> = match vendor {
            Vendor::Sentinel => rulecast::vendors::sentinel::import::parse(name, text),
            Vendor::Elastic => rulecast::vendors::elastic::import::parse(name, text),
            Vendor::Sigma => rulecast::vendors::sigma::import::parse(name, text),
            Vendor::Panther => rulecast::vendors::panther::import::parse(name, text, py.map(|p| p.1)),
            Vendor::Canonical => unreachable!("loaded above"),
        };
        if out.is_empty() {
            return Err("the importer returned no outcome".into());
        }
        for imp in &out {
            match &imp.outcome {
                Outcome::Refused(d) => {
                    let s = d.span.as_ref().ok_or_else(|| format!("refused without a span: {d}"))?;
                    // the vendor file, or (Panther) the Python module next to it
                    let body = if s.file == name {
                        text
                    } else if let Some((_, t)) = py.filter(|_| Path::new(&s.file).parent() == Path::new(name).parent()) {
                        t
                    } else {
                        return Err(format!("the span names an unknown file `{}`: {d}", s.file));
                    };
                    if !inside(body, s.line, s.col) {
                        return Err(format!("the span {}:{}:{} is outside the text: {d}", s.file, s.line, s.col));
                    }
                }
                Outcome::Full | Outcome::Partial(_) | Outcome::Opaque(_) => {
                    let file = format!("{}.yaml", imp.slug);
                    let rule = rulecast::rule_from_str(&file, &imp.slug, &imp.yaml)
                        .map_err(|d| format!("the imported rule does not load:\n{d}\n--- yaml\n{}", imp.yaml))?;
                    for t in rulecast::Target::iter() {
                        if rulecast::skip_reason(&rule, t).is_none() {
                            let _ = rulecast::compile(&rule, t, rulecast::Unsupported::Warn);
                        }
                    }
                }
            }
        }
        Ok(())
    }));
    CAPTURING.with(|c| c.set(false));
    match run {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("{e}\n  input: {}", input())),
        Err(_) => {
            let msg = PANIC.with(|p| p.borrow_mut().take()).unwrap_or_else(|| "a panic".into());
            Err(format!("the import panicked: {msg}\n  input: {}", input()))
        }
    }
}

/// Load a (mutated) canonical rule: refused with every span inside the text, or loaded and
/// compiled for every target.
fn load_canonical(name: &str, text: &str) -> Result<(), String> {
    let slug = Path::new(name).file_stem().and_then(|s| s.to_str()).unwrap_or("rule").to_string();
    match rulecast::rule_from_str(name, &slug, text) {
        Err(ds) => {
            if ds.0.is_empty() {
                return Err("refused without a diagnostic".into());
            }
            for d in &ds.0 {
                if let Some(s) = &d.span {
                    if s.file != name || !inside(text, s.line, s.col) {
                        return Err(format!("the span {}:{}:{} is outside the text: {d}", s.file, s.line, s.col));
                    }
                }
            }
        }
        Ok(rule) => {
            for t in rulecast::Target::iter() {
                if rulecast::skip_reason(&rule, t).is_none() {
                    let _ = rulecast::compile(&rule, t, rulecast::Unsupported::Warn);
                }
            }
        }
    }
    Ok(())
}

fn run_case(s: &Seeds, c: &Case) -> Result<(), String> {
    let seed = &s.files[c.file];
    let text = c.ops.iter().fold(seed.text.clone(), |t, op| apply(&t, op));
    // a folder path, so that the Panther module's name is checked against it
    let name = format!("fuzz/{}", seed.name);
    if s.vendor == Vendor::Panther {
        let py = &s.python[c.py];
        let py_text = c.py_ops.iter().fold(py.text.clone(), |t, op| apply(&t, op));
        check(s.vendor, &name, &text, Some(("fuzz/<module>.py", &py_text)))
    } else {
        check(s.vendor, &name, &text, None)
    }
}

fn env_num(key: &str, default: u64) -> u64 {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn fuzz(vendor: Vendor) {
    on_stack(CLI_STACK, move || fuzz_on_this_thread(vendor));
}

fn fuzz_on_this_thread(vendor: Vendor) {
    let s = seeds(vendor);
    // every seed as it is
    let mut failures = vec![];
    for (i, seed) in s.files.iter().enumerate() {
        let name = format!("fuzz/{}", seed.name);
        let py = s.python.get(i % s.python.len().max(1)).map(|p| ("fuzz/<module>.py", p.text.as_str()));
        if let Err(e) = check(vendor, &name, &seed.text, py) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{} unchanged seed(s) fail:\n{}", failures.len(), failures.join("\n\n"));
    // mutated
    let cases = env_num("RULECAST_FUZZ_CASES", CASES as u64) as u32;
    let config = Config { cases, failure_persistence: None, max_shrink_iters: 4096, ..Config::default() };
    let mut seed_bytes = [0u8; 32];
    let n = env_num("RULECAST_FUZZ_SEED", 0) + vendor as u64;
    seed_bytes[..8].copy_from_slice(&n.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let result = runner.run(&case(&s), |c| run_case(&s, &c).map_err(TestCaseError::fail));
    if let Err(e) = result {
        panic!("{vendor:?}: {e}");
    }
    let verb = if vendor == Vendor::Canonical { "loaded" } else { "imported" };
    println!("{vendor:?}: {} seed file(s) {verb} unchanged, {cases} mutated case(s)", s.files.len());
}

#[test]
fn sentinel_import_never_crashes() {
    fuzz(Vendor::Sentinel);
}

#[test]
fn elastic_import_never_crashes() {
    fuzz(Vendor::Elastic);
}

#[test]
fn sigma_import_never_crashes() {
    fuzz(Vendor::Sigma);
}

#[test]
fn panther_import_never_crashes() {
    fuzz(Vendor::Panther);
}

#[test]
fn canonical_load_never_crashes() {
    fuzz(Vendor::Canonical);
}

// ---------------------------------------------------------------------------------------------
// Stack depth

/// Run `f` on a thread with a stack of `size` bytes (fixed here so that the tests do not depend
/// on `RUST_MIN_STACK`); a stack overflow aborts the test binary, a panic fails the test.
fn on_stack(size: usize, f: impl FnOnce() + Send + 'static) {
    let joined = std::thread::Builder::new().stack_size(size).spawn(f).expect("thread").join();
    if let Err(p) = joined {
        panic::resume_unwind(p);
    }
}

/// The stack `rulecast` runs on (`src/main.rs`): the loader's derived deserializers need several
/// MiB for a rule at its nesting limit in debug builds.
const CLI_STACK: usize = 16 << 20;

/// The parsers alone must not need more than a test thread's default 2 MiB.
fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    on_stack(2 << 20, f);
}

fn refused_located(what: &str, out: &[Imported], text: &str, py: Option<&str>) -> rulecast::Diagnostic {
    let [imp] = out else { panic!("{what}: {} outcomes", out.len()) };
    let Outcome::Refused(d) = &imp.outcome else { panic!("{what}: not refused: {:?}\n{}", imp.outcome, imp.yaml) };
    let s = d.span.as_ref().unwrap_or_else(|| panic!("{what}: no span: {d}"));
    let body = if s.file.ends_with(".py") { py.expect("python") } else { text };
    assert!(inside(body, s.line, s.col), "{what}: span outside the text: {d}");
    d.clone()
}

const N: usize = 10_000;

fn sentinel_rule(query: &str) -> String {
    format!(
        "id: 11111111-2222-3333-4444-555555555555\nname: Deep\ndescription: Deep.\nseverity: Low\nstatus: Available\nkind: Scheduled\nquery: |\n  {query}\n"
    )
}

fn elastic_rule(query: &str) -> String {
    format!(
        "[metadata]\ncreation_date = \"2024/01/01\"\n\n[rule]\nauthor = [\"x\"]\ndescription = \"Deep.\"\nlanguage = \"kuery\"\nname = \"Deep\"\nrisk_score = 21\nrule_id = \"11111111-2222-3333-4444-555555555555\"\nseverity = \"low\"\ntype = \"query\"\nquery = '''\n{query}\n'''\n"
    )
}

fn sigma_rule(condition: &str) -> String {
    format!(
        "title: Deep\nid: 11111111-2222-3333-4444-555555555555\nlogsource:\n  product: aws\n  service: cloudtrail\ndetection:\n  sel:\n    eventName: StopLogging\n  condition: {condition}\nlevel: low\n"
    )
}

const PANTHER_YAML: &str = "AnalysisType: rule\nFilename: deep.py\nRuleID: Deep.Rule\nEnabled: true\nLogTypes: [AWS.CloudTrail]\nSeverity: Low\n";

fn panther_rule(body: &str) -> String {
    format!("def rule(event):\n    return {body}\n")
}

#[test]
fn ten_thousand_levels_of_nesting_are_errors_not_stack_overflows() {
    on_small_stack(|| {
        let (open, close) = ("(".repeat(N), ")".repeat(N));
        // KQL `where`
        let text = sentinel_rule(&format!("AWSCloudTrail | where {open}EventName == 'StopLogging'{close}"));
        let d = refused_located("kql parentheses", &rulecast::vendors::sentinel::import::parse("deep.yaml", &text), &text, None);
        // KQL all the same, nested deeper than rulecast reads: not importable (E502), not a
        // syntax error (tests/oracles.rs checks E501 against Microsoft's parser)
        assert_eq!(d.code, rulecast::Code::E502, "{d}");
        assert!(rulecast::kusto::parse(&format!("AWSCloudTrail | where {open}x{close}")).is_err());
        let text = sentinel_rule(&format!("AWSCloudTrail | where {}EventName == 'x'", "not(".repeat(N)));
        refused_located("kql not(", &rulecast::vendors::sentinel::import::parse("deep.yaml", &text), &text, None);
        // kuery
        let text = elastic_rule(&format!("event.dataset: aws.cloudtrail and {open}event.action: StopLogging{close}"));
        let d = refused_located("kuery parentheses", &rulecast::vendors::elastic::import::parse("deep.toml", &text), &text, None);
        assert_eq!(d.code, rulecast::Code::E501, "{d}");
        assert!(rulecast::kuery::parse(&format!("{open}a: b{close}")).is_err());
        // Python `rule()` body
        let py = panther_rule(&format!("{open}event.get(\"eventName\") == \"StopLogging\"{close}"));
        let d = refused_located("python parentheses", &rulecast::vendors::panther::import::parse("deep.yml", PANTHER_YAML, Some(&py)), PANTHER_YAML, Some(&py));
        assert_eq!(d.code, rulecast::Code::E501, "{d}");
        // Sigma condition
        let text = sigma_rule(&format!("{open}sel{close}"));
        refused_located("sigma parentheses", &rulecast::vendors::sigma::import::parse("deep.yml", &text), &text, None);
        let text = sigma_rule(&format!("{}sel", "not ".repeat(N)));
        refused_located("sigma not", &rulecast::vendors::sigma::import::parse("deep.yml", &text), &text, None);
    });
}

/// Deep structures without brackets (long `and` chains, `not` runs, member chains) and deeply
/// nested documents: each is imported or refused with a located error, and nothing overflows.
/// Chains the parsers keep flat (kuery's and Sigma's `and` / `or`, value lists) are 2,000 long
/// (they import, and loading 10,000 predicates back is slow in a debug build); the others 10,000.
#[test]
fn long_chains_and_deep_documents_do_not_overflow() {
    on_stack(CLI_STACK, || {
        let mut cases: Vec<(Vendor, String, Option<String>)> = vec![];
        let chain = |sep: &str, term: &str| vec![term; N].join(sep);
        let flat = |sep: &str, term: &str| vec![term; 2000].join(sep);
        for q in [
            format!("AWSCloudTrail | where {}", chain(" and ", "EventName == 'x'")),
            format!("AWSCloudTrail | where {}", chain(" or ", "EventName == 'x'")),
            format!("AWSCloudTrail | where EventName == 'x'{}", " + 1".repeat(N)),
            format!("AWSCloudTrail | where {}", chain("", "-").to_string() + "1 == 1"),
            format!("AWSCloudTrail | where parse_json(RequestParameters){} == 1", ".a".repeat(N)),
            format!("AWSCloudTrail{}", " | where EventName == 'x'".repeat(N)),
        ] {
            cases.push((Vendor::Sentinel, sentinel_rule(&q), None));
        }
        for q in [
            flat(" and ", "event.action: StopLogging"),
            flat(" or ", "event.action: StopLogging"),
            format!("{}event.action: x", "not ".repeat(N)),
            format!("event.action: ({})", chain(" or ", "x")),
        ] {
            cases.push((Vendor::Elastic, elastic_rule(&q), None));
        }
        for c in [flat(" and ", "sel"), flat(" or ", "sel"), format!("{}sel", "not (".repeat(N)), format!("{}sel", "not ".repeat(N))] {
            cases.push((Vendor::Sigma, sigma_rule(&c), None));
        }
        for b in [
            chain(" and ", "event.get(\"eventName\") == \"x\""),
            chain(" + ", "1") + " > 0",
            format!("{}True", "not ".repeat(N)),
            format!("{}1 > 0", "-".repeat(N)),
            format!("event{} == 1", ".get(\"a\")".repeat(N)),
            format!("{}True{}", "[".repeat(N), "]".repeat(N)),
        ] {
            cases.push((Vendor::Panther, PANTHER_YAML.to_string(), Some(panther_rule(&b))));
        }
        let deep_yaml = format!("{}{}", "[".repeat(N), "]".repeat(N));
        let deep_block: String = (0..2000).map(|i| format!("{}- \n", " ".repeat(i * 2))).collect();
        for doc in [format!("id: x\nquery: {deep_yaml}\n"), format!("id: x\nquery:\n{deep_block}"), deep_yaml.clone()] {
            cases.push((Vendor::Sentinel, doc.clone(), None));
            cases.push((Vendor::Sigma, doc.clone(), None));
            cases.push((Vendor::Panther, doc, Some(panther_rule("True"))));
        }
        for doc in [format!("[rule]\nquery = {deep_yaml}\n"), format!("[rule]\nx = {}1{}\n", "{a = ".repeat(N), "}".repeat(N))] {
            cases.push((Vendor::Elastic, doc, None));
        }
        let mut failures = vec![];
        for (vendor, text, py) in &cases {
            let name = match vendor {
                Vendor::Elastic => "deep/deep.toml",
                _ => "deep/deep.yml",
            };
            if let Err(e) = check(*vendor, name, text, py.as_deref().map(|p| ("deep/deep.py", p))) {
                failures.push(e.chars().take(3000).collect::<String>());
            }
        }
        assert!(failures.is_empty(), "{} failure(s):\n{}", failures.len(), failures.join("\n\n"));
    });
}

// ---------------------------------------------------------------------------------------------
// Regression fixtures

/// Malformed vendor files the fuzzing found that the importers still import, with a part that
/// says what was left out (`tests/fixtures/vendor/<vendor>/invalid/imported/`): each imports,
/// loads back, and names the part.
#[test]
fn malformed_fixtures_that_still_import_say_what_was_left_out() {
    let cases: &[(&str, &str, import::Vendor, &str)] = &[
        ("sentinel", "non_guid_id.yaml", import::Vendor::Sentinel, "is not a GUID (Sentinel's id is derived from it when built)"),
        ("sentinel", "override_literal_brace.yaml", import::Vendor::Sentinel, "alertDetailsOverride.alertDisplayNameFormat"),
        ("panther", "unsafe_filename.yml", import::Vendor::Panther, "Filename `rule+1.py` is not a file name rulecast writes"),
    ];
    let mut seen = 0;
    for (dir, name, vendor, part) in cases {
        let path = common::root().join("tests/fixtures/vendor").join(dir).join("invalid/imported").join(name);
        let out = import::import_file(*vendor, &path);
        let [imp] = out.as_slice() else { panic!("{name}: {} outcomes", out.len()) };
        let (Outcome::Partial(parts) | Outcome::Opaque(parts)) = &imp.outcome else { panic!("{name}: {:?}", imp.outcome) };
        assert!(parts.iter().any(|p| p.reason.contains(part)), "{name}: {parts:?}");
        rulecast::rule_from_str(&format!("{}.yaml", imp.slug), &imp.slug, &imp.yaml).unwrap_or_else(|d| panic!("{name}: {d}\n{}", imp.yaml));
        seen += 1;
    }
    // every file there is listed
    let mut listed = 0;
    for dir in ["sentinel", "elastic", "sigma", "panther"] {
        let mut files = vec![];
        walk(&common::root().join("tests/fixtures/vendor").join(dir).join("invalid/imported"), &["yml", "yaml", "toml"], &mut files);
        listed += files.len();
    }
    assert_eq!(seen, listed);
}

/// The Panther regressions are located in the Python module, at the construct past the limit.
#[test]
fn panther_regressions_are_located_in_the_python() {
    let cases: &[(&str, rulecast::Code, (usize, usize), &str)] = &[
        ("deep_not.yml", rulecast::Code::E502, (2, 404), "nests more than 100"),
        ("deep_parentheses.yml", rulecast::Code::E501, (2, 212), "too many nested parentheses"),
        ("deep_indentation.yml", rulecast::Code::E501, (101, 1), "too many levels of indentation"),
        ("long_chain.yml", rulecast::Code::E502, (2, 18012), "chains more than 4000"),
    ];
    for (name, code, (line, col), msg) in cases {
        let path = common::root().join("tests/fixtures/vendor/panther/invalid").join(name);
        let out = rulecast::vendors::panther::import::parse_file(&path);
        let Outcome::Refused(d) = &out[0].outcome else { panic!("{name}: {:?}", out[0].outcome) };
        let s = d.span.as_ref().expect("span");
        assert_eq!((d.code, s.line, s.col), (*code, *line, *col), "{name}: {d}");
        assert!(s.file.ends_with(&name.replace(".yml", ".py")) && d.message.contains(msg), "{name}: {d}");
    }
}
