//! What kind of failure an error is, as data. Messages are for people and may be reworded; the
//! web worker, the page and the tests branch on [`ErrorKind`] instead (it crosses the wasm
//! boundary as the thrown `Error`'s `kind` field, its details as fields beside it).
//!
//! Every error enum of the core maps each of its variants to a kind here, in one place, so a
//! new variant without a kind fails to compile.

use serde::Serialize;

use crate::calib::act_setup::ActSetupError;
use crate::calib::ranges::RangeRuleError;
use crate::calib::CalibError;
use crate::formats::bnb::export::BnbParseError;
use crate::formats::{FormatError, QuantError, SchemeError};
use crate::gguf::{GgufError, TypeIdError};
use crate::io::export::ExportError;
use crate::io::gptq_layout::LayoutError;
use crate::io::imatrix::ImatrixError;
use crate::io::{GgufWriteError, SafetensorsError};
use crate::methods::layer_error::LayerErrorError;
use crate::methods::smoothquant::SmoothQuantError;
use crate::model::activations::ActivationError;
use crate::model::eval::EvalError;
use crate::model::hf_gguf::HfConvertError;
use crate::model::hf_layout::HfLayoutError;
use crate::model::quantize::QuantizeModelError;
use crate::model::tasks::TaskError;
use crate::model::{ActQuantError, KvTypeError, ModelError};
use crate::stats::HistogramError;
use crate::tokenizer::TokenizerError;

/// Which input of a call was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify))]
pub enum Input {
    /// The file's bytes: not a GGUF or safetensors file, truncated, internally inconsistent.
    File,
    /// A well-formed file whose model is incomplete or inconsistent (metadata, tensors, tokenizer).
    Model,
    /// A format or type name.
    Format,
    /// An option of the call (a number out of range, an unknown name, a missing field).
    Options,
    /// Values or bytes handed to the call (length, non-finite values, partial blocks).
    Data,
    /// The text to tokenize, evaluate or generate from.
    Text,
}

/// The kind of a failure, with the details a caller can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify))]
pub enum ErrorKind {
    /// The caller's progress callback asked to stop after `done` of `total` steps.
    Cancelled { done: u64, total: u64 },
    /// An input is invalid; the message says how.
    BadInput { what: Input },
    /// A valid input that this build cannot handle (architecture, tensor type, format pairing).
    Unsupported,
    /// The GPU adapter lacks a feature the request needs (e.g. `shader-f16`).
    MissingFeature { feature: String },
    /// A size or count past what the device or state allows.
    LimitExceeded { limit: String, needed: u64, available: u64 },
    /// No GPU adapter, or the adapter refused to create a device.
    NoGpu,
    /// The GPU device was lost; a new one may be acquired.
    DeviceLost,
    /// Any other GPU failure (validation, out of memory, readback).
    Gpu,
    /// Reading or writing a file failed.
    Io,
    /// A bug or misuse of the API (e.g. a model busy with another call).
    Internal,
}

impl ErrorKind {
    pub fn cancelled(done: usize, total: usize) -> ErrorKind {
        ErrorKind::Cancelled { done: done as u64, total: total as u64 }
    }

    pub fn bad(what: Input) -> ErrorKind {
        ErrorKind::BadInput { what }
    }
}

/// The [`ErrorKind`] of an error value.
pub trait HasKind {
    fn kind(&self) -> ErrorKind;
}

impl HasKind for GgufError {
    fn kind(&self) -> ErrorKind {
        match self {
            GgufError::BigEndian { .. } | GgufError::Version1 | GgufError::UnsupportedVersion(_) => {
                ErrorKind::Unsupported
            }
            GgufError::TensorType { source, .. } => source.kind(),
            _ => ErrorKind::bad(Input::File),
        }
    }
}

impl HasKind for TypeIdError {
    fn kind(&self) -> ErrorKind {
        match self {
            TypeIdError::Retired(_) | TypeIdError::Unknown(_) => ErrorKind::Unsupported,
        }
    }
}

