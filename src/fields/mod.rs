//! The CloudTrail field taxonomy: raw JSON path -> Sentinel column, Elastic field, value type.
//!
//! Input: a raw path as written in a rule (`requestParameters.enable`, `resources[0].ARN`).
//! Output: a [`Field`] that each target turns into its own syntax. The table is data
//! (`cloudtrail.tsv`, embedded); a path with no mapping for a target is a diagnostic there.

use std::sync::OnceLock;

pub mod by_action;
pub mod es_date;
pub mod java_text;

/// One segment of a raw path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// An object key.
    Key(String),
    /// An array index (negative counts from the end).
    Index(i64),
}

/// The value type a field carries in raw CloudTrail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Text.
    String,
    /// JSON boolean.
    Bool,
    /// The strings "true"/"false".
    BoolString,
    /// JSON number.
    Number,
    /// ISO-8601 text.
    Datetime,
    /// JSON object (any nested path allowed).
    Object,
    /// JSON object whose sub-paths are listed in the taxonomy (others are unknown).
    Record,
    /// JSON array (nested paths allowed).
    Array,
    /// Unknown: a path inside an object.
    Any,
}

/// How a target stores the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapping {
    /// A column / field of its own.
    Column(String),
    /// The rest of the path is read inside a JSON-string column (Sentinel) or a flattened
    /// object field (Elastic).
    Nested {
        /// The column or the flattened field's prefix.
        base: String,
        /// The segments below it.
        rest: Vec<Seg>,
    },
    /// A path inside the element a `some` condition is testing (`var` names the element in
    /// the target's generated code).
    Element {
        /// The element's name (`_e1` for the outermost `some`).
        var: String,
        /// The segments below the element.
        rest: Vec<Seg>,
    },
    /// Computed by an expression (virtual fields).
    Expr(String),
    /// The target has nothing for it.
    None,
    /// A virtual field the target has no data for: why (reported as E402).
    Unavailable(&'static str),
}

/// One row of the taxonomy.
#[derive(Debug, Clone)]
pub struct Row {
    /// Raw path.
    pub path: String,
    /// Value type.
    pub kind: Kind,
    /// Does AWS generate the value in a fixed spelling?
    pub case_fixed: bool,
    /// Caveat code, if any.
    pub caveat: Option<String>,
    /// Every column by its header (the targets' columns are read by their vendor: [`Row::col`]).
    cols: Vec<(&'static str, &'static str)>,
}

impl Row {
    /// The value in the column with this header (`-` when the row has none).
    pub fn col(&self, header: &str) -> &'static str {
        self.cols.iter().find(|(h, _)| *h == header).map_or("-", |(_, v)| *v)
    }
}

/// A resolved field reference.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The path as written.
    pub path: String,
    /// Parsed segments.
    pub segs: Vec<Seg>,
    /// Value type.
    pub kind: Kind,
    /// How each target stores it (each vendor's `fields.rs` reads its columns of the row or its
    /// column of the virtual-field table).
    pub maps: crate::vendors::FieldMaps,
    /// The virtual field, if it is one.
    pub virtual_field: Option<&'static Virtual>,
    /// Does AWS generate the value in a fixed spelling?
    pub case_fixed: bool,
    /// Caveat code, if any.
    pub caveat: Option<String>,
    /// `Some(var)`: the path is relative to the element of a `some` condition (named `var` in
    /// generated code), not to the event.
    pub element: Option<String>,
}

/// Where a virtual field's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Computed from the raw event by a fixed rule (every evaluator can compute it).
    Computed,
    /// Looked up by the platform at ingestion (an ASN database, a user-agent parser): not in
    /// the raw event. A test case supplies the value in `enrichment:`; without it the
    /// canonical evaluator cannot decide a condition on the field.
    Enrichment,
}

/// A virtual field: a named value that is not a raw CloudTrail path. Each target either
/// computes it or has no such data (the reason, reported as E402): that is the target's
/// (its vendor's `fields.rs`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Virtual {
    /// `@name`.
    pub name: &'static str,
    /// What it holds (README, "Virtual fields").
    pub meaning: &'static str,
    /// Its value type.
    pub kind: Kind,
    /// Computed or enrichment.
    pub source: Source,
    /// A caveat code for the targets that compute it (each target's caveat table says which
    /// apply to it).
    pub caveat: Option<&'static str>,
}

