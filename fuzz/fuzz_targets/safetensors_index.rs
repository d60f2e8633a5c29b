//! `model.safetensors.index.json` on arbitrary bytes: the weight map and the shard names.
#![no_main]
use libfuzzer_sys::fuzz_target;
use quantlab::io::safetensors::parse_index;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let dir = Path::new("/checkpoint");
    if let Ok((shards, weight_map)) = parse_index(data, &dir.join("model.safetensors.index.json")) {
        // Every shard must stay next to the index, whatever the file names say.
        for shard in &shards {
            assert_eq!(shard.parent(), Some(dir), "shard {shard:?} escapes the checkpoint directory");
        }
        assert!(!weight_map.is_empty());
    }
});
