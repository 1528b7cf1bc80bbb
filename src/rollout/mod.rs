//! The rollout: a pure planner deciding the next step, and the thin I/O that carries it out.

pub mod apply;
pub mod controller;
pub mod events;
pub mod plan;
pub mod status;
