//! Integration tests: one test crate (one link of the large binary), one module per capability.

mod access;
mod browser;
mod cache;
mod common;
mod corrupt;
mod downloads;
mod drivers;
mod fuzz;
mod generator;
mod hisp;
mod http;
mod ingest;
mod inventory;
mod keys;
mod leftovers;
mod limits;
mod migrate;
mod observations;
mod perturbation;
mod pruning;
mod rollups;
mod schema_drift;
mod scores;
mod submit;
mod suppression;
mod survey_design;
