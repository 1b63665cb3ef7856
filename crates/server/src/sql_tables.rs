//! SQL's result tables: the GraphQL list queries (benchmarks, trends, alerts, driver
//! importance, tapped driver importance, telemetry, service levels, the HISP report) at fixed
//! groupings and periods, each run through the schema with the caller's principal and
//! flattened as a table download is (`download.rs`). A SQL table therefore holds exactly what
//! GraphQL gives that caller, suppression and perturbation included, and its columns are fixed
//! by the documents and the schema's types before any row is computed.
//!
//! Names: `<result>[_by_<grouping>][_<period>]`, periods `month`, `fiscal_quarter`,
//! `fiscal_year` (none: all time); a table of several queries (every measure, every peer
//! group, both outcomes) says which in its first columns. Columns are the GraphQL fields in
//! snake case; the unnested list's fields lose its prefix (`drivers_beta` is `beta`); enum
//! values are in lower case (`trust`, `same_channel`), as the scores tables write measures.

use super::auth::Principal;
use super::download::{OutputTypes, TablePlan};
use super::CxSchema;
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType as ArrowType, Float64Type, Int64Type};
use cx_sql::{ResultTable, SqlError};
use polars::prelude::*;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// The periods of result tables: suffix and GraphQL `PeriodUnit`.
const PERIODS: [(&str, &str); 3] = [("month", "MONTH"), ("fiscal_quarter", "FISCAL_QUARTER"), ("fiscal_year", "FISCAL_YEAR")];

/// Score statistics, as `scores` and `trends` name them.
const SCORE: &str =
    "n nLikert nThumbs mean sd meanLow meanHigh nEffectiveLikert agreeShare agreeLow agreeHigh nEffective suppressed suppressedReason perturbed";
const CHANGE: &str =
    "period n mean agreeShare meanChange meanChangeLow meanChangeHigh meanChangeP agreeChange agreeChangeLow agreeChangeHigh agreeChangeP suppressed";
const MEASURES: [&str; 8] = ["TRUST", "SATISFACTION", "EFFECTIVENESS", "EASE", "EFFICIENCY", "TRANSPARENCY", "HUMANITY", "EMPLOYEE"];

/// A constant column a table's part adds before the query's columns.
#[derive(Debug, Clone)]
enum Constant {
    Text(&'static str, String),
    Int(&'static str, i64),
}

/// One GraphQL query of a table, with the constant columns of its rows.
#[derive(Debug, Clone)]
struct Part {
    document: String,
    constants: Vec<Constant>,
}

/// Which queries make a table.
#[derive(Debug, Clone)]
enum Parts {
    Fixed(Vec<Part>),
    /// One `hispReport` per fiscal quarter with answers.
    HispQuarters,
}

/// A result table: its queries, how their columns are named, who may read it.
#[derive(Debug)]
struct Spec {
    table: Arc<ResultTable>,
    parts: Parts,
    /// The plan of every part's document (they select the same fields).
    plan: TablePlan,
    /// The constants' names and types, in order.
    constants: Vec<Constant>,
    /// Prefixes dropped from column names (the unnested list's).
    strip: &'static [&'static str],
    /// Only for roles with exact counts (tapped importance is not offered to the public role).
    exact_only: bool,
}

/// Every result table of a schema, planned once.
pub struct ResultCatalog {
    schema: CxSchema,
    specs: Vec<Spec>,
    /// The tables as roles with exact counts see them, and as the public role does (tapped
    /// importance refused), built once.
    exact: Vec<Arc<ResultTable>>,
    perturbed: Vec<Arc<ResultTable>>,
    /// The plan of `QUARTERS` (which fiscal quarters have answers, for the HISP report).
    quarters: TablePlan,
}

const QUARTERS: &str = "{ scores(period: FISCAL_QUARTER, measures: [TRUST]) { period } }";

/// What `ResultCatalog::new` builds a spec from.
struct Draft {
    name: String,
    description: String,
    parts: Parts,
    /// The document whose plan gives the columns (the first part's, or a template).
    template: String,
    constants: Vec<Constant>,
    strip: &'static [&'static str],
    exact_only: bool,
}

