//! What API calls a condition can match: [`Cond`] → [`Actions`].
//!
//! Input: a normalised condition. Output: the (eventSource, eventName) pairs it can match,
//! resolved against the catalogue of AWS API operations generated from botocore's service
//! models (`aws_operations.tsv`, written by `scripts/aws-operations`).
//!
//! The condition is decided on every catalogued operation in three-valued logic: predicates on
//! `eventName` and `eventSource` are decided exactly; every other test (user, error code,
//! request parameters, opaque vendor logic) may hold or not (`Maybe`). An operation the
//! condition cannot rule out is an action of the rule. Exact event names that are not in the
//! catalogue (CloudTrail records some events that are no API operation) are actions too.

use std::collections::{BTreeSet, HashMap};
use std::sync::OnceLock;

use serde::Serialize;
use serde_json::Value;

use crate::condition::{Cond, Pred, glob_to_regex};
use crate::model::{Case, Op};

/// An API call as CloudTrail records it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Action {
    /// `ec2.amazonaws.com`; `None` when the rule names an event the catalogue does not know and
    /// no event source.
    pub source: Option<String>,
    /// `AuthorizeSecurityGroupIngress`.
    pub name: String,
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.source.as_deref().unwrap_or("*"), self.name)
    }
}

/// The API calls a rule can match.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Actions {
    /// These calls (sorted, at least one).
    Known {
        /// The calls.
        actions: Vec<Action>,
    },
    /// The condition does not narrow the API call down: it can match (nearly) any of the
    /// catalogue's operations (`count` of them).
    Any {
        /// How many catalogued operations it can match.
        count: usize,
    },
    /// Cannot be known from the rule (opaque logic, no detection logic at hand): why.
    Unknown {
        /// Why.
        reason: String,
    },
}

impl Actions {
    /// The known calls (empty unless [`Actions::Known`]).
    pub fn known(&self) -> &[Action] {
        match self {
            Actions::Known { actions } => actions,
            Actions::Any { .. } | Actions::Unknown { .. } => &[],
        }
    }
}

/// A rule that can match more than this many operations does not narrow the API call down.
pub const BROAD: usize = 1000;

/// The operation catalogue: its header and its (eventSource, eventName) rows, sorted.
pub struct Catalogue {
    /// The botocore version it was generated from.
    pub botocore: String,
    /// The operations.
    pub ops: Vec<(String, String)>,
    /// Event sources (each once).
    sources: BTreeSet<String>,
}

/// The catalogue shipped with rulecast.
pub fn catalogue() -> &'static Catalogue {
    static C: OnceLock<Catalogue> = OnceLock::new();
    C.get_or_init(|| catalogue_from_str(include_str!("aws_operations.tsv")))
}

/// Read a catalogue (`# ... botocore X ...` header lines, a column header, then rows).
pub fn catalogue_from_str(text: &str) -> Catalogue {
    let mut botocore = String::new();
    let mut ops = vec![];
    for line in text.lines() {
        if let Some(c) = line.strip_prefix('#') {
            if botocore.is_empty()
                && let Some(rest) = c.split("botocore ").nth(1)
            {
                botocore = rest.split_whitespace().next().unwrap_or("").to_string();
            }
            continue;
        }
        if line.starts_with("eventSource\t") || line.trim().is_empty() {
            continue;
        }
        if let Some((s, n)) = line.split_once('\t') {
            ops.push((s.to_string(), n.to_string()));
        }
    }
    ops.sort();
    ops.dedup();
    let sources = ops.iter().map(|(s, _)| s.clone()).collect();
    Catalogue { botocore, ops, sources }
}

/// Three-valued truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tri {
    Yes,
    No,
    Maybe,
}

impl Tri {
    fn not(self) -> Tri {
        match self {
            Tri::Yes => Tri::No,
            Tri::No => Tri::Yes,
            Tri::Maybe => Tri::Maybe,
        }
    }
}