/// The virtual fields.
pub const VIRTUAL: &[Virtual] = &[
    Virtual {
        name: "@actor_user",
        meaning: "the acting user: sessionContext.sessionIssuer.userName if present, else userIdentity.userName",
        kind: Kind::String,
        source: Source::Computed,
        caveat: None,
    },
    Virtual {
        name: "@outcome",
        meaning: "`success` or `failure` as Elastic's AWS integration derives event.outcome, after its pipeline drops null, \"\", \"-\", \"none\" and empty objects and lists: for ConsoleLogin, responseElements.ConsoleLogin lower-cased when it is a kept string; otherwise `failure` when errorCode or errorMessage holds a kept value, else `success`",
        kind: Kind::String,
        source: Source::Computed,
        caveat: Some("outcome_empty"),
    },
    Virtual {
        name: "@source_ip",
        meaning: "sourceIPAddress when it is an IPv4 or IPv6 address, else absent (service principals such as `ec2.amazonaws.com` have none); Elastic's source.ip",
        kind: Kind::String,
        source: Source::Computed,
        caveat: None,
    },
    Virtual {
        name: "@console_login_mfa_used",
        meaning: "for ConsoleLogin events that carry additionalEventData.MFAUsed: `false` when it is `No`, else `true`; absent for other events (Elastic's aws.cloudtrail.console_login.additional_eventdata.mfa_used)",
        kind: Kind::Bool,
        source: Source::Computed,
        caveat: Some("mfa_used_absent"),
    },
    Virtual {
        name: "@ecs_category",
        meaning: "the ECS event.category Elastic's AWS integration gives the API call (a list: `iam`, `authentication`, `file`, `network`, ...) by its table of eventName values (`Add ECS categorization`); absent for an action not in the table",
        kind: Kind::String,
        source: Source::Computed,
        caveat: None,
    },
    Virtual {
        name: "@ecs_type",
        meaning: "the ECS event.type Elastic's AWS integration gives the API call (a list: `info`, `change`, `creation`, `user`, ...) by the same table; `[info]` for an action not in the table, absent for the actions the table gives an empty list (Publish, SendCommand, Converse)",
        kind: Kind::String,
        source: Source::Computed,
        caveat: None,
    },
    Virtual {
        name: "@request_parameters_text",
        meaning: "requestParameters as the text Elastic's AWS integration keeps of it (aws.cloudtrail.request_parameters): Java's map text `{key=value, list=[a, b], map={k=v}}`, keys in Java HashMap order, strings unquoted, numbers as Java prints them, after the pipeline drops null, \"\", \"-\", \"none\" and emptied maps and lists; absent when it writes none",
        kind: Kind::String,
        source: Source::Computed,
        caveat: Some("text_copy"),
    },
    Virtual {
        name: "@response_elements_text",
        meaning: "responseElements as the text Elastic's AWS integration keeps of it (aws.cloudtrail.response_elements): Java's map text `{key=value, list=[a, b], map={k=v}}`, keys in Java HashMap order, strings unquoted, numbers as Java prints them, after the pipeline drops null, \"\", \"-\", \"none\" and emptied maps and lists; absent when it writes none",
        kind: Kind::String,
        source: Source::Computed,
        caveat: Some("text_copy"),
    },
    Virtual {
        name: "@additional_eventdata_text",
        meaning: "additionalEventData as the text Elastic's AWS integration keeps of it (aws.cloudtrail.additional_eventdata): Java's map text `{key=value, list=[a, b], map={k=v}}`, keys in Java HashMap order, strings unquoted, numbers as Java prints them, after the pipeline drops null, \"\", \"-\", \"none\" and emptied maps and lists; absent when it writes none",
        kind: Kind::String,
        source: Source::Computed,
        caveat: Some("text_copy"),
    },
    Virtual {
        name: "@service_event_details_text",
        meaning: "serviceEventDetails as the text Elastic's AWS integration keeps of it (aws.cloudtrail.service_event_details): Java's map text `{key=value, list=[a, b], map={k=v}}`, keys in Java HashMap order, strings unquoted, numbers as Java prints them, after the pipeline drops null, \"\", \"-\", \"none\" and emptied maps and lists; absent when it writes none",
        kind: Kind::String,
        source: Source::Computed,
        caveat: Some("text_copy"),
    },
    Virtual {
        name: "@source_as_org",
        meaning: "the organisation of the autonomous system the source address belongs to, from the platform's ASN database (Elastic: the integration's geoip processor, source.as.organization.name)",
        kind: Kind::String,
        source: Source::Enrichment,
        caveat: None,
    },
    Virtual {
        name: "@source_as_number",
        meaning: "the number of the autonomous system the source address belongs to, from the platform's ASN database (Elastic: source.as.number)",
        kind: Kind::Number,
        source: Source::Enrichment,
        caveat: None,
    },
    Virtual {
        name: "@user_agent_name",
        meaning: "the client family Elastic's user_agent processor parses from userAgent (`Chrome`, `Firefox`, `Boto3`, ...: user_agent.name)",
        kind: Kind::String,
        source: Source::Enrichment,
        caveat: None,
    },
    Virtual {
        name: "@related_entity",
        meaning: "the identifiers (ARNs, ids) Elastic's AWS integration collects in related.entity (a list)",
        kind: Kind::String,
        source: Source::Enrichment,
        caveat: None,
    },
];

