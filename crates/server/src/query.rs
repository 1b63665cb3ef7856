//! The GraphQL query root: decodes arguments, calls `analytics`, converts the results.

use super::types::*;
use async_graphql::{Context, ErrorExtensions, Object, Result};
use cx_analytics::drivers::{DriverQuery, Missing};
use cx_analytics::{Analytics, AnalyticsError, ScoresQuery};

#[derive(Default)]
pub struct QueryRoot;

/// An analytics error as a GraphQL error with a machine-readable code.
pub fn gql_error(e: AnalyticsError) -> async_graphql::Error {
    gql_error_ref(&e)
}

/// `gql_error` of a shared error (a DataLoader's `Arc<AnalyticsError>`).
pub fn gql_error_ref(e: &AnalyticsError) -> async_graphql::Error {
    let code = match e {
        AnalyticsError::Invalid { .. } => "BAD_USER_INPUT",
        AnalyticsError::CorruptFile { .. } | AnalyticsError::Store(cx_lake::StoreError::Corrupt { .. }) => "CORRUPT_DATA_FILE",
        AnalyticsError::Cancelled => "CANCELLED",
        AnalyticsError::Busy { .. } => "BUSY",
        AnalyticsError::TooManyGroups { .. } => "TOO_MANY_GROUPS",
        _ => "INTERNAL",
    };
    if code == "INTERNAL" {
        tracing::error!(error = %e, "query failed");
    }
    let field = match e {
        AnalyticsError::Invalid { field, .. } => Some(field.clone()),
        _ => None,
    };
    let busy = matches!(e, AnalyticsError::Busy { .. });
    async_graphql::Error::new(e.to_string()).extend_with(|_, ext| {
        ext.set("code", code);
        if busy {
            ext.set("retryAfterSeconds", 1);
        }
        if let Some(f) = &field {
            ext.set("argument", f.as_str());
        }
    })
}

/// The analytics of the caller's role: exact numbers, or for the public role the view whose
/// counts are perturbed by the cell-key method (`Analytics::perturbed`). Every resolver that
/// publishes counts of responses or statistics of them asks this, never `Analytics` directly.
pub(crate) async fn analytics_for(ctx: &Context<'_>) -> Result<Analytics> {
    let analytics = ctx.data::<Analytics>()?;
    let view = if crate::auth::principal(ctx).role.exact_counts() { analytics.clone() } else { analytics.perturbed().await.map_err(gql_error)? };
    Ok(view.with_served_log(ctx.data_opt::<cx_analytics::rollups::ServedLog>().cloned()))
}

