//! A semantic diff of two rule sets: two [`Coverage`]s (before, after) → [`Diff`]: per rule,
//! per platform the actions and techniques gained or lost and the status change; the
//! condition, severity and schedule changes; and per platform the actions and techniques the
//! whole set gained or lost.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::{Actions, Coverage, Entry};
use crate::load::Rule;

/// What changed between two rule sets.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Diff {
    /// Per platform: what the whole set covers more or less.
    pub platforms: BTreeMap<String, SetChange>,
    /// Per rule id (sorted), rules added, removed or changed.
    pub rules: Vec<RuleDiff>,
}

/// Gained and lost keys.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SetChange {
    /// Actions now covered that were not.
    pub actions_gained: Vec<String>,
    /// Actions no longer covered.
    pub actions_lost: Vec<String>,
    /// Techniques now covered that were not.
    pub techniques_gained: Vec<String>,
    /// Techniques no longer covered.
    pub techniques_lost: Vec<String>,
}

impl SetChange {
    fn is_empty(&self) -> bool {
        self.actions_gained.is_empty() && self.actions_lost.is_empty() && self.techniques_gained.is_empty() && self.techniques_lost.is_empty()
    }
}

/// One rule's change.
#[derive(Debug, Clone, Serialize)]
pub struct RuleDiff {
    /// The rule id.
    pub id: String,
    /// Its name (after, or before when removed).
    pub name: String,
    /// added, removed or changed.
    pub change: &'static str,
    /// Per platform: status before → after, and the actions and techniques gained or lost.
    pub platforms: BTreeMap<String, PlatformChange>,
    /// The condition tree before and after, when it changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<(String, String)>,
    /// Severity before and after, when it changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<(String, String)>,
    /// Schedule settings that changed: (setting, before, after).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub schedule: Vec<(String, String, String)>,
}

/// One rule on one platform.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PlatformChange {
    /// Status before (`absent` when the rule was not there).
    pub before: String,
    /// Status after.
    pub after: String,
    /// Actions and techniques gained and lost.
    #[serde(flatten)]
    pub change: SetChange,
}

fn keys(e: Option<&Entry>) -> (BTreeSet<String>, BTreeSet<String>) {
    match e {
        Some(e) if e.status.active() => (e.actions.known().iter().map(ToString::to_string).collect(), e.techniques.iter().cloned().collect()),
        Some(_) | None => (BTreeSet::new(), BTreeSet::new()),
    }
}

fn actions_word(a: &Actions) -> &'static str {
    match a {
        Actions::Known { .. } => "known",
        Actions::Any { .. } => "any",
        Actions::Unknown { .. } => "unknown",
    }
}

fn change(before: &BTreeSet<String>, after: &BTreeSet<String>, tb: &BTreeSet<String>, ta: &BTreeSet<String>) -> SetChange {
    SetChange {
        actions_gained: after.difference(before).cloned().collect(),
        actions_lost: before.difference(after).cloned().collect(),
        techniques_gained: ta.difference(tb).cloned().collect(),
        techniques_lost: tb.difference(ta).cloned().collect(),
    }
}

fn schedule(r: &Rule) -> Vec<(String, String)> {
    let mut out = vec![];
    for t in <crate::vendors::Target as strum::IntoEnumIterator>::iter() {
        for (key, value) in r.doc.targets.of(t).schedule() {
            out.push((format!("{t}.{key}"), value.unwrap_or_else(|| "default".into())));
        }
    }
    out
}

fn condition_text(r: &Rule) -> String {
    let mut t = String::new();
    super::explain::tree(&r.events_condition(), 0, &mut t);
    t
}

