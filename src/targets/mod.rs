//! Targets: compile a validated [`Rule`] into each vendor's files.
//!
//! Input: a [`Rule`]. Output: [`Output`] (relative file paths and their text) plus translation
//! notes, or diagnostics saying why the rule cannot be built for that target. This file holds
//! the only `match` that lists the targets.

pub mod render;

use serde::Serialize;

use crate::diag::{Code, Diagnostic, Diagnostics, Span};
use crate::load::Rule;
use crate::condition::Cond;
use crate::model::OpaqueLang;
pub use crate::notes::Concern;

pub use crate::vendors::Target;
use crate::vendors::backend;

/// What to do with a construct a target can only approximate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Unsupported {
    /// Refuse to build that rule for that target.
    Error,
    /// Build the closest faithful form, print the note, and write it into the output (default).
    #[default]
    Warn,
    /// As `warn`, without printing (the note is still written into the output).
    Ignore,
}

/// Compilation context: collects translation notes for one rule × target.
#[derive(Debug)]
pub struct Cx {
    /// The target.
    pub target: Target,
    /// Notes and errors so far.
    pub diags: Diagnostics,
    /// Policy for approximations.
    pub policy: Unsupported,
}

impl Cx {
    /// A new context.
    pub fn new(target: Target, policy: Unsupported) -> Self {
        Cx { target, diags: Diagnostics::new(), policy }
    }
    /// The target renders the closest faithful form; record why (E401) and what the note is
    /// about. The same text recorded again (another condition) widens what the note names.
    pub fn approximate(&mut self, concern: Concern, span: Option<Span>, msg: impl Into<String>) {
        let msg = msg.into();
        if let Some(d) = self.diags.0.iter_mut().find(|d| d.message == msg) {
            if let Some(c) = &mut d.concern {
                c.merge(&concern);
            }
            return;
        }
        let d = match self.policy {
            Unsupported::Error => Diagnostic::error(Code::E401, msg),
            Unsupported::Warn | Unsupported::Ignore => Diagnostic::note(Code::E401, msg),
        };
        self.diags.push(d.with_span(span).with_concern(concern));
    }
    /// Something in the rule looks wrong for this target, but it builds (a warning, printed,
    /// not written into the output).
    pub fn warn(&mut self, code: Code, span: Option<Span>, msg: impl Into<String>) {
        self.diags.push(Diagnostic::warning(code, msg).with_span(span));
    }
    /// The target cannot express this at all (E402): the rule is not built for it.
    pub fn unsupported(&mut self, code: Code, span: Option<Span>, msg: impl Into<String>) {
        self.diags.push(Diagnostic::error(code, msg).with_span(span));
    }
    /// The notes (non-errors) as plain text lines, for the output file.
    pub fn note_lines(&self) -> Vec<String> {
        self.diags.iter().filter(|d| d.severity == crate::diag::Severity::Note).map(|d| d.message.clone()).collect()
    }
}

/// Fields every target's view shares.
#[derive(Debug, Serialize)]
pub struct RuleView {
    /// Canonical id.
    pub id: String,
    /// Canonical file (for the header comment).
    pub source: String,
    /// Title.
    pub name: String,
    /// Description.
    pub description: String,
    /// Authors.
    pub authors: Vec<String>,
    /// References.
    pub references: Vec<String>,
    /// False positives.
    pub false_positives: Vec<String>,
    /// Licence.
    pub license: Option<String>,
    /// Translation notes written into the output.
    pub notes: Vec<String>,
}

impl RuleView {
    /// Build the shared part.
    pub fn new(rule: &Rule) -> Self {
        let d = &rule.doc;
        RuleView {
            id: d.id.value.clone(),
            source: format!("canonical-rules/{}.yaml", rule.slug),
            name: d.name.clone(),
            description: d.description.clone(),
            authors: d.authors.clone(),
            references: d.references.clone(),
            false_positives: d.false_positives.clone(),
            license: d.license.clone(),
            notes: vec![],
        }
    }
}

/// Files produced for one rule × target.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// The target.
    pub target: Target,
    /// (path relative to the output folder, content).
    pub files: Vec<(String, String)>,
    /// Translation notes (severity note/warning).
    pub notes: Diagnostics,
}

