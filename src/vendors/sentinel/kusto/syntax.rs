//! The syntax tree of the Kusto subset: every node carries the byte [`Span`] it was parsed from.

/// A byte range `start..end` in the query text.
///
/// Spans never take part in equality: two trees are equal when they say the same thing, wherever
/// it was written (the round trip `parse(to_string(q)) == q` relies on it).
#[derive(Debug, Clone, Copy, Default)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl PartialEq for Span {
    fn eq(&self, _: &Span) -> bool {
        true
    }
}

impl Eq for Span {}

impl Span {
    /// A span from `start` to `end`.
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    /// The span from the start of `self` to the end of `other`.
    pub fn to(self, other: Span) -> Span {
        Span {
            start: self.start,
            end: other.end.max(self.start),
        }
    }
}

/// A name as written: a column, a `let` name, a table, a function or a parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Ident {
    /// The name (brackets and quotes of `['x y']` removed).
    pub name: String,
    /// Where it was written.
    pub span: Span,
}

/// A query: `let` statements, then one tabular expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// The `let` statements, in order.
    pub lets: Vec<Let>,
    /// The tabular expression whose rows are the result.
    pub body: Expr,
    /// The whole query.
    pub span: Span,
}

/// `let name = value;` (a scalar, a `dynamic([...])` list or a tabular expression).
#[derive(Debug, Clone, PartialEq)]
pub struct Let {
    /// The bound name.
    pub name: Ident,
    /// The bound expression.
    pub value: Expr,
    /// The statement without its `;`.
    pub span: Span,
}

/// An expression, scalar or tabular (a pipe is an expression, as in Kusto.Language).
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    /// What it is.
    pub kind: ExprKind,
    /// Where it was written (parentheses around it excluded).
    pub span: Span,
    /// How it is spelled where KQL allows several spellings (never part of equality).
    pub style: Style,
}

/// Building trees by hand (a generator's output): nodes without a place in any text
/// (`Span::default()`) in the printer's own spelling, and the [`Style`] setters.
impl Expr {
    /// An expression in the printer's own spelling.
    pub fn new(kind: ExprKind, span: Span) -> Expr {
        Expr { kind, span, style: Style::default() }
    }

    fn built(kind: ExprKind) -> Expr {
        Expr::new(kind, Span::default())
    }

    /// A column, `let` name or table.
    pub fn name(n: impl Into<String>) -> Expr {
        Expr::built(ExprKind::Name(n.into()))
    }

    /// A literal.
    pub fn lit(l: Literal) -> Expr {
        Expr::built(ExprKind::Literal(l))
    }

    /// A string literal.
    pub fn string(s: impl Into<String>) -> Expr {
        Expr::lit(Literal::String(s.into()))
    }

    /// `name(args)`.
    pub fn call(name: &str, args: Vec<Expr>) -> Expr {
        Expr::built(ExprKind::Call { name: Ident::new(name), args })
    }

    /// `lhs op rhs`.
    pub fn binary(op: BinOp, lhs: Expr, rhs: Expr) -> Expr {
        Expr::built(ExprKind::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs) })
    }

    /// `lhs op (items)`.
    pub fn in_list(op: ListOp, lhs: Expr, list: Vec<Expr>) -> Expr {
        Expr::built(ExprKind::InList { op, lhs: Box::new(lhs), list })
    }

    /// `self.key` (written `self["key"]` when `key` is not an identifier).
    pub fn member(self, key: impl Into<String>) -> Expr {
        Expr::built(ExprKind::Member { target: Box::new(self), name: Ident::new(key) })
    }

    /// `self[index]`.
    pub fn index(self, index: Expr) -> Expr {
        Expr::built(ExprKind::Index { target: Box::new(self), index: Box::new(index) })
    }

    /// `self | op`.
    pub fn pipe(self, op: OperatorKind) -> Expr {
        Expr::built(ExprKind::Pipe { input: Box::new(self), op: Box::new(Operator::new(op)) })
    }

    /// One more pair of parentheses around the node.
    pub fn paren(mut self) -> Expr {
        self.style.parens = self.style.parens.saturating_add(1);
        self
    }

    /// A string literal in single quotes.
    pub fn single_quoted(mut self) -> Expr {
        self.style.single_quote = true;
        self
    }

    /// An obfuscated string literal (`h"..."`: Kusto keeps its text out of its logs).
    pub fn hidden(mut self) -> Expr {
        self.style.hidden = true;
        self
    }

    /// A space after the opening bracket (a call's `(`, a dynamic array's `[`).
    pub fn padded(mut self) -> Expr {
        self.style.pad = true;
        self
    }

    /// Assigned with no spaces around `=`.
    pub fn tight(mut self) -> Expr {
        self.style.tight = true;
        self
    }
}