/// Compare two rule sets, entry by entry (matched by rule id and platform).
pub fn diff(before: &Coverage, after: &Coverage) -> Diff {
    let index = |c: &Coverage| -> BTreeMap<(String, String), usize> { c.entries.iter().enumerate().map(|(i, e)| ((e.id.clone(), e.platform.clone()), i)).collect() };
    let (ib, ia) = (index(before), index(after));
    let ids: BTreeSet<&String> = before.entries.iter().chain(&after.entries).map(|e| &e.id).collect();
    let mut out = Diff::default();
    for id in ids {
        let platforms: BTreeSet<&String> = before.entries.iter().chain(&after.entries).filter(|e| &e.id == id).map(|e| &e.platform).collect();
        let mut rd = RuleDiff { id: id.clone(), name: String::new(), change: "changed", platforms: BTreeMap::new(), condition: None, severity: None, schedule: vec![] };
        let (mut any_before, mut any_after) = (None, None);
        for p in platforms {
            let key = (id.clone(), p.clone());
            let eb = ib.get(&key).map(|&i| (&before.entries[i], before.loaded.get(i).and_then(|r| r.clone())));
            let ea = ia.get(&key).map(|&i| (&after.entries[i], after.loaded.get(i).and_then(|r| r.clone())));
            if any_before.is_none() {
                any_before = eb.clone();
            }
            if any_after.is_none() {
                any_after = ea.clone();
            }
            let (ab, tb) = keys(eb.as_ref().map(|x| x.0));
            let (aa, ta) = keys(ea.as_ref().map(|x| x.0));
            let word = |e: Option<&Entry>| e.map_or_else(|| "absent".to_string(), |e| format!("{} ({} actions)", e.status.word(), actions_word(&e.actions)));
            let pc = PlatformChange { before: word(eb.as_ref().map(|x| x.0)), after: word(ea.as_ref().map(|x| x.0)), change: change(&ab, &aa, &tb, &ta) };
            if pc.before != pc.after || !pc.change.is_empty() {
                rd.platforms.insert(p.clone(), pc);
            }
        }
        rd.change = match (&any_before, &any_after) {
            (None, Some(_)) => "added",
            (Some(_), None) => "removed",
            _ => "changed",
        };
        rd.name = any_after.as_ref().or(any_before.as_ref()).map_or_else(String::new, |x| x.0.name.clone());
        if let (Some((eb, rb)), Some((ea, ra))) = (&any_before, &any_after) {
            if eb.severity != ea.severity {
                rd.severity = Some((eb.severity.clone().unwrap_or_default(), ea.severity.clone().unwrap_or_default()));
            }
            if let (Some(rb), Some(ra)) = (rb, ra) {
                let (cb, ca) = (condition_text(rb), condition_text(ra));
                if cb != ca {
                    rd.condition = Some((cb, ca));
                }
                for ((k, vb), (_, va)) in schedule(rb).into_iter().zip(schedule(ra)) {
                    if vb != va {
                        rd.schedule.push((k, vb, va));
                    }
                }
            }
        }
        let changed = rd.change != "changed" || !rd.platforms.is_empty() || rd.condition.is_some() || rd.severity.is_some() || !rd.schedule.is_empty();
        if changed {
            out.rules.push(rd);
        }
    }
    // the whole set, per platform
    let (amb, ama, tmb, tma) = (before.action_matrix(), after.action_matrix(), before.technique_matrix(), after.technique_matrix());
    let covered = |m: &super::Matrix, p: &str| -> BTreeSet<String> { m.rows.iter().filter(|r| r.counts.get(p).copied().unwrap_or(0) > 0).map(|r| r.key.clone()).collect() };
    let platforms: BTreeSet<&String> = before.platforms.iter().chain(&after.platforms).collect();
    for p in platforms {
        let c = change(&covered(&amb, p), &covered(&ama, p), &covered(&tmb, p), &covered(&tma, p));
        if !c.is_empty() {
            out.platforms.insert(p.clone(), c);
        }
    }
    out
}

/// The diff as text.
pub fn to_text(d: &Diff) -> String {
    let mut o = String::new();
    if d.rules.is_empty() && d.platforms.is_empty() {
        return "no change in what the rules detect\n".into();
    }
    if d.platforms.is_empty() {
        o.push_str("the set as a whole covers the same actions and techniques on every platform\n");
    }
    for (p, c) in &d.platforms {
        o.push_str(&format!("{p}: actions +{} -{}, techniques +{} -{}\n", c.actions_gained.len(), c.actions_lost.len(), c.techniques_gained.len(), c.techniques_lost.len()));
        for a in &c.actions_gained {
            o.push_str(&format!("  + {a}\n"));
        }
        for a in &c.actions_lost {
            o.push_str(&format!("  - {a}\n"));
        }
        for t in &c.techniques_gained {
            o.push_str(&format!("  + {t}\n"));
        }
        for t in &c.techniques_lost {
            o.push_str(&format!("  - {t}\n"));
        }
    }
    for r in &d.rules {
        o.push_str(&format!("\n{} {} ({})\n", r.change, r.name, r.id));
        if let Some((a, b)) = &r.severity {
            o.push_str(&format!("  severity: {a} -> {b}\n"));
        }
        for (k, a, b) in &r.schedule {
            o.push_str(&format!("  {k}: {a} -> {b}\n"));
        }
        if let Some((a, b)) = &r.condition {
            o.push_str("  condition before:\n");
            for l in a.lines() {
                o.push_str(&format!("    {l}\n"));
            }
            o.push_str("  condition after:\n");
            for l in b.lines() {
                o.push_str(&format!("    {l}\n"));
            }
        }
        for (p, c) in &r.platforms {
            o.push_str(&format!("  {p}: {} -> {}", c.before, c.after));
            let parts: Vec<String> = [
                c.change.actions_gained.iter().map(|a| format!("+{a}")).collect::<Vec<_>>(),
                c.change.actions_lost.iter().map(|a| format!("-{a}")).collect(),
                c.change.techniques_gained.iter().map(|a| format!("+{a}")).collect(),
                c.change.techniques_lost.iter().map(|a| format!("-{a}")).collect(),
            ]
            .concat();
            if !parts.is_empty() {
                o.push_str(&format!("; {}", parts.join(" ")));
            }
            o.push('\n');
        }
    }
    o
}
