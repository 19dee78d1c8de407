//! Packs: the rules compiled for each target -> what each vendor deploys, plus documentation and
//! release notes.
//!
//! Input: validated rules and the version lock (if any). Output: files by relative path:
//! - per target, what its vendor deploys (each vendor's [`crate::vendors::Backend::pack`] hook, in
//!   `vendors/<vendor>/pack.rs`: an ARM template, the ndjson Kibana's rule import takes, the zip
//!   the upload tool sends);
//! - `docs/<slug>.md` per rule, in the layout of Elastic's prebuilt-rule pages (each target adds
//!   its facts through [`crate::vendors::Backend::doc`]), and
//!   `docs/index.md` grouping the rules by ATT&CK tactic with the platforms each is deployed on;
//! - `RELEASE_NOTES.md`: what the lock's last release changed, and what this pack left out.
//!
//! Each pack is built from the vendor files rulecast renders (the YAML, TOML and Python that
//! `rulecast build` writes), as the vendors' own packaging tools build from theirs. A rule that
//! cannot be built for a target is listed and left out of that target's pack. Pure: no files are
//! touched here.

use std::collections::BTreeMap;

use minijinja::Environment;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::load::Rule;
use crate::lock::Lock;
use crate::targets::{Target, Unsupported};
use crate::vendors::backend;
use strum::IntoEnumIterator;

/// The pack files, and what was left out.
#[derive(Debug, Default)]
pub struct Pack {
    /// Relative path -> content.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Rule × target pairs not in the pack.
    pub left_out: Vec<LeftOut>,
}

/// A rule × target pair that is not in the pack.
#[derive(Debug, Clone, Serialize)]
pub struct LeftOut {
    /// The canonical file.
    pub file: String,
    /// The target.
    pub target: Target,
    /// Why.
    pub reason: String,
    /// The rule says `skip` for this target (not a problem).
    pub skipped: bool,
}

/// One rule's rendered files for one target, as a target's [`crate::vendors::Backend::pack`] hook sees them.
#[derive(Debug, Clone, Copy)]
pub struct PackRule<'a> {
    /// The rule (with the lock applied).
    pub rule: &'a Rule,
    /// The files `build` writes for it: `(path, text)`.
    pub files: &'a [(String, String)],
}

/// What a target's [`crate::vendors::Backend::pack`] hook makes.
#[derive(Debug, Default)]
pub struct Bundle {
    /// Relative path (under the target's folder) -> content.
    pub files: Vec<(String, Vec<u8>)>,
    /// Rules the bundle leaves out: (canonical file, why).
    pub left_out: Vec<(String, String)>,
    /// Rules the bundle leaves out because the rule says so (a status the vendor's tooling does
    /// not deploy): (canonical file, why). Not a failure.
    pub held_back: Vec<(String, String)>,
}

/// What a target adds to a rule's documentation page ([`crate::vendors::Backend::doc`]).
#[derive(Debug, Default)]
pub struct DocFacts {
    /// The version the target deploys.
    pub version: String,
    /// The query as the target runs it.
    pub query: Option<QueryView>,
    /// Page header values (`rule_type`, `runs_every`, `from`, `version`, ...) that replace the
    /// canonical rule's; targets are applied in registry order, so a later one wins.
    pub header: Map<String, Value>,
}

/// One rule's rendered files per target.
struct Built<'a> {
    rule: &'a Rule,
    files: BTreeMap<Target, Vec<(String, String)>>,
}

