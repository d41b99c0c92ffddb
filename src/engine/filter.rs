//! Client row filters and sort orders: parses them (text, Keboola and JSON forms) into a restricted
//! expression tree and renders SQL ourselves, so user text never reaches DuckDB as SQL.

use std::fmt::Display;

use serde::Deserialize;
use serde_json::{json, Value};

use super::values::{is_json_type, json_filter_text};
use super::{quote_ident, sql_string, ColumnInfo};
use crate::error::{ApiError, ApiResult};

/// Longest filter or order-by text accepted, in bytes.
const MAX_TEXT_BYTES: usize = 64 * 1024;
/// Deepest nesting of parentheses and NOTs accepted.
const MAX_DEPTH: usize = 64;
/// Most items in one IN list (text, Keboola and JSON forms alike).
const MAX_IN_ITEMS: usize = 10_000;
/// Most ORDER BY keys.
const MAX_ORDER_KEYS: usize = 16;

const FILTER_ALLOWED: &str =
    "(only columns, literals, comparisons, AND/OR/NOT, IN, BETWEEN, LIKE, IS NULL)";
const ORDER_ALLOWED: &str =
    "(only column names, each optionally followed by ASC or DESC or prefixed with -)";

/// Words that cannot be bare column names: DuckDB's reserved words plus this grammar's keywords.
/// Quote them (`"order"`) to name a column.
const RESERVED: &[&str] = &[
    "ALL",
    "ANALYSE",
    "ANALYZE",
    "AND",
    "ANY",
    "ARRAY",
    "AS",
    "ASC",
    "ASYMMETRIC",
    "BETWEEN",
    "BOTH",
    "CASE",
    "CAST",
    "CHECK",
    "COLLATE",
    "COLUMN",
    "CONSTRAINT",
    "CREATE",
    "DEFAULT",
    "DEFERRABLE",
    "DESC",
    "DESCRIBE",
    "DISTINCT",
    "DO",
    "ELSE",
    "END",
    "EXCEPT",
    "FALSE",
    "FETCH",
    "FOR",
    "FOREIGN",
    "FROM",
    "GRANT",
    "GROUP",
    "HAVING",
    "ILIKE",
    "IN",
    "INITIALLY",
    "INTERSECT",
    "INTO",
    "IS",
    "LATERAL",
    "LEADING",
    "LIKE",
    "LIMIT",
    "NOT",
    "NULL",
    "OFFSET",
    "ON",
    "ONLY",
    "OR",
    "ORDER",
    "PIVOT",
    "PIVOT_LONGER",
    "PIVOT_WIDER",
    "PLACING",
    "PRIMARY",
    "QUALIFY",
    "REFERENCES",
    "RETURNING",
    "SELECT",
    "SHOW",
    "SOME",
    "SUMMARIZE",
    "SYMMETRIC",
    "TABLE",
    "THEN",
    "TO",
    "TRAILING",
    "TRUE",
    "UNION",
    "UNIQUE",
    "UNPIVOT",
    "USING",
    "VARIADIC",
    "WHEN",
    "WHERE",
    "WINDOW",
    "WITH",
];

/// Operator names of the JSON form, as listed in its error message.
const OPERATORS: &[&str] = &[
    "eq",
    "ne",
    "gt",
    "ge",
    "lt",
    "le",
    "in",
    "not_in",
    "like",
    "not_like",
    "ilike",
    "not_ilike",
    "between",
    "not_between",
    "is_null",
    "is_not_null",
    "=",
    "!=",
    "<>",
    ">",
    ">=",
    "<",
    "<=",
];

/// A parsed, validated-against-nothing-yet filter expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    expr: Expr,
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Not(Box<Expr>),
    Compare(Operand, CmpOp, Operand),
    In {
        operand: Operand,
        negated: bool,
        list: Vec<Literal>,
    },
    Between {
        operand: Operand,
        negated: bool,
        low: Operand,
        high: Operand,
    },
    Like {
        operand: Operand,
        negated: bool,
        ilike: bool,
        pattern: String,
    },
    IsNull {
        operand: Operand,
        negated: bool,
    },
    /// A bare BOOLEAN column used as a condition.
    Column(String),
    Bool(bool),
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Column(String),
    Literal(Literal),
}

#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Str(String),
    /// The number's text as written (validated), so DECIMAL precision survives.
    Number(String),
    Bool(bool),
    Null,
    /// An array or object from the JSON form, as compact JSON text (JSON columns only).
    Json(String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    fn sql(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::Ne => "<>",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
        }
    }
}

impl Filter {
    /// Parses the reference's raw `where_filter` / `where_clause` string.
    pub fn parse(text: &str) -> ApiResult<Filter> {
        let mut p = Parser::new(text, "where filter", FILTER_ALLOWED)?;
        let expr = p.parse_or()?;
        p.expect_end("AND, OR or the end of the filter")?;
        Ok(Filter { expr })
    }

    /// Keboola-style: whereColumn + whereValues + whereOperator ("eq" default | "ne").
    /// eq with one value => col = v; eq with many => col IN (...); ne => <> / NOT IN. Empty values => 400.
    /// Values are strings (compared as string literals; DuckDB casts them to the column type).
    pub fn keboola(column: &str, values: &[String], operator: Option<&str>) -> ApiResult<Filter> {
        let op = operator.map(|o| o.trim().to_ascii_lowercase());
        let negated = match op.as_deref() {
            None | Some("") | Some("eq") => false,
            Some("ne") => true,
            Some(_) => {
                return Err(ApiError::bad_request(format!(
                    "whereOperator must be \"eq\" or \"ne\", got {}",
                    show(operator.unwrap_or_default())
                )))
            }
        };
        if values.is_empty() {
            return Err(ApiError::bad_request(
                "whereValues must not be empty when whereColumn is given",
            ));
        }
        if values.len() > MAX_IN_ITEMS {
            return Err(ApiError::bad_request(format!(
                "whereValues may hold at most {MAX_IN_ITEMS} values, got {}",
                values.len()
            )));
        }
        let mut list = values
            .iter()
            .map(|v| {
                string_literal(v).map_err(|e| ApiError::bad_request(format!("whereValues: {e}")))
            })
            .collect::<ApiResult<Vec<_>>>()?;
        let operand = Operand::Column(column.to_string());
        let expr = match list.pop() {
            Some(only) if list.is_empty() => {
                let op = if negated { CmpOp::Ne } else { CmpOp::Eq };
                Expr::Compare(operand, op, Operand::Literal(only))
            }
            last => {
                list.extend(last);
                Expr::In {
                    operand,
                    negated,
                    list,
                }
            }
        };
        Ok(Filter { expr })
    }

    /// JSON form: a list of conditions, combined with AND.
    pub fn structured(conditions: &[Condition]) -> ApiResult<Filter> {
        if conditions.is_empty() {
            return Err(ApiError::bad_request("the filter has no conditions"));
        }
        let mut items = conditions
            .iter()
            .enumerate()
            .map(|(i, c)| c.expr(i))
            .collect::<ApiResult<Vec<_>>>()?;
        let expr = match items.pop() {
            Some(only) if items.is_empty() => only,
            last => {
                items.extend(last);
                Expr::And(items)
            }
        };
        Ok(Filter { expr })
    }

