//! cxlake: analytical GraphQL over a hive-partitioned Parquet lake of federal customer-experience
//! survey responses (OMB Circular A-11 Section 280). See ARCHITECTURE.md for the module map.

pub mod domain;
pub mod stats;
pub mod store;
pub mod analytics;
pub mod generate;
pub mod ingest;
pub mod api;
