//! The generated Panther Python laid out as black writes it (black 26.10.1, stable style,
//! `--line-length 100`: panther-analysis' setting), so that `black --check` leaves every file
//! rulecast writes as it is. black is MIT-licensed; this is rulecast's own Rust implementation
//! of black's line-splitting rules (its behaviour is the specification, checked against black
//! itself by `tests/panther_lint.rs` on every generated module), for the subset of Python that
//! the Panther code generator emits.
//!
//! Input: a generated module's text. Output: the same module as black writes it.
//!
//! The structure follows black's `linegen.py` / `lines.py` / `brackets.py`: every
//! statement becomes a token list (`Leaf`s in an arena, so that black's in-place
//! mutations of leaves -- invisible parentheses turning visible, prefixes reset,
//! bracket depths re-marked -- behave the same way), a `Line` holds leaf ids plus a
//! `BracketTracker` with delimiter priorities, and `transform_line`,
//! `right_hand_split_with_omits`, `_maybe_split_omitting_optional_parens`,
//! `delimiter_split`, `left_hand_split` and `run_transformer` (with its
//! FORCE_OPTIONAL_PARENTHESES second opinion) are ported one to one.
//!
//! Contract: the input is generated code that is black-stable except for line
//! length: 4-space indentation, one statement per physical line except bracketed
//! literals exploded one item per line (magic trailing comma), comments only as whole
//! lines or trailing a statement line, no backslash continuations, no multi-line
//! strings. Whitespace between tokens is taken from the source (it is black's
//! already); tokens that start a continuation line get black's spacing (none after an
//! opening bracket or before a closing one, one space otherwise).
//!
//! Also ported, because black applies them to every line it writes: string prefix and
//! quote normalisation (`normalize_string_prefix` / `normalize_string_quotes`, not for
//! triple-quoted strings), numeric literal normalisation, slice spacing
//! (`complex_subscript`), redundant parentheses around statement children
//! (`normalize_invisible_parens` for `if`/`elif`/`while`/`for`/`return`/`del`/
//! `assert`/`except`/assignments), around the only element of a list or set literal,
//! and invisible parentheses around conditional expressions (`visit_test`).
//!
//! A statement outside the subset is copied through unchanged: comments inside
//! brackets, multi-line (triple-quoted) strings, backslash continuations, semicolons,
//! one-line compound statements (`if x: y`), `with (...)`, indentation that is not a
//! multiple of four, or anything the tokenizer does not know.

use std::collections::{HashMap, HashSet};

const LINE_LENGTH: usize = 100;

const COMPREHENSION_PRIORITY: u8 = 20;
const COMMA_PRIORITY: u8 = 18;
const TERNARY_PRIORITY: u8 = 16;
const LOGIC_PRIORITY: u8 = 14;
const STRING_PRIORITY: u8 = 12;
const COMPARATOR_PRIORITY: u8 = 10;
const DOT_PRIORITY: u8 = 1;

/// The module text as `black --line-length 100` would write it, for generated code whose
/// statements are each on one physical line (see the contract above).
pub fn format(source: &str) -> String {
    let lines: Vec<&str> = source.split('\n').collect();
    // `split` yields a final empty piece when the text ends with a newline.
    let ends_with_newline = source.ends_with('\n');
    let n = if ends_with_newline {
        lines.len() - 1
    } else {
        lines.len()
    };
    let mut out = String::with_capacity(source.len() + source.len() / 8);
    let varargs_comma = uses_py36_features(&lines[..n]);
    let mut i = 0;
    while i < n {
        let line = lines[i];
        let trimmed = line.trim_start();
        if trimmed.is_empty() {
            // black writes blank lines without whitespace
            out.push('\n');
            i += 1;
            continue;
        }
        if trimmed.starts_with('#') {
            out.push_str(line);
            out.push('\n');
            i += 1;
            continue;
        }
        // Gather the physical lines of one statement: continue while brackets are open.
        let mut j = i;
        let mut text = String::new();
        let mut ok = true;
        loop {
            if j >= n {
                ok = false;
                break;
            }
            if j > i {
                text.push('\n');
            }
            text.push_str(lines[j]);
            j += 1;
            match statement_continues(&text) {
                Some(false) => break,
                Some(true) => continue,
                None => {
                    ok = false;
                    break;
                }
            }
        }
        if !ok {
            // Not something we understand: copy the rest through.
            for l in &lines[i..n] {
                out.push_str(l);
                out.push('\n');
            }
            break;
        }
        let indent = line.len() - trimmed.len();
        let formatted = if indent.is_multiple_of(4) {
            // A statement the port trips over is copied through rather than lost.
            std::panic::catch_unwind(|| format_statement(&text, indent / 4, varargs_comma))
                .unwrap_or(None)
        } else {
            None
        };
        match formatted {
            Some(rendered) => {
                for l in rendered {
                    out.push_str(&l);
                    out.push('\n');
                }
            }
            None => {
                if std::env::var_os("BLACKPORT_DEBUG").is_some() {
                    eprintln!("blackport: statement left unchanged: {}", lines[i].trim());
                }
                for l in &lines[i..j] {
                    out.push_str(l);
                    out.push('\n');
                }
            }
        }
        i = j;
    }
    if !ends_with_newline && out.ends_with('\n') {
        out.pop();
    }
    out
}

/// black infers the target versions from the features a file uses; a trailing comma
/// after `*args` / `**kwargs` is only added when they all allow it (Python 3.6+ here:
/// f-strings, underscores in numbers, `:=`). Other version-revealing features are not
/// detected.
fn uses_py36_features(lines: &[&str]) -> bool {
    for l in lines {
        if let Some((toks, _)) = tokenize(l) {
            for t in &toks {
                if t.k == K::Str && t.v.starts_with(|c: char| c != '"' && c != '\'') {
                    let q = t.v.find(['"', '\'']).unwrap_or(0);
                    if t.v[..q].contains(['f', 'F']) {
                        return true;
                    }
                }
                if t.k == K::Number && t.v.contains('_') {
                    return true;
                }
                if t.k == K::Op && t.v == ":=" {
                    return true;
                }
            }
        }
    }
    false
}

/// Whether `text` ends inside brackets or inside a string (the statement continues on
/// the next physical line). Comments and strings are skipped; `None` when closing
/// brackets outnumber opening ones.
fn statement_continues(text: &str) -> Option<bool> {
    let chars: Vec<char> = text.chars().collect();
    let mut depth = 0i32;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            '"' | '\'' => {
                let triple = i + 2 < chars.len() && chars[i + 1] == c && chars[i + 2] == c;
                let mut j = if triple { i + 3 } else { i + 1 };
                loop {
                    if j >= chars.len() {
                        return Some(true);
                    }
                    if chars[j] == '\\' {
                        j += 2;
                        continue;
                    }
                    if !triple && chars[j] == '\n' {
                        return None;
                    }
                    if chars[j] == c
                        && (!triple
                            || (j + 2 < chars.len() && chars[j + 1] == c && chars[j + 2] == c))
                    {
                        j += if triple { 3 } else { 1 };
                        break;
                    }
                    j += 1;
                }
                i = j;
                continue;
            }
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => {
                depth -= 1;
                if depth < 0 {
                    return None;
                }
            }
            _ => {}
        }
        i += 1;
    }
    Some(depth > 0)
}

