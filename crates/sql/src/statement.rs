//! What a statement may be: one read-only query over named tables. Checked on sqlparser's tree
//! (the parser polars' SQL context uses, with the same dialect) before anything runs:
//! - exactly one statement, a query (`SELECT`, `WITH … SELECT`, set operations of them);
//!   writes, DDL, `COPY`, `EXPLAIN`, `SHOW`, transactions and `SELECT … INTO` are refused;
//! - every relation a table name, a subquery or a join of them: table functions
//!   (`read_parquet('…')`, which would read files) and other table factors are refused;
//! - names qualified by the one schema (`public.t`, `cxlake.public.t`) lose the qualifier, and
//!   unquoted names (tables, columns, aliases) are folded to lower case, as Postgres does
//!   (polars' context matches names exactly and reads only the first part of a qualified one).
//!
//! The query is printed again from the checked tree, so what runs is what was checked.

use super::SqlError;
use sqlparser::ast::{
    Expr, Ident, ObjectName, ObjectNamePart, Query, Select, SelectItem, SetExpr, Statement, TableFactor, Value, ValueWithSpan, Visit, VisitMut, Visitor,
    VisitorMut,
};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;
use std::collections::BTreeSet;
use std::ops::ControlFlow;

/// The schema every table is in (a Postgres client's `public`); the catalog's name.
pub const SCHEMA: &str = "public";
pub const CATALOG: &str = "cxlake";

/// A statement that passed the checks.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    /// The query as it will run (printed from the checked tree).
    pub text: String,
    /// The tables it reads (not the names its own `WITH` defines), each once, sorted; system
    /// tables by the names `system::relation_name` gives.
    pub relations: Vec<String>,
    /// The checked query itself.
    pub query: Query,
}

/// Parses and checks `sql` (see the module's text).
pub fn check(sql: &str) -> Result<Checked, SqlError> {
    let mut statements = Parser::parse_sql(&GenericDialect, sql).map_err(|e| SqlError::Invalid(format!("syntax error: {e}")))?;
    let mut statement = match statements.len() {
        0 => return Err(SqlError::Invalid("the statement is empty".into())),
        1 => statements.pop().expect("one statement"),
        n => return Err(SqlError::Invalid(format!("{n} statements: send one statement at a time"))),
    };
    let Statement::Query(query) = &mut statement else {
        return Err(SqlError::Invalid(format!("{}: only queries are allowed (the tables are read-only)", kind(&statement))));
    };
    let mut names = Names::default();
    if let ControlFlow::Break(e) = Visit::visit(query.as_ref(), &mut Shapes) {
        return Err(e);
    }
    if let ControlFlow::Break(e) = Visit::visit(query.as_ref(), &mut names) {
        return Err(e);
    }
    if let ControlFlow::Break(e) = VisitMut::visit(query.as_mut(), &mut Unqualify) {
        return Err(e);
    }
    let mut relations = BTreeSet::new();
    let _ = sqlparser::ast::visit_relations(&*query, |name: &ObjectName| {
        if let Some(n) = plain(name) {
            if !names.defined.contains(&n) {
                relations.insert(n);
            }
        }
        ControlFlow::<()>::Continue(())
    });
    let text = statement.to_string();
    let Statement::Query(query) = statement else { unreachable!("checked to be a query above") };
    Ok(Checked { text, relations: relations.into_iter().collect(), query: *query })
}

/// The statement's kind, for the refusal.
fn kind(statement: &Statement) -> String {
    let text = statement.to_string();
    let words: Vec<&str> = text.split_whitespace().take(2).collect();
    match words.first().map(|w| w.to_ascii_uppercase()) {
        Some(w) if matches!(w.as_str(), "CREATE" | "DROP" | "ALTER" | "TRUNCATE") => words.join(" ").to_ascii_uppercase(),
        Some(w) => w,
        None => "the statement".into(),
    }
}

/// The single-part name of a relation, once unqualified.
fn plain(name: &ObjectName) -> Option<String> {
    match name.0.as_slice() {
        [ObjectNamePart::Identifier(id)] => Some(id.value.clone()),
        _ => None,
    }
}

/// Refuses table functions, table factors other than tables, subqueries and joins, and
/// `SELECT … INTO`.
struct Shapes;