/// Build the packs for `targets` (all three when empty).
pub fn pack(rules: &[Rule], targets: &[Target], lock: Option<&Lock>) -> Result<Pack, String> {
    let targets: Vec<Target> = if targets.is_empty() { Target::iter().collect() } else { Target::iter().filter(|t| targets.contains(t)).collect() };
    let mut rules: Vec<Rule> = rules.to_vec();
    if let Some(lock) = lock {
        rules.iter_mut().for_each(|r| crate::lock::apply(r, lock));
    }
    let mut out = Pack::default();
    let mut built: Vec<Built> = vec![];
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for rule in &rules {
        let mut b = Built { rule, files: BTreeMap::new() };
        for &t in &targets {
            if let Some(why) = crate::targets::skip_reason(rule, t) {
                out.left_out.push(LeftOut { file: rule.file.clone(), target: t, reason: why, skipped: true });
                continue;
            }
            match crate::targets::compile(rule, t, Unsupported::Warn) {
                Ok(o) => {
                    if let Some((p, other)) = o.files.iter().find_map(|(p, _)| seen.get(p).map(|f| (p.clone(), f.clone()))) {
                        out.left_out.push(LeftOut { file: rule.file.clone(), target: t, reason: format!("`{other}` also writes `{p}`"), skipped: false });
                        continue;
                    }
                    for (p, _) in &o.files {
                        seen.insert(p.clone(), rule.file.clone());
                    }
                    b.files.insert(t, o.files);
                }
                Err(d) => {
                    let reason = d.iter().filter(|x| x.is_error()).map(|x| x.message.clone()).collect::<Vec<_>>().join("; ");
                    out.left_out.push(LeftOut { file: rule.file.clone(), target: t, reason, skipped: false });
                }
            }
        }
        built.push(b);
    }
    built.sort_by(|a, b| a.rule.slug.cmp(&b.rule.slug));
    let mut extra_left_out = vec![];
    for &t in &targets {
        let rules: Vec<PackRule> = built.iter().filter_map(|b| b.files.get(&t).map(|files| PackRule { rule: b.rule, files })).collect();
        let bundle = backend(t).pack(&rules, lock)?;
        out.files.extend(bundle.files);
        extra_left_out.extend(bundle.left_out.into_iter().map(|(file, reason)| LeftOut { file, target: t, reason, skipped: false }));
        extra_left_out.extend(bundle.held_back.into_iter().map(|(file, reason)| LeftOut { file, target: t, reason, skipped: true }));
    }
    for l in &extra_left_out {
        for b in built.iter_mut().filter(|b| b.rule.file == l.file) {
            b.files.remove(&l.target);
        }
    }
    out.left_out.extend(extra_left_out);
    out.left_out.sort_by(|a, b| (&a.file, a.target).cmp(&(&b.file, b.target)));
    docs(&built, &targets, lock, &out.left_out, &mut out.files)?;
    out.files.insert("RELEASE_NOTES.md".into(), release_notes(&rules, lock, &out.left_out)?.into_bytes());
    Ok(out)
}

fn env() -> Result<Environment<'static>, String> {
    let mut env = Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .keep_trailing_newline(true)
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| e.to_string())?,
    );
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.add_filter("md_line", |s: String| md_line(&s));
    env.add_filter("md_cell", |s: String| md_line(&s).replace('|', "\\|"));
    env.add_filter("md_link", |s: String| format!("[{0}]({0})", s.replace(['(', ')', '[', ']', ' '], "")));
    env.add_filter("md_fence", |s: String, lang: String| md_fence(&s, &lang));
    for (name, text) in [
        ("rule.md.j2", include_str!("../../templates/pack/rule.md.j2")),
        ("index.md.j2", include_str!("../../templates/pack/index.md.j2")),
        ("release_notes.md.j2", include_str!("../../templates/pack/release_notes.md.j2")),
    ] {
        env.add_template(name, text).map_err(|e| e.to_string())?;
    }
    Ok(env)
}

/// Text on one Markdown line: line breaks become spaces, and a leading character Markdown would
/// read as block syntax is escaped.
pub fn md_line(s: &str) -> String {
    let one = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match one.chars().next() {
        Some(c) if "#>*-+=|`~".contains(c) => format!("\\{one}"),
        _ => one,
    }
}

/// A fenced code block that no line of the text can close: the fence is longer than any run of
/// backticks in it.
pub fn md_fence(text: &str, lang: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest.max(2) + 1);
    format!("{fence}{lang}\n{}\n{fence}", text.trim_end_matches('\n'))
}

#[derive(Serialize)]
struct Platform {
    target: &'static str,
    version: Option<String>,
    reason: String,
}