impl Ident {
    /// A name without a place in any text.
    pub fn new(name: impl Into<String>) -> Ident {
        Ident { name: name.into(), span: Span::default() }
    }
}

impl Assign {
    /// `name = value`.
    pub fn named(name: impl Into<String>, value: Expr) -> Assign {
        Assign { name: Some(Ident::new(name)), value }
    }

    /// A bare `value`.
    pub fn bare(value: Expr) -> Assign {
        Assign { name: None, value }
    }
}

impl Operator {
    /// An operator without a place in any text.
    pub fn new(kind: OperatorKind) -> Operator {
        Operator { kind, span: Span::default() }
    }
}

/// How a node is spelled where KQL allows several spellings of one tree: parentheses beyond
/// those precedence needs, the quote of a string literal, spacing inside brackets and around an
/// assignment's `=`.
///
/// Like [`Span`], a style never takes part in equality: the parser leaves it at its default (the
/// printer's own spelling), and a builder sets it to reproduce a layout (a vendor's hand-written
/// query, byte for byte). Whatever the style, the printed text parses back to the same tree.
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    /// Pairs of parentheses around the node (the printer writes at least those precedence needs).
    pub parens: u8,
    /// A string literal in single quotes (`'/'`); otherwise double quotes.
    pub single_quote: bool,
    /// An obfuscated string literal (`h"..."`), which Kusto keeps out of its logs.
    pub hidden: bool,
    /// A space after the opening bracket: a call's `(` (`case( a, b, c)`) or a dynamic array's
    /// `[` (`dynamic([ "a", "b"])`).
    pub pad: bool,
    /// An assigned value written right after a `=` with no spaces around it (`Calls=count()`).
    pub tight: bool,
}

impl PartialEq for Style {
    fn eq(&self, _: &Style) -> bool {
        true
    }
}

/// The kinds of expression.
#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    /// A literal value.
    Literal(Literal),
    /// A column, a `let` name or a table.
    Name(String),
    /// `*`, only as a function argument (`arg_max(TimeGenerated, *)`) or in `distinct *`.
    Star,
    /// `name(args)`.
    Call {
        /// The function.
        name: Ident,
        /// The arguments.
        args: Vec<Expr>,
    },
    /// `target.name` or `target.['name']`: a property of a dynamic value.
    Member {
        /// The value.
        target: Box<Expr>,
        /// The property.
        name: Ident,
    },
    /// `target[index]`: an array element (negative counts from the end) or a property.
    Index {
        /// The value.
        target: Box<Expr>,
        /// The position or key.
        index: Box<Expr>,
    },
    /// `-x` or `+x`.
    Unary {
        /// The operator.
        op: UnaryOp,
        /// The operand.
        operand: Box<Expr>,
    },
    /// `lhs op rhs`.
    Binary {
        /// The operator.
        op: BinOp,
        /// Left operand.
        lhs: Box<Expr>,
        /// Right operand.
        rhs: Box<Expr>,
    },
    /// `lhs in (a, b, ...)` and the other list operators.
    InList {
        /// The operator.
        op: ListOp,
        /// The tested value.
        lhs: Box<Expr>,
        /// The list: scalars, `let` names of lists or tables, `dynamic([...])` arrays.
        list: Vec<Expr>,
    },
    /// `lhs between (low .. high)` (`!between` when `negated`).
    Between {
        /// `!between`.
        negated: bool,
        /// The tested value.
        lhs: Box<Expr>,
        /// Lower bound (inclusive).
        low: Box<Expr>,
        /// Upper bound (inclusive).
        high: Box<Expr>,
    },
    /// `input | operator`.
    Pipe {
        /// The rows.
        input: Box<Expr>,
        /// What happens to them.
        op: Box<Operator>,
    },
    /// `print a = 1, b = 2`: one row.
    Print(Vec<Assign>),
    /// `datatable (a:string, b:long) [ "x", 1, ... ]`.
    DataTable {
        /// Column names and types.
        columns: Vec<ColumnDecl>,
        /// The values, row after row.
        values: Vec<Expr>,
    },
    /// `externaldata (a:string) [ "uri", ... ] with (k = v, ...)` (parsed, never evaluated).
    ExternalData {
        /// Column names and types.
        columns: Vec<ColumnDecl>,
        /// The storage URIs.
        uris: Vec<Expr>,
        /// The `with (...)` properties.
        props: Vec<(Ident, Expr)>,
    },
    /// A tabular source rulecast reads but does not model (`union isfuzzy=true T, (...)`,
    /// `range`, `search`, `find`): its name and the rest of its text as written (never evaluated,
    /// never imported).
    Unsupported {
        /// `union`, ...
        name: String,
        /// What follows the name, up to the next `|` at its level.
        text: String,
    },
}

