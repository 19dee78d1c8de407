//! Tokens -> syntax tree: recursive descent over precedence levels (see [`Prec`]).
//!
//! Levels, loosest first: `|`, `or`, `and`, the comparison level (`==` `!=` `<>` `=~` `!~`, the
//! string operators, `in` and the other list operators, `between`, `matches regex`), the relational
//! level (`<` `<=` `>` `>=`), `+ -`, `* / %`, prefix `- +`, postfix (`.name`, `[i]`, calls). All
//! binary levels associate to the left. Parentheses are not kept in the tree; the printer puts
//! back the ones precedence needs.

use super::ParseError;
use super::lexer::{DAY, HOUR, MINUTE, SECOND, TIMESPAN_UNITS, Tok, Token, describe, tokenize};
use super::syntax::*;

/// Words that cannot start an operand (they only ever follow one).
const RESERVED: &[&str] = &[
    "and",
    "or",
    "by",
    "on",
    "in",
    "between",
    "matches",
    "let",
    "has_any",
    "has_all",
    "contains",
    "contains_cs",
    "has",
    "has_cs",
    "hasprefix",
    "hasprefix_cs",
    "hassuffix",
    "hassuffix_cs",
    "startswith",
    "startswith_cs",
    "endswith",
    "endswith_cs",
];

/// The tabular operators this parser knows, for messages and suggestions.
/// Tabular operators of Kusto's language that rulecast reads as [`OperatorKind::Unsupported`].
const OTHER_OPERATORS: &[&str] = &[
    "as", "consume", "evaluate", "extend-valid", "facet", "fork", "getschema", "invoke", "lookup", "make-series",
    "mv-expand-limit", "parse", "parse-kv", "parse-where", "partition", "project-reorder", "project-smart", "reduce",
    "render", "sample", "sample-distinct", "scan", "serialize", "top-hitters", "top-nested", "union",
];

/// Tabular sources rulecast reads as [`ExprKind::Unsupported`] (at the start of a query).
const OTHER_SOURCES: &[&str] = &["union", "range", "search", "find"];

pub(crate) const TABULAR_OPERATORS: &[&str] = &[
    "where",
    "filter",
    "extend",
    "project",
    "project-away",
    "project-keep",
    "project-rename",
    "summarize",
    "take",
    "limit",
    "distinct",
    "mv-expand",
    "mvexpand",
    "mv-apply",
    "join",
    "sort",
    "order",
    "top",
    "count",
];

/// Scalar types usable as `type(literal)` (`long(1)`, `real(null)`, ...).
const TYPED_SCALARS: &[&str] = &[
    "bool", "boolean", "int", "long", "real", "double", "decimal", "string",
];

/// Parses a whole query.
pub(crate) fn parse_query(src: &str) -> Result<Query, ParseError> {
    let mut p = Parser {
        src,
        toks: tokenize(src)?,
        pos: 0,
        depth: 0,
    };
    let q = p.query()?;
    Ok(q)
}

/// Parses one expression (scalar or tabular) that makes up all of `src`.
pub(crate) fn parse_expr(src: &str) -> Result<Expr, ParseError> {
    let mut p = Parser {
        src,
        toks: tokenize(src)?,
        pos: 0,
        depth: 0,
    };
    let e = p.pipe()?;
    if !matches!(p.peek(), Tok::Eof) {
        return Err(p.error_here("an operator or end of input"));
    }
    Ok(e)
}

enum CmpTok {
    Bin(BinOp),
    List(ListOp),
    Between(bool),
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<Token>,
    pos: usize,
    /// Nesting depth of the expression being parsed (bounded: no stack overflow on hostile input).
    depth: usize,
}

/// The deepest nesting the parser accepts.
const MAX_DEPTH: usize = 64;

/// The tallest tree the parser builds. Chains (`a or b or ...`, `x.a.b...`, `T | where ... | ...`)
/// grow the tree one level per operator without nesting in the text, and every consumer of the
/// tree (printer, evaluator, importer) recurses over it: a 10,000-term chain must be an error,
/// not a stack overflow.
const MAX_HEIGHT: usize = 256;

/// The height of a tree the parser built (a leaf is 1). Its recursion is bounded: every tree is
/// at most [`MAX_HEIGHT`] high plus the [`MAX_DEPTH`] nesting levels above its last chain.
fn height(e: &Expr) -> usize {
    1 + match &e.kind {
        ExprKind::Literal(_) | ExprKind::Name(_) | ExprKind::Star | ExprKind::Unsupported { .. } => 0,
        ExprKind::Call { args, .. } => most(args),
        ExprKind::Member { target, .. } => height(target),
        ExprKind::Index { target, index } => height(target).max(height(index)),
        ExprKind::Unary { operand, .. } => height(operand),
        ExprKind::Binary { lhs, rhs, .. } => height(lhs).max(height(rhs)),
        ExprKind::InList { lhs, list, .. } => height(lhs).max(most(list)),
        ExprKind::Between { lhs, low, high, .. } => height(lhs).max(height(low)).max(height(high)),
        ExprKind::Pipe { input, op } => height(input).max(op_height(op)),
        ExprKind::Print(a) => most(a.iter().map(|a| &a.value)),
        ExprKind::DataTable { values, .. } => most(values),
        ExprKind::ExternalData { uris, props, .. } => most(uris).max(most(props.iter().map(|(_, e)| e))),
    }
}

fn most<'e>(es: impl IntoIterator<Item = &'e Expr>) -> usize {
    es.into_iter().map(height).max().unwrap_or(0)
}

/// The height of the expressions inside a tabular operator.
fn op_height(op: &Operator) -> usize {
    let assigns = |a: &[Assign]| most(a.iter().map(|a| &a.value));
    let items = |i: &[MvExpandItem], limit: &Option<Expr>| most(i.iter().map(|i| &i.value).chain(limit));
    match &op.kind {
        OperatorKind::Where(e) | OperatorKind::Take(e) => height(e),
        OperatorKind::Extend(a) | OperatorKind::Project(a) => assigns(a),
        OperatorKind::ProjectAway(_) | OperatorKind::ProjectKeep(_) | OperatorKind::ProjectRename(_) | OperatorKind::Count | OperatorKind::Unsupported { .. } => 0,
        OperatorKind::Summarize { aggregates, by } => assigns(aggregates).max(assigns(by)),
        OperatorKind::Distinct(es) => most(es),
        OperatorKind::MvExpand { items: i, limit, .. } => items(i, limit),
        OperatorKind::MvApply { items: i, limit, sub, .. } => items(i, limit).max(sub.iter().map(op_height).max().unwrap_or(0)),
        OperatorKind::Join { right, on, .. } => height(right).max(most(on)),
        OperatorKind::Sort(keys) => most(keys.iter().map(|k| &k.value)),
        OperatorKind::Top { count, by } => height(count).max(height(&by.value)),
    }
}