    /// Both must hold.
    pub fn and(self, other: Filter) -> Filter {
        let mut items = Vec::new();
        for expr in [self.expr, other.expr] {
            match expr {
                Expr::And(inner) => items.extend(inner),
                expr => items.push(expr),
            }
        }
        Filter {
            expr: Expr::And(items),
        }
    }

    /// Checks every column against `columns` and renders SQL, e.g. `("status" = 'x') AND ("n" > 5)`.
    /// Identifiers double-quoted with " doubled; strings single-quoted with ' doubled; numbers as written
    /// (validated); TRUE/FALSE/NULL as keywords.
    pub fn to_sql(&self, columns: &[ColumnInfo]) -> ApiResult<String> {
        let mut out = String::new();
        render(&self.expr, columns, &mut out)?;
        Ok(out)
    }
}

/// One condition of the JSON filter form, e.g. {"column":"age","operator":"gt","values":[30]}.
#[derive(Debug, Clone, Deserialize)]
pub struct Condition {
    pub column: String,
    /// eq ne gt ge lt le in not_in like not_like ilike not_ilike between not_between is_null
    /// is_not_null (also the symbols = != <> > >= < <=); unknown => 400 listing the valid ones.
    #[serde(default = "default_operator")]
    pub operator: String,
    /// JSON scalars: string, number, bool (null only via is_null). Wrong arity => 400
    /// (between needs 2, is_null 0, eq/ne/gt.. 1, in/not_in >=1). Arrays/objects as values only
    /// against a JSON column, else 400.
    #[serde(default)]
    pub values: Vec<Value>,
    /// Convenience: a single value instead of `values`.
    #[serde(default)]
    pub value: Option<Value>,
}

fn default_operator() -> String {
    "eq".to_string()
}

/// What a JSON-form operator does; the arity is checked against it.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Cmp(CmpOp),
    In(bool),
    Like { negated: bool, ilike: bool },
    Between(bool),
    IsNull(bool),
}

impl Kind {
    fn arity(self) -> String {
        match self {
            Self::Cmp(_) | Self::Like { .. } => "exactly 1 value".to_string(),
            Self::In(_) => format!("between 1 and {MAX_IN_ITEMS} values"),
            Self::Between(_) => "exactly 2 values".to_string(),
            Self::IsNull(_) => "no values".to_string(),
        }
    }
}

impl Condition {
    fn expr(&self, index: usize) -> ApiResult<Expr> {
        let fail = |msg: String| {
            ApiError::bad_request_with(
                format!(
                    "filter condition {index} on column {}: {msg}",
                    show(&self.column)
                ),
                json!({"condition": index, "column": self.column}),
            )
        };
        let values: Vec<&Value> = match (&self.value, self.values.as_slice()) {
            (Some(v), []) => vec![v],
            (Some(_), _) => return Err(fail("give either value or values, not both".into())),
            (None, vs) => vs.iter().collect(),
        };
        let kind = match self.operator.trim().to_ascii_lowercase().as_str() {
            "eq" | "=" => Kind::Cmp(CmpOp::Eq),
            "ne" | "!=" | "<>" => Kind::Cmp(CmpOp::Ne),
            "gt" | ">" => Kind::Cmp(CmpOp::Gt),
            "ge" | ">=" => Kind::Cmp(CmpOp::Ge),
            "lt" | "<" => Kind::Cmp(CmpOp::Lt),
            "le" | "<=" => Kind::Cmp(CmpOp::Le),
            "in" => Kind::In(false),
            "not_in" => Kind::In(true),
            "like" => Kind::Like {
                negated: false,
                ilike: false,
            },
            "not_like" => Kind::Like {
                negated: true,
                ilike: false,
            },
            "ilike" => Kind::Like {
                negated: false,
                ilike: true,
            },
            "not_ilike" => Kind::Like {
                negated: true,
                ilike: true,
            },
            "between" => Kind::Between(false),
            "not_between" => Kind::Between(true),
            "is_null" => Kind::IsNull(false),
            "is_not_null" => Kind::IsNull(true),
            _ => {
                return Err(fail(format!(
                    "unknown operator {}; valid operators: {}",
                    show(&self.operator),
                    OPERATORS.join(", ")
                )))
            }
        };
        let lits = values
            .iter()
            .map(|v| json_literal(v).map_err(&fail))
            .collect::<ApiResult<Vec<_>>>()?;
        let operand = Operand::Column(self.column.clone());
        let lit = |l: &Literal| Operand::Literal(l.clone());
        Ok(match (kind, lits.as_slice()) {
            (Kind::Cmp(op), [v]) => Expr::Compare(operand, op, lit(v)),
            (Kind::In(negated), list) if (1..=MAX_IN_ITEMS).contains(&list.len()) => Expr::In {
                operand,
                negated,
                list: list.to_vec(),
            },
            (Kind::Like { negated, ilike }, [Literal::Str(pattern)]) => Expr::Like {
                operand,
                negated,
                ilike,
                pattern: pattern.clone(),
            },
            (Kind::Like { .. }, [_]) => {
                return Err(fail("the LIKE pattern must be a string".into()))
            }
            (Kind::Between(negated), [low, high]) => Expr::Between {
                operand,
                negated,
                low: lit(low),
                high: lit(high),
            },
            (Kind::IsNull(negated), []) => Expr::IsNull { operand, negated },
            (kind, _) => {
                return Err(fail(format!(
                    "operator {} needs {}, got {}",
                    show(&self.operator),
                    kind.arity(),
                    lits.len()
                )))
            }
        })
    }
}

fn json_literal(value: &Value) -> Result<Literal, String> {
    match value {
        Value::String(s) => string_literal(s),
        Value::Number(n) => {
            let text = n.to_string();
            if is_number(&text) {
                Ok(Literal::Number(text))
            } else {
                Err(format!("unsupported number {}", show(&text)))
            }
        }
        Value::Bool(b) => Ok(Literal::Bool(*b)),
        Value::Null => Err("null is not a value; use the is_null or is_not_null operator".into()),
        Value::Array(_) | Value::Object(_) => Ok(Literal::Json(value.to_string())),
    }
}

fn string_literal(s: &str) -> Result<Literal, String> {
    if s.contains('\0') {
        return Err("NUL characters are not allowed in values".into());
    }
    Ok(Literal::Str(s.to_string()))
}

/// ORDER BY: "col", "col DESC", "a asc, b desc" (also accepts "-col" meaning DESC).
#[derive(Debug, Clone, PartialEq)]
pub struct OrderBy {
    /// (column as written, descending)
    keys: Vec<(String, bool)>,
}

impl OrderBy {
    /// Parses the sort keys; at most 16, anything else 400.
    pub fn parse(text: &str) -> ApiResult<OrderBy> {
        let mut p = Parser::new(text, "order by", ORDER_ALLOWED)?;
        let mut keys = Vec::new();
        loop {
            if keys.len() == MAX_ORDER_KEYS {
                let detail = format!("more than {MAX_ORDER_KEYS} sort keys are not allowed");
                return Err(p.reject(p.pos(), detail));
            }
            let minus = matches!(p.tok(), Tok::Minus);
            if minus {
                p.advance();
            }
            let column = p.parse_column("a column")?;
            let direction_pos = p.pos();
            let direction = if p.eat_kw("ASC") {
                Some(false)
            } else if p.eat_kw("DESC") {
                Some(true)
            } else {
                None
            };
            if minus && direction.is_some() {
                let detail = "a \"-\" prefix cannot be combined with ASC or DESC";
                return Err(p.reject(direction_pos, detail));
            }
            keys.push((column, minus || direction == Some(true)));
            if !matches!(p.tok(), Tok::Comma) {
                break;
            }
            p.advance();
        }
        p.expect_end("ASC, DESC, \",\" or the end of the order by")?;
        Ok(OrderBy { keys })
    }

