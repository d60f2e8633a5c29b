//! Layer-sequential calibration (`calib::sequential`) against its definition: the statistics of
//! each step must be exactly those `calib::collect` (the whole batched forward, from the
//! embedding) computes on the model whose earlier layers — and the earlier matrices of the same
//! layer — hold the replacements made so far. The sequential run gets them from a kept residual
//! stream and half-layer passes instead; this checks that shortcut on the first layers of the
//! default model with a round-to-nearest quantizer (one that changes the activations).

use crate::gguf::model_path;
use quantlab::calib::sequential::{run_sequential, LayerQuantizer};
use quantlab::calib::{collect, CalibHooks, ChunkPlan, Gram, InputSelection, LinearInput, SecondMoment};
use quantlab::formats::QuantScheme;
use quantlab::model::weights::Layer;
use quantlab::model::{Matrix, Model};

/// Rounds every matrix of each input to q4_0 and remembers the statistics it was handed.
struct RecordingRtn {
    scheme: QuantScheme,
    steps: Vec<(LinearInput, Gram)>,
}

impl LayerQuantizer for RecordingRtn {
    fn quantize_input(&mut self, input: LinearInput, gram: &Gram, layer: &mut Layer) -> Result<(), String> {
        self.steps.push((input, gram.clone()));
        for name in input.matrix_names() {
            let m = layer.matrix_mut(name).unwrap();
            let q = quantlab::formats::quantize(&self.scheme, &m.to_f32(), m.shape()).unwrap();
            *m = Matrix::from_quantized(q).unwrap();
        }
        Ok(())
    }
}

#[test]
fn sequential_statistics_equal_a_full_forward_of_the_partly_quantized_model() {
    let Some(path) = model_path() else { return };
    let mut model = Model::from_gguf_bytes(&std::fs::read(path).unwrap()).unwrap();
    // Three layers keep the brute-force definition (one full forward per step) cheap.
    model.config.n_layers = 3;
    model.weights.layers.truncate(3);
    let tokens: Vec<u32> = (0..70u32).map(|i| (i * 7919 + 13) % model.config.vocab_size as u32).collect();
    // Two chunks of 32 (the rest dropped), blocks of 8, the BOS replacing each chunk's first token.
    let mut plan = ChunkPlan::new(32, 64, Some(1));
    plan.block = 8;

    let mut rtn = RecordingRtn { scheme: QuantScheme::parse("q4_0").unwrap(), steps: Vec::new() };
    let (run, quantized) = run_sequential(&model, &tokens, &plan, &mut rtn, CalibHooks::default()).unwrap();
    assert_eq!((run.chunks, run.tokens), (2, 64));
    assert_eq!(rtn.steps.len(), 4 * 3, "four inputs per layer");

    // The definition: before step k, exactly the matrices of steps 0..k are replaced.
    let mut partly = model.clone();
    for (input, gram) in &rtn.steps {
        let mut stats = SecondMoment::new(InputSelection::Only(vec![*input]));
        collect(&partly, &tokens, &plan, &mut stats, CalibHooks::default()).unwrap();
        let want = &stats.inputs[input];
        assert_eq!(want.rows, gram.rows, "{input:?}");
        assert!(want.xtx == gram.xtx, "{input:?}: sequential statistics differ from the full forward's");
        let layer = input.layer().unwrap();
        for name in input.matrix_names() {
            let done = quantized.layers[layer].matrices().into_iter().find(|(n, _)| n == name).unwrap().1.clone();
            *partly.weights.layers[layer].matrix_mut(name).unwrap() = done;
        }
    }
    // The replacements change what later layers see: the first and last steps' inputs differ
    // from the float model's.
    let mut float = SecondMoment::new(InputSelection::Only(vec![rtn.steps[11].0]));
    collect(&model, &tokens, &plan, &mut float, CalibHooks::default()).unwrap();
    assert!(float.inputs[&rtn.steps[11].0].xtx != rtn.steps[11].1.xtx);
}
