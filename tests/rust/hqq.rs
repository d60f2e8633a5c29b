//! HQQ against an independent numpy port of the published solver
//! (scripts/dev/hqq_reference.py, fixtures in tests/fixtures/hqq/), and against round to nearest
//! on real layers of the default model.
//!
//! Tolerances: both sides run the solver in f64 on the same f16-representable weights, with the
//! same operations in the same order per element. What differs is the order of the sums (numpy's
//! `mean` adds pairwise, the Rust in element order): the zero of a 64-value group, a mean of
//! terms of magnitude ≤ 2·qmax, can differ by about 64·2⁻⁵³·30 ≈ 2e-13 code units, and `pow` may
//! differ by an ulp between libm and numpy. So the scales (one division of the same two
//! numbers) must be equal, the zeros and `W_r` agree to 1e-9 (relative to the code step for
//! `W_r`), far below the 1/64 code step a single flipped code would move a zero by; codes and
//! the packed f16 blocks must be identical, since a weight would have to lie within ~1e-13 of a
//! rounding boundary to round differently.

use half::f16;
use quantlab::formats::{QuantScheme, QuantizedTensor, TensorShape};
use quantlab::methods::hqq::{self, HqqOptions, IntZero, ZeroPoint};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Deserialize)]
struct Manifest {
    rows: usize,
    cols: usize,
    cases: BTreeMap<String, Case>,
}

#[derive(Deserialize)]
struct Case {
    group: usize,
    bits: u8,
    steps: usize,
}

fn read(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/hqq").join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn f64s(name: &str) -> Vec<f64> {
    read(name).chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap())).collect()
}

fn assert_close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}");
    let worst = got.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(worst <= tol, "{what}: largest difference {worst:e} > {tol:e}");
}

#[test]
fn hqq_matches_the_numpy_reference() {
    let m: Manifest = serde_json::from_slice(&read("manifest.json")).unwrap();
    let w: Vec<f32> = read("w.f16.bin").chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect();
    let shape = TensorShape::new(m.rows, m.cols);
    let options = HqqOptions::default();

    // The solver itself, float zero, groups of 64.
    let case = &m.cases["float-g64"];
    let sol = hqq::optimize(&w, case.group, case.bits, ZeroPoint::Float, &options);
    assert_eq!(sol.steps, case.steps);
    assert_eq!(sol.scale, f64s("float-g64.scale.f64.bin"));
    assert_close("float-g64 zero", &sol.zero, &f64s("float-g64.zero.f64.bin"), 1e-9);
    let (codes, w_r) = sol.reconstruct(&w);
    assert_eq!(codes, read("float-g64.wq.u8.bin"));
    // W_r is (W_q − z)/s: an error ε in z moves it by ε/s.
    let step = sol.scale.iter().map(|s| 1.0 / s).fold(0.0, f64::max);
    assert_close("float-g64 W_r", &w_r, &f64s("float-g64.wr.f64.bin"), 1e-9 * step);

    // Q4_1: groups of 32, packed as ggml blocks with codes re-derived against the stored d, m.
    let case = &m.cases["q4_1"];
    let out = hqq::quantize(&QuantScheme::parse("q4_1").unwrap(), &w, shape, &options).unwrap();
    assert_eq!(out.solution.steps, case.steps);
    assert_eq!(out.solution.scale, f64s("q4_1.scale.f64.bin"));
    assert_close("q4_1 zero", &out.solution.zero, &f64s("q4_1.zero.f64.bin"), 1e-9);
    let QuantizedTensor::Ggml(t) = &out.tensor else { panic!("a ggml tensor") };
    assert!(t.data == read("q4_1.blocks.bin"), "Q4_1 blocks differ");
    assert_eq!(out.tensor.dequantize().unwrap(), out.values);

    // INT asym, groups of 64, the integer zero rounded at each step.
    let case = &m.cases["int4-asym-g64"];
    let scheme = QuantScheme::parse("int4-asym-g64").unwrap();
    let out = hqq::quantize(&scheme, &w, shape, &HqqOptions { int_zero: IntZero::EachStep, ..options }).unwrap();
    assert_eq!(out.solution.steps, case.steps);
    assert_eq!(out.solution.scale, f64s("int4-asym-g64.scale.f64.bin"));
    assert_eq!(out.solution.zero, f64s("int4-asym-g64.zero.f64.bin"));
    let want: Vec<f32> =
        read("int4-asym-g64.deq.f32.bin").chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
    assert_eq!(out.values, want);
    assert_eq!(out.tensor.dequantize().unwrap(), out.values);
}

