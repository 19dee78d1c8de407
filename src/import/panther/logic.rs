//! Panther Python → canonical condition, alert fields and the prelude.
//!
//! Input: a Panther rule module parsed by `rustpython-parser` (a Python 3 AST with byte ranges).
//! Output: a [`Logic`]: the `rule(event)` body as a canonical condition node (JSON in the
//! canonical syntax), allow-lists read by the standard `for entry in ALLOW_LIST` idiom, the
//! alert title / dedup / context where they are simple, and `targets.panther.prelude`: the module
//! code (imports, constants, functions) that the opaque parts and the functions kept verbatim need.
//!
//! How `rule(event)` is read: a statement list is a boolean (falling off the end is `False`);
//! `if T: A else: B` followed by `R` is `(T and A;R) or (not T and B;R)`, simplified when a branch
//! is a constant (the early-`return False` / `return True` chains of real rules become `all` /
//! `any`); local assignments are substituted where the name is used; module helper functions
//! that are one boolean expression are inlined. A sub-expression that cannot be made structured
//! becomes `{opaque: {lang: python, text, reason}}` with its Python text (locals substituted,
//! comments dropped); a body that cannot be read at all becomes one opaque call of the original
//! function, renamed `_panther_rule`, kept in the prelude. Nothing is dropped.
//!
//! Semantics worth knowing: Python's `None != "x"` is true, as canonical `not eq` on a missing
//! field is; a boolean constant in canonical also matches the strings `"true"`/`"false"`; an
//! f-string of a missing field prints `None` where the canonical title prints `""`.

use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

use rustpython_parser::ast::{self, Constant, Expr, Ranged, Stmt};
use rustpython_parser::{Mode, Tok, lexer};
use serde_json::{Map, Value, json};

use super::helpers;
use crate::import::{all, any, not, pred};

/// A condition while it is built: a constant or a canonical node.
#[derive(Debug, Clone, PartialEq)]
pub enum C {
    /// Always true.
    T,
    /// Always false.
    F,
    /// A canonical condition node.
    N(Value),
}

fn and2(a: C, b: C) -> C {
    match (a, b) {
        (C::F, _) | (_, C::F) => C::F,
        (C::T, x) | (x, C::T) => x,
        (C::N(x), C::N(y)) => C::N(flatten("all", vec![x, y])),
    }
}

fn or2(a: C, b: C) -> C {
    match (a, b) {
        (C::T, _) | (_, C::T) => C::T,
        (C::F, x) | (x, C::F) => x,
        (C::N(x), C::N(y)) => C::N(flatten("any", vec![x, y])),
    }
}

fn neg(a: C) -> C {
    match a {
        C::T => C::F,
        C::F => C::T,
        C::N(v) => match v {
            Value::Object(ref o) if o.len() == 1 && o.contains_key("not") => C::N(o["not"].clone()),
            Value::Object(ref o) if o.len() == 1 && o.contains_key("request_succeeded") => {
                C::N(json!({"request_succeeded": !o["request_succeeded"].as_bool().unwrap_or(true)}))
            }
            other => C::N(not(other)),
        },
    }
}

/// `{all: [...]}` / `{any: [...]}` with nested nodes of the same kind merged.
fn flatten(kind: &str, kids: Vec<Value>) -> Value {
    let mut out = vec![];
    for k in kids {
        match k {
            Value::Object(mut o) if o.len() == 1 && o.contains_key(kind) => {
                if let Some(Value::Array(a)) = o.remove(kind) {
                    out.extend(a);
                }
            }
            other => out.push(other),
        }
    }
    if kind == "all" { all(out) } else { any(out) }
}

/// Why something could not be made structured.
type Why = String;

/// Local names bound to expressions, each with the scope it is read in; generator variables
/// bound to one constant at a time.
#[derive(Clone, Default)]
struct Env<'a> {
    vars: Rc<HashMap<String, (&'a Expr, Env<'a>)>>,
    consts: Rc<HashMap<String, Value>>,
}

impl<'a> Env<'a> {
    fn with(&self, name: &str, e: &'a Expr, scope: Env<'a>) -> Env<'a> {
        let mut m = (*self.vars).clone();
        m.insert(name.to_string(), (e, scope));
        let mut c = (*self.consts).clone();
        c.remove(name);
        Env { vars: Rc::new(m), consts: Rc::new(c) }
    }
    fn with_const(&self, name: &str, v: Value) -> Env<'a> {
        let mut m = (*self.vars).clone();
        m.remove(name);
        let mut c = (*self.consts).clone();
        c.insert(name.to_string(), v);
        Env { vars: Rc::new(m), consts: Rc::new(c) }
    }
    fn get(&self, name: &str) -> Option<&(&'a Expr, Env<'a>)> {
        self.vars.get(name)
    }
    fn constant(&self, e: &Expr) -> Option<Value> {
        name_of(e).and_then(|n| self.consts.get(n)).cloned().or_else(|| scalar(e))
    }
}

/// A reference to an event field: a canonical path, and whether `.lower()` was applied.
#[derive(Debug, Clone)]
struct FieldRef {
    path: String,
    ci: bool,
}

/// Where a top-level name of the module comes from.
#[derive(Debug, Clone)]
enum Def<'a> {
    /// `import m` / `from m import x`: (module, original name, statement index).
    Import(String, String, usize),
    /// `NAME = expr` at module level: (value, statement index).
    Const(&'a Expr, usize),
    /// `def f(...)`: (function, statement index).
    Func(&'a ast::StmtFunctionDef, usize),
}

/// An allow-list read by `for entry in NAME: if glob(field, entry["k"]) and ...: return False`.
#[derive(Debug, Clone)]
pub struct Allow {
    /// The module constant's name.
    pub name: String,
    /// Entry key → field path.
    pub keys: Vec<(String, String)>,
    /// Shipped entries.
    pub entries: Vec<Value>,
}

/// What the Python of one rule becomes.
#[derive(Debug, Default)]
pub struct Logic {
    /// `detection:`.
    pub detection: Value,
    /// `lists:` (canonical name → values).
    pub lists: Map<String, Value>,
    /// `allowlists:`.
    pub allows: Vec<Allow>,
    /// `alert.title`.
    pub title: Option<String>,
    /// `alert.dedup`.
    pub dedup: Vec<String>,
    /// `alert.context`.
    pub context: Vec<String>,
    /// `targets.panther.prelude`.
    pub prelude: Option<String>,
    /// Parts kept opaque or verbatim, or left out (`detection: ...` / `metadata: ...`).
    pub parts: Vec<String>,
    /// Did the detection keep opaque Python?
    pub opaque: bool,
}

/// The Panther helpers rulecast knows, and how they map (see [`helpers`]).
const SUCCESS: &[&str] = &["aws_cloudtrail_success"];

/// The converter's state for one module.
struct Py<'a> {
    src: &'a str,
    defs: HashMap<String, Def<'a>>,
    /// The rule function's event parameter.
    root: String,
    /// Module names the opaque text and kept functions use.
    used: BTreeSet<String>,
    /// `lists:` collected.
    lists: Map<String, Value>,
    /// Inlining depth guard.
    depth: usize,
}

fn s(e: &Expr) -> Option<&str> {
    match e {
        Expr::Constant(c) => match &c.value {
            Constant::Str(s) => Some(s.as_str()),
            _ => None,
        },
        _ => None,
    }
}

