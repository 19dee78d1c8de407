//! Kibana KQL (`kuery`): parse query text into a located AST, print it back, and evaluate it
//! against an Elasticsearch document with Kibana's semantics.
//!
//! Three functions, one per stage:
//!
//! | function | input → output |
//! |---|---|
//! | [`parse`] | kuery text → [`Query`] (every node with its byte [`Span`]) or a [`ParseError`] |
//! | [`to_string`] | [`Query`] → canonical kuery text (`parse(to_string(q))` gives `q` back); the one kuery printer and value quoter |
//! | [`eval`] | [`Query`] × document `_source` × field types → does the document match? |
//!
//! # Grammar
//!
//! The parser follows Kibana 8.x's `grammar.peggy` (`kbn-es-query`); Elastic detection-rules'
//! `kql.g` (lark) accepts a subset of it.
//!
//! ```text
//! query     = or
//! or        = and ("or" and)*            keywords are case-insensitive and need white space
//! and       = not ("and" not)*           on both sides (`a:b or(c:d)` is an error, as in Kibana)
//! not       = "not" sub | sub
//! sub       = "(" or ")" | field ":" "{" or "}" | field range_op literal | field ":" values | value
//! values    = "(" or_values ")" | value  (or_values / and_values / not_values mirror or / and / not)
//! range_op  = "<=" | ">=" | "<" | ">"
//! field     = literal                    a field name with an unescaped `*` is refused
//! value     = literal                    an unquoted literal with an unescaped `*` is a wildcard
//! literal   = quoted | unquoted
//! ```
//!
//! - Quoted: `"…"` with the escapes `\"` `\\` `\t` `\n` `\r` `\uXXXX`; any other backslash is
//!   kept as a backslash (Kibana and lark do the same). A quoted value is never a wildcard.
//! - Unquoted: any characters but `\():<>"*{}`, with the escapes `\t` `\r` `\n` (tried first,
//!   so `\not` is a line break followed by `ot`, as in Kibana), `\` + one of `\():<>"*{}`,
//!   `\uXXXX` and `\and` `\or` `\not` (any case); `*` is the wildcard. As in Kibana, an unquoted
//!   literal may run on over white space (`user_agent.original: *S3 Browser*` is one value), up
//!   to a keyword surrounded by white space or a special character, and is trimmed.
//!
//! Where Kibana accepts something odd, the parser is stricter and says why:
//! - An empty query is an error (Kibana reads it as "match everything").
//! - A bare keyword where a value belongs (`field:and`, `field:(a or)`, `a:b and`) is an error
//!   (Kibana would read `and` as the value, or `b and` as one value).
//! - `field: not x` is an error, as in Kibana (lark accepts it): write `not field:x` or
//!   `field:(not x)`.
//! - A field name containing an unescaped `*` (Kibana expands it over the index's fields).
//!
//! And one Kibana quirk is reproduced as an error, because Kibana rejects such queries: `not`
//! followed by white space ends an unquoted literal even in the middle of a word, so
//! `event.action:DoNot and x:y` fails in Kibana. Quote the value or escape the `n` (`\u006e`).
//!
//! # Semantics
//!
//! [`eval`] answers what Elasticsearch would answer for the query Kibana builds, given each
//! field's mapping ([`FieldType`]):
//!
//! - Field lookup: `a.b.c` walks nested objects and also keys containing dots (`{"a.b": {"c":
//!   1}}`); arrays at any level are flattened (the field's values are every leaf reached, as
//!   Elasticsearch indexes them); `null` is absent.
//! - `field:*` (one unquoted `*`) holds if the field has a non-null value, or is an object with
//!   a non-null leaf below it (Elasticsearch's `exists` on an object field or a flattened root).
//! - Keyword and flattened fields compare exactly and case-sensitively with the value's text
//!   (numbers as their JSON text, booleans `true` / `false`). An unquoted value with an
//!   unescaped `*` matches the whole value, `*` being any run of characters (`?` is a plain
//!   character: Kibana escapes it). A flattened root field (`aws.cloudtrail.flattened.
//!   request_parameters: x`) searches every leaf below it. Any element of an array matching
//!   makes the term match.
//! - Boolean fields match `true` / `false` (JSON booleans or the strings `"true"` / `"false"`).
//! - Ip fields match an address or a CIDR block (`source.ip:"10.0.0.0/8"`); IPv4 addresses are
//!   compared as IPv4-mapped IPv6 addresses, as Elasticsearch stores them.
//! - Number fields compare numerically (`22` matches `22.0`).
//! - Ranges (`field > v`): keyword, text and flattened fields compare **lexicographically**
//!   (Elasticsearch's range on a keyword: `"10" < "9"`), number fields numerically, ip fields
//!   by address, boolean fields `false < true`; date and unknown fields numerically when both
//!   sides are numbers, else lexicographically. A `*` in a range value is a plain character.
//! - Where Elasticsearch would reject the query (a wildcard on an ip, number, boolean or date
//!   field; `flag:maybe` on a boolean; a malformed IP), the term matches nothing.
//! - `field:{ q }` (nested) holds if `q` holds for one of the objects at `field`; the field
//!   names in `q` are relative to it.
//!
//! Simplifications:
//! - Text fields are compared like keywords (no analyzer: `message:quick` does not match
//!   "the quick fox").
//! - Date fields compare their text (ISO-8601 timestamps of one format order correctly); no date
//!   math (`now-1d`), formats or time zones.
//! - A value with no field (`foo`) holds if any keyword, text, flattened or unknown leaf of the
//!   document matches it (Kibana searches every field); a lone `*` with no field matches
//!   every document.
//! - Unknown fields compare like keywords, and also numerically when both sides are numbers.

