//! Error kinds: what crosses the wasm boundary as the thrown Error's fields (`kind` and its
//! details), serialized as the web code reads them, and the kinds the core's errors map to.

use quantlab::error::{ErrorKind, HasKind, Input};
use quantlab::formats::QuantScheme;
use quantlab::gguf::GgufFile;
use quantlab::model::eval::EvalError;
use quantlab::model::quantize::QuantizeModelError;
use quantlab::model::ModelError;
use serde_json::json;

fn js(kind: ErrorKind) -> serde_json::Value {
    serde_json::to_value(kind).unwrap()
}

#[test]
fn kinds_serialize_as_the_web_reads_them() {
    assert_eq!(js(ErrorKind::cancelled(3, 211)), json!({"kind": "cancelled", "done": 3, "total": 211}));
    assert_eq!(
        js(ErrorKind::MissingFeature { feature: "shader-f16".into() }),
        json!({"kind": "missingFeature", "feature": "shader-f16"})
    );
    assert_eq!(
        js(ErrorKind::LimitExceeded { limit: "context positions".into(), needed: 9, available: 8 }),
        json!({"kind": "limitExceeded", "limit": "context positions", "needed": 9, "available": 8})
    );
    assert_eq!(js(ErrorKind::bad(Input::File)), json!({"kind": "badInput", "what": "file"}));
    assert_eq!(js(ErrorKind::DeviceLost), json!({"kind": "deviceLost"}));
    assert_eq!(js(ErrorKind::NoGpu), json!({"kind": "noGpu"}));
}

#[test]
fn core_errors_have_kinds() {
    let not_gguf = GgufFile::parse(b"PK\x03\x04 zip", 9).unwrap_err();
    assert_eq!(not_gguf.kind(), ErrorKind::bad(Input::File), "{not_gguf}");
    assert_eq!(ModelError::from(not_gguf).kind(), ErrorKind::bad(Input::File), "through ModelError");
    let unknown = QuantScheme::parse("awq").unwrap_err();
    assert_eq!(unknown.kind(), ErrorKind::bad(Input::Format), "{unknown}");
    let past = ModelError::PositionOutOfRange { pos: 8, capacity: 8 };
    assert_eq!(past.kind(), ErrorKind::LimitExceeded { limit: "context positions".into(), needed: 9, available: 8 });
    assert_eq!(QuantizeModelError::Cancelled { done: 3, total: 211 }.kind(), ErrorKind::cancelled(3, 211));
    let eval = EvalError::Cancelled { positions_done: 5, positions_total: 63 };
    assert_eq!(eval.kind(), ErrorKind::cancelled(5, 63));
    assert_eq!(ModelError::UnsupportedArchitecture { found: Some("gpt2".into()) }.kind(), ErrorKind::Unsupported);
}

/// A GPU failure inside an evaluation keeps the GPU's own kind (it used to travel as a
/// `BadMetadata { key: "(GPU forward)" }`).
#[cfg(feature = "gpu")]
#[test]
fn gpu_errors_keep_their_kind_through_model_errors() {
    use quantlab::gpu::forward::GpuModelError;
    use quantlab::gpu::GpuError;

    let lost = ModelError::Gpu(Box::new(GpuModelError::Gpu(GpuError::DeviceLost("test".into()))));
    assert_eq!(lost.kind(), ErrorKind::DeviceLost);
    assert_eq!(EvalError::Model(lost).kind(), ErrorKind::DeviceLost);
    let big = GpuError::BufferTooLarge { what: "token_embd".into(), bytes: 10, max: 4 };
    assert_eq!(
        big.kind(),
        ErrorKind::LimitExceeded { limit: "maxStorageBufferBindingSize".into(), needed: 10, available: 4 }
    );
    let f16 = GpuError::MissingFeature {
        what: "f16 activations".into(),
        adapter: "SwiftShader".into(),
        feature: "shader-f16".into(),
        hint: "use f32 activations".into(),
    };
    assert_eq!(f16.kind(), ErrorKind::MissingFeature { feature: "shader-f16".into() });
    assert!(f16.to_string().contains("adapter 'SwiftShader' has no shader-f16 feature"), "{f16}");
}
