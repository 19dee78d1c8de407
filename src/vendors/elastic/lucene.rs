//! Regular expressions between the canonical flavour (Rust's `regex`, RE2 syntax, a search for a
//! match anywhere in the text) and Lucene's (`regexp` queries, EQL `regex`/`regex~`, ES|QL
//! `RLIKE`: the pattern must match the whole value).
//!
//! Input: a pattern. Output: the other flavour's pattern(s) that accept exactly the same values,
//! or why not. Both directions go through `regex-syntax`'s HIR (the parse the canonical evaluator
//! itself makes), so classes, case folding and repetition are resolved before anything is
//! printed.
//!
//! Facts the translation rests on (Elasticsearch's "Regular expression syntax" page and Lucene's
//! `RegExp`): every pattern is anchored at both ends; `^` and `$` are not anchors; `.` is any
//! character, line breaks too; `\` before any character makes it literal (`\d` is `d`); `@`, `&`,
//! `~`, `<`, `>`, `#` and `"` are operators under Elasticsearch's default `ALL` flags; classes
//! take ranges and `^` negation; `{n}`, `{n,}`, `{n,m}` repeat. `regex~` (`case_insensitive`)
//! folds ASCII letters only.

use regex_syntax::hir::{Class, ClassUnicode, ClassUnicodeRange, Hir, HirKind, Look};

/// The most alternatives the anchors of one pattern may expand into.
const MAX_BRANCHES: usize = 64;

/// The canonical regex `pattern` (searched anywhere; `insensitive` as `(?i)`) as Lucene
/// patterns that together accept exactly the values it matches, for EQL's case-sensitive
/// `regex`. Case folding is spelled out in classes as the canonical evaluator folds
/// (`(?i)k` is `[Kk\u{212A}]`, the Kelvin sign included): `regex~` folds ASCII letters only, and
/// how Lucene folds a class range under it is not documented.
pub fn from_canonical(pattern: &str, insensitive: bool) -> Result<Vec<String>, String> {
    let hir = regex_syntax::ParserBuilder::new()
        .case_insensitive(insensitive)
        .build()
        .parse(pattern)
        .map_err(|e| format!("it does not parse: {}", e.to_string().lines().last().unwrap_or("")))?;
    let branches = expand(&hir)?;
    let mut out = vec![];
    for b in branches {
        let mut items: Vec<&Hir> = b.iter().copied().filter(|h| !matches!(h.kind(), HirKind::Empty)).collect();
        let start = items.first().is_some_and(|h| matches!(h.kind(), HirKind::Look(Look::Start)));
        if start {
            items.remove(0);
        }
        let end = items.last().is_some_and(|h| matches!(h.kind(), HirKind::Look(Look::End)));
        if end {
            items.pop();
        }
        let mut text = String::new();
        if !start {
            text.push_str(".*");
        }
        for h in &items {
            if matches!(h.kind(), HirKind::Look(_)) {
                return Err(look_error(h));
            }
            print(h, Prec::Concat, &mut text)?;
        }
        if !end {
            text.push_str(".*");
        }
        if text.is_empty() {
            text.push_str("()");
        }
        if !out.contains(&text) {
            out.push(text);
        }
    }
    Ok(out)
}

fn look_error(h: &Hir) -> String {
    match h.kind() {
        HirKind::Look(Look::Start | Look::End) => "`^` or `$` inside the pattern (not at an end of it) has no Lucene form".into(),
        HirKind::Look(l) => format!("Lucene regular expressions have no {} assertion", match l {
            Look::WordAscii | Look::WordUnicode | Look::WordAsciiNegate | Look::WordUnicodeNegate => "word-boundary (`\\b`, `\\B`)",
            _ => "line-anchor (multi-line `^`/`$`) or word-edge",
        }),
        _ => "an assertion Lucene lacks".into(),
    }
}