fn scalar(e: &Expr) -> Option<Value> {
    match e {
        Expr::Constant(c) => match &c.value {
            Constant::Str(s) => Some(json!(s)),
            Constant::Bool(b) => Some(json!(b)),
            Constant::Int(i) => i.to_string().parse::<i64>().ok().map(|n| json!(n)),
            Constant::Float(f) => serde_json::Number::from_f64(*f).map(Value::Number),
            _ => None,
        },
        Expr::UnaryOp(u) if matches!(u.op, ast::UnaryOp::USub) => match scalar(&u.operand)? {
            Value::Number(n) => n.as_i64().map(|i| json!(-i)).or_else(|| n.as_f64().map(|f| json!(-f))),
            _ => None,
        },
        _ => None,
    }
}

fn is_none(e: &Expr) -> bool {
    matches!(e, Expr::Constant(c) if matches!(c.value, Constant::None))
}

fn name_of(e: &Expr) -> Option<&str> {
    match e {
        Expr::Name(n) => Some(n.id.as_str()),
        _ => None,
    }
}

/// Module names as canonical list names: `SECURITY_CONFIG_ACTIONS` → `SecurityConfigActions`.
pub fn list_name(constant: &str) -> String {
    let mut out = String::new();
    for part in constant.split('_').filter(|p| !p.is_empty()) {
        let mut cs = part.chars();
        if let Some(c) = cs.next() {
            out.push(c.to_ascii_uppercase());
            out.extend(cs.map(|c| c.to_ascii_lowercase()));
        }
    }
    if out.is_empty() || !out.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) {
        format!("List{out}")
    } else {
        out
    }
}

/// Does the canonical taxonomy know this path? (only known fields become predicates)
fn known_field(path: &str) -> bool {
    crate::fields::resolve(path).is_ok()
}

/// Panther's data model for CloudTrail (`event.udm(name)`), where it is one field.
const UDM: &[(&str, &str)] = &[
    ("actor_user", "@actor_user"),
    ("source_ip", "sourceIPAddress"),
    ("user_agent", "userAgent"),
    ("user", "responseElements.user.userName"),
    ("user_account_id", "responseElements.user.userId"),
];

fn join_path(base: &str, key: &Value) -> Option<String> {
    match key {
        Value::String(k) if !k.is_empty() && !k.contains(['.', '[', ']', ' ']) => {
            Some(if base.is_empty() { k.clone() } else { format!("{base}.{k}") })
        }
        Value::Number(n) if !base.is_empty() => n.as_i64().map(|i| format!("{base}[{i}]")),
        _ => None,
    }
}

enum Base {
    Root,
    Field(FieldRef),
}

