//! Limits on what one GraphQL document may ask for, so no query can make the server do
//! unbounded work: complexity and recursion (async-graphql's own checks), the depth of data
//! selections and the number of aliased fields, counted over the operations of the parsed
//! document with every fragment spread expanded (each alias, and each spread of a fragment
//! holding aliases, can repeat a whole expensive field).
//!
//! The depth limit leaves out the introspection fields `__schema` and `__type`: the standard
//! introspection query of every GraphQL client and IDE (graphql-js `getIntrospectionQuery`,
//! graphql-core `get_introspection_query`) nests `ofType` nine levels deep, about 13 in all,
//! and its work is bounded by the schema, not by the lake.

use async_graphql::parser::types::{ExecutableDocument, FragmentDefinition, Selection, SelectionSet};
use async_graphql::ServerError;
use async_graphql::{Name, Positioned};
use std::collections::HashMap;

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

/// Aliased fields as executed: a fragment counts each time it is spread (its own count is
/// computed once, so the walk costs the document's size however often fragments spread each
/// other); a fragment on its own path counts 0 (a cycle, which validation refuses).
fn aliases<'a>(set: &'a SelectionSet, fragments: &'a Fragments, memo: &mut HashMap<&'a str, Option<usize>>) -> usize {
    set.items
        .iter()
        .map(|s| match &s.node {
            Selection::Field(f) => usize::from(f.node.alias.is_some()).saturating_add(aliases(&f.node.selection_set.node, fragments, memo)),
            Selection::InlineFragment(f) => aliases(&f.node.selection_set.node, fragments, memo),
            Selection::FragmentSpread(spread) => {
                let name = spread.node.fragment_name.node.as_str();
                match (memo.get(name), fragments.get(name)) {
                    (Some(Some(n)), _) => *n,
                    (Some(None), _) | (_, None) => 0,
                    (None, Some(def)) => {
                        memo.insert(name, None);
                        let n = aliases(&def.node.selection_set.node, fragments, memo);
                        memo.insert(name, Some(n));
                        n
                    }
                }
            }
        })
        .fold(0, usize::saturating_add)
}

/// Counts the aliases of a document's operations with every fragment spread expanded (each
/// alias can repeat a whole expensive field, and so can each spread of a fragment).
pub fn alias_count(doc: &ExecutableDocument) -> usize {
    let mut memo = HashMap::new();
    doc.operations.iter().map(|(_, op)| aliases(&op.node.selection_set.node, &doc.fragments, &mut memo)).fold(0, usize::saturating_add)
}

type Fragments = HashMap<Name, Positioned<FragmentDefinition>>;

/// Depth of data selections and of introspection selections (`__schema`, `__type` at the
/// root, counted whole), as async-graphql counts depth: fields along a path, fragments inlined.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Depths {
    pub data: usize,
    pub introspection: usize,
}

/// Introspection selections may nest this deep: the standard query needs 13 (`ofType` nine
/// levels under `__schema { types { fields { type`); more is no client's and could make the
/// answer grow without bound (each level can list every type again).
pub const MAX_INTROSPECTION_DEPTH: usize = 16;

/// The depths of a selection set. Each fragment's depths are computed once per context (root
/// or not: `memo`), so fragments that spread each other many times cost the document's size,
/// not the product of its spreads; a fragment on its own path counts 0 (a cycle, which
/// validation refuses).
fn depths<'a>(set: &'a SelectionSet, fragments: &'a Fragments, memo: &mut HashMap<(&'a str, bool), Option<Depths>>, root: bool) -> Depths {
    let mut out = Depths::default();
    for s in &set.items {
        let d = match &s.node {
            Selection::Field(f) => {
                let name = f.node.name.node.as_str();
                let inner = depths(&f.node.selection_set.node, fragments, memo, false);
                if root && (name == "__schema" || name == "__type") {
                    Depths { data: 0, introspection: 1 + inner.data.max(inner.introspection) }
                } else {
                    Depths { data: 1 + inner.data, introspection: inner.introspection }
                }
            }
            Selection::InlineFragment(f) => depths(&f.node.selection_set.node, fragments, memo, root),
            Selection::FragmentSpread(spread) => {
                let name = spread.node.fragment_name.node.as_str();
                match (memo.get(&(name, root)), fragments.get(name)) {
                    (Some(Some(d)), _) => *d,
                    (Some(None), _) | (_, None) => Depths::default(),
                    (None, Some(def)) => {
                        memo.insert((name, root), None);
                        let d = depths(&def.node.selection_set.node, fragments, memo, root);
                        memo.insert((name, root), Some(d));
                        d
                    }
                }
            }
        };
        out.data = out.data.max(d.data);
        out.introspection = out.introspection.max(d.introspection);
    }
    out
}

