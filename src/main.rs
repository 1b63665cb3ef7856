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

#[derive(Subcommand)]
enum Command {
    /// Serve the GraphQL API (GraphiQL at /).
    Serve {
        /// Lake root directory.
        #[arg(long, env = "CXLAKE_LAKE", default_value = "data/sample")]
        lake: PathBuf,
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
    },
    /// Run a GraphQL query file against a lake without a server and print the JSON response.
    Query {
        #[arg(long, env = "CXLAKE_LAKE", default_value = "data/sample")]
        lake: PathBuf,
        /// File holding the GraphQL query (`-` for standard input).
        file: PathBuf,
        /// Variables as a JSON object.
        #[arg(long)]
        variables: Option<String>,
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
        Command::Serve { lake, listen } => serve(open(&lake)?, listen),
        Command::Generate { out, rows, seed, first_fiscal_year, fiscal_years, services } => {
            if lake_exists(&out) {
                bail!("'{}' already holds a lake; choose another --out or remove it", out.display());
            }
            let cfg = GenerateConfig { out, rows, seed, first_fiscal_year, fiscal_years, services, ..Default::default() };
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
        Command::Query { lake, file, variables } => query(open(&lake)?, file, variables),
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
    println!("{}", serde_json::to_string(&response)?);
    if failed {
        std::process::exit(1);
    }
    Ok(())
}