/// A query on a documentation page.
#[derive(Debug, Serialize)]
pub struct QueryView {
    /// The heading (empty: the page's main query, shown first).
    pub label: String,
    /// The code block's language.
    pub lang: &'static str,
    /// The query text.
    pub text: String,
}

#[derive(Serialize)]
struct ThreatItem {
    level: &'static str,
    name: String,
    id: String,
    url: String,
}

fn slash(u: &str) -> String {
    if u.ends_with('/') { u.to_string() } else { format!("{u}/") }
}

fn page(b: &Built, lock: Option<&Lock>, targets: &[Target], left_out: &[LeftOut]) -> Result<Value, String> {
    let rule = b.rule;
    let d = &rule.doc;
    let mut view = Map::new();
    view.insert("name".into(), json!(d.name));
    view.insert("description".into(), json!(d.description.trim()));
    // the canonical rule's values; each target's facts replace them (registry order)
    view.insert("rule_type".into(), json!(if d.alert.aggregate.as_ref().is_some_and(|a| a.threshold.is_some()) { "threshold" } else { "query" }));
    view.insert("indices".into(), json!([]));
    view.insert("severity".into(), json!(format!("{:?}", d.severity.value).to_lowercase()));
    view.insert("risk_score".into(), json!(rule.risk_score()));
    view.insert("runs_every".into(), Value::Null);
    view.insert("from".into(), Value::Null);
    view.insert("max_alerts".into(), Value::Null);
    view.insert("tags".into(), json!(d.tags));
    view.insert("authors".into(), json!(d.authors));
    view.insert("license".into(), json!(d.license));
    view.insert("guide".into(), json!(""));
    view.insert("setup".into(), json!(""));
    view.insert("version".into(), json!("1"));
    let mut facts: BTreeMap<Target, DocFacts> = BTreeMap::new();
    for &t in targets {
        if let Some(files) = b.files.get(&t) {
            let f = backend(t).doc(rule, files, lock)?;
            view.extend(f.header.clone());
            facts.insert(t, f);
        }
    }
    view.insert("references".into(), json!(d.references));
    let mut platforms = vec![];
    let mut queries = vec![];
    for &t in targets {
        let reason = left_out.iter().find(|l| l.file == rule.file && l.target == t).map(|l| l.reason.clone()).unwrap_or_default();
        let f = facts.remove(&t);
        platforms.push(Platform { target: backend(t).title(), version: f.as_ref().map(|f| f.version.clone()), reason });
        queries.extend(f.and_then(|f| f.query));
    }
    // the unnamed query first, as on Elastic's pages ("Rule query"), then the others, named
    queries.sort_by_key(|q| !q.label.is_empty());
    view.insert("platforms".into(), serde_json::to_value(&platforms).map_err(|e| e.to_string())?);
    view.insert("queries".into(), serde_json::to_value(&queries).map_err(|e| e.to_string())?);
    let mut threat = vec![];
    for (tac, techs) in &rule.attack {
        threat.push(ThreatItem { level: "Tactic", name: tac.name.clone(), id: tac.id.clone(), url: slash(&tac.url) });
        let mut parents: Vec<&str> = vec![];
        for t in techs {
            let parent = if t.is_sub() { crate::attack::technique(t.parent_id()) } else { Some(*t) };
            if let Some(p) = parent {
                if !parents.contains(&p.id.as_str()) {
                    parents.push(&p.id);
                    threat.push(ThreatItem { level: "Technique", name: p.name.clone(), id: p.id.clone(), url: slash(&p.url) });
                }
            }
            if t.is_sub() {
                threat.push(ThreatItem { level: "Sub-technique", name: t.name.clone(), id: t.id.clone(), url: slash(&t.url) });
            }
        }
    }
    view.insert("threat".into(), serde_json::to_value(&threat).map_err(|e| e.to_string())?);
    Ok(Value::Object(view))
}