pub(crate) mod eval;
mod parse;
mod print;
#[cfg(test)]
mod tests;

use std::fmt;

pub use eval::eval;
pub(crate) use eval::lookup;
pub use parse::{ParseError, parse};
pub use print::{to_string, to_string_wrapped};

/// A byte range `start..end` in the query text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// Byte offset of the first byte.
    pub start: usize,
    /// Byte offset one past the last byte.
    pub end: usize,
}

impl Span {
    /// The span from `start` to `end`.
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }
}

/// A kuery query: a node of the boolean tree and the text it was parsed from.
///
/// A parenthesised query's span includes its parentheses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// What the node is.
    pub kind: QueryKind,
    /// Where it is.
    pub span: Span,
    /// How it is spelled where kuery allows several spellings (never part of equality).
    pub style: Style,
}

/// How a query node is spelled where kuery allows several spellings of one tree: parentheses
/// beyond those the printer writes anyway (where the tree needs them, and around an `and` or
/// `or` inside another one).
///
/// A style never takes part in equality, and the parser leaves it at its default (the printer's
/// canonical spelling); a builder sets it to reproduce a layout. Whatever the style, the printed
/// text parses back to the same tree.
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    /// Pairs of parentheses around the node (the printer writes at least the ones it needs).
    pub parens: u8,
}

impl PartialEq for Style {
    fn eq(&self, _: &Style) -> bool {
        true
    }
}

impl Eq for Style {}

/// Building trees by hand (a generator's output): nodes without a place in any text.
impl Query {
    /// A node in the printer's own spelling.
    pub fn new(kind: QueryKind, span: Span) -> Query {
        Query { kind, span, style: Style::default() }
    }

    fn built(kind: QueryKind) -> Query {
        Query::new(kind, Span::default())
    }

    /// `field:values`.
    pub fn is(field: Field, values: ValueList) -> Query {
        Query::built(QueryKind::Is { field: Some(field), values })
    }

    /// `a and b and ...` (one item: itself).
    pub fn and(items: Vec<Query>) -> Query {
        Query::join(items, QueryKind::And)
    }

    /// `a or b or ...` (one item: itself).
    pub fn or(items: Vec<Query>) -> Query {
        Query::join(items, QueryKind::Or)
    }

