//! Boolean expressions of EQL (`<category> where <expr>`) and ES|QL (`| WHERE <expr>`).
//!
//! Input: the text of one query. Output: an [`Expr`] tree with byte spans into that text, or a
//! [`SyntaxError`] at a byte offset. A small recursive-descent parser for the filter subset the
//! importer maps (comparisons, lists, patterns, string functions, `and`/`or`/`not`); anything
//! else is an error the caller reports with its place.

/// Which language is parsed (keywords and operators differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Event Query Language: lowercase keywords, `:` and `~` variants, `?field`.
    Eql,
    /// ES|QL: case-insensitive keywords, `LIKE`, `RLIKE`, `IS [NOT] NULL`.
    Esql,
}

/// A byte range in the query text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    /// A string (escapes decoded).
    Str(String),
    /// A number, as written.
    Num(String),
    /// `true` / `false`.
    Bool(bool),
    /// `null`.
    Null,
}

/// An operand.
#[derive(Debug, Clone, PartialEq)]
pub enum Term {
    /// A field name (`?` and backticks removed).
    Field(String),
    /// A literal.
    Lit(Lit),
    /// Arithmetic: `lhs op rhs` (`+`, `-`, `*`, `/`, `%`), left to right, `*` `/` `%` first.
    Arith {
        /// The operator.
        op: &'static str,
        /// The left operand.
        lhs: Box<Term>,
        /// The right operand.
        rhs: Box<Term>,
    },
    /// An ES|QL time span (`7 days`): the number and the unit as written.
    Span(String, String),
    /// A function call; `insensitive` for EQL's `name~(...)`.
    Call {
        /// The function name as written (without `~`).
        name: String,
        /// `~` after the name.
        insensitive: bool,
        /// The arguments.
        args: Vec<Term>,
    },
}

/// A boolean expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// Every child holds.
    And(Vec<Expr>, Span),
    /// One child holds.
    Or(Vec<Expr>, Span),
    /// The child does not hold.
    Not(Box<Expr>, Span),
    /// `lhs op rhs`; `op` is normalised to lowercase (`==`, `!=`, `:`, `<`, `like`, `like~`,
    /// `regex`, `regex~`, `rlike`, `in`, `in~`); lists give several `rhs`.
    Cmp {
        /// Left operand.
        lhs: Term,
        /// Operator.
        op: String,
        /// Right operand(s).
        rhs: Vec<Term>,
        /// Where.
        span: Span,
    },
    /// `f IS NULL` (`negated`: `IS NOT NULL`).
    IsNull {
        /// The operand.
        term: Term,
        /// `IS NOT NULL`.
        negated: bool,
        /// Where.
        span: Span,
    },
    /// A term used as a condition (a function call or `true`).
    Term(Term, Span),
}

impl Expr {
    /// Where the expression is in the query.
    pub fn span(&self) -> Span {
        match self {
            Expr::And(_, s) | Expr::Or(_, s) | Expr::Not(_, s) | Expr::Term(_, s) => *s,
            Expr::Cmp { span, .. } | Expr::IsNull { span, .. } => *span,
        }
    }
}

/// A syntax error: what was expected, what was found, at which byte.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    /// Byte offset in the query.
    pub offset: usize,
    /// What was expected.
    pub expected: String,
    /// What was found.
    pub found: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(String),
    Punct(&'static str),
    Pipe,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    span: Span,
}

const PUNCT: &[&str] = &["==", "!=", "<=", ">=", "=~", "(", ")", "[", "]", ",", ":", "<", ">", "~", "=", "+", "-", "*", "/", "%"];

/// ES|QL's time-span units (`7 days`, `1 hour`), singular and plural and abbreviated.
const TIME_UNITS: &[&str] = &[
    "millisecond", "milliseconds", "ms", "second", "seconds", "sec", "s", "minute", "minutes", "min", "hour", "hours", "h", "day", "days", "d",
    "week", "weeks", "w", "month", "months", "mo", "quarter", "quarters", "q", "year", "years", "yr", "y",
];

