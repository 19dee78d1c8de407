//! The canonical rule as an importer writes it: the same schema as [`super::RuleDoc`], as
//! serde-serialisable types in the model's key order (empty parts left out).
//!
//! Input: what an importer read from a vendor file. Output: a `serde_json::Value` in the model's
//! key order ([`Doc::to_value`]), which `import::to_yaml` writes as canonical YAML. Derived-field
//! expressions and measures are the model's own types ([`super::Expr`], [`super::Measure`]);
//! condition nodes are [`Node`].

use indexmap::IndexMap;
use serde::Serialize;

use super::{Case, Value};

/// The parts of a canonical rule an importer fills in.
#[derive(Debug, Clone, Default)]
pub struct Doc {
    /// `id`.
    pub id: String,
    /// `name`.
    pub name: String,
    /// `description`.
    pub description: String,
    /// `severity` (canonical vocabulary).
    pub severity: String,
    /// `risk_score`.
    pub risk_score: Option<u64>,
    /// `authors`.
    pub authors: Vec<String>,
    /// `license`.
    pub license: Option<String>,
    /// `references`.
    pub references: Vec<String>,
    /// `false_positives`.
    pub false_positives: Vec<String>,
    /// `tags`.
    pub tags: Vec<String>,
    /// `attack.tactics`.
    pub tactics: Vec<String>,
    /// `attack.techniques`.
    pub techniques: Vec<String>,
    /// `created` (YYYY-MM-DD).
    pub created: Option<String>,
    /// `updated` (YYYY-MM-DD).
    pub updated: Option<String>,
    /// `version`.
    pub version: Option<String>,
    /// `status`.
    pub status: Option<String>,
    /// `kind` (`hunting`; none: a detection rule).
    pub kind: Option<String>,
    /// `lists`: name → values (JSON scalars).
    pub lists: IndexMap<String, Vec<Value>>,
    /// `external_lists`: name → `{url, column, header, format}`.
    pub external_lists: IndexMap<String, Value>,
    /// `detection`.
    pub detection: Node,
    /// `correlation` (`{type, by, within, steps: [{name, detection}]}`).
    pub correlation: Option<Value>,
    /// `new_terms` (`{by, history}`).
    pub new_terms: Option<Value>,
    /// `allowlists`: name → allow-list.
    pub allowlists: IndexMap<String, Allowlist>,
    /// `alert` (`derive`, `aggregate`, `entities`, `details`, `title`, `description` ...).
    pub alert: serde_json::Map<String, Value>,
    /// `tests`.
    pub tests: Vec<TestCase>,
    /// `targets` (`{elastic: {...}}`).
    pub targets: serde_json::Map<String, Value>,
}

/// [`Doc`] as it is written: the model's keys and order.
#[derive(Serialize)]
struct Written<'a> {
    id: &'a str,
    name: &'a str,
    description: &'a str,
    severity: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    risk_score: Option<u64>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    authors: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    license: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    references: &'a [String],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    false_positives: &'a [String],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    tags: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    attack: Option<Attack<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    created: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    updated: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'a str>,
    logsource: &'static str,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    lists: &'a IndexMap<String, Vec<Value>>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    external_lists: &'a IndexMap<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detection: Option<&'a Node>,
    #[serde(skip_serializing_if = "Option::is_none")]
    correlation: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    new_terms: Option<&'a Value>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    allowlists: &'a IndexMap<String, Allowlist>,
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    alert: &'a serde_json::Map<String, Value>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    tests: &'a [TestCase],
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    targets: &'a serde_json::Map<String, Value>,
}

/// `attack:`.
#[derive(Serialize)]
struct Attack<'a> {
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    tactics: &'a [String],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    techniques: &'a [String],
}

impl Doc {
    /// The document as a JSON value, keys in the model's order, empty parts left out.
    pub fn to_value(&self) -> Value {
        let attack = (!self.tactics.is_empty() || !self.techniques.is_empty()).then_some(Attack { tactics: &self.tactics, techniques: &self.techniques });
        let w = Written {
            id: &self.id,
            name: &self.name,
            description: &self.description,
            severity: &self.severity,
            risk_score: self.risk_score,
            authors: &self.authors,
            license: self.license.as_deref(),
            references: &self.references,
            false_positives: &self.false_positives,
            tags: &self.tags,
            attack,
            created: self.created.as_deref(),
            updated: self.updated.as_deref(),
            version: self.version.as_deref(),
            status: self.status.as_deref(),
            kind: self.kind.as_deref(),
            logsource: "aws.cloudtrail",
            lists: &self.lists,
            external_lists: &self.external_lists,
            // a correlation whose steps hold every condition has no detection of its own
            detection: (!(self.correlation.is_some() && self.detection == Node::all(vec![]))).then_some(&self.detection),
            correlation: self.correlation.as_ref(),
            new_terms: self.new_terms.as_ref(),
            allowlists: &self.allowlists,
            alert: &self.alert,
            tests: &self.tests,
            targets: &self.targets,
        };
        to_value(&w)
    }
}

