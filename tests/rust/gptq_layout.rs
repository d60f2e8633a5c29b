//! The GPTQ and AWQ safetensors layouts (`crate::io::gptq_layout`) against the numpy ports of
//! AutoGPTQ's `QuantLinear.pack`, AutoAWQ's `WQLinear_GEMM.from_linear` and their readers
//! (scripts/dev/make_gptq_layout_goldens.py → tests/fixtures/gptq_layout), and the errors.

use std::path::PathBuf;

use quantlab::formats::int::IntTensor;
use quantlab::formats::{QuantScheme, TensorShape};
use quantlab::io::gptq_layout::{check_scheme, unpack, IntLinear, Layout, LayoutError, Packed};
use quantlab::io::Entry;
use serde_json::Value;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/gptq_layout")
}

fn read(name: &str) -> Vec<u8> {
    let path = dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
}

fn manifest() -> Value {
    serde_json::from_slice(&read("manifest.json")).unwrap()
}

struct Case {
    name: String,
    layout: Layout,
    bits: u8,
    sym: bool,
    shape: TensorShape,
    w: Vec<f32>,
    files: Value,
}

fn cases() -> Vec<Case> {
    let m = manifest();
    assert_eq!(m["group_size"], 32);
    m["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let mat = c["matrix"].as_str().unwrap();
            let dims = &m["matrices"][mat];
            let shape = TensorShape::new(dims[0].as_u64().unwrap() as usize, dims[1].as_u64().unwrap() as usize);
            Case {
                name: c["name"].as_str().unwrap().to_string(),
                layout: if c["layout"] == "gptq" { Layout::Gptq } else { Layout::Awq },
                bits: c["bits"].as_u64().unwrap() as u8,
                sym: c["sym"].as_bool().unwrap(),
                shape,
                w: f32s(&read(&format!("{mat}.f32.bin"))),
                files: c["files"].clone(),
            }
        })
        .collect()
}

impl Case {
    fn file(&self, key: &str) -> Vec<u8> {
        read(self.files[key].as_str().unwrap_or_else(|| panic!("{}: no {key} file", self.name)))
    }

    fn scheme(&self) -> QuantScheme {
        QuantScheme::parse(&format!("int{}-{}-g32", self.bits, if self.sym { "sym" } else { "asym" })).unwrap()
    }

    fn act_order(&self) -> bool {
        self.files.get("codes").is_some()
    }

    /// The layer from the fixture's own codes, scales, zeros and g_idx (the act-order case).
    fn fixture_linear(&self) -> IntLinear {
        let (rows, cols) = (self.shape.rows, self.shape.cols);
        let g_idx: Vec<u32> =
            self.file("g_idx").chunks_exact(4).map(|b| u32::from_le_bytes(b.try_into().unwrap())).collect();
        IntLinear::checked(
            &self.name,
            (rows, cols),
            self.bits,
            32,
            self.file("codes"),
            f32s(&self.file("scales_f32")),
            self.file("zeros"),
            g_idx,
        )
        .unwrap()
    }

    fn packed(&self) -> (Vec<u8>, Vec<u8>, Vec<u8>, Option<Vec<u8>>) {
        let g_idx = (self.layout == Layout::Gptq).then(|| self.file("g_idx"));
        (self.file("qweight"), self.file("qzeros"), self.file("scales"), g_idx)
    }
}

fn entry<'a>(entries: &'a [Entry], key: &str) -> &'a Entry {
    entries.iter().find(|e| e.0 == key).unwrap_or_else(|| panic!("no entry {key}"))
}

