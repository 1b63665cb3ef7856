//! Rollups: the sufficient statistics of the responses, summed per group and kept as Delta
//! tables of their own, so most score queries read kilobytes instead of the lake.
//!
//! Every statistic of scores, benchmarks, trends and alerts is a function of additive sums per
//! group: per measure, scale and answer value, the count of answers, the sum of their weights
//! and of their squared weights (`bin_aggregates`). A rollup holds those sums per group of a
//! fixed set of dimensions and per day or calendar month (`Rollup`): one row per group and
//! scale, with the number of its responses (`rows`) and one column per sum of each bin
//! (`trust__5__n`, `trust__5__w`, `trust__5__w2`, …), so a query reads only the columns of its
//! measures (Parquet projection), and keeps them in memory per file and measure. Driver
//! importance reads moments rollups (`Content::Moments`: per answer pattern of the eight Likert
//! questions, the counts, weight sums and cross-products of the shifted answers) and
//! tapped-indicator importance taps rollups (`Content::Taps`: per trust and satisfaction answer
//! and tap pattern, the count and weight sums), per month. A rollup file's path:
//!
//! ```text
//! <lake>/rollups/service_month/agency=VA/fiscal_year=2025/fiscal_quarter=1/<data file name>
//! ```
//!
//! **One rollup file per data file.** The rollup of data file `responses/<p>/<f>` is
//! `rollups/<kind>/<p>/<f>`: it sums exactly that file's rows. Data files are immutable, so a
//! rollup file is right forever, and a reader at any version of the responses table answers
//! each of its live data files from that file's rollup when the rollup table holds it and from
//! the raw rows otherwise (`Lake::rollup_files`). Whatever the two tables' versions (their
//! commits are separate: the data first, then its rollups), no row is counted twice or missed:
//! a rollup lagging its data table only means more raw rows, one ahead of it (for a time-travel
//! read) covers files the reader ignores.
//!
//! Maintenance: every commit of the responses table (ingest, uploads, the submit flusher,
//! compaction, generate: `WriteLock::commit`) is followed, under the same lock, by one commit
//! per rollup table adding the rollups of the files it added and removing those of the files it
//! removed (`maintain`). A writer killed in between leaves files without rollups, which readers
//! answer from raw rows until `cxlake rollup build` (`build`, idempotent) or `vacuum` catches up.

use super::commit::WriteLock;
use super::delta::{Change, Stored, TableFile};
use super::error::StoreError;
use super::lake::{DataFile, Lake};
use super::layout::Table;
use arrow::datatypes::{DataType as ArrowType, Field, Schema as ArrowSchema, TimeUnit as ArrowUnit};
use cx_domain::{Dimension, Measure, TapIndicator};
use polars::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// A rollup: sums per group of its dimensions and per day or month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rollup {
    /// The service hierarchy (agency, bureau, service, service type, channel, stage) per month.
    ServiceMonth,
    /// Places (agency, office, region) with the service type and channel, per month.
    PlaceMonth,
    /// The service hierarchy per day: day and week periods, and the days at the edges of a
    /// range that cuts a month.
    ServiceDay,
    /// Driver-importance moments (`Content::Moments`) of the service hierarchy but the stage
    /// (agency, bureau, service, service type, channel) per month. No rollup of moments by
    /// place: answer patterns multiply groups, and offices by month are small enough groups
    /// that such a rollup measured 2.5 times the responses at 10M rows (benches/README.md).
    DriversServiceMonth,
    /// Tapped-indicator patterns (`Content::Taps`) of the service hierarchy per month.
    TapsServiceMonth,
    /// Tapped-indicator patterns of places per month.
    TapsPlaceMonth,
}

/// What a rollup's rows hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    /// Per group and scale, the bins of every measure (`bin_column`): scores and all built on
    /// them.
    Bins,
    /// Per group, scale and answer pattern (which of the eight Likert questions were
    /// answered: bit `i` for `Measure::all()[i]`), the moments driver importance needs
    /// (`moment_columns`).
    Moments,
    /// Per group, scale, trust and satisfaction answer (or none) and the tap lists' pattern
    /// (which of the fourteen indicators of `TapIndicator::all()` were shown, bit `j`, and which
    /// tapped), the rows' count, Σw and Σw²: the cells of the tapped-indicator models.
    Taps,
}

/// Which part of a rollup file is read (its columns, `Lake::read_rollup`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Part {
    /// The group keys and `rows`.
    Keys,
    /// One measure's bins (`Content::Bins`).
    Bins(Measure),
    /// Every sum column of a moments or taps rollup.
    Sums,
}

/// How finely a rollup keeps time: its rows' `submitted_at` is the first instant of the day or
/// of the calendar month (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grain {
    Day,
    Month,
}

const SERVICE: [Dimension; 6] = [Dimension::Agency, Dimension::Bureau, Dimension::Service, Dimension::ServiceType, Dimension::Channel, Dimension::Stage];
const SERVICE_BUT_STAGE: [Dimension; 5] = [Dimension::Agency, Dimension::Bureau, Dimension::Service, Dimension::ServiceType, Dimension::Channel];
const PLACE: [Dimension; 5] = [Dimension::Agency, Dimension::Office, Dimension::Region, Dimension::ServiceType, Dimension::Channel];

/// Which sum of a bin a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sum {
    /// Answers (a count).
    N,
    /// Their weights.
    W,
    /// Their squared weights.
    W2,
}

/// The column holding sum `s` of the answers `v` to measure `m` (`trust__5__n`, `…__w`,
/// `…__w2`): the same name in a rollup file and in a query's aggregate, so either can stand
/// for the other.
pub fn bin_column(m: Measure, v: i64, s: Sum) -> String {
    let suffix = match s {
        Sum::N => "n",
        Sum::W => "w",
        Sum::W2 => "w2",
    };
    format!("{}__{v}__{suffix}", m.column())
}