/// Does `w` read back as one identifier token?
pub(crate) fn word_is_identifier(w: &str) -> bool {
    let mut chars = w.chars();
    chars
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_alphanumeric() || c == '_')
}

impl<'a> Parser<'a> {
    // ----- token helpers -----

    fn peek(&self) -> &Tok {
        self.peek_at(0)
    }

    fn peek_at(&self, n: usize) -> &Tok {
        self.toks.get(self.pos + n).map_or(&Tok::Eof, |t| &t.tok)
    }

    fn span(&self) -> Span {
        self.span_at(0)
    }

    fn span_at(&self, n: usize) -> Span {
        self.toks
            .get(self.pos + n)
            .or(self.toks.last())
            .map_or(Span::new(self.src.len(), self.src.len()), |t| t.span)
    }

    fn prev_end(&self) -> usize {
        if self.pos == 0 {
            0
        } else {
            self.toks[self.pos - 1].span.end
        }
    }

    fn bump(&mut self) -> Token {
        let t = self.toks.get(self.pos).cloned().unwrap_or(Token {
            tok: Tok::Eof,
            span: Span::new(self.src.len(), self.src.len()),
        });
        if !matches!(t.tok, Tok::Eof) {
            self.pos += 1;
        }
        t
    }

    /// True when token `n` starts exactly where token `n - 1` ends.
    fn adjacent(&self, n: usize) -> bool {
        n > 0 && self.span_at(n - 1).end == self.span_at(n).start
    }

    fn is_punct_at(&self, n: usize, p: &str) -> bool {
        matches!(self.peek_at(n), Tok::Punct(q) if *q == p)
    }

    fn is_punct(&self, p: &str) -> bool {
        self.is_punct_at(0, p)
    }

    fn is_kw_at(&self, n: usize, w: &str) -> bool {
        matches!(self.peek_at(n), Tok::Ident(x) if x == w)
    }

    fn is_kw(&self, w: &str) -> bool {
        self.is_kw_at(0, w)
    }

    fn eat_punct(&mut self, p: &str) -> bool {
        let yes = self.is_punct(p);
        if yes {
            self.pos += 1;
        }
        yes
    }

    fn eat_kw(&mut self, w: &str) -> bool {
        let yes = self.is_kw(w);
        if yes {
            self.pos += 1;
        }
        yes
    }

    fn expect_punct(&mut self, p: &str, context: &str) -> Result<Span, ParseError> {
        if self.is_punct(p) {
            Ok(self.bump().span)
        } else {
            Err(self.error_here(&format!("`{p}`{context}")))
        }
    }

    fn expect_kw(&mut self, w: &str, context: &str) -> Result<Span, ParseError> {
        if self.is_kw(w) {
            Ok(self.bump().span)
        } else {
            Err(self.error_here(&format!("`{w}`{context}")))
        }
    }

    fn error_here(&self, expected: &str) -> ParseError {
        let tok = self.peek();
        let mut e = ParseError::new(self.src, self.span().start, expected, describe(tok));
        if let Tok::Ident(w) = tok {
            let ops: Vec<&str> = super::syntax::BIN_OPS
                .iter()
                .map(|(_, t, _)| *t)
                .chain(super::syntax::LIST_OPS.iter().map(|(_, t)| *t))
                .filter(|t| t.chars().all(|c| c.is_ascii_alphabetic() || c == '_'))
                .chain(["between", "matches"])
                .collect();
            if !ops.contains(&w.as_str()) {
                e.hint = suggest(w, &ops).map(|s| format!("did you mean `{s}`?"));
            }
        }
        e
    }

    fn error_at(&self, at: usize, expected: &str, found: String) -> ParseError {
        ParseError::new(self.src, at, expected, found)
    }

    fn ident(&mut self, what: &str) -> Result<Ident, ParseError> {
        match self.peek().clone() {
            Tok::Ident(name) => {
                let span = self.bump().span;
                Ok(Ident { name, span })
            }
            Tok::Punct("[")
                if matches!(self.peek_at(1), Tok::Str(_)) && self.is_punct_at(2, "]") =>
            {
                self.bracketed_name()
            }
            _ => Err(self.error_here(what)),
        }
    }

    /// `['name']` / `["name"]`.
    fn bracketed_name(&mut self) -> Result<Ident, ParseError> {
        let start = self.bump().span.start;
        let Tok::Str(name) = self.bump().tok else {
            return Err(self.error_here("a quoted name"));
        };
        let end = self.bump().span.end;
        Ok(Ident {
            name,
            span: Span::new(start, end),
        })
    }

    // ----- statements -----

    fn query(&mut self) -> Result<Query, ParseError> {
        let start = self.span().start;
        let mut lets = Vec::new();
        loop {
            while self.eat_punct(";") {}
            if !self.is_kw("let") {
                break;
            }
            let let_start = self.bump().span.start;
            let name = self.ident("a name after `let`")?;
            self.expect_punct("=", " after the `let` name")?;
            let value = self.pipe()?;
            let span = Span::new(let_start, self.prev_end());
            self.expect_punct(";", " ending the `let` statement")?;
            lets.push(Let { name, value, span });
        }
        let body = self.pipe()?;
        while self.eat_punct(";") {}
        if !matches!(self.peek(), Tok::Eof) {
            return Err(self.error_here("an operator, `|` or end of query"));
        }
        Ok(Query {
            lets,
            body,
            span: Span::new(start, self.prev_end()),
        })
    }

    // ----- expressions -----

