//! The model's weights, each matrix kept in the format it is stored in.
//!
//! A [`Matrix`] is never expanded to f32 as a whole: [`Matrix::matvec`] computes each output
//! value as a dot product on the packed blocks of one row (fused kernels in `kernels` for
//! Q4_0, Q4_1, Q8_0, INT4 and NF4/FP4; every other type dequantizes one row into a small
//! scratch buffer first). So the memory the weights take, [`Weights::resident_bytes`], is the
//! file's tensor bytes (Q4_1 blocks at 5 bits per weight, a Q8_0 embedding at 8.5, f32 norms),
//! not the 32 bits per weight of an f32 copy. Loading copies the tensor bytes once, so while
//! the caller still holds the file the peak is about twice that.
//!
//! Natively, large products are split over threads by rows, run by a persistent pool (`pool`).
//! Each output row is computed by exactly one thread with the same kernel and summation order
//! as the single-threaded path, so results are bit-identical whatever the thread count.

#[cfg(target_arch = "x86_64")]
use super::kernels::F16c;
use super::kernels::{dot_bnb4, dot_int4, dot_q4_0, dot_q4_1, dot_q8_0, is_int4, PortableHalf, ReadHalf};
use super::{Config, ModelError};
use crate::formats::{can_dequantize, dequantize_row, quantized::GgmlTensor, GgmlType, QuantizedTensor, TensorShape};
use crate::gguf::{GgufFile, TensorInfo};

pub use super::kernels::dot;

/// Below this many weights a product runs on the calling thread (spawning costs more).
const PARALLEL_MIN_WEIGHTS: usize = 1 << 18;

/// A weight matrix `[rows, cols]` (`cols` = input width, `rows` = output width), row-major.
#[derive(Debug, Clone, PartialEq)]
pub enum Matrix {
    /// Plain f32 values.
    F32 { shape: TensorShape, data: Vec<f32> },
    /// A packed tensor of any family, kept as stored: a ggml type other than F32 (any type
    /// [`can_dequantize`] accepts, the exact bytes of the file), int, bnb NF4/FP4 or FP8. Rows
    /// without a fused kernel are decoded one at a time
    /// ([`QuantizedTensor::dequantize_row`]) into a scratch buffer.
    Quantized(QuantizedTensor),
}

impl Matrix {
    /// An f32 matrix from row-major values.
    pub fn from_f32(values: Vec<f32>, shape: TensorShape) -> Result<Matrix, ModelError> {
        if values.len() != shape.len() {
            return Err(ModelError::Quant(crate::formats::QuantError::LengthMismatch {
                rows: shape.rows,
                cols: shape.cols,
                expected: shape.len(),
                got: values.len(),
            }));
        }
        Ok(Matrix::F32 { shape, data: values })
    }

    /// A matrix from any quantized tensor the forward can multiply by.
    ///
    /// F32 ggml tensors become [`Matrix::F32`]; every other tensor is kept packed as
    /// [`Matrix::Quantized`]. Nothing is expanded to f32 as a whole.
    pub fn from_quantized(t: QuantizedTensor) -> Result<Matrix, ModelError> {
        match t {
            QuantizedTensor::Ggml(g) if g.ty == GgmlType::F32 => {
                let mut data = vec![0f32; g.shape.len()];
                dequantize_row(GgmlType::F32, &g.data, &mut data).map_err(crate::formats::QuantError::from)?;
                Ok(Matrix::F32 { shape: g.shape, data })
            }
            QuantizedTensor::Ggml(g) if !can_dequantize(g.ty) => Err(ModelError::NotImplemented(format!(
                "matrix-vector products on {} tensors (no decoder for this ggml type)",
                g.ty
            ))),
            other => Ok(Matrix::Quantized(other)),
        }
    }

    pub fn shape(&self) -> TensorShape {
        match self {
            Matrix::F32 { shape, .. } => *shape,
            Matrix::Quantized(t) => t.shape(),
        }
    }

