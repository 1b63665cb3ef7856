//! The tables a caller can read over SQL, each with a schema fixed by the types it is built
//! from (never by the rows), computed only when a statement names it.
//!
//! Names BI users can browse (`\dt`, a tool's table list), one scheme:
//! - `scores_overall`, `scores_by_<period>` and `scores_by_<dimension>[_<period>]`: the
//!   `scores` GraphQL field for that grouping and period, every measure, unweighted; dimensions
//!   `agency`, `bureau`, `service`, `service_type`, `channel`, `office`, `region`, `stage`;
//!   periods `month`, `fiscal_quarter`, `fiscal_year`. Columns: the grouping's lake columns
//!   (`service_id`, `office_id`, …), `period`, `period_start`, `period_end`, `measure`, then the
//!   statistics of `ScoreOut` in snake case. Suppressed cells have null statistics, as in
//!   GraphQL; the public role's counts are perturbed, as in GraphQL.
//! - `services`, `offices`: the dimension tables.
//! - `responses`: raw rows, for the agency role (its agency's rows only) and admins.
//! - The result tables of the layer above (`ResultTables`: benchmarks, trends, alerts, driver
//!   importance, telemetry, service levels, the HISP report), each a GraphQL list query of the
//!   caller flattened as a table download is; the server names and documents them.

use super::{Caller, RawAccess, SqlError};
use cx_analytics::{ScoreRow, ScoresQuery};
use cx_domain::{Dimension, Measure, PeriodUnit};
use polars::prelude::*;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// What a table is computed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Scores {
        group_by: Option<Dimension>,
        period: Option<PeriodUnit>,
    },
    Services,
    Offices,
    Responses,
    /// A table of the layer above (`ResultTables`).
    Result(Arc<ResultTable>),
}

/// A table computed above this layer, with its schema fixed before any row is computed.
#[derive(Debug)]
pub struct ResultTable {
    pub name: String,
    pub description: String,
    pub schema: Schema,
    /// Why the caller may not read it, if so: then it is withheld (not listed; refused by name).
    pub refused: Option<String>,
}

impl PartialEq for ResultTable {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for ResultTable {}

/// The result tables the layer above computes for one caller (the server: its GraphQL list
/// queries run with the caller's role, so their suppression is GraphQL's).
pub trait ResultTables: Send + Sync {
    /// Every result table, those the caller may not read marked `refused`.
    fn tables(&self) -> Vec<Arc<ResultTable>>;
    /// The rows of `table` for the caller, in its schema.
    fn frame<'a>(&'a self, table: &'a ResultTable) -> Pin<Box<dyn Future<Output = Result<DataFrame, SqlError>> + Send + 'a>>;
}

/// One table of the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDef {
    pub name: String,
    pub source: Source,
}

/// The periods score tables come in, with their name in table names.
pub const PERIODS: [(PeriodUnit, &str); 3] =
    [(PeriodUnit::Month, "month"), (PeriodUnit::FiscalQuarter, "fiscal_quarter"), (PeriodUnit::FiscalYear, "fiscal_year")];

/// A dimension's name in table names (its GraphQL name in snake case).
pub fn dimension_name(d: Dimension) -> &'static str {
    match d {
        Dimension::Service => "service",
        Dimension::Office => "office",
        other => other.as_str(),
    }
}

impl TableDef {
    /// What the table holds, for catalog listings (`obj_description`, Flight SQL's table list).
    pub fn description(&self) -> String {
        match &self.source {
            Source::Scores { group_by, period } => {
                let (group_by, period) = (*group_by, *period);
                let by = group_by.map_or("overall".to_string(), |d| format!("by {}", dimension_name(d).replace('_', " ")));
                let per = PERIODS.iter().find(|(p, _)| Some(*p) == period).map_or(", all time".to_string(), |(_, n)| format!(" per {}", n.replace('_', " ")));
                format!("Scores of every measure {by}{per} (GraphQL scores, unweighted): n, mean, sd, agree share with 95% intervals; suppressed cells have null statistics")
            }
            Source::Services => "The service inventory (A-11 280.5)".into(),
            Source::Offices => "Offices (places of in-person service)".into(),
            Source::Responses => "Raw survey responses the caller's role may read (an agency's own rows)".into(),
            Source::Result(t) => t.description.clone(),
        }
    }

    /// The table's columns and types (those of a frame of no rows: the same code builds both).
    pub fn schema(&self) -> Schema {
        match &self.source {
            Source::Scores { group_by, period } => scores_frame(*group_by, *period, &[]).schema().as_ref().clone(),
            Source::Services => services_frame(&[]).schema().as_ref().clone(),
            Source::Offices => offices_frame(&[]).schema().as_ref().clone(),
            Source::Responses => cx_analytics::responses::response_schema(),
            Source::Result(t) => t.schema.clone(),
        }
    }

