//! The GraphQL query root: decodes arguments, calls `analytics`, converts the results.

use super::types::*;
use crate::analytics::drivers::{DriverQuery, Missing};
use crate::analytics::{Analytics, AnalyticsError, ScoresQuery};
use async_graphql::{Context, ErrorExtensions, Object, Result};

pub struct QueryRoot;

/// An analytics error as a GraphQL error with a machine-readable code.
pub fn gql_error(e: AnalyticsError) -> async_graphql::Error {
    let code = match &e {
        AnalyticsError::Invalid { .. } => "BAD_USER_INPUT",
        _ => "INTERNAL",
    };
    if code == "INTERNAL" {
        tracing::error!(error = %e, "query failed");
    }
    let field = match &e {
        AnalyticsError::Invalid { field, .. } => Some(field.clone()),
        _ => None,
    };
    e.extend_with(|_, ext| {
        ext.set("code", code);
        if let Some(f) = &field {
            ext.set("argument", f.as_str());
        }
    })
}

/// The values in first-seen order without repeats.
fn dedup<T: PartialEq>(values: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut out = Vec::new();
    for v in values {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

#[Object]
impl QueryRoot {
    /// Scores per group and measure: n, mean, sd and 95% interval of the mean (Likert answers),
    /// agree share (top-2-box on Likert, thumbs-up on thumbs) with its Wilson 95% interval,
    /// the distribution of answers and n by scale. One row per group and measure.
    async fn scores(
        &self,
        ctx: &Context<'_>,
        filter: Option<ResponseFilter>,
        #[graphql(desc = "Dimensions to group by (none: one overall group).")] group_by: Option<Vec<GroupDimension>>,
        period: Option<PeriodUnit>,
        #[graphql(desc = "Measures to score (default: trust and satisfaction).")] measures: Option<Vec<MeasureName>>,
        #[graphql(desc = "Use the survey weights, intervals from Kish's effective n (default false).")] weighted: Option<bool>,
    ) -> Result<Vec<ScoreRowOut>> {
        let analytics = ctx.data::<Analytics>()?;
        let q = ScoresQuery {
            filter: filter.unwrap_or_default().into(),
            group_by: dedup(group_by.unwrap_or_default().into_iter().map(Into::into)),
            period: period.map(Into::into),
            measures: match measures {
                Some(m) => dedup(m.into_iter().map(Into::into)),
                None => vec![crate::domain::Measure::Trust, crate::domain::Measure::Satisfaction],
            },
            weighted: weighted.unwrap_or(false),
            confidence: 0.95,
        };
        let result = analytics.scores(&q).await.map_err(gql_error)?;
        Ok(result.rows.into_iter().map(Into::into).collect())
    }

    /// Which drivers move trust or satisfaction, per group: correlation, standardized beta,
    /// first, last, Pratt, Johnson's relative weights and Shapley/LMG shares of R², ranks,
    /// VIFs, the importance-performance quadrant and (asked for with `taps`) tapped-indicator
    /// shares. Likert responses only; listwise deletion unless `missing: PAIRWISE`. With
    /// `bootstrap: B`, percentile 95% intervals of Johnson and Shapley from B Poisson bootstrap
    /// replicates computed in the same pass over the data (fixed `seed`).
    #[allow(clippy::too_many_arguments)]
    async fn driver_importance(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "TRUST (default) or SATISFACTION.")] outcome: Option<OutcomeName>,
        #[graphql(desc = "Drivers to analyse (default: the six).")] drivers: Option<Vec<DriverName>>,
        filter: Option<ResponseFilter>,
        #[graphql(desc = "Dimensions to group by (none: one overall group).")] group_by: Option<Vec<GroupDimension>>,
        period: Option<PeriodUnit>,
        #[graphql(desc = "Use the survey weights (default false).")] weighted: Option<bool>,
        #[graphql(desc = "LISTWISE (default) or PAIRWISE deletion of missing answers.")] missing: Option<MissingPolicy>,
        #[graphql(desc = "Number of bootstrap replicates (1-2000) for intervals.")] bootstrap: Option<u32>,
        #[graphql(desc = "Seed of the bootstrap (default 2025).")] seed: Option<u64>,
    ) -> Result<Vec<DriverGroupOut>> {
        let analytics = ctx.data::<Analytics>()?;
        let outcome = outcome.unwrap_or(OutcomeName::Trust);
        let ds = match drivers {
            Some(list) => dedup(list.into_iter().map(Into::into)),
            None => crate::domain::Driver::ALL.to_vec(),
        };
        let q = DriverQuery {
            filter: filter.unwrap_or_default().into(),
            group_by: dedup(group_by.unwrap_or_default().into_iter().map(Into::into)),
            period: period.map(Into::into),
            outcome: outcome.into(),
            drivers: ds,
            weighted: weighted.unwrap_or(false),
            missing: match missing.unwrap_or(MissingPolicy::Listwise) {
                MissingPolicy::Listwise => Missing::Listwise,
                MissingPolicy::Pairwise => Missing::Pairwise,
            },
            bootstrap,
            seed: seed.unwrap_or(2025),
            // Extra scans run only for the fields asked for.
            taps: ctx.look_ahead().field("taps").exists(),
            count_dropped: ctx.look_ahead().field("nDropped").exists(),
            confidence: 0.95,
        };
        let groups = analytics.driver_importance(&q).await.map_err(gql_error)?;
        Ok(groups.into_iter().map(|g| DriverGroupOut::new(g, outcome)).collect())
    }

    /// The services of the lake (its services dimension), optionally of some agencies.
    async fn services(&self, ctx: &Context<'_>, agency: Option<Vec<String>>) -> Result<Vec<ServiceOut>> {
        let analytics = ctx.data::<Analytics>()?;
        Ok(analytics
            .catalog
            .services
            .iter()
            .filter(|s| agency.as_ref().is_none_or(|a| a.contains(&s.agency)))
            .map(ServiceOut::from)
            .collect())
    }

    /// The offices of the lake (its offices dimension), optionally of some agencies.
    async fn offices(&self, ctx: &Context<'_>, agency: Option<Vec<String>>) -> Result<Vec<OfficeOut>> {
        let analytics = ctx.data::<Analytics>()?;
        Ok(analytics
            .catalog
            .offices
            .iter()
            .filter(|o| agency.as_ref().is_none_or(|a| a.contains(&o.agency)))
            .map(OfficeOut::from)
            .collect())
    }
}