/// Our round to nearest of the fixture's W gives the numpy quantizer's codes, and our packing
/// of them is byte-identical to the numpy ports of AutoGPTQ's and AutoAWQ's packers, with the
/// shapes and dtypes the loaders allocate.
#[test]
fn packing_is_byte_identical_to_autogptq_and_autoawq() {
    let cases = cases();
    assert_eq!(cases.len(), 7);
    for c in &cases {
        let linear = if c.act_order() {
            c.fixture_linear()
        } else {
            let t = IntTensor::quantize(&c.scheme(), &c.w, c.shape).unwrap();
            IntLinear::from_int_tensor(&c.name, &t).unwrap()
        };
        let entries = linear.entries(c.layout, "model.layers.0.mlp.up_proj").unwrap();
        let (qweight, qzeros, scales, g_idx) = c.packed();
        let (rows, cols, bits) = (c.shape.rows, c.shape.cols, c.bits as usize);
        let key = |k: &str| format!("model.layers.0.mlp.up_proj.{k}");
        let (qw, qz, sc) =
            (entry(&entries, &key("qweight")), entry(&entries, &key("qzeros")), entry(&entries, &key("scales")));
        assert_eq!(qw.3, qweight, "{}: qweight", c.name);
        assert_eq!(qz.3, qzeros, "{}: qzeros", c.name);
        assert_eq!(sc.3, scales, "{}: scales", c.name);
        assert_eq!((qw.1, qz.1, sc.1), (safetensors::Dtype::I32, safetensors::Dtype::I32, safetensors::Dtype::F16));
        assert_eq!(sc.2, vec![cols / 32, rows], "{}", c.name);
        match c.layout {
            Layout::Gptq => {
                assert_eq!(qw.2, vec![cols * bits / 32, rows], "{}", c.name);
                assert_eq!(qz.2, vec![cols / 32, rows * bits / 32], "{}", c.name);
                let gi = entry(&entries, &key("g_idx"));
                assert_eq!((gi.1, &gi.2, &gi.3), (safetensors::Dtype::I32, &vec![cols], g_idx.as_ref().unwrap()));
                assert_eq!(entries.len(), 4);
            }
            Layout::Awq => {
                assert_eq!(qw.2, vec![cols, rows * bits / 32], "{}", c.name);
                assert_eq!(qz.2, vec![cols / 32, rows * bits / 32], "{}", c.name);
                assert_eq!(entries.len(), 3);
            }
        }
    }
}

/// The numpy-ported readers' weight (what transformers computes from the file) is our
/// dequantized weight exactly, and our reader of the numpy bytes gives back the same layer.
#[test]
fn readers_give_back_our_dequantized_weights() {
    for c in &cases() {
        let deq = f32s(&c.file("deq"));
        let ours = if c.act_order() {
            c.fixture_linear()
        } else {
            let t = IntTensor::quantize(&c.scheme(), &c.w, c.shape).unwrap();
            assert_eq!(t.dequantize(), deq, "{}: IntTensor::dequantize", c.name);
            IntLinear::from_int_tensor(&c.name, &t).unwrap()
        };
        assert_eq!(ours.dequantize(), deq, "{}", c.name);
        let (qweight, qzeros, scales, g_idx) = c.packed();
        let p = Packed { qweight: &qweight, qzeros: &qzeros, scales: &scales, g_idx: g_idx.as_deref() };
        let back = unpack(&c.name, c.layout, (c.shape.rows, c.shape.cols), c.bits, 32, &p).unwrap();
        assert_eq!(back, ours, "{}", c.name);
    }
}

/// Act-order without static groups: g_idx is the fixture's non-trivial one, which GPTQ stores
/// and AWQ (no g_idx in its layout) refuses.
#[test]
fn act_order_group_index() {
    let c = cases().into_iter().find(Case::act_order).unwrap();
    let linear = c.fixture_linear();
    assert!(linear.g_idx().iter().enumerate().any(|(i, &g)| g as usize != i / 32));
    let e = linear.awq_entries("x").unwrap_err();
    assert!(matches!(e, LayoutError::GroupOrder { .. }), "{e}");
    // A g_idx that puts more than a group's worth of inputs in one group is refused.
    let mut bad = linear.g_idx().to_vec();
    let first = bad[0];
    let k = bad.iter().position(|&g| g != first).unwrap();
    bad[k] = first;
    let e = linear.clone().with_group_index(bad).unwrap_err();
    assert!(e.to_string().contains("does not put 32 inputs in every group"), "{e}");
}

fn quantized(scheme: &str, rows: usize, cols: usize, value: impl Fn(usize) -> f32) -> IntLinear {
    let s = QuantScheme::parse(scheme).unwrap();
    let w: Vec<f32> = (0..rows * cols).map(value).collect();
    let t = IntTensor::quantize(&s, &w, TensorShape::new(rows, cols)).unwrap();
    IntLinear::from_int_tensor("blk.0.ffn_up.weight", &t).unwrap()
}

