//! The API: the GraphQL schema (async-graphql) and the HTTP routes (poem). Holds no analytics
//! logic: handlers decode, call `crate::analytics`, encode.

pub mod query;
pub mod server;
pub mod types;

use crate::analytics::Analytics;
use async_graphql::{EmptyMutation, EmptySubscription, Schema};

pub type CxSchema = Schema<query::QueryRoot, EmptyMutation, EmptySubscription>;

/// The schema without data, for printing the SDL.
fn builder() -> async_graphql::SchemaBuilder<query::QueryRoot, EmptyMutation, EmptySubscription> {
    Schema::build(query::QueryRoot, EmptyMutation, EmptySubscription)
}

/// The schema serving `analytics`.
pub fn schema(analytics: Analytics) -> CxSchema {
    builder().data(analytics).finish()
}

/// The schema in GraphQL SDL: what `schema.graphql` at the repository root must hold.
pub fn sdl() -> String {
    builder().finish().sdl()
}
