//! Generated queries are syntax trees: for every bundled rule and every imported vendor fixture
//! (imported, loaded back, rendered), the Sentinel and Elastic targets build their query as a
//! tree, the file carries exactly that tree's printing, and rulecast's own parser reads the
//! printed text back to the same tree (spans and layout styles excluded).

mod common;

use common::*;
use rulecast::targets::Cx;
use rulecast::vendors::{Vendor, elastic, importer, sentinel};
use rulecast::{Rule, Target, Unsupported, kuery, kusto};
use strum::IntoEnumIterator;

/// Every importable vendor fixture, imported and loaded back: (name, rule).
fn imported_rules() -> Vec<(String, Rule)> {
    let mut out = vec![];
    for v in Vendor::iter() {
        let imp = importer(v);
        let dir = root().join("tests/fixtures/vendor").join(v.to_string());
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().and_then(|e| e.to_str()).is_some_and(|e| imp.extensions().contains(&e)))
            .collect();
        files.sort();
        for path in files {
            let text = std::fs::read_to_string(&path).expect("fixture");
            let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            for i in imp.import(&name, &text, &path, rulecast::load::files::ReadPolicy::default()) {
                // a refused import carries no rule; every other one loads back
                if matches!(i.outcome, rulecast::import::Outcome::Refused(_)) {
                    continue;
                }
                let rule = rulecast::rule_from_str(&format!("{}.yaml", i.slug), &i.slug, &i.yaml)
                    .unwrap_or_else(|d| panic!("{v}/{name}: the imported rule does not load:\n{d}\n{}", i.yaml));
                out.push((format!("{v}/{name}"), rule));
            }
        }
    }
    out
}

/// The query a compiled file carries (`query` of the Sentinel YAML or the Elastic TOML).
fn file_query(rule: &Rule, target: Target) -> Option<String> {
    let out = rulecast::compile(rule, target, Unsupported::Warn).ok()?;
    let (path, text) = out.files.first()?;
    let doc = if path.ends_with(".toml") { toml_value(text) } else { yaml_value(text) };
    let q = doc.get("query").or_else(|| doc.get("rule").and_then(|r| r.get("query")))?;
    Some(q.as_str()?.to_string())
}

/// Sentinel: the tree, its printing in the file, the text parsed back; also the filter part
/// `rulecast test` runs. Returns false where the target refuses the rule.
fn sentinel_round_trip(name: &str, rule: &Rule) -> bool {
    let Some(in_file) = file_query(rule, Target::Sentinel) else { return false };
    let s = &rule.doc.targets.sentinel;
    // an imported rule keeps the vendor's own text (issue 11 §1) exactly while the rule still
    // generates the query it generated when imported; the generated tree is checked below
    let verbatim = matches!((&s.query, &s.query_of), (Some(_), Some(of)) if *of == sentinel::target::query_fingerprint(rule));
    if verbatim {
        assert_eq!(Some(in_file.trim_end()), s.query.as_deref().map(str::trim_end), "{name}: the file's query is not the vendor's text");
    }
    for whole in [true, false] {
        let mut cx = Cx::new(Target::Sentinel, Unsupported::Warn);
        // (the ECS categorization fields are written as event names first, as `compile` does)
        let lowered = rulecast::targets::lowered_for(rule, Target::Sentinel, &mut cx);
        let tree = sentinel::target::kql::build(lowered.as_ref().unwrap_or(rule), &mut cx, whole);
        assert!(!cx.diags.has_errors(), "{name}: {}", cx.diags);
        let text = kusto::to_string(&tree);
        if whole && !verbatim {
            assert_eq!(text.trim_end(), in_file.trim_end(), "{name}: the file's query is not its tree's printing");
        }
        let back = kusto::parse(&text).unwrap_or_else(|e| panic!("{name}: the printed query does not parse: {e}\n{text}"));
        assert!(back == tree, "{name}: the printed query parses to another tree\n{text}\n{back:#?}\n{tree:#?}");
        // and printing the parsed tree is stable
        assert_eq!(kusto::parse(&kusto::to_string(&back)).ok().as_ref(), Some(&back), "{name}");
    }
    true
}