impl Draft {
    fn fixed(name: String, description: String, parts: Vec<Part>, strip: &'static [&'static str]) -> Draft {
        let template = parts[0].document.clone();
        let constants = parts[0].constants.clone();
        Draft { name, description, parts: Parts::Fixed(parts), template, constants, strip, exact_only: false }
    }
}

fn period_suffix(period: Option<(&str, &str)>) -> String {
    period.map_or(String::new(), |(p, _)| format!("_{p}"))
}

fn period_arg(period: Option<(&str, &str)>) -> String {
    period.map_or(String::new(), |(_, g)| format!(", period: {g}"))
}

fn period_words(period: Option<(&str, &str)>) -> String {
    period.map_or(", all time".to_string(), |(p, _)| format!(" per {}", p.replace('_', " ")))
}

const PERIOD_FIELDS: &str = "period periodStart periodEnd";

/// The groupings of score-like results: none, or one dimension (its SQL name, GraphQL enum,
/// and the field selected under the lake column's name, as the scores tables name it).
fn groupings() -> Vec<Option<(&'static str, String, String)>> {
    let dims = cx_domain::Dimension::ALL.iter().map(|&d| {
        let name = cx_sql::catalog::dimension_name(d);
        let field = camel(name);
        let column = d.column();
        let select = if column == field { field.clone() } else { format!("{column}: {field}") };
        Some((name, name.to_ascii_uppercase(), select))
    });
    std::iter::once(None).chain(dims).collect()
}

