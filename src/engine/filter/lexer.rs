//! The filter and order-by lexer: splits client text into tokens that carry their byte positions,
//! stopping at the first character outside the grammar; it must not decide what the tokens mean.

use super::{show, CmpOp};

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
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
pub(super) struct Token {
    pub(super) tok: Tok,
    /// Byte range in the source.
    pub(super) pos: usize,
    pub(super) end: usize,
}

/// Splits `src` into tokens, stopping at the first character outside the grammar.
pub(super) fn lex(src: &str, allowed: &str) -> Vec<Token> {
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

pub(super) fn not_allowed(kind: &str, token: &str, allowed: &str) -> String {
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

pub(super) fn is_number(text: &str) -> bool {
    !text.is_empty() && number_len(text.as_bytes()) == text.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::filter::fixtures::{rejected, sql};

    #[test]
    fn tokens_carry_their_byte_ranges() {
        let spans: Vec<(Tok, usize, usize)> = lex("  n>=-1.5 AND \"é\" IN ('a''b')", "")
            .into_iter()
            .map(|t| (t.tok, t.pos, t.end))
            .collect();
        let word = |w: &str| Tok::Word(w.to_string());
        assert_eq!(
            spans,
            [
                (word("n"), 2, 3),
                (Tok::Op(CmpOp::Ge), 3, 5),
                (Tok::Num("-1.5".into()), 5, 9),
                (word("AND"), 10, 13),
                (Tok::Quoted("é".into()), 14, 18),
                (word("IN"), 19, 21),
                (Tok::LParen, 22, 23),
                (Tok::Str("a'b".into()), 23, 29),
                (Tok::RParen, 29, 30),
                (Tok::End, 30, 30),
            ]
        );
        let bad = lex("n = 1; x", "(…)");
        assert_eq!(bad.len(), 4, "lexing stops at the first bad token");
        assert_eq!((bad[3].pos, bad[3].end), (5, 6));
        assert_eq!(bad[3].tok, Tok::Bad("\";\" is not allowed (…)".into()));
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
}
