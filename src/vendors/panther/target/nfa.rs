//! A canonical regex -> a Thompson NFA as JSON text, for the `regex_search` helper of the Panther
//! global module (`rulecast_helpers`).
//!
//! Input: the regex text of a `regex` condition and its case. Output: the program the Python
//! helper runs (a tuple of instructions), or why it cannot be compiled. Python's own `re`
//! backtracks: `^(a+)+$` on 31 characters took 95 s, and even `linux/[^ ]*(kali|parrot)` is
//! quadratic (17 s on 64 KB). The program is built from `regex-syntax`'s HIR, the same parse
//! the canonical evaluator's `regex` crate uses (case folding, `.`, `\w`, `\b`, `$` as Rust
//! reads them), and the helper follows its states together: time linear in the text.

use regex_syntax::ast::{self, Ast};
use regex_syntax::hir::{Class, Hir, HirKind, Look};

/// The most instructions a program may have (bounded repetitions are unrolled).
pub const MAX_INSTS: usize = 4000;

/// One NFA instruction, rendered as a Python tuple.
enum Inst {
    /// `[0, next, [lo, hi+1, lo, hi+1, ...]]`: a character in one of the ranges, then `next`.
    Char(usize, Vec<(u32, u32)>),
    /// `[1, a, b]`: go on at both.
    Split(usize, usize),
    /// `[2, next, kind]`: a zero-width assertion (see [`look_code`]), then `next`.
    Look(usize, u8),
    /// `[3]`: a match.
    Match,
}

/// Look-around kinds the helper knows: 0 start of text, 1 end of text, 2 start of line,
/// 3 end of line, 4 Unicode word boundary, 5 not one, 6 ASCII word boundary, 7 not one.
fn look_code(look: Look) -> Option<u8> {
    Some(match look {
        Look::Start => 0,
        Look::End => 1,
        Look::StartLF => 2,
        Look::EndLF => 3,
        Look::WordUnicode => 4,
        Look::WordUnicodeNegate => 5,
        Look::WordAscii => 6,
        Look::WordAsciiNegate => 7,
        _ => return None,
    })
}

struct Builder {
    insts: Vec<Inst>,
    unicode_words: bool,
}

impl Builder {
    fn push(&mut self, inst: Inst) -> Result<usize, String> {
        if self.insts.len() >= MAX_INSTS {
            return Err(format!("it needs more than {MAX_INSTS} states (bounded repetitions are unrolled)"));
        }
        self.insts.push(inst);
        Ok(self.insts.len() - 1)
    }

    /// Compile `hir` so that it continues at `next`; returns its first instruction.
    fn compile(&mut self, hir: &Hir, next: usize) -> Result<usize, String> {
        match hir.kind() {
            HirKind::Empty => Ok(next),
            HirKind::Literal(lit) => {
                let text = std::str::from_utf8(&lit.0).map_err(|_| "it matches bytes that are not UTF-8 text".to_string())?;
                let mut cur = next;
                for c in text.chars().rev() {
                    cur = self.push(Inst::Char(cur, vec![(c as u32, c as u32)]))?;
                }
                Ok(cur)
            }
            HirKind::Class(Class::Unicode(cls)) => {
                let ranges = cls.ranges().iter().map(|r| (r.start() as u32, r.end() as u32)).collect();
                self.push(Inst::Char(next, ranges))
            }
            HirKind::Class(Class::Bytes(cls)) => {
                // `(?-u)`: only ASCII bytes are characters of Python text
                if cls.ranges().iter().any(|r| r.end() > 0x7f) {
                    return Err("it matches non-ASCII bytes (`(?-u)`), which Python text does not have".into());
                }
                let ranges = cls.ranges().iter().map(|r| (u32::from(r.start()), u32::from(r.end()))).collect();
                self.push(Inst::Char(next, ranges))
            }
            HirKind::Look(look) => {
                let code = look_code(*look).ok_or_else(|| format!("its assertion `{look:?}` is not supported"))?;
                if code == 4 || code == 5 {
                    self.unicode_words = true;
                }
                self.push(Inst::Look(next, code))
            }
            HirKind::Repetition(rep) => {
                let mut cur = next;
                match rep.max {
                    None => {
                        // a loop: split into the body (which comes back here) or on
                        let split = self.push(Inst::Split(usize::MAX, next))?;
                        let body = self.compile(&rep.sub, split)?;
                        self.insts[split] = Inst::Split(body, next);
                        cur = split;
                    }
                    Some(max) => {
                        for _ in rep.min..max {
                            let body = self.compile(&rep.sub, cur)?;
                            cur = self.push(Inst::Split(body, next))?;
                        }
                    }
                }
                for _ in 0..rep.min {
                    cur = self.compile(&rep.sub, cur)?;
                }
                Ok(cur)
            }
            HirKind::Capture(cap) => self.compile(&cap.sub, next),
            HirKind::Concat(items) => {
                let mut cur = next;
                for item in items.iter().rev() {
                    cur = self.compile(item, cur)?;
                }
                Ok(cur)
            }
            HirKind::Alternation(items) => {
                let mut starts = vec![];
                for item in items {
                    starts.push(self.compile(item, next)?);
                }
                let mut cur = starts.pop().unwrap_or(next);
                while let Some(s) = starts.pop() {
                    cur = self.push(Inst::Split(s, cur))?;
                }
                Ok(cur)
            }
        }
    }
}