// ---------------------------------------------------------------------------------
// Tokens

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum K {
    Name,
    Number,
    Str,
    Op,
    Open,
    Close,
    Comma,
    Colon,
    Dot,
    Equal,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Role {
    None,
    StmtKw,
    CompFor,
    CompIf,
    Ternary,
    CmpIn,
    ForIn,
    CompOpNot,
}

#[derive(Clone, Debug)]
struct Tok {
    k: K,
    v: String,
    /// b'(' / b'[' / b'{' for brackets (also for closing ones).
    bch: u8,
    /// black's whitespace before the token.
    ws: String,
    role: Role,
    unary: bool,
    /// Bracket whose parent is an atom (literal, parenthesised expression, invisible).
    atom: bool,
    /// Bracket whose parent is a trailer (call or subscript).
    trailer: bool,
    /// Comma whose parent is an arglist / typedargslist (counts twice in
    /// `is_one_sequence_between`).
    arglist_comma: bool,
    /// Comma in a `for` target (exprlist of for_stmt / comp_for): not a delimiter.
    for_target_comma: bool,
    in_import: bool,
}

impl Tok {
    fn new(k: K, v: &str, ws: &str) -> Tok {
        let bch = match v {
            "(" | ")" => b'(',
            "[" | "]" => b'[',
            "{" | "}" => b'{',
            _ => 0,
        };
        Tok {
            k,
            v: v.to_string(),
            bch,
            ws: ws.to_string(),
            role: Role::None,
            unary: false,
            atom: false,
            trailer: false,
            arglist_comma: false,
            for_target_comma: false,
            in_import: false,
        }
    }
    fn invisible(open: bool) -> Tok {
        let mut t = Tok::new(if open { K::Open } else { K::Close }, "", "");
        t.bch = b'(';
        t.atom = true;
        t
    }
}

const OPERATORS3: [&str; 5] = ["**=", "//=", ">>=", "<<=", "..."];
const OPERATORS2: [&str; 20] = [
    "**", "//", "==", "!=", "<=", ">=", "<<", ">>", "->", ":=", "+=", "-=", "*=", "/=", "%=", "&=",
    "|=", "^=", "@=", "<>",
];

/// Tokens of a statement's text, and its trailing comment. `None` for text outside the
/// supported subset (comments inside brackets, backslashes, unterminated or
/// multi-line strings, semicolons).
fn tokenize(text: &str) -> Option<(Vec<Tok>, Option<String>)> {
    let chars: Vec<char> = text.chars().collect();
    let mut toks: Vec<Tok> = Vec::new();
    let mut comment = None;
    let mut i = 0;
    let mut ws = String::new();
    let mut newline = false;
    let mut depth = 0i32;
    while i < chars.len() {
        let c = chars[i];
        if c == ' ' || c == '\t' {
            ws.push(c);
            i += 1;
            continue;
        }
        if c == '\n' || c == '\r' {
            newline = true;
            ws.clear();
            i += 1;
            continue;
        }
        if c == '\\' || c == ';' {
            return None;
        }
        if c == '#' {
            if depth > 0 {
                return None;
            }
            let rest: String = chars[i..].iter().collect();
            if rest.contains('\n') {
                return None;
            }
            comment = Some(rest.trim_end().to_string());
            break;
        }
        let start = i;
        let k;
        if is_name_start(c) {
            // String prefix?
            let mut j = i;
            while j < chars.len() && j - i < 3 && "rRbBuUfF".contains(chars[j]) {
                j += 1;
            }
            if j < chars.len() && (chars[j] == '"' || chars[j] == '\'') && j > i {
                i = scan_string(&chars, j)?;
                k = K::Str;
            } else {
                while i < chars.len() && is_name_char(chars[i]) {
                    i += 1;
                }
                k = K::Name;
            }
        } else if c == '"' || c == '\'' {
            i = scan_string(&chars, i)?;
            k = K::Str;
        } else if c.is_ascii_digit()
            || (c == '.' && i + 1 < chars.len() && chars[i + 1].is_ascii_digit())
        {
            let hex = c == '0' && i + 1 < chars.len() && "xXoObB".contains(chars[i + 1]);
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '.')
            {
                let ch = chars[i];
                i += 1;
                if !hex
                    && (ch == 'e' || ch == 'E')
                    && i < chars.len()
                    && (chars[i] == '+' || chars[i] == '-')
                {
                    i += 1;
                }
            }
            k = K::Number;
        } else {
            let rest3: String = chars[i..(i + 3).min(chars.len())].iter().collect();
            let rest2: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            if OPERATORS3.contains(&rest3.as_str()) {
                i += 3;
                k = K::Op;
            } else if OPERATORS2.contains(&rest2.as_str()) {
                i += 2;
                k = K::Op;
            } else {
                i += 1;
                k = match c {
                    '(' | '[' | '{' => {
                        depth += 1;
                        K::Open
                    }
                    ')' | ']' | '}' => {
                        depth -= 1;
                        K::Close
                    }
                    ',' => K::Comma,
                    ':' => K::Colon,
                    '.' => K::Dot,
                    '=' => K::Equal,
                    '+' | '-' | '*' | '/' | '%' | '@' | '&' | '|' | '^' | '~' | '<' | '>' | '!' => {
                        K::Op
                    }
                    _ => return None,
                };
            }
        }
        let v: String = chars[start..i].iter().collect();
        let mut t = Tok::new(k, &v, &ws);
        if newline {
            // black's spacing for a token that began a continuation line.
            let after_open = toks.last().map(|p| p.k == K::Open).unwrap_or(true);
            t.ws = if after_open || k == K::Close {
                String::new()
            } else {
                " ".to_string()
            };
        }
        if toks.is_empty() {
            t.ws.clear();
        }
        toks.push(t);
        ws.clear();
        newline = false;
    }
    Some((toks, comment))
}

fn is_name_start(c: char) -> bool {
    c.is_alphabetic() || c == '_' || (!c.is_ascii() && !c.is_whitespace())
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || (!c.is_ascii() && !c.is_whitespace())
}

/// Index just past the string literal whose opening quote is at `q`.
fn scan_string(chars: &[char], q: usize) -> Option<usize> {
    let quote = chars[q];
    let triple = q + 2 < chars.len() && chars[q + 1] == quote && chars[q + 2] == quote;
    let mut i = if triple { q + 3 } else { q + 1 };
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            i += 2;
            continue;
        }
        if c == '\n' {
            return None;
        }
        if c == quote {
            if !triple {
                return Some(i + 1);
            }
            if i + 2 < chars.len() && chars[i + 1] == quote && chars[i + 2] == quote {
                return Some(i + 3);
            }
        }
        i += 1;
    }
    None
}

const KEYWORDS: [&str; 31] = [
    "and", "or", "not", "in", "is", "if", "else", "elif", "for", "while", "return", "lambda",
    "yield", "del", "assert", "import", "from", "as", "with", "await", "raise", "pass", "break",
    "continue", "def", "class", "global", "nonlocal", "try", "except", "finally",
];

fn is_keyword(v: &str) -> bool {
    KEYWORDS.contains(&v)
}

/// A token after which a `-`, `*`, `(`... is binary / a trailer.
fn is_value_end(t: &Tok) -> bool {
    match t.k {
        K::Name => !is_keyword(&t.v),
        K::Number | K::Str | K::Close => true,
        _ => false,
    }
}

/// Give tokens the parse-tree facts black's delimiter logic reads from leaf parents.
fn assign_roles(toks: &mut [Tok]) -> Option<()> {
    #[derive(Clone)]
    struct Ctx {
        paren_args: bool,
        comp_for_seen: bool,
        pending_for: u32,
    }
    let first = toks.first()?.v.clone();
    let is_import = toks[0].k == K::Name && (first == "import" || first == "from");
    let mut stack: Vec<Ctx> = vec![Ctx {
        paren_args: false,
        comp_for_seen: false,
        pending_for: 0,
    }];
    let mut opens: Vec<usize> = Vec::new();
    for i in 0..toks.len() {
        let prev = if i > 0 {
            Some(toks[i - 1].clone())
        } else {
            None
        };
        let next_v = toks.get(i + 1).map(|t| t.v.clone()).unwrap_or_default();
        toks[i].in_import = is_import;
        match toks[i].k {
            K::Open => {
                let trailer =
                    toks[i].bch != b'{' && prev.as_ref().map(is_value_end).unwrap_or(false);
                let params = toks[i].bch == b'('
                    && i >= 2
                    && toks[i - 2].k == K::Name
                    && (toks[i - 2].v == "def" || toks[i - 2].v == "class");
                toks[i].trailer = trailer && !params;
                toks[i].atom = !trailer && !params;
                opens.push(i);
                stack.push(Ctx {
                    paren_args: toks[i].bch == b'(' && (trailer || params),
                    comp_for_seen: false,
                    pending_for: 0,
                });
            }
            K::Close => {
                if stack.len() <= 1 {
                    return None;
                }
                stack.pop();
                let o = opens.pop()?;
                if toks[o].bch != toks[i].bch {
                    return None;
                }
                toks[i].atom = toks[o].atom;
                toks[i].trailer = toks[o].trailer;
            }
            K::Comma => {
                let ctx = stack.last().unwrap();
                toks[i].arglist_comma = ctx.paren_args;
                toks[i].for_target_comma = ctx.pending_for > 0;
            }
            K::Op => {
                let v = toks[i].v.as_str();
                if matches!(v, "-" | "+" | "~" | "*" | "**") {
                    toks[i].unary = v == "~" || !prev.as_ref().map(is_value_end).unwrap_or(false);
                    // a vararg (`*args` / `**kwargs`) of a call or a def
                    toks[i].arglist_comma = stack.last().unwrap().paren_args;
                }
            }
            K::Name => {
                let v = toks[i].v.clone();
                let ctx = stack.last_mut().unwrap();
                match v.as_str() {
                    "for" => {
                        if i == 0 {
                            toks[i].role = Role::StmtKw;
                        } else {
                            toks[i].role = Role::CompFor;
                            ctx.comp_for_seen = true;
                        }
                        ctx.pending_for += 1;
                    }
                    "in" => {
                        if ctx.pending_for > 0 {
                            ctx.pending_for -= 1;
                            toks[i].role = Role::ForIn;
                        } else {
                            toks[i].role = Role::CmpIn;
                        }
                    }
                    "not" => {
                        let after_is = prev
                            .as_ref()
                            .map(|p| p.k == K::Name && p.v == "is")
                            .unwrap_or(false);
                        if next_v == "in" || after_is {
                            toks[i].role = Role::CompOpNot;
                        }
                    }
                    "if" => {
                        toks[i].role = if i == 0 {
                            Role::StmtKw
                        } else if ctx.comp_for_seen {
                            Role::CompIf
                        } else {
                            Role::Ternary
                        };
                    }
                    "else" => {
                        toks[i].role = if i == 0 { Role::StmtKw } else { Role::Ternary };
                    }
                    _ => {
                        if i == 0 && is_keyword(&v) {
                            toks[i].role = Role::StmtKw;
                        }
                    }
                }
            }
            _ => {}
        }
    }
    if stack.len() != 1 {
        return None;
    }
    Some(())
}

/// Index of the bracket matching the one at `i` (either direction).
fn matching(toks: &[Tok], i: usize) -> Option<usize> {
    if toks[i].k == K::Open {
        let mut d = 0i32;
        for (j, t) in toks.iter().enumerate().skip(i) {
            match t.k {
                K::Open => d += 1,
                K::Close => {
                    d -= 1;
                    if d == 0 {
                        return Some(j);
                    }
                }
                _ => {}
            }
        }
        None
    } else if toks[i].k == K::Close {
        let mut d = 0i32;
        for j in (0..=i).rev() {
            match toks[j].k {
                K::Close => d += 1,
                K::Open => {
                    d -= 1;
                    if d == 0 {
                        return Some(j);
                    }
                }
                _ => {}
            }
        }
        None
    } else {
        None
    }
}