    /// `"a" ASC, "b" DESC` (unknown column => 400).
    pub fn to_sql(&self, columns: &[ColumnInfo]) -> ApiResult<String> {
        let keys = self
            .keys
            .iter()
            .map(|(name, desc)| {
                let col = resolve(name, columns, "order by")?;
                let dir = if *desc { "DESC" } else { "ASC" };
                Ok(format!("{} {dir}", quote_ident(&col.name)))
            })
            .collect::<ApiResult<Vec<_>>>()?;
        Ok(keys.join(", "))
    }
}

// ---------------------------------------------------------------- lexer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// An unquoted identifier or keyword.
    Word(String),
    /// A "double quoted" identifier, unescaped.
    Quoted(String),
    /// A 'string' literal, unescaped.
    Str(String),
    Num(String),
    Op(CmpOp),
    LParen,
    RParen,
    Comma,
    Minus,
    /// Lexing stopped here; the text says why. Always the last token.
    Bad(String),
    /// End of input. Always the last token.
    End,
}

#[derive(Debug)]
struct Token {
    tok: Tok,
    /// Byte range in the source.
    pos: usize,
    end: usize,
}

/// Splits `src` into tokens, stopping at the first character outside the grammar.
fn lex(src: &str, allowed: &str) -> Vec<Token> {
    let bytes = src.as_bytes();
    let is_word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
    let mut toks = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        let next = bytes.get(i + 1).copied();
        if bytes[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let (tok, len) = match bytes[i] {
            b'-' if next == Some(b'-') => (Tok::Bad(not_allowed("comment", "--", allowed)), 2),
            b'/' if next == Some(b'*') => (Tok::Bad(not_allowed("comment", "/*", allowed)), 2),
            b'(' => (Tok::LParen, 1),
            b')' => (Tok::RParen, 1),
            b',' => (Tok::Comma, 1),
            b'=' if next == Some(b'=') => (Tok::Op(CmpOp::Eq), 2),
            b'=' => (Tok::Op(CmpOp::Eq), 1),
            b'!' if next == Some(b'=') => (Tok::Op(CmpOp::Ne), 2),
            b'<' if next == Some(b'>') => (Tok::Op(CmpOp::Ne), 2),
            b'<' if next == Some(b'=') => (Tok::Op(CmpOp::Le), 2),
            b'<' => (Tok::Op(CmpOp::Lt), 1),
            b'>' if next == Some(b'=') => (Tok::Op(CmpOp::Ge), 2),
            b'>' => (Tok::Op(CmpOp::Gt), 1),
            quote @ (b'\'' | b'"') => match unquote(src, i, quote as char) {
                Some((value, end)) if quote == b'\'' => (Tok::Str(value), end - i),
                Some((value, end)) => (Tok::Quoted(value), end - i),
                None => {
                    let what = if quote == b'\'' {
                        "unterminated string"
                    } else {
                        "unterminated quoted identifier"
                    };
                    let tok = Tok::Bad(format!("{what} {}", show(&src[i..])));
                    (tok, bytes.len() - i)
                }
            },
            b'0'..=b'9' | b'-' if next.is_some_and(|b| b.is_ascii_digit()) || bytes[i] != b'-' => {
                let len = number_len(&bytes[i..]);
                if bytes.get(i + len).is_some_and(is_word) {
                    let run = bytes[i..]
                        .iter()
                        .take_while(|b| is_word(b) || **b == b'.' || **b == b'-')
                        .count();
                    let detail = format!("malformed number {}", show(&src[i..i + run]));
                    (Tok::Bad(detail), run)
                } else {
                    (Tok::Num(src[i..i + len].to_string()), len)
                }
            }
            b'-' => (Tok::Minus, 1),
            b if b.is_ascii_alphabetic() || b == b'_' => {
                let len = bytes[i..].iter().take_while(|b| is_word(b)).count();
                (Tok::Word(src[i..i + len].to_string()), len)
            }
            _ => {
                let len = src[i..].chars().next().map_or(1, char::len_utf8);
                (Tok::Bad(not_allowed("", &src[i..i + len], allowed)), len)
            }
        };
        i += len;
        let bad = matches!(tok, Tok::Bad(_));
        toks.push(Token {
            tok,
            pos: start,
            end: i,
        });
        if bad {
            return toks;
        }
    }
    toks.push(Token {
        tok: Tok::End,
        pos: src.len(),
        end: src.len(),
    });
    toks
}

fn not_allowed(kind: &str, token: &str, allowed: &str) -> String {
    let sep = if kind.is_empty() { "" } else { " " };
    format!("{kind}{sep}{} is not allowed {allowed}", show(token))
}

/// Reads a quoted token starting at `start` (doubled quotes escape one); returns the unescaped
/// text and the byte offset after the closing quote, or None when it is not closed.
fn unquote(src: &str, start: usize, quote: char) -> Option<(String, usize)> {
    let mut value = String::new();
    let mut i = start + 1;
    loop {
        let close = i + src[i..].find(quote)?;
        value.push_str(&src[i..close]);
        if src[close + 1..].starts_with(quote) {
            value.push(quote);
            i = close + 2;
        } else {
            return Some((value, close + 1));
        }
    }
}

/// Length of the number at the start of `b`: `-?digits(.digits)?([eE][+-]?digits)?`; 0 if none.
fn number_len(b: &[u8]) -> usize {
    let digits = |from: usize| {
        b.get(from..)
            .unwrap_or_default()
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    let mut i = usize::from(b.first() == Some(&b'-'));
    let int = digits(i);
    if int == 0 {
        return 0;
    }
    i += int;
    if b.get(i) == Some(&b'.') {
        let frac = digits(i + 1);
        if frac > 0 {
            i += 1 + frac;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(b.get(i + 1), Some(b'+' | b'-')));
        let exp = digits(i + 1 + sign);
        if exp > 0 {
            i += 1 + sign + exp;
        }
    }
    i
}

fn is_number(text: &str) -> bool {
    !text.is_empty() && number_len(text.as_bytes()) == text.len()
}

/// A token for a message: Debug-quoted (control characters escaped) and cut at 40 characters.
fn show(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((cut, _)) => format!("{:?}", format!("{}…", &text[..cut])),
        None => format!("{text:?}"),
    }
}

fn check_text(text: &str, what: &str) -> ApiResult<()> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(ApiError::bad_request(format!(
            "{what} is too long: {} bytes (the limit is {MAX_TEXT_BYTES})",
            text.len()
        )));
    }
    if let Some(pos) = text.find('\0') {
        return Err(ApiError::bad_request(format!(
            "{what} rejected at position {pos}: NUL characters are not allowed"
        )));
    }
    if text.bytes().all(|b| b.is_ascii_whitespace()) {
        return Err(ApiError::bad_request(format!("{what} is empty")));
    }
    Ok(())
}

