//! The GGUF container: the header reader, metadata values and a model summary.
//!
//! The reader parses only the header (metadata + tensor infos) from a byte prefix so that the
//! browser can hand it the first few megabytes of a multi-gigabyte file; tensor bytes are then
//! sliced out of the whole file (an mmap natively, a `Blob` slice in the browser) on demand.
//!
//! Layout of a GGUF v2/v3 file (all little-endian):
//! `"GGUF" u32:version u64:n_tensors u64:n_kv  kv*  tensor_info*  padding  data`
//! where the data section starts at the header end rounded up to `general.alignment` (32).

mod cursor;
pub mod error;
pub mod metadata;
pub mod reader;
pub mod summary;

#[cfg(test)]
pub(crate) mod test_builder;
#[cfg(test)]
mod tests;

pub use error::GgufError;
pub use metadata::{Abbreviated, MetadataArray, MetadataJson, MetadataValue, ValueType};
pub use reader::{DataStart, GgufFile, TensorInfo, DEFAULT_ALIGNMENT, MAX_ALIGNMENT, MAX_DIMS};
pub use summary::{ftype_name, ModelSummary, TypeStats};
// The tensor types live with the format maths (`formats`), which must not depend on the
// container; re-exported so `gguf::GgmlType` keeps working.
pub use crate::formats::{GgmlType, TypeIdError, ALL_TYPES};
