//! Answering queries from rollups (`cx_lake::rollup`) where they cover them: the bins of a
//! scores query here; driver importance (`drivers.rs`) and tapped importance (`tapped.rs`)
//! from the same pieces and inputs, over the rollups of their own content (`route_among`).
//!
//! The planner (`route`) takes the smallest rollup whose dimensions hold every dimension the
//! query filters or groups on and whose grain holds its period and date range: a monthly rollup
//! for month, quarter, year, fiscal quarter and fiscal year periods over whole months; the daily
//! one for day and week periods. A date range that cuts a month is split: its whole months from
//! the monthly rollup, the days at either edge from the daily one (or from raw rows where no
//! daily rollup covers the dimensions). A query no rollup covers reads raw rows, as does the
//! public role's (its counts are perturbed by record keys, which only rows have).
//!
//! Each piece reads, for every live data file of the responses the query's partitions hold, the
//! file's rollup when its rollup table holds one and the file's rows otherwise; the partial
//! bins of the pieces are added up per group. Bins are sums, so the answer is the raw scan's,
//! to rounding of the weight sums (counts are exact).

use super::grouping::{key_exprs, key_names};
use super::scores::{plan_with, ScoresQuery};
use super::{gated, Analytics, AnalyticsError, Filter};
use chrono::{Datelike, NaiveDate};
use cx_domain::{Dimension, PeriodUnit};
use cx_lake::rollup::{bin_column, bin_values, Grain, Part, Rollup, RollupFiles, Sum, FILE_INDEX};
use cx_lake::DataFile;
use polars::prelude::*;
use std::collections::{BTreeSet, HashMap};

/// One part of a query's date range and where it is read from (`None`: raw rows).
#[derive(Debug, Clone, PartialEq)]
pub struct Piece {
    pub rollup: Option<Rollup>,
    pub filter: Filter,
}

/// What served a query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Served {
    /// The rollups read (in the order of the pieces).
    pub rollups: Vec<Rollup>,
    /// Rollup files and their group rows read.
    pub rollup_files: usize,
    pub rollup_rows: u64,
    /// Data files whose raw rows were scanned.
    pub raw_files: usize,
}

impl Served {
    /// `rollup` (rollups only), `raw` (rows only), `mixed`, or `none` (nothing to read).
    pub fn path(&self) -> &'static str {
        match (self.rollup_files > 0, self.raw_files > 0) {
            (true, false) => "rollup",
            (false, true) => "raw",
            (true, true) => "mixed",
            (false, false) => "none",
        }
    }
}

impl Served {
    /// What served several computations together.
    pub fn combined<'a>(all: impl IntoIterator<Item = &'a Served>) -> Served {
        let mut out = Served::default();
        for s in all {
            for r in &s.rollups {
                if !out.rollups.contains(r) {
                    out.rollups.push(*r);
                }
            }
            out.rollup_files += s.rollup_files;
            out.rollup_rows += s.rollup_rows;
            out.raw_files += s.raw_files;
        }
        out
    }
}

/// What served each score computation of one request (a GraphQL request passes one to every
/// resolver's analytics; its handler reports them in headers and `/metrics`).
#[derive(Debug, Clone, Default)]
pub struct ServedLog(std::sync::Arc<std::sync::Mutex<Vec<Served>>>);

impl ServedLog {
    fn push(&self, served: Served) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(served);
    }

    /// The computations recorded so far.
    pub fn entries(&self) -> Vec<Served> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The first day of `d`'s month.
fn month_start(d: NaiveDate) -> NaiveDate {
    d.with_day(1).expect("day 1 exists")
}

/// The last day of `d`'s month (`None` past the calendar's end).
fn month_end(d: NaiveDate) -> Option<NaiveDate> {
    let next = if d.month() == 12 { NaiveDate::from_ymd_opt(d.year() + 1, 1, 1) } else { NaiveDate::from_ymd_opt(d.year(), d.month() + 1, 1) };
    next?.pred_opt()
}

