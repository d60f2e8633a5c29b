//! GGML tensor types as stored in GGUF files: ids, block sizes and bytes per block.
//!
//! The numbers are ggml's `ggml_type` enum and its `type_traits` table (ggml.c). Ids that
//! ggml has retired (4, 5, 31–33, 36–38) are rejected with a message saying so rather than
//! guessed at.

use serde::{Deserialize, Serialize};

/// A tensor storage type. `id()` is the value written in a GGUF tensor info.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify), tsify(missing_as_null, hashmap_as_object))]
#[allow(non_camel_case_types)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q8_1,
    Q2_K,
    Q3_K,
    Q4_K,
    Q5_K,
    Q6_K,
    Q8_K,
    IQ2_XXS,
    IQ2_XS,
    IQ3_XXS,
    IQ1_S,
    IQ4_NL,
    IQ3_S,
    IQ2_S,
    IQ4_XS,
    I8,
    I16,
    I32,
    I64,
    F64,
    IQ1_M,
    BF16,
    TQ1_0,
    TQ2_0,
    MXFP4,
}

/// Every type this reader knows, in id order.
pub const ALL_TYPES: [GgmlType; 32] = {
    use GgmlType::*;
    [
        F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K, IQ2_XXS, IQ2_XS, IQ3_XXS,
        IQ1_S, IQ4_NL, IQ3_S, IQ2_S, IQ4_XS, I8, I16, I32, I64, F64, IQ1_M, BF16, TQ1_0, TQ2_0, MXFP4,
    ]
};

/// Why a type id could not be turned into a [`GgmlType`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TypeIdError {
    #[error("tensor type id {0} was removed from ggml (old Q4_2/Q4_3 or repacked Q4_0_x_x/IQ4_NL_x_x files are no longer supported; re-convert the model)")]
    Retired(u32),
    #[error("unknown tensor type id {0} (this reader knows ids 0–39)")]
    Unknown(u32),
}

impl GgmlType {
    /// The id stored in GGUF files (ggml's `enum ggml_type`).
    pub const fn id(self) -> u32 {
        use GgmlType::*;
        match self {
            F32 => 0,
            F16 => 1,
            Q4_0 => 2,
            Q4_1 => 3,
            Q5_0 => 6,
            Q5_1 => 7,
            Q8_0 => 8,
            Q8_1 => 9,
            Q2_K => 10,
            Q3_K => 11,
            Q4_K => 12,
            Q5_K => 13,
            Q6_K => 14,
            Q8_K => 15,
            IQ2_XXS => 16,
            IQ2_XS => 17,
            IQ3_XXS => 18,
            IQ1_S => 19,
            IQ4_NL => 20,
            IQ3_S => 21,
            IQ2_S => 22,
            IQ4_XS => 23,
            I8 => 24,
            I16 => 25,
            I32 => 26,
            I64 => 27,
            F64 => 28,
            IQ1_M => 29,
            BF16 => 30,
            TQ1_0 => 34,
            TQ2_0 => 35,
            MXFP4 => 39,
        }
    }

    pub fn from_id(id: u32) -> Result<Self, TypeIdError> {
        if matches!(id, 4 | 5 | 31..=33 | 36..=38) {
            return Err(TypeIdError::Retired(id));
        }
        ALL_TYPES.iter().copied().find(|t| t.id() == id).ok_or(TypeIdError::Unknown(id))
    }

    /// Parses ggml's name for a type, case-insensitively ("q4_k", "F16").
    pub fn from_name(name: &str) -> Option<Self> {
        ALL_TYPES.iter().copied().find(|t| t.name().eq_ignore_ascii_case(name))
    }

