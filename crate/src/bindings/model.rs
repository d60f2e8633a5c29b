//! `LabModel`: a whole model in the page (the worker), for generation and evaluation.
//!
//! Thin wrapper over the core: [`Model::from_gguf_bytes`] + the GGUF tokenizer to load,
//! [`quantize_model_with_progress`] (the shared tensor policy of `quantlab eval --format`) to
//! derive quantized copies, [`generate`] to stream tokens. A quantized copy shares the
//! tokenizer with its source. Every failure is thrown as a JS `Error` with the core's message
//! and its `kind` ([`super::LabJsError`]); a progress callback returning `false` cancels and
//! throws an `Error` of kind `cancelled`. An exception thrown by a callback propagates unchanged.
//!
//! JS shape (all heavy calls are synchronous):
//! ```text
//! LabModel.fromGguf(bytes) -> LabModel
//! model.info() -> {architecture, sourceFormat, parameterCount, residentBytes, bitsPerWeight,
//!                  config: {dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize, seqLen},
//!                  tensors: [{name, type, rows, cols, bytes}]}
//! model.quantize(format, onProgress?(done, total, tensor) -> bool|void) -> LabModel
//! model.quantReport() -> {scheme, tensors: [{name, from, to, fallbackReason?, bytesBefore,
//!                         bytesAfter, error: {n, mse, rmse, max_abs_error, sqnr_db, cosine,
//!                         signal_power}}], bytesBefore, bytesAfter, bitsPerWeightBefore,
//!                         bitsPerWeight, fallbacks, byType: [{type, tensors, bytes}], summary}
//!                         | undefined
//! model.generate(prompt, {maxTokens?, seed?, temperature?, topK?, topP?, chat?},
//!                onToken?(piece, tokenId) -> bool|void)
//!   -> {text, tokenIds, stopReason: "eog"|"maxTokens"|"callback", promptTokens,
//!       prefillTokensPerSec, decodeTokensPerSec}
//! model.continueGeneration(prompt, opts, generated: Uint32Array, onToken?) -> same as generate
//!   (a generation that produced `generated` elsewhere, e.g. on a lost GPU, finished on the CPU:
//!    the same tokens one uninterrupted `generate` gives; onToken sees only the new ones)
//! ```

use std::rc::Rc;

use serde::{Deserialize, Serialize};
use tsify_next::Tsify;
use wasm_bindgen::prelude::*;

use super::{js_err, to_js, Js, LabJsError};
use crate::error::{ErrorKind, Input};
use crate::formats::QuantScheme;
use crate::gguf::GgufFile;
use crate::model::generate::{continue_generation, generate, GenerateStats, StopReason};
use crate::model::quantize::{quantize_model_with_progress, QuantizeModelError};
use crate::model::{Model, Sampler, SamplerConfig, State, TensorPolicy};
use crate::stats::ErrorMetrics;
use crate::tokenizer::{ChatMessage, StreamDecoder, Tokenizer};

/// Default `maxTokens` of `generate`.
const DEFAULT_MAX_TOKENS: usize = 64;

/// A loaded or derived model; shared (`Rc`) by the JS objects and evaluations that use it.
pub(super) struct Loaded {
    pub model: Model,
    pub tokenizer: Rc<Tokenizer>,
    pub architecture: String,
    /// What `quantize` did, for a derived model.
    pub report: Option<crate::model::QuantReport>,
    /// How to make this model again from another base, for a model `quantize` or
    /// `quantizeTarget` rounded to nearest (SmoothQuant rows re-quantize the smoothed base).
    pub rtn: Option<crate::policy::Target>,
}

/// A model held by the wasm core (see the module docs).
#[wasm_bindgen]
pub struct LabModel {
    pub(super) inner: Rc<Loaded>,
}

/// Seconds on the page's monotonic clock (`performance.now()`, else `Date.now()`).
pub(super) fn now_secs() -> f64 {
    let perf = js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("performance")).ok();
    let now = perf.as_ref().and_then(|p| {
        let f = js_sys::Reflect::get(p, &JsValue::from_str("now")).ok()?.dyn_into::<js_sys::Function>().ok()?;
        f.call0(p).ok()?.as_f64()
    });
    now.unwrap_or_else(js_sys::Date::now) / 1000.0
}

/// An optional JS callback (progress, streamed tokens) called from inside the core. It returns
/// `false` (exactly) to stop; an exception it throws also stops the call and is kept, so the
/// binding can rethrow it unchanged ([`JsCallback::finish`]).
pub(super) struct JsCallback {
    f: Option<js_sys::Function>,
    thrown: Option<JsValue>,
}

