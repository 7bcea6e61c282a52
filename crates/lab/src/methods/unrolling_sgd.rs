//! Unrolling SGD (Thudi et al., USENIX Security 2022; "Unrolling" in the CaMU paper), single-step
//! variant. Training with SGD adds, over E epochs at learning rate lr and batch size B, about
//! -(lr * E / B) * sum over Df of grad L(w; x) to the weights; unlearning adds it back:
//!
//!   w' = w + scale * (lr * E / B) * sum_{x in Df} grad L(w; x)
//!
//! Variant implemented: the gradients are taken at the trained weights w of f_o (the initial
//! weights are not kept), in one first-order step over all of Df (the public code,
//! cleverhans-lab/unrolling-sgd, does it for one batch of a model trained with plain SGD).
//! lr, E and B are the original model's own: read from its training record (`config` in its
//! `metrics.json`), overridable with `with`; a model without a record needs them given. The
//! original here is trained with Adam, not SGD, so lr * E / B is the SGD-equivalent step the
//! method assumes, not an exact inverse of the training.

use super::{Declared, MethodParams, Reference};
use serde::{Deserialize, Serialize};

pub struct UnrollingSgd;

/// Unset fields come from the original model's training record.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UnrollingSgdParams {
    pub lr: Option<f64>,
    pub epochs: Option<usize>,
    pub batch_size: Option<usize>,
    pub scale: f64,
}

impl Default for UnrollingSgdParams {
    fn default() -> Self {
        UnrollingSgdParams {
            lr: None,
            epochs: None,
            batch_size: None,
            scale: 1.0,
        }
    }
}

impl MethodParams for UnrollingSgdParams {}

impl Declared for UnrollingSgd {
    const NAME: &'static str = "unrolling_sgd";
    // 2: lr, epochs and batch size from the original's training record (v1: fixed 20 epochs).
    const VERSION: u32 = 2;
    type Params = UnrollingSgdParams;
    fn reference() -> Reference {
        Reference {
            source: "cleverhans-lab/unrolling-sgd at 49e001f (single-step first-order correction)",
            from: &[
                ("lr", "the original model's training record (`config.lr`)"),
                ("epochs", "the original model's training record (`config.epochs`)"),
                ("batch_size", "the original model's training record (`config.batch_size`)"),
                ("scale", "the formula as published"),
            ],
            contextual: vec![
                ("lr", "the original's recorded lr".into()),
                ("epochs", "the original's recorded epochs".into()),
                ("batch_size", "the original's recorded batch size".into()),
            ],
            deviations: &[
                "One correction over all of Df at the trained weights; the public code does it for one batch.",
                "The original here is trained with Adam, not SGD: lr * E / B is the SGD-equivalent step the method assumes.",
            ],
        }
    }
}
