//! `/metrics` in the Prometheus text format: requests by route and status, GraphQL latency by
//! operation, cache hits and misses, submissions accepted and refused, responses the submit log
//! committed to the lake, rows stored and quarantined by uploads, the lake version, and the data files, rows and bytes queries scanned
//! (counted per lake in `cx_lake::scanned`, passed in when scraped).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    /// The top-level fields of the query (`scores`, `driverImportance,services`, ...).
    pub operation: String,
    /// json, arrow, csv or parquet.
    pub format: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServedLabels {
    /// rollup, raw or mixed.
    pub path: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SqlLabels {
    /// postgres or flight_sql.
    pub protocol: String,
    /// ok, error (a statement that failed), denied (a table the role may not read, or a key
    /// that is not valid).
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProtocolLabels {
    pub protocol: String,
}

/// A SQL protocol's label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Postgres,
    FlightSql,
}

impl Protocol {
    pub fn label(self) -> &'static str {
        match self {
            Protocol::Postgres => "postgres",
            Protocol::FlightSql => "flight_sql",
        }
    }
}

pub struct Metrics {
    registry: Registry,
    /// SQL statements by protocol and outcome, connections (sign-ins) and rows sent.
    pub sql_statements: Family<SqlLabels, Counter>,
    pub sql_connections: Family<ProtocolLabels, Counter>,
    pub sql_rows: Family<ProtocolLabels, Counter>,
    pub sql_latency: Family<ProtocolLabels, Histogram>,
    /// Computations that can be served by rollups (scores, benchmarks, trends, alerts, driver
    /// and tapped importance) by what served them, and the rollup rows and raw data files they
    /// read.
    pub served: Family<ServedLabels, Counter>,
    pub rollup_rows: Counter,
    pub raw_files: Counter,
    pub requests: Family<RouteLabels, Counter>,
    pub latency: Family<OperationLabels, Histogram>,
    pub cache_hits: Counter,
    pub cache_misses: Counter,
    pub submitted: Counter,
    pub submit_refused: Counter,
    pub committed: Gauge,
    /// Acknowledged submits (log records) not yet in the lake.
    pub submit_pending: Gauge,
    /// Seconds the oldest of them has waited (0 when none waits).
    pub submit_lag: Gauge<f64, std::sync::atomic::AtomicU64>,
    pub lake_version: Gauge,
    /// Rows stored and quarantined by uploads (`POST /v1/ingest`).
    pub ingested: Counter,
    pub quarantined: Counter,
    /// Files, rows and bytes scanned; the lock keeps concurrent scrapes from adding twice.
    scanned: std::sync::Mutex<[Counter; 3]>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("cxlake");
        let requests = Family::<RouteLabels, Counter>::default();
        // 0.5 ms to ~33 s.
        let latency = Family::<OperationLabels, Histogram>::new_with_constructor(|| Histogram::new(exponential_buckets(0.0005, 2.0, 17)));
        let (cache_hits, cache_misses, submitted, submit_refused) = (Counter::default(), Counter::default(), Counter::default(), Counter::default());
        let (committed, lake_version) = (Gauge::default(), Gauge::default());
        let (submit_pending, submit_lag) = (Gauge::default(), Gauge::<f64, std::sync::atomic::AtomicU64>::default());
        registry.register("http_requests", "HTTP requests by route and status", requests.clone());
        registry.register("graphql_duration_seconds", "Time to answer a GraphQL request, by operation and format", latency.clone());
        registry.register("cache_hits", "GraphQL results served from the cache", cache_hits.clone());
        registry.register("cache_misses", "Cacheable GraphQL results computed afresh", cache_misses.clone());
        registry.register("submitted_responses", "Responses acknowledged by the submit API", submitted.clone());
        registry.register("submit_refused_responses", "Responses in refused submit requests", submit_refused.clone());
        registry.register("submit_committed_responses", "Submitted responses this process moved into the lake", committed.clone());
        registry.register("submit_log_pending_records", "Acknowledged submits (log records) not yet moved into the lake", submit_pending.clone());
        registry.register(
            "submit_log_lag_seconds",
            "How long the oldest acknowledged submit not yet in the lake has waited (0 when none waits)",
            submit_lag.clone(),
        );
        registry.register("lake_version", "The lake version (number of its last commit)", lake_version.clone());
        let (ingested, quarantined) = (Counter::default(), Counter::default());
        registry.register("ingested_rows", "Rows stored by uploads (POST /v1/ingest)", ingested.clone());
        registry.register("quarantined_rows", "Rows of uploads quarantined (POST /v1/ingest)", quarantined.clone());
        let scanned: [Counter; 3] = Default::default();
        registry.register("scanned_files", "Data files handed to query scans (after partition pruning)", scanned[0].clone());
        registry.register("scanned_rows", "Rows in the data files handed to query scans", scanned[1].clone());
        registry.register("scanned_bytes", "Bytes of the data files handed to query scans", scanned[2].clone());
        let scanned = std::sync::Mutex::new(scanned);
        let (served, rollup_rows, raw_files) = (Family::<ServedLabels, Counter>::default(), Counter::default(), Counter::default());
        registry.register(
            "score_computations",
            "Computations rollups can serve (scores, benchmarks, trends, alerts, driver and tapped importance) by what served them: rollup, raw or mixed",
            served.clone(),
        );
        registry.register("rollup_rows_read", "Rollup rows score computations read", rollup_rows.clone());
        registry.register("raw_files_read", "Data files whose raw rows score computations read", raw_files.clone());
        let sql_statements = Family::<SqlLabels, Counter>::default();
        let (sql_connections, sql_rows) = (Family::<ProtocolLabels, Counter>::default(), Family::<ProtocolLabels, Counter>::default());
        let sql_latency = Family::<ProtocolLabels, Histogram>::new_with_constructor(|| Histogram::new(exponential_buckets(0.0005, 2.0, 17)));
        registry.register("sql_statements", "SQL statements by protocol (postgres, flight_sql) and outcome (ok, error, denied)", sql_statements.clone());
        registry.register("sql_connections", "SQL sessions signed in, by protocol", sql_connections.clone());
        registry.register("sql_rows", "Rows of SQL answers, by protocol", sql_rows.clone());
        registry.register("sql_duration_seconds", "Time to answer a SQL statement, by protocol", sql_latency.clone());
        Metrics {
            registry,
            sql_statements,
            sql_connections,
            sql_rows,
            sql_latency,
            served,
            rollup_rows,
            raw_files,
            requests,
            latency,
            cache_hits,
            cache_misses,
            submitted,
            submit_refused,
            committed,
            submit_pending,
            submit_lag,
            lake_version,
            ingested,
            quarantined,
            scanned,
        }
    }
}

