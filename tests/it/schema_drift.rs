//! `schema.graphql` at the repository root is generated from the code.

#[test]
fn schema_graphql_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(committed == cxlake::api::sdl(), "schema.graphql is out of date: regenerate it with `cargo run -- schema > schema.graphql`");
}
