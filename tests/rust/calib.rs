//! `calib::collect` on the default model: the rows the observer sees through the batched forward
//! are exactly those `forward_observed` shows position by position (chunks from a fresh cache,
//! each chunk's first token replaced by the BOS when one is given), and the accumulators'
//! sums equal sums recomputed here from those rows.

use crate::gguf::model_path;
use quantlab::calib::{
    collect, ActivationObserver, Both, CalibError, CalibHooks, ChunkPlan, InputSelection, LinearInput, SecondMoment,
    SumSquares,
};
use quantlab::model::{forward_observed, Model, State};
use std::collections::BTreeMap;

fn load() -> Option<Model> {
    let path = model_path()?;
    Some(Model::from_gguf_bytes(&std::fs::read(path).unwrap()).unwrap())
}

/// Every observed input, its rows in order.
#[derive(Default)]
struct Record(BTreeMap<LinearInput, Vec<f32>>);

impl ActivationObserver for Record {
    fn observe(&mut self, input: LinearInput, rows: &[f32], _width: usize) {
        self.0.entry(input).or_default().extend_from_slice(rows);
    }
}

const TOKENS: [u32; 23] =
    [504, 3458, 28, 1694, 314, 2260, 30, 216, 5001, 47, 282, 260, 1123, 2078, 29, 4471, 355, 253, 72, 1029, 30, 17, 9];

#[test]
fn batched_observer_sees_the_per_position_inputs() {
    let Some(model) = load() else { return };
    let c = &model.config;
    // Two chunks of 10 (the last 3 tokens dropped), blocks of 4 so a chunk spans 3 calls.
    let mut plan = ChunkPlan::new(10, 100, Some(1));
    plan.block = 4;
    let mut got = Record::default();
    let run = collect(&model, &TOKENS, &plan, &mut got, CalibHooks::default()).unwrap();
    assert_eq!((run.chunks, run.tokens), (2, 20));

    let mut want = Record::default();
    for chunk in TOKENS.chunks_exact(10).take(2) {
        let mut state = State::new(c, 10);
        let mut tokens = chunk.to_vec();
        tokens[0] = 1;
        for (pos, &t) in tokens.iter().enumerate() {
            forward_observed(c, &model.weights, &mut state, t, pos, |input, a| {
                want.0.entry(input).or_default().extend_from_slice(a)
            });
        }
    }
    assert_eq!(got.0.len(), 4 * c.n_layers + 1);
    for (input, rows) in &want.0 {
        assert_eq!(got.0.get(input), Some(rows), "{input:?}: batched rows differ from forward_observed's");
    }
}

#[test]
fn accumulators_sum_the_observed_rows() {
    let Some(model) = load() else { return };
    let plan = ChunkPlan::new(16, 16, None);
    let mut rec = Record::default();
    collect(&model, &TOKENS, &plan, &mut rec, CalibHooks::default()).unwrap();
    let mut sums = SumSquares::new();
    let picked = vec![LinearInput::Attention { layer: 0 }, LinearInput::FfnDown { layer: 2 }];
    let mut gram = SecondMoment::new(InputSelection::Only(picked.clone()));
    collect(&model, &TOKENS, &plan, &mut Both(&mut sums, &mut gram), CalibHooks::default()).unwrap();

    for (input, rows) in &rec.0 {
        let s = &sums.inputs[input];
        let width = s.sum_sq.len();
        assert_eq!(s.rows, 16);
        assert_eq!(rows.len(), 16 * width);
        for col in 0..width {
            let want: f64 = rows.chunks_exact(width).map(|r| f64::from(r[col]).powi(2)).sum();
            assert!((s.sum_sq[col] - want).abs() <= 1e-12 * want.max(1e-30), "{input:?} col {col}");
        }
    }
    assert_eq!(gram.inputs.keys().copied().collect::<Vec<_>>(), {
        let mut p = picked.clone();
        p.sort();
        p
    });
    for input in picked {
        let g = &gram.inputs[&input];
        let rows = &rec.0[&input];
        assert_eq!((g.rows, g.xtx.len()), (16, g.dim * g.dim));
        for (i, j) in [(0, 0), (0, 5), (7, 3), (g.dim - 1, g.dim - 1), (g.dim - 1, 1)] {
            let want: f64 = rows.chunks_exact(g.dim).map(|r| f64::from(r[i]) * f64::from(r[j])).sum();
            assert!((g.at(i, j) - want).abs() <= 1e-9 * (1.0 + want.abs()), "{input:?} ({i},{j})");
            assert_eq!(g.at(i, j), g.at(j, i));
        }
        let diag: Vec<f64> = (0..g.dim).map(|i| g.at(i, i)).collect();
        for (d, s) in diag.iter().zip(&sums.inputs[&input].sum_sq) {
            assert!((d - s).abs() <= 1e-9 * (1.0 + s.abs()));
        }
    }
    // Every matrix of layer 0's attention reads the same sums.
    let q = sums.for_tensor("blk.0.attn_q.weight", true).unwrap();
    assert_eq!(Some(q), sums.for_tensor("blk.0.attn_v.weight", true));
    assert!(sums.for_tensor("blk.0.nonexistent.weight", true).is_none());
}

#[test]
fn too_few_tokens_and_cancel() {
    let Some(model) = load() else { return };
    let mut sums = SumSquares::new();
    let err = collect(&model, &TOKENS, &ChunkPlan::new(64, 4096, None), &mut sums, CalibHooks::default());
    assert!(matches!(err, Err(CalibError::TooFewTokens { tokens: 23, chunk: 64, .. })), "{err:?}");

    let mut plan = ChunkPlan::new(8, 16, None);
    plan.block = 4;
    let mut seen = Vec::new();
    let mut progress = |done: usize, total: usize| {
        seen.push((done, total));
        done < 8
    };
    let err = collect(&model, &TOKENS, &plan, &mut sums, CalibHooks { progress: Some(&mut progress) });
    assert_eq!(err, Err(CalibError::Cancelled { done: 8, total: 16 }));
    assert_eq!(seen, [(4, 16), (8, 16)]);
}