/// The pattern as concatenations in which `^`/`$` appear only at top level: an alternation
/// that holds an anchor is distributed over its neighbours (`(^|[ /])x` → `^x`, `[ /]x`).
fn expand(h: &Hir) -> Result<Vec<Vec<&Hir>>, String> {
    fn has_anchor(h: &Hir) -> bool {
        match h.kind() {
            HirKind::Look(_) => true,
            HirKind::Capture(c) => has_anchor(&c.sub),
            HirKind::Repetition(r) => has_anchor(&r.sub),
            HirKind::Concat(k) | HirKind::Alternation(k) => k.iter().any(has_anchor),
            HirKind::Empty | HirKind::Literal(_) | HirKind::Class(_) => false,
        }
    }
    fn go(h: &Hir) -> Result<Vec<Vec<&Hir>>, String> {
        if !has_anchor(h) {
            return Ok(vec![vec![h]]);
        }
        match h.kind() {
            HirKind::Look(_) => Ok(vec![vec![h]]),
            HirKind::Capture(c) => go(&c.sub),
            HirKind::Alternation(kids) => {
                let mut out = vec![];
                for k in kids {
                    out.extend(go(k)?);
                }
                Ok(out)
            }
            HirKind::Concat(kids) => {
                let mut out: Vec<Vec<&Hir>> = vec![vec![]];
                for k in kids {
                    let alts = go(k)?;
                    if out.len() * alts.len() > MAX_BRANCHES {
                        return Err(format!("its anchors expand into more than {MAX_BRANCHES} Lucene alternatives"));
                    }
                    out = out.iter().flat_map(|o| alts.iter().map(move |a| o.iter().chain(a.iter()).copied().collect())).collect();
                }
                Ok(out)
            }
            HirKind::Repetition(_) => Err("an anchor inside a repetition has no Lucene form".into()),
            HirKind::Empty | HirKind::Literal(_) | HirKind::Class(_) => Ok(vec![vec![h]]),
        }
    }
    let out = go(h)?;
    if out.len() > MAX_BRANCHES {
        return Err(format!("its anchors expand into more than {MAX_BRANCHES} Lucene alternatives"));
    }
    Ok(out)
}

#[derive(Clone, Copy, PartialEq, PartialOrd)]
enum Prec {
    Alt,
    Concat,
    Atom,
}

/// Lucene's operators (with Elasticsearch's default `ALL` flags).
const RESERVED: &str = ".?+*|{}[]()\"\\#@&<>~";

/// A character as Lucene reads it literally: an operator behind `\` (Lucene's escape makes any
/// character literal), anything else as it is.
fn lit(c: char, out: &mut String) {
    if RESERVED.contains(c) {
        out.push('\\');
    }
    out.push(c);
}

fn print(h: &Hir, prec: Prec, out: &mut String) -> Result<(), String> {
    match h.kind() {
        HirKind::Empty => out.push_str("()"),
        HirKind::Literal(l) => {
            let s = std::str::from_utf8(&l.0).map_err(|_| "a byte (not character) literal has no Lucene form".to_string())?;
            let n = s.chars().count();
            let wrap = n > 1 && prec == Prec::Atom;
            if wrap {
                out.push('(');
            }
            s.chars().for_each(|c| lit(c, out));
            if wrap {
                out.push(')');
            }
        }
        HirKind::Class(Class::Unicode(c)) => class(c, out),
        HirKind::Class(Class::Bytes(_)) => return Err("a byte class (`(?-u)`) has no Lucene form".into()),
        HirKind::Look(_) => return Err(look_error(h)),
        HirKind::Capture(c) => {
            out.push('(');
            print(&c.sub, Prec::Alt, out)?;
            out.push(')');
        }
        HirKind::Repetition(r) => {
            print(&r.sub, Prec::Atom, out)?;
            match (r.min, r.max) {
                (0, None) => out.push('*'),
                (1, None) => out.push('+'),
                (0, Some(1)) => out.push('?'),
                (n, None) => out.push_str(&format!("{{{n},}}")),
                (n, Some(m)) if n == m => out.push_str(&format!("{{{n}}}")),
                (n, Some(m)) => out.push_str(&format!("{{{n},{m}}}")),
            }
        }
        HirKind::Concat(kids) => {
            let wrap = prec == Prec::Atom;
            if wrap {
                out.push('(');
            }
            for k in kids {
                print(k, Prec::Concat, out)?;
            }
            if wrap {
                out.push(')');
            }
        }
        HirKind::Alternation(kids) => {
            let wrap = prec > Prec::Alt;
            if wrap {
                out.push('(');
            }
            for (i, k) in kids.iter().enumerate() {
                if i > 0 {
                    out.push('|');
                }
                print(k, Prec::Alt, out)?;
            }
            if wrap {
                out.push(')');
            }
        }
    }
    Ok(())
}