/// The answer values measure `m` has bins for: 1-5, and 0 (thumbs down) for the questions
/// asked on thumbs too (trust, satisfaction); thumbs up is 1, shared with the Likert 1.
pub fn bin_values(m: Measure) -> std::ops::RangeInclusive<i64> {
    if m.has_thumbs() {
        0..=5
    } else {
        1..=5
    }
}

/// The sums of every bin of `measures` over the rows of a group: counts as `count_type`, and
/// with `weighted` the sums of weights and squared weights. Rows are grouped by scale as well
/// by every user of these sums, so one set serves the Likert and the thumbs answers.
pub fn bin_aggregates(measures: &[Measure], weighted: bool, count_type: DataType) -> Vec<Expr> {
    let mut aggs = Vec::new();
    for &m in measures {
        for v in bin_values(m) {
            let hit = col(m.column()).eq(lit(v as i8));
            aggs.push(hit.clone().sum().cast(count_type.clone()).alias(bin_column(m, v, Sum::N)));
            if weighted {
                let w = when(hit).then(col("weight")).otherwise(lit(0.0));
                aggs.push(w.clone().sum().alias(bin_column(m, v, Sum::W)));
                aggs.push((w.clone() * w).sum().alias(bin_column(m, v, Sum::W2)));
            }
        }
    }
    aggs
}

/// The column of a rollup row holding the number of responses in its group, answered or not
/// (a group without answers to a measure is still a group of the answer).
pub const ROWS: &str = "rows";

/// Columns of the long intermediate form while rollups are built: one row per group, measure
/// and answer value (`ALL_ROWS` with value 0 for all the group's rows).
const MEASURE: &str = "measure";
const ALL_ROWS: &str = "*";
const VALUE: &str = "value";
const N: &str = "n";
const W: &str = "w";
const W2: &str = "w2";

/// Every sum column of a rollup, in file order, with its sum.
fn sum_columns() -> Vec<(String, Sum)> {
    let mut out = Vec::new();
    for m in Measure::all() {
        for v in bin_values(m) {
            for s in [Sum::N, Sum::W, Sum::W2] {
                out.push((bin_column(m, v, s), s));
            }
        }
    }
    out
}

/// The sum columns of measure `m`, in file order.
pub fn measure_columns(m: Measure) -> Vec<String> {
    bin_values(m).flat_map(|v| [Sum::N, Sum::W, Sum::W2].map(|s| bin_column(m, v, s))).collect()
}

impl Rollup {
    /// Every rollup; within a content, smallest first (the planner takes the first that
    /// covers a query).
    pub const ALL: [Rollup; 6] =
        [Rollup::ServiceMonth, Rollup::PlaceMonth, Rollup::ServiceDay, Rollup::DriversServiceMonth, Rollup::TapsServiceMonth, Rollup::TapsPlaceMonth];
    /// The rollups of bins (scores), smallest first.
    pub const BINS: [Rollup; 3] = [Rollup::ServiceMonth, Rollup::PlaceMonth, Rollup::ServiceDay];
    /// The rollups of moments (driver importance), smallest first.
    pub const MOMENTS: [Rollup; 1] = [Rollup::DriversServiceMonth];
    /// The rollups of tap patterns (tapped-indicator importance), smallest first.
    pub const TAPS: [Rollup; 2] = [Rollup::TapsServiceMonth, Rollup::TapsPlaceMonth];

