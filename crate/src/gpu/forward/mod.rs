//! The whole LLaMA forward pass on the GPU: [`GpuModel`] holds a model's weights on the device
//! (one `GpuMatrix` per weight matrix, in its own repacked format), the activations and the KV
//! cache of one sequence, and the kernels specialised for its shapes. [`GpuModel::forward`] is
//! `model::forward` (llama2.c's `run.c`) with every step a GPU dispatch, recorded into one
//! command buffer per batch of tokens:
//!
//! - prefill runs up to [`GpuModel::max_batch`] prompt tokens per submission (GEMM matmuls,
//!   causal attention over the batch), decode runs one token (GEMV);
//! - only the last row reaches the classifier; decode samples on the GPU (`sample.wgsl`) and
//!   reads back one token id ([`GpuModel::decode_sample`]); [`GpuModel::logits`] reads back the
//!   logits of one position;
//! - evaluation (`eval`: the [`LogitSource`](crate::model::eval::LogitSource) implementation, so
//!   `model::eval::evaluate` runs on the GPU unchanged) runs each window in blocks with the
//!   classifier on every row;
//! - the KV cache is f32 (bit-compatible with the CPU cache), f16 or int8 ([`KvFormat`]).
//!
//! Limits: every buffer is checked against the adapter's `maxStorageBufferBindingSize` and
//! `maxBufferSize` before it is created, so a model that does not fit fails with
//! [`GpuError::BufferTooLarge`] naming the tensor and the sizes. A lost device surfaces as
//! [`GpuError::DeviceLost`] at the next call (the CPU path still works).
//!
//! Ownership: a [`GpuModel`] holds an `Arc` of its [`GpuContext`] (no borrow, so the bindings
//! can keep one in a JS object), and binds every matrix's product to the buffers it reads and
//! writes at upload ([`BoundMatmul`]), so recording a token creates no buffer or bind group:
//! the step uniform is the one value written per submission.
//!
//! Sub-modules: [`kernels`] (pipelines, dispatch, CPU twins), `eval` (block evaluation), [`generate`] (generation loop with
//! GPU sampling), [`probe`] (the CPU-vs-GPU decode probe and its decision), `state` (the
//! activation buffers).

mod eval;
pub mod generate;
pub mod kernels;
pub mod probe;
mod projection;
mod state;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use self::eval::evaluate_on_gpu;
use self::kernels::{bind, dispatch, groups, Pipelines, Shapes, Step};
pub use self::kernels::{KvFormat, MAX_TOP_K};
pub use self::projection::LayerInputs;
use self::projection::{acts_bytes, LayerMatrix, Projection};
use self::state::{bytes_f32, norm_buffer, zeroed, Activations};
use crate::gpu::matmul::{ActivationPrecision, BoundMatmul, GpuMatrix, MatmulSetup};
use crate::gpu::{GpuContext, GpuError};
use crate::model::{Config, Model, ModelError};

/// Prompt tokens per prefill submission: bounds the activation buffers (and the attention
/// scratch, `max_batch · n_heads · capacity` floats).
pub const DEFAULT_MAX_BATCH: usize = 64;

/// Why a GPU forward cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GpuModelError {
    #[error(transparent)]
    Gpu(#[from] GpuError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("the GPU forward cannot run this model: {0}")]
    Unsupported(String),
}

/// One transformer block on the GPU.
struct GpuLayer {
    /// (dim,) (read through `bind`; kept here so the layer owns what its bind groups use)
    #[allow(dead_code)]
    attn_norm: wgpu::Buffer,
    /// xb → q, k, v; att → xb2.
    wq: Projection,
    wk: Projection,
    wv: Projection,
    wo: Projection,
    /// (dim,) (read through `bind`)
    #[allow(dead_code)]
    ffn_norm: wgpu::Buffer,
    /// xb → hb, hb2; hb → xb2.
    w_gate: Projection,
    w_up: Projection,
    w_down: Projection,
    /// u32 words: keys (capacity, kv_dim / values per word), values (same), and for int8 the
    /// (capacity, n_kv_heads) f32 scales of keys then values (layout in `kv_write.wgsl`).
    kv_cache: wgpu::Buffer,
    /// Bind groups of this layer's dispatches (buffers never change, the step uniform does).
    bind: LayerBindGroups,
}