impl<'a> Py<'a> {
    fn text(&self, r: ast::text_size::TextRange) -> &'a str {
        self.src.get(r.start().to_usize()..r.end().to_usize()).unwrap_or("")
    }

    /// The event itself, or a field of it.
    fn base(&self, e: &'a Expr, env: &Env<'a>) -> Option<Base> {
        if let Some(n) = name_of(e) {
            if let Some((x, scope)) = env.get(n) {
                return self.base(x, scope);
            }
            if n == self.root {
                return Some(Base::Root);
            }
            return None;
        }
        self.field_raw(e, env).map(Base::Field)
    }

    /// A field read, possibly not in the taxonomy.
    fn field_raw(&self, e: &'a Expr, env: &Env<'a>) -> Option<FieldRef> {
        match e {
            Expr::Name(n) => match env.get(n.id.as_str()) {
                Some((x, scope)) => self.field_raw(x, scope),
                None => None,
            },
            // `event.get("x") or ""` / `... or {}` reads the same field
            Expr::BoolOp(b) if matches!(b.op, ast::BoolOp::Or) && b.values.len() == 2 => {
                let f = self.field_raw(&b.values[0], env)?;
                matches!(&b.values[1], Expr::Constant(_) | Expr::Dict(_) | Expr::List(_)).then_some(f)
            }
            Expr::Subscript(sub) => {
                let key = scalar(&sub.slice)?;
                match self.base(&sub.value, env)? {
                    Base::Root => Some(FieldRef { path: join_path("", &key)?, ci: false }),
                    Base::Field(f) if !f.ci => Some(FieldRef { path: join_path(&f.path, &key)?, ci: false }),
                    Base::Field(_) => None,
                }
            }
            Expr::Call(call) => {
                let kw_ok = call.keywords.iter().all(|k| k.arg.as_ref().is_some_and(|a| a.as_str() == "default"));
                match call.func.as_ref() {
                    Expr::Attribute(at) => {
                        let attr = at.attr.as_str();
                        match attr {
                            "lower" | "casefold" if call.args.is_empty() => {
                                let f = self.field_raw(&at.value, env)?;
                                Some(FieldRef { path: f.path, ci: true })
                            }
                            "get" if kw_ok && !call.args.is_empty() && call.args.len() <= 2 => {
                                let key = scalar(&call.args[0])?;
                                match self.base(&at.value, env)? {
                                    Base::Root => Some(FieldRef { path: join_path("", &key)?, ci: false }),
                                    Base::Field(f) if !f.ci => {
                                        Some(FieldRef { path: join_path(&f.path, &key)?, ci: false })
                                    }
                                    Base::Field(_) => None,
                                }
                            }
                            "deep_get" | "deep_walk" if kw_ok && !call.args.is_empty() => {
                                let mut path = match self.base(&at.value, env)? {
                                    Base::Root => String::new(),
                                    Base::Field(f) if !f.ci => f.path,
                                    Base::Field(_) => return None,
                                };
                                for a in &call.args {
                                    path = join_path(&path, &scalar(a)?)?;
                                }
                                Some(FieldRef { path, ci: false })
                            }
                            "udm" if call.args.len() == 1 && matches!(self.base(&at.value, env), Some(Base::Root)) => {
                                let n = s(&call.args[0])?;
                                UDM.iter().find(|u| u.0 == n).map(|u| FieldRef { path: u.1.to_string(), ci: false })
                            }
                            _ => None,
                        }
                    }
                    Expr::Name(f) if matches!(f.id.as_str(), "deep_get" | "deep_walk") && kw_ok && call.args.len() >= 2 => {
                        if !self.is_helper(f.id.as_str()) {
                            return None;
                        }
                        let mut path = match self.base(&call.args[0], env)? {
                            Base::Root => String::new(),
                            Base::Field(f) if !f.ci => f.path,
                            Base::Field(_) => return None,
                        };
                        for a in &call.args[1..] {
                            path = join_path(&path, &scalar(a)?)?;
                        }
                        Some(FieldRef { path, ci: false })
                    }
                    Expr::Name(f) if f.id.as_str() == "get_actor_user" && call.args.len() == 1 && self.is_helper("get_actor_user") => {
                        matches!(self.base(&call.args[0], env), Some(Base::Root))
                            .then(|| FieldRef { path: "@actor_user".into(), ci: false })
                    }
                    Expr::Name(f) if f.id.as_str() == "str" && call.args.len() == 1 => self.field_raw(&call.args[0], env),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// A field read that the canonical taxonomy knows.
    fn field(&self, e: &'a Expr, env: &Env<'a>) -> Option<FieldRef> {
        self.field_raw(e, env).filter(|f| known_field(&f.path))
    }

    /// Is `name` a Panther helper imported from a `panther_*` module?
    fn is_helper(&self, name: &str) -> bool {
        matches!(self.defs.get(name), Some(Def::Import(m, orig, _)) if m.starts_with("panther") && orig == name)
    }

    /// Constant values: a literal collection, a string, or a module constant (→ `lists:`).
    fn values(&mut self, e: &'a Expr, env: &Env<'a>) -> Option<(Vec<Value>, Option<String>)> {
        match e {
            Expr::List(ast::ExprList { elts, .. })
            | Expr::Tuple(ast::ExprTuple { elts, .. })
            | Expr::Set(ast::ExprSet { elts, .. }) => Some((elts.iter().map(scalar).collect::<Option<Vec<_>>>()?, None)),
            Expr::Call(c) if matches!(name_of(&c.func), Some("set" | "frozenset" | "tuple" | "list")) && c.args.len() == 1 => {
                self.values(&c.args[0], env)
            }
            // `DICT.keys()`: the keys
            Expr::Call(c) if c.args.is_empty() && matches!(c.func.as_ref(), Expr::Attribute(a) if a.attr.as_str() == "keys") => {
                let Expr::Attribute(a) = c.func.as_ref() else { return None };
                self.values(&a.value, env)
            }
            Expr::Name(n) => {
                if let Some((x, scope)) = env.get(n.id.as_str()) {
                    let (x, scope) = (*x, scope.clone());
                    return self.values(x, &scope).map(|(v, _)| (v, None));
                }
                let Some(Def::Const(x, _)) = self.defs.get(n.id.as_str()) else { return None };
                let x = *x;
                let (vals, _) = self.values(x, &Env::default())?;
                if vals.iter().all(Value::is_string) && vals.len() > 1 {
                    let name = list_name(n.id.as_str());
                    self.lists.insert(name.clone(), Value::Array(vals.clone()));
                    Some((vals, Some(name)))
                } else {
                    Some((vals, None))
                }
            }
            Expr::Dict(d) => {
                // `x in DICT` tests the keys
                Some((d.keys.iter().map(|k| k.as_ref().and_then(scalar)).collect::<Option<Vec<_>>>()?, None))
            }
            _ => None,
        }
    }

    /// Strings only (for prefixes, globs, regexes).
    fn strings(&mut self, e: &'a Expr, env: &Env<'a>) -> Option<Vec<String>> {
        if let Some(Value::String(x)) = env.constant(e) {
            return Some(vec![x]);
        }
        if let Some(n) = name_of(e) {
            if let Some((x, scope)) = env.get(n) {
                let (x, scope) = (*x, scope.clone());
                return self.strings(x, &scope);
            }
            if let Some(Def::Const(x, _)) = self.defs.get(n) {
                let x = *x;
                if let Some(v) = s(x) {
                    return Some(vec![v.to_string()]);
                }
            }
        }
        let (v, _) = self.values(e, env)?;
        v.iter().map(|x| x.as_str().map(str::to_string)).collect()
    }

    /// A predicate on a field, respecting `.lower()`.
    fn pred_on(&self, f: &FieldRef, op: &str, vals: Vec<Value>, list: Option<String>) -> C {
        if f.ci {
            // `x.lower() == "Abc"` never holds: drop values that are not lower case
            let vals: Vec<Value> = vals
                .into_iter()
                .filter(|v| v.as_str().is_none_or(|s| s.to_lowercase() == s))
                .collect();
            if vals.is_empty() {
                return C::F;
            }
            return C::N(pred(&f.path, op, vals, true));
        }
        if let Some(l) = list {
            let mut m = Map::new();
            m.insert("field".into(), json!(f.path));
            m.insert("op".into(), json!("in"));
            m.insert("list".into(), json!(l));
            return C::N(Value::Object(m));
        }
        if vals.is_empty() {
            return C::F;
        }
        C::N(pred(&f.path, op, vals, false))
    }

    /// A boolean expression → condition; what cannot be structured becomes opaque Python.
    fn cond(&mut self, e: &'a Expr, env: &Env<'a>) -> Result<C, Why> {
        match self.cond_structured(e, env) {
            Ok(c) => Ok(c),
            Err(why) => self.opaque(e, env, &why),
        }
    }

    fn opaque(&mut self, e: &'a Expr, env: &Env<'a>, why: &str) -> Result<C, Why> {
        let text = self.expr_text(e, env)?;
        let mut m = Map::new();
        m.insert("lang".into(), json!("python"));
        m.insert("text".into(), json!(text));
        m.insert("reason".into(), json!(why));
        Ok(C::N(json!({ "opaque": Value::Object(m) })))
    }

    fn cond_structured(&mut self, e: &'a Expr, env: &Env<'a>) -> Result<C, Why> {
        match e {
            Expr::BoolOp(b) => {
                let mut acc = if matches!(b.op, ast::BoolOp::And) { C::T } else { C::F };
                for v in &b.values {
                    let c = self.cond(v, env)?;
                    acc = if matches!(b.op, ast::BoolOp::And) { and2(acc, c) } else { or2(acc, c) };
                }
                Ok(merge_any(acc))
            }
            Expr::UnaryOp(u) if matches!(u.op, ast::UnaryOp::Not) => {
                // `not field` is "absent, null or empty" for a field the taxonomy knows as text
                // (for booleans, numbers and free-form paths it stays opaque)
                if let Some(f) = self.field(&u.operand, env) {
                    let text_field = crate::fields::resolve(&f.path)
                        .is_ok_and(|x| matches!(x.kind, crate::fields::Kind::String | crate::fields::Kind::Datetime));
                    if !f.ci && text_field {
                        return Ok(C::N(pred(&f.path, "empty", vec![json!(true)], false)));
                    }
                }
                Ok(neg(self.cond(&u.operand, env)?))
            }
            Expr::Constant(c) => match &c.value {
                Constant::Bool(true) => Ok(C::T),
                Constant::Bool(false) | Constant::None => Ok(C::F),
                _ => Err("a constant that is not a boolean".into()),
            },
            Expr::Name(n) => match env.get(n.id.as_str()) {
                Some((x, scope)) => {
                    let (x, scope) = (*x, scope.clone());
                    self.cond(x, &scope)
                }
                None => Err(format!("the value of `{}`", n.id)),
            },
            Expr::Compare(cmp) => {
                let mut acc = C::T;
                let mut left: &'a Expr = &cmp.left;
                for (op, right) in cmp.ops.iter().zip(cmp.comparators.iter()) {
                    acc = and2(acc, self.compare(left, *op, right, env)?);
                    left = right;
                }
                Ok(acc)
            }
            Expr::Call(call) => self.call(call, env),
            _ => {
                if let Some(f) = self.field(e, env) {
                    // truthiness of a field: present and not empty (a boolean field stays opaque)
                    if !f.ci && !matches!(crate::fields::resolve(&f.path).map(|x| x.kind), Ok(crate::fields::Kind::Bool)) {
                        return Err(format!("the truthiness of `{}` (false also for 0, false, [] and {{}})", f.path));
                    }
                }
                Err("an expression rulecast does not read as a condition".into())
            }
        }
    }

    fn compare(&mut self, left: &'a Expr, op: ast::CmpOp, right: &'a Expr, env: &Env<'a>) -> Result<C, Why> {
        use ast::CmpOp as O;
        let lf = self.field(left, env);
        let rf = self.field(right, env);
        let bad = || Err::<C, Why>("a comparison rulecast cannot make structured".into());
        match op {
            O::Eq | O::NotEq | O::Is | O::IsNot => {
                let negated = matches!(op, O::NotEq | O::IsNot);
                let (f, other) = match (&lf, &rf) {
                    (Some(f), None) => (f.clone(), right),
                    (None, Some(f)) => (f.clone(), left),
                    _ => return bad(),
                };
                let c = if is_none(other) {
                    C::N(pred(&f.path, "exists", vec![json!(false)], false))
                } else if let Some(v) = env.constant(other).or_else(|| self.strings(other, env).filter(|v| v.len() == 1).map(|v| json!(v[0]))) {
                    if matches!(op, O::Is | O::IsNot) && !v.is_boolean() {
                        return bad();
                    }
                    self.pred_on(&f, "eq", vec![v], None)
                } else {
                    return bad();
                };
                Ok(if negated { neg(c) } else { c })
            }
            O::In | O::NotIn => {
                let c = if let Some(f) = lf {
                    let Some((vals, list)) = self.values(right, env) else { return bad() };
                    let (vals, list) = if f.ci { (vals, None) } else { (vals, list) };
                    self.pred_on(&f, "in", vals, list)
                } else if let (Some(f), Some(Value::String(sub))) = (rf, env.constant(left)) {
                    self.pred_on(&f, "contains", vec![json!(sub)], None)
                } else {
                    return bad();
                };
                Ok(if matches!(op, O::NotIn) { neg(c) } else { c })
            }
            O::Lt | O::LtE | O::Gt | O::GtE => {
                let (f, n, flip) = match (&lf, &rf, env.constant(right), env.constant(left)) {
                    (Some(f), None, Some(n), _) if n.is_number() => (f.clone(), n, false),
                    (None, Some(f), _, Some(n)) if n.is_number() => (f.clone(), n, true),
                    _ => return bad(),
                };
                let name = match (op, flip) {
                    (O::Lt, false) | (O::Gt, true) => "lt",
                    (O::LtE, false) | (O::GtE, true) => "le",
                    (O::Gt, false) | (O::Lt, true) => "gt",
                    _ => "ge",
                };
                Ok(C::N(pred(&f.path, name, vec![n], false)))
            }
        }
    }

    fn call(&mut self, call: &'a ast::ExprCall, env: &Env<'a>) -> Result<C, Why> {
        let bad = |w: &str| Err::<C, Why>(w.to_string());
        match call.func.as_ref() {
            Expr::Name(n) => {
                let name = n.id.as_str();
                if SUCCESS.contains(&name) && self.is_helper(name) && call.args.len() == 1 {
                    return Ok(C::N(json!({"request_succeeded": true})));
                }
                match name {
                    "pattern_match" | "pattern_match_list" | "fnmatch" if call.args.len() == 2 && self.glob_fn(name) => {
                        let Some(f) = self.field(&call.args[0], env) else { return bad("a glob over something not a field") };
                        let Some(pats) = self.strings(&call.args[1], env) else { return bad("glob patterns that are not constants") };
                        self.globs(&f, pats)
                    }
                    "is_ip_in_network" if call.args.len() == 2 && self.is_helper(name) => {
                        let Some(f) = self.field(&call.args[0], env) else { return bad("a network test of something not a field") };
                        let Some(nets) = self.strings(&call.args[1], env) else { return bad("networks that are not constants") };
                        Ok(C::N(pred(&f.path, "cidr", nets.into_iter().map(Value::String).collect(), false)))
                    }
                    "any" | "all" if call.args.len() == 1 => self.any_all(name == "any", &call.args[0], env),
                    "bool" if call.args.len() == 1 => self.cond_structured(&call.args[0], env),
                    _ => {
                        if let Some(Def::Func(f, _)) = self.defs.get(name) {
                            let f = *f;
                            return self.inline(f, &call.args, env);
                        }
                        bad(&format!("a call of `{name}`"))
                    }
                }
            }
            Expr::Attribute(at) => {
                let attr = at.attr.as_str();
                match attr {
                    "startswith" | "endswith" if call.args.len() == 1 => {
                        let Some(f) = self.field(&at.value, env) else { return bad("a prefix test of something not a field") };
                        let Some(v) = self.strings(&call.args[0], env) else { return bad("prefixes that are not constants") };
                        Ok(self.pred_on(&f, attr, v.into_iter().map(Value::String).collect(), None))
                    }
                    "search" | "match" | "fullmatch" if name_of(&at.value) == Some("re") && self.is_module("re") => {
                        if call.args.len() < 2 {
                            return bad("re call without a subject");
                        }
                        let ci = match (call.args.get(2), call.keywords.first()) {
                            (None, None) => false,
                            (Some(fl), None) => self.re_ignorecase(fl)?,
                            (None, Some(k)) if k.arg.as_ref().is_some_and(|a| a.as_str() == "flags") => self.re_ignorecase(&k.value)?,
                            _ => return bad("re flags rulecast does not read"),
                        };
                        let Some(p) = self.strings(&call.args[0], env).filter(|v| v.len() == 1) else { return bad("a regex that is not a constant") };
                        self.regex(&call.args[1], &p[0], attr, ci, env)
                    }
                    "search" | "match" | "fullmatch" if call.args.len() == 1 => {
                        // PATTERN.search(x) with PATTERN = re.compile("...", flags?)
                        let Some(Def::Const(Expr::Call(c), _)) = name_of(&at.value).and_then(|n| self.defs.get(n)) else {
                            return bad("a method call rulecast does not read");
                        };
                        let c: &'a ast::ExprCall = c;
                        let is_compile = matches!(c.func.as_ref(), Expr::Attribute(a) if a.attr.as_str() == "compile" && name_of(&a.value) == Some("re"));
                        let Some(p) = c.args.first().and_then(s).filter(|_| is_compile) else { return bad("a compiled pattern rulecast does not read") };
                        let ci = match c.args.get(1) {
                            Some(fl) => self.re_ignorecase(fl)?,
                            None => false,
                        };
                        self.regex(&call.args[0], p, attr, ci, env)
                    }
                    "fnmatch" if name_of(&at.value) == Some("fnmatch") && self.is_module("fnmatch") && call.args.len() == 2 => {
                        let Some(f) = self.field(&call.args[0], env) else { return bad("a glob over something not a field") };
                        let Some(pats) = self.strings(&call.args[1], env) else { return bad("glob patterns that are not constants") };
                        self.globs(&f, pats)
                    }
                    _ => bad(&format!("a call of `.{attr}()`")),
                }
            }
            _ => bad("a call rulecast does not read"),
        }
    }

    fn is_module(&self, name: &str) -> bool {
        matches!(self.defs.get(name), Some(Def::Import(m, o, _)) if m == name && o == name)
    }

    fn glob_fn(&self, name: &str) -> bool {
        match name {
            "fnmatch" => matches!(self.defs.get("fnmatch"), Some(Def::Import(m, o, _)) if m == "fnmatch" && o == "fnmatch"),
            other => self.is_helper(other),
        }
    }

    fn re_ignorecase(&self, e: &Expr) -> Result<bool, Why> {
        match e {
            Expr::Attribute(a) if name_of(&a.value) == Some("re") && matches!(a.attr.as_str(), "I" | "IGNORECASE") => Ok(true),
            _ => Err("re flags rulecast does not read".into()),
        }
    }

    fn regex(&mut self, subject: &'a Expr, pattern: &str, how: &str, ci: bool, env: &Env<'a>) -> Result<C, Why> {
        let Some(f) = self.field(subject, env) else { return Err("a regex over something not a field".into()) };
        let p = match how {
            "match" => format!("^(?:{pattern})"),
            "fullmatch" => format!("^(?:{pattern})$"),
            _ => pattern.to_string(),
        };
        if regex::Regex::new(&p).is_err() {
            return Err("a Python regex outside RE2 syntax".into());
        }
        Ok(C::N(pred(&f.path, "regex", vec![json!(p)], ci || f.ci)))
    }

    fn globs(&mut self, f: &FieldRef, pats: Vec<String>) -> Result<C, Why> {
        if pats.iter().any(|p| p.contains(['[', ']'])) {
            return Err("a glob with `[...]` classes (canonical globs know `*` and `?`)".into());
        }
        Ok(self.pred_on(f, "glob", pats.into_iter().map(Value::String).collect(), None))
    }

    /// `any(P(x) for x in CONSTANTS)`: P for each value.
    fn any_all(&mut self, is_any: bool, arg: &'a Expr, env: &Env<'a>) -> Result<C, Why> {
        let (elt, gens) = match arg {
            Expr::GeneratorExp(g) => (&g.elt, &g.generators),
            Expr::ListComp(g) => (&g.elt, &g.generators),
            _ => return Err("any()/all() over something not a generator".into()),
        };
        let [g] = gens.as_slice() else { return Err("a nested generator".into()) };
        let Some(var) = name_of(&g.target) else { return Err("a generator with a tuple target".into()) };
        if !g.ifs.is_empty() {
            return Err("a generator with `if`".into());
        }
        let iter: &'a Expr = &g.iter;
        let Some((vals, _)) = self.values(iter, env) else { return Err("a generator over something not constant".into()) };
        let mut acc = if is_any { C::F } else { C::T };
        for v in vals {
            let scope = env.with_const(var, v);
            let x = self.cond_structured(elt, &scope)?;
            acc = if is_any { or2(acc, x) } else { and2(acc, x) };
        }
        // the same test over many values of one field: merge into one predicate
        Ok(merge_any(acc))
    }

    /// Inline a module function whose body reads as a condition.
    fn inline(&mut self, f: &'a ast::StmtFunctionDef, args: &'a [Expr], env: &Env<'a>) -> Result<C, Why> {
        if self.depth > 8 || f.args.args.len() != args.len() || f.args.vararg.is_some() || !f.args.kwonlyargs.is_empty() {
            return Err(format!("a call of `{}`", f.name));
        }
        let mut scope = Env::default();
        for (p, a) in f.args.args.iter().zip(args) {
            scope = scope.with(p.def.arg.as_str(), a, env.clone());
        }
        self.depth += 1;
        let body: Vec<&'a Stmt> = f.body.iter().collect();
        let r = self.block(&body, &scope, false);
        self.depth -= 1;
        match r {
            Ok(c) if !contains_opaque(&c) => Ok(c),
            _ => Err(format!("a call of the module function `{}`", f.name)),
        }
    }

    /// A statement list as a condition (falling off the end returns `None`, i.e. false).
    fn block(&mut self, stmts: &[&'a Stmt], env: &Env<'a>, top: bool) -> Result<C, Why> {
        let Some((first, rest)) = stmts.split_first() else { return Ok(C::F) };
        match first {
            Stmt::Return(r) => match &r.value {
                None => Ok(C::F),
                Some(v) => self.cond(v, env),
            },
            Stmt::Pass(_) => self.block(rest, env, top),
            Stmt::Expr(x) if matches!(x.value.as_ref(), Expr::Constant(_)) => self.block(rest, env, top),
            Stmt::Assign(a) if a.targets.len() == 1 => {
                let Some(n) = name_of(&a.targets[0]) else { return Err("an assignment to something not a name".into()) };
                let scope = env.with(n, &a.value, env.clone());
                self.block(rest, &scope, top)
            }
            Stmt::AnnAssign(a) if a.value.is_some() => {
                let (Some(n), Some(v)) = (name_of(&a.target), a.value.as_deref()) else { return Err("an annotated assignment".into()) };
                let scope = env.with(n, v, env.clone());
                self.block(rest, &scope, top)
            }
            Stmt::If(i) => {
                let mut then: Vec<&'a Stmt> = i.body.iter().collect();
                then.extend_from_slice(rest);
                let mut other: Vec<&'a Stmt> = i.orelse.iter().collect();
                other.extend_from_slice(rest);
                let t = self.cond(&i.test, env)?;
                let a = self.block(&then, env, false)?;
                let b = self.block(&other, env, top && i.orelse.is_empty())?;
                Ok(ite(t, a, b))
            }
            Stmt::For(f) if top => Err(format!("a `for` loop over `{}`", self.text(f.iter.range()))),
            Stmt::For(_) => Err("a `for` loop".into()),
            Stmt::Try(_) => Err("a `try` statement".into()),
            Stmt::While(_) => Err("a `while` loop".into()),
            Stmt::With(_) => Err("a `with` statement".into()),
            other => Err(format!("the statement `{}`", self.text(other.range()).lines().next().unwrap_or(""))),
        }
    }

    /// The Python text of an expression, self-contained: locals substituted, comments dropped,
    /// white space folded; module names it uses are recorded for the prelude.
    fn expr_text(&mut self, e: &'a Expr, env: &Env<'a>) -> Result<String, Why> {
        let r = e.range();
        let (start, end) = (r.start().to_usize(), r.end().to_usize());
        let text = self.src.get(start..end).ok_or("a range outside the source")?;
        // parenthesise so that the lexer sees one expression even across lines
        let wrapped = format!("({text})");
        let toks: Vec<_> = lexer::lex(&wrapped, Mode::Expression)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| "an expression the lexer cannot read".to_string())?;
        let mut out = String::new();
        let mut prev_end = 0usize;
        let mut prev_tok: Option<&Tok> = None;
        let mut comp_vars: BTreeSet<String> = BTreeSet::new();
        for (i, (tok, range)) in toks.iter().enumerate() {
            let (ts, te) = (range.start().to_usize(), range.end().to_usize());
            if matches!(tok, Tok::Newline | Tok::EndOfFile) {
                continue;
            }
            if i > 0 && ts > prev_end && !out.is_empty() {
                let gap = &wrapped[prev_end..ts];
                if !gap.is_empty() {
                    out.push(' ');
                }
            }
            let piece = &wrapped[ts..te];
            prev_end = te;
            let next = toks.get(i + 1).map(|t| &t.0);
            if let Tok::Name { name } = tok {
                let after_dot = matches!(prev_tok, Some(Tok::Dot));
                let is_kw = matches!(next, Some(Tok::Equal));
                if matches!(prev_tok, Some(Tok::For)) {
                    comp_vars.insert(name.clone());
                }
                if !after_dot && !is_kw && !comp_vars.contains(name) {
                    if let Some((x, scope)) = env.get(name) {
                        let (x, scope) = (*x, scope.clone());
                        if name_of(x) == Some(name.as_str()) && scope.get(name).is_none() && name == &self.root {
                            out.push_str("event");
                        } else {
                            let inner = self.expr_text(x, &scope)?;
                            out.push('(');
                            out.push_str(&inner);
                            out.push(')');
                        }
                        prev_tok = Some(tok);
                        continue;
                    }
                    if name == &self.root {
                        out.push_str("event");
                        prev_tok = Some(tok);
                        continue;
                    }
                    if self.defs.contains_key(name.as_str()) {
                        self.used.insert(name.clone());
                    }
                }
            }
            out.push_str(piece);
            prev_tok = Some(tok);
        }
        // drop the parentheses added above
        let out = out.trim();
        let out = out.strip_prefix('(').and_then(|o| o.strip_suffix(')')).unwrap_or(out).trim().to_string();
        if comp_vars.iter().any(|v| env.get(v).is_some()) {
            return Err("a generator variable that shadows a local".into());
        }
        Ok(out)
    }
}

fn contains_opaque(c: &C) -> bool {
    match c {
        C::N(v) => v.to_string().contains("\"opaque\""),
        _ => false,
    }
}

fn ite(t: C, a: C, b: C) -> C {
    match (&a, &b) {
        _ if a == b => a,
        (C::T, C::F) => t,
        (C::F, C::T) => neg(t),
        (C::F, _) => and2(neg(t), b),
        (_, C::F) => and2(t, a),
        (C::T, _) => or2(t, b),
        (_, C::T) => or2(neg(t), a),
        _ => or2(and2(t.clone(), a), and2(neg(t), b)),
    }
}

/// `any` of predicates with one field, op and case → one predicate with their values.
fn merge_any(c: C) -> C {
    let C::N(v) = &c else { return c };
    let Some(kids) = v.get("any").and_then(Value::as_array) else { return c };
    let key = |k: &Value| -> Option<(String, String, Option<String>)> {
        let o = k.as_object()?;
        if o.contains_key("list") {
            return None;
        }
        Some((
            o.get("field")?.as_str()?.to_string(),
            match o.get("op")?.as_str()? {
                "in" => "eq".to_string(),
                other => other.to_string(),
            },
            o.get("case").and_then(Value::as_str).map(str::to_string),
        ))
    };
    let Some(k0) = kids.first().and_then(key) else { return c };
    if !kids.iter().all(|k| key(k).as_ref() == Some(&k0)) {
        return c;
    }
    let mut vals = vec![];
    for k in kids {
        match (k.get("value"), k.get("values").and_then(Value::as_array)) {
            (Some(x), _) => vals.push(x.clone()),
            (_, Some(xs)) => vals.extend(xs.iter().cloned()),
            _ => return c,
        }
    }
    let op = if k0.1 == "eq" { "in" } else { k0.1.as_str() };
    C::N(pred(&k0.0, op, vals, k0.2.is_some()))
}

/// Top-level names each statement defines.
fn defs_of(suite: &[Stmt]) -> HashMap<String, Def<'_>> {
    let mut defs = HashMap::new();
    for (i, st) in suite.iter().enumerate() {
        match st {
            Stmt::Import(im) => {
                for a in &im.names {
                    let full = a.name.as_str();
                    let local = a.asname.as_ref().map_or_else(|| full.split('.').next().unwrap_or(full), |x| x.as_str());
                    defs.insert(local.to_string(), Def::Import(full.to_string(), local.to_string(), i));
                }
            }
            Stmt::ImportFrom(im) => {
                let m = im.module.as_ref().map_or("", |m| m.as_str());
                for a in &im.names {
                    let local = a.asname.as_ref().unwrap_or(&a.name).as_str();
                    defs.insert(local.to_string(), Def::Import(m.to_string(), a.name.to_string(), i));
                }
            }
            Stmt::Assign(a) => {
                for t in &a.targets {
                    if let Some(n) = name_of(t) {
                        defs.insert(n.to_string(), Def::Const(&a.value, i));
                    }
                }
            }
            Stmt::AnnAssign(a) => {
                if let (Some(n), Some(v)) = (name_of(&a.target), a.value.as_deref()) {
                    defs.insert(n.to_string(), Def::Const(v, i));
                }
            }
            Stmt::FunctionDef(f) => {
                defs.insert(f.name.to_string(), Def::Func(f, i));
            }
            _ => {}
        }
    }
    defs
}

/// The alert functions Panther knows besides `rule`.
pub const ALERT_FUNCTIONS: &[&str] =
    &["title", "dedup", "alert_context", "severity", "description", "reference", "runbook", "destinations"];

/// Read one rule module. `Err` is the reason the whole module cannot be imported (no `rule`).
pub fn read(src: &str, suite: &[Stmt]) -> Result<Logic, (String, usize)> {
    let defs = defs_of(suite);
    let Some(Def::Func(rule_fn, _)) = defs.get("rule") else {
        return Err(("the module defines no `rule(event)` function".into(), 0));
    };
    let rule_fn: &ast::StmtFunctionDef = rule_fn;
    if rule_fn.args.args.len() != 1 {
        return Err(("`rule` must take one argument (the event)".into(), rule_fn.range.start().to_usize()));
    }
    let mut py = Py {
        src,
        root: rule_fn.args.args[0].def.arg.to_string(),
        defs: defs.clone(),
        used: BTreeSet::new(),
        lists: Map::new(),
        depth: 0,
    };
    let mut logic = Logic::default();
    // allow-lists at the top of the body
    let mut body: Vec<&Stmt> = vec![];
    for st in &rule_fn.body {
        if let Some(a) = allow_loop(&mut py, st) {
            logic.allows.push(a);
        } else {
            body.push(st);
        }
    }
    // the mock unwrapping that makes PAT's `Mocks` of an allow-list work:
    // `global NAME` and `if callable(NAME): NAME = json.loads(NAME())`
    let allow_names: Vec<String> = logic.allows.iter().map(|a| a.name.clone()).collect();
    body.retain(|st| match st {
        Stmt::Global(g) => !g.names.iter().all(|n| allow_names.iter().any(|a| a == n.as_str())),
        Stmt::If(i) => !mock_unwrap(i).is_some_and(|n| allow_names.contains(&n)),
        _ => true,
    });
    let mut kept: Vec<String> = vec![];
    let env = Env::default();
    match py.block(&body, &env, true) {
        Ok(c) => {
            logic.detection = match c {
                C::N(v) => v,
                C::T => opaque_node("True", "the rule matches every event"),
                C::F => opaque_node("False", "the rule matches no event"),
            };
            logic.opaque = logic.detection.to_string().contains("\"opaque\"");
            if logic.opaque {
                collect_opaque_reasons(&logic.detection, &mut logic.parts);
            }
        }
        Err(why) => {
            logic.detection = opaque_node("_panther_rule(event)", &format!("rule() uses {why}"));
            logic.opaque = true;
            logic.parts.push(format!("detection: rule() kept as Python (`_panther_rule` in targets.panther.prelude): it uses {why}"));
            py.lists.clear();
            logic.allows.clear();
            kept.push("rule".into());
        }
    }
    logic.lists = py.lists.clone();
    // alert functions
    for name in ALERT_FUNCTIONS {
        let Some(Def::Func(f, _)) = defs.get(*name) else { continue };
        let f: &ast::StmtFunctionDef = f;
        let done = match *name {
            "title" => alert_text(&mut py, f).map(|t| logic.title = Some(t)).is_some(),
            "dedup" => alert_dedup(&mut py, f).map(|d| logic.dedup = d).is_some(),
            "alert_context" => match alert_context(&mut py, f) {
                Some((ctx, note)) => {
                    logic.context = ctx;
                    if let Some(n) = note {
                        logic.parts.push(n);
                    }
                    true
                }
                None => false,
            },
            _ => false,
        };
        if !done {
            kept.push((*name).to_string());
            logic.parts.push(format!("metadata: {name}() kept as Python in targets.panther.prelude"));
        }
    }
    // the prelude: kept functions and what they and the opaque text use, in module order
    for k in &kept {
        py.used.insert(k.clone());
    }
    let (prelude, missing) = prelude(&py, suite);
    for m in missing {
        logic.parts.push(format!(
            "detection: `{m}` comes from a Panther helper module rulecast does not bundle; the prelude imports it (runs only where panther-analysis' global helpers are installed)"
        ));
    }
    logic.prelude = prelude;
    Ok(logic)
}

fn opaque_node(text: &str, why: &str) -> Value {
    json!({"opaque": {"lang": "python", "text": text, "reason": why}})
}

fn collect_opaque_reasons(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            if let Some(op) = o.get("opaque") {
                out.push(format!(
                    "detection: `{}` kept as Python: {}",
                    op["text"].as_str().unwrap_or(""),
                    op["reason"].as_str().unwrap_or("")
                ));
                return;
            }
            for x in o.values() {
                collect_opaque_reasons(x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_opaque_reasons(x, out)),
        _ => {}
    }
}

/// `if callable(NAME) [or isinstance(NAME, MagicMock)]: NAME = json.loads(NAME())` → NAME.
fn mock_unwrap(i: &ast::StmtIf) -> Option<String> {
    if !i.orelse.is_empty() {
        return None;
    }
    let name = match i.test.as_ref() {
        Expr::Call(c) if matches!(name_of(&c.func), Some("callable" | "isinstance")) => name_of(c.args.first()?)?,
        _ => return None,
    };
    let [Stmt::Assign(a)] = i.body.as_slice() else { return None };
    (a.targets.len() == 1 && name_of(&a.targets[0]) == Some(name)).then(|| name.to_string())
}

/// `for entry in NAME: if glob(FIELD, entry["k"]) [and ...]: return False` (nested ifs too).
fn allow_loop<'a>(py: &mut Py<'a>, st: &'a Stmt) -> Option<Allow> {
    let Stmt::For(f) = st else { return None };
    let var = name_of(&f.target)?;
    let name = name_of(&f.iter).or_else(|| {
        // `for entry in _allow_list()` where the helper returns the (possibly mocked) constant
        let Expr::Call(c) = f.iter.as_ref() else { return None };
        let fname = name_of(&c.func)?;
        let Some(Def::Func(h, _)) = py.defs.get(fname) else { return None };
        let src = py.text(h.range);
        let consts: Vec<&String> = py.defs.iter().filter(|(_, d)| matches!(d, Def::Const(..))).map(|(k, _)| k).filter(|k| src.contains(k.as_str())).collect();
        if consts.len() == 1 { Some(consts[0].as_str()) } else { None }
    })?;
    let Some(Def::Const(value, _)) = py.defs.get(name) else { return None };
    let value: &Expr = value;
    if !f.orelse.is_empty() {
        return None;
    }
    // the tests: a chain of nested ifs / `and`s, ending in `return False`
    let mut tests: Vec<&'a Expr> = vec![];
    let mut stmts: &'a [Stmt] = &f.body;
    loop {
        let [Stmt::If(i)] = stmts else { return None };
        if !i.orelse.is_empty() {
            return None;
        }
        match i.test.as_ref() {
            Expr::BoolOp(b) if matches!(b.op, ast::BoolOp::And) => tests.extend(b.values.iter()),
            t => tests.push(t),
        }
        match i.body.as_slice() {
            [Stmt::Return(r)] if matches!(r.value.as_deref(), Some(Expr::Constant(c)) if matches!(c.value, Constant::Bool(false))) => break,
            _ => stmts = &i.body,
        }
    }
    let env = Env::default();
    let mut keys = vec![];
    for t in tests {
        let Expr::Call(c) = t else { return None };
        let fname = match c.func.as_ref() {
            Expr::Name(n) if py.glob_fn(n.id.as_str()) && n.id.as_str() != "pattern_match_list" => n.id.as_str(),
            Expr::Attribute(a) if a.attr.as_str() == "fnmatch" && name_of(&a.value) == Some("fnmatch") => "fnmatch",
            _ => return None,
        };
        let _ = fname;
        let [subject, pat] = c.args.as_slice() else { return None };
        let fr = py.field(subject, &env)?;
        if fr.ci {
            return None;
        }
        let Expr::Subscript(sub) = pat else { return None };
        if name_of(&sub.value) != Some(var) {
            return None;
        }
        let key = s(&sub.slice)?.to_string();
        keys.push((key, fr.path));
    }
    let entries = match value {
        Expr::List(ast::ExprList { elts, .. }) | Expr::Tuple(ast::ExprTuple { elts, .. }) => elts
            .iter()
            .map(|e| {
                let Expr::Dict(d) = e else { return None };
                let mut m = Map::new();
                for (k, v) in d.keys.iter().zip(&d.values) {
                    let k = k.as_ref().and_then(s)?;
                    if !keys.iter().any(|(x, _)| x == k) {
                        return None;
                    }
                    m.insert(k.to_string(), json!(s(v)?));
                }
                Some(Value::Object(m))
            })
            .collect::<Option<Vec<_>>>()?,
        _ => return None,
    };
    Some(Allow { name: name.to_string(), keys, entries })
}

/// A string expression → a canonical text with `{field}` placeholders.
fn text_of<'a>(py: &mut Py<'a>, e: &'a Expr, env: &Env<'a>) -> Option<String> {
    let lit = |t: &str| (!t.contains(['{', '}'])).then(|| t.to_string());
    match e {
        Expr::Constant(_) => lit(s(e)?),
        Expr::JoinedStr(j) => {
            let mut out = String::new();
            for v in &j.values {
                match v {
                    Expr::Constant(_) => out.push_str(&lit(s(v)?)?),
                    Expr::FormattedValue(fv) if fv.format_spec.is_none() => {
                        let f = py.field(&fv.value, env).filter(|f| !f.ci)?;
                        out.push_str(&format!("{{{}}}", f.path));
                    }
                    _ => return None,
                }
            }
            Some(out)
        }
        Expr::BinOp(b) if matches!(b.op, ast::Operator::Add) => {
            Some(text_of(py, &b.left, env)? + &text_of(py, &b.right, env)?)
        }
        Expr::Name(n) => {
            let (x, scope) = env.get(n.id.as_str())?.clone();
            text_of(py, x, &scope)
        }
        Expr::Call(c) if matches!(c.func.as_ref(), Expr::Attribute(a) if a.attr.as_str() == "format") && c.keywords.is_empty() => {
            let Expr::Attribute(a) = c.func.as_ref() else { return None };
            let tpl = s(&a.value)?;
            let pieces: Vec<&str> = tpl.split("{}").collect();
            if pieces.len() != c.args.len() + 1 || pieces.iter().any(|p| p.contains(['{', '}'])) {
                return None;
            }
            let mut out = pieces[0].to_string();
            for (arg, piece) in c.args.iter().zip(&pieces[1..]) {
                let f = py.field(arg, env).filter(|f| !f.ci)?;
                out.push_str(&format!("{{{}}}{piece}", f.path));
            }
            Some(out)
        }
        _ => {
            let f = py.field(e, env).filter(|f| !f.ci)?;
            Some(format!("{{{}}}", f.path))
        }
    }
}

