//! Small-cell suppression: statistics of fewer respondents than a deployment's minimum are never
//! shown, in any query or format. With the cell-key perturbation of the public role's counts
//! (`analytics::cellkey`, `stats::cellkey`) it makes the small-cell protection of
//! ARCHITECTURE.md.
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
//!
//! Across queries suppression is not enough: a suppressed cell is the difference of two shown
//! ones (the agency minus its other services, two date ranges ending a month apart). So a
//! perturbed view (`Analytics::perturbed`, the public role's) publishes every count perturbed
//! by its cell key and every statistic from perturbed counts. Decisions stay on the true
//! counts: which cells are suppressed here (with complementary suppression and the peers'
//! rule); a perturbed view then shows its n moved to the same side of the minimum
//! ([`Suppression::clip`]) and a reason without the n ([`Suppression::check_shown`]), so the
//! flag and the n shown together cannot pin the true n. What the perturbation costs, and its
//! limits (averaging many distinct differencing pairs), are in ARCHITECTURE.md.

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

    /// The count a perturbed view shows for a cell whose true count is on the `suppressed`
    /// side of `minimum`: its perturbed count moved to that side (at most `minimum − 1` for a
    /// suppressed cell, at least `minimum` for a shown one). Without it the flag and the
    /// perturbed count together could pin the true count at the boundary (suppressed with
    /// 11 shown would mean 9 under a minimum of 10, as the perturbation is at most 2); with it
    /// what is shown is a function of the perturbed count and the flag, nothing more.
    pub fn clip(perturbed: u64, suppressed: bool, minimum: u64) -> u64 {
        match (minimum, suppressed) {
            (0, _) => perturbed,
            (_, true) => perturbed.min(minimum - 1),
            (_, false) => perturbed.max(minimum),
        }
    }

    /// `check`, for a view that shows `n` (`perturbed: false`) or only a perturbed n: the
    /// decision is on the true `n`, and the reason then does not state it.
    pub fn check_shown(n: u64, minimum: u64, perturbed: bool) -> Option<String> {
        match perturbed {
            false => Suppression::check(n, minimum),
            true => (n < minimum).then(|| format!("n is below the minimum cell size of {minimum} (the n shown is perturbed)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_perturbed_n_is_shown_on_the_side_of_the_minimum_its_true_n_is_on() {
        // Suppressed (true n below 10): at most 9 shown, whatever the perturbation gave.
        assert_eq!(Suppression::clip(11, true, 10), 9);
        assert_eq!(Suppression::clip(7, true, 10), 7);
        // Shown: at least 10.
        assert_eq!(Suppression::clip(8, false, 10), 10);
        assert_eq!(Suppression::clip(12, false, 10), 12);
        // No minimum: nothing moves.
        assert_eq!(Suppression::clip(3, false, 0), 3);
        // The reason of a perturbed view does not state the true n.
        assert!(Suppression::check_shown(7, 10, true).is_some_and(|r| !r.contains('7')));
        assert_eq!(Suppression::check_shown(7, 10, false), Suppression::check(7, 10));
        assert_eq!(Suppression::check_shown(12, 10, true), None);
    }
}
