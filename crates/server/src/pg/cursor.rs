//! Cursors of one Postgres session: `DECLARE name CURSOR FOR query`, `FETCH`, `MOVE`, `CLOSE`,
//! as Tableau and other ODBC clients read large results (`DECLARE … CURSOR WITH HOLD FOR …`,
//! then `FETCH 2048 IN …` until no rows come back). The query runs once, at `DECLARE`, with
//! the statement's limits; fetches page through its answer. Only forward movement is
//! supported (`NEXT`, `n`, `FORWARD [n | ALL]`, `ALL`), as for a `NO SCROLL` cursor.

use cx_sql::Answer;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::tokenizer::{Token, Tokenizer};
use std::collections::HashMap;
use std::sync::Mutex;

/// A statement about cursors.
#[derive(Debug, Clone, PartialEq)]
pub enum CursorStatement {
    Declare {
        name: String,
        query: String,
    },
    /// `FETCH` (`moving: false`) or `MOVE` (`moving: true`) of up to `count` rows (None: all).
    Fetch {
        name: String,
        count: Option<usize>,
        moving: bool,
    },
    /// `CLOSE name`, or `CLOSE ALL` (None).
    Close(Option<String>),
}

/// The session's open cursors.
#[derive(Default)]
pub struct Cursors(Mutex<HashMap<String, Open>>);

pub struct Open {
    answer: Answer,
    at: usize,
}

impl Cursors {
    pub fn open(&self, name: String, answer: Answer) -> Result<(), String> {
        let mut map = self.0.lock().expect("cursor map");
        if map.contains_key(&name) {
            return Err(format!("cursor \"{name}\" already exists"));
        }
        map.insert(name, Open { answer, at: 0 });
        Ok(())
    }

    /// The next `count` rows of cursor `name` (all when None), as an answer; the cursor moves
    /// past them. `truncated` is set on the last page of an answer that was cut.
    pub fn fetch(&self, name: &str, count: Option<usize>) -> Result<Answer, String> {
        let mut map = self.0.lock().expect("cursor map");
        let open = map.get_mut(name).ok_or_else(|| format!("cursor \"{name}\" does not exist"))?;
        let height = open.answer.frame.height();
        let take = count.unwrap_or(height).min(height - open.at);
        let frame = open.answer.frame.slice(open.at as i64, take);
        open.at += take;
        Ok(Answer { frame, truncated: open.answer.truncated && open.at == height })
    }

    /// The columns cursor `name` returns.
    pub fn fields(&self, name: &str) -> Option<Vec<cx_sql::values::Field>> {
        let map = self.0.lock().expect("cursor map");
        map.get(name).map(|o| cx_sql::values::fields(o.answer.frame.schema()))
    }

    pub fn close(&self, name: Option<&str>) -> Result<(), String> {
        let mut map = self.0.lock().expect("cursor map");
        match name {
            None => map.clear(),
            Some(n) => {
                map.remove(n).ok_or_else(|| format!("cursor \"{n}\" does not exist"))?;
            }
        }
        Ok(())
    }
}

/// The words of a statement (identifiers folded as Postgres folds them), or None when it does
/// not tokenize.
fn words(sql: &str) -> Option<Vec<(String, bool)>> {
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize().ok()?;
    Some(
        tokens
            .into_iter()
            .filter(|t| !matches!(t, Token::Whitespace(_) | Token::SemiColon))
            .map(|t| match t {
                Token::Word(w) if w.quote_style.is_some() => (w.value, true),
                Token::Word(w) => (w.value.to_lowercase(), false),
                other => (other.to_string().to_lowercase(), false),
            })
            .collect(),
    )
}