/// Depth-0 positions of `toks[s..e]`, with lambda parameter lists skipped (their
/// colon and commas belong to the lambda).
fn top_level(toks: &[Tok], s: usize, e: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut d = 0i32;
    let mut lambda = 0i32;
    for (j, t) in toks.iter().enumerate().take(e).skip(s) {
        match t.k {
            K::Open => {
                if d == 0 && lambda == 0 {
                    out.push(j);
                }
                d += 1;
                continue;
            }
            K::Close => {
                d -= 1;
                if d == 0 && lambda == 0 {
                    out.push(j);
                }
                continue;
            }
            _ => {}
        }
        if d != 0 {
            continue;
        }
        if t.k == K::Name && t.v == "lambda" {
            lambda += 1;
            continue;
        }
        if lambda > 0 {
            if t.k == K::Colon {
                lambda -= 1;
            }
            continue;
        }
        out.push(j);
    }
    out
}

/// `maybe_make_parens_invisible_in_atom` for the atom `toks[s..=e]` (`(` ... `)`).
/// Returns the positions to delete (nested redundant pairs), having set the values.
fn make_parens_invisible(
    toks: &mut Vec<Tok>,
    s: usize,
    e: usize,
    remove_comma: bool,
    expr_stmt: bool,
) -> bool {
    if e == s + 1 {
        return false; // empty tuple
    }
    let tl = top_level(toks, s + 1, e);
    let commas: Vec<usize> = tl
        .iter()
        .copied()
        .filter(|&j| toks[j].k == K::Comma)
        .collect();
    if commas.len() == 1 && commas[0] == e - 1 {
        return false; // one-tuple
    }
    if toks[s + 1].k == K::Name && toks[s + 1].v == "yield" && !expr_stmt {
        return false;
    }
    let comp_for = tl.iter().any(|&j| toks[j].role == Role::CompFor);
    if comp_for {
        return false; // generator (and COMPREHENSION_PRIORITY)
    }
    if !remove_comma && !commas.is_empty() {
        return false;
    }
    if tl.iter().any(|&j| toks[j].v == ":=") {
        return false;
    }
    if tl
        .iter()
        .any(|&j| toks[j].k == K::Op && toks[j].unary && (toks[j].v == "*" || toks[j].v == "**"))
    {
        return false;
    }
    toks[s].v.clear();
    toks[e].v.clear();
    // The middle: if it is itself a parenthesised atom, recurse and drop its pair.
    if toks[s + 1].k == K::Open
        && toks[s + 1].bch == b'('
        && toks[s + 1].v == "("
        && matching(toks, s + 1) == Some(e - 1)
    {
        make_parens_invisible(toks, s + 1, e - 1, remove_comma, expr_stmt);
        if toks[s + 1].v.is_empty()
            && let Some(m) = matching(toks, s + 1)
        {
            toks.remove(m);
            toks.remove(s + 1);
            toks[s + 1].ws.clear();
        }
    }
    true
}

/// `normalize_invisible_parens` for one statement child `toks[s..e]`. Returns the
/// change in token count.
fn normalize_child(
    toks: &mut Vec<Tok>,
    s: usize,
    e: usize,
    remove_comma: bool,
    is_in: bool,
) -> isize {
    let expr_stmt = toks[0].role != Role::StmtKw;
    if s >= e {
        return 0;
    }
    let before = toks.len() as isize;
    let first = &toks[s];
    if first.k == K::Open && matching(toks, s) == Some(e - 1) {
        if first.bch == b'(' && first.v == "(" {
            if is_in && parenthesized_lambda_or_ternary(toks, s, e - 1) {
                // A comprehension-like iterable keeps exactly one visible pair.
                make_parens_invisible(toks, s, e - 1, false, false);
                toks[s].v = "(".into();
                if let Some(m) = matching(toks, s) {
                    toks[m].v = ")".into();
                }
                return toks.len() as isize - before;
            }
            make_parens_invisible(toks, s, e - 1, remove_comma, expr_stmt);
            return toks.len() as isize - before;
        }
        wrap_invisible(toks, s, e);
        return 2;
    }
    // is_one_tuple: a bare `x,`
    let tl = top_level(toks, s, e);
    let commas: Vec<usize> = tl
        .iter()
        .copied()
        .filter(|&j| toks[j].k == K::Comma)
        .collect();
    if commas.len() == 1 && commas[0] == e - 1 && e - s >= 2 {
        let ws = std::mem::take(&mut toks[s].ws);
        let mut o = Tok::invisible(true);
        o.v = "(".into();
        o.ws = ws;
        let mut c = Tok::invisible(false);
        c.v = ")".into();
        toks.insert(e, c);
        toks.insert(s, o);
        return 2;
    }
    wrap_invisible(toks, s, e);
    2
}

/// `_is_parenthesized_lambda_or_ternary`: the atom `toks[s..=e]`, looking through
/// redundant nested parentheses, wraps a lambda or a conditional expression.
fn parenthesized_lambda_or_ternary(toks: &[Tok], mut s: usize, mut e: usize) -> bool {
    loop {
        if e <= s + 1 {
            return false;
        }
        let tl = top_level(toks, s + 1, e);
        if (toks[s + 1].k == K::Name && toks[s + 1].v == "lambda")
            || tl.iter().any(|&j| toks[j].role == Role::Ternary)
        {
            return true;
        }
        if toks[s + 1].k == K::Open
            && toks[s + 1].bch == b'('
            && matching(toks, s + 1) == Some(e - 1)
        {
            s += 1;
            e -= 1;
            continue;
        }
        return false;
    }
}

fn wrap_invisible(toks: &mut Vec<Tok>, s: usize, e: usize) {
    let mut o = Tok::invisible(true);
    o.ws = std::mem::take(&mut toks[s].ws);
    toks.insert(e, Tok::invisible(false));
    toks.insert(s, o);
}

fn normalize_statement(toks: &mut Vec<Tok>) -> Option<()> {
    let first = toks[0].clone();
    let n = toks.len();
    let tl = top_level(toks, 0, n);
    if first.role == Role::StmtKw {
        match first.v.as_str() {
            "if" | "elif" | "while" => {
                if toks[n - 1].k != K::Colon {
                    return None;
                }
                normalize_child(toks, 1, n - 1, false, false);
            }
            "for" => {
                if toks[n - 1].k != K::Colon {
                    return None;
                }
                let in_idx = *tl.iter().find(|&&j| toks[j].role == Role::ForIn)?;
                let iter_s = in_idx + 1;
                let d = normalize_child(toks, 1, in_idx, true, false);
                let iter_s = (iter_s as isize + d) as usize;
                let n = toks.len();
                normalize_child(toks, iter_s, n - 1, false, true);
            }
            "return" | "del" => {
                normalize_child(toks, 1, n, false, false);
            }
            "assert" => {
                let comma = tl.iter().copied().find(|&j| toks[j].k == K::Comma);
                match comma {
                    Some(c) => {
                        let d = normalize_child(toks, 1, c, false, false);
                        let c = (c as isize + d) as usize;
                        let n = toks.len();
                        normalize_child(toks, c + 1, n, false, false);
                    }
                    None => {
                        normalize_child(toks, 1, n, false, false);
                    }
                }
            }
            "else" | "try" | "finally" => {
                if n != 2 || toks[1].k != K::Colon {
                    return None;
                }
            }
            "def" | "class" => {
                if toks[n - 1].k != K::Colon {
                    return None;
                }
            }
            "except" | "with" => {
                if toks[n - 1].k != K::Colon {
                    return None;
                }
                // Only the plain forms; anything longer is left to `Unsupported`.
                if first.v == "with" {
                    // `remove_with_parens` only touches atoms; without them (and without
                    // parenthesized context managers in the target versions) a `with`
                    // statement gets no invisible parentheses.
                    if toks[1].k == K::Open {
                        return None;
                    }
                    return Some(());
                }
                let as_idx = tl
                    .iter()
                    .copied()
                    .find(|&j| toks[j].k == K::Name && toks[j].v == "as");
                normalize_child(toks, 1, as_idx.unwrap_or(n - 1), false, false);
            }
            "import" | "from" | "pass" | "break" | "continue" | "raise" | "global" | "nonlocal" => {
            }
            _ => return None,
        }
        return Some(());
    }
    // Expression statement: children after every depth-0 assignment operator.
    let assign: Vec<usize> = tl
        .iter()
        .copied()
        .filter(|&j| {
            let t = &toks[j];
            t.k == K::Equal
                || t.k == K::Colon
                || (t.k == K::Op
                    && t.v.ends_with('=')
                    && !matches!(t.v.as_str(), "==" | "!=" | "<=" | ">=" | ":="))
        })
        .collect();
    if assign.is_empty() {
        return Some(());
    }
    // Process from the right so earlier indices stay valid.
    let mut bounds: Vec<(usize, usize)> = Vec::new();
    for (k, &a) in assign.iter().enumerate() {
        let end = if k + 1 < assign.len() {
            assign[k + 1]
        } else {
            n
        };
        bounds.push((a + 1, end));
    }
    for &(s, e) in bounds.iter().rev() {
        normalize_child(toks, s, e, false, false);
    }
    Some(())
}