/// Real matrices of the default model, as f32 (only their bytes are read, no model is built):
/// layer 0's attn_q and ffn_down (stored as Q4_1 in the default model) and the first 1024 rows of
/// the token embedding (stored as Q8_0, so nearly the float weights).
fn real_matrices() -> Option<Vec<(&'static str, Vec<f32>, TensorShape)>> {
    use quantlab::gguf::GgufFile;
    let path = crate::gguf::model_path()?;
    let bytes = std::fs::read(path).unwrap();
    let gguf = GgufFile::parse(&bytes, bytes.len() as u64).unwrap();
    let mut out = Vec::new();
    for (name, max_rows) in
        [("blk.0.attn_q.weight", usize::MAX), ("blk.0.ffn_down.weight", usize::MAX), ("token_embd.weight", 1024)]
    {
        let t = gguf.tensor(name).unwrap();
        let rows = (t.n_rows() as usize).min(max_rows);
        let shape = TensorShape::new(rows, t.row_len() as usize);
        let data = gguf.tensor_data(&bytes, t).unwrap();
        let row_bytes = data.len() / t.n_rows() as usize;
        let mut w = vec![0f32; shape.len()];
        quantlab::formats::dequantize_row(t.ty, &data[..rows * row_bytes], &mut w).unwrap();
        out.push((name, w, shape));
    }
    Some(out)
}

/// HQQ's reconstruction error against round to nearest's, in HQQ's own objective (`Σ|w − ŵ|^p`,
/// p = 0.7) and in plain squared error, on real matrices:
/// - Q4_1 and Q5_1 (a free f16 minimum, so HQQ's float zero is kept): never worse; strictly
///   better where RTN is not already exact (the Q4_1-stored layers are exactly on a Q4_1 grid,
///   which RTN finds again).
/// - int4-asym-g64 (an integer zero point): never worse, with the zero rounded at each step,
///   and that is no worse than rounding once at the end (the choice the module docs explain).
#[test]
fn hqq_is_no_worse_than_rtn_on_real_layers() {
    let Some(matrices) = real_matrices() else { return };
    let options = HqqOptions::default();
    let p = options.lp_norm;
    for (name, w, shape) in &matrices {
        for format in ["q4_1", "q5_1", "int4-asym-g64"] {
            let scheme = QuantScheme::parse(format).unwrap();
            let rtn = quantlab::formats::quantize(&scheme, w, *shape).unwrap().dequantize().unwrap();
            let (lp_rtn, sq_rtn) = hqq::reconstruction_error(w, &rtn, p);
            let out = hqq::quantize(&scheme, w, *shape, &options).unwrap();
            assert_eq!(out.tensor.dequantize().unwrap(), out.values);
            let (lp, sq) = hqq::reconstruction_error(w, &out.values, p);
            eprintln!(
                "{name} {format}: {} steps, l_0.7 HQQ {lp:.6e} RTN {lp_rtn:.6e}, squared HQQ {sq:.6e} RTN {sq_rtn:.6e}",
                out.solution.steps
            );
            assert!(lp <= lp_rtn && sq <= sq_rtn, "{name} {format}: HQQ worse than RTN");
            if format == "int4-asym-g64" {
                let at_end = HqqOptions { int_zero: IntZero::AtEnd, ..options };
                let end = hqq::quantize(&scheme, w, *shape, &at_end).unwrap();
                let (lp_end, sq_end) = hqq::reconstruction_error(w, &end.values, p);
                eprintln!("{name} {format} zero rounded at the end: l_0.7 {lp_end:.6e}, squared {sq_end:.6e}");
                assert!(lp <= lp_end && sq <= sq_end, "{name}: rounding the zero at the end was better");
            } else if lp_rtn > 0.0 {
                assert!(lp < lp_rtn, "{name} {format}: HQQ not better in its objective");
            }
        }
    }
}

