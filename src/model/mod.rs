//! The canonical rule model: what a rule file says, as data. No logic lives here.
//!
//! Input: nothing (these are the types `load` fills from YAML). Output: [`RuleDoc`], with a
//! [`Spanned`] wrapper on every value that validation may need to point at.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
pub use serde_saphyr::Spanned;

pub mod doc;

/// A JSON-like value as written in YAML (`serde_json::Value`, order preserved).
pub type Value = serde_json::Value;

/// One canonical rule file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDoc {
    /// Stable identifier (GUID, UUID or dotted name). Targets derive their own ids from it
    /// unless `targets.<t>.id` is given.
    pub id: Spanned<String>,
    /// Human title.
    pub name: String,
    /// What the rule detects and why it matters.
    pub description: String,
    /// info | low | medium | high | critical.
    pub severity: Spanned<Severity>,
    /// 0..=100; defaults to the top of the severity's band (21/47/73/99, info 0).
    #[serde(default)]
    pub risk_score: Option<Spanned<u32>>,
    /// Authors, in order.
    #[serde(default)]
    pub authors: Vec<String>,
    /// Licence of the rule text.
    #[serde(default)]
    pub license: Option<String>,
    /// URLs.
    #[serde(default)]
    pub references: Vec<String>,
    /// Known benign causes.
    #[serde(default)]
    pub false_positives: Vec<String>,
    /// Free tags (target-neutral).
    #[serde(default)]
    pub tags: Vec<String>,
    /// ATT&CK mapping.
    #[serde(default)]
    pub attack: Attack,
    /// Creation date, YYYY-MM-DD.
    #[serde(default)]
    pub created: Option<Spanned<String>>,
    /// Last change, YYYY-MM-DD.
    #[serde(default)]
    pub updated: Option<Spanned<String>>,
    /// Rule version, X.Y.Z.
    #[serde(default)]
    pub version: Option<Spanned<String>>,
    /// Maturity.
    #[serde(default)]
    pub status: Option<Status>,
    /// What the rule is: an alerting rule (`detection`, the default) or a query an analyst runs
    /// on demand (`hunting`: no schedule, no alert; a Sentinel hunting query). Targets without a
    /// hunting-query format skip a hunting rule, saying so.
    #[serde(default)]
    pub kind: RuleKind,
    /// The log source; only `aws.cloudtrail` today.
    pub logsource: Spanned<String>,
    /// Named value lists, referenced by conditions as `list: NAME`.
    #[serde(default)]
    pub lists: IndexMap<String, Spanned<Vec<Value>>>,
    /// Lists whose values the platform reads from a URL each time the rule runs (Sentinel
    /// `externaldata`), referenced like `lists:` by `list: NAME`, with `op: in` only. Their
    /// values are not part of the rule: a test gives the contents it assumes (`tests[].lists`).
    #[serde(default)]
    pub external_lists: IndexMap<String, Spanned<ExternalList>>,
    /// The condition an event must meet (with `correlation`: every event of every step, and
    /// optional there: the steps may hold all the conditions).
    #[serde(default)]
    pub detection: Option<Spanned<CondNode>>,
    /// Several events, one per step, that together make the detection: a sequence of steps
    /// whose events share the `by` values and fall within `within` of the first.
    #[serde(default)]
    pub correlation: Option<Spanned<Correlation>>,
    /// Alert only on new terms: an event meeting the detection whose `by` values (all present,
    /// none empty) no earlier event meeting it had within `history` before it (Elastic's new
    /// terms rule; a first-seen query in Sentinel).
    #[serde(default)]
    pub new_terms: Option<Spanned<NewTerms>>,
    /// Allow-lists: events matching any entry are suppressed. Entries usually start empty and
    /// are filled per deployment (Panther reads them from a module constant that tests can mock).
    #[serde(default)]
    pub allowlists: IndexMap<String, Spanned<Allowlist>>,
    /// What the alert carries.
    #[serde(default)]
    pub alert: Alert,
    /// Sample events with the expected verdict.
    #[serde(default)]
    pub tests: Vec<Spanned<TestCase>>,
    /// Settings only one vendor has.
    #[serde(default)]
    pub targets: crate::vendors::TargetSettings,
}

/// A list read from a URL when the rule runs: one value per record, from one column.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalList {
    /// Where the list is read from (`https://...`).
    pub url: Spanned<String>,
    /// The name of the column the values are in (Sentinel's `externaldata (NAME:string)`: the
    /// file's first column).
    pub column: Spanned<String>,
    /// The file's first record is a header, not a value (Kusto's `ignoreFirstRecord`).
    #[serde(default)]
    pub header: bool,
    /// The file format as Kusto names it (`csv` when not given; `txt`, `tsv`, `json`, ...).
    #[serde(default)]
    pub format: Option<Spanned<String>>,
}

