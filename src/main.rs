//! The `cxlake` command line: thin wrappers over the library.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use cxlake::analytics::Analytics;
use cxlake::generate::{generate, GenerateConfig};
use cxlake::store::Lake;
use indicatif::{ProgressBar, ProgressStyle};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

// Ingestion and polars allocate many small, short-lived buffers from many threads.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "cxlake", version, about = "Analytical GraphQL over a lake of federal CX survey responses (OMB A-11 Section 280)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log lines as text or JSON (one object per line, with the request id of server requests).
    #[arg(long, global = true, env = "CXLAKE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Minimum cell sizes: statistics of fewer respondents are withheld in every result.
#[derive(clap::Args)]
struct Cells {
    /// Respondents a score, benchmark, trend or alert cell needs.
    #[arg(long, env = "CXLAKE_MIN_CELL", default_value_t = 10)]
    min_cell: u64,
    /// Respondents a driver-importance group needs.
    #[arg(long, env = "CXLAKE_MIN_CELL_DRIVERS", default_value_t = 30)]
    min_cell_drivers: u64,
}

impl Cells {
    fn suppression(&self) -> cxlake::analytics::suppression::Suppression {
        cxlake::analytics::suppression::Suppression { min_cell: self.min_cell, min_cell_drivers: self.min_cell_drivers }
    }
}

/// Real-time submit: where the durable log lives and how often it moves into the lake.
#[derive(clap::Args)]
struct SubmitArgs {
    /// Accept real-time submissions (`POST /v1/responses`, `submitResponses`) into the lake.
    /// Without it the server is read-only, as replicas of a lake another process writes are.
    #[arg(long, env = "CXLAKE_SUBMIT")]
    submit: bool,
    /// Directory of the submit log (default: <lake>/_wal).
    #[arg(long, env = "CXLAKE_WAL")]
    wal: Option<PathBuf>,
    /// Milliseconds between moves of logged submissions into the lake.
    #[arg(long, env = "CXLAKE_FLUSH_MS", default_value_t = 1000)]
    flush_ms: u64,
}

/// Access control and limits of the server.
#[derive(clap::Args)]
struct AccessArgs {
    /// Keys file (`cxlake keys add`). Without it every caller is an admin, which is allowed on a
    /// loopback address only.
    #[arg(long, env = "CXLAKE_KEYS")]
    keys: Option<PathBuf>,
    /// Refuse requests without a key (by default they are served as the public role).
    #[arg(long, env = "CXLAKE_NO_ANONYMOUS")]
    no_anonymous: bool,
    /// Requests per second per key (per client address without a key); 0 for no limit.
    #[arg(long, env = "CXLAKE_RATE_LIMIT", default_value_t = 50)]
    rate_limit: u32,
    /// Failed authentications (wrong or revoked keys) a client address may make per minute,
    /// at once or spread out, before its requests with a key get 429; 0 for no limit.
    #[arg(long, env = "CXLAKE_AUTH_FAILURES", default_value_t = 10)]
    auth_failures: u32,
    /// Seconds a GraphQL request may take before it is stopped with a TIMEOUT error.
    #[arg(long, env = "CXLAKE_QUERY_TIMEOUT", default_value_t = 30)]
    query_timeout: u64,
    /// Largest GraphQL request body in bytes.
    #[arg(long, env = "CXLAKE_MAX_BODY", default_value_t = 1 << 20)]
    max_body: usize,
    /// Light queries (one aggregating scan) running at once (default: 4 per core).
    #[arg(long, env = "CXLAKE_MAX_QUERIES")]
    max_queries: Option<usize>,
    /// Heavy queries (driver importance, bootstraps, reports) running at once (default: one per
    /// two cores).
    #[arg(long, env = "CXLAKE_MAX_HEAVY_QUERIES")]
    max_heavy_queries: Option<usize>,
    /// Queries of each weight that may wait for a slot; beyond, a BUSY error (default: 16 light
    /// and 4 heavy per core).
    #[arg(long, env = "CXLAKE_QUERY_QUEUE")]
    query_queue: Option<usize>,
    /// Groups an aggregate query may return (beyond, a TOO_MANY_GROUPS error).
    #[arg(long, env = "CXLAKE_MAX_GROUPS", default_value_t = cxlake::analytics::MAX_GROUPS)]
    max_groups: usize,
    /// Without --keys: another host name the server answers to (NAME or NAME:PORT), besides
    /// localhost, 127.0.0.1 and [::1] with the listen port; e.g. a local proxy's. Repeatable.
    #[arg(long = "allowed-host", value_name = "NAME", env = "CXLAKE_ALLOWED_HOSTS", value_delimiter = ',')]
    allowed_hosts: Vec<String>,
    /// An origin whose pages may call this server (CORS), e.g. https://dash.example.gov.
    /// Repeatable; by default no CORS headers are sent.
    #[arg(long = "cors-origin", value_name = "ORIGIN", env = "CXLAKE_CORS_ORIGINS", value_delimiter = ',')]
    cors_origins: Vec<String>,
}

impl AccessArgs {
    /// Admission slots: the defaults for this machine's cores, with any flags given.
    fn admission(&self) -> cxlake::analytics::Admission {
        use cxlake::analytics::{Admission, Slots};
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let (light, heavy) = Admission::default_slots(cores);
        let slots = |d: Slots, running: Option<usize>| Slots { running: running.unwrap_or(d.running), queued: self.query_queue.unwrap_or(d.queued) };
        Admission::new(slots(light, self.max_queries), slots(heavy, self.max_heavy_queries))
    }

