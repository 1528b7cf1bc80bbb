//! Process-level concerns of the controller: leader election and its write fence, health probes, metrics, shutdown signals, telemetry.

pub mod fence;
pub mod health;
pub mod leader;
pub mod liveness;
pub mod metrics;
pub mod signals;
pub mod telemetry;