// ---------------------------------------------------------------- parser

/// Recursive descent over the tokens; `depth` bounds recursion through parentheses and NOT.
struct Parser<'a> {
    src: &'a str,
    what: &'static str,
    allowed: &'static str,
    toks: Vec<Token>,
    /// Index of the current token; never moves past the last (End or Bad).
    at: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn new(src: &'a str, what: &'static str, allowed: &'static str) -> ApiResult<Self> {
        check_text(src, what)?;
        Ok(Self {
            src,
            what,
            allowed,
            toks: lex(src, allowed),
            at: 0,
            depth: 0,
        })
    }

    fn tok(&self) -> &Tok {
        &self.toks[self.at].tok
    }

    fn pos(&self) -> usize {
        self.toks[self.at].pos
    }

    fn next_tok(&self) -> &Tok {
        &self.toks[(self.at + 1).min(self.toks.len() - 1)].tok
    }

    fn advance(&mut self) {
        if self.at + 1 < self.toks.len() {
            self.at += 1;
        }
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.tok(), Tok::Word(w) if w.eq_ignore_ascii_case(kw))
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        let hit = self.is_kw(kw);
        if hit {
            self.advance();
        }
        hit
    }

    fn reject(&self, pos: usize, detail: impl Display) -> ApiError {
        ApiError::bad_request(format!(
            "{} rejected at position {pos}: {detail}",
            self.what
        ))
    }

    /// The error for the current token when `expected` was wanted instead.
    fn unexpected(&self, expected: &str) -> ApiError {
        let t = &self.toks[self.at];
        match &t.tok {
            Tok::Bad(detail) => self.reject(t.pos, detail),
            Tok::End => self.reject(
                t.pos,
                format!("the {} ends early; expected {expected}", self.what),
            ),
            _ => self.reject(
                t.pos,
                format!(
                    "{} is not allowed here; expected {expected} {}",
                    show(&self.src[t.pos..t.end]),
                    self.allowed
                ),
            ),
        }
    }

    fn expect(&mut self, want: &Tok, expected: &str) -> ApiResult<()> {
        if self.tok() == want {
            self.advance();
            Ok(())
        } else {
            Err(self.unexpected(expected))
        }
    }

    fn expect_end(&self, expected: &str) -> ApiResult<()> {
        match self.tok() {
            Tok::End => Ok(()),
            _ => Err(self.unexpected(expected)),
        }
    }

    /// Enters one nesting level (a parenthesis or NOT) at `pos`.
    fn nest(&mut self, pos: usize) -> ApiResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.reject(
                pos,
                format!("nesting deeper than {MAX_DEPTH} levels is not allowed"),
            ));
        }
        Ok(())
    }

    fn parse_or(&mut self) -> ApiResult<Expr> {
        self.parse_chain("OR", Self::parse_and, Expr::Or)
    }

    fn parse_and(&mut self) -> ApiResult<Expr> {
        self.parse_chain("AND", Self::parse_not, Expr::And)
    }

    /// `part (kw part)*`: one part as itself, several as a flat `join` list.
    fn parse_chain(
        &mut self,
        kw: &str,
        part: fn(&mut Self) -> ApiResult<Expr>,
        join: fn(Vec<Expr>) -> Expr,
    ) -> ApiResult<Expr> {
        let first = part(self)?;
        if !self.is_kw(kw) {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.eat_kw(kw) {
            items.push(part(self)?);
        }
        Ok(join(items))
    }

    fn parse_not(&mut self) -> ApiResult<Expr> {
        if !self.is_kw("NOT") {
            return self.parse_predicate();
        }
        self.nest(self.pos())?;
        self.advance();
        let inner = self.parse_not()?;
        self.depth -= 1;
        Ok(Expr::Not(Box::new(inner)))
    }

    fn parse_predicate(&mut self) -> ApiResult<Expr> {
        if matches!(self.tok(), Tok::LParen) {
            self.nest(self.pos())?;
            self.advance();
            let inner = self.parse_or()?;
            self.expect(&Tok::RParen, "AND, OR or \")\"")?;
            self.depth -= 1;
            return Ok(inner);
        }
        let operand = self.parse_operand()?;
        let negated = self.eat_kw("NOT");
        if let (Tok::Op(op), false) = (self.tok(), negated) {
            let op = *op;
            self.advance();
            return Ok(Expr::Compare(operand, op, self.parse_operand()?));
        }
        if self.eat_kw("IN") {
            let list = self.parse_in_list()?;
            return Ok(Expr::In {
                operand,
                negated,
                list,
            });
        }
        if self.eat_kw("BETWEEN") {
            let low = self.parse_operand()?;
            if !self.eat_kw("AND") {
                return Err(self.unexpected("AND of BETWEEN"));
            }
            let high = self.parse_operand()?;
            return Ok(Expr::Between {
                operand,
                negated,
                low,
                high,
            });
        }
        let ilike = self.is_kw("ILIKE");
        if ilike || self.is_kw("LIKE") {
            self.advance();
            let Tok::Str(pattern) = self.tok() else {
                return Err(self.unexpected("a 'quoted' LIKE pattern"));
            };
            let pattern = pattern.clone();
            self.advance();
            return Ok(Expr::Like {
                operand,
                negated,
                ilike,
                pattern,
            });
        }
        if negated {
            return Err(self.unexpected("IN, BETWEEN, LIKE or ILIKE after NOT"));
        }
        if self.eat_kw("IS") {
            let negated = self.eat_kw("NOT");
            if !self.eat_kw("NULL") {
                return Err(self.unexpected("NULL after IS"));
            }
            return Ok(Expr::IsNull { operand, negated });
        }
        match operand {
            Operand::Column(name) => Ok(Expr::Column(name)),
            Operand::Literal(Literal::Bool(b)) => Ok(Expr::Bool(b)),
            Operand::Literal(_) => {
                Err(self.unexpected("a comparison, IN, BETWEEN, LIKE or IS after a literal"))
            }
        }
    }

    fn parse_in_list(&mut self) -> ApiResult<Vec<Literal>> {
        self.expect(&Tok::LParen, "\"(\" after IN")?;
        let mut list = Vec::new();
        loop {
            if list.len() == MAX_IN_ITEMS {
                let detail = format!("an IN list may hold at most {MAX_IN_ITEMS} items");
                return Err(self.reject(self.pos(), detail));
            }
            let Some(literal) = self.literal() else {
                return Err(self.unexpected("a literal"));
            };
            list.push(literal);
            self.advance();
            if !matches!(self.tok(), Tok::Comma) {
                break;
            }
            self.advance();
        }
        self.expect(&Tok::RParen, "\",\" or \")\"")?;
        Ok(list)
    }

    fn parse_operand(&mut self) -> ApiResult<Operand> {
        if let Some(literal) = self.literal() {
            self.advance();
            return Ok(Operand::Literal(literal));
        }
        Ok(Operand::Column(self.parse_column("a column or literal")?))
    }

    /// The current token as a literal, if it is one (does not advance).
    fn literal(&self) -> Option<Literal> {
        match self.tok() {
            Tok::Str(s) => Some(Literal::Str(s.clone())),
            Tok::Num(n) => Some(Literal::Number(n.clone())),
            Tok::Word(w) if w.eq_ignore_ascii_case("TRUE") => Some(Literal::Bool(true)),
            Tok::Word(w) if w.eq_ignore_ascii_case("FALSE") => Some(Literal::Bool(false)),
            Tok::Word(w) if w.eq_ignore_ascii_case("NULL") => Some(Literal::Null),
            _ => None,
        }
    }

    /// A bare (non-reserved) or "quoted" column name; a following "(" is a function call.
    fn parse_column(&mut self, expected: &str) -> ApiResult<String> {
        let name = match self.tok() {
            Tok::Word(w) if !RESERVED.iter().any(|r| w.eq_ignore_ascii_case(r)) => w.clone(),
            Tok::Quoted(q) => q.clone(),
            _ => return Err(self.unexpected(expected)),
        };
        if matches!(self.next_tok(), Tok::LParen) {
            let t = &self.toks[self.at];
            let call = format!("{}(", &self.src[t.pos..t.end]);
            return Err(self.reject(t.pos, not_allowed("function call", &call, self.allowed)));
        }
        self.advance();
        Ok(name)
    }
}

