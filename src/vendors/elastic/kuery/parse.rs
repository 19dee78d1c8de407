//! Kuery text → [`Query`]: a recursive-descent parser following Kibana's `grammar.peggy`.
//!
//! The boolean levels (`or` / `and` / `not` / parentheses) are written once, generic over the
//! two trees that share them: queries and value lists (`field:(a or not b)`).

use std::fmt;

use super::{
    Field, Piece, Query, QueryKind, RangeOp, Span, Style, Value, ValueKind, ValueList,
    ValueListKind,
};

/// Parentheses, braces and `not`s nested deeper than this are refused (no stack overflow).
const MAX_DEPTH: usize = 128;

/// A syntax error: where, what was expected there and what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Byte offset in the query text.
    pub offset: usize,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What would have been valid here (`a value after `:``).
    pub expected: String,
    /// What is here (`` `)` ``, `end of query`).
    pub found: String,
    /// How to fix it, when there is more to say.
    pub hint: Option<String>,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: expected {}, found {}",
            self.line, self.column, self.expected, self.found
        )?;
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ParseError {}

impl ParseError {
    fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// Parse kuery text into a [`Query`].
///
/// Every node carries its byte span; an error says where (byte offset, line, column), what was
/// expected and what was found. See the [module docs](super) for the grammar.
pub fn parse(text: &str) -> Result<Query, ParseError> {
    let mut p = Parser {
        src: text,
        pos: 0,
        depth: 0,
        multiword: None,
    };
    p.skip_space();
    if p.at_end() {
        return Err(p.error(p.pos, "a query"));
    }
    let q = p.or::<Query>(None)?;
    p.skip_space();
    if !p.at_end() {
        let mut e = p.error(p.pos, "`and`, `or` or the end of the query");
        if p.peek() == Some(')') {
            e = e.with_hint("this `)` has no matching `(`");
        }
        return Err(p.multiword_hint(e));
    }
    Ok(q)
}

/// Kibana's `Space`.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n' | '\u{a0}')
}

/// Kibana's `SpecialCharacter`.
fn is_special(c: char) -> bool {
    matches!(
        c,
        '\\' | '(' | ')' | ':' | '<' | '>' | '"' | '*' | '{' | '}'
    )
}

/// What JavaScript's `String.prototype.trim` removes (Kibana trims unquoted literals).
fn is_js_space(c: char) -> bool {
    c == '\u{feff}' || (c.is_whitespace() && c != '\u{85}')
}

/// Can a keyword end just before `c` (`None`: end of text)? Not before `*` or `\`, which
/// continue a literal (`or*` is a wildcard value).
fn ends_word(c: Option<char>) -> bool {
    match c {
        None => true,
        Some(c) => is_space(c) || (is_special(c) && c != '*' && c != '\\'),
    }
}

/// The 1-based line and column (in characters) of a byte offset.
fn line_col(src: &str, at: usize) -> (usize, usize) {
    let before = src.get(..at).unwrap_or(src);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kw {
    And,
    Or,
    Not,
}

impl Kw {
    fn text(self) -> &'static str {
        match self {
            Kw::And => "and",
            Kw::Or => "or",
            Kw::Not => "not",
        }
    }
}

#[derive(Clone, Copy)]
enum Bool {
    And,
    Or,
}

/// The two trees built by the boolean levels.
trait Tree: Sized {
    /// What an operand is called in messages.
    const WHAT: &'static str;
    fn span(&self) -> Span;
    fn respan(self, span: Span) -> Self;
    fn combine(op: Bool, items: Vec<Self>, span: Span) -> Self;
    fn negate(inner: Self, span: Span) -> Self;
    /// An operand that is not a parenthesised group.
    fn leaf(p: &mut Parser<'_>, after: Option<&'static str>) -> Result<Self, ParseError>;
}

