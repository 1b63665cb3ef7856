//! The SQL layer: BI tools' SQL over a catalog of named tables (`catalog.rs`), each computed
//! for one caller by `cx_analytics` exactly as the GraphQL field of the same grouping is (the
//! caller's view: exact or perturbed counts, suppression applied), so no filter, sort, join or
//! difference in SQL can reach a number the caller could not get from GraphQL.
//!
//! A statement is parsed once here (`statement.rs`): one read-only query whose every relation
//! is a catalog table (or a name the query itself defines with `WITH`); table functions
//! (`read_parquet(...)`), writes and DDL are refused before anything runs. The tables the
//! query names, and only those, are computed and handed to polars' SQL context, which runs it.
//! The wire protocols (Postgres, Flight SQL) live in `cx-server` and call `execute`/`describe`.

pub mod catalog;
pub mod statement;
pub mod system;
pub mod values;

use cx_analytics::{Analytics, AnalyticsError};
use polars::prelude::*;
use polars::sql::SQLContext;

pub use catalog::{Catalog, ResultTable, ResultTables, TableDef};

/// Who runs a statement: the analytics view of their role (exact counts, or the perturbed
/// view of the public role) and which raw rows they may read.
#[derive(Clone)]
pub struct Caller {
    pub view: Analytics,
    pub raw: RawAccess,
    /// The role as logs and errors name it (`analyst`, `agency:VA`).
    pub role: String,
    /// The result tables (benchmarks, trends, driver importance, ...) the layer above computes
    /// for this caller, if it offers them.
    pub results: Option<std::sync::Arc<dyn ResultTables>>,
}

/// The raw responses a caller may read through the `responses` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawAccess {
    /// None: the table is not in their catalog.
    None,
    /// Those of these agencies only (an agency role).
    Agencies(Vec<String>),
    /// Every agency's (admin).
    All,
}

/// Limits of one statement.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Rows an answer may hold; beyond, it is cut and says so (`Answer::truncated`).
    pub max_rows: usize,
    /// How long a statement may take; beyond, the client gets SQLSTATE 57014 (a computation
    /// already handed to polars finishes in the background, its answer dropped).
    pub timeout: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_rows: 1_000_000, timeout: std::time::Duration::from_secs(60) }
    }
}

/// The result of a statement.
#[derive(Debug, Clone)]
pub struct Answer {
    pub frame: DataFrame,
    /// True when the rows were cut at `Limits::max_rows`.
    pub truncated: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// The text is not SQL this layer runs (syntax, several statements, not a query).
    #[error("{0}")]
    Invalid(String),
    /// A relation that is not a table of the caller's catalog.
    #[error("relation \"{name}\" does not exist{hint}")]
    UnknownTable { name: String, hint: String },
    /// A table the caller's role may not read.
    #[error("permission denied for table {table}: {reason}")]
    Forbidden { table: String, reason: String },
    #[error(transparent)]
    Analytics(#[from] AnalyticsError),
    /// The statement ran past `Limits::timeout`.
    #[error("the statement took longer than the server's limit of {0:?} (--sql-timeout-seconds) and was cancelled")]
    Timeout(std::time::Duration),
    /// polars could not plan or run the query (an unknown column, a type mismatch, ...), with
    /// the SQLSTATE of the cause.
    #[error("{message}")]
    Query { sqlstate: &'static str, message: String },
}

impl SqlError {
    /// The SQLSTATE a Postgres client expects for this error.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            SqlError::Invalid(_) => "42601",
            SqlError::UnknownTable { .. } => "42P01",
            SqlError::Forbidden { .. } => "42501",
            SqlError::Analytics(AnalyticsError::Busy { .. }) => "53300",
            SqlError::Analytics(AnalyticsError::Cancelled) => "57014",
            SqlError::Analytics(_) => "XX000",
            SqlError::Timeout(_) => "57014",
            SqlError::Query { sqlstate, .. } => sqlstate,
        }
    }
}

impl From<PolarsError> for SqlError {
    fn from(e: PolarsError) -> Self {
        let sqlstate = match &e {
            PolarsError::ColumnNotFound(_) | PolarsError::SchemaFieldNotFound(_) | PolarsError::StructFieldNotFound(_) => "42703",
            PolarsError::SQLSyntax(_) => "42601",
            PolarsError::SQLInterface(_) => "0A000",
            PolarsError::SchemaMismatch(_) | PolarsError::InvalidOperation(_) => "42804",
            PolarsError::Duplicate(_) => "42701",
            PolarsError::ComputeError(_) | PolarsError::OutOfBounds(_) | PolarsError::ShapeMismatch(_) | PolarsError::NoData(_) => "22000",
            _ => "XX000",
        };
        SqlError::Query { sqlstate, message: e.to_string() }
    }
}