    pub fn name(self) -> &'static str {
        match self {
            Rollup::ServiceMonth => "service_month",
            Rollup::PlaceMonth => "place_month",
            Rollup::ServiceDay => "service_day",
            Rollup::DriversServiceMonth => "drivers_service_month",
            Rollup::TapsServiceMonth => "taps_service_month",
            Rollup::TapsPlaceMonth => "taps_place_month",
        }
    }

    /// The table's directory under the lake root: `rollups/<name>`.
    pub fn dir(self) -> &'static str {
        match self {
            Rollup::ServiceMonth => "rollups/service_month",
            Rollup::PlaceMonth => "rollups/place_month",
            Rollup::ServiceDay => "rollups/service_day",
            Rollup::DriversServiceMonth => "rollups/drivers_service_month",
            Rollup::TapsServiceMonth => "rollups/taps_service_month",
            Rollup::TapsPlaceMonth => "rollups/taps_place_month",
        }
    }

    pub fn content(self) -> Content {
        match self {
            Rollup::ServiceMonth | Rollup::PlaceMonth | Rollup::ServiceDay => Content::Bins,
            Rollup::DriversServiceMonth => Content::Moments,
            Rollup::TapsServiceMonth | Rollup::TapsPlaceMonth => Content::Taps,
        }
    }

    /// The dimensions a row is a group of (with scale and the day or month).
    pub fn dimensions(self) -> &'static [Dimension] {
        match self {
            Rollup::ServiceMonth | Rollup::ServiceDay | Rollup::TapsServiceMonth => &SERVICE,
            Rollup::DriversServiceMonth => &SERVICE_BUT_STAGE,
            Rollup::PlaceMonth | Rollup::TapsPlaceMonth => &PLACE,
        }
    }

    pub fn grain(self) -> Grain {
        match self {
            Rollup::ServiceDay => Grain::Day,
            _ => Grain::Month,
        }
    }

    /// Whether a selection and grouping on `dims` can be answered from this rollup.
    pub fn covers(self, dims: impl IntoIterator<Item = Dimension>) -> bool {
        let mine = self.dimensions();
        dims.into_iter().all(|d| mine.contains(&d))
    }

    /// The rollup file of the responses data file `data_path` (both relative to the root).
    pub fn path_of(self, data_path: &str) -> Option<String> {
        let rest = data_path.strip_prefix(Table::Responses.root())?.strip_prefix('/')?;
        Some(format!("{}/{rest}", self.dir()))
    }

    /// The responses data file whose rollup is `rollup_path`.
    pub fn data_path_of(self, rollup_path: &str) -> Option<String> {
        let rest = rollup_path.strip_prefix(self.dir())?.strip_prefix('/')?;
        Some(format!("{}/{rest}", Table::Responses.root()))
    }

    /// The columns stored in a group's key (the partition columns, `agency` among them, are in
    /// the path).
    pub fn key_columns(self) -> Vec<&'static str> {
        let mut cols: Vec<&str> = self.dimensions().iter().filter(|d| **d != Dimension::Agency).map(|d| d.column()).collect();
        cols.push("submitted_at");
        cols.push("scale");
        match self.content() {
            Content::Bins => {}
            Content::Moments => cols.push(PATTERN),
            Content::Taps => cols.extend(["trust", "satisfaction", SHOWN, TAPPED]),
        }
        cols
    }

    /// The columns of its files (the Delta table adds the partition columns). Counts are
    /// 64-bit signed integers: Delta has no unsigned types.
    pub fn arrow_schema(self) -> Arc<ArrowSchema> {
        let mut fields: Vec<Field> = Vec::new();
        for c in self.key_columns() {
            let ty = match c {
                "submitted_at" => ArrowType::Timestamp(ArrowUnit::Microsecond, Some("UTC".into())),
                PATTERN | SHOWN | TAPPED => ArrowType::Int32,
                "trust" | "satisfaction" => ArrowType::Int8,
                _ => ArrowType::Utf8,
            };
            fields.push(Field::new(c, ty, !matches!(c, "submitted_at" | "scale" | PATTERN | SHOWN | TAPPED)));
        }
        fields.push(Field::new(ROWS, ArrowType::Int64, false));
        let sums: Vec<(String, bool)> = match self.content() {
            Content::Bins => sum_columns().into_iter().map(|(c, s)| (c, s == Sum::N)).collect(),
            Content::Moments => moment_columns(),
            Content::Taps => vec![(SUM_W.to_string(), false), (SUM_W2.to_string(), false)],
        };
        for (name, count) in sums {
            fields.push(Field::new(name, if count { ArrowType::Int64 } else { ArrowType::Float64 }, false));
        }
        Arc::new(ArrowSchema::new(fields))
    }

    /// The expression of a row's day or month, as the first instant of it (UTC).
    fn time_key(self) -> Expr {
        let day = col("submitted_at").cast(DataType::Date);
        let start = match self.grain() {
            Grain::Day => day,
            Grain::Month => day.dt().truncate(lit("1mo")),
        };
        start.cast(DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))).alias("submitted_at")
    }

    /// The plan summing the rows of `lf` (which has a `__file` column) per file, group,
    /// measure and answer value: count, Σw and Σw² (three plain sums, run by the in-memory
    /// engine, which adds each group's values in row order: the same bits every run), and a row
    /// per group of all its rows (measure `*`).
    fn long(self, lf: LazyFrame) -> LazyFrame {
        let keys = self.key_exprs();
        let sums = || [len().cast(DataType::Int64).alias(N), col("weight").sum().alias(W), (col("weight") * col("weight")).sum().alias(W2)];
        let mut all_rows = keys.clone();
        all_rows.push(lit(0i8).cast(DataType::Int8).alias(VALUE));
        let rows = lf.clone().group_by(all_rows).agg(sums()).with_column(lit(ALL_ROWS).alias(MEASURE));
        let per_measure = Measure::all().into_iter().map(|m| {
            let values = bin_values(m);
            let answered = col(m.column()).gt_eq(lit(*values.start() as i8)).and(col(m.column()).lt_eq(lit(*values.end() as i8)));
            let mut keys = keys.clone();
            keys.push(col(m.column()).alias(VALUE));
            lf.clone().filter(answered).group_by(keys).agg(sums()).with_column(lit(m.column()).alias(MEASURE))
        });
        concat(std::iter::once(rows).chain(per_measure).collect::<Vec<_>>(), UnionArgs::default()).expect("frames of one schema")
    }

    /// The plan spreading `long`'s rows into one row per group with a column per sum of a bin,
    /// sorted. Each bin of a group has one row in `long`, so every sum here adds one value to
    /// zeros: exact in any order (the streaming engine may run it).
    fn wide(self, long: LazyFrame) -> LazyFrame {
        let is = |m: &str, v: i64| col(MEASURE).eq(lit(m)).and(col(VALUE).eq(lit(v as i8)));
        let mut aggs = vec![when(is(ALL_ROWS, 0)).then(col(N)).otherwise(lit(0i64)).sum().alias(ROWS)];
        for m in Measure::all() {
            for v in bin_values(m) {
                aggs.push(when(is(m.column(), v)).then(col(N)).otherwise(lit(0i64)).sum().alias(bin_column(m, v, Sum::N)));
                aggs.push(when(is(m.column(), v)).then(col(W)).otherwise(lit(0.0)).sum().alias(bin_column(m, v, Sum::W)));
                aggs.push(when(is(m.column(), v)).then(col(W2)).otherwise(lit(0.0)).sum().alias(bin_column(m, v, Sum::W2)));
            }
        }
        let keys: Vec<Expr> = std::iter::once(FILE_COLUMN).chain(self.key_columns()).map(col).collect();
        self.sorted(long.group_by(keys).agg(aggs))
    }

    fn key_exprs(self) -> Vec<Expr> {
        let mut keys: Vec<Expr> = vec![col(FILE_COLUMN)];
        for c in self.key_columns() {
            keys.push(if c == "submitted_at" { self.time_key() } else { col(c) });
        }
        keys
    }

    fn sorted(self, lf: LazyFrame) -> LazyFrame {
        let order: Vec<PlSmallStr> = std::iter::once(FILE_COLUMN).chain(self.key_columns()).map(PlSmallStr::from).collect();
        lf.sort(order, SortMultipleOptions::default().with_nulls_last(true).with_maintain_order(true))
    }

    /// The plan summing a finer rollup's rows (`lf`, with a `__file` column: the same
    /// dimensions, days instead of months) into this one's, sorted: sums of sums (for the
    /// in-memory engine, which adds each group's values in row order).
    fn plan_from(self, lf: LazyFrame) -> LazyFrame {
        let mut aggs = vec![col(ROWS).sum()];
        aggs.extend(sum_columns().into_iter().map(|(c, _)| col(c.as_str()).sum()));
        self.sorted(lf.group_by(self.key_exprs()).agg(aggs))
    }
    /// The plan summing the rows of `lf` (with a `__file` column) per file, group, scale and
    /// answer pattern into `moment_columns`, sorted. Answers are shifted by `SHIFT`, a missing
    /// one counts as 0 (its pattern bit says it is missing). Two steps: the rows' count, Σw and
    /// Σw² per group and combination of the eight answers (three sums over the rows), sorted;
    /// then each moment as the sum over those cells of its product of answers times the cell's
    /// count or Σw (the answers are constant in a cell), a few hundred cells per group instead
    /// of every row. Unlike the other rollups' files these are not the same bytes every run: the
    /// second group-by does not add a group's cells in one fixed order (measured: sums differ
    /// in the last bit, 1e-16 relative, between runs; values are checked to 1e-12).
    fn moments(self, lf: LazyFrame) -> LazyFrame {
        let measures = Measure::all();
        let key_columns: Vec<&str> = self.key_columns().into_iter().filter(|c| *c != PATTERN).collect();
        let mut cell: Vec<Expr> = vec![col(FILE_COLUMN)];
        cell.extend(key_columns.iter().map(|c| if *c == "submitted_at" { self.time_key() } else { col(*c) }));
        cell.extend(measures.iter().map(|m| col(m.column())));
        let w = || col("weight");
        let cells = lf.group_by(cell).agg([len().cast(DataType::Int64).alias("__n"), w().sum().alias("__w"), (w() * w()).sum().alias("__w2")]);
        let order: Vec<PlSmallStr> =
            std::iter::once(FILE_COLUMN).chain(key_columns.iter().copied()).chain(measures.iter().map(|m| m.column())).map(PlSmallStr::from).collect();
        let cells = cells.sort(order, SortMultipleOptions::default().with_nulls_last(true).with_maintain_order(true));
        let x = |i: usize| col(format!("__x{i}"));
        let shifted: Vec<Expr> = measures
            .iter()
            .enumerate()
            .map(|(i, m)| (col(m.column()).cast(DataType::Float64) - lit(SHIFT)).fill_null(lit(0.0)).alias(format!("__x{i}")))
            .collect();
        let pattern = measures
            .iter()
            .enumerate()
            .map(|(i, m)| when(col(m.column()).is_not_null()).then(lit(1i32 << i)).otherwise(lit(0i32)))
            .reduce(|a, b| a + b)
            .expect("measures")
            .cast(DataType::Int32)
            .alias(PATTERN);
        let cells = cells.with_columns(shifted).with_column(pattern);
        let (n, wsum) = (|| col("__n"), || col("__w"));
        let count = || n().cast(DataType::Float64);
        let mut aggs = vec![n().sum().alias(ROWS), wsum().sum().alias(SUM_W), col("__w2").sum().alias(SUM_W2)];
        for i in 0..measures.len() {
            let agree = || x(i).gt_eq(lit(1.0));
            aggs.push((x(i) * count()).sum().alias(moment_x(i, false)));
            aggs.push((x(i) * wsum()).sum().alias(moment_x(i, true)));
            aggs.push(when(agree()).then(n()).otherwise(lit(0i64)).sum().alias(moment_agree(i, false)));
            aggs.push(when(agree()).then(wsum()).otherwise(lit(0.0)).sum().alias(moment_agree(i, true)));
        }
        for (i, j) in moment_pairs() {
            aggs.push((x(i) * x(j) * count()).sum().alias(moment_xx(i, j, false)));
            aggs.push((x(i) * x(j) * wsum()).sum().alias(moment_xx(i, j, true)));
        }
        let mut keys: Vec<Expr> = std::iter::once(FILE_COLUMN).chain(key_columns.iter().copied()).map(col).collect();
        keys.push(col(PATTERN));
        self.sorted(cells.group_by(keys).agg(aggs))
    }

    /// The plan summing the rows of `lf` (with a `__file` column) that answer trust or
    /// satisfaction or were shown a tap list per file, group, scale, trust and satisfaction
    /// answer and tap pattern: count, Σw, Σw² (in-memory engine, row order), sorted.
    fn taps(self, lf: LazyFrame) -> LazyFrame {
        let indicators = TapIndicator::all();
        let bits = |f: &dyn Fn(Expr) -> Expr| {
            indicators
                .iter()
                .enumerate()
                .map(|(j, ind)| f(col(ind.column().as_str())).cast(DataType::Int32) * lit(1i32 << j))
                .reduce(|a, b| a + b)
                .expect("indicators")
                .cast(DataType::Int32)
        };
        let shown_any = indicators.iter().map(|i| col(i.column().as_str()).is_not_null()).reduce(|a, b| a.or(b)).expect("indicators");
        let keep = col("trust").is_not_null().or(col("satisfaction").is_not_null()).or(shown_any);
        let lf = lf.filter(keep).with_columns([bits(&|c: Expr| c.is_not_null()).alias(SHOWN), bits(&|c: Expr| c.fill_null(lit(false))).alias(TAPPED)]);
        let w = || col("weight");
        self.sorted(lf.group_by(self.key_exprs()).agg([len().cast(DataType::Int64).alias(ROWS), w().sum().alias(SUM_W), (w() * w()).sum().alias(SUM_W2)]))
    }
}

