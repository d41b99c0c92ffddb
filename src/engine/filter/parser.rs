//! The hand-written recursive-descent grammar of filters (AND/OR/NOT, comparisons, IN, BETWEEN,
//! LIKE/ILIKE, IS [NOT] NULL) and order-by keys; it must not resolve columns or build SQL.

use std::fmt::Display;

use super::lexer::{lex, not_allowed, Tok, Token};
use super::{
    show, Expr, Literal, Operand, OrderKey, MAX_DEPTH, MAX_IN_ITEMS, MAX_ORDER_KEYS, MAX_TEXT_BYTES,
};
use crate::error::{ApiError, ApiResult, ErrorCode};

const FILTER_ALLOWED: &str =
    "(only columns, literals, comparisons, AND/OR/NOT, IN, BETWEEN, LIKE, IS NULL)";
const ORDER_ALLOWED: &str =
    "(only column names, each optionally followed by ASC or DESC or prefixed with -)";

/// Words that cannot be bare column names: DuckDB's reserved words plus this grammar's keywords.
/// Quote them (`"order"`) to name a column.
const RESERVED: &str = "\
    ALL ANALYSE ANALYZE AND ANY ARRAY AS ASC ASYMMETRIC BETWEEN BOTH CASE CAST CHECK COLLATE \
    COLUMN CONSTRAINT CREATE DEFAULT DEFERRABLE DESC DESCRIBE DISTINCT DO ELSE END EXCEPT FALSE \
    FETCH FOR FOREIGN FROM GRANT GROUP HAVING ILIKE IN INITIALLY INTERSECT INTO IS LATERAL \
    LEADING LIKE LIMIT NOT NULL OFFSET ON ONLY OR ORDER PIVOT PIVOT_LONGER PIVOT_WIDER PLACING \
    PRIMARY QUALIFY REFERENCES RETURNING SELECT SHOW SOME SUMMARIZE SYMMETRIC TABLE THEN TO \
    TRAILING TRUE UNION UNIQUE UNPIVOT USING VARIADIC WHEN WHERE WINDOW WITH";

/// Whether `word` is a keyword, so it needs quotes to name a column.
fn is_reserved(word: &str) -> bool {
    RESERVED
        .split_ascii_whitespace()
        .any(|r| word.eq_ignore_ascii_case(r))
}

/// A filter expression: the whole text or a 400 naming the position of the first problem.
pub(super) fn filter(text: &str) -> ApiResult<Expr> {
    let mut p = Parser::new(
        text,
        "where filter",
        FILTER_ALLOWED,
        ErrorCode::InvalidWhereClause,
    )?;
    let expr = p.parse_or()?;
    p.expect_end("AND, OR or the end of the filter")?;
    Ok(expr)
}

/// Sort keys: `col`, `col ASC|DESC` or `-col`, separated by commas.
pub(super) fn order_by(text: &str) -> ApiResult<Vec<OrderKey>> {
    let mut p = Parser::new(text, "order by", ORDER_ALLOWED, ErrorCode::InvalidRequest)?;
    let too_many = format!("more than {MAX_ORDER_KEYS} sort keys are not allowed");
    let keys = p.comma_list(MAX_ORDER_KEYS, &too_many, Parser::parse_order_key)?;
    p.expect_end("ASC, DESC, \",\" or the end of the order by")?;
    Ok(keys)
}

/// Turns away text that is too long, holds a NUL or is blank, before it is lexed.
fn check_text(text: &str, what: &str, code: ErrorCode) -> ApiResult<()> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(ApiError::new(
            code,
            format!(
                "{what} is too long: {} bytes (the limit is {MAX_TEXT_BYTES})",
                text.len()
            ),
        ));
    }
    if let Some(pos) = text.find('\0') {
        return Err(ApiError::new(
            code,
            format!("{what} rejected at position {pos}: NUL characters are not allowed"),
        ));
    }
    if text.bytes().all(|b| b.is_ascii_whitespace()) {
        return Err(ApiError::new(code, format!("{what} is empty")));
    }
    Ok(())
}

/// Recursive descent over the tokens; `depth` bounds recursion through parentheses and NOT.
struct Parser<'a> {
    src: &'a str,
    what: &'static str,
    allowed: &'static str,
    /// The code every refusal carries.
    code: ErrorCode,
    toks: Vec<Token>,
    /// Index of the current token; never moves past the last (End or Bad).
    at: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn new(
        src: &'a str,
        what: &'static str,
        allowed: &'static str,
        code: ErrorCode,
    ) -> ApiResult<Self> {
        check_text(src, what, code)?;
        Ok(Self {
            src,
            what,
            allowed,
            code,
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
        ApiError::new(
            self.code,
            format!("{} rejected at position {pos}: {detail}", self.what),
        )
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
        let mut items = vec![part(self)?];
        while self.eat_kw(kw) {
            items.push(part(self)?);
        }
        Ok(Expr::joined(items, join))
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
        let too_many = format!("an IN list may hold at most {MAX_IN_ITEMS} items");
        let list = self.comma_list(MAX_IN_ITEMS, &too_many, |p| match p.literal() {
            Some(literal) => {
                p.advance();
                Ok(literal)
            }
            None => Err(p.unexpected("a literal")),
        })?;
        self.expect(&Tok::RParen, "\",\" or \")\"")?;
        Ok(list)
    }

    /// `item (, item)*` with at most `max` items; `too_many` says so at the one past them.
    fn comma_list<T>(
        &mut self,
        max: usize,
        too_many: &str,
        item: fn(&mut Self) -> ApiResult<T>,
    ) -> ApiResult<Vec<T>> {
        let mut items = Vec::new();
        loop {
            if items.len() == max {
                return Err(self.reject(self.pos(), too_many));
            }
            items.push(item(self)?);
            if !matches!(self.tok(), Tok::Comma) {
                return Ok(items);
            }
            self.advance();
        }
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

    /// One sort key: `-col`, or `col` optionally followed by ASC or DESC.
    fn parse_order_key(&mut self) -> ApiResult<OrderKey> {
        let minus = matches!(self.tok(), Tok::Minus);
        if minus {
            self.advance();
        }
        let column = self.parse_column("a column")?;
        let direction_pos = self.pos();
        let direction = if self.eat_kw("ASC") {
            Some(false)
        } else if self.eat_kw("DESC") {
            Some(true)
        } else {
            None
        };
        if minus && direction.is_some() {
            let detail = "a \"-\" prefix cannot be combined with ASC or DESC";
            return Err(self.reject(direction_pos, detail));
        }
        Ok(OrderKey {
            column,
            descending: minus || direction == Some(true),
        })
    }

    /// A bare (non-reserved) or "quoted" column name; a following "(" is a function call.
    fn parse_column(&mut self, expected: &str) -> ApiResult<String> {
        let name = match self.tok() {
            Tok::Word(w) if !is_reserved(w) => w.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::filter::fixtures::{cols, message, rejected, sql};
    use crate::engine::filter::{Filter, OrderBy};

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