/// Reads a cursor statement; None when `sql` is not one. Errors name what is not supported.
pub fn parse(sql: &str) -> Option<Result<CursorStatement, String>> {
    let first = sql.split_whitespace().next()?.to_ascii_lowercase();
    if !matches!(first.as_str(), "declare" | "fetch" | "move" | "close") {
        return None;
    }
    let Some(w) = words(sql) else { return Some(Err("the statement does not tokenize".into())) };
    let plain = |i: usize| w.get(i).filter(|x| !x.1).map(|x| x.0.as_str());
    Some(match first.as_str() {
        "declare" => {
            let name = w.get(1).map(|x| x.0.clone());
            let cursor = w.iter().position(|x| !x.1 && x.0 == "cursor");
            // The query: the text after the FOR that follows CURSOR, as written.
            let lower = sql.to_ascii_lowercase();
            let body = find_word(&lower, "cursor", 0).and_then(|c| find_word(&lower, "for", c));
            match (name, cursor, body) {
                (Some(name), Some(c), Some(at)) => {
                    let options: Vec<&str> = (2..c).filter_map(plain).collect();
                    if options.contains(&"scroll") && !options.contains(&"no") {
                        Err("SCROLL cursors are not supported: cursors move forward only".into())
                    } else {
                        Ok(CursorStatement::Declare { name, query: sql[at + 3..].trim().trim_end_matches(';').to_string() })
                    }
                }
                _ => Err("DECLARE name CURSOR FOR query: a name, CURSOR and FOR are needed".into()),
            }
        }
        "close" => match w.get(1) {
            Some((n, false)) if n == "all" => Ok(CursorStatement::Close(None)),
            Some((n, _)) => Ok(CursorStatement::Close(Some(n.clone()))),
            None => Err("CLOSE needs a cursor name or ALL".into()),
        },
        _ => {
            // FETCH/MOVE [direction] [FROM | IN] name
            let moving = first == "move";
            let mut i = 1;
            let mut count = Some(1usize);
            match plain(i) {
                Some("next") => i += 1,
                Some("all") => {
                    count = None;
                    i += 1
                }
                Some("forward") => {
                    i += 1;
                    match plain(i) {
                        Some("all") => {
                            count = None;
                            i += 1
                        }
                        Some(n) if n.parse::<usize>().is_ok() => {
                            count = n.parse().ok();
                            i += 1
                        }
                        _ => {}
                    }
                }
                Some(n) if n.parse::<usize>().is_ok() => {
                    count = n.parse().ok();
                    i += 1
                }
                Some(d @ ("prior" | "first" | "last" | "absolute" | "relative" | "backward")) => {
                    return Some(Err(format!("FETCH {}: cursors move forward only", d.to_uppercase())));
                }
                _ => {}
            }
            if matches!(plain(i), Some("from" | "in")) {
                i += 1;
            }
            match (w.get(i), w.len() == i + 1) {
                (Some((name, _)), true) => Ok(CursorStatement::Fetch { name: name.clone(), count, moving }),
                _ => Err(format!("{}: expected {} [NEXT | n | ALL | FORWARD [n | ALL]] [FROM | IN] name", first.to_uppercase(), first.to_uppercase())),
            }
        }
    })
}

/// Where `word` starts in `text` at or after `from`, as a whole word outside quotes.
fn find_word(text: &str, word: &str, from: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut quote = None;
    let mut i = from;
    while i < bytes.len() {
        let c = bytes[i];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == b'\'' || c == b'"' => quote = Some(c),
            None => {
                let boundary_before = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
                let end = i + word.len();
                let boundary_after = end >= bytes.len() || !(bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_');
                if boundary_before && boundary_after && text[i..].starts_with(word) {
                    return Some(i);
                }
            }
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_statements_parse_as_tableau_and_psql_write_them() {
        assert_eq!(
            parse("DECLARE \"SQL_CUR0x1\" NO SCROLL CURSOR WITH HOLD FOR SELECT 'for' AS f FROM services;"),
            Some(Ok(CursorStatement::Declare { name: "SQL_CUR0x1".into(), query: "SELECT 'for' AS f FROM services".into() }))
        );
        assert_eq!(parse("fetch 2048 in \"SQL_CUR0x1\""), Some(Ok(CursorStatement::Fetch { name: "SQL_CUR0x1".into(), count: Some(2048), moving: false })));
        assert_eq!(parse("FETCH c"), Some(Ok(CursorStatement::Fetch { name: "c".into(), count: Some(1), moving: false })));
        assert_eq!(parse("FETCH FORWARD ALL FROM C"), Some(Ok(CursorStatement::Fetch { name: "c".into(), count: None, moving: false })));
        assert_eq!(parse("MOVE 10 IN c"), Some(Ok(CursorStatement::Fetch { name: "c".into(), count: Some(10), moving: true })));
        assert_eq!(parse("CLOSE ALL"), Some(Ok(CursorStatement::Close(None))));
        assert!(parse("FETCH PRIOR FROM c").unwrap().unwrap_err().contains("forward only"));
        assert!(parse("DECLARE c SCROLL CURSOR FOR SELECT 1").unwrap().unwrap_err().contains("SCROLL"));
        assert!(parse("DECLARE c FOR SELECT 1").unwrap().is_err());
        assert_eq!(parse("SELECT 1"), None);
    }
}
