//! The vendor registry (`src/vendors/mod.rs`) is the only place that lists vendors.
//!
//! (a) What a vendor must provide: a folder `src/vendors/<name>/` (with `mod.rs`), an importer
//!     that names the file extensions it reads, and — for a target — a backend that says which
//!     target it is, a title, a template folder `templates/<name>/` holding exactly the templates
//!     it embeds, a snapshot folder `snapshots/<name>/`, a `targets.<name>` settings key, and an
//!     importer of the same name (so `sync` can read back what the target writes).
//!
//! (b) Where a vendor may be named. The rule: in the Rust code under `src/` — comments removed
//!     (`//`, `///`, `//!`, `/* */`), string literals kept (a `"sentinel"` in a `match` is code)
//!     — a vendor name (`sentinel`, `elastic`, `panther`, `sigma`, any case, also inside an
//!     identifier such as `SentinelLock` or a path such as `vendors/elastic/x.tsv`) may appear
//!     only in `src/vendors/mod.rs` (the registry) and in `src/vendors/<that vendor>/`. Data
//!     files (TSV, templates) are not Rust code and are not scanned. [`ALLOWED`] lists the
//!     exceptions, each with why.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rulecast::vendors::{Target, Vendor, backend, importer};
use strum::IntoEnumIterator;

mod common;

/// Lines that may name a vendor they are not in the folder of, as `(file, text the line holds)`.
/// Each is a sentence a user reads (output rulecast writes, which must stay as it is), not code
/// that decides anything by vendor.
const ALLOWED: &[(&str, &str)] = &[
    // the canonical definition of a virtual field says which pipeline's value it mirrors
    // ("as Elastic's AWS integration derives event.outcome")
    ("src/fields/mod.rs", "        meaning: \""),
    // E402's advice names the targets that do have regular expressions
    ("src/vendors/elastic/target/kuery.rs", "build it for Sentinel and Panther"),
    // a comment in the generated Python explains which pipeline the helper mirrors
    ("src/vendors/panther/target/python.rs", "as Elastic's AWS integration derives event.outcome"),
];

fn names() -> Vec<String> {
    Vendor::iter().map(|v| v.to_string()).collect()
}