impl HasKind for FormatError {
    fn kind(&self) -> ErrorKind {
        match self {
            FormatError::Unsupported(_) => ErrorKind::Unsupported,
            FormatError::NotWholeBlocks { .. }
            | FormatError::WrongByteCount { .. }
            | FormatError::NonFinite { .. }
            | FormatError::ImportanceLength { .. }
            | FormatError::BadImportance { .. } => ErrorKind::bad(Input::Data),
        }
    }
}

impl HasKind for QuantError {
    fn kind(&self) -> ErrorKind {
        match self {
            QuantError::NonFinite { .. } | QuantError::LengthMismatch { .. } => ErrorKind::bad(Input::Data),
            // The scheme cannot split this tensor's shape into its groups or blocks.
            QuantError::Shape { .. } => ErrorKind::Unsupported,
            QuantError::Scheme { .. } => ErrorKind::bad(Input::Format),
            QuantError::Format(e) => e.kind(),
        }
    }
}

impl HasKind for SchemeError {
    fn kind(&self) -> ErrorKind {
        match self {
            SchemeError::Unknown { .. } | SchemeError::Invalid { .. } => ErrorKind::bad(Input::Format),
        }
    }
}

impl HasKind for KvTypeError {
    fn kind(&self) -> ErrorKind {
        match self {
            KvTypeError::Unknown { .. } => ErrorKind::bad(Input::Options),
            KvTypeError::NotOnGpu { .. } => ErrorKind::Unsupported,
        }
    }
}

impl HasKind for ActQuantError {
    fn kind(&self) -> ErrorKind {
        match self {
            ActQuantError::Unknown { .. }
            | ActQuantError::NoRanges { .. }
            | ActQuantError::MissingRange { .. }
            | ActQuantError::OutliersNeedInt8 { .. }
            | ActQuantError::BadThreshold { .. } => ErrorKind::bad(Input::Options),
            ActQuantError::BadRange { .. } => ErrorKind::bad(Input::Data),
        }
    }
}

impl HasKind for ActSetupError {
    fn kind(&self) -> ErrorKind {
        match self {
            ActSetupError::BadAlpha { .. }
            | ActSetupError::RangeNotStatic { .. }
            | ActSetupError::ThresholdNotLlmInt8 { .. }
            | ActSetupError::NoCalibration { .. } => ErrorKind::bad(Input::Options),
            ActSetupError::Rule { source, .. } => source.kind(),
            ActSetupError::Quant(e) => e.kind(),
            ActSetupError::Ranges(e) | ActSetupError::SmoothCalib(e) => e.kind(),
            ActSetupError::Smooth(e) => e.kind(),
            ActSetupError::LlmInt8(e) => e.kind(),
        }
    }
}

impl HasKind for HistogramError {
    fn kind(&self) -> ErrorKind {
        match self {
            HistogramError::BadBins { .. } | HistogramError::BadRange { .. } | HistogramError::BadRowLength { .. } => {
                ErrorKind::bad(Input::Options)
            }
            HistogramError::Format(e) => e.kind(),
        }
    }
}

impl HasKind for ModelError {
    fn kind(&self) -> ErrorKind {
        match self {
            ModelError::Gguf(e) => e.kind(),
            ModelError::Safetensors(e) => e.kind(),
            ModelError::Quant(e) | ModelError::QuantizeTensor { source: e, .. } => e.kind(),
            ModelError::QuantizeMethod { .. } => ErrorKind::bad(Input::Data),
            #[cfg(feature = "gpu")]
            ModelError::Gpu(e) => e.kind(),
            ModelError::UnsupportedArchitecture { .. }
            | ModelError::UnsupportedHfArchitecture { .. }
            | ModelError::UnsupportedTensorType { .. }
            | ModelError::UnexpectedTensor { .. }
            | ModelError::UnsupportedHfTokenizer { .. }
            | ModelError::NotImplemented(_) => ErrorKind::Unsupported,
            ModelError::MissingMetadata { .. }
            | ModelError::BadMetadata { .. }
            | ModelError::MissingTensor { .. }
            | ModelError::BadShape { .. }
            | ModelError::BadTensorShape { .. }
            | ModelError::HfConfig { .. }
            | ModelError::NoHfConfig
            | ModelError::HfTokenizer { .. }
            | ModelError::NoHfTokenizer
            | ModelError::VocabExceedsEmbedding { .. } => ErrorKind::bad(Input::Model),
            ModelError::TokenOutOfRange { .. } => ErrorKind::bad(Input::Text),
            ModelError::PositionOutOfRange { pos, capacity } => ErrorKind::LimitExceeded {
                limit: "context positions".into(),
                needed: *pos as u64 + 1,
                available: *capacity as u64,
            },
        }
    }
}

