//! detection-rules' value layout: how its formatter (`rule_formatter.toml_write`, used by
//! `toml-lint` and by every command that saves a rule) writes a string, a Markdown string and a
//! list of strings, so that rulecast's files are the ones detection-rules would write.
//!
//! Input: a value. Output: its TOML text. The characters go through the target's one escaping
//! function ([`toml_str`]); this module decides only the form (one line or several, wrapped or
//! kept, which quotes) and the whitespace detection-rules normalises before writing.
//!
//! Where detection-rules' own form would not read back as the value (a backslash in a one-line
//! `json.dumps` description, which it doubles; `'''` blocks of JSON-escaped lines for text with
//! `"""`; raw control characters), rulecast writes a form that does.

use crate::targets::render::toml_str;

/// Python's `str.isspace`.
fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.splitlines` line breaks.
fn py_break(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{b}' | '\u{c}' | '\u{1c}' | '\u{1d}' | '\u{1e}' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// Python's `s.splitlines(keepends)`.
fn split_lines(s: &str, keep: bool) -> Vec<String> {
    let mut out = vec![];
    let mut line = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if !py_break(c) {
            line.push(c);
            continue;
        }
        let mut end = c.to_string();
        if c == '\r' && chars.peek() == Some(&'\n') {
            chars.next();
            end.push('\n');
        }
        if keep {
            line.push_str(&end);
        }
        out.push(std::mem::take(&mut line));
    }
    if !line.is_empty() {
        out.push(line);
    }
    out
}

/// What detection-rules normalises every string to before writing it (all but the query and
/// the Markdown fields): each line stripped, the lines joined with single spaces.
pub fn normalize(s: &str) -> String {
    let lines: Vec<String> = split_lines(s.trim_matches(py_space), false);
    lines.iter().map(|l| l.trim_matches(py_space)).collect::<Vec<_>>().join(" ")
}

/// The text's words greedily wrapped at 120 columns (`indent` included; a longer word stands
/// alone), each line with its line break; a single line holding `"` gets an empty second line,
/// so that it is written in the multi-line form.
fn wrap(s: &str, indent: usize) -> Vec<String> {
    let pad = " ".repeat(indent);
    let width = 120 - indent;
    let mut lines: Vec<String> = vec![];
    let mut line = String::new();
    let mut len = 0;
    for word in s.split(py_space).filter(|w| !w.is_empty()) {
        let n = word.chars().count();
        if !line.is_empty() && len + 1 + n > width {
            lines.push(format!("{pad}{line}\n"));
            line.clear();
            len = 0;
        }
        if !line.is_empty() {
            line.push(' ');
            len += 1;
        }
        line.push_str(word);
        len += n;
    }
    if !line.is_empty() {
        lines.push(format!("{pad}{line}\n"));
    }
    if lines.len() == 1 && lines[0].contains('"') {
        lines.push(String::new());
    }
    lines
}

/// The lines (without their indentation) detection-rules wraps a long list item into.
pub fn item_lines(s: &str) -> Vec<String> {
    wrap(&normalize(s), 4).iter().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect()
}

/// The formatter's choice of form for `v`, given its lines. `one_line`: a value read as one
/// line (a name, a tag), which the multi-line form would change by a line break: written on one
/// line (`'...'` or JSON) where detection-rules would wrap it or force the multi-line form for a
/// quote (its loader strips the line breaks again; other readers would not).
fn form(v: &str, lines: &[String], first_break: &str, one_line: bool) -> String {
    let multiline = lines.len() > 1;
    if multiline && one_line && !v.contains('\n') {
        return toml_str(v, if v.contains('"') { "literal" } else { "json" });
    }
    if multiline {
        return toml_str(&format!("{first_break}{}", lines.concat()), "raw_multiline");
    }
    if v.contains('"') && !v.contains('\'') && !v.contains("\"\"\"") {
        if let Some(first) = lines.first() {
            return toml_str(first, "literal");
        }
    }
    toml_str(v, "json")
}

/// The line breaks a text has of its own (not only the wrapping of one paragraph): rulecast
/// keeps them, where detection-rules would join the lines (a change of the value, not of its
/// layout). A text in detection-rules' own form is written the same either way.
fn own_breaks(s: &str) -> Option<&str> {
    let t = s.trim();
    t.contains('\n').then_some(t)
}