/// The columns of a taps rollup holding which indicators were shown (bit `j` for
/// `TapIndicator::all()[j]`) and which tapped.
pub const SHOWN: &str = "shown";
pub const TAPPED: &str = "tapped";

/// The column of a moments rollup holding the answer pattern: bit `i` set when
/// `Measure::all()[i]` was answered.
pub const PATTERN: &str = "pattern";
/// Answers are shifted by this (the centre of the 1-5 scale) before moments are summed, so
/// products stay small.
pub const SHIFT: f64 = 3.0;
/// The columns of a moments rollup holding Σw and Σw² of a group's rows.
pub const SUM_W: &str = "sum_w";
pub const SUM_W2: &str = "sum_w2";

/// The index of measure `m` in a moments rollup (its pattern bit).
pub fn moment_index(m: Measure) -> usize {
    Measure::all().iter().position(|x| *x == m).expect("every measure is in all()")
}

/// Σx (or with `weighted` Σwx) of measure `i`'s shifted answers.
pub fn moment_x(i: usize, weighted: bool) -> String {
    format!("{}__{}", Measure::all()[i].column(), if weighted { "wx" } else { "x" })
}

/// The count (or with `weighted` Σw) of measure `i`'s agreeing answers (4-5).
pub fn moment_agree(i: usize, weighted: bool) -> String {
    format!("{}__{}", Measure::all()[i].column(), if weighted { "wagree" } else { "agree" })
}

