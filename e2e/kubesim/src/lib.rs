//! kubesim: in-memory simulated Kubernetes API servers and a simulated CassKop.

pub mod casskop;