struct LayerBindGroups {
    attn_norm: wgpu::BindGroup,
    kv_write: wgpu::BindGroup,
    attention: wgpu::BindGroup,
    ffn_norm: wgpu::BindGroup,
}

/// Bind groups not tied to a layer.
struct ModelBindGroups {
    rope: wgpu::BindGroup,
    add_att: wgpu::BindGroup,
    swiglu: wgpu::BindGroup,
    output_norm: wgpu::BindGroup,
    sample: wgpu::BindGroup,
}

/// A model resident on the GPU with the state of one sequence.
pub struct GpuModel {
    gpu: Arc<GpuContext>,
    pub config: Config,
    pub kv_format: KvFormat,
    /// What the weight matmuls compute their activations and products in.
    pub activations: ActivationPrecision,
    /// Whether the block matrices' inputs are quantized (integer products).
    pub layer_inputs: LayerInputs,
    /// Integer (W8A8) products recorded since the model was made.
    integer_products: AtomicU64,
    /// The integer products' activation codes (one product at a time).
    #[allow(dead_code)]
    acts_scratch: wgpu::Buffer,
    /// Positions the KV cache holds.
    pub capacity: usize,
    /// Rows per prefill submission.
    pub max_batch: usize,
    shapes: Shapes,
    pipes: Pipelines,
    embed: GpuMatrix,
    /// The embedding lookup: ids → x.
    gather: BoundMatmul,
    layers: Vec<GpuLayer>,
    /// (dim,) (read through `binds.output_norm`)
    #[allow(dead_code)]
    output_norm: wgpu::Buffer,
    /// `None`: tied to `embed`.
    output: Option<GpuMatrix>,
    /// `output` (or `embed`): last → logits.
    classifier: BoundMatmul,
    act: Activations,
    binds: ModelBindGroups,
    /// Host copy of the last logits read back (for `LogitSource`).
    host_logits: Vec<f32>,
    /// The GPU error behind the last failed `LogitSource::logits` call (its `ModelError`
    /// cannot carry it).
    last_error: Option<GpuModelError>,
    /// Block evaluation's buffers (made at the first announced window) and the window.
    eval: Option<eval::EvalBlock>,
    ahead: Option<eval::Ahead>,
    gpu_bytes: u64,
}

impl GpuModel {
    /// Uploads `model` (each matrix in its own format) to `gpu` (the model keeps a clone of the
    /// `Arc`) with a KV cache of `min(seq_len, capacity)` positions in `kv_format`, its matmuls
    /// running with `activations` (f16 needs the adapter's shader-f16: a clear error otherwise).
    pub async fn new(
        gpu: &Arc<GpuContext>,
        model: &Model,
        capacity: usize,
        kv_format: KvFormat,
        activations: ActivationPrecision,
    ) -> Result<GpuModel, GpuModelError> {
        Self::new_with(gpu, model, capacity, kv_format, activations, LayerInputs::Float).await
    }