/// A UUID derived from the canonical id, stable across runs (UUIDv5 in a rulecast namespace).
pub fn derived_uuid(canonical_id: &str, target: Target) -> String {
    if uuid::Uuid::parse_str(canonical_id).is_ok() && canonical_id.len() == 36 {
        return canonical_id.to_lowercase();
    }
    let ns = uuid::Uuid::from_u128(0x6f1c_2a5e_93d4_4c3b_9a77_0d2e_5b8f_1c44);
    let name = format!("{target}:{canonical_id}");
    uuid::Uuid::new_v5(&ns, name.as_bytes()).to_string()
}

/// Why a rule is not built for a target, if it is not: the rule's own `skip` reason, another
/// target's condition the canonical rule lacks ([`crate::vendors::Settings::narrows`]), or an
/// opaque condition in another target's language.
pub fn skip_reason(rule: &Rule, target: Target) -> Option<String> {
    if let Some(why) = rule.doc.targets.of(target).skip() {
        return Some(why.to_string());
    }
    for other in <Target as strum::IntoEnumIterator>::iter().filter(|&t| t != target) {
        if let Some(why) = rule.doc.targets.of(other).narrows() {
            return Some(format!(
                "the {other} rule {why}, a condition the canonical rule does not hold: a {target} rule built from it would alert on every matching event"
            ));
        }
    }
    if rule.doc.kind == crate::model::RuleKind::Hunting && !backend(target).hunting() {
        return Some(format!("a hunting query (kind: hunting): rulecast writes no {} hunting-query file, and an alerting rule would alert where the query only lists events", backend(target).title()));
    }
    foreign_opaque(&rule.condition(), target)
        .map(|(lang, reason)| format!("opaque {} logic ({reason}); only that language can run it", <&str>::from(lang)))
}

/// The language a target runs opaque conditions in.
pub fn opaque_lang(target: Target) -> OpaqueLang {
    backend(target).opaque_lang()
}

/// The first opaque condition the target cannot run, with its reason.
pub fn foreign_opaque(c: &Cond, target: Target) -> Option<(OpaqueLang, String)> {
    match c {
        Cond::All(k) | Cond::Any(k) => k.iter().find_map(|k| foreign_opaque(k, target)),
        Cond::Not(k) => foreign_opaque(k, target),
        Cond::Opaque { lang, reason, .. } if *lang != opaque_lang(target) => Some((*lang, reason.clone())),
        // `some.where` holds no opaque logic (the loader keeps it out)
        Cond::Opaque { .. } | Cond::Some(_) | Cond::Succeeded(_) | Cond::Pred(_) | Cond::FieldRef(_) | Cond::Allowed(_) | Cond::External(_) => None,
    }
}

/// Render an opaque condition: verbatim in parentheses for the target that speaks its language
/// (the loader checked that it is one expression), refused (E403) for the others.
pub fn opaque(lang: OpaqueLang, text: &str, reason: &str, cx: &mut Cx) -> String {
    if opaque_speaks(lang, reason, cx) { format!("({text})") } else { String::new() }
}

/// Does the target speak the opaque condition's language? Refuses it (E403) when not. Targets
/// that build syntax trees parse the text themselves (the loader checked that it parses as one
/// expression) and put it in parentheses.
pub fn opaque_speaks(lang: OpaqueLang, reason: &str, cx: &mut Cx) -> bool {
    if lang == opaque_lang(cx.target) {
        true
    } else {
        cx.unsupported(
            Code::E403,
            None,
            format!("opaque {} logic ({reason}); {} cannot run it", <&str>::from(lang), cx.target),
        );
        false
    }
}

