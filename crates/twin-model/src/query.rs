//! The NGSI-LD query languages: `q` filters (ETSI GS CIM 009 clause 4.9), `scopeQ` (clause 4.19) and entity type
//! expressions (clause 4.17), parsed once into compiled matchers that are cheap to evaluate against many entities.

use std::cmp::Ordering;
use std::fmt;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat, Utc};
use regex::{Regex, RegexBuilder};
use serde_json::Value;

use crate::entity::{iri, AttrKind, Attribute, Entity};

/// Deepest parenthesis nesting accepted in `q`, `type` and `scopeQ` expressions.
pub const MAX_NESTING: usize = 32;
/// Longest expression accepted, in bytes.
pub const MAX_QUERY_LEN: usize = 64 * 1024;
/// Largest compiled regular expression, in bytes (protects against pathological patterns).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// A syntax or semantic error in a query expression; the message says what was expected at which position
/// (positions count characters from 0).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct QueryError(pub String);

impl QueryError {
    pub fn new(msg: impl Into<String>) -> QueryError {
        QueryError(msg.into())
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Shared cursor over the characters of an expression
// ---------------------------------------------------------------------------------------------------------------

struct Cursor {
    /// What is being parsed, for error messages ("q", "type", "scopeQ").
    what: &'static str,
    chars: Vec<char>,
    pos: usize,
}

impl Cursor {
    fn new(what: &'static str, input: &str) -> Result<Cursor, QueryError> {
        if input.len() > MAX_QUERY_LEN {
            return Err(QueryError(format!(
                "{what}: expression is too long ({} bytes, at most {MAX_QUERY_LEN} allowed)",
                input.len()
            )));
        }
        if input.is_empty() {
            return Err(QueryError(format!("{what}: expression is empty")));
        }
        Ok(Cursor {
            what,
            chars: input.chars().collect(),
            pos: 0,
        })
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.chars.get(self.pos + n).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn starts_with(&self, s: &str) -> bool {
        s.chars()
            .enumerate()
            .all(|(i, c)| self.chars.get(self.pos + i) == Some(&c))
    }

    fn found(&self, at: usize) -> String {
        match self.chars.get(at) {
            None => "end of expression".to_string(),
            Some(c) if c.is_whitespace() => {
                format!("whitespace {c:?} (spaces are only allowed inside quoted strings)")
            }
            Some(c) => format!("'{c}'"),
        }
    }

    /// "`what`: expected X at position N, found Y".
    fn expected(&self, what: &str) -> QueryError {
        self.expected_at(self.pos, what)
    }

    fn expected_at(&self, at: usize, what: &str) -> QueryError {
        QueryError(format!(
            "{}: expected {what} at position {at}, found {}",
            self.what,
            self.found(at)
        ))
    }

    fn error_at(&self, at: usize, msg: &str) -> QueryError {
        QueryError(format!("{}: {msg} at position {at}", self.what))
    }

    fn text(&self, from: usize, to: usize) -> String {
        self.chars[from.min(self.chars.len())..to.min(self.chars.len())]
            .iter()
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------------------------
// q: data model
// ---------------------------------------------------------------------------------------------------------------

/// A parsed `q` expression. `;` (and) binds tighter than `|` (or).
#[derive(Debug, Clone)]
pub enum Query {
    And(Vec<Query>),
    Or(Vec<Query>),
    Term(QueryTerm),
}

/// One query term: an existence test (`op` None) or a comparison of the attribute path's value.
#[derive(Debug, Clone)]
pub struct QueryTerm {
    pub path: AttrPath,
    /// None: existence test (`attr`, or `!attr` when `negated`).
    pub op: Option<(CmpOp, QValue)>,
    /// `!attr`: the term holds when the path does NOT exist. Only for existence tests.
    pub negated: bool,
}

/// `attr.sub1.sub2[key1][key2]`: an attribute, a path of sub-attributes, a path into the compound JSON value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AttrPath {
    pub attr: String,
    pub sub_path: Vec<String>,
    pub compound: Vec<String>,
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.attr)?;
        for s in &self.sub_path {
            write!(f, ".{s}")?;
        }
        for k in &self.compound {
            write!(f, "[{k}]")?;
        }
        Ok(())
    }
}

/// A comparison operator of the query language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `~=`
    Match,
    /// `!~=`
    NotMatch,
}

impl CmpOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Match => "~=",
            CmpOp::NotMatch => "!~=",
        }
    }
}

/// A date, time or date-time literal (or string value that parses as one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Temporal {
    DateTime(DateTime<Utc>),
    Date(NaiveDate),
    Time(NaiveTime),
}

/// A single query value.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Number(f64),
    Bool(bool),
    /// A quoted string, an unquoted URI, or an unquoted date/time; `temporal` is set when the text parses as a
    /// DateTime, Date or Time, so that comparisons against temporal values are done as times.
    Text {
        text: String,
        temporal: Option<Temporal>,
    },
}

impl Literal {
    fn text(text: String) -> Literal {
        let temporal = parse_temporal(&text);
        Literal::Text { text, temporal }
    }

    fn kind_name(&self) -> &'static str {
        match self {
            Literal::Number(_) => "number",
            Literal::Bool(_) => "boolean",
            Literal::Text { .. } => "string",
        }
    }
}

/// The right-hand side of a comparison.
#[derive(Debug, Clone)]
pub enum QValue {
    One(Literal),
    /// `==a,b,c`: equal to any of them (`!=`: to none of them).
    List(Vec<Literal>),
    /// `==a..b`: inclusive range (`!=`: outside the range).
    Range(Literal, Literal),
    /// `~=regex` / `!~=regex`, compiled at parse time.
    Regex(Regex),
}

// ---------------------------------------------------------------------------------------------------------------
// q: parser
// ---------------------------------------------------------------------------------------------------------------

/// Parses an (already URL-decoded) NGSI-LD `q` expression.
pub fn parse_q(input: &str) -> Result<Query, QueryError> {
    let mut c = Cursor::new("q", input)?;
    let q = parse_q_or(&mut c, 0)?;
    if !c.at_end() {
        return Err(if c.peek() == Some(')') {
            c.error_at(c.pos, "unbalanced ')'")
        } else {
            c.expected("';', '|' or end of expression")
        });
    }
    Ok(q)
}

fn parse_q_or(c: &mut Cursor, depth: usize) -> Result<Query, QueryError> {
    let mut items = vec![parse_q_and(c, depth)?];
    while c.eat('|') {
        items.push(parse_q_and(c, depth)?);
    }
    Ok(if items.len() == 1 {
        items.pop().unwrap_or(Query::Or(Vec::new()))
    } else {
        Query::Or(items)
    })
}

fn parse_q_and(c: &mut Cursor, depth: usize) -> Result<Query, QueryError> {
    let mut items = vec![parse_q_factor(c, depth)?];
    while c.eat(';') {
        items.push(parse_q_factor(c, depth)?);
    }
    Ok(if items.len() == 1 {
        items.pop().unwrap_or(Query::And(Vec::new()))
    } else {
        Query::And(items)
    })
}

fn parse_q_factor(c: &mut Cursor, depth: usize) -> Result<Query, QueryError> {
    if c.peek() == Some('(') {
        let open = c.pos;
        if depth >= MAX_NESTING {
            return Err(c.error_at(
                open,
                &format!("parentheses nested deeper than {MAX_NESTING} levels"),
            ));
        }
        c.bump();
        let inner = parse_q_or(c, depth + 1)?;
        if !c.eat(')') {
            return Err(c.expected(&format!("')' (to close the '(' opened at position {open})")));
        }
        return Ok(inner);
    }
    Ok(Query::Term(parse_q_term(c)?))
}

/// Characters that may appear in attribute names (compact terms, prefixed names `schema:name`, IRIs without dots).
fn is_name_char(ch: char) -> bool {
    !(ch.is_whitespace()
        || ch.is_control()
        || matches!(
            ch,
            '.' | '['
                | ']'
                | '('
                | ')'
                | ';'
                | '|'
                | ','
                | '='
                | '!'
                | '<'
                | '>'
                | '~'
                | '"'
                | '\''
        ))
}

