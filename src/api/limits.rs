//! Limits on what one GraphQL document may ask for, so no query can make the server do
//! unbounded work: depth, complexity and recursion (async-graphql's own checks) and the number
//! of aliased fields, counted over the operations and fragments of the parsed document (each
//! alias can repeat a whole expensive field).

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ServerError, ServerResult, Variables};
use std::sync::Arc;

/// Nesting of selections a query may have (ours need at most 4).
pub const MAX_DEPTH: usize = 12;
/// Fields (each counting 1) a query may select in all.
pub const MAX_COMPLEXITY: usize = 1000;
/// Aliased fields a query may hold.
pub const MAX_ALIASES: usize = 16;
/// Recursion of the parser (fragments and lists in lists).
pub const MAX_RECURSION: usize = 32;
/// Directives on one field.
pub const MAX_DIRECTIVES: usize = 8;

fn aliases(set: &SelectionSet) -> usize {
    set.items
        .iter()
        .map(|s| match &s.node {
            Selection::Field(f) => usize::from(f.node.alias.is_some()) + aliases(&f.node.selection_set.node),
            Selection::InlineFragment(f) => aliases(&f.node.selection_set.node),
            Selection::FragmentSpread(_) => 0,
        })
        .sum()
}

/// Counts the aliases of a document (operations and fragments alike).
pub fn alias_count(doc: &ExecutableDocument) -> usize {
    doc.operations.iter().map(|(_, op)| aliases(&op.node.selection_set.node)).sum::<usize>()
        + doc.fragments.values().map(|f| aliases(&f.node.selection_set.node)).sum::<usize>()
}

/// Refuses documents with more than `MAX_ALIASES` aliases.
pub struct AliasLimit;

impl ExtensionFactory for AliasLimit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(AliasLimit)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for AliasLimit {
    async fn parse_query(&self, ctx: &ExtensionContext<'_>, query: &str, variables: &Variables, next: NextParseQuery<'_>) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        let n = alias_count(&doc);
        if n > MAX_ALIASES {
            return Err(ServerError::new(format!("the query has {n} aliased fields; at most {MAX_ALIASES} are allowed"), None));
        }
        Ok(doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_are_counted_in_operations_and_fragments() {
        let doc = async_graphql::parser::parse_query("{ a: scores { n } b: scores { m: n } ...F } fragment F on QueryRoot { c: services { id } }").unwrap();
        assert_eq!(alias_count(&doc), 4);
    }
}