/// Severity, in the canonical vocabulary.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Informational.
    Info,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

impl Severity {
    /// The canonical word (`info`, `low`, `medium`, `high`, `critical`), as rules write it.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// A correlation of several events (`correlation`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Correlation {
    /// `sequence`: the steps' events in this order, each strictly later than the one before.
    #[serde(rename = "type")]
    pub kind: Spanned<CorrelationKind>,
    /// Fields whose values every step's event shares (present and not empty in each).
    #[serde(default)]
    pub by: Vec<Spanned<String>>,
    /// The longest time from the first step's event to the last (`30m`, `1h`, `1d`).
    pub within: Spanned<String>,
    /// The steps, at least two.
    pub steps: Vec<Spanned<CorrelationStep>>,
}

/// New terms (`new_terms`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTerms {
    /// The fields whose combination of values must be new (CloudTrail fields).
    pub by: Vec<Spanned<String>>,
    /// How far back an earlier event makes the values known (`7d`, `12h`).
    pub history: Spanned<String>,
}

/// The kinds of correlation.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CorrelationKind {
    /// The steps in order.
    Sequence,
}

/// One step of a correlation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorrelationStep {
    /// The step's name (an identifier).
    pub name: Spanned<String>,
    /// The condition its event meets, besides the rule's `detection`.
    pub detection: Spanned<CondNode>,
}

/// What a rule is (`kind`).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RuleKind {
    /// An alerting rule, run on a schedule.
    #[default]
    Detection,
    /// A hunting query, run by an analyst.
    Hunting,
}

/// Maturity.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// In production use.
    Stable,
    /// Being tried.
    Experimental,
    /// Under development.
    Development,
    /// Kept for history.
    Deprecated,
}

/// ATT&CK tactics and (sub-)techniques, by id.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attack {
    /// Tactic ids, `TA0005`.
    #[serde(default)]
    pub tactics: Vec<Spanned<String>>,
    /// Technique or sub-technique ids, `T1562` or `T1562.007`.
    #[serde(default)]
    pub techniques: Vec<Spanned<String>>,
}

/// One node of the condition tree. Exactly one shape is used per node:
/// `all`, `any`, `not`, `request_succeeded`, `some` (an element quantifier), `opaque` or `field`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CondNode {
    /// Every child must hold.
    #[serde(default)]
    pub all: Option<Vec<Spanned<CondNode>>>,
    /// At least one child must hold.
    #[serde(default)]
    pub any: Option<Vec<Spanned<CondNode>>>,
    /// The child must not hold.
    #[serde(default)]
    pub not: Option<Box<Spanned<CondNode>>>,
    /// `true`: the API call succeeded (no errorCode and no errorMessage); `false`: it failed.
    #[serde(default)]
    pub request_succeeded: Option<Spanned<bool>>,
    /// The field (raw CloudTrail JSON path) a predicate tests.
    #[serde(default)]
    pub field: Option<Spanned<String>>,
    /// The comparison.
    #[serde(default)]
    pub op: Option<Spanned<Op>>,
    /// One value.
    #[serde(default)]
    pub value: Option<Spanned<Value>>,
    /// Several values: the predicate holds if it holds for any of them.
    #[serde(default)]
    pub values: Option<Spanned<Vec<Value>>>,
    /// Values from a named list (`lists:`).
    #[serde(default)]
    pub list: Option<Spanned<String>>,
    /// Another field to compare with (`op: eq` only): holds when both have a non-empty value
    /// and the values are equal.
    #[serde(default, rename = "ref")]
    pub ref_field: Option<Spanned<String>>,
    /// String comparisons: `sensitive` (default) or `insensitive`.
    #[serde(default)]
    pub case: Option<Case>,
    /// Logic kept in one vendor's language (an import that could not be made structured).
    #[serde(default)]
    pub opaque: Option<Spanned<Opaque>>,
    /// An element quantifier: at least one element of an array satisfies `where`.
    #[serde(default)]
    pub some: Option<Spanned<SomeNode>>,
}

/// `some: {field, decode, path, where}`: the value at `field` (decoded from JSON text when
/// `decode: json`), then at `path` inside it, is a list of elements (an array's items, or the
/// value itself when it is not an array; none when absent); the condition holds when at least
/// one element satisfies `where`, whose field paths are relative to the element.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SomeNode {
    /// The field holding the elements (a raw CloudTrail path, or a path relative to the
    /// enclosing element inside another `some`).
    pub field: Spanned<String>,
    /// `json`: the field holds JSON text (CloudTrail writes policy documents so); it is
    /// decoded first. A value that is already an object or array is used as it is.
    #[serde(default)]
    pub decode: Option<Spanned<Decode>>,
    /// A path inside the (decoded) value leading to the elements (`Statement`).
    #[serde(default)]
    pub path: Option<Spanned<String>>,
    /// The condition on one element.
    #[serde(rename = "where")]
    pub cond: Box<Spanned<CondNode>>,
}