/// Σxᵢxⱼ (or Σwxᵢxⱼ) of measures `i` and `j`, in either order.
pub fn moment_xx(i: usize, j: usize, weighted: bool) -> String {
    let (a, b) = (i.min(j), i.max(j));
    let all = Measure::all();
    format!("{}__{}__{}", all[a].column(), all[b].column(), if weighted { "wxx" } else { "xx" })
}

fn moment_pairs() -> Vec<(usize, usize)> {
    let n = Measure::all().len();
    (0..n).flat_map(|i| (i..n).map(move |j| (i, j))).collect()
}

/// Every moment column of a moments rollup, in file order, and whether it is a count.
pub fn moment_columns() -> Vec<(String, bool)> {
    let mut out = vec![(SUM_W.to_string(), false), (SUM_W2.to_string(), false)];
    for i in 0..Measure::all().len() {
        out.push((moment_x(i, false), false));
        out.push((moment_x(i, true), false));
        out.push((moment_agree(i, false), true));
        out.push((moment_agree(i, true), false));
    }
    for (i, j) in moment_pairs() {
        out.push((moment_xx(i, j, false), false));
        out.push((moment_xx(i, j, true), false));
    }
    out
}

impl From<Rollup> for Stored {
    fn from(r: Rollup) -> Stored {
        Stored::Rollup(r)
    }
}

/// The column naming each row's data file while rollups are built.
const FILE_COLUMN: &str = "__file";

/// The rollups of `files` (responses data files): per rollup, per file, the sums of its rows,
/// sorted by group. One scan of the files per rollup plan (the monthly service rollup sums the
/// daily one).
fn build_frames(lake: &Lake, files: &[DataFile]) -> Result<Vec<(Rollup, DataFile, DataFrame)>, StoreError> {
    let mut out = Vec::new();
    if files.is_empty() {
        return Ok(out);
    }
    let fail = |e: PolarsError| StoreError::Read { path: lake.locate(Table::Responses.root()), reason: format!("building rollups: {e}") };
    let lf = lake.scan_responses_with_paths(files, FILE_COLUMN).map_err(fail)?;
    let by_url: HashMap<String, &DataFile> = files.iter().map(|f| (lake.locate(&f.path), f)).collect();
    // The daily service rollup (the monthly one sums it) and places. Sums of several floats
    // run on the in-memory engine, in row order, so a rollup file is the same bytes every run
    // (generated lakes are reproducible); the spreading into one column per bin, 139
    // conditional sums that the in-memory engine would each evaluate as a whole column (a
    // 100M-row lake ran out of 24 GB), streams: it adds one value to zeros.
    let in_memory = |lf: LazyFrame| lf.collect().map_err(fail);
    let streamed = |lf: LazyFrame| lf.collect_with_engine(Engine::Streaming).map(|r| r.unwrap_single()).map_err(fail);
    let day = streamed(Rollup::ServiceDay.wide(in_memory(Rollup::ServiceDay.long(lf.clone()))?.lazy()))?;
    let month = in_memory(Rollup::ServiceMonth.plan_from(day.clone().lazy()))?;
    let place = streamed(Rollup::PlaceMonth.wide(in_memory(Rollup::PlaceMonth.long(lf.clone()))?.lazy()))?;
    let drivers_service = in_memory(Rollup::DriversServiceMonth.moments(lf.clone()))?;
    let taps_service = in_memory(Rollup::TapsServiceMonth.taps(lf.clone()))?;
    let taps_place = in_memory(Rollup::TapsPlaceMonth.taps(lf))?;
    let frames = [
        (Rollup::ServiceMonth, month),
        (Rollup::PlaceMonth, place),
        (Rollup::ServiceDay, day),
        (Rollup::DriversServiceMonth, drivers_service),
        (Rollup::TapsServiceMonth, taps_service),
        (Rollup::TapsPlaceMonth, taps_place),
    ];
    for (kind, df) in frames {
        let paths = df.column(FILE_COLUMN).and_then(|c| c.str().cloned()).map_err(fail)?;
        let body = df.drop(FILE_COLUMN).map_err(fail)?;
        // Rows are sorted by file: each file's rows are one run.
        let mut runs: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        for (i, p) in paths.iter().enumerate() {
            let p = p.unwrap_or_default();
            runs.entry(p).and_modify(|r| r.1 += 1).or_insert((i, 1));
        }
        for f in files {
            let frame = match runs.get(lake.locate(&f.path).as_str()) {
                Some(&(start, len)) => body.slice(start as i64, len),
                None => body.clear(),
            };
            out.push((kind, f.clone(), frame));
        }
        if let Some(unknown) = runs.keys().find(|u| !by_url.contains_key(**u)) {
            return Err(StoreError::Read { path: unknown.to_string(), reason: "a scan returned rows of a file it was not given".into() });
        }
    }
    Ok(out)
}