/// Elastic: the tree, its (wrapped) printing in the file, the text parsed back.
fn elastic_round_trip(name: &str, rule: &Rule) -> bool {
    let Some(in_file) = file_query(rule, Target::Elastic) else { return false };
    let mut cx = Cx::new(Target::Elastic, Unsupported::Warn);
    let tree = elastic::target::kuery::build(rule, &mut cx);
    let text = kuery::to_string_wrapped(&tree, elastic::target::kuery::WIDTH);
    let e = &rule.doc.targets.elastic;
    if let (Some(vendor), Some(of)) = (&e.query, &e.query_of) {
        // an imported rule keeps the vendor's own text (issue 11 §1) exactly while the rule still
        // generates the query it generated when imported; the generated tree is checked below
        if *of == elastic::target::query_fingerprint(rule) {
            assert_eq!(in_file.trim_end(), vendor.trim_end(), "{name}: the file's query is not the vendor's text");
            let lang = e.language.as_ref().map(|l| l.value.as_str());
            if lang == Some("eql") {
                // a kept EQL query: rulecast's EQL reader reads it
                let cat = e.event_category_override.as_ref().map_or("event.category", |c| c.value.as_str());
                assert!(!matches!(elastic::import::query::eql(&in_file, cat), Err(elastic::import::query::Refusal::Syntax(_))), "{name}: the vendor's EQL does not parse");
            } else if lang == Some("esql") {
                // a kept ES|QL query: rulecast's ES|QL reader reads it
                assert!(!matches!(elastic::import::query::esql(&in_file), Err(elastic::import::query::Refusal::Syntax(_))), "{name}: the vendor's ES|QL does not parse");
            } else {
                assert!(kuery::parse(&in_file).is_ok(), "{name}: the vendor's text does not parse");
            }
            if lang.is_some_and(|l| l != "kuery") && cx.diags.has_errors() {
                // kuery cannot say this rule (an ES|QL-only part, a regex): the file holds the
                // vendor's query, and there is no kuery tree to check
                return true;
            }
        } else {
            assert_eq!(text.trim_end(), in_file.trim_end(), "{name}: the file's query is not its tree's printing");
        }
    } else if let Some((eql, _)) = elastic::target::eql_fallback(rule, &cx) {
        // kuery cannot say the rule, EQL can: the file holds the EQL rendering, which
        // rulecast's EQL reader reads back (Elastic's own parser checks it in tests/eql.rs)
        assert_eq!(in_file.trim_end(), eql.trim_end(), "{name}: the file's query is not its EQL rendering");
        assert!(elastic::eql_eval::parse(&in_file).is_ok(), "{name}: the EQL does not parse back");
        return true;
    } else {
        assert_eq!(text.trim_end(), in_file.trim_end(), "{name}: the file's query is not its tree's printing");
    }
    assert!(!cx.diags.has_errors(), "{name}: {}", cx.diags);
    assert_eq!(text.replace('\n', " "), kuery::to_string(&tree), "{name}: wrapping changed more than line breaks");
    for line in text.lines() {
        let first = line.split(' ').next().unwrap_or("");
        assert!(!matches!(first, "and" | "or"), "{name}: a line starts with `{first}`: {line}");
    }
    let back = kuery::parse(&text).unwrap_or_else(|e| panic!("{name}: the printed query does not parse: {e}\n{text}"));
    assert!(back.without_spans() == tree.without_spans(), "{name}: the printed query parses to another tree\n{text}\n{back:#?}\n{tree:#?}");
    true
}

#[test]
fn printed_queries_parse_back_to_their_trees() {
    let bundled: Vec<(String, Rule)> = bundled_rules().into_iter().map(|r| (r.file.clone(), r)).collect();
    assert!(bundled.len() >= 20, "{}", bundled.len());
    let imported = imported_rules();
    assert!(imported.len() >= 80, "only {} imported fixtures", imported.len());
    let mut figures = vec![];
    for (what, rules) in [("bundled", &bundled), ("imported", &imported)] {
        let (mut s, mut e) = (0, 0);
        for (name, rule) in rules.iter() {
            s += usize::from(sentinel_round_trip(name, rule));
            e += usize::from(elastic_round_trip(name, rule));
        }
        figures.push(format!("{what}: {} rules, Sentinel {s}, Elastic {e}", rules.len()));
        assert!(s > 0 && e > 0, "{what}: nothing checked");
    }
    println!("printed queries parse back to their trees: {}", figures.join("; "));
}

/// The comparison is structural, so it can fail: `a or (b or c)` and `a or b or c` are other
/// trees (a builder that nested where the text reads flat, or the reverse, is caught), while
/// styles (parentheses the tree does not need) never count.
#[test]
fn tree_equality_is_structural_and_ignores_styles() {
    use kusto::{BinOp, Expr};
    let n = |s: &str| Expr::name(s);
    let right = Expr::binary(BinOp::Or, n("a"), Expr::binary(BinOp::Or, n("b"), n("c")));
    assert_eq!(kusto::expr_to_string(&right), "a or (b or c)");
    assert_eq!(kusto::parse_expr("a or (b or c)").ok(), Some(right.clone()));
    assert_ne!(kusto::parse_expr("a or b or c").ok(), Some(right.clone()));
    assert_eq!(kusto::expr_to_string(&right.clone().paren().paren()), "((a or (b or c)))");
    assert_eq!(kusto::parse_expr("((a or (b or c)))").ok(), Some(right));
    let k = |s: &str| kuery::parse(s).map(|q| q.without_spans()).ok();
    assert_ne!(k("a:b and (c:d and e:f)"), k("a:b and c:d and e:f"));
    assert_eq!(k("a:b and ((c:d and e:f))"), k("a:b and (c:d and e:f)"));
}
