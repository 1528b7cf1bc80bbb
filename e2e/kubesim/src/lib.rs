//! kubesim

pub mod selectors;
pub mod validation;