    fn limits(&self, listen: &SocketAddr) -> Result<cxlake::api::server::Limits> {
        let keys = match &self.keys {
            Some(path) => Some(std::sync::Arc::new(cxlake::api::keys::KeyStore::open(path)?)),
            None if listen.ip().is_loopback() => {
                tracing::warn!("no --keys: every caller is an admin (allowed on loopback only)");
                None
            }
            None => bail!("listening on {listen} needs --keys FILE (create keys with `cxlake keys add`); only a loopback address may run without"),
        };
        let limits = cxlake::api::server::Limits {
            keys,
            anonymous: !self.no_anonymous,
            rate_per_second: self.rate_limit,
            max_body: self.max_body,
            timeout: std::time::Duration::from_secs(self.query_timeout.max(1)),
            port: Some(listen.port()),
            allowed_hosts: self.allowed_hosts.clone(),
            cors_origins: self.cors_origins.clone(),
            auth_failures_per_minute: self.auth_failures,
        };
        limits.browser().validate().map_err(anyhow::Error::msg)?;
        Ok(limits)
    }
}

#[derive(Subcommand)]
enum SurveyCommand {
    /// Checks a survey definition (JSON or YAML) against A-11 280.10, by edition; prints every
    /// finding with the rule it breaks and exits 1 if any rule is broken (findings for review
    /// only: 0).
    Check {
        file: PathBuf,
        /// The rules to check against; overrides the definition's `edition` key (default
        /// a11_2022).
        #[arg(long, value_enum)]
        edition: Option<SurveyEdition>,
        /// One JSON object per finding.
        #[arg(long)]
        json: bool,
    },
}

/// Editions of the survey design check (`cxlake::domain::survey_design::Edition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SurveyEdition {
    /// The 2022 text of A-11 280.10: required trust and satisfaction, drivers mapped.
    #[value(name = "a11_2022")]
    A11Of2022,
    /// GSA Touchpoints' A-11 v2 form: trust on thumbs or 1-5, went-well and didn't-go-well
    /// lists, one comment.
    #[value(name = "touchpoints_a11_v2")]
    TouchpointsA11V2,
}

impl From<SurveyEdition> for cxlake::domain::survey_design::Edition {
    fn from(e: SurveyEdition) -> Self {
        match e {
            SurveyEdition::A11Of2022 => Self::A11Of2022,
            SurveyEdition::TouchpointsA11V2 => Self::TouchpointsA11V2,
        }
    }
}