fn docs(built: &[Built], targets: &[Target], lock: Option<&Lock>, left_out: &[LeftOut], files: &mut BTreeMap<String, Vec<u8>>) -> Result<(), String> {
    let env = env()?;
    let tpl = env.get_template("rule.md.j2").map_err(|e| e.to_string())?;
    // tactic id -> (name, rows)
    let mut groups: BTreeMap<String, (String, Vec<Value>)> = BTreeMap::new();
    for b in built {
        let view = page(b, lock, targets, left_out)?;
        let text = tpl.render(minijinja::Value::from(minijinja::value::Serde(&view))).map_err(|e| format!("{}: {e:#}", b.rule.file))?;
        let page_name = format!("{}.md", b.rule.slug);
        files.insert(format!("docs/{page_name}"), text.into_bytes());
        let versions: Vec<String> = view["platforms"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| p["version"].as_str().map_or_else(|| "—".to_string(), |v| format!("✓ {v}")))
            .collect();
        let row = json!({"name": b.rule.doc.name, "page": page_name, "severity": view["severity"], "versions": versions});
        if b.rule.attack.is_empty() {
            groups.entry("~".into()).or_insert_with(|| ("No ATT&CK tactic".into(), vec![])).1.push(row.clone());
        }
        for (tac, _) in &b.rule.attack {
            groups.entry(tactic_order(&tac.id)).or_insert_with(|| (format!("{} ({})", tac.name, tac.id), vec![])).1.push(row.clone());
        }
    }
    let target_rows: Vec<Value> = targets
        .iter()
        .map(|t| json!({"name": backend(*t).title(), "count": built.iter().filter(|b| b.files.contains_key(t)).count()}))
        .collect();
    let index = json!({
        "rules_count": built.len(),
        "targets": target_rows,
        "groups": groups.into_values().map(|(title, rules)| json!({"title": title, "rules": rules})).collect::<Vec<_>>(),
    });
    let text = env.get_template("index.md.j2").and_then(|t| t.render(minijinja::Value::from(minijinja::value::Serde(&index)))).map_err(|e| format!("{e:#}"))?;
    files.insert("docs/index.md".into(), text.into_bytes());
    Ok(())
}

/// Sort key for a tactic: ATT&CK's kill-chain order (Reconnaissance first, Impact last).
fn tactic_order(id: &str) -> String {
    const ORDER: &[&str] =
        &["TA0043", "TA0042", "TA0001", "TA0002", "TA0003", "TA0004", "TA0005", "TA0006", "TA0007", "TA0008", "TA0009", "TA0011", "TA0010", "TA0040"];
    match ORDER.iter().position(|t| *t == id) {
        Some(i) => format!("{i:02}"),
        None => format!("99{id}"),
    }
}

fn release_notes(rules: &[Rule], lock: Option<&Lock>, left_out: &[LeftOut]) -> Result<String, String> {
    let env = env()?;
    let view = match lock {
        Some(l) => json!({
            "locked": true,
            "lock_file": crate::lock::FILE_NAME,
            "release": l.release,
            "released": l.released,
            "added": l.changes.added,
            "changed": l.changes.changed,
            "removed": l.changes.removed,
            "left_out": left_out,
        }),
        None => json!({
            "locked": false,
            "lock_file": crate::lock::FILE_NAME,
            "release": 0,
            "released": null,
            "added": rules.iter().map(|r| json!({"id": r.doc.id.value, "name": r.doc.name})).collect::<Vec<_>>(),
            "changed": [],
            "removed": [],
            "left_out": left_out,
        }),
    };
    env.get_template("release_notes.md.j2").and_then(|t| t.render(minijinja::Value::from(minijinja::value::Serde(&view)))).map_err(|e| format!("{e:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fences_outlast_the_text() {
        assert_eq!(md_fence("a\n", "js"), "```js\na\n```");
        assert_eq!(md_fence("x ```` y", "py"), "`````py\nx ```` y\n`````");
    }

    #[test]
    fn lines_cannot_start_blocks() {
        assert_eq!(md_line("# not a heading\nsecond"), "\\# not a heading second");
        assert_eq!(md_line("plain"), "plain");
    }
}
