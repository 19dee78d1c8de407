use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use indexmap::IndexMap;
use serde_json::{Value, json};

use super::*;

/// The columns of Sentinel's `AWSCloudTrail` table (src/vendors/sentinel/AWSCloudTrail_columns.tsv).
const COLUMNS: &[(&str, &str)] = &[
    ("AdditionalEventData", "string"),
    ("APIVersion", "string"),
    ("AwsEventId", "string"),
    ("AWSRegion", "string"),
    ("AwsRequestId_", "string"),
    ("Category", "string"),
    ("ErrorCode", "string"),
    ("ErrorMessage", "string"),
    ("EventName", "string"),
    ("EventSource", "string"),
    ("EventTypeName", "string"),
    ("EventVersion", "string"),
    ("ManagementEvent", "bool"),
    ("OperationName", "string"),
    ("ReadOnly", "bool"),
    ("RecipientAccountId", "string"),
    ("RequestParameters", "string"),
    ("Resources", "string"),
    ("ResponseElements", "string"),
    ("ServiceEventDetails", "string"),
    ("SessionCreationDate", "datetime"),
    ("SessionIssuerAccountId", "string"),
    ("SessionIssuerArn", "string"),
    ("SessionIssuerPrincipalId", "string"),
    ("SessionIssuerType", "string"),
    ("SessionIssuerUserName", "string"),
    ("SessionMfaAuthenticated", "bool"),
    ("SharedEventId", "string"),
    ("SourceIpAddress", "string"),
    ("TimeGenerated", "datetime"),
    ("Type", "string"),
    ("UserAgent", "string"),
    ("UserIdentityAccessKeyId", "string"),
    ("UserIdentityAccountId", "string"),
    ("UserIdentityArn", "string"),
    ("UserIdentityInvokedBy", "string"),
    ("UserIdentityPrincipalid", "string"),
    ("UserIdentityType", "string"),
    ("UserIdentityUserName", "string"),
    ("VpcEndpointId", "string"),
];

type Row = IndexMap<String, Value>;

/// A typed AWSCloudTrail row: strings `""`, bools null, datetimes 2024-05-01T12:00:00Z, then `fields`.
fn row(fields: &[(&str, Value)]) -> Row {
    let mut r: Row = COLUMNS
        .iter()
        .map(|(c, t)| {
            let v = match *t {
                "bool" => Value::Null,
                "datetime" => json!("2024-05-01T12:00:00Z"),
                _ => json!(""),
            };
            (c.to_string(), v)
        })
        .collect();
    for (k, v) in fields {
        r.insert(k.to_string(), v.clone());
    }
    r
}

/// 2024-05-01T12:30:00Z.
fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_714_566_600)
}

fn run_on(src: &str, table: &str, rows: &[Row]) -> Vec<Row> {
    let q = parse(src).unwrap_or_else(|e| panic!("{e}\n{src}"));
    run_at(&q, table, rows, now()).unwrap_or_else(|e| panic!("{e}\n{src}"))
}

fn query(src: &str, rows: &[Row]) -> Vec<Row> {
    run_on(src, "AWSCloudTrail", rows)
}

/// The value of `expr` (`print r = expr`).
fn scalar(expr: &str) -> Value {
    query(&format!("print r = {expr}"), &[])[0]["r"].clone()
}

fn eval_err(src: &str, rows: &[Row]) -> String {
    let q = parse(src).unwrap_or_else(|e| panic!("{e}\n{src}"));
    match run_at(&q, "AWSCloudTrail", rows, now()) {
        Ok(r) => panic!("expected an error, got {r:?}"),
        Err(e) => format!("{} `{}`", e.message, &src[e.span.start..e.span.end]),
    }
}

fn parse_err(src: &str) -> String {
    match parse(src) {
        Ok(q) => panic!("expected a parse error, got {q:?}"),
        Err(e) => e.to_string(),
    }
}

fn text(src: &str, span: Span) -> &str {
    &src[span.start..span.end]
}

/// Fully parenthesized, to show how operators bind.
fn sexpr(e: &Expr) -> String {
    let all = |xs: &[Expr]| xs.iter().map(sexpr).collect::<Vec<_>>().join(", ");
    match &e.kind {
        ExprKind::Binary { op, lhs, rhs } => {
            format!("({} {} {})", sexpr(lhs), op.token(), sexpr(rhs))
        }
        ExprKind::Unary { op, operand } => format!(
            "({}{})",
            if *op == UnaryOp::Neg { "-" } else { "+" },
            sexpr(operand)
        ),
        ExprKind::InList { op, lhs, list } => {
            format!("({} {} [{}])", sexpr(lhs), op.token(), all(list))
        }
        ExprKind::Between {
            negated,
            lhs,
            low,
            high,
        } => {
            format!(
                "({} {}between {} .. {})",
                sexpr(lhs),
                if *negated { "!" } else { "" },
                sexpr(low),
                sexpr(high)
            )
        }
        ExprKind::Member { target, name } => format!("{}.{}", sexpr(target), name.name),
        ExprKind::Index { target, index } => format!("{}[{}]", sexpr(target), sexpr(index)),
        ExprKind::Call { name, args } => format!("{}({})", name.name, all(args)),
        ExprKind::Pipe { input, .. } => format!("({} | op)", sexpr(input)),
        _ => expr_to_string(e),
    }
}

fn prec(src: &str) -> String {
    sexpr(&parse_expr(src).unwrap_or_else(|e| panic!("{e}")))
}

/// `parse(print(q)) == q` and printing is stable.
fn assert_round_trip(src: &str) {
    let q = parse(src).unwrap_or_else(|e| panic!("{e}\n{src}"));
    let printed = to_string(&q);
    let again = parse(&printed).unwrap_or_else(|e| panic!("reparse failed: {e}\n{printed}"));
    assert_eq!(
        q, again,
        "round trip changed the tree:\n{src}\n---\n{printed}"
    );
    assert_eq!(printed, to_string(&again), "printing is not stable");
}

fn corpus_query(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let doc: Value = serde_saphyr::from_str(&text).ok()?;
    doc.get("query")?.as_str().map(str::to_string)
}

// ----- lexer and parser -----

#[test]
fn spans_locate_every_node() {
    let src = "AWSCloudTrail\n| where EventName == 'x' and tostring(parse_json(RequestParameters).a[0]) != \"\"";
    let q = parse(src).unwrap();
    assert_eq!(text(src, q.span), src);
    let ExprKind::Pipe { input, op } = &q.body.kind else {
        panic!("not a pipe")
    };
    assert_eq!(text(src, input.span), "AWSCloudTrail");
    assert_eq!(text(src, op.span), &src[16..]);
    let OperatorKind::Where(p) = &op.kind else {
        panic!("not a where")
    };
    let ExprKind::Binary {
        op: BinOp::And,
        lhs,
        rhs,
    } = &p.kind
    else {
        panic!("not an and")
    };
    assert_eq!(text(src, lhs.span), "EventName == 'x'");
    let ExprKind::Binary {
        lhs: call,
        rhs: empty,
        ..
    } = &rhs.kind
    else {
        panic!("not a comparison")
    };
    assert_eq!(
        text(src, call.span),
        "tostring(parse_json(RequestParameters).a[0])"
    );
    assert_eq!(text(src, empty.span), "\"\"");
    let ExprKind::Call { name, args } = &call.kind else {
        panic!("not a call")
    };
    assert_eq!(text(src, name.span), "tostring");
    let ExprKind::Index { target, index } = &args[0].kind else {
        panic!("not an index")
    };
    assert_eq!(text(src, target.span), "parse_json(RequestParameters).a");
    assert_eq!(text(src, index.span), "0");
    let ExprKind::Member { name, .. } = &target.kind else {
        panic!("not a member")
    };
    assert_eq!(text(src, name.span), "a");

    let src = "let L = dynamic([\"a\"]);\nT | extend x = 1, ['y z'] = -2.5";
    let q = parse(src).unwrap();
    assert_eq!(text(src, q.lets[0].span), "let L = dynamic([\"a\"])");
    assert_eq!(text(src, q.lets[0].name.span), "L");
    assert_eq!(text(src, q.lets[0].value.span), "dynamic([\"a\"])");
    let ExprKind::Pipe { op, .. } = &q.body.kind else {
        panic!()
    };
    let OperatorKind::Extend(a) = &op.kind else {
        panic!()
    };
    assert_eq!(a[1].name.as_ref().map(|n| n.name.as_str()), Some("y z"));
    assert_eq!(text(src, a[1].name.as_ref().unwrap().span), "['y z']");
    assert_eq!(text(src, a[1].value.span), "-2.5");
    assert_eq!(a[1].value.kind, ExprKind::Literal(Literal::Real(-2.5)));
}

