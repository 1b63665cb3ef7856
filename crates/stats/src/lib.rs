//! Pure statistics on plain numbers: moments of weighted discrete distributions, confidence
//! intervals, two-group comparisons, correlation from sufficient statistics, regression from the
//! correlation matrix and relative importance, and the cell-key perturbation of published
//! counts (`cellkey`). Each function cites the formula's source and is
//! tested against published values.
//!
//! Architecture invariant: no polars, no I/O, no async. Inputs are numbers, outputs are
//! numbers, a documented `None`, or a [`StatsError`] naming the problem; never a silent NaN,
//! never a panic.

// `!(x > 0.0)` is deliberate throughout: unlike `x <= 0.0`, it is also true for NaN, so a NaN
// input takes the documented degenerate path instead of slipping through.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub mod cellkey;
pub mod correlation;
pub mod descriptive;
pub mod distribution;
pub mod hypothesis;
pub mod importance;
pub mod interval;
pub mod logistic;
pub mod regression;

pub use correlation::{pearson, CrossProducts, PairSums, Pearson};
pub use descriptive::{Bin, Distribution};
pub use distribution::{normal_quantile, t_quantile, t_sf};
pub use hypothesis::{newcombe_difference, two_proportions, welch, Comparison};
pub use importance::{importance, Importance};
pub use interval::{mean_interval, wilson, z_quantile, Interval};
pub use regression::{ols, Ols};

/// Why a statistic cannot be computed. Variables are named by index; callers map indices to
/// names.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StatsError {
    #[error("too few observations: {n} (at least {needed} needed)")]
    TooFewObservations { n: f64, needed: f64 },
    #[error("variable {index} is constant")]
    ConstantVariable { index: usize },
    #[error("the predictors are collinear (their correlation matrix is singular)")]
    Collinear,
    #[error("no predictors")]
    NoPredictors,
    #[error("{k} predictors: exact Shapley decomposition is limited to {max}")]
    TooManyPredictors { k: usize, max: usize },
}
