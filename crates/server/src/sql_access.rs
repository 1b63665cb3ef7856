//! What the SQL protocols (Postgres, Flight SQL) share: who a signed-in principal is to the SQL
//! layer (their role's view of the analytics and which raw rows they may read), with the
//! catalog reread when the lake moved on, as every HTTP request does.

use super::auth::Principal;
use super::sql_tables::ResultCatalog;
use cx_analytics::Analytics;
use std::sync::Arc;

/// The SQL caller of `principal`, with the result tables of `results` (when served).
pub async fn caller(
    analytics: &Analytics,
    results: Option<&Arc<ResultCatalog>>,
    principal: &Principal,
) -> Result<cx_sql::Caller, cx_analytics::AnalyticsError> {
    refresh(analytics).await;
    let view = if principal.role.exact_counts() { analytics.clone() } else { analytics.perturbed().await? };
    let raw = match principal.role.raw_agencies(None) {
        Err(_) => cx_sql::RawAccess::None,
        Ok(None) => cx_sql::RawAccess::All,
        Ok(Some(a)) => cx_sql::RawAccess::Agencies(a),
    };
    Ok(cx_sql::Caller { view, raw, role: principal.role.label(), results: results.map(|r| r.for_principal(principal.clone())) })
}

/// Rereads the catalog when the lake moved on (`state::refresh_analytics`, as HTTP requests do).
async fn refresh(analytics: &Analytics) {
    if let Ok(v) = super::state::current_version(&analytics.lake).await {
        super::state::refresh_analytics(analytics, v).await;
    }
}