/// Writes one rollup file (whole-object, replacing a leftover of a killed writer).
fn write_frame(lake: &Lake, kind: Rollup, file: &DataFile, mut df: DataFrame) -> Result<TableFile, StoreError> {
    let path = kind.path_of(&file.path).ok_or_else(|| StoreError::Write { path: file.path.clone(), reason: "not a responses data file".into() })?;
    let fail = |e: PolarsError| StoreError::Write { path: lake.locate(&path), reason: e.to_string() };
    let mut bytes = Vec::new();
    // No column statistics: 139 columns of them would make the footer most of a small file,
    // and readers of a rollup read it whole.
    let none = StatisticsOptions { min_value: false, max_value: false, distinct_count: false, null_count: false, ..Default::default() };
    ParquetWriter::new(&mut bytes).with_compression(ParquetCompression::Zstd(None)).with_statistics(none).finish(&mut df).map_err(fail)?;
    let size = bytes.len() as u64;
    lake.objects().replace(&path, bytes)?;
    Ok(TableFile { path, partition: Some(file.partition.clone()), size, rows: df.height() as u64 })
}

/// What a rollup update did.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize)]
pub struct Maintained {
    /// Rollup files added and removed, over every rollup table.
    pub added: usize,
    pub removed: usize,
    /// Group rows in the files added.
    pub rows: u64,
}

/// Parquet bytes of data files whose rollups are built together (about 3M rows).
const CHUNK_BYTES: u64 = 64 << 20;

