//! The API: the GraphQL schema (async-graphql) and the HTTP routes (poem). Holds no analytics
//! logic: handlers decode, call `crate::analytics`, encode.

pub mod cache;
pub mod download;
pub mod export;
pub mod metrics;
pub mod mutation;
pub mod query;
pub mod server;
pub mod types;

use crate::analytics::Analytics;
use crate::ingest::submit::Submitter;
use async_graphql::{EmptySubscription, Schema};
use std::sync::Arc;

pub type CxSchema = Schema<query::QueryRoot, mutation::MutationRoot, EmptySubscription>;

/// The schema without data, for printing the SDL.
fn builder() -> async_graphql::SchemaBuilder<query::QueryRoot, mutation::MutationRoot, EmptySubscription> {
    Schema::build(query::QueryRoot, mutation::MutationRoot, EmptySubscription)
}

/// A read-only schema serving `analytics` (submissions are refused).
pub fn schema(analytics: Analytics) -> CxSchema {
    builder().data(analytics).finish()
}

/// The schema serving `analytics` and accepting submissions through `submitter`.
pub fn schema_with_submit(analytics: Analytics, submitter: Arc<Submitter>) -> CxSchema {
    builder().data(analytics).data(submitter).finish()
}

/// The schema in GraphQL SDL: what `schema.graphql` at the repository root must hold.
pub fn sdl() -> String {
    builder().finish().sdl()
}