#[test]
fn literals() {
    let lit = |src: &str| match parse_expr(src).unwrap_or_else(|e| panic!("{e}")).kind {
        ExprKind::Literal(l) => l,
        other => panic!("not a literal: {other:?}"),
    };
    assert_eq!(
        lit(r#""a\"b\\c\n\t\r\u00e9\U0001F600\x41""#),
        Literal::String("a\"b\\c\n\t\ré😀A".into())
    );
    assert_eq!(
        lit(r#"'it\'s "quoted"'"#),
        Literal::String("it's \"quoted\"".into())
    );
    assert_eq!(lit(r#""\uD83D\uDE00""#), Literal::String("😀".into()));
    assert_eq!(
        lit(r#"@"C:\dir\""file""""#),
        Literal::String(r#"C:\dir\"file""#.into())
    );
    assert_eq!(lit(r#"@'a''b'"#), Literal::String("a'b".into()));
    assert_eq!(lit(r#"h"secret""#), Literal::String("secret".into()));
    assert_eq!(
        lit(r#"h@'https://x/y'"#),
        Literal::String("https://x/y".into())
    );
    assert_eq!(
        lit("```line1\nline2\\```"),
        Literal::String("line1\nline2\\".into())
    );
    assert_eq!(
        lit(r#"'a' "b" // comment
        'c'"#),
        Literal::String("abc".into())
    );
    assert_eq!(lit("42"), Literal::Long(42));
    assert_eq!(lit("0x2A"), Literal::Long(42));
    assert_eq!(lit("-7"), Literal::Long(-7));
    assert_eq!(lit("1.5e3"), Literal::Real(1500.0));
    assert_eq!(lit("real(null)"), Literal::Null(ScalarType::Real));
    assert_eq!(lit("long(-3)"), Literal::Long(-3));
    assert_eq!(lit("true"), Literal::Bool(true));
    assert_eq!(lit("1d"), Literal::Timespan(864_000_000_000));
    assert_eq!(lit("90m"), Literal::Timespan(54_000_000_000));
    assert_eq!(lit("1min"), Literal::Timespan(600_000_000));
    assert_eq!(lit("1.5h"), Literal::Timespan(54_000_000_000));
    assert_eq!(
        lit("timespan(1.02:03:04)"),
        Literal::Timespan(937_840_000_000)
    );
    assert_eq!(
        lit("datetime(1970-01-02)"),
        Literal::Datetime(864_000_000_000)
    );
    assert_eq!(
        lit("datetime(2024-05-01T12:30:00Z)"),
        Literal::Datetime(17_145_666_000_000_000)
    );
    assert_eq!(
        lit("datetime(2024-05-01 14:30:00+02:00)"),
        Literal::Datetime(17_145_666_000_000_000)
    );
    assert_eq!(lit("datetime(null)"), Literal::Null(ScalarType::Datetime));
    assert_eq!(lit("dynamic(null)"), Literal::Dynamic(Value::Null));
    assert_eq!(
        lit(r#"dynamic(["a", 'b', 1, -2.5, true, null, {"k": [1]}])"#),
        Literal::Dynamic(json!(["a", "b", 1, -2.5, true, null, {"k": [1]}]))
    );
    assert_eq!(lit("dynamic({})"), Literal::Dynamic(json!({})));
}

#[test]
fn parse_errors_say_where_what_was_expected_and_what_was_found() {
    insta::assert_snapshot!(parse_err("AWSCloudTrail | where (EventName == \"x\""), @"1:40: expected `)` closing `(`, found end of input");
    insta::assert_snapshot!(parse_err("AWSCloudTrail | where EventName == \"x"), @r#"1:38: expected `"` closing the string opened at 1:36, found end of input"#);
    insta::assert_snapshot!(parse_err("AWSCloudTrail | where EventName == 'it\\'s\nx'"), @r"1:42: expected `'` closing the string opened at 1:36 (write a line break as \n), found end of line");
    insta::assert_snapshot!(parse_err("AWSCloudTrail\n| where EventName =="), @"2:21: expected an expression, found end of input");
    insta::assert_snapshot!(parse_err("AWSCloudTrail | where a and or b"), @"1:29: expected an expression, found `or`");
    insta::assert_snapshot!(parse_err("AWSCloudTrail | where EventName contians \"x\""), @"1:33: expected an operator, `|` or end of query, found `contians` (did you mean `contains`?)");
    insta::assert_snapshot!(parse_err("AWSCloudTrail | whree x == 1"), @"1:17: expected a tabular operator (where, extend, project, project-away, project-rename, summarize, take, distinct, mv-expand, mv-apply, join, sort, top, count), found `whree` (did you mean `where`?)");
    insta::assert_snapshot!(parse_err("AWSCloudTrail | where x == \"a\")"), @"1:31: expected an operator, `|` or end of query, found `)`");
    insta::assert_snapshot!(parse_err("AWSCloudTrail | where x in (\"a\", \"b\""), @"1:37: expected `)` or `,` in the list of `in`, found end of input");
    insta::assert_snapshot!(parse_err("AWSCloudTrail | where x matches regex \"\\d+\""), @r#"1:40: expected one of \\ \" \' \n \t \r \a \b \f \v \xHH \uHHHH \UHHHHHHHH (Kusto reads an unknown escape as the bare character; write \\ or a verbatim @"..." string), found `\d`"#);
    insta::assert_snapshot!(parse_err("print \"\\uD800\""), @r"1:8: expected a low surrogate \uDC00-\uDFFF after a high surrogate, found `\uD800`");
    insta::assert_snapshot!(parse_err("print x = 12abc"), @"1:13: expected a timespan unit (d, h, m, s, ms, microsecond, tick) or a separator after the number, found `12abc`");
    insta::assert_snapshot!(parse_err("let x = 1\nAWSCloudTrail"), @"2:1: expected `;` ending the `let` statement, found `AWSCloudTrail`");
    insta::assert_snapshot!(parse_err("print datetime(2024-13-01)"), @"1:7: expected an ISO 8601 date such as datetime(2024-01-31) or datetime(2024-01-31T10:00:00Z), found `datetime(2024-13-01)`");
    insta::assert_snapshot!(parse_err("print dynamic([1, 2"), @"1:20: expected `]` or `,` in the dynamic array, found end of input");
    insta::assert_snapshot!(parse_err("AWSCloudTrail\n| where x between (1, 2)"), @"2:21: expected `..` between the bounds of `between`, found `,`");
    insta::assert_snapshot!(parse_err("AWSCloudTrail | where x == 1 |"), @"1:31: expected a tabular operator after `|`, found end of input");
    insta::assert_snapshot!(parse_err("AWSCloudTrail | where x # 1"), @"1:25: expected a name, a literal, an operator or punctuation, found `#`");
    insta::assert_snapshot!(parse_err(""), @"1:1: expected an expression, found end of input");
}

#[test]
fn parse_error_positions_count_lines_and_characters() {
    let e = parse("let a = 'é';\nAWSCloudTrail\n| where é == ").unwrap_err();
    assert_eq!((e.line, e.col, e.offset), (3, 14, 42));
    assert_eq!(e.found, "end of input");
}

#[test]
fn precedence() {
    assert_eq!(prec("a or b and c"), "(a or (b and c))");
    assert_eq!(prec("a and b or c and d"), "((a and b) or (c and d))");
    assert_eq!(
        prec("a == b and c != d or e =~ f"),
        "(((a == b) and (c != d)) or (e =~ f))"
    );
    assert_eq!(
        prec("a + b * c - d / e % f"),
        "((a + (b * c)) - ((d / e) % f))"
    );
    assert_eq!(prec("a < b == c"), "((a < b) == c)");
    assert_eq!(prec("a + 1 > b * 2"), "((a + 1) > (b * 2))");
    assert_eq!(
        prec("x contains \"a\" or y has \"b\" and z in (\"c\", \"d\")"),
        "((x contains \"a\") or ((y has \"b\") and (z in [\"c\", \"d\"])))"
    );
    assert_eq!(
        prec("x !in~ (L) and y !contains_cs 'q'"),
        "((x !in~ [L]) and (y !contains_cs \"q\"))"
    );
    assert_eq!(
        prec("x between (1 .. 2 + 3) or y !between (a .. b)"),
        "((x between 1 .. (2 + 3)) or (y !between a .. b))"
    );
    assert_eq!(prec("-a.b[0] * 2"), "((-a.b[0]) * 2)");
    assert_eq!(prec("x - -1"), "(x - -1)");
    assert_eq!(prec("not(a or b) and c"), "(not((a or b)) and c)");
    assert_eq!(
        prec("a matches regex \"x\" and b"),
        "((a matches regex \"x\") and b)"
    );
    assert_eq!(prec("(a or b) and c"), "((a or b) and c)");
    assert_eq!(prec("a - b - c"), "((a - b) - c)");
    assert_eq!(prec("T | where a | take 1"), "((T | op) | op)");
    assert_eq!(prec("x has_any (L) == true"), "((x has_any [L]) == true)");
}

#[test]
fn operators_and_printing_round_trip() {
    for src in [
        "let L = dynamic([\"a\", \"b\"]);\nlet n = 1d;\nT\n| where x in~ (L) and y !in (\"c\") and z has_any (L) and w has_all (\"a\", \"b\")\n| extend a = -1, b = -(1), c = - -1, d = -x, e = +2, f = 2 * (3 + 4), g = (2 * 3) + 4\n| project a, b = c, ['odd name'] = x.['weird key'].y[\"k\"][-1]\n| project-away a, b*\n| project-rename n = b\n| summarize Count = count(), min(TimeGenerated), make_set(x, 10) by bin(TimeGenerated, 1h), y\n| where Count > 4\n| distinct x, y\n| mv-expand kind=array v = todynamic(x) to typeof(string) limit 5\n| join kind=leftouter (U | where z) on x, $left.a == $right.b\n| sort by x desc nulls last, y asc\n| top 3 by x\n| take 10\n| count",
        "print a = datetime(2024-05-01T12:30:00.1234567Z), b = timespan(1.02:03:04), c = 10m, d = 1500ms, e = real(+inf), f = real(-inf), g = long(null), h = \"a\\u0001\\u2028\", i = dynamic({\"k\": [1, 2.5, \"x\", null, true]})",
        "T | where x !between (1 .. 10) and y matches regex @\"\\d+\" and z !has_cs \"a\" and q !startswith_cs \"b\" and r endswith \"c\" and s hasprefix \"d\"",
        "T | where toscalar(U | summarize max(x)) > 1 | extend x = materialize(U | take 1)",
        "datatable (a:string, b:long) [\"x\", 1, \"y\", 2] | where b > 1",
        "let t = (externaldata (ip:string) [h@\"https://example.com/list.csv\"] with (ignoreFirstRecord = true));\nT | where SourceIpAddress in (t)",
        "T | where ['and'] == 1 and ['print'] == 2 and ['true'] == 3",
        "T | join U on x | summarize by y",
    ] {
        assert_round_trip(src);
    }
    let q = parse("AWSCloudTrail | where (a or b) and not(c) | extend x = -(1), y = (1 - 2) - 3, z = 1 - (2 - 3)").unwrap();
    insta::assert_snapshot!(to_string(&q), @"
    AWSCloudTrail
    | where (a or b) and not(c)
    | extend x = -(1),
      y = 1 - 2 - 3,
      z = 1 - (2 - 3)
    ");
}

#[test]
fn round_trip_of_generated_sentinel_queries() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("canonical-rules");
    let Ok(rules) = crate::load::rules_from_dir(&dir) else {
        return;
    };
    let mut n = 0;
    for rule in &rules {
        let Ok(out) = crate::targets::compile(
            rule,
            crate::targets::Target::Sentinel,
            crate::targets::Unsupported::Ignore,
        ) else {
            continue;
        };
        for (path, text) in &out.files {
            let Ok(doc) = serde_saphyr::from_str::<Value>(text) else {
                continue;
            };
            let Some(q) = doc.get("query").and_then(Value::as_str) else {
                continue;
            };
            assert_round_trip(q);
            let parsed = parse(q).unwrap();
            // external lists read as empty
            let external: std::collections::HashMap<String, Vec<String>> =
                rule.external_lists.values().map(|e| (e.url.clone(), vec![])).collect();
            super::run_with_external(&parsed, "AWSCloudTrail", &[row(&[])], &[], now(), &external)
                .unwrap_or_else(|e| panic!("{path}: {e}\n{q}"));
            n += 1;
        }
    }
    println!("kusto: {n} generated Sentinel queries parse, print back and run");
    assert!(n > 0 || rules.is_empty());
}

// ----- evaluation: scalars -----

#[test]
fn three_valued_logic() {
    let vals = [
        ("true", json!(true)),
        ("false", json!(false)),
        ("bool(null)", Value::Null),
    ];
    let mut table = String::new();
    for (a, _) in &vals {
        for (b, _) in &vals {
            table.push_str(&format!(
                "{a} and {b} = {}; {a} or {b} = {}\n",
                scalar(&format!("{a} and {b}")),
                scalar(&format!("{a} or {b}"))
            ));
        }
        table.push_str(&format!("not({a}) = {}\n", scalar(&format!("not({a})"))));
    }
    insta::assert_snapshot!(table, @"
    true and true = true; true or true = true
    true and false = false; true or false = true
    true and bool(null) = null; true or bool(null) = true
    not(true) = false
    false and true = false; false or true = true
    false and false = false; false or false = false
    false and bool(null) = false; false or bool(null) = null
    not(false) = true
    bool(null) and true = null; bool(null) or true = true
    bool(null) and false = false; bool(null) or false = null
    bool(null) and bool(null) = null; bool(null) or bool(null) = null
    not(bool(null)) = null
    ");
}

#[test]
fn null_semantics() {
    assert_eq!(scalar("int(null) == 1"), Value::Null);
    assert_eq!(scalar("real(null) > 43200"), Value::Null);
    assert_eq!(scalar("int(null) != 1"), Value::Null);
    assert_eq!(scalar("parse_json('{}').a == 'x'"), Value::Null);
    assert_eq!(scalar("int(null) + 1"), Value::Null);
    assert_eq!(scalar("tostring(int(null))"), json!(""));
    assert_eq!(scalar("tostring(parse_json('{}').a)"), json!(""));
    assert_eq!(scalar("isempty('')"), json!(true));
    assert_eq!(scalar("isempty(int(null))"), json!(true));
    assert_eq!(scalar("isempty(parse_json('{}').a)"), json!(true));
    assert_eq!(scalar("isempty(dynamic([]))"), json!(false));
    assert_eq!(scalar("isnotempty(' ')"), json!(true));
    assert_eq!(scalar("isnull('')"), json!(false));
    assert_eq!(scalar("isnull(parse_json('{}').a)"), json!(true));
    assert_eq!(scalar("isnotnull(parse_json('{\"a\": 0}').a)"), json!(true));
    assert_eq!(scalar("toreal('abc')"), Value::Null);
    assert_eq!(scalar("toreal('')"), Value::Null);
    assert_eq!(scalar("toreal(' 50000 ')"), json!(50000.0));
    assert_eq!(scalar("toreal('1e3')"), json!(1000.0));
    assert_eq!(scalar("toreal('inf')"), Value::Null);
    assert_eq!(scalar("toint('12')"), json!(12));
    assert_eq!(scalar("toint('1.5')"), Value::Null);
    assert_eq!(scalar("toint(1.9)"), json!(1));
    assert_eq!(scalar("tobool('TRUE')"), json!(true));
    assert_eq!(scalar("tobool('yes')"), Value::Null);
    assert_eq!(scalar("coalesce(toreal('abc') > 1, false)"), json!(false));
    assert_eq!(scalar("iif(bool(null), 'then', 'else')"), json!("else"));
    assert_eq!(scalar("case(bool(null), 1, 2)"), json!(2));
    assert_eq!(scalar("int(null) in (1, 2)"), json!(false));
    assert_eq!(scalar("int(null) !in (1, 2)"), json!(true));
    assert_eq!(scalar("int(null) between (1 .. 2)"), Value::Null);
    assert_eq!(scalar("parse_json('{}').a contains 'x'"), json!(false));
    assert_eq!(scalar("parse_json('{}').a !contains 'x'"), json!(true));
    // `where` keeps only the rows whose predicate is true.
    let rows = [
        row(&[
            ("AwsEventId", json!("t")),
            ("SessionMfaAuthenticated", json!(true)),
        ]),
        row(&[
            ("AwsEventId", json!("f")),
            ("SessionMfaAuthenticated", json!(false)),
        ]),
        row(&[("AwsEventId", json!("n"))]),
    ];
    let ids = |src: &str| {
        query(src, &rows)
            .iter()
            .map(|r| r["AwsEventId"].as_str().unwrap_or("?").to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    assert_eq!(
        ids("AWSCloudTrail | where SessionMfaAuthenticated == true"),
        "t"
    );
    assert_eq!(
        ids("AWSCloudTrail | where SessionMfaAuthenticated != true"),
        "f"
    );
    assert_eq!(
        ids("AWSCloudTrail | where not(SessionMfaAuthenticated == true)"),
        "f"
    );
    assert_eq!(
        ids("AWSCloudTrail | where not(coalesce(SessionMfaAuthenticated == true, false))"),
        "f,n"
    );
    assert_eq!(
        ids("AWSCloudTrail | where isnull(SessionMfaAuthenticated)"),
        "n"
    );
}

#[test]
fn case_rules_of_string_operators() {
    let cases = [
        ("\"aBc\" == \"aBc\"", true),
        ("\"abc\" == \"ABC\"", false),
        ("\"abc\" != \"ABC\"", true),
        ("\"abc\" =~ \"ABC\"", true),
        ("\"aBc\" !~ \"xyz\"", true),
        ("\"abc\" !~ \"ABC\"", false),
        ("\"FabriKam\" contains \"BRik\"", true),
        ("\"Fabrikam\" !contains \"xyz\"", true),
        ("\"Fabrikam\" !contains \"BRIK\"", false),
        ("\"FabriKam\" contains_cs \"Kam\"", true),
        ("\"FabriKam\" contains_cs \"kam\"", false),
        ("\"Fabrikam\" !contains_cs \"Kam\"", true),
        ("\"Fabrikam\" startswith \"fab\"", true),
        ("\"Fabrikam\" !startswith \"kam\"", true),
        ("\"Fabrikam\" startswith_cs \"fab\"", false),
        ("\"Fabrikam\" startswith_cs \"Fab\"", true),
        ("\"Fabrikam\" !startswith_cs \"fab\"", true),
        ("\"Fabrikam\" endswith \"KAM\"", true),
        ("\"Fabrikam\" !endswith \"brik\"", true),
        ("\"Fabrikam\" endswith_cs \"KAM\"", false),
        ("\"Fabrikam\" !endswith_cs \"KAM\"", true),
        ("\"North America\" has \"america\"", true),
        ("\"North America\" !has \"amer\"", true),
        ("\"North America\" has_cs \"America\"", true),
        ("\"North America\" has_cs \"america\"", false),
        ("\"North America\" !has_cs \"america\"", true),
        ("\"North America\" hasprefix \"ame\"", true),
        ("\"North America\" hasprefix \"ica\"", false),
        ("\"North America\" hassuffix \"ICA\"", true),
        ("\"North America\" hassuffix_cs \"ICA\"", false),
        ("\"abc\" in (\"ABC\", \"x\")", false),
        ("\"abc\" in~ (\"ABC\", \"x\")", true),
        ("\"abc\" !in (\"ABC\")", true),
        ("\"abc\" !in~ (\"ABC\")", false),
        ("\"North America\" has_any (\"x\", \"NORTH\")", true),
        ("\"North America\" has_all (\"north\", \"america\")", true),
        ("\"North America\" has_all (\"north\", \"amer\")", false),
        ("\"abc\" matches regex \"^A\"", false),
        ("\"abc\" matches regex \"(?i)^A\"", true),
        ("\"ÉTÉ\" =~ \"été\"", true),
    ];
    for (e, want) in cases {
        assert_eq!(scalar(e), json!(want), "{e}");
    }
}

#[test]
fn has_matches_whole_terms() {
    let has = |hay: &str, needle: &str| {
        scalar(&format!(
            "{} has {}",
            printer::string(hay, '"'),
            printer::string(needle, '"')
        )) == json!(true)
    };
    assert!(has("North America", "america"));
    assert!(!has("NorthAmerica", "america"));
    assert!(!has("North America", "amer"));
    assert!(has("arn:aws:iam::123:user/alice", "iam"));
    assert!(has("arn:aws:iam::123:user/alice", "iam::123"));
    assert!(!has("arn:aws:xiam::123:user/alice", "iam::123"));
    assert!(!has("arn:aws:iam::1234:user/alice", "iam::123"));
    assert!(has("{\"Action\":\"iam:PassRole\"}", "iam:"));
    assert!(has("[\"iam:*\",\"s3:Get*\"]", "iam:*"));
    assert!(has("[\"iam:*\",\"s3:Get*\"]", "*"));
    assert!(has("ab ab-cd", "ab-cd"));
    assert!(has("abc_def", "abc"));
    assert!(has("ID 42", "42"));
    assert!(!has("ID 420", "42"));
    assert!(has(
        "aws-cli/2.15 prompt/off command/iam.list-users",
        "iam.list-users"
    ));
    assert!(!has("command/iam.list-usersX", "iam.list-users"));
    assert!(has("Grüße aus Köln", "KÖLN"));
}

#[test]
fn functions() {
    assert_eq!(scalar("split('a/b/c', '/')"), json!(["a", "b", "c"]));
    assert_eq!(scalar("split('a/b/c', '/')[-1]"), json!("c"));
    assert_eq!(scalar("split('a/b/c', '/')[3]"), Value::Null);
    assert_eq!(scalar("split('a/b/c', '/', 1)"), json!(["b"]));
    assert_eq!(scalar("split('a/b/c', '/', 5)"), json!([]));
    assert_eq!(scalar("tostring(split('alice', '@', 1)[0])"), json!(""));
    assert_eq!(
        scalar("tostring(split('alice@example.com', '@', 0)[0])"),
        json!("alice")
    );
    assert_eq!(scalar("split('', '/')"), json!([""]));
    assert_eq!(scalar("split('a::b', '::')"), json!(["a", "b"]));
    assert_eq!(scalar("iif(1 > 2, 'a', 'b')"), json!("b"));
    assert_eq!(scalar("iff(2 > 1, 'a', 'b')"), json!("a"));
    assert_eq!(scalar("case(1 > 2, 'a', 2 > 1, 'b', 'c')"), json!("b"));
    assert_eq!(scalar("case(false, 'a', 'c')"), json!("c"));
    assert_eq!(scalar("coalesce('', 'x')"), json!("x"));
    assert_eq!(scalar("coalesce('', '')"), json!(""));
    assert_eq!(scalar("coalesce(int(null), 5)"), json!(5));
    assert_eq!(scalar("coalesce(int(null), int(null))"), Value::Null);
    assert_eq!(scalar("coalesce(parse_json('{}').a, 'x')"), json!("x"));
    assert_eq!(scalar("strcat('a', 1, int(null), true)"), json!("a1true"));
    assert_eq!(scalar("strlen('héllo')"), json!(5));
    assert_eq!(scalar("substring('abcdef', 2, 3)"), json!("cde"));
    assert_eq!(scalar("substring('abcdef', 4)"), json!("ef"));
    assert_eq!(scalar("indexof('abcabc', 'c')"), json!(2));
    assert_eq!(scalar("indexof('abc', 'x')"), json!(-1));
    assert_eq!(scalar("indexof_regex('ab12', @'\\d')"), json!(2));
    assert_eq!(scalar("tolower('ÀB')"), json!("àb"));
    assert_eq!(scalar("toupper('ab')"), json!("AB"));
    assert_eq!(scalar("trim(@'[ -]', '- a b -')"), json!("a b"));
    assert_eq!(scalar("trim_start('x', 'xxaxx')"), json!("axx"));
    assert_eq!(scalar("replace_string('a.b.c', '.', '/')"), json!("a/b/c"));
    assert_eq!(
        scalar("replace_regex('ab12', @'(\\d)', @'<\\1>')"),
        json!("ab<1><2>")
    );
    assert_eq!(
        scalar("extract(@'user/(\\w+)', 1, 'arn:aws:iam::1:user/alice')"),
        json!("alice")
    );
    assert_eq!(scalar("extract(@'user/(\\w+)', 1, 'nothing')"), json!(""));
    assert_eq!(scalar("array_length(dynamic([1, 2]))"), json!(2));
    assert_eq!(scalar("array_length('x')"), Value::Null);
    assert_eq!(
        scalar("set_has_element(dynamic(['a', 'b']), 'b')"),
        json!(true)
    );
    assert_eq!(
        scalar("bag_keys(dynamic({'a': 1, 'b': 2}))"),
        json!(["a", "b"])
    );
    assert_eq!(scalar("pack('a', 1, 'b', 'x')"), json!({"a": 1, "b": "x"}));
    assert_eq!(
        scalar("pack_array(1, 'x', dynamic(null))"),
        json!([1, "x", null])
    );
    assert_eq!(
        scalar("tostring(dynamic({'a': [1, 'x']}))"),
        json!("{\"a\":[1,\"x\"]}")
    );
    assert_eq!(scalar("tostring(dynamic(true))"), json!("true"));
    assert_eq!(scalar("tostring(parse_json('\"x\"'))"), json!("x"));
    assert_eq!(scalar("tostring(1.5)"), json!("1.5"));
    assert_eq!(scalar("tostring(real(50000))"), json!("50000"));
    assert_eq!(scalar("parse_json('not json')"), json!("not json"));
    assert_eq!(
        scalar("todynamic('{\"a\": {\"b\": [10, 20]}}').a.b[1]"),
        json!(20)
    );
    assert_eq!(scalar("parse_json('{\"x-y\": 1}')['x-y']"), json!(1));
    assert_eq!(scalar("parse_json('{\"x-y\": 1}').['x-y']"), json!(1));
    assert_eq!(scalar("parse_json('[1]').a"), Value::Null);
    assert_eq!(scalar("parse_json('\"{\\\\\"a\\\\\":1}\"').a"), Value::Null);
    assert_eq!(
        scalar("parse_json(tostring(parse_json('\"{\\\\\"a\\\\\":1}\"'))).a"),
        json!(1)
    );
    assert_eq!(scalar("dynamic(['all']) == '[\"all\"]'"), json!(true));
    assert_eq!(
        scalar("parse_json('{\"a\": false}').a == false"),
        json!(true)
    );
    assert_eq!(scalar("parse_json('{\"a\": 5}').a > 4"), json!(true));
    assert_eq!(
        scalar("ipv4_is_in_range('10.1.2.3', '10.0.0.0/8')"),
        json!(true)
    );
    assert_eq!(
        scalar("ipv4_is_in_range('11.1.2.3', '10.0.0.0/8')"),
        json!(false)
    );
    assert_eq!(
        scalar("ipv4_is_in_range('10.1.2.3', '10.1.2.3')"),
        json!(true)
    );
    assert_eq!(scalar("ipv4_is_in_range('x', '10.0.0.0/8')"), Value::Null);
    assert_eq!(
        scalar("ipv4_is_in_any_range('192.168.1.1', '10.0.0.0/8', '192.168.0.0/16')"),
        json!(true)
    );
    assert_eq!(
        scalar("ipv4_is_in_any_range('2001:db8::1', dynamic(['10.0.0.0/8']))"),
        Value::Null
    );
    assert_eq!(
        scalar("ipv6_is_in_range('2001:db8::1', '2001:db8::/32')"),
        json!(true)
    );
    assert_eq!(
        scalar("ipv6_is_in_range('10.1.2.3', '10.0.0.0/8')"),
        json!(true)
    );
    assert_eq!(
        scalar("ipv6_is_in_range('AWS Internal', '2001:db8::/32')"),
        Value::Null
    );
    assert_eq!(scalar("ipv4_is_private('172.16.5.4')"), json!(true));
    assert_eq!(scalar("ago(1h) < now()"), json!(true));
    assert_eq!(scalar("now()"), json!("2024-05-01T12:30:00Z"));
    assert_eq!(scalar("ago(1d)"), json!("2024-04-30T12:30:00Z"));
    assert_eq!(
        scalar("datetime(2024-05-01T10:00:00Z) - datetime(2024-05-01)"),
        json!("10:00:00")
    );
    assert_eq!(
        scalar("datetime(2024-05-01) + 1d"),
        json!("2024-05-02T00:00:00Z")
    );
    assert_eq!(scalar("'2024-05-01T12:00:00Z' > ago(1h)"), json!(true));
    assert_eq!(
        scalar("bin(datetime(2024-05-01T12:34:56Z), 10m)"),
        json!("2024-05-01T12:30:00Z")
    );
    assert_eq!(scalar("bin(7, 5)"), json!(5));
    assert_eq!(
        scalar("datetime_diff('hour', datetime(2017-10-31 01:00), datetime(2017-10-30 23:59))"),
        json!(2)
    );
    assert_eq!(
        scalar("datetime_diff('month', datetime(2018-01-01), datetime(2017-12-31))"),
        json!(1)
    );
    assert_eq!(scalar("7 / 2"), json!(3));
    assert_eq!(scalar("7 / 2.0"), json!(3.5));
    assert_eq!(scalar("7 % 0"), Value::Null);
    assert_eq!(scalar("max_of(1, 5, int(null), 3)"), json!(5));
    assert_eq!(scalar("1 between (1 .. 2)"), json!(true));
    assert_eq!(scalar("3 !between (1 .. 2)"), json!(true));
}

#[test]
fn regexes_have_re2_meaning() {
    // RE2's \d, \w, \s, \b are ASCII-only.
    assert_eq!(scalar("'٣' matches regex @'\\d'"), json!(false));
    assert_eq!(scalar("'é' matches regex @'^\\w$'"), json!(false));
    assert_eq!(scalar("'é' matches regex @'^\\W$'"), json!(true));
    assert_eq!(scalar("'a_1' matches regex @'^[\\w]+$'"), json!(true));
    assert_eq!(scalar("'é' matches regex @'^[\\W]$'"), json!(true));
    assert_eq!(scalar("'éa' matches regex @'\\ba'"), json!(true));
    assert_eq!(scalar("'\u{a0}' matches regex @'\\s'"), json!(false));
    // In RE2 a `[` inside a class is a literal.
    assert_eq!(scalar("'[' matches regex @'^[[a]$'"), json!(true));
    assert_eq!(scalar("'&' matches regex @'^[a&&b]$'"), json!(true));
    assert_eq!(scalar("'é' matches regex '(?i)É'"), json!(true));
    assert!(
        eval_err("print r = 'a' matches regex '('", &[]).starts_with("invalid regular expression")
    );
}

#[test]
fn unknown_names_and_functions_are_errors() {
    insta::assert_snapshot!(eval_err("AWSCloudTrail | where EventNmae == 'x'", &[row(&[])]), @"unknown name `EventNmae`: not a column of the row, nor a `let` `EventNmae`");
    insta::assert_snapshot!(eval_err("AWSCloudTrail | where tostrng(EventName) == 'x'", &[row(&[])]), @"unknown or unsupported function `tostrng` (did you mean `tostring`?) `tostrng`");
    insta::assert_snapshot!(eval_err("AWSCloudTrail | where EventName == 1", &[row(&[])]), @"cannot compare a string value with a long value `EventName == 1`");
    insta::assert_snapshot!(eval_err("AWSGuardDuty | take 1", &[]), @"unknown table `AWSGuardDuty` (the rows given are `AWSCloudTrail`) `AWSGuardDuty`");
    insta::assert_snapshot!(eval_err("AWSCloudTrail | where count() > 1", &[row(&[])]), @"`count` is an aggregation: it belongs in `summarize` `count()`");
    insta::assert_snapshot!(eval_err("AWSCloudTrail | extend x = EventName.a", &[row(&[])]), @"`.a` needs a dynamic value (use parse_json), found a string value `EventName`");
    insta::assert_snapshot!(eval_err("let t = externaldata (a:string) ['https://x'];\nAWSCloudTrail | where EventName in (t)", &[row(&[])]), @"externaldata reads external storage: not supported by the evaluator `externaldata (a:string) ['https://x']`");
}

// ----- evaluation: tabular operators -----

#[test]
fn extend_sees_earlier_assignments_and_moves_replaced_columns_last() {
    let out = query("print a = 1, b = 2 | extend a = b + 10, c = a * 2", &[]);
    assert_eq!(
        serde_json::to_string(&out[0]).unwrap(),
        r#"{"b":2,"a":12,"c":24}"#
    );
    let out = query("print a = 1, b = 2 | project c = a + b, a, b = a", &[]);
    assert_eq!(
        serde_json::to_string(&out[0]).unwrap(),
        r#"{"c":3,"a":1,"b":1}"#
    );
    let out = query(
        "print a = 1, b = 2, bc = 3 | project-away b* | extend d = tostring(a)",
        &[],
    );
    assert_eq!(
        serde_json::to_string(&out[0]).unwrap(),
        r#"{"a":1,"d":"1"}"#
    );
    let out = query("print a = 1, b = 2 | project-rename z = a", &[]);
    assert_eq!(serde_json::to_string(&out[0]).unwrap(), r#"{"z":1,"b":2}"#);
}

#[test]
fn summarize_groups_by_value() {
    let rows = [
        row(&[
            ("SourceIpAddress", json!("1.1.1.1")),
            ("EventName", json!("A")),
            ("TimeGenerated", json!("2024-05-01T12:05:00Z")),
        ]),
        row(&[
            ("SourceIpAddress", json!("2.2.2.2")),
            ("EventName", json!("B")),
            ("TimeGenerated", json!("2024-05-01T12:01:00Z")),
        ]),
        row(&[
            ("SourceIpAddress", json!("1.1.1.1")),
            ("EventName", json!("C")),
            ("TimeGenerated", json!("2024-05-01T12:02:00Z")),
        ]),
        row(&[
            ("SourceIpAddress", json!("1.1.1.1")),
            ("EventName", json!("A")),
            ("TimeGenerated", json!("2024-05-01T12:09:00Z")),
        ]),
    ];
    let out = query(
        "AWSCloudTrail | summarize Events = count(), First = min(TimeGenerated), Last = max(TimeGenerated), Names = make_set(EventName), dcount(EventName), countif(EventName == 'A') by SourceIpAddress | sort by Events desc",
        &rows,
    );
    assert_eq!(
        serde_json::to_value(&out).unwrap(),
        json!([
            {"SourceIpAddress": "1.1.1.1", "Events": 3, "First": "2024-05-01T12:02:00Z", "Last": "2024-05-01T12:09:00Z", "Names": ["A", "C"], "dcount_EventName": 2, "countif_": 2},
            {"SourceIpAddress": "2.2.2.2", "Events": 1, "First": "2024-05-01T12:01:00Z", "Last": "2024-05-01T12:01:00Z", "Names": ["B"], "dcount_EventName": 1, "countif_": 0},
        ])
    );
    let out = query(
        "AWSCloudTrail | summarize count(), make_list(EventName) by bin(TimeGenerated, 5m), Ip = SourceIpAddress",
        &rows,
    );
    assert_eq!(
        serde_json::to_value(&out).unwrap(),
        json!([
            {"TimeGenerated": "2024-05-01T12:05:00Z", "Ip": "1.1.1.1", "count_": 2, "list_EventName": ["A", "A"]},
            {"TimeGenerated": "2024-05-01T12:00:00Z", "Ip": "2.2.2.2", "count_": 1, "list_EventName": ["B"]},
            {"TimeGenerated": "2024-05-01T12:00:00Z", "Ip": "1.1.1.1", "count_": 1, "list_EventName": ["C"]},
        ])
    );
    assert_eq!(
        serde_json::to_value(query("AWSCloudTrail | summarize n = count()", &[])).unwrap(),
        json!([{"n": 0}])
    );
    assert_eq!(
        serde_json::to_value(query(
            "AWSCloudTrail | summarize n = count() by EventName",
            &[]
        ))
        .unwrap(),
        json!([])
    );
    // Null keys group together; aggregates skip nulls.
    let rows = [
        row(&[("AwsEventId", json!("1"))]),
        row(&[("AwsEventId", json!("2")), ("ReadOnly", json!(true))]),
        row(&[("AwsEventId", json!("3"))]),
    ];
    let out = query(
        "AWSCloudTrail | summarize ids = make_list(AwsEventId), n = dcount(ReadOnly) by ReadOnly",
        &rows,
    );
    assert_eq!(
        serde_json::to_value(&out).unwrap(),
        json!([{"ReadOnly": null, "ids": ["1", "3"], "n": 0}, {"ReadOnly": true, "ids": ["2"], "n": 1}])
    );
}

#[test]
fn mv_apply_runs_the_subquery_per_row() {
    let rows = [
        row(&[("AwsEventId", json!("1")), ("RequestParameters", json!(r#"{"g":[{"u":"a"},{"u":"b"}]}"#))]),
        row(&[("AwsEventId", json!("2")), ("RequestParameters", json!(r#"{"g":{"u":"b"}}"#))]),
        row(&[("AwsEventId", json!("3")), ("RequestParameters", json!(r#"{"g":[]}"#))]),
    ];
    let src = "AWSCloudTrail | extend v = parse_json(RequestParameters).g | mv-apply e = iff(gettype(v) == \"array\", iff(array_length(v) > 0, v, dynamic([null])), pack_array(v)) on (summarize hit = countif(isnotnull(e) and tostring(e.u) == \"a\") > 0, n = count()) | project AwsEventId, hit, n";
    let out: Vec<String> = query(src, &rows).iter().map(|r| serde_json::to_string(&r.values().collect::<Vec<_>>()).unwrap()).collect();
    assert_eq!(out, [r#"["1",true,2]"#, r#"["2",false,1]"#, r#"["3",false,1]"#]);
    // the printer writes it back so that it parses to the same tree
    let q = parse(src).unwrap();
    assert_eq!(parse(&to_string(&q)).unwrap(), q);
    assert!(to_string(&q).contains("mv-apply e = iff("), "{}", to_string(&q));
    // where + take 1 keeps one row per event that has a matching element; a property bag
    // expands into one single-property bag per key (so `{"u":"b"}` still has `u`)
    let out = query("AWSCloudTrail | mv-apply e = parse_json(RequestParameters).g on (where tostring(e.u) == \"b\" | take 1) | project AwsEventId", &rows);
    assert_eq!(out.len(), 2);
    assert_eq!(parse_err("T | mv-apply e = x on (where"), "1:29: expected an expression, found end of input");
}

#[test]
fn distinct_take_sort_top_count_mv_expand_join() {
    let rows = [
        row(&[
            ("AwsEventId", json!("1")),
            ("EventName", json!("A")),
            ("Resources", json!("[{\"ARN\":\"r1\"},{\"ARN\":\"r2\"}]")),
        ]),
        row(&[
            ("AwsEventId", json!("2")),
            ("EventName", json!("B")),
            ("Resources", json!("[]")),
        ]),
        row(&[
            ("AwsEventId", json!("3")),
            ("EventName", json!("A")),
            ("Resources", json!("")),
        ]),
    ];
    let ids = |src: &str| {
        query(src, &rows)
            .iter()
            .map(|r| serde_json::to_string(&r.values().collect::<Vec<_>>()).unwrap())
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(ids("AWSCloudTrail | distinct EventName"), r#"["A"] ["B"]"#);
    assert_eq!(
        ids("AWSCloudTrail | sort by AwsEventId | take 2 | project AwsEventId"),
        r#"["3"] ["2"]"#
    );
    assert_eq!(
        ids("AWSCloudTrail | top 1 by AwsEventId asc | project AwsEventId"),
        r#"["1"]"#
    );
    assert_eq!(ids("AWSCloudTrail | count"), "[3]");
    assert_eq!(
        ids(
            "AWSCloudTrail | mv-expand R = parse_json(Resources) | project AwsEventId, tostring(R.ARN)"
        ),
        r#"["1","r1"] ["1","r2"] ["3",""]"#
    );
    assert_eq!(
        ids(
            "AWSCloudTrail | mv-expand with_itemindex=i R = parse_json(Resources) to typeof(string) | project AwsEventId, i, R"
        ),
        r#"["1",0,""] ["1",1,""] ["3",0,""]"#
    );
    assert_eq!(
        ids(
            "AWSCloudTrail | project AwsEventId, EventName | join kind=inner (AWSCloudTrail | where AwsEventId != '1' | project EventName, Other = AwsEventId) on EventName | project AwsEventId, Other, EventName1"
        ),
        r#"["1","3","A"] ["2","2","B"] ["3","3","A"]"#
    );
    assert_eq!(
        ids(
            "AWSCloudTrail | project AwsEventId, EventName | join (AWSCloudTrail | project EventName, Other = AwsEventId) on EventName | project AwsEventId, Other"
        ),
        r#"["1","1"] ["1","3"] ["2","2"]"#
    );
    assert_eq!(
        ids(
            "AWSCloudTrail | project a = AwsEventId | join kind=leftanti (AWSCloudTrail | where EventName == 'A' | project b = AwsEventId) on $left.a == $right.b"
        ),
        r#"["2"]"#
    );
    assert_eq!(
        ids(
            "AWSCloudTrail | project a = AwsEventId | join kind=leftouter (AWSCloudTrail | where EventName == 'B' | project b = AwsEventId) on $left.a == $right.b"
        ),
        r#"["1",null] ["2","2"] ["3",null]"#
    );
}

// ----- real queries -----

#[test]
fn reference_sentinel_query() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/reference/sentinel/AWS_IngressEgressSecurityGroupChange.yaml");
    let src = corpus_query(&path).expect("the reference fixture has a query");
    let matching = row(&[
        ("EventName", json!("authorizesecuritygroupingress")),
        (
            "UserIdentityArn",
            json!("arn:aws:iam::1:user/alice@example.com"),
        ),
        ("UserIdentityUserName", json!("alice@example.com")),
    ]);
    let out = query(&src, std::slice::from_ref(&matching));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["AccountName"], json!("alice"));
    // The second assignment of the same `extend` sees the new AccountName, which has no `@` left.
    assert_eq!(out[0]["AccountUPNSuffix"], json!(""));
    assert_eq!(out[0]["EventCount"], json!(1));
    assert_eq!(out[0]["StartTimeUtc"], json!("2024-05-01T12:00:00Z"));
    let keys: Vec<&str> = out[0].keys().map(String::as_str).collect();
    assert_eq!(keys[..3], ["EventSource", "EventName", "UserIdentityType"]);
    assert_eq!(
        keys[keys.len() - 3..],
        ["EventCount", "StartTimeUtc", "EndTimeUtc"]
    );
    let other = row(&[
        ("EventName", json!("DescribeSecurityGroups")),
        ("UserIdentityUserName", json!("alice@example.com")),
    ]);
    assert!(query(&src, &[other]).is_empty());
}

#[test]
fn long_session_predicate() {
    let src = "AWSCloudTrail | where not(coalesce(toreal(parse_json(RequestParameters).durationSeconds) > 43200, false))";
    let rows = [
        row(&[
            ("AwsEventId", json!("number")),
            ("RequestParameters", json!("{\"durationSeconds\": 50000}")),
        ]),
        row(&[
            ("AwsEventId", json!("string")),
            (
                "RequestParameters",
                json!("{\"durationSeconds\": \"50000\"}"),
            ),
        ]),
        row(&[
            ("AwsEventId", json!("missing")),
            ("RequestParameters", json!("{\"roleArn\": \"x\"}")),
        ]),
        row(&[
            ("AwsEventId", json!("text")),
            ("RequestParameters", json!("{\"durationSeconds\": \"abc\"}")),
        ]),
        row(&[
            ("AwsEventId", json!("short")),
            ("RequestParameters", json!("{\"durationSeconds\": 3600}")),
        ]),
        row(&[
            ("AwsEventId", json!("no-json")),
            ("RequestParameters", json!("")),
        ]),
    ];
    let kept: Vec<_> = query(src, &rows)
        .iter()
        .map(|r| r["AwsEventId"].clone())
        .collect();
    assert_eq!(
        kept,
        [
            json!("missing"),
            json!("text"),
            json!("short"),
            json!("no-json")
        ]
    );
}

#[test]
fn unapproved_network_predicate() {
    let src = "AWSCloudTrail | where not((coalesce(ipv4_is_in_any_range(SourceIpAddress, dynamic([\"10.0.0.0/8\"])), false) or coalesce(ipv6_is_in_any_range(SourceIpAddress, dynamic([\"2001:db8::/32\"])), false)))";
    let rows: Vec<Row> = [
        "10.1.2.3",
        "8.8.8.8",
        "2001:db8::1",
        "2001:4860::1",
        "AWS Internal",
    ]
    .iter()
    .map(|ip| row(&[("SourceIpAddress", json!(ip))]))
    .collect();
    let kept: Vec<_> = query(src, &rows)
        .iter()
        .map(|r| r["SourceIpAddress"].clone())
        .collect();
    assert_eq!(
        kept,
        [
            json!("8.8.8.8"),
            json!("2001:4860::1"),
            json!("AWS Internal")
        ]
    );
}

/// Azure-Sentinel `SuspiciousAWSCLICommandExecution.yaml` (corpus copy): `pack_array`, adjacent
/// string literals, `has_any` on a list, `dcount`/`make_list` by `bin(TimeGenerated, 1min)`.
const SUSPICIOUS_CLI: &str = r#"let SuspiciousCommands= pack_array('iam.list-users', 'iam.list-groups', 'ec2.describe-vpcs', 'ec2.describe-subnets', 'route53.list-hosted-zones', 'kms.list-keys', 'kms.list-aliases', 'ecs.list-clusters', 'ecs.list-services', 'iam.list-roles', 'iam.get-user''iam.list-access-keys', 'ec2.describe-security-groups', 'ec2.describe-network-acls', 'ec2.describe-network-interfaces', 'ec2.describe-route-tables', 'ec2.describe-internet-gateways', 'ec2.describe-vpc-peering-connections', 'ec2.describe-network-interfaces', 'ec2.describe-network-interfaces', 'ec2.describe-transit-gateway-vpc-attachment', 'ec2.describe-vpc');
// Retrieve AWS CloudTrail events
AWSCloudTrail 
// Filter events with UserAgent starting with "aws-cli"
| where UserAgent startswith "aws-cli" 
// Extract the command from the UserAgent using string splitting
| extend command = tostring(split(UserAgent, "off command/", 1)[0])  
// Filter events based on predefined suspicious command list
| where command has_any (SuspiciousCommands)  
// Summarize relevant information for further analysis
| summarize 
    CommadCount = dcount(command), 
    EventCount = dcount(EventName), 
    commands = make_list(command), 
    Events = make_list(EventName) 
    by 
    bin(TimeGenerated, 1min), 
    UserIdentityUserName, 
    SourceIpAddress, 
    SessionMfaAuthenticated 
// Filter out results with a sufficient count of unique suspicious commands in 1 min time window
| where CommadCount >= 8
"#;

#[test]
fn corpus_suspicious_cli_commands() {
    assert_round_trip(SUSPICIOUS_CLI);
    let commands = [
        "iam.list-users",
        "iam.list-groups",
        "ec2.describe-vpcs",
        "ec2.describe-subnets",
        "route53.list-hosted-zones",
        "kms.list-keys",
        "kms.list-aliases",
        "ecs.list-clusters",
    ];
    let rows: Vec<Row> = commands
        .iter()
        .enumerate()
        .map(|(i, c)| {
            row(&[
                ("UserAgent", json!(format!("aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64.amzn.2 prompt/off command/{c}"))),
                ("EventName", json!(format!("Call{}", i % 3))),
                ("UserIdentityUserName", json!("mallory")),
                ("SourceIpAddress", json!("203.0.113.9")),
                ("TimeGenerated", json!(format!("2024-05-01T12:00:{:02}Z", 10 + i))),
            ])
        })
        .collect();
    let out = query(SUSPICIOUS_CLI, &rows);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["TimeGenerated"], json!("2024-05-01T12:00:00Z"));
    assert_eq!(out[0]["CommadCount"], json!(8));
    assert_eq!(out[0]["EventCount"], json!(3));
    assert_eq!(out[0]["commands"], json!(commands));
    assert!(query(SUSPICIOUS_CLI, &rows[1..]).is_empty());
}

/// Azure-Sentinel `AWS_S3BruteForce.yaml` (corpus copy): tabular `let`s, `arg_min(TimeGenerated, *)`,
/// `<>`, an inner `join` on six columns, `project-away`.
const S3_BRUTE_FORCE: &str = r#"let timeframe = 1h;
let failed_attempts = AWSCloudTrail
| where TimeGenerated >= ago(timeframe)
| where EventName == "GetObject" and isnotempty(ErrorMessage) and isnotempty(ErrorCode)
| where UserIdentityAccountId == "ANONYMOUS_PRINCIPAL" or UserIdentityAccessKeyId <> RecipientAccountId
| extend bucketName = tostring(parse_json(RequestParameters).bucketName), keyName = tostring(parse_json(RequestParameters).key)
| summarize time_min_failed=arg_min(TimeGenerated, *), failed_keys = dcount(keyName) by RecipientAccountId, AccountName, AccountUPNSuffix, UserIdentityAccountId, SourceIpAddress, bucketName
| where failed_keys > 20;
let success_attempts = AWSCloudTrail
| where TimeGenerated >= ago(timeframe)
| where EventName == "GetObject" and isempty(ErrorMessage) and isempty(ErrorCode)
| where UserIdentityAccountId == "ANONYMOUS_PRINCIPAL" or UserIdentityAccessKeyId <> RecipientAccountId
| extend bucketName = tostring(parse_json(RequestParameters).bucketName), keyName = tostring(parse_json(RequestParameters).key)
| summarize time_min_success=arg_min(TimeGenerated, *), success_keys = dcount(keyName) by RecipientAccountId, AccountName, AccountUPNSuffix, UserIdentityAccountId, SourceIpAddress, bucketName
| where success_keys >= 1;
failed_attempts
| join kind=inner success_attempts on SourceIpAddress, RecipientAccountId, AccountName, AccountUPNSuffix, UserIdentityAccountId, bucketName
| where time_min_success > time_min_failed
| project-away keyName
| extend timestamp = time_min_success
"#;

#[test]
fn corpus_s3_brute_force() {
    assert_round_trip(S3_BRUTE_FORCE);
    // The rule reads AccountName / AccountUPNSuffix, which AWSCloudTrail does not have: add them.
    let get = |minute: usize, key: &str, failed: bool| {
        let mut r = row(&[
            ("EventName", json!("GetObject")),
            ("UserIdentityAccountId", json!("ANONYMOUS_PRINCIPAL")),
            ("RecipientAccountId", json!("111122223333")),
            ("SourceIpAddress", json!("198.51.100.20")),
            (
                "RequestParameters",
                json!(format!("{{\"bucketName\":\"b1\",\"key\":\"{key}\"}}")),
            ),
            (
                "TimeGenerated",
                json!(format!("2024-05-01T12:{minute:02}:00Z")),
            ),
        ]);
        if failed {
            r.insert("ErrorCode".into(), json!("AccessDenied"));
            r.insert("ErrorMessage".into(), json!("Access Denied"));
        }
        r.insert("AccountName".into(), json!(""));
        r.insert("AccountUPNSuffix".into(), json!(""));
        r
    };
    let mut rows: Vec<Row> = (0..21)
        .map(|i| get(5 + i, &format!("k{i}"), true))
        .collect();
    rows.push(get(28, "k3", false));
    rows.push(get(2, "old", false)); // a success before the first failure
    let out = query(S3_BRUTE_FORCE, &rows);
    assert_eq!(
        out.len(),
        0,
        "the earliest success precedes the earliest failure"
    );
    rows.pop();
    let out = query(S3_BRUTE_FORCE, &rows);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["time_min_failed"], json!("2024-05-01T12:05:00Z"));
    assert_eq!(out[0]["failed_keys"], json!(21));
    assert_eq!(out[0]["timestamp"], json!("2024-05-01T12:28:00Z"));
    assert_eq!(out[0]["keyName1"], json!("k3"));
    assert!(!out[0].contains_key("keyName"));
    // One failure fewer: under the threshold.
    assert!(query(S3_BRUTE_FORCE, &rows[1..]).is_empty());
}

/// Azure-Sentinel `AWS_GuardDuty_template.yaml` (corpus copy): `case (` over dynamic paths,
/// `between`, reassigned columns within one `extend`, `bag_pack`, `project-rename`, `project-away`.
const GUARDDUTY: &str = r##"AWSGuardDuty 
| extend findingTokens = split(ActivityType, ":")
| extend ThreatPurpose=findingTokens[0], findingTokens=split(findingTokens[1], "/")
| extend ResourceTypeAffected=findingTokens[0], findingTokens= split(findingTokens[1], ".")
| extend ThreatFamilyName=findingTokens[0], findingTokens=split(findingTokens[1], "!")
| extend DetectionMechanism=findingTokens[0], Artifact=findingTokens[1]
| extend Severity = 
    case (
      Severity >= 7.0, "High",
      Severity between (4.0 .. 6.9), "Medium",
      Severity between (1.0 .. 3.9), "Low",
      "Unknown"
    )
| extend AccessKeyDetails=ResourceDetails.accessKeyDetails
| extend RdsDbUserDetails=ResourceDetails.rdsDbUserDetails
| extend KubernetesDetails=ResourceDetails.kubernetesDetails
| extend ServiceAction = 
    case(
      isnotempty(ServiceDetails.action.awsApiCallAction), ServiceDetails.action.awsApiCallAction,
      isnotempty(ServiceDetails.action.kubernetesApiCallAction), ServiceDetails.action.kubernetesApiCallAction,
      isnotempty(ServiceDetails.action.networkConnectionAction), ServiceDetails.action.networkConnectionAction,
      isnotempty(ServiceDetails.action.rdsLoginAttemptAction), ServiceDetails.action.rdsLoginAttemptAction,
      dynamic(null)
    )
| extend RemoteIpAddress = 
    coalesce(
      tostring(ServiceAction.remoteIpDetails.ipAddressV4),
      tostring(parse_json(ServiceAction.sourceIPs)[0])
    )
| extend LocalIpAddress = ServiceAction.localIpDetails.ipAddressV4
| extend RemoteAWSAccountId = ServiceAction.remoteAccountDetails.accountId
| extend AccountUpn = 
    case(
      AccessKeyDetails.userType == "IAMUser", AccessKeyDetails.userName,
      AccessKeyDetails.userType == "AssumedRole", split(AccessKeyDetails.principalId, ":", 1)[0],
      isnotempty(RdsDbUserDetails.user), RdsDbUserDetails.user,
      isnotempty(KubernetesDetails.kubernetesUserDetails.username), KubernetesDetails.kubernetesUserDetails.username,
      ""
    )
| extend UPNSuffix = split(AccountUpn, "@", 1)[0]
| extend GuardDutyDetails =
    bag_pack( 
      "DetectorId", ServiceDetails.detectorId,
      "Partition", Partition,
      "Region", Region
    )
| extend FindingLink = 
    iff(
      isnotempty(Region) and isnotempty(Id),
      strcat("https://", Region, ".console.aws.amazon.com/guardduty/home?region=", Region, "#/findings?fId=", Id),
      ""
    )
| extend FindingLinkDescription = 
    iff(
      isnotempty(FindingLink),
      strcat("Link to GuardDuty finding (AWS): ", FindingLink),
      ""
    )
| project-rename 
    FindingArn=Arn,
    FindingId=Id,
    AWSAccountId=AccountId
| project-away 
    ActivityType, 
    findingTokens,
    Partition,
    Region, 
    SchemaVersion,
    TimeGenerated,
    Type
"##;

#[test]
fn corpus_guardduty_template() {
    assert_round_trip(GUARDDUTY);
    let finding = |severity: f64, details: Value| -> Row {
        [
            ("ActivityType", json!("Recon:IAMUser/MaliciousIPCaller.Custom")),
            ("Severity", json!(severity)),
            ("ResourceDetails", details),
            ("ServiceDetails", json!({"detectorId": "d1", "action": {"awsApiCallAction": {"remoteIpDetails": {"ipAddressV4": "198.51.100.7"}}}})),
            ("Partition", json!("aws")),
            ("Region", json!("us-east-1")),
            ("Id", json!("f1")),
            ("Arn", json!("arn:aws:guardduty:us-east-1:1:detector/d1/finding/f1")),
            ("AccountId", json!("111122223333")),
            ("SchemaVersion", json!("2.0")),
            ("TimeGenerated", json!("2024-05-01T12:00:00Z")),
            ("Type", json!("AWSGuardDuty")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    };
    let rows = [
        finding(
            5.0,
            json!({"accessKeyDetails": {"userType": "IAMUser", "userName": "bob@example.com"}}),
        ),
        finding(
            8.0,
            json!({"accessKeyDetails": {"userType": "AssumedRole", "principalId": "AROA1:carol@example.org"}}),
        ),
    ];
    let out = run_on(GUARDDUTY, "AWSGuardDuty", &rows);
    assert_eq!(out.len(), 2);
    let r = &out[0];
    assert_eq!(r["ThreatPurpose"], json!("Recon"));
    assert_eq!(r["ResourceTypeAffected"], json!("IAMUser"));
    assert_eq!(r["ThreatFamilyName"], json!("MaliciousIPCaller"));
    assert_eq!(r["DetectionMechanism"], json!("Custom"));
    assert_eq!(r["Artifact"], Value::Null);
    assert_eq!(r["Severity"], json!("Medium"));
    assert_eq!(r["RemoteIpAddress"], json!("198.51.100.7"));
    assert_eq!(r["AccountUpn"], json!("bob@example.com"));
    assert_eq!(r["UPNSuffix"], json!("example.com"));
    assert_eq!(
        r["GuardDutyDetails"],
        json!({"DetectorId": "d1", "Partition": "aws", "Region": "us-east-1"})
    );
    assert_eq!(
        r["FindingLink"],
        json!(
            "https://us-east-1.console.aws.amazon.com/guardduty/home?region=us-east-1#/findings?fId=f1"
        )
    );
    assert_eq!(r["FindingId"], json!("f1"));
    for gone in [
        "ActivityType",
        "findingTokens",
        "Region",
        "Id",
        "TimeGenerated",
    ] {
        assert!(!r.contains_key(gone), "{gone}");
    }
    assert_eq!(out[1]["Severity"], json!("High"));
    assert_eq!(out[1]["AccountUpn"], json!("carol@example.org"));
    assert_eq!(out[1]["UPNSuffix"], json!("example.org"));
}

#[test]
fn corpus_queries_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/sentinel");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        println!("no corpus at {}", dir.display());
        return;
    };
    let mut files: Vec<_> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let (mut total, mut parsed, mut ran) = (0, 0, 0);
    let mut failures = Vec::new();
    let mut run_errors = Vec::new();
    for path in &files {
        let Some(src) = corpus_query(path) else {
            continue;
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        total += 1;
        match parse(&src) {
            Ok(q) => {
                parsed += 1;
                assert_round_trip(&src);
                // Smoke run on one empty row: reports constructs the evaluator lacks and columns
                // the rule reads that AWSCloudTrail does not have.
                match run_at(&q, "AWSCloudTrail", &[row(&[])], now()) {
                    Ok(_) => ran += 1,
                    Err(e) => run_errors.push(format!("{name}: {}", e.message)),
                }
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    println!("kusto corpus: {parsed}/{total} queries parse, {ran} run on an empty row");
    for f in &failures {
        println!("  parse failure: {f}");
    }
    for f in &run_errors {
        println!("  run error: {f}");
    }
    assert!(
        parsed * 10 >= total * 9,
        "only {parsed}/{total} corpus queries parse:\n{}",
        failures.join("\n")
    );
}

#[test]
fn hostile_input_gives_errors_not_panics() {
    // Every prefix of real queries, and each of them with a byte swapped for a troublesome one.
    let mut inputs: Vec<String> = Vec::new();
    for src in [SUSPICIOUS_CLI, S3_BRUTE_FORCE, GUARDDUTY] {
        let cuts: Vec<usize> = (0..=src.len())
            .filter(|i| src.is_char_boundary(*i))
            .collect();
        for &i in &cuts {
            inputs.push(src[..i].to_string());
        }
        for (k, &i) in cuts.iter().enumerate().step_by(7) {
            let bad = [
                "(", ")", "\"", "'", "|", "!", "@", "[", "]", "-", "é", "\\", "{", ".",
            ][k % 14];
            let end = cuts.get(k + 1).copied().unwrap_or(src.len());
            inputs.push(format!("{}{bad}{}", &src[..i], &src[end..]));
        }
    }
    inputs.push("(".repeat(100_000));
    inputs.push("-".repeat(100_000));
    inputs.push(format!("print x = dynamic({})", "[".repeat(100_000)));
    inputs.push("print x = ".to_string() + &"not(".repeat(10_000));
    let mut ok = 0;
    for s in &inputs {
        if let Ok(q) = parse(s) {
            ok += 1;
            let printed = to_string(&q);
            assert_eq!(parse(&printed).as_ref(), Ok(&q), "{s}\n---\n{printed}");
            let _ = run_at(&q, "AWSCloudTrail", &[row(&[])], now());
        }
    }
    assert!(ok > 0);
    assert!(
        parse(&"(".repeat(100_000))
            .unwrap_err()
            .expected
            .contains("levels of nesting")
    );
}

/// Kusto that rulecast reads but does not model is parsed (so that importing it is E502, not a
/// syntax error), kept as written, printed back as it was, and refused by the evaluator.
#[test]
fn operators_rulecast_does_not_model_are_read_and_kept() {
    let cases = [
        ("AWSCloudTrail | evaluate bag_unpack(RequestParameters) | where x == 1", "evaluate", "bag_unpack(RequestParameters)"),
        ("AWSCloudTrail | extend (a, b) = series_decompose(c)", "extend", "(a, b) = series_decompose(c)"),
        ("AWSCloudTrail | distinct A, B = tolower(B)", "distinct", "A, B = tolower(B)"),
        ("AWSCloudTrail | lookup (T | where a == \"|\") on K | take 1", "lookup", "(T | where a == \"|\") on K"),
        ("AWSCloudTrail | parse UserAgent with Tool \"/\" Rest", "parse", "UserAgent with Tool \"/\" Rest"),
    ];
    for (src, name, text) in cases {
        let q = parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        let mut found = None;
        let mut e = &q.body;
        while let ExprKind::Pipe { input, op } = &e.kind {
            if let OperatorKind::Unsupported { name, text } = &op.kind {
                found = Some((name.clone(), text.clone()));
            }
            e = input;
        }
        assert_eq!(found, Some((name.to_string(), text.to_string())), "{src}");
        assert_round_trip(src);
        assert!(run(&q, "AWSCloudTrail", &[row(&[])]).is_err(), "{src}: evaluated");
    }
    let q = parse("union isfuzzy=true AWSCloudTrail, (AWSCloudTrail | take 1) | where a == 1").unwrap_or_else(|e| panic!("{e}"));
    let ExprKind::Pipe { input, .. } = &q.body.kind else { panic!("{q:?}") };
    assert!(matches!(&input.kind, ExprKind::Unsupported { name, text } if name == "union" && text == "isfuzzy=true AWSCloudTrail, (AWSCloudTrail | take 1)"));
    // a name that is not an operator is still a syntax error, with a suggestion
    let e = parse("AWSCloudTrail | wher x == 1").unwrap_err();
    assert_eq!(e.hint.as_deref(), Some("did you mean `where`?"));
    // `union` as a column name is still a column
    assert!(parse("AWSCloudTrail | where union == 1").is_ok());
}