#[test]
fn every_vendor_provides_what_the_registry_needs() {
    let root = common::root();
    // the registry's vendors are exactly the vendor folders
    let folders: BTreeSet<String> = std::fs::read_dir(root.join("src/vendors"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(folders, names().into_iter().collect::<BTreeSet<_>>(), "one folder under src/vendors per registry entry");
    for v in Vendor::iter() {
        assert!(root.join(format!("src/vendors/{v}/mod.rs")).is_file(), "{v}: src/vendors/{v}/mod.rs");
        let ext = importer(v).extensions();
        assert!(!ext.is_empty() && ext.iter().all(|e| !e.is_empty() && !e.starts_with('.')), "{v}: file extensions without a dot");
    }
    let mut template_dirs: BTreeSet<String> = BTreeSet::from(["pack".to_string()]);
    for t in Target::iter() {
        let b = backend(t);
        assert_eq!(b.target(), t, "{t}: backend({t}) is the {t} backend");
        assert!(!b.title().is_empty(), "{t}: a title");
        assert!(Vendor::iter().any(|v| v.to_string() == t.to_string()), "{t}: an importer of the same name (sync reads back what the target writes)");
        // templates: every embedded one is the file templates/<t>/<file>, and every file there is embedded
        assert!(!b.templates().is_empty(), "{t}: templates");
        let embedded: BTreeSet<PathBuf> = b.templates().iter().map(|(name, _)| PathBuf::from(name)).collect();
        for (name, text) in b.templates() {
            assert!(name.starts_with(&format!("{t}/")), "{t}: template `{name}` is under `{t}/`");
            let on_disk = std::fs::read_to_string(root.join("templates").join(name)).unwrap_or_else(|e| panic!("{t}: templates/{name}: {e}"));
            assert_eq!(&on_disk, text, "{t}: templates/{name} is what the binary embeds");
        }
        let in_folder: BTreeSet<PathBuf> = std::fs::read_dir(root.join("templates").join(t.to_string()))
            .unwrap_or_else(|e| panic!("{t}: templates/{t}/: {e}"))
            .map(|e| PathBuf::from(t.to_string()).join(e.unwrap().file_name()))
            .collect();
        assert_eq!(in_folder, embedded, "{t}: templates/{t}/ holds exactly the templates the backend embeds");
        template_dirs.insert(t.to_string());
        assert!(root.join("snapshots").join(t.to_string()).is_dir(), "{t}: snapshots/{t}/");
        // the settings key: `targets.<t>.skip` reaches this target and no other
        let text = std::fs::read_to_string(root.join("canonical-rules/aws_root_console_login_without_mfa.yaml")).unwrap();
        assert!(!text.contains("\ntargets:"), "the sample rule has no targets block");
        let text = format!("{text}\ntargets:\n  {t}:\n    skip: registry test\n");
        let rule = rulecast::rule_from_str("x.yaml", "x", &text).unwrap_or_else(|d| panic!("{t}: targets.{t} loads: {d:?}"));
        for u in Target::iter() {
            assert_eq!(rulecast::skip_reason(&rule, u).as_deref(), (u == t).then_some("registry test"), "{t}: targets.{t}.skip applies to {u}");
        }
    }
    let dirs: BTreeSet<String> = std::fs::read_dir(root.join("templates")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(dirs, template_dirs, "templates/ holds one folder per target (and `pack`)");
}

/// The code of a Rust file with its comments blanked (line breaks kept, so lines still count).
/// String and char literals are kept; `//` inside a string is not a comment.
fn code_of(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    let blank = |ch: char| if ch == '\n' { '\n' } else { ' ' };
    while i < c.len() {
        match c[i] {
            '/' if c.get(i + 1) == Some(&'/') => {
                while i < c.len() && c[i] != '\n' {
                    out.push(' ');
                    i += 1;
                }
            }
            '/' if c.get(i + 1) == Some(&'*') => {
                let mut depth = 0;
                while i < c.len() {
                    if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                        depth += 1;
                        out.push_str("  ");
                        i += 2;
                    } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                        depth -= 1;
                        out.push_str("  ");
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        out.push(blank(c[i]));
                        i += 1;
                    }
                }
            }
            'r' if matches!(c.get(i + 1), Some('"' | '#')) && raw_start(&c, i) => {
                // raw string r"..." / r#"..."# (and br"...")
                let mut j = i + 1;
                let mut hashes = 0;
                while c.get(j) == Some(&'#') {
                    hashes += 1;
                    j += 1;
                }
                if c.get(j) != Some(&'"') {
                    out.push(c[i]);
                    i += 1;
                    continue;
                }
                let close: String = std::iter::once('"').chain(std::iter::repeat_n('#', hashes)).collect();
                let rest: String = c[j + 1..].iter().collect();
                let end = rest.find(&close).map_or(c.len(), |e| j + 1 + rest[..e].chars().count() + close.chars().count());
                out.extend(&c[i..end]);
                i = end;
            }
            '"' => {
                out.push('"');
                i += 1;
                while i < c.len() && c[i] != '"' {
                    if c[i] == '\\' && i + 1 < c.len() {
                        out.push(c[i]);
                        i += 1;
                    }
                    out.push(c[i]);
                    i += 1;
                }
                if i < c.len() {
                    out.push('"');
                    i += 1;
                }
            }
            '\'' => {
                // a char literal ('x', '\n', '\'', '"') or a lifetime ('a)
                let end = if c.get(i + 1) == Some(&'\\') {
                    (i + 2..c.len()).find(|&k| c[k] == '\'' && k > i + 2)
                } else if c.get(i + 2) == Some(&'\'') {
                    Some(i + 2)
                } else {
                    None
                };
                match end {
                    Some(e) => {
                        out.extend(&c[i..=e]);
                        i = e + 1;
                    }
                    None => {
                        out.push('\'');
                        i += 1;
                    }
                }
            }
            ch => {
                out.push(ch);
                i += 1;
            }
        }
    }
    out
}

/// An `r` at `i` starts a raw string: it starts a token (or follows the `b` of a byte string).
fn raw_start(c: &[char], i: usize) -> bool {
    let ident = |k: usize| c[k].is_alphanumeric() || c[k] == '_';
    i == 0 || !ident(i - 1) || (c[i - 1] == 'b' && (i == 1 || !ident(i - 2)))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every place in `src/` that names a vendor it may not name: `file:line: vendor: code line`.
fn misplaced_names(root: &Path) -> Vec<String> {
    let mut files = vec![];
    rust_files(&root.join("src"), &mut files);
    files.sort();
    let names = names();
    let mut found = vec![];
    for path in files {
        let rel = path.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
        if rel == "src/vendors/mod.rs" {
            continue;
        }
        let own: Option<&str> = rel.strip_prefix("src/vendors/").and_then(|r| r.split('/').next());
        let code = code_of(&std::fs::read_to_string(&path).unwrap());
        for (n, line) in code.lines().enumerate() {
            let lower = line.to_lowercase();
            for name in &names {
                if Some(name.as_str()) == own || !lower.contains(name.as_str()) {
                    continue;
                }
                if ALLOWED.iter().any(|(f, text)| *f == rel && line.contains(text)) {
                    continue;
                }
                found.push(format!("{rel}:{}: {name}: {}", n + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn vendors_are_named_only_in_their_folder_and_the_registry() {
    let found = misplaced_names(&common::root());
    let files: BTreeSet<&str> = found.iter().filter_map(|f| f.split(':').next()).collect();
    assert!(
        found.is_empty(),
        "{} places in {} files name a vendor outside src/vendors/<vendor>/ and src/vendors/mod.rs; move the code into the vendor's folder behind a registry trait:\n{}",
        found.len(),
        files.len(),
        found.join("\n")
    );
}

#[test]
fn comments_are_not_code_and_strings_are() {
    let code = code_of("let a = \"elastic\"; // sentinel\n/* panther /* nested */ sigma */ let b = 'x'; let c = r#\"x // y\"#; let l: &'static str = \"//\";\n");
    assert!(code.contains("\"elastic\""));
    assert!(!code.contains("sentinel") && !code.contains("panther") && !code.contains("sigma"));
    assert!(code.contains("r#\"x // y\"#") && code.contains("'x'") && code.contains("\"//\""));
    assert_eq!(code.lines().count(), 2);
}
