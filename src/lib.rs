//! multi-casskop: federates CassKop `CassandraCluster`s across Kubernetes clusters, one site at a time.
//!
//! The binary (`src/main.rs`) is only CLI wiring; everything lives here so tests can reach it.

pub mod api;
pub mod cli;
pub mod health;
pub mod merge;
pub mod metrics;
pub mod rollout;
pub mod sites;
pub mod telemetry;
