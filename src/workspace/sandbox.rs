//! The statement guard in front of a workspace's DuckDB: splits client SQL into statements and
//! refuses the ones that could reach outside the workspace. It is the first of two layers; the
//! locked-down instance (no external access, frozen configuration) is the second.

use crate::error::{ApiError, ApiResult, ErrorCode};

/// Keywords refused wherever they appear outside quotes: each starts a statement that attaches,
/// detaches, copies files, loads code or runs a prepared statement behind the guard's back.
/// DETACH + ATTACH of a source file is the known way around READ_ONLY (duckdb-notes §4).
const REFUSED_ANYWHERE: &[&str] = &[
    "ATTACH", "DETACH", "COPY", "INSTALL", "LOAD", "PRAGMA", "EXPORT", "IMPORT", "PREPARE",
    "EXECUTE", "CALL",
];

/// Keywords refused as a statement's first word (elsewhere they are ordinary SQL:
/// `UPDATE … SET`).
const REFUSED_FIRST: &[&str] = &["SET", "RESET", "USE"];

/// One statement of a client's SQL text, as the guard split it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The statement's text without the terminating `;`.
    pub text: String,
    /// Its first word, upper-cased (`SELECT`, `CREATE`, `SET`, …); empty for an empty statement.
    pub first: String,
    /// Its bare words (outside strings, quoted identifiers and comments), upper-cased.
    pub words: Vec<String>,
}

impl Statement {
    /// Whether the statement can add data to the workspace (checked against the size limit).
    pub fn grows(&self) -> bool {
        matches!(
            self.first.as_str(),
            "CREATE" | "INSERT" | "UPDATE" | "ALTER" | "MERGE" | "WITH"
        ) && !self.words.iter().any(|w| w == "DROP")
    }
}

/// Splits `sql` into non-empty statements, each checked: a refused keyword is a 400
/// `sql_refused` naming it.
pub fn check(sql: &str) -> ApiResult<Vec<Statement>> {
    let statements = split_all(sql);
    for s in &statements {
        check_one(s)?;
    }
    if statements.is_empty() {
        return Err(ApiError::bad_request("sql has no statement"));
    }
    Ok(statements)
}

/// The non-empty statements of `sql`, not yet checked.
pub fn split_all(sql: &str) -> Vec<Statement> {
    split(sql)
        .into_iter()
        .filter(|s| !s.first.is_empty())
        .collect()
}

/// Refuses a statement that could reach outside the workspace.
pub fn check_one(s: &Statement) -> ApiResult<()> {
    if let Some(word) = s
        .words
        .iter()
        .find(|w| REFUSED_ANYWHERE.contains(&w.as_str()))
    {
        return Err(refused(word));
    }
    if REFUSED_FIRST.contains(&s.first.as_str()) {
        return Err(refused(&s.first));
    }
    Ok(())
}

fn refused(word: &str) -> ApiError {
    ApiError::new(
        ErrorCode::SqlRefused,
        format!(
            "{word} is not allowed in a workspace: its SQL cannot attach, detach or copy \
             files, load extensions or change settings"
        ),
    )
}

/// A tokenizer just good enough to find statement boundaries and bare words: single-quoted
/// strings, double-quoted identifiers, `$tag$` strings, `--` and `/* */` comments.
fn split(sql: &str) -> Vec<Statement> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut start = 0;
    let mut words: Vec<String> = Vec::new();
    let mut i = 0;
    let finish = |out: &mut Vec<Statement>, words: &mut Vec<String>, from: usize, to: usize| {
        let text: String = chars[from..to].iter().collect();
        let taken = std::mem::take(words);
        out.push(Statement {
            text: text.trim().to_string(),
            first: taken.first().cloned().unwrap_or_default(),
            words: taken,
        });
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\'' | '"' => {
                // A doubled quote inside is an escaped one: both halves are skipped in turn.
                i += 1;
                while i < chars.len() && chars[i] != c {
                    i += 1;
                }
                i += 1;
                // Something quoted counts as a word so that `"x" SET …` keeps its first word.
                if words.is_empty() {
                    words.push(if c == '"' { "\"" } else { "'" }.into());
                }
            }
            '-' if chars.get(i + 1) == Some(&'-') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                i += 2;
                while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                    i += 1;
                }
                i += 2;
            }
            '$' => {
                // `$tag$ … $tag$`; a `$1` parameter is no string.
                let mut j = i + 1;
                while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
                    j += 1;
                }
                if chars.get(j) == Some(&'$')
                    && !chars[i + 1..j].first().is_some_and(char::is_ascii_digit)
                {
                    let tag: String = chars[i..=j].iter().collect();
                    let rest: String = chars[j + 1..].iter().collect();
                    i = match rest.find(&tag) {
                        Some(at) => j + 1 + rest[..at].chars().count() + tag.chars().count(),
                        None => chars.len(),
                    };
                    if words.is_empty() {
                        words.push("'".into());
                    }
                } else {
                    i = j;
                }
            }
            ';' => {
                finish(&mut out, &mut words, start, i);
                i += 1;
                start = i;
            }
            c if c.is_alphabetic() || c == '_' => {
                let from = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                let word: String = chars[from..i].iter().collect();
                words.push(word.to_ascii_uppercase());
            }
            _ => i += 1,
        }
    }
    finish(&mut out, &mut words, start, chars.len().min(i.max(start)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused_word(sql: &str) -> Option<String> {
        match check(sql) {
            Ok(_) => None,
            Err(e) => Some(e.to_string()),
        }
    }

    #[test]
    fn ordinary_sql_passes_and_is_split_into_statements() {
        let s =
            check("CREATE TABLE t AS SELECT 1 AS a; SELECT 'x;y' AS \"SET\" -- ATTACH\n;").unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].first, "CREATE");
        assert!(s[0].grows());
        assert_eq!(s[1].text, "SELECT 'x;y' AS \"SET\" -- ATTACH");
        assert!(check("UPDATE t SET a = 2").is_ok());
        assert!(check("SELECT $$ATTACH$$, $1").is_ok());
        assert!(check("/* COPY */ SELECT 1").is_ok());
    }

    #[test]
    fn every_escape_keyword_is_refused_wherever_it_hides() {
        for sql in [
            "ATTACH '/tmp/x.duckdb' AS x",
            "detach src_1",
            "SELECT 1; DETACH src_1",
            "/* hi */ attach 'x'",
            "COPY t TO '/tmp/out.csv'",
            "INSTALL httpfs",
            "LOAD httpfs",
            "PRAGMA enable_profiling",
            "SET threads = 64",
            "reset memory_limit",
            "EXPORT DATABASE '/tmp/x'",
            "PREPARE p AS ATTACH 'x'",
            "EXPLAIN ATTACH 'x'",
            "USE src_1",
        ] {
            let err = refused_word(sql).unwrap_or_else(|| panic!("{sql} passed"));
            assert!(err.contains("not allowed in a workspace"), "{sql}: {err}");
        }
    }

    #[test]
    fn empty_sql_is_refused() {
        assert!(check("  ; -- nothing\n").is_err());
    }
}
