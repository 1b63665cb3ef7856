//! The service inventory over GraphQL: `services` lists and filters it, each service joins to
//! its scores, and `upsertServices` changes it (admins any service, collectors their agency's),
//! all or nothing through `ingest::services`, which holds the rules.

use super::query::gql_error;
use super::types::{Channel, Date, MeasureName, PeriodUnit, ScoreRowOut, ServiceOut, ServiceType};
use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{ComplexObject, Context, ErrorExtensions, InputObject, Object, Result, SimpleObject};
use cx_analytics::{Analytics, AnalyticsError, Filter, ScoresQuery};
use cx_domain::inventory::ServiceRecord;
use cx_domain::{self as domain, Dimension};
use cx_ingest::services::{upsert, ServicesError};
use std::collections::HashMap;

#[derive(Default)]
pub struct ServicesQuery;

#[Object]
impl ServicesQuery {
    /// The service inventory (A-11 280.5), filtered: every given argument restricts; `search`
    /// matches name, description or organizational unit (case-insensitive).
    #[allow(clippy::too_many_arguments)]
    async fn services(
        &self,
        ctx: &Context<'_>,
        agency: Option<Vec<String>>,
        bureau: Option<Vec<String>>,
        service_type: Option<Vec<ServiceType>>,
        channel: Option<Vec<Channel>>,
        designated: Option<bool>,
        has_digital_channel: Option<bool>,
        search: Option<String>,
    ) -> Result<Vec<ServiceOut>> {
        let catalog = ctx.data::<Analytics>()?.catalog();
        let types: Option<Vec<domain::ServiceType>> = service_type.map(|v| v.into_iter().map(Into::into).collect());
        let channels: Option<Vec<domain::Channel>> = channel.map(|v| v.into_iter().map(Into::into).collect());
        let needle = search.map(|s| s.to_lowercase());
        Ok(catalog
            .services
            .iter()
            .filter(|s| agency.as_ref().is_none_or(|a| a.contains(&s.agency)))
            .filter(|s| bureau.as_ref().is_none_or(|b| b.contains(&s.bureau)))
            .filter(|s| types.as_ref().is_none_or(|t| t.contains(&s.service_type)))
            .filter(|s| channels.as_ref().is_none_or(|c| s.channels.iter().any(|x| c.contains(x))))
            .filter(|s| designated.is_none_or(|d| s.designated == d))
            .filter(|s| has_digital_channel.is_none_or(|d| s.has_digital_channel() == d))
            .filter(|s| needle.as_ref().is_none_or(|n| [&s.name, &s.description, &s.org_unit].iter().any(|t| t.to_lowercase().contains(n))))
            .map(ServiceOut::from)
            .collect())
    }
}

#[ComplexObject]
impl ServiceOut {
    /// This service's scores (one row per measure, and per period when one is given), with
    /// the same suppression as `scores`. Listing many services with their scores costs one
    /// pass over the lake per distinct set of arguments, not one per service.
    async fn scores(
        &self,
        ctx: &Context<'_>,
        period: Option<PeriodUnit>,
        from: Option<Date>,
        to: Option<Date>,
        #[graphql(desc = "Default: trust and satisfaction.")] measures: Option<Vec<MeasureName>>,
    ) -> Result<Vec<ScoreRowOut>> {
        let key = ServiceScoresKey {
            service: self.id.clone(),
            agency: self.agency.clone(),
            period: period.map(Into::into),
            from: from.map(|d| d.0),
            to: to.map(|d| d.0),
            measures: match measures {
                Some(m) => m.into_iter().map(Into::into).collect(),
                None => vec![domain::Measure::Trust, domain::Measure::Satisfaction],
            },
            perturbed: !crate::auth::principal(ctx).role.exact_counts(),
        };
        // An error keeps its code; an invalid date names this field's own argument (`from`, `to`).
        let error = |e: std::sync::Arc<AnalyticsError>| match e.as_ref() {
            AnalyticsError::Invalid { field, message } => gql_error(AnalyticsError::invalid(field.strip_prefix("filter.").unwrap_or(field), message.clone())),
            other => super::query::gql_error_ref(other),
        };
        let rows = match ctx.data_opt::<DataLoader<ServiceScoresLoader>>() {
            Some(loader) => loader.load_one(key).await.map_err(error)?.unwrap_or_default(),
            None => {
                ServiceScoresLoader(ctx.data::<Analytics>()?.clone()).load(std::slice::from_ref(&key)).await.map_err(error)?.remove(&key).unwrap_or_default()
            }
        };
        Ok(rows.iter().map(Into::into).collect())
    }
}

