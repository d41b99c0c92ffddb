//! Property test of the filter boundary: random grammar-shaped and hostile inputs must either be
//! refused with a 400 or render SQL that DuckDB reads back as exactly the condition we parsed.

use std::ops::Range;
use std::time::Instant;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{json, Value};

use super::fixtures::col;
use super::readback::{Oracle, Tally};
use super::{ColumnInfo, Condition, Filter};
use crate::engine::quote_ident;
use crate::error::ApiResult;

/// Cases per run with the fixed seed; a second, smaller run uses a fresh seed each time.
const SEEDED_CASES: u32 = 5_000;
const RANDOM_CASES: u32 = 500;
/// Cases of the JSON and Keboola forms, with the fixed seed.
const FORM_CASES: u32 = 1_000;
const SEED: [u8; 32] = *b"duckbank filter property test 01";

/// What a column holds, so generated comparisons stay well-typed and DuckDB can run them.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Class {
    Text,
    Number,
    Bool,
    Time,
    /// A JSON column: compared as JSON values, `json(...)` on both sides.
    Json,
}

/// The sample table: (name, DuckDB type, class, usable unquoted).
const TABLE: &[(&str, &str, Class, bool)] = &[
    ("s", "VARCHAR", Class::Text, true),
    ("Name", "VARCHAR", Class::Text, true),
    ("My Col", "VARCHAR", Class::Text, false),
    ("we\"ird", "VARCHAR", Class::Text, false),
    ("it's", "VARCHAR", Class::Text, false),
    ("žluť", "VARCHAR", Class::Text, false),
    ("n", "BIGINT", Class::Number, true),
    ("x", "DOUBLE", Class::Number, true),
    ("order", "INTEGER", Class::Number, false),
    ("flag", "BOOLEAN", Class::Bool, true),
    ("select", "BOOLEAN", Class::Bool, false),
    ("created_at", "TIMESTAMP", Class::Time, true),
    ("doc", "JSON", Class::Json, true),
];

/// Pieces that hostile inputs are made of: SQL that must never get through, and grammar bits.
#[rustfmt::skip]
const HOSTILE: &[&str] = &[
    ";", "--", "/*", "*/", "'", "''", "\"", "(", ")", ",", ".", "::", "||", "$$", "\\", "`", "[",
    "]", "{", "}", "?", "$1", "@", "#", "%", "^", "&", "|", "~", "+", "*", "/", "!", "-", "×",
    "🐴", "\u{202e}", "\u{0}", "\u{feff}", "\u{a0}", "e'\\x41'", "x'41'", "SELECT 1",
    "(SELECT 1)", "DROP TABLE t", "UNION SELECT 1", "read_csv('/etc/passwd')", "lower(s)",
    "count(*)", "CAST(n AS VARCHAR)", "n::VARCHAR", "CASE WHEN TRUE THEN 1 END", "EXISTS",
    "t.s", "main.t.s", "ATTACH 'x'", "COPY t TO 'x'", "s COLLATE nocase", "IS DISTINCT FROM",
    "1 = 1", "TRUE", "NULL", "AND", "OR", "NOT", "IN", "BETWEEN", "LIKE", "ILIKE", "IS", "s",
    "n", "flag", "\"s\"", "'x'", "5", "-5", "1e5", "1.5", "1e400", "-0.0000000000000000000001",
    "123456789012345678901234567890123456789012345", "=", "==", "<>", "!=", "<=", ">",
    "\n", "\t", " ",
];

/// Pieces of generated string literals and LIKE patterns.
#[rustfmt::skip]
const TEXT_PIECES: &[&str] = &[
    "a", "Z", "0", " ", "%", "_", "'", "''", "\"", ";", "--", "/*", "*/", "\\", "(", ")", ",",
    "é", "🐴", "\t", "\n", "\u{202e}", "$$", ":", " OR 1=1", "DROP TABLE t", "\u{7f}",
];

/// JSON-form operator names, valid and not.
#[rustfmt::skip]
const FORM_OPERATORS: &[&str] = &[
    "eq", "ne", "gt", "ge", "lt", "le", "in", "not_in", "like", "not_ilike", "between",
    "is_null", "is_not_null", "=", "<>", ">=", " EQ ", "regex", ";", "",
];

