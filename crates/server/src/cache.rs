//! The result cache: a successful read-only query's encoded response, keyed by the parsed
//! document (its canonical form: every name, argument and value as parsed, so layout, commas
//! and comments do not matter and the text inside a string literal does), its variables and
//! operation, the requested table format, the caller's role and the lake version, so a
//! repeated dashboard query does not rescan the lake and any commit (ingest, submit flush,
//! compaction) changes the version and with it every key. Bounded in entries and bytes (LRU).

use super::download::TableFormat;
use async_graphql::parser::types::{
    Directive, DocumentOperations, ExecutableDocument, Field, FragmentDefinition, FragmentSpread, InlineFragment, OperationDefinition, OperationType,
    Selection, SelectionSet, TypeCondition, VariableDefinition,
};
use async_graphql::parser::Positioned;
use async_graphql::Name;
use bytes::Bytes;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// An encoded response.
#[derive(Clone)]
pub struct Cached {
    pub content_type: &'static str,
    pub disposition: Option<String>,
    /// Extra headers (a page's total count and truncation flag on table downloads).
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

pub struct QueryCache {
    entries: Mutex<(lru::LruCache<[u8; 32], Cached>, usize)>,
    max_bytes: usize,
    pub hits: AtomicU64,
    pub misses: AtomicU64,
}

/// Whether all the operations of a document are read-only (no mutation or subscription): the
/// only ones cached.
pub fn is_read_only(doc: &ExecutableDocument) -> bool {
    doc.operations.iter().all(|(_, op)| op.node.ty == OperationType::Query)
}

/// The cache key: the document's canonical form, variables (JSON), operation, format, role,
/// version.
pub fn key(
    doc: &ExecutableDocument,
    variables: &serde_json::Value,
    operation: Option<&str>,
    format: Option<TableFormat>,
    role: &str,
    version: u64,
) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(canonical(doc).as_bytes());
    h.update(b"\0");
    h.update(variables.to_string().as_bytes());
    h.update(b"\0");
    h.update(operation.unwrap_or("").as_bytes());
    h.update(format!("\0{format:?}\0{role}\0{version}").as_bytes());
    *h.finalize().as_bytes()
}

/// A document printed back from its syntax tree, one way for all its spellings: operations and
/// fragments sorted by name, values printed by async-graphql (strings quoted and escaped as
/// parsed). Two documents print alike only if they parse alike. Every node is destructured
/// whole, so a field the parser adds breaks the build here instead of being left out.
pub fn canonical(doc: &ExecutableDocument) -> String {
    use std::fmt::Write;
    fn directives(out: &mut String, ds: &[Positioned<Directive>]) {
        for d in ds {
            let Directive { name, arguments } = &d.node;
            let _ = write!(out, " @{}", name.node);
            args(out, arguments);
        }
    }
    fn args<V: std::fmt::Display>(out: &mut String, arguments: &[(Positioned<Name>, Positioned<V>)]) {
        if arguments.is_empty() {
            return;
        }
        out.push('(');
        for (i, (name, value)) in arguments.iter().enumerate() {
            let _ = write!(out, "{}{}: {}", if i > 0 { ", " } else { "" }, name.node, value.node);
        }
        out.push(')');
    }
    fn selections(out: &mut String, set: &SelectionSet) {
        let SelectionSet { items } = set;
        if items.is_empty() {
            return;
        }
        out.push_str(" {");
        for item in items {
            match &item.node {
                Selection::Field(f) => {
                    let Field { alias, name, arguments, directives: ds, selection_set } = &f.node;
                    out.push(' ');
                    if let Some(a) = alias {
                        let _ = write!(out, "{}: ", a.node);
                    }
                    out.push_str(&name.node);
                    args(out, arguments);
                    directives(out, ds);
                    selections(out, &selection_set.node);
                }
                Selection::FragmentSpread(s) => {
                    let FragmentSpread { fragment_name, directives: ds } = &s.node;
                    let _ = write!(out, " ...{}", fragment_name.node);
                    directives(out, ds);
                }
                Selection::InlineFragment(i) => {
                    let InlineFragment { type_condition, directives: ds, selection_set } = &i.node;
                    out.push_str(" ...");
                    if let Some(t) = type_condition {
                        let TypeCondition { on } = &t.node;
                        let _ = write!(out, " on {}", on.node);
                    }
                    directives(out, ds);
                    selections(out, &selection_set.node);
                }
            }
        }
        out.push_str(" }");
    }
    fn operation(out: &mut String, name: Option<&Name>, op: &OperationDefinition) {
        let OperationDefinition { ty, variable_definitions, directives: ds, selection_set } = op;
        let _ = write!(out, "{ty}");
        if let Some(n) = name {
            let _ = write!(out, " {n}");
        }
        if !variable_definitions.is_empty() {
            out.push('(');
            for (i, v) in variable_definitions.iter().enumerate() {
                let VariableDefinition { name, var_type, directives: vds, default_value } = &v.node;
                let _ = write!(out, "{}${}: {}", if i > 0 { ", " } else { "" }, name.node, var_type.node);
                if let Some(d) = default_value {
                    let _ = write!(out, " = {}", d.node);
                }
                directives(out, vds);
            }
            out.push(')');
        }
        directives(out, ds);
        selections(out, &selection_set.node);
        out.push('\n');
    }
    let mut out = String::new();
    match &doc.operations {
        DocumentOperations::Single(op) => operation(&mut out, None, &op.node),
        DocumentOperations::Multiple(ops) => {
            let mut named: Vec<_> = ops.iter().collect();
            named.sort_by(|a, b| a.0.cmp(b.0));
            for (name, op) in named {
                operation(&mut out, Some(name), &op.node);
            }
        }
    }
    let mut fragments: Vec<_> = doc.fragments.iter().collect();
    fragments.sort_by(|a, b| a.0.cmp(b.0));
    for (name, f) in fragments {
        let FragmentDefinition { type_condition, directives: ds, selection_set } = &f.node;
        let TypeCondition { on } = &type_condition.node;
        let _ = write!(out, "fragment {name} on {}", on.node);
        directives(&mut out, ds);
        selections(&mut out, &selection_set.node);
        out.push('\n');
    }
    out
}

