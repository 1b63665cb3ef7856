//! The federal fiscal calendar (the fiscal year starts 1 October: FY2025 Q1 is October to
//! December 2024) and the calendar periods results are grouped by. All periods are in UTC.

use chrono::{Datelike, Duration, NaiveDate};
use std::fmt;

/// A federal fiscal quarter, ordered in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FiscalQuarter {
    pub year: i32,
    pub quarter: u32,
}

/// A fiscal year or quarter out of range (`FiscalQuarter::checked`): which, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadFiscalQuarter {
    pub field: &'static str,
    pub message: String,
}

impl std::fmt::Display for BadFiscalQuarter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for BadFiscalQuarter {}

impl FiscalQuarter {
    pub fn new(year: i32, quarter: u32) -> Self {
        assert!((1..=4).contains(&quarter), "fiscal quarter must be 1-4, got {quarter}");
        Self { year, quarter }
    }

    /// A fiscal year and quarter given by a caller (an argument, a flag): fiscal years 2000 to
    /// 2100 and quarters 1-4, else an error naming which is wrong.
    pub fn checked(year: i32, quarter: u32) -> Result<Self, BadFiscalQuarter> {
        if !(2000..=2100).contains(&year) {
            return Err(BadFiscalQuarter { field: "fiscalYear", message: format!("{year} is not a fiscal year from 2000 to 2100") });
        }
        if !(1..=4).contains(&quarter) {
            return Err(BadFiscalQuarter { field: "quarter", message: format!("{quarter} is not a quarter (1-4)") });
        }
        Ok(Self { year, quarter })
    }

    /// The fiscal quarter containing `date`.
    pub fn of(date: NaiveDate) -> Self {
        let m = date.month();
        let year = if m >= 10 { date.year() + 1 } else { date.year() };
        Self { year, quarter: (m + 2) % 12 / 3 + 1 }
    }

    /// First day of the quarter.
    pub fn start(self) -> NaiveDate {
        let (y, m) = match self.quarter {
            1 => (self.year - 1, 10),
            q => (self.year, (q - 2) * 3 + 1),
        };
        NaiveDate::from_ymd_opt(y, m, 1).expect("valid quarter start")
    }

    /// The quarter after this one.
    pub fn next(self) -> Self {
        if self.quarter == 4 {
            Self::new(self.year + 1, 1)
        } else {
            Self::new(self.year, self.quarter + 1)
        }
    }

    /// Last day of the quarter.
    pub fn end(self) -> NaiveDate {
        self.next().start() - Duration::days(1)
    }

    /// Every quarter from `self` to `last`, inclusive.
    pub fn through(self, last: FiscalQuarter) -> Vec<FiscalQuarter> {
        let mut out = Vec::new();
        let mut q = self;
        while q <= last {
            out.push(q);
            q = q.next();
        }
        out
    }
}

impl fmt::Display for FiscalQuarter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FY{}Q{}", self.year, self.quarter)
    }
}

/// One period of a [`PeriodUnit`]: its label (`FY2025Q1`, `2024-11`, `2024-W46`, ...) and its
/// first and last day.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Period {
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub label: String,
}

/// The time unit results are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeriodUnit {
    /// A UTC day (telemetry is mostly daily).
    Day,
    /// ISO week, Monday to Sunday.
    Week,
    Month,
    Quarter,
    Year,
    FiscalQuarter,
    FiscalYear,
}

impl PeriodUnit {
    /// The period containing `date`.
    pub fn period(self, date: NaiveDate) -> Period {
        let (label, start, end) = self.period_of(date);
        Period { start, end, label }
    }

    /// The period a label of this unit names (`FY2026Q4`, `FY2026`, `2024-03`, `2024-W11`,
    /// `2024Q1`, `2024`, `2024-03-05`), or `None` when the label is not of this unit.
    pub fn parse(self, label: &str) -> Option<Period> {
        let ymd = |y: i32, m: u32| NaiveDate::from_ymd_opt(y, m, 1);
        let date = match self {
            PeriodUnit::Day => NaiveDate::parse_from_str(label, "%Y-%m-%d").ok()?,
            PeriodUnit::FiscalQuarter => {
                let (y, q) = label.strip_prefix("FY")?.split_once('Q')?;
                let q: u32 = q.parse().ok()?;
                (1..=4).contains(&q).then_some(())?;
                FiscalQuarter::new(y.parse().ok()?, q).start()
            }
            PeriodUnit::FiscalYear => ymd(label.strip_prefix("FY")?.parse::<i32>().ok()? - 1, 10)?,
            PeriodUnit::Month => {
                let (y, m) = label.split_once('-')?;
                ymd(y.parse().ok()?, m.parse().ok()?)?
            }
            PeriodUnit::Week => {
                let (y, w) = label.split_once("-W")?;
                NaiveDate::from_isoywd_opt(y.parse().ok()?, w.parse().ok()?, chrono::Weekday::Mon)?
            }
            PeriodUnit::Quarter => {
                let (y, q) = label.split_once('Q')?;
                let q: u32 = q.parse().ok()?;
                (1..=4).contains(&q).then_some(())?;
                ymd(y.parse().ok()?, (q - 1) * 3 + 1)?
            }
            PeriodUnit::Year => ymd(label.parse().ok()?, 1)?,
        };
        let period = self.period(date);
        (period.label == label).then_some(period)
    }