#[derive(Subcommand)]
enum ReportCommand {
    /// The quarterly HISP data of the designated services in performance.gov's layout, as CSV
    /// (to stdout or --out) or XLSX (--out); the due date and the designated services without
    /// data are printed to stderr.
    Hisp {
        #[arg(long, env = "CXLAKE_LAKE", default_value = "lake")]
        lake: String,
        #[arg(long)]
        fiscal_year: i32,
        /// Fiscal quarter, 1-4 (Q1 is October-December).
        #[arg(long)]
        quarter: u32,
        /// Only this agency's services.
        #[arg(long)]
        agency: Option<String>,
        #[arg(long, value_enum, default_value = "csv")]
        format: ReportFormat,
        /// Output file (required for xlsx).
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        cells: Cells,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ReportFormat {
    Csv,
    Xlsx,
}

/// Managing API keys.
#[derive(Subcommand)]
enum KeysCommand {
    /// Creates a key and prints it (once: only its hash is stored).
    Add {
        /// What the key is for (shown by `list`).
        #[arg(long)]
        name: String,
        /// public, analyst, agency, collector or admin.
        #[arg(long)]
        role: String,
        /// The agency of an agency or collector key.
        #[arg(long)]
        agency: Option<String>,
    },
    /// Lists the keys (never their secrets).
    List,
    /// Revokes a key by id; servers reading the file stop accepting it within a second.
    Revoke { id: String },
}

/// The coding of Touchpoints exports: a sidecar TOML file, overridden by flags.
#[derive(clap::Args)]
struct Coding {
    /// Sidecar TOML file with the coding and the question mapping.
    #[arg(long)]
    mapping: Option<PathBuf>,
    #[arg(long)]
    agency: Option<String>,
    #[arg(long)]
    bureau: Option<String>,
    #[arg(long)]
    service_id: Option<String>,
    #[arg(long)]
    service_type: Option<String>,
    #[arg(long)]
    channel: Option<String>,
    #[arg(long)]
    collection_id: Option<String>,
    /// likert5 or thumbs.
    #[arg(long)]
    scale: Option<String>,
    #[arg(long)]
    stage: Option<String>,
    /// Submission time of every row of files without `created_at`.
    #[arg(long)]
    submitted_at: Option<String>,
    /// What question_1 asks (trust or satisfaction): shorthand for the mapping's [questions].
    #[arg(long)]
    question_1: Option<String>,
}

impl Coding {
    fn mapping(self) -> Result<cxlake::ingest::formats::touchpoints::Mapping> {
        use cxlake::ingest::formats::touchpoints::Mapping;
        let base = match &self.mapping {
            Some(p) => Mapping::read(p)?,
            None => Mapping::default(),
        };
        let mut questions = std::collections::BTreeMap::new();
        if let Some(q) = self.question_1 {
            questions.insert("question_1".to_string(), q);
        }
        Ok(base.overlaid(Mapping {
            agency: self.agency,
            bureau: self.bureau,
            service_id: self.service_id,
            service_type: self.service_type,
            channel: self.channel,
            collection_id: self.collection_id,
            scale: self.scale,
            stage: self.stage,
            submitted_at: self.submitted_at,
            questions,
            ..Default::default()
        }))
    }
}

// Parsed once per run: the size of the largest variant (`serve`'s options) costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Serve the GraphQL API (GraphiQL at /).
    Serve {
        /// Lake root: a directory or s3://bucket/prefix (S3 settings from the AWS_* environment).
        #[arg(long, env = "CXLAKE_LAKE", default_value = "data/sample")]
        lake: String,
        #[command(flatten)]
        cells: Cells,
        /// Address to listen on.
        #[arg(long, env = "CXLAKE_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        #[command(flatten)]
        submit: SubmitArgs,
        #[command(flatten)]
        access: AccessArgs,
        /// Secret of the record keys that perturb the public role's counts (cell-key method), 64
        /// hex digits; default: the lake's `_lake/cell_key_secret`, created on first need.
        /// Every replica of a lake must use the same one.
        #[arg(long, env = "CXLAKE_CELL_KEY_SECRET", hide_env_values = true)]
        cell_key_secret: Option<String>,
        /// Answer every query from raw rows, never from rollups (the same answers; for
        /// comparison and benchmarks).
        #[arg(long, env = "CXLAKE_NO_ROLLUPS")]
        no_rollups: bool,
        /// Megabytes of merged rollup frames kept in memory (the least recently read parts
        /// leave first); a dashboard over many measures and rollups re-reads rollup files when
        /// this is smaller than its working set (at 10M rows about 2.5 GB for every measure of
        /// the three score rollups).
        #[arg(long, env = "CXLAKE_ROLLUP_MEMORY_MB", default_value_t = 4096)]
        rollup_memory_mb: usize,
        #[command(flatten)]
        sql: SqlArgs,
    },
    /// Manage API keys and their roles in a keys file.
    Keys {
        /// The keys file.
        #[arg(long, env = "CXLAKE_KEYS", default_value = "keys.json")]
        keys: PathBuf,
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Write a synthetic lake (deterministic for a seed) with its planted truth in truth.json.
    Generate {
        /// Where to create the lake (must not hold one): a directory or s3://bucket/prefix.
        #[arg(long)]
        out: String,
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
        #[arg(long, default_value_t = 2025)]
        seed: u64,
        /// First fiscal year covered.
        #[arg(long, default_value_t = 2022)]
        first_fiscal_year: i32,
        #[arg(long, default_value_t = 5)]
        fiscal_years: u32,
        /// About how many services.
        #[arg(long, default_value_t = 150)]
        services: usize,
        /// Plant no sudden drops (a lake for checking false alarms).
        #[arg(long)]
        no_drops: bool,
    },
    /// Run a GraphQL query file against a lake without a server and print the JSON response.
    Query {
        /// Lake root: a directory or s3://bucket/prefix.
        #[arg(long, env = "CXLAKE_LAKE", default_value = "data/sample")]
        lake: String,
        #[command(flatten)]
        cells: Cells,
        /// File holding the GraphQL query (`-` for standard input).
        file: PathBuf,
        /// Variables as a JSON object.
        #[arg(long)]
        variables: Option<String>,
        /// Answer from raw rows, never from rollups.
        #[arg(long, env = "CXLAKE_NO_ROLLUPS")]
        no_rollups: bool,
    },
    /// Key driver analysis of a numeric CSV: r, beta, first, last, Pratt, Johnson and Shapley
    /// importance of each driver column for the outcome column (complete rows only).
    Kda {
        #[arg(long)]
        csv: PathBuf,
        #[arg(long)]
        outcome: String,
        /// Comma-separated driver columns.
        #[arg(long, value_delimiter = ',', required = true)]
        drivers: Vec<String>,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Ingest files (CSV, JSON lines, Parquet in the lake's columns, or Touchpoints A-11
    /// exports) into a lake: invalid rows are quarantined, rows already stored are skipped.
    Ingest {
        /// Lake root: a directory or s3://bucket/prefix (created if it holds no lake).
        #[arg(long, env = "CXLAKE_LAKE", default_value = "lake")]
        lake: String,
        /// Files to ingest; each is stored completely or not at all.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Input format (default: from the file extension): csv, jsonl, parquet, touchpoints-v2
        /// (Touchpoints A-11 v2 export: thumbs or 1-5 question_1 and tapped indicators) or
        /// touchpoints-v1 (Likert items question_1..question_N).
        #[arg(long, value_parser = format_parser())]
        format: Option<cxlake::ingest::formats::Format>,
        /// The table the files hold.
        #[arg(long, value_enum, default_value = "responses")]
        table: IngestTable,
        #[command(flatten)]
        coding: Box<Coding>,
        /// Print the summary as JSON lines (one object per file).
        #[arg(long)]
        json: bool,
    },
    /// Merge small data files of each partition into few full ones (query results unchanged):
    /// one Delta commit per partition, removing the old files and adding the new; like every
    /// writer, it first removes temporary files left by killed writers.
    Compact {
        /// Lake root: a directory or s3://bucket/prefix.
        #[arg(long, env = "CXLAKE_LAKE", default_value = "lake")]
        lake: String,
    },
    /// Delete data files no table version of the retention period needs (files compaction
    /// replaced, files of writers killed before their commit). Time travel to older versions
    /// fails afterwards.
    Vacuum {
        /// Lake root: a directory or s3://bucket/prefix.
        #[arg(long, env = "CXLAKE_LAKE", default_value = "lake")]
        lake: String,
        /// Keep files that versions of the last this many hours read.
        #[arg(long, default_value_t = 168)]
        retention_hours: u64,
        /// List what would be deleted; delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Rollups of sufficient statistics (what most score queries read instead of rows).
    Rollup {
        #[command(subcommand)]
        command: RollupCommand,
    },
    /// Turn a lake of the old layout (format 1) into Delta tables in place, without rewriting
    /// data files; safe to rerun, and a no-op on a current lake.
    Migrate {
        /// Lake root: a directory or s3://bucket/prefix.
        lake: String,
    },
    /// Survey designs (A-11 280.10).
    Survey {
        #[command(subcommand)]
        command: SurveyCommand,
    },
    /// Reports for OMB (A-11 280.14-16).
    Report {
        #[command(subcommand)]
        command: ReportCommand,
    },
    /// Print the GraphQL schema (SDL).
    Schema,
}

#[derive(Subcommand)]
enum RollupCommand {
    /// Build the rollups of every data file that has none and drop those of files no longer
    /// in the lake (a lake that never had them, or after a writer was killed between its data
    /// and rollup commits); a second run changes nothing.
    Build {
        /// Lake root: a directory or s3://bucket/prefix.
        #[arg(long, env = "CXLAKE_LAKE", default_value = "lake")]
        lake: String,
    },
}

/// A user's error is one line on stderr and exit code 1: `{:#}` prints anyhow's chain of causes,
/// never its backtrace (which `RUST_BACKTRACE=1` would add to the `Debug` form that returning
/// `Err` from `main` prints). Bugs still panic, with a backtrace when asked for.
fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let cli = Cli::parse();
    let logs = tracing_subscriber::fmt()
        // The Delta kernel logs every snapshot it builds at info, and at error a table that does
        // not exist yet (which cxlake handles): its errors reach the user through ours.
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,buoyant_kernel=off,deltalake_core=warn".into()))
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().with_current_span(true).with_span_list(true).init(),
    }
    match cli.command {
        // Opening reads the dimension tables with polars, which must not run on an async worker.
        Command::Serve { lake, cells, listen, submit, access, cell_key_secret, no_rollups, rollup_memory_mb, sql } => {
            let limits = access.limits(&listen)?;
            sql.check(limits.keys.is_some())?;
            let mut analytics = Analytics::open(Lake::open_url(&lake)?.with_rollup_memory(rollup_memory_mb << 20))?
                .with_suppression(cells.suppression())
                .with_admission(access.admission())
                .with_max_groups(access.max_groups)
                .with_rollups(!no_rollups);
            if let Some(secret) = cell_key_secret {
                let secret = cxlake::analytics::cellkey::CellKeySecret::from_hex(&secret).map_err(|e| anyhow::anyhow!("--cell-key-secret: {e}"))?;
                analytics = analytics.with_cell_key_secret(secret);
            }
            let submitter = if !submit.submit {
                None
            } else {
                let wal = match (submit.wal, analytics.lake.local_root()) {
                    (Some(wal), _) => wal,
                    (None, Some(root)) => root.join("_wal"),
                    (None, None) => bail!("a lake in object storage keeps the submit log on this replica's disk: give --wal DIR"),
                };
                // A writer starting: clear what writers that died left (temporary files,
                // staging), unless another writer holds the lake now (it did so itself).
                drop(cxlake::store::commit::WriteLock::try_acquire(&analytics.lake)?);
                let inventory = analytics.catalog().inventory();
                let interval = std::time::Duration::from_millis(submit.flush_ms.max(10));
                Some(cxlake::ingest::submit::Submitter::start(&analytics.lake, &wal, inventory, interval)?)
            };
            serve(analytics, listen, submitter, limits, sql)
        }
        Command::Keys { keys, command } => manage_keys(&keys, command),
        Command::Survey { command: SurveyCommand::Check { file, edition, json } } => survey_check(&file, edition.map(Into::into), json),
        Command::Report { command: ReportCommand::Hisp { lake, fiscal_year, quarter, agency, format, out, cells } } => {
            report_hisp(&lake, fiscal_year, quarter, agency, format, out, cells)
        }
        Command::Generate { out, rows, seed, first_fiscal_year, fiscal_years, services, no_drops } => {
            if Lake::exists_at(&out)? {
                bail!("'{out}' already holds a lake; choose another --out or remove it");
            }
            let cfg = GenerateConfig { out, rows, seed, first_fiscal_year, fiscal_years, services, drops: !no_drops, ..Default::default() };
            let bar = ProgressBar::new(rows)
                .with_style(ProgressStyle::with_template("{bar:40} {human_pos}/{human_len} rows {per_sec} eta {eta}").expect("valid template"));
            let start = Instant::now();
            let report = generate(&cfg, &|n| bar.inc(n))?;
            bar.finish_and_clear();
            let secs = start.elapsed().as_secs_f64();
            eprintln!(
                "wrote {} rows in {} files ({:.1} MB) to {} in {:.2}s ({:.2}M rows/s); truth in {}",
                report.rows,
                report.files,
                report.bytes as f64 / 1e6,
                cfg.out,
                secs,
                report.rows as f64 / secs / 1e6,
                report.truth
            );
            Ok(())
        }
        Command::Query { lake, cells, file, variables, no_rollups } => {
            query(open(&lake)?.with_suppression(cells.suppression()).with_rollups(!no_rollups), file, variables)
        }
        Command::Kda { csv, outcome, drivers, json } => kda(&csv, &outcome, &drivers, json),
        Command::Ingest { lake, files, format, table, coding, json } => ingest(&lake, &files, format, table, coding, json),
        Command::Compact { lake } => {
            let lake = Lake::open_url(&lake)?;
            let lock = cxlake::store::commit::WriteLock::acquire(&lake)?;
            let c = cxlake::store::compact::compact(&lock, &cxlake::ingest::pipeline::run_id())?;
            println!(
                "compacted {} partitions: {} files into {} ({} rows); removed {} temporary files; lake version {}",
                c.partitions, c.files_before, c.files_after, c.rows, c.temporary_files_removed, c.lake_version
            );
            Ok(())
        }
        Command::Vacuum { lake, retention_hours, dry_run } => {
            let lake = Lake::open_url(&lake)?;
            let lock = cxlake::store::commit::WriteLock::acquire(&lake)?;
            let v = cxlake::store::compact::vacuum(&lock, std::time::Duration::from_secs(retention_hours * 3600), dry_run)?;
            for f in &v.files {
                println!("{} {f}", if dry_run { "would delete" } else { "deleted" });
            }
            println!("{} {} files; lake version {}", if dry_run { "would delete" } else { "deleted" }, v.files.len(), v.lake_version);
            Ok(())
        }
        Command::Rollup { command: RollupCommand::Build { lake } } => {
            let lake = Lake::open_url(&lake)?;
            let lock = cxlake::store::commit::WriteLock::acquire(&lake)?;
            let start = Instant::now();
            let b = cxlake::store::rollup::build(&lock)?;
            println!(
                "rollups: added {} files ({} group rows), removed {} in {:.2}s; lake version {}",
                b.added,
                b.rows,
                b.removed,
                start.elapsed().as_secs_f64(),
                lock.version()?
            );
            Ok(())
        }
        Command::Migrate { lake } => {
            let m = cxlake::store::migrate::migrate(&lake)?;
            if m.already_current {
                println!("{lake} is already a lake of Delta tables (lake version {}); nothing to do", m.lake_version);
                return Ok(());
            }
            for (table, files, rows) in &m.tables {
                println!("{table}: {files} files, {rows} rows added to a new Delta table");
            }
            for (path, reason) in &m.left_out {
                println!("left out {path}: {reason}");
            }
            println!("migrated {lake}; lake version {}", m.lake_version);
            Ok(())
        }
        Command::Schema => {
            print!("{}", cxlake::api::sdl());
            Ok(())
        }
    }
}

#[tokio::main]
async fn report_hisp(
    lake: &str,
    fiscal_year: i32,
    quarter: u32,
    agency: Option<String>,
    format: ReportFormat,
    out: Option<PathBuf>,
    cells: Cells,
) -> Result<()> {
    let lake = lake.to_string();
    let analytics = tokio::task::spawn_blocking(move || open(&lake)).await??.with_suppression(cells.suppression());
    let q = cxlake::analytics::hisp::HispQuery { quarter: cxlake::domain::FiscalQuarter::checked(fiscal_year, quarter)?, agencies: agency.map(|a| vec![a]) };
    let report = analytics.hisp_report(&q).await?;
    let bytes = match format {
        ReportFormat::Csv => cxlake::api::report::csv_bytes(&report),
        ReportFormat::Xlsx => cxlake::api::report::xlsx_bytes(&report)?,
    };
    match &out {
        Some(path) => std::fs::write(path, &bytes).with_context(|| format!("cannot write '{}'", path.display()))?,
        None if format == ReportFormat::Xlsx => bail!("XLSX output needs --out FILE"),
        None => std::io::Write::write_all(&mut std::io::stdout(), &bytes)?,
    }
    eprintln!("{}", report.due_statement());
    eprintln!(
        "{} rows for {} designated services and channels",
        report.rows.len(),
        report.rows.iter().map(|r| (&r.service.id, &r.channel)).collect::<std::collections::BTreeSet<_>>().len()
    );
    if report.services_without_data.is_empty() {
        eprintln!("every designated service has data this quarter");
    } else {
        eprintln!("designated services without data this quarter:");
        for s in &report.services_without_data {
            eprintln!("  {} {} ({})", s.id, s.name, s.agency);
        }
    }
    Ok(())
}

fn survey_check(file: &std::path::Path, edition: Option<cxlake::domain::survey_design::Edition>, json: bool) -> Result<()> {
    use cxlake::domain::survey_design::{Severity, SurveyDefinition};
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read '{}'", file.display()))?;
    let survey = SurveyDefinition::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let edition = survey.edition(edition);
    let findings = survey.check_as(edition);
    for f in &findings {
        if json {
            println!("{}", serde_json::to_string(f)?);
        } else {
            let severity = if f.severity == Severity::Violation { "violation" } else { "review" };
            let at = f.question.as_deref().map(|q| format!(" [{q}]")).unwrap_or_default();
            println!("{severity}{at}: {} ({})", f.message, f.rule);
        }
    }
    let violations = findings.iter().filter(|f| f.severity == Severity::Violation).count();
    if !json {
        println!(
            "{}: {} questions, {violations} violations, {} for review (edition {edition})",
            file.display(),
            survey.questions.len(),
            findings.len() - violations
        );
    }
    if violations > 0 {
        std::process::exit(1);
    }
    Ok(())
}

/// Every change is a locked read-modify-write of the file (`KeyFile::update`), so a running
/// server's `/v1/keys` and other `cxlake keys` processes never undo it.
fn manage_keys(path: &std::path::Path, command: KeysCommand) -> Result<()> {
    use cxlake::api::keys::KeyFile;
    match command {
        KeysCommand::Add { name, role, agency } => {
            let role = cxlake::api::auth::Role::parse(&role, agency.as_deref()).map_err(anyhow::Error::msg)?;
            let ((entry, key), _) = KeyFile::update(path, |file| Ok(file.add(&name, role)))?;
            eprintln!("added key {} ({}) to {}; it is shown only now:", entry.id, entry.role.label(), path.display());
            println!("{key}");
        }
        KeysCommand::List => {
            let file = KeyFile::load(path)?;
            for k in &file.keys {
                let state = k.revoked_at.as_deref().map_or("live".to_string(), |at| format!("revoked {at}"));
                println!("{}  {:<16} {:<28} created {}  {state}", k.id, k.role.label(), k.name, k.created_at);
            }
        }
        KeysCommand::Revoke { id } => {
            let (label, _) = KeyFile::update(path, |file| Ok(file.revoke(&id)?.role.label()))?;
            println!("revoked key {id} ({label})");
        }
    }
    Ok(())
}

fn open(lake: &str) -> Result<Analytics> {
    let lake = Lake::open_url(lake)?;
    Ok(Analytics::open(lake)?)
}

/// The SQL protocols' listeners and limits (`cxlake serve`).
#[derive(clap::Args, Debug)]
struct SqlArgs {
    /// Also serve SQL over the Postgres wire protocol on this address (psql, BI tools);
    /// the password is a key of --keys (without --keys: loopback only, no password).
    #[arg(long, value_name = "ADDR", env = "CXLAKE_PG")]
    pg: Option<SocketAddr>,
    /// Also serve Arrow Flight SQL on this address (ADBC, the Flight SQL JDBC driver); the
    /// bearer token (or the password) is a key of --keys (without --keys: loopback only).
    #[arg(long, value_name = "ADDR", env = "CXLAKE_FLIGHT_SQL")]
    flight_sql: Option<SocketAddr>,
    /// TLS for Flight SQL: a PEM certificate chain (with --flight-sql-tls-key).
    #[arg(long, value_name = "PEM", requires = "flight_sql_tls_key")]
    flight_sql_tls_cert: Option<PathBuf>,
    /// TLS for Flight SQL: the PEM private key of --flight-sql-tls-cert.
    #[arg(long, value_name = "PEM", requires = "flight_sql_tls_cert")]
    flight_sql_tls_key: Option<PathBuf>,
    /// Rows a SQL answer may hold (beyond, it is cut, and the client is told).
    #[arg(long, env = "CXLAKE_SQL_MAX_ROWS", default_value_t = 1_000_000)]
    sql_max_rows: usize,
    /// Seconds a SQL statement may take (beyond, it is cancelled: SQLSTATE 57014).
    #[arg(long, env = "CXLAKE_SQL_TIMEOUT_SECONDS", default_value_t = 60)]
    sql_timeout_seconds: u64,
}

impl SqlArgs {
    fn limits(&self) -> cxlake::sql::Limits {
        cxlake::sql::Limits { max_rows: self.sql_max_rows, timeout: std::time::Duration::from_secs(self.sql_timeout_seconds) }
    }

    /// Refuses a listener on a non-loopback address without keys, as for HTTP.
    fn check(&self, keys: bool) -> Result<()> {
        for (flag, addr) in [("--pg", self.pg), ("--flight-sql", self.flight_sql)] {
            if let Some(addr) = addr {
                if !keys && !addr.ip().is_loopback() {
                    bail!("{flag} {addr} needs --keys FILE (create keys with `cxlake keys add`); only a loopback address may run without");
                }
            }
        }
        Ok(())
    }
}

#[tokio::main]
async fn serve(
    analytics: Analytics,
    listen: SocketAddr,
    submitter: Option<std::sync::Arc<cxlake::ingest::submit::Submitter>>,
    limits: cxlake::api::server::Limits,
    sql: SqlArgs,
) -> Result<()> {
    let shown = analytics.lake.to_string();
    let metrics = std::sync::Arc::new(cxlake::api::metrics::Metrics::default());
    let schema = match &submitter {
        Some(s) => cxlake::api::schema_with_submit(analytics.clone(), s.clone()),
        None => cxlake::api::schema(analytics.clone()),
    };
    // SQL's result tables are GraphQL queries of this schema, planned once.
    let results = match sql.pg.is_some() || sql.flight_sql.is_some() {
        true => Some(std::sync::Arc::new(cxlake::api::sql_tables::ResultCatalog::new(schema.clone()).await.map_err(anyhow::Error::msg)?)),
        false => None,
    };
    if let Some(addr) = sql.flight_sql {
        let tls = match (&sql.flight_sql_tls_cert, &sql.flight_sql_tls_key) {
            (Some(cert), Some(key)) => Some(cxlake::api::flight::Tls {
                cert: std::fs::read(cert).with_context(|| format!("cannot read --flight-sql-tls-cert {}", cert.display()))?,
                key: std::fs::read(key).with_context(|| format!("cannot read --flight-sql-tls-key {}", key.display()))?,
            }),
            _ => None,
        };
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr} (--flight-sql)"))?;
        let service = cxlake::api::flight::FlightSqlServer {
            analytics: analytics.clone(),
            results: results.clone(),
            keys: limits.keys.clone(),
            limits: sql.limits(),
            metrics: metrics.clone(),
        };
        tracing::info!(%addr, tls = tls.is_some(), "serving Arrow Flight SQL");
        tokio::spawn(async move {
            if let Err(e) = cxlake::api::flight::serve(listener, service, tls).await {
                tracing::error!(error = %e, "the Flight SQL listener stopped");
            }
        });
    }
    if let Some(addr) = sql.pg {
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr} (--pg)"))?;
        let service = std::sync::Arc::new(cxlake::api::pg::PgService {
            analytics: analytics.clone(),
            results: results.clone(),
            keys: limits.keys.clone(),
            limits: sql.limits(),
            metrics: metrics.clone(),
        });
        tracing::info!(%addr, "serving SQL over the Postgres wire protocol");
        tokio::spawn(async move {
            if let Err(e) = cxlake::api::pg::serve(listener, service).await {
                tracing::error!(error = %e, "the Postgres listener stopped");
            }
        });
    }
    let app = cxlake::api::server::routes_with_metrics(schema, analytics, submitter, limits, metrics);
    tracing::info!(lake = %shown, "serving GraphiQL on http://{listen}/");
    poem::Server::new(cxlake::api::connection::bind(listen))
        .run_with_graceful_shutdown(
            app,
            async {
                tokio::signal::ctrl_c().await.ok();
            },
            None,
        )
        .await
        .context("server failed")
}

#[tokio::main]
async fn query(analytics: Analytics, file: PathBuf, variables: Option<String>) -> Result<()> {
    let text = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(&file).with_context(|| format!("cannot read query file '{}'", file.display()))?
    };
    // The command line reads the lake's files directly: its queries run as a local admin.
    let mut request = async_graphql::Request::new(text).data(cxlake::api::auth::Principal::local_admin());
    if let Some(v) = variables {
        let json: serde_json::Value = serde_json::from_str(&v).context("--variables is not valid JSON")?;
        request = request.variables(async_graphql::Variables::from_json(json));
    }
    let schema = cxlake::api::schema(analytics);
    let response = match cxlake::api::prepare(&mut request) {
        Ok(()) => schema.execute(request).await,
        Err(e) => async_graphql::Response::from_errors(vec![e]),
    };
    let failed = response.is_err();
    // A reader that stops early (`| head`) is not an error worth a panic.
    use std::io::Write;
    match writeln!(std::io::stdout().lock(), "{}", serde_json::to_string(&response)?) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
        _ => {}
    }
    if failed {
        std::process::exit(1);
    }
    Ok(())
}