impl QueryCache {
    pub fn new(max_entries: usize, max_bytes: usize) -> QueryCache {
        let cap = NonZeroUsize::new(max_entries.max(1)).expect("at least one entry");
        QueryCache { entries: Mutex::new((lru::LruCache::new(cap), 0)), max_bytes, hits: AtomicU64::new(0), misses: AtomicU64::new(0) }
    }

    pub fn get(&self, key: &[u8; 32]) -> Option<Cached> {
        let found = self.entries.lock().expect("cache lock").0.get(key).cloned();
        let counter = if found.is_some() { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    pub fn put(&self, key: [u8; 32], value: Cached) {
        let size = value.body.len();
        if size > self.max_bytes / 4 {
            return; // one huge export would evict everything else
        }
        let mut guard = self.entries.lock().expect("cache lock");
        let (lru, bytes) = &mut *guard;
        if let Some((_, old)) = lru.push(key, value) {
            *bytes -= old.body.len();
        }
        *bytes += size;
        while *bytes > self.max_bytes {
            match lru.pop_lru() {
                Some((_, old)) => *bytes -= old.body.len(),
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(query: &str, v: &serde_json::Value, format: Option<TableFormat>, role: &str, version: u64) -> [u8; 32] {
        key(&async_graphql::parser::parse_query(query).expect("a document"), v, None, format, role, version)
    }

    #[test]
    fn keys_follow_the_parsed_document_and_change_with_version() {
        let v = serde_json::json!({"a": 1});
        let base = k("{ scores { n } }", &v, None, "admin", 3);
        // Layout, commas and comments are not the document.
        assert_eq!(base, k("{\n  scores {\n n }\n}", &v, None, "admin", 3));
        assert_eq!(base, k("query { scores { n, } } # a comment", &v, None, "admin", 3));
        assert_ne!(base, k("{ scores { n } }", &v, None, "admin", 4));
        assert_ne!(base, k("{ scores { n } }", &v, Some(TableFormat::Csv), "admin", 3));
        assert_ne!(base, k("{ scores { n } }", &serde_json::json!({"a": 2}), None, "admin", 3));
        assert_ne!(base, k("{ scores { n } }", &v, None, "public", 3));
        // What is inside a string literal is (issue 18: two spaces hit the one-space entry).
        let one = k(r#"{ services(search: "U.S. Citizenship") { id } }"#, &v, None, "admin", 3);
        assert_ne!(one, k(r#"{ services(search: "U.S.  Citizenship") { id } }"#, &v, None, "admin", 3));
        assert_ne!(one, k(r#"{ services(search: "U.S. Citizenship ") { id } }"#, &v, None, "admin", 3));
        assert_eq!(one, k(r#"{ services(search:"U.S. Citizenship"){id} }"#, &v, None, "admin", 3));
        assert_eq!(one, k(r#"{ services(search: """U.S. Citizenship""") { id } }"#, &v, None, "admin", 3));
        assert_ne!(k(r#"{ a(s: "x\ny") }"#, &v, None, "admin", 3), k(r#"{ a(s: "x y") }"#, &v, None, "admin", 3));
        // Directives, aliases, fragments and variables' defaults are part of it.
        assert_ne!(k("{ a @include(if: true) }", &v, None, "admin", 3), k("{ a @include(if: false) }", &v, None, "admin", 3));
        assert_ne!(k("{ x: a }", &v, None, "admin", 3), k("{ y: a }", &v, None, "admin", 3));
        assert_ne!(k("query($n: Int = 1) { a(n: $n) }", &v, None, "admin", 3), k("query($n: Int = 2) { a(n: $n) }", &v, None, "admin", 3));
        let frag = "{ ...F } fragment F on Q { a }";
        assert_eq!(canonical(&async_graphql::parser::parse_query(frag).unwrap()), "query { ...F }\nfragment F on Q { a }\n");
        assert_ne!(k(frag, &v, None, "admin", 3), k("{ ...F } fragment F on Q { b }", &v, None, "admin", 3));
        let read_only = |q: &str| is_read_only(&async_graphql::parser::parse_query(q).unwrap());
        assert!(read_only("{ scores { n } }") && read_only("query Q { a }"));
        assert!(!read_only("mutation { submitResponses(responses: []) { accepted } }"));
    }

    #[test]
    fn bounded_by_bytes_least_recently_used_out() {
        let c = QueryCache::new(100, 40);
        let put = |i: u8, n: usize| c.put([i; 32], Cached { content_type: "x", disposition: None, headers: Vec::new(), body: Bytes::from(vec![0; n]) });
        put(1, 10);
        put(2, 10);
        assert!(c.get(&[1; 32]).is_some());
        put(3, 10);
        put(4, 10);
        put(5, 10); // 50 bytes > 40: the least recently used (2) goes
        assert!(c.get(&[2; 32]).is_none() && c.get(&[1; 32]).is_some());
        put(6, 30); // larger than a quarter of the budget: not cached
        assert!(c.get(&[6; 32]).is_none());
        assert_eq!(c.hits.load(Ordering::Relaxed), 2);
    }
}
