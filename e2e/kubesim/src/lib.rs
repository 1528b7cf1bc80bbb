//! kubesim

pub mod rbac;
pub mod selectors;
pub mod validation;