impl HasKind for ActivationError {
    fn kind(&self) -> ErrorKind {
        match self {
            ActivationError::NoTokens => ErrorKind::bad(Input::Text),
            ActivationError::Cancelled { done, total } => ErrorKind::cancelled(*done, *total),
            ActivationError::Model(e) => e.kind(),
        }
    }
}

impl HasKind for CalibError {
    fn kind(&self) -> ErrorKind {
        match self {
            CalibError::TooFewTokens { .. } => ErrorKind::bad(Input::Text),
            CalibError::ChunkTooLong { .. } => ErrorKind::bad(Input::Options),
            CalibError::Cancelled { done, total } => ErrorKind::cancelled(*done, *total),
            // A weight the quantizer refuses (NaN) or a Hessian it cannot factor: the data.
            CalibError::Quantizer { .. } => ErrorKind::bad(Input::Data),
            CalibError::Model(e) => e.kind(),
            CalibError::Range(e) => e.kind(),
        }
    }
}

impl HasKind for LayerErrorError {
    fn kind(&self) -> ErrorKind {
        match self {
            LayerErrorError::UnknownTensor { .. }
            | LayerErrorError::NoTensors
            | LayerErrorError::NotQuantized { .. } => ErrorKind::bad(Input::Options),
            LayerErrorError::Unsupported { .. } => ErrorKind::Unsupported,
            LayerErrorError::Quantize { .. } => ErrorKind::bad(Input::Data),
            LayerErrorError::Calib(e) => e.kind(),
        }
    }
}

impl HasKind for SmoothQuantError {
    fn kind(&self) -> ErrorKind {
        match self {
            SmoothQuantError::BadAlpha { .. } | SmoothQuantError::MissingStats { .. } => ErrorKind::bad(Input::Options),
            SmoothQuantError::WidthMismatch { .. } => ErrorKind::bad(Input::Data),
        }
    }
}

impl HasKind for RangeRuleError {
    fn kind(&self) -> ErrorKind {
        match self {
            RangeRuleError::Unknown { .. } | RangeRuleError::BadPercentile { .. } => ErrorKind::bad(Input::Options),
            RangeRuleError::KlNeedsIntegers { .. } => ErrorKind::Unsupported,
        }
    }
}

impl HasKind for ImatrixError {
    fn kind(&self) -> ErrorKind {
        match self {
            ImatrixError::Gguf(e) => e.kind(),
            ImatrixError::WrongType { .. }
            | ImatrixError::BadMetadata { .. }
            | ImatrixError::BadTensor { .. }
            | ImatrixError::Empty
            | ImatrixError::BadLegacy { .. } => ErrorKind::bad(Input::File),
            ImatrixError::WrongLength { .. } => ErrorKind::bad(Input::Data),
            ImatrixError::Write(e) => e.kind(),
        }
    }
}

impl HasKind for crate::recipe::RecipeError {
    fn kind(&self) -> ErrorKind {
        use crate::recipe::RecipeError as R;
        match self {
            R::Syntax(_) | R::Entry { .. } | R::Duplicate { .. } => ErrorKind::bad(Input::File),
            R::Format { source, .. } => source.kind(),
            // A method that cannot produce the format: a valid pairing this build cannot run.
            R::Version { .. } | R::Method { .. } | R::NotPerTensor { .. } => ErrorKind::Unsupported,
            R::UnknownTensor { .. } => ErrorKind::bad(Input::Model),
        }
    }
}