/// The values in first-seen order without repeats.
pub(crate) fn dedup<T: PartialEq>(values: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut out = Vec::new();
    for v in values {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

#[Object(name = "CoreQuery")]
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
        let analytics = analytics_for(ctx).await?;
        let q = ScoresQuery {
            filter: filter.unwrap_or_default().into(),
            group_by: dedup(group_by.unwrap_or_default().into_iter().map(Into::into)),
            period: period.map(Into::into),
            measures: match measures {
                Some(m) => dedup(m.into_iter().map(Into::into)),
                None => vec![cx_domain::Measure::Trust, cx_domain::Measure::Satisfaction],
            },
            weighted: weighted.unwrap_or(false),
            confidence: 0.95,
        };
        let result = super::memo::once(ctx, "scores", &q, || analytics.scores(&q)).await.map_err(gql_error)?;
        Ok(result.rows.iter().map(Into::into).collect())
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
        let analytics = analytics_for(ctx).await?;
        let outcome = outcome.unwrap_or(OutcomeName::Trust);
        let ds = match drivers {
            Some(list) => dedup(list.into_iter().map(Into::into)),
            None => cx_domain::Driver::ALL.to_vec(),
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
        let groups = super::memo::once(ctx, "driver_importance", &q, || analytics.driver_importance(&q))
            .await
            .map(std::sync::Arc::unwrap_or_clone)
            .map_err(gql_error)?;
        Ok(groups.into_iter().map(|g| DriverGroupOut::new(g, outcome)).collect())
    }

    /// Every entity at `level` against its peers, computed without the entity itself: n, mean
    /// and agree share of both, the difference with a 95% interval (Welch for means, Newcombe
    /// for shares) and a p-value, and the entity's rank and percentile among the peer entities.
    /// With `period`, one row per entity and period.
    #[allow(clippy::too_many_arguments)]
    async fn benchmark(
        &self,
        ctx: &Context<'_>,
        level: BenchmarkLevel,
        #[graphql(desc = "Default TRUST.")] measure: Option<MeasureName>,
        #[graphql(desc = "Default GOVERNMENT_WIDE.")] peers: Option<PeerGroup>,
        filter: Option<ResponseFilter>,
        period: Option<PeriodUnit>,
        #[graphql(desc = "Default POOLED.")] pooling: Option<PeerPooling>,
        #[graphql(desc = "Use the survey weights (default false).")] weighted: Option<bool>,
    ) -> Result<Vec<BenchmarkRowOut>> {
        let analytics = analytics_for(ctx).await?;
        let q = cx_analytics::benchmark::BenchmarkQuery {
            level: level.into(),
            measure: measure.unwrap_or(MeasureName::Trust).into(),
            peers: peers.unwrap_or(PeerGroup::GovernmentWide).into(),
            filter: filter.unwrap_or_default().into(),
            period: period.map(Into::into),
            pooling: pooling.unwrap_or(PeerPooling::Pooled).into(),
            weighted: weighted.unwrap_or(false),
            confidence: 0.95,
        };
        let rows = super::memo::once(ctx, "benchmark", &q, || analytics.benchmark(&q)).await.map(std::sync::Arc::unwrap_or_clone).map_err(gql_error)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Per group, a time series of one measure: each period's score with the change from the
    /// previous period and from the same period a year earlier, with intervals and p-values.
    async fn trends(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Default TRUST.")] measure: Option<MeasureName>,
        #[graphql(desc = "Dimensions to group by (none: one overall series).")] group_by: Option<Vec<GroupDimension>>,
        #[graphql(desc = "Default FISCAL_QUARTER.")] period: Option<PeriodUnit>,
        filter: Option<ResponseFilter>,
        #[graphql(desc = "Use the survey weights (default false).")] weighted: Option<bool>,
    ) -> Result<Vec<TrendRowOut>> {
        let analytics = analytics_for(ctx).await?;
        let q = cx_analytics::trends::TrendsQuery {
            measure: measure.unwrap_or(MeasureName::Trust).into(),
            group_by: dedup(group_by.unwrap_or_default().into_iter().map(Into::into)),
            period: period.unwrap_or(PeriodUnit::FiscalQuarter).into(),
            filter: filter.unwrap_or_default().into(),
            weighted: weighted.unwrap_or(false),
            confidence: 0.95,
        };
        Ok(super::memo::once(ctx, "trends", &q, || analytics.trends(&q))
            .await
            .map(std::sync::Arc::unwrap_or_clone)
            .map_err(gql_error)?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// The groups whose agree share dropped significantly in a period (default: the latest
    /// complete one) against the previous period and against the same period a year earlier:
    /// one-sided two-proportion z-tests, Benjamini-Hochberg q-values over every test made,
    /// effect sizes (Cohen's h), most severe first (smallest q, then largest drop).
    #[allow(clippy::too_many_arguments)]
    async fn alerts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Default: trust and satisfaction.")] measures: Option<Vec<MeasureName>>,
        #[graphql(desc = "Default FISCAL_QUARTER.")] period: Option<PeriodUnit>,
        #[graphql(desc = "The period to check, by label (FY2026Q4); default the latest complete one.")] at: Option<String>,
        #[graphql(desc = "Default: SERVICE, OFFICE, AGENCY, CHANNEL.")] levels: Option<Vec<GroupDimension>>,
        #[graphql(desc = "Both periods need at least this many answers (default 30): the n shown, perturbed for the public role.")] min_n: Option<u64>,
        #[graphql(desc = "Alerts have a q-value below this (default 0.05).")] alpha: Option<f64>,
        filter: Option<ResponseFilter>,
        #[graphql(desc = "Use the survey weights (default false).")] weighted: Option<bool>,
    ) -> Result<Vec<AlertOut>> {
        use cx_domain::{Dimension, Measure};
        let analytics = analytics_for(ctx).await?;
        let q = cx_analytics::trends::AlertsQuery {
            measures: match measures {
                Some(m) => dedup(m.into_iter().map(Into::into)),
                None => vec![Measure::Trust, Measure::Satisfaction],
            },
            period: period.unwrap_or(PeriodUnit::FiscalQuarter).into(),
            at,
            levels: match levels {
                Some(l) => dedup(l.into_iter().map(Into::into)),
                None => vec![Dimension::Service, Dimension::Office, Dimension::Agency, Dimension::Channel],
            },
            min_n: min_n.unwrap_or(30),
            alpha: alpha.unwrap_or(0.05),
            filter: filter.unwrap_or_default().into(),
            weighted: weighted.unwrap_or(false),
            today: chrono::Utc::now().date_naive(),
            confidence: 0.95,
        };
        let result = super::memo::once(ctx, "alerts", &q, || analytics.alerts(&q)).await.map(std::sync::Arc::unwrap_or_clone).map_err(gql_error)?;
        Ok(result.alerts.into_iter().map(Into::into).collect())
    }

    /// Raw responses with free text, a page at a time in `submittedAt` order: for an agency's
    /// key its own agency only (the default when the filter names none), for admins any. At
    /// most 1000 per page (`first`, default 100); `truncated`, `totalCount` and
    /// `pageInfo.endCursor` (pass it as `after`) say what the page leaves out.
    #[graphql(visible = "crate::auth::sees_raw")]
    async fn responses(
        &self,
        ctx: &Context<'_>,
        filter: Option<ResponseFilter>,
        #[graphql(desc = "Rows per page, 1 to 1000 (default 100).")] first: Option<i32>,
        #[graphql(desc = "The endCursor of the previous page.")] after: Option<String>,
    ) -> Result<crate::raw::ResponsePage> {
        use cx_analytics::responses::{Cursor, ResponsesQuery};
        let role = &crate::auth::principal(ctx).role;
        let mut filter: cx_analytics::filter::Filter = filter.unwrap_or_default().into();
        let asked = filter.values.get(&cx_domain::Dimension::Agency).cloned();
        match role.raw_agencies(asked.as_deref()) {
            Ok(Some(agencies)) => {
                filter.values.insert(cx_domain::Dimension::Agency, agencies);
            }
            Ok(None) => {}
            Err(reason) => return Err(crate::auth::forbidden(ctx, reason)),
        }
        let analytics = ctx.data::<Analytics>()?;
        let first = first.unwrap_or(100);
        let q =
            ResponsesQuery { filter, first: usize::try_from(first).unwrap_or(0), after: after.as_deref().map(Cursor::decode).transpose().map_err(gql_error)? };
        Ok(super::memo::once(ctx, "responses", &q, || analytics.responses(&q)).await.map(std::sync::Arc::unwrap_or_clone).map_err(gql_error)?.into())
    }

    /// Checks a survey definition (JSON or YAML) against A-11 280.10, by edition. A11_2022: at
    /// most 15 questions, a required 5-point trust and satisfaction question, every other
    /// question mapped to a driver category, at most two free-text questions, none required.
    /// TOUCHPOINTS_A11_V2 (GSA's A-11 v2 form): a required trust question on thumbs or 1-5, a
    /// went-well and a didn't-go-well list each offering effectiveness and ease, exactly one
    /// comment, not required. An empty list: the design follows the rules.
    async fn survey_check(
        &self,
        definition: String,
        #[graphql(desc = "The rules to check against; overrides the definition's `edition` key (default A11_2022).")] edition: Option<SurveyEdition>,
    ) -> Result<Vec<crate::types::SurveyFindingOut>> {
        use async_graphql::ErrorExtensions;
        let survey = cx_domain::survey_design::SurveyDefinition::parse(&definition).map_err(|e| {
            async_graphql::Error::new(e).extend_with(|_, x| {
                x.set("code", "BAD_USER_INPUT");
                x.set("field", "definition");
            })
        })?;
        Ok(survey.check_as(survey.edition(edition.map(Into::into))).into_iter().map(Into::into).collect())
    }

    /// When each quarter's HISP feedback data of a fiscal year is due (A-11 280.16): OMB's
    /// published dates where they exist (FY 2022), else the last business day of the month
    /// after the quarter; each says which.
    async fn hisp_due_dates(&self, fiscal_year: i32) -> Result<Vec<crate::types::DueDateOut>> {
        if !(2000..=2100).contains(&fiscal_year) {
            return Err(gql_error(AnalyticsError::invalid("fiscalYear", format!("{fiscal_year} is not a fiscal year from 2000 to 2100"))));
        }
        Ok((1..=4).map(|q| cx_domain::due_dates::hisp_due_date(cx_domain::FiscalQuarter::new(fiscal_year, q)).into()).collect())
    }

    /// The versions of the lake's Delta tables now, or the last ones committed by `at`: the
    /// state answers are computed from (a filter's `asOf` reads the same state).
    async fn lake_versions(&self, ctx: &Context<'_>, at: Option<chrono::DateTime<chrono::Utc>>) -> Result<crate::types::LakeVersions> {
        let lake = &ctx.data::<Analytics>()?.lake;
        let as_of = at.map_or(cx_lake::delta::AsOf::Latest, cx_lake::delta::AsOf::Time);
        let versions = lake.versions_as_of(as_of).await.map_err(|e| gql_error(e.into()))?;
        Ok(crate::types::LakeVersions::from(&versions))
    }

    /// The offices of the lake (its offices dimension), optionally of some agencies.
    async fn offices(&self, ctx: &Context<'_>, agency: Option<Vec<String>>) -> Result<Vec<OfficeOut>> {
        let analytics = ctx.data::<Analytics>()?;
        Ok(analytics.catalog().offices.iter().filter(|o| agency.as_ref().is_none_or(|a| a.contains(&o.agency))).map(OfficeOut::from).collect())
    }
}