/// Flat half-open ranges: `(lo, hi+1, lo, hi+1, ...)`.
fn flat(ranges: &[(u32, u32)]) -> String {
    let items: Vec<String> = ranges.iter().flat_map(|(lo, hi)| [lo.to_string(), (hi + 1).to_string()]).collect();
    format!("[{}]", items.join(","))
}

/// Unicode's word characters as `regex-syntax` (the canonical evaluator's regex crate) reads
/// `\w`, as the JSON list `[low, high + 1, ...]` the global helper module holds.
pub fn unicode_word_ranges() -> Result<String, String> {
    let word = regex_syntax::parse(r"\w").map_err(|e| e.to_string())?;
    match word.kind() {
        HirKind::Class(Class::Unicode(cls)) => Ok(flat(&cls.ranges().iter().map(|r| (r.start() as u32, r.end() as u32)).collect::<Vec<_>>())),
        _ => Err("the word class did not compile; please report".into()),
    }
}

/// Compile a regex (as the canonical evaluator reads it, `case_insensitive` as `(?i)`) into the
/// `regex_search` helper's program, as JSON text: `[start, [instructions...], 1 when it needs
/// the Unicode word table, else 0]`.
pub fn program(pattern: &str, case_insensitive: bool) -> Result<String, String> {
    let hir = regex_syntax::ParserBuilder::new()
        .case_insensitive(case_insensitive)
        .build()
        .parse(pattern)
        .map_err(|e| format!("it does not parse: {}", e.to_string().lines().last().unwrap_or("")))?;
    let mut b = Builder { insts: vec![], unicode_words: false };
    let done = b.push(Inst::Match)?;
    let start = b.compile(&hir, done)?;
    let insts: Vec<String> = b
        .insts
        .iter()
        .map(|i| match i {
            Inst::Char(next, ranges) => format!("[0,{next},{}]", flat(ranges)),
            Inst::Split(a, c) => format!("[1,{a},{c}]"),
            Inst::Look(next, kind) => format!("[2,{next},{kind}]"),
            Inst::Match => "[3]".into(),
        })
        .collect();
    // the Unicode word table (`\w`, `\b`) is the global module's (`unicode_word_ranges`): 1 when
    // the program needs it
    let words = u8::from(b.unicode_words);
    Ok(format!("[{start},[{}],{words}]", insts.join(",")))
}

/// The regex as Python's own `re.search` pattern, where Python decides it in linear time and
/// exactly as the canonical evaluator does (so it is rendered as before, `re.search`):
/// case-sensitive; ASCII literals, `.` and bracket classes of ASCII literals and ranges
/// (negated or not); `^`, and `$` (written `\Z`: Python's `$` also matches before a final line
/// break); groups without flags or names; alternation; repetition only bounded (`?`, `{n}`,
/// `{n,m}`) and only of one character. Every match attempt then reads at most 256 characters
/// along at most 64 paths (the repetitions' choices times the branches), so the search is
/// linear. Anything else (`*`, `+`, `\w`/`\s`/`\d`, whose Unicode tables differ) goes to the
/// `regex_search` helper: `None`. Case-insensitive patterns are never given to Python's `re.I`, whose
/// folding differs from Rust's (`ı` matches `i` in Python, not in Rust): rulecast folds each
/// literal and bracket class itself, with `regex-syntax`'s tables, into an explicit class
/// (`(?i)k` is written `[Kk\u212a]`, the Kelvin sign included as Rust includes it), and Python
/// matches that case-sensitively.
pub fn python_re(pattern: &str, case_insensitive: bool) -> Option<String> {
    let tree = ast::parse::Parser::new().parse(pattern).ok()?;
    let (paths, width) = cost(&tree)?;
    if paths > 64 || width > 256 {
        return None;
    }
    let mut edits = vec![];
    end_assertions(&tree, &mut edits);
    if case_insensitive {
        folded_chars(&tree, pattern, &mut edits)?;
    }
    edits.sort_by_key(|e| e.0);
    let mut out = pattern.to_string();
    for (start, end, with) in edits.into_iter().rev() {
        out.replace_range(start..end, &with);
    }
    Some(out)
}