/// A serialisable value as JSON (these types only hold strings, numbers, booleans, JSON values
/// and maps with string keys, which always serialise).
pub fn to_value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// One condition node, as written (the shapes [`super::CondNode`] reads).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Node {
    /// `all: [...]`.
    All {
        /// The children.
        all: Vec<Node>,
    },
    /// `any: [...]`.
    Any {
        /// The children.
        any: Vec<Node>,
    },
    /// `not: node`.
    Not {
        /// The child.
        not: Box<Node>,
    },
    /// `request_succeeded: bool`.
    Succeeded {
        /// true: the call succeeded.
        request_succeeded: bool,
    },
    /// A predicate.
    Pred(Pred),
    /// `some: {field, decode, path, where}`.
    Some {
        /// The quantifier.
        some: Box<SomeNode>,
    },
    /// `opaque: {lang, text, reason}`.
    Opaque {
        /// The vendor text.
        opaque: Opaque,
    },
    /// A node an importer still builds as a JSON value (the Sentinel, Elastic and Panther
    /// importers' own condition trees, until they build [`Node`]s).
    Json(Value),
}

impl Default for Node {
    fn default() -> Self {
        Node::Json(Value::Null)
    }
}

/// `{field, op, value | values | list | ref, case}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pred {
    /// The field (raw CloudTrail path).
    pub field: String,
    /// The operator (`eq`, `in`, `contains` ...).
    pub op: String,
    /// One value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    /// Several values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<Value>>,
    /// A named list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub list: Option<String>,
    /// Another field.
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub ref_field: Option<String>,
    /// `insensitive` string comparison.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case: Option<Case>,
}

/// `some: {field, decode, path, where}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SomeNode {
    /// The field holding the elements.
    pub field: String,
    /// `json` when the field holds JSON text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decode: Option<super::Decode>,
    /// The path to the elements inside the (decoded) value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The condition on one element.
    #[serde(rename = "where")]
    pub cond: Node,
}

/// `opaque: {lang, text, reason}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Opaque {
    /// The vendor language.
    pub lang: super::OpaqueLang,
    /// The vendor text.
    pub text: String,
    /// Why it was not made structured.
    pub reason: String,
}

/// A sample event with the expected verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestCase {
    /// Test name.
    pub name: String,
    /// Should the rule match?
    pub expect: bool,
    /// Allow-list contents for this test: name → entries (JSON objects).
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub allowlists: IndexMap<String, Value>,
    /// The raw event.
    pub event: Value,
}

impl Pred {
    /// `{field, op}` with no value yet.
    pub fn new(field: &str, op: &str) -> Pred {
        Pred { field: field.to_string(), op: op.to_string(), value: None, values: None, list: None, ref_field: None, case: None }
    }
}

impl Node {
    /// A predicate node: `{field, op, value|values, case?}` (`eq` with several values is `in`).
    pub fn pred(field: &str, op: &str, values: Vec<Value>, insensitive: bool) -> Node {
        let op = if op == "eq" && values.len() > 1 { "in" } else { op };
        let (value, values) = match values.len() {
            0 => (None, None),
            1 if op != "in" => (values.into_iter().next(), None),
            _ => (None, Some(values)),
        };
        Node::Pred(Pred {
            field: field.to_string(),
            op: op.to_string(),
            value,
            values,
            list: None,
            ref_field: None,
            case: insensitive.then_some(Case::Insensitive),
        })
    }

    /// `{all: [...]}` (the child itself when there is one).
    pub fn all(mut kids: Vec<Node>) -> Node {
        if kids.len() == 1 { kids.pop().unwrap_or_default() } else { Node::All { all: kids } }
    }

    /// `{any: [...]}` (the child itself when there is one).
    pub fn any(mut kids: Vec<Node>) -> Node {
        if kids.len() == 1 { kids.pop().unwrap_or_default() } else { Node::Any { any: kids } }
    }

    /// `{not: node}`.
    pub fn not(kid: Node) -> Node {
        Node::Not { not: Box::new(kid) }
    }

    /// The node as a JSON value.
    pub fn to_value(&self) -> Value {
        to_value(self)
    }
}

/// `alert.aggregate`.
#[derive(Debug, Clone, Serialize)]
pub struct Aggregate {
    /// Output name → measure.
    pub measures: IndexMap<String, super::Measure>,
    /// Group-by fields or derived names.
    pub by: Vec<String>,
    /// More events than this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<u64>,
    /// Derive steps on the aggregated rows.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub derive: Vec<IndexMap<String, super::Expr>>,
    /// Measure name → at least this many distinct values.
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub min_distinct: IndexMap<String, u64>,
    /// Time bins the groups are also split by (`1h`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bin: Option<String>,
}

/// An allow-list: entry key → field, and the shipped entries.
#[derive(Debug, Clone, Serialize)]
pub struct Allowlist {
    /// Entry key → the field it is matched against.
    pub keys: IndexMap<String, String>,
    /// The shipped entries (JSON objects).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub entries: Vec<Value>,
}

/// An entity the alert names.
#[derive(Debug, Clone, Serialize)]
pub struct Entity {
    /// account | ip | host | url | cloud_application | ...
    #[serde(rename = "type")]
    pub kind: String,
    /// Identifier → field or derived name.
    pub fields: IndexMap<String, String>,
}
