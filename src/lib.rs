//! cxlake: analytical GraphQL over a hive-partitioned Parquet lake of federal customer-experience
//! survey responses (OMB Circular A-11 Section 280). See ARCHITECTURE.md for the module map.

pub mod analytics;
pub mod api;
pub mod domain;
pub mod generate;
pub mod ingest;
pub mod stats;
pub mod store;
