//! When HISP feedback data for a fiscal quarter is due (A-11 280.16): "the last business day
//! of the month following the last day of the quarter". OMB's published FY 2022 dates (January
//! 28, April 29, July 29, October 28) are the last Fridays of those months, not always the last
//! business day (January 31, 2022 was a Monday), so published dates win where a table exists
//! and the rule applies otherwise; every due date says which it is.
//!
//! Business days exclude weekends and federal holidays as observed by federal employees
//! (5 U.S.C. 6103 and OPM's rules: a holiday on Saturday is observed the Friday before, one on
//! Sunday the Monday after; Juneteenth from 2021).

use super::FiscalQuarter;
use chrono::{Datelike, Duration, NaiveDate, Weekday};
use serde::Serialize;

/// Where a due date comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DueDateSource {
    /// A date OMB published (280.16).
    Published,
    /// The rule: last business day of the month after the quarter.
    Rule,
}

impl DueDateSource {
    /// `PUBLISHED` or `RULE`, as the API and downloads show it.
    pub fn as_str(self) -> &'static str {
        match self {
            DueDateSource::Published => "PUBLISHED",
            DueDateSource::Rule => "RULE",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueDate {
    pub quarter: FiscalQuarter,
    pub date: NaiveDate,
    pub source: DueDateSource,
}

/// Dates OMB published, by fiscal year and quarter (A-11 280.16, FY 2022).
const PUBLISHED: [(i32, u32, (i32, u32, u32)); 4] = [(2022, 1, (2022, 1, 28)), (2022, 2, (2022, 4, 29)), (2022, 3, (2022, 7, 29)), (2022, 4, (2022, 10, 28))];

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("a valid calendar date")
}

/// The n-th (1-based) `weekday` of a month; n = -1 for the last.
fn nth_weekday(year: i32, month: u32, weekday: Weekday, n: i32) -> NaiveDate {
    if n > 0 {
        NaiveDate::from_weekday_of_month_opt(year, month, weekday, n as u8).expect("the n-th weekday exists")
    } else {
        let mut d = last_of_month(year, month);
        while d.weekday() != weekday {
            d -= Duration::days(1);
        }
        d
    }
}

fn last_of_month(year: i32, month: u32) -> NaiveDate {
    let (ny, nm) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
    date(ny, nm, 1) - Duration::days(1)
}

/// The weekday on which a fixed-date holiday is observed.
fn observed(d: NaiveDate) -> NaiveDate {
    match d.weekday() {
        Weekday::Sat => d - Duration::days(1),
        Weekday::Sun => d + Duration::days(1),
        _ => d,
    }
}

/// The federal holidays observed in calendar year `year` (dates off work), sorted. New Year's
/// Day of the next year falling on a Saturday is observed on December 31 of this one.
pub fn federal_holidays(year: i32) -> Vec<NaiveDate> {
    let mut days = vec![
        observed(date(year, 1, 1)),
        nth_weekday(year, 1, Weekday::Mon, 3),  // Birthday of Martin Luther King, Jr.
        nth_weekday(year, 2, Weekday::Mon, 3),  // Washington's Birthday
        nth_weekday(year, 5, Weekday::Mon, -1), // Memorial Day
        observed(date(year, 7, 4)),
        nth_weekday(year, 9, Weekday::Mon, 1),  // Labor Day
        nth_weekday(year, 10, Weekday::Mon, 2), // Columbus Day
        observed(date(year, 11, 11)),
        nth_weekday(year, 11, Weekday::Thu, 4), // Thanksgiving Day
        observed(date(year, 12, 25)),
    ];
    if year >= 2021 {
        days.push(observed(date(year, 6, 19))); // Juneteenth National Independence Day
    }
    let next_new_year = observed(date(year + 1, 1, 1));
    if next_new_year.year() == year {
        days.push(next_new_year);
    }
    days.retain(|d| d.year() == year);
    days.sort();
    days
}

/// Whether federal offices are open on `d`.
pub fn is_business_day(d: NaiveDate) -> bool {
    !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) && !federal_holidays(d.year()).contains(&d)
}

/// The last business day of a month.
pub fn last_business_day(year: i32, month: u32) -> NaiveDate {
    let mut d = last_of_month(year, month);
    while !is_business_day(d) {
        d -= Duration::days(1);
    }
    d
}

