//! Limits on what one GraphQL document may ask for, so no query can make the server do
//! unbounded work: complexity and recursion (async-graphql's own checks), the depth of data
//! selections and the number of aliased fields, counted over the operations and fragments of
//! the parsed document (each alias can repeat a whole expensive field).
//!
//! The depth limit leaves out the introspection fields `__schema` and `__type`: the standard
//! introspection query of every GraphQL client and IDE (graphql-js `getIntrospectionQuery`,
//! graphql-core `get_introspection_query`) nests `ofType` nine levels deep, about 13 in all,
//! and its work is bounded by the schema, not by the lake.

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{ExecutableDocument, FragmentDefinition, Selection, SelectionSet};
use async_graphql::{Name, Positioned};
use std::collections::HashMap;
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

type Fragments = HashMap<Name, Positioned<FragmentDefinition>>;

/// Depth of a selection set as async-graphql counts it (fields along a path, fragments
/// inlined). Each fragment's depth is computed once (`memo`), so a document of fragments that
/// spread each other many times costs its size, not the product of its spreads; a fragment on
/// its own path counts 0 (a cycle, which validation refuses).
fn depth<'a>(set: &'a SelectionSet, fragments: &'a Fragments, memo: &mut HashMap<&'a str, Option<usize>>, root: bool) -> usize {
    set.items
        .iter()
        .map(|s| match &s.node {
            Selection::Field(f) => {
                let name = f.node.name.node.as_str();
                if root && (name == "__schema" || name == "__type") {
                    0
                } else {
                    1 + depth(&f.node.selection_set.node, fragments, memo, false)
                }
            }
            Selection::InlineFragment(f) => depth(&f.node.selection_set.node, fragments, memo, root),
            Selection::FragmentSpread(spread) => {
                let name = spread.node.fragment_name.node.as_str();
                // Introspection exemptions hold only at the root: memoize fragments used below it.
                match (memo.get(name), fragments.get(name)) {
                    (Some(Some(d)), _) if !root => *d,
                    (Some(None), _) | (_, None) => 0,
                    (_, Some(def)) => {
                        memo.insert(name, None);
                        let d = depth(&def.node.selection_set.node, fragments, memo, root);
                        if root {
                            memo.remove(name);
                        } else {
                            memo.insert(name, Some(d));
                        }
                        d
                    }
                }
            }
        })
        .max()
        .unwrap_or(0)
}

/// The deepest data selection of any operation of a document (introspection left out).
pub fn data_depth(doc: &ExecutableDocument) -> usize {
    doc.operations.iter().map(|(_, op)| depth(&op.node.selection_set.node, &doc.fragments, &mut HashMap::new(), true)).max().unwrap_or(0)
}

/// Refuses documents with more than `MAX_ALIASES` aliases or data selections nested deeper
/// than `MAX_DEPTH`.
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
        let d = data_depth(&doc);
        if d > MAX_DEPTH {
            return Err(ServerError::new(format!("the query is nested {d} fields deep; at most {MAX_DEPTH} are allowed"), None));
        }
        Ok(doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_follows_fragments_and_leaves_out_introspection() {
        let doc = async_graphql::parser::parse_query("{ a { b { c } } ...F } fragment F on QueryRoot { d { e { f { g } } } }").unwrap();
        assert_eq!(data_depth(&doc), 4);
        let doc = async_graphql::parser::parse_query("{ __schema { types { fields { type { ofType { ofType { name } } } } } } __typename }").unwrap();
        assert_eq!(data_depth(&doc), 1);
        // A cycle (invalid, refused by validation) does not loop.
        let doc = async_graphql::parser::parse_query("{ ...A } fragment A on QueryRoot { x { ...A } }").unwrap();
        assert_eq!(data_depth(&doc), 1);
    }

    #[test]
    fn aliases_are_counted_in_operations_and_fragments() {
        let doc = async_graphql::parser::parse_query("{ a: scores { n } b: scores { m: n } ...F } fragment F on QueryRoot { c: services { id } }").unwrap();
        assert_eq!(alias_count(&doc), 4);
    }
}