/// JSON texts (in any spacing) and plain text, for values compared with the JSON column.
#[rustfmt::skip]
const JSON_TEXTS: &[&str] = &[
    r#"{"a": [1, 2]}"#, r#"{"a":[1,2]}"#, r#"{"b":{"c":null}}"#, r#""x""#, "x", "5", " 5 ", "-1.5e3",
    "true", "null", "[]", "[1, \"x\"]", "{", "'", "", "🐴",
];

/// The sample table's rows, in TABLE's column order.
const ROWS: &[&str] = &[
    "'a', 'Bob', 'x y', 'q', 'it''s', 'ž', 1, 1.5, 3, TRUE, FALSE, '2024-01-31 12:00:00', '{\"a\": [1, 2]}'",
    "NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL",
    "'%_', '', '🐴', '\"', '''', '', -7, -1e300, -1, FALSE, TRUE, '1999-12-31', '\"x\"'",
];

fn oracle() -> Oracle {
    let columns: Vec<ColumnInfo> = TABLE.iter().map(|(name, ty, ..)| col(name, ty)).collect();
    Oracle::new(columns, ROWS)
}

fn keyword(word: &'static str) -> BoxedStrategy<String> {
    any::<u32>()
        .prop_map(move |mask| mixed_case(word, mask))
        .boxed()
}

