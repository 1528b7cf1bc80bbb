//! The rollout of a MultiCasskop, one reconcile at a time: observe → plan → act → report.
//!
//! `controller` wires it to kube-runtime, `context` holds what the steps share; `observe` gathers the planner's input from the site
//! caches (`site_caches`); `plan` decides (pure); `act` carries out the one action through
//! `apply` (the API calls); `report` writes the status (`status`, pure) and Events (`events`).
//! `joining` puts a site added to a running federation first; `removal` handles the sites that
//! left `override` (planned with the others, one site in progress at a time); `refusal` blocks a
//! site whose change CassKop put back, and tries it again with backoff.

mod act;
pub mod apply;
mod context;
pub mod controller;
pub mod create;
pub mod events;
mod joining;
mod observe;
pub mod pause;
pub mod plan;
pub mod poison;
mod quiet;
mod refusal;
mod removal;
mod report;
mod seeds;
mod site_caches;
pub mod status;
mod written;
