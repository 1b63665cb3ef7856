//! GraphQL of tapped-indicator driver importance (Touchpoints A-11 v2): decodes the arguments,
//! calls `analytics::tapped`, converts the result.

use super::query::{dedup, gql_error};
use super::types::{GroupDimension, GroupOut, OutcomeName, PeriodUnit, ResponseFilter, TapTopicName, TappedModelName};
use cx_analytics::tapped::{TapCoefficient, TapLift, TappedDriver, TappedGroup, TappedModel, TappedQuery};

/// Why the public role may not run `tappedDriverImportance`: its outputs are fitted to exact
/// pattern counts, and some (the log-likelihoods, the lift shares) give those counts back, so
/// two groups differing by a small cell would give that cell's counts by subtraction.
pub const PUBLIC_REFUSAL: &str = "tappedDriverImportance is not offered to the public role: its log-likelihoods and lift shares are fitted to exact counts, which differencing two queries would turn into a small cell's answers; use a key of another role (analyst or above)";
use async_graphql::{Context, Enum, Object, Result, SimpleObject};
use cx_domain::TapIndicator;

#[derive(Default)]
pub struct TappedQueryRoot;

/// Which list an indicator is on.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum TapDirection {
    /// "What went well?"
    Positive,
    /// "What didn't go so well?"
    Negative,
}

/// A tapped indicator: a topic on the went-well (POSITIVE_) or didn't-go-well (NEGATIVE_) list;
/// the lake's `positive_<topic>` / `negative_<topic>` columns.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum TapIndicatorName {
    PositiveEffectiveness,
    PositiveEase,
    PositiveEfficiency,
    PositiveTransparency,
    PositiveHumanity,
    PositiveEmployee,
    PositiveOther,
    NegativeEffectiveness,
    NegativeEase,
    NegativeEfficiency,
    NegativeTransparency,
    NegativeHumanity,
    NegativeEmployee,
    NegativeOther,
}

impl TapIndicatorName {
    /// Every name, in [`TapIndicator::all`] order.
    const ALL: [TapIndicatorName; 14] = {
        use TapIndicatorName::*;
        [
            PositiveEffectiveness,
            PositiveEase,
            PositiveEfficiency,
            PositiveTransparency,
            PositiveHumanity,
            PositiveEmployee,
            PositiveOther,
            NegativeEffectiveness,
            NegativeEase,
            NegativeEfficiency,
            NegativeTransparency,
            NegativeHumanity,
            NegativeEmployee,
            NegativeOther,
        ]
    };
}

impl From<TapIndicatorName> for TapIndicator {
    fn from(n: TapIndicatorName) -> TapIndicator {
        let i = TapIndicatorName::ALL.iter().position(|m| *m == n).expect("every name is listed");
        TapIndicator::all()[i]
    }
}

impl From<TapIndicator> for TapIndicatorName {
    fn from(t: TapIndicator) -> TapIndicatorName {
        let i = TapIndicator::all().iter().position(|m| *m == t).expect("every indicator is listed");
        TapIndicatorName::ALL[i]
    }
}

fn direction(t: TapIndicator) -> TapDirection {
    if t.positive {
        TapDirection::Positive
    } else {
        TapDirection::Negative
    }
}

/// One indicator's coefficient in the model.
#[derive(SimpleObject, Debug, Clone)]
pub struct TapCoefficientOut {
    pub indicator: TapIndicatorName,
    pub topic: TapTopicName,
    pub direction: TapDirection,
    /// Log-odds ratio (LOGISTIC) or answer points on the 1-5 scale (LINEAR); null when dropped.
    pub estimate: Option<f64>,
    /// LOGISTIC: exp(estimate).
    pub odds_ratio: Option<f64>,
    pub std_error: Option<f64>,
    /// 95% Wald interval of the estimate (normal for LOGISTIC, Student t for LINEAR).
    pub low: Option<f64>,
    pub high: Option<f64>,
    /// Two-sided Wald p-value.
    pub p_value: Option<f64>,
    /// Why there is no estimate: not offered (or not on the group's most common form), never
    /// tapped, tapped by everyone, collinear with other indicators, separation.
    pub dropped: Option<String>,
}

impl TapCoefficientOut {
    fn new(c: TapCoefficient, model: TappedModel) -> TapCoefficientOut {
        TapCoefficientOut {
            indicator: c.indicator.into(),
            topic: c.indicator.topic.into(),
            direction: direction(c.indicator),
            estimate: c.estimate,
            odds_ratio: if model == TappedModel::Logistic { c.estimate.map(f64::exp) } else { None },
            std_error: c.std_error,
            low: c.interval.map(|i| i.low),
            high: c.interval.map(|i| i.high),
            p_value: c.p_value,
            dropped: c.dropped,
        }
    }
}