    fn join(mut items: Vec<Query>, kind: fn(Vec<Query>) -> QueryKind) -> Query {
        if items.len() == 1 {
            items.remove(0)
        } else {
            Query::built(kind(items))
        }
    }

    /// `not self`.
    pub fn not(self) -> Query {
        Query::built(QueryKind::Not(Box::new(self)))
    }

    /// The same tree with every span zeroed: spans take part in equality, so two trees say the
    /// same thing when their span-free copies are equal (`parse(to_string(q))` and `q`).
    pub fn without_spans(&self) -> Query {
        let z = Span::default();
        let field = |f: &Field| Field { span: z, ..f.clone() };
        fn values(v: &ValueList) -> ValueList {
            let kind = match &v.kind {
                ValueListKind::Or(items) => ValueListKind::Or(items.iter().map(values).collect()),
                ValueListKind::And(items) => ValueListKind::And(items.iter().map(values).collect()),
                ValueListKind::Not(inner) => ValueListKind::Not(Box::new(values(inner))),
                ValueListKind::One(v) => ValueListKind::One(Value { span: Span::default(), ..v.clone() }),
            };
            ValueList { kind, span: Span::default() }
        }
        let kind = match &self.kind {
            QueryKind::Or(items) => QueryKind::Or(items.iter().map(Query::without_spans).collect()),
            QueryKind::And(items) => QueryKind::And(items.iter().map(Query::without_spans).collect()),
            QueryKind::Not(inner) => QueryKind::Not(Box::new(inner.without_spans())),
            QueryKind::Nested { field: f, query } => QueryKind::Nested { field: field(f), query: Box::new(query.without_spans()) },
            QueryKind::Range { field: f, op, value } => QueryKind::Range { field: field(f), op: *op, value: Value { span: z, ..value.clone() } },
            QueryKind::Is { field: f, values: v } => QueryKind::Is { field: f.as_ref().map(field), values: values(v) },
        };
        Query { kind, span: z, style: self.style }
    }

    /// One more pair of parentheses around the node.
    pub fn paren(mut self) -> Query {
        self.style.parens = self.style.parens.saturating_add(1);
        self
    }
}

impl Field {
    /// A field name (quoted when `quoted`), without a place in any text.
    pub fn new(name: impl Into<String>, quoted: bool) -> Field {
        Field { name: name.into(), quoted, span: Span::default() }
    }
}

impl ValueList {
    /// One value, or `(a or b or ...)` for several.
    pub fn any_of(mut values: Vec<Value>) -> ValueList {
        let one = |v: Value| ValueList { kind: ValueListKind::One(v), span: Span::default() };
        if values.len() == 1 {
            one(values.remove(0))
        } else {
            ValueList { kind: ValueListKind::Or(values.into_iter().map(one).collect()), span: Span::default() }
        }
    }
}

impl Value {
    /// A quoted value (never a wildcard).
    pub fn quoted(s: impl Into<String>) -> Value {
        Value { kind: ValueKind::Quoted(s.into()), span: Span::default() }
    }

    /// An unquoted value: text and `*` wildcards.
    pub fn unquoted(pieces: Vec<Piece>) -> Value {
        Value { kind: ValueKind::Unquoted(pieces), span: Span::default() }
    }
}

/// The kinds of query node (Kibana's `or`, `and`, `not`, `nested`, `range` and `is` functions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryKind {
    /// `a or b or …`: at least one holds (two or more children).
    Or(Vec<Query>),
    /// `a and b and …`: every one holds (two or more children).
    And(Vec<Query>),
    /// `not a`: the child does not hold.
    Not(Box<Query>),
    /// `field:{ query }`: the query holds for one of the objects at `field`.
    Nested {
        /// The nested field.
        field: Field,
        /// The query over each object, with field names relative to `field`.
        query: Box<Query>,
    },
    /// `field < value`, `field <= value`, `field > value`, `field >= value`.
    Range {
        /// The field compared.
        field: Field,
        /// The comparison.
        op: RangeOp,
        /// The bound.
        value: Value,
    },
    /// `field:values`, or a bare value with no field (`field` is `None`).
    Is {
        /// The field, or `None` for a bare value (Kibana searches every field).
        field: Option<Field>,
        /// One value, or a boolean combination of values in parentheses.
        values: ValueList,
    },
}

