//! Diagnostics: every problem rulecast reports, from any stage, as one type.
//!
//! A [`Diagnostic`] has a [`Code`] (grouped by stage: E1xx load, E2xx condition, E3xx fields,
//! E4xx unsupported-in-target, E5xx import, E6xx eval, E9xx internal), a message saying what was
//! expected and what was found, an optional [`Span`] (file, 1-based line and column) and hints.

use std::fmt;

use serde::Serialize;

/// A place in a source file: 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Span {
    /// The file, as the user named it.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
}

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The rule (or this rule × target pair) cannot be built.
    Error,
    /// Built, but a person should look.
    Warning,
    /// A translation note: the target renders the closest faithful form.
    Note,
}

/// Diagnostic codes. Retired codes stay reserved; never reuse a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::EnumIter)]
pub enum Code {
    /// The file could not be read.
    E100,
    /// YAML syntax error.
    E101,
    /// Unknown key.
    E102,
    /// A value has the wrong type or form.
    E103,
    /// A required key is missing.
    E104,
    /// Two rules share an id.
    E105,
    /// The rule's file name (slug) or an output file name is not allowed.
    E106,
    /// Unknown ATT&CK tactic or technique, or a technique whose tactic is not listed.
    E107,
    /// A test is malformed.
    E108,
    /// A date, version or UUID is malformed.
    E109,
    /// A condition node has no or several shapes (`all`, `any`, `not`, `field`, ...).
    E201,
    /// Unknown named list or allow-list.
    E202,
    /// Unknown operator.
    E203,
    /// The operator and the value do not fit (e.g. `gt` with a string, a bad regex or CIDR).
    E204,
    /// Unknown field (not in the CloudTrail taxonomy).
    E301,
    /// The field has no mapping in this target.
    E302,
    /// A derived field or output refers to something undefined.
    E303,
    /// The target cannot express this construct exactly; the closest form was emitted (a note).
    E401,
    /// The target cannot express this construct at all; the rule is not built for it.
    E402,
    /// The rule holds opaque logic in another language (`opaque:`); it is not built for this target.
    E403,
    /// Import: the vendor file (or the query inside it) does not parse.
    E501,
    /// Import: the vendor rule uses something rulecast cannot import; the rule is refused.
    E502,
    /// Import: a part of the vendor rule was kept opaque or left out (a note; the reason says which).
    E503,
    /// Internal error: please report.
    E900,
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

/// One problem or note, with where it is and what would fix it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnostic {
    /// What kind of problem.
    pub code: Code,
    /// How bad.
    pub severity: Severity,
    /// Lowercase, one line.
    pub message: String,
    /// What was expected, if it helps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// What was found, if it helps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found: Option<String>,
    /// Where.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub span: Option<Span>,
    /// Suggestions.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hints: Vec<String>,
    /// The rule file a build diagnostic is about (JSON output names it outside the text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The target a build diagnostic is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// For a translation note: what it is about (see [`crate::notes`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concern: Option<crate::notes::Concern>,
}

impl Diagnostic {
    /// An error.
    pub fn error(code: Code, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            severity: Severity::Error,
            message: message.into(),
            expected: None,
            found: None,
            span: None,
            hints: vec![],
            rule: None,
            target: None,
            concern: None,
        }
    }
    /// A warning.
    pub fn warning(code: Code, message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(code, message) }
    }
    /// A translation note.
    pub fn note(code: Code, message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Note, ..Diagnostic::error(code, message) }
    }
    /// Name the rule file and target a build diagnostic is about.
    pub fn about(mut self, rule: &str, target: impl std::fmt::Display) -> Self {
        self.rule = Some(rule.to_string());
        self.target = Some(target.to_string());
        self
    }
    /// Say what a translation note is about.
    pub fn with_concern(mut self, concern: crate::notes::Concern) -> Self {
        self.concern = Some(concern);
        self
    }
    /// The kind of translation note (`None` for other diagnostics).
    pub fn note_kind(&self) -> Option<crate::notes::NoteKind> {
        self.concern.as_ref().map(crate::notes::Concern::kind)
    }
    /// Attach a place.
    pub fn with_span(mut self, span: Option<Span>) -> Self {
        if self.span.is_none() {
            self.span = span;
        }
        self
    }
    /// Say what was expected.
    pub fn with_expected(mut self, expected: impl Into<String>) -> Self {
        self.expected = Some(expected.into());
        self
    }
    /// Say what was found.
    pub fn with_found(mut self, found: impl Into<String>) -> Self {
        self.found = Some(found.into());
        self
    }
    /// Add a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }
    /// Add "did you mean" when a close candidate exists.
    pub fn with_suggestion<'a>(self, found: &str, candidates: impl IntoIterator<Item = &'a str>) -> Self {
        match closest(found, candidates) {
            Some(best) => self.with_hint(format!("did you mean `{best}`?")),
            None => self,
        }
    }
    /// Is this an error?
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// The closest candidate by edit distance, if it is close enough to be a likely typo.
pub fn closest<'a>(found: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut best: Option<(&str, f64)> = None;
    for c in candidates {
        let score = strsim::jaro_winkler(&found.to_lowercase(), &c.to_lowercase());
        if score > 0.85 && best.is_none_or(|(_, s)| score > s) {
            best = Some((c, score));
        }
    }
    best.map(|(c, _)| c)
}