/// `quantlab quantize --method hqq -f q4_1` on a tiny GGUF: every tensor written as Q4_1 holds
/// exactly HQQ's blocks for the source's values, and the report counts them.
#[test]
fn cli_quantize_with_hqq_writes_hqq_blocks() {
    use quantlab::cli::quantize::{self, Method, MethodArgs, QuantizeArgs};
    use quantlab::formats::GgmlType;
    use quantlab::gguf::GgufFile;

    let dir = tempfile::tempdir().unwrap();
    let input = crate::cli_quantize::tiny_gguf(dir.path(), None);
    let output = dir.path().join("hqq.q4_1.gguf");
    let method = MethodArgs { method: Method::Hqq, ..MethodArgs::default() };
    let args = QuantizeArgs { method, ..QuantizeArgs::new(&input, "q4_1", &output) };
    let report = quantize::run(&args).unwrap();

    let (src, out) = (std::fs::read(&input).unwrap(), std::fs::read(&output).unwrap());
    let (s, o) = (GgufFile::parse(&src, src.len() as u64).unwrap(), GgufFile::parse(&out, out.len() as u64).unwrap());
    let mut hqq_tensors = 0;
    for t in o.tensors.iter().filter(|t| t.ty == GgmlType::Q4_1) {
        let ti = s.tensor(&t.name).unwrap();
        if ti.ty == GgmlType::Q4_1 {
            continue; // already the asked type: copied as it is
        }
        let shape = TensorShape::new(ti.n_rows() as usize, ti.row_len() as usize);
        let mut w = vec![0f32; shape.len()];
        quantlab::formats::dequantize_row(ti.ty, s.tensor_data(&src, ti).unwrap(), &mut w).unwrap();
        let want = hqq::quantize(&QuantScheme::parse("q4_1").unwrap(), &w, shape, &HqqOptions::default()).unwrap();
        let QuantizedTensor::Ggml(want) = want.tensor else { panic!("a ggml tensor") };
        assert!(o.tensor_data(&out, t).unwrap() == &want.data[..], "{}: not HQQ's blocks", t.name);
        hqq_tensors += 1;
    }
    assert!(hqq_tensors >= 2, "{report}");
    assert!(report.contains(&format!("HQQ quantized {hqq_tensors} tensors; 0 rounded to nearest")), "{report}");
}

/// What `--method hqq` refuses, before any work: a format it does not write (naming those it
/// does) and calibration options.
#[test]
fn cli_hqq_refuses_other_formats_and_calibration_options() {
    use quantlab::cli::quantize::{self, Method, MethodArgs, QuantizeArgs};

    let dir = tempfile::tempdir().unwrap();
    let input = crate::cli_quantize::tiny_gguf(dir.path(), None);
    let (gguf, st) = (dir.path().join("out.gguf"), dir.path().join("out.safetensors"));
    let hqq = MethodArgs { method: Method::Hqq, ..MethodArgs::default() };
    let run = |format: &str, method: MethodArgs| {
        // INT formats have no GGUF type: they are written as safetensors.
        let output = if format.starts_with("int") { &st } else { &gguf };
        quantize::run(&QuantizeArgs { method, ..QuantizeArgs::new(&input, format, output) }).unwrap_err().to_string()
    };
    for format in ["q4_0", "int4-sym-g64", "q4_k"] {
        let err = run(format, hqq.clone());
        assert!(err.contains(hqq::SUPPORTED), "{format}: {err}");
    }
    let err = run("q4_1", MethodArgs { calib: Some("calib.txt".into()), ..hqq.clone() });
    assert!(err.contains("--calib is a calibration option"), "{err}");
    let err = run("q4_1", MethodArgs { act_order: true, ..hqq });
    assert!(err.contains("--act-order is a calibration option"), "{err}");
    assert!(!gguf.exists() && !st.exists());
}