    /// Bytes held in memory for the values (for [`Matrix::Quantized`], the format's
    /// [`QuantizedTensor::storage_bytes`]).
    pub fn resident_bytes(&self) -> usize {
        match self {
            Matrix::F32 { data, .. } => std::mem::size_of_val(data.as_slice()),
            Matrix::Quantized(t) => t.storage_bytes() as usize,
        }
    }

    /// The stored format's name: `F32`, a ggml type (`Q4_1`), or a scheme name (`nf4-b64`).
    pub fn type_name(&self) -> String {
        match self {
            Matrix::F32 { .. } => "F32".into(),
            Matrix::Quantized(QuantizedTensor::Ggml(t)) => t.ty.name().to_string(),
            Matrix::Quantized(t) => t.scheme().name(),
        }
    }

    /// The stored ggml type (`F32` for [`Matrix::F32`]); `None` for the other families.
    pub fn ggml_type(&self) -> Option<GgmlType> {
        match self {
            Matrix::F32 { .. } => Some(GgmlType::F32),
            Matrix::Quantized(QuantizedTensor::Ggml(t)) => Some(t.ty),
            Matrix::Quantized(_) => None,
        }
    }

    /// Every value, row-major (decoded row by row). For re-quantization; the forward never
    /// calls it.
    pub fn to_f32(&self) -> Vec<f32> {
        let TensorShape { rows, cols } = self.shape();
        let mut out = vec![0f32; rows * cols];
        if cols > 0 {
            for (r, chunk) in out.chunks_exact_mut(cols).enumerate() {
                self.row(r, chunk);
            }
        }
        out
    }

    /// Decodes row `r` into `out` (`out.len() == cols`). Used for the embedding lookup.
    ///
    /// Panics if `r` is out of range or `out` has the wrong length.
    pub fn row(&self, r: usize, out: &mut [f32]) {
        let TensorShape { rows, cols } = self.shape();
        assert!(r < rows && out.len() == cols, "row {r} of a {rows}×{cols} matrix into {} values", out.len());
        match self {
            Matrix::F32 { data, .. } => out.copy_from_slice(&data[r * cols..(r + 1) * cols]),
            Matrix::Quantized(t) => t.dequantize_row(r, out).expect("checked quantized row"),
        }
    }

    /// `out = W · x`, using every core natively (bit-identical to one thread).
    pub fn matvec(&self, x: &[f32], out: &mut [f32]) {
        self.matvec_threads(x, out, default_threads());
    }

    /// `out = W · x` on at most `threads` threads.
    ///
    /// Panics if `x.len() != cols` or `out.len() != rows`.
    pub fn matvec_threads(&self, x: &[f32], out: &mut [f32], threads: usize) {
        let TensorShape { rows, cols } = self.shape();
        assert!(
            x.len() == cols && out.len() == rows,
            "{rows}×{cols} matrix times {} values into {}",
            x.len(),
            out.len()
        );
        // Per-32-value block sums of x, shared by all rows (Q4_0 / Q4_1 kernels use them).
        let xsum: Vec<f32> = match self {
            Matrix::Quantized(QuantizedTensor::Ggml(t)) if matches!(t.ty, GgmlType::Q4_0 | GgmlType::Q4_1) => {
                x.chunks_exact(32).map(|c| c.iter().sum()).collect()
            }
            _ => Vec::new(),
        };
        split_rows(out, cols, threads, |r0, part| self.rows_into(r0, part, x, &xsum));
    }