/// The virtual field of that name.
pub fn virtual_field(name: &str) -> Option<&'static Virtual> {
    VIRTUAL.iter().find(|v| v.name == name)
}

fn rows() -> &'static Vec<Row> {
    static ROWS: OnceLock<Vec<Row>> = OnceLock::new();
    ROWS.get_or_init(|| {
        let text = include_str!("cloudtrail.tsv");
        let header: Vec<&'static str> = text.lines().find(|l| l.starts_with("path\t")).map(|l| l.split('\t').collect()).unwrap_or_default();
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with("path\t") && !l.trim().is_empty())
            .map(|l| {
                let c: Vec<&'static str> = l.split('\t').collect();
                let cols: Vec<(&'static str, &'static str)> = header.iter().enumerate().map(|(i, h)| (*h, c.get(i).copied().unwrap_or("-"))).collect();
                let col = |h: &str| cols.iter().find(|(n, _)| *n == h).map(|(_, v)| *v);
                Row {
                    path: c.first().copied().unwrap_or("-").to_string(),
                    kind: match c.get(1).copied().unwrap_or("") {
                        "bool" => Kind::Bool,
                        "boolstring" => Kind::BoolString,
                        "number" => Kind::Number,
                        "datetime" => Kind::Datetime,
                        "object" => Kind::Object,
                        "record" => Kind::Record,
                        "array" => Kind::Array,
                        _ => Kind::String,
                    },
                    case_fixed: col("case") == Some("fixed"),
                    caveat: col("caveat").filter(|v| *v != "-").map(str::to_string),
                    cols,
                }
            })
            .collect()
    })
}

/// Every row of the taxonomy.
pub fn all() -> &'static [Row] {
    rows()
}

/// Why a path could not be resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum PathError {
    /// The path is not well-formed.
    Syntax(String),
    /// No taxonomy row covers it; carries the closest known path.
    Unknown(Option<String>),
}

/// Parse `a.b[0].c` into segments.
pub fn parse_path(path: &str) -> Result<Vec<Seg>, PathError> {
    let mut segs = vec![];
    if path.is_empty() {
        return Err(PathError::Syntax("the path is empty".into()));
    }
    for part in path.split('.') {
        let (name, mut idx) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == ':') {
            return Err(PathError::Syntax(format!(
                "`{part}` is not a path segment (letters, digits, `_`, `-`, `:`, then optional `[N]`)"
            )));
        }
        segs.push(Seg::Key(name.to_string()));
        while !idx.is_empty() {
            let close = idx.find(']').ok_or_else(|| PathError::Syntax(format!("unclosed `[` in `{part}`")))?;
            let n: i64 = idx[1..close]
                .parse()
                .map_err(|_| PathError::Syntax(format!("`{}` is not an array index", &idx[1..close])))?;
            segs.push(Seg::Index(n));
            idx = &idx[close + 1..];
            if !idx.is_empty() && !idx.starts_with('[') {
                return Err(PathError::Syntax(format!("unexpected `{idx}` in `{part}`")));
            }
        }
    }
    Ok(segs)
}