impl Visitor for Shapes {
    type Break = SqlError;

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<SqlError> {
        match factor {
            // `pg_catalog.generate_series(…)` in psql's catalog queries: reads nothing.
            TableFactor::Table { args: Some(_), name, .. }
                if matches!(name.0.as_slice(), [ObjectNamePart::Identifier(s), ObjectNamePart::Identifier(f)]
                    if s.value.eq_ignore_ascii_case("pg_catalog") && super::system::SET_FUNCTIONS.contains(&f.value.to_lowercase().as_str())) =>
            {
                ControlFlow::Continue(())
            }
            TableFactor::Table { args: Some(_), name, .. } => {
                ControlFlow::Break(SqlError::Invalid(format!("{name}(…): table functions are not available; read the catalog's tables")))
            }
            TableFactor::Table { .. } | TableFactor::Derived { .. } | TableFactor::NestedJoin { .. } => ControlFlow::Continue(()),
            other => ControlFlow::Break(SqlError::Invalid(format!("'{other}': only tables, subqueries and joins of them may be read"))),
        }
    }

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<SqlError> {
        if select.into.is_some() {
            return ControlFlow::Break(SqlError::Invalid("SELECT … INTO: only queries are allowed (the tables are read-only)".into()));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<SqlError> {
        match query.body.as_ref() {
            SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_) => {
                ControlFlow::Break(SqlError::Invalid("a write inside a query: the tables are read-only".into()))
            }
            _ => ControlFlow::Continue(()),
        }
    }
}

/// Collects the names `WITH` clauses define.
#[derive(Default)]
struct Names {
    defined: BTreeSet<String>,
}

impl Visitor for Names {
    type Break = SqlError;

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<SqlError> {
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                self.defined.insert(folded(&cte.alias.name));
            }
        }
        ControlFlow::Continue(())
    }
}

/// An identifier as Postgres reads it: unquoted folded to lower case.
fn folded(id: &Ident) -> String {
    match id.quote_style {
        None => id.value.to_lowercase(),
        Some(_) => id.value.clone(),
    }
}

/// Drops the catalog and schema qualifiers of relation names and folds unquoted names; names in
/// `pg_catalog` and `information_schema` become the system tables' names; a name in another
/// schema is unknown.
struct Unqualify;

impl VisitorMut for Unqualify {
    type Break = SqlError;

