//! kubesim

pub mod validation;
