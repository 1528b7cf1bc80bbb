//! Process-level concerns of the controller: leader election, health probes, metrics, telemetry.

pub mod health;
pub mod leader;
pub mod metrics;
pub mod telemetry;
