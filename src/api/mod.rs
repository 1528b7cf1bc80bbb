//! The `MultiCasskop` custom resource (db.orange.com/v2) and typed accessors on `CassandraCluster`.

pub mod cassandra;
pub mod lenient;
pub mod multicasskop;
pub mod owner;

pub use cassandra::CassandraClusterView;
pub use multicasskop::*;