    fn nest<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, ParseError>,
    ) -> Result<T, ParseError> {
        if self.depth >= MAX_DEPTH {
            let mut e = self.error_here(&format!("at most {MAX_DEPTH} levels of nesting"));
            e.limit = true;
            return Err(e);
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    fn pipe(&mut self) -> Result<Expr, ParseError> {
        self.nest(Self::pipe_inner)
    }

    /// One more link of a chain (`lhs` and its new operands `rhs`, the operator at `at`): the
    /// new node's height, kept in `h` (`lhs`'s is computed at the first link), must stay within
    /// [`MAX_HEIGHT`].
    fn link(&self, h: &mut Option<usize>, lhs: &Expr, rhs_height: usize, at: Span) -> Result<(), ParseError> {
        let new = 1 + h.unwrap_or_else(|| height(lhs)).max(rhs_height);
        if new > MAX_HEIGHT {
            let found = self.src.get(at.start..at.end).map_or_else(|| "an operator".to_string(), |t| format!("`{t}`"));
            let mut e = self.error_at(at.start, &format!("at most {MAX_HEIGHT} levels of nesting (each operator of a chain is one)"), found);
            e.hint = Some("use `in (...)` for many values, or split the chain".into());
            e.limit = true;
            return Err(e);
        }
        *h = Some(new);
        Ok(())
    }

    /// Is there a `name =` (an assignment, not `==`) before the end of this operator?
    fn assignment_ahead(&self) -> bool {
        let mut depth = 0usize;
        let mut n = 0;
        loop {
            match self.peek_at(n) {
                Tok::Eof => return false,
                Tok::Punct(p) if depth == 0 && matches!(*p, "|" | ";" | ")" | "]" | "}") => return false,
                Tok::Punct(p) if matches!(*p, "(" | "[" | "{") => depth += 1,
                Tok::Punct(p) if matches!(*p, ")" | "]" | "}") => depth -= 1,
                Tok::Ident(_) if depth == 0 && self.is_punct_at(n + 1, "=") => return true,
                _ => {}
            }
            n += 1;
        }
    }

    /// The text of the rest of an operator rulecast does not model: tokens up to the next `|`,
    /// `;` or unmatched closing bracket at this level (brackets and strings kept whole).
    fn rest_of_operator(&mut self) -> String {
        let from = self.span().start;
        let mut depth = 0usize;
        loop {
            match self.peek() {
                Tok::Eof => break,
                Tok::Punct(p) if depth == 0 && matches!(*p, "|" | ";" | ")" | "]" | "}") => break,
                Tok::Punct(p) if matches!(*p, "(" | "[" | "{") => depth += 1,
                Tok::Punct(p) if matches!(*p, ")" | "]" | "}") => depth -= 1,
                _ => {}
            }
            self.bump();
        }
        let to = self.prev_end().max(from);
        self.src.get(from..to).unwrap_or("").trim().to_string()
    }

    fn pipe_inner(&mut self) -> Result<Expr, ParseError> {
        let mut e = match self.peek().clone() {
            // `union T1, T2`, `range x from 1 to 5 step 1`, ... as a source
            Tok::Ident(w) if OTHER_SOURCES.contains(&w.as_str()) && !matches!(self.peek_at(1), Tok::Eof) && !self.is_punct_at(1, "|") && !self.is_punct_at(1, ".") && !self.is_punct_at(1, "[") => {
                let start = self.bump().span.start;
                let text = self.rest_of_operator();
                Expr {
                    kind: ExprKind::Unsupported { name: w, text },
                    span: Span::new(start, self.prev_end()),
                    style: Style::default(),
                }
            }
            _ => self.or()?,
        };
        let mut h = None;
        while self.is_punct("|") {
            let at = self.bump().span;
            let op = self.operator()?;
            self.link(&mut h, &e, op_height(&op), at)?;
            let span = e.span.to(op.span);
            e = Expr {
                kind: ExprKind::Pipe {
                    input: Box::new(e),
                    op: Box::new(op),
                },
                span,
                style: Style::default(),
            };
        }
        Ok(e)
    }

    fn binary(op: BinOp, lhs: Expr, rhs: Expr) -> Expr {
        let span = lhs.span.to(rhs.span);
        Expr {
            kind: ExprKind::Binary {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            },
            span,
            style: Style::default(),
        }
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut lhs = self.and()?;
        let mut h = None;
        while self.is_kw("or") {
            let at = self.bump().span;
            let rhs = self.and()?;
            self.link(&mut h, &lhs, height(&rhs), at)?;
            lhs = Self::binary(BinOp::Or, lhs, rhs);
        }
        Ok(lhs)
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut lhs = self.compare()?;
        let mut h = None;
        while self.is_kw("and") {
            let at = self.bump().span;
            let rhs = self.compare()?;
            self.link(&mut h, &lhs, height(&rhs), at)?;
            lhs = Self::binary(BinOp::And, lhs, rhs);
        }
        Ok(lhs)
    }

    /// The comparison operator at the cursor, with its length in tokens.
    fn peek_compare(&self) -> Option<(CmpTok, usize)> {
        let bin = |t: &str| {
            super::syntax::BIN_OPS
                .iter()
                .find(|(_, tok, p)| *tok == t && *p == Prec::Compare)
                .map(|(op, _, _)| *op)
        };
        match self.peek() {
            Tok::Punct("==") => Some((CmpTok::Bin(BinOp::Eq), 1)),
            Tok::Punct("!=") | Tok::Punct("<>") => Some((CmpTok::Bin(BinOp::Ne), 1)),
            Tok::Punct("=~") => Some((CmpTok::Bin(BinOp::EqCi), 1)),
            Tok::Punct("!~") => Some((CmpTok::Bin(BinOp::NeCi), 1)),
            Tok::Ident(w) => match w.as_str() {
                "matches" if self.is_kw_at(1, "regex") => {
                    Some((CmpTok::Bin(BinOp::MatchesRegex), 2))
                }
                "in" if self.is_punct_at(1, "~") && self.adjacent(1) => {
                    Some((CmpTok::List(ListOp::InCi), 2))
                }
                "in" => Some((CmpTok::List(ListOp::In), 1)),
                "has_any" => Some((CmpTok::List(ListOp::HasAny), 1)),
                "has_all" => Some((CmpTok::List(ListOp::HasAll), 1)),
                "between" => Some((CmpTok::Between(false), 1)),
                w => bin(w).map(|op| (CmpTok::Bin(op), 1)),
            },
            Tok::Punct("!") if self.adjacent(1) => match self.peek_at(1) {
                Tok::Ident(w) => match w.as_str() {
                    "in" if self.is_punct_at(2, "~") && self.adjacent(2) => {
                        Some((CmpTok::List(ListOp::NotInCi), 3))
                    }
                    "in" => Some((CmpTok::List(ListOp::NotIn), 2)),
                    "between" => Some((CmpTok::Between(true), 2)),
                    w => bin(&format!("!{w}")).map(|op| (CmpTok::Bin(op), 2)),
                },
                _ => None,
            },
            _ => None,
        }
    }

    fn compare(&mut self) -> Result<Expr, ParseError> {
        let mut lhs = self.relational()?;
        let mut h = None;
        while let Some((op, len)) = self.peek_compare() {
            let at = self.span();
            self.pos += len;
            lhs = match op {
                CmpTok::Bin(op) => {
                    let rhs = self.relational()?;
                    self.link(&mut h, &lhs, height(&rhs), at)?;
                    Self::binary(op, lhs, rhs)
                }
                CmpTok::List(op) => {
                    let (list, end) = self.list(op)?;
                    self.link(&mut h, &lhs, most(&list), at)?;
                    let span = Span::new(lhs.span.start, end);
                    Expr {
                        kind: ExprKind::InList {
                            op,
                            lhs: Box::new(lhs),
                            list,
                        },
                        span,
                        style: Style::default(),
                    }
                }
                CmpTok::Between(negated) => {
                    self.expect_punct("(", " after `between`")?;
                    let low = self.or()?;
                    self.expect_punct("..", " between the bounds of `between`")?;
                    let high = self.or()?;
                    let end = self
                        .expect_punct(")", " closing `between (low .. high)`")?
                        .end;
                    self.link(&mut h, &lhs, height(&low).max(height(&high)), at)?;
                    let span = Span::new(lhs.span.start, end);
                    Expr {
                        kind: ExprKind::Between {
                            negated,
                            lhs: Box::new(lhs),
                            low: Box::new(low),
                            high: Box::new(high),
                        },
                        span,
                        style: Style::default(),
                    }
                }
            };
        }
        Ok(lhs)
    }

    /// `(a, b, ...)` after a list operator (a single operand without parentheses is accepted too).
    fn list(&mut self, op: ListOp) -> Result<(Vec<Expr>, usize), ParseError> {
        if !self.is_punct("(") {
            let e = self.postfix()?;
            let end = e.span.end;
            return Ok((vec![e], end));
        }
        self.bump();
        let mut items = Vec::new();
        loop {
            items.push(self.pipe()?);
            if !self.eat_punct(",") {
                break;
            }
        }
        let end = self
            .expect_punct(")", &format!(" or `,` in the list of `{}`", op.token()))?
            .end;
        Ok((items, end))
    }

    fn relational(&mut self) -> Result<Expr, ParseError> {
        let mut lhs = self.additive()?;
        let mut h = None;
        loop {
            let op = match self.peek() {
                Tok::Punct("<") => BinOp::Lt,
                Tok::Punct("<=") => BinOp::Le,
                Tok::Punct(">") => BinOp::Gt,
                Tok::Punct(">=") => BinOp::Ge,
                _ => return Ok(lhs),
            };
            let at = self.bump().span;
            let rhs = self.additive()?;
            self.link(&mut h, &lhs, height(&rhs), at)?;
            lhs = Self::binary(op, lhs, rhs);
        }
    }

    fn additive(&mut self) -> Result<Expr, ParseError> {
        let mut lhs = self.multiplicative()?;
        let mut h = None;
        loop {
            let op = match self.peek() {
                Tok::Punct("+") => BinOp::Add,
                Tok::Punct("-") => BinOp::Sub,
                _ => return Ok(lhs),
            };
            let at = self.bump().span;
            let rhs = self.multiplicative()?;
            self.link(&mut h, &lhs, height(&rhs), at)?;
            lhs = Self::binary(op, lhs, rhs);
        }
    }

    fn multiplicative(&mut self) -> Result<Expr, ParseError> {
        let mut lhs = self.unary()?;
        let mut h = None;
        loop {
            let op = match self.peek() {
                Tok::Punct("*") => BinOp::Mul,
                Tok::Punct("/") => BinOp::Div,
                Tok::Punct("%") => BinOp::Mod,
                _ => return Ok(lhs),
            };
            let at = self.bump().span;
            let rhs = self.unary()?;
            self.link(&mut h, &lhs, height(&rhs), at)?;
            lhs = Self::binary(op, lhs, rhs);
        }
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        self.nest(Self::unary_inner)
    }

    fn unary_inner(&mut self) -> Result<Expr, ParseError> {
        let op = match self.peek() {
            Tok::Punct("-") => UnaryOp::Neg,
            Tok::Punct("+") => UnaryOp::Plus,
            _ => return self.postfix(),
        };
        let start = self.bump().span.start;
        if op == UnaryOp::Neg {
            // `-1`, `-1.5`, `-1d` are negative literals.
            let lit = match self.peek() {
                Tok::Long(n) => Some(Literal::Long(-n)),
                Tok::Real(r) => Some(Literal::Real(-r)),
                Tok::Timespan(t) => Some(Literal::Timespan(-t)),
                _ => None,
            };
            if let Some(lit) = lit {
                let end = self.bump().span.end;
                let e = Expr {
                    kind: ExprKind::Literal(lit),
                    span: Span::new(start, end),
                    style: Style::default(),
                };
                return self.postfix_ops(e);
            }
        }
        let operand = self.unary()?;
        let span = Span::new(start, operand.span.end);
        Ok(Expr {
            kind: ExprKind::Unary {
                op,
                operand: Box::new(operand),
            },
            span,
            style: Style::default(),
        })
    }

    fn postfix(&mut self) -> Result<Expr, ParseError> {
        let e = self.primary()?;
        self.postfix_ops(e)
    }

    fn postfix_ops(&mut self, mut e: Expr) -> Result<Expr, ParseError> {
        let mut h = None;
        loop {
            if self.is_punct(".") {
                let at = self.bump().span;
                self.link(&mut h, &e, 1, at)?;
                let name = match self.peek().clone() {
                    Tok::Ident(name) => {
                        let span = self.bump().span;
                        Ident { name, span }
                    }
                    Tok::Punct("[")
                        if matches!(self.peek_at(1), Tok::Str(_)) && self.is_punct_at(2, "]") =>
                    {
                        self.bracketed_name()?
                    }
                    _ => return Err(self.error_here("a property name after `.`")),
                };
                let span = e.span.to(name.span);
                e = Expr {
                    kind: ExprKind::Member {
                        target: Box::new(e),
                        name,
                    },
                    span,
                    style: Style::default(),
                };
            } else if self.is_punct("[") {
                let at = self.bump().span;
                let index = self.or()?;
                self.link(&mut h, &e, height(&index), at)?;
                let end = self.expect_punct("]", " closing the index")?.end;
                let span = Span::new(e.span.start, end);
                e = Expr {
                    kind: ExprKind::Index {
                        target: Box::new(e),
                        index: Box::new(index),
                    },
                    span,
                    style: Style::default(),
                };
            } else {
                return Ok(e);
            }
        }
    }

    fn lit(lit: Literal, span: Span) -> Expr {
        Expr {
            kind: ExprKind::Literal(lit),
            span,
            style: Style::default(),
        }
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        let span = self.span();
        match self.peek().clone() {
            Tok::Str(s) => {
                self.bump();
                // Adjacent string literals are one literal ("a" "b" is "ab").
                let mut s = s;
                let mut end = span.end;
                while let Tok::Str(more) = self.peek().clone() {
                    s.push_str(&more);
                    end = self.bump().span.end;
                }
                Ok(Self::lit(Literal::String(s), Span::new(span.start, end)))
            }
            Tok::Long(n) => {
                self.bump();
                Ok(Self::lit(Literal::Long(n), span))
            }
            Tok::Real(r) => {
                self.bump();
                Ok(Self::lit(Literal::Real(r), span))
            }
            Tok::Timespan(t) => {
                self.bump();
                Ok(Self::lit(Literal::Timespan(t), span))
            }
            Tok::Typed { ty, text } => {
                self.bump();
                let lit = self.raw_typed(&ty, &text, span)?;
                Ok(Self::lit(lit, span))
            }
            Tok::Punct("(") => {
                self.bump();
                let e = self.pipe()?;
                self.expect_punct(")", " closing `(`")?;
                Ok(e)
            }
            Tok::Punct("[")
                if matches!(self.peek_at(1), Tok::Str(_)) && self.is_punct_at(2, "]") =>
            {
                let id = self.bracketed_name()?;
                Ok(Expr {
                    kind: ExprKind::Name(id.name),
                    span: id.span,
                    style: Style::default(),
                })
            }
            Tok::Ident(w) => {
                let call = self.is_punct_at(1, "(");
                match w.as_str() {
                    "true" | "false" => {
                        self.bump();
                        Ok(Self::lit(Literal::Bool(w == "true"), span))
                    }
                    w if RESERVED.contains(&w) => Err(self.error_here("an expression")),
                    "print" => self.print(),
                    "datatable" if call => self.datatable(),
                    "externaldata" if call => self.externaldata(),
                    "dynamic" if call => self.dynamic_literal(),
                    w if call && TYPED_SCALARS.contains(&w) => self.typed_scalar(),
                    _ if call => self.call(),
                    _ => {
                        self.bump();
                        Ok(Expr {
                            kind: ExprKind::Name(w),
                            span,
                            style: Style::default(),
                        })
                    }
                }
            }
            _ => Err(self.error_here("an expression")),
        }
    }

    fn call(&mut self) -> Result<Expr, ParseError> {
        let name = self.ident("a function name")?;
        self.bump(); // `(`
        let mut args = Vec::new();
        if !self.is_punct(")") {
            loop {
                if self.is_punct("*") && (self.is_punct_at(1, ",") || self.is_punct_at(1, ")")) {
                    let span = self.bump().span;
                    args.push(Expr {
                        kind: ExprKind::Star,
                        span,
                        style: Style::default(),
                    });
                } else {
                    args.push(self.pipe()?);
                }
                if !self.eat_punct(",") {
                    break;
                }
            }
        }
        let end = self
            .expect_punct(")", &format!(" or `,` in the arguments of `{}`", name.name))?
            .end;
        let span = Span::new(name.span.start, end);
        Ok(Expr {
            kind: ExprKind::Call { name, args },
            span,
            style: Style::default(),
        })
    }

    /// `long(1)`, `real(null)`, `bool(true)`, `string("x")`, `real(-inf)`.
    fn typed_scalar(&mut self) -> Result<Expr, ParseError> {
        let ty_tok = self.bump();
        let Tok::Ident(tyname) = ty_tok.tok else {
            return Err(self.error_here("a type name"));
        };
        let ty = ScalarType::from_name(&tyname).unwrap_or(ScalarType::Long);
        self.bump(); // `(`
        let neg = self.eat_punct("-");
        let pos = !neg && self.eat_punct("+");
        let value_at = self.span().start;
        let found = describe(self.peek());
        let lit = match (ty, self.bump().tok) {
            (_, Tok::Ident(w)) if w == "null" && !neg && !pos => Literal::Null(ty),
            (ScalarType::Bool, Tok::Ident(w)) if (w == "true" || w == "false") && !neg && !pos => {
                Literal::Bool(w == "true")
            }
            (ScalarType::Int | ScalarType::Long, Tok::Long(n)) => {
                Literal::Long(if neg { -n } else { n })
            }
            (ScalarType::Real | ScalarType::Decimal, Tok::Long(n)) => {
                Literal::Real(if neg { -(n as f64) } else { n as f64 })
            }
            (ScalarType::Real | ScalarType::Decimal, Tok::Real(r)) => {
                Literal::Real(if neg { -r } else { r })
            }
            (ScalarType::Real, Tok::Ident(w)) if w == "nan" && !neg && !pos => {
                Literal::Real(f64::NAN)
            }
            (ScalarType::Real, Tok::Ident(w)) if w == "inf" => Literal::Real(if neg {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            }),
            (ScalarType::String, Tok::Str(s)) if !neg && !pos => Literal::String(s),
            _ => {
                return Err(self.error_at(
                    value_at,
                    &format!("a {} value or `null` inside `{tyname}(...)`", ty.name()),
                    found,
                ));
            }
        };
        let end = self
            .expect_punct(")", &format!(" closing `{tyname}(`"))?
            .end;
        Ok(Self::lit(lit, Span::new(ty_tok.span.start, end)))
    }

    /// `datetime(...)`, `timespan(...)`, `time(...)`, `date(...)`, `guid(...)`.
    fn raw_typed(&self, ty: &str, text: &str, span: Span) -> Result<Literal, ParseError> {
        let scalar = ScalarType::from_name(ty).unwrap_or(ScalarType::Datetime);
        if text == "null" {
            return Ok(Literal::Null(scalar));
        }
        let found = format!("`{ty}({text})`");
        match scalar {
            ScalarType::Datetime => parse_datetime(text)
                .map(Literal::Datetime)
                .ok_or_else(|| self.error_at(span.start, "an ISO 8601 date such as datetime(2024-01-31) or datetime(2024-01-31T10:00:00Z)", found)),
            ScalarType::Timespan => parse_timespan(text)
                .map(Literal::Timespan)
                .ok_or_else(|| self.error_at(span.start, "a timespan such as timespan(1d) or timespan(1.02:03:04)", found)),
            _ => Err(self.error_at(span.start, "a literal this parser supports (guid literals are not)", found)),
        }
    }

    /// `dynamic(...)`: JSON whose strings are Kusto string literals.
    fn dynamic_literal(&mut self) -> Result<Expr, ParseError> {
        let start = self.bump().span.start;
        self.bump(); // `(`
        let v = self.json()?;
        let end = self.expect_punct(")", " closing `dynamic(`")?.end;
        Ok(Self::lit(Literal::Dynamic(v), Span::new(start, end)))
    }

    fn json(&mut self) -> Result<serde_json::Value, ParseError> {
        self.nest(Self::json_inner)
    }

    fn json_inner(&mut self) -> Result<serde_json::Value, ParseError> {
        use serde_json::Value as J;
        let neg = self.eat_punct("-");
        let at = self.span().start;
        let found = describe(self.peek());
        let bad = |p: &Self| {
            p.error_at(
                at,
                "a JSON value (string, number, true, false, null, [...] or {...})",
                found.clone(),
            )
        };
        match self.bump().tok {
            Tok::Long(n) => Ok(J::from(if neg { -n } else { n })),
            Tok::Real(r) => serde_json::Number::from_f64(if neg { -r } else { r })
                .map(J::Number)
                .ok_or_else(|| bad(self)),
            _ if neg => Err(bad(self)),
            Tok::Str(s) => Ok(J::String(s)),
            Tok::Ident(w) if w == "true" => Ok(J::Bool(true)),
            Tok::Ident(w) if w == "false" => Ok(J::Bool(false)),
            Tok::Ident(w) if w == "null" => Ok(J::Null),
            Tok::Punct("[") => {
                let mut items = Vec::new();
                if !self.eat_punct("]") {
                    loop {
                        items.push(self.json()?);
                        if !self.eat_punct(",") {
                            break;
                        }
                    }
                    self.expect_punct("]", " or `,` in the dynamic array")?;
                }
                Ok(J::Array(items))
            }
            Tok::Punct("{") => {
                let mut map = serde_json::Map::new();
                if !self.eat_punct("}") {
                    loop {
                        let key = match self.peek().clone() {
                            Tok::Str(k) => {
                                self.bump();
                                k
                            }
                            _ => return Err(self.error_here("a quoted property name")),
                        };
                        self.expect_punct(":", " after the property name")?;
                        map.insert(key, self.json()?);
                        if !self.eat_punct(",") {
                            break;
                        }
                    }
                    self.expect_punct("}", " or `,` in the dynamic object")?;
                }
                Ok(J::Object(map))
            }
            _ => Err(bad(self)),
        }
    }

    fn column_decls(&mut self) -> Result<Vec<ColumnDecl>, ParseError> {
        self.expect_punct("(", " before the column list")?;
        let mut cols = Vec::new();
        loop {
            let name = self.ident("a column name")?;
            self.expect_punct(":", " between the column name and its type")?;
            let ty = self.ident("a type name")?;
            cols.push(ColumnDecl { name, ty });
            if !self.eat_punct(",") {
                break;
            }
        }
        self.expect_punct(")", " or `,` in the column list")?;
        Ok(cols)
    }

    /// `[a, b, ...]` with an optional trailing comma.
    fn bracket_list(&mut self) -> Result<(Vec<Expr>, usize), ParseError> {
        self.expect_punct("[", " before the values")?;
        let mut values = Vec::new();
        while !self.is_punct("]") {
            values.push(self.or()?);
            if !self.eat_punct(",") {
                break;
            }
        }
        let end = self.expect_punct("]", " or `,` in the values")?.end;
        Ok((values, end))
    }

    fn datatable(&mut self) -> Result<Expr, ParseError> {
        let start = self.bump().span.start;
        let columns = self.column_decls()?;
        let (values, end) = self.bracket_list()?;
        Ok(Expr {
            kind: ExprKind::DataTable { columns, values },
            span: Span::new(start, end),
            style: Style::default(),
        })
    }

    fn externaldata(&mut self) -> Result<Expr, ParseError> {
        let start = self.bump().span.start;
        let columns = self.column_decls()?;
        let (uris, mut end) = self.bracket_list()?;
        let mut props = Vec::new();
        if self.eat_kw("with") {
            self.expect_punct("(", " after `with`")?;
            loop {
                let name = self.ident("a property name")?;
                self.expect_punct("=", " after the property name")?;
                props.push((name, self.or()?));
                if !self.eat_punct(",") {
                    break;
                }
            }
            end = self
                .expect_punct(")", " or `,` in the `with` properties")?
                .end;
        }
        Ok(Expr {
            kind: ExprKind::ExternalData {
                columns,
                uris,
                props,
            },
            span: Span::new(start, end),
            style: Style::default(),
        })
    }

    fn print(&mut self) -> Result<Expr, ParseError> {
        let start = self.bump().span.start;
        let assigns = self.assigns()?;
        Ok(Expr {
            kind: ExprKind::Print(assigns),
            span: Span::new(start, self.prev_end()),
            style: Style::default(),
        })
    }

    fn assign(&mut self) -> Result<Assign, ParseError> {
        let named = (matches!(self.peek(), Tok::Ident(_)) && self.is_punct_at(1, "="))
            || (self.is_punct("[")
                && matches!(self.peek_at(1), Tok::Str(_))
                && self.is_punct_at(2, "]")
                && self.is_punct_at(3, "="));
        let name = if named {
            let id = self.ident("a column name")?;
            self.bump(); // `=`
            Some(id)
        } else {
            None
        };
        Ok(Assign {
            name,
            value: self.or()?,
        })
    }

    fn assigns(&mut self) -> Result<Vec<Assign>, ParseError> {
        let mut out = Vec::new();
        loop {
            out.push(self.assign()?);
            if !self.eat_punct(",") {
                return Ok(out);
            }
        }
    }

    // ----- tabular operators -----

    fn operator(&mut self) -> Result<Operator, ParseError> {
        let start = self.span().start;
        let Tok::Ident(first) = self.peek().clone() else {
            return Err(self.error_here("a tabular operator after `|`"));
        };
        self.bump();
        let mut name = first;
        if self.is_punct("-")
            && self.prev_end() == self.span().start
            && self.adjacent(1)
            && let Tok::Ident(second) = self.peek_at(1).clone()
        {
            name = format!("{name}-{second}");
            self.pos += 2;
        }
        // forms of known operators that rulecast does not model: a tuple `extend (a, b) = f(x)`,
        // a `distinct` with a computed column (`distinct A, B = tolower(B)`)
        let tuple = name == "extend" && self.is_punct("(") && matches!(self.peek_at(1), Tok::Ident(_)) && self.is_punct_at(2, ",");
        if tuple || (name == "distinct" && self.assignment_ahead()) || OTHER_OPERATORS.contains(&name.as_str()) {
            let text = self.rest_of_operator();
            return Ok(Operator {
                kind: OperatorKind::Unsupported { name, text },
                span: Span::new(start, self.prev_end()),
            });
        }
        let kind = match name.as_str() {
            "where" | "filter" => OperatorKind::Where(self.or()?),
            "extend" => OperatorKind::Extend(self.assigns()?),
            "project" => OperatorKind::Project(self.assigns()?),
            "project-away" => OperatorKind::ProjectAway(self.column_patterns()?),
            "project-keep" => OperatorKind::ProjectKeep(self.column_patterns()?),
            "project-rename" => {
                let mut pairs = Vec::new();
                loop {
                    let new = self.ident("the new column name")?;
                    self.expect_punct("=", " in `project-rename new = old`")?;
                    let old = self.ident("the renamed column")?;
                    pairs.push((new, old));
                    if !self.eat_punct(",") {
                        break;
                    }
                }
                OperatorKind::ProjectRename(pairs)
            }
            "summarize" => {
                let aggregates = if self.is_kw("by") {
                    Vec::new()
                } else {
                    self.assigns()?
                };
                let by = if self.eat_kw("by") {
                    self.assigns()?
                } else {
                    Vec::new()
                };
                OperatorKind::Summarize { aggregates, by }
            }
            "take" | "limit" => OperatorKind::Take(self.or()?),
            "distinct" => {
                if self.is_punct("*") {
                    let span = self.bump().span;
                    OperatorKind::Distinct(vec![Expr {
                        kind: ExprKind::Star,
                        span,
                        style: Style::default(),
                    }])
                } else {
                    let mut cols = vec![self.or()?];
                    while self.eat_punct(",") {
                        cols.push(self.or()?);
                    }
                    OperatorKind::Distinct(cols)
                }
            }
            "mv-expand" | "mvexpand" => self.mv_expand()?,
            "mv-apply" => self.mv_apply()?,
            "join" => self.join()?,
            "sort" | "order" => {
                self.expect_kw("by", &format!(" after `{name}`"))?;
                let mut keys = vec![self.sort_key()?];
                while self.eat_punct(",") {
                    keys.push(self.sort_key()?);
                }
                OperatorKind::Sort(keys)
            }
            "top" => {
                let count = self.or()?;
                self.expect_kw("by", " after the row count of `top`")?;
                OperatorKind::Top {
                    count,
                    by: self.sort_key()?,
                }
            }
            "count" => OperatorKind::Count,
            other => {
                let mut e = ParseError::new(
                    self.src,
                    start,
                    "a tabular operator (where, extend, project, project-away, project-rename, summarize, take, distinct, mv-expand, mv-apply, join, sort, top, count)",
                    format!("`{other}`"),
                );
                e.hint = suggest(other, TABULAR_OPERATORS).map(|s| format!("did you mean `{s}`?"));
                return Err(e);
            }
        };
        Ok(Operator {
            kind,
            span: Span::new(start, self.prev_end()),
        })
    }

    /// Column names for `project-away` / `project-keep`; `Name*` is a wildcard.
    fn column_patterns(&mut self) -> Result<Vec<Ident>, ParseError> {
        let mut out = Vec::new();
        loop {
            let mut id = self.ident("a column name")?;
            if self.is_punct("*") && self.prev_end() == self.span().start {
                id.span.end = self.bump().span.end;
                id.name.push('*');
            }
            out.push(id);
            if !self.eat_punct(",") {
                return Ok(out);
            }
        }
    }

    /// `name=value` parameters (`kind=inner`, `hint.strategy=broadcast`) while they follow.
    fn params(&mut self, allowed: Option<&[&str]>) -> Result<Vec<(Ident, Ident)>, ParseError> {
        let mut out = Vec::new();
        loop {
            // An identifier path `a.b.c` followed by `=`.
            let mut n = 0;
            while matches!(self.peek_at(n), Tok::Ident(_)) {
                n += 1;
                if self.is_punct_at(n, ".") {
                    n += 1;
                } else {
                    break;
                }
            }
            if n == 0 || !self.is_punct_at(n, "=") {
                return Ok(out);
            }
            let start = self.span().start;
            let mut name = String::new();
            for _ in 0..n {
                match self.bump().tok {
                    Tok::Ident(w) => name.push_str(&w),
                    _ => name.push('.'),
                }
            }
            if allowed.is_some_and(|a| !a.contains(&name.as_str())) {
                self.pos -= n;
                return Ok(out);
            }
            let key = Ident {
                name,
                span: Span::new(start, self.prev_end()),
            };
            self.bump(); // `=`
            let value = self.ident("a parameter value")?;
            out.push((key, value));
        }
    }

    fn mv_apply(&mut self) -> Result<OperatorKind, ParseError> {
        let params = self.params(Some(&["with_itemindex"]))?;
        let (items, limit) = self.mv_items()?;
        self.expect_kw("on", " after the expanded values of `mv-apply`")?;
        self.expect_punct("(", " after `on`")?;
        let sub = self.nest(|p| {
            let mut ops = vec![p.operator()?];
            while p.eat_punct("|") {
                ops.push(p.operator()?);
            }
            Ok(ops)
        })?;
        self.expect_punct(")", " closing the subquery of `mv-apply`")?;
        Ok(OperatorKind::MvApply {
            params,
            items,
            limit,
            sub,
        })
    }

    fn mv_expand(&mut self) -> Result<OperatorKind, ParseError> {
        let params = self.params(Some(&["kind", "bagexpansion", "with_itemindex"]))?;
        let (items, limit) = self.mv_items()?;
        Ok(OperatorKind::MvExpand {
            params,
            items,
            limit,
        })
    }

    /// `[Name =] expr [to typeof(t)], ... [limit n]` of `mv-expand` and `mv-apply`.
    fn mv_items(&mut self) -> Result<(Vec<MvExpandItem>, Option<Expr>), ParseError> {
        let mut items = Vec::new();
        loop {
            let a = self.assign()?;
            let to_type = if self.eat_kw("to") {
                self.expect_kw("typeof", " after `to`")?;
                self.expect_punct("(", " after `typeof`")?;
                let t = self.ident("a type name")?;
                self.expect_punct(")", " closing `typeof(`")?;
                Some(t)
            } else {
                None
            };
            items.push(MvExpandItem {
                name: a.name,
                value: a.value,
                to_type,
            });
            if !self.eat_punct(",") {
                break;
            }
        }
        let limit = if self.eat_kw("limit") {
            Some(self.or()?)
        } else {
            None
        };
        Ok((items, limit))
    }

    fn join(&mut self) -> Result<OperatorKind, ParseError> {
        let params = self.params(None)?;
        let right = self.primary()?;
        self.expect_kw("on", " after the right side of `join`")?;
        let mut on = vec![self.or()?];
        while self.eat_punct(",") {
            on.push(self.or()?);
        }
        Ok(OperatorKind::Join { params, right, on })
    }

    fn sort_key(&mut self) -> Result<SortKey, ParseError> {
        let value = self.or()?;
        let desc = if self.eat_kw("asc") {
            Some(false)
        } else if self.eat_kw("desc") {
            Some(true)
        } else {
            None
        };
        let nulls_first = if self.eat_kw("nulls") {
            if self.eat_kw("first") {
                Some(true)
            } else {
                self.expect_kw("last", " or `first` after `nulls`")?;
                Some(false)
            }
        } else {
            None
        };
        Ok(SortKey {
            value,
            desc,
            nulls_first,
        })
    }
}

/// The closest candidate, if it is close enough to be a likely typo.
pub(crate) fn suggest(word: &str, candidates: &[&str]) -> Option<String> {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(word, c), *c))
        .filter(|(score, c)| *score >= 0.85 && *c != word)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c.to_string())
}