/// The deepest data and introspection selections of any operation of a document.
pub fn document_depths(doc: &ExecutableDocument) -> Depths {
    let mut memo = HashMap::new();
    doc.operations.iter().fold(Depths::default(), |acc, (_, op)| {
        let d = depths(&op.node.selection_set.node, &doc.fragments, &mut memo, true);
        Depths { data: acc.data.max(d.data), introspection: acc.introspection.max(d.introspection) }
    })
}

/// Refuses documents with more than `MAX_ALIASES` aliases or data selections nested deeper
/// than `MAX_DEPTH` (introspection deeper than `MAX_INTROSPECTION_DEPTH`).
///
/// A check on the parsed document that `crate::prepare` runs before execution, not a schema
/// extension: any extension makes async-graphql resolve every field of every list item through
/// its extension chain (two boxed futures per field and extension), which was a third of the
/// time of a 9,000-row answer.
pub fn check_document(doc: &ExecutableDocument) -> Result<(), ServerError> {
    let n = alias_count(doc);
    if n > MAX_ALIASES {
        return Err(ServerError::new(format!("the query has {n} aliased fields; at most {MAX_ALIASES} are allowed"), None));
    }
    let d = document_depths(doc);
    if d.data > MAX_DEPTH {
        return Err(ServerError::new(format!("the query is nested {} fields deep; at most {MAX_DEPTH} are allowed", d.data), None));
    }
    if d.introspection > MAX_INTROSPECTION_DEPTH {
        return Err(ServerError::new(
            format!("the introspection is nested {} fields deep; at most {MAX_INTROSPECTION_DEPTH} are allowed", d.introspection),
            None,
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_follows_fragments_and_leaves_out_introspection() {
        let depth = |q: &str| document_depths(&async_graphql::parser::parse_query(q).unwrap());
        assert_eq!(depth("{ a { b { c } } ...F } fragment F on QueryRoot { d { e { f { g } } } }"), Depths { data: 4, introspection: 0 });
        assert_eq!(depth("{ __schema { types { fields { type { ofType { ofType { name } } } } } } __typename }"), Depths { data: 1, introspection: 7 });
        // Introspection nested through fragments is counted whole.
        let chain = "{ __schema { types { ...T1 } } } fragment T1 on __Type { fields { type { ...T2 } } } fragment T2 on __Type { ofType { ofType { name } } }";
        assert_eq!(depth(chain), Depths { data: 0, introspection: 7 });
        // A cycle (invalid, refused by validation) does not loop (unrolled once per context).
        assert_eq!(depth("{ ...A } fragment A on QueryRoot { x { ...A } }"), Depths { data: 2, introspection: 0 });
        // Fragments spreading the next one twice, 40 deep: computed once each (2^40 otherwise).
        let mut q = String::from("{ ...F0 } ");
        for i in 0..40 {
            q += &format!("fragment F{i} on QueryRoot {{ a{i}: x {{ ...F{} }} b{i}: x {{ ...F{} }} }} ", i + 1, i + 1);
        }
        q += "fragment F40 on QueryRoot { y }";
        assert_eq!(depth(&q), Depths { data: 41, introspection: 0 });
    }

    #[test]
    fn aliases_are_counted_in_operations_and_fragments() {
        let count = |q: &str| alias_count(&async_graphql::parser::parse_query(q).unwrap());
        assert_eq!(count("{ a: scores { n } b: scores { m: n } ...F } fragment F on QueryRoot { c: services { id } }"), 4);
        // Each spread of a fragment counts its aliases again (issue 18: 16 aliases spread 8
        // times ran 128 heavy fields past a limit of 16).
        assert_eq!(count("{ ...F ...F x { ...F } } fragment F on QueryRoot { a: scores { n } b: scores { n } }"), 6);
        assert_eq!(count("{ ...G ...G } fragment G on QueryRoot { ...F ...F } fragment F on QueryRoot { a: scores { n } }"), 4);
        // Fragments spreading the next one twice, 64 deep: 2^64 aliases as executed, counted
        // without overflow in time linear in the document.
        let mut q = String::from("{ ...F0 } ");
        for i in 0..64 {
            q += &format!("fragment F{i} on QueryRoot {{ ...F{} ...F{} }} ", i + 1, i + 1);
        }
        q += "fragment F64 on QueryRoot { a: scores { n } }";
        assert_eq!(count(&q), usize::MAX);
        // A cycle (invalid, refused by validation) does not loop.
        assert_eq!(count("{ ...A } fragment A on QueryRoot { a: x { ...A } }"), 1);
    }
}
