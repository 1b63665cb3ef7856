//! The GraphQL query root: decodes arguments, calls `analytics`, converts the results.

use super::types::*;
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

#[Object]
impl QueryRoot {
    /// Scores per group and measure: n, mean, sd and 95% interval of the mean (Likert answers),
    /// agree share (top-2-box on Likert, thumbs-up on thumbs) with its Wilson 95% interval,
    /// the distribution of answers and n by scale. One row per group and measure.
    async fn scores(
        &self,
        ctx: &Context<'_>,
        filter: Option<ResponseFilter>,
        #[graphql(default)] group_by: Vec<GroupDimension>,
        period: Option<PeriodUnit>,
        #[graphql(default_with = "vec![MeasureName::Trust, MeasureName::Satisfaction]")] measures: Vec<MeasureName>,
        #[graphql(default = false, desc = "Use the survey weights (intervals from Kish's effective n).")] weighted: bool,
    ) -> Result<Vec<ScoreRowOut>> {
        let analytics = ctx.data::<Analytics>()?;
        let mut group: Vec<_> = Vec::new();
        for g in group_by {
            let d = g.into();
            if !group.contains(&d) {
                group.push(d);
            }
        }
        let mut ms = Vec::new();
        for m in measures {
            let m = m.into();
            if !ms.contains(&m) {
                ms.push(m);
            }
        }
        let q = ScoresQuery {
            filter: filter.unwrap_or_default().into(),
            group_by: group,
            period: period.map(Into::into),
            measures: ms,
            weighted,
            confidence: 0.95,
        };
        let result = analytics.scores(&q).await.map_err(gql_error)?;
        Ok(result.rows.into_iter().map(Into::into).collect())
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