/// `LineGenerator.visit_test`: invisible parentheses around every conditional
/// expression that is not already the sole content of a pair of parentheses.
fn wrap_ternaries(toks: &mut Vec<Tok>) {
    let mut i = 0;
    while i < toks.len() {
        if !(toks[i].k == K::Name && toks[i].v == "if" && toks[i].role == Role::Ternary) {
            i += 1;
            continue;
        }
        // Start: scan back at the same nesting level.
        let mut s = i;
        let mut j = i;
        while j > 0 {
            let p = &toks[j - 1];
            let boundary = match p.k {
                K::Open | K::Comma | K::Colon | K::Equal => true,
                K::Op => {
                    (p.v.ends_with('=') && !matches!(p.v.as_str(), "==" | "!=" | "<=" | ">="))
                        || (p.unary && (p.v == "*" || p.v == "**"))
                }
                K::Name => {
                    p.role == Role::StmtKw
                        || p.role == Role::ForIn
                        || (p.v == "else" && p.role == Role::Ternary)
                        || matches!(p.v.as_str(), "return" | "yield" | "lambda" | "await")
                }
                _ => false,
            };
            if boundary {
                break;
            }
            if p.k == K::Close {
                j = match matching(toks, j - 1) {
                    Some(m) => m,
                    None => return,
                };
                s = j;
                continue;
            }
            j -= 1;
            s = j;
        }
        // End: the matching `else`, then the else-part.
        let mut e = i + 1;
        let mut level_if = 1;
        while e < toks.len() {
            let t = &toks[e];
            if t.k == K::Open {
                e = match matching(toks, e) {
                    Some(m) => m + 1,
                    None => return,
                };
                continue;
            }
            if t.k == K::Close || t.k == K::Comma || t.k == K::Colon {
                break;
            }
            if t.k == K::Name && t.v == "if" && t.role == Role::Ternary {
                level_if += 1;
            }
            if t.k == K::Name && t.v == "else" && t.role == Role::Ternary {
                level_if -= 1;
                if level_if == 0 {
                    e += 1;
                    break;
                }
            }
            e += 1;
        }
        // else-part: a `test` (may contain further ternaries and lambdas).
        let mut lambda = 0;
        while e < toks.len() {
            let t = &toks[e];
            if t.k == K::Open {
                e = match matching(toks, e) {
                    Some(m) => m + 1,
                    None => return,
                };
                continue;
            }
            if t.k == K::Name && t.v == "lambda" {
                lambda += 1;
            }
            if t.k == K::Colon && lambda > 0 {
                lambda -= 1;
                e += 1;
                continue;
            }
            if t.k == K::Close
                || t.k == K::Comma
                || t.k == K::Colon
                || t.k == K::Equal
                || (t.k == K::Name && (t.role == Role::CompFor || t.role == Role::CompIf))
            {
                break;
            }
            e += 1;
        }
        let already = s > 0
            && toks[s - 1].k == K::Open
            && toks[s - 1].bch == b'('
            && e < toks.len()
            && matching(toks, s - 1) == Some(e);
        if !already && s < i {
            wrap_invisible(toks, s, e);
            i += 2;
        }
        i += 1;
    }
}

// ---------------------------------------------------------------------------------
// Leaves, lines, bracket tracker

#[derive(Clone, Debug)]
struct Leaf {
    t: Tok,
    prefix: String,
    depth: i32,
    opening: Option<usize>,
}

#[derive(Clone, Default, Debug)]
struct Tracker {
    depth: i32,
    bracket_match: HashMap<(i32, u8), usize>,
    delimiters: HashMap<usize, u8>,
    previous: Option<usize>,
    for_depths: Vec<i32>,
    lambda_depths: Vec<i32>,
    invisible: Vec<usize>,
}

#[derive(Clone, Default, Debug)]
struct Line {
    depth: usize,
    leaves: Vec<usize>,
    comments: Vec<(usize, String)>,
    bt: Tracker,
    inside_brackets: bool,
    should_split_rhs: bool,
    magic_trailing_comma: Option<usize>,
}

struct RhsResult {
    head: Line,
    body: Line,
    tail: Line,
    opening: usize,
    closing: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Transform {
    Delimiter,
    Rhs,
    Lhs,
}

struct CannotSplit;

type Res<T> = Result<T, CannotSplit>;

struct Ctx {
    leaves: Vec<Leaf>,
    /// Trailing commas may follow `*args` / `**kwargs` (target versions allow it).
    varargs_comma: bool,
}

/// `black.strings.str_width`: East Asian wide and full-width characters count twice,
/// combining marks not at all (an approximation of `unicodedata` by code point ranges).
fn str_width(s: &str) -> usize {
    if s.is_ascii() {
        return s.len();
    }
    s.chars()
        .map(|c| {
            let u = c as u32;
            if (0x300..=0x36F).contains(&u)
                || (0x1AB0..=0x1AFF).contains(&u)
                || (0x20D0..=0x20FF).contains(&u)
            {
                0
            } else if (0x1100..=0x115F).contains(&u)
                || (0x2E80..=0x303E).contains(&u)
                || (0x3041..=0x33FF).contains(&u)
                || (0x3400..=0x4DBF).contains(&u)
                || (0x4E00..=0x9FFF).contains(&u)
                || (0xA000..=0xA4CF).contains(&u)
                || (0xAC00..=0xD7A3).contains(&u)
                || (0xF900..=0xFAFF).contains(&u)
                || (0xFE30..=0xFE4F).contains(&u)
                || (0xFF00..=0xFF60).contains(&u)
                || (0xFFE0..=0xFFE6).contains(&u)
                || (0x1F300..=0x1F64F).contains(&u)
                || (0x1F900..=0x1F9FF).contains(&u)
                || (0x20000..=0x3FFFD).contains(&u)
            {
                2
            } else {
                1
            }
        })
        .sum()
}

fn format_statement(text: &str, depth: usize, varargs_comma: bool) -> Option<Vec<String>> {
    let (mut toks, comment) = tokenize(text)?;
    if toks.is_empty() {
        return None;
    }
    assign_roles(&mut toks)?;
    for t in toks.iter_mut() {
        if t.k == K::Str {
            t.v = normalize_string_quotes(&normalize_string_prefix(&t.v));
        } else if t.k == K::Number {
            t.v = normalize_numeric_literal(&t.v);
        }
    }
    subscript_spacing(&mut toks);
    normalize_statement(&mut toks)?;
    single_element_collections(&mut toks);
    wrap_ternaries(&mut toks);
    let mut ctx = Ctx {
        leaves: Vec::with_capacity(toks.len() + 8),
        varargs_comma,
    };
    let mut line = Line {
        depth,
        ..Default::default()
    };
    for t in toks {
        let id = ctx.leaves.len();
        ctx.leaves.push(Leaf {
            t,
            prefix: String::new(),
            depth: 0,
            opening: None,
        });
        ctx.append(&mut line, id, false, false);
    }
    if line.bt.depth != 0 {
        return None;
    }
    if let Some(c) = comment {
        // `append_comment`: an invisible rpar wrapping a single leaf passes the comment on.
        let n = line.leaves.len();
        let mut target = line.leaves[n - 1];
        let l = &ctx.leaves[target];
        if l.t.k == K::Close
            && l.t.v.is_empty()
            && n >= 3
            && let Some(o) = l.opening
            && line.leaves[n - 3] == o
        {
            target = line.leaves[n - 2];
        }
        line.comments.push((target, c));
    }
    let result = ctx.transform_line(line, false);
    Some(result.iter().map(|l| ctx.render(l)).collect())
}

fn is_math(v: &str) -> Option<u8> {
    Some(match v {
        "|" => 9,
        "^" => 8,
        "&" => 7,
        "<<" | ">>" => 6,
        "+" | "-" => 5,
        "*" | "/" | "//" | "%" | "@" => 4,
        "~" => 3,
        "**" => 2,
        _ => return None,
    })
}

impl Ctx {
    fn l(&self, id: usize) -> &Leaf {
        &self.leaves[id]
    }

    fn is_open(&self, id: usize) -> bool {
        self.leaves[id].t.k == K::Open
    }

    fn is_close(&self, id: usize) -> bool {
        self.leaves[id].t.k == K::Close
    }

    fn new_comma(&mut self) -> usize {
        let id = self.leaves.len();
        self.leaves.push(Leaf {
            t: Tok::new(K::Comma, ",", ""),
            prefix: String::new(),
            depth: 0,
            opening: None,
        });
        id
    }

    fn split_before(&self, id: usize, previous: Option<usize>) -> u8 {
        let t = &self.leaves[id].t;
        if t.k == K::Op && t.unary && (t.v == "*" || t.v == "**") {
            return 0;
        }
        if t.k == K::Dot && !t.in_import && previous.map(|p| self.is_close(p)).unwrap_or(true) {
            return DOT_PRIORITY;
        }
        if t.k == K::Op {
            if let Some(p) = is_math(&t.v) {
                if !t.unary {
                    return p;
                }
                return 0;
            }
            if matches!(t.v.as_str(), "<" | ">" | "==" | "!=" | "<=" | ">=" | "<>") {
                return COMPARATOR_PRIORITY;
            }
            return 0;
        }
        if t.k == K::Str {
            if let Some(p) = previous
                && self.leaves[p].t.k == K::Str
            {
                return STRING_PRIORITY;
            }
            return 0;
        }
        if t.k != K::Name {
            return 0;
        }
        let prev_is = |v: &str| {
            previous
                .map(|p| self.leaves[p].t.k == K::Name && self.leaves[p].t.v == v)
                .unwrap_or(false)
        };
        match (t.v.as_str(), t.role) {
            ("for", Role::CompFor) => COMPREHENSION_PRIORITY,
            ("if", Role::CompIf) => COMPREHENSION_PRIORITY,
            ("if", Role::Ternary) | ("else", Role::Ternary) => TERNARY_PRIORITY,
            ("is", _) => COMPARATOR_PRIORITY,
            ("in", Role::CmpIn) if !prev_is("not") => COMPARATOR_PRIORITY,
            ("not", Role::CompOpNot) if !prev_is("is") => COMPARATOR_PRIORITY,
            ("and", _) | ("or", _) => LOGIC_PRIORITY,
            _ => 0,
        }
    }