#[test]
fn errors_name_what_the_layout_cannot_hold() {
    let scheme = |s: &str| QuantScheme::parse(s).unwrap();
    let e = check_scheme(&scheme("int3-asym-g64"), Layout::Gptq).unwrap_err();
    assert!(matches!(e, LayoutError::Bits { bits: 3, .. }) && e.to_string().contains("3-bit"), "{e}");
    let e = check_scheme(&scheme("int8-sym-g64"), Layout::Awq).unwrap_err();
    assert!(e.to_string().contains("4-bit codes only"), "{e}");
    let e = check_scheme(&scheme("int4-sym-channel"), Layout::Gptq).unwrap_err();
    assert!(matches!(e, LayoutError::NotGrouped { .. }) && e.to_string().contains("int4-sym-g128"), "{e}");
    let e = check_scheme(&scheme("nf4"), Layout::Awq).unwrap_err();
    assert!(matches!(e, LayoutError::NotInteger { .. }), "{e}");
    let e = check_scheme(&scheme("q4_0"), Layout::Gptq).unwrap_err();
    assert!(matches!(e, LayoutError::NotInteger { .. }), "{e}");
    assert_eq!(check_scheme(&scheme("int2-asym-g32"), Layout::Gptq).unwrap(), (2, 32, false));

    // All-positive groups get zero point 0, which GPTQ v1 stores as -1: refused, naming the
    // first group; AWQ stores it.
    let l = quantized("int4-asym-g32", 8, 64, |i| 0.01 + (i % 7) as f32 * 0.1);
    let e = l.gptq_entries("x").unwrap_err();
    assert!(matches!(e, LayoutError::ZeroPoint { groups: 16, output: 0, group: 0, .. }), "{e}");
    assert!(e.to_string().contains("blk.0.ffn_up.weight"), "{e}");
    assert!(l.awq_entries("x").is_ok());

    // 4 outputs cannot fill an int32 word of 8 GPTQ zeros or AWQ codes.
    let l = quantized("int4-sym-g32", 4, 64, |i| (i % 5) as f32 - 2.0);
    let e = l.gptq_entries("x").unwrap_err();
    assert!(matches!(e, LayoutError::Shape { n: 4, multiple: 8, .. }), "{e}");
    assert!(l.awq_entries("x").unwrap_err().to_string().contains("the output count is 4"));

    // A group scale above f16's maximum is refused, not written as 65504.
    let s = QuantScheme::parse("int4-sym-g32").unwrap();
    let mut w = vec![0.5f32; 8 * 32];
    w[40] = 1e6;
    let t = IntTensor::quantize(&s, &w, TensorShape::new(8, 32)).unwrap();
    let e = IntLinear::from_int_tensor("t", &t).unwrap_err();
    assert!(matches!(e, LayoutError::Saturated { groups: 1, first: 1, .. }), "{e}");

    // Parts that do not fit together.
    let e = IntLinear::checked(
        "t",
        (8, 32),
        4,
        32,
        vec![0; 8 * 32],
        vec![0.5; 8],
        vec![16; 8],
        (0..32).map(|_| 0).collect(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("not below 2^4"), "{e}");
    let e =
        IntLinear::checked("t", (8, 32), 4, 32, vec![0; 8 * 32], vec![0.1; 8], vec![1; 8], vec![0; 32]).unwrap_err();
    assert!(e.to_string().contains("not an f16 value"), "{e}");
    let p = Packed { qweight: &[0; 12], qzeros: &[0; 4], scales: &[0; 16], g_idx: None };
    let e = unpack("t", Layout::Awq, (8, 32), 4, 32, &p).unwrap_err();
    assert!(e.to_string().contains("expected"), "{e}");
}

/// Reordering rows moves whole output channels: codes, scales and zeros together.
#[test]
fn reorder_rows_moves_output_channels() {
    let l = quantized("int4-asym-g32", 8, 64, |i| ((i * 37) % 23) as f32 - 11.0);
    let from = [3, 1, 0, 2, 7, 6, 5, 4];
    let r = l.reorder_rows(&from);
    let (a, b) = (l.dequantize(), r.dequantize());
    for (new, &old) in from.iter().enumerate() {
        assert_eq!(b[new * 64..(new + 1) * 64], a[old * 64..(old + 1) * 64]);
    }
}