    /// `out[i] = row(r0 + i) · x` for every `i`: the one kernel all thread counts share.
    /// Dispatches to the AVX2 + F16C build of the same code when the CPU has both (same
    /// operations in the same order, so the same bits; the F16C scale reads are the gain).
    fn rows_into(&self, r0: usize, out: &mut [f32], x: &[f32], xsum: &[f32]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("f16c") {
            // SAFETY: the CPU supports AVX2 and F16C (checked just above).
            unsafe { rows_into_avx2(self, r0, out, x, xsum) };
            return;
        }
        rows_into_body::<PortableHalf>(self, r0, out, x, xsum);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,f16c")]
unsafe fn rows_into_avx2(m: &Matrix, r0: usize, out: &mut [f32], x: &[f32], xsum: &[f32]) {
    rows_into_body::<F16c>(m, r0, out, x, xsum);
}

#[inline(always)]
fn rows_into_body<H: ReadHalf>(m: &Matrix, r0: usize, out: &mut [f32], x: &[f32], xsum: &[f32]) {
    let cols = x.len();
    match m {
        Matrix::F32 { data, .. } => {
            for (i, o) in out.iter_mut().enumerate() {
                *o = dot(&data[(r0 + i) * cols..(r0 + i + 1) * cols], x);
            }
        }
        Matrix::Quantized(QuantizedTensor::Ggml(t)) => {
            let rb = row_bytes(t);
            let rows = t.data[r0 * rb..(r0 + out.len()) * rb].chunks_exact(rb.max(1));
            match t.ty {
                GgmlType::Q4_0 => out.iter_mut().zip(rows).for_each(|(o, r)| *o = dot_q4_0::<H>(r, x, xsum)),
                GgmlType::Q4_1 => out.iter_mut().zip(rows).for_each(|(o, r)| *o = dot_q4_1::<H>(r, x, xsum)),
                GgmlType::Q8_0 => out.iter_mut().zip(rows).for_each(|(o, r)| *o = dot_q8_0::<H>(r, x)),
                ty => {
                    let mut scratch = vec![0f32; cols];
                    for (o, r) in out.iter_mut().zip(rows) {
                        dequantize_row(ty, r, &mut scratch).expect("checked ggml row");
                        *o = dot(&scratch, x);
                    }
                }
            }
        }
        Matrix::Quantized(QuantizedTensor::Int(t)) if is_int4(t) => {
            out.iter_mut().enumerate().for_each(|(i, o)| *o = dot_int4(t, r0 + i, x));
        }
        Matrix::Quantized(QuantizedTensor::Bnb4(t)) => {
            out.iter_mut().enumerate().for_each(|(i, o)| *o = dot_bnb4(t, r0 + i, x));
        }
        Matrix::Quantized(t) => {
            let mut scratch = vec![0f32; cols];
            for (i, o) in out.iter_mut().enumerate() {
                t.dequantize_row(r0 + i, &mut scratch).expect("checked quantized row");
                *o = dot(&scratch, x);
            }
        }
    }
}

/// Runs `run(r0, part)` over `out` (one value per matrix row, `cols` weights each) split into
/// row ranges on at most `threads` threads, or on the calling thread for small products. Task i
/// computes rows i·chunk.. on whichever thread takes it: the same rows with the same kernel
/// whatever the thread count.
pub(super) fn split_rows(out: &mut [f32], cols: usize, threads: usize, run: impl Fn(usize, &mut [f32]) + Sync) {
    let rows = out.len();
    if threads > 1 && rows * cols >= PARALLEL_MIN_WEIGHTS && rows >= 2 * threads {
        let chunk = rows.div_ceil(threads);
        let parts: Vec<std::sync::Mutex<&mut [f32]>> = out.chunks_mut(chunk).map(std::sync::Mutex::new).collect();
        super::pool::run(parts.len(), &|i| {
            let mut part = parts[i].lock().unwrap_or_else(|e| e.into_inner());
            run(i * chunk, &mut part);
        });
    } else {
        run(0, out);
    }
}

/// Bytes of one row of a ggml tensor.
pub(super) fn row_bytes(t: &GgmlTensor) -> usize {
    t.shape.cols / t.ty.block_size() * t.ty.type_size()
}

/// Threads a product may use by default: all cores natively; on wasm32 the pool's web workers
/// (one in the single-thread build).
pub fn default_threads() -> usize {
    #[cfg(not(target_arch = "wasm32"))]
    {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
    #[cfg(target_arch = "wasm32")]
    {
        super::pool::threads()
    }
}

/// One transformer block's weights (llama.cpp tensor names in brackets).
#[derive(Debug, Clone)]
pub struct Layer {
    /// (dim,) `[blk.N.attn_norm]`
    pub attn_norm: Vec<f32>,
    /// (q_dim, dim) `[blk.N.attn_q]`, rows permuted for adjacent-pair RoPE (see `forward`).
    pub wq: Matrix,
    /// (kv_dim, dim) `[blk.N.attn_k]`, permuted like `wq`.
    pub wk: Matrix,
    /// (kv_dim, dim) `[blk.N.attn_v]`
    pub wv: Matrix,
    /// (dim, q_dim) `[blk.N.attn_output]`
    pub wo: Matrix,
    /// (dim,) `[blk.N.ffn_norm]`
    pub ffn_norm: Vec<f32>,
    /// (hidden_dim, dim) `[blk.N.ffn_gate]` (llama2.c's w1)
    pub w_gate: Matrix,
    /// (dim, hidden_dim) `[blk.N.ffn_down]` (w2)
    pub w_down: Matrix,
    /// (hidden_dim, dim) `[blk.N.ffn_up]` (w3)
    pub w_up: Matrix,
}

impl Layer {
    /// The block's weight matrices with their llama.cpp names (without `blk.N.` and
    /// `.weight`). Every list of a layer's matrices comes from here, so they all share this
    /// order (the quantization report's, the lab's tensor table's).
    pub fn matrices(&self) -> [(&'static str, &Matrix); 7] {
        [
            ("attn_q", &self.wq),
            ("attn_k", &self.wk),
            ("attn_v", &self.wv),
            ("attn_output", &self.wo),
            ("ffn_gate", &self.w_gate),
            ("ffn_down", &self.w_down),
            ("ffn_up", &self.w_up),
        ]
    }

    /// The matrix [`Layer::matrices`] names `name` (`"attn_q"`, …), to replace it.
    pub fn matrix_mut(&mut self, name: &str) -> Option<&mut Matrix> {
        Some(match name {
            "attn_q" => &mut self.wq,
            "attn_k" => &mut self.wk,
            "attn_v" => &mut self.wv,
            "attn_output" => &mut self.wo,
            "ffn_gate" => &mut self.w_gate,
            "ffn_down" => &mut self.w_down,
            "ffn_up" => &mut self.w_up,
            _ => return None,
        })
    }

    /// The same layer (norms cloned) with every matrix replaced by `f(name, matrix)`, called in
    /// [`Layer::matrices`] order; stops at the first error.
    pub fn try_map_matrices<E>(
        &self,
        mut f: impl FnMut(&'static str, &Matrix) -> Result<Matrix, E>,
    ) -> Result<Layer, E> {
        // Lazy, so `f` runs once per field, in the order the fields are written (= matrices()).
        let mut mapped = self.matrices().into_iter().map(|(name, m)| f(name, m));
        let mut next = || mapped.next().expect("one result per matrix");
        Ok(Layer {
            attn_norm: self.attn_norm.clone(),
            wq: next()?,
            wk: next()?,
            wv: next()?,
            wo: next()?,
            ffn_norm: self.ffn_norm.clone(),
            w_gate: next()?,
            w_down: next()?,
            w_up: next()?,
        })
    }
}

/// All weights of a LLaMA model.
#[derive(Debug, Clone)]
pub struct Weights {
    /// (vocab_size, dim) `[token_embd]`
    pub token_embd: Matrix,
    pub layers: Vec<Layer>,
    /// (dim,) `[output_norm]`
    pub output_norm: Vec<f32>,
    /// (vocab_size, dim) `[output]`; `None` when tied to `token_embd`.
    pub output: Option<Matrix>,
}

impl Weights {
    /// Copies every tensor the forward needs out of `file` (the whole GGUF file), keeping
    /// its stored format, after checking names, shapes and types against `config`. A tensor
    /// the forward would silently ignore (a bias, rope frequency factors, ...) is an error.
    pub fn from_gguf(config: &Config, f: &GgufFile, file: &[u8]) -> Result<Weights, ModelError> {
        let c = config;
        let (dim, hidden, vocab) = (c.dim as u64, c.hidden_dim as u64, c.vocab_size as u64);
        let (q_dim, kv_dim) = (c.q_dim() as u64, c.kv_dim() as u64);

        // Each block needs its tensors in the file: checked before the name list (sized by the
        // block count) is built.
        if c.n_layers.saturating_mul(LAYER_TENSORS.len()) > f.tensors.len() {
            return Err(ModelError::BadMetadata {
                key: "llama.block_count".into(),
                reason: format!(
                    "{} blocks need {} tensors each, but the file holds {} tensors",
                    c.n_layers,
                    LAYER_TENSORS.len(),
                    f.tensors.len()
                ),
            });
        }
        let mut expected: Vec<String> = vec!["token_embd.weight".into(), "output_norm.weight".into()];
        if !c.tied_embeddings {
            expected.push("output.weight".into());
        }
        for l in 0..c.n_layers {
            for n in LAYER_TENSORS {
                expected.push(format!("blk.{l}.{n}.weight"));
            }
        }
        for t in &f.tensors {
            if !expected.contains(&t.name) {
                return Err(ModelError::UnexpectedTensor { name: t.name.clone(), reason: unexpected_reason(&t.name) });
            }
        }

        let matrix = |name: &str, rows: u64, cols: u64| load_matrix(f, file, name, rows, cols);
        let vector = |name: &str, n: u64| load_vector(f, file, name, n);
        let mut layers = Vec::with_capacity(c.n_layers);
        for l in 0..c.n_layers {
            let p = |n: &str| format!("blk.{l}.{n}.weight");
            layers.push(Layer {
                attn_norm: vector(&p("attn_norm"), dim)?,
                wq: matrix(&p("attn_q"), q_dim, dim)?,
                wk: matrix(&p("attn_k"), kv_dim, dim)?,
                wv: matrix(&p("attn_v"), kv_dim, dim)?,
                wo: matrix(&p("attn_output"), dim, q_dim)?,
                ffn_norm: vector(&p("ffn_norm"), dim)?,
                w_gate: matrix(&p("ffn_gate"), hidden, dim)?,
                w_down: matrix(&p("ffn_down"), dim, hidden)?,
                w_up: matrix(&p("ffn_up"), hidden, dim)?,
            });
        }
        Ok(Weights {
            token_embd: matrix("token_embd.weight", vocab, dim)?,
            layers,
            output_norm: vector("output_norm.weight", dim)?,
            output: if c.tied_embeddings { None } else { Some(matrix("output.weight", vocab, dim)?) },
        })
    }

    /// Every weight matrix with its llama.cpp tensor name: `token_embd.weight`, each block's
    /// ([`Layer::matrices`], e.g. `blk.0.attn_q.weight`), then `output.weight` unless tied.
    pub fn matrices(&self) -> Vec<(String, &Matrix)> {
        let mut out = vec![("token_embd.weight".to_string(), &self.token_embd)];
        for (l, layer) in self.layers.iter().enumerate() {
            out.extend(layer.matrices().into_iter().map(|(n, m)| (format!("blk.{l}.{n}.weight"), m)));
        }
        if let Some(o) = &self.output {
            out.push(("output.weight".to_string(), o));
        }
        out
    }

    /// Number of weights (every tensor's elements; a tied classifier counted once).
    pub fn weight_count(&self) -> usize {
        let norms: usize = self.layers.iter().map(|l| l.attn_norm.len() + l.ffn_norm.len()).sum();
        let matrices: usize = self.matrices().iter().map(|(_, m)| m.shape().len()).sum();
        norms + self.output_norm.len() + matrices
    }

    /// Bits per weight: `8 × resident bytes / number of weights` (every tensor, norm vectors
    /// included as the f32 they are held in).
    pub fn bits_per_weight(&self) -> f64 {
        8.0 * self.resident_bytes() as f64 / self.weight_count() as f64
    }

    /// The stored type holding most of the weights (e.g. `Q4_1` for the default model: the
    /// "source format" every report names), and a census `"F32 x2, Q4_1 x200, Q8_0 x1"`.
    pub fn source_format(&self) -> (String, String) {
        let mut by_type: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
        for (_, m) in self.matrices() {
            let e = by_type.entry(m.type_name()).or_default();
            e.0 += 1;
            e.1 += m.shape().len();
        }
        let main = by_type.iter().max_by_key(|(_, v)| v.1).map(|(k, _)| k.clone()).unwrap_or_default();
        let census = by_type.iter().map(|(k, v)| format!("{k} x{}", v.0)).collect::<Vec<_>>().join(", ");
        (main, census)
    }

    /// The classifier: `output.weight`, or `token_embd.weight` when the embeddings are tied.
    pub fn classifier(&self) -> &Matrix {
        self.output.as_ref().unwrap_or(&self.token_embd)
    }

    /// Decodes the embedding of `token` into `out` (dim values).
    pub fn embed(&self, token: u32, out: &mut [f32]) {
        self.token_embd.row(token as usize, out);
    }

    /// Bytes the weights occupy in memory (matrix payloads plus norm vectors; a tied classifier
    /// is counted once). For a GGUF model this is the file's tensor bytes, except that
    /// non-f32 norm vectors are widened to f32.
    pub fn resident_bytes(&self) -> usize {
        let vec_bytes = |v: &Vec<f32>| std::mem::size_of_val(v.as_slice());
        let norms: usize = self.layers.iter().map(|l| vec_bytes(&l.attn_norm) + vec_bytes(&l.ffn_norm)).sum();
        let matrices: usize = self.matrices().iter().map(|(_, m)| m.resident_bytes()).sum();
        norms + vec_bytes(&self.output_norm) + matrices
    }
}

/// Per-block tensors, without the `blk.N.` prefix and `.weight` suffix.
const LAYER_TENSORS: [&str; 9] =
    ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_down", "ffn_up"];

fn unexpected_reason(name: &str) -> String {
    if name.ends_with(".bias") {
        "biases are not part of the llama architecture this forward implements".into()
    } else if name.starts_with("rope_freqs") {
        "RoPE frequency factors (Llama 3.1-style rope scaling) are not implemented".into()
    } else if name.contains("_exps") || name.contains("ffn_gate_inp") {
        "mixture-of-experts layers are not implemented".into()
    } else {
        "unknown tensor name, or a block beyond block_count".into()
    }
}

fn find<'a>(f: &'a GgufFile, name: &str) -> Result<&'a TensorInfo, ModelError> {
    f.tensor(name).ok_or_else(|| ModelError::MissingTensor { name: name.into() })
}

fn check_dims(t: &TensorInfo, expected: &[u64]) -> Result<(), ModelError> {
    if t.dims != expected {
        return Err(ModelError::BadShape { name: t.name.clone(), expected: expected.to_vec(), got: t.dims.clone() });
    }
    if !can_dequantize(t.ty) {
        return Err(ModelError::UnsupportedTensorType { name: t.name.clone(), ty: t.ty });
    }
    Ok(())
}

/// A `[rows, cols]` matrix (ggml dims `[cols, rows]`), kept in its stored type.
fn load_matrix(f: &GgufFile, file: &[u8], name: &str, rows: u64, cols: u64) -> Result<Matrix, ModelError> {
    let t = find(f, name)?;
    check_dims(t, &[cols, rows])?;
    let bytes = f.tensor_data(file, t)?;
    let shape = TensorShape::new(rows as usize, cols as usize);
    if t.ty == GgmlType::F32 {
        let mut data = vec![0f32; shape.len()];
        dequantize_row(t.ty, bytes, &mut data).map_err(crate::formats::QuantError::from)?;
        return Ok(Matrix::F32 { shape, data });
    }
    Ok(Matrix::Quantized(QuantizedTensor::Ggml(GgmlTensor { ty: t.ty, shape, data: bytes.to_vec() })))
}

/// A 1-D vector (norm weights), decoded to f32.
fn load_vector(f: &GgufFile, file: &[u8], name: &str, n: u64) -> Result<Vec<f32>, ModelError> {
    let t = find(f, name)?;
    check_dims(t, &[n])?;
    let mut out = vec![0f32; n as usize];
    dequantize_row(t.ty, f.tensor_data(file, t)?, &mut out).map_err(crate::formats::QuantError::from)?;
    Ok(out)
}