/// Segments back as a path (`a.b[0].c`).
pub fn seg_path(segs: &[Seg]) -> String {
    let mut s = String::new();
    for seg in segs {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// A target's mapping of a taxonomy column value (`Column`, `json:Column`, `flattened:prefix`,
/// `-`) for the path below the row (`rest`).
pub fn mapping(spec: &str, rest: &[Seg]) -> Mapping {
    if spec == "-" {
        return Mapping::None;
    }
    if let Some(base) = spec.strip_prefix("json:").or_else(|| spec.strip_prefix("flattened:")) {
        if rest.is_empty() {
            // the whole object: Sentinel's column itself / Elastic's keyword copy
            return Mapping::Column(base.to_string());
        }
        return Mapping::Nested { base: base.to_string(), rest: rest.to_vec() };
    }
    if rest.is_empty() { Mapping::Column(spec.to_string()) } else { Mapping::None }
}

/// Resolve a raw path against the taxonomy.
pub fn resolve(path: &str) -> Result<Field, PathError> {
    if let Some(v) = virtual_field(path) {
        return Ok(Field {
            path: path.to_string(),
            segs: vec![],
            kind: v.kind,
            maps: crate::vendors::FieldMaps::of_virtual(v),
            virtual_field: Some(v),
            case_fixed: false,
            caveat: v.caveat.map(str::to_string),
            element: None,
        });
    }
    let segs = parse_path(path)?;
    // longest row that is a prefix of the path
    for n in (1..=segs.len()).rev() {
        let prefix = seg_path(&segs[..n]);
        if let Some(row) = rows().iter().find(|r| r.path == prefix) {
            let rest = &segs[n..];
            if !rest.is_empty() && !matches!(row.kind, Kind::Object | Kind::Array) {
                let known: Vec<&str> = rows().iter().map(|r| r.path.as_str()).collect();
                let best = crate::diag::closest(path, known).unwrap_or(row.path.as_str());
                return Err(PathError::Unknown(Some(best.to_string())));
            }
            return Ok(Field {
                path: path.to_string(),
                segs: segs.clone(),
                kind: if rest.is_empty() { row.kind } else { Kind::Any },
                maps: crate::vendors::FieldMaps::of_row(row, rest),
                virtual_field: None,
                case_fixed: rest.is_empty() && row.case_fixed,
                caveat: row.caveat.clone(),
                element: None,
            });
        }
    }
    let known: Vec<&str> = rows().iter().map(|r| r.path.as_str()).chain(VIRTUAL.iter().map(|v| v.name)).collect();
    Err(PathError::Unknown(crate::diag::closest(path, known).map(str::to_string)))
}

/// The name generated code gives the element of the `some` at nesting `depth` (1 outermost).
pub fn element_var(depth: usize) -> String {
    format!("_e{depth}")
}

/// Resolve a path relative to the element of the `some` at nesting `depth`: any well-formed
/// path is allowed (elements are free-form JSON).
pub fn element(path: &str, depth: usize) -> Result<Field, PathError> {
    let segs = parse_path(path)?;
    let var = element_var(depth);
    let mapping = Mapping::Element { var: var.clone(), rest: segs.clone() };
    Ok(Field {
        path: path.to_string(),
        segs,
        kind: Kind::Any,
        maps: crate::vendors::FieldMaps::element(mapping),
        case_fixed: false,
        caveat: None,
        virtual_field: None,
        element: Some(var),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_paths_below_a_row() {
        let f = resolve("eventName").unwrap();
        assert!(f.case_fixed);
        let f = resolve("resources[0].ARN").unwrap();
        assert_eq!(f.segs, vec![Seg::Key("resources".into()), Seg::Index(0), Seg::Key("ARN".into())]);
    }

    #[test]
    fn unknown_paths_suggest_the_closest() {
        assert_eq!(resolve("eventNam"), Err(PathError::Unknown(Some("eventName".into()))));
        assert_eq!(resolve("eventName.x"), Err(PathError::Unknown(Some("eventName".into()))));
        assert!(matches!(resolve("a..b"), Err(PathError::Syntax(_))));
        assert!(matches!(resolve("a[x]"), Err(PathError::Syntax(_))));
    }

}