/// A class: one character as a literal; `.` (any character) as `.`; a class covering most of
/// Unicode as the negation of what it lacks (`[^\n]`); otherwise its ranges.
fn class(c: &ClassUnicode, out: &mut String) {
    let ranges = c.ranges();
    if let [r] = ranges
        && r.start() == r.end()
    {
        lit(r.start(), out);
        return;
    }
    let size: u32 = ranges.iter().map(|r| r.end() as u32 - r.start() as u32 + 1).sum();
    let mut neg = c.clone();
    neg.negate();
    if neg.ranges().is_empty() {
        out.push('.');
        return;
    }
    let (negated, ranges) = if size > 0x88000 { (true, neg.ranges().to_vec()) } else { (false, ranges.to_vec()) };
    out.push('[');
    if negated {
        out.push('^');
    }
    for r in ranges {
        class_char(r.start(), out);
        if r.end() != r.start() {
            if r.end() as u32 > r.start() as u32 + 1 {
                out.push('-');
            }
            class_char(r.end(), out);
        }
    }
    out.push(']');
}

/// A character inside a class: what a class reads specially (`]`, `[`, `-`, `^`) and the
/// operators behind `\`.
fn class_char(c: char, out: &mut String) {
    if RESERVED.contains(c) || matches!(c, '-' | '^') {
        out.push('\\');
    }
    out.push(c);
}

/// `h` with every ASCII letter also matching its other case, as Lucene's `case_insensitive`
/// (EQL `regex~`) reads a pattern.
pub fn ascii_fold(h: &Hir) -> Hir {
    fn fold_class(c: &ClassUnicode) -> ClassUnicode {
        let mut extra = vec![];
        for r in c.ranges() {
            for (lo, hi, delta) in [('a', 'z', -32i32), ('A', 'Z', 32)] {
                let (s, e) = (r.start().max(lo), r.end().min(hi));
                if s <= e {
                    let shift = |c: char| char::from_u32((c as i32 + delta) as u32).unwrap_or(c);
                    extra.push(ClassUnicodeRange::new(shift(s), shift(e)));
                }
            }
        }
        let mut out = c.clone();
        out.union(&ClassUnicode::new(extra));
        out
    }
    match h.kind() {
        HirKind::Literal(l) => match std::str::from_utf8(&l.0) {
            Ok(s) if s.chars().any(|c| c.is_ascii_alphabetic()) => Hir::concat(
                s.chars()
                    .map(|c| {
                        if c.is_ascii_alphabetic() {
                            Hir::class(Class::Unicode(fold_class(&ClassUnicode::new([ClassUnicodeRange::new(c, c)]))))
                        } else {
                            Hir::literal(c.to_string().into_bytes())
                        }
                    })
                    .collect(),
            ),
            _ => h.clone(),
        },
        HirKind::Class(Class::Unicode(c)) => Hir::class(Class::Unicode(fold_class(c))),
        HirKind::Capture(c) => Hir::capture(regex_syntax::hir::Capture { index: c.index, name: c.name.clone(), sub: Box::new(ascii_fold(&c.sub)) }),
        HirKind::Repetition(r) => Hir::repetition(regex_syntax::hir::Repetition { min: r.min, max: r.max, greedy: r.greedy, sub: Box::new(ascii_fold(&r.sub)) }),
        HirKind::Concat(k) => Hir::concat(k.iter().map(ascii_fold).collect()),
        HirKind::Alternation(k) => Hir::alternation(k.iter().map(ascii_fold).collect()),
        HirKind::Empty | HirKind::Look(_) | HirKind::Class(Class::Bytes(_)) => h.clone(),
    }
}

/// A Lucene pattern (EQL `regex`, ES|QL `RLIKE`) as the RE2 pattern that reads it the same way,
/// or `None` where RE2 cannot: Lucene's optional operators (`@`, `&`, `~`, `<>`, `#`), quoted
/// strings (`"`), a `[` inside a class. An escape is a literal character in Lucene (`\d` is
/// `d`), so it is written as RE2's escape of that character; `^` and `$` are literal outside a class
/// there, anchors in RE2, so they are escaped. The result matches anywhere: anchor it
/// (`^(?:…)$`) and add `(?s)` for Lucene's `.`.
pub fn to_re2(p: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = p.chars().peekable();
    let mut class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                // RE2 reads some escapes as classes or assertions (`\<` is a word start):
                // the character itself, escaped only where RE2 needs it
                let n = chars.next()?;
                out.push_str(&regex::escape(&n.to_string()));
            }
            '@' | '&' | '~' | '<' | '>' | '#' | '"' => return None,
            '[' if class => return None,
            '[' => {
                class = true;
                out.push(c);
                // `[^` negates in both; `[]` is no class in Lucene
                if chars.peek() == Some(&'^') {
                    out.push(chars.next()?);
                }
                if chars.peek() == Some(&']') {
                    return None;
                }
            }
            ']' if class => {
                class = false;
                out.push(c);
            }
            '^' | '$' if !class => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    (!class).then_some(out)
}