/// Runs the query `sql` for `caller`: the catalog tables it names computed for them, then
/// the query over those tables, its rows cut at `limits.max_rows`, within `limits.timeout`.
pub async fn execute(caller: &Caller, sql: &str, limits: Limits) -> Result<Answer, SqlError> {
    tokio::time::timeout(limits.timeout, run(caller, sql, limits)).await.map_err(|_| SqlError::Timeout(limits.timeout))?
}

async fn run(caller: &Caller, sql: &str, limits: Limits) -> Result<Answer, SqlError> {
    let checked = statement::check(sql)?;
    let catalog = Catalog::for_caller(caller);
    let (names, system) = split(&checked.relations);
    let tables = catalog.resolve(&names)?;
    let mut frames = Vec::with_capacity(tables.len() + system.len());
    for t in &tables {
        frames.push((t.name.clone(), t.frame(caller).await?));
    }
    let plan = Plan::new(&catalog, checked, &system, frames)?;
    let max = limits.max_rows;
    let frame = tokio::task::spawn_blocking(move || plan.run(|lf| lf.limit((max as IdxSize).saturating_add(1)).collect()))
        .await
        .map_err(|e| SqlError::Query { sqlstate: "XX000", message: format!("the query stopped: {e}") })??;
    let truncated = frame.height() > max;
    let frame = if truncated { frame.head(Some(max)) } else { frame };
    Ok(Answer { frame, truncated })
}

/// The columns `sql` would return for `caller`, without computing any table: the query is
/// planned over empty tables of the catalog's fixed schemas.
pub fn describe(caller: &Caller, sql: &str) -> Result<Schema, SqlError> {
    // A statement with placeholders is planned with each bound to NULL (its columns do not
    // depend on the values).
    let n = statement::placeholders(sql)?;
    let checked = statement::check(&statement::bind(sql, &vec![statement::Param::Null; n])?)?;
    let catalog = Catalog::for_caller(caller);
    let (names, system) = split(&checked.relations);
    let frames = catalog.resolve(&names)?.into_iter().map(|t| (t.name.clone(), DataFrame::empty_with_schema(&t.schema()).lazy())).collect();
    let plan = Plan::new(&catalog, checked, &system, frames)?;
    Ok(plan.run(|mut lf| Ok(DataFrame::empty_with_schema(lf.collect_schema()?.as_ref())))?.schema().as_ref().clone())
}

/// A query's relations: the catalog's tables, then the system tables.
fn split(relations: &[String]) -> (Vec<String>, Vec<String>) {
    relations.iter().cloned().partition(|n| !system::is_system(n))
}

/// A checked query ready to run over its tables' frames.
struct Plan {
    frames: Vec<(String, LazyFrame)>,
    text: String,
    /// The rewritten query, when it reads system tables (see `system`).
    system: Option<sqlparser::ast::Query>,
}

impl Plan {
    fn new(catalog: &Catalog, checked: statement::Checked, system_names: &[String], mut frames: Vec<(String, LazyFrame)>) -> Result<Plan, SqlError> {
        if system_names.is_empty() {
            return Ok(Plan { frames, text: checked.text, system: None });
        }
        let tables = system::System::new(catalog);
        for n in system_names {
            let frame = tables.frame(n).ok_or_else(|| SqlError::UnknownTable { name: n.clone(), hint: String::new() })?;
            frames.push((n.clone(), frame.lazy()));
        }
        let mut query = checked.query;
        system::rewrite(&mut query, &tables);
        Ok(Plan { frames, text: query.to_string(), system: Some(query) })
    }