impl JsCallback {
    pub fn new(f: Option<js_sys::Function>) -> JsCallback {
        JsCallback { f, thrown: None }
    }

    /// Calls the function (if any) with `args`; `false` means stop.
    pub fn call(&mut self, args: &[JsValue]) -> bool {
        let Some(f) = &self.f else { return true };
        let arr = args.iter().collect::<js_sys::Array>();
        match f.apply(&JsValue::NULL, &arr) {
            Ok(r) => r.as_bool() != Some(false),
            Err(e) => {
                self.thrown = Some(e);
                false
            }
        }
    }

    /// The exception the callback threw, if it did.
    pub fn finish(self) -> Result<(), JsValue> {
        self.thrown.map_or(Ok(()), Err)
    }
}

#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct ConfigInfo {
    dim: usize,
    hidden_dim: usize,
    n_layers: usize,
    n_heads: usize,
    n_kv_heads: usize,
    vocab_size: usize,
    seq_len: usize,
}

#[derive(Serialize, Tsify)]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct TensorInfoRow {
    name: String,
    #[serde(rename = "type")]
    ty: String,
    rows: usize,
    cols: usize,
    bytes: usize,
}

#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct ModelInfo {
    architecture: String,
    source_format: String,
    parameter_count: usize,
    resident_bytes: usize,
    bits_per_weight: f64,
    config: ConfigInfo,
    tensors: Vec<TensorInfoRow>,
}

#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct TensorReportRow<'a> {
    name: &'a str,
    from: &'a str,
    to: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    fallback_reason: Option<&'a str>,
    bytes_before: u64,
    bytes_after: u64,
    /// The decoded result against the decoded source (`stats::metrics` field names).
    error: &'a ErrorMetrics,
}

#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct QuantReport<'a> {
    scheme: &'a str,
    tensors: Vec<TensorReportRow<'a>>,
    bytes_before: u64,
    bytes_after: u64,
    bits_per_weight_before: f64,
    bits_per_weight: f64,
    fallbacks: usize,
    /// Matrices per stored type, in order of first appearance (a preset's mix at a glance).
    by_type: Vec<TypeCount>,
    summary: String,
}

/// How many weight matrices (and bytes) ended in one type.
#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct TypeCount {
    #[serde(rename = "type")]
    ty: String,
    tensors: usize,
    bytes: u64,
}

/// Options of `generate` on the CPU and the GPU (every field optional; an unknown key is an error).
#[derive(Deserialize, Default, Tsify)]
#[serde(rename_all = "camelCase")]
pub struct GenerateOpts {
    #[tsify(optional)]
    max_tokens: Option<f64>,
    #[tsify(optional)]
    seed: Option<f64>,
    #[tsify(optional)]
    temperature: Option<f32>,
    #[tsify(optional)]
    top_k: Option<f64>,
    #[tsify(optional)]
    top_p: Option<f32>,
    #[tsify(optional)]
    chat: Option<bool>,
}

#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct GenerateResult {
    text: String,
    token_ids: Vec<u32>,
    #[tsify(type = "\"eog\" | \"maxTokens\" | \"callback\"")]
    stop_reason: &'static str,
    prompt_tokens: usize,
    prefill_tokens_per_sec: f64,
    decode_tokens_per_sec: f64,
}

/// A whole, non-negative number from JS (counts, seeds).
pub(super) fn js_count(v: f64, what: &str) -> Result<u64, LabJsError> {
    if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= 9_007_199_254_740_992.0 {
        Ok(v as u64)
    } else {
        Err(LabJsError::bad(Input::Options, format!("{what} must be a whole number ≥ 0, got {v}")))
    }
}

/// Deserializes an optional options object (`undefined`/`null` → defaults), refusing keys not in
/// `known` (a misspelt option must not be silently ignored). The check is done here rather than
/// with serde's `deny_unknown_fields`, which never returned under serde-wasm-bindgen 0.6.
pub(super) fn options<T: for<'de> Deserialize<'de> + Default>(
    opts: JsValue,
    what: &str,
    known: &[&str],
) -> Result<T, LabJsError> {
    if opts.is_undefined() || opts.is_null() {
        return Ok(T::default());
    }
    let Some(obj) = opts.dyn_ref::<js_sys::Object>() else {
        return Err(LabJsError::bad(Input::Options, format!("{what} options must be an object")));
    };
    for key in js_sys::Object::keys(obj).iter() {
        let key = key.as_string().unwrap_or_default();
        if !known.contains(&key.as_str()) {
            return Err(LabJsError::bad(
                Input::Options,
                format!("invalid {what} options: unknown option '{key}' (known: {})", known.join(", ")),
            ));
        }
    }
    serde_wasm_bindgen::from_value(opts)
        .map_err(|e| LabJsError::bad(Input::Options, format!("invalid {what} options: {e}")))
}