fn parse_name(c: &mut Cursor, what: &str) -> Result<String, QueryError> {
    let start = c.pos;
    while c.peek().is_some_and(is_name_char) {
        c.pos += 1;
    }
    if c.pos == start {
        return Err(c.expected(what));
    }
    Ok(c.text(start, c.pos))
}

fn parse_attr_path(c: &mut Cursor) -> Result<AttrPath, QueryError> {
    let attr = parse_name(c, "an attribute name")?;
    let mut sub_path = Vec::new();
    while c.eat('.') {
        sub_path.push(parse_name(c, "a sub-attribute name after '.'")?);
    }
    let mut compound = Vec::new();
    while c.peek() == Some('[') {
        let open = c.pos;
        c.bump();
        let start = c.pos;
        while c
            .peek()
            .is_some_and(|ch| ch != ']' && ch != '[' && !ch.is_control())
        {
            c.pos += 1;
        }
        if c.pos == start {
            return Err(c.expected("a member name inside '[...]'"));
        }
        let key = c.text(start, c.pos);
        if !c.eat(']') {
            return Err(c.expected(&format!("']' (to close the '[' opened at position {open})")));
        }
        compound.push(key);
    }
    if c.peek() == Some('.') && !compound.is_empty() {
        return Err(c.error_at(
            c.pos,
            "a sub-attribute path ('.') cannot follow a compound member path ('[...]')",
        ));
    }
    Ok(AttrPath {
        attr,
        sub_path,
        compound,
    })
}

fn parse_op(c: &mut Cursor) -> Option<CmpOp> {
    const OPS: [(&str, CmpOp); 8] = [
        ("==", CmpOp::Eq),
        ("!=", CmpOp::Ne),
        (">=", CmpOp::Ge),
        (">", CmpOp::Gt),
        ("<=", CmpOp::Le),
        ("<", CmpOp::Lt),
        ("~=", CmpOp::Match),
        ("!~=", CmpOp::NotMatch),
    ];
    for (text, op) in OPS {
        if c.starts_with(text) {
            c.pos += text.chars().count();
            return Some(op);
        }
    }
    None
}

fn is_term_end(ch: Option<char>) -> bool {
    matches!(ch, None | Some(';') | Some('|') | Some(')'))
}

fn parse_q_term(c: &mut Cursor) -> Result<QueryTerm, QueryError> {
    let negated = c.peek() == Some('!') && c.peek_at(1).is_some_and(is_name_char);
    if negated {
        c.bump();
    }
    if c.peek() == Some(')') || is_term_end(c.peek()) {
        return Err(c.expected("an attribute name or '('"));
    }
    let path = parse_attr_path(c)?;
    if is_term_end(c.peek()) {
        return Ok(QueryTerm {
            path,
            op: None,
            negated,
        });
    }
    let op_pos = c.pos;
    let Some(op) = parse_op(c) else {
        return Err(c.expected(
            "an operator (==, !=, >, >=, <, <=, ~=, !~=), '.', '[', ';', '|', ')' or end of expression",
        ));
    };
    if negated {
        return Err(c.error_at(
            op_pos,
            "'!' can only negate an existence test (write attr!=value instead)",
        ));
    }
    let value = match op {
        CmpOp::Match | CmpOp::NotMatch => QValue::Regex(parse_regex(c)?),
        _ => parse_qvalue(c, op)?,
    };
    if !is_term_end(c.peek()) {
        return Err(c.expected("';', '|', ')' or end of expression after the value"));
    }
    Ok(QueryTerm {
        path,
        op: Some((op, value)),
        negated: false,
    })
}

fn parse_qvalue(c: &mut Cursor, op: CmpOp) -> Result<QValue, QueryError> {
    let first_pos = c.pos;
    let first = parse_literal(c)?;
    let equality = matches!(op, CmpOp::Eq | CmpOp::Ne);
    if c.starts_with("..") {
        let dots = c.pos;
        if !equality {
            return Err(c.error_at(
                dots,
                &format!(
                    "a range can only be used with == or !=, not {}",
                    op.as_str()
                ),
            ));
        }
        c.pos += 2;
        let second_pos = c.pos;
        let second = parse_literal(c)?;
        check_range(c, &first, first_pos, &second, second_pos)?;
        return Ok(QValue::Range(first, second));
    }
    if c.peek() == Some(',') {
        if !equality {
            return Err(c.error_at(
                c.pos,
                &format!(
                    "a value list can only be used with == or !=, not {}",
                    op.as_str()
                ),
            ));
        }
        let mut items = vec![first];
        while c.eat(',') {
            items.push(parse_literal(c)?);
        }
        return Ok(QValue::List(items));
    }
    if !equality && matches!(first, Literal::Bool(_)) {
        return Err(c.error_at(
            first_pos,
            &format!(
                "boolean values can only be compared with == or !=, not {}",
                op.as_str()
            ),
        ));
    }
    Ok(QValue::One(first))
}

fn check_range(
    c: &Cursor,
    lo: &Literal,
    lo_pos: usize,
    hi: &Literal,
    hi_pos: usize,
) -> Result<(), QueryError> {
    match (lo, hi) {
        (Literal::Bool(_), _) => Err(c.error_at(lo_pos, "a range bound cannot be a boolean")),
        (_, Literal::Bool(_)) => Err(c.error_at(hi_pos, "a range bound cannot be a boolean")),
        (Literal::Number(a), Literal::Number(b)) if a > b => Err(c.error_at(
            lo_pos,
            &format!("empty range: lower bound {a} is greater than upper bound {b}"),
        )),
        (Literal::Number(_), Literal::Number(_)) | (Literal::Text { .. }, Literal::Text { .. }) => {
            Ok(())
        }
        _ => Err(c.error_at(
            hi_pos,
            &format!(
                "range bounds must have the same type, found {} and {}",
                lo.kind_name(),
                hi.kind_name()
            ),
        )),
    }
}

/// A quoted string: `\"` is a quote, `\\` a backslash; other escapes are kept verbatim. With `regex_mode` only `\"`
/// is unescaped, so that regex escapes such as `\d` or `\\` reach the regex engine untouched.
fn parse_quoted(c: &mut Cursor, regex_mode: bool) -> Result<String, QueryError> {
    let open = c.pos;
    c.bump();
    let mut s = String::new();
    loop {
        match c.bump() {
            None => return Err(c.error_at(open, "unterminated string starting")),
            Some('"') => return Ok(s),
            Some('\\') => match c.peek() {
                Some('"') => {
                    c.bump();
                    s.push('"');
                }
                Some('\\') if !regex_mode => {
                    c.bump();
                    s.push('\\');
                }
                Some('\\') => {
                    c.bump();
                    s.push_str("\\\\");
                }
                _ => s.push('\\'),
            },
            Some(ch) => s.push(ch),
        }
    }
}

fn parse_literal(c: &mut Cursor) -> Result<Literal, QueryError> {
    if c.peek() == Some('"') {
        let s = parse_quoted(c, false)?;
        return Ok(Literal::text(s));
    }
    let start = c.pos;
    while let Some(ch) = c.peek() {
        if matches!(ch, ';' | '|' | '(' | ')' | ',' | '"') || ch.is_whitespace() || ch.is_control()
        {
            break;
        }
        if ch == '.' && c.peek_at(1) == Some('.') {
            break;
        }
        c.pos += 1;
    }
    if c.pos == start {
        return Err(c.expected("a value (number, quoted string, true/false, date/time or URI)"));
    }
    if c.peek() == Some('"') {
        return Err(c.error_at(c.pos, "unexpected '\"' inside an unquoted value"));
    }
    let token = c.text(start, c.pos);
    match token.as_str() {
        "true" => return Ok(Literal::Bool(true)),
        "false" => return Ok(Literal::Bool(false)),
        _ => {}
    }
    if looks_numeric(&token) {
        return match token.parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(Literal::Number(n)),
            _ => Err(c.error_at(start, &format!("number {token} is out of range"))),
        };
    }
    Ok(Literal::text(token))
}