    fn pre_visit_relation(&mut self, name: &mut ObjectName) -> ControlFlow<SqlError> {
        let mut parts = Vec::new();
        for part in &name.0 {
            match part {
                ObjectNamePart::Identifier(id) => parts.push(folded(id)),
                ObjectNamePart::Function(_) => return ControlFlow::Break(SqlError::Invalid(format!("{name}: not a table name"))),
            }
        }
        let system = match parts.as_slice() {
            [s, t] | [_, s, t] => super::system::relation_name(Some(s), t),
            _ => None,
        };
        let table = match (parts.as_slice(), system) {
            ([t], _) => t.clone(),
            ([s, t], _) if s == SCHEMA => t.clone(),
            ([c, s, t], _) if c == CATALOG && s == SCHEMA => t.clone(),
            (_, Some(system)) => system,
            _ => return ControlFlow::Break(SqlError::UnknownTable { name: name.to_string(), hint: format!(" (every table is in schema {SCHEMA})") }),
        };
        *name = ObjectName(vec![ObjectNamePart::Identifier(Ident::new(table))]);
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<SqlError> {
        if let Some(with) = &mut query.with {
            for cte in &mut with.cte_tables {
                cte.alias.name = Ident::new(folded(&cte.alias.name));
            }
        }
        ControlFlow::Continue(())
    }

    // Column names, table aliases and output names, unquoted, are folded too (`SELECT AGENCY
    // FROM RESPONSES R` reads `agency` of `r`).
    fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<SqlError> {
        for item in &mut select.projection {
            if let SelectItem::ExprWithAlias { alias, .. } = item {
                fold(alias);
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<SqlError> {
        if let TableFactor::Table { alias: Some(a), .. } | TableFactor::Derived { alias: Some(a), .. } = factor {
            fold(&mut a.name);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<SqlError> {
        match expr {
            Expr::Identifier(id) => fold(id),
            Expr::CompoundIdentifier(ids) => ids.iter_mut().for_each(fold),
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// Folds an unquoted identifier in place (`folded`).
fn fold(id: &mut Ident) {
    if id.quote_style.is_none() {
        id.value = id.value.to_lowercase();
    }
}

/// A value bound to a placeholder (`$1`, `$2`, …) of a prepared statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

/// How many values `sql` takes: the highest `$n` it holds (0: none).
pub fn placeholders(sql: &str) -> Result<usize, SqlError> {
    let statements = Parser::parse_sql(&GenericDialect, sql).map_err(|e| SqlError::Invalid(format!("syntax error: {e}")))?;
    let mut highest = Highest(0);
    for s in &statements {
        if let ControlFlow::Break(e) = Visit::visit(s, &mut highest) {
            return Err(e);
        }
    }
    Ok(highest.0)
}

/// `sql` with every `$n` replaced by the literal of `params[n - 1]` (text quoted as SQL
/// quotes it), so a bound value is always a value, never SQL.
pub fn bind(sql: &str, params: &[Param]) -> Result<String, SqlError> {
    let mut statements = Parser::parse_sql(&GenericDialect, sql).map_err(|e| SqlError::Invalid(format!("syntax error: {e}")))?;
    let mut binder = Binder(params);
    for s in &mut statements {
        if let ControlFlow::Break(e) = VisitMut::visit(s, &mut binder) {
            return Err(e);
        }
    }
    Ok(statements.iter().map(|s| s.to_string()).collect::<Vec<_>>().join("; "))
}

/// The number of a placeholder (`$3`: 3).
fn number(p: &str) -> Result<usize, SqlError> {
    p.strip_prefix('$').and_then(|n| n.parse::<usize>().ok()).filter(|n| *n >= 1).ok_or_else(|| SqlError::Invalid(format!("placeholder {p}: use $1, $2, …")))
}

struct Highest(usize);

impl Visitor for Highest {
    type Break = SqlError;

    fn pre_visit_value(&mut self, value: &ValueWithSpan) -> ControlFlow<SqlError> {
        if let Value::Placeholder(p) = &value.value {
            match number(p) {
                Ok(n) => self.0 = self.0.max(n),
                Err(e) => return ControlFlow::Break(e),
            }
        }
        ControlFlow::Continue(())
    }
}

struct Binder<'a>(&'a [Param]);

impl VisitorMut for Binder<'_> {
    type Break = SqlError;

    fn pre_visit_value(&mut self, value: &mut ValueWithSpan) -> ControlFlow<SqlError> {
        let Value::Placeholder(p) = &value.value else { return ControlFlow::Continue(()) };
        let n = match number(p) {
            Ok(n) => n,
            Err(e) => return ControlFlow::Break(e),
        };
        let Some(param) = self.0.get(n - 1) else {
            return ControlFlow::Break(SqlError::Invalid(format!("${n} has no value ({} bound)", self.0.len())));
        };
        value.value = match param {
            Param::Null => Value::Null,
            Param::Bool(b) => Value::Boolean(*b),
            Param::Int(i) => Value::Number(i.to_string(), false),
            Param::Float(f) if f.is_finite() => Value::Number(format!("{f:?}"), false),
            Param::Float(f) => return ControlFlow::Break(SqlError::Invalid(format!("${n} = {f}: only finite numbers can be bound"))),
            Param::Text(t) => Value::SingleQuotedString(t.clone()),
        };
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(sql: &str) -> String {
        match check(sql) {
            Err(e) => e.to_string(),
            Ok(c) => panic!("{sql} passed: {c:?}"),
        }
    }

    #[test]
    fn queries_pass_with_the_tables_they_read() {
        let c = check(
            "SELECT a.agency, b.n FROM scores_by_agency a JOIN public.Scores_By_Agency_Fiscal_Year b USING (agency) WHERE a.n > (SELECT 1 FROM services)",
        )
        .unwrap();
        assert_eq!(c.relations, vec!["scores_by_agency", "scores_by_agency_fiscal_year", "services"]);
        assert!(c.text.contains("JOIN scores_by_agency_fiscal_year b"), "{}", c.text);
        let c = check("WITH Top AS (SELECT * FROM cxlake.public.services) SELECT * FROM top UNION ALL SELECT * FROM services").unwrap();
        assert_eq!(c.relations, vec!["services"]);
        assert_eq!(check("SELECT 1").unwrap().relations, Vec::<String>::new());
        // Columns, aliases and output names fold as Postgres folds them; quoted ones do not.
        let c = check("SELECT R.AGENCY, Count(*) AS Total, \"Mixed\" FROM RESPONSES R GROUP BY R.Agency ORDER BY Total").unwrap();
        assert_eq!(c.text, "SELECT r.agency, Count(*) AS total, \"Mixed\" FROM responses r GROUP BY r.agency ORDER BY total");
    }

    #[test]
    fn writes_ddl_table_functions_and_other_schemas_are_refused() {
        for sql in [
            "INSERT INTO services VALUES (1)",
            "DELETE FROM services",
            "UPDATE services SET name = 'x'",
            "DROP TABLE services",
            "CREATE TABLE t AS SELECT * FROM services",
            "TRUNCATE services",
            "COPY services FROM '/etc/passwd'",
            "EXPLAIN SELECT * FROM services",
            "SHOW TABLES",
        ] {
            assert!(refused(sql).contains("only queries are allowed"), "{sql}: {}", refused(sql));
        }
        assert!(refused("SELECT * FROM read_parquet('/work/lake/responses/x.parquet')").contains("table functions"));
        assert!(refused("WITH read_parquet AS (SELECT 1) SELECT * FROM read_parquet('x')").contains("table functions"));
        assert!(refused("SELECT * INTO copy FROM services").contains("INTO"));
        assert!(refused("SELECT * FROM other.services").contains("does not exist"));
        assert!(refused("SELECT 1; SELECT 2").contains("one statement at a time"));
        assert!(refused("").contains("empty"));
        assert!(refused("SELEKT 1").contains("syntax error"));
    }

    #[test]
    fn bound_values_are_literals_never_sql() {
        let sql = "SELECT * FROM services WHERE agency = $1 AND designated = $3 AND n > $2";
        assert_eq!(placeholders(sql).unwrap(), 3);
        let bound = bind(sql, &[Param::Text("VA' OR '1'='1".into()), Param::Float(0.1), Param::Bool(true)]).unwrap();
        assert_eq!(bound, "SELECT * FROM services WHERE agency = 'VA'' OR ''1''=''1' AND designated = true AND n > 0.1");
        assert_eq!(check(&bound).unwrap().relations, vec!["services"]);
        let short = bind(sql, &[Param::Null]).unwrap_err().to_string();
        assert!(short.contains("$3 has no value (1 bound)"), "{short}");
        assert_eq!(placeholders("SELECT 1").unwrap(), 0);
    }
}
