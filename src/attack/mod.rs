//! MITRE ATT&CK v18.1 tactics and techniques (data from `data/attack/`, embedded).
//!
//! Input: ids written in rules. Output: names, URLs and tactic links each target needs.

use std::sync::OnceLock;

/// A tactic.
#[derive(Debug, Clone)]
pub struct Tactic {
    /// `TA0005`.
    pub id: String,
    /// `Defense Evasion`.
    pub name: String,
    /// `defense-evasion`.
    pub shortname: String,
    /// `https://attack.mitre.org/tactics/TA0005/`.
    pub url: String,
}

/// A technique or sub-technique.
#[derive(Debug, Clone)]
pub struct Technique {
    /// `T1562` or `T1562.007`.
    pub id: String,
    /// `Impair Defenses`.
    pub name: String,
    /// Tactic shortnames.
    pub tactics: Vec<String>,
    /// URL without the trailing slash, as the data file has it.
    pub url: String,
}

impl Technique {
    /// Is this a sub-technique?
    pub fn is_sub(&self) -> bool {
        self.id.contains('.')
    }
    /// The parent technique id (itself for a technique).
    pub fn parent_id(&self) -> &str {
        self.id.split('.').next().unwrap_or(&self.id)
    }
}

fn tactics() -> &'static Vec<Tactic> {
    static T: OnceLock<Vec<Tactic>> = OnceLock::new();
    T.get_or_init(|| {
        include_str!("tactics.tsv")
            .lines()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let c: Vec<&str> = l.split('\t').collect();
                Tactic {
                    id: c[0].into(),
                    name: c[1].into(),
                    shortname: c[2].into(),
                    url: c[3].into(),
                }
            })
            .collect()
    })
}

fn techniques() -> &'static Vec<Technique> {
    static T: OnceLock<Vec<Technique>> = OnceLock::new();
    T.get_or_init(|| {
        include_str!("techniques-v18.1.tsv")
            .lines()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let c: Vec<&str> = l.split('\t').collect();
                Technique {
                    id: c[0].into(),
                    name: c[1].into(),
                    tactics: c[2].split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
                    url: c[4].into(),
                }
            })
            .collect()
    })
}

/// Look up a tactic by id.
pub fn tactic(id: &str) -> Option<&'static Tactic> {
    tactics().iter().find(|t| t.id == id)
}

/// Look up a tactic by shortname.
pub fn tactic_by_shortname(short: &str) -> Option<&'static Tactic> {
    tactics().iter().find(|t| t.shortname == short)
}

/// Look up a technique or sub-technique by id.
pub fn technique(id: &str) -> Option<&'static Technique> {
    techniques().iter().find(|t| t.id == id)
}

/// The ATT&CK version rulecast writes (ids, names, URLs in every output).
pub const VERSION: &str = "18.1";

/// A v19 technique id read as the v18.1 technique it replaced (`attack_v18_to_v19.tsv`, the
/// changes elastic/detection-rules' version map lists). Where several v18 ids became one v19 id,
/// the one whose v18 name is the v19 name; `None` where the data cannot say which.
pub fn from_v19(id: &str) -> Option<&'static Technique> {
    static MAP: OnceLock<Vec<(String, String, String)>> = OnceLock::new();
    let map = MAP.get_or_init(|| {
        include_str!("attack_v18_to_v19.tsv")
            .lines()
            .skip(1)
            .filter_map(|l| {
                let c: Vec<&str> = l.split('\t').collect();
                (c.len() >= 3).then(|| (c[0].to_string(), c[1].to_string(), c[2].to_string()))
            })
            .collect()
    });
    let candidates: Vec<&(String, String, String)> = map.iter().filter(|(_, v19, _)| v19 == id).collect();
    let pick = match candidates.as_slice() {
        [one] => Some(*one),
        many => many.iter().copied().find(|(v18, _, name)| technique(v18).is_some_and(|t| t.name == *name)),
    };
    pick.and_then(|(v18, _, _)| technique(v18))
}

/// A v19 tactic short name read as the v18.1 tactic it came from: v19 splits Defense Evasion
/// (TA0005) into Stealth and Defense Impairment.
pub fn tactic_from_v19(short: &str) -> Option<&'static Tactic> {
    matches!(short, "stealth" | "defense-impairment").then(|| tactic("TA0005")).flatten()
}

/// All tactic ids (for suggestions).
pub fn tactic_ids() -> impl Iterator<Item = &'static str> {
    tactics().iter().map(|t| t.id.as_str())
}

/// All technique ids (for suggestions).
pub fn technique_ids() -> impl Iterator<Item = &'static str> {
    techniques().iter().map(|t| t.id.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v19_ids_read_as_the_v18_techniques_they_replaced() {
        // one v18 id became T1686.001
        assert_eq!(from_v19("T1686.001").map(|t| t.id.as_str()), Some("T1562.007"));
        // three v18 ids became T1685: the one with the same name
        assert_eq!(from_v19("T1685").map(|t| t.id.as_str()), Some("T1562.001"));
        assert_eq!(from_v19("T1684.001").map(|t| t.id.as_str()), Some("T1656"));
        assert!(from_v19("T1562.007").is_none(), "a v18 id is not a v19 one");
        assert!(from_v19("T9999").is_none());
        assert_eq!(tactic_from_v19("stealth").map(|t| t.id.as_str()), Some("TA0005"));
        assert!(tactic_from_v19("defense-evasion").is_none());
    }

    #[test]
    fn lookups() {
        let t = technique("T1562.007").unwrap();
        assert_eq!(t.name, "Disable or Modify Cloud Firewall");
        assert_eq!(t.parent_id(), "T1562");
        assert!(t.tactics.contains(&"defense-evasion".to_string()));
        assert!(technique("T9999").is_none());
    }
}