/// `-?digits(.digits)?([eE][+-]?digits)?`
fn looks_numeric(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if b.first() == Some(&b'-') || b.first() == Some(&b'+') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let st = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > st
    };
    if !digits(&mut i) {
        return false;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        if !digits(&mut i) {
            return false;
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if !digits(&mut i) {
            return false;
        }
    }
    i == b.len()
}

/// A regex after `~=`/`!~=`: either a quoted string, or the raw text up to the first `;`, `|` or `)` that is not
/// inside the regex's own parentheses, a character class, or escaped.
fn parse_regex(c: &mut Cursor) -> Result<Regex, QueryError> {
    let start = c.pos;
    let pattern = if c.peek() == Some('"') {
        parse_quoted(c, true)?
    } else {
        let mut depth = 0usize;
        let mut in_class = false;
        while let Some(ch) = c.peek() {
            match ch {
                '\\' => {
                    c.pos += 1;
                    if c.bump().is_none() {
                        return Err(c.error_at(c.pos, "regular expression ends with a lone '\\'"));
                    }
                    continue;
                }
                '[' if !in_class => in_class = true,
                ']' if in_class => in_class = false,
                '(' if !in_class => depth += 1,
                ')' if !in_class => {
                    if depth == 0 {
                        break;
                    }
                    depth -= 1;
                }
                ';' | '|' if !in_class && depth == 0 => break,
                _ => {}
            }
            c.pos += 1;
        }
        c.text(start, c.pos)
    };
    if pattern.is_empty() {
        return Err(c.expected_at(start, "a regular expression"));
    }
    compile_regex(&pattern).map_err(|detail| {
        c.error_at(
            start,
            &format!("invalid regular expression {pattern:?} ({detail})"),
        )
    })
}

/// Compiles a client's regular expression with bounded size (q patterns, idPattern); the error is the regex
/// crate's own one-line reason.
pub fn compile_regex(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| {
            e.to_string()
                .lines()
                .last()
                .unwrap_or_default()
                .trim()
                .to_string()
        })
}

// ---------------------------------------------------------------------------------------------------------------
// Temporal literals
// ---------------------------------------------------------------------------------------------------------------

/// Parses a DateTime (RFC 3339, or without offset = UTC), a Date (`YYYY-MM-DD`) or a Time (`HH:MM:SS[.f][Z]`).
pub fn parse_temporal(s: &str) -> Option<Temporal> {
    let b = s.as_bytes();
    if b.len() < 8 || !b[0].is_ascii_digit() || !b[1].is_ascii_digit() {
        return None;
    }
    if b.len() >= 10 && b[4] == b'-' && b[7] == b'-' {
        if b.len() == 10 {
            return NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .map(Temporal::Date);
        }
        if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
            return Some(Temporal::DateTime(dt.with_timezone(&Utc)));
        }
        return NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
            .ok()
            .map(|n| Temporal::DateTime(n.and_utc()));
    }
    if b[2] == b':' {
        let t = s.strip_suffix('Z').unwrap_or(s);
        return NaiveTime::parse_from_str(t, "%H:%M:%S%.f")
            .ok()
            .map(Temporal::Time);
    }
    None
}

fn cmp_temporal(value: Temporal, lit: Temporal) -> Option<Ordering> {
    use Temporal::*;
    match (value, lit) {
        (DateTime(a), DateTime(b)) => Some(a.cmp(&b)),
        (Date(a), Date(b)) => Some(a.cmp(&b)),
        (Time(a), Time(b)) => Some(a.cmp(&b)),
        (Date(a), DateTime(b)) => Some(a.and_time(NaiveTime::MIN).and_utc().cmp(&b)),
        (DateTime(a), Date(b)) => Some(a.cmp(&b.and_time(NaiveTime::MIN).and_utc())),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------------------------
// q: evaluation
// ---------------------------------------------------------------------------------------------------------------

/// A scalar seen by a comparison.
#[derive(Debug, Clone, Copy)]
enum Scalar<'a> {
    Num(f64),
    Str(&'a str),
    Bool(bool),
    Time(DateTime<Utc>),
    Other,
}

fn scalar(v: &Value) -> Scalar<'_> {
    match v {
        Value::Number(n) => n.as_f64().map_or(Scalar::Other, Scalar::Num),
        Value::String(s) => Scalar::Str(s),
        Value::Bool(b) => Scalar::Bool(*b),
        Value::Object(m) => match m.get("@value").or_else(|| m.get("@id")) {
            Some(inner) if !inner.is_object() && !inner.is_array() => scalar(inner),
            _ => Scalar::Other,
        },
        _ => Scalar::Other,
    }
}

/// Ordering of the target value relative to the literal; None when they are not comparable.
fn cmp_lit(s: Scalar<'_>, lit: &Literal) -> Option<Ordering> {
    match (s, lit) {
        (Scalar::Num(x), Literal::Number(n)) => x.partial_cmp(n),
        (Scalar::Bool(x), Literal::Bool(b)) => Some(x.cmp(b)),
        (Scalar::Str(x), Literal::Text { text, temporal }) => {
            if let Some(t) = temporal {
                if let Some(xt) = parse_temporal(x) {
                    return cmp_temporal(xt, *t);
                }
            }
            Some(x.cmp(text.as_str()))
        }
        (
            Scalar::Time(x),
            Literal::Text {
                temporal: Some(t), ..
            },
        ) => cmp_temporal(Temporal::DateTime(x), *t),
        _ => None,
    }
}

/// Evaluates the positive form of `op` (`!=` as `==`, `!~=` as `~=`) on one scalar; None when not comparable.
fn test_scalar(op: CmpOp, value: &QValue, s: Scalar<'_>) -> Option<bool> {
    match value {
        QValue::Regex(re) => match s {
            Scalar::Str(x) => Some(re.is_match(x)),
            Scalar::Time(t) => Some(re.is_match(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true))),
            _ => None,
        },
        QValue::One(lit) => {
            let o = cmp_lit(s, lit)?;
            Some(match op {
                CmpOp::Eq | CmpOp::Ne | CmpOp::Match | CmpOp::NotMatch => o == Ordering::Equal,
                CmpOp::Gt => o == Ordering::Greater,
                CmpOp::Ge => o != Ordering::Less,
                CmpOp::Lt => o == Ordering::Less,
                CmpOp::Le => o != Ordering::Greater,
            })
        }
        QValue::List(items) => {
            let mut comparable = false;
            for lit in items {
                match cmp_lit(s, lit) {
                    Some(Ordering::Equal) => return Some(true),
                    Some(_) => comparable = true,
                    None => {}
                }
            }
            comparable.then_some(false)
        }
        QValue::Range(lo, hi) => {
            let a = cmp_lit(s, lo)?;
            let b = cmp_lit(s, hi)?;
            Some(a != Ordering::Less && b != Ordering::Greater)
        }
    }
}

/// Something a path resolves to in one attribute instance.
enum Node<'a> {
    /// A JSON value; `lang_map` when it is the languageMap of a LanguageProperty (all its values are targets).
    Json {
        value: &'a Value,
        lang_map: bool,
    },
    Time(DateTime<Utc>),
    Str(&'a str),
}

enum Special {
    ObservedAt,
    CreatedAt,
    ModifiedAt,
    UnitCode,
    DatasetId,
}

fn special(name: &str) -> Option<Special> {
    let short = name.strip_prefix(iri::NGSI_LD).unwrap_or(name);
    Some(match short {
        "observedAt" => Special::ObservedAt,
        "createdAt" => Special::CreatedAt,
        "modifiedAt" => Special::ModifiedAt,
        "unitCode" => Special::UnitCode,
        "datasetId" => Special::DatasetId,
        _ => return None,
    })
}