/// The body of a simple alert function: local assignments, then `return X`.
fn returned<'a>(f: &'a ast::StmtFunctionDef) -> Option<(&'a Expr, Env<'a>)> {
    if f.args.args.len() != 1 {
        return None;
    }
    let mut env = Env::default();
    for st in &f.body {
        match st {
            Stmt::Expr(x) if matches!(x.value.as_ref(), Expr::Constant(_)) => {}
            Stmt::Assign(a) if a.targets.len() == 1 => env = env.with(name_of(&a.targets[0])?, &a.value, env.clone()),
            Stmt::Return(r) => return r.value.as_deref().map(|v| (v, env)),
            _ => return None,
        }
    }
    None
}

fn with_param<'a>(py: &Py<'a>, f: &ast::StmtFunctionDef) -> Option<()> {
    (f.args.args[0].def.arg.as_str() == py.root).then_some(())
}

fn alert_text<'a>(py: &mut Py<'a>, f: &'a ast::StmtFunctionDef) -> Option<String> {
    let (e, env) = returned(f)?;
    with_param(py, f)?;
    text_of(py, e, &env)
}

fn alert_dedup<'a>(py: &mut Py<'a>, f: &'a ast::StmtFunctionDef) -> Option<Vec<String>> {
    let (e, env) = returned(f)?;
    with_param(py, f)?;
    // one field, or `":".join([fields])`
    if let Some(fr) = py.field(e, &env).filter(|x| !x.ci) {
        return Some(vec![fr.path]);
    }
    let Expr::Call(c) = e else { return None };
    let Expr::Attribute(a) = c.func.as_ref() else { return None };
    if a.attr.as_str() != "join" || s(&a.value) != Some(":") || c.args.len() != 1 {
        return None;
    }
    let (Expr::List(ast::ExprList { elts, .. }) | Expr::Tuple(ast::ExprTuple { elts, .. })) = &c.args[0] else { return None };
    elts.iter().map(|x| py.field(x, &env).filter(|y| !y.ci).map(|y| y.path)).collect()
}