    /// [`Self::new`] with the block matrices' inputs quantized as `layer_inputs` says
    /// (int8-token: every block matrix must be int8-sym-channel, a clear error otherwise).
    pub async fn new_with(
        gpu: &Arc<GpuContext>,
        model: &Model,
        capacity: usize,
        kv_format: KvFormat,
        activations: ActivationPrecision,
        layer_inputs: LayerInputs,
    ) -> Result<GpuModel, GpuModelError> {
        let shared = Arc::clone(gpu);
        let gpu: &GpuContext = gpu;
        activations.check(gpu)?;
        let setup = MatmulSetup::default_for(gpu, activations);
        let c = model.config.clone();
        let capacity = c.seq_len.min(capacity).max(1);
        let vpw = kv_format.values_per_word();
        if !c.head_dim.is_multiple_of(vpw) || !c.rope_dim.is_multiple_of(2) {
            return Err(GpuModelError::Unsupported(format!(
                "head_dim {} must be a multiple of {vpw} for a {} KV cache (rope_dim {} even)",
                c.head_dim,
                kv_format.name(),
                c.rope_dim
            )));
        }
        let max_batch = DEFAULT_MAX_BATCH.min(capacity);
        let shapes = Shapes {
            dim: c.dim,
            hidden_dim: c.hidden_dim,
            n_heads: c.n_heads,
            n_kv_heads: c.n_kv_heads,
            head_dim: c.head_dim,
            rope_dim: c.rope_dim,
            vocab: c.vocab_size,
            capacity,
            eps: c.rms_eps,
            kv: kv_format,
        };
        // Check every state buffer against the limits before allocating anything.
        let b = max_batch;
        let cache_bytes = kv_format.layer_cache_bytes(capacity, c.n_kv_heads, c.head_dim);
        for (what, bytes) in [
            ("the activations (hidden)", bytes_f32(b * c.hidden_dim)),
            ("the attention scratch (batch x heads x capacity)", bytes_f32(b * c.n_heads * capacity)),
            ("the logits", bytes_f32(c.vocab_size)),
            ("one layer's KV cache", cache_bytes),
            ("the activation codes", acts_bytes(layer_inputs, c.dim.max(c.hidden_dim).max(c.q_dim()), b)),
        ] {
            gpu.check_binding_size(what, bytes)?;
        }
        let pipes = Pipelines::new(gpu, &shapes).await?;

        let w = &model.weights;
        let mut gpu_bytes = 0u64;
        let embed = GpuMatrix::upload_with(gpu, "token_embd", &w.token_embd, setup).await?;
        gpu_bytes += embed.gpu_bytes();
        let output = match &w.output {
            Some(m) => Some(GpuMatrix::upload_with(gpu, "output", m, setup).await?),
            None => None,
        };
        gpu_bytes += output.as_ref().map_or(0, GpuMatrix::gpu_bytes);

        let act =
            gpu.scoped("allocating the GPU forward state", || Activations::new(gpu, &c, capacity, max_batch)).await?;
        let acts_scratch =
            zeroed(gpu, "activation codes", acts_bytes(layer_inputs, c.dim.max(c.hidden_dim).max(c.q_dim()), b));
        let output_norm = norm_buffer(gpu, "output_norm", &w.output_norm);
        let mut layers = Vec::with_capacity(w.layers.len());
        for (l, lw) in w.layers.iter().enumerate() {
            let m = |s: &str| format!("blk.{l}.{s}");
            let mut uploaded = Vec::with_capacity(7);
            for (name, matrix) in lw.matrices() {
                let x = LayerMatrix::upload(gpu, &m(name), matrix, setup, layer_inputs).await?;
                gpu_bytes += x.gpu_bytes();
                uploaded.push(x);
            }
            let Ok([wq, wk, wv, wo, w_gate, w_down, w_up]) = <[LayerMatrix; 7]>::try_from(uploaded) else {
                unreachable!("Layer::matrices lists seven matrices in this order")
            };
            let layer = gpu
                .scoped("allocating a layer's KV cache and binding its products", || {
                    let attn_norm = norm_buffer(gpu, &m("attn_norm"), &lw.attn_norm);
                    let ffn_norm = norm_buffer(gpu, &m("ffn_norm"), &lw.ffn_norm);
                    let kv_cache = zeroed(gpu, &m("kv_cache"), cache_bytes);
                    let a = &act;
                    let s = &acts_scratch;
                    let (wq, wk, wv, wo) = (
                        Projection::new(gpu, wq, &a.xb, &a.q, s),
                        Projection::new(gpu, wk, &a.xb, &a.k, s),
                        Projection::new(gpu, wv, &a.xb, &a.v, s),
                        Projection::new(gpu, wo, &a.att, &a.xb2, s),
                    );
                    let (w_gate, w_up, w_down) = (
                        Projection::new(gpu, w_gate, &a.xb, &a.hb, s),
                        Projection::new(gpu, w_up, &a.xb, &a.hb2, s),
                        Projection::new(gpu, w_down, &a.hb, &a.xb2, s),
                    );
                    let bind = LayerBindGroups {
                        attn_norm: bind(gpu, &pipes.rmsnorm, "attn_norm", &[&a.step, &a.x, &attn_norm, &a.xb]),
                        kv_write: bind(gpu, &pipes.kv_write, "kv_write", &[&a.step, &a.k, &a.v, &kv_cache]),
                        attention: bind(
                            gpu,
                            &pipes.attention,
                            "attention",
                            &[&a.step, &a.q, &kv_cache, &a.scores, &a.att],
                        ),
                        ffn_norm: bind(gpu, &pipes.rmsnorm, "ffn_norm", &[&a.step, &a.x, &ffn_norm, &a.xb]),
                    };
                    GpuLayer { attn_norm, wq, wk, wv, wo, ffn_norm, w_gate, w_up, w_down, kv_cache, bind }
                })
                .await?;
            gpu_bytes += cache_bytes;
            layers.push(layer);
        }
        let a = &act;
        let (gather, classifier) = gpu
            .scoped("binding the embedding and the classifier", || {
                let classifier = output.as_ref().unwrap_or(&embed).bind_product(gpu, &a.last, &a.logits);
                (embed.bind_gather(gpu, &a.ids, &a.x), classifier)
            })
            .await?;
        let binds = ModelBindGroups {
            rope: bind(gpu, &pipes.rope, "rope", &[&a.step, &a.q, &a.k, &a.rope]),
            add_att: bind(gpu, &pipes.residual_add, "residual", &[&a.step, &a.x, &a.xb2]),
            swiglu: bind(gpu, &pipes.swiglu, "swiglu", &[&a.step, &a.hb, &a.hb2]),
            output_norm: bind(gpu, &pipes.rmsnorm, "output_norm", &[&a.step, &a.x, &output_norm, &a.xb]),
            sample: bind(gpu, &pipes.sample, "sample", &[&a.step, &a.logits, &a.token]),
        };
        Ok(GpuModel {
            gpu: shared,
            host_logits: vec![0.0; c.vocab_size],
            config: c,
            kv_format,
            activations,
            layer_inputs,
            integer_products: AtomicU64::new(0),
            acts_scratch,
            capacity,
            max_batch,
            shapes,
            pipes,
            embed,
            gather,
            layers,
            output_norm,
            output,
            classifier,
            act,
            binds,
            last_error: None,
            eval: None,
            ahead: None,
            gpu_bytes,
        })
    }