/// `name:type` in `datatable` and `externaldata`.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnDecl {
    /// Column name.
    pub name: Ident,
    /// Type name as written (`string`, `long`, ...).
    pub ty: Ident,
}

/// A literal.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// `long(null)`, `datetime(null)`, ... (Kusto's typed nulls).
    Null(ScalarType),
    /// `true` / `false`.
    Bool(bool),
    /// `42`, `0x2a`, `long(42)`, `int(42)`.
    Long(i64),
    /// `1.5`, `1e3`, `real(1)`.
    Real(f64),
    /// `"..."`, `'...'`, `@"..."`, `h"..."`; adjacent literals are joined into one.
    String(String),
    /// `datetime(2024-01-31T10:00:00Z)`: 100-nanosecond ticks since 1970-01-01.
    Datetime(i64),
    /// `1d`, `10m`, `timespan(1.00:00:00)`: 100-nanosecond ticks.
    Timespan(i64),
    /// `dynamic([...])`, `dynamic({...})`, `dynamic(null)`.
    Dynamic(serde_json::Value),
}

/// Kusto's scalar types (for typed nulls).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarType {
    /// `bool`
    Bool,
    /// `int`
    Int,
    /// `long`
    Long,
    /// `real`
    Real,
    /// `decimal`
    Decimal,
    /// `string`
    String,
    /// `datetime`
    Datetime,
    /// `timespan`
    Timespan,
    /// `dynamic`
    Dynamic,
    /// `guid`
    Guid,
}

impl ScalarType {
    /// The type for a type name (`boolean`, `double`, `date`, `time` are synonyms).
    pub fn from_name(name: &str) -> Option<ScalarType> {
        Some(match name {
            "bool" | "boolean" => ScalarType::Bool,
            "int" => ScalarType::Int,
            "long" => ScalarType::Long,
            "real" | "double" => ScalarType::Real,
            "decimal" => ScalarType::Decimal,
            "string" => ScalarType::String,
            "datetime" | "date" => ScalarType::Datetime,
            "timespan" | "time" => ScalarType::Timespan,
            "dynamic" => ScalarType::Dynamic,
            "guid" | "uniqueid" => ScalarType::Guid,
            _ => return None,
        })
    }

    /// The canonical name.
    pub fn name(self) -> &'static str {
        match self {
            ScalarType::Bool => "bool",
            ScalarType::Int => "int",
            ScalarType::Long => "long",
            ScalarType::Real => "real",
            ScalarType::Decimal => "decimal",
            ScalarType::String => "string",
            ScalarType::Datetime => "datetime",
            ScalarType::Timespan => "timespan",
            ScalarType::Dynamic => "dynamic",
            ScalarType::Guid => "guid",
        }
    }
}

/// Prefix operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    /// `-`
    Neg,
    /// `+`
    Plus,
}

/// Binary operators. Their tokens and precedence are in [`BIN_OPS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    EqCi,
    NeCi,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Contains,
    NotContains,
    ContainsCs,
    NotContainsCs,
    Has,
    NotHas,
    HasCs,
    NotHasCs,
    HasPrefix,
    NotHasPrefix,
    HasPrefixCs,
    NotHasPrefixCs,
    HasSuffix,
    NotHasSuffix,
    HasSuffixCs,
    NotHasSuffixCs,
    StartsWith,
    NotStartsWith,
    StartsWithCs,
    NotStartsWithCs,
    EndsWith,
    NotEndsWith,
    EndsWithCs,
    NotEndsWithCs,
    MatchesRegex,
}

/// Precedence levels, loosest first. A pipe is the loosest of all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Prec {
    /// `|`
    Pipe,
    /// `or`
    Or,
    /// `and`
    And,
    /// `==`, `!=`, `=~`, `!~`, the string operators, `in`, `between`, `matches regex`.
    Compare,
    /// `<`, `<=`, `>`, `>=`
    Relational,
    /// `+`, `-`
    Additive,
    /// `*`, `/`, `%`
    Multiplicative,
    /// prefix `-`, `+`
    Unary,
    /// `.name`, `[i]`, calls, literals, names
    Postfix,
}