/// The scores of one service as `ServiceOut.scores` asks for them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServiceScoresKey {
    service: String,
    agency: String,
    period: Option<domain::PeriodUnit>,
    from: Option<chrono::NaiveDate>,
    to: Option<chrono::NaiveDate>,
    measures: Vec<domain::Measure>,
    /// The caller's role gets perturbed counts (the loader is shared by every request, so the
    /// view is part of the key).
    perturbed: bool,
}

/// Batches the `scores` of listed services: keys with the same arguments become one scores
/// query grouped by service (over only those services' agencies), whose rows are handed back
/// per service. The cells are the ones a query per service would give, suppression and (for
/// the public role) perturbation included.
pub struct ServiceScoresLoader(pub Analytics);

impl Loader<ServiceScoresKey> for ServiceScoresLoader {
    type Value = Vec<cx_analytics::ScoreRow>;
    type Error = std::sync::Arc<AnalyticsError>;

    async fn load(&self, keys: &[ServiceScoresKey]) -> Result<HashMap<ServiceScoresKey, Self::Value>, Self::Error> {
        type Arguments = (Option<domain::PeriodUnit>, Option<chrono::NaiveDate>, Option<chrono::NaiveDate>, Vec<domain::Measure>, bool);
        let mut batches: HashMap<Arguments, Vec<&ServiceScoresKey>> = HashMap::new();
        for k in keys {
            batches.entry((k.period, k.from, k.to, k.measures.clone(), k.perturbed)).or_default().push(k);
        }
        let mut out = HashMap::new();
        for ((period, from, to, measures, perturbed), batch) in batches {
            let analytics = if perturbed { self.0.perturbed().await.map_err(std::sync::Arc::new)? } else { self.0.clone() };
            let agencies: std::collections::BTreeSet<String> = batch.iter().map(|k| k.agency.clone()).collect();
            let services: std::collections::BTreeSet<String> = batch.iter().map(|k| k.service.clone()).collect();
            let mut filter = Filter::default().with(Dimension::Agency, agencies).with(Dimension::Service, services);
            filter.from = from;
            filter.to = to;
            // Grouped by agency too (a service is in one agency, so the cells are the services'):
            // a list of values selects only dimensions it groups by (the public's grid).
            let q = ScoresQuery { filter, group_by: vec![Dimension::Agency, Dimension::Service], period, measures, ..Default::default() };
            let rows = analytics.scores(&q).await.map_err(std::sync::Arc::new)?.rows;
            let mut by_service: HashMap<String, Vec<cx_analytics::ScoreRow>> = HashMap::new();
            for r in rows {
                if let Some(s) = r.key.get(Dimension::Service) {
                    by_service.entry(s.to_string()).or_default().push(r);
                }
            }
            for k in batch {
                out.insert(k.clone(), by_service.get(&k.service).cloned().unwrap_or_default());
            }
        }
        Ok(out)
    }
}

/// One service as given to `upsertServices`.
#[derive(InputObject, Debug, Clone)]
pub struct ServiceInput {
    pub id: String,
    pub name: String,
    /// Short description (at most 500 characters).
    pub description: String,
    pub agency: String,
    pub agency_name: String,
    pub bureau: String,
    pub bureau_name: String,
    /// The organizational unit responsible for the service.
    pub org_unit: String,
    pub service_type: ServiceType,
    pub channels: Vec<Channel>,
    /// A designated HISP service (default false).
    pub designated: Option<bool>,
    /// Required when no channel is digital (digital, chat, email).
    pub non_digital_reason: Option<String>,
    /// Required (at least one) when no channel is digital.
    pub digitization_options: Option<Vec<String>>,
}

