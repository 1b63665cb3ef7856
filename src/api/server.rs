//! HTTP routes: GraphiQL at `/`, GraphQL at `/graphql` (POST, and GET for simple tools),
//! `/health`, `/schema.graphql`.

use super::CxSchema;
use async_graphql::http::GraphiQLSource;
use async_graphql_poem::GraphQL;
use poem::web::{Html, Json};
use poem::{get, handler, EndpointExt, IntoEndpoint, Route};
use std::sync::Arc;

#[handler]
fn graphiql() -> Html<String> {
    Html(GraphiQLSource::build().endpoint("/graphql").title("cxlake").finish())
}

/// What `/health` reports.
#[derive(Clone, serde::Serialize)]
struct Health {
    status: &'static str,
    lake: String,
    version: &'static str,
}

/// The application's routes over `schema`.
pub fn routes(schema: CxSchema, lake: String) -> impl IntoEndpoint {
    let health = Arc::new(Health { status: "ok", lake, version: env!("CARGO_PKG_VERSION") });
    let sdl = Arc::new(schema.sdl());
    Route::new()
        .at("/", get(graphiql))
        .at("/graphql", get(GraphQL::new(schema.clone())).post(GraphQL::new(schema)))
        .at("/health", get(poem::endpoint::make_sync(move |_| Json((*health).clone()))))
        .at(
            "/schema.graphql",
            get(poem::endpoint::make_sync(move |_| {
                poem::Response::builder().content_type("text/plain; charset=utf-8").body((*sdl).clone())
            })),
        )
        .with(poem::middleware::Tracing)
}
