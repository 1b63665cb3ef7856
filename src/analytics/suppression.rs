//! Small-cell suppression: statistics of fewer respondents than a deployment's minimum are never
//! shown, in any query or format.
//!
//! Rules (documented in ARCHITECTURE.md):
//! 1. A cell (a group, or a group in one period) with fewer respondents than the minimum (default
//!    10 for scores, benchmarks, trends and alerts; 30 for driver importance) shows its n and
//!    `suppressed` with the reason; every statistic is null, the answer distribution included.
//! 2. A comparison (a change between periods, a difference from peers) is null when either side
//!    is suppressed, since one side and the difference give the other.
//! 3. Benchmarks: a cell's total is derivable from any shown entity (its score plus its peers'),
//!    so where exactly one entity of a peer group is suppressed and others are shown, the next
//!    smallest entity is suppressed too (complementary suppression); a shown entity's peer
//!    scores are suppressed when the peers number fewer respondents than the minimum; ranks and
//!    percentiles are among shown entities only.
//! 4. Alerts only test cells that are both shown.

/// The minimum cell sizes of a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suppression {
    /// Respondents a score, benchmark, trend or alert cell needs.
    pub min_cell: u64,
    /// Respondents (used) a driver-importance group needs.
    pub min_cell_drivers: u64,
}

impl Default for Suppression {
    fn default() -> Self {
        Suppression { min_cell: 10, min_cell_drivers: 30 }
    }
}

impl Suppression {
    /// No suppression (for oracle tests and trusted internal use).
    pub fn none() -> Self {
        Suppression { min_cell: 0, min_cell_drivers: 0 }
    }

    /// Why a cell of `n` respondents is suppressed under `minimum`, if it is.
    pub fn check(n: u64, minimum: u64) -> Option<String> {
        (n < minimum).then(|| format!("n = {n} is below the minimum cell size of {minimum}"))
    }
}