/// Brings every rollup table in line with the responses data files `added` and `removed`:
/// rollups of the added files that have none, and no rollups of the removed ones; one commit
/// per rollup table that changes.
fn update(lock: &WriteLock, added: &[DataFile], removed: &[String], operation: &str) -> Result<Maintained, StoreError> {
    let lake = lock.lake();
    let mut out = Maintained::default();
    let live: BTreeMap<Rollup, HashMap<String, TableFile>> = Rollup::ALL
        .iter()
        .map(|&k| Ok((k, super::delta::live_files(lake, k.into())?.into_iter().map(|f| (f.path.clone(), f)).collect())))
        .collect::<Result<_, StoreError>>()?;
    let missing: Vec<DataFile> =
        added.iter().filter(|f| Rollup::ALL.iter().any(|k| k.path_of(&f.path).is_some_and(|p| !live[k].contains_key(&p)))).cloned().collect();
    let mut changes: BTreeMap<Rollup, Change> =
        Rollup::ALL.iter().map(|&k| (k, Change { operation: format!("rollup: {operation}"), schema: Some(k.arrow_schema()), ..Default::default() })).collect();
    // Frames of a bounded amount of data at a time (a generated lake commits all its files at
    // once): files adding up to `CHUNK_BYTES` of Parquet, or one larger file.
    let mut chunks: Vec<&[DataFile]> = Vec::new();
    let (mut start, mut bytes) = (0, 0u64);
    for (i, f) in missing.iter().enumerate() {
        if i > start && bytes + f.size > CHUNK_BYTES {
            chunks.push(&missing[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += f.size;
    }
    if start < missing.len() {
        chunks.push(&missing[start..]);
    }
    for chunk in chunks {
        for (kind, file, df) in build_frames(lake, chunk)? {
            if kind.path_of(&file.path).is_some_and(|p| live[&kind].contains_key(&p)) {
                continue;
            }
            let written = write_frame(lake, kind, &file, df)?;
            out.rows += written.rows;
            changes.get_mut(&kind).expect("every rollup").added.push(written);
        }
    }
    for (kind, mut change) in changes {
        for path in removed {
            if let Some(f) = kind.path_of(path).and_then(|p| live[&kind].get(&p)) {
                change.removed.push(f.clone());
            }
        }
        if change.added.is_empty() && change.removed.is_empty() {
            continue;
        }
        out.added += change.added.len();
        out.removed += change.removed.len();
        lock.commit(kind, change)?;
    }
    Ok(out)
}

/// The rollup update that follows a commit of the responses table: rollups of the files it
/// added, none of those it removed.
pub fn maintain(lock: &WriteLock, change: &Change) -> Result<Maintained, StoreError> {
    let added: Vec<DataFile> = change.added.iter().filter_map(TableFile::data_file).collect();
    let removed: Vec<String> = change.removed.iter().map(|f| f.path.clone()).collect();
    update(lock, &added, &removed, &change.operation)
}

/// `cxlake rollup build`: rollups for every live data file that has none, and no rollups of
/// files no longer live (a lake that never had rollups, or a writer killed between its data
/// commit and its rollup commit). A rollup file the log holds but the store lacks, or holds at
/// another size than the log says (deleted or damaged behind the log's back), is first removed
/// from its table and then built again. Idempotent: a second run changes nothing.
pub fn build(lock: &WriteLock) -> Result<Maintained, StoreError> {
    let lake = lock.lake();
    let data: Vec<DataFile> = super::delta::live_files(lake, Stored::RESPONSES)?.iter().filter_map(TableFile::data_file).collect();
    let live_data: std::collections::HashSet<&str> = data.iter().map(|f| f.path.as_str()).collect();
    let mut stale: Vec<String> = Vec::new();
    let mut repaired = 0;
    for kind in Rollup::ALL {
        let live = super::delta::live_files(lake, kind.into())?;
        let stored: HashMap<String, u64> = lake.objects().list(&format!("{}/", kind.dir()))?.into_iter().collect();
        let damaged: Vec<TableFile> = live.iter().filter(|f| stored.get(&f.path) != Some(&f.size)).cloned().collect();
        if !damaged.is_empty() {
            tracing::warn!(rollup = kind.name(), files = damaged.len(), first = %damaged[0].path, "rollup files missing or of the wrong size: building them again");
            repaired += damaged.len();
            lock.commit(kind, Change { operation: "rollup: build (drop damaged)".into(), removed: damaged, ..Default::default() })?;
        }
        for f in live {
            if let Some(d) = kind.data_path_of(&f.path).filter(|d| !live_data.contains(d.as_str())) {
                stale.push(d);
            }
        }
    }
    stale.sort();
    stale.dedup();
    let mut out = update(lock, &data, &stale, "build")?;
    out.removed += repaired;
    Ok(out)
}

/// Rollup files read by queries, decoded, kept by path and columns (they never change) up to
/// a memory budget (256 MB), least recently used out first; and per rollup, the files of its
/// latest version read so far merged into one frame per set of columns (`Lake::rollup_frame`),
/// so a query filters and sums one frame instead of gathering hundreds (up to 1 GB over all
/// rollups, the least recently read dropped first). A commit of a rollup table makes the next
/// query merge again, from the files kept.
#[derive(Debug)]
pub struct RollupCache {
    inner: Mutex<CacheInner>,
    budget: usize,
    merged_budget: usize,
    merged: Mutex<HashMap<Rollup, Merged>>,
}

#[derive(Debug)]
struct CacheInner {
    frames: lru::LruCache<String, DataFrame>,
    bytes: usize,
}

/// One rollup table's files at one version, merged: the key columns (with `FILE_INDEX`) and
/// each part's sums read so far, each with when a query last read it.
#[derive(Debug)]
struct Merged {
    version: u64,
    parts: HashMap<Part, (DataFrame, std::time::Instant)>,
}

/// Bytes of merged frames kept over all rollups before the least recently read are dropped.
const MERGED_BUDGET: usize = 1 << 30;

/// The column of a merged rollup frame numbering each row's file (its index in
/// `RollupFiles::files`).
pub const FILE_INDEX: &str = "__file";

impl Default for RollupCache {
    fn default() -> Self {
        RollupCache::with_budget(256 << 20, MERGED_BUDGET)
    }
}

impl RollupCache {
    /// A cache keeping at most `budget` bytes of rollup files' frames and `merged_budget` bytes
    /// of merged frames (estimated sizes).
    pub fn with_budget(budget: usize, merged_budget: usize) -> RollupCache {
        RollupCache { inner: Mutex::new(CacheInner { frames: lru::LruCache::unbounded(), bytes: 0 }), budget, merged_budget, merged: Default::default() }
    }

    fn get(&self, path: &str) -> Option<DataFrame> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).frames.get(path).cloned()
    }

    fn put(&self, path: String, df: DataFrame) {
        let size = df.estimated_size();
        if size > self.budget {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = inner.frames.put(path, df) {
            inner.bytes -= old.estimated_size();
        }
        inner.bytes += size;
        while inner.bytes > self.budget {
            match inner.frames.pop_lru() {
                Some((_, old)) => inner.bytes -= old.estimated_size(),
                None => break,
            }
        }
    }

    /// The merged frame of `kind` at `version` for `part`, if built.
    fn merged(&self, kind: Rollup, version: u64, part: Part) -> Option<DataFrame> {
        let mut merged = self.merged.lock().unwrap_or_else(|e| e.into_inner());
        let m = merged.get_mut(&kind).filter(|m| m.version == version)?;
        let (df, used) = m.parts.get_mut(&part)?;
        *used = std::time::Instant::now();
        Some(df.clone())
    }

    /// Keeps `df`, the merged `part` of `kind` at `version`; then, while the merged frames
    /// are over the budget, drops the least recently read part of any rollup (a rollup's keys
    /// go with its last part), never the part just kept nor its keys.
    fn put_merged(&self, kind: Rollup, version: u64, part: Part, df: DataFrame) {
        let mut merged = self.merged.lock().unwrap_or_else(|e| e.into_inner());
        let entry = merged.entry(kind).or_insert_with(|| Merged { version, parts: HashMap::new() });
        if entry.version < version {
            *entry = Merged { version, parts: HashMap::new() };
        }
        if entry.version == version {
            entry.parts.insert(part, (df, std::time::Instant::now()));
        }
        let bytes = |merged: &HashMap<Rollup, Merged>| merged.values().flat_map(|m| m.parts.values()).map(|(df, _)| df.estimated_size()).sum::<usize>();
        while bytes(&merged) > self.merged_budget {
            let keep = |k: Rollup, p: Part| k == kind && (p == part || p == Part::Keys);
            let oldest = merged
                .iter()
                .flat_map(|(k, m)| m.parts.iter().filter(|(p, _)| **p != Part::Keys || m.parts.len() == 1).map(move |(p, (_, used))| (*k, *p, *used)))
                .filter(|(k, p, _)| !keep(*k, *p))
                .min_by_key(|(_, _, used)| *used);
            let Some((k, p, _)) = oldest else { break };
            tracing::debug!(rollup = k.name(), part = ?p, "a merged rollup part leaves the memory budget");
            if let Some(m) = merged.get_mut(&k) {
                m.parts.remove(&p);
                if m.parts.len() == 1 && m.parts.contains_key(&Part::Keys) && k != kind {
                    m.parts.clear();
                }
                if m.parts.is_empty() {
                    merged.remove(&k);
                }
            }
        }
    }
}

/// The live files of a rollup table at one version, and which data file each sums.
#[derive(Debug, Clone, Default)]
pub struct RollupFiles {
    pub version: u64,
    pub files: Arc<Vec<TableFile>>,
    /// Data file path -> index in `files`.
    pub by_data: Arc<HashMap<String, usize>>,
}

impl Lake {
    /// The live files of rollup `kind` (its latest snapshot; none when the lake has none).
    pub async fn rollup_files(&self, kind: Rollup) -> Result<RollupFiles, StoreError> {
        let t = Stored::Rollup(kind);
        let Some(snapshot) = self.delta_table(t).await? else { return Ok(RollupFiles::default()) };
        let files = self.files_of(t, &snapshot, |_| true)?;
        let by_data = files.iter().enumerate().filter_map(|(i, f)| Some((kind.data_path_of(&f.path)?, i))).collect();
        Ok(RollupFiles { version: snapshot.version().unwrap_or(0), files: Arc::new(files), by_data: Arc::new(by_data) })
    }

    /// Every file of `files` (one version of rollup `kind`) merged into one frame: the group
    /// keys, the partition columns, `rows`, `FILE_INDEX` (the row's file in `files.files`) and
    /// the sums of `parts`. Built once per version and part, from files read once.
    pub fn rollup_frame(&self, kind: Rollup, files: &RollupFiles, parts: &[Part]) -> Result<DataFrame, StoreError> {
        let fail = |e: PolarsError| StoreError::Read { path: self.locate(kind.dir()), reason: e.to_string() };
        let part = |part: Part| -> Result<DataFrame, StoreError> {
            if let Some(df) = self.rollup_cache().merged(kind, files.version, part) {
                return Ok(df);
            }
            let mut all: Option<DataFrame> = None;
            for (i, f) in files.files.iter().enumerate() {
                let mut df = self.read_rollup(kind, f, part)?;
                if part == Part::Keys {
                    let height = df.height();
                    df.with_column(Column::new_scalar(FILE_INDEX.into(), Scalar::from(i as u32), height)).map_err(fail)?;
                }
                match all.as_mut() {
                    None => all = Some(df),
                    Some(acc) => {
                        acc.vstack_mut(&df).map_err(fail)?;
                    }
                }
            }
            let mut df = all.unwrap_or_default();
            df.rechunk_mut_par();
            self.rollup_cache().put_merged(kind, files.version, part, df.clone());
            Ok(df)
        };
        let mut df = part(Part::Keys)?;
        let mut seen = vec![Part::Keys];
        for &p in parts {
            if !seen.contains(&p) {
                seen.push(p);
                df = df.hstack(part(p)?.columns()).map_err(fail)?;
            }
        }
        Ok(df)
    }

    /// Columns of a rollup file, from memory when read before: `Part::Keys`, its group keys,
    /// the partition columns (`agency`, `fiscal_year`, `fiscal_quarter`, as in a scan of the
    /// responses) and `rows`; otherwise that part's sum columns only (rows in the same order).
    /// Only those columns are decoded.
    pub fn read_rollup(&self, kind: Rollup, file: &TableFile, part: Part) -> Result<DataFrame, StoreError> {
        let tag = match part {
            Part::Keys => "",
            Part::Bins(m) => m.column(),
            Part::Sums => "sums",
        };
        let key = format!("{}#{tag}", file.path);
        if let Some(df) = self.rollup_cache().get(&key) {
            return Ok(df);
        }
        tracing::trace!(path = %file.path, ?part, "reading a rollup file");
        let fail = |e: PolarsError| StoreError::Read { path: self.locate(&file.path), reason: e.to_string() };
        let bytes =
            self.objects().read(&file.path)?.ok_or_else(|| StoreError::Read { path: self.locate(&file.path), reason: "the rollup file is missing".into() })?;
        let columns: Vec<String> = match part {
            Part::Keys => kind.key_columns().into_iter().chain([ROWS]).map(String::from).collect(),
            Part::Bins(m) => measure_columns(m),
            Part::Sums => kind.arrow_schema().fields().iter().skip(kind.key_columns().len() + 1).map(|f| f.name().clone()).collect(),
        };
        let mut df = ParquetReader::new(std::io::Cursor::new(bytes.to_vec())).with_columns(Some(columns)).finish().map_err(fail)?;
        if part == Part::Keys {
            let part =
                file.partition.as_ref().ok_or_else(|| StoreError::Read { path: self.locate(&file.path), reason: "a rollup file has no partition".into() })?;
            let height = df.height();
            df.with_column(Column::new_scalar("agency".into(), Scalar::from(PlSmallStr::from(part.agency.as_str())), height)).map_err(fail)?;
            df.with_column(Column::new_scalar("fiscal_year".into(), Scalar::from(part.quarter.year), height)).map_err(fail)?;
            df.with_column(Column::new_scalar("fiscal_quarter".into(), Scalar::from(part.quarter.quarter as i32), height)).map_err(fail)?;
        }
        self.rollup_cache().put(key, df.clone());
        Ok(df)
    }
}