/// A Lucene pattern as Elasticsearch matches it against a whole value (`insensitive`: `regex~`,
/// ASCII letters folded), compiled for evaluation; `None` where [`to_re2`] cannot read it.
pub fn matcher(p: &str, insensitive: bool) -> Option<regex::Regex> {
    let re = format!("(?s)^(?:{})$", to_re2(p)?);
    let hir = regex_syntax::parse(&re).ok()?;
    let hir = if insensitive { ascii_fold(&hir) } else { hir };
    regex::Regex::new(&hir.to_string()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lucene(p: &str, ci: bool) -> Vec<String> {
        from_canonical(p, ci).unwrap()
    }

    #[test]
    fn anchors_become_the_whole_value_match() {
        assert_eq!(lucene("abc", false), vec![".*abc.*"]);
        assert_eq!(lucene("^abc$", false), vec!["abc"]);
        assert_eq!(lucene("^a|b$", false), vec!["a.*", ".*b"]);
        assert_eq!(lucene("(^|[ /])x", false), vec!["x.*", ".*[ /]x.*"]);
        assert_eq!(lucene("a.b", false), vec![".*a[^\n]b.*"]);
        assert_eq!(lucene("(?s)a.b", false), vec![".*a.b.*"]);
        assert!(lucene("a\\.b\\d{2,3}", false)[0].starts_with(".*a\\.b[0-9\u{660}-"));
        assert!(lucene("a\\.b\\d{2,3}", false)[0].ends_with("]{2,3}.*"));
        assert!(from_canonical("a^b", false).is_err());
        assert!(from_canonical("\\bword\\b", false).is_err());
        assert!(from_canonical("(^a)*", false).is_err());
    }

    #[test]
    fn case_folding_is_spelled_out_as_the_canonical_evaluator_folds() {
        assert_eq!(lucene("pacu|x1", true), vec![".*([Pp][Aa][Cc][Uu]|[Xx]1).*"]);
        assert_eq!(lucene("kali", true), vec![".*[Kk\u{212a}][Aa][Ll][Ii].*"]);
    }

    /// The translation, read back as Elasticsearch reads it, decides every probe as the
    /// canonical regex does.
    #[test]
    fn round_trip_agrees_with_the_canonical_regex() {
        let patterns = [
            ("abc", false),
            ("^a.c$", false),
            ("(^|[ /(])(pacu|cloudgoat)([ /);]|$)", true),
            ("linux/[^ ]*(kali|parrot|pentoo)", true),
            ("x{2,3}y?", false),
            ("[a-f0-9]+-\\d", false),
            ("Ünï", true),
            ("a|^b|c$", false),
            ("s.k", true),
            ("\\.\\*\\[\\]@&~<>#\"", false),
        ];
        let probes = [
            "", "abc", "xabcx", "aXc", "a\nc", "pacu", "run pacu/1.0", "xpacu", "pacu)", "(cloudgoat ", "Linux/6.1-KALI", "linux/a b kali",
            "xxy", "xxxxy", "ab-3", "a-\u{663}", "ünï", "ÜNÏ", "b", "zb", "c", "cz", "s k", "\u{17f}\u{212a}k", "S-K", ".*[]@&~<>#\"",
        ];
        for (p, ci) in patterns {
            let canon = regex::Regex::new(&if ci { format!("(?i){p}") } else { p.to_string() }).unwrap();
            let lps = from_canonical(p, ci).unwrap();
            let ms: Vec<regex::Regex> = lps.iter().map(|l| matcher(l, false).unwrap_or_else(|| panic!("{p} → {l} unreadable"))).collect();
            for s in probes {
                assert_eq!(canon.is_match(s), ms.iter().any(|m| m.is_match(s)), "{p} (ci {ci}) → {lps:?} on {s:?}");
            }
        }
    }

    #[test]
    fn regex_tilde_folds_ascii_letters_only() {
        let m = matcher("ka.i", true).unwrap();
        assert!(m.is_match("KALI") && m.is_match("kaXi"));
        assert!(!m.is_match("\u{212a}ali"));
    }
}