/// Edits writing each literal and bracket class of a (subset) regex as the explicit class it
/// matches case-insensitively, where that differs from the text (letters); `None` when a piece
/// does not fold to a class (never for the subset).
fn folded_chars(a: &Ast, pattern: &str, out: &mut Vec<(usize, usize, String)>) -> Option<()> {
    match a {
        Ast::Literal(l) => {
            let text = &pattern[l.span.start.offset..l.span.end.offset];
            if let Some(class) = fold_class(text)? {
                out.push((l.span.start.offset, l.span.end.offset, format!("[{class}]")));
            }
        }
        Ast::ClassBracketed(c) => {
            let text = &pattern[c.span.start.offset..c.span.end.offset];
            // fold the set, then negate it, as Rust does: `(?i)[^a]` is neither `a` nor `A`
            let positive = if c.negated { format!("[{}", &text[2..]) } else { text.to_string() };
            let class = match fold_class(&positive)? {
                Some(class) => class,
                None => return Some(()),
            };
            let neg = if c.negated { "^" } else { "" };
            out.push((c.span.start.offset, c.span.end.offset, format!("[{neg}{class}]")));
        }
        Ast::Repetition(r) => folded_chars(&r.ast, pattern, out)?,
        Ast::Group(g) => folded_chars(&g.ast, pattern, out)?,
        Ast::Alternation(alt) => alt.asts.iter().try_for_each(|x| folded_chars(x, pattern, out))?,
        Ast::Concat(c) => c.asts.iter().try_for_each(|x| folded_chars(x, pattern, out))?,
        _ => {}
    }
    Some(())
}

/// The ranges (Python class syntax, without brackets) a one-character regex matches with case
/// folded; `Some(None)` when folding adds nothing (one character with no other case).
fn fold_class(text: &str) -> Option<Option<String>> {
    let hir = regex_syntax::ParserBuilder::new().case_insensitive(true).build().parse(text).ok()?;
    let ranges: Vec<(char, char)> = match hir.kind() {
        HirKind::Literal(_) => return Some(None),
        HirKind::Class(Class::Unicode(c)) => c.ranges().iter().map(|r| (r.start(), r.end())).collect(),
        _ => return None,
    };
    if let [(lo, hi)] = ranges[..] {
        if lo == hi && text.chars().count() == 1 {
            return Some(None);
        }
    }
    let esc = |c: char| match c {
        '\\' | ']' | '[' | '^' | '-' => format!("\\{c}"),
        ' '..='~' => c.to_string(),
        c if (c as u32) <= 0xFFFF => format!("\\u{:04x}", c as u32),
        c => format!("\\U{:08x}", c as u32),
    };
    Some(Some(
        ranges
            .iter()
            .map(|&(lo, hi)| if lo == hi { esc(lo) } else { format!("{}-{}", esc(lo), esc(hi)) })
            .collect(),
    ))
}

/// Edits writing each `$` assertion as `\Z`.
fn end_assertions(a: &Ast, out: &mut Vec<(usize, usize, String)>) {
    match a {
        Ast::Assertion(x) if x.kind == ast::AssertionKind::EndLine => out.push((x.span.start.offset, x.span.end.offset, r"\Z".into())),
        Ast::Group(g) => end_assertions(&g.ast, out),
        Ast::Alternation(alt) => alt.asts.iter().for_each(|x| end_assertions(x, out)),
        Ast::Concat(c) => c.asts.iter().for_each(|x| end_assertions(x, out)),
        _ => {}
    }
}

fn ascii_literal(l: &ast::Literal) -> bool {
    l.c.is_ascii() && matches!(l.kind, ast::LiteralKind::Verbatim | ast::LiteralKind::Meta | ast::LiteralKind::Superfluous)
}

fn class_item(item: &ast::ClassSetItem) -> bool {
    match item {
        ast::ClassSetItem::Literal(l) => ascii_literal(l),
        ast::ClassSetItem::Range(r) => ascii_literal(&r.start) && ascii_literal(&r.end),
        ast::ClassSetItem::Union(u) => u.items.iter().all(class_item),
        _ => false,
    }
}

