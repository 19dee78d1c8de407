//! [`Query`] → canonical kuery text: the one kuery printer, and with it the one value quoter
//! and escaper (quoted strings and unquoted literals, following Kibana's `grammar.peggy`).
//!
//! Canonical form: lowercase keywords, single spaces around them, `field:value`,
//! `field:(a or b)`, `field > value`, `field:{query}`, parentheses where the tree needs them,
//! around an `and` or `or` inside another one (for the reader) and where a node's [`Style`]
//! asks for them, and the fewest escapes that both Kibana and [`parse`](super::parse) read back
//! as the same tree.
//!
//! [`to_string_wrapped`] breaks long text into lines, only after a keyword (`and`, `or`,
//! `not`): never before one, which detection-rules' parser rejects at the start of a line
//! ("Missing whitespace around 'and' token"), and never inside a value.
//!
//! [`Style`]: super::Style

use super::{Field, Piece, Query, QueryKind, Value, ValueKind, ValueList, ValueListKind};

/// Printed text and the places where a line may break: the spaces right after a keyword.
#[derive(Default)]
struct Out {
    text: String,
    breaks: Vec<usize>,
}

impl Out {
    fn push(&mut self, c: char) {
        self.text.push(c);
    }

    fn push_str(&mut self, s: &str) {
        self.text.push_str(s);
    }

    /// `and `, `or ` or `not `: the keyword, then a space where a line may break.
    fn keyword(&mut self, text: &str) {
        let text = text.strip_suffix(' ').unwrap_or(text);
        self.text.push_str(text);
        self.breaks.push(self.text.len());
        self.text.push(' ');
    }
}

/// Print a query as canonical kuery text.
///
/// For every query [`parse`](super::parse) returns, parsing the text again gives the same tree
/// (spans aside). Hand-built trees should follow the parser's shapes: `Or` and `And` with two
/// or more children, only a single value for a bare value (`field: None`), and no white space
/// at either end of an unquoted literal (Kibana trims it).
pub fn to_string(q: &Query) -> String {
    let mut out = Out::default();
    top(q, &mut out);
    out.text
}

/// The whole query, with the parentheses its style asks for.
fn top(q: &Query, out: &mut Out) {
    wrapped(q, q.style.parens, out, query);
}

/// [`to_string`], broken into lines of at most `width` characters where it can be: at the space
/// after a keyword, the last one that keeps the line within `width` (a line with no such space
/// runs on to the next one).
pub fn to_string_wrapped(q: &Query, width: usize) -> String {
    let mut out = Out::default();
    top(q, &mut out);
    let mut text: Vec<char> = vec![];
    let mut breaks = out.breaks.iter().copied().peekable();
    let (mut line_start, mut last_break) = (0usize, None::<usize>);
    for (byte, c) in out.text.char_indices() {
        text.push(c);
        let i = text.len() - 1;
        if breaks.peek() == Some(&byte) {
            breaks.next();
            last_break = Some(i);
        }
        if i - line_start >= width {
            if let Some(b) = last_break.filter(|b| *b > line_start) {
                text[b] = '\n';
                line_start = b + 1;
                last_break = None;
            }
        }
    }
    text.into_iter().collect()
}

fn query(q: &Query, out: &mut Out) {
    match &q.kind {
        QueryKind::Or(items) => join(items, " or ", out, query, |k| {
            parens(k.style.parens, matches!(k.kind, QueryKind::Or(_) | QueryKind::And(_)))
        }),
        QueryKind::And(items) => join(items, " and ", out, query, |k| {
            parens(k.style.parens, matches!(k.kind, QueryKind::Or(_) | QueryKind::And(_)))
        }),
        QueryKind::Not(inner) => {
            out.keyword("not ");
            let wrap = matches!(
                inner.kind,
                QueryKind::Or(_) | QueryKind::And(_) | QueryKind::Not(_)
            );
            wrapped(inner.as_ref(), parens(inner.style.parens, wrap), out, query);
        }
        QueryKind::Nested { field: f, query: q } => {
            field(f, out);
            out.push_str(":{");
            wrapped(q.as_ref(), q.style.parens, out, query);
            out.push('}');
        }
        QueryKind::Range {
            field: f,
            op,
            value: v,
        } => {
            field(f, out);
            out.push(' ');
            out.push_str(op.as_str());
            out.push(' ');
            value(v, out);
        }
        QueryKind::Is {
            field: f,
            values: v,
        } => {
            if let Some(f) = f {
                field(f, out);
                out.push(':');
            }
            let wrap = !matches!(v.kind, ValueListKind::One(_));
            wrapped(v, u8::from(wrap), out, values);
        }
    }
}

