//! Expensive fields computed once per distinct arguments within one request: aliases and
//! fragment spreads that repeat a field with the same arguments share one computation (the
//! DataLoader idea, keyed by the whole analytics query). Every request gets a fresh memo from
//! `crate::prepare`, so nothing is shared between requests or roles.

use async_graphql::Context;
use cx_analytics::AnalyticsError;
use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

type Cell = Arc<tokio::sync::OnceCell<Arc<dyn Any + Send + Sync>>>;

/// The results of one request's expensive fields, by field and query.
#[derive(Default)]
pub struct Memo {
    cells: Mutex<HashMap<String, Cell>>,
    /// Computations run (the rest were shared).
    computed: std::sync::atomic::AtomicUsize,
}

impl Memo {
    fn cell(&self, key: String) -> Cell {
        self.cells.lock().unwrap_or_else(|e| e.into_inner()).entry(key).or_default().clone()
    }

    /// How many computations this request ran.
    pub fn computed(&self) -> usize {
        self.computed.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The result of `compute` for `field` with query `q`, computed at most once per request
/// (failures are not kept: a later alias tries again) and shared, not copied, between the
/// fields that ask for it. Outside a request with a memo (a bare schema), computes.
pub async fn once<T, Q, F, Fut>(ctx: &Context<'_>, field: &str, q: &Q, compute: F) -> Result<Arc<T>, AnalyticsError>
where
    T: Clone + Send + Sync + 'static,
    Q: std::fmt::Debug,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, AnalyticsError>>,
{
    let Ok(memo) = ctx.data::<Arc<Memo>>() else {
        return compute().await.map(Arc::new);
    };
    let cell = memo.cell(format!("{field}:{q:?}"));
    let value = cell
        .get_or_try_init(|| async {
            memo.computed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            compute().await.map(|t| Arc::new(t) as Arc<dyn Any + Send + Sync>)
        })
        .await?;
    Ok(value.clone().downcast::<T>().expect("one result type per field"))
}
