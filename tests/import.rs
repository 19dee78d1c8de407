//! Importers: vendor fixtures → canonical YAML that loads back; Elastic round trip.

use std::path::{Path, PathBuf};

use rulecast::import::{self, Imported, Outcome};
use rulecast::{Target, Unsupported, kuery};

fn fixtures(vendor: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/vendor")
        .join(vendor);
    files_in(&dir, &["yml", "yaml", "toml"])
}

fn files_in(dir: &Path, exts: &[&str]) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.retain(|p| {
        p.extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| exts.contains(&e))
    });
    v.sort();
    v
}

fn import_file(vendor: &str, path: &Path) -> Vec<Imported> {
    let text = std::fs::read_to_string(path).unwrap();
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    match vendor {
        "sigma" => import::sigma::parse(&name, &text),
        _ => import::elastic::parse(&name, &text),
    }
}

/// Load an imported rule back; panics with the YAML and the diagnostics if it does not load.
fn load(imp: &Imported) -> rulecast::Rule {
    match rulecast::rule_from_str(&format!("{}.yaml", imp.slug), &imp.slug, &imp.yaml) {
        Ok(r) => r,
        Err(d) => panic!("{} does not load:\n{}\n{:#?}", imp.slug, imp.yaml, d),
    }
}

fn query_of_toml(text: &str) -> Option<String> {
    let t: toml::Table = toml::from_str(text).ok()?;
    t.get("rule")?.get("query")?.as_str().map(str::to_string)
}

/// Normalise a kuery AST for comparison: a quoted value becomes the same unquoted text (a
/// quoted value is never a wildcard, and unquoted text pieces are literal), `f:(a or b)` becomes
/// `f:a or f:b` (and `and` / `not` likewise), and nested `and` / `or` are flattened.
fn normalise(q: &kuery::Query) -> kuery::Query {
    use kuery::{Query, QueryKind as K, ValueKind, ValueListKind as V};
    fn flat(kids: Vec<Query>, is_or: bool) -> Vec<Query> {
        let mut out = vec![];
        for k in kids {
            match k.kind {
                K::Or(ks) if is_or => out.extend(ks),
                K::And(ks) if !is_or => out.extend(ks),
                other => out.push(Query {
                    kind: other,
                    span: k.span,
                }),
            }
        }
        out
    }
    fn expand(field: &Option<kuery::Field>, vl: &kuery::ValueList) -> Query {
        let span = kuery::Span::default();
        let kind = match &vl.kind {
            V::Or(ks) => K::Or(flat(ks.iter().map(|k| expand(field, k)).collect(), true)),
            V::And(ks) => K::And(flat(ks.iter().map(|k| expand(field, k)).collect(), false)),
            V::Not(k) => K::Not(Box::new(expand(field, k))),
            V::One(v) => {
                let mut v = v.clone();
                v.span = span;
                if let ValueKind::Quoted(s) = &v.kind {
                    v.kind = ValueKind::Unquoted(vec![kuery::Piece::Text(s.clone())]);
                }
                let field = field.clone().map(|mut f| {
                    f.span = span;
                    f.quoted = false;
                    f
                });
                K::Is {
                    field,
                    values: kuery::ValueList {
                        kind: V::One(v),
                        span,
                    },
                }
            }
        };
        Query { kind, span }
    }
    let span = kuery::Span::default();
    let kind = match &q.kind {
        K::Or(ks) => K::Or(flat(ks.iter().map(normalise).collect(), true)),
        K::And(ks) => K::And(flat(ks.iter().map(normalise).collect(), false)),
        K::Not(k) => K::Not(Box::new(normalise(k))),
        K::Is { field, values } => return expand(field, values),
        other => other.clone(),
    };
    Query { kind, span }
}

/// Does the re-rendered Elastic rule have the same query? (strictly: equal `to_string` of the
/// parsed queries; normalised: equal after [`normalise`]).
fn round_trip(original: &str, rule: &rulecast::Rule) -> Result<(bool, bool), String> {
    let out = rulecast::compile(rule, Target::Elastic, Unsupported::Warn)
        .map_err(|d| format!("{d:?}"))?;
    let (_, rendered) = out
        .files
        .iter()
        .find(|(p, _)| p.ends_with(".toml"))
        .ok_or("no toml file")?;
    let a = query_of_toml(original).ok_or("no query in the original")?;
    let b = query_of_toml(rendered).ok_or("no query in the rendering")?;
    let a = kuery::parse(&a).map_err(|e| e.to_string())?;
    let b = kuery::parse(&b).map_err(|e| e.to_string())?;
    let strict = kuery::to_string(&a) == kuery::to_string(&b);
    let (na, nb) = (
        kuery::to_string(&normalise(&a)),
        kuery::to_string(&normalise(&b)),
    );
    if na != nb && std::env::var("RT_DEBUG").is_ok() {
        println!("ORIG {na}\nREND {nb}\n");
    }
    Ok((strict, na == nb))
}

#[test]
fn sigma_fixtures_import_fully_and_load() {
    let files = fixtures("sigma");
    assert!(files.len() >= 3);
    for f in &files {
        for imp in import_file("sigma", f) {
            assert_eq!(imp.outcome, Outcome::Full, "{}\n{}", f.display(), imp.yaml);
            load(&imp);
        }
    }
}