/// Is `w` printable as a bare name?
pub(crate) fn is_plain_name(w: &str) -> bool {
    // `true`/`false` would read as literals, `print` as the operator; the rest of the special
    // words (`dynamic`, `datatable`, ...) are only special before `(`, which never follows a name.
    word_is_identifier(w) && !RESERVED.contains(&w) && !["true", "false", "print"].contains(&w)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day) of a day count since 1970-01-01.
pub(crate) fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn digits_at(s: &str, n: usize) -> Option<(i64, &str)> {
    if s.len() < n || !s.as_bytes()[..n].iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some((s[..n].parse().ok()?, &s[n..]))
}

/// `YYYY-MM-DD[(T| )HH:MM[:SS[.fffffff]]][Z|±HH:MM]` -> ticks since 1970.
pub(crate) fn parse_datetime(text: &str) -> Option<i64> {
    let s = text.trim();
    let (y, s) = digits_at(s, 4)?;
    let s = s.strip_prefix('-')?;
    let (mo, s) = digits_at(s, 2)?;
    let s = s.strip_prefix('-')?;
    let (d, mut s) = digits_at(s, 2)?;
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) {
        return None;
    }
    let mut ticks = days_from_civil(y, mo, d) * DAY;
    if let Some(rest) = s.strip_prefix('T').or_else(|| s.strip_prefix(' ')) {
        let (h, rest) = digits_at(rest, 2)?;
        let rest = rest.strip_prefix(':')?;
        let (mi, mut rest) = digits_at(rest, 2)?;
        let mut sec = 0;
        let mut frac = 0;
        if let Some(r) = rest.strip_prefix(':') {
            let (sv, r) = digits_at(r, 2)?;
            sec = sv;
            rest = r;
            if let Some(r) = rest.strip_prefix('.') {
                let n = r.bytes().take_while(u8::is_ascii_digit).count();
                if n == 0 {
                    return None;
                }
                let digits = &r[..n.min(7)];
                frac = digits.parse::<i64>().ok()? * 10_i64.pow(7 - digits.len() as u32);
                rest = &r[n..];
            }
        }
        if h > 23 || mi > 59 || sec > 59 {
            return None;
        }
        ticks += h * HOUR + mi * MINUTE + sec * SECOND + frac;
        s = rest;
    }
    if s.is_empty() || s == "Z" || s == "z" {
        return Some(ticks);
    }
    let sign = match s.as_bytes()[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (oh, r) = digits_at(&s[1..], 2)?;
    let r = r.strip_prefix(':').unwrap_or(r);
    let (om, r) = digits_at(r, 2)?;
    if !r.is_empty() {
        return None;
    }
    Some(ticks - sign * (oh * HOUR + om * MINUTE))
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// `1d`, `-2.5h`, `1.02:03:04.5`, `02:03`, `3` (days) -> ticks.
pub(crate) fn parse_timespan(text: &str) -> Option<i64> {
    let s = text.trim();
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let ticks = if s.contains(':') {
        let (days, clock) = match s.split_once('.') {
            Some((d, rest)) if !d.contains(':') => (d.parse::<i64>().ok()?, rest),
            _ => (0, s),
        };
        let parts: Vec<&str> = clock.split(':').collect();
        if parts.len() < 2 || parts.len() > 3 {
            return None;
        }
        let h: i64 = parts[0].parse().ok()?;
        let m: i64 = parts[1].parse().ok()?;
        let (sec, frac) = match parts.get(2) {
            Some(p) => match p.split_once('.') {
                Some((sv, f))
                    if !f.is_empty() && f.len() <= 7 && f.bytes().all(|b| b.is_ascii_digit()) =>
                {
                    (
                        sv.parse::<i64>().ok()?,
                        f.parse::<i64>().ok()? * 10_i64.pow(7 - f.len() as u32),
                    )
                }
                Some(_) => return None,
                None => (p.parse::<i64>().ok()?, 0),
            },
            None => (0, 0),
        };
        days * DAY + h * HOUR + m * MINUTE + sec * SECOND + frac
    } else {
        let split = s.find(|c: char| c.is_alphabetic()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let per = if unit.is_empty() {
            DAY
        } else {
            TIMESPAN_UNITS.iter().find(|(u, _)| *u == unit)?.1
        };
        if num.contains('.') {
            let v: f64 = num.parse().ok()?;
            (v * per as f64).round() as i64
        } else {
            num.parse::<i64>().ok()?.checked_mul(per)?
        }
    };
    Some(if neg { -ticks } else { ticks })
}
