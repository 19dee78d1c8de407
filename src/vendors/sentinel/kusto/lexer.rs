//! Query text -> tokens. Hand-written; every token carries its byte span.
//!
//! String literals are decoded here: `"..."` and `'...'` with backslash escapes, verbatim
//! `@"..."` / `@'...'` (a doubled quote stands for one), obfuscated `h"..."` (read as a plain
//! string), and multi-line ```` ```...``` ````. Typed literals whose content is not made of tokens
//! (`datetime(...)`, `timespan(...)`, `time(...)`, `date(...)`, `guid(...)`) come out as one
//! [`Tok::Typed`] token with their raw content.

use super::ParseError;
use super::syntax::Span;

/// 100-nanosecond ticks per unit.
pub(crate) const TICK: i64 = 1;
/// Ticks per microsecond.
pub(crate) const MICROSECOND: i64 = 10;
/// Ticks per millisecond.
pub(crate) const MILLISECOND: i64 = 10_000;
/// Ticks per second.
pub(crate) const SECOND: i64 = 10_000_000;
/// Ticks per minute.
pub(crate) const MINUTE: i64 = 60 * SECOND;
/// Ticks per hour.
pub(crate) const HOUR: i64 = 60 * MINUTE;
/// Ticks per day.
pub(crate) const DAY: i64 = 24 * HOUR;

/// Timespan literal suffixes (Kusto's list) and their size in ticks.
pub(crate) const TIMESPAN_UNITS: &[(&str, i64)] = &[
    ("d", DAY),
    ("day", DAY),
    ("days", DAY),
    ("h", HOUR),
    ("hr", HOUR),
    ("hrs", HOUR),
    ("hour", HOUR),
    ("hours", HOUR),
    ("m", MINUTE),
    ("min", MINUTE),
    ("minute", MINUTE),
    ("minutes", MINUTE),
    ("s", SECOND),
    ("sec", SECOND),
    ("second", SECOND),
    ("seconds", SECOND),
    ("ms", MILLISECOND),
    ("milli", MILLISECOND),
    ("millis", MILLISECOND),
    ("millisecond", MILLISECOND),
    ("milliseconds", MILLISECOND),
    ("microsecond", MICROSECOND),
    ("microseconds", MICROSECOND),
    ("tick", TICK),
    ("ticks", TICK),
];

/// Names of typed literals whose content is read raw.
const RAW_TYPED: &[&str] = &["datetime", "date", "timespan", "time", "guid"];

/// Punctuation, longest first.
const PUNCTS: &[&str] = &[
    "==", "!=", "<>", "<=", ">=", "=~", "!~", "..", "|", "(", ")", "[", "]", "{", "}", ",", ";",
    ":", "=", "<", ">", "+", "-", "*", "/", "%", ".", "!", "~",
];

/// A token.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// A word: a name or a keyword (`$left` included).
    Ident(String),
    /// A string literal, decoded.
    Str(String),
    /// An integer literal.
    Long(i64),
    /// A real literal.
    Real(f64),
    /// A timespan literal such as `1d`, in ticks.
    Timespan(i64),
    /// `datetime(...)` and friends: the type name and the raw content between the parentheses.
    Typed {
        /// `datetime`, `timespan`, ...
        ty: String,
        /// The content, trimmed.
        text: String,
    },
    /// Punctuation.
    Punct(&'static str),
    /// End of input.
    Eof,
}

/// A token and where it is.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub tok: Tok,
    pub span: Span,
}

/// How a token is named in "found ..." messages.
pub(crate) fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Ident(w) => format!("`{w}`"),
        Tok::Str(_) => "a string literal".to_string(),
        Tok::Long(n) => format!("`{n}`"),
        Tok::Real(r) => format!("`{r}`"),
        Tok::Timespan(_) => "a timespan literal".to_string(),
        Tok::Typed { ty, .. } => format!("a {ty} literal"),
        Tok::Punct(p) => format!("`{p}`"),
        Tok::Eof => "end of input".to_string(),
    }
}