fn lex(text: &str, from: usize, to: usize) -> Result<Vec<Token>, SyntaxError> {
    let b = text.as_bytes();
    let mut i = from;
    let mut out = vec![];
    let err = |offset: usize, expected: &str, found: &str| SyntaxError {
        offset,
        expected: expected.to_string(),
        found: found.to_string(),
    };
    while i < to {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if text[i..to].starts_with("//") {
            while i < to && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if text[i..to].starts_with("/*") {
            match text[i + 2..to].find("*/") {
                Some(e) => i = i + 2 + e + 2,
                None => return Err(err(i, "`*/` closing the comment", "the end of the query")),
            }
            continue;
        }
        let start = i;
        if text[i..to].starts_with("\"\"\"") {
            let Some(e) = text[i + 3..to].find("\"\"\"") else {
                return Err(err(i, "`\"\"\"` closing the string", "the end of the query"));
            };
            let s = text[i + 3..i + 3 + e].to_string();
            i = i + 3 + e + 3;
            out.push(Token { tok: Tok::Str(s), span: Span { start, end: i } });
            continue;
        }
        if c == b'"' {
            let mut s = String::new();
            i += 1;
            loop {
                let Some(ch) = text[i..to].chars().next() else {
                    return Err(err(start, "`\"` closing the string", "the end of the query"));
                };
                i += ch.len_utf8();
                match ch {
                    '"' => break,
                    '\n' => return Err(err(start, "`\"` closing the string on its line", "the end of the line")),
                    '\\' => {
                        let Some(e) = text[i..to].chars().next() else {
                            return Err(err(i, "an escaped character", "the end of the query"));
                        };
                        i += e.len_utf8();
                        match e {
                            'n' => s.push('\n'),
                            't' => s.push('\t'),
                            'r' => s.push('\r'),
                            '"' | '\\' | '\'' => s.push(e),
                            // EQL's `\u{XXXX}`: 2 to 8 hex digits
                            'u' if text[i..to].starts_with('{') => {
                                let close = text[i..to].find('}').ok_or_else(|| err(i - 2, "`}` closing the `\\u{` escape", "the end of the query"))?;
                                let hex = &text[i + 1..i + close];
                                let c = (2..=8)
                                    .contains(&hex.len())
                                    .then(|| u32::from_str_radix(hex, 16).ok().and_then(char::from_u32))
                                    .flatten()
                                    .ok_or_else(|| err(i - 2, "2 to 8 hex digits of a Unicode character in `\\u{…}`", &format!("\\u{{{hex}}}")))?;
                                s.push(c);
                                i += close + 1;
                            }
                            other => {
                                return Err(err(i - 2, "an escape (\\n, \\t, \\r, \\\", \\\\, \\u{…})", &format!("\\{other}")));
                            }
                        }
                    }
                    other => s.push(other),
                }
            }
            out.push(Token { tok: Tok::Str(s), span: Span { start, end: i } });
            continue;
        }
        if c == b'`' {
            let Some(e) = text[i + 1..to].find('`') else {
                return Err(err(i, "a closing backtick", "the end of the query"));
            };
            let s = text[i + 1..i + 1 + e].to_string();
            i = i + 1 + e + 1;
            out.push(Token { tok: Tok::Ident(s), span: Span { start, end: i } });
            continue;
        }
        if c.is_ascii_digit() || (c == b'-' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            i += 1;
            while i < to && (b[i].is_ascii_digit() || b[i] == b'.') {
                i += 1;
            }
            out.push(Token { tok: Tok::Num(text[start..i].to_string()), span: Span { start, end: i } });
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' || c == b'@' || c == b'?' {
            i += 1;
            while i < to && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'_' | b'.' | b'@' | b'-')) {
                // a `-` is part of a name only between letters (`x-amz-acl`), never `a -1`
                if b[i] == b'-' && !b.get(i + 1).is_some_and(|n| n.is_ascii_alphanumeric()) {
                    break;
                }
                i += 1;
            }
            // EQL case-insensitive variants: `in~`, `like~`, `startsWith~(`
            if i < to && b[i] == b'~' {
                i += 1;
            }
            let name = text[start..i].trim_start_matches('?').to_string();
            out.push(Token { tok: Tok::Ident(name), span: Span { start, end: i } });
            continue;
        }
        if c == b'|' {
            i += 1;
            out.push(Token { tok: Tok::Pipe, span: Span { start, end: i } });
            continue;
        }
        match PUNCT.iter().find(|p| text[i..to].starts_with(**p)) {
            Some(p) => {
                i += p.len();
                out.push(Token { tok: Tok::Punct(p), span: Span { start, end: i } });
            }
            None => {
                let ch = text[i..].chars().next().unwrap_or(' ');
                return Err(err(i, "an operator, a name, a string or a number", &format!("`{ch}`")));
            }
        }
    }
    Ok(out)
}

