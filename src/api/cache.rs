//! The result cache: a successful read-only query's encoded response, keyed by the normalized
//! query text, its variables and operation, the requested table format and the lake version,
//! so a repeated dashboard query does not rescan the lake and any commit (ingest, submit flush,
//! compaction) changes the version and with it every key. Bounded in entries and bytes (LRU).
//! Roles (issue 8) will join the key.

use super::download::TableFormat;
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

/// Whether `query` is a document of read-only operations (no mutation or subscription), the
/// only ones cached.
pub fn is_read_only(query: &str) -> bool {
    match async_graphql::parser::parse_query(query) {
        Ok(doc) => doc.operations.iter().all(|(_, op)| op.node.ty == async_graphql::parser::types::OperationType::Query),
        Err(_) => false,
    }
}

/// The cache key: whitespace-normalized query, variables (JSON), operation, format, version.
pub fn key(query: &str, variables: &serde_json::Value, operation: Option<&str>, format: Option<TableFormat>, role: &str, version: u64) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    for word in query.split_whitespace() {
        h.update(word.as_bytes());
        h.update(b" ");
    }
    h.update(b"\0");
    h.update(variables.to_string().as_bytes());
    h.update(b"\0");
    h.update(operation.unwrap_or("").as_bytes());
    h.update(format!("\0{format:?}\0{role}\0{version}").as_bytes());
    *h.finalize().as_bytes()
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

    #[test]
    fn keys_normalize_whitespace_and_change_with_version() {
        let v = serde_json::json!({"a": 1});
        let k = key("{ scores { n } }", &v, None, None, "admin", 3);
        assert_eq!(k, key("{\n  scores {\n n }\n}", &v, None, None, "admin", 3));
        assert_ne!(k, key("{ scores { n } }", &v, None, None, "admin", 4));
        assert_ne!(k, key("{ scores { n } }", &v, None, Some(TableFormat::Csv), "admin", 3));
        assert_ne!(k, key("{ scores { n } }", &serde_json::json!({"a": 2}), None, None, "admin", 3));
        assert_ne!(k, key("{ scores { n } }", &v, None, None, "public", 3));
        assert!(is_read_only("{ scores { n } }") && is_read_only("query Q { a }"));
        assert!(!is_read_only("mutation { submitResponses(responses: []) { accepted } }") && !is_read_only("{ broken"));
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