    /// Registers the frames and runs the query through `finish`. A catalog query polars cannot
    /// run answers no rows (`system::empty_answer`).
    fn run(self, finish: impl FnOnce(LazyFrame) -> PolarsResult<DataFrame>) -> Result<DataFrame, SqlError> {
        let mut ctx = SQLContext::new();
        for (name, lf) in self.frames {
            ctx.register(&name, lf);
        }
        match (ctx.execute(&self.text).and_then(finish), self.system) {
            (Ok(frame), _) => Ok(frame),
            (Err(e), Some(query)) => {
                tracing::debug!(error = %e, sql = %self.text, "a catalog query answers no rows");
                Ok(system::empty_answer(&query))
            }
            (Err(e), None) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use catalog::{Source, TableDef};

    /// Runs `sql` over the system tables of a catalog of `services` and `scores_overall`.
    fn system_query(sql: &str) -> Result<DataFrame, SqlError> {
        let catalog = Catalog {
            tables: vec![
                TableDef { name: "scores_overall".into(), source: Source::Scores { group_by: None, period: None } },
                TableDef { name: "services".into(), source: Source::Services },
            ],
            withheld: vec![TableDef { name: "responses".into(), source: Source::Responses }],
        };
        let checked = statement::check(sql)?;
        let (names, system) = split(&checked.relations);
        assert!(names.is_empty(), "{names:?}");
        Plan::new(&catalog, checked, &system, Vec::new())?.run(|lf| lf.collect())
    }

    fn texts(frame: &DataFrame, column: &str) -> Vec<String> {
        frame.column(column).unwrap().str().unwrap().iter().map(|v| v.unwrap_or_default().to_string()).collect()
    }

    #[test]
    fn psql_lists_tables_and_their_columns() {
        // psql 15's `\dt`.
        let dt = system_query(
            "SELECT n.nspname as \"Schema\", c.relname as \"Name\", CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' WHEN 'p' THEN 'partitioned table' END as \"Type\", \
             pg_catalog.pg_get_userbyid(c.relowner) as \"Owner\" FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam WHERE c.relkind IN ('r','p','') AND n.nspname <> 'pg_catalog' AND n.nspname !~ '^pg_toast' \
             AND n.nspname <> 'information_schema' AND pg_catalog.pg_table_is_visible(c.oid) ORDER BY 1,2",
        )
        .unwrap();
        assert_eq!(texts(&dt, "Name"), vec!["scores_overall", "services"]);
        assert_eq!(texts(&dt, "Type"), vec!["table", "table"]);
        // `\d services`: the oid, then the columns.
        let found = system_query(
            "SELECT c.oid, n.nspname, c.relname FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relname OPERATOR(pg_catalog.~) '^(services)$' COLLATE pg_catalog.default AND pg_catalog.pg_table_is_visible(c.oid) ORDER BY 2, 3",
        )
        .unwrap();
        let oid = found.column("oid").unwrap().i64().unwrap().get(0).unwrap();
        let columns = system_query(&format!(
            "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), (SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid, true) \
             FROM pg_catalog.pg_attrdef d WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.atthasdef), a.attnotnull, \
             (SELECT c.collname FROM pg_catalog.pg_collation c, pg_catalog.pg_type t WHERE c.oid = a.attcollation AND t.oid = a.atttypid \
             AND a.attcollation <> t.typcollation) AS attcollation, a.attidentity, a.attgenerated FROM pg_catalog.pg_attribute a \
             WHERE a.attrelid = '{oid}' AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum"
        ))
        .unwrap();
        assert_eq!(texts(&columns, "attname")[..3], ["id", "name", "description"]);
        assert!(texts(&columns, "format_type").iter().any(|t| t == "boolean"), "{columns}");
        // Descriptions, information_schema, and a catalog query polars cannot run: no rows.
        let described = system_query("SELECT obj_description(c.oid, 'pg_class') AS d FROM pg_class c WHERE relname = 'services'").unwrap();
        assert!(texts(&described, "d")[0].contains("inventory"), "{described}");
        let cols =
            system_query("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'scores_overall' AND column_name = 'n'").unwrap();
        assert_eq!(texts(&cols, "data_type"), vec!["bigint"]);
        let policies = system_query("SELECT pol.polname, pol.polpermissive FROM pg_catalog.pg_policy pol WHERE pol.polrelid = '16385' ORDER BY 1").unwrap();
        assert_eq!((policies.height(), policies.get_column_names().iter().map(|c| c.as_str()).collect::<Vec<_>>()), (0, vec!["polname", "polpermissive"]));
        // The withheld table is not listed; a password table is not there at all.
        assert!(!texts(&system_query("SELECT relname FROM pg_class").unwrap(), "relname").contains(&"responses".to_string()));
        assert!(matches!(system_query("SELECT * FROM pg_shadow"), Err(SqlError::UnknownTable { .. })));
    }
}