/// The pieces a scores query is answered from, or `None` when no rollup covers it (raw rows).
pub fn route(filter: &Filter, group_by: &[Dimension], period: Option<PeriodUnit>) -> Option<Vec<Piece>> {
    route_among(&Rollup::BINS, filter, group_by, period)
}

/// The pieces a query is answered from by `rollups` (smallest first), or `None` when none of
/// them covers it (raw rows).
pub fn route_among(rollups: &[Rollup], filter: &Filter, group_by: &[Dimension], period: Option<PeriodUnit>) -> Option<Vec<Piece>> {
    let dims: BTreeSet<Dimension> = filter.values.keys().copied().chain(group_by.iter().copied()).collect();
    let pick = |grain: Grain| rollups.iter().copied().find(|r| r.grain() == grain && r.covers(dims.iter().copied()));
    let (monthly, daily) = (pick(Grain::Month), pick(Grain::Day));
    let piece = |rollup: Option<Rollup>, from: Option<NaiveDate>, to: Option<NaiveDate>| Piece { rollup, filter: Filter { from, to, ..filter.clone() } };
    if matches!(period, Some(PeriodUnit::Day | PeriodUnit::Week)) || monthly.is_none() {
        return daily.map(|d| vec![piece(Some(d), filter.from, filter.to)]);
    }
    // Whole months from the monthly rollup, the days around them from the daily one.
    let (from, to) = (filter.from, filter.to);
    // A date at the calendar's ends (no next or previous month) is left to raw rows.
    let inner_from = match from {
        Some(f) if f == month_start(f) => Some(f),
        Some(f) => Some(month_end(f)?.succ_opt()?),
        None => None,
    };
    let inner_to = match to {
        Some(t) if Some(t) == month_end(t) => Some(t),
        Some(t) => Some(month_start(t).pred_opt()?),
        None => None,
    };
    if let (Some(a), Some(b)) = (inner_from, inner_to) {
        if a > b {
            // Within one month, or across a month boundary without a whole month.
            return daily.map(|d| vec![piece(Some(d), from, to)]);
        }
    }
    let mut pieces = vec![piece(monthly, inner_from, inner_to)];
    if let (Some(f), Some(a)) = (from, inner_from) {
        if f < a {
            pieces.push(piece(daily, Some(f), Some(a.pred_opt()?)));
        }
    }
    if let (Some(t), Some(b)) = (to, inner_to) {
        if t > b {
            pieces.push(piece(daily, Some(b.succ_opt()?), Some(t)));
        }
    }
    Some(pieces)
}

/// The sum columns a scores query reads.
fn sum_names(q: &ScoresQuery) -> Vec<(String, Sum)> {
    let mut out = Vec::new();
    for &m in &q.measures {
        for v in bin_values(m) {
            out.push((bin_column(m, v, Sum::N), Sum::N));
            if q.weighted {
                out.push((bin_column(m, v, Sum::W), Sum::W));
                out.push((bin_column(m, v, Sum::W2), Sum::W2));
            }
        }
    }
    out
}

/// The sums of `sums` per group of `keys` over `lf`, counts as unsigned integers (as the raw
/// plan returns them).
fn summed(lf: LazyFrame, keys: Vec<Expr>, sums: &[(String, Sum)]) -> LazyFrame {
    let aggs: Vec<Expr> = sums
        .iter()
        .map(|(c, s)| {
            let e = col(c.as_str()).sum();
            if *s == Sum::N {
                e.cast(DataType::UInt64)
            } else {
                e
            }
        })
        .collect();
    lf.group_by(keys).agg(aggs)
}

/// What one piece reads: rollup files and raw data files, and the filter of its range.
pub(crate) struct Input {
    pub filter: Filter,
    /// The rollup read and its files, and which of them (indices).
    pub rollup: Option<(Rollup, RollupFiles)>,
    pub wanted: Vec<u32>,
    pub raw: Vec<DataFile>,
}

