//! Weight statistics the lab draws.
pub mod histogram;
pub mod metrics;
pub mod weights;
pub use histogram::{tensor_histogram, values_histogram, Histogram, HistogramError};
pub use metrics::{error_metrics, format_report, ErrorMetrics, FormatReport};
pub use weights::{level_occupancy, weight_stats, WeightStats, DEFAULT_OUTLIER_K};
