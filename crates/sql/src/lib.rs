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
pub mod values;

use cx_analytics::{Analytics, AnalyticsError};
use polars::prelude::*;
use polars::sql::SQLContext;

pub use catalog::{Catalog, TableDef};

/// Who runs a statement: the analytics view of their role (exact counts, or the perturbed
/// view of the public role) and which raw rows they may read.
#[derive(Clone)]
pub struct Caller {
    pub view: Analytics,
    pub raw: RawAccess,
    /// The role as logs and errors name it (`analyst`, `agency:VA`).
    pub role: String,
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
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_rows: 1_000_000 }
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
    /// polars could not plan or run the query (an unknown column, a type mismatch, ...).
    #[error("{0}")]
    Query(String),
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
            SqlError::Query(_) => "42703",
        }
    }
}

impl From<PolarsError> for SqlError {
    fn from(e: PolarsError) -> Self {
        SqlError::Query(e.to_string())
    }
}

/// Runs the query `sql` for `caller`: the catalog tables it names computed for them, then
/// the query over those tables, its rows cut at `limits.max_rows`.
pub async fn execute(caller: &Caller, sql: &str, limits: Limits) -> Result<Answer, SqlError> {
    let checked = statement::check(sql)?;
    let catalog = Catalog::for_caller(caller);
    let tables = catalog.resolve(&checked.relations)?;
    let mut frames = Vec::with_capacity(tables.len());
    for t in &tables {
        frames.push((t.name.clone(), t.frame(caller).await?));
    }
    let text = checked.text;
    let max = limits.max_rows;
    let frame = tokio::task::spawn_blocking(move || -> Result<DataFrame, SqlError> {
        let mut ctx = SQLContext::new();
        for (name, lf) in frames {
            ctx.register(&name, lf);
        }
        Ok(ctx.execute(&text)?.limit((max as IdxSize).saturating_add(1)).collect()?)
    })
    .await
    .map_err(|e| SqlError::Query(format!("the query stopped: {e}")))??;
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
    let tables = catalog.resolve(&checked.relations)?;
    let mut ctx = SQLContext::new();
    for t in tables {
        ctx.register(&t.name, DataFrame::empty_with_schema(&t.schema()).lazy());
    }
    Ok(ctx.execute(&checked.text)?.collect_schema()?.as_ref().clone())
}