/// Every binary operator: its token (as printed) and precedence. `<>` also parses as `!=`.
pub const BIN_OPS: &[(BinOp, &str, Prec)] = &[
    (BinOp::Or, "or", Prec::Or),
    (BinOp::And, "and", Prec::And),
    (BinOp::Eq, "==", Prec::Compare),
    (BinOp::Ne, "!=", Prec::Compare),
    (BinOp::EqCi, "=~", Prec::Compare),
    (BinOp::NeCi, "!~", Prec::Compare),
    (BinOp::Lt, "<", Prec::Relational),
    (BinOp::Le, "<=", Prec::Relational),
    (BinOp::Gt, ">", Prec::Relational),
    (BinOp::Ge, ">=", Prec::Relational),
    (BinOp::Add, "+", Prec::Additive),
    (BinOp::Sub, "-", Prec::Additive),
    (BinOp::Mul, "*", Prec::Multiplicative),
    (BinOp::Div, "/", Prec::Multiplicative),
    (BinOp::Mod, "%", Prec::Multiplicative),
    (BinOp::Contains, "contains", Prec::Compare),
    (BinOp::NotContains, "!contains", Prec::Compare),
    (BinOp::ContainsCs, "contains_cs", Prec::Compare),
    (BinOp::NotContainsCs, "!contains_cs", Prec::Compare),
    (BinOp::Has, "has", Prec::Compare),
    (BinOp::NotHas, "!has", Prec::Compare),
    (BinOp::HasCs, "has_cs", Prec::Compare),
    (BinOp::NotHasCs, "!has_cs", Prec::Compare),
    (BinOp::HasPrefix, "hasprefix", Prec::Compare),
    (BinOp::NotHasPrefix, "!hasprefix", Prec::Compare),
    (BinOp::HasPrefixCs, "hasprefix_cs", Prec::Compare),
    (BinOp::NotHasPrefixCs, "!hasprefix_cs", Prec::Compare),
    (BinOp::HasSuffix, "hassuffix", Prec::Compare),
    (BinOp::NotHasSuffix, "!hassuffix", Prec::Compare),
    (BinOp::HasSuffixCs, "hassuffix_cs", Prec::Compare),
    (BinOp::NotHasSuffixCs, "!hassuffix_cs", Prec::Compare),
    (BinOp::StartsWith, "startswith", Prec::Compare),
    (BinOp::NotStartsWith, "!startswith", Prec::Compare),
    (BinOp::StartsWithCs, "startswith_cs", Prec::Compare),
    (BinOp::NotStartsWithCs, "!startswith_cs", Prec::Compare),
    (BinOp::EndsWith, "endswith", Prec::Compare),
    (BinOp::NotEndsWith, "!endswith", Prec::Compare),
    (BinOp::EndsWithCs, "endswith_cs", Prec::Compare),
    (BinOp::NotEndsWithCs, "!endswith_cs", Prec::Compare),
    (BinOp::MatchesRegex, "matches regex", Prec::Compare),
];

impl BinOp {
    /// The token as printed.
    pub fn token(self) -> &'static str {
        BIN_OPS
            .iter()
            .find(|(op, _, _)| *op == self)
            .map_or("?", |(_, t, _)| t)
    }

    /// The precedence level.
    pub fn prec(self) -> Prec {
        BIN_OPS
            .iter()
            .find(|(op, _, _)| *op == self)
            .map_or(Prec::Compare, |(_, _, p)| *p)
    }
}

/// Operators whose right side is a parenthesized list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum ListOp {
    In,
    NotIn,
    InCi,
    NotInCi,
    HasAny,
    HasAll,
}

/// Every list operator and its token.
pub const LIST_OPS: &[(ListOp, &str)] = &[
    (ListOp::In, "in"),
    (ListOp::NotIn, "!in"),
    (ListOp::InCi, "in~"),
    (ListOp::NotInCi, "!in~"),
    (ListOp::HasAny, "has_any"),
    (ListOp::HasAll, "has_all"),
];

impl ListOp {
    /// The token as printed.
    pub fn token(self) -> &'static str {
        LIST_OPS
            .iter()
            .find(|(op, _)| *op == self)
            .map_or("?", |(_, t)| t)
    }
}