    fn split_after(&self, id: usize) -> u8 {
        let t = &self.leaves[id].t;
        if t.k == K::Comma && !t.for_target_comma {
            COMMA_PRIORITY
        } else {
            0
        }
    }

    /// `BracketTracker.mark`
    fn mark(&mut self, bt: &mut Tracker, id: usize) {
        let k = self.leaves[id].t.k;
        let bch = self.leaves[id].t.bch;
        if bt.depth == 0 && k == K::Close && !bt.bracket_match.contains_key(&(0, bch)) {
            return;
        }
        // maybe_decrement_after_for_loop_variable
        {
            let t = &self.leaves[id].t;
            if !bt.for_depths.is_empty()
                && *bt.for_depths.last().unwrap() == bt.depth
                && t.k == K::Name
                && t.v == "in"
            {
                bt.depth -= 1;
                bt.for_depths.pop();
            }
            let t = &self.leaves[id].t;
            if !bt.lambda_depths.is_empty()
                && *bt.lambda_depths.last().unwrap() == bt.depth
                && t.k == K::Colon
            {
                bt.depth -= 1;
                bt.lambda_depths.pop();
            }
        }
        if k == K::Close {
            bt.depth -= 1;
            let opening = bt.bracket_match.remove(&(bt.depth, bch));
            if let Some(o) = opening {
                self.leaves[id].opening = Some(o)
            }
            if self.leaves[id].t.v.is_empty() {
                bt.invisible.push(id);
            }
        }
        self.leaves[id].depth = bt.depth;
        if bt.depth == 0 {
            let delim = self.split_before(id, bt.previous);
            if let (true, Some(previous)) = (delim > 0, bt.previous) {
                bt.delimiters.insert(previous, delim);
            } else {
                let d = self.split_after(id);
                if d > 0 {
                    bt.delimiters.insert(id, d);
                }
            }
        }
        if k == K::Open {
            bt.bracket_match.insert((bt.depth, bch), id);
            bt.depth += 1;
            if self.leaves[id].t.v.is_empty() {
                bt.invisible.push(id);
            }
        }
        bt.previous = Some(id);
        let t = &self.leaves[id].t;
        if t.k == K::Name && t.v == "lambda" {
            bt.depth += 1;
            bt.lambda_depths.push(bt.depth);
        }
        let t = &self.leaves[id].t;
        if t.k == K::Name && t.v == "for" {
            bt.depth += 1;
            bt.for_depths.push(bt.depth);
        }
    }

    /// `Line.append`
    fn append(&mut self, line: &mut Line, id: usize, preformatted: bool, track: bool) {
        if !preformatted {
            self.leaves[id].prefix = if line.leaves.is_empty() {
                String::new()
            } else {
                self.leaves[id].t.ws.clone()
            };
        }
        if line.inside_brackets || !preformatted || track {
            let mut bt = std::mem::take(&mut line.bt);
            self.mark(&mut bt, id);
            line.bt = bt;
            if self.has_magic_trailing_comma(line, id) {
                line.magic_trailing_comma = Some(id);
            }
        }
        line.leaves.push(id);
    }

    fn has_magic_trailing_comma(&self, line: &Line, closing: usize) -> bool {
        let c = &self.leaves[closing];
        if !(c.t.k == K::Close
            && !line.leaves.is_empty()
            && self.leaves[*line.leaves.last().unwrap()].t.k == K::Comma)
        {
            return false;
        }
        if c.t.bch == b'{' {
            return true;
        }
        if c.t.bch == b'[' {
            if c.t.trailer
                && let Some(o) = c.opening
                && self.is_one_sequence_between(o, closing, &line.leaves, b'[')
            {
                return false;
            }
            return true;
        }
        if self.is_import(line) {
            return true;
        }
        if let Some(o) = c.opening
            && !self.is_one_sequence_between(o, closing, &line.leaves, b'(')
        {
            return true;
        }
        false
    }

    fn is_one_sequence_between(
        &self,
        opening: usize,
        closing: usize,
        leaves: &[usize],
        bch: u8,
    ) -> bool {
        if self.leaves[opening].t.bch != bch || self.leaves[closing].t.bch != bch {
            return false;
        }
        let depth = self.leaves[closing].depth + 1;
        let Some(pos) = leaves.iter().position(|&l| l == opening) else {
            return false;
        };
        let mut commas = 0;
        for &l in &leaves[pos + 1..] {
            if l == closing {
                break;
            }
            let leaf = &self.leaves[l];
            if leaf.depth == depth && leaf.t.k == K::Comma {
                commas += 1;
                if leaf.t.arglist_comma {
                    commas += 1;
                    break;
                }
            }
        }
        commas < 2
    }

    fn is_import(&self, line: &Line) -> bool {
        line.leaves
            .first()
            .map(|&f| {
                let t = &self.leaves[f].t;
                t.k == K::Name && t.role == Role::StmtKw && (t.v == "import" || t.v == "from")
            })
            .unwrap_or(false)
    }

    fn is_def(&self, line: &Line) -> bool {
        line.leaves
            .first()
            .map(|&f| {
                let t = &self.leaves[f].t;
                t.k == K::Name && t.v == "def"
            })
            .unwrap_or(false)
    }