/// A checked `generate` call: sampler settings, prompt token ids and how many tokens to generate.
pub(super) struct GenerateRequest {
    pub config: SamplerConfig,
    pub ids: Vec<u32>,
    pub max_new: usize,
}

impl Loaded {
    /// Parses `generate`'s options and tokenizes the prompt (shared by the CPU and GPU bindings).
    pub(super) fn generate_request(&self, prompt: &str, opts: JsValue) -> Result<GenerateRequest, LabJsError> {
        let o: GenerateOpts = options(opts, "generate", &["maxTokens", "seed", "temperature", "topK", "topP", "chat"])?;
        let temperature = o.temperature.unwrap_or(0.0);
        if !(temperature >= 0.0 && temperature.is_finite()) {
            let message = format!("temperature must be a finite number ≥ 0, got {temperature}");
            return Err(LabJsError::bad(Input::Options, message));
        }
        let top_p = o.top_p.unwrap_or(1.0);
        if !(0.0..=1.0).contains(&top_p) {
            return Err(LabJsError::bad(Input::Options, format!("topP must be in [0, 1], got {top_p}")));
        }
        let config = SamplerConfig {
            temperature,
            top_k: js_count(o.top_k.unwrap_or(0.0), "topK")? as usize,
            top_p,
            seed: js_count(o.seed.unwrap_or(0.0), "seed")?,
        };
        let max_tokens = js_count(o.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS as f64), "maxTokens")? as usize;
        let tok = &*self.tokenizer;
        let text = if o.chat.unwrap_or(false) {
            tok.apply_chat_template(&[ChatMessage::new("user", prompt)], true).map_err(|e| js_err(e).context("chat"))?
        } else {
            prompt.to_string()
        };
        let ids = tok.encode(&text, tok.add_bos_default(), true);
        if ids.is_empty() {
            return Err(LabJsError::bad(Input::Text, "the prompt is empty (no tokens)"));
        }
        let ctx = self.model.config.seq_len;
        if ids.len() >= ctx {
            let limit = ErrorKind::LimitExceeded {
                limit: "context positions".into(),
                needed: ids.len() as u64 + 1,
                available: ctx as u64,
            };
            let message =
                format!("the prompt is {} tokens, longer than the model's context of {ctx} tokens", ids.len());
            return Err(LabJsError::new(limit, message));
        }
        let max_new = max_tokens.min(ctx - ids.len());
        Ok(GenerateRequest { config, ids, max_new })
    }
}

/// Streams generated tokens to an optional `onToken(piece, tokenId)` as decoded text pieces.
pub(super) struct TokenStream {
    decoder: StreamDecoder,
    text: String,
    callback: JsCallback,
}

impl TokenStream {
    pub fn new(on_token: Option<js_sys::Function>) -> TokenStream {
        TokenStream { decoder: StreamDecoder::new(), text: String::new(), callback: JsCallback::new(on_token) }
    }

    /// A stream that already decoded `generated` (not reported again): the next piece is what
    /// it would have been in one uninterrupted stream (a character split across the boundary
    /// included).
    pub fn resumed(tok: &Tokenizer, generated: &[u32], on_token: Option<js_sys::Function>) -> TokenStream {
        let mut stream = TokenStream::new(None);
        for &id in generated {
            stream.push(tok, id);
        }
        TokenStream { callback: JsCallback::new(on_token), ..stream }
    }

    /// Decodes `id`, reports it; `false` once the callback asked to stop (or threw).
    pub fn push(&mut self, tok: &Tokenizer, id: u32) -> bool {
        let piece = self.decoder.push(tok, id);
        self.text.push_str(&piece);
        self.callback.call(&[piece.into(), id.into()])
    }

    /// The whole text, or the exception the callback threw.
    pub fn finish(mut self) -> Result<String, JsValue> {
        self.callback.finish()?;
        self.text.push_str(&self.decoder.finish());
        Ok(self.text)
    }
}

