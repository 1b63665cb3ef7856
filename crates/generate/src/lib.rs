//! `cxlake generate`: a realistic synthetic lake from a fixed seed. Deterministic (the same seed
//! and size give the same files, whatever the thread count), streaming (each worker holds one
//! batch at a time, so memory is bounded for any row count), with the planted structure written
//! to `truth.json` beside the data. Collections ask the A-11 2022 Likert design, and from
//! FY2024 Q2 most of the designated services' ones the Touchpoints A-11 v2 form (`model.rs`).

pub mod model;
pub mod rows;
pub mod telemetry;
pub mod universe;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use cx_domain::FiscalQuarter;
use cx_lake::commit::WriteLock;
use cx_lake::delta::{Change, Dimension, TableFile};
use cx_lake::layout::PartitionKey;
use cx_lake::writer::{parquet_properties, AtomicParquetWriter, UNIQUE_COLUMNS};
use cx_lake::{schema, Lake, StoreError};
use model::{Effects, Truth};
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;
use rayon::prelude::*;
use rows::{RowDrawer, Task};
use std::sync::Arc;
use universe::Universe;

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenerateConfig {
    /// Where to create the lake: a local directory or `s3://bucket/prefix`.
    pub out: String,
    pub rows: u64,
    pub seed: u64,
    /// First of the fiscal years covered.
    pub first_fiscal_year: i32,
    pub fiscal_years: u32,
    pub services: usize,
    /// Rows per data file at most (a partition with more rows gets several files).
    pub file_rows: u64,
    /// Plant the sudden drops (off: a lake for checking false alarms).
    pub drops: bool,
}

impl Default for GenerateConfig {
    fn default() -> Self {
        GenerateConfig {
            out: "lake".into(),
            rows: 1_000_000,
            seed: 2025,
            first_fiscal_year: 2022,
            fiscal_years: 5,
            services: 150,
            file_rows: 2_000_000,
            drops: true,
        }
    }
}

/// What was written.
#[derive(Debug, Clone)]
pub struct GenerateReport {
    pub rows: u64,
    pub files: usize,
    pub bytes: u64,
    /// Where `truth.json` was written (path or URL).
    pub truth: String,
}

/// Rows per record batch handed to the Parquet writer.
const BATCH_ROWS: usize = 64 * 1024;

