use serde_json::json;

use super::*;

// ---- helpers ----

/// The tree as an S-expression with byte spans; unquoted values as `u"…"` (`*` a wildcard,
/// `\*` a literal star), quoted ones as `q"…"`.
fn tree(q: &Query) -> String {
    let s = q.span;
    let at = format!("{}..{}", s.start, s.end);
    match &q.kind {
        QueryKind::Or(items) => format!("(or {at} {})", list(items.iter().map(tree))),
        QueryKind::And(items) => format!("(and {at} {})", list(items.iter().map(tree))),
        QueryKind::Not(inner) => format!("(not {at} {})", tree(inner)),
        QueryKind::Nested { field, query } => {
            format!("(nested {at} {} {})", fld(field), tree(query))
        }
        QueryKind::Range { field, op, value } => {
            format!("(range {at} {} {} {})", fld(field), op.as_str(), val(value))
        }
        QueryKind::Is { field, values } => format!(
            "(is {at} {} {})",
            field.as_ref().map(fld).unwrap_or_else(|| "-".into()),
            vals(values)
        ),
    }
}

fn list(items: impl Iterator<Item = String>) -> String {
    items.collect::<Vec<_>>().join(" ")
}

fn fld(f: &Field) -> String {
    let q = if f.quoted { "q" } else { "" };
    format!("{q}{:?}@{}..{}", f.name, f.span.start, f.span.end)
}

fn vals(v: &ValueList) -> String {
    let at = format!("{}..{}", v.span.start, v.span.end);
    match &v.kind {
        ValueListKind::Or(items) => format!("(or {at} {})", list(items.iter().map(vals))),
        ValueListKind::And(items) => format!("(and {at} {})", list(items.iter().map(vals))),
        ValueListKind::Not(inner) => format!("(not {at} {})", vals(inner)),
        ValueListKind::One(v) => val(v),
    }
}

fn val(v: &Value) -> String {
    let body = match &v.kind {
        ValueKind::Quoted(s) => format!("q{s:?}"),
        ValueKind::Unquoted(pieces) => {
            let inner: String = pieces
                .iter()
                .map(|p| match p {
                    Piece::Text(t) => {
                        let d = format!("{t:?}");
                        d[1..d.len() - 1].replace('*', "\\*")
                    }
                    Piece::Star => "*".into(),
                })
                .collect();
            format!("u\"{inner}\"")
        }
    };
    format!("{body}@{}..{}", v.span.start, v.span.end)
}

/// The tree with every span zeroed, to compare structure.
fn strip(q: &Query) -> Query {
    let z = Span::default();
    let f = |f: &Field| Field {
        span: z,
        ..f.clone()
    };
    let kind = match &q.kind {
        QueryKind::Or(items) => QueryKind::Or(items.iter().map(strip).collect()),
        QueryKind::And(items) => QueryKind::And(items.iter().map(strip).collect()),
        QueryKind::Not(inner) => QueryKind::Not(Box::new(strip(inner))),
        QueryKind::Nested { field, query } => QueryKind::Nested {
            field: f(field),
            query: Box::new(strip(query)),
        },
        QueryKind::Range { field, op, value } => QueryKind::Range {
            field: f(field),
            op: *op,
            value: Value {
                span: z,
                ..value.clone()
            },
        },
        QueryKind::Is { field, values } => QueryKind::Is {
            field: field.as_ref().map(f),
            values: strip_values(values),
        },
    };
    Query { kind, span: z, style: Style::default() }
}

fn strip_values(v: &ValueList) -> ValueList {
    let kind = match &v.kind {
        ValueListKind::Or(items) => ValueListKind::Or(items.iter().map(strip_values).collect()),
        ValueListKind::And(items) => ValueListKind::And(items.iter().map(strip_values).collect()),
        ValueListKind::Not(inner) => ValueListKind::Not(Box::new(strip_values(inner))),
        ValueListKind::One(v) => ValueListKind::One(Value {
            span: Span::default(),
            ..v.clone()
        }),
    };
    ValueList {
        kind,
        span: Span::default(),
    }
}

fn p(text: &str) -> Query {
    match parse(text) {
        Ok(q) => q,
        Err(e) => panic!("{text:?} does not parse: {e}"),
    }
}

fn err(text: &str) -> String {
    match parse(text) {
        Ok(q) => panic!("{text:?} parses as {}", tree(&q)),
        Err(e) => e.to_string(),
    }
}

/// parse(print(q)) == q, spans aside; returns the printed text.
fn round_trip(q: &Query) -> String {
    let printed = to_string(q);
    match parse(&printed) {
        Ok(again) => assert_eq!(strip(&again), strip(q), "printed as {printed:?}"),
        Err(e) => panic!("printed {printed:?} does not parse: {e}"),
    }
    printed
}

/// The field types the evaluation tests assume (an ECS-like mapping).
fn ecs(name: &str) -> FieldType {
    match name {
        "source.ip" | "destination.ip" => FieldType::Ip,
        "flag" | "aws.cloudtrail.console_login.additional_eventdata.mfa_used" => FieldType::Boolean,
        "source.as.number" | "n" | "user.age" => FieldType::Number,
        "@timestamp" => FieldType::Date,
        "message" => FieldType::Text,
        "mystery" => FieldType::Unknown,
        n if n.starts_with("aws.cloudtrail.flattened.") => FieldType::Flattened,
        _ => FieldType::Keyword,
    }
}

fn ev(query: &str, doc: serde_json::Value) -> bool {
    eval(&p(query), &doc, &ecs)
}

// ---- parser: positions ----