/// Evaluation state of one term over the targets of one instance.
#[derive(Default)]
struct Tally {
    any_true: bool,
    any_comparable: bool,
}

impl Tally {
    fn add(&mut self, r: Option<bool>) {
        if let Some(b) = r {
            self.any_comparable = true;
            self.any_true |= b;
        }
    }
}

impl AttrPath {
    /// Resolves the path in one top-level attribute instance, calling `f` for each node found; `f` returns true to
    /// stop early. Returns true when stopped.
    fn resolve<'a>(&self, inst: &'a Attribute, f: &mut dyn FnMut(Node<'a>) -> bool) -> bool {
        let mut cur = inst;
        let n = self.sub_path.len();
        for (i, seg) in self.sub_path.iter().enumerate() {
            if i + 1 == n {
                if let Some(sp) = special(seg) {
                    if !self.compound.is_empty() {
                        return false;
                    }
                    let node = match sp {
                        Special::ObservedAt => cur.observed_at.map(Node::Time),
                        Special::CreatedAt => cur.created_at.map(Node::Time),
                        Special::ModifiedAt => cur.modified_at.map(Node::Time),
                        Special::UnitCode => cur.unit_code.as_deref().map(Node::Str),
                        Special::DatasetId => cur.dataset_id.as_deref().map(Node::Str),
                    };
                    return node.is_some_and(f);
                }
            }
            match cur.sub.get(seg) {
                Some(a) => cur = a,
                None => return false,
            }
        }
        if self.compound.is_empty() {
            return f(Node::Json {
                value: &cur.value,
                lang_map: cur.kind == AttrKind::LanguageProperty,
            });
        }
        navigate(&cur.value, &self.compound, f)
    }
}

/// Walks `keys` into a JSON value; arrays met on the way are searched element by element (one level).
fn navigate<'a>(v: &'a Value, keys: &[String], f: &mut dyn FnMut(Node<'a>) -> bool) -> bool {
    let Some((key, rest)) = keys.split_first() else {
        return f(Node::Json {
            value: v,
            lang_map: false,
        });
    };
    match v {
        Value::Object(m) => m
            .get(key.as_str())
            .is_some_and(|child| navigate(child, rest, f)),
        Value::Array(items) => items.iter().any(|item| {
            item.as_object()
                .and_then(|m| m.get(key.as_str()))
                .is_some_and(|child| navigate(child, rest, f))
        }),
        _ => false,
    }
}

/// Calls `f` for every target scalar of a node (array elements, language map values).
fn for_each_scalar(node: &Node<'_>, f: &mut dyn FnMut(Scalar<'_>) -> bool) -> bool {
    match node {
        Node::Time(t) => f(Scalar::Time(*t)),
        Node::Str(s) => f(Scalar::Str(s)),
        Node::Json {
            value: Value::Object(m),
            lang_map: true,
        } => m.values().any(|v| match v {
            Value::Array(items) => items.iter().any(|x| f(scalar(x))),
            other => f(scalar(other)),
        }),
        Node::Json {
            value: Value::Array(items),
            ..
        } => items.iter().any(|x| f(scalar(x))),
        Node::Json { value, .. } => f(scalar(value)),
    }
}

impl QueryTerm {
    pub fn matches(&self, e: &Entity) -> bool {
        let instances = e
            .attrs
            .get(&self.path.attr)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let Some((op, value)) = &self.op else {
            let exists = instances
                .iter()
                .any(|inst| self.path.resolve(inst, &mut |_| true));
            return exists != self.negated;
        };
        let op = *op;
        let negative = matches!(op, CmpOp::Ne | CmpOp::NotMatch);
        instances.iter().any(|inst| {
            if negative {
                // Holds for this instance when some target is comparable and none equals / matches.
                let mut tally = Tally::default();
                self.path.resolve(inst, &mut |node| {
                    for_each_scalar(&node, &mut |s| {
                        tally.add(test_scalar(op, value, s));
                        tally.any_true
                    })
                });
                tally.any_comparable && !tally.any_true
            } else {
                self.path.resolve(inst, &mut |node| {
                    for_each_scalar(&node, &mut |s| test_scalar(op, value, s) == Some(true))
                })
            }
        })
    }
}

impl Query {
    /// Replaces every attribute and sub-attribute name (attr and sub_path, NOT compound keys) by expand(name).
    pub fn expand_names(&mut self, expand: &dyn Fn(&str) -> String) {
        match self {
            Query::And(items) | Query::Or(items) => {
                items.iter_mut().for_each(|q| q.expand_names(expand))
            }
            Query::Term(t) => {
                t.path.attr = expand(&t.path.attr);
                for s in &mut t.path.sub_path {
                    *s = expand(s);
                }
            }
        }
    }

    /// Whether the entity satisfies the query.
    pub fn matches(&self, e: &Entity) -> bool {
        match self {
            Query::And(items) => items.iter().all(|q| q.matches(e)),
            Query::Or(items) => items.iter().any(|q| q.matches(e)),
            Query::Term(t) => t.matches(e),
        }
    }

    /// The top-level attributes the query refers to, in order of first appearance, without duplicates.
    pub fn attribute_names(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_attrs(&mut out);
        out
    }

    fn collect_attrs(&self, out: &mut Vec<String>) {
        match self {
            Query::And(items) | Query::Or(items) => items.iter().for_each(|q| q.collect_attrs(out)),
            Query::Term(t) => {
                if !out.contains(&t.path.attr) {
                    out.push(t.path.attr.clone());
                }
            }
        }
    }

    /// Every term of the query, depth first.
    pub fn terms(&self) -> Vec<&QueryTerm> {
        let mut out = Vec::new();
        fn walk<'a>(q: &'a Query, out: &mut Vec<&'a QueryTerm>) {
            match q {
                Query::And(items) | Query::Or(items) => items.iter().for_each(|q| walk(q, out)),
                Query::Term(t) => out.push(t),
            }
        }
        walk(self, &mut out);
        out
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Entity type expressions (clause 4.17)
// ---------------------------------------------------------------------------------------------------------------

/// An entity type selection: `A`, `A,B` / `A|B` (any of), `A;B` (all of), with parentheses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeExpr {
    Type(String),
    And(Vec<TypeExpr>),
    Or(Vec<TypeExpr>),
}

/// Parses the `type` parameter: `A`, `A,B` (or), `A|B` (or), `A;B` (and), `(A;B)|C`.
pub fn parse_types(input: &str) -> Result<TypeExpr, QueryError> {
    let mut c = Cursor::new("type", input)?;
    let t = parse_types_or(&mut c, 0)?;
    if !c.at_end() {
        return Err(if c.peek() == Some(')') {
            c.error_at(c.pos, "unbalanced ')'")
        } else {
            c.expected("',', ';', '|' or end of expression")
        });
    }
    Ok(t)
}

fn parse_types_or(c: &mut Cursor, depth: usize) -> Result<TypeExpr, QueryError> {
    let mut items = vec![parse_types_and(c, depth)?];
    while c.eat('|') || c.eat(',') {
        items.push(parse_types_and(c, depth)?);
    }
    Ok(if items.len() == 1 {
        items.pop().unwrap_or(TypeExpr::Or(Vec::new()))
    } else {
        TypeExpr::Or(items)
    })
}

fn parse_types_and(c: &mut Cursor, depth: usize) -> Result<TypeExpr, QueryError> {
    let mut items = vec![parse_types_factor(c, depth)?];
    while c.eat(';') {
        items.push(parse_types_factor(c, depth)?);
    }
    Ok(if items.len() == 1 {
        items.pop().unwrap_or(TypeExpr::And(Vec::new()))
    } else {
        TypeExpr::And(items)
    })
}