/// Splits `src` into tokens; the last one is [`Tok::Eof`].
pub(crate) fn tokenize(src: &str) -> Result<Vec<Token>, ParseError> {
    let mut lx = Lexer {
        src,
        pos: 0,
        out: Vec::new(),
    };
    lx.run()?;
    Ok(lx.out)
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    out: Vec<Token>,
}

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_' || c == '$'
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

impl<'a> Lexer<'a> {
    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn peek2(&self) -> Option<char> {
        let mut it = self.rest().chars();
        it.next();
        it.next()
    }

    fn err(&self, at: usize, expected: impl Into<String>, found: impl Into<String>) -> ParseError {
        ParseError::new(self.src, at, expected, found)
    }

    fn push(&mut self, tok: Tok, start: usize) {
        self.out.push(Token {
            tok,
            span: Span::new(start, self.pos),
        });
    }

    fn run(&mut self) -> Result<(), ParseError> {
        loop {
            self.skip_trivia();
            let start = self.pos;
            let Some(c) = self.peek() else {
                self.push(Tok::Eof, start);
                return Ok(());
            };
            if (c == 'h' || c == 'H') && self.obfuscated_string_follows() {
                self.pos += 1;
                let s = self.string_literal()?;
                self.push(Tok::Str(s), start);
            } else if c == '"' || c == '\'' || c == '@' || self.rest().starts_with("```") {
                if c == '@' && !matches!(self.peek2(), Some('"' | '\'')) {
                    return Err(self.err(start, "a string literal after `@`", "`@`"));
                }
                let s = self.string_literal()?;
                self.push(Tok::Str(s), start);
            } else if c.is_ascii_digit() {
                let tok = self.number()?;
                self.push(tok, start);
            } else if is_ident_start(c) {
                let word = self.word();
                if RAW_TYPED.contains(&word) && self.paren_follows() {
                    let text = self.raw_parenthesized(start)?;
                    self.push(
                        Tok::Typed {
                            ty: word.to_string(),
                            text,
                        },
                        start,
                    );
                } else {
                    self.push(Tok::Ident(word.to_string()), start);
                }
            } else if let Some(p) = PUNCTS.iter().find(|p| self.rest().starts_with(**p)) {
                self.pos += p.len();
                self.push(Tok::Punct(p), start);
            } else {
                return Err(self.err(
                    start,
                    "a name, a literal, an operator or punctuation",
                    format!("`{c}`"),
                ));
            }
        }
    }

    fn skip_trivia(&mut self) {
        loop {
            let rest = self.rest();
            if rest.starts_with("//") {
                self.pos += rest.find('\n').unwrap_or(rest.len());
            } else if let Some(c) = self.peek().filter(|c| c.is_whitespace()) {
                self.pos += c.len_utf8();
            } else {
                return;
            }
        }
    }

    fn obfuscated_string_follows(&self) -> bool {
        let r = &self.rest()[1..];
        r.starts_with('"') || r.starts_with('\'') || r.starts_with("@\"") || r.starts_with("@'")
    }