/// What an ingested file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum IngestTable {
    /// Survey responses (the default).
    Responses,
    /// Telemetry (A-11 280.7): service_id, observed_at, metric, value[, channel, page, agency].
    Telemetry,
    /// Service-level indicators (280.12): service_id, observed_at, metric, value[, office_id, channel, agency].
    Indicators,
    /// The service inventory (280.5): records merged by service_id, all or nothing.
    Services,
}

use cxlake::domain::observations::ObservationTable;

fn ingest(lake: &str, files: &[PathBuf], format: Option<cxlake::ingest::formats::Format>, table: IngestTable, coding: Box<Coding>, json: bool) -> Result<()> {
    use cxlake::ingest::formats::{Format, OpenOptions};
    let lake = Lake::open_or_create_url(lake)?;
    let opts = OpenOptions {
        mapping: coding.mapping()?,
        inventory: cxlake::analytics::Catalog::load(&lake)?.inventory(),
        now: chrono::Utc::now(),
        agency: None,
        source_name: None,
    };
    // Responses files take the write lock only to publish; the other tables hold it per file.
    let acquire = || cxlake::store::commit::WriteLock::acquire(&lake);
    let (mut stored, mut failed) = (0u64, false);
    for file in files {
        let Some(format) = format.or_else(|| Format::from_path(file)) else {
            eprintln!("error: {}: cannot tell the format from the extension; say --format", file.display());
            failed = true;
            continue;
        };
        let bar = ProgressBar::new_spinner().with_style(ProgressStyle::with_template("{spinner} {msg} {human_pos} rows {per_sec}").expect("valid template"));
        bar.set_message(file.display().to_string());
        let result = match table {
            IngestTable::Responses => cxlake::ingest::pipeline::ingest_file(&lake, file, format, &opts, &|n| bar.inc(n)),
            IngestTable::Telemetry | IngestTable::Indicators => {
                let t = if table == IngestTable::Telemetry { ObservationTable::Telemetry } else { ObservationTable::Indicators };
                acquire().map_err(Into::into).and_then(|lock| cxlake::ingest::observations::ingest_file(&lock, file, format, t, &opts))
            }
            IngestTable::Services => {
                bar.finish_and_clear();
                let source = file.display().to_string();
                let changes = cxlake::ingest::services::read_file(file, format);
                let upserted = changes.map_err(cxlake::ingest::services::ServicesError::from).and_then(|c| {
                    let lock = acquire().map_err(cxlake::ingest::services::ServicesError::from)?;
                    cxlake::ingest::services::upsert(&lock, c, None, &source)
                });
                match upserted {
                    Ok(s) if json => println!("{}", serde_json::to_string(&s)?),
                    Ok(s) => println!(
                        "{source}: {} services added, {} updated, {} unchanged; the inventory holds {} (lake version {})",
                        s.added.len(),
                        s.updated.len(),
                        s.unchanged.len(),
                        s.services,
                        s.lake_version
                    ),
                    Err(cxlake::ingest::services::ServicesError::Invalid(problems)) => {
                        eprintln!("error: {source}: the inventory was not changed; {} problem(s):", problems.len());
                        for p in problems {
                            eprintln!("  {p}");
                        }
                        failed = true;
                    }
                    Err(e) => {
                        eprintln!("error: {source}: {e}");
                        failed = true;
                    }
                }
                continue;
            }
        };
        bar.finish_and_clear();
        match result {
            Ok(s) => {
                // Rows already stored count: a retry of a file with bad rows left is not a failure
                // while its good rows are in the lake.
                stored += s.rows_stored + s.duplicates_skipped;
                failed |= s.rows_quarantined > 0;
                if json {
                    println!("{}", serde_json::to_string(&s)?);
                } else if s.already_ingested {
                    println!("{}: already ingested (lake version {}); nothing to do", s.source, s.lake_version);
                } else {
                    println!(
                        "{}: read {} rows, stored {}, quarantined {}, duplicates skipped {} ({} files, lake version {})",
                        s.source, s.rows_read, s.rows_stored, s.rows_quarantined, s.duplicates_skipped, s.files_written, s.lake_version
                    );
                    if !s.duplicate_lines.is_empty() {
                        println!("  already stored (skipped): lines {}", s.duplicate_lines);
                    }
                    if s.quarantine_already_recorded > 0 {
                        println!("  {} of the quarantined rows were already in the quarantine table (not recorded again)", s.quarantine_already_recorded);
                    }
                    for (column, r) in &s.quarantined_by_column {
                        println!("  {column}: {} rows (e.g. {})", r.rows, r.example);
                    }
                    if let Some(q) = &s.quarantine_file {
                        println!("  quarantined rows are in {}", lake.locate(q));
                    }
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    }
    if failed && (stored == 0 || table == IngestTable::Services) {
        bail!("nothing could be stored");
    }
    Ok(())
}

fn kda(csv: &std::path::Path, outcome: &str, drivers: &[String], json: bool) -> Result<()> {
    let mut kda = cxlake::analytics::drivers::Kda::new(outcome, drivers)?;
    let counts = cxlake::ingest::numeric_csv::for_each_complete_row(csv, &kda.columns(), |row| kda.add(row))?;
    let report = kda.finish(&csv.display().to_string(), counts.read)?;
    let imp = &report.importance;
    let js = cxlake::stats::Importance::shares(&imp.johnson).unwrap_or_else(|| vec![0.0; drivers.len()]);
    let ss = cxlake::stats::Importance::shares(&imp.shapley).unwrap_or_else(|| vec![0.0; drivers.len()]);
    if json {
        let rows: Vec<serde_json::Value> = (0..drivers.len())
            .map(|j| {
                serde_json::json!({
                    "name": drivers[j], "r": imp.ols.r[j], "beta": imp.ols.beta[j], "first": imp.first[j],
                    "last": imp.last[j], "pratt": imp.pratt[j], "johnson": imp.johnson[j], "johnson_share": js[j],
                    "shapley": imp.shapley[j], "shapley_share": ss[j], "vif": imp.ols.vif[j],
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "outcome": outcome, "n": report.n, "rows_read": report.rows_read,
                "r2": imp.ols.r2, "adj_r2": imp.ols.adj_r2, "drivers": rows,
            })
        );
        return Ok(());
    }
    println!(
        "{outcome} on {} drivers: n = {} of {} rows (complete cases), R2 = {:.4}, adjusted R2 = {}",
        drivers.len(),
        report.n,
        report.rows_read,
        imp.ols.r2,
        imp.ols.adj_r2.map_or("n/a".to_string(), |a| format!("{a:.4}"))
    );
    println!(
        "{:<16} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6}",
        "driver", "r", "beta", "first", "last", "pratt", "johnson", "share", "shapley", "share", "vif"
    );
    for j in 0..drivers.len() {
        println!(
            "{:<16} {:>8.4} {:>8.4} {:>8.4} {:>8.4} {:>8.4} {:>8.4} {:>8.4} {:>8.4} {:>8.4} {:>6.2}",
            drivers[j], imp.ols.r[j], imp.ols.beta[j], imp.first[j], imp.last[j], imp.pratt[j], imp.johnson[j], js[j], imp.shapley[j], ss[j], imp.ols.vif[j]
        );
    }
    Ok(())
}

/// `--format` of `ingest`: the names `Format` takes (listed in `--help`).
fn format_parser() -> impl clap::builder::TypedValueParser<Value = cxlake::ingest::formats::Format> {
    use clap::builder::TypedValueParser;
    use cxlake::ingest::formats::Format;
    clap::builder::PossibleValuesParser::new(Format::ALL.map(Format::name)).map(|name| name.parse::<Format>().expect("a listed name"))
}