fn parse_types_factor(c: &mut Cursor, depth: usize) -> Result<TypeExpr, QueryError> {
    if c.peek() == Some('(') {
        let open = c.pos;
        if depth >= MAX_NESTING {
            return Err(c.error_at(
                open,
                &format!("parentheses nested deeper than {MAX_NESTING} levels"),
            ));
        }
        c.bump();
        let inner = parse_types_or(c, depth + 1)?;
        if !c.eat(')') {
            return Err(c.expected(&format!("')' (to close the '(' opened at position {open})")));
        }
        return Ok(inner);
    }
    let start = c.pos;
    while c.peek().is_some_and(|ch| {
        !matches!(ch, ',' | ';' | '|' | '(' | ')') && !ch.is_whitespace() && !ch.is_control()
    }) {
        c.pos += 1;
    }
    if c.pos == start {
        return Err(c.expected("an entity type name or '('"));
    }
    Ok(TypeExpr::Type(c.text(start, c.pos)))
}

impl TypeExpr {
    pub fn expand_names(&mut self, f: &dyn Fn(&str) -> String) {
        match self {
            TypeExpr::Type(t) => *t = f(t),
            TypeExpr::And(items) | TypeExpr::Or(items) => {
                items.iter_mut().for_each(|t| t.expand_names(f))
            }
        }
    }

    /// Whether an entity with these (expanded) types is selected.
    pub fn matches(&self, types: &[String]) -> bool {
        match self {
            TypeExpr::Type(t) => types.iter().any(|x| x == t),
            TypeExpr::And(items) => items.iter().all(|t| t.matches(types)),
            TypeExpr::Or(items) => items.iter().any(|t| t.matches(types)),
        }
    }

    /// Some(list) when the expression is a plain disjunction of types (lets the store use an index)
    pub fn as_any_of(&self) -> Option<Vec<&str>> {
        let mut out = Vec::new();
        fn walk<'a>(t: &'a TypeExpr, out: &mut Vec<&'a str>) -> bool {
            match t {
                TypeExpr::Type(name) => {
                    if !out.contains(&name.as_str()) {
                        out.push(name);
                    }
                    true
                }
                TypeExpr::Or(items) => items.iter().all(|t| walk(t, out)),
                TypeExpr::And(items) if items.len() == 1 => walk(&items[0], out),
                TypeExpr::And(_) => false,
            }
        }
        walk(self, &mut out).then_some(out)
    }

    /// Every type name mentioned.
    pub fn type_names(&self) -> Vec<&str> {
        let mut out = Vec::new();
        fn walk<'a>(t: &'a TypeExpr, out: &mut Vec<&'a str>) {
            match t {
                TypeExpr::Type(name) => {
                    if !out.contains(&name.as_str()) {
                        out.push(name);
                    }
                }
                TypeExpr::And(items) | TypeExpr::Or(items) => {
                    items.iter().for_each(|t| walk(t, out))
                }
            }
        }
        walk(self, &mut out);
        out
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Scope queries (clause 4.19)
// ---------------------------------------------------------------------------------------------------------------

/// A parsed `scopeQ`: scope patterns combined with `;` (and), `|` or `,` (or) and parentheses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeQuery {
    Pattern(ScopePattern),
    And(Vec<ScopeQuery>),
    Or(Vec<ScopeQuery>),
}

/// `/Madrid/+/Parque` or `/Madrid/#`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopePattern {
    pub segments: Vec<ScopeSegment>,
    /// Ends in `/#`: matches the prefix itself and every scope below it.
    pub descendants: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeSegment {
    Name(String),
    /// `+`: exactly one level, any name.
    AnyOne,
}

impl ScopePattern {
    /// Whether one scope (`/a/b/c`) matches the pattern.
    pub fn matches_scope(&self, scope: &str) -> bool {
        let Some(rest) = scope.strip_prefix('/') else {
            return false;
        };
        let mut segs = rest.split('/');
        for p in &self.segments {
            match (p, segs.next()) {
                (_, None) => return false,
                (ScopeSegment::AnyOne, Some(s)) if !s.is_empty() => {}
                (ScopeSegment::Name(n), Some(s)) if n == s => {}
                _ => return false,
            }
        }
        self.descendants || segs.next().is_none()
    }
}

/// Parses a `scopeQ` expression.
pub fn parse_scope_q(input: &str) -> Result<ScopeQuery, QueryError> {
    let mut c = Cursor::new("scopeQ", input)?;
    let q = parse_scope_or(&mut c, 0)?;
    if !c.at_end() {
        return Err(if c.peek() == Some(')') {
            c.error_at(c.pos, "unbalanced ')'")
        } else {
            c.expected("',', ';', '|' or end of expression")
        });
    }
    Ok(q)
}

fn parse_scope_or(c: &mut Cursor, depth: usize) -> Result<ScopeQuery, QueryError> {
    let mut items = vec![parse_scope_and(c, depth)?];
    while c.eat('|') || c.eat(',') {
        items.push(parse_scope_and(c, depth)?);
    }
    Ok(if items.len() == 1 {
        items.pop().unwrap_or(ScopeQuery::Or(Vec::new()))
    } else {
        ScopeQuery::Or(items)
    })
}

fn parse_scope_and(c: &mut Cursor, depth: usize) -> Result<ScopeQuery, QueryError> {
    let mut items = vec![parse_scope_factor(c, depth)?];
    while c.eat(';') {
        items.push(parse_scope_factor(c, depth)?);
    }
    Ok(if items.len() == 1 {
        items.pop().unwrap_or(ScopeQuery::And(Vec::new()))
    } else {
        ScopeQuery::And(items)
    })
}

fn parse_scope_factor(c: &mut Cursor, depth: usize) -> Result<ScopeQuery, QueryError> {
    if c.peek() == Some('(') {
        let open = c.pos;
        if depth >= MAX_NESTING {
            return Err(c.error_at(
                open,
                &format!("parentheses nested deeper than {MAX_NESTING} levels"),
            ));
        }
        c.bump();
        let inner = parse_scope_or(c, depth + 1)?;
        if !c.eat(')') {
            return Err(c.expected(&format!("')' (to close the '(' opened at position {open})")));
        }
        return Ok(inner);
    }
    if c.peek() != Some('/') {
        return Err(c.expected("a scope starting with '/' or '('"));
    }
    let mut segments = Vec::new();
    let mut descendants = false;
    while c.eat('/') {
        if descendants {
            return Err(c.error_at(c.pos - 1, "'#' must be the last level of a scope"));
        }
        let start = c.pos;
        while c.peek().is_some_and(|ch| {
            !matches!(ch, '/' | ',' | ';' | '|' | '(' | ')')
                && !ch.is_whitespace()
                && !ch.is_control()
        }) {
            c.pos += 1;
        }
        let seg = c.text(start, c.pos);
        match seg.as_str() {
            "" => return Err(c.expected("a scope level name, '+' or '#' after '/'")),
            "#" => descendants = true,
            "+" => segments.push(ScopeSegment::AnyOne),
            s if s.contains('#') || s.contains('+') => {
                return Err(c.error_at(start, "'#' and '+' are only allowed as a whole scope level"))
            }
            _ => segments.push(ScopeSegment::Name(seg)),
        }
    }
    Ok(ScopeQuery::Pattern(ScopePattern {
        segments,
        descendants,
    }))
}

