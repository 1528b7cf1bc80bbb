//! kubesim: in-memory simulated Kubernetes API servers (HTTPS, real kubectl and kube-rs clients) and a simulated CassKop.
//!
//! Layers, bottom up: `errors`, `http` (responses), `validation`/`selectors`/`patch`/`table`
//! (pure object logic), `resources`/`rbac`, `store` (objects, tokens, watches), `objects`
//! (create/update/delete semantics), `auth`, `exec`/`nodetool` (pod exec), `cluster` (one
//! cluster's state), `handlers` (the HTTP API), `server` (the listener), `sim` (starting a Sim).
pub mod admin;
mod audit;
mod auth;
pub mod casskop;
mod cluster;
mod discovery;
mod errors;
mod exec;
mod faults;
pub mod fixtures;
mod handlers;
mod http;
pub mod kubeconfig;
pub mod kubectl;
pub mod nodetool;
mod objects;
mod openapi;
mod patch;
mod rbac;
mod resources;
mod selectors;
mod server;
mod sim;
mod store;
mod table;
mod tls;
mod validation;

pub use audit::AuditEntry;
pub use exec::RingFaults;
pub use faults::Faults;
pub use sim::{Cluster, DEFAULT_NAMESPACES, Sim, SimOptions};