    /// The table's rows for `caller`.
    pub async fn frame(&self, caller: &Caller) -> Result<LazyFrame, SqlError> {
        Ok(match &self.source {
            Source::Scores { group_by, period } => {
                let (group_by, period) = (*group_by, *period);
                let q = ScoresQuery {
                    filter: Default::default(),
                    group_by: group_by.into_iter().collect(),
                    period,
                    measures: Measure::all(),
                    weighted: false,
                    confidence: 0.95,
                };
                scores_frame(group_by, period, &caller.view.scores(&q).await?.rows).lazy()
            }
            Source::Services => services_frame(&caller.view.catalog().services).lazy(),
            Source::Offices => offices_frame(&caller.view.catalog().offices).lazy(),
            Source::Responses => match &caller.raw {
                RawAccess::None => return Err(forbidden(&self.name, caller)),
                RawAccess::Agencies(a) => caller.view.response_rows(Some(a)).await?,
                RawAccess::All => caller.view.response_rows(None).await?,
            },
            Source::Result(t) => match (&caller.results, &t.refused) {
                (Some(results), None) => {
                    let frame = results.frame(t).await?;
                    // The rows must be in the schema the catalog announced.
                    if frame.schema().as_ref() != &t.schema {
                        return Err(SqlError::Query {
                            sqlstate: "XX000",
                            message: format!("table {}: computed columns {:?} differ from its schema {:?}", t.name, frame.schema(), t.schema),
                        });
                    }
                    frame.lazy()
                }
                (_, reason) => return Err(SqlError::Forbidden { table: t.name.clone(), reason: reason.clone().unwrap_or_else(|| "not offered here".into()) }),
            },
        })
    }
}

fn forbidden(table: &str, caller: &Caller) -> SqlError {
    SqlError::Forbidden { table: table.into(), reason: format!("raw responses are for the agency and admin roles, not {}", caller.role) }
}

/// The tables of one caller.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub tables: Vec<TableDef>,
    /// Tables that exist but this caller may not read (named in refusals).
    pub withheld: Vec<TableDef>,
}

impl Catalog {
    /// Every table, for `caller`: `responses` only with raw access.
    pub fn for_caller(caller: &Caller) -> Catalog {
        let mut tables = Vec::new();
        let groupings = std::iter::once(None).chain(Dimension::ALL.iter().copied().map(Some));
        for group_by in groupings {
            for period in std::iter::once(None).chain(PERIODS.iter().map(|(p, _)| Some(*p))) {
                let per = PERIODS.iter().find(|(p, _)| Some(*p) == period).map(|(_, n)| *n);
                let name = match (group_by, per) {
                    (None, None) => "scores_overall".to_string(),
                    (None, Some(p)) => format!("scores_by_{p}"),
                    (Some(d), None) => format!("scores_by_{}", dimension_name(d)),
                    (Some(d), Some(p)) => format!("scores_by_{}_{p}", dimension_name(d)),
                };
                tables.push(TableDef { name, source: Source::Scores { group_by, period } });
            }
        }
        tables.push(TableDef { name: "services".into(), source: Source::Services });
        tables.push(TableDef { name: "offices".into(), source: Source::Offices });
        let mut withheld = Vec::new();
        let responses = TableDef { name: "responses".into(), source: Source::Responses };
        match caller.raw {
            RawAccess::None => withheld.push(responses),
            _ => tables.push(responses),
        }
        for t in caller.results.iter().flat_map(|r| r.tables()) {
            let def = TableDef { name: t.name.clone(), source: Source::Result(t.clone()) };
            if t.refused.is_some() {
                withheld.push(def);
            } else {
                tables.push(def);
            }
        }
        Catalog { tables, withheld }
    }

    pub fn get(&self, name: &str) -> Option<&TableDef> {
        self.tables.iter().find(|t| t.name == name)
    }

    /// The tables `names` refer to: unknown names and withheld tables are errors.
    pub fn resolve(&self, names: &[String]) -> Result<Vec<TableDef>, SqlError> {
        names
            .iter()
            .map(|n| match self.get(n) {
                Some(t) => Ok(t.clone()),
                None => match self.withheld.iter().find(|t| &t.name == n) {
                    Some(TableDef { source: Source::Result(t), .. }) => {
                        Err(SqlError::Forbidden { table: n.clone(), reason: t.refused.clone().unwrap_or_default() })
                    }
                    Some(_) => Err(SqlError::Forbidden { table: n.clone(), reason: "raw responses are for the agency and admin roles".into() }),
                    None => Err(SqlError::UnknownTable {
                        name: n.clone(),
                        hint: " (the tables: scores_overall, scores_by_<dimension>[_<period>], services, offices, the result tables; see the catalog)".into(),
                    }),
                },
            })
            .collect()
    }
}

/// A date column of days since 1970-01-01 (`days`).
pub fn date_column(name: &str, days: Vec<Option<i32>>) -> Column {
    Series::new(name.into(), days).cast(&DataType::Date).expect("days are dates").into()
}

