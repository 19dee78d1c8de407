//! Sentinel's ATT&CK tactic names (its `AttackTactic` enum: `DefenseEvasion`), both ways: the
//! target writes them, the importer and coverage read them. Data: `tactics.tsv`.

use std::sync::OnceLock;

fn table() -> &'static Vec<(&'static str, &'static str)> {
    static T: OnceLock<Vec<(&'static str, &'static str)>> = OnceLock::new();
    T.get_or_init(|| {
        include_str!("tactics.tsv")
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .skip(1)
            .filter_map(|l| l.split_once('\t'))
            .collect()
    })
}

/// Sentinel's name of an ATT&CK tactic (`TA0005` -> `DefenseEvasion`).
pub fn name(id: &str) -> Option<&'static str> {
    table().iter().find(|(i, _)| *i == id).map(|(_, n)| *n)
}

/// The ATT&CK tactic id of a Sentinel tactic name (`DefenseEvasion` -> `TA0005`).
pub fn id(name: &str) -> Option<&'static str> {
    table().iter().find(|(_, n)| *n == name).map(|(i, _)| *i)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_tactic_has_a_name() {
        assert_eq!(super::name("TA0005"), Some("DefenseEvasion"));
        assert_eq!(super::id("CommandAndControl"), Some("TA0011"));
        for id in crate::attack::tactic_ids() {
            assert!(super::name(id).is_some(), "{id}");
        }
    }
}