/// A text value (`description = """..."""`): normalised, then wrapped at 120
/// columns; several lines are written `"""` + line break + lines + `"""`, one line as JSON. A
/// text with line breaks of its own is written with its lines as they are: wrapping a line of it
/// would add a line break to the value, which detection-rules' own form does only because it
/// first joins the lines.
pub fn text(s: &str) -> String {
    if let Some(t) = own_breaks(s) {
        return toml_str(&format!("\n{t}\n"), "raw_multiline");
    }
    let v = normalize(s);
    form(&v, &wrap(&v, 0), "\n", false)
}

/// A one-line value (a name, an id, a tag): normalised, written as [`text`] is unless that
/// would add a line break to it.
pub fn line(s: &str) -> String {
    if own_breaks(s).is_some() {
        return text(s);
    }
    let v = normalize(s);
    form(&v, &wrap(&v, 0), "\n", true)
}

/// A Markdown value (`note`, `setup`): kept as written; several lines are written `"""` + the
/// text + `"""` (no line break forced after the opening quotes).
pub fn markdown(s: &str) -> String {
    form(s, &split_lines(s, true), "", false)
}

/// A list of strings: flat (`["a", "b"]`) when the items with 3 characters each for quotes and
/// separator add up to at most 100 characters, else one item a line (4 spaces, trailing
/// comma, `]` alone), an item longer than 110 characters with a space as an indented block
/// wrapped at 120 columns.
///
/// An item with line breaks of its own keeps them, written as an indented block (the list one
/// item a line).
///
/// `flat`: on one line whatever its length (a file saved before the formatter ran over it).
/// `texts`: the items are texts ([`text`]: `false_positives`), else one-line values ([`line`]).
pub fn list(items: &[String], flat: bool, texts: bool) -> String {
    let string = if texts { text } else { line };
    let kept = items.iter().any(|i| own_breaks(i).is_some());
    let items: Vec<String> = items.iter().map(|i| if own_breaks(i).is_some() { i.clone() } else { normalize(i) }).collect();
    if (flat || items.iter().map(|i| i.chars().count() + 3).sum::<usize>() <= 100) && !kept {
        return format!("[{}]", items.iter().map(|i| string(i)).collect::<Vec<_>>().join(", "));
    }
    let lines: Vec<String> = items
        .iter()
        .map(|i| {
            if let Some(t) = own_breaks(i) {
                let body = format!("\n    {}\n    ", crate::targets::render::wrap(t, 120, "    "));
                format!("    {}", toml_str(&body, "raw_multiline"))
            } else if i.chars().count() > 110 && i.contains(' ') {
                let body = format!("\n{}    ", wrap(i, 4).concat());
                format!("    {}", toml_str(&body, "raw_multiline"))
            } else {
                format!("    {}", string(i))
            }
        })
        .collect();
    format!("[\n{},\n]", lines.join(",\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings() {
        assert_eq!(text("a  b c "), "\"a  b c\"");
        assert_eq!(text("a\nb\n"), "\"\"\"\na\nb\n\"\"\"");
        assert_eq!(text("say \"hi\""), "\"\"\"\nsay \"hi\"\n\"\"\"");
        assert_eq!(text("café"), "\"caf\\u00e9\"");
        let long = "word ".repeat(30);
        assert_eq!(text(&long), format!("\"\"\"\n{}\n{}\n\"\"\"", "word ".repeat(24).trim_end(), "word ".repeat(6).trim_end()));
        assert_eq!(text("a. \nb\n"), "\"\"\"\na. \nb\n\"\"\"");
        assert_eq!(line("say \"hi\""), "'say \"hi\"'");
        assert_eq!(line("it's \"x\""), "\"it's \\\"x\\\"\"");
        assert_eq!(markdown("## T\n\nx\n"), "\"\"\"## T\n\nx\n\"\"\"");
        assert_eq!(markdown("one line"), "\"one line\"");
        assert_eq!(markdown("a \"b\""), "'a \"b\"'");
        assert_eq!(markdown("a\\b\n"), "\"a\\\\b\\n\"");
    }

    #[test]
    fn lists() {
        assert_eq!(list(&[], false, false), "[]");
        assert_eq!(list(&["a".into(), "b".into()], false, false), "[\"a\", \"b\"]");
        let items: Vec<String> = (0..10).map(|i| format!("item number {i}")).collect();
        assert!(list(&items, false, false).starts_with("[\n    \"item number 0\",\n"), "{}", list(&items, false, false));
        assert!(list(&items, false, false).ends_with("\"item number 9\",\n]"));
        let long = "word ".repeat(30).trim_end().to_string();
        assert_eq!(list(&[long], false, true), format!("[\n    \"\"\"\n    {}\n    {}\n    \"\"\",\n]", "word ".repeat(23).trim_end(), "word ".repeat(7).trim_end()));
    }
}
