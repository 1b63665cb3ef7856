//! Pure statistics on plain numbers: moments of weighted discrete distributions, confidence
//! intervals. Each function cites the formula's source and is tested against published values.
//!
//! Architecture invariant: no polars, no I/O, no async. Inputs are numbers, outputs are
//! numbers or a documented `None` for degenerate input; never a silent NaN, never a panic.

pub mod descriptive;
pub mod interval;

pub use descriptive::{Bin, Distribution};
pub use interval::{mean_interval, wilson, z_quantile, Interval};