/// One character: a literal, `.` or a bracket class in the subset (groups around it looked through).
fn one_char(a: &Ast) -> bool {
    match a {
        Ast::Literal(l) => ascii_literal(l),
        Ast::Dot(_) => true,
        Ast::ClassBracketed(c) => matches!(&c.kind, ast::ClassSet::Item(item) if class_item(item)),
        Ast::Group(g) => plain_group(g) && one_char(&g.ast),
        _ => false,
    }
}

fn plain_group(g: &ast::Group) -> bool {
    match &g.kind {
        ast::GroupKind::CaptureIndex(_) => true,
        ast::GroupKind::NonCapturing(flags) => flags.items.is_empty(),
        ast::GroupKind::CaptureName { .. } => false,
    }
}

/// (paths, width) of a regex in the subset, or None.
fn cost(a: &Ast) -> Option<(u64, u64)> {
    match a {
        Ast::Empty(_) => Some((1, 0)),
        Ast::Literal(_) | Ast::Dot(_) | Ast::ClassBracketed(_) => one_char(a).then_some((1, 1)),
        Ast::Assertion(x) => matches!(x.kind, ast::AssertionKind::StartLine | ast::AssertionKind::EndLine).then_some((1, 0)),
        Ast::Repetition(r) => {
            let (min, max) = match &r.op.kind {
                ast::RepetitionKind::ZeroOrOne => (0, 1),
                ast::RepetitionKind::Range(ast::RepetitionRange::Exactly(n)) => (*n, *n),
                ast::RepetitionKind::Range(ast::RepetitionRange::Bounded(m, n)) => (*m, *n),
                _ => return None,
            };
            (one_char(&r.ast) && min <= max).then_some((u64::from(max - min) + 1, u64::from(max)))
        }
        Ast::Group(g) => if plain_group(g) { cost(&g.ast) } else { None },
        Ast::Alternation(alt) => alt.asts.iter().try_fold((0u64, 0u64), |(p, w), x| cost(x).map(|(xp, xw)| (p.saturating_add(xp), w.max(xw)))),
        Ast::Concat(c) => c.asts.iter().try_fold((1u64, 0u64), |(p, w), x| cost(x).map(|(xp, xw)| (p.saturating_mul(xp), w.saturating_add(xw)))),
        Ast::Flags(_) | Ast::ClassUnicode(_) | Ast::ClassPerl(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_programs() {
        assert_eq!(program("ab", false).unwrap(), "[2,[[3],[0,0,[98,99]],[0,1,[97,98]]],0]");
        assert_eq!(program("a*", false).unwrap(), "[1,[[3],[1,2,0],[0,1,[97,98]]],0]");
        assert!(program("a{5000}", false).unwrap_err().contains("more than"));
        assert!(program(r"\b", false).unwrap().ends_with("],1]"), "the Unicode word table is asked for");
        assert!(program("ab", false).unwrap().ends_with("],0]"));
        assert!(unicode_word_ranges().unwrap().starts_with("[48,58,65,91,95,96,97,123,"));
    }

    #[test]
    fn the_python_re_subset() {
        for yes in ["a[ab]{20}c", "^arn:aws:iam::[0-9]{12}:root", "(foo|bar)-[^ ]?x", "a.b", r"\.txt", "[]a]", "(?:a){0,3}b"] {
            assert_eq!(python_re(yes, false).as_deref(), Some(yes));
        }
        assert_eq!(python_re("(a$|b)[$]$", false).as_deref(), Some(r"(a\Z|b)[$]\Z"));
        for no in ["a*", "a+", "(a+)+", r"\w", r"\d", "é", "(?i)a", "(?:ab){2}", "[a-z]{1,40}@[a-z]{1,40}", "(?<n>a)", r"\x41", "[[:alpha:]]", "(?m:$)"] {
            assert_eq!(python_re(no, false), None, "{no}");
        }
        // case folded by rulecast, not by Python's `re.I`
        assert_eq!(python_re("a[ab]{20}c", true).as_deref(), Some("[Aa][A-Ba-b]{20}[Cc]"));
        assert_eq!(python_re("k[^s]$", true).as_deref(), Some(r"[Kk\u212a][^Ss\u017f]\Z"));
        assert_eq!(python_re("[0-9]x.", true).as_deref(), Some("[0-9][Xx]."));
        assert_eq!(python_re("a+", true), None);
    }
}