/// `generate`'s JS result.
pub(super) fn generate_result(
    text: String,
    token_ids: Vec<u32>,
    stats: &GenerateStats,
) -> Result<Js<GenerateResult>, LabJsError> {
    to_js(&GenerateResult {
        text,
        token_ids,
        stop_reason: match stats.stop {
            StopReason::Eog(_) => "eog",
            StopReason::MaxTokens => "maxTokens",
            StopReason::Callback => "callback",
        },
        prompt_tokens: stats.prompt_tokens,
        prefill_tokens_per_sec: stats.prefill_tokens_per_sec(),
        decode_tokens_per_sec: stats.decode_tokens_per_sec(),
    })
}

impl LabModel {
    fn tensors(&self) -> Vec<TensorInfoRow> {
        let w = &self.inner.model.weights;
        let mut rows = Vec::new();
        for (name, m) in w.matrices() {
            let s = m.shape();
            rows.push(TensorInfoRow { name, ty: m.type_name(), rows: s.rows, cols: s.cols, bytes: m.resident_bytes() });
        }
        let mut norms = Vec::new();
        for (l, lw) in w.layers.iter().enumerate() {
            let p = |n: &str| format!("blk.{l}.{n}.weight");
            norms.push((p("attn_norm"), lw.attn_norm.len()));
            norms.push((p("ffn_norm"), lw.ffn_norm.len()));
        }
        norms.push(("output_norm.weight".into(), w.output_norm.len()));
        rows.extend(norms.into_iter().map(|(name, n)| TensorInfoRow {
            name,
            ty: "F32".into(),
            rows: 1,
            cols: n,
            bytes: 4 * n,
        }));
        rows
    }
}

#[wasm_bindgen]
impl LabModel {
    /// Loads a llama-architecture GGUF file (its whole bytes) and its tokenizer.
    #[wasm_bindgen(js_name = fromGguf)]
    pub fn from_gguf(bytes: &[u8]) -> Result<LabModel, LabJsError> {
        let gguf = GgufFile::parse(bytes, bytes.len() as u64).map_err(js_err)?;
        let model = Model::from_gguf(&gguf, bytes).map_err(js_err)?;
        let tokenizer = Tokenizer::from_gguf(&gguf).map_err(|e| js_err(e).context("tokenizer"))?;
        model.check_tokenizer_vocab(tokenizer.vocab_size()).map_err(js_err)?;
        let architecture = gguf.get_str("general.architecture").unwrap_or("llama").to_string();
        let tokenizer = Rc::new(tokenizer);
        Ok(LabModel { inner: Rc::new(Loaded { model, tokenizer, architecture, report: None, rtn: None }) })
    }

    /// Architecture, source format, sizes, hyper-parameters and the tensor table.
    pub fn info(&self) -> Result<Js<ModelInfo>, LabJsError> {
        let m = &self.inner.model;
        let c = &m.config;
        to_js(&ModelInfo {
            architecture: self.inner.architecture.clone(),
            source_format: m.weights.source_format().0,
            parameter_count: m.weights.weight_count(),
            resident_bytes: m.weights.resident_bytes(),
            bits_per_weight: m.weights.bits_per_weight(),
            config: ConfigInfo {
                dim: c.dim,
                hidden_dim: c.hidden_dim,
                n_layers: c.n_layers,
                n_heads: c.n_heads,
                n_kv_heads: c.n_kv_heads,
                vocab_size: c.vocab_size,
                seq_len: c.seq_len,
            },
            tensors: self.tensors(),
        })
    }

    /// A new model whose weight matrices are re-quantized to `format` (shared tensor policy).
    /// `onProgress(done, total, tensor)` after each matrix; returning `false` cancels.
    pub fn quantize(&self, format: &str, on_progress: Option<js_sys::Function>) -> Result<LabModel, JsValue> {
        let scheme = QuantScheme::parse(format).map_err(js_err)?;
        let mut callback = JsCallback::new(on_progress);
        let mut progress =
            |done: usize, total: usize, name: &str| callback.call(&[done.into(), total.into(), name.into()]);
        let result = quantize_model_with_progress(&self.inner.model, &scheme, &TensorPolicy::default(), &mut progress);
        callback.finish()?;
        let (model, report) = result.map_err(|e| match e {
            QuantizeModelError::Cancelled { .. } => {
                js_err(e).context(format!("cancelled quantizing to {}", scheme.name()))
            }
            QuantizeModelError::Model(e) => js_err(e).context(format!("cannot quantize to {}", scheme.name())),
        })?;
        Ok(LabModel {
            inner: Rc::new(Loaded {
                model,
                tokenizer: Rc::clone(&self.inner.tokenizer),
                architecture: self.inner.architecture.clone(),
                report: Some(report),
                rtn: Some(crate::policy::Target { scheme, mix: crate::policy::TypeMix::Pure }),
            }),
        })
    }