/// The fields of Panther's `aws_rule_context(event)`.
pub const AWS_RULE_CONTEXT: &[&str] =
    &["eventName", "eventSource", "awsRegion", "recipientAccountId", "sourceIPAddress", "userAgent", "userIdentity"];

fn alert_context<'a>(py: &mut Py<'a>, f: &'a ast::StmtFunctionDef) -> Option<(Vec<String>, Option<String>)> {
    let (e, env) = returned(f)?;
    with_param(py, f)?;
    let mut out = vec![];
    let mut note = None;
    let mut add = |py: &mut Py<'a>, x: &'a Expr, out: &mut Vec<String>| -> Option<()> {
        match x {
            Expr::Call(c) if name_of(&c.func) == Some("aws_rule_context") && py.is_helper("aws_rule_context") => {
                out.extend(AWS_RULE_CONTEXT.iter().map(|s| s.to_string()));
                note = Some("metadata: alert_context: aws_rule_context(event) becomes its seven CloudTrail fields (its placeholders for missing fields and the PantherFlow investigation link are not carried)".to_string());
                Some(())
            }
            Expr::Dict(d) => {
                for (k, v) in d.keys.iter().zip(&d.values) {
                    match k {
                        None => return None,
                        Some(k) => {
                            let key = s(k)?;
                            let fr = py.field(v, &env).filter(|x| !x.ci)?;
                            if fr.path.trim_start_matches('@') != key {
                                return None;
                            }
                            out.push(fr.path);
                        }
                    }
                }
                Some(())
            }
            _ => None,
        }
    };
    match e {
        Expr::BinOp(b) if matches!(b.op, ast::Operator::BitOr) => {
            add(py, &b.left, &mut out)?;
            add(py, &b.right, &mut out)?;
        }
        other => add(py, other, &mut out)?,
    }
    let mut seen = BTreeSet::new();
    out.retain(|x| seen.insert(x.clone()));
    Some((out, note))
}