impl HasKind for EvalError {
    fn kind(&self) -> ErrorKind {
        match self {
            EvalError::CtxTooSmall(_) | EvalError::ZeroWindows | EvalError::NoSource => ErrorKind::bad(Input::Options),
            EvalError::NoWindow { .. } | EvalError::TooFewTokens { .. } => ErrorKind::bad(Input::Text),
            EvalError::NoBos => ErrorKind::Unsupported,
            EvalError::VocabMismatch { .. } => ErrorKind::bad(Input::Model),
            EvalError::Cancelled { positions_done, positions_total } => {
                ErrorKind::cancelled(*positions_done, *positions_total)
            }
            EvalError::Model(e) => e.kind(),
        }
    }
}

impl HasKind for crate::model::sensitivity::ScanError {
    fn kind(&self) -> ErrorKind {
        use crate::model::sensitivity::ScanError;
        match self {
            ScanError::Quantize { source, .. } => source.kind(),
            ScanError::UnknownUnit { .. } => ErrorKind::bad(Input::Options),
            ScanError::Cancelled { done, total } => ErrorKind::cancelled(*done, *total),
            ScanError::Eval(e) => e.kind(),
        }
    }
}

impl HasKind for crate::recipe::recommend::RecommendError {
    fn kind(&self) -> ErrorKind {
        use crate::recipe::recommend::RecommendError;
        match self {
            RecommendError::BitsPerWeight(_)
            | RecommendError::NoScan
            | RecommendError::UnitsDiffer { .. }
            | RecommendError::BelowSmallest { .. }
            | RecommendError::TooManyFormats(_) => ErrorKind::bad(Input::Options),
            RecommendError::NotFinite { .. } => ErrorKind::bad(Input::Model),
            RecommendError::Recipe(e) => e.kind(),
        }
    }
}

impl HasKind for crate::recipe::memory::InMemoryError {
    fn kind(&self) -> ErrorKind {
        use crate::recipe::memory::InMemoryError;
        match self {
            InMemoryError::Recipe(e) => e.kind(),
            InMemoryError::Method(_) => ErrorKind::Unsupported,
            InMemoryError::Quantize(e) => e.kind(),
        }
    }
}

impl HasKind for TaskError {
    fn kind(&self) -> ErrorKind {
        match self {
            // The suite file (the lab's or a user's) is the input at fault.
            TaskError::Json(_) | TaskError::Empty | TaskError::DuplicateId(_) | TaskError::ZeroBudget(_) => {
                ErrorKind::bad(Input::File)
            }
            TaskError::Cancelled { done, total } => ErrorKind::cancelled(*done, *total),
            TaskError::Tokenizer(e) => e.kind(),
            TaskError::Model(e) => e.kind(),
        }
    }
}

impl HasKind for QuantizeModelError {
    fn kind(&self) -> ErrorKind {
        match self {
            QuantizeModelError::Cancelled { done, total } => ErrorKind::cancelled(*done, *total),
            QuantizeModelError::Model(e) => e.kind(),
        }
    }
}

impl HasKind for HfConvertError {
    fn kind(&self) -> ErrorKind {
        match self {
            HfConvertError::Model(e) => e.kind(),
            HfConvertError::Export(e) => e.kind(),
        }
    }
}

impl HasKind for LayoutError {
    fn kind(&self) -> ErrorKind {
        match self {
            LayoutError::NotInteger { .. } | LayoutError::NotGrouped { .. } => ErrorKind::bad(Input::Format),
            LayoutError::Bits { .. } | LayoutError::Shape { .. } | LayoutError::GroupOrder { .. } => {
                ErrorKind::Unsupported
            }
            // Values the layout cannot hold (a zero point of 0, an f16 overflow) or inconsistent parts.
            LayoutError::ZeroPoint { .. } | LayoutError::Saturated { .. } | LayoutError::Invalid { .. } => {
                ErrorKind::bad(Input::Data)
            }
        }
    }
}

