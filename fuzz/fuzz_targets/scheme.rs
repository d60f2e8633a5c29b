//! Format names (`--format`, the lab's format box): parsing any text, and for an accepted name,
//! that its canonical name parses back to the same scheme and that it quantizes a small tensor.
#![no_main]
use libfuzzer_sys::fuzz_target;
use quantlab::formats::{quantize, QuantScheme, TensorShape};

fuzz_target!(|data: &[u8]| {
    let Ok(name) = std::str::from_utf8(data) else { return };
    let Ok(scheme) = QuantScheme::parse(name) else { return };
    let canonical = scheme.name();
    let again =
        QuantScheme::parse(&canonical).unwrap_or_else(|e| panic!("{name:?} → {canonical:?} does not parse: {e}"));
    assert_eq!(again, scheme, "{name:?} → {canonical:?} parses to another scheme");
    // 4 × 256 values: every block and group size divides or is refused with an error.
    let shape = TensorShape::new(4, 256);
    let values: Vec<f32> = (0..shape.rows * shape.cols).map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0).collect();
    if let Ok(q) = quantize(&scheme, &values, shape) {
        let _ = q.dequantize();
    }
});