    /// The period containing `date`: its label and its first and last day.
    pub fn period_of(self, date: NaiveDate) -> (String, NaiveDate, NaiveDate) {
        let ymd = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("valid date");
        match self {
            PeriodUnit::Day => (date.format("%Y-%m-%d").to_string(), date, date),
            PeriodUnit::Week => {
                let start = date - Duration::days(date.weekday().num_days_from_monday() as i64);
                let iso = date.iso_week();
                (format!("{}-W{:02}", iso.year(), iso.week()), start, start + Duration::days(6))
            }
            PeriodUnit::Month => {
                let start = ymd(date.year(), date.month(), 1);
                let next = if date.month() == 12 { ymd(date.year() + 1, 1, 1) } else { ymd(date.year(), date.month() + 1, 1) };
                (format!("{}-{:02}", date.year(), date.month()), start, next - Duration::days(1))
            }
            PeriodUnit::Quarter => {
                let q = (date.month() - 1) / 3 + 1;
                let start = ymd(date.year(), (q - 1) * 3 + 1, 1);
                let next = if q == 4 { ymd(date.year() + 1, 1, 1) } else { ymd(date.year(), q * 3 + 1, 1) };
                (format!("{}Q{}", date.year(), q), start, next - Duration::days(1))
            }
            PeriodUnit::Year => (date.year().to_string(), ymd(date.year(), 1, 1), ymd(date.year(), 12, 31)),
            PeriodUnit::FiscalQuarter => {
                let fq = FiscalQuarter::of(date);
                (fq.to_string(), fq.start(), fq.end())
            }
            PeriodUnit::FiscalYear => {
                let fy = FiscalQuarter::of(date).year;
                (format!("FY{fy}"), ymd(fy - 1, 10, 1), ymd(fy, 9, 30))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn fiscal_year_starts_on_the_first_of_october() {
        assert_eq!(FiscalQuarter::of(d(2024, 10, 1)), FiscalQuarter::new(2025, 1));
        assert_eq!(FiscalQuarter::of(d(2024, 9, 30)), FiscalQuarter::new(2024, 4));
        assert_eq!(FiscalQuarter::of(d(2025, 1, 1)), FiscalQuarter::new(2025, 2));
        assert_eq!(FiscalQuarter::of(d(2025, 6, 30)), FiscalQuarter::new(2025, 3));
        assert_eq!(FiscalQuarter::of(d(2025, 7, 1)), FiscalQuarter::new(2025, 4));
    }

    #[test]
    fn fiscal_quarter_bounds() {
        let q1 = FiscalQuarter::new(2025, 1);
        assert_eq!((q1.start(), q1.end()), (d(2024, 10, 1), d(2024, 12, 31)));
        let q4 = FiscalQuarter::new(2025, 4);
        assert_eq!((q4.start(), q4.end()), (d(2025, 7, 1), d(2025, 9, 30)));
        assert_eq!(q4.next(), FiscalQuarter::new(2026, 1));
        assert_eq!(FiscalQuarter::new(2024, 3).through(FiscalQuarter::new(2025, 2)).len(), 4);
    }

    #[test]
    fn every_day_lies_in_its_own_quarter() {
        let mut day = d(2019, 1, 1);
        while day < d(2027, 1, 1) {
            let q = FiscalQuarter::of(day);
            assert!(q.start() <= day && day <= q.end(), "{day} not in {q}");
            day += Duration::days(1);
        }
    }

    #[test]
    fn labels_parse_back_to_their_periods() {
        let mut day = d(2023, 12, 25);
        while day < d(2025, 2, 1) {
            for unit in
                [PeriodUnit::Day, PeriodUnit::Week, PeriodUnit::Month, PeriodUnit::Quarter, PeriodUnit::Year, PeriodUnit::FiscalQuarter, PeriodUnit::FiscalYear]
            {
                let p = unit.period(day);
                assert_eq!(unit.parse(&p.label), Some(p.clone()), "{unit:?} {}", p.label);
            }
            day += Duration::days(3);
        }
        assert_eq!(PeriodUnit::FiscalQuarter.parse("FY2026Q5"), None);
        assert_eq!(PeriodUnit::Month.parse("2024-3"), None, "labels are canonical");
        assert_eq!(PeriodUnit::Month.parse("FY2026Q1"), None);
    }

    #[test]
    fn period_labels_and_bounds() {
        let day = d(2024, 11, 13); // a Wednesday
        assert_eq!(PeriodUnit::Day.period_of(day), ("2024-11-13".into(), day, day));
        assert_eq!(PeriodUnit::Week.period_of(day), ("2024-W46".into(), d(2024, 11, 11), d(2024, 11, 17)));
        assert_eq!(PeriodUnit::Month.period_of(day), ("2024-11".into(), d(2024, 11, 1), d(2024, 11, 30)));
        assert_eq!(PeriodUnit::Quarter.period_of(day), ("2024Q4".into(), d(2024, 10, 1), d(2024, 12, 31)));
        assert_eq!(PeriodUnit::Year.period_of(day).0, "2024");
        assert_eq!(PeriodUnit::FiscalQuarter.period_of(day).0, "FY2025Q1");
        assert_eq!(PeriodUnit::FiscalYear.period_of(day), ("FY2025".into(), d(2024, 10, 1), d(2025, 9, 30)));
        // ISO week 1 of 2025 starts on Monday 30 December 2024.
        assert_eq!(PeriodUnit::Week.period_of(d(2024, 12, 31)).0, "2025-W01");
    }
}
