//! kubesim: in-memory simulated Kubernetes API servers (HTTPS, real kubectl and kube-rs clients) and a simulated CassKop.
//!
//! Modules, each depending only on those listed before it (`scripts/module_cycles.py` checks
//! there is no cycle): leaves (`errors`, `validation`, `schema`, `table`, `nodetool` and `cql`,
//! `tls`, `audit`, `kubeconfig`; and `casskop`, `kubectl`, `kuttl`, `fixtures`, `pod_ready`, which are clients
//! of the API); object
//! logic (`patch`, `selectors`, `rbac`, `resources`, `discovery`); `http` (responses) and
//! `openapi`; `store` (objects, tokens, watches); `auth`, `faults`, `hooks`, `objects`
//! (create/update/delete semantics, with `workloads::admission` for Deployments, ReplicaSets
//! and Services, and `pod_admission` for Pods), `exec` (pod exec, given a narrow
//! `ExecContext`); `kubelet` (the opt-in simulated kubelet, a client of the API; its `logs` part
//! is a leaf the handlers serve pods/log from); `cluster` (one cluster's state); `workloads`
//! (the simulated kube-controller-manager: deployment, replicaset and endpoints controllers,
//! foreground garbage collection); `handlers` (the HTTP API); `server` (the listener); `sim`
//! (starting a Sim) and `admin`. Only the API other crates use is public.
pub mod admin;
mod audit;
mod auth;
pub mod casskop;
mod cluster;
mod cql;
mod depth;
mod discovery;
mod errors;
mod exec;
mod faults;
pub mod fixtures;
mod freeze;
mod handlers;
mod hooks;
mod http;
pub mod kubeconfig;
pub mod kubectl;
mod kubelet;
pub mod kuttl;
pub mod nodetool;
mod objects;
mod openapi;
mod patch;
mod pod_admission;
pub mod pod_ready;
mod rbac;
mod resources;
mod schema;
mod selectors;
mod server;
mod sim;
mod store;
mod table;
mod tls;
mod validation;
mod workloads;

pub use audit::AuditEntry;
pub use exec::RingFaults;
pub use faults::Faults;
pub use hooks::{HookRun, Hooks};
pub use kubelet::KubeletOptions;
pub use sim::{Cluster, DEFAULT_NAMESPACES, Sim, SimOptions};