impl From<ServiceInput> for ServiceRecord {
    fn from(s: ServiceInput) -> ServiceRecord {
        ServiceRecord {
            id: s.id,
            name: s.name,
            description: s.description,
            agency: s.agency,
            agency_name: s.agency_name,
            bureau: s.bureau,
            bureau_name: s.bureau_name,
            org_unit: s.org_unit,
            service_type: s.service_type.into(),
            channels: s.channels.into_iter().map(Into::into).collect(),
            designated: s.designated.unwrap_or(false),
            non_digital_reason: s.non_digital_reason,
            digitization_options: s.digitization_options.unwrap_or_default(),
        }
    }
}

/// What `upsertServices` changed.
#[derive(SimpleObject, Debug, Clone)]
pub struct ServicesChange {
    pub added: Vec<String>,
    pub updated: Vec<String>,
    pub unchanged: Vec<String>,
    /// Services in the inventory after the change.
    pub services: u64,
    pub lake_version: u64,
}

#[derive(Default)]
pub struct ServicesMutation;

#[Object]
impl ServicesMutation {
    /// Adds or replaces services of the inventory by id. All or nothing: any invalid service
    /// refuses the change with an error listing every problem (`services[i]`, field, rule).
    /// Admins may change any service, collectors their own agency's; on a server that writes
    /// (`--submit`).
    #[graphql(visible = "crate::auth::sees_submit")]
    async fn upsert_services(&self, ctx: &Context<'_>, services: Vec<ServiceInput>) -> Result<ServicesChange> {
        let principal = crate::auth::principal(ctx);
        let only = principal.role.inventory_scope().map_err(|reason| crate::auth::forbidden(ctx, reason))?.map(str::to_string);
        let submitter = ctx.data::<std::sync::Arc<cx_ingest::submit::Submitter>>().map_err(|_| {
            async_graphql::Error::new("this server is read-only: start it with --submit to change the inventory")
                .extend_with(|_, ext| ext.set("code", "READ_ONLY"))
        })?;
        let analytics = ctx.data::<Analytics>()?.clone();
        let who = principal.role.label();
        let changes: Vec<_> = services.into_iter().enumerate().map(|(i, s)| (format!("services[{i}]"), Ok(ServiceRecord::from(s)))).collect();
        let result = tokio::task::spawn_blocking(move || -> Result<_, ServicesError> {
            let lock = cx_lake::commit::WriteLock::acquire(&analytics.lake)?;
            let summary = upsert(&lock, changes, only.as_deref(), &format!("upsertServices by {who}"))?;
            analytics
                .refresh(summary.lake_version)
                .map_err(|e| ServicesError::Store(cx_lake::StoreError::Read { path: "catalog".into(), reason: e.to_string() }))?;
            Ok(summary)
        })
        .await
        .map_err(|e| gql_error(AnalyticsError::Task(e.to_string())))?;
        if result.is_ok() {
            submitter.set_inventory(ctx.data::<Analytics>()?.catalog().inventory());
        }
        match result {
            Ok(s) => {
                Ok(ServicesChange { added: s.added, updated: s.updated, unchanged: s.unchanged, services: s.services as u64, lake_version: s.lake_version })
            }
            Err(ServicesError::Invalid(problems)) => {
                let message = ServicesError::Invalid(problems.clone()).to_string();
                Err(async_graphql::Error::new(message).extend_with(|_, ext| {
                    ext.set("code", "BAD_USER_INPUT");
                    let list: Vec<async_graphql::Value> = problems
                        .iter()
                        .map(|p| {
                            let mut m = async_graphql::indexmap::IndexMap::new();
                            m.insert(async_graphql::Name::new("at"), async_graphql::Value::from(p.at.clone()));
                            m.insert(async_graphql::Name::new("serviceId"), async_graphql::Value::from(p.service_id.clone()));
                            m.insert(async_graphql::Name::new("field"), async_graphql::Value::from(p.field.clone()));
                            m.insert(async_graphql::Name::new("reason"), async_graphql::Value::from(p.reason.clone()));
                            async_graphql::Value::Object(m)
                        })
                        .collect();
                    ext.set("problems", async_graphql::Value::List(list));
                }))
            }
            Err(e) => Err(gql_error(AnalyticsError::Task(e.to_string()))),
        }
    }
}
