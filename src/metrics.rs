//! metrics (to be written)