/// Generates the lake described by `cfg`. `progress` is told how many rows were written, from
/// any thread.
pub fn generate(cfg: &GenerateConfig, progress: &(dyn Fn(u64) + Sync)) -> Result<GenerateReport, StoreError> {
    let quarters: Vec<FiscalQuarter> =
        FiscalQuarter::new(cfg.first_fiscal_year, 1).through(FiscalQuarter::new(cfg.first_fiscal_year + cfg.fiscal_years as i32 - 1, 4));
    let universe = Universe::build(cfg.seed, cfg.services);
    let mut effects = Effects::draw(cfg.seed, &universe, &quarters);
    if !cfg.drops {
        effects.drops.clear();
    }
    let lake = Lake::create_url(&cfg.out)?;
    let tasks = plan(cfg, &universe, &quarters);

    let written: Vec<TableFile> = tasks
        .par_iter()
        .map(|task| {
            let key = PartitionKey {
                agency: universe.agencies[universe.services[universe.collections[task.collections[0]].service].agency].code.clone(),
                quarter: task.quarter,
            };
            let target = format!("{}/part-g{:x}-{:03}.parquet", key.dir(), cfg.seed, task.file);
            let mut writer = AtomicParquetWriter::in_lake(&lake, &target, schema::arrow_schema(), parquet_properties(&UNIQUE_COLUMNS))?;
            let mut drawer = RowDrawer::new(&universe, &effects, task, cfg.seed);
            while let Some(batch) = drawer.next_batch(BATCH_ROWS) {
                writer.write(&batch)?;
                progress(batch.num_rows() as u64);
            }
            let size = writer.finish()?;
            Ok(TableFile { path: target, partition: Some(key), size, rows: task.rows() })
        })
        .collect::<Result<_, StoreError>>()?;

    // Each table is one commit: a reader sees the generated lake whole or not at all.
    let lock = WriteLock::acquire(&lake)?;
    let operation = format!("generate seed {}", cfg.seed);
    let rows: u64 = written.iter().map(|w| w.rows).sum();
    let (files, bytes) = (written.len(), written.iter().map(|w| w.size).sum());
    lock.commit(cx_lake::Table::Responses, Change { operation: operation.clone(), added: written, ..Default::default() })?;
    write_dimensions(&lock, &universe, &operation)?;
    let mut respondents = vec![vec![0u64; quarters.len()]; universe.collections.len()];
    for t in &tasks {
        for (c, n) in t.collections.iter().zip(&t.counts) {
            respondents[*c][t.quarter_index] += n;
        }
    }
    let (telemetry, telemetry_drops) = telemetry::telemetry(cfg.seed, &universe, &quarters, &respondents, cfg.rows as f64 / quarters.len() as f64, cfg.drops);
    let mut observation_files = write_observations(&lock, cx_lake::Table::TELEMETRY, cfg.seed, telemetry, &operation)?;
    observation_files +=
        write_observations(&lock, cx_lake::Table::INDICATORS, cfg.seed, telemetry::indicators(cfg.seed, &universe, &effects, &quarters), &operation)?;
    tracing::debug!(observation_files, "telemetry and indicators written");
    // Realised shares: rows by form and trust scale.
    let (mut thumbs, mut radio) = (0u64, 0u64);
    for t in &tasks {
        for (c, n) in t.collections.iter().zip(&t.counts) {
            match effects.form(*c, t.quarter) {
                Some(f) if f.radio => radio += n,
                Some(_) => thumbs += n,
                None => {}
            }
        }
    }
    let share = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let tapped = model::TappedTruth::new(share(thumbs + radio, rows), share(radio, thumbs + radio));
    let mut truth = Truth::new(cfg.seed, rows, &quarters, &universe, &effects, share(thumbs, rows), tapped);
    truth.telemetry = Some(model::TelemetryTruth {
        drops: telemetry_drops,
        wait_quality_slope: telemetry::WAIT_QUALITY_SLOPE,
        description: "telemetry per collection and day (surveys_offered >= respondents, transactions >= surveys_offered, page_views of start/status pages on the digital channel); indicators per service and month (processing_time_days) and per office and month (wait_time_minutes, first_contact_resolution) driven by the same latent quality as the answers: better experience, shorter waits",
    });
    lake.objects().create("truth.json", serde_json::to_vec_pretty(&truth).expect("truth serializes"))?;
    Ok(GenerateReport { rows, files, bytes, truth: lake.locate("truth.json") })
}

