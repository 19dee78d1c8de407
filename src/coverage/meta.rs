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

fn s(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str).map(str::to_string)
}

fn push_technique(m: &mut Meta, id: &str) {
    let id = id.trim().to_uppercase();
    if crate::attack::technique(&id).is_some() && !m.techniques.contains(&id) {
        m.techniques.push(id);
    }
}

fn push_tactic(m: &mut Meta, id: &str) {
    let id = id.trim().to_uppercase();
    if crate::attack::tactic(&id).is_some() && !m.tactics.contains(&id) {
        m.tactics.push(id);
    }
}

/// Read what names a rule from its vendor text (nothing when it does not parse).
pub fn of(vendor: Vendor, text: &str) -> Meta {
    let mut m = Meta::default();
    let doc: Value = match vendor {
        Vendor::Elastic => match toml::from_str::<toml::Value>(text).ok().and_then(|t| serde_json::to_value(t).ok()) {
            Some(v) => v,
            None => return m,
        },
        Vendor::Sentinel | Vendor::Panther | Vendor::Sigma => match serde_saphyr::from_str::<Value>(text) {
            Ok(v) => v,
            Err(_) => return m,
        },
    };
    match vendor {
        Vendor::Panther => {
            m.id = s(doc.get("RuleID"));
            m.name = s(doc.get("DisplayName")).or_else(|| m.id.clone());
            m.severity = s(doc.get("Severity")).map(|x| x.to_lowercase());
            for r in doc.pointer("/Reports/MITRE ATT&CK").and_then(Value::as_array).into_iter().flatten() {
                if let Some((ta, t)) = r.as_str().and_then(|r| r.split_once(':')) {
                    push_tactic(&mut m, ta);
                    push_technique(&mut m, t);
                }
            }
        }
        Vendor::Sentinel => {
            m.id = s(doc.get("id"));
            m.name = s(doc.get("name"));
            m.severity = s(doc.get("severity")).map(|x| x.to_lowercase());
            for t in doc.get("relevantTechniques").and_then(Value::as_array).into_iter().flatten() {
                push_technique(&mut m, t.as_str().unwrap_or(""));
            }
            for t in doc.get("tactics").and_then(Value::as_array).into_iter().flatten() {
                let name = t.as_str().unwrap_or("");
                if let Some(ta) = crate::attack::tactic_ids().filter_map(crate::attack::tactic).find(|ta| ta.sentinel_name == name) {
                    push_tactic(&mut m, &ta.id);
                }
            }
        }
        Vendor::Elastic => {
            m.id = s(doc.pointer("/rule/rule_id"));
            m.name = s(doc.pointer("/rule/name"));
            m.severity = s(doc.pointer("/rule/severity"));
            for th in doc.pointer("/rule/threat").and_then(Value::as_array).into_iter().flatten() {
                push_tactic(&mut m, th.pointer("/tactic/id").and_then(Value::as_str).unwrap_or(""));
                for t in th.get("technique").and_then(Value::as_array).into_iter().flatten() {
                    push_technique(&mut m, t.get("id").and_then(Value::as_str).unwrap_or(""));
                    for st in t.get("subtechnique").and_then(Value::as_array).into_iter().flatten() {
                        push_technique(&mut m, st.get("id").and_then(Value::as_str).unwrap_or(""));
                    }
                }
            }
        }
        Vendor::Sigma => {
            m.id = s(doc.get("id"));
            m.name = s(doc.get("title"));
            m.severity = s(doc.get("level"));
            for t in doc.get("tags").and_then(Value::as_array).into_iter().flatten() {
                if let Some(rest) = t.as_str().and_then(|t| t.strip_prefix("attack."))
                    && rest.starts_with('t')
                    && rest[1..].starts_with(|c: char| c.is_ascii_digit())
                {
                    push_technique(&mut m, rest);
                }
            }
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panther_yaml_without_python() {
        let m = of(
            Vendor::Panther,
            "AnalysisType: rule\nRuleID: AWS.EC2.SecurityGroupModified\nDisplayName: EC2 Security Group Modified\nSeverity: Info\nReports:\n  MITRE ATT&CK:\n    - TA0005:T1562.007\n",
        );
        assert_eq!(m.id.as_deref(), Some("AWS.EC2.SecurityGroupModified"));
        assert_eq!(m.name.as_deref(), Some("EC2 Security Group Modified"));
        assert_eq!(m.tactics, ["TA0005"]);
        assert_eq!(m.techniques, ["T1562.007"]);
    }

    #[test]
    fn broken_text_names_nothing() {
        assert_eq!(of(Vendor::Elastic, "[rule\nname = "), Meta::default());
    }
}