impl fmt::Display for Diagnostic {
    /// The `concise` rendering: `file:line:col: error[E203] message`, then expected/found/hints.
    /// Every text is [`shown`]: control characters escaped, long texts cut.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(s) = &self.span {
            write!(f, "{}:{}:{}: ", shown(&s.file), s.line, s.col)?;
        }
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        };
        write!(f, "{sev}[{}] {}", self.code, shown(&self.message))?;
        if let Some(e) = &self.expected {
            write!(f, "\n  expected: {}", shown(e))?;
        }
        if let Some(found) = &self.found {
            write!(f, "\n  found: {}", shown(found))?;
        }
        for h in &self.hints {
            write!(f, "\n  hint: {}", shown(h))?;
        }
        Ok(())
    }
}

/// The longest text a diagnostic prints of one value, in characters.
pub const SHOWN_MAX: usize = 400;

/// A text as a diagnostic prints it: control characters (and the bidirectional-text controls
/// that reorder what a terminal shows) escaped as `\u{..}`, and cut after [`SHOWN_MAX`]
/// characters with a count of what was left out. Values from rule files are data: they never
/// reach the terminal as escape sequences, and a one-megabyte key is not echoed whole.
pub fn shown(s: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{2028}' | '\u{2029}');
    let n = s.chars().count();
    if n <= SHOWN_MAX && !s.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::new();
    for c in s.chars().take(SHOWN_MAX) {
        if unsafe_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    if n > SHOWN_MAX {
        out.push_str(&format!("… ({} more characters)", n - SHOWN_MAX));
    }
    std::borrow::Cow::Owned(out)
}

/// A list of diagnostics, the error type of every stage.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// No diagnostics.
    pub fn new() -> Self {
        Diagnostics(vec![])
    }
    /// Add one.
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }
    /// Does any of them stop the build?
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }
    /// Iterate.
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }
    /// Number of diagnostics.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// None at all?
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Append all of another list.
    pub fn extend(&mut self, other: impl IntoIterator<Item = Diagnostic>) {
        self.0.extend(other);
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Diagnostics(vec![d])
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// How diagnostics are printed by the CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Message, then the source line with a caret.
    Full,
    /// One line per diagnostic plus expected/found/hints.
    Concise,
    /// A JSON array.
    Json,
}

/// Render diagnostics for humans or machines. `sources` gives file text for `full`.
pub fn render(diags: &[Diagnostic], format: Format, source_of: &dyn Fn(&str) -> Option<String>) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(diags).unwrap_or_default(),
        Format::Concise => diags.iter().map(|d| format!("{d}\n")).collect(),
        Format::Full => {
            let mut out = String::new();
            for d in diags {
                out.push_str(&d.to_string());
                out.push('\n');
                if let Some(span) = &d.span {
                    if let Some(text) = source_of(&span.file) {
                        if let Some(line) = text.lines().nth(span.line.saturating_sub(1)) {
                            let (line, col) = snippet_window(line, span.col);
                            let gutter = span.line.to_string();
                            out.push_str(&format!("{} |\n{gutter} | {line}\n{} | {}^\n", " ".repeat(gutter.len()), " ".repeat(gutter.len()), " ".repeat(col.saturating_sub(1))));
                        }
                    }
                }
            }
            out
        }
    }
}

/// The part of a source line a snippet shows: at most 120 characters around the 1-based
/// column, control characters escaped; returns the text and the caret's column in it.
fn snippet_window(line: &str, col: usize) -> (String, usize) {
    const WIDTH: usize = 120;
    let chars: Vec<char> = line.chars().collect();
    let at = col.saturating_sub(1).min(chars.len());
    let start = if chars.len() <= WIDTH { 0 } else { at.saturating_sub(WIDTH / 2).min(chars.len() - WIDTH) };
    let end = (start + WIDTH).min(chars.len());
    let mut text = String::new();
    let mut caret = 1;
    if start > 0 {
        text.push('…');
        caret += 1;
    }
    for (i, &c) in chars[start..end].iter().enumerate() {
        let piece = if c == '\t' { " ".to_string() } else { shown(&c.to_string()).into_owned() };
        if start + i < at {
            caret += piece.chars().count();
        }
        text.push_str(&piece);
    }
    if end < chars.len() {
        text.push('…');
    }
    (text, caret)
}

#[cfg(test)]
mod shown_tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_long_texts_cut() {
        assert_eq!(shown("a\u{1b}[31mb\n"), "a\\u{1b}[31mb\\u{a}");
        assert_eq!(shown("x\u{202e}y"), "x\\u{202e}y");
        let long = "k".repeat(1_000_000);
        let s = shown(&long);
        assert!(s.len() < 500, "{}", s.len());
        assert!(s.ends_with("(999600 more characters)"));
        let d = Diagnostic::error(Code::E102, format!("unknown key `{long}`"));
        assert!(d.to_string().len() < 600);
    }

    #[test]
    fn snippets_show_a_window_around_the_caret() {
        let line = format!("{}X{}", "a".repeat(500), "b".repeat(500));
        let (text, caret) = snippet_window(&line, 501);
        assert!(text.chars().count() <= 122, "{}", text.chars().count());
        assert_eq!(text.chars().nth(caret - 1), Some('X'));
        let (text, caret) = snippet_window("ab\u{1b}cd", 5);
        assert_eq!(text, "ab\\u{1b}cd");
        assert_eq!(text.chars().nth(caret - 1), Some('d'));
    }
}