/// A field name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The name, unescaped (`a\:b` is `a:b`).
    pub name: String,
    /// Written as a quoted string.
    pub quoted: bool,
    /// Where it is.
    pub span: Span,
}

/// The right-hand side of `field:…`: one value or a boolean combination of values
/// (`field:(a or b and not c)`, Kibana's `ListOfValues`).
///
/// A parenthesised group's span includes its parentheses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueList {
    /// What the node is.
    pub kind: ValueListKind,
    /// Where it is.
    pub span: Span,
}

/// The kinds of value-list node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueListKind {
    /// `a or b or …` (two or more children).
    Or(Vec<ValueList>),
    /// `a and b and …` (two or more children).
    And(Vec<ValueList>),
    /// `not a`.
    Not(Box<ValueList>),
    /// One value.
    One(Value),
}

/// A value: quoted (never a wildcard) or unquoted (wildcard where it has an unescaped `*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    /// Quoted text or unquoted pieces.
    pub kind: ValueKind,
    /// Where it is (a quoted value's span includes its quotes).
    pub span: Span,
}

/// The two spellings of a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueKind {
    /// `"text"`, unescaped.
    Quoted(String),
    /// Unquoted text and wildcards, unescaped; consecutive text is one piece.
    Unquoted(Vec<Piece>),
}

/// A piece of an unquoted value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Literal text (an escaped `\*` is text).
    Text(String),
    /// An unescaped `*`: any run of characters.
    Star,
}

impl Value {
    /// The value's text, with `*` for each wildcard (lossy: `\*` and `*` both read `*`).
    pub fn text(&self) -> String {
        match &self.kind {
            ValueKind::Quoted(s) => s.clone(),
            ValueKind::Unquoted(pieces) => pieces
                .iter()
                .map(|p| match p {
                    Piece::Text(t) => t.as_str(),
                    Piece::Star => "*",
                })
                .collect(),
        }
    }

    /// Unquoted with at least one unescaped `*`.
    pub fn is_wildcard(&self) -> bool {
        matches!(&self.kind, ValueKind::Unquoted(p) if p.contains(&Piece::Star))
    }

    /// A lone unquoted `*`: `field:*` means the field exists.
    pub fn is_exists(&self) -> bool {
        matches!(&self.kind, ValueKind::Unquoted(p) if p.as_slice() == [Piece::Star])
    }
}

/// A range comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeOp {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl RangeOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            RangeOp::Lt => "<",
            RangeOp::Le => "<=",
            RangeOp::Gt => ">",
            RangeOp::Ge => ">=",
        }
    }

    /// Whether `doc_value.cmp(bound)` satisfies the operator.
    pub fn holds(self, ord: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        match self {
            RangeOp::Lt => ord == Less,
            RangeOp::Le => matches!(ord, Less | Equal),
            RangeOp::Gt => ord == Greater,
            RangeOp::Ge => matches!(ord, Greater | Equal),
        }
    }
}

/// A field's Elasticsearch mapping type, as far as kuery's semantics depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// `keyword`, `constant_keyword`, `wildcard`: exact, case-sensitive text.
    Keyword,
    /// `text` and its kin: treated like a keyword (no analyzer).
    Text,
    /// A leaf (or the root) of a `flattened` field: leaves are indexed as keywords (`true` is
    /// `"true"`, `22` is `"22"`).
    Flattened,
    /// `boolean`.
    Boolean,
    /// `long`, `integer`, `double`, … : numeric comparison.
    Number,
    /// `ip`: addresses and CIDR blocks.
    Ip,
    /// `date`, `date_nanos`: compared as text (see the module docs).
    Date,
    /// Not in the mapping: keyword comparison, numeric when both sides are numbers.
    Unknown,
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&to_string(self))
    }
}
