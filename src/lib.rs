//! cxlake: analytical GraphQL over a hive-partitioned Parquet lake of federal customer-experience
//! survey responses (OMB Circular A-11 Section 280).
//!
//! The layers are the workspace's crates (ARCHITECTURE.md has the map; Cargo refuses an upward
//! arrow). This library re-exports them under one name, for the binary, the integration tests
//! and the benches.

pub use cx_analytics as analytics;
pub use cx_domain as domain;
pub use cx_generate as generate;
pub use cx_ingest as ingest;
pub use cx_lake as store;
pub use cx_server as api;
pub use cx_sql as sql;
pub use cx_stats as stats;