fn camel(snake: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// A GraphQL name in snake case (`meanChangeLow` is `mean_change_low`).
fn snake(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn drafts() -> Vec<Draft> {
    let mut out = Vec::new();
    let periods = || std::iter::once(None).chain(PERIODS.iter().map(|&(a, b)| Some((a, b))));
    // Benchmarks: every entity at a level against each peer group, every measure.
    for (level, column) in [("agency", "agency"), ("bureau", "bureau"), ("service", "service_id"), ("office", "office_id")] {
        for period in periods() {
            let mut parts = Vec::new();
            for peers in ["GOVERNMENT_WIDE", "SAME_SERVICE_TYPE", "SAME_AGENCY", "SAME_CHANNEL"] {
                if level == "agency" && peers == "SAME_AGENCY" {
                    continue;
                }
                for m in MEASURES {
                    let period_fields = if period.is_some() { PERIOD_FIELDS } else { "" };
                    parts.push(Part {
                        document: format!(
                            "{{ benchmark(level: {}, peers: {peers}, measure: {m}{}) {{ {column}: entity {period_fields} peerKey {SCORE} peerEntities peerN peerMean peerAgreeShare \
                             meanDifference meanDifferenceLow meanDifferenceHigh meanDifferenceP agreeDifference agreeDifferenceLow agreeDifferenceHigh agreeDifferenceP \
                             rank percentile entitiesRanked peerSuppressedReason }} }}",
                            level.to_ascii_uppercase(),
                            period_arg(period)
                        ),
                        constants: vec![Constant::Text("peers", peers.to_ascii_lowercase()), Constant::Text("measure", m.to_ascii_lowercase())],
                    });
                }
            }
            out.push(Draft::fixed(
                format!("benchmark_by_{level}{}", period_suffix(period)),
                format!(
                    "Every {level} against its peers (government-wide, same service type{}, same channel){}, every measure, pooled, the {level} excluded from its peers \
                     (GraphQL benchmark(level: {}, peers, measure))",
                    if level == "agency" { "" } else { ", same agency" },
                    period_words(period),
                    level.to_ascii_uppercase()
                ),
                parts,
                &[],
            ));
        }
    }
    // Trends, alerts: per period.
    for grouping in groupings() {
        for period in PERIODS.iter().map(|&(a, b)| Some((a, b))) {
            let (by, group_arg, group_field) = match &grouping {
                Some((name, e, f)) => (format!("_by_{name}"), format!(", groupBy: [{e}]"), f.clone()),
                None => (String::new(), String::new(), String::new()),
            };
            let parts = MEASURES
                .iter()
                .map(|m| Part {
                    document: format!(
                        "{{ trends(measure: {m}{group_arg}{}) {{ {group_field} {PERIOD_FIELDS} measure {SCORE} previous {{ {CHANGE} }} yearAgo {{ {CHANGE} }} }} }}",
                        period_arg(period)
                    ),
                    constants: Vec::new(),
                })
                .collect();
            let (p, _) = period.expect("trends have a period");
            let name = if by.is_empty() { format!("trends_by_{p}") } else { format!("trends{by}_{p}") };
            out.push(Draft::fixed(
                name,
                format!(
                    "Scores of every measure{} per {} with the change from the previous period and from a year before (GraphQL trends)",
                    grouping.as_ref().map_or(String::new(), |(n, _, _)| format!(" by {}", n.replace('_', " "))),
                    p.replace('_', " ")
                ),
                parts,
                &[],
            ));
        }
    }
    for period in PERIODS.iter().map(|&(a, b)| Some((a, b))) {
        let (p, _) = period.expect("a period");
        out.push(Draft::fixed(
            format!("alerts_by_{p}"),
            format!(
                "Significant drops of agree shares in the latest complete {} against the previous one and a year before, every measure and level (GraphQL alerts)",
                p.replace('_', " ")
            ),
            vec![Part {
                document: format!(
                    "{{ alerts(measures: [{}]{}) {{ level entity measure period comparison change {{ {CHANGE} }} n agreeShare mean pValue qValue effectSize perturbed }} }}",
                    MEASURES.join(", "),
                    period_arg(period)
                ),
                constants: Vec::new(),
            }],
            &[],
        ));
    }
    // Driver importance (Likert) and tapped driver importance: both outcomes, one row per
    // group and driver (or topic).
    for grouping in groupings() {
        for period in periods() {
            let (by, group_arg, group_field) = match &grouping {
                Some((name, e, f)) => (format!("_by_{name}"), format!(", groupBy: [{e}]"), f.clone()),
                None => (String::new(), String::new(), String::new()),
            };
            let period_fields = if period.is_some() { PERIOD_FIELDS } else { "" };
            let words = format!("{}{}", grouping.as_ref().map_or(String::new(), |(n, _, _)| format!(" by {}", n.replace('_', " "))), period_words(period));
            let likert = ["TRUST", "SATISFACTION"]
                .iter()
                .map(|o| Part {
                    document: format!(
                        "{{ driverImportance(outcome: {o}{group_arg}{}) {{ {group_field} {period_fields} outcome n nDropped nEffective r2 adjR2 error warnings bootstrapReplicates \
                         suppressed suppressedReason perturbed drivers {{ driver r beta first last pratt johnson johnsonShare shapley shapleyShare rank vif performance quadrant }} }} }}",
                        period_arg(period)
                    ),
                    constants: Vec::new(),
                })
                .collect();
            out.push(Draft::fixed(
                format!("driver_importance{by}{}", period_suffix(period)),
                format!("What drives trust and satisfaction{words}: one row per group, outcome and driver, Likert responses (GraphQL driverImportance)"),
                likert,
                &["drivers_"],
            ));
            let tapped = ["TRUST", "SATISFACTION"]
                .iter()
                .map(|o| Part {
                    document: format!(
                        "{{ tappedDriverImportance(outcome: {o}{group_arg}{}) {{ {group_field} {period_fields} outcome model n nDropped nNotShown nOutcomeMissing nEffective events \
                         logLikelihood nullLogLikelihood mcfadden nagelkerke estrella r2 adjR2 intercept error warnings bootstrapReplicates suppressed suppressedReason \
                         drivers {{ topic importance share rank johnson johnsonShare }} }} }}",
                        period_arg(period)
                    ),
                    constants: Vec::new(),
                })
                .collect();
            let mut d = Draft::fixed(
                format!("tapped_driver_importance{by}{}", period_suffix(period)),
                format!(
                    "What drives trust and satisfaction{words} from the tapped what-went-well / what-didn't topics (logistic model): one row per group, outcome and topic \
                     (GraphQL tappedDriverImportance; not for the public role)"
                ),
                tapped,
                &["drivers_"],
            );
            d.exact_only = true;
            out.push(d);
        }
    }
    // Telemetry and service indicators: aggregates per metric.
    for (field, about) in
        [("telemetry", "Telemetry aggregates (count, sum, mean, median, min, max) per metric"), ("indicators", "Service-level indicators per metric")]
    {
        let groups = std::iter::once(None).chain(["agency", "service", "channel", "page", "office"].into_iter().map(Some));
        for group in groups {
            for period in periods() {
                let (by, arg, select) = match group {
                    Some(g) => {
                        let select = match g {
                            "service" => "service_id: service".to_string(),
                            "office" => "office_id: office".to_string(),
                            other => other.to_string(),
                        };
                        (format!("_by_{g}"), format!("groupBy: [{}]", g.to_ascii_uppercase()), select)
                    }
                    None => (String::new(), String::new(), String::new()),
                };
                let period_fields = if period.is_some() { PERIOD_FIELDS } else { "" };
                let args = format!("{arg}{}", period_arg(period));
                let args = args.trim_start_matches(", ");
                let args = if args.is_empty() { String::new() } else { format!("({args})") };
                out.push(Draft::fixed(
                    format!("{field}{by}{}", period_suffix(period)),
                    format!("{about}{}{} (GraphQL {field})", group.map_or(String::new(), |g| format!(" by {g}")), period_words(period)),
                    vec![Part {
                        document: format!("{{ {field}{args} {{ {select} {period_fields} metric count sum mean median min max }} }}"),
                        constants: Vec::new(),
                    }],
                    &[],
                ));
            }
        }
    }
    // Service levels: indicators and scores per service (or office) and period, and their
    // correlations.
    for (by, by_arg) in [("", ""), ("_by_office", ", byOffice: true")] {
        for period in PERIODS.iter().map(|&(a, b)| Some((a, b))) {
            let (p, _) = period.expect("a period");
            let row = "service_id: service office_id: office period periodStart periodEnd";
            let per = if by.is_empty() { "service" } else { "service, office" };
            let lists: [(&str, String, &'static [&'static str], &str); 2] = [
                ("indicators", "indicators { metric mean count }".to_string(), &["indicators_"], "Service-level indicators"),
                ("scores", format!("scores {{ measure score {{ {SCORE} }} }}"), &["scores_score_", "scores_"], "Scores beside the service levels"),
            ];
            for (list, selection, strip, about) in lists {
                out.push(Draft::fixed(
                    format!("service_level_{list}{by}_{p}"),
                    format!("{about} per {per} and {} (GraphQL serviceLevels rows' {list})", p.replace('_', " ")),
                    vec![Part {
                        document: format!("{{ serviceLevels({}{by_arg}) {{ rows {{ {row} {selection} }} }} }}", period_arg(period).trim_start_matches(", ")),
                        constants: Vec::new(),
                    }],
                    strip,
                ));
            }
            if by.is_empty() {
                out.push(Draft::fixed(
                    format!("service_level_correlations_{p}"),
                    format!(
                        "Correlations of service-level indicators with scores across services and {}s (GraphQL serviceLevels correlations)",
                        p.replace('_', " ")
                    ),
                    vec![Part {
                        document: format!(
                            "{{ serviceLevels({}, correlate: true) {{ correlations {{ metric measure n r low high pValue }} }} }}",
                            period_arg(period).trim_start_matches(", ")
                        ),
                        constants: Vec::new(),
                    }],
                    &[],
                ));
            }
        }
    }
    // The HISP report of every fiscal quarter with answers.
    out.push(Draft {
        name: "hisp_report".into(),
        description: "The quarterly HISP report (A-11 280.14-16) of every fiscal quarter with answers: one row per service, channel and question \
                      (GraphQL hispReport; counts of answers 1..5, or thumbs down/up, joined with '; ')"
            .into(),
        parts: Parts::HispQuarters,
        template: hisp_document(2000, 1),
        constants: hisp_constants(2000, 1),
        strip: &["questions_"],
        exact_only: false,
    });
    out
}

fn hisp_document(year: i32, quarter: u32) -> String {
    format!(
        "{{ hispReport(fiscalYear: {year}, quarter: {quarter}) {{ rows {{ departmentName departmentAbbreviation serviceProviderName serviceProviderId serviceName \
         serviceId channel pointScale volumeOfCustomers volumeOfCustomersProvidedSurveyOpportunity volumeOfRespondents summary \
         questions {{ question: number question_text: text counts n suppressed }} }} }} }}"
    )
}

fn hisp_constants(year: i32, quarter: u32) -> Vec<Constant> {
    vec![Constant::Int("fiscal_year", year.into()), Constant::Int("fiscal_quarter", quarter.into())]
}

impl ResultCatalog {
    /// Plans every result table over `schema` (its output types read by introspection).
    pub async fn new(schema: CxSchema) -> Result<ResultCatalog, String> {
        let types = OutputTypes::of(&schema).await?;
        let mut specs = Vec::new();
        for d in drafts() {
            let doc = async_graphql::parser::parse_query(&d.template).map_err(|e| format!("table {}: {e}", d.name))?;
            let plan = types.plan(&doc, None).map_err(|e| format!("table {}: {e}", d.name))?;
            let empty = frame(&d.constants, &plan, d.strip, &[]).map_err(|e| format!("table {}: {e}", d.name))?;
            let table = Arc::new(ResultTable { name: d.name, description: d.description, schema: empty.schema().as_ref().clone(), refused: None });
            specs.push(Spec { table, parts: d.parts, plan, constants: d.constants, strip: d.strip, exact_only: d.exact_only });
        }
        let quarters = types.plan(&async_graphql::parser::parse_query(QUARTERS).map_err(|e| e.to_string())?, None)?;
        let exact = specs.iter().map(|s| s.table.clone()).collect();
        let perturbed = specs
            .iter()
            .map(|s| match s.exact_only {
                true => Arc::new(ResultTable {
                    name: s.table.name.clone(),
                    description: s.table.description.clone(),
                    schema: s.table.schema.clone(),
                    refused: Some("not offered to the public role (GraphQL refuses it too)".into()),
                }),
                false => s.table.clone(),
            })
            .collect();
        Ok(ResultCatalog { schema, specs, exact, perturbed, quarters })
    }

    /// The tables of `principal`.
    pub fn for_principal(self: &Arc<Self>, principal: Principal) -> Arc<dyn cx_sql::ResultTables> {
        let tables = if principal.role.exact_counts() { self.exact.clone() } else { self.perturbed.clone() };
        Arc::new(Results { catalog: self.clone(), principal, tables })
    }

    /// Runs one GraphQL document for `principal` and returns its table.
    async fn run(&self, table: &str, principal: &Principal, document: String, plan: &TablePlan) -> Result<RecordBatch, SqlError> {
        let mut request = async_graphql::Request::new(document).data(principal.clone()).data(cx_analytics::rollups::ServedLog::default());
        super::prepare(&mut request).map_err(|e| SqlError::Query { sqlstate: "54000", message: e.message })?;
        let response = self.schema.execute(request).await;
        if let Some(e) = response.errors.first() {
            let code = e.extensions.as_ref().and_then(|x| x.get("code")).and_then(|v| match v {
                async_graphql::Value::String(s) => Some(s.clone()),
                async_graphql::Value::Enum(s) => Some(s.to_string()),
                _ => None,
            });
            return Err(match code.as_deref() {
                Some("FORBIDDEN") => SqlError::Forbidden { table: table.into(), reason: e.message.clone() },
                Some("BUSY") => SqlError::Query { sqlstate: "53300", message: e.message.clone() },
                Some("TOO_MANY_GROUPS") => SqlError::Query { sqlstate: "54000", message: e.message.clone() },
                Some("CANCELLED") => SqlError::Analytics(cx_analytics::AnalyticsError::Cancelled),
                _ => SqlError::Query { sqlstate: "XX000", message: format!("table {table}: {}", e.message) },
            });
        }
        super::download::table(&response.data, plan).map_err(|e| SqlError::Query { sqlstate: "XX000", message: format!("table {table}: {e}") })
    }
}

/// The result tables of one principal.
struct Results {
    catalog: Arc<ResultCatalog>,
    principal: Principal,
    tables: Vec<Arc<ResultTable>>,
}

impl cx_sql::ResultTables for Results {
    fn tables(&self) -> Vec<Arc<ResultTable>> {
        self.tables.clone()
    }

    fn frame<'a>(&'a self, table: &'a ResultTable) -> Pin<Box<dyn Future<Output = Result<DataFrame, SqlError>> + Send + 'a>> {
        Box::pin(async move {
            let spec = self
                .catalog
                .specs
                .iter()
                .find(|s| s.table.name == table.name)
                .ok_or_else(|| SqlError::UnknownTable { name: table.name.clone(), hint: String::new() })?;
            let parts = match &spec.parts {
                Parts::Fixed(parts) => parts.clone(),
                Parts::HispQuarters => self.hisp_parts().await?,
            };
            // One query after another: a table of many queries takes one admission slot at a
            // time, as one GraphQL client would, instead of filling the queue.
            let mut out = frame(&spec.constants, &spec.plan, spec.strip, &[])?;
            for part in &parts {
                let batch = self.catalog.run(&table.name, &self.principal, part.document.clone(), &spec.plan).await?;
                out.vstack_mut(&frame(&part.constants, &spec.plan, spec.strip, std::slice::from_ref(&batch))?)?;
            }
            Ok(out)
        })
    }
}

impl Results {
    /// One HISP report per fiscal quarter with answers (the quarters `scores` finds).
    async fn hisp_parts(&self) -> Result<Vec<Part>, SqlError> {
        let batch = self.catalog.run("hisp_report", &self.principal, QUARTERS.into(), &self.catalog.quarters).await?;
        let labels = batch.column(0).as_string::<i32>();
        let mut quarters: Vec<(i32, u32)> = (0..labels.len())
            .filter(|&i| labels.is_valid(i))
            .filter_map(|i| {
                let (y, q) = labels.value(i).strip_prefix("FY")?.split_once('Q')?;
                Some((y.parse().ok()?, q.parse().ok()?))
            })
            .collect();
        quarters.sort_unstable();
        quarters.dedup();
        Ok(quarters.into_iter().map(|(y, q)| Part { document: hisp_document(y, q), constants: hisp_constants(y, q) }).collect())
    }
}

/// The polars frame of one part's rows: its constants, then the plan's columns (typed by the
/// plan, dates as dates), names in snake case with the unnested list's prefix dropped.
fn frame(constants: &[Constant], plan: &TablePlan, strip: &[&str], batches: &[RecordBatch]) -> Result<DataFrame, SqlError> {
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let mut columns: Vec<Column> = constants
        .iter()
        .map(|c| match c {
            Constant::Text(n, v) => Column::new((*n).into(), vec![v.as_str(); rows]),
            Constant::Int(n, v) => Column::new((*n).into(), vec![*v; rows]),
        })
        .collect();
    for (i, c) in plan.columns.iter().enumerate() {
        let bare = strip.iter().find_map(|p| c.name.strip_prefix(p)).unwrap_or(&c.name);
        let name: PlSmallStr = snake(bare).into();
        let arrays = batches.iter().map(|b| b.column(i));
        let bad = |e: String| SqlError::Query { sqlstate: "XX000", message: format!("column {name}: {e}") };
        let column = match (&c.data_type, c.scalar.as_str()) {
            (ArrowType::Boolean, _) => Column::new(name, arrays.flat_map(|a| a.as_boolean().iter().collect::<Vec<_>>()).collect::<Vec<Option<bool>>>()),
            (ArrowType::Int64, _) => {
                Column::new(name, arrays.flat_map(|a| a.as_primitive::<Int64Type>().iter().collect::<Vec<_>>()).collect::<Vec<Option<i64>>>())
            }
            (ArrowType::Float64, _) => {
                Column::new(name, arrays.flat_map(|a| a.as_primitive::<Float64Type>().iter().collect::<Vec<_>>()).collect::<Vec<Option<f64>>>())
            }
            (_, "Date") => {
                let days = arrays
                    .flat_map(|a| a.as_string::<i32>().iter().collect::<Vec<_>>())
                    .map(|v| {
                        v.map(|s| {
                            chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").map(cx_sql::catalog::days).map_err(|e| bad(format!("'{s}' is not a date: {e}")))
                        })
                        .transpose()
                    })
                    .collect::<Result<Vec<Option<i32>>, _>>()?;
                cx_sql::catalog::date_column(&name, days)
            }
            (_, scalar) => {
                let enumerated = !matches!(scalar, "String" | "ID" | "DateTime" | "NaiveDate");
                let text = |v: &str| if enumerated { v.to_ascii_lowercase() } else { v.to_string() };
                Column::new(name, arrays.flat_map(|a| a.as_string::<i32>().iter().map(|v| v.map(text)).collect::<Vec<_>>()).collect::<Vec<Option<String>>>())
            }
        };
        columns.push(column);
    }
    DataFrame::new_infer_height(columns).map_err(SqlError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_snake_case() {
        assert_eq!(snake("meanChangeLow"), "mean_change_low");
        assert_eq!(snake("adjR2"), "adj_r2");
        assert_eq!(snake("service_id"), "service_id");
        assert_eq!(camel("service_type"), "serviceType");
    }

    /// Every result table plans over the real schema: unique names, unique columns, each
    /// beginning with its grouping's column, none with a camelCase name.
    #[tokio::test]
    async fn every_result_table_plans() {
        let schema = crate::builder().finish();
        let catalog = ResultCatalog::new(schema).await.expect("every document plans");
        let mut names: Vec<&str> = catalog.specs.iter().map(|s| s.table.name.as_str()).collect();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "duplicate table names");
        for s in &catalog.specs {
            let columns: Vec<&str> = s.table.schema.iter_names().map(|n| n.as_str()).collect();
            assert!(columns.iter().all(|c| !c.chars().any(|ch| ch.is_ascii_uppercase())), "{}: {columns:?}", s.table.name);
            // A table `…_by_<dimension>[_<period>]` holds the dimension's column (and a period's).
            if let Some(by) = s.table.name.split("_by_").nth(1) {
                let period = PERIODS.iter().find(|(p, _)| by.ends_with(p)).map(|(p, _)| *p);
                let dim = period.map_or(by, |p| by.trim_end_matches(p).trim_end_matches('_'));
                assert!(dim.is_empty() || columns.contains(&dim) || columns.contains(&format!("{dim}_id").as_str()), "{}: {columns:?}", s.table.name);
                assert!(period.is_none() || columns.contains(&"period"), "{}: {columns:?}", s.table.name);
            }
        }
        let bench = catalog.specs.iter().find(|s| s.table.name == "benchmark_by_service_fiscal_quarter").expect("a benchmark table");
        let columns: Vec<&str> = bench.table.schema.iter_names().map(|n| n.as_str()).collect();
        assert_eq!(columns[..6], ["peers", "measure", "service_id", "period", "period_start", "period_end"]);
        assert_eq!(bench.table.schema.get("period_start"), Some(&DataType::Date));
        assert_eq!(bench.table.schema.get("peer_n"), Some(&DataType::Int64));
        let drivers = catalog.specs.iter().find(|s| s.table.name == "driver_importance_by_service_type").expect("a driver table");
        assert!(drivers.table.schema.get("shapley_share").is_some() && drivers.table.schema.get("drivers_beta").is_none());
    }
}