/// A topic's importance: its went-well and didn't-go-well indicators as one set.
#[derive(SimpleObject, Debug, Clone)]
pub struct TappedDriverOut {
    pub topic: TapTopicName,
    /// General dominance (Shapley value) of McFadden's R² (LOGISTIC) or R² (LINEAR) over the
    /// topic sets; the topics' values sum to the full model's.
    pub importance: Option<f64>,
    /// importance / their sum.
    pub share: Option<f64>,
    /// 1 = most important.
    pub rank: Option<u32>,
    /// LINEAR: the set's Johnson relative weights summed, and their share.
    pub johnson: Option<f64>,
    pub johnson_share: Option<f64>,
    /// Bootstrap percentile 95% intervals (with `bootstrap`).
    pub importance_low: Option<f64>,
    pub importance_high: Option<f64>,
    pub share_low: Option<f64>,
    pub share_high: Option<f64>,
}

impl From<TappedDriver> for TappedDriverOut {
    fn from(d: TappedDriver) -> TappedDriverOut {
        TappedDriverOut {
            topic: d.topic.into(),
            importance: d.importance,
            share: d.share,
            rank: d.rank,
            johnson: d.johnson,
            johnson_share: d.johnson_share,
            importance_low: d.importance_ci.map(|c| c.low),
            importance_high: d.importance_ci.map(|c| c.high),
            share_low: d.share_ci.map(|c| c.low),
            share_high: d.share_ci.map(|c| c.high),
        }
    }
}

/// The agree share (thumbs up; 4-5) of those who tapped an indicator against those shown it who
/// did not.
#[derive(SimpleObject, Debug, Clone)]
pub struct TapLiftOut {
    pub indicator: TapIndicatorName,
    pub topic: TapTopicName,
    pub direction: TapDirection,
    /// Responses shown the indicator that answered the outcome.
    pub shown: u64,
    pub tapped: u64,
    pub agree_tapped: Option<f64>,
    pub agree_not_tapped: Option<f64>,
    /// agreeTapped − agreeNotTapped.
    pub difference: Option<f64>,
    /// Newcombe's hybrid score 95% interval of the difference (Kish's effective n when weighted).
    pub low: Option<f64>,
    pub high: Option<f64>,
    /// True when withheld: fewer than the minimum cell size tapped or did not tap.
    pub suppressed: bool,
    pub suppressed_reason: Option<String>,
}

impl From<TapLift> for TapLiftOut {
    fn from(l: TapLift) -> TapLiftOut {
        TapLiftOut {
            indicator: l.indicator.into(),
            topic: l.indicator.topic.into(),
            direction: direction(l.indicator),
            shown: l.shown,
            tapped: l.tapped,
            agree_tapped: l.agree_tapped,
            agree_not_tapped: l.agree_not_tapped,
            difference: l.difference,
            low: l.interval.map(|i| i.low),
            high: l.interval.map(|i| i.high),
            suppressed: l.suppressed.is_some(),
            suppressed_reason: l.suppressed,
        }
    }
}

/// Tapped-indicator importance in one group.
#[derive(SimpleObject, Debug, Clone)]
pub struct TappedDriverGroupOut {
    #[graphql(flatten)]
    pub group: GroupOut,
    pub outcome: OutcomeName,
    pub model: TappedModelName,
    /// Responses used: answered the outcome and were shown every indicator of the model.
    pub n: u64,
    /// Answered the outcome on a form without some of the model's indicators (left out).
    pub n_dropped: u64,
    /// Answered the outcome, shown none of the asked indicators (not in the analysis).
    pub n_not_shown: u64,
    /// Shown an asked indicator but did not answer the outcome (left out; for LINEAR, Likert
    /// responses only).
    pub n_outcome_missing: u64,
    /// Kish's effective n of the responses used (n unless weighted).
    pub n_effective: f64,
    /// LOGISTIC: responses agreeing (sum of weights when weighted).
    pub events: Option<f64>,
    /// LOGISTIC: log-likelihood of the model and of the intercept-only model.
    pub log_likelihood: Option<f64>,
    pub null_log_likelihood: Option<f64>,
    /// LOGISTIC: McFadden's pseudo-R², 1 − ℓ/ℓ₀.
    pub mcfadden: Option<f64>,
    /// LOGISTIC: Nagelkerke's pseudo-R².
    pub nagelkerke: Option<f64>,
    /// LOGISTIC: Estrella's pseudo-R².
    pub estrella: Option<f64>,
    /// LINEAR: R² and adjusted R².
    pub r2: Option<f64>,
    pub adj_r2: Option<f64>,
    /// Log-odds (LOGISTIC) or the 1-5 answer (LINEAR) with no indicator tapped.
    pub intercept: Option<f64>,
    /// Why this group has no estimates.
    pub error: Option<String>,
    /// Small n (below max(30, 10 x parameters)), indicators not offered, never tapped or
    /// separating the outcome, responses left out, degenerate bootstrap replicates.
    pub warnings: Vec<String>,
    pub bootstrap_replicates: u32,
    pub coefficients: Vec<TapCoefficientOut>,
    pub drivers: Vec<TappedDriverOut>,
    pub lift: Vec<TapLiftOut>,
    /// True when the estimates are withheld: fewer respondents used than the deployment's
    /// minimum cell size for driver importance.
    pub suppressed: bool,
    pub suppressed_reason: Option<String>,
}