    /// ggml's name for the type (`ggml_type_name`).
    pub const fn name(self) -> &'static str {
        use GgmlType::*;
        match self {
            F32 => "F32",
            F16 => "F16",
            Q4_0 => "Q4_0",
            Q4_1 => "Q4_1",
            Q5_0 => "Q5_0",
            Q5_1 => "Q5_1",
            Q8_0 => "Q8_0",
            Q8_1 => "Q8_1",
            Q2_K => "Q2_K",
            Q3_K => "Q3_K",
            Q4_K => "Q4_K",
            Q5_K => "Q5_K",
            Q6_K => "Q6_K",
            Q8_K => "Q8_K",
            IQ2_XXS => "IQ2_XXS",
            IQ2_XS => "IQ2_XS",
            IQ3_XXS => "IQ3_XXS",
            IQ1_S => "IQ1_S",
            IQ4_NL => "IQ4_NL",
            IQ3_S => "IQ3_S",
            IQ2_S => "IQ2_S",
            IQ4_XS => "IQ4_XS",
            I8 => "I8",
            I16 => "I16",
            I32 => "I32",
            I64 => "I64",
            F64 => "F64",
            IQ1_M => "IQ1_M",
            BF16 => "BF16",
            TQ1_0 => "TQ1_0",
            TQ2_0 => "TQ2_0",
            MXFP4 => "MXFP4",
        }
    }

    /// (elements per block, bytes per block), from ggml's `type_traits`.
    pub const fn block_layout(self) -> (usize, usize) {
        use GgmlType::*;
        match self {
            F32 => (1, 4),
            F16 => (1, 2),
            BF16 => (1, 2),
            F64 => (1, 8),
            I8 => (1, 1),
            I16 => (1, 2),
            I32 => (1, 4),
            I64 => (1, 8),
            Q4_0 => (32, 18),
            Q4_1 => (32, 20),
            Q5_0 => (32, 22),
            Q5_1 => (32, 24),
            Q8_0 => (32, 34),
            Q8_1 => (32, 36),
            IQ4_NL => (32, 18),
            MXFP4 => (32, 17),
            Q2_K => (256, 84),
            Q3_K => (256, 110),
            Q4_K => (256, 144),
            Q5_K => (256, 176),
            Q6_K => (256, 210),
            Q8_K => (256, 292),
            IQ2_XXS => (256, 66),
            IQ2_XS => (256, 74),
            IQ3_XXS => (256, 98),
            IQ1_S => (256, 50),
            IQ3_S => (256, 110),
            IQ2_S => (256, 82),
            IQ4_XS => (256, 136),
            IQ1_M => (256, 56),
            TQ1_0 => (256, 54),
            TQ2_0 => (256, 66),
        }
    }

    pub const fn block_size(self) -> usize {
        self.block_layout().0
    }

    pub const fn type_size(self) -> usize {
        self.block_layout().1
    }

    /// Stored bits per weight, counting every scale, minimum and sub-block scale.
    pub fn bits_per_weight(self) -> f64 {
        let (block, bytes) = self.block_layout();
        (bytes * 8) as f64 / block as f64
    }

    /// Bytes needed for `n_elements` values, or None if `n_elements` is not a whole number of
    /// blocks or the size overflows.
    pub fn bytes_for(self, n_elements: u64) -> Option<u64> {
        let (block, bytes) = self.block_layout();
        if !n_elements.is_multiple_of(block as u64) {
            return None;
        }
        (n_elements / block as u64).checked_mul(bytes as u64)
    }

    /// True for the floating-point and quantized weight types (not the integer I8..I64).
    pub const fn is_float_like(self) -> bool {
        !matches!(self, GgmlType::I8 | GgmlType::I16 | GgmlType::I32 | GgmlType::I64)
    }
}

impl std::fmt::Display for GgmlType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_are_unique() {
        for t in ALL_TYPES {
            assert_eq!(GgmlType::from_id(t.id()), Ok(t));
            assert_eq!(GgmlType::from_name(&t.name().to_lowercase()), Some(t));
        }
        let mut ids: Vec<u32> = ALL_TYPES.iter().map(|t| t.id()).collect();
        ids.dedup();
        assert_eq!(ids.len(), ALL_TYPES.len(), "ids are listed in increasing order");
    }

    #[test]
    fn retired_and_unknown_ids_are_errors() {
        assert_eq!(GgmlType::from_id(4), Err(TypeIdError::Retired(4)));
        assert_eq!(GgmlType::from_id(31), Err(TypeIdError::Retired(31)));
        assert_eq!(GgmlType::from_id(40), Err(TypeIdError::Unknown(40)));
    }

    #[test]
    fn bits_per_weight_match_published_values() {
        // Values from llama.cpp's quantize --help / docs (bpw incl. scales).
        assert_eq!(GgmlType::Q8_0.bits_per_weight(), 8.5);
        assert_eq!(GgmlType::Q4_0.bits_per_weight(), 4.5);
        assert_eq!(GgmlType::Q4_1.bits_per_weight(), 5.0);
        assert_eq!(GgmlType::Q4_K.bits_per_weight(), 4.5);
        assert_eq!(GgmlType::Q6_K.bits_per_weight(), 6.5625);
        assert_eq!(GgmlType::Q2_K.bits_per_weight(), 2.625);
        assert_eq!(GgmlType::Q4_1.bytes_for(576 * 576), Some(207_360));
        assert_eq!(GgmlType::Q4_1.bytes_for(33), None);
    }
}
