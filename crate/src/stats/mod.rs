//! Weight statistics the lab draws.
pub mod histogram;
pub use histogram::{tensor_histogram, Histogram, HistogramError};