/// Which of the two fields a predicate tests.
fn key_of(p: &Pred) -> Option<Key> {
    match p.field.path.as_str() {
        "eventName" => Some(Key::Name),
        "eventSource" => Some(Key::Source),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Name,
    Source,
}

/// A predicate on a string, compiled once.
struct Matcher {
    op: Op,
    ci: bool,
    texts: Vec<String>,
    regexes: Vec<regex::Regex>,
}

impl Matcher {
    fn new(p: &Pred) -> Matcher {
        let ci = p.case == Case::Insensitive;
        let fold = |s: &str| if ci { s.to_lowercase() } else { s.to_string() };
        let texts: Vec<String> = p
            .values
            .iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(fold(s)),
                Value::Number(_) | Value::Bool(_) => Some(v.to_string()),
                Value::Null | Value::Array(_) | Value::Object(_) => None,
            })
            .collect();
        let regexes = match p.op {
            Op::Glob | Op::Regex => p
                .values
                .iter()
                .filter_map(Value::as_str)
                .filter_map(|w| {
                    let pat = if p.op == Op::Glob { glob_to_regex(w) } else { w.to_string() };
                    regex::Regex::new(&if ci { format!("(?i){pat}") } else { pat }).ok()
                })
                .collect(),
            _ => vec![],
        };
        Matcher { op: p.op, ci, texts, regexes }
    }

    fn holds(&self, have: &str) -> bool {
        let h: std::borrow::Cow<str> = if self.ci { have.to_lowercase().into() } else { have.into() };
        let h = h.as_ref();
        match self.op {
            Op::Eq | Op::In => self.texts.iter().any(|w| w == h),
            Op::Contains | Op::Mentions => self.texts.iter().any(|w| h.contains(w.as_str())),
            Op::Startswith => self.texts.iter().any(|w| h.starts_with(w.as_str())),
            Op::Endswith => self.texts.iter().any(|w| h.ends_with(w.as_str())),
            Op::Glob | Op::Regex => self.regexes.iter().any(|r| r.is_match(have)),
            Op::Exists => true,
            Op::Empty => have.is_empty(),
            Op::Lt | Op::Le | Op::Gt | Op::Ge | Op::Cidr => false,
        }
    }
}

/// Every predicate on eventName / eventSource in the condition, with its matcher.
fn matchers(c: &Cond, out: &mut HashMap<*const Pred, Matcher>, lits: &mut (Vec<String>, Vec<String>)) {
    match c {
        Cond::All(k) | Cond::Any(k) => k.iter().for_each(|k| matchers(k, out, lits)),
        Cond::Not(k) => matchers(k, out, lits),
        Cond::Pred(p) => {
            if let Some(key) = key_of(p) {
                out.insert(p as *const Pred, Matcher::new(p));
                if matches!(p.op, Op::Eq | Op::In) {
                    let strs = p.values.iter().filter_map(Value::as_str).map(str::to_string);
                    match key {
                        Key::Name => lits.0.extend(strs),
                        Key::Source => lits.1.extend(strs),
                    }
                }
            }
        }
        Cond::Succeeded(_) | Cond::FieldRef(_) | Cond::Allowed(_) | Cond::External(_) | Cond::Some(_) | Cond::Opaque { .. } => {}
    }
}