/// Pairs of parentheses: those the style asks for, and at least one where `needed`.
fn parens(style: u8, needed: bool) -> u8 {
    style.max(u8::from(needed))
}

fn values(v: &ValueList, out: &mut Out) {
    match &v.kind {
        ValueListKind::Or(items) => join(items, " or ", out, values, |k| {
            u8::from(matches!(k.kind, ValueListKind::Or(_) | ValueListKind::And(_)))
        }),
        ValueListKind::And(items) => join(items, " and ", out, values, |k| {
            u8::from(matches!(k.kind, ValueListKind::Or(_) | ValueListKind::And(_)))
        }),
        ValueListKind::Not(inner) => {
            out.keyword("not ");
            let wrap = matches!(
                inner.kind,
                ValueListKind::Or(_) | ValueListKind::And(_) | ValueListKind::Not(_)
            );
            wrapped(inner.as_ref(), u8::from(wrap), out, values);
        }
        ValueListKind::One(v) => value(v, out),
    }
}

/// Items separated by ` and ` / ` or ` (`sep`), each with the parentheses `parens` gives it.
fn join<T>(items: &[T], sep: &str, out: &mut Out, print: fn(&T, &mut Out), parens: fn(&T) -> u8) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(' ');
            out.keyword(sep.trim_start());
        }
        wrapped(item, parens(item), out, print);
    }
}

fn wrapped<T>(item: &T, pairs: u8, out: &mut Out, print: fn(&T, &mut Out)) {
    for _ in 0..pairs {
        out.push('(');
    }
    print(item, out);
    for _ in 0..pairs {
        out.push(')');
    }
}

fn field(f: &Field, out: &mut Out) {
    if f.quoted {
        quoted(&f.name, out);
    } else {
        unquoted(&[Piece::Text(f.name.clone())], out);
    }
}

fn value(v: &Value, out: &mut Out) {
    match &v.kind {
        ValueKind::Quoted(s) => quoted(s, out),
        ValueKind::Unquoted(pieces) => unquoted(pieces, out),
    }
}

/// A quoted string (Kibana's `QuotedString`): `"` and `\` escaped, line breaks and tabs as
/// `\n` `\r` `\t`, every other control character as `\uXXXX` (the query stays printable text:
/// TOML and YAML hold it as it is); everything else as it is. Never a wildcard.
fn quoted(s: &str, out: &mut Out) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => unicode(c, out),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn unicode(c: char, out: &mut Out) {
    let mut buf = [0u16; 2];
    for unit in c.encode_utf16(&mut buf) {
        out.push_str(&format!("\\u{unit:04X}"));
    }
}

/// Unquoted text: escape the special characters, white space other than a plain space, and
/// every `and` / `or` / `not` the parser (or Kibana) would read as a keyword: a whole word
/// followed by white space or the end of the literal, and `not` followed by white space
/// anywhere (Kibana's `'not'i Space` lookahead).
fn unquoted(pieces: &[Piece], out: &mut Out) {
    // None = wildcard
    let items: Vec<Option<char>> = pieces
        .iter()
        .flat_map(|p| match p {
            Piece::Text(t) => t.chars().map(Some).collect::<Vec<_>>(),
            Piece::Star => vec![None],
        })
        .collect();
    let is_raw_space = |i: usize| items.get(i) == Some(&Some(' '));
    let word_ends = |i: usize| i == items.len() || is_raw_space(i);
    let word_is = |i: usize, w: &str| {
        let n = w.len();
        i + n <= items.len()
            && items[i..i + n]
                .iter()
                .zip(w.chars())
                .all(|(c, w)| c.is_some_and(|c| c.eq_ignore_ascii_case(&w)))
    };
    let mut i = 0;
    while i < items.len() {
        let Some(c) = items[i] else {
            out.push('*');
            i += 1;
            continue;
        };
        let word_start = i == 0 || is_raw_space(i - 1);
        let keyword = ["and", "or", "not"]
            .into_iter()
            .find(|w| word_is(i, w) && word_ends(i + w.len()) && (word_start || *w == "not"));
        if let Some(w) = keyword {
            let typed: String = items[i..i + w.len()].iter().flatten().collect();
            if let Some(rest) = typed.strip_prefix('n') {
                // `\not` would read as `\n` + `ot`
                out.push_str("\\u006E");
                out.push_str(rest);
            } else {
                out.push('\\');
                out.push_str(&typed);
            }
            i += w.len();
            continue;
        }
        match c {
            '\\' | '(' | ')' | ':' | '<' | '>' | '"' | '*' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            ' ' => out.push(' '),
            c if c.is_control() || c.is_whitespace() => unicode(c, out),
            c => out.push(c),
        }
        i += 1;
    }
}