/// Compile one rule for one target.
pub fn compile(rule: &Rule, target: Target, policy: Unsupported) -> Result<Output, Diagnostics> {
    let mut cx = Cx::new(target, policy);
    let lowered = lowered_for(rule, target, &mut cx);
    let rule = lowered.as_ref().unwrap_or(rule);
    let files = backend(target).compile(rule, &mut cx);
    if cx.diags.has_errors() {
        return Err(cx.diags);
    }
    match files {
        Ok(mut files) => {
            if let Some(layout) = rule.doc.targets.of(target).layout() {
                for (path, text) in &mut files {
                    let (kept, _) = crate::layout::apply(layout, path, text, backend(target).same_text());
                    *text = kept;
                }
            }
            Ok(Output { target, files, notes: cx.diags })
        }
        Err(d) => {
            let mut all = cx.diags;
            all.extend(d);
            Err(all)
        }
    }
}

/// The rule with every comparison on a by-action virtual field (`@ecs_category`, `@ecs_type`)
/// the target has no form of its own for rewritten as the condition on `eventName` that means
/// the same ([`crate::fields::by_action::lower`]); `None` when there is none. A comparison that
/// no or every API call satisfies is refused (E402). [`compile`] compiles this rule; a
/// target's evaluator that compiles its query itself calls it too.
pub fn lowered_for(rule: &Rule, target: Target, cx: &mut Cx) -> Option<Rule> {
    fn needs(c: &Cond, t: Target) -> bool {
        match c {
            Cond::All(k) | Cond::Any(k) => k.iter().any(|k| needs(k, t)),
            Cond::Not(k) => needs(k, t),
            Cond::Pred(p) => p.field.maps.unavailable(t) == Some(crate::fields::by_action::BY_ACTION),
            Cond::Some(_) | Cond::FieldRef(_) | Cond::Succeeded(_) | Cond::Allowed(_) | Cond::External(_) | Cond::Opaque { .. } => false,
        }
    }
    fn rewrite(c: &Cond, t: Target, cx: &mut Cx) -> Cond {
        match c {
            Cond::All(k) => {
                // the lowered conjuncts of one `all` become one set of actions, where the first
                // of them was (exact: each is `eventName in S` or `not (eventName in S)`,
                // compared case-sensitively)
                let lowered: Vec<Cond> = k.iter().filter(|k| lowerable(k, t)).map(|k| rewrite(k, t, cx)).collect();
                match crate::fields::by_action::intersect(&lowered) {
                    Some(Ok(one)) => {
                        let mut one = Some(one);
                        let mut out = vec![];
                        for kid in k {
                            if !lowerable(kid, t) {
                                out.push(rewrite(kid, t, cx));
                            } else if let Some(one) = one.take() {
                                out.push(one);
                            }
                        }
                        Cond::All(out)
                    }
                    merged => {
                        if let Some(Err(why)) = merged {
                            let span = k.iter().find_map(|k| match k {
                                Cond::Pred(p) if lowerable(k, t) => p.span.clone(),
                                _ => None,
                            });
                            cx.unsupported(Code::E402, span, why);
                        }
                        let mut lowered = lowered.into_iter();
                        Cond::All(k.iter().map(|kid| if lowerable(kid, t) { lowered.next().unwrap_or_else(|| kid.clone()) } else { rewrite(kid, t, cx) }).collect())
                    }
                }
            }
            Cond::Any(k) => Cond::Any(k.iter().map(|k| rewrite(k, t, cx)).collect()),
            Cond::Not(k) => Cond::Not(Box::new(rewrite(k, t, cx))),
            Cond::Pred(p) if p.field.maps.unavailable(t) == Some(crate::fields::by_action::BY_ACTION) => match crate::fields::by_action::lower(p) {
                Some(Ok(lowered)) => lowered,
                Some(Err(why)) => {
                    cx.unsupported(Code::E402, p.span.clone(), why);
                    c.clone()
                }
                None => c.clone(),
            },
            other => other.clone(),
        }
    }
    fn lowerable(c: &Cond, t: Target) -> bool {
        matches!(c, Cond::Pred(p) if p.field.maps.unavailable(t) == Some(crate::fields::by_action::BY_ACTION))
    }
    if !needs(&rule.detection, target) {
        return None;
    }
    let mut r = rule.clone();
    r.detection = crate::condition::normalise(rewrite(&rule.detection, target, cx));
    Some(r)
}

/// Where a target's files go, relative to the output folder.
pub fn folder(target: Target) -> &'static str {
    target.into()
}