/// `name = value` or a bare `value` (the column name is then derived from it).
#[derive(Debug, Clone, PartialEq)]
pub struct Assign {
    /// The column name, if written.
    pub name: Option<Ident>,
    /// The value.
    pub value: Expr,
}

/// A tabular operator after `|`.
#[derive(Debug, Clone, PartialEq)]
pub struct Operator {
    /// What it does.
    pub kind: OperatorKind,
    /// From the operator's name to its end (the `|` excluded).
    pub span: Span,
}

/// The tabular operators.
#[derive(Debug, Clone, PartialEq)]
pub enum OperatorKind {
    /// `where predicate` (also `filter`).
    Where(Expr),
    /// An operator of Kusto's language that rulecast reads but does not model (`evaluate
    /// bag_unpack(x)`, `lookup`, `parse`, `make-series`, a tuple `extend (a, b) = f(x)`, a
    /// `distinct` with computed columns): its name and its text as written, so that a query
    /// using it is "not importable" (E502), not "not KQL" (E501). Never evaluated.
    Unsupported {
        /// `evaluate`, `extend`, ...
        name: String,
        /// What follows the name, up to the next `|` at its level.
        text: String,
    },
    /// `extend a = e, ...`: each assignment sees the ones before it.
    Extend(Vec<Assign>),
    /// `project a, b = e, ...`.
    Project(Vec<Assign>),
    /// `project-away a, b*`.
    ProjectAway(Vec<Ident>),
    /// `project-keep a, b*`.
    ProjectKeep(Vec<Ident>),
    /// `project-rename new = old, ...`: (new, old).
    ProjectRename(Vec<(Ident, Ident)>),
    /// `summarize aggregates [by groups]`.
    Summarize {
        /// `Name = count()`, `make_set(x)`, ...
        aggregates: Vec<Assign>,
        /// The `by` expressions.
        by: Vec<Assign>,
    },
    /// `take n` (also `limit n`).
    Take(Expr),
    /// `distinct a, b` or `distinct *`.
    Distinct(Vec<Expr>),
    /// `mv-expand [params] [Name =] expr [to typeof(t)], ... [limit n]` (also `mvexpand`).
    MvExpand {
        /// `kind=bag`, `bagexpansion=array`, `with_itemindex=Index`.
        params: Vec<(Ident, Ident)>,
        /// The expanded values.
        items: Vec<MvExpandItem>,
        /// `limit n`.
        limit: Option<Expr>,
    },
    /// `mv-apply [with_itemindex=I] [Name =] expr [to typeof(t)], ... [limit n] on (subquery)`:
    /// each row's expansion is a subtable the subquery runs on; its result rows get the row's
    /// other columns.
    MvApply {
        /// `with_itemindex=Index`.
        params: Vec<(Ident, Ident)>,
        /// The expanded values.
        items: Vec<MvExpandItem>,
        /// `limit n`.
        limit: Option<Expr>,
        /// The subquery's operators (its input is the subtable).
        sub: Vec<Operator>,
    },
    /// `join [kind=k] [hint.x=y] right on conditions`.
    Join {
        /// `kind=inner`, `hint.strategy=broadcast`, ...
        params: Vec<(Ident, Ident)>,
        /// The right side (a table name or a parenthesized tabular expression).
        right: Expr,
        /// `Col` or `$left.a == $right.b`.
        on: Vec<Expr>,
    },
    /// `sort by key [asc|desc] [nulls first|last], ...` (also `order by`).
    Sort(Vec<SortKey>),
    /// `top n by key`.
    Top {
        /// How many rows.
        count: Expr,
        /// The ordering.
        by: SortKey,
    },
    /// `count`: one row with the column `Count`.
    Count,
}

/// One `mv-expand` expression.
#[derive(Debug, Clone, PartialEq)]
pub struct MvExpandItem {
    /// `Name =`, if written.
    pub name: Option<Ident>,
    /// The array or property bag.
    pub value: Expr,
    /// `to typeof(t)`.
    pub to_type: Option<Ident>,
}

/// A sort key.
#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    /// The sorted value.
    pub value: Expr,
    /// `Some(true)` for `desc`, `Some(false)` for `asc`, `None` when not written (Kusto: desc).
    pub desc: Option<bool>,
    /// `Some(true)` for `nulls first`, `Some(false)` for `nulls last`, `None` when not written.
    pub nulls_first: Option<bool>,
}