    fn comments_after<'a>(&self, line: &'a Line, id: usize) -> impl Iterator<Item = &'a String> {
        line.comments
            .iter()
            .filter(move |(l, _)| *l == id)
            .map(|(_, c)| c)
    }

    fn render(&self, line: &Line) -> String {
        let mut s = String::new();
        if line.leaves.is_empty() {
            return s;
        }
        let first = &self.leaves[line.leaves[0]];
        s.push_str(&first.prefix);
        for _ in 0..line.depth {
            s.push_str("    ");
        }
        s.push_str(&first.t.v);
        for &l in &line.leaves[1..] {
            let leaf = &self.leaves[l];
            s.push_str(&leaf.prefix);
            s.push_str(&leaf.t.v);
        }
        for (_, c) in &line.comments {
            s.push_str("  ");
            s.push_str(c);
        }
        s
    }

    fn is_short(&self, line: &Line) -> bool {
        str_width(&self.render(line)) <= LINE_LENGTH
    }

    fn leaf_length(&self, line: &Line, id: usize) -> usize {
        let l = &self.leaves[id];
        let mut n = l.prefix.chars().count() + l.t.v.chars().count();
        for c in self.comments_after(line, id) {
            n += c.chars().count();
        }
        n
    }

    fn max_priority(&self, bt: &Tracker, exclude: &[usize]) -> Option<u8> {
        bt.delimiters
            .iter()
            .filter(|(k, _)| !exclude.contains(k))
            .map(|(_, &v)| v)
            .max()
    }

    fn count_priority(&self, bt: &Tracker, p: u8) -> usize {
        bt.delimiters.values().filter(|&&v| v == p).count()
    }

    // -----------------------------------------------------------------------------
    // transform_line / run_transformer

    fn transform_line(&mut self, line: Line, fop: bool) -> Vec<Line> {
        let line_str = self.render(&line);
        if !line.should_split_rhs
            && line.magic_trailing_comma.is_none()
            && str_width(&line_str) <= LINE_LENGTH
        {
            return vec![line];
        }
        let transformers: Vec<Transform> = if self.is_def(&line) {
            vec![Transform::Lhs]
        } else if line.inside_brackets {
            vec![Transform::Delimiter, Transform::Rhs]
        } else {
            vec![Transform::Rhs]
        };
        for t in transformers {
            if let Ok(r) = self.run_transformer(&line, t, fop, &line_str) {
                return r;
            }
        }
        vec![line]
    }

    fn run_transformer(
        &mut self,
        line: &Line,
        t: Transform,
        fop: bool,
        line_str: &str,
    ) -> Res<Vec<Line>> {
        let optional_parens: Vec<usize> = line
            .bt
            .invisible
            .iter()
            .copied()
            .filter(|&b| self.leaves[b].depth == 0)
            .collect();
        let lines = match t {
            Transform::Delimiter => self.delimiter_split(line)?,
            Transform::Rhs => self.rhs_with_omits(line, fop)?,
            Transform::Lhs => self.left_hand_split(line)?,
        };
        let mut result = Vec::new();
        for tl in lines {
            if self.render(&tl) == line_str {
                return Err(CannotSplit);
            }
            result.extend(self.transform_line(tl, fop));
        }
        if fop
            || t != Transform::Rhs
            || line.bt.invisible.is_empty()
            || optional_parens
                .iter()
                .any(|&b| !self.leaves[b].t.v.is_empty())
            || self.is_short(&result[0])
        {
            return Ok(result);
        }
        let copy = self.clone_line(line);
        let second = self.run_transformer(&copy, t, true, line_str)?;
        if second.iter().all(|l| self.is_short(l)) {
            return Ok(second);
        }
        Ok(result)
    }

    /// `line.clone()` + `append_leaves(line_copy, line, line.leaves)`
    fn clone_line(&mut self, line: &Line) -> Line {
        let mut new = Line {
            depth: line.depth,
            inside_brackets: line.inside_brackets,
            should_split_rhs: line.should_split_rhs,
            magic_trailing_comma: line.magic_trailing_comma,
            ..Default::default()
        };
        for &old in &line.leaves {
            let id = self.leaves.len();
            let t = self.leaves[old].t.clone();
            self.leaves.push(Leaf {
                t,
                prefix: String::new(),
                depth: 0,
                opening: None,
            });
            self.append(&mut new, id, false, false);
            for (l, c) in &line.comments {
                if *l == old {
                    new.comments.push((id, c.clone()));
                }
            }
        }
        new
    }

    // -----------------------------------------------------------------------------
    // delimiter_split

    fn delimiter_split(&mut self, line: &Line) -> Res<Vec<Line>> {
        let Some(&last_leaf) = line.leaves.last() else {
            return Err(CannotSplit);
        };
        let bt = &line.bt;
        let delimiter = self.max_priority(bt, &[last_leaf]).ok_or(CannotSplit)?;
        if delimiter == DOT_PRIORITY && self.count_priority(bt, delimiter) == 1 {
            return Err(CannotSplit);
        }
        let mut out = Vec::new();
        let new_line = || Line {
            depth: line.depth,
            inside_brackets: line.inside_brackets,
            ..Default::default()
        };
        let mut current = new_line();
        let mut lowest_depth = i32::MAX;
        let mut trailing_comma_safe = true;
        for &leaf in &line.leaves {
            self.append(&mut current, leaf, true, false);
            for (l, c) in &line.comments {
                if *l == leaf {
                    current.comments.push((leaf, c.clone()));
                }
            }
            let d = self.leaves[leaf].depth;
            lowest_depth = lowest_depth.min(d);
            if trailing_comma_safe && d == lowest_depth {
                let t = &self.leaves[leaf].t;
                // Trailing commas after *args / **kwargs need target-version features.
                let vararg =
                    t.k == K::Op && t.unary && t.arglist_comma && (t.v == "*" || t.v == "**");
                trailing_comma_safe = !vararg || self.varargs_comma;
            }
            if line.bt.delimiters.get(&leaf) == Some(&delimiter) {
                out.push(std::mem::replace(&mut current, new_line()));
            }
        }
        if !current.leaves.is_empty() || !current.comments.is_empty() {
            if trailing_comma_safe
                && delimiter == COMMA_PRIORITY
                && self.leaves[*current.leaves.last().unwrap()].t.k != K::Comma
            {
                let c = self.new_comma();
                self.append(&mut current, c, false, false);
            }
            out.push(current);
        }
        for l in &out {
            let f = l.leaves[0];
            self.leaves[f].prefix.clear();
        }
        Ok(out)
    }

    // -----------------------------------------------------------------------------
    // right hand split

    fn rhs_with_omits(&mut self, line: &Line, fop: bool) -> Res<Vec<Line>> {
        let mut prefix_lengths: HashMap<usize, usize> = HashMap::new();
        let mut curr = 4 * line.depth;
        for &l in &line.leaves {
            prefix_lengths.insert(l, curr);
            curr += self.leaves[l].prefix.chars().count() + self.leaves[l].t.v.chars().count();
        }
        let mut first_lines: Option<Vec<Line>> = None;
        let mut trailers = TrailerGen::new(line);
        while let Some(omit) = trailers.next(self, line) {
            if !omit.is_empty() {
                let mut target_opening = None;
                for &l in line.leaves.iter().rev() {
                    if self.is_close(l) && !omit.contains(&l) {
                        target_opening = self.leaves[l].opening;
                        break;
                    }
                }
                if let Some(t) = target_opening
                    && !self.leaves[t].t.v.is_empty()
                    && *prefix_lengths.get(&t).unwrap_or(&0) > LINE_LENGTH
                {
                    continue;
                }
            }
            let lines = self.right_hand_split(line, fop, &omit)?;
            if first_lines.is_none() && omit.is_empty() {
                first_lines = Some(lines.clone());
            }
            if self.is_short(&lines[0]) {
                return Ok(lines);
            }
        }
        if let Some(fl) = first_lines {
            return Ok(fl);
        }
        self.right_hand_split(line, fop, &HashSet::new())
    }

    fn right_hand_split(
        &mut self,
        line: &Line,
        fop: bool,
        omit: &HashSet<usize>,
    ) -> Res<Vec<Line>> {
        let rhs = self.first_rhs(line, omit)?;
        self.maybe_split_omitting_optional_parens(rhs, line, fop, omit)
    }

    fn first_rhs(&mut self, line: &Line, omit: &HashSet<usize>) -> Res<RhsResult> {
        let mut tail: Vec<usize> = Vec::new();
        let mut body: Vec<usize> = Vec::new();
        let mut head: Vec<usize> = Vec::new();
        #[derive(PartialEq)]
        enum Cur {
            Tail,
            Body,
            Head,
        }
        let mut cur = Cur::Tail;
        let mut opening: Option<usize> = None;
        let mut closing: Option<usize> = None;
        for &leaf in line.leaves.iter().rev() {
            if cur == Cur::Body && Some(leaf) == opening {
                cur = if !body.is_empty() {
                    Cur::Head
                } else {
                    Cur::Tail
                };
            }
            match cur {
                Cur::Tail => tail.push(leaf),
                Cur::Body => body.push(leaf),
                Cur::Head => head.push(leaf),
            }
            if cur == Cur::Tail && self.is_close(leaf) && !omit.contains(&leaf) {
                opening = self.leaves[leaf].opening;
                closing = Some(leaf);
                cur = Cur::Body;
            }
        }
        let (Some(opening), Some(closing)) = (opening, closing) else {
            return Err(CannotSplit);
        };
        if head.is_empty() {
            return Err(CannotSplit);
        }
        tail.reverse();
        body.reverse();
        head.reverse();
        let head = self.build_line(head, line, opening, 0);
        let body = self.build_line(body, line, opening, 1);
        let tail = self.build_line(tail, line, opening, 2);
        self.split_succeeded_or_raise(&head, &body, &tail)?;
        Ok(RhsResult {
            head,
            body,
            tail,
            opening,
            closing,
        })
    }

    fn split_succeeded_or_raise(&self, _head: &Line, body: &Line, tail: &Line) -> Res<()> {
        let tail_len = self.render(tail).trim().chars().count();
        if body.leaves.is_empty() && body.comments.is_empty() && (tail_len == 0 || tail_len < 3) {
            return Err(CannotSplit);
        }
        Ok(())
    }

    /// `bracket_split_build_line`; component 0 = head, 1 = body, 2 = tail.
    fn build_line(
        &mut self,
        mut leaves: Vec<usize>,
        original: &Line,
        opening: usize,
        component: u8,
    ) -> Line {
        let mut result = Line {
            depth: original.depth,
            ..Default::default()
        };
        if component == 1 {
            result.inside_brackets = true;
            result.depth += 1;
            if !leaves.is_empty()
                && (self.is_import(original)
                    || (self.is_def(original)
                        && self.leaves[opening].t.v == "("
                        && !leaves.iter().any(|&l| self.leaves[l].t.k == K::Comma)))
                && self.leaves[*leaves.last().unwrap()].t.k != K::Comma
            {
                let c = self.new_comma();
                leaves.push(c);
            }
        }
        let track: HashSet<usize> = if component == 0 {
            self.leaves_inside_matching_brackets(&leaves)
        } else {
            HashSet::new()
        };
        for &leaf in &leaves {
            self.append(&mut result, leaf, true, track.contains(&leaf));
            for (l, c) in &original.comments {
                if *l == leaf {
                    result.comments.push((leaf, c.clone()));
                }
            }
        }
        if component == 1 && self.should_split_line(&result, opening) {
            result.should_split_rhs = true;
        }
        result
    }

    fn leaves_inside_matching_brackets(&self, leaves: &[usize]) -> HashSet<usize> {
        let mut ids = HashSet::new();
        let Some(start) = leaves.iter().position(|&l| self.is_open(l)) else {
            return ids;
        };
        let mut stack: Vec<(u8, Vec<usize>)> = Vec::new();
        for &l in &leaves[start..] {
            let t = &self.leaves[l].t;
            if t.k == K::Open {
                stack.push((t.bch, vec![l]));
            } else if t.k == K::Close {
                if !stack.is_empty() && stack.last().unwrap().0 == t.bch {
                    let (_, mut level) = stack.pop().unwrap();
                    level.push(l);
                    ids.extend(level);
                } else {
                    break;
                }
            } else if let Some(top) = stack.last_mut() {
                top.1.push(l);
            }
        }
        ids
    }

    fn should_split_line(&self, line: &Line, opening: usize) -> bool {
        let o = &self.leaves[opening].t;
        // `opening_bracket.value in "[{("` is also true for invisible parens.
        let Some(&last) = line.leaves.last() else {
            return false;
        };
        let mut exclude = Vec::new();
        let mut trailing_comma = false;
        if self.leaves[last].t.k == K::Comma {
            trailing_comma = true;
            exclude.push(last);
        }
        let Some(max) = self.max_priority(&line.bt, &exclude) else {
            return false;
        };
        max == COMMA_PRIORITY && (trailing_comma || o.atom)
    }

    fn maybe_split_omitting_optional_parens(
        &mut self,
        rhs: RhsResult,
        line: &Line,
        fop: bool,
        omit: &HashSet<usize>,
    ) -> Res<Vec<Line>> {
        let o = &self.leaves[rhs.opening].t;
        let c = &self.leaves[rhs.closing].t;
        if !fop
            && o.bch == b'('
            && o.v.is_empty()
            && c.bch == b'('
            && c.v.is_empty()
            && !self.is_import(line)
            && self.can_omit_invisible_parens(&rhs)
        {
            let mut omit2 = omit.clone();
            omit2.insert(rhs.closing);
            let attempt: Res<Option<Vec<Line>>> = (|| {
                let oop = self.first_rhs(line, &omit2)?;
                if self.prefer_split_rhs_oop(&oop, &rhs) {
                    return Ok(Some(
                        self.maybe_split_omitting_optional_parens(oop, line, fop, &omit2)?,
                    ));
                }
                Ok(None)
            })();
            match attempt {
                Ok(Some(v)) => return Ok(v),
                Ok(None) => {}
                Err(_) => {
                    let chained = line
                        .leaves
                        .iter()
                        .filter(|&&l| self.leaves[l].t.k == K::Equal)
                        .count()
                        > 1;
                    if !chained && !self.can_be_split(&rhs.body) && !self.is_short(&rhs.body) {
                        return Err(CannotSplit);
                    }
                }
            }
        }
        // ensure_visible: only parentheses can be invisible.
        if self.leaves[rhs.opening].t.bch == b'(' {
            self.leaves[rhs.opening].t.v = "(".to_string();
        }
        if self.leaves[rhs.closing].t.bch == b'(' {
            self.leaves[rhs.closing].t.v = ")".to_string();
        }
        let mut out = Vec::new();
        for l in [rhs.head, rhs.body, rhs.tail] {
            if !l.leaves.is_empty() || !l.comments.is_empty() {
                out.push(l);
            }
        }
        Ok(out)
    }

    fn prefer_split_rhs_oop(&self, oop: &RhsResult, rhs: &RhsResult) -> bool {
        let hl = &rhs.head.leaves;
        if !(hl.len() >= 2 && self.leaves[hl[hl.len() - 2]].t.k == K::Equal) {
            return true;
        }
        if !hl[..hl.len() - 1]
            .iter()
            .any(|&l| self.is_open(l) || self.is_close(l))
        {
            return true;
        }
        if str_width(&self.render(&rhs.head)) > LINE_LENGTH - 1 {
            return true;
        }
        if rhs.head.magic_trailing_comma.is_some() {
            return true;
        }
        let eq = |line: &Line| {
            line.leaves
                .iter()
                .filter(|&&l| self.leaves[l].t.k == K::Equal)
                .count()
        };
        let rhs_eq = eq(&rhs.head);
        let oop_eq = eq(&oop.head);
        if rhs_eq > 1 && rhs_eq > oop_eq {
            return false;
        }
        let mut has_closing_bracket_after_assign = false;
        for &l in oop.head.leaves.iter().rev() {
            if self.leaves[l].t.k == K::Equal {
                break;
            }
            if self.is_close(l) {
                has_closing_bracket_after_assign = true;
                break;
            }
        }
        has_closing_bracket_after_assign || (oop_eq > 0 && self.is_short(&oop.head))
    }

    fn can_omit_invisible_parens(&self, rhs: &RhsResult) -> bool {
        let line = &rhs.body;
        let bt = &line.bt;
        let Some(max_priority) = self.max_priority(bt, &[]) else {
            return true;
        };
        let delimiter_count = self.count_priority(bt, max_priority);
        if delimiter_count > 1 {
            return false;
        }
        if max_priority == DOT_PRIORITY {
            return true;
        }
        if line.leaves.len() < 2 {
            return false;
        }
        let first = line.leaves[0];
        let second = line.leaves[1];
        if self.is_open(first) && !self.is_close(second) && self.can_omit_opening_paren(line, first)
        {
            return true;
        }
        let n = line.leaves.len();
        let penultimate = line.leaves[n - 2];
        let last = line.leaves[n - 1];
        let lt = &self.leaves[last].t;
        if lt.k == K::Close && (lt.bch == b'(' || lt.bch == b'{' || (lt.bch == b'[' && !lt.trailer))
        {
            if self.is_open(penultimate) {
                return false;
            }
            if self.can_omit_closing_paren(line, last) {
                return true;
            }
        }
        false
    }

    fn can_omit_opening_paren(&self, line: &Line, first: usize) -> bool {
        let mut remainder = false;
        let mut length = 4 * line.depth;
        for &l in &line.leaves {
            if self.is_close(l) && self.leaves[l].opening == Some(first) {
                remainder = true;
            }
            if remainder {
                length += self.leaf_length(line, l);
                if length > LINE_LENGTH {
                    return false;
                }
                if self.is_open(l) {
                    remainder = false;
                }
            }
        }
        true
    }

    fn can_omit_closing_paren(&self, line: &Line, last: usize) -> bool {
        let mut length = 4 * line.depth;
        let mut seen_other_brackets = false;
        let target = self.leaves[last].opening;
        for &l in &line.leaves {
            length += self.leaf_length(line, l);
            if Some(l) == target {
                if seen_other_brackets || length <= LINE_LENGTH {
                    return true;
                }
            } else if self.is_open(l) {
                seen_other_brackets = true;
            }
        }
        false
    }

    fn can_be_split(&self, line: &Line) -> bool {
        let leaves = &line.leaves;
        if leaves.len() < 2 {
            return false;
        }
        if self.l(leaves[0]).t.k == K::Str && self.l(leaves[1]).t.k == K::Dot {
            let mut call_count = 0;
            let mut dot_count = 0;
            let mut next = *leaves.last().unwrap();
            for &leaf in leaves[..leaves.len() - 1].iter().rev() {
                let t = &self.l(leaf).t;
                if t.k == K::Open {
                    if !self.is_close(next) {
                        return false;
                    }
                    call_count += 1;
                } else if t.k == K::Dot {
                    dot_count += 1;
                } else if t.k == K::Name {
                    if !(self.l(next).t.k == K::Dot || self.is_open(next)) {
                        return false;
                    }
                } else if t.k != K::Close {
                    return false;
                }
                if dot_count > 1 && call_count > 1 {
                    return false;
                }
                next = leaf;
            }
        }
        true
    }

    // -----------------------------------------------------------------------------
    // left hand split (function definitions)

    fn left_hand_split(&mut self, line: &Line) -> Res<Vec<Line>> {
        // head, body, tail and the opening bracket
        type Split = (Vec<usize>, Vec<usize>, Vec<usize>, usize);
        let mut result: Option<Split> = None;
        for want in [b'(', b'['] {
            let mut tail = Vec::new();
            let mut body = Vec::new();
            let mut head = Vec::new();
            let mut cur = 0; // 0 head, 1 body, 2 tail
            let mut matching: Option<usize> = None;
            let mut depth = 0;
            for (index, &leaf) in line.leaves.iter().enumerate() {
                let t = &self.leaves[leaf].t;
                if index == 2 && t.k == K::Open && t.bch == b'[' {
                    depth += 1;
                } else if depth > 0 {
                    if t.k == K::Open && t.bch == b'[' {
                        depth += 1;
                    } else if t.k == K::Close && t.bch == b'[' {
                        depth -= 1;
                    }
                }
                if cur == 1
                    && t.k == K::Close
                    && matching.is_some()
                    && self.leaves[leaf].opening == matching
                    && !(want == b'(' && depth > 0)
                {
                    cur = if !body.is_empty() { 2 } else { 0 };
                }
                match cur {
                    0 => head.push(leaf),
                    1 => body.push(leaf),
                    _ => tail.push(leaf),
                }
                if cur == 0 && t.k == K::Open && t.bch == want && !(want == b'(' && depth > 0) {
                    matching = Some(leaf);
                    cur = 1;
                }
            }
            if let Some(m) = matching
                && !tail.is_empty()
            {
                result = Some((head, body, tail, m));
                break;
            }
        }
        let Some((head, body, tail, m)) = result else {
            return Err(CannotSplit);
        };
        let head = self.build_line(head, line, m, 0);
        let body = self.build_line(body, line, m, 1);
        let tail = self.build_line(tail, line, m, 2);
        self.split_succeeded_or_raise(&head, &body, &tail)?;
        let mut out = Vec::new();
        for l in [head, body, tail] {
            if !l.leaves.is_empty() || !l.comments.is_empty() {
                out.push(l);
            }
        }
        Ok(out)
    }
}