/// How a `some` field's value is decoded.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decode {
    /// JSON text.
    Json,
}

/// A condition written in one target's language, kept as it was imported. Only the target
/// that speaks `lang` can build the rule; the canonical evaluator cannot decide it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Opaque {
    /// The language of `text`.
    pub lang: OpaqueLang,
    /// A boolean expression (KQL, Kibana KQL, EQL/ES|QL condition or Python over `event`).
    pub text: Spanned<String>,
    /// Why it was not made structured.
    pub reason: String,
}

/// The languages an opaque condition can be written in.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, strum::IntoStaticStr, Serialize)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum OpaqueLang {
    /// Sentinel's Kusto (a `where` expression over `AWSCloudTrail` columns).
    Kql,
    /// Elastic's Kibana KQL.
    Kuery,
    /// Elastic EQL (a condition; `any where` is implied).
    Eql,
    /// Elastic ES|QL (a `where` condition).
    Esql,
    /// Panther Python (an expression over `event`, with `targets.panther.prelude`).
    Python,
}

/// Comparison operators. Semantics are in the README ("Condition semantics").
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, strum::EnumIter, strum::IntoStaticStr)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Op {
    /// Equal to the value (string, number or boolean).
    Eq,
    /// Equal to one of `values` / `list`.
    In,
    /// Substring.
    Contains,
    /// Prefix.
    Startswith,
    /// Suffix.
    Endswith,
    /// Whole-value glob: `*` any run, `?` one character.
    Glob,
    /// Regular expression (RE2 syntax, unanchored search).
    Regex,
    /// The field is present and not null (`value: false` for absent).
    Exists,
    /// The field is absent, null or the empty string (`value: false` for non-empty).
    Empty,
    /// Numeric less-than.
    Lt,
    /// Numeric less-or-equal.
    Le,
    /// Numeric greater-than.
    Gt,
    /// Numeric greater-or-equal.
    Ge,
    /// IP address inside a CIDR block.
    Cidr,
    /// Some key, or some scalar value (its JSON text), anywhere below the field contains the
    /// text: "the request parameters mention X".
    Mentions,
}

/// Case sensitivity of a string comparison.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Case {
    /// Exact (default).
    #[default]
    Sensitive,
    /// ASCII/Unicode case folded.
    Insensitive,
}

/// An allow-list: entries of `key -> glob`; an event matching every key of one entry is allowed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allowlist {
    /// Entry key -> field it is matched against (glob, case-sensitive).
    pub keys: IndexMap<String, Spanned<String>>,
    /// The entries shipped with the rule (often none).
    #[serde(default)]
    pub entries: Vec<IndexMap<String, String>>,
}

/// What the alert carries.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alert {
    /// Derived fields, in steps; each step assigns one or more names from expressions.
    /// Later steps see earlier names.
    #[serde(default)]
    pub derive: Vec<IndexMap<String, Spanned<Expr>>>,
    /// Group matching events (Sentinel summarize, Panther dedup).
    #[serde(default)]
    pub aggregate: Option<Aggregate>,
    /// Entities (Sentinel entity mappings).
    #[serde(default)]
    pub entities: Vec<Entity>,
    /// Custom details: name -> field or derived name.
    #[serde(default)]
    pub details: IndexMap<String, Spanned<String>>,
    /// Alert title; `{name}` inserts a field or derived value.
    #[serde(default)]
    pub title: Option<Spanned<String>>,
    /// Alert description; `{name}` inserts a field or derived value.
    #[serde(default)]
    pub description: Option<Spanned<String>>,
    /// Fields whose values make up the dedup key (Panther `dedup`).
    #[serde(default)]
    pub dedup: Vec<Spanned<String>>,
    /// Fields the alert context carries (Panther `alert_context`).
    #[serde(default)]
    pub context: Vec<Spanned<String>>,
    /// The alert's result columns, in order: fields, derived names or measures (Sentinel
    /// `project`); empty: every column. Panther and Elastic alerts carry the whole event.
    #[serde(default)]
    pub columns: Vec<Spanned<String>>,
    /// `true`: one result row per distinct combination of `columns` (Sentinel `distinct`).
    #[serde(default)]
    pub distinct: Option<Spanned<bool>>,
}