    fn word(&mut self) -> &'a str {
        let rest = self.rest();
        let mut len = 0;
        for (i, c) in rest.char_indices() {
            let ok = if i == 0 {
                is_ident_start(c)
            } else {
                is_ident_char(c)
            };
            if !ok {
                break;
            }
            len = i + c.len_utf8();
        }
        self.pos += len;
        &rest[..len]
    }

    fn paren_follows(&self) -> bool {
        self.rest()
            .trim_start_matches([' ', '\t', '\r', '\n'])
            .starts_with('(')
    }

    /// `(content)` read raw, for `datetime(...)` and friends.
    fn raw_parenthesized(&mut self, start: usize) -> Result<String, ParseError> {
        self.skip_trivia();
        self.pos += 1; // `(`
        let rest = self.rest();
        match rest.find([')', '\n']) {
            Some(i) if rest.as_bytes()[i] == b')' => {
                let text = rest[..i].trim().to_string();
                self.pos += i + 1;
                Ok(text)
            }
            Some(i) => Err(self.err(self.pos + i, "`)` closing the literal", "end of line")),
            None => Err(self.err(
                self.src.len(),
                format!("`)` closing the literal at byte {start}"),
                "end of input",
            )),
        }
    }

    fn number(&mut self) -> Result<Tok, ParseError> {
        let start = self.pos;
        let bytes = self.src.as_bytes();
        let digits = |mut i: usize| {
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            i
        };
        let mut i = start;
        let is_hex = self.rest().starts_with("0x") || self.rest().starts_with("0X");
        if is_hex {
            i += 2;
            while i < bytes.len() && bytes[i].is_ascii_hexdigit() {
                i += 1;
            }
            let text = &self.src[start + 2..i];
            self.pos = i;
            self.reject_suffix(start)?;
            return i64::from_str_radix(text, 16).map(Tok::Long).map_err(|_| {
                self.err(
                    start,
                    "a hexadecimal integer that fits 64 bits",
                    format!("`{}`", &self.src[start..i]),
                )
            });
        }
        i = digits(i);
        let mut real = false;
        if i + 1 < bytes.len() && bytes[i] == b'.' && bytes[i + 1].is_ascii_digit() {
            real = true;
            i = digits(i + 1);
        }
        if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
            let mut j = i + 1;
            if j < bytes.len() && (bytes[j] == b'+' || bytes[j] == b'-') {
                j += 1;
            }
            if j < bytes.len() && bytes[j].is_ascii_digit() {
                real = true;
                i = digits(j);
            }
        }
        let text = &self.src[start..i];
        self.pos = i;
        // A timespan: the number is immediately followed by a unit.
        if self.peek().is_some_and(is_ident_start) {
            let unit_start = self.pos;
            let unit = self.word();
            let Some((_, ticks)) = TIMESPAN_UNITS.iter().find(|(u, _)| *u == unit) else {
                return Err(self.err(
                    unit_start,
                    "a timespan unit (d, h, m, s, ms, microsecond, tick) or a separator after the number",
                    format!("`{}`", &self.src[start..self.pos]),
                ));
            };
            let value = if real {
                text.parse::<f64>()
                    .ok()
                    .map(|v| (v * *ticks as f64).round())
                    .filter(|v| v.abs() < 9.2e18)
                    .map(|v| v as i64)
            } else {
                text.parse::<i64>().ok().and_then(|v| v.checked_mul(*ticks))
            };
            return value.map(Tok::Timespan).ok_or_else(|| {
                self.err(
                    start,
                    "a timespan that fits 64 bits",
                    format!("`{}`", &self.src[start..self.pos]),
                )
            });
        }
        if real {
            text.parse::<f64>()
                .map(Tok::Real)
                .map_err(|_| self.err(start, "a real number", format!("`{text}`")))
        } else {
            text.parse::<i64>()
                .map(Tok::Long)
                .map_err(|_| self.err(start, "an integer that fits 64 bits", format!("`{text}`")))
        }
    }

    fn reject_suffix(&self, start: usize) -> Result<(), ParseError> {
        match self.peek() {
            Some(c) if is_ident_char(c) => Err(self.err(
                self.pos,
                "a separator after the number",
                format!("`{}{c}`", &self.src[start..self.pos]),
            )),
            _ => Ok(()),
        }
    }

    /// A string literal starting at `self.pos` (after any `h` prefix).
    fn string_literal(&mut self) -> Result<String, ParseError> {
        let start = self.pos;
        if self.rest().starts_with("```") {
            self.pos += 3;
            let rest = self.rest();
            return match rest.find("```") {
                Some(i) => {
                    self.pos += i + 3;
                    Ok(rest[..i].to_string())
                }
                None => Err(self.err(
                    self.src.len(),
                    format!("``` closing the multi-line string opened at byte {start}"),
                    "end of input",
                )),
            };
        }
        let verbatim = self.peek() == Some('@');
        if verbatim {
            self.pos += 1;
        }
        let quote = self.peek().unwrap_or('"');
        self.pos += 1;
        let mut out = String::new();
        loop {
            let here = self.pos;
            let Some(c) = self.peek() else {
                return Err(self.err(
                    here,
                    format!(
                        "`{quote}` closing the string opened at {}",
                        self.place(start)
                    ),
                    "end of input",
                ));
            };
            if c == '\n' || c == '\r' {
                return Err(self.err(
                    here,
                    format!(
                        "`{quote}` closing the string opened at {} (write a line break as \\n)",
                        self.place(start)
                    ),
                    "end of line",
                ));
            }
            self.pos += c.len_utf8();
            if c == quote {
                if verbatim && self.peek() == Some(quote) {
                    self.pos += 1;
                    out.push(quote);
                    continue;
                }
                return Ok(out);
            }
            if c == '\\' && !verbatim {
                out.push(self.escape(here)?);
                continue;
            }
            out.push(c);
        }
    }

    fn place(&self, offset: usize) -> String {
        let (line, col) = super::line_col(self.src, offset);
        format!("{line}:{col}")
    }

    /// The character an escape sequence stands for; `at` is the backslash.
    fn escape(&mut self, at: usize) -> Result<char, ParseError> {
        const KNOWN: &str = r#"one of \\ \" \' \n \t \r \a \b \f \v \xHH \uHHHH \UHHHHHHHH"#;
        let Some(c) = self.peek() else {
            return Err(self.err(at, KNOWN, "end of input"));
        };
        self.pos += c.len_utf8();
        Ok(match c {
            '\\' | '"' | '\'' => c,
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            'a' => '\u{7}',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'v' => '\u{b}',
            'x' => {
                let v = self.hex(at, 2)?;
                char::from_u32(v)
                    .ok_or_else(|| self.err(at, KNOWN, format!("`{}`", &self.src[at..self.pos])))?
            }
            'u' => {
                let v = self.hex(at, 4)?;
                if (0xD800..0xDC00).contains(&v) {
                    // A UTF-16 surrogate pair: `\uD83D\uDE00`.
                    if self.rest().starts_with("\\u") {
                        let second = self.pos;
                        self.pos += 2;
                        let lo = self.hex(second, 4)?;
                        if (0xDC00..0xE000).contains(&lo) {
                            let v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
                            return char::from_u32(v).ok_or_else(|| {
                                self.err(
                                    at,
                                    "a valid surrogate pair",
                                    format!("`{}`", &self.src[at..self.pos]),
                                )
                            });
                        }
                    }
                    return Err(self.err(
                        at,
                        "a low surrogate \\uDC00-\\uDFFF after a high surrogate",
                        format!("`{}`", &self.src[at..self.pos]),
                    ));
                }
                char::from_u32(v).ok_or_else(|| {
                    self.err(
                        at,
                        "a Unicode scalar value (not a lone surrogate)",
                        format!("`{}`", &self.src[at..self.pos]),
                    )
                })?
            }
            'U' => {
                let v = self.hex(at, 8)?;
                char::from_u32(v).ok_or_else(|| {
                    self.err(
                        at,
                        "a Unicode scalar value",
                        format!("`{}`", &self.src[at..self.pos]),
                    )
                })?
            }
            other => {
                return Err(self.err(
                    at,
                    format!("{KNOWN} (Kusto reads an unknown escape as the bare character; write \\\\ or a verbatim @\"...\" string)"),
                    format!("`\\{other}`"),
                ));
            }
        })
    }

    fn hex(&mut self, at: usize, n: usize) -> Result<u32, ParseError> {
        let rest = self.rest();
        let digits: String = rest
            .chars()
            .take(n)
            .take_while(|c| c.is_ascii_hexdigit())
            .collect();
        if digits.len() != n {
            return Err(self.err(
                at,
                format!("{n} hexadecimal digits after the escape"),
                format!("`{}`", &self.src[at..self.pos + digits.len()]),
            ));
        }
        self.pos += n;
        u32::from_str_radix(&digits, 16)
            .map_err(|_| self.err(at, "hexadecimal digits", format!("`{digits}`")))
    }
}