impl ScopeQuery {
    /// Whether an entity with these scopes is selected; an entity without scopes matches nothing.
    pub fn matches(&self, scopes: &[String]) -> bool {
        if scopes.is_empty() {
            return false;
        }
        match self {
            ScopeQuery::Pattern(p) => scopes.iter().any(|s| p.matches_scope(s)),
            ScopeQuery::And(items) => items.iter().all(|q| q.matches(scopes)),
            ScopeQuery::Or(items) => items.iter().any(|q| q.matches(scopes)),
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn ent() -> Entity {
        let mut e = Entity::new("urn:ngsi-ld:Vehicle:A4567", "Vehicle");
        let mut temp = Attribute::property(json!(23.5));
        temp.observed_at = Some(Utc.with_ymd_and_hms(2017, 12, 24, 13, 0, 0).unwrap());
        temp.unit_code = Some("CEL".into());
        let mut acc = Attribute::property(json!(0.95));
        acc.observed_at = Some(Utc.with_ymd_and_hms(2017, 12, 24, 13, 0, 0).unwrap());
        temp.sub.insert("accuracy".into(), acc);
        e.attrs.insert("temperature".into(), vec![temp]);
        e.attrs.insert(
            "brandName".into(),
            vec![Attribute::property(json!("Mercedes"))],
        );
        e.attrs.insert(
            "isParked".into(),
            vec![Attribute::new(
                AttrKind::Relationship,
                json!("urn:ngsi-ld:OffStreetParking:Downtown1"),
            )],
        );
        e.attrs.insert(
            "address".into(),
            vec![Attribute::property(
                json!({"streetAddress": "Calle Ordoñez", "city": "Madrid", "zip": 28001}),
            )],
        );
        e.attrs
            .insert("speed".into(), vec![Attribute::property(json!(80))]);
        e.attrs.insert(
            "tags".into(),
            vec![Attribute::property(json!(["red", "fast", 7]))],
        );
        e.attrs
            .insert("electric".into(), vec![Attribute::property(json!(false))]);
        e.attrs.insert(
            "name".into(),
            vec![Attribute::new(
                AttrKind::LanguageProperty,
                json!({"en": "Car", "es": "Coche", "de": ["Auto", "Wagen"]}),
            )],
        );
        e.attrs.insert(
            "registered".into(),
            vec![Attribute::property(
                json!({"@type": "DateTime", "@value": "2018-06-01T10:00:00Z"}),
            )],
        );
        e.attrs.insert(
            "builtOn".into(),
            vec![Attribute::property(json!("2015-03-04"))],
        );
        e.attrs
            .insert("opens".into(), vec![Attribute::property(json!("08:30:00"))]);
        e.attrs.insert(
            "category".into(),
            vec![Attribute::new(
                AttrKind::VocabProperty,
                json!(["commercial", "urban"]),
            )],
        );
        e.attrs.insert(
            "readings".into(),
            vec![Attribute::new(AttrKind::ListProperty, json!([1, 5, 9]))],
        );
        e.attrs.insert(
            "owners".into(),
            vec![Attribute::new(
                AttrKind::ListRelationship,
                json!(["urn:ngsi-ld:Person:1", "urn:ngsi-ld:Person:2"]),
            )],
        );
        e.attrs.insert(
            "doors".into(),
            vec![Attribute::property(
                json!([{"side": "left", "open": true}, {"side": "right", "open": false}]),
            )],
        );
        let mut d1 = Attribute::property(json!(10));
        d1.dataset_id = Some("urn:ngsi-ld:Dataset:a".into());
        let d2 = Attribute::property(json!(30));
        e.attrs.insert("level".into(), vec![d2, d1]);
        e
    }

    fn m(q: &str) -> bool {
        parse_q(q)
            .unwrap_or_else(|e| panic!("{q}: {e}"))
            .matches(&ent())
    }

    fn err(q: &str) -> String {
        match parse_q(q) {
            Ok(p) => panic!("{q} parsed as {p:?}"),
            Err(e) => e.0,
        }
    }

    #[test]
    fn spec_example_combined() {
        assert!(m(
            r#"temperature>20;(brandName=="Mercedes"|isParked==urn:ngsi-ld:OffStreetParking:Downtown1)"#
        ));
        assert!(m(
            r#"temperature>20;(brandName=="BMW"|isParked==urn:ngsi-ld:OffStreetParking:Downtown1)"#
        ));
        assert!(!m(
            r#"temperature>20;(brandName=="BMW"|isParked==urn:ngsi-ld:OffStreetParking:Other)"#
        ));
        assert!(!m(
            r#"temperature>30;(brandName=="Mercedes"|isParked==urn:ngsi-ld:OffStreetParking:Downtown1)"#
        ));
    }

    #[test]
    fn spec_example_compound() {
        assert!(m(r#"address[streetAddress]=="Calle Ordoñez""#));
        assert!(!m(r#"address[streetAddress]=="Calle Mayor""#));
        assert!(m("address[zip]>=28000"));
        assert!(m("address[city]"));
        assert!(!m("address[country]"));
        assert!(!m("address[city][x]"));
    }

    #[test]
    fn spec_example_observed_at() {
        assert!(m("temperature.observedAt>=2017-12-24T12:00:00Z"));
        assert!(!m("temperature.observedAt>=2017-12-24T14:00:00Z"));
        assert!(m("temperature.observedAt==2017-12-24T14:00:00+01:00"));
        assert!(m("temperature.observedAt"));
        assert!(!m("brandName.observedAt"));
        assert!(m(r#"temperature.unitCode=="CEL""#));
        assert!(m("temperature.accuracy>0.9"));
        assert!(m("temperature.accuracy.observedAt<2018-01-01"));
        assert!(!m("temperature.precision"));
    }

    #[test]
    fn expanded_special_names_match() {
        let mut q =
            parse_q("temperature.observedAt>=2017-12-24T12:00:00Z;temperature.unitCode==\"CEL\"")
                .unwrap();
        q.expand_names(&|n| match n {
            "observedAt" => iri::OBSERVED_AT.to_string(),
            "unitCode" => iri::UNIT_CODE.to_string(),
            other => format!("https://example.org/{other}"),
        });
        let mut e = ent();
        let t = e.attrs.remove("temperature").unwrap();
        e.attrs.insert("https://example.org/temperature".into(), t);
        assert!(q.matches(&e));
        assert_eq!(
            q.attribute_names(),
            vec!["https://example.org/temperature".to_string()]
        );
    }

    #[test]
    fn dataset_id_and_instances() {
        assert!(m(r#"level.datasetId=="urn:ngsi-ld:Dataset:a""#));
        assert!(m("level==10"));
        assert!(m("level==30"));
        assert!(m("level>25"));
        assert!(m("level<15"));
        // any instance: 10 != 30 holds for the first
        assert!(m("level!=30"));
        assert!(!m("level==20"));
    }

    #[test]
    fn comparisons() {
        assert!(m("speed==80"));
        assert!(m("speed==80.0"));
        assert!(m("speed!=81"));
        assert!(!m("speed!=80"));
        assert!(m("speed>=80;speed<=80"));
        assert!(!m("speed>80"));
        assert!(!m("speed<80"));
        assert!(m("speed>-1e3"));
        assert!(m(r#"brandName>"A";brandName<"N""#));
        assert!(m("electric==false"));
        assert!(!m("electric==true"));
        assert!(m("electric!=true"));
    }

    #[test]
    fn type_mismatch_is_no_match() {
        assert!(!m(r#"speed=="80""#));
        assert!(!m(r#"speed!="80""#));
        assert!(!m("brandName>5"));
        assert!(!m("brandName!=5"));
        assert!(!m("electric==0"));
        assert!(!m("address==1"));
    }

    #[test]
    fn missing_attribute_never_matches() {
        assert!(!m("colour"));
        assert!(!m("colour==1"));
        assert!(!m("colour!=1"));
        assert!(!m("colour!~=x"));
        assert!(m("!colour"));
        assert!(!m("!speed"));
        assert!(m("!speed|speed==80"));
    }

    #[test]
    fn lists() {
        assert!(m("speed==70,80,90"));
        assert!(!m("speed==70,90"));
        assert!(m("speed!=70,90"));
        assert!(!m("speed!=70,80"));
        assert!(m(r#"brandName=="BMW","Mercedes""#));
        assert!(!m(r#"brandName!="BMW","Mercedes""#));
        assert!(m(
            "isParked==urn:ngsi-ld:X:1,urn:ngsi-ld:OffStreetParking:Downtown1"
        ));
    }

    #[test]
    fn ranges() {
        assert!(m("speed==1..80"));
        assert!(m("speed==80..100"));
        assert!(!m("speed==81..100"));
        assert!(m("speed!=81..100"));
        assert!(!m("speed!=1..100"));
        assert!(m(
            r#"registered=="2018-01-01T00:00:00Z".."2019-01-01T00:00:00Z""#
        ));
        assert!(m("registered==2018-01-01T00:00:00Z..2019-01-01T00:00:00Z"));
        assert!(!m("registered==2019-01-01T00:00:00Z..2020-01-01T00:00:00Z"));
        assert!(m("registered!=2019-01-01T00:00:00Z..2020-01-01T00:00:00Z"));
        assert!(m("temperature==23.0..24.0"));
        assert!(m("builtOn==2015-01-01..2015-12-31"));
        assert!(m("opens==08:00:00..09:00:00"));
        assert!(!m("opens==09:00:00Z..10:00:00Z"));
        assert!(m(r#"brandName=="L".."N""#));
    }

    #[test]
    fn temporal_values() {
        assert!(m("registered>2018-05-31T23:59:59Z"));
        assert!(m("registered==2018-06-01T12:00:00+02:00"));
        assert!(m(r#"registered<"2018-06-02T00:00:00Z""#));
        assert!(m("registered>2018-05-01"));
        assert!(m("builtOn<2016-01-01"));
        assert!(m("builtOn>2015-03-03T23:00:00Z"));
        assert!(m("opens<08:31:00"));
    }

    #[test]
    fn arrays_and_lists() {
        assert!(m(r#"tags=="fast""#));
        assert!(m("tags==7"));
        assert!(!m(r#"tags=="slow""#));
        assert!(!m(r#"tags!="red""#));
        assert!(m(r#"tags!="blue""#));
        assert!(m("readings>8"));
        assert!(!m("readings>9"));
        assert!(m("owners==urn:ngsi-ld:Person:2"));
        assert!(m(r#"category=="urban""#));
        assert!(m(r#"doors[side]=="right""#));
        assert!(m("doors[open]==true"));
    }

    #[test]
    fn language_property() {
        assert!(m(r#"name=="Coche""#));
        assert!(m(r#"name=="Wagen""#));
        assert!(m(r#"name[en]=="Car""#));
        assert!(!m(r#"name[en]=="Coche""#));
        assert!(m(r#"name[de]=="Auto""#));
        assert!(m("name~=^Co"));
    }

    #[test]
    fn regex() {
        assert!(m("brandName~=^Merc"));
        assert!(m("brandName~=(?i)MERCEDES"));
        assert!(m("brandName~=ced"));
        assert!(!m("brandName~=^ced"));
        assert!(m("brandName!~=^BMW"));
        assert!(!m("brandName!~=Merc"));
        assert!(m(r#"brandName~="^(BMW|Merc)""#));
        assert!(m("brandName~=^(BMW|Merc);speed==80"));
        assert!(m("(brandName~=Merc)"));
        assert!(!m("brandName~=[;|)]"));
        assert!(matches!(parse_q("a~=[;|)];b").unwrap(), Query::And(ref v) if v.len() == 2));
        assert!(matches!(parse_q(r"a~=\);b").unwrap(), Query::And(ref v) if v.len() == 2));
        assert!(m(r#"tags~="^f\w+t$""#));
        assert!(!m("speed~=80"));
        assert!(!m("speed!~=80"));
        assert!(m("temperature.observedAt~=^2017-12"));
        let q = parse_q("a~=x|y").unwrap();
        assert!(matches!(q, Query::Or(ref v) if v.len() == 2));
    }

    #[test]
    fn regex_errors() {
        let e = err("brandName~=(abc");
        assert!(e.contains("invalid regular expression"), "{e}");
        assert!(e.contains("position 11"), "{e}");
        assert!(err("brandName~=").contains("expected a regular expression"));
        assert!(err("a~=x{99999999}").contains("invalid regular expression"));
    }

    #[test]
    fn nested_parentheses_and_precedence() {
        assert!(m("((speed==80))"));
        assert!(m("speed==1|speed==80;brandName==\"Mercedes\""));
        assert!(!m("(speed==1|speed==80);brandName==\"BMW\""));
        assert!(m(
            "speed==1|(speed==80;(brandName==\"BMW\"|(electric==false;level>5)))"
        ));
        let q = parse_q("a;b|c;d").unwrap();
        match q {
            Query::Or(items) => {
                assert_eq!(items.len(), 2);
                assert!(matches!(&items[0], Query::And(v) if v.len() == 2));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn paths_parse() {
        let q = parse_q("a.b.c[d][e]==1").unwrap();
        let Query::Term(t) = q else { panic!() };
        assert_eq!(t.path.attr, "a");
        assert_eq!(t.path.sub_path, vec!["b", "c"]);
        assert_eq!(t.path.compound, vec!["d", "e"]);
        assert_eq!(t.path.to_string(), "a.b.c[d][e]");
        let q = parse_q("schema:name==\"x\"").unwrap();
        assert_eq!(q.attribute_names(), vec!["schema:name"]);
    }

    #[test]
    fn expand_names_keeps_compound_keys() {
        let mut q = parse_q("a.b[c]==1;d|a").unwrap();
        q.expand_names(&|n| format!("X:{n}"));
        let terms = q.terms();
        assert_eq!(terms[0].path.attr, "X:a");
        assert_eq!(terms[0].path.sub_path, vec!["X:b"]);
        assert_eq!(terms[0].path.compound, vec!["c"]);
        assert_eq!(q.attribute_names(), vec!["X:a", "X:d"]);
    }

    #[test]
    fn value_kinds() {
        let lit = |q: &str| match parse_q(q).unwrap() {
            Query::Term(QueryTerm {
                op: Some((_, QValue::One(l))),
                ..
            }) => l,
            other => panic!("{other:?}"),
        };
        assert_eq!(lit("a==-1.5e2"), Literal::Number(-150.0));
        assert_eq!(lit("a==true"), Literal::Bool(true));
        assert!(matches!(
            lit("a==urn:x:1"),
            Literal::Text { temporal: None, .. }
        ));
        assert!(matches!(
            lit("a==2018-12-04T12:00:00Z"),
            Literal::Text {
                temporal: Some(Temporal::DateTime(_)),
                ..
            }
        ));
        assert!(matches!(
            lit("a==2018-12-04"),
            Literal::Text {
                temporal: Some(Temporal::Date(_)),
                ..
            }
        ));
        assert!(matches!(
            lit("a==12:00:00Z"),
            Literal::Text {
                temporal: Some(Temporal::Time(_)),
                ..
            }
        ));
        assert_eq!(
            lit(r#"a=="say \"hi\" \\ \d""#),
            Literal::text(r#"say "hi" \ \d"#.to_string())
        );
        assert_eq!(
            lit(r#"a=="a;b|c)(d,e..f""#),
            Literal::text("a;b|c)(d,e..f".to_string())
        );
    }

    #[test]
    fn error_messages() {
        let e = err("temperature > 20");
        assert!(e.contains("position 11") && e.contains("whitespace"), "{e}");
        let e = err("temperature=20");
        assert!(
            e.contains("expected an operator") && e.contains("position 11"),
            "{e}"
        );
        let e = err("(a==1");
        assert!(
            e.contains("to close the '(' opened at position 0") && e.contains("position 5"),
            "{e}"
        );
        let e = err("a==1)");
        assert!(
            e.contains("unbalanced ')'") && e.contains("position 4"),
            "{e}"
        );
        let e = err("a==");
        assert!(
            e.contains("expected a value") && e.contains("end of expression"),
            "{e}"
        );
        let e = err(r#"a=="open"#);
        assert!(
            e.contains("unterminated string") && e.contains("position 3"),
            "{e}"
        );
        assert!(err("").contains("empty"));
        assert!(err("a;").contains("expected an attribute name"));
        assert!(err("a||b").contains("position 2"));
        assert!(err("()").contains("position 1"));
        assert!(err("a>1,2").contains("value list can only be used with == or !="));
        assert!(err("a<1..2").contains("range can only be used"));
        assert!(err("a>true").contains("boolean"));
        assert!(err("a==1..\"x\"").contains("same type"));
        assert!(err("a==5..1").contains("empty range"));
        assert!(err("a==1e999").contains("out of range"));
        assert!(err("a[]==1").contains("member name"));
        assert!(err("a[b==1").contains("']'"));
        assert!(err("a[b].c==1").contains("cannot follow"));
        assert!(err("a.==1").contains("sub-attribute name"));
        assert!(err("!a==1").contains("'!' can only negate"));
        assert!(err("a==1 ").contains("whitespace"));
        assert!(err("a==x\"y\"").contains("unexpected '\"'"));
    }

    #[test]
    fn adversarial_inputs_do_not_panic() {
        let deep = format!("{}a{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(err(&deep).contains("nested deeper"));
        let ok = format!(
            "{}speed==80{}",
            "(".repeat(MAX_NESTING),
            ")".repeat(MAX_NESTING)
        );
        assert!(m(&ok));
        assert!(err(&"(".repeat(100)).contains("nested") || !err(&"(".repeat(100)).is_empty());
        assert!(parse_q(&"a;".repeat(40_000)).is_err());
        let huge = format!("speed<{}", "9".repeat(400));
        assert!(err(&huge).contains("out of range"));
        let big = format!("speed<{}", "9".repeat(300));
        assert!(m(&big));
        // pseudo-random garbage
        let alphabet: Vec<char> = "ab.[]()!=<>~;|,\"\\0123456789eE-+:TZ/ é#".chars().collect();
        let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
        let e = ent();
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 24) as usize;
            let mut s = String::new();
            let mut x = seed;
            for _ in 0..len {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                s.push(alphabet[((x >> 33) as usize) % alphabet.len()]);
            }
            if let Ok(q) = parse_q(&s) {
                let _ = q.matches(&e);
            }
            let _ = parse_types(&s);
            let _ = parse_scope_q(&s);
        }
        assert!(parse_q("\u{0}").is_err());
        assert!(parse_q(&"x".repeat(MAX_QUERY_LEN + 1)).is_err());
    }

    #[test]
    fn at_value_objects_and_ids() {
        let mut e = Entity::new("urn:x:1", "T");
        e.attrs.insert(
            "r".into(),
            vec![Attribute::new(
                AttrKind::Relationship,
                json!({"@id": "urn:x:2"}),
            )],
        );
        e.attrs
            .insert("v".into(), vec![Attribute::property(json!({"@value": 5}))]);
        assert!(parse_q("r==urn:x:2").unwrap().matches(&e));
        assert!(parse_q("v==5").unwrap().matches(&e));
    }

    #[test]
    fn types() {
        let t = parse_types("Vehicle").unwrap();
        assert_eq!(t, TypeExpr::Type("Vehicle".into()));
        assert_eq!(t.as_any_of(), Some(vec!["Vehicle"]));
        let t = parse_types("A,B").unwrap();
        assert_eq!(t.as_any_of(), Some(vec!["A", "B"]));
        assert!(t.matches(&["B".into()]));
        assert!(!t.matches(&["C".into()]));
        let t = parse_types("A|B,(C)").unwrap();
        assert_eq!(t.as_any_of(), Some(vec!["A", "B", "C"]));
        let mut t = parse_types("(A;B)|C").unwrap();
        assert_eq!(t.as_any_of(), None);
        assert!(t.matches(&["A".into(), "B".into()]));
        assert!(!t.matches(&["A".into()]));
        assert!(t.matches(&["C".into()]));
        t.expand_names(&|n| format!("https://example.org/{n}"));
        assert!(t.matches(&["https://example.org/C".into()]));
        assert_eq!(
            t.type_names(),
            vec![
                "https://example.org/A",
                "https://example.org/B",
                "https://example.org/C"
            ]
        );
        let t = parse_types("https://uri.fiware.org/ns/data-models#Building").unwrap();
        assert_eq!(
            t.as_any_of(),
            Some(vec!["https://uri.fiware.org/ns/data-models#Building"])
        );
        assert!(parse_types("").is_err());
        assert!(parse_types("A,").unwrap_err().0.contains("position 2"));
        assert!(parse_types("(A").unwrap_err().0.contains("')'"));
        assert!(parse_types("A)").unwrap_err().0.contains("unbalanced"));
        assert!(parse_types("A B").unwrap_err().0.contains("whitespace"));
        assert!(parse_types(&"(".repeat(5000))
            .unwrap_err()
            .0
            .contains("nested"));
    }

    #[test]
    fn scopes() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let e = s(&["/Madrid/Gardens/ParqueNorte", "/CompanyA/OrgB"]);
        let t = |q: &str, sc: &[String]| {
            parse_scope_q(q)
                .unwrap_or_else(|e| panic!("{q}: {e}"))
                .matches(sc)
        };
        assert!(t("/Madrid/Gardens/ParqueNorte", &e));
        assert!(!t("/Madrid/Gardens", &e));
        assert!(t("/Madrid/#", &e));
        assert!(t("/Madrid/Gardens/ParqueNorte/#", &e));
        assert!(!t("/Madrid/Gardens/ParqueNorte/Sub/#", &e));
        assert!(t("/Madrid/+/ParqueNorte", &e));
        assert!(!t("/Madrid/+", &e));
        assert!(t("/Madrid/+/#", &e));
        assert!(t("/#", &e));
        assert!(!t("/#", &[]));
        assert!(t("/Madrid/#;/CompanyA/#", &e));
        assert!(!t("/Madrid/#;/CompanyB/#", &e));
        assert!(t("/Barcelona/#|/CompanyA/OrgB", &e));
        assert!(t("/Barcelona/#,/CompanyA/OrgB", &e));
        assert!(t("(/Barcelona|/Madrid/#);/CompanyA/+", &e));
        assert!(!t("/Madrid", &e));
        assert!(t("/Madrid", &s(&["/Madrid"])));
        assert!(t("/Madrid/#", &s(&["/Madrid"])));
        assert!(!t("/Madrid/#", &s(&["/MadridNorte"])));
        assert!(parse_scope_q("Madrid")
            .unwrap_err()
            .0
            .contains("starting with '/'"));
        assert!(parse_scope_q("/Madrid//x")
            .unwrap_err()
            .0
            .contains("position 8"));
        assert!(parse_scope_q("/#/a").unwrap_err().0.contains("last level"));
        assert!(parse_scope_q("/a#")
            .unwrap_err()
            .0
            .contains("whole scope level"));
        assert!(parse_scope_q("/a;").is_err());
        assert!(parse_scope_q("(/a").is_err());
        assert!(parse_scope_q(&"(".repeat(1000))
            .unwrap_err()
            .0
            .contains("nested"));
    }

    #[test]
    fn temporal_parsing() {
        assert!(matches!(
            parse_temporal("2018-12-04T12:00:00Z"),
            Some(Temporal::DateTime(_))
        ));
        assert!(matches!(
            parse_temporal("2018-12-04T12:00:00.123+02:00"),
            Some(Temporal::DateTime(_))
        ));
        assert!(matches!(
            parse_temporal("2018-12-04T12:00:00"),
            Some(Temporal::DateTime(_))
        ));
        assert!(matches!(
            parse_temporal("2018-12-04"),
            Some(Temporal::Date(_))
        ));
        assert!(matches!(
            parse_temporal("12:00:00"),
            Some(Temporal::Time(_))
        ));
        assert!(matches!(
            parse_temporal("12:00:00.5Z"),
            Some(Temporal::Time(_))
        ));
        assert_eq!(parse_temporal("2018-13-04"), None);
        assert_eq!(parse_temporal("urn:ngsi-ld:x"), None);
        assert_eq!(parse_temporal("12345678"), None);
        assert_eq!(parse_temporal("9"), None);
        assert_eq!(parse_temporal("ÿÿÿÿÿÿÿÿÿÿ"), None);
        assert_eq!(parse_temporal("20ÿÿÿÿÿÿÿÿ"), None);
    }
}