#[test]
fn positions() {
    insta::assert_snapshot!(tree(&p(r#"a:b and not (c:"d" or e >= 5)"#)), @r#"(and 0..29 (is 0..3 "a"@0..1 u"b"@2..3) (not 8..29 (or 12..29 (is 13..18 "c"@13..14 q"d"@15..18) (range 22..28 "e"@22..23 >= u"5"@27..28))))"#);
    insta::assert_snapshot!(tree(&p("user:{ first:(John or \"Jane\") and age > 3 }")), @r#"(nested 0..43 "user"@0..4 (and 7..41 (is 7..29 "first"@7..12 (or 13..29 u"John"@14..18 q"Jane"@22..28)) (range 34..41 "age"@34..37 > u"3"@40..41)))"#);
    insta::assert_snapshot!(tree(&p("x:(a or b and not (c or d))")), @r#"(is 0..27 "x"@0..1 (or 2..27 u"a"@3..4 (and 8..26 u"b"@8..9 (not 14..26 (or 18..26 u"c"@19..20 u"d"@24..25)))))"#);
    insta::assert_snapshot!(tree(&p("  foo  ")), @r#"(is 2..5 - u"foo"@2..5)"#);
}

#[test]
fn multiline_positions_and_errors() {
    let q = "data_stream.dataset: aws.cloudtrail\n    and event.action: (\n        A or\n        B\n    )";
    insta::assert_snapshot!(tree(&p(q)), @r#"(and 0..88 (is 0..35 "data_stream.dataset"@0..19 u"aws.cloudtrail"@21..35) (is 44..88 "event.action"@44..56 (or 58..88 u"A"@68..69 u"B"@81..82)))"#);
    let e = parse("a:b\n  and c:(d or\n  e").unwrap_err();
    assert_eq!((e.offset, e.line, e.column), (21, 3, 4));
    insta::assert_snapshot!(e.to_string(), @"3:4: expected `and`, `or` or `)` to close the `(` at 2:9, found end of query");
}

#[test]
fn errors() {
    let cases = [
        "",
        "   \n ",
        "(a:b",
        "a:b)",
        "a:(b or c",
        "a:\"x",
        "a:b and",
        "a:b or ",
        "a:b and )",
        "a:",
        "a:)",
        "a:(b or)",
        "a:()",
        "a:b c:d",
        "a:b (c:d)",
        "a:\\x",
        "a:b\\",
        "a*:b",
        "event.action:DoNot and x:y",
        "not(a:b)",
        "not not a:b",
        "a: not b",
        "a:and",
        "and a:b",
        "a:b or or c:d",
        "(a:b)or(c:d)",
        "a >",
        "a:>5",
        "a:{b:c",
        "a:{}",
        "a:\"\\uD800\"",
        "a:\\t",
        ":a",
    ];
    let out: Vec<String> = cases
        .iter()
        .map(|c| format!("{c:?}\n  {}", err(c).replace('\n', "\n  ")))
        .collect();
    insta::assert_snapshot!(out.join("\n"), @r#"
    ""
      1:1: expected a query, found end of query
    "   \n "
      2:2: expected a query, found end of query
    "(a:b"
      1:5: expected `and`, `or` or `)` to close the `(` at 1:1, found end of query
    "a:b)"
      1:4: expected `and`, `or` or the end of the query, found `)`
        hint: this `)` has no matching `(`
    "a:(b or c"
      1:10: expected `and`, `or` or `)` to close the `(` at 1:3, found end of query
    "a:\"x"
      1:3: expected a closing `"` for this string, found end of query
        hint: escape a `"` inside a string as `\"`
    "a:b and"
      1:8: expected a query after `and`, found end of query
    "a:b or "
      1:8: expected a query after `or`, found end of query
    "a:b and )"
      1:9: expected a query after `and`, found `)`
    "a:"
      1:3: expected a value after `:`, found end of query
    "a:)"
      1:3: expected a value after `:`, found `)`
    "a:(b or)"
      1:8: expected a value after `or`, found `)`
    "a:()"
      1:4: expected a value after `(`, found `)`
    "a:b c:d"
      1:6: expected `and`, `or` or the end of the query, found `:`
        hint: `b c` was read as one value containing white space (Kibana allows that); join terms with `and` / `or`, or quote the value
    "a:b (c:d)"
      1:5: expected `and`, `or` or the end of the query, found `(`
    "a:\\x"
      1:3: expected an escape: `\t`, `\r`, `\n`, `\uXXXX`, `\` before one of `\():<>"*{}`, or `\and`, `\or`, `\not`, found `\x`
        hint: to match a backslash, write `\\`
    "a:b\\"
      1:4: expected a character after `\`, found end of query
    "a*:b"
      1:1: expected a field name without a wildcard, found `a*`
        hint: field-name wildcards are not supported; name each field, or escape a literal `*` as `\*`
    "event.action:DoNot and x:y"
      1:16: expected the rest of the value, found `Not` followed by white space at the end of `DoNot`
        hint: Kibana reads `not` followed by white space as the keyword even inside a word, and rejects the query; quote the value, or escape the `n` as `\u006e`
    "not(a:b)"
      1:4: expected white space after `not`, found `(`
        hint: Kibana needs white space after `not`: `not (…)`
    "not not a:b"
      1:5: expected a query after `not`, found the keyword `not`
        hint: to use `not` as a value, quote it (`"not"`); a double negation is written `not (not …)`
    "a: not b"
      1:4: expected a value after `:`, found `not`
        hint: Kibana takes `not` after `:` only inside parentheses: write `not a:…` or `a:(not …)`
    "a:and"
      1:3: expected a value after `:`, found the keyword `and`
        hint: to use `and` as a value, quote it (`"and"`)
    "and a:b"
      1:1: expected a query, found the keyword `and`
        hint: to use `and` as a value, quote it (`"and"`)
    "a:b or or c:d"
      1:8: expected a query after `or`, found the keyword `or`
        hint: to use `or` as a value, quote it (`"or"`)
    "(a:b)or(c:d)"
      1:6: expected white space before `or`, found `or`
    "a >"
      1:4: expected a value after `>`, found end of query
    "a:>5"
      1:3: expected a value after `:`, found `>`
        hint: a range is written `field > value`, without `:`
    "a:{b:c"
      1:7: expected `and`, `or` or `}` to close the `{` at 1:3, found end of query
    "a:{}"
      1:4: expected a query after `{`, found `}`
    "a:\"\\uD800\""
      1:4: expected a Unicode scalar value (a lone surrogate cannot be represented), found `\uD800`
    "a:\\t"
      1:3: expected a value after `:`, found `\t`, which Kibana trims to nothing
        hint: write an empty value as `""`
    ":a"
      1:1: expected a query, found `:`
    "#);
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = format!("{}a:b{}", "(".repeat(100_000), ")".repeat(100_000));
    assert!(err(&deep).contains("levels of nesting"));
    let deep_values = format!("a:{}b{}", "(".repeat(100_000), ")".repeat(100_000));
    assert!(err(&deep_values).contains("levels of nesting"));
    let ok = format!("{}a:b{}", "(".repeat(100), ")".repeat(100));
    assert_eq!(to_string(&p(&ok)), "a:b");
}

// ---- parser: literals ----

#[test]
fn escapes() {
    let show = |q: &str| match &p(q).kind {
        QueryKind::Is { values, .. } => vals(values),
        _ => String::new(),
    };
    // unquoted: specials, escaped white space, unicode, escaped keywords (Kibana's order:
    // `\n` first, so `\not` is a line break and `ot`)
    insta::assert_snapshot!(show(r#"f:a\:b\(c\)\*\\\"\<\>\{\}"#), @r#"u"a:b(c)\*\\\"<>{}"@2..25"#);
    insta::assert_snapshot!(show(r"f:x\ty\rz\nw"), @r#"u"x\ty\rz\nw"@2..12"#);
    insta::assert_snapshot!(show(r"f:\u0041\u00e9\uD83D\uDE00"), @r#"u"Aé😀"@2..26"#);
    insta::assert_snapshot!(show(r"f:(\and or \OR or \NOT or \not or \android)"), @r#"(or 2..43 u"and"@3..7 u"OR"@11..14 u"NOT"@18..22 u"ot"@26..30 u"android"@34..42)"#);
    // quoted: \" \\ \t \n \r \uXXXX; any other backslash is kept
    insta::assert_snapshot!(show(r#"f:"q\" b\\ t\t n\n r\r u\u0041 x\y *""#), @r#"q"q\" b\\ t\t n\n r\r uA x\\y *"@2..37"#);
}

#[test]
fn keywords_in_any_case() {
    let a = p("a:1 AND b:2 Or NOT c:3 and not d:(x OR y aNd NoT z)");
    let b = p("a:1 and b:2 or not c:3 and not d:(x or y and not z)");
    assert_eq!(strip(&a), strip(&b));
    insta::assert_snapshot!(to_string(&a), @"(a:1 and b:2) or (not c:3 and not d:(x or (y and not z)))");
}

#[test]
fn unquoted_values_run_on_over_white_space() {
    // Kibana: one value `S3 Browser`, trimmed; keywords with white space end it
    insta::assert_snapshot!(tree(&p("ua:(*S3 Browser* or *Cyberduck*)")), @r#"(is 0..32 "ua"@0..2 (or 3..32 u"*S3 Browser*"@4..16 u"*Cyberduck*"@20..31))"#);
    insta::assert_snapshot!(tree(&p("msg: hello  world \n and x:y")), @r#"(and 0..27 (is 0..17 "msg"@0..3 u"hello  world"@5..17) (is 24..27 "x"@24..25 u"y"@26..27))"#);
    // `not`/`or`/`and` inside a word are text; `or*` is a wildcard value
    insta::assert_snapshot!(tree(&p("a:notable or b:candor or c:or*")), @r#"(or 0..30 (is 0..9 "a"@0..1 u"notable"@2..9) (is 13..21 "b"@13..14 u"candor"@15..21) (is 25..30 "c"@25..26 u"or*"@27..30))"#);
}

#[test]
fn wildcard_and_quoted_values() {
    let show = |q: &str| match &p(q).kind {
        QueryKind::Is { values, .. } => vals(values),
        _ => String::new(),
    };
    insta::assert_snapshot!(show(r#"f:(* or "*" or \* or a*b or "a*b" or a\*b)"#), @r#"(or 2..42 u"*"@3..4 q"*"@8..11 u"\*"@15..17 u"a*b"@21..24 q"a*b"@28..33 u"a\*b"@37..41)"#);
    let v = match p("f:*").kind {
        QueryKind::Is { values, .. } => values,
        _ => unreachable!(),
    };
    assert!(matches!(&v.kind, ValueListKind::One(v) if v.is_exists() && v.is_wildcard()));
}

#[test]
fn quoted_field_names_and_bare_values() {
    insta::assert_snapshot!(tree(&p(r#""event.action":X and foo and "bar baz""#)), @r#"(and 0..38 (is 0..16 q"event.action"@0..14 u"X"@15..16) (is 21..24 - u"foo"@21..24) (is 29..38 - q"bar baz"@29..38))"#);
}

// ---- printer ----

#[test]
fn prints_canonical_text() {
    let cases = [
        "a:b AND (c:d OR e:f)",
        "(a:b or c:d) or e:f",
        "a:b and (c:d and e:f)",
        "not (a:b or c:d)",
        "not (not a:b)",
        "not (a:b)",
        "x:(a or (b or c))",
        "x:(not (a or b))",
        "a:1 or b:2 and c:3",
        "x:(a or b and not c)",
        "x:((a))",
        "x : \"quoted \\\" \\\\ \\n\"",
        "n>=5 and n < 7",
        "user:{ first:John and last:(Doe or Roe) }",
        r"arn:arn\:aws\:iam\:\:*",
        "ua: *S3 Browser*",
        r"f:(\and or \or or \NOT or \android or a\\ or b)",
        r"f:can\u006Eot be",
    ];
    let out: Vec<String> = cases
        .iter()
        .map(|c| format!("{c}\n  {}", round_trip(&p(c))))
        .collect();
    insta::assert_snapshot!(out.join("\n"), @r#"
    a:b AND (c:d OR e:f)
      a:b and (c:d or e:f)
    (a:b or c:d) or e:f
      (a:b or c:d) or e:f
    a:b and (c:d and e:f)
      a:b and (c:d and e:f)
    not (a:b or c:d)
      not (a:b or c:d)
    not (not a:b)
      not (not a:b)
    not (a:b)
      not a:b
    x:(a or (b or c))
      x:(a or (b or c))
    x:(not (a or b))
      x:(not (a or b))
    a:1 or b:2 and c:3
      a:1 or (b:2 and c:3)
    x:(a or b and not c)
      x:(a or (b and not c))
    x:((a))
      x:a
    x : "quoted \" \\ \n"
      x:"quoted \" \\ \n"
    n>=5 and n < 7
      n >= 5 and n < 7
    user:{ first:John and last:(Doe or Roe) }
      user:{first:John and last:(Doe or Roe)}
    arn:arn\:aws\:iam\:\:*
      arn:arn\:aws\:iam\:\:*
    ua: *S3 Browser*
      ua:*S3 Browser*
    f:(\and or \or or \NOT or \android or a\\ or b)
      f:(\and or \or or \NOT or android or a\\ or b)
    f:can\u006Eot be
      f:can\u006Eot be
    "#);
}

#[test]
fn printer_escapes_what_would_be_read_otherwise() {
    let one = |pieces: Vec<Piece>| Query {
        kind: QueryKind::Is {
            field: Some(Field {
                name: "f".into(),
                quoted: false,
                span: Span::default(),
            }),
            values: ValueList {
                kind: ValueListKind::One(Value {
                    kind: ValueKind::Unquoted(pieces),
                    span: Span::default(),
                }),
                span: Span::default(),
            },
        },
        span: Span::default(),
        style: Style::default(),
    };
    let text = |s: &str| one(vec![Piece::Text(s.into())]);
    let cases = [
        text("and"),
        text("Or"),
        text("not"),
        text("NOT"),
        text("DoNot"),
        text("donot"),
        text("a or b"),
        text("cannot be"),
        text("a not"),
        text("x:y (z) \"q\" <>{}\\"),
        text("tab\there"),
        text("nbsp\u{a0}here"),
        text("bell\u{7}"),
        one(vec![Piece::Text("or".into()), Piece::Star]),
        one(vec![Piece::Star, Piece::Text("not".into())]),
        one(vec![Piece::Text("a *".into()), Piece::Star]),
    ];
    let out: Vec<String> = cases.iter().map(round_trip).collect();
    insta::assert_snapshot!(out.join("\n"), @r#"
    f:\and
    f:\Or
    f:\u006Eot
    f:\NOT
    f:Do\Not
    f:do\u006Eot
    f:a \or b
    f:can\u006Eot be
    f:a \u006Eot
    f:x\:y \(z\) \"q\" \<\>\{\}\\
    f:tab\there
    f:nbsp\u00A0here
    f:bell\u0007
    f:or*
    f:*\u006Eot
    f:a \**
    "#);
}

/// Every short string over tricky tokens: parsing never panics, and whatever parses prints
/// back to the same tree.
#[test]
fn parse_never_panics_and_printing_round_trips() {
    const TOKENS: &[&str] = &[
        "a", "b", " ", ":", "(", ")", "\"", "\\", "*", "and", "or", "not", "AND", "Not", "{", "}",
        ">", "<=", "=", "\\n", "\\u006E", "é", "\n", "\\:", "\\*", "x y",
    ];
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut parsed = 0;
    for _ in 0..60_000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let len = (seed % 9) as usize + 1;
        let mut s = String::new();
        let mut r = seed;
        for _ in 0..len {
            s.push_str(TOKENS[(r % TOKENS.len() as u64) as usize]);
            r /= TOKENS.len() as u64;
            if r == 0 {
                r = seed.rotate_left(17);
            }
        }
        if let Ok(q) = parse(&s) {
            parsed += 1;
            round_trip(&q);
        }
    }
    assert!(parsed > 1_000, "only {parsed} inputs parsed");
}

/// The one value quoter on hostile strings (the pieces tests/hostile.rs builds its values from):
/// quoted and as unquoted text, as a value and as a field name, every string prints to text
/// that parses back to the same value, is one line of printable characters, and spells what
/// Kibana's `grammar.peggy` reads back as that value: `"` and `\` escaped in quotes, control
/// characters as `\uXXXX` (Kibana's `EscapedUnicodeSequence`), keywords escaped unquoted.
#[test]
fn the_value_quoter_round_trips_hostile_strings() {
    const PIECES: &[&str] = &[
        "\"", "'", "\\", "\n", "\t", "\r", "*", "?", "(", ")", ":", "<", ">", "{", "}", "[", "]", "'''",
        "\"\"\"", "{{ x }}", " and ", " or ", " not ", "AND", "not", "NOT", " ", "`", "|", ";", "#", "%",
        "&", "@", "/", "=", "\\n", "\\u0041", "é", "漢字", "🙂", "\u{2028}", "\u{85}", "\u{7f}",
        "\u{0}", "\u{1b}", "\u{feff}", "\u{a0}", "x", "Do",
    ];
    let mut strings: Vec<String> = vec![];
    for a in PIECES {
        strings.push(a.to_string());
        for b in PIECES {
            strings.push(format!("{a}{b}"));
            strings.push(format!("q{a}{b}"));
        }
    }
    let is = |field: Field, v: Value| Query::is(field, ValueList::any_of(vec![v]));
    let mut checked = 0;
    for s in &strings {
        let field = || Field::new("f", false);
        let mut cases = vec![
            is(field(), Value::quoted(s.clone())),
            is(Field::new(format!("k{s}"), true), Value::quoted("v")),
        ];
        // unquoted text keeps white space only between words (Kibana trims an unquoted literal,
        // with JavaScript's trim, which also drops U+FEFF)
        let js_space = |c: char| c.is_whitespace() || c == '\u{feff}';
        if s.trim_matches(js_space) == s && !s.is_empty() {
            cases.push(is(field(), Value::unquoted(vec![Piece::Text(s.clone())])));
            cases.push(is(field(), Value::unquoted(vec![Piece::Star, Piece::Text(s.clone()), Piece::Star])));
        }
        for q in cases {
            let text = round_trip(&q);
            assert!(
                !text.chars().any(|c| c.is_control()),
                "{s:?} printed with a raw control character: {text:?}"
            );
            checked += 1;
        }
        let quoted = to_string(&is(field(), Value::quoted(s.clone())));
        let body = &quoted["f:\"".len()..quoted.len() - 1];
        // only the escapes Kibana's QuotedCharacter knows
        let mut chars = body.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('\\' | '"' | 'n' | 'r' | 't') => {}
                    Some('u') => assert!((0..4).all(|_| chars.next().is_some_and(|h| h.is_ascii_hexdigit())), "{quoted}"),
                    other => panic!("{s:?}: escape {other:?} in {quoted}"),
                }
            } else {
                assert!(c != '"', "{s:?}: unescaped quote in {quoted}");
            }
        }
    }
    assert!(checked > 10_000, "{checked}");
    // the spellings themselves
    let quoted = |s: &str| to_string(&is(Field::new("f", false), Value::quoted(s)));
    assert_eq!(quoted("a\"b\\c"), r#"f:"a\"b\\c""#);
    assert_eq!(quoted("l\n\r\t"), r#"f:"l\n\r\t""#);
    assert_eq!(quoted("\u{0}\u{1b}\u{7f}\u{85}"), r#"f:"\u0000\u001B\u007F\u0085""#);
    assert_eq!(quoted("\u{2028}é🙂"), "f:\"\u{2028}é🙂\"");
    let bare = |s: &str| to_string(&is(Field::new("f", false), Value::unquoted(vec![Piece::Text(s.into())])));
    assert_eq!(bare("a and b"), r"f:a \and b");
    assert_eq!(bare("x:(y)*"), r"f:x\:\(y\)\*");
    assert_eq!(bare("NOT"), r"f:\NOT");
    assert_eq!(bare("cannot"), r"f:can\u006Eot");
}

// ---- real queries ----

/// Elastic detection-rules queries (Elastic License 2.0; /work/shared/corpus/elastic/NOTICE.txt).
const FIXTURES: &[(&str, &str)] = &[
    (
        "discovery_new_terms_sts_getcalleridentity_ec2_role_new_source_as",
        r#"event.dataset: "aws.cloudtrail"
    and event.provider: "sts.amazonaws.com"
    and event.action: "GetCallerIdentity"
    and event.outcome: "success"
    and aws.cloudtrail.user_identity.type: "AssumedRole"
    and user.id: *\:i-*
    and source.as.organization.name:(* and not (AMAZON* or Amazon* or Google* or "MongoDB, Inc."))"#,
    ),
    (
        "credential_access_credentials_in_s3_bucket",
        r#"data_stream.dataset: "aws.cloudtrail" and
    event.provider: "s3.amazonaws.com" and
    event.action: "GetObject" and
    event.outcome: "success" and
    aws.cloudtrail.flattened.request_parameters.key: (
        */.aws/credentials or
        */.env.* or
        *.pem or
        *private_key* or
        */.ssh/authorized_keys
    ) and
    not aws.cloudtrail.user_identity.type: "AWSService""#,
    ),
    (
        "initial_access_assume_role_with_web_identity_kubernetes_sa_from_external_asn",
        r"data_stream.dataset:aws.cloudtrail and 
 event.provider:sts.amazonaws.com and 
 event.action:AssumeRoleWithWebIdentity and 
 event.outcome:success and user.name:(system\:serviceaccount\:* and not system\:serviceaccount\:kube-system\:aws-load-balancer-controller) and 
 source.as.organization.name:(* and not (Amazon* or AMAZON*))",
    ),
    (
        "persistence_ec2_security_group_configuration_change_detection",
        r#"data_stream.dataset: "aws.cloudtrail"
    and event.provider: "ec2.amazonaws.com"  and event.outcome: "success"
    and (event.action:(
            "AuthorizeSecurityGroupIngress" or
            "ModifySecurityGroupRules" or
            "RevokeSecurityGroupIngress") or 
            (event.action: "ModifyInstanceAttribute" and aws.cloudtrail.flattened.request_parameters.groupSet.items.groupId:*))"#,
    ),
    (
        "privilege_escalation_sts_role_chaining",
        r#"    data_stream.dataset : "aws.cloudtrail" and 
    event.provider : "sts.amazonaws.com" and 
    aws.cloudtrail.user_identity.type : "AssumedRole" and 
    event.outcome : "success" "#,
    ),
];

#[test]
fn real_queries_parse_and_round_trip() {
    let out: Vec<String> = FIXTURES
        .iter()
        .map(|(name, q)| format!("{name}\n  {}", round_trip(&p(q))))
        .collect();
    insta::assert_snapshot!(out.join("\n"), @r#"
    discovery_new_terms_sts_getcalleridentity_ec2_role_new_source_as
      event.dataset:"aws.cloudtrail" and event.provider:"sts.amazonaws.com" and event.action:"GetCallerIdentity" and event.outcome:"success" and aws.cloudtrail.user_identity.type:"AssumedRole" and user.id:*\:i-* and source.as.organization.name:(* and not (AMAZON* or Amazon* or Google* or "MongoDB, Inc."))
    credential_access_credentials_in_s3_bucket
      data_stream.dataset:"aws.cloudtrail" and event.provider:"s3.amazonaws.com" and event.action:"GetObject" and event.outcome:"success" and aws.cloudtrail.flattened.request_parameters.key:(*/.aws/credentials or */.env.* or *.pem or *private_key* or */.ssh/authorized_keys) and not aws.cloudtrail.user_identity.type:"AWSService"
    initial_access_assume_role_with_web_identity_kubernetes_sa_from_external_asn
      data_stream.dataset:aws.cloudtrail and event.provider:sts.amazonaws.com and event.action:AssumeRoleWithWebIdentity and event.outcome:success and user.name:(system\:serviceaccount\:* and not system\:serviceaccount\:kube-system\:aws-load-balancer-controller) and source.as.organization.name:(* and not (Amazon* or AMAZON*))
    persistence_ec2_security_group_configuration_change_detection
      data_stream.dataset:"aws.cloudtrail" and event.provider:"ec2.amazonaws.com" and event.outcome:"success" and (event.action:("AuthorizeSecurityGroupIngress" or "ModifySecurityGroupRules" or "RevokeSecurityGroupIngress") or (event.action:"ModifyInstanceAttribute" and aws.cloudtrail.flattened.request_parameters.groupSet.items.groupId:*))
    privilege_escalation_sts_role_chaining
      data_stream.dataset:"aws.cloudtrail" and event.provider:"sts.amazonaws.com" and aws.cloudtrail.user_identity.type:"AssumedRole" and event.outcome:"success"
    "#);
}

#[test]
fn real_queries_evaluate() {
    let (_, q) = FIXTURES[0];
    let doc = |org: &str| {
        json!({
            "event": {"dataset": "aws.cloudtrail", "provider": "sts.amazonaws.com",
                      "action": "GetCallerIdentity", "outcome": "success"},
            "aws": {"cloudtrail": {"user_identity": {"type": "AssumedRole"}}},
            "user": {"id": "AROAEXAMPLE:i-0123456789abcdef0"},
            "source": {"as": {"organization": {"name": org}}},
        })
    };
    assert!(ev(q, doc("DigitalOcean, LLC")));
    assert!(!ev(q, doc("Amazon.com, Inc.")));
    assert!(!ev(q, doc("MongoDB, Inc.")));
    let mut no_org = doc("x");
    no_org["source"] = json!({});
    assert!(!ev(q, no_org), "`*` needs the field");

    let (_, q) = FIXTURES[1];
    let doc = |key: &str| {
        json!({
            "data_stream": {"dataset": "aws.cloudtrail"},
            "event": {"provider": "s3.amazonaws.com", "action": "GetObject", "outcome": "success"},
            "aws": {"cloudtrail": {"user_identity": {"type": "IAMUser"},
                    "flattened": {"request_parameters": {"key": key, "bucketName": "b"}}}},
        })
    };
    assert!(ev(q, doc("home/u/.aws/credentials")));
    assert!(ev(q, doc("app/.env.production")));
    assert!(!ev(q, doc("app/.env")));
    assert!(!ev(q, doc("readme.md")));
}

/// Queries rulecast generates for Elastic, checked on small documents.
#[test]
fn generated_queries() {
    let q = "event.dataset:aws.cloudtrail and event.provider:ec2.amazonaws.com and event.action:(AuthorizeSecurityGroupEgress or CreateSecurityGroup) and event.outcome:success";
    let doc = |action: &str, outcome: &str| {
        json!({"event": {"dataset": "aws.cloudtrail", "provider": "ec2.amazonaws.com",
                         "action": action, "outcome": outcome}})
    };
    assert!(ev(q, doc("CreateSecurityGroup", "success")));
    assert!(ev(q, doc("AuthorizeSecurityGroupEgress", "success")));
    assert!(!ev(q, doc("CreateSecurityGroup", "failure")));
    assert!(
        !ev(q, doc("createsecuritygroup", "success")),
        "case-sensitive"
    );
    assert!(!ev(q, doc("DeleteSecurityGroup", "success")));
    assert!(!ev(q, json!({"event": {"dataset": "aws.cloudtrail"}})));

    let q = "data_stream.dataset:aws.cloudtrail and not (user_agent.original:*HashiCorp/*.0*Terraform/* and aws.cloudtrail.user_identity.arn:(*Operator* or *ContinousDeployment*))";
    let doc = |ua: Option<&str>, arn: &str| {
        let mut d = json!({"data_stream": {"dataset": "aws.cloudtrail"},
                           "aws": {"cloudtrail": {"user_identity": {"arn": arn}}}});
        if let Some(ua) = ua {
            d["user_agent"] = json!({"original": ua});
        }
        d
    };
    let tf = "APN/1.0 HashiCorp/1.0 Terraform/1.5.7 (+https://www.terraform.io) terraform-provider-aws/5.0.0";
    assert!(!ev(
        q,
        doc(
            Some(tf),
            "arn:aws:sts::123456789012:assumed-role/Operator/ci"
        )
    ));
    assert!(!ev(
        q,
        doc(
            Some(tf),
            "arn:aws:iam::123456789012:role/ContinousDeployment"
        )
    ));
    assert!(ev(q, doc(Some(tf), "arn:aws:iam::123456789012:user/alice")));
    assert!(ev(
        q,
        doc(
            Some("aws-cli/2.15.0"),
            "arn:aws:sts::1:assumed-role/Operator/x"
        )
    ));
    assert!(ev(q, doc(None, "arn:aws:sts::1:assumed-role/Operator/x")));
    assert!(!ev(q, json!({"data_stream": {"dataset": "aws.s3access"}})));

    let q = r"aws.cloudtrail.user_identity.arn:(arn\:aws\:sts\:\:*\:assumed-role/IAMKeyRotation/* or arn\:aws\:iam\:\:*\:user/svc-key-rotator)";
    let doc = |arn: &str| json!({"aws": {"cloudtrail": {"user_identity": {"arn": arn}}}});
    assert!(ev(
        q,
        doc("arn:aws:sts::123456789012:assumed-role/IAMKeyRotation/rotate-1")
    ));
    assert!(ev(q, doc("arn:aws:iam::123456789012:user/svc-key-rotator")));
    assert!(!ev(
        q,
        doc("arn:aws:iam::123456789012:user/svc-key-rotator-2")
    ));
    assert!(!ev(
        q,
        doc("arn:aws:sts::123456789012:assumed-role/Other/IAMKeyRotation")
    ));

    let q = r#"user_agent.original:("quote \" double" or "back\\slash" or "line\nbreak")"#;
    let doc = |ua: &str| json!({"user_agent": {"original": ua}});
    assert!(ev(q, doc("quote \" double")));
    assert!(ev(q, doc("back\\slash")));
    assert!(ev(q, doc("line\nbreak")));
    assert!(!ev(q, doc("line\\nbreak")));
    assert!(!ev(q, doc("back\\\\slash")));

    let q = r#"not source.ip:("10.0.0.0/8" or "2001:db8::/32")"#;
    let doc = |ip: serde_json::Value| json!({"source": {"ip": ip}});
    assert!(!ev(q, doc(json!("10.20.30.40"))));
    assert!(!ev(q, doc(json!("2001:db8:1::5"))));
    assert!(!ev(q, doc(json!("::ffff:10.0.0.1"))), "IPv4-mapped IPv6");
    assert!(ev(q, doc(json!("192.168.1.1"))));
    assert!(ev(q, doc(json!("2001:db9::1"))));
    assert!(
        !ev(q, doc(json!(["192.168.1.1", "10.0.0.1"]))),
        "any element"
    );
    assert!(
        ev(q, json!({"source": {}})),
        "`not` of a missing field holds"
    );

    for q in [
        "event.dataset:aws.cloudtrail and event.provider:ec2.amazonaws.com and event.action:(AuthorizeSecurityGroupEgress or CreateSecurityGroup) and event.outcome:success",
        "data_stream.dataset:aws.cloudtrail and not (user_agent.original:*HashiCorp/*.0*Terraform/* and aws.cloudtrail.user_identity.arn:(*Operator* or *ContinousDeployment*))",
        r"aws.cloudtrail.user_identity.arn:(arn\:aws\:sts\:\:*\:assumed-role/IAMKeyRotation/* or arn\:aws\:iam\:\:*\:user/svc-key-rotator)",
        r#"user_agent.original:("quote \" double" or "back\\slash" or "line\nbreak")"#,
        r#"not source.ip:("10.0.0.0/8" or "2001:db8::/32")"#,
    ] {
        assert_eq!(
            round_trip(&p(q)),
            q,
            "generated queries are already canonical"
        );
    }
}

/// Every kuery query of the Elastic corpus parses and round-trips.
#[test]
fn elastic_corpus() {
    let dir = std::env::var("RULECAST_ELASTIC_CORPUS")
        .unwrap_or_else(|_| "/work/shared/corpus/elastic".into());
    let Ok(entries) = std::fs::read_dir(&dir) else {
        println!("elastic corpus: {dir} not found, skipped");
        return;
    };
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    let (mut files, mut kuery, mut failures) = (0, 0, vec![]);
    for path in &paths {
        let Ok(text) = std::fs::read_to_string(path) else {
            failures.push(format!("{}: unreadable", path.display()));
            continue;
        };
        let doc: toml::Table = match toml::from_str(&text) {
            Ok(d) => d,
            Err(e) => {
                failures.push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        files += 1;
        let rule = doc.get("rule").and_then(|r| r.as_table());
        let lang = rule
            .and_then(|r| r.get("language"))
            .and_then(|l| l.as_str());
        let query = rule.and_then(|r| r.get("query")).and_then(|q| q.as_str());
        let (Some("kuery"), Some(query)) = (lang, query) else {
            continue;
        };
        kuery += 1;
        match parse(query) {
            Ok(q) => {
                round_trip(&q);
            }
            Err(e) => failures.push(format!("{}: {e}", path.display())),
        }
    }
    println!("elastic corpus: {kuery} kuery queries parsed and round-tripped ({files} rule files)");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(kuery > 0, "no kuery rules in {dir}");
}

// ---- evaluation ----

#[test]
fn wildcard_versus_quoted() {
    let doc = json!({"f": "a*b", "g": "axxb"});
    assert!(ev("f:a*b", doc.clone()));
    assert!(ev("g:a*b", doc.clone()));
    assert!(ev(r#"f:"a*b""#, doc.clone()));
    assert!(
        !ev(r#"g:"a*b""#, doc.clone()),
        "a quoted value is never a wildcard"
    );
    assert!(ev(r"f:a\*b", doc.clone()));
    assert!(!ev(r"g:a\*b", doc.clone()));
    assert!(!ev("g:a?xb", doc.clone()), "`?` is literal");
    assert!(
        !ev("g:x*", doc.clone()),
        "a wildcard covers the whole value"
    );
    assert!(ev("g:*x*", doc));
}

#[test]
fn exists() {
    assert!(ev("f:*", json!({"f": ""})), "an empty string exists");
    assert!(ev("f:*", json!({"f": false})));
    assert!(ev("f:*", json!({"f": [null, 1]})));
    assert!(!ev("f:*", json!({"f": null})));
    assert!(!ev("f:*", json!({"f": []})));
    assert!(!ev("f:*", json!({"g": 1})));
    assert!(
        ev("f:*", json!({"f": {"g": {"h": 1}}})),
        "an object with a leaf below"
    );
    assert!(!ev("f:*", json!({"f": {"g": null}})));
    assert!(
        ev(r#"not f:"*""#, json!({"f": "x"})),
        "a quoted star is a value"
    );
    assert!(ev("*", json!({})), "a bare `*` matches every document");
}

#[test]
fn arrays_and_dotted_keys() {
    let doc = json!({
        "related": {"user": ["alice", "bob"]},
        "a.b": {"c": "dotted"},
        "resources": [{"ARN": "arn:1"}, {"ARN": ["arn:2", "arn:3"]}],
    });
    assert!(ev("related.user:bob", doc.clone()));
    assert!(
        ev("related.user:(alice and bob)", doc.clone()),
        "each value on any element"
    );
    assert!(!ev("not related.user:alice", doc.clone()));
    assert!(ev("a.b.c:dotted", doc.clone()));
    assert!(ev("resources.ARN:arn\\:3", doc.clone()));
    assert!(ev("resources.ARN:(arn\\:1 and arn\\:2)", doc.clone()));
    assert!(!ev("resources.ARN:arn\\:4", doc));
}

#[test]
fn flattened_leaves_are_keywords() {
    let doc = json!({"aws": {"cloudtrail": {"flattened": {"request_parameters": {
        "enable": false, "port": 22, "mode": "false", "tags": [{"key": "env"}]}}}}});
    let rp = "aws.cloudtrail.flattened.request_parameters";
    assert!(ev(&format!("{rp}.enable:false"), doc.clone()));
    assert!(ev(&format!("{rp}.enable:\"false\""), doc.clone()));
    assert!(!ev(&format!("{rp}.enable:False"), doc.clone()));
    assert!(
        ev(&format!("{rp}.mode:false"), doc.clone()),
        "the string \"false\" too"
    );
    assert!(ev(&format!("{rp}.port:22"), doc.clone()));
    assert!(
        ev(&format!("{rp}.port:2*"), doc.clone()),
        "wildcard over the keyword text"
    );
    assert!(ev(&format!("{rp}.tags.key:env"), doc.clone()));
    assert!(
        ev(&format!("{rp}:env"), doc.clone()),
        "the root searches every leaf"
    );
    assert!(ev(&format!("{rp}:*"), doc.clone()));
    assert!(!ev(&format!("{rp}.missing:*"), doc));
}

#[test]
fn booleans() {
    let q = "aws.cloudtrail.console_login.additional_eventdata.mfa_used:false";
    let doc = |v: serde_json::Value| json!({"aws": {"cloudtrail": {"console_login": {"additional_eventdata": {"mfa_used": v}}}}});
    assert!(ev(q, doc(json!(false))));
    assert!(ev(q, doc(json!("false"))));
    assert!(!ev(q, doc(json!(true))));
    assert!(!ev(q, doc(json!(0))), "numbers are not booleans");
    assert!(
        !ev("flag:maybe", json!({"flag": "maybe"})),
        "Elasticsearch rejects the value"
    );
    assert!(
        !ev("flag:f*", json!({"flag": false})),
        "no wildcard on a boolean"
    );
}

#[test]
fn ip_fields() {
    let doc = json!({"source": {"ip": "10.1.2.3"}});
    assert!(ev("source.ip:10.1.2.3", doc.clone()));
    assert!(ev("source.ip:10.0.0.0/8", doc.clone()), "an unquoted CIDR");
    assert!(ev(r#"source.ip:"10.1.2.0/24""#, doc.clone()));
    assert!(!ev("source.ip:10.1.3.0/24", doc.clone()));
    assert!(ev(r"source.ip:\:\:ffff\:10.1.2.3", doc.clone()));
    assert!(ev(r#"source.ip:"::/0""#, doc.clone()));
    assert!(!ev("source.ip:10.*", doc.clone()), "no wildcard on an ip");
    assert!(!ev("source.ip:not-an-ip", doc.clone()));
    assert!(ev("source.ip > 10.1.2.2 and source.ip <= 10.1.2.3", doc));
}

#[test]
fn ranges() {
    // keyword: lexicographic, even for digits (Elasticsearch's range on a keyword)
    assert!(!ev("k > 9", json!({"k": "10"})));
    assert!(ev("k < 9", json!({"k": "10"})));
    assert!(ev("k >= abc", json!({"k": "abd"})));
    // number: numeric
    assert!(ev("n > 9", json!({"n": 10})));
    assert!(ev("n > 9", json!({"n": "10"})));
    assert!(!ev("n > 9", json!({"n": 9.0})));
    assert!(ev("n >= 9", json!({"n": 9.0})));
    assert!(ev("n < 5", json!({"n": [10, 4]})), "any element");
    assert!(
        !ev("n < x", json!({"n": 1})),
        "Elasticsearch rejects the bound"
    );
    // unknown: numeric when both are numbers, else lexicographic
    assert!(ev("mystery > 9", json!({"mystery": 10})));
    assert!(ev("mystery > b", json!({"mystery": "c"})));
    // dates: text
    assert!(ev(
        "@timestamp >= \"2024-01-01T00:00:00Z\"",
        json!({"@timestamp": "2024-06-01T00:00:00Z"})
    ));
    assert!(!ev("n > 1", json!({})));
    assert!(ev("not n > 1", json!({})));
}

#[test]
fn numbers_and_unknown_fields() {
    assert!(ev(
        "source.as.number:(216025 or 57138)",
        json!({"source": {"as": {"number": 57138}}})
    ));
    assert!(ev("n:22", json!({"n": 22.0})));
    assert!(!ev("n:2*", json!({"n": 22})), "no wildcard on a number");
    assert!(
        ev("k:22", json!({"k": 22})),
        "a keyword holds the JSON text"
    );
    assert!(!ev("k:22", json!({"k": 22.0})), "\"22.0\" is not \"22\"");
    assert!(ev("mystery:22", json!({"mystery": 22.0})));
}

#[test]
fn text_fields_compare_like_keywords() {
    assert!(ev("message:\"quick fox\"", json!({"message": "quick fox"})));
    assert!(!ev("message:quick", json!({"message": "quick fox"})));
    assert!(ev("message:quick*", json!({"message": "quick fox"})));
}

#[test]
fn nested_queries() {
    let doc = json!({"user": [
        {"first": "John", "last": "Smith", "age": 30},
        {"first": "Alice", "last": "White", "age": 40},
    ]});
    // both conditions on the same object
    assert!(ev("user:{ first:John and last:Smith }", doc.clone()));
    assert!(!ev("user:{ first:John and last:White }", doc.clone()));
    // a flat query mixes objects
    assert!(ev("user.first:John and user.last:White", doc.clone()));
    // inner field types use the full name
    assert!(ev("user:{ first:Alice and age > 35 }", doc.clone()));
    assert!(!ev("user:{ first:John and age > 35 }", doc.clone()));
    assert!(!ev("nope:{ a:b }", doc.clone()));
    assert!(ev("not nope:{ a:b }", doc));
}

#[test]
fn bare_values_search_keyword_leaves() {
    let doc = json!({"event": {"action": "StopLogging"}, "n": 22, "message": "hello"});
    assert!(ev("StopLogging", doc.clone()));
    assert!(ev("Stop*", doc.clone()));
    assert!(ev("hello", doc.clone()));
    assert!(
        !ev("22", doc.clone()),
        "a number field is not searched as text"
    );
    assert!(!ev("stoplogging", doc));
}