/// A parser over one query text.
pub struct Parser<'a> {
    text: &'a str,
    toks: Vec<Token>,
    pos: usize,
    dialect: Dialect,
    end: usize,
}

impl<'a> Parser<'a> {
    /// Tokenise `text[from..to]`.
    pub fn new(text: &'a str, from: usize, to: usize, dialect: Dialect) -> Result<Self, SyntaxError> {
        Ok(Parser { text, toks: lex(text, from, to)?, pos: 0, dialect, end: to })
    }

    fn peek(&self) -> Option<&Token> {
        self.toks.get(self.pos)
    }

    fn here(&self) -> usize {
        self.peek().map_or(self.end, |t| t.span.start)
    }

    fn found(&self) -> String {
        match self.peek() {
            None => "the end of the query".into(),
            Some(t) => format!("`{}`", &self.text[t.span.start..t.span.end]),
        }
    }

    fn error(&self, expected: &str) -> SyntaxError {
        SyntaxError { offset: self.here(), expected: expected.to_string(), found: self.found() }
    }

    fn kw_eq(&self, word: &str, kw: &str) -> bool {
        match self.dialect {
            Dialect::Eql => word == kw,
            Dialect::Esql => word.eq_ignore_ascii_case(kw),
        }
    }

    /// Is the next token the keyword `kw`?
    pub fn at_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Token { tok: Tok::Ident(w), .. }) if self.kw_eq(w, kw))
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        let yes = self.at_kw(kw);
        if yes {
            self.pos += 1;
        }
        yes
    }

    fn eat_punct(&mut self, p: &str) -> bool {
        let yes = matches!(self.peek(), Some(Token { tok: Tok::Punct(q), .. }) if *q == p);
        if yes {
            self.pos += 1;
        }
        yes
    }

    fn expect_punct(&mut self, p: &str) -> Result<(), SyntaxError> {
        if self.eat_punct(p) { Ok(()) } else { Err(self.error(&format!("`{p}`"))) }
    }

    /// The next token is an identifier: take it (text and span).
    pub fn ident(&mut self) -> Option<(String, Span)> {
        match self.peek() {
            Some(Token { tok: Tok::Ident(w), span }) => {
                let r = (w.clone(), *span);
                self.pos += 1;
                Some(r)
            }
            _ => None,
        }
    }

    /// Has every token been read?
    pub fn done(&self) -> bool {
        self.pos >= self.toks.len()
    }

    /// Is the next token a pipe `|`?
    pub fn at_pipe(&self) -> bool {
        matches!(self.peek(), Some(Token { tok: Tok::Pipe, .. }))
    }

    /// Byte offset of the next token (the end when there is none).
    pub fn offset(&self) -> usize {
        self.here()
    }

    /// Parse one boolean expression.
    pub fn expr(&mut self) -> Result<Expr, SyntaxError> {
        self.or()
    }

    /// Error unless every token was read.
    pub fn finish(&self) -> Result<(), SyntaxError> {
        if self.done() { Ok(()) } else { Err(self.error("`and`, `or` or the end of the condition")) }
    }

    fn or(&mut self) -> Result<Expr, SyntaxError> {
        let start = self.here();
        let mut kids = vec![self.and()?];
        while self.eat_kw("or") {
            kids.push(self.and()?);
        }
        Ok(if kids.len() == 1 { kids.remove(0) } else { let end = kids.last().map_or(start, |k| k.span().end); Expr::Or(kids, Span { start, end }) })
    }

    fn and(&mut self) -> Result<Expr, SyntaxError> {
        let start = self.here();
        let mut kids = vec![self.not()?];
        while self.eat_kw("and") {
            kids.push(self.not()?);
        }
        Ok(if kids.len() == 1 { kids.remove(0) } else { let end = kids.last().map_or(start, |k| k.span().end); Expr::And(kids, Span { start, end }) })
    }

    fn not(&mut self) -> Result<Expr, SyntaxError> {
        let start = self.here();
        if self.eat_kw("not") {
            let k = self.not()?;
            let end = k.span().end;
            return Ok(Expr::Not(Box::new(k), Span { start, end }));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, SyntaxError> {
        let start = self.here();
        if self.eat_punct("(") {
            let e = self.or()?;
            self.expect_punct(")")?;
            // keep the parentheses in the span: the source text stays one expression
            let end = self.toks[self.pos - 1].span.end;
            return Ok(match e {
                Expr::And(k, _) => Expr::And(k, Span { start, end }),
                Expr::Or(k, _) => Expr::Or(k, Span { start, end }),
                Expr::Not(k, _) => Expr::Not(k, Span { start, end }),
                Expr::Term(t, _) => Expr::Term(t, Span { start, end }),
                Expr::Cmp { lhs, op, rhs, .. } => Expr::Cmp { lhs, op, rhs, span: Span { start, end } },
                Expr::IsNull { term, negated, .. } => Expr::IsNull { term, negated, span: Span { start, end } },
            });
        }
        let lhs = self.term()?;
        let last = |p: &Self| p.toks[p.pos - 1].span.end;
        // operators
        if let Some(Token { tok: Tok::Punct(p), .. }) = self.peek() {
            let op = *p;
            if matches!(op, "==" | "!=" | ":" | "<" | "<=" | ">" | ">=" | "=~") {
                self.pos += 1;
                let rhs = if op == ":" && self.at_open() { self.list()? } else { vec![self.term()?] };
                return Ok(Expr::Cmp { lhs, op: op.to_string(), rhs, span: Span { start, end: last(self) } });
            }
        }
        if self.dialect == Dialect::Esql && self.eat_kw("is") {
            let negated = self.eat_kw("not");
            if !self.eat_kw("null") {
                return Err(self.error("`null`"));
            }
            return Ok(Expr::IsNull { term: lhs, negated, span: Span { start, end: last(self) } });
        }
        // `x not in (...)`, `x NOT LIKE "..."`
        let negated = if self.at_kw("not") && self.next_is_pattern_op() {
            self.pos += 1;
            true
        } else {
            false
        };
        if let Some(Token { tok: Tok::Ident(w), .. }) = self.peek() {
            let lw = w.to_ascii_lowercase();
            let is_op = match self.dialect {
                Dialect::Eql => matches!(w.as_str(), "in" | "in~" | "like" | "like~" | "regex" | "regex~"),
                Dialect::Esql => matches!(lw.as_str(), "in" | "like" | "rlike"),
            };
            if is_op {
                self.pos += 1;
                let rhs = if lw.starts_with("in") || self.at_open() { self.list()? } else { vec![self.term()?] };
                let e = Expr::Cmp { lhs, op: lw, rhs, span: Span { start, end: last(self) } };
                return Ok(if negated { Expr::Not(Box::new(e), Span { start, end: last(self) }) } else { e });
            }
        }
        if negated {
            return Err(self.error("`in`, `like` or `regex` after `not`"));
        }
        Ok(Expr::Term(lhs, Span { start, end: last(self) }))
    }

    fn next_is_pattern_op(&self) -> bool {
        matches!(self.toks.get(self.pos + 1), Some(Token { tok: Tok::Ident(w), .. })
            if matches!(w.to_ascii_lowercase().as_str(), "in" | "in~" | "like" | "like~" | "regex" | "regex~" | "rlike"))
    }

    fn at_open(&self) -> bool {
        matches!(self.peek(), Some(Token { tok: Tok::Punct("("), .. }))
    }

    fn list(&mut self) -> Result<Vec<Term>, SyntaxError> {
        self.expect_punct("(")?;
        let mut out = vec![self.term()?];
        while self.eat_punct(",") {
            out.push(self.term()?);
        }
        self.expect_punct(")")?;
        Ok(out)
    }

    /// A value: operands joined by arithmetic (`NOW() - 7 days`), `*` `/` `%` before `+` `-`.
    fn term(&mut self) -> Result<Term, SyntaxError> {
        let mut lhs = self.product()?;
        while let Some(op) = self.arith(&["+", "-"]) {
            let rhs = self.product()?;
            lhs = Term::Arith { op, lhs: Box::new(lhs), rhs: Box::new(rhs) };
        }
        Ok(lhs)
    }

    fn product(&mut self) -> Result<Term, SyntaxError> {
        let mut lhs = self.operand()?;
        while let Some(op) = self.arith(&["*", "/", "%"]) {
            let rhs = self.operand()?;
            lhs = Term::Arith { op, lhs: Box::new(lhs), rhs: Box::new(rhs) };
        }
        Ok(lhs)
    }

    fn arith(&mut self, ops: &[&'static str]) -> Option<&'static str> {
        match self.peek() {
            Some(Token { tok: Tok::Punct(p), .. }) if ops.contains(p) => {
                let p = *p;
                self.pos += 1;
                Some(p)
            }
            _ => None,
        }
    }

    fn operand(&mut self) -> Result<Term, SyntaxError> {
        let Some(t) = self.peek().cloned() else {
            return Err(self.error("a field, a string or a number"));
        };
        match t.tok {
            Tok::Str(s) => {
                self.pos += 1;
                Ok(Term::Lit(Lit::Str(s)))
            }
            Tok::Num(n) => {
                self.pos += 1;
                if self.dialect == Dialect::Esql
                    && let Some(Token { tok: Tok::Ident(u), .. }) = self.peek()
                    && TIME_UNITS.contains(&u.to_ascii_lowercase().as_str())
                {
                    let u = u.clone();
                    self.pos += 1;
                    return Ok(Term::Span(n, u));
                }
                Ok(Term::Lit(Lit::Num(n)))
            }
            Tok::Ident(w) => {
                let lw = w.to_ascii_lowercase();
                let reserved = matches!(lw.as_str(), "and" | "or" | "not" | "in" | "in~" | "like" | "like~" | "regex" | "regex~" | "rlike" | "where" | "is");
                if reserved {
                    return Err(self.error("a field, a string or a number"));
                }
                self.pos += 1;
                if self.at_open() {
                    self.pos += 1;
                    let mut args = vec![];
                    if !self.eat_punct(")") {
                        args.push(self.term()?);
                        while self.eat_punct(",") {
                            args.push(self.term()?);
                        }
                        self.expect_punct(")")?;
                    }
                    let insensitive = w.ends_with('~');
                    let name = w.trim_end_matches('~').to_string();
                    return Ok(Term::Call { name, insensitive, args });
                }
                Ok(match lw.as_str() {
                    "true" => Term::Lit(Lit::Bool(true)),
                    "false" => Term::Lit(Lit::Bool(false)),
                    "null" => Term::Lit(Lit::Null),
                    _ => Term::Field(w),
                })
            }
            Tok::Punct(_) | Tok::Pipe => Err(self.error("a field, a string or a number")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str, d: Dialect) -> Result<Expr, SyntaxError> {
        let mut p = Parser::new(q, 0, q.len(), d)?;
        let e = p.expr()?;
        p.finish()?;
        Ok(e)
    }

    #[test]
    fn eql_operators_and_spans() {
        let q = r#"event.action in~ ("A", "B") and not ?user.name : "x*" and stringContains~(a.b, "c\"d")"#;
        let e = parse(q, Dialect::Eql).unwrap();
        let Expr::And(kids, _) = &e else { panic!("{e:?}") };
        assert_eq!(kids.len(), 3);
        assert!(matches!(&kids[0], Expr::Cmp { op, rhs, .. } if op == "in~" && rhs.len() == 2));
        let Expr::Not(inner, s) = &kids[1] else { panic!() };
        assert_eq!(&q[s.start..s.end], r#"not ?user.name : "x*""#);
        assert!(matches!(&**inner, Expr::Cmp { lhs: Term::Field(f), op, .. } if f == "user.name" && op == ":"));
        assert!(matches!(&kids[2], Expr::Term(Term::Call { name, insensitive: true, args }, _)
            if name == "stringContains" && args[1] == Term::Lit(Lit::Str("c\"d".into()))));
        let e = parse("(a == 1 or b != \"x\") and c like \"x?\" and d regex~ \"\"\"a\\d\"\"\"", Dialect::Eql).unwrap();
        assert!(matches!(e, Expr::And(ref k, _) if k.len() == 3));
    }

    #[test]
    fn esql_keywords() {
        let e = parse(r#"a IS NULL OR a != "x" AND b NOT LIKE "y*" AND c IN ("1", "2") and d RLIKE """.*\".*""""#, Dialect::Esql).unwrap();
        let Expr::Or(k, _) = &e else { panic!("{e:?}") };
        assert!(matches!(&k[0], Expr::IsNull { negated: false, .. }));
        let Expr::And(k, _) = &k[1] else { panic!() };
        assert!(matches!(&k[1], Expr::Not(..)));
        assert!(matches!(&k[3], Expr::Cmp { op, rhs, .. } if op == "rlike" && rhs[0] == Term::Lit(Lit::Str(".*\\\".*".into()))));
    }

    #[test]
    fn esql_arithmetic_and_time_spans_parse() {
        let e = parse("@timestamp >= NOW() - 7 days AND x < 2 * y + 1", Dialect::Esql).unwrap();
        let Expr::And(k, _) = &e else { panic!("{e:?}") };
        let Expr::Cmp { rhs, .. } = &k[0] else { panic!("{e:?}") };
        assert!(matches!(&rhs[0], Term::Arith { op: "-", lhs, rhs }
            if matches!(&**lhs, Term::Call { name, .. } if name == "NOW") && **rhs == Term::Span("7".into(), "days".into())), "{rhs:?}");
        // `*` binds before `+`
        let Expr::Cmp { rhs, .. } = &k[1] else { panic!("{e:?}") };
        assert!(matches!(&rhs[0], Term::Arith { op: "+", lhs, .. } if matches!(&**lhs, Term::Arith { op: "*", .. })), "{rhs:?}");
        // a unit is a time span only in ES|QL
        assert!(parse("a >= 7 days", Dialect::Eql).is_err());
    }

    #[test]
    fn errors_are_located() {
        let e = parse("a == \"x\" and (b == 1", Dialect::Eql).unwrap_err();
        assert_eq!(e.offset, 20);
        assert_eq!(e.expected, "`)`");
        let e = parse("a == \"x", Dialect::Eql).unwrap_err();
        assert_eq!(e.offset, 5);
        let e = parse("a == 1 b", Dialect::Eql).unwrap_err();
        assert_eq!(e.offset, 7);
        let e = parse("a # 1", Dialect::Eql).unwrap_err();
        assert_eq!(e.offset, 2);
    }
}