impl Tree for Query {
    const WHAT: &'static str = "a query";
    fn span(&self) -> Span {
        self.span
    }
    fn respan(self, span: Span) -> Self {
        Query { span, ..self }
    }
    fn combine(op: Bool, items: Vec<Self>, span: Span) -> Self {
        let kind = match op {
            Bool::And => QueryKind::And(items),
            Bool::Or => QueryKind::Or(items),
        };
        Query { kind, span, style: Style::default() }
    }
    fn negate(inner: Self, span: Span) -> Self {
        Query {
            kind: QueryKind::Not(Box::new(inner)),
            span,
            style: Style::default(),
        }
    }
    fn leaf(p: &mut Parser<'_>, after: Option<&'static str>) -> Result<Self, ParseError> {
        p.expression(after)
    }
}

impl Tree for ValueList {
    const WHAT: &'static str = "a value";
    fn span(&self) -> Span {
        self.span
    }
    fn respan(self, span: Span) -> Self {
        ValueList { span, ..self }
    }
    fn combine(op: Bool, items: Vec<Self>, span: Span) -> Self {
        let kind = match op {
            Bool::And => ValueListKind::And(items),
            Bool::Or => ValueListKind::Or(items),
        };
        ValueList { kind, span }
    }
    fn negate(inner: Self, span: Span) -> Self {
        ValueList {
            kind: ValueListKind::Not(Box::new(inner)),
            span,
        }
    }
    fn leaf(p: &mut Parser<'_>, after: Option<&'static str>) -> Result<Self, ParseError> {
        let value = p.value(&expected(Self::WHAT, after))?;
        Ok(ValueList {
            span: value.span,
            kind: ValueListKind::One(value),
        })
    }
}