impl TappedDriverGroupOut {
    fn new(g: TappedGroup, outcome: OutcomeName) -> TappedDriverGroupOut {
        TappedDriverGroupOut {
            group: GroupOut::from(&g.key),
            outcome,
            model: g.model.into(),
            n: g.n,
            n_dropped: g.n_dropped,
            n_not_shown: g.n_not_shown,
            n_outcome_missing: g.n_outcome_missing,
            n_effective: g.n_effective,
            events: g.events,
            log_likelihood: g.log_likelihood,
            null_log_likelihood: g.null_log_likelihood,
            mcfadden: g.mcfadden,
            nagelkerke: g.nagelkerke,
            estrella: g.estrella,
            r2: g.r2,
            adj_r2: g.adj_r2,
            intercept: g.intercept,
            error: g.error,
            warnings: g.warnings,
            bootstrap_replicates: g.bootstrap_replicates,
            coefficients: g.coefficients.into_iter().map(|c| TapCoefficientOut::new(c, g.model)).collect(),
            drivers: g.drivers.into_iter().map(Into::into).collect(),
            lift: g.lift.into_iter().map(Into::into).collect(),
            suppressed: g.suppressed.is_some(),
            suppressed_reason: g.suppressed,
        }
    }
}

#[Object]
impl TappedQueryRoot {
    /// What drives trust or satisfaction on tapped-indicator surveys (A-11 280.10 design 1: the
    /// Touchpoints A-11 v2 form's "What went well?" / "What didn't go so well?" lists), per
    /// group. LOGISTIC (default): logistic regression of "agrees" (thumbs up, or 4-5 on the 1-5
    /// variant; both scales pooled) on the indicators, with odds ratios, Wald intervals,
    /// McFadden, Nagelkerke and Estrella pseudo-R²; LINEAR: least squares of the 1-5 answer on
    /// Likert responses. Each topic's importance is the general dominance (Shapley value) of
    /// the pseudo-R² (or R²) over topic sets (a topic's two indicators together), with shares
    /// and ranks; `lift` compares the agree share of those who tapped an indicator with those
    /// shown it who did not (Newcombe interval). A response is used when it answers the outcome
    /// and was shown every indicator of the model: the indicators of the group's most common
    /// form (others are left out of that group's model with a warning). Computed from the
    /// pattern counts of one pass over the data; with `bootstrap: B`, percentile 95% intervals
    /// of importance and shares from B Poisson bootstrap replicates of those counts (fixed
    /// `seed`), each replicate's models fitted by one Newton step from the full sample's
    /// estimates (the one-step GLM bootstrap). Not offered to the public role (FORBIDDEN): its
    /// fits would give exact counts back, and differences of them a small cell's answers.
    #[allow(clippy::too_many_arguments)]
    async fn tapped_driver_importance(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "TRUST (default) or SATISFACTION.")] outcome: Option<OutcomeName>,
        #[graphql(desc = "LOGISTIC (default) or LINEAR.")] model: Option<TappedModelName>,
        #[graphql(desc = "Indicators of the model (default: all fourteen).")] indicators: Option<Vec<TapIndicatorName>>,
        filter: Option<ResponseFilter>,
        #[graphql(desc = "Dimensions to group by (none: one overall group).")] group_by: Option<Vec<GroupDimension>>,
        period: Option<PeriodUnit>,
        #[graphql(desc = "Use the survey weights (default false): frequency weights for LOGISTIC, precision weights for LINEAR.")] weighted: Option<bool>,
        #[graphql(desc = "Number of bootstrap replicates (1-2000) for intervals of importance and shares.")] bootstrap: Option<u32>,
        #[graphql(desc = "Seed of the bootstrap (default 2025).")] seed: Option<u64>,
    ) -> Result<Vec<TappedDriverGroupOut>> {
        if !crate::auth::principal(ctx).role.exact_counts() {
            return Err(crate::auth::forbidden(ctx, PUBLIC_REFUSAL.into()));
        }
        // The exact-count view (the public role was refused above), recording what served it.
        let analytics = crate::query::analytics_for(ctx).await?;
        let outcome = outcome.unwrap_or(OutcomeName::Trust);
        let q = TappedQuery {
            filter: filter.unwrap_or_default().into(),
            group_by: dedup(group_by.unwrap_or_default().into_iter().map(Into::into)),
            period: period.map(Into::into),
            outcome: outcome.into(),
            model: model.unwrap_or(TappedModelName::Logistic).into(),
            indicators: match indicators {
                Some(list) => dedup(list.into_iter().map(Into::into)),
                None => TapIndicator::all(),
            },
            weighted: weighted.unwrap_or(false),
            bootstrap,
            seed: seed.unwrap_or(2025),
            confidence: 0.95,
        };
        let groups = super::memo::once(ctx, "tapped_importance", &q, || analytics.tapped_importance(&q))
            .await
            .map(std::sync::Arc::unwrap_or_clone)
            .map_err(gql_error)?;
        Ok(groups.into_iter().map(|g| TappedDriverGroupOut::new(g, outcome)).collect())
    }
}
