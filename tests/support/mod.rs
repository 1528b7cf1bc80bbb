//! Test-only helpers of the root package's integration tests, one file per subject.
#![allow(dead_code, unused_imports)]

pub mod registration;
pub mod status;