/// `generate_trailers_to_omit` as a resumable generator (it is lazy in black, and the
/// leaf lengths it reads can change between yields when parentheses turn visible).
struct TrailerGen {
    started: bool,
    done: bool,
    idx: isize,
    length: usize,
    opening: Option<usize>,
    closing: Option<usize>,
    inner: Vec<usize>,
    omit: HashSet<usize>,
    resume_post: bool,
}

impl TrailerGen {
    fn new(line: &Line) -> TrailerGen {
        TrailerGen {
            started: false,
            done: false,
            idx: line.leaves.len() as isize - 1,
            length: 4 * line.depth,
            opening: None,
            closing: None,
            inner: Vec::new(),
            omit: HashSet::new(),
            resume_post: false,
        }
    }

    fn next(&mut self, ctx: &Ctx, line: &Line) -> Option<HashSet<usize>> {
        if self.done {
            return None;
        }
        if !self.started {
            self.started = true;
            if line.magic_trailing_comma.is_none() {
                return Some(self.omit.clone());
            }
        }
        while self.idx >= 0 {
            let index = self.idx as usize;
            let leaf = line.leaves[index];
            let prev = if index > 0 {
                Some(line.leaves[index - 1])
            } else {
                None
            };
            if !self.resume_post {
                let leaf_length = ctx.leaf_length(line, leaf);
                self.length += leaf_length;
                if self.length > LINE_LENGTH {
                    self.done = true;
                    return None;
                }
                let l = &ctx.leaves[leaf];
                let has_inline_comment =
                    leaf_length > l.t.v.chars().count() + l.prefix.chars().count();
                if has_inline_comment {
                    self.done = true;
                    return None;
                }
                if let Some(o) = self.opening {
                    if leaf == o {
                        self.opening = None;
                    } else if ctx.is_close(leaf) {
                        if self.trailing_comma_pair(ctx, line, leaf, prev) {
                            self.done = true;
                            return None;
                        }
                        self.inner.push(leaf);
                    }
                    self.idx -= 1;
                    continue;
                }
                if !ctx.is_close(leaf) {
                    self.idx -= 1;
                    continue;
                }
                if let Some(p) = prev
                    && ctx.is_open(p)
                {
                    self.inner.push(leaf);
                    self.idx -= 1;
                    continue;
                }
                if let Some(c) = self.closing {
                    self.omit.insert(c);
                    self.omit.extend(self.inner.drain(..));
                    self.resume_post = true;
                    return Some(self.omit.clone());
                }
            }
            self.resume_post = false;
            if self.trailing_comma_pair(ctx, line, leaf, prev) {
                self.done = true;
                return None;
            }
            if !ctx.leaves[leaf].t.v.is_empty() {
                self.opening = ctx.leaves[leaf].opening;
                self.closing = Some(leaf);
            }
            self.idx -= 1;
        }
        self.done = true;
        None
    }