/// The prelude: the module statements that define the used names (and what those use), in
/// module order; Panther helper imports replaced by rulecast's own small equivalents. Returns
/// also the helper names rulecast cannot supply.
fn prelude(py: &Py<'_>, suite: &[Stmt]) -> (Option<String>, Vec<String>) {
    let mut need: BTreeSet<String> = py.used.clone();
    let mut stack: Vec<String> = need.iter().cloned().collect();
    let mut helper_names: BTreeSet<String> = BTreeSet::new();
    let mut missing = vec![];
    while let Some(n) = stack.pop() {
        let Some(d) = py.defs.get(&n) else { continue };
        let idx = match d {
            Def::Import(m, orig, i) => {
                if m.starts_with("panther") {
                    if helpers::source(orig).is_some() {
                        for dep in helpers::closure(orig) {
                            helper_names.insert(dep);
                        }
                    } else {
                        missing.push(format!("{m}.{orig}"));
                    }
                }
                *i
            }
            Def::Const(_, i) | Def::Func(_, i) => *i,
        };
        let text = py.text(suite[idx].range());
        for name in names_in(text) {
            if py.defs.contains_key(&name) && need.insert(name.clone()) {
                stack.push(name);
            }
        }
    }
    if need.is_empty() {
        return (None, missing);
    }
    let mut out: Vec<String> = vec![];
    let mut std_imports: BTreeSet<String> = BTreeSet::new();
    for h in &helper_names {
        for m in helpers::imports(h) {
            std_imports.insert(m.to_string());
        }
    }
    let mut emitted_helpers = false;
    for (i, st) in suite.iter().enumerate() {
        let defines: Vec<&String> = py
            .defs
            .iter()
            .filter(|(k, d)| need.contains(*k) && matches!(d, Def::Import(_, _, j) | Def::Const(_, j) | Def::Func(_, j) if *j == i))
            .map(|(k, _)| k)
            .collect();
        if defines.is_empty() {
            continue;
        }
        match st {
            Stmt::Import(_) | Stmt::ImportFrom(_) => {
                let from_panther = defines.iter().all(|k| matches!(py.defs.get(*k), Some(Def::Import(m, _, _)) if m.starts_with("panther")));
                if from_panther {
                    // keep only what rulecast cannot supply
                    let keep: Vec<String> = defines
                        .iter()
                        .filter_map(|k| match py.defs.get(*k) {
                            Some(Def::Import(m, o, _)) if helpers::source(o).is_none() => Some(format!("from {m} import {o}")),
                            _ => None,
                        })
                        .collect();
                    out.extend(keep);
                } else {
                    let line = py.text(st.range()).to_string();
                    if !std_imports.contains(line.trim()) {
                        out.push(line);
                    }
                }
            }
            Stmt::FunctionDef(f) if f.name.as_str() == "rule" => {
                if !emitted_helpers {
                    out.extend(helper_block(&helper_names, &std_imports));
                    emitted_helpers = true;
                }
                out.push(rename_def(py.text(st.range()), "_panther_rule"));
            }
            _ => {
                if !emitted_helpers && matches!(st, Stmt::FunctionDef(_)) {
                    out.extend(helper_block(&helper_names, &std_imports));
                    emitted_helpers = true;
                }
                out.push(py.text(st.range()).to_string());
            }
        }
    }
    if !emitted_helpers {
        out.extend(helper_block(&helper_names, &std_imports));
    }
    // imports first
    let (imports, rest): (Vec<String>, Vec<String>) = out.into_iter().partition(|l| l.starts_with("import ") || l.starts_with("from "));
    let mut text = String::new();
    let mut imports: Vec<String> = imports.into_iter().chain(std_imports.iter().cloned()).collect();
    imports.sort();
    imports.dedup();
    for i in &imports {
        text.push_str(i);
        text.push('\n');
    }
    for r in rest {
        if !text.is_empty() {
            text.push_str(if r.starts_with("def ") || text.ends_with("\n\n") { "\n\n" } else { "\n" });
        }
        text.push_str(r.trim_end());
        text.push('\n');
    }
    (Some(text), missing)
}