// ---------------------------------------------------------------- renderer

/// The table's column named `name` (exact spelling first, then ignoring ASCII case like DuckDB).
fn resolve<'c>(name: &str, columns: &'c [ColumnInfo], context: &str) -> ApiResult<&'c ColumnInfo> {
    super::find_column(columns, name).ok_or_else(|| {
        let available: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
        ApiError::bad_request_with(
            format!("unknown column {} in {context}", show(name)),
            json!({"column": name, "available": available}),
        )
    })
}

fn render(expr: &Expr, columns: &[ColumnInfo], out: &mut String) -> ApiResult<()> {
    let not = |negated: bool| if negated { "NOT " } else { "" };
    match expr {
        Expr::Or(items) | Expr::And(items) => {
            let sep = if matches!(expr, Expr::Or(_)) {
                " OR "
            } else {
                " AND "
            };
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(sep);
                }
                out.push('(');
                render(item, columns, out)?;
                out.push(')');
            }
        }
        Expr::Not(inner) => {
            out.push_str("NOT (");
            render(inner, columns, out)?;
            out.push(')');
        }
        Expr::Compare(left, op, right) => {
            let json = json_context(&[left, right], columns);
            render_operand(left, columns, json, out)?;
            out.push_str(&format!(" {} ", op.sql()));
            render_operand(right, columns, json, out)?;
        }
        Expr::In {
            operand,
            negated,
            list,
        } => {
            let json = json_context(&[operand], columns);
            render_operand(operand, columns, json, out)?;
            out.push_str(&format!(" {}IN (", not(*negated)));
            for (i, literal) in list.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                render_literal(literal, json, out)?;
            }
            out.push(')');
        }
        Expr::Between {
            operand,
            negated,
            low,
            high,
        } => {
            let json = json_context(&[operand, low, high], columns);
            render_operand(operand, columns, json, out)?;
            out.push_str(&format!(" {}BETWEEN ", not(*negated)));
            render_operand(low, columns, json, out)?;
            out.push_str(" AND ");
            render_operand(high, columns, json, out)?;
        }
        Expr::Like {
            operand,
            negated,
            ilike,
            pattern,
        } => {
            render_operand(operand, columns, false, out)?;
            let like = if *ilike { "ILIKE" } else { "LIKE" };
            out.push_str(&format!(" {}{like} {}", not(*negated), sql_string(pattern)));
        }
        Expr::IsNull { operand, negated } => {
            render_operand(operand, columns, false, out)?;
            out.push_str(&format!(" IS {}NULL", not(*negated)));
        }
        Expr::Column(name) => {
            let col = resolve(name, columns, "filter")?;
            let ty = col.data_type.as_str();
            if !ty.eq_ignore_ascii_case("BOOLEAN") && !ty.eq_ignore_ascii_case("BOOL") {
                return Err(ApiError::bad_request(format!(
                    "column {} is {ty}, not BOOLEAN, so it cannot be a condition by itself; compare it with a value",
                    show(&col.name)
                )));
            }
            out.push_str(&quote_ident(&col.name));
        }
        Expr::Bool(b) => out.push_str(if *b { "TRUE" } else { "FALSE" }),
    }
    Ok(())
}

/// Whether a comparison involves a JSON column: then both sides compare as JSON values, so
/// `'{"a": 1}'`, `'{"a":1}'` and the JSON form's `{"a":1}` all match the same rows.
fn json_context(operands: &[&Operand], columns: &[ColumnInfo]) -> bool {
    operands.iter().any(|operand| match operand {
        Operand::Column(name) => {
            super::find_column(columns, name).is_some_and(|c| is_json_type(&c.data_type))
        }
        Operand::Literal(_) => false,
    })
}

fn render_operand(
    operand: &Operand,
    columns: &[ColumnInfo],
    json: bool,
    out: &mut String,
) -> ApiResult<()> {
    match operand {
        Operand::Column(name) => {
            let col = resolve(name, columns, "filter")?;
            // json() re-serializes compactly, so spacing in stored or given text does not matter.
            if json && is_json_type(&col.data_type) {
                out.push_str(&format!("json({})", quote_ident(&col.name)));
            } else {
                out.push_str(&quote_ident(&col.name));
            }
        }
        Operand::Literal(literal) => render_literal(literal, json, out)?,
    }
    Ok(())
}