impl Metrics {
    /// Counts the score computations of one request.
    pub fn record_served(&self, entries: &[cx_analytics::rollups::Served]) {
        for s in entries {
            if s.path() != "none" {
                self.served.get_or_create(&ServedLabels { path: s.path().to_string() }).inc();
            }
            self.rollup_rows.inc_by(s.rollup_rows);
            self.raw_files.inc_by(s.raw_files as u64);
        }
    }

    /// Counts one SQL statement: its outcome, its rows and how long it took.
    pub fn record_sql(&self, protocol: Protocol, outcome: &str, rows: usize, seconds: f64) {
        let p = ProtocolLabels { protocol: protocol.label().into() };
        self.sql_statements.get_or_create(&SqlLabels { protocol: p.protocol.clone(), outcome: outcome.into() }).inc();
        self.sql_rows.get_or_create(&p).inc_by(rows as u64);
        self.sql_latency.get_or_create(&p).observe(seconds);
    }

    /// Counts a sign-in, or (`denied`) a refused one as a denied statement.
    pub fn record_sign_in(&self, protocol: Protocol, denied: bool) {
        if denied {
            self.sql_statements.get_or_create(&SqlLabels { protocol: protocol.label().into(), outcome: "denied".into() }).inc();
        } else {
            self.sql_connections.get_or_create(&ProtocolLabels { protocol: protocol.label().into() }).inc();
        }
    }

    /// The text exposition.
    pub fn encode(&self, t: cx_lake::scanned::Scanned) -> String {
        {
            let counters = self.scanned.lock().expect("scan counters");
            for (c, total) in counters.iter().zip([t.files, t.rows, t.bytes]) {
                c.inc_by(total.saturating_sub(c.get()));
            }
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

/// A label for the operation of a query: its top-level field names, sorted and joined.
pub fn operation_of(doc: &async_graphql::parser::types::ExecutableDocument) -> String {
    use async_graphql::parser::types::Selection;
    let mut names: Vec<String> = doc
        .operations
        .iter()
        .flat_map(|(_, op)| op.node.selection_set.node.items.iter())
        .filter_map(|s| match &s.node {
            Selection::Field(f) => Some(f.node.name.node.to_string()),
            _ => None,
        })
        .collect();
    names.sort();
    names.dedup();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_labelled_by_their_fields() {
        let label = |q: &str| operation_of(&async_graphql::parser::parse_query(q).unwrap());
        assert_eq!(label("{ services { serviceId } scores { n } }"), "scores,services");
        assert_eq!(label("mutation { submitResponses(responses: []) { accepted } }"), "submitResponses");
        let m = Metrics::default();
        m.cache_hits.inc();
        m.requests.get_or_create(&RouteLabels { route: "/graphql".into(), status: 200 }).inc();
        let text = m.encode(Default::default());
        assert!(text.contains("cxlake_cache_hits_total 1"), "{text}");
        assert!(text.contains("cxlake_http_requests_total{route=\"/graphql\",status=\"200\"} 1"), "{text}");
    }
}