fn helper_block(names: &BTreeSet<String>, _imports: &BTreeSet<String>) -> Vec<String> {
    helpers::ORDER
        .iter()
        .filter(|n| names.contains(**n))
        .filter_map(|n| helpers::source(n))
        .map(|s| s.trim_end().to_string())
        .collect()
}

/// Names a piece of Python mentions (from the lexer; attribute names included, harmlessly).
pub fn names_in(text: &str) -> BTreeSet<String> {
    lexer::lex(text, Mode::Module)
        .filter_map(Result::ok)
        .filter_map(|(t, _)| match t {
            Tok::Name { name } => Some(name),
            _ => None,
        })
        .collect()
}

/// `def rule(` → `def NEW(` (the first name after `def`).
fn rename_def(text: &str, new: &str) -> String {
    let toks: Vec<_> = lexer::lex(text, Mode::Module).filter_map(Result::ok).collect();
    for w in toks.windows(2) {
        if matches!(w[0].0, Tok::Def) && matches!(w[1].0, Tok::Name { .. }) {
            let (a, b) = (w[1].1.start().to_usize(), w[1].1.end().to_usize());
            return format!("{}{new}{}", &text[..a], &text[b..]);
        }
    }
    text.to_string()
}

/// The top-level functions a prelude defines (parsed), or the parser's message.
pub fn top_level_functions(prelude: &str) -> Result<Vec<String>, String> {
    use rustpython_parser::Parse;
    let suite = ast::Suite::parse(prelude, "<prelude>").map_err(|e| e.error.to_string())?;
    Ok(suite
        .iter()
        .filter_map(|s| match s {
            Stmt::FunctionDef(f) => Some(f.name.to_string()),
            Stmt::AsyncFunctionDef(f) => Some(f.name.to_string()),
            _ => None,
        })
        .collect())
}
