//! What several subcommands share; subcommands never import from each other.

pub mod contexts;
pub mod deadlines;
pub mod federation;
pub mod sites;
pub mod steps;
pub mod table;
pub mod topology;
