//! Recipe files (`quantlab quantize --recipe`, `quantlab eval --recipe`): parsing any bytes, and
//! for an accepted recipe, that it serializes back to an equal recipe, checks against a small
//! model's tensor list, and drives the tensor policy for each of those tensors.
#![no_main]
use libfuzzer_sys::fuzz_target;
use quantlab::policy::{TensorFacts, TensorPolicy};
use quantlab::recipe::Recipe;

/// (name, row length) of a small llama's quantizable tensors.
const TENSORS: [(&str, u64); 5] = [
    ("token_embd.weight", 576),
    ("blk.0.attn_q.weight", 576),
    ("blk.0.attn_v.weight", 576),
    ("blk.0.ffn_down.weight", 1536),
    ("output.weight", 48),
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(recipe) = Recipe::parse(text) else { return };
    let again = Recipe::parse(&recipe.to_json()).unwrap_or_else(|e| panic!("{text:?} does not read back: {e}"));
    assert_eq!(again, recipe, "{text:?} reads back as another recipe");
    let _ = recipe.check_tensors(|name| TENSORS.iter().any(|(n, _)| *n == name));
    let target = recipe.target().expect("a parsed recipe has a target");
    let schemes = recipe.schemes().expect("a parsed recipe has its schemes");
    let policy = TensorPolicy { mix: target.mix, per_tensor: Some(&schemes), ..TensorPolicy::default() };
    for (name, row_len) in TENSORS {
        let facts = TensorFacts { name, n_dims: 2, row_len, decodable: true, plain_float: true, stored: None };
        let _ = policy.decide_in(&facts, &target.scheme, None);
        let _ = recipe.method_for(name);
    }
});
