//! String matching as Kusto does it: case folding, `has` terms, and RE2 patterns on the `regex`
//! crate.

pub(super) fn lower(s: &str) -> String {
    s.to_lowercase()
}

pub(super) fn str_eq(a: &str, b: &str, ci: bool) -> bool {
    if ci { lower(a) == lower(b) } else { a == b }
}

/// Kusto's `has`: `needle` occurs in `hay` at term boundaries (see the module docs).
pub(super) fn has_term(hay: &str, needle: &str, ci: bool, check_start: bool, check_end: bool) -> bool {
    if needle.is_empty() {
        return true;
    }
    let (h, n) = if ci {
        (lower(hay), lower(needle))
    } else {
        (hay.to_string(), needle.to_string())
    };
    let alnum_start = n.chars().next().is_some_and(char::is_alphanumeric);
    let alnum_end = n.chars().last().is_some_and(char::is_alphanumeric);
    let mut from = 0;
    while let Some(i) = h[from..].find(&n) {
        let at = from + i;
        let end = at + n.len();
        let start_ok = !check_start
            || !alnum_start
            || !h[..at].chars().last().is_some_and(char::is_alphanumeric);
        let end_ok =
            !check_end || !alnum_end || !h[end..].chars().next().is_some_and(char::is_alphanumeric);
        if start_ok && end_ok {
            return true;
        }
        from = at + h[at..].chars().next().map_or(1, char::len_utf8);
    }
    false
}

/// RE2 pattern -> `regex` crate pattern: `\d \w \s \b` (and negations) get RE2's ASCII meaning;
/// inside a class, `[` and the doubled `&& -- ~~` (set operations in `regex`) are literal, as in RE2.
pub(super) fn re2_to_rust(p: &str) -> String {
    let mut out = String::with_capacity(p.len() + 8);
    let mut chars = p.chars().peekable();
    let mut in_class = false;
    let mut class_start = false;
    while let Some(c) = chars.next() {
        if c == '\\' {
            let Some(n) = chars.next() else {
                out.push('\\');
                break;
            };
            let rep = match (in_class, n) {
                (false, 'd') => Some("[0-9]"),
                (false, 'D') => Some("[^0-9]"),
                (false, 'w') => Some("[0-9A-Za-z_]"),
                (false, 'W') => Some("[^0-9A-Za-z_]"),
                (false, 's') => Some("[\\t\\n\\f\\r ]"),
                (false, 'S') => Some("[^\\t\\n\\f\\r ]"),
                (false, 'b') => Some("(?-u:\\b)"),
                (false, 'B') => Some("(?-u:\\B)"),
                (true, 'd') => Some("0-9"),
                (true, 'w') => Some("0-9A-Za-z_"),
                (true, 's') => Some("\\t\\n\\f\\r "),
                (true, 'D') => Some("[:^digit:]"),
                (true, 'W') => Some("[:^word:]"),
                (true, 'S') => Some("[:^space:]"),
                _ => None,
            };
            match rep {
                Some(r) => out.push_str(r),
                None => {
                    out.push('\\');
                    out.push(n);
                }
            }
            class_start = false;
            continue;
        }
        if in_class {
            if c == '[' && chars.peek() == Some(&':') {
                out.push('[');
                for x in chars.by_ref() {
                    out.push(x);
                    if x == ']' {
                        break;
                    }
                }
            } else if c == ']' && !class_start {
                in_class = false;
                out.push(']');
            } else if c == '^' && class_start && out.ends_with('[') {
                out.push('^');
                continue;
            } else if c == '[' {
                out.push_str("\\[");
            } else if matches!(c, '&' | '-' | '~') && chars.peek() == Some(&c) {
                chars.next();
                out.push('\\');
                out.push(c);
                out.push('\\');
                out.push(c);
            } else {
                out.push(c);
            }
            class_start = false;
            continue;
        }
        if c == '[' {
            in_class = true;
            class_start = true;
        }
        out.push(c);
    }
    out
}
