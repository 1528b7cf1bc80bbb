//! multi-casskop: federates CassKop `CassandraCluster`s across Kubernetes clusters, one site at a time.
//!
//! The binary (`src/main.rs`) is only CLI wiring; everything lives here so tests can reach it.

pub mod api;
pub mod backoff;
pub mod cli;
pub mod duration;
pub mod kube_error;
pub mod merge;
pub mod rollout;
pub mod runtime;
pub mod sites;
