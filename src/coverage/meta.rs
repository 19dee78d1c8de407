//! The name, id and ATT&CK ids of a vendor rule that could not be imported: vendor text →
//! [`Meta`]. A refused rule still has a place in the coverage (its actions unknown); these are
//! the fields that name it.

use serde_json::Value;

use crate::vendors::Vendor;

/// What names a vendor rule.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Meta {
    /// The vendor's rule id.
    pub id: Option<String>,
    /// Its display name.
    pub name: Option<String>,
    /// Severity as the vendor writes it, lower-cased.
    pub severity: Option<String>,
    /// Tactic ids (`TA0005`) known to rulecast's ATT&CK data.
    pub tactics: Vec<String>,
    /// Technique ids (`T1562.007`) known to rulecast's ATT&CK data.
    pub techniques: Vec<String>,
}

/// A string value.
pub fn text(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str).map(str::to_string)
}

/// Add a technique id (trimmed, upper-cased) when rulecast's ATT&CK data knows it.
pub fn push_technique(m: &mut Meta, id: &str) {
    let id = id.trim().to_uppercase();
    if crate::attack::technique(&id).is_some() && !m.techniques.contains(&id) {
        m.techniques.push(id);
    }
}

/// Add a tactic id (trimmed, upper-cased) when rulecast's ATT&CK data knows it.
pub fn push_tactic(m: &mut Meta, id: &str) {
    let id = id.trim().to_uppercase();
    if crate::attack::tactic(&id).is_some() && !m.tactics.contains(&id) {
        m.tactics.push(id);
    }
}

/// Read what names a rule from its vendor text (the vendor's [`Importer::meta`]; nothing when
/// it does not parse).
///
/// [`Importer::meta`]: crate::vendors::Importer::meta
pub fn of(vendor: Vendor, text: &str) -> Meta {
    crate::vendors::importer(vendor).meta(text)
}
