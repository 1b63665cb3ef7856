//! The API: the GraphQL schema (async-graphql) and the HTTP routes (poem). Holds no analytics
//! logic: handlers decode, call `cx_analytics`, encode.

pub mod admin;
pub mod auth;
pub mod browser;
pub mod cache;
pub mod connection;
pub mod delivery;
pub mod download;
pub mod export;
pub mod flight;
pub mod keys;
pub mod limits;
pub mod memo;
pub mod metrics;
pub mod mutation;
pub mod pg;
pub mod query;
pub mod raw;
pub mod report;
pub mod server;
pub mod services;
pub mod sql_access;
pub mod sql_tables;
pub mod state;
pub mod tapped;
pub mod telemetry;
pub mod types;
pub mod upload;

use async_graphql::{EmptySubscription, Schema};
use cx_analytics::Analytics;
use cx_ingest::submit::Submitter;
use std::sync::Arc;

/// Every query field: responses and scores (`query.rs`), tapped-indicator importance
/// (`tapped.rs`), the inventory (`services.rs`),
/// telemetry, indicators and the HISP report (`telemetry.rs`).
#[derive(async_graphql::MergedObject, Default)]
#[graphql(name = "QueryRoot")]
pub struct Query(query::QueryRoot, tapped::TappedQueryRoot, services::ServicesQuery, telemetry::TelemetryQuery);

/// Every mutation: submissions and inventory edits.
#[derive(async_graphql::MergedObject, Default)]
#[graphql(name = "MutationRoot")]
pub struct Mutation(mutation::MutationRoot, services::ServicesMutation);

pub type CxSchema = Schema<Query, Mutation, EmptySubscription>;

/// The schema without data, for printing the SDL, with the limits of `limits.rs`.
fn builder() -> async_graphql::SchemaBuilder<Query, Mutation, EmptySubscription> {
    Schema::build(Query::default(), Mutation::default(), EmptySubscription)
        .limit_complexity(limits::MAX_COMPLEXITY)
        .limit_recursive_depth(limits::MAX_RECURSION)
        .limit_directives(limits::MAX_DIRECTIVES)
}

/// Makes a request ready to execute: its document parsed and within the limits of
/// `limits::check_document` (a document that does not parse is left to the executor, which
/// reports it), with a fresh per-request memo (`memo.rs`). Every way a caller's document
/// reaches the schema (HTTP, `cxlake query`) goes through here.
pub fn prepare(request: &mut async_graphql::Request) -> Result<(), async_graphql::ServerError> {
    if let Ok(doc) = request.parsed_query() {
        limits::check_document(doc)?;
    }
    request.data.insert(Arc::new(memo::Memo::default()));
    Ok(())
}

/// A read-only schema serving `analytics` (submissions are refused).
pub fn schema(analytics: Analytics) -> CxSchema {
    builder().data(loader(&analytics)).data(analytics).finish()
}

/// Batches the scores of listed services (`services { scores }`).
fn loader(analytics: &Analytics) -> async_graphql::dataloader::DataLoader<services::ServiceScoresLoader> {
    async_graphql::dataloader::DataLoader::new(services::ServiceScoresLoader(analytics.clone()), tokio::spawn)
}

/// The schema serving `analytics` and accepting submissions through `submitter`.
pub fn schema_with_submit(analytics: Analytics, submitter: Arc<Submitter>) -> CxSchema {
    builder().data(loader(&analytics)).data(analytics).data(submitter).finish()
}

/// The schema in GraphQL SDL: what `schema.graphql` at the repository root must hold.
pub fn sdl() -> String {
    builder().finish().sdl()
}
