//! The survey model of OMB Circular A-11 Section 280: scales, questions (measures), coding
//! dimensions, service types, channels, stages and the federal fiscal calendar.
//!
//! Architecture invariant: pure. No I/O, no polars, no async. Everything here is plain data
//! and the rules over it, so every other module can rely on it without dragging anything in.

pub mod calendar;
pub mod codes;
pub mod due_dates;
pub mod hisp;
pub mod inventory;
pub mod observations;
pub mod survey;
pub mod survey_design;
pub mod validate;

pub use calendar::{FiscalQuarter, Period, PeriodUnit};
pub use codes::{Channel, ServiceType, Stage, US_REGIONS};
pub use survey::{Dimension, Driver, Measure, Scale, TapIndicator, TapTopic};