#[test]
fn elastic_fixtures_import_load_and_round_trip() {
    let files = fixtures("elastic");
    assert!(files.len() >= 3);
    let mut equal = 0;
    for f in &files {
        let original = std::fs::read_to_string(f).unwrap();
        for imp in import_file("elastic", f) {
            assert!(
                !imp.outcome.drops_detection(),
                "{}: {:?}",
                f.display(),
                imp.outcome
            );
            assert!(
                !matches!(imp.outcome, Outcome::Refused(_)),
                "{}: {:?}",
                f.display(),
                imp.outcome
            );
            let rule = load(&imp);
            match round_trip(&original, &rule) {
                Ok((_, true)) => equal += 1,
                Ok((_, false)) => {}
                Err(e) => panic!("{}: {e}", f.display()),
            }
        }
    }
    println!(
        "elastic fixtures: {equal}/{} re-rendered queries equal",
        files.len()
    );
    assert_eq!(equal, files.len());
}

#[test]
fn malformed_input_gives_located_errors() {
    let cases: Vec<(&str, Vec<Imported>)> = vec![
        (
            "sigma yaml",
            import::sigma::parse("bad.yml", "title: x\ndetection:\n  sel: [a\n"),
        ),
        (
            "sigma condition",
            import::sigma::parse(
                "bad.yml",
                "title: x\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel:\n    eventName: x\n  condition: sel and (\n",
            ),
        ),
        (
            "elastic toml",
            import::elastic::parse("bad.toml", "[rule]\nname = \"x\n"),
        ),
        (
            "elastic kuery",
            import::elastic::parse(
                "bad.toml",
                "[rule]\ntype = \"query\"\nlanguage = \"kuery\"\nname = \"x\"\nquery = '''\nevent.action:(a or b\n'''\n",
            ),
        ),
        ("not a table", import::elastic::parse("bad.toml", "x = 1\n")),
        (
            "not a mapping",
            import::sigma::parse("bad.yml", "- 1\n- 2\n"),
        ),
        ("empty", import::sigma::parse("bad.yml", "")),
    ];
    for (what, out) in cases {
        assert_eq!(out.len(), 1, "{what}");
        let Outcome::Refused(d) = &out[0].outcome else {
            panic!("{what}: {:?}", out[0].outcome)
        };
        let s = d
            .span
            .as_ref()
            .unwrap_or_else(|| panic!("{what}: no span: {d:?}"));
        assert!(s.line >= 1 && s.col >= 1, "{what}: {d:?}");
        if what == "elastic kuery" {
            // the end of the query, where the `)` is missing
            assert_eq!((s.line, s.col), (7, 1), "{d:?}");
        }
    }
}

#[test]
fn corpus_figures() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    if !root.is_dir() {
        return;
    }
    for vendor in ["sigma", "elastic"] {
        let files = files_in(&root.join(vendor), &["yml", "yaml", "toml"]);
        let (mut full, mut partial, mut partial_det, mut refused, mut load_err) = (0, 0, 0, 0, 0);
        let (mut kuery_rules, mut strict, mut equal) = (0, 0, 0);
        let mut reasons: std::collections::BTreeMap<String, usize> = Default::default();
        for f in &files {
            let original = std::fs::read_to_string(f).unwrap();
            for imp in import_file(vendor, f) {
                if std::env::var("RT_DEBUG").is_ok() {
                    let kind = match &imp.outcome {
                        Outcome::Full => "full".to_string(),
                        Outcome::Partial(p) => format!("partial {p:?}"),
                        Outcome::Refused(d) => format!("refused {}", d.message),
                    };
                    println!("FILE {} {kind}", f.display());
                }
                match &imp.outcome {
                    Outcome::Full => full += 1,
                    Outcome::Partial(p) => {
                        partial += 1;
                        if imp.outcome.drops_detection() {
                            partial_det += 1;
                        }
                        for r in p {
                            *reasons.entry(r.clone()).or_default() += 1;
                        }
                    }
                    Outcome::Refused(d) => {
                        refused += 1;
                        *reasons
                            .entry(format!("refused: {}", d.message))
                            .or_default() += 1;
                        continue;
                    }
                }
                let rule = match rulecast::rule_from_str(
                    &format!("{}.yaml", imp.slug),
                    &imp.slug,
                    &imp.yaml,
                ) {
                    Ok(r) => r,
                    Err(d) => {
                        load_err += 1;
                        println!("LOAD ERROR {}: {:?}\n{}", f.display(), d, imp.yaml);
                        continue;
                    }
                };
                if vendor == "elastic" {
                    kuery_rules += 1;
                    if let Ok((s, n)) = round_trip(&original, &rule) {
                        strict += usize::from(s);
                        equal += usize::from(n);
                    }
                }
            }
        }
        println!(
            "{vendor}: {} files read, {full} imported fully, {partial} partially ({partial_det} with part of the detection left out), {refused} refused, {load_err} do not load",
            files.len()
        );
        if vendor == "elastic" {
            println!(
                "elastic: of {kuery_rules} imported kuery rules, {equal} re-render with an equal query after normalisation ({strict} with equal `to_string`)"
            );
        }
        for (r, n) in &reasons {
            println!("  {n:3} {r}");
        }
        assert_eq!(load_err, 0, "every imported rule must load");
    }
}

#[test]
#[ignore]
fn show() {
    for v in ["sigma", "elastic"] {
        for f in fixtures(v) {
            for imp in import_file(v, &f) {
                println!("# {}\n{}", f.display(), imp.yaml);
            }
        }
    }
}
