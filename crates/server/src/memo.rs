//! Expensive fields computed once per distinct arguments within one request: aliases and
//! fragment spreads that repeat a field with the same arguments share one computation (the
//! DataLoader idea, keyed by the whole analytics query). Every request gets a fresh memo from
//! the `PerRequestMemo` extension, so nothing is shared between requests or roles.

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest};
use async_graphql::{Context, Request, ServerResult};
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
/// (failures are not kept: a later alias tries again). Outside a request with a memo (a bare
/// schema), computes.
pub async fn once<T, Q, F, Fut>(ctx: &Context<'_>, field: &str, q: &Q, compute: F) -> Result<T, AnalyticsError>
where
    T: Clone + Send + Sync + 'static,
    Q: std::fmt::Debug,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, AnalyticsError>>,
{
    let Ok(memo) = ctx.data::<Arc<Memo>>() else {
        return compute().await;
    };
    let cell = memo.cell(format!("{field}:{q:?}"));
    let value = cell
        .get_or_try_init(|| async {
            memo.computed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            compute().await.map(|t| Arc::new(t) as Arc<dyn Any + Send + Sync>)
        })
        .await?;
    Ok(value.downcast_ref::<T>().expect("one result type per field").clone())
}

/// Gives every request its own memo.
pub struct PerRequestMemo;

impl ExtensionFactory for PerRequestMemo {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(PerRequestMemo)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for PerRequestMemo {
    async fn prepare_request(&self, ctx: &ExtensionContext<'_>, request: Request, next: NextPrepareRequest<'_>) -> ServerResult<Request> {
        let request = if request.data.get(&std::any::TypeId::of::<Arc<Memo>>()).is_some() { request } else { request.data(Arc::new(Memo::default())) };
        next.run(ctx, request).await
    }
}