    fn trailing_comma_pair(
        &self,
        ctx: &Ctx,
        line: &Line,
        leaf: usize,
        prev: Option<usize>,
    ) -> bool {
        if let Some(p) = prev
            && ctx.leaves[p].t.k == K::Comma
            && let Some(o) = ctx.leaves[leaf].opening
        {
            let bch = ctx.leaves[leaf].t.bch;
            let _ = bch;
            return !ctx.is_one_sequence_between(o, leaf, &line.leaves, b'(');
        }
        false
    }
}

// ---------------------------------------------------------------------------------
// Leaf-level normalisations of `LineGenerator.visit_default` / `whitespace`

/// `normalize_string_prefix`: lowercase prefixes, drop `u`.
fn normalize_string_prefix(s: &str) -> String {
    let q = s.find(['"', '\'']).unwrap_or(0);
    let mut prefix: String = s[..q]
        .replace('F', "f")
        .replace('B', "b")
        .replace(['U', 'u'], "");
    if prefix.len() == 2 && !prefix.starts_with(['r', 'R']) {
        prefix = prefix.chars().rev().collect();
    }
    format!("{}{}", prefix, &s[q..])
}

/// Backslash runs before each `quote` in `body`: `remove` drops one backslash from odd
/// runs (an escaped quote), otherwise one is added to even runs (an unescaped quote).
fn requote(body: &str, quote: char, remove: bool) -> String {
    let mut out = String::with_capacity(body.len() + 4);
    let mut run = 0usize;
    for c in body.chars() {
        if c == quote {
            if remove && run % 2 == 1 {
                out.pop();
            } else if !remove && run.is_multiple_of(2) {
                out.push('\\');
            }
            out.push(c);
            run = 0;
            continue;
        }
        if c == '\\' {
            run += 1;
        } else {
            run = 0;
        }
        out.push(c);
    }
    out
}

/// `normalize_string_quotes`: prefer double quotes unless that means more escapes.
fn normalize_string_quotes(s: &str) -> String {
    let q = match s.find(['"', '\'']) {
        Some(q) => q,
        None => return s.to_string(),
    };
    let prefix = &s[..q];
    let value = &s[q..];
    let triple_double = "\"\"\"";
    let triple_single = "'''";
    if value.starts_with(triple_double) || value.starts_with(triple_single) || value.len() < 2 {
        // Triple-quoted strings are left as written (not in the generated subset).
        return s.to_string();
    }
    let (orig, new) = if value.starts_with('"') {
        ('"', '\'')
    } else {
        ('\'', '"')
    };
    let mut body = value[1..value.len() - 1].to_string();
    let mut s = s.to_string();
    let new_body;
    if prefix.to_lowercase().contains('r') {
        // An unescaped new quote in a raw string makes converting impossible.
        if requote(&body, new, false) != body {
            return s;
        }
        new_body = body.clone();
    } else {
        let nb = requote(&body, new, true);
        if nb != body {
            body = nb.clone();
            s = format!("{}{}{}{}", prefix, orig, body, orig);
        }
        let nb = requote(&nb, orig, true);
        new_body = requote(&nb, new, false);
    }
    if prefix.to_lowercase().contains('f') {
        // Do not introduce backslashes in interpolated expressions.
        let cs: Vec<char> = new_body.chars().collect();
        let mut depth = 0;
        let mut i = 0;
        while i < cs.len() {
            if cs[i] == '{' {
                if depth == 0 && i + 1 < cs.len() && cs[i + 1] == '{' {
                    i += 2;
                    continue;
                }
                depth += 1;
            } else if cs[i] == '}' && depth > 0 {
                depth -= 1;
            } else if cs[i] == '\\' && depth > 0 {
                return s;
            }
            i += 1;
        }
    }
    let orig_escapes = body.matches('\\').count();
    let new_escapes = new_body.matches('\\').count();
    if new_escapes > orig_escapes {
        return s;
    }
    if new_escapes == orig_escapes && orig == '"' {
        return s;
    }
    format!("{}{}{}{}", prefix, new, new_body, new)
}

/// black's slice spacing (`whitespace(..., complex_subscript=...)`): colons of a
/// slice whose bounds are non-trivial expressions are spaced like binary operators.
fn subscript_spacing(toks: &mut [Tok]) {
    for i in 0..toks.len() {
        if !(toks[i].k == K::Open && toks[i].bch == b'[' && toks[i].trailer) {
            continue;
        }
        let Some(m) = matching(toks, i) else { continue };
        let tl = top_level(toks, i + 1, m);
        // Elements of a subscriptlist, each judged on its own.
        let mut seg_start = i + 1;
        let mut bounds = Vec::new();
        for &j in &tl {
            if toks[j].k == K::Comma {
                bounds.push((seg_start, j));
                seg_start = j + 1;
            }
        }
        bounds.push((seg_start, m));
        for (s, e) in bounds {
            let colons: Vec<usize> = tl
                .iter()
                .copied()
                .filter(|&j| j >= s && j < e && toks[j].k == K::Colon)
                .collect();
            if colons.is_empty() {
                continue;
            }
            let complex = (s..e).any(|j| {
                let t = &toks[j];
                match t.k {
                    K::Op => !(t.unary && (t.v == "-" || t.v == "+" || t.v == "~")),
                    K::Dot => true,
                    K::Open => t.trailer,
                    K::Name => matches!(
                        t.v.as_str(),
                        "and" | "or" | "not" | "in" | "is" | "if" | "lambda"
                    ),
                    _ => false,
                }
            });
            for c in colons {
                let prev_k = toks[c - 1].k;
                toks[c].ws = if prev_k == K::Open || prev_k == K::Colon {
                    String::new()
                } else if prev_k == K::Comma || complex {
                    " ".to_string()
                } else {
                    String::new()
                };
                let nk = toks[c + 1].k;
                if !(nk == K::Close || nk == K::Comma || nk == K::Colon) {
                    toks[c + 1].ws = if complex {
                        " ".to_string()
                    } else {
                        String::new()
                    };
                }
            }
        }
    }
}

/// `LineGenerator.visit_atom`: redundant parentheses around the only element of a list
/// or set literal become invisible (`[(a)]` -> `[a]`).
fn single_element_collections(toks: &mut Vec<Tok>) {
    let mut i = 0;
    while i < toks.len() {
        if toks[i].k == K::Open
            && toks[i].atom
            && (toks[i].bch == b'[' || toks[i].bch == b'{')
            && !toks[i].v.is_empty()
            && let Some(m) = matching(toks, i)
            && m > i + 2
            && toks[i + 1].k == K::Open
            && toks[i + 1].bch == b'('
            && toks[i + 1].v == "("
            && matching(toks, i + 1) == Some(m - 1)
        {
            make_parens_invisible(toks, i + 1, m - 1, false, false);
        }
        i += 1;
    }
}

/// `normalize_numeric_literal`: lowercase prefixes and exponents, uppercase hex digits,
/// complete floats (`1.` -> `1.0`, `.5` -> `0.5`).
fn normalize_numeric_literal(text: &str) -> String {
    fn float_or_int(text: &str) -> String {
        match text.split_once('.') {
            None => text.to_string(),
            Some((before, after)) => format!(
                "{}.{}",
                if before.is_empty() { "0" } else { before },
                if after.is_empty() { "0" } else { after }
            ),
        }
    }
    let text = text.to_lowercase();
    if text.starts_with("0b") || text.starts_with("0o") {
        text
    } else if let Some(digits) = text.strip_prefix("0x") {
        format!("0x{}", digits.to_uppercase())
    } else if text.contains('e') {
        let (before, after) = text.split_once('e').unwrap();
        let (sign, after) = if let Some(a) = after.strip_prefix('-') {
            ("-", a)
        } else if let Some(a) = after.strip_prefix('+') {
            ("", a)
        } else {
            ("", after)
        };
        format!("{}e{}{}", float_or_int(before), sign, after)
    } else if let Some(number) = text.strip_suffix('j') {
        format!("{}j", float_or_int(number))
    } else {
        float_or_int(&text)
    }
}
