//! A safetensors file on arbitrary bytes: the header, then every tensor decoded to f32.
#![no_main]
use libfuzzer_sys::fuzz_target;
use quantlab::io::Checkpoint;
use std::path::PathBuf;

fuzz_target!(|data: &[u8]| {
    let shard = (PathBuf::from("model.safetensors"), data.to_vec());
    let Ok(checkpoint) = Checkpoint::from_shard_bytes(vec![shard], None) else { return };
    for t in &checkpoint.tensors {
        let _ = checkpoint.raw(t);
        let _ = checkpoint.tensor_f32(t);
    }
});