/// Does the condition hold for a call (source unknown: `None`)?
fn decide(c: &Cond, m: &HashMap<*const Pred, Matcher>, source: Option<&str>, name: &str) -> Tri {
    match c {
        Cond::All(k) => {
            let mut r = Tri::Yes;
            for k in k {
                match decide(k, m, source, name) {
                    Tri::No => return Tri::No,
                    Tri::Maybe => r = Tri::Maybe,
                    Tri::Yes => {}
                }
            }
            r
        }
        Cond::Any(k) => {
            let mut r = Tri::No;
            for k in k {
                match decide(k, m, source, name) {
                    Tri::Yes => return Tri::Yes,
                    Tri::Maybe => r = Tri::Maybe,
                    Tri::No => {}
                }
            }
            r
        }
        Cond::Not(k) => decide(k, m, source, name).not(),
        Cond::Pred(p) => match (key_of(p), m.get(&(p as *const Pred))) {
            (Some(Key::Name), Some(mt)) => tri(mt.holds(name)),
            (Some(Key::Source), Some(mt)) => source.map_or(Tri::Maybe, |s| tri(mt.holds(s))),
            _ => Tri::Maybe,
        },
        // an external list's values are read when the rule runs: any call may be in it
        Cond::Succeeded(_) | Cond::FieldRef(_) | Cond::Allowed(_) | Cond::External(_) | Cond::Some(_) | Cond::Opaque { .. } => Tri::Maybe,
    }
}

fn tri(b: bool) -> Tri {
    if b { Tri::Yes } else { Tri::No }
}

/// Does the condition hold opaque logic?
pub fn has_opaque(c: &Cond) -> bool {
    match c {
        Cond::All(k) | Cond::Any(k) => k.iter().any(has_opaque),
        Cond::Not(k) => has_opaque(k),
        Cond::Opaque { .. } => true,
        Cond::Succeeded(_) | Cond::Pred(_) | Cond::FieldRef(_) | Cond::Allowed(_) | Cond::External(_) | Cond::Some(_) => false,
    }
}

/// The API calls a condition can match, resolved against the shipped catalogue.
pub fn of(c: &Cond) -> Actions {
    of_with(c, catalogue())
}

/// [`of`] against a given catalogue.
pub fn of_with(c: &Cond, cat: &Catalogue) -> Actions {
    // the ECS categorization fields are sets of event names
    let lowered = crate::fields::by_action::lower_all(c);
    let c = &lowered;
    let mut m = HashMap::new();
    let mut lits = (vec![], vec![]);
    matchers(c, &mut m, &mut lits);
    if m.is_empty() {
        return if has_opaque(c) {
            Actions::Unknown { reason: "opaque logic decides which calls match".into() }
        } else {
            Actions::Any { count: cat.ops.len() }
        };
    }
    let mut found: BTreeSet<Action> = BTreeSet::new();
    for (s, n) in &cat.ops {
        if decide(c, &m, Some(s), n) != Tri::No {
            found.insert(Action { source: Some(s.clone()), name: n.clone() });
        }
    }
    // exact event names the catalogue does not know
    let (names, sources) = lits;
    // (a name matched in another spelling, by a case-insensitive test, is the same call)
    let named: BTreeSet<String> = found.iter().map(|a| a.name.to_lowercase()).collect();
    let extra: Vec<&String> = names.iter().filter(|n| !named.contains(&n.to_lowercase())).collect();
    for n in extra {
        let srcs: Vec<Option<&str>> = if sources.is_empty() { vec![None] } else { sources.iter().map(|s| Some(s.as_str())).collect() };
        for s in srcs {
            if decide(c, &m, s, n) != Tri::No {
                found.insert(Action { source: s.map(str::to_string), name: n.clone() });
            }
        }
    }
    if found.len() > BROAD {
        return if has_opaque(c) {
            Actions::Unknown { reason: "opaque logic decides which calls match".into() }
        } else {
            Actions::Any { count: found.len() }
        };
    }
    if found.is_empty() {
        let unknown: Vec<&String> = sources.iter().filter(|s| !cat.sources.contains(s.as_str())).collect();
        let reason = if unknown.is_empty() {
            "no catalogued operation meets the condition on eventName and eventSource".to_string()
        } else {
            format!(
                "event source {} is not in the catalogue (botocore {}) and the rule names no exact event",
                unknown.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", "),
                cat.botocore
            )
        };
        return Actions::Unknown { reason };
    }
    Actions::Known { actions: found.into_iter().collect() }
}