/// Splits `cfg.rows` over collections and quarters (largest-remainder rounding, so the total is
/// exact) and groups them into one task per data file.
fn plan(cfg: &GenerateConfig, u: &Universe, quarters: &[FiscalQuarter]) -> Vec<Task> {
    let mut rng = Pcg64Mcg::seed_from_u64(cfg.seed ^ 0x5eed_0003);
    // Per service: a growth rate and quarter-to-quarter noise in volume.
    let mut cells: Vec<(usize, usize, f64)> = Vec::new(); // (collection, quarter, expected rows)
    for (si, s) in u.services.iter().enumerate() {
        let growth = 0.03 + 0.05 * universe::std_normal(&mut rng);
        let qf: Vec<f64> = (0..quarters.len()).map(|q| ((growth * q as f64).exp() * (1.0 + 0.15 * universe::std_normal(&mut rng))).max(0.2)).collect();
        let qsum: f64 = qf.iter().sum();
        for (ci, c) in u.collections.iter().enumerate().filter(|(_, c)| c.service == si) {
            for (q, f) in qf.iter().enumerate() {
                cells.push((ci, q, cfg.rows as f64 * s.volume * c.share * f / qsum));
            }
        }
    }
    let mut counts: Vec<u64> = cells.iter().map(|c| c.2.floor() as u64).collect();
    let short = cfg.rows - counts.iter().sum::<u64>();
    let mut by_remainder: Vec<usize> = (0..cells.len()).collect();
    by_remainder.sort_by(|&a, &b| {
        let (ra, rb) = (cells[a].2.fract(), cells[b].2.fract());
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    for &i in by_remainder.iter().take(short as usize) {
        counts[i] += 1;
    }

    // Group by partition (agency, quarter), in a fixed order.
    let mut tasks = Vec::new();
    for a in 0..u.agencies.len() {
        for (qi, q) in quarters.iter().enumerate() {
            let members: Vec<(usize, u64)> = cells
                .iter()
                .zip(&counts)
                .filter(|((c, cq, _), n)| *cq == qi && **n > 0 && u.services[u.collections[*c].service].agency == a)
                .map(|((c, _, _), n)| (*c, *n))
                .collect();
            let total: u64 = members.iter().map(|m| m.1).sum();
            if total == 0 {
                continue;
            }
            let partition = a * quarters.len() + qi;
            let files = total.div_ceil(cfg.file_rows) as usize;
            for f in 0..files {
                // Each file gets an even share of every collection.
                let share = |n: u64| n / files as u64 + u64::from((f as u64) < n % files as u64);
                let (collections, counts): (Vec<usize>, Vec<u64>) = members.iter().map(|(c, n)| (*c, share(*n))).filter(|m| m.1 > 0).unzip();
                tasks.push(Task {
                    partition,
                    file: f,
                    quarter: *q,
                    quarter_index: qi,
                    collections,
                    counts,
                    seed: cfg.seed.wrapping_add(0x9E37_79B9_7F4A_7C15u64.wrapping_mul((partition * 1000 + f + 1) as u64)),
                });
            }
        }
    }
    // Biggest first, so the last task to finish is a small one.
    tasks.sort_by_key(|t| std::cmp::Reverse(t.rows()));
    tasks
}

/// Writes the services and offices dimension tables.
fn write_dimensions(lock: &WriteLock, u: &Universe, operation: &str) -> Result<(), StoreError> {
    let text = |name: &str| Field::new(name, DataType::Utf8, false);
    let strings = |values: Vec<&str>| Arc::new(arrow::array::StringArray::from(values)) as ArrayRef;
    let services: Vec<_> = u.services.iter().map(|s| s.inventory(&u.agencies)).collect();
    cx_lake::services::replace(lock, &services, operation.to_string())?;

    let of = &u.offices;
    let offices_schema = Arc::new(Schema::new(vec![text("office_id"), text("name"), text("city"), text("state"), text("agency")]));
    let offices = RecordBatch::try_new(
        offices_schema,
        vec![
            strings(of.iter().map(|o| o.id.as_str()).collect()),
            strings(of.iter().map(|o| o.name.as_str()).collect()),
            strings(of.iter().map(|o| o.city.as_str()).collect()),
            strings(of.iter().map(|o| o.state.as_str()).collect()),
            strings(of.iter().map(|o| u.agencies[o.agency].code.as_str()).collect()),
        ],
    )
    .expect("offices batch matches its schema");
    cx_lake::delta::replace_dimension(lock, Dimension::Offices, &offices, operation.to_string()).map(|_| ())
}

/// Writes one table of observations, one file per (agency, quarter) partition, rows sorted by
/// series and time; returns the number of files.
fn write_observations(
    lock: &WriteLock,
    table: cx_lake::Table,
    seed: u64,
    per_agency: Vec<Vec<cx_domain::observations::Observation>>,
    operation: &str,
) -> Result<usize, StoreError> {
    let lake = lock.lake();
    let mut files = Vec::new();
    for mut rows in per_agency.into_iter().filter(|r| !r.is_empty()) {
        rows.sort_by(|a, b| {
            (&a.service_id, &a.metric, a.channel, &a.page, &a.office_id, a.observed_at).cmp(&(
                &b.service_id,
                &b.metric,
                b.channel,
                &b.page,
                &b.office_id,
                b.observed_at,
            ))
        });
        let mut by_quarter: std::collections::BTreeMap<FiscalQuarter, Vec<cx_domain::observations::Observation>> = Default::default();
        for o in rows {
            by_quarter.entry(FiscalQuarter::of(o.observed_at.date_naive())).or_default().push(o);
        }
        for (quarter, rows) in by_quarter {
            let key = PartitionKey { agency: rows[0].agency.clone(), quarter };
            let target = format!("{}/part-g{seed:x}-000.parquet", key.dir_in(table));
            let mut w = AtomicParquetWriter::in_lake(lake, &target, cx_lake::observations::arrow_schema(), parquet_properties(&[]))?;
            w.write(&cx_lake::observations::batch(&rows))?;
            let size = w.finish()?;
            files.push(TableFile { path: target, partition: Some(key), size, rows: rows.len() as u64 });
        }
    }
    let n = files.len();
    lock.commit(table, Change { operation: operation.to_string(), added: files, ..Default::default() })?;
    Ok(n)
}