impl HasKind for HfLayoutError {
    fn kind(&self) -> ErrorKind {
        match self {
            HfLayoutError::Layout(e) => e.kind(),
            HfLayoutError::Model(e) => e.kind(),
            HfLayoutError::Export(e) => e.kind(),
            HfLayoutError::Safetensors(e) => e.kind(),
            HfLayoutError::GroupSize { .. } | HfLayoutError::PartialRope { .. } | HfLayoutError::NotIntCodes { .. } => {
                ErrorKind::Unsupported
            }
            HfLayoutError::F16Overflow { .. } => ErrorKind::bad(Input::Data),
        }
    }
}

impl HasKind for ExportError {
    fn kind(&self) -> ErrorKind {
        match self {
            ExportError::NeedsGguf { .. } | ExportError::NeedsSafetensors { .. } | ExportError::SplitGguf => {
                ErrorKind::Unsupported
            }
            ExportError::Gguf(e) => e.kind(),
            // A tensor the scheme could not quantize (its shape or values); the message names it.
            ExportError::Tensor(_) => ErrorKind::Unsupported,
            ExportError::Write(_) => ErrorKind::Io,
            // A block scale past what its storage type holds (e.g. f16): the weights' values.
            ExportError::Saturated { .. } => ErrorKind::bad(Input::Data),
            ExportError::Cancelled { done, total } => ErrorKind::cancelled(*done, *total),
        }
    }
}

impl HasKind for SafetensorsError {
    fn kind(&self) -> ErrorKind {
        match self {
            SafetensorsError::Open { .. } | SafetensorsError::Write(_) => ErrorKind::Io,
            SafetensorsError::UnsupportedDtype { .. } => ErrorKind::Unsupported,
            SafetensorsError::Header { .. }
            | SafetensorsError::Index { .. }
            | SafetensorsError::MissingShard { .. }
            | SafetensorsError::MissingTensor { .. }
            | SafetensorsError::DuplicateTensor { .. }
            | SafetensorsError::Config { .. } => ErrorKind::bad(Input::File),
        }
    }
}

impl HasKind for GgufWriteError {
    fn kind(&self) -> ErrorKind {
        match self {
            GgufWriteError::Io(_) => ErrorKind::Io,
            _ => ErrorKind::bad(Input::Model),
        }
    }
}

impl HasKind for TokenizerError {
    fn kind(&self) -> ErrorKind {
        match self {
            TokenizerError::MissingKey(_) | TokenizerError::BadMetadata(_) | TokenizerError::Json(_) => {
                ErrorKind::bad(Input::Model)
            }
            TokenizerError::UnsupportedModel(_)
            | TokenizerError::UnsupportedPreTokenizer(_)
            | TokenizerError::NoChatTemplate
            | TokenizerError::UnsupportedChatTemplate(_) => ErrorKind::Unsupported,
        }
    }
}

impl HasKind for BnbParseError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::bad(Input::File)
    }
}

#[cfg(feature = "gpu")]
mod gpu {
    use super::{ErrorKind, HasKind};
    use crate::gpu::forward::GpuModelError;
    use crate::gpu::GpuError;

    impl HasKind for GpuError {
        fn kind(&self) -> ErrorKind {
            match self {
                GpuError::NoAdapter(_) | GpuError::RequestDevice(_) => ErrorKind::NoGpu,
                GpuError::DeviceLost(_) => ErrorKind::DeviceLost,
                GpuError::MissingFeature { feature, .. } => ErrorKind::MissingFeature { feature: feature.clone() },
                GpuError::BufferTooLarge { bytes, max, .. } => ErrorKind::LimitExceeded {
                    limit: "maxStorageBufferBindingSize".into(),
                    needed: *bytes,
                    available: *max,
                },
                GpuError::Validation { .. } | GpuError::OutOfMemory(_) | GpuError::Readback(_) => ErrorKind::Gpu,
            }
        }
    }

    impl HasKind for GpuModelError {
        fn kind(&self) -> ErrorKind {
            match self {
                GpuModelError::Gpu(e) => e.kind(),
                GpuModelError::Model(e) => e.kind(),
                GpuModelError::Unsupported(_) => ErrorKind::Unsupported,
            }
        }
    }
}
