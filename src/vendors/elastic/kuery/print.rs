//! [`Query`] → canonical kuery text.
//!
//! Canonical form: lowercase keywords, single spaces around them, `field:value`,
//! `field:(a or b)`, `field > value`, `field:{query}`, parentheses where the tree needs them
//! and around an `and` inside an `or` (for the reader), and the fewest escapes that both
//! Kibana and [`parse`](super::parse) read back as the same tree.

use super::{Field, Piece, Query, QueryKind, Value, ValueKind, ValueList, ValueListKind};

/// Print a query as canonical kuery text.
///
/// For every query [`parse`](super::parse) returns, parsing the text again gives the same tree
/// (spans aside). Hand-built trees should follow the parser's shapes: `Or` and `And` with two
/// or more children, and only a single value for a bare value (`field: None`).
pub fn to_string(q: &Query) -> String {
    let mut out = String::new();
    query(q, &mut out);
    out
}

fn query(q: &Query, out: &mut String) {
    match &q.kind {
        QueryKind::Or(items) => join(items, " or ", out, query, |k| {
            matches!(k.kind, QueryKind::Or(_) | QueryKind::And(_))
        }),
        QueryKind::And(items) => join(items, " and ", out, query, |k| {
            matches!(k.kind, QueryKind::Or(_) | QueryKind::And(_))
        }),
        QueryKind::Not(inner) => {
            out.push_str("not ");
            let wrap = matches!(
                inner.kind,
                QueryKind::Or(_) | QueryKind::And(_) | QueryKind::Not(_)
            );
            wrapped(inner.as_ref(), wrap, out, query);
        }
        QueryKind::Nested { field: f, query: q } => {
            field(f, out);
            out.push_str(":{");
            query(q, out);
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
            wrapped(v, wrap, out, values);
        }
    }
}

fn values(v: &ValueList, out: &mut String) {
    match &v.kind {
        ValueListKind::Or(items) => join(items, " or ", out, values, |k| {
            matches!(k.kind, ValueListKind::Or(_) | ValueListKind::And(_))
        }),
        ValueListKind::And(items) => join(items, " and ", out, values, |k| {
            matches!(k.kind, ValueListKind::Or(_) | ValueListKind::And(_))
        }),
        ValueListKind::Not(inner) => {
            out.push_str("not ");
            let wrap = matches!(
                inner.kind,
                ValueListKind::Or(_) | ValueListKind::And(_) | ValueListKind::Not(_)
            );
            wrapped(inner.as_ref(), wrap, out, values);
        }
        ValueListKind::One(v) => value(v, out),
    }
}

fn join<T>(
    items: &[T],
    sep: &str,
    out: &mut String,
    print: fn(&T, &mut String),
    needs_parens: fn(&T) -> bool,
) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        wrapped(item, needs_parens(item), out, print);
    }
}

fn wrapped<T>(item: &T, wrap: bool, out: &mut String, print: fn(&T, &mut String)) {
    if wrap {
        out.push('(');
        print(item, out);
        out.push(')');
    } else {
        print(item, out);
    }
}

fn field(f: &Field, out: &mut String) {
    if f.quoted {
        quoted(&f.name, out);
    } else {
        unquoted(&[Piece::Text(f.name.clone())], out);
    }
}

fn value(v: &Value, out: &mut String) {
    match &v.kind {
        ValueKind::Quoted(s) => quoted(s, out),
        ValueKind::Unquoted(pieces) => unquoted(pieces, out),
    }
}

fn quoted(s: &str, out: &mut String) {
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

fn unicode(c: char, out: &mut String) {
    let mut buf = [0u16; 2];
    for unit in c.encode_utf16(&mut buf) {
        out.push_str(&format!("\\u{unit:04X}"));
    }
}

/// Unquoted text: escape the special characters, white space other than a plain space, and
/// every `and` / `or` / `not` the parser (or Kibana) would read as a keyword: a whole word
/// followed by white space or the end of the literal, and `not` followed by white space
/// anywhere (Kibana's `'not'i Space` lookahead).
fn unquoted(pieces: &[Piece], out: &mut String) {
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
