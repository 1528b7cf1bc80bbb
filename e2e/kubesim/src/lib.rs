//! kubesim

pub mod patch;
pub mod rbac;
pub mod selectors;
pub mod table;
pub mod validation;