    /// Native convenience for [`Self::new`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new_blocking(
        gpu: &Arc<GpuContext>,
        model: &Model,
        capacity: usize,
        kv_format: KvFormat,
        activations: ActivationPrecision,
    ) -> Result<GpuModel, GpuModelError> {
        pollster::block_on(Self::new(gpu, model, capacity, kv_format, activations))
    }

    /// Native convenience for [`Self::new_with`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new_with_blocking(
        gpu: &Arc<GpuContext>,
        model: &Model,
        capacity: usize,
        kv_format: KvFormat,
        activations: ActivationPrecision,
        layer_inputs: LayerInputs,
    ) -> Result<GpuModel, GpuModelError> {
        pollster::block_on(Self::new_with(gpu, model, capacity, kv_format, activations, layer_inputs))
    }

    /// Integer (W8A8) matrix products recorded so far: the proof that the integer kernels ran.
    pub fn integer_products(&self) -> u64 {
        self.integer_products.load(Ordering::Relaxed)
    }

    pub fn gpu(&self) -> &GpuContext {
        &self.gpu
    }

    /// Bytes of weights and KV cache on the device.
    pub fn gpu_bytes(&self) -> u64 {
        self.gpu_bytes
    }

    /// Which kernel multiplies each distinct matrix format, e.g. "Q4_1 (dedicated) x210".
    pub fn kernel_summary(&self) -> String {
        let mut labels: Vec<(String, usize)> = Vec::new();
        let all = std::iter::once(&self.embed).chain(self.output.iter()).map(GpuMatrix::kernel_label).chain(
            self.layers.iter().flat_map(|l| {
                [&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down].map(|p| p.matrix.kernel_label())
            }),
        );
        for label in all {
            match labels.iter_mut().find(|(l, _)| *l == label) {
                Some((_, n)) => *n += 1,
                None => labels.push((label, 1)),
            }
        }
        labels.iter().map(|(l, n)| format!("{l} x{n}")).collect::<Vec<_>>().join(", ")
    }

    fn check_tokens(&self, tokens: &[u32], pos0: usize) -> Result<(), GpuModelError> {
        if let Some(&token) = tokens.iter().find(|&&t| t as usize >= self.config.vocab_size) {
            return Err(ModelError::TokenOutOfRange { token, vocab_size: self.config.vocab_size }.into());
        }
        let end = pos0 + tokens.len();
        if end > self.capacity {
            return Err(ModelError::PositionOutOfRange { pos: end - 1, capacity: self.capacity }.into());
        }
        Ok(())
    }

    /// Runs `tokens` at positions `pos0..pos0 + tokens.len()` (positions before `pos0` must
    /// have been run in this sequence), in batches of [`Self::max_batch`]; the logits of the
    /// last token stay on the GPU (read them with [`Self::read_logits`], or sample with
    /// [`Self::sample`]).
    pub async fn forward(&mut self, tokens: &[u32], pos0: usize) -> Result<(), GpuModelError> {
        self.check_tokens(tokens, pos0)?;
        for (i, chunk) in tokens.chunks(self.max_batch).enumerate() {
            let step = Step { pos0: (pos0 + i * self.max_batch) as u32, n: chunk.len() as u32, ..Step::default() };
            self.submit(step, chunk, false).await?;
        }
        Ok(())
    }

    /// Records and submits one batch: the forward of `tokens` (≤ max_batch), then optionally
    /// the sampling kernel and the copy of its result.
    async fn submit(&self, step: Step, tokens: &[u32], sample: bool) -> Result<(), GpuModelError> {
        let gpu = &*self.gpu;
        let result = gpu
            .scoped("the GPU forward", || -> Result<(), GpuError> {
                gpu.queue.write_buffer(&self.act.step, 0, bytemuck::bytes_of(&step));
                gpu.queue.write_buffer(&self.act.ids, 0, bytemuck::cast_slice(tokens));
                let mut enc =
                    gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("forward") });
                self.record(&mut enc, tokens)?;
                if sample {
                    dispatch(&mut enc, &self.pipes.sample, &self.binds.sample, (1, 1, 1));
                    enc.copy_buffer_to_buffer(&self.act.token, 0, &self.act.token_read, 0, 4);
                }
                gpu.queue.submit([enc.finish()]);
                Ok(())
            })
            .await?;
        Ok(result?)
    }

    /// The forward of one batch, like `model::forward` line by line; the classifier runs on the
    /// last row only.
    fn record(&self, enc: &mut wgpu::CommandEncoder, tokens: &[u32]) -> Result<(), GpuError> {
        let (gpu, a, p, s) = (&*self.gpu, &self.act, &self.pipes, &self.shapes);
        let n = tokens.len();
        self.record_layers(enc, tokens)?;
        // Final norm and the classifier, on the last row only.
        dispatch(enc, &p.rmsnorm, &self.binds.output_norm, groups::rmsnorm(n));
        let row = bytes_f32(s.dim);
        enc.copy_buffer_to_buffer(&a.xb, (n as u64 - 1) * row, &a.last, 0, row);
        self.classifier.encode(gpu, enc, 1)?;
        Ok(())
    }

    /// The embedding and every layer of one batch: the residual stream `x` of each row.
    fn record_layers(&self, enc: &mut wgpu::CommandEncoder, tokens: &[u32]) -> Result<(), GpuError> {
        let (gpu, p, s) = (&*self.gpu, &self.pipes, &self.shapes);
        let n = tokens.len();
        let nu = n as u32;

        // The tokens' embeddings start the residual stream.
        self.gather.encode(gpu, enc, nu)?;

        for layer in &self.layers {
            // ---- attention ----
            dispatch(enc, &p.rmsnorm, &layer.bind.attn_norm, groups::rmsnorm(n));
            layer.wq.encode(gpu, enc, nu, &self.integer_products)?;
            layer.wk.encode(gpu, enc, nu, &self.integer_products)?;
            layer.wv.encode(gpu, enc, nu, &self.integer_products)?;
            // Rotary position embedding of every query and key head (adjacent pairs).
            dispatch(enc, &p.rope, &self.binds.rope, groups::rope(s, n));
            // Cache this batch's keys and values, then attend over positions 0..=pos.
            dispatch(enc, &p.kv_write, &layer.bind.kv_write, groups::kv_write(s, n));
            dispatch(enc, &p.attention, &layer.bind.attention, groups::attention(s, n));
            // Output projection, then the residual connection.
            layer.wo.encode(gpu, enc, nu, &self.integer_products)?;
            dispatch(enc, &p.residual_add, &self.binds.add_att, groups::elementwise(s.dim, n));

            // ---- feed-forward (SwiGLU): w_down · (silu(w_gate · x) ⊙ (w_up · x)) ----
            dispatch(enc, &p.rmsnorm, &layer.bind.ffn_norm, groups::rmsnorm(n));
            layer.w_gate.encode(gpu, enc, nu, &self.integer_products)?;
            layer.w_up.encode(gpu, enc, nu, &self.integer_products)?;
            dispatch(enc, &p.swiglu, &self.binds.swiglu, groups::elementwise(s.hidden_dim, n));
            layer.w_down.encode(gpu, enc, nu, &self.integer_products)?;
            dispatch(enc, &p.residual_add, &self.binds.add_att, groups::elementwise(s.dim, n));
        }
        Ok(())
    }

    /// Copies the logits of the last token run back to the host.
    pub async fn read_logits(&mut self) -> Result<&[f32], GpuModelError> {
        let gpu = &*self.gpu;
        gpu.scoped("logits readback", || {
            let mut enc = gpu.device.create_command_encoder(&Default::default());
            enc.copy_buffer_to_buffer(&self.act.logits, 0, &self.act.logits_read, 0, self.act.logits.size());
            gpu.queue.submit([enc.finish()]);
        })
        .await?;
        let bytes = gpu.read_buffer(&self.act.logits_read).await?;
        self.host_logits.copy_from_slice(bytemuck::cast_slice(&bytes));
        Ok(&self.host_logits)
    }

    /// [`Self::forward`] of one token, then its logits read back (what evaluation needs).
    pub async fn logits(&mut self, token: u32, pos: usize) -> Result<&[f32], GpuModelError> {
        self.forward(&[token], pos).await?;
        self.read_logits().await
    }

    /// Runs `token` at `pos` and picks the next token on the GPU (one submission, 4 bytes read
    /// back). `top_k` 1 = greedy; 2..=[`MAX_TOP_K`] = top-k/top-p sampling with draw `u`.
    pub async fn decode_sample(&mut self, token: u32, pos: usize, pick: Pick) -> Result<u32, GpuModelError> {
        self.check_tokens(&[token], pos)?;
        let step = pick.step(pos as u32, 1);
        self.submit(step, &[token], true).await?;
        self.read_token().await
    }

    /// Samples the next token from the logits already on the GPU (after [`Self::forward`]).
    pub async fn sample(&mut self, pick: Pick) -> Result<u32, GpuModelError> {
        let gpu = &*self.gpu;
        let step = pick.step(0, 1);
        gpu.scoped("GPU sampling", || {
            gpu.queue.write_buffer(&self.act.step, 0, bytemuck::bytes_of(&step));
            let mut enc = gpu.device.create_command_encoder(&Default::default());
            dispatch(&mut enc, &self.pipes.sample, &self.binds.sample, (1, 1, 1));
            enc.copy_buffer_to_buffer(&self.act.token, 0, &self.act.token_read, 0, 4);
            gpu.queue.submit([enc.finish()]);
        })
        .await?;
        self.read_token().await
    }

    async fn read_token(&self) -> Result<u32, GpuModelError> {
        let bytes = self.gpu.read_buffer(&self.act.token_read).await?;
        Ok(u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes")))
    }

    /// Zeroes the KV cache of every layer (a fresh sequence). Not needed for correctness —
    /// attention at `pos` reads only positions `0..=pos`, which the sequence wrote — but it
    /// keeps a new window from seeing stale values even through a bug. Forgets an announced
    /// window ([`Self::announce_window`]).
    pub async fn reset(&mut self) -> Result<(), GpuModelError> {
        self.ahead = None;
        let gpu = &*self.gpu;
        gpu.scoped("clearing the KV cache", || {
            let mut enc = gpu.device.create_command_encoder(&Default::default());
            for l in &self.layers {
                enc.clear_buffer(&l.kv_cache, 0, None);
            }
            gpu.queue.submit([enc.finish()]);
        })
        .await?;
        Ok(())
    }

    /// The GPU error behind the last failed `LogitSource::logits` call, taken.
    pub fn take_error(&mut self) -> Option<GpuModelError> {
        self.last_error.take()
    }
}

/// How [`GpuModel::decode_sample`] picks a token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pick {
    /// 1 = greedy; 2..=MAX_TOP_K sampled.
    pub top_k: u32,
    pub temperature: f32,
    pub top_p: f32,
    /// Uniform draw in [0, 1) (ignored when greedy).
    pub u: f32,
}

impl Pick {
    pub const GREEDY: Pick = Pick { top_k: 1, temperature: 0.0, top_p: 1.0, u: 0.0 };

    fn step(self, pos0: u32, n: u32) -> Step {
        Step {
            pos0,
            n,
            top_k: self.top_k,
            temperature: self.temperature,
            top_p: self.top_p,
            u: self.u,
            ..Step::default()
        }
    }
}