impl Analytics {
    /// The inputs of `pieces`: per piece, every live data file of its partitions, read from
    /// the piece's rollup where its table holds the file's rollup and from raw rows otherwise;
    /// and what that reads. An error says whether a rollup table was being read.
    pub(crate) async fn inputs(&self, pieces: Vec<Piece>) -> Result<(Vec<Input>, Served), (AnalyticsError, bool)> {
        let mut maps: HashMap<Rollup, RollupFiles> = HashMap::new();
        let mut inputs = Vec::new();
        let mut served = Served::default();
        for piece in pieces {
            let files = self.lake.response_files(&piece.filter.partitions()).await.map_err(|e| (e.into(), false))?;
            let mut input = Input { filter: piece.filter, rollup: None, wanted: Vec::new(), raw: Vec::new() };
            match piece.rollup {
                Some(kind) => {
                    let rollup = match maps.entry(kind) {
                        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                        std::collections::hash_map::Entry::Vacant(e) => e.insert(self.lake.rollup_files(kind).await.map_err(|e| (e.into(), true))?),
                    };
                    for f in files {
                        match rollup.by_data.get(&f.path) {
                            Some(&i) => {
                                input.wanted.push(i as u32);
                                served.rollup_rows += rollup.files[i].rows;
                            }
                            None => input.raw.push(f),
                        }
                    }
                    if !input.wanted.is_empty() {
                        served.rollups.push(kind);
                        input.rollup = Some((kind, rollup.clone()));
                    }
                }
                None => input.raw = files,
            }
            served.rollup_files += input.wanted.len();
            served.raw_files += input.raw.len();
            inputs.push(input);
        }
        Ok((inputs, served))
    }

    /// Records what served a computation in the view's log.
    pub(crate) fn log_served(&self, served: &Served) {
        if let Some(log) = &self.served_log {
            log.push(served.clone());
        }
    }
}

/// The rows of rollup `kind`'s files `wanted` (indices in `files`) with `parts`, within
/// `filter`'s dimensions and dates, from the rollup's merged frame (`Lake::rollup_frame`).
pub(crate) fn rollup_rows(
    lake: &cx_lake::Lake,
    kind: Rollup,
    files: &RollupFiles,
    wanted: &[u32],
    filter: &Filter,
    parts: &[Part],
) -> Result<LazyFrame, AnalyticsError> {
    let df = lake.rollup_frame(kind, files, parts)?;
    let mut lf = df.lazy();
    if wanted.len() < files.files.len() {
        let wanted = Series::new("wanted".into(), wanted.to_vec());
        lf = lf.filter(col(FILE_INDEX).is_in(lit(wanted).implode(false), false));
    }
    if let Some(p) = filter.predicate() {
        lf = lf.filter(p);
    }
    Ok(lf)
}

impl Analytics {
    /// The bins of a scores query per (group, period, scale), as the raw plan (`plan_with`)
    /// returns them, from rollups where they cover it; `None` when the lake holds no file the
    /// query could read.
    /// A rollup that cannot be read (a file damaged or deleted behind the log's back) does not
    /// fail the query: it is answered again from raw rows, with a warning.
    pub(crate) async fn score_bins(&self, q: &ScoresQuery, weight: super::Weight) -> Result<(Option<DataFrame>, Served), AnalyticsError> {
        self.rollups_or_raw(|use_rollups| self.bins_via(q, weight, use_rollups)).await
    }

    /// `via(true)` (rollups where they cover the query); when that fails while reading
    /// rollups (its error says so), `via(false)` (raw rows only), with a warning. Cancellation,
    /// a busy server and too many groups are answers, not rollup failures.
    pub(crate) async fn rollups_or_raw<T, F, Fut>(&self, via: F) -> Result<T, AnalyticsError>
    where
        F: Fn(bool) -> Fut,
        Fut: std::future::Future<Output = Result<T, (AnalyticsError, bool)>>,
    {
        match via(true).await {
            Err((e, true)) if !matches!(e, AnalyticsError::Cancelled | AnalyticsError::Busy { .. } | AnalyticsError::TooManyGroups { .. }) => {
                tracing::warn!(error = %e, "reading rollups failed; answering from raw rows (`cxlake rollup build` rebuilds rollup files that are missing or of the wrong size)");
                via(false).await.map_err(|(e, _)| e)
            }
            r => r.map_err(|(e, _)| e),
        }
    }