/// A literal as SQL; compared with a JSON column (`json`), as the JSON value it stands for.
fn render_literal(literal: &Literal, json: bool, out: &mut String) -> ApiResult<()> {
    let json_text = match (literal, json) {
        (Literal::Null, _) => None,
        (Literal::Str(s), true) => Some(json_filter_text(s)),
        (Literal::Number(n), true) => Some(n.clone()),
        (Literal::Bool(b), true) => Some(b.to_string()),
        (Literal::Json(text), true) => Some(text.clone()),
        (Literal::Json(_), false) => {
            return Err(ApiError::bad_request(
                "values must be strings, numbers or booleans, not arrays or objects \
                 (those compare only with JSON columns)",
            ))
        }
        _ => None,
    };
    if let Some(text) = json_text {
        out.push_str(&format!("json({})", sql_string(&text)));
        return Ok(());
    }
    match literal {
        Literal::Str(s) => out.push_str(&sql_string(s)),
        Literal::Number(n) => out.push_str(n),
        Literal::Bool(true) => out.push_str("TRUE"),
        Literal::Bool(false) => out.push_str("FALSE"),
        Literal::Null | Literal::Json(_) => out.push_str("NULL"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, data_type: &str) -> ColumnInfo {
        ColumnInfo {
            name: name.to_string(),
            data_type: data_type.to_string(),
            nullable: true,
            ordinal_position: 0,
            default: None,
        }
    }

    fn cols() -> Vec<ColumnInfo> {
        vec![
            col("status", "VARCHAR"),
            col("created_at", "TIMESTAMP"),
            col("n", "INTEGER"),
            col("a", "INTEGER"),
            col("b", "INTEGER"),
            col("c", "INTEGER"),
            col("Name", "VARCHAR"),
            col("flag", "BOOLEAN"),
            col("My Col", "VARCHAR"),
            col("we\"ird", "VARCHAR"),
            col("order", "INTEGER"),
        ]
    }

    fn sql(text: &str) -> String {
        Filter::parse(text)
            .unwrap_or_else(|e| panic!("{text:?} did not parse: {e}"))
            .to_sql(&cols())
            .unwrap_or_else(|e| panic!("{text:?} did not render: {e}"))
    }

    fn message(err: ApiError) -> String {
        assert!(
            err.status() == axum::http::StatusCode::BAD_REQUEST,
            "not a 400: {err}"
        );
        err.to_string()
    }

    /// The 400 message for a filter that must be rejected (at parse or render time).
    fn rejected(text: &str) -> String {
        match Filter::parse(text).and_then(|f| f.to_sql(&cols())) {
            Ok(sql) => panic!("{text:?} was accepted as {sql}"),
            Err(e) => message(e),
        }
    }

    fn details(err: ApiError) -> Value {
        assert_eq!(
            err.status(),
            axum::http::StatusCode::BAD_REQUEST,
            "not a 400: {err}"
        );
        err.details().cloned().unwrap_or(Value::Null)
    }

    #[test]
    fn renders_every_grammar_form() {
        let cases = [
            ("status = 'deleted'", r#""status" = 'deleted'"#),
            ("n == 5", r#""n" = 5"#),
            ("n != 5", r#""n" <> 5"#),
            ("n <> 5", r#""n" <> 5"#),
            ("n < 5", r#""n" < 5"#),
            ("n <= 5", r#""n" <= 5"#),
            ("n > 5", r#""n" > 5"#),
            ("n>=5", r#""n" >= 5"#),
            ("5 < n", r#"5 < "n""#),
            ("a = b", r#""a" = "b""#),
            ("1 = 1", "1 = 1"),
            ("n = NULL", r#""n" = NULL"#),
            ("flag = true", r#""flag" = TRUE"#),
            ("n IN (1, 2,3)", r#""n" IN (1, 2, 3)"#),
            (
                "status NOT IN ('a', NULL, TRUE)",
                r#""status" NOT IN ('a', NULL, TRUE)"#,
            ),
            ("n BETWEEN 1 AND 10", r#""n" BETWEEN 1 AND 10"#),
            ("n NOT BETWEEN a AND b", r#""n" NOT BETWEEN "a" AND "b""#),
            ("status LIKE 'x%'", r#""status" LIKE 'x%'"#),
            ("status NOT LIKE '_y'", r#""status" NOT LIKE '_y'"#),
            ("status ILIKE 'x%'", r#""status" ILIKE 'x%'"#),
            ("status NOT ILIKE 'x%'", r#""status" NOT ILIKE 'x%'"#),
            ("status IS NULL", r#""status" IS NULL"#),
            ("status IS NOT NULL", r#""status" IS NOT NULL"#),
            ("flag", r#""flag""#),
            ("TRUE", "TRUE"),
            ("false", "FALSE"),
            ("(n = 1)", r#""n" = 1"#),
            (
                "status = 'deleted' AND created_at < '2024-01-01'",
                r#"("status" = 'deleted') AND ("created_at" < '2024-01-01')"#,
            ),
            (
                "a = 1 OR b = 2 OR c = 3",
                r#"("a" = 1) OR ("b" = 2) OR ("c" = 3)"#,
            ),
        ];
        for (text, want) in cases {
            assert_eq!(sql(text), want, "for {text:?}");
        }
    }

    #[test]
    fn keywords_and_columns_are_case_insensitive() {
        assert_eq!(
            sql("NAME is not null and N in (1) Or STATUS like 'a' aNd n between 1 AnD 2"),
            r#"(("Name" IS NOT NULL) AND ("n" IN (1))) OR (("status" LIKE 'a') AND ("n" BETWEEN 1 AND 2))"#
        );
        assert_eq!(sql(r#""NAME" = 'x'"#), r#""Name" = 'x'"#);
    }

    #[test]
    fn and_binds_tighter_than_or() {
        assert_eq!(
            sql("a = 1 OR b = 2 AND c = 3"),
            r#"("a" = 1) OR (("b" = 2) AND ("c" = 3))"#
        );
        assert_eq!(
            sql("(a = 1 OR b = 2) AND c = 3"),
            r#"(("a" = 1) OR ("b" = 2)) AND ("c" = 3)"#
        );
        // BETWEEN's AND belongs to BETWEEN.
        assert_eq!(
            sql("n BETWEEN 1 AND 2 AND flag"),
            r#"("n" BETWEEN 1 AND 2) AND ("flag")"#
        );
    }

    #[test]
    fn not_forms() {
        assert_eq!(sql("NOT flag"), r#"NOT ("flag")"#);
        assert_eq!(sql("not not flag"), r#"NOT (NOT ("flag"))"#);
        assert_eq!(
            sql("NOT a = 1 AND b = 2"),
            r#"(NOT ("a" = 1)) AND ("b" = 2)"#
        );
        assert_eq!(
            sql("NOT (a = 1 OR b = 2)"),
            r#"NOT (("a" = 1) OR ("b" = 2))"#
        );
        assert!(rejected("a NOT = 1").contains(r#""=""#));
    }

    #[test]
    fn quoted_identifiers_strings_unicode_and_numbers() {
        assert_eq!(sql(r#""My Col" = 'x'"#), r#""My Col" = 'x'"#);
        assert_eq!(sql(r#""we""ird" = 'x'"#), r#""we""ird" = 'x'"#);
        assert_eq!(sql(r#""order" = 1"#), r#""order" = 1"#);
        assert_eq!(sql("status = 'it''s'"), r#""status" = 'it''s'"#);
        assert_eq!(sql("status = ''"), r#""status" = ''"#);
        assert_eq!(sql("status = 'a\\b'"), r#""status" = 'a\b'"#);
        assert_eq!(
            sql("status = 'žluťoučký 🐴'"),
            r#""status" = 'žluťoučký 🐴'"#
        );
        assert_eq!(
            sql("status = 'a;b -- /* c */'"),
            r#""status" = 'a;b -- /* c */'"#
        );
        assert_eq!(sql("n = -5"), r#""n" = -5"#);
        assert_eq!(sql("n > -1.25e-3"), r#""n" > -1.25e-3"#);
        assert_eq!(sql("n < 6.02E+23"), r#""n" < 6.02E+23"#);
        assert_eq!(
            sql("n = 123456789012345678901234567890.123456789"),
            r#""n" = 123456789012345678901234567890.123456789"#
        );
        assert!(rejected("n = 1e").contains(r#""1e""#));
        assert!(rejected("n = 12abc").contains(r#""12abc""#));
        assert!(rejected("n = 0x10").contains(r#""0x10""#));
        assert!(rejected("n = 5.").contains(r#"".""#));
        assert!(rejected("n = - 5").contains(r#""-""#));
        assert!(rejected("status = \"x\"").contains("unknown column \"x\""));
    }

    #[test]
    fn injection_attempts_are_rejected_naming_the_token() {
        let cases = [
            ("1=1; DROP TABLE x", r#"position 3: ";" is not allowed"#),
            ("a = 1 -- x", r#"position 6: comment "--""#),
            ("a = 1 /* x */", r#"position 6: comment "/*""#),
            (
                "a IN (SELECT 1)",
                r#"position 6: "SELECT" is not allowed here"#,
            ),
            ("read_csv('/etc/passwd')", r#"function call "read_csv(""#),
            (
                r#""read_csv"('/etc/passwd')"#,
                r#"function call "\"read_csv\"(""#,
            ),
            ("a = (SELECT 1)", r#"position 4: "(" is not allowed here"#),
            ("main.data.a = 1", r#"position 4: "." is not allowed"#),
            (
                "a = 'x' UNION SELECT 1",
                r#"position 8: "UNION" is not allowed here"#,
            ),
            (
                "a = 'unterminated",
                r#"position 4: unterminated string "'unterminated""#,
            ),
            (
                r#""a = 1"#,
                r#"position 0: unterminated quoted identifier "\"a = 1""#,
            ),
            ("SELECT 1", r#"position 0: "SELECT" is not allowed"#),
            ("a = 1 b", r#"position 6: "b" is not allowed here"#),
            ("a = 1)", r#"position 5: ")" is not allowed here"#),
            ("(a = 1", "position 6: the where filter ends early"),
            ("a = $$x$$", r#""$" is not allowed"#),
            ("a = 1 || 2", r#""|" is not allowed"#),
            ("a = 'x'::int", r#"":" is not allowed"#),
            (
                "a = e'\\x41'",
                "position 5: \"'\\\\x41'\" is not allowed here",
            ),
            ("a = 1 × 2", r#"position 6: "×" is not allowed"#),
            ("a = 1\0", "NUL characters are not allowed"),
            ("a IN ()", r#"")" is not allowed here; expected a literal"#),
            ("a IN (b)", r#""b" is not allowed here; expected a literal"#),
            (
                "a LIKE b",
                r#""b" is not allowed here; expected a 'quoted' LIKE pattern"#,
            ),
            ("a IS 1", "expected NULL after IS"),
            ("'x'", "ends early; expected a comparison"),
            ("NULL", "ends early"),
            (
                "a BETWEEN 1 OR 2",
                r#""OR" is not allowed here; expected AND of BETWEEN"#,
            ),
            ("a = 1 AND", "ends early; expected a column or literal"),
            ("a = = 1", r#""=" is not allowed here"#),
        ];
        for (text, want) in cases {
            let msg = rejected(text);
            assert!(msg.starts_with("where filter "), "{text:?}: {msg}");
            assert!(msg.contains(want), "{text:?}: {msg:?} lacks {want:?}");
        }
        assert!(rejected(";").contains(
            "(only columns, literals, comparisons, AND/OR/NOT, IN, BETWEEN, LIKE, IS NULL)"
        ));
        assert_eq!(rejected(""), "where filter is empty");
        assert_eq!(rejected(" \t\n "), "where filter is empty");
    }

    #[test]
    fn limits() {
        let ok = format!("{}a = 1{}", "(".repeat(64), ")".repeat(64));
        assert_eq!(sql(&ok), r#""a" = 1"#);
        let deep = format!("{}a = 1{}", "(".repeat(65), ")".repeat(65));
        assert!(rejected(&deep).contains("position 64: nesting deeper than 64 levels"));
        let huge = "(".repeat(60_000);
        assert!(rejected(&huge).contains("nesting deeper"));
        let nots = format!("{}flag", "NOT ".repeat(10_000));
        assert!(rejected(&nots).contains("nesting deeper"));
        let long = format!("a = '{}'", "x".repeat(MAX_TEXT_BYTES));
        assert!(rejected(&long).starts_with("where filter is too long"));

        let items = |n: usize| format!("a IN ({})", vec!["1"; n].join(","));
        assert!(Filter::parse(&items(MAX_IN_ITEMS)).is_ok());
        assert!(rejected(&items(MAX_IN_ITEMS + 1)).contains("at most 10000 items"));
    }

    #[test]
    fn unknown_and_non_boolean_columns() {
        let err = Filter::parse("x = 1 AND a = 2")
            .and_then(|f| f.to_sql(&cols()))
            .unwrap_err();
        assert_eq!(err.to_string(), r#"unknown column "x" in filter"#);
        let details = details(err);
        assert_eq!(details["column"], "x");
        assert_eq!(details["available"][0], "status");
        assert_eq!(
            details["available"].as_array().map(Vec::len),
            Some(cols().len())
        );
        assert!(rejected("status").contains(r#"column "status" is VARCHAR, not BOOLEAN"#));
        assert!(rejected("order = 1").contains(r#""order" is not allowed here"#));
    }

    #[test]
    fn and_combines_filters() {
        let f = Filter::parse("a = 1 AND b = 2")
            .and_then(|f| Ok(f.and(Filter::parse("c = 3 OR flag")?)))
            .and_then(|f| f.to_sql(&cols()));
        assert_eq!(
            f.ok().as_deref(),
            Some(r#"("a" = 1) AND ("b" = 2) AND (("c" = 3) OR ("flag"))"#)
        );
    }

    #[test]
    fn keboola_form() {
        let render = |column: &str, values: &[&str], op: Option<&str>| {
            let values: Vec<String> = values.iter().map(|v| v.to_string()).collect();
            Filter::keboola(column, &values, op).and_then(|f| f.to_sql(&cols()))
        };
        assert_eq!(
            render("status", &["x"], None).ok().as_deref(),
            Some(r#""status" = 'x'"#)
        );
        assert_eq!(
            render("STATUS", &["x", "it's"], Some("eq")).ok().as_deref(),
            Some(r#""status" IN ('x', 'it''s')"#)
        );
        assert_eq!(
            render("n", &["5"], Some("ne")).ok().as_deref(),
            Some(r#""n" <> '5'"#)
        );
        assert_eq!(
            render("n", &["5", "6"], Some("NE")).ok().as_deref(),
            Some(r#""n" NOT IN ('5', '6')"#)
        );
        assert!(
            message(render("n", &[], None).unwrap_err()).contains("whereValues must not be empty")
        );
        assert!(message(render("n", &["1"], Some("gt")).unwrap_err()).contains(r#"got "gt""#));
        assert!(
            message(render("nope", &["1"], None).unwrap_err()).contains(r#"unknown column "nope""#)
        );
        assert!(message(render("n", &["a\0"], None).unwrap_err()).contains("NUL"));
    }

    #[test]
    fn json_columns_compare_as_json_values() {
        let columns = [col("doc", "JSON"), col("n", "INTEGER")];
        let text = |f: &str| Filter::parse(f).and_then(|f| f.to_sql(&columns));
        assert_eq!(
            text(r#"doc = '{"a": 1}'"#).unwrap(),
            r#"json("doc") = json('{"a": 1}')"#
        );
        assert_eq!(
            text("doc IN ('x', 5)").unwrap(),
            r#"json("doc") IN (json('"x"'), json('5'))"#
        );
        assert_eq!(
            text("doc LIKE '%a%'").unwrap(),
            r#""doc" LIKE '%a%'"#,
            "LIKE matches the stored text"
        );
        assert_eq!(text("n = '5'").unwrap(), r#""n" = '5'"#);
        let structured = |json: &str| {
            let conditions: Vec<Condition> = serde_json::from_str(json).unwrap();
            Filter::structured(&conditions).and_then(|f| f.to_sql(&columns))
        };
        assert_eq!(
            structured(r#"[{"column":"doc","value":{"a":[1,2]}}]"#).unwrap(),
            r#"json("doc") = json('{"a":[1,2]}')"#
        );
        assert_eq!(
            structured(r#"[{"column":"doc","operator":"in","values":[[1],true]}]"#).unwrap(),
            r#"json("doc") IN (json('[1]'), json('true'))"#
        );
        let err = structured(r#"[{"column":"n","value":{"a":1}}]"#).unwrap_err();
        assert!(message(err).contains("compare only with JSON columns"));
    }

    fn conditions(json: &str) -> ApiResult<String> {
        let conditions: Vec<Condition> =
            serde_json::from_str(json).unwrap_or_else(|e| panic!("bad test json {json}: {e}"));
        Filter::structured(&conditions).and_then(|f| f.to_sql(&cols()))
    }

    #[test]
    fn structured_form() {
        let cases = [
            (
                r#"[{"column":"n","operator":"gt","values":[30]}]"#,
                r#""n" > 30"#,
            ),
            (r#"[{"column":"n","value":30}]"#, r#""n" = 30"#),
            (
                r#"[{"column":"n","operator":">=","value":1.50}]"#,
                r#""n" >= 1.50"#,
            ),
            (
                r#"[{"column":"n","operator":"lt","value":-1e-2}]"#,
                r#""n" < -1e-2"#,
            ),
            (
                r#"[{"column":"flag","operator":"ne","value":true}]"#,
                r#""flag" <> TRUE"#,
            ),
            (
                r#"[{"column":"status","operator":"in","values":["a","b'c"]},{"column":"n","operator":"le","value":9}]"#,
                r#"("status" IN ('a', 'b''c')) AND ("n" <= 9)"#,
            ),
            (
                r#"[{"column":"n","operator":"not_in","values":[1]}]"#,
                r#""n" NOT IN (1)"#,
            ),
            (
                r#"[{"column":"Name","operator":"like","value":"J%"}]"#,
                r#""Name" LIKE 'J%'"#,
            ),
            (
                r#"[{"column":"Name","operator":"not_like","value":"J%"}]"#,
                r#""Name" NOT LIKE 'J%'"#,
            ),
            (
                r#"[{"column":"Name","operator":"ILIKE","value":"j%"}]"#,
                r#""Name" ILIKE 'j%'"#,
            ),
            (
                r#"[{"column":"n","operator":"between","values":[1,"5"]}]"#,
                r#""n" BETWEEN 1 AND '5'"#,
            ),
            (r#"[{"column":"n","operator":"is_null"}]"#, r#""n" IS NULL"#),
            (
                r#"[{"column":"My Col","operator":"is_not_null"}]"#,
                r#""My Col" IS NOT NULL"#,
            ),
            (
                r#"[{"column":"n","operator":"<>","value":"x'; DROP TABLE t; --"}]"#,
                r#""n" <> 'x''; DROP TABLE t; --'"#,
            ),
        ];
        for (json, want) in cases {
            match conditions(json) {
                Ok(sql) => assert_eq!(sql, want, "for {json}"),
                Err(e) => panic!("{json} failed: {e}"),
            }
        }
    }

    #[test]
    fn structured_form_errors() {
        let cases = [
            ("[]", "no conditions"),
            (
                r#"[{"column":"n","operator":"between","values":[1]}]"#,
                r#"operator "between" needs exactly 2 values, got 1"#,
            ),
            (
                r#"[{"column":"n","operator":"is_null","values":[1]}]"#,
                "needs no values, got 1",
            ),
            (
                r#"[{"column":"n","operator":"eq","values":[1,2]}]"#,
                "needs exactly 1 value, got 2",
            ),
            (
                r#"[{"column":"n","operator":"gt"}]"#,
                "needs exactly 1 value, got 0",
            ),
            (
                r#"[{"column":"n","operator":"in","values":[]}]"#,
                "needs between 1 and 10000 values, got 0",
            ),
            (
                r#"[{"column":"n","operator":"like","value":5}]"#,
                "pattern must be a string",
            ),
            (
                r#"[{"column":"n","operator":"eq","value":[1]}]"#,
                "not arrays or objects",
            ),
            (
                r#"[{"column":"n","operator":"in","values":[{"a":1}]}]"#,
                "not arrays or objects",
            ),
            (
                r#"[{"column":"n","operator":"eq","values":[null]}]"#,
                "use the is_null",
            ),
            (
                r#"[{"column":"n","value":1,"values":[2]}]"#,
                "either value or values",
            ),
            (
                r#"[{"column":"n","operator":"regex","value":"x"}]"#,
                r#"unknown operator "regex"; valid operators: eq, ne, gt"#,
            ),
            (
                r#"[{"column":"x","value":1}]"#,
                r#"unknown column "x" in filter"#,
            ),
        ];
        for (json, want) in cases {
            match conditions(json) {
                Ok(sql) => panic!("{json} was accepted as {sql}"),
                Err(e) => {
                    let msg = message(e);
                    assert!(msg.contains(want), "{json}: {msg:?} lacks {want:?}");
                }
            }
        }
        let err = conditions(r#"[{"column":"n","value":1},{"column":"n","operator":"between"}]"#);
        let details = details(err.unwrap_err());
        assert_eq!(details["condition"], 1);
        assert_eq!(details["column"], "n");
    }

    #[test]
    fn order_by_forms() {
        let render = |text: &str| OrderBy::parse(text).and_then(|o| o.to_sql(&cols()));
        let cases = [
            ("n", r#""n" ASC"#),
            ("n DESC", r#""n" DESC"#),
            ("a asc, b desc", r#""a" ASC, "b" DESC"#),
            ("-n,a", r#""n" DESC, "a" ASC"#),
            (
                r#"NAME Desc, "My Col", "we""ird" ASC, "order""#,
                r#""Name" DESC, "My Col" ASC, "we""ird" ASC, "order" ASC"#,
            ),
        ];
        for (text, want) in cases {
            match render(text) {
                Ok(sql) => assert_eq!(sql, want, "for {text:?}"),
                Err(e) => panic!("{text:?} failed: {e}"),
            }
        }
        let sixteen = vec!["a"; 16].join(", ");
        assert!(render(&sixteen).is_ok());
    }

    #[test]
    fn order_by_errors() {
        let cases = [
            ("", "order by is empty"),
            ("n DESC; DROP TABLE t", r#"position 6: ";" is not allowed"#),
            (
                "n NULLS FIRST",
                r#"position 2: "NULLS" is not allowed here"#,
            ),
            ("random()", r#"function call "random(""#),
            ("1", r#""1" is not allowed here; expected a column"#),
            ("-n DESC", r#"position 3: a "-" prefix cannot be combined"#),
            ("a,", "ends early; expected a column"),
            ("t.a", r#""." is not allowed"#),
            ("order", r#""order" is not allowed here"#),
            ("nope", r#"unknown column "nope" in order by"#),
        ];
        for (text, want) in cases {
            match OrderBy::parse(text).and_then(|o| o.to_sql(&cols())) {
                Ok(sql) => panic!("{text:?} was accepted as {sql}"),
                Err(e) => {
                    let msg = message(e);
                    assert!(msg.contains(want), "{text:?}: {msg:?} lacks {want:?}");
                }
            }
        }
        let seventeen = vec!["a"; 17].join(", ");
        assert!(message(OrderBy::parse(&seventeen).unwrap_err()).contains("more than 16 sort keys"));
    }
}