/// Days since 1970-01-01, as polars stores dates.
pub fn days(d: chrono::NaiveDate) -> i32 {
    (d - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32
}

/// Score rows as a table: the grouping's columns, the period's, `measure`, the statistics.
fn scores_frame(group_by: Option<Dimension>, period: Option<PeriodUnit>, rows: &[ScoreRow]) -> DataFrame {
    let mut cols: Vec<Column> = Vec::new();
    if let Some(d) = group_by {
        cols.push(Column::new(d.column().into(), rows.iter().map(|r| r.key.get(d)).collect::<Vec<_>>()));
    }
    if period.is_some() {
        let p = |r: &ScoreRow| r.key.period.clone();
        cols.push(Column::new("period".into(), rows.iter().map(|r| p(r).map(|p| p.label)).collect::<Vec<_>>()));
        cols.push(date_column("period_start", rows.iter().map(|r| p(r).map(|p| days(p.start))).collect()));
        cols.push(date_column("period_end", rows.iter().map(|r| p(r).map(|p| days(p.end))).collect()));
    }
    let int = |name: &str, f: &dyn Fn(&ScoreRow) -> u64| Column::new(name.into(), rows.iter().map(|r| f(r) as i64).collect::<Vec<i64>>());
    let real = |name: &str, f: &dyn Fn(&ScoreRow) -> Option<f64>| Column::new(name.into(), rows.iter().map(f).collect::<Vec<Option<f64>>>());
    cols.push(Column::new("measure".into(), rows.iter().map(|r| r.measure.column()).collect::<Vec<&str>>()));
    cols.push(int("n", &|r| r.n));
    cols.push(int("n_likert", &|r| r.n_likert));
    cols.push(int("n_thumbs", &|r| r.n_thumbs));
    cols.push(real("mean", &|r| r.mean));
    cols.push(real("sd", &|r| r.sd));
    cols.push(real("mean_low", &|r| r.mean_ci.map(|c| c.low)));
    cols.push(real("mean_high", &|r| r.mean_ci.map(|c| c.high)));
    cols.push(Column::new("n_effective_likert".into(), rows.iter().map(|r| r.n_effective_likert).collect::<Vec<f64>>()));
    cols.push(real("agree_share", &|r| r.agree_share));
    cols.push(real("agree_low", &|r| r.agree_ci.map(|c| c.low)));
    cols.push(real("agree_high", &|r| r.agree_ci.map(|c| c.high)));
    cols.push(Column::new("n_effective".into(), rows.iter().map(|r| r.n_effective).collect::<Vec<f64>>()));
    cols.push(Column::new("suppressed".into(), rows.iter().map(|r| r.suppressed.is_some()).collect::<Vec<bool>>()));
    cols.push(Column::new("suppressed_reason".into(), rows.iter().map(|r| r.suppressed.as_deref()).collect::<Vec<Option<&str>>>()));
    cols.push(Column::new("perturbed".into(), rows.iter().map(|r| r.perturbed).collect::<Vec<bool>>()));
    DataFrame::new_infer_height(cols).expect("columns of one length")
}

fn services_frame(rows: &[cx_analytics::catalog::ServiceInfo]) -> DataFrame {
    let text = |name: &str, f: &dyn Fn(&cx_analytics::catalog::ServiceInfo) -> String| Column::new(name.into(), rows.iter().map(f).collect::<Vec<String>>());
    DataFrame::new_infer_height(vec![
        text("id", &|s| s.id.clone()),
        text("name", &|s| s.name.clone()),
        text("description", &|s| s.description.clone()),
        text("agency", &|s| s.agency.clone()),
        text("agency_name", &|s| s.agency_name.clone()),
        text("bureau", &|s| s.bureau.clone()),
        text("bureau_name", &|s| s.bureau_name.clone()),
        text("org_unit", &|s| s.org_unit.clone()),
        text("service_type", &|s| s.service_type.as_str().to_string()),
        text("channels", &|s| s.channels.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(",")),
        Column::new("designated".into(), rows.iter().map(|s| s.designated).collect::<Vec<bool>>()),
        Column::new("non_digital_reason".into(), rows.iter().map(|s| s.non_digital_reason.clone()).collect::<Vec<Option<String>>>()),
        text("digitization_options", &|s| s.digitization_options.join("; ")),
    ])
    .expect("columns of one length")
}

fn offices_frame(rows: &[cx_analytics::catalog::OfficeInfo]) -> DataFrame {
    let text = |name: &str, f: &dyn Fn(&cx_analytics::catalog::OfficeInfo) -> String| Column::new(name.into(), rows.iter().map(f).collect::<Vec<String>>());
    DataFrame::new_infer_height(vec![
        text("id", &|o| o.id.clone()),
        text("name", &|o| o.name.clone()),
        text("city", &|o| o.city.clone()),
        text("state", &|o| o.state.clone()),
        text("agency", &|o| o.agency.clone()),
    ])
    .expect("columns of one length")
}