fn mixed_case(word: &str, mask: u32) -> String {
    word.chars()
        .enumerate()
        .map(|(i, c)| {
            if mask >> (i % 32) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

/// "" or "NOT ".
fn maybe_not() -> BoxedStrategy<String> {
    prop_oneof![Just(String::new()), keyword("NOT").prop_map(|k| k + " ")].boxed()
}

/// A column of `class`, spelled bare in any case or quoted.
fn column(class: Class) -> BoxedStrategy<String> {
    let names: Vec<_> = TABLE.iter().filter(|c| c.2 == class).collect();
    (select(names), any::<u32>(), any::<bool>())
        .prop_map(|(&(name, _, _, bare), mask, quote)| {
            let spelled = if bare {
                mixed_case(name, mask)
            } else {
                name.to_string()
            };
            if bare && !quote {
                spelled
            } else {
                quote_ident(&spelled)
            }
        })
        .boxed()
}

fn text_literal() -> BoxedStrategy<String> {
    vec(select(TEXT_PIECES), 0..8)
        .prop_map(|pieces| format!("'{}'", pieces.concat().replace('\'', "''")))
        .boxed()
}

/// A string for the JSON column: JSON text in any spacing, or plain text.
fn json_text_literal() -> BoxedStrategy<String> {
    prop_oneof![
        3 => select(JSON_TEXTS).prop_map(|t| format!("'{}'", t.replace('\'', "''"))),
        1 => text_literal(),
    ]
    .boxed()
}

/// Numbers as the grammar writes them, exponents past DOUBLE's range too. At most 18 digits on
/// either side of the point: DuckDB compares a mix of integers and decimals as one DECIMAL of at
/// most 38 digits, and refuses values that do not fit it when the query runs (a 36-digit integer
/// in a list with `0.000`, say). Longer numbers come with the hostile pieces, which need only bind.
const NUMBER: &str = "-?[0-9]{1,18}(\\.[0-9]{1,18})?([eE][-+]?[0-9]{1,3})?";

/// A non-NULL literal of `class` in the class's own SQL type (Time has none).
fn own_literal(class: Class) -> Option<BoxedStrategy<String>> {
    match class {
        Class::Text => Some(text_literal()),
        Class::Number => Some(NUMBER.boxed()),
        Class::Bool => Some(prop_oneof![keyword("TRUE"), keyword("FALSE")].boxed()),
        Class::Json => Some(json_text_literal()),
        Class::Time => None,
    }
}

/// A literal in the class's own SQL type, or NULL.
fn typed_literal(class: Class) -> BoxedStrategy<String> {
    match own_literal(class) {
        Some(own) => prop_oneof![8 => own, 1 => keyword("NULL")].boxed(),
        None => keyword("NULL"),
    }
}

/// A literal of `class`, also written as a string DuckDB casts to the class's type.
fn literal(class: Class) -> BoxedStrategy<String> {
    let spelled = match class {
        Class::Text => return typed_literal(class),
        // Next to the JSON column, numbers and booleans are JSON values too.
        Class::Json => prop_oneof![
            (-999i64..999).prop_map(|n| n.to_string()),
            "-?[0-9]{1,3}\\.[0-9]{1,3}",
            keyword("TRUE"),
            keyword("FALSE"),
        ]
        .boxed(),
        Class::Number => (-99_999i64..99_999).prop_map(|n| format!("'{n}'")).boxed(),
        Class::Bool => select(&["'true'", "'false'", "'t'", "'0'"][..])
            .prop_map(str::to_string)
            .boxed(),
        Class::Time => (
            1900u32..2100,
            1u32..13,
            1u32..29,
            0u32..24,
            0u32..60,
            any::<bool>(),
        )
            .prop_map(|(y, mo, d, h, mi, time)| match time {
                true => format!("'{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:00'"),
                false => format!("'{y:04}-{mo:02}-{d:02}'"),
            })
            .boxed(),
    };
    prop_oneof![typed_literal(class), spelled].boxed()
}

fn operand(class: Class) -> BoxedStrategy<String> {
    prop_oneof![column(class), literal(class)].boxed()
}

/// Operands DuckDB casts to one type: a column with any operand of its class, or literals of
/// the class's own type. DuckDB casts a string to the type of what it meets first, so `'10'`
/// next to `0.0` would have to fit `DECIMAL(2,1)`, and two strings make the test VARCHAR.
fn operands(class: Class, n: Range<usize>, literals_only: bool) -> BoxedStrategy<Vec<String>> {
    let (any_rest, typed_rest) = match literals_only {
        true => (literal(class), typed_literal(class)),
        false => (
            operand(class),
            prop_oneof![column(class), typed_literal(class)].boxed(),
        ),
    };
    let mut shapes = vec![(column(class), vec(any_rest, n.clone()))
        .prop_map(|(c, rest)| [vec![c], rest].concat())
        .boxed()];
    if let Some(own) = own_literal(class) {
        shapes.push(
            (own, vec(typed_rest, n))
                .prop_map(|(o, rest)| [vec![o], rest].concat())
                .boxed(),
        );
    }
    proptest::strategy::Union::new(shapes).boxed()
}

/// One well-typed predicate over values of `class`.
fn predicate(class: Class) -> BoxedStrategy<String> {
    let ops = vec!["=", "==", "!=", "<>", "<", "<=", ">", ">="];
    let mut forms = vec![
        (
            operands(class, 1..2, false),
            select(ops),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(pair, op, flip, tight)| {
                let (l, r) = if flip {
                    (&pair[1], &pair[0])
                } else {
                    (&pair[0], &pair[1])
                };
                let space = if tight { "" } else { " " };
                format!("{l}{space}{op}{space}{r}")
            })
            .boxed(),
        (operands(class, 1..6, true), maybe_not(), keyword("IN"))
            .prop_map(|(items, not, kw)| {
                format!("{} {not}{kw} ({})", items[0], items[1..].join(", "))
            })
            .boxed(),
        (
            operands(class, 2..3, false),
            maybe_not(),
            keyword("BETWEEN"),
            keyword("AND"),
        )
            .prop_map(|(o, not, kw, and)| format!("{} {not}{kw} {} {and} {}", o[0], o[1], o[2]))
            .boxed(),
        (operand(class), keyword("IS"), maybe_not(), keyword("NULL"))
            .prop_map(|(o, is, not, null)| format!("{o} {is} {not}{null}"))
            .boxed(),
    ];
    match class {
        // LIKE takes text: a column or a string, never a number next to the JSON column.
        Class::Text | Class::Json => forms.push(
            (
                prop_oneof![column(class), typed_literal(class)],
                maybe_not(),
                prop_oneof![keyword("LIKE"), keyword("ILIKE")],
                text_literal(),
            )
                .prop_map(|(o, not, kw, pattern)| format!("{o} {not}{kw} {pattern}"))
                .boxed(),
        ),
        Class::Bool => forms.extend([column(class), keyword("TRUE"), keyword("FALSE")]),
        Class::Number | Class::Time => {}
    }
    proptest::strategy::Union::new(forms).boxed()
}

/// Nested AND/OR/NOT/parentheses over well-typed predicates, spaced with varied whitespace.
fn grammar() -> BoxedStrategy<String> {
    let leaf = prop_oneof![
        predicate(Class::Text),
        predicate(Class::Number),
        predicate(Class::Bool),
        predicate(Class::Time),
        predicate(Class::Json),
    ];
    let tree = leaf.prop_recursive(5, 64, 4, |inner| {
        // Parentheses around an item are what puts an OR inside an AND.
        let item = (inner, any::<bool>()).prop_map(|(e, paren)| match paren {
            true => format!("({e})"),
            false => e,
        });
        prop_oneof![
            3 => (vec(item.clone(), 2..4), prop_oneof![keyword("AND"), keyword("OR")])
                .prop_map(|(items, kw)| items.join(&format!(" {kw} "))),
            1 => (keyword("NOT"), item).prop_map(|(not, e)| format!("{not} {e}")),
        ]
    });
    let spaces = vec(select(vec![" ", "  ", "\t", "\n", "\r\n", " \t "]), 1..6);
    (tree, spaces)
        .prop_map(|(text, spaces)| respace(&text, &spaces))
        .boxed()
}

/// Replaces the spaces outside quotes with `spaces`, in turn.
fn respace(text: &str, spaces: &[&str]) -> String {
    let (mut out, mut quote, mut turn) = (String::new(), None, 0);
    for c in text.chars() {
        match (c, quote) {
            (' ', None) => {
                out.push_str(spaces[turn % spaces.len()]);
                turn += 1;
                continue;
            }
            ('\'' | '"', None) => quote = Some(c),
            (c, Some(q)) if c == q => quote = None,
            _ => {}
        }
        out.push(c);
    }
    out
}

/// A grammar-shaped input with a few hostile edits: insertions, deletions, replacements.
fn mutated() -> BoxedStrategy<String> {
    let edit = (any::<Index>(), 0..3u8, select(HOSTILE));
    (grammar(), vec(edit, 1..4))
        .prop_map(|(text, edits)| {
            let mut chars: Vec<String> = text.chars().map(String::from).collect();
            for (at, kind, piece) in edits {
                let i = at.index(chars.len() + 1);
                match kind {
                    0 => chars.insert(i, piece.to_string()),
                    1 if i < chars.len() => {
                        chars.remove(i);
                    }
                    _ if i < chars.len() => chars[i] = piece.to_string(),
                    _ => chars.push(piece.to_string()),
                }
            }
            chars.concat()
        })
        .boxed()
}

/// Inputs at and past the nesting and size limits that are cheap to read back.
fn oversized() -> BoxedStrategy<String> {
    prop_oneof![
        (60usize..70).prop_map(|n| format!("{}n = 1{}", "(".repeat(n), ")".repeat(n))),
        // DuckDB's JSON for a NOT chain nests two levels per NOT, and serde_json reads at most
        // 128, so the chains that must be read back stay under 60; past 64 they are refused.
        prop_oneof![50usize..60, 65usize..80].prop_map(|n| format!("{}flag", "NOT ".repeat(n))),
        (65_520usize..65_540).prop_map(|n| format!("s = '{}'", "x".repeat(n))),
    ]
    .boxed()
}

/// The largest inputs, once each: DuckDB takes about a second to read back each accepted one.
fn largest() -> Vec<String> {
    let conjunction = |n: usize| vec!["(n = 1)"; n].join(" AND ");
    let in_list = |n: usize| format!("n IN ({})", vec!["7"; n].join(","));
    // 5461 conditions fill 65527 of the 65536 bytes allowed.
    let mut inputs = vec![conjunction(5_461), conjunction(5_462)];
    inputs.extend([in_list(10_000), in_list(10_001)]);
    inputs
}

/// Every input with whether it is grammar-shaped (then it must be accepted and run).
fn input() -> BoxedStrategy<(String, bool)> {
    prop_oneof![
        10 => grammar().prop_map(|t| (t, true)),
        5 => mutated().prop_map(|t| (t, false)),
        3 => (vec(select(HOSTILE), 1..16), any::<bool>())
            .prop_map(|(pieces, spaced)| (pieces.join(if spaced { " " } else { "" }), false)),
        1 => vec(any::<u8>(), 0..80).prop_map(|b| (String::from_utf8_lossy(&b).into_owned(), false)),
        1 => vec(any::<char>(), 0..40).prop_map(|c| (c.into_iter().collect(), false)),
        1 => oversized().prop_map(|t| (t, false)),
    ]
    .boxed()
}

fn run(runner: &mut TestRunner, oracle: &Oracle) {
    let outcome = runner.run(&input(), |(text, grammar)| oracle.check(&text, grammar));
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

#[test]
fn every_filter_is_refused_with_a_400_or_read_back_by_duckdb_as_parsed() {
    let oracle = oracle();
    let started = Instant::now();
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &SEED);
    run(
        &mut TestRunner::new_with_rng(config(SEEDED_CASES), rng),
        &oracle,
    );
    let seeded = oracle.tally();
    run(&mut TestRunner::new(config(RANDOM_CASES)), &oracle);
    for text in largest() {
        let prefix: String = text.chars().take(40).collect();
        let checked = oracle.check(&text, false);
        assert!(checked.is_ok(), "{prefix:?}…: {checked:?}");
    }
    eprintln!(
        "seeded: {seeded:?}; with random: {:?}; {:?}",
        oracle.tally(),
        started.elapsed()
    );
    assert_mixed(seeded);
}

/// Both outcomes must be common, or the run proves little.
fn assert_mixed(tally: Tally) {
    let total = tally.read_back + tally.refused + tally.type_errors;
    assert!(
        tally.read_back * 4 > total && tally.refused * 4 > total,
        "too one-sided: {tally:?}"
    );
}

/// A filter in one of the two non-text forms.
#[derive(Debug, Clone)]
enum Form {
    Json(Vec<Condition>),
    Keboola {
        column: String,
        values: Vec<String>,
        operator: String,
    },
}

impl Form {
    fn filter(&self) -> ApiResult<Filter> {
        match self {
            Form::Json(conditions) => Filter::structured(conditions),
            Form::Keboola {
                column,
                values,
                operator,
            } => Filter::keboola(column, values, Some(operator)),
        }
    }
}

/// A JSON-form or Keboola-form filter built from random, partly hostile parts.
fn form() -> BoxedStrategy<Form> {
    let names: Vec<&str> = TABLE.iter().map(|c| c.0).chain(["nope", "S", ""]).collect();
    let text = vec(select(TEXT_PIECES), 0..6).prop_map(|p| p.concat());
    let value = prop_oneof![
        text.clone().prop_map(Value::String),
        any::<i64>().prop_map(Value::from),
        "-?[1-9][0-9]{0,29}(\\.[0-9]{1,10})?([eE][-+]?[0-9]{1,3})?"
            .prop_map(|n| serde_json::from_str(&n).unwrap_or_default()),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
        Just(json!([1])),
        Just(json!({"a": [1, "x"], "b": "it's"})),
    ];
    let condition = (
        select(names.clone()),
        select(FORM_OPERATORS),
        vec(value, 0..4),
    )
        .prop_map(|(column, operator, values)| Condition {
            column: column.to_string(),
            operator: operator.to_string(),
            values,
            value: None,
        });
    let keboola = (
        select(names),
        vec(text, 0..4),
        select(&["", "eq", "ne", "NE", "gt"][..]),
    )
        .prop_map(|(column, values, operator)| Form::Keboola {
            column: column.to_string(),
            values,
            operator: operator.to_string(),
        });
    prop_oneof![vec(condition, 0..4).prop_map(Form::Json), keboola].boxed()
}

#[test]
fn json_and_keboola_forms_are_refused_with_a_400_or_read_back_by_duckdb() {
    let oracle = oracle();
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &SEED);
    let mut runner = TestRunner::new_with_rng(config(FORM_CASES), rng);
    let outcome = runner.run(&form(), |form| {
        match form
            .filter()
            .and_then(|f| Ok((f.to_sql(&oracle.columns)?, f)))
        {
            Ok((sql, filter)) => oracle.reads_back(&sql, &filter.expr, false),
            Err(err) => oracle.refused(err),
        }
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
    eprintln!("forms: {:?}", oracle.tally());
    assert_mixed(oracle.tally());
}