/// A derived-field expression.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum Expr {
    /// A field or an earlier derived name.
    Ref(String),
    /// A string constant.
    Const(String),
    /// The first non-empty of the arguments.
    Coalesce(Vec<Expr>),
    /// Split a string and take one part (`index`, negative counts from the end).
    Split {
        /// The input.
        of: Box<Expr>,
        /// The separator.
        sep: String,
        /// Which part.
        index: i64,
    },
    /// The part before the first `sep`, or the whole value if `sep` is absent.
    Before {
        /// The input.
        of: Box<Expr>,
        /// The separator.
        sep: String,
    },
    /// The second `sep`-separated part, or "" if `sep` is absent.
    After {
        /// The input.
        of: Box<Expr>,
        /// The separator.
        sep: String,
    },
    /// Everything after the first `sep`, or the whole value if `sep` is absent.
    AfterFirst {
        /// The input.
        of: Box<Expr>,
        /// The separator.
        sep: String,
    },
    /// The first branch whose condition holds.
    Case {
        /// Condition/result pairs.
        when: Vec<CaseArm>,
        /// Otherwise.
        #[serde(rename = "else")]
        otherwise: Box<Expr>,
    },
}

/// One arm of a `case` expression.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CaseArm {
    /// Input compared.
    #[serde(rename = "if")]
    pub test: ExprTest,
    /// Result when it holds.
    pub then: Expr,
}

/// The tests a `case` arm can make.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum ExprTest {
    /// The field or name equals the constant (case-sensitive).
    Eq {
        /// Field or derived name.
        of: String,
        /// Constant.
        value: String,
    },
    /// The field or name is absent, null or "".
    Empty(String),
}

/// Aggregation of matching events.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Aggregate {
    /// Output name -> measure.
    pub measures: IndexMap<String, Measure>,
    /// Group-by fields or derived names.
    pub by: Vec<Spanned<String>>,
    /// Alert only for groups with more events than this (count threshold).
    #[serde(default)]
    pub threshold: Option<u32>,
    /// Derive steps on the aggregated rows: they see the group-by fields, the measures and
    /// the names of earlier steps (Sentinel `extend` after the `summarize`).
    #[serde(default)]
    pub derive: Vec<IndexMap<String, Spanned<Expr>>>,
    /// Alert only for groups whose `distinct` measures reach these minimums: measure name ->
    /// at least this many distinct values.
    #[serde(default)]
    pub min_distinct: IndexMap<String, Spanned<u32>>,
    /// Groups also split by time: bins of this length from 00:00 UTC (`1h`: each clock hour
    /// counts on its own; Sentinel `bin(TimeGenerated, 1h)` among the group-by keys).
    #[serde(default)]
    pub bin: Option<Spanned<String>>,
}

/// An aggregate measure.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum Measure {
    /// Number of events.
    Count,
    /// Smallest value of a field.
    Min(String),
    /// Largest value of a field.
    Max(String),
    /// Number of distinct non-empty values of a field (each element of an array counts).
    Distinct(String),
    /// Largest value of a field; the group's row carries every field of the event that has it
    /// (Sentinel `arg_max(f, *)`). At most one `latest` or `earliest` per aggregate.
    Latest(String),
    /// Smallest value of a field; the group's row carries every field of the event that has
    /// it (Sentinel `arg_min(f, *)`).
    Earliest(String),
    /// The group's distinct values of a field, as a list for the alert to carry (Sentinel
    /// `make_set(f)`: a string column holds an absent field as the empty value, which is then
    /// one of the values). Alert content only: no threshold tests it.
    Values(String),
}

impl Measure {
    /// A measure that brings a whole event's fields into the group's row.
    pub fn is_row(&self) -> bool {
        matches!(self, Measure::Latest(_) | Measure::Earliest(_))
    }
}

/// An entity the alert names.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entity {
    /// account | ip | host | url | cloud_application | ...
    #[serde(rename = "type")]
    pub kind: Spanned<String>,
    /// Identifier (snake_case) -> field or derived name.
    pub fields: IndexMap<String, Spanned<String>>,
}

/// A sample event with the expected verdict.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    /// Test name.
    pub name: String,
    /// Should the rule match?
    pub expect: bool,
    /// Allow-list contents for this test (name -> entries), in place of the shipped entries.
    #[serde(default)]
    pub allowlists: IndexMap<String, Vec<IndexMap<String, String>>>,
    /// The contents of external lists (`external_lists:`) this test assumes: name -> values
    /// (`""` for an empty record, which matches an absent or empty field). An external list the
    /// test does not name is empty.
    #[serde(default)]
    pub lists: IndexMap<String, Vec<String>>,
    /// Values the platform looks up at ingestion (enrichment virtual fields such as
    /// `@source_as_org`), by field name; `null` when the platform finds none. Conditions on an
    /// enrichment field the test does not list are undecided.
    #[serde(default)]
    pub enrichment: IndexMap<String, Value>,
    /// The raw CloudTrail event; for a rule with `correlation`, a list of events (also written
    /// `events:`) in the order they happened.
    #[serde(alias = "events")]
    pub event: Value,
}