    /// What `quantize` did to each weight matrix, or `undefined` for a loaded model.
    #[wasm_bindgen(js_name = quantReport)]
    pub fn quant_report(&self) -> Result<Option<Js<QuantReport<'static>>>, LabJsError> {
        let Some(r) = &self.inner.report else { return Ok(None) };
        let report = QuantReport {
            scheme: &r.scheme,
            tensors: r
                .tensors
                .iter()
                .map(|t| TensorReportRow {
                    name: &t.name,
                    from: &t.source,
                    to: &t.actual,
                    fallback_reason: t.reason.as_deref(),
                    bytes_before: t.bytes_before,
                    bytes_after: t.bytes,
                    error: &t.error,
                })
                .collect(),
            bytes_before: r.total_bytes_before(),
            bytes_after: r.total_bytes(),
            bits_per_weight_before: r.bpw_before(),
            bits_per_weight: r.bpw(),
            fallbacks: r.fallbacks().count(),
            by_type: r.by_type().into_iter().map(|(ty, tensors, _, bytes)| TypeCount { ty, tensors, bytes }).collect(),
            summary: r.summary(),
        };
        to_js(&report).map(Some)
    }

    /// Generates from `prompt` (see the module docs for the options), streaming each token to
    /// `onToken(piece, tokenId)`; returning `false` stops. Greedy unless `temperature > 0`.
    pub fn generate(
        &self,
        prompt: &str,
        #[wasm_bindgen(unchecked_param_type = "GenerateOpts | undefined | null")] opts: JsValue,
        on_token: Option<js_sys::Function>,
    ) -> Result<Js<GenerateResult>, JsValue> {
        let req = self.inner.generate_request(prompt, opts)?;
        let (model, tok) = (&self.inner.model, &*self.inner.tokenizer);
        let mut state = State::new(&model.config, req.ids.len() + req.max_new.max(1));
        let mut sampler = Sampler::new(req.config);
        let mut stream = TokenStream::new(on_token);
        let result = generate(
            model,
            &mut state,
            &req.ids,
            req.max_new,
            &mut sampler,
            |id| tok.is_eog(id),
            now_secs,
            |id| stream.push(tok, id),
        );
        let text = stream.finish()?;
        let (token_ids, stats) = result.map_err(js_err)?;
        Ok(generate_result(text, token_ids, &stats)?)
    }

    /// Finishes on the CPU a generation of `prompt` with `opts` that already produced
    /// `generated` (a GPU generation whose device was lost part-way): the result is what one
    /// `generate(prompt, opts)` gives — the same tokens, greedy or seeded, `generated` included
    /// in `tokenIds` and `text` — while `onToken` streams only the tokens after them.
    #[wasm_bindgen(js_name = continueGeneration)]
    pub fn continue_generation(
        &self,
        prompt: &str,
        #[wasm_bindgen(unchecked_param_type = "GenerateOpts | undefined | null")] opts: JsValue,
        generated: &[u32],
        on_token: Option<js_sys::Function>,
    ) -> Result<Js<GenerateResult>, JsValue> {
        let req = self.inner.generate_request(prompt, opts)?;
        let (model, tok) = (&self.inner.model, &*self.inner.tokenizer);
        let mut state = State::new(&model.config, req.ids.len() + req.max_new.max(1));
        let mut stream = TokenStream::resumed(tok, generated, on_token);
        let result = continue_generation(
            model,
            &mut state,
            &req.ids,
            generated,
            req.max_new,
            req.config,
            |id| tok.is_eog(id),
            now_secs,
            |id| stream.push(tok, id),
        );
        let text = stream.finish()?;
        let (token_ids, stats) = result.map_err(|e| js_err(e).context("continuing the generation"))?;
        Ok(generate_result(text, token_ids, &stats)?)
    }

    /// The prompt's token ids as `generate` feeds them (BOS per the model, special tokens parsed).
    pub fn tokenize(&self, text: &str) -> Vec<u32> {
        let tok = &self.inner.tokenizer;
        tok.encode(text, tok.add_bos_default(), true)
    }
}