/// When the feedback data of `quarter` is due, and whether the date was published or derived.
pub fn hisp_due_date(quarter: FiscalQuarter) -> DueDate {
    if let Some((_, _, (y, m, d))) = PUBLISHED.iter().find(|(fy, q, _)| *fy == quarter.year && *q == quarter.quarter) {
        return DueDate { quarter, date: date(*y, *m, *d), source: DueDateSource::Published };
    }
    let month_after = quarter.end() + Duration::days(1);
    DueDate { quarter, date: last_business_day(month_after.year(), month_after.month()), source: DueDateSource::Rule }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn federal_holidays_match_opm_published_calendars() {
        // OPM's federal holiday calendars for 2021 and 2024 (observed dates).
        let d = |m, day, y| date(y, m, day);
        assert_eq!(
            federal_holidays(2024),
            vec![
                d(1, 1, 2024),
                d(1, 15, 2024),
                d(2, 19, 2024),
                d(5, 27, 2024),
                d(6, 19, 2024),
                d(7, 4, 2024),
                d(9, 2, 2024),
                d(10, 14, 2024),
                d(11, 11, 2024),
                d(11, 28, 2024),
                d(12, 25, 2024)
            ]
        );
        // 2021: Independence Day (Sunday) on Monday July 5; Christmas (Saturday) on Friday
        // December 24; New Year's Day 2022 (Saturday) on Friday December 31, 2021.
        assert_eq!(
            federal_holidays(2021),
            vec![
                d(1, 1, 2021),
                d(1, 18, 2021),
                d(2, 15, 2021),
                d(5, 31, 2021),
                d(6, 18, 2021),
                d(7, 5, 2021),
                d(9, 6, 2021),
                d(10, 11, 2021),
                d(11, 11, 2021),
                d(11, 25, 2021),
                d(12, 24, 2021),
                d(12, 31, 2021)
            ]
        );
        // ... so 2022 has no observed New Year's Day of its own.
        assert!(!federal_holidays(2022).iter().any(|h| h.month() == 1 && h.day() <= 3));
    }

    #[test]
    fn published_fy2022_dates_are_used_and_the_rule_elsewhere() {
        let fy22: Vec<(NaiveDate, DueDateSource)> = (1..=4).map(|q| hisp_due_date(FiscalQuarter::new(2022, q))).map(|d| (d.date, d.source)).collect();
        assert_eq!(
            fy22,
            vec![
                (date(2022, 1, 28), DueDateSource::Published),
                (date(2022, 4, 29), DueDateSource::Published),
                (date(2022, 7, 29), DueDateSource::Published),
                (date(2022, 10, 28), DueDateSource::Published),
            ]
        );
        // The rule would have given January 31 (a Monday), which is why the table wins.
        assert_eq!(last_business_day(2022, 1), date(2022, 1, 31));
        // FY 2023: January 31 (Tue), April 28 (Fri; the 30th is a Sunday), July 31 (Mon), October 31 (Tue).
        let fy23: Vec<NaiveDate> = (1..=4).map(|q| hisp_due_date(FiscalQuarter::new(2023, q)).date).collect();
        assert_eq!(fy23, vec![date(2023, 1, 31), date(2023, 4, 28), date(2023, 7, 31), date(2023, 10, 31)]);
        assert!((1..=4).all(|q| hisp_due_date(FiscalQuarter::new(2023, q)).source == DueDateSource::Rule));
        // FY 2026 Q3: July 31, 2026 is a Friday.
        assert_eq!(hisp_due_date(FiscalQuarter::new(2026, 3)).date, date(2026, 7, 31));
        // A month ending on a Saturday: October 2026 ends on a Saturday, due Friday the 30th.
        assert_eq!(hisp_due_date(FiscalQuarter::new(2026, 4)).date, date(2026, 10, 30));
    }

    #[test]
    fn a_holiday_at_month_end_is_skipped() {
        // May 31, 2027 is Memorial Day (the last Monday of May): the last business day is Friday the 28th.
        assert_eq!(last_business_day(2027, 5), date(2027, 5, 28));
        // December 31, 2021 was the observed New Year's Day 2022: the last business day was the 30th.
        assert_eq!(last_business_day(2021, 12), date(2021, 12, 30));
    }
}