fn expected(what: &str, after: Option<&str>) -> String {
    match after {
        Some(a) => format!("{what} after {a}"),
        None => what.to_string(),
    }
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    depth: usize,
    /// The last unquoted literal that ran on over white space, for hints.
    multiword: Option<(Span, String)>,
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        self.src.get(self.pos..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn char_at(&self, at: usize) -> Option<char> {
        self.src.get(at..).and_then(|s| s.chars().next())
    }

    fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    /// Skip Kibana white space; true if any was skipped.
    fn skip_space(&mut self) -> bool {
        let start = self.pos;
        while let Some(c) = self.peek().filter(|c| is_space(*c)) {
            self.pos += c.len_utf8();
        }
        self.pos > start
    }

    /// `word` (ASCII, case-insensitive) at `at`.
    fn word_at(&self, at: usize, word: &str) -> bool {
        self.src
            .get(at..at + word.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(word))
    }

    /// A keyword at `at` that ends there (followed by white space, a special character other
    /// than `*` and `\`, or the end).
    fn keyword_at(&self, at: usize) -> Option<Kw> {
        [Kw::And, Kw::Or, Kw::Not].into_iter().find(|k| {
            let w = k.text();
            self.word_at(at, w) && ends_word(self.char_at(at + w.len()))
        })
    }

    /// What is at `at`, for messages.
    fn found(&self, at: usize) -> String {
        let rest = self.src.get(at..).unwrap_or("");
        match rest.chars().next() {
            None => "end of query".into(),
            Some(c) if is_space(c) => "white space".into(),
            Some(c) if is_special(c) => format!("`{c}`"),
            Some(_) => {
                if let Some(k) = self.keyword_at(at) {
                    return format!("`{}`", &rest[..k.text().len()]);
                }
                let word: String = rest
                    .chars()
                    .take_while(|c| !is_space(*c) && !is_special(*c))
                    .take(40)
                    .collect();
                format!("`{word}`")
            }
        }
    }

    fn error(&self, at: usize, expected: impl Into<String>) -> ParseError {
        self.error_found(at, expected, self.found(at))
    }

    fn error_found(
        &self,
        at: usize,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> ParseError {
        let (line, column) = line_col(self.src, at);
        ParseError {
            offset: at,
            line,
            column,
            expected: expected.into(),
            found: found.into(),
            hint: None,
        }
    }

    /// Explain a stray term after a value that ran on over white space (`a:b c:d`).
    fn multiword_hint(&self, e: ParseError) -> ParseError {
        match &self.multiword {
            Some((span, text))
                if e.hint.is_none()
                    && span.end <= e.offset
                    && self
                        .src
                        .get(span.end..e.offset)
                        .is_some_and(|s| s.chars().all(is_space)) =>
            {
                e.with_hint(format!(
                    "`{text}` was read as one value containing white space (Kibana allows that); \
                     join terms with `and` / `or`, or quote the value"
                ))
            }
            _ => e,
        }
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self
                .error(self.pos, format!("at most {MAX_DEPTH} levels of nesting"))
                .with_hint("simplify the query"));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    // ---- boolean levels, shared by queries and value lists ----

    fn or<T: Tree>(&mut self, after: Option<&'static str>) -> Result<T, ParseError> {
        self.level::<T>(Bool::Or, after)
    }

    /// `Or`: and ("or" and)*; `And`: not ("and" not)*.
    fn level<T: Tree>(&mut self, op: Bool, after: Option<&'static str>) -> Result<T, ParseError> {
        let (kw, after_kw) = match op {
            Bool::Or => (Kw::Or, "`or`"),
            Bool::And => (Kw::And, "`and`"),
        };
        let operand = |p: &mut Self, after| match op {
            Bool::Or => p.level::<T>(Bool::And, after),
            Bool::And => p.not::<T>(after),
        };
        let first = operand(self, after)?;
        let mut items = vec![first];
        while self.connective::<T>(kw)? {
            items.push(operand(self, Some(after_kw))?);
        }
        if items.len() == 1 {
            return Ok(items.remove(0));
        }
        let span = Span::new(items[0].span().start, items[items.len() - 1].span().end);
        Ok(T::combine(op, items, span))
    }

    /// White space, `kw`, white space: consumed and true. Anything else: nothing consumed.
    fn connective<T: Tree>(&mut self, kw: Kw) -> Result<bool, ParseError> {
        let save = self.pos;
        if !self.skip_space() {
            // a keyword right after a quoted value or `)`: Kibana needs white space before it
            if let Some(k @ (Kw::And | Kw::Or)) = self.keyword_at(self.pos) {
                return Err(self.error(self.pos, format!("white space before `{}`", k.text())));
            }
            return Ok(false);
        }
        if self.keyword_at(self.pos) != Some(kw) {
            self.pos = save;
            return Ok(false);
        }
        self.pos += kw.text().len();
        if self.skip_space() {
            return Ok(true);
        }
        let after = format!("`{}`", kw.text());
        Err(match self.peek() {
            None | Some(')') | Some('}') => self.error(self.pos, expected(T::WHAT, Some(&after))),
            Some(_) => self.error(self.pos, format!("white space after {after}")),
        })
    }

    /// "not" primary | primary.
    fn not<T: Tree>(&mut self, after: Option<&'static str>) -> Result<T, ParseError> {
        if self.word_at(self.pos, "not") {
            let start = self.pos;
            let next = start + 3;
            match self.char_at(next) {
                Some(c) if is_space(c) => {
                    self.pos = next;
                    self.skip_space();
                    let inner = self.primary::<T>(Some("`not`"))?;
                    let span = Span::new(start, inner.span().end);
                    return Ok(T::negate(inner, span));
                }
                Some('(') => {
                    return Err(self
                        .error(next, "white space after `not`")
                        .with_hint("Kibana needs white space after `not`: `not (…)`"));
                }
                _ => {}
            }
        }
        self.primary::<T>(after)
    }

    /// "(" or ")" | leaf.
    fn primary<T: Tree>(&mut self, after: Option<&'static str>) -> Result<T, ParseError> {
        if self.peek() != Some('(') {
            return T::leaf(self, after);
        }
        let open = self.pos;
        self.pos += 1;
        self.enter()?;
        self.skip_space();
        let inner = self.or::<T>(Some("`(`"))?;
        self.skip_space();
        if self.peek() != Some(')') {
            let (l, c) = line_col(self.src, open);
            let e = self.error(
                self.pos,
                format!("`and`, `or` or `)` to close the `(` at {l}:{c}"),
            );
            return Err(self.multiword_hint(e));
        }
        self.pos += 1;
        self.leave();
        Ok(inner.respan(Span::new(open, self.pos)))
    }

    // ---- queries ----

    /// nested | range | field:values | bare value.
    fn expression(&mut self, after: Option<&'static str>) -> Result<Query, ParseError> {
        let what = expected(Query::WHAT, after);
        let lit = self.value(&what)?;
        let after_lit = self.pos;
        self.skip_space();
        match self.peek() {
            Some(':') => {
                let field = self.field(lit)?;
                self.pos += 1;
                self.skip_space();
                if self.peek() == Some('{') {
                    return self.nested(field);
                }
                if self.word_at(self.pos, "not") && self.char_at(self.pos + 3).is_some_and(is_space)
                {
                    return Err(self
                        .error(self.pos, "a value after `:`")
                        .with_hint(format!(
                            "Kibana takes `not` after `:` only inside parentheses: write `not {0}:…` or `{0}:(not …)`",
                            field.name
                        )));
                }
                let values = self.primary::<ValueList>(Some("`:`"))?;
                let span = Span::new(field.span.start, values.span.end);
                Ok(Query {
                    kind: QueryKind::Is {
                        field: Some(field),
                        values,
                    },
                    span,
                    style: Style::default(),
                })
            }
            Some(c @ ('<' | '>')) => {
                let field = self.field(lit)?;
                let eq = self.char_at(self.pos + 1) == Some('=');
                let op = match (c, eq) {
                    ('<', false) => RangeOp::Lt,
                    ('<', true) => RangeOp::Le,
                    ('>', false) => RangeOp::Gt,
                    _ => RangeOp::Ge,
                };
                self.pos += if eq { 2 } else { 1 };
                self.skip_space();
                let after_op = match op {
                    RangeOp::Lt => "`<`",
                    RangeOp::Le => "`<=`",
                    RangeOp::Gt => "`>`",
                    RangeOp::Ge => "`>=`",
                };
                let value = self.value(&expected("a value", Some(after_op)))?;
                let span = Span::new(field.span.start, value.span.end);
                Ok(Query {
                    kind: QueryKind::Range { field, op, value },
                    span,
                    style: Style::default(),
                })
            }
            _ => {
                self.pos = after_lit;
                Ok(Query {
                    span: lit.span,
                    kind: QueryKind::Is {
                        field: None,
                        values: ValueList {
                            span: lit.span,
                            kind: ValueListKind::One(lit),
                        },
                    },
                    style: Style::default(),
                })
            }
        }
    }

    /// `field:{ query }`, after the `:`.
    fn nested(&mut self, field: Field) -> Result<Query, ParseError> {
        let open = self.pos;
        self.pos += 1;
        self.enter()?;
        self.skip_space();
        let inner = self.or::<Query>(Some("`{`"))?;
        self.skip_space();
        if self.peek() != Some('}') {
            let (l, c) = line_col(self.src, open);
            let e = self.error(
                self.pos,
                format!("`and`, `or` or `}}` to close the `{{` at {l}:{c}"),
            );
            return Err(self.multiword_hint(e));
        }
        self.pos += 1;
        self.leave();
        let span = Span::new(field.span.start, self.pos);
        Ok(Query {
            kind: QueryKind::Nested {
                field,
                query: Box::new(inner),
            },
            span,
            style: Style::default(),
        })
    }

    /// A literal used as a field name.
    fn field(&self, lit: Value) -> Result<Field, ParseError> {
        match lit.kind {
            ValueKind::Quoted(name) => Ok(Field {
                name,
                quoted: true,
                span: lit.span,
            }),
            ValueKind::Unquoted(pieces) => {
                let mut name = String::new();
                for p in &pieces {
                    match p {
                        Piece::Text(t) => name.push_str(t),
                        Piece::Star => {
                            let text = self.src.get(lit.span.start..lit.span.end).unwrap_or("");
                            return Err(self
                                .error_found(
                                    lit.span.start,
                                    "a field name without a wildcard",
                                    format!("`{text}`"),
                                )
                                .with_hint(
                                    "field-name wildcards are not supported; name each field, or escape a literal `*` as `\\*`",
                                ));
                        }
                    }
                }
                Ok(Field {
                    name,
                    quoted: false,
                    span: lit.span,
                })
            }
        }
    }

    // ---- literals ----

    /// A quoted or unquoted literal; `what` names it in messages ("a value after `:`").
    fn value(&mut self, what: &str) -> Result<Value, ParseError> {
        match self.peek() {
            Some('"') => self.quoted(),
            None => Err(self.error(self.pos, what)),
            Some(c) if is_special(c) && c != '*' && c != '\\' => {
                let e = self.error(self.pos, what);
                Err(match c {
                    '<' | '>' => e.with_hint("a range is written `field > value`, without `:`"),
                    _ => e,
                })
            }
            Some(_) => self.unquoted(what),
        }
    }

    /// `\uXXXX` at `at` (the backslash): the character and the bytes used, `None` if four hex
    /// digits do not follow. A surrogate pair written as two escapes is one character.
    fn unicode_escape(&self, at: usize) -> Result<Option<(char, usize)>, ParseError> {
        let hex4 = |i: usize| -> Option<u32> {
            let s = self.src.get(i..i + 4)?;
            if s.chars().all(|c| c.is_ascii_hexdigit()) {
                u32::from_str_radix(s, 16).ok()
            } else {
                None
            }
        };
        if !self.word_at(at, "\\u") {
            return Ok(None);
        }
        let Some(hi) = hex4(at + 2) else {
            return Ok(None);
        };
        if let Some(c) = char::from_u32(hi) {
            return Ok(Some((c, 6)));
        }
        let low = (0xD800..0xDC00).contains(&hi) && self.word_at(at + 6, "\\u");
        let pair = hex4(at + 8)
            .filter(|lo| low && (0xDC00..0xE000).contains(lo))
            .and_then(|lo| char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)));
        if let Some(c) = pair {
            return Ok(Some((c, 12)));
        }
        let text = self.src.get(at..at + 6).unwrap_or("");
        Err(self.error_found(
            at,
            "a Unicode scalar value (a lone surrogate cannot be represented)",
            format!("`{text}`"),
        ))
    }

    /// `"…"`.
    fn quoted(&mut self) -> Result<Value, ParseError> {
        let start = self.pos;
        self.pos += 1;
        let mut s = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self
                    .error_found(start, "a closing `\"` for this string", "end of query")
                    .with_hint("escape a `\"` inside a string as `\\\"`"));
            };
            match c {
                '"' => {
                    self.pos += 1;
                    break;
                }
                '\\' => {
                    let next = self.char_at(self.pos + 1);
                    let simple = match next {
                        Some('t') => Some('\t'),
                        Some('r') => Some('\r'),
                        Some('n') => Some('\n'),
                        Some('\\') => Some('\\'),
                        Some('"') => Some('"'),
                        _ => None,
                    };
                    if let Some(ch) = simple {
                        s.push(ch);
                        self.pos += 2;
                    } else if let Some((ch, len)) = self.unicode_escape(self.pos)? {
                        s.push(ch);
                        self.pos += len;
                    } else {
                        // any other backslash is itself (Kibana's `[^"]`)
                        s.push('\\');
                        self.pos += 1;
                    }
                }
                c => {
                    s.push(c);
                    self.pos += c.len_utf8();
                }
            }
        }
        Ok(Value {
            kind: ValueKind::Quoted(s),
            span: Span::new(start, self.pos),
        })
    }

    /// An unquoted literal: runs on over white space up to a keyword surrounded by white space,
    /// a special character or the end, then is trimmed (Kibana's `UnquotedLiteral`).
    fn unquoted(&mut self, what: &str) -> Result<Value, ParseError> {
        let start = self.pos;
        if let Some(kw) = self.keyword_at(start) {
            let word = &self.rest()[..kw.text().len()];
            return Err(self
                .error_found(start, what, format!("the keyword `{word}`"))
                .with_hint(match kw {
                    Kw::Not => format!(
                        "to use `{word}` as a value, quote it (`\"{word}\"`); a double negation is written `not (not …)`"
                    ),
                    Kw::And | Kw::Or => {
                        format!("to use `{word}` as a value, quote it (`\"{word}\"`)")
                    }
                }));
        }
        let mut pieces: Vec<Piece> = vec![];
        let mut text = String::new();
        let mut end = start;
        let mut multiword = false;
        while let Some(c) = self.peek() {
            if c == '\\' {
                let (ch, len) = self.unquoted_escape()?;
                text.push_str(&ch);
                self.pos += len;
                end = self.pos;
            } else if c == '*' {
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Star);
                self.pos += 1;
                end = self.pos;
            } else if is_space(c) {
                let ws_start = self.pos;
                self.skip_space();
                let stop = match self.peek() {
                    None => true,
                    Some(n) if is_special(n) && n != '*' && n != '\\' => true,
                    Some(_) => self.keyword_at(self.pos).is_some(),
                };
                if stop {
                    self.pos = ws_start;
                    break;
                }
                text.push_str(&self.src[ws_start..self.pos]);
                multiword = true;
            } else if is_special(c) {
                break;
            } else {
                if self.word_at(self.pos, "not") && self.char_at(self.pos + 3).is_some_and(is_space)
                {
                    let word_start = self.src[start..self.pos]
                        .rfind(is_space)
                        .map(|i| start + i + 1)
                        .unwrap_or(start);
                    let word = &self.src[word_start..self.pos + 3];
                    return Err(self
                        .error_found(
                            self.pos,
                            "the rest of the value",
                            format!("`{}` followed by white space at the end of `{word}`", &self.src[self.pos..self.pos + 3]),
                        )
                        .with_hint(
                            "Kibana reads `not` followed by white space as the keyword even inside a word, and rejects the query; quote the value, or escape the `n` as `\\u006e`",
                        ));
                }
                text.push(c);
                self.pos += c.len_utf8();
                end = self.pos;
            }
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        // Kibana: `chars.join('').trim()`, after unescaping
        if let Some(Piece::Text(t)) = pieces.first_mut() {
            *t = t.trim_start_matches(is_js_space).to_string();
        }
        if let Some(Piece::Text(t)) = pieces.last_mut() {
            *t = t.trim_end_matches(is_js_space).to_string();
        }
        pieces.retain(|p| !matches!(p, Piece::Text(t) if t.is_empty()));
        let span = Span::new(start, end);
        if pieces.is_empty() {
            let raw = self.src.get(start..end).unwrap_or("");
            return Err(self
                .error_found(
                    start,
                    what,
                    format!("`{raw}`, which Kibana trims to nothing"),
                )
                .with_hint("write an empty value as `\"\"`"));
        }
        let value = Value {
            kind: ValueKind::Unquoted(pieces),
            span,
        };
        if multiword {
            self.multiword = Some((span, self.src[start..end].to_string()));
        }
        Ok(value)
    }

    /// An escape in an unquoted literal at `self.pos` (a backslash): its text and length.
    /// Kibana's order: `\t` `\r` `\n`, `\` + special, `\uXXXX`, `\and` `\or` `\not`.
    fn unquoted_escape(&self) -> Result<(String, usize), ParseError> {
        let at = self.pos;
        match self.char_at(at + 1) {
            Some('t') => return Ok(("\t".into(), 2)),
            Some('r') => return Ok(("\r".into(), 2)),
            Some('n') => return Ok(("\n".into(), 2)),
            Some(c) if is_special(c) => return Ok((c.to_string(), 2)),
            None => {
                return Err(self.error_found(at, "a character after `\\`", "end of query"));
            }
            Some(_) => {}
        }
        if let Some((c, len)) = self.unicode_escape(at)? {
            return Ok((c.to_string(), len));
        }
        for kw in ["and", "or", "not"] {
            if self.word_at(at + 1, kw) {
                let typed = &self.src[at + 1..at + 1 + kw.len()];
                return Ok((typed.to_string(), 1 + kw.len()));
            }
        }
        let found: String = self.src[at..].chars().take(2).collect();
        Err(self
            .error_found(
                at,
                "an escape: `\\t`, `\\r`, `\\n`, `\\uXXXX`, `\\` before one of `\\():<>\"*{}`, or `\\and`, `\\or`, `\\not`",
                format!("`{found}`"),
            )
            .with_hint("to match a backslash, write `\\\\`"))
    }
}