    /// The pieces a query is read from: those of `rollups` (`route_among`) when `allowed` and
    /// the view's counts are exact (a perturbed view needs record keys, which only rows have),
    /// else its raw rows as one piece.
    pub(crate) fn pieces(&self, allowed: bool, rollups: &[Rollup], filter: &Filter, group_by: &[Dimension], period: Option<PeriodUnit>) -> Vec<Piece> {
        (allowed && self.rollups && self.perturb.is_none())
            .then(|| route_among(rollups, filter, group_by, period))
            .flatten()
            .unwrap_or_else(|| vec![Piece { rollup: None, filter: filter.clone() }])
    }

    /// `score_bins`, with rollups where `use_rollups` (and the view allows them); an error says
    /// whether rollups were read.
    async fn bins_via(&self, q: &ScoresQuery, weight: super::Weight, use_rollups: bool) -> Result<(Option<DataFrame>, Served), (AnalyticsError, bool)> {
        let started = std::time::Instant::now();
        let pieces = self.pieces(use_rollups, &Rollup::BINS, &q.filter, &q.group_by, q.period);
        let (inputs, served) = self.inputs(pieces).await?;
        let raw: Vec<DataFile> = inputs.iter().flat_map(|i| i.raw.iter().cloned()).collect();
        let planned = started.elapsed();
        if served.rollup_files == 0 && served.raw_files == 0 {
            self.log_served(&served);
            return Ok((None, served));
        }
        let (lake, q2, keys) = (self.lake.clone(), q.clone(), self.perturb.clone());
        let df = self
            .blocking(weight, move |cancel| {
                let sums = sum_names(&q2);
                let mut partials = Vec::new();
                for input in inputs {
                    let pq = ScoresQuery { filter: input.filter, ..q2.clone() };
                    if !input.raw.is_empty() {
                        partials.push(plan_with(gated(lake.scan_responses(&input.raw)?, cancel), &pq, Vec::new(), keys.as_ref()));
                    }
                    if let Some((kind, files)) = &input.rollup {
                        partials.push(rollup_plan(&lake, *kind, files, &input.wanted, &pq, &sums)?);
                        cancel.check()?;
                    }
                }
                let lf = match partials.len() {
                    1 => partials.pop().expect("one partial"),
                    _ => {
                        let mut keys: Vec<Expr> = key_names(&q2.group_by, q2.period).iter().map(|c| col(c.as_str())).collect();
                        keys.push(col("scale"));
                        summed(concat(partials, UnionArgs { rechunk: false, ..Default::default() })?, keys, &sums)
                    }
                };
                Ok(lf.collect_with_engine(Engine::Streaming)?.unwrap_single())
            })
            .await
            .map_err(|e| (self.explain_failure(&raw, e), served.rollup_files > 0))?;
        self.log_served(&served);
        tracing::debug!(
            path = served.path(),
            rollups = ?served.rollups.iter().map(|r| r.name()).collect::<Vec<_>>(),
            rollup_files = served.rollup_files,
            rollup_rows = served.rollup_rows,
            raw_files = served.raw_files,
            ?planned,
            elapsed = ?started.elapsed(),
            "scores served"
        );
        Ok((Some(df), served))
    }
}

/// The plan summing the rows of rollup `kind`'s files `wanted` (indices in `files`: one row
/// per group and scale, one column per sum of a bin) per group of the query, the bins' columns
/// named as the raw plan names them, over the rollup's merged frame (`Lake::rollup_frame`).
fn rollup_plan(
    lake: &cx_lake::Lake,
    kind: Rollup,
    files: &RollupFiles,
    wanted: &[u32],
    q: &ScoresQuery,
    sums: &[(String, Sum)],
) -> Result<LazyFrame, AnalyticsError> {
    let parts: Vec<Part> = q.measures.iter().map(|&m| Part::Bins(m)).collect();
    let lf = rollup_rows(lake, kind, files, wanted, &q.filter, &parts)?;
    let mut keys = key_exprs(&q.group_by, q.period);
    keys.push(col("scale"));
    Ok(summed(lf, keys, sums))
}
