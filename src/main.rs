//! The `cxlake` command line: thin wrappers over the library.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use cxlake::analytics::Analytics;
use cxlake::generate::{generate, lake_exists, GenerateConfig};
use cxlake::store::Lake;
use indicatif::{ProgressBar, ProgressStyle};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Parser)]
#[command(name = "cxlake", version, about = "Analytical GraphQL over a lake of federal CX survey responses (OMB A-11 Section 280)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
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

#[derive(Subcommand)]
enum Command {
    /// Serve the GraphQL API (GraphiQL at /).
    Serve {
        /// Lake root directory.
        #[arg(long, env = "CXLAKE_LAKE", default_value = "data/sample")]
        lake: PathBuf,
        #[command(flatten)]
        cells: Cells,
        /// Address to listen on.
        #[arg(long, env = "CXLAKE_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
    },
    /// Write a synthetic lake (deterministic for a seed) with its planted truth in truth.json.
    Generate {
        /// Directory to create the lake in (must not hold a lake).
        #[arg(long)]
        out: PathBuf,
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
        #[arg(long, env = "CXLAKE_LAKE", default_value = "data/sample")]
        lake: PathBuf,
        #[command(flatten)]
        cells: Cells,
        /// File holding the GraphQL query (`-` for standard input).
        file: PathBuf,
        /// Variables as a JSON object.
        #[arg(long)]
        variables: Option<String>,
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
    /// Print the GraphQL schema (SDL).
    Schema,
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        // Opening reads the dimension tables with polars, which must not run on an async worker.
        Command::Serve { lake, cells, listen } => serve(open(&lake)?.with_suppression(cells.suppression()), listen),
        Command::Generate { out, rows, seed, first_fiscal_year, fiscal_years, services, no_drops } => {
            if lake_exists(&out) {
                bail!("'{}' already holds a lake; choose another --out or remove it", out.display());
            }
            let cfg = GenerateConfig {
                out,
                rows,
                seed,
                first_fiscal_year,
                fiscal_years,
                services,
                drops: !no_drops,
                ..Default::default()
            };
            let bar = ProgressBar::new(rows).with_style(
                ProgressStyle::with_template("{bar:40} {human_pos}/{human_len} rows {per_sec} eta {eta}")
                    .expect("valid template"),
            );
            let start = Instant::now();
            let report = generate(&cfg, &|n| bar.inc(n))?;
            bar.finish_and_clear();
            let secs = start.elapsed().as_secs_f64();
            eprintln!(
                "wrote {} rows in {} files ({:.1} MB) to {} in {:.2}s ({:.2}M rows/s); truth in {}",
                report.rows,
                report.files,
                report.bytes as f64 / 1e6,
                cfg.out.display(),
                secs,
                report.rows as f64 / secs / 1e6,
                report.truth.display()
            );
            Ok(())
        }
        Command::Query { lake, cells, file, variables } => {
            query(open(&lake)?.with_suppression(cells.suppression()), file, variables)
        }
        Command::Kda { csv, outcome, drivers, json } => kda(&csv, &outcome, &drivers, json),
        Command::Schema => {
            print!("{}", cxlake::api::sdl());
            Ok(())
        }
    }
}

fn open(lake: &PathBuf) -> Result<Analytics> {
    let lake = Lake::open(lake)?;
    Ok(Analytics::open(lake)?)
}

#[tokio::main]
async fn serve(analytics: Analytics, listen: SocketAddr) -> Result<()> {
    let shown = analytics.lake.root().display().to_string();
    let app = cxlake::api::server::routes(cxlake::api::schema(analytics), shown.clone());
    tracing::info!(lake = %shown, "serving GraphiQL on http://{listen}/");
    poem::Server::new(poem::listener::TcpListener::bind(listen))
        .run_with_graceful_shutdown(app, async { tokio::signal::ctrl_c().await.ok(); }, None)
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
    let mut request = async_graphql::Request::new(text);
    if let Some(v) = variables {
        let json: serde_json::Value = serde_json::from_str(&v).context("--variables is not valid JSON")?;
        request = request.variables(async_graphql::Variables::from_json(json));
    }
    let schema = cxlake::api::schema(analytics);
    let response = schema.execute(request).await;
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

fn kda(csv: &std::path::Path, outcome: &str, drivers: &[String], json: bool) -> Result<()> {
    let report = cxlake::analytics::drivers::kda_csv(csv, outcome, drivers)?;
    let imp = &report.importance;
    let js = cxlake::stats::Importance::shares(&imp.johnson).unwrap_or_else(|| vec![0.0; drivers.len()]);
    let ss = cxlake::stats::Importance::shares(&imp.shapley).unwrap_or_else(|| vec![0.0; drivers.len()]);
    if json {
        let rows: Vec<serde_json::Value> = (0..drivers.len())
            .map(|j| {
                serde_json::json!({
                    "name": drivers[j], "r": imp.ols.r[j], "beta": imp.ols.beta[j], "first": imp.first[j],
                    "last": imp.last[j], "pratt": imp.pratt[j], "johnson": imp.johnson[j], "johnson_share": js[j],
                    "shapley": imp.shapley[j], "shapley_share": ss[j],
                })
            })
            .collect();
        println!("{}", serde_json::json!({ "n": report.n, "r2": imp.ols.r2, "drivers": rows }));
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
    println!("{:<16} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6}", "driver", "r", "beta", "first", "last", "pratt", "johnson", "share", "shapley", "share", "vif");
    for j in 0..drivers.len() {
        println!(
            "{:<16} {:>8.4} {:>8.4} {:>8.4} {:>8.4} {:>8.4} {:>8.4} {:>8.4} {:>8.4} {:>8.4} {:>6.2}",
            drivers[j], imp.ols.r[j], imp.ols.beta[j], imp.first[j], imp.last[j], imp.pratt[j], imp.johnson[j], js[j],
            imp.shapley[j], ss[j], imp.ols.vif[j]
        );
    }
    Ok(())
}
